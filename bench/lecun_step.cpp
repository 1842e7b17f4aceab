// Cost of one step of the 1989 zip-code network (kiln/lecun/net1989.h), single thread: the
// batch-1 training step (forward, MSE loss, backward, SGD update) and the evaluation forward,
// on random 16x16 digits, float and double. `kiln lecun1989`'s 23 passes are 167,693 training
// steps, so its training time is this figure times that count.
// Run: build/bench/kiln_bench_lecun [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <vector>

#include "kiln/lecun/net1989.h"

namespace {
using kiln::lecun::Draws;
using kiln::lecun::Net1989;
using kiln::lecun::Rng;

constexpr int kDigits = 1024;

template <class T>
struct Digits {
  std::vector<T> x;
  std::vector<int> y;
  Digits() : x(kDigits * 256), y(kDigits) {
    Rng r(1);
    for (auto& v : x) v = static_cast<T>(r.uniform() * 2 - 1);
    for (auto& v : y) v = static_cast<int>(r.next() % 10);
  }
};

// One step per iteration, cycling through the digits: training (step + SGD) or evaluation.
template <class T>
void run(benchmark::State& state, bool train) {
  Digits<T> d;
  Net1989<T> net;
  Rng init(7);
  net.init(init);
  size_t i = 0;
  for (auto _ : state) {
    const T* x = &d.x[i * 256];
    if (train) {
      benchmark::DoNotOptimize(net.step(x, d.y[i], true, Draws{}));
      kiln::lecun::sgd_update(net.params, net.grads, 0.03);
    } else {
      benchmark::DoNotOptimize(net.predict(x));
    }
    i = (i + 1) % kDigits;
  }
  state.SetItemsProcessed(state.iterations());
}

template <class T>
void train_step(benchmark::State& state) { run<T>(state, true); }
template <class T>
void eval_step(benchmark::State& state) { run<T>(state, false); }
}  // namespace

BENCHMARK_TEMPLATE(train_step, float);
BENCHMARK_TEMPLATE(train_step, double);
BENCHMARK_TEMPLATE(eval_step, float);
BENCHMARK_TEMPLATE(eval_step, double);
BENCHMARK_MAIN();
