#include "kiln/lecun/zipcode.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <memory>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::lecun {

namespace {
Digits to_digits(const Dataset& ds, const torch::Tensor& idx) {
  namespace F = torch::nn::functional;
  auto x = ds.images.index_select(0, idx).to(torch::kFloat32) / 127.5 - 1.0;
  x = F::interpolate(x, F::InterpolateFuncOptions().size(std::vector<int64_t>{16, 16}).mode(torch::kBilinear).align_corners(false));
  x = x.contiguous();
  Digits d;
  d.x.assign(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
  auto y = ds.labels.index_select(0, idx);
  for (int64_t i = 0; i < y.size(0); ++i) d.y.push_back(static_cast<int>(y[i].item<int64_t>()));
  return d;
}
}  // namespace

ZipcodeData make_zipcode_data(const TrainTest& mnist, uint64_t seed, int n_train, int n_test) {
  if (mnist.train.images.size(2) != 28 || mnist.train.images.size(1) != 1)
    throw Error("the 1989 reproduction draws its digits from MNIST (1x28x28 images)");
  if (mnist.train.size() < n_train || mnist.test.size() < n_test)
    throw Error("MNIST has " + std::to_string(mnist.train.size()) + "/" + std::to_string(mnist.test.size()) +
                " train/test digits; the 1989 set needs " + std::to_string(n_train) + "/" + std::to_string(n_test));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  ZipcodeData z;
  z.train = to_digits(mnist.train, torch::randperm(mnist.train.size(), gen, torch::kInt64).slice(0, 0, n_train));
  z.test = to_digits(mnist.test, torch::randperm(mnist.test.size(), gen, torch::kInt64).slice(0, 0, n_test));
  z.note = std::to_string(n_train) + " training digits drawn from " + std::to_string(mnist.train.size()) +
           " MNIST training digits and " + std::to_string(n_test) + " test digits from " +
           std::to_string(mnist.test.size()) + " MNIST test digits (seed " + std::to_string(seed) + ")";
  return z;
}

namespace {
// Joins a running thread however the scope is left (a std::thread still joinable at its
// destruction ends the process).
struct Joined {
  std::thread t;
  ~Joined() {
    if (t.joinable()) t.join();
  }
  void start(std::function<void()> f) { t = std::thread(std::move(f)); }
  void wait() {
    if (t.joinable()) t.join();
  }
};
}  // namespace

std::vector<PassMetrics> train_zipcode(const ZipcodeData& data, const Recipe& r, uint64_t seed,
                                       const std::function<void(const PassMetrics&)>& on_pass, bool overlap_eval) {
  auto t0 = std::chrono::steady_clock::now();
  Trainer1989 t(r, seed);
  std::vector<PassMetrics> out;
  auto finish = [&](PassMetrics m) {
    m.train_error = data.train.size() ? static_cast<double>(m.train_misses) / data.train.size() : 0.0;
    m.test_error = data.test.size() ? static_cast<double>(m.test_misses) / data.test.size() : 0.0;
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(m);
    if (on_pass) on_pass(m);
  };
  // overlap_eval: pass p's weights are copied into `snap` and evaluated on a second thread
  // while pass p + 1 trains (the last pass's two splits on two threads). The evaluation is the
  // same code on the same weights, so every count is what evaluating in turn gives.
  auto snap = std::make_unique<Net1989<float>>(r.variant), snap2 = std::make_unique<Net1989<float>>(r.variant);
  PassMetrics pending;
  Joined evaluator;
  for (int pass = 0; pass < r.passes; ++pass) {
    double loss_sum = 0;
    for (int i = 0; i < data.train.size(); ++i) loss_sum += t.step(data.train, i, pass);
    PassMetrics m;
    m.pass = pass + 1;
    m.train_loss = loss_sum / data.train.size();
    if (!overlap_eval) {
      m.train_misses = count_misses(t.net, data.train);
      m.test_misses = count_misses(t.net, data.test);
      finish(m);
      continue;
    }
    if (pass > 0) {  // the previous pass's evaluation, which ran beside this pass's training
      evaluator.wait();
      finish(pending);
    }
    snap->params = t.net.params;
    pending = m;
    if (pass + 1 < r.passes) {
      evaluator.start([&] {
        pending.train_misses = count_misses(*snap, data.train);
        pending.test_misses = count_misses(*snap, data.test);
      });
    } else {
      snap2->params = t.net.params;
      evaluator.start([&] { pending.train_misses = count_misses(*snap, data.train); });
      const int test_misses = count_misses(*snap2, data.test);
      evaluator.wait();
      pending.test_misses = test_misses;
      finish(pending);
    }
  }
  return out;
}

}  // namespace kiln::lecun
