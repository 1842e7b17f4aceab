// The fused CPU operator (kiln/nn/fused_cpu.h) against LibTorch's max_pool2d -> batch_norm -> gelu
// (and batch_norm -> gelu, batch_norm -> add -> gelu): forward + backward of one block at the shapes
// cifar10-94-muon gives it (widths 64/256/256 on 32x32 images: each group's pooled conv output, then
// its second conv's) and, with the residual, cifar10-96's third convs (widths 128/384/512),
// channels_last, a batch of 500, the BatchNorm in training mode, freed host memory retained (as kiln
// runs). Items/s = images per second.
// And one whole training step (forward, loss, backward, SGD update) of cifar10-94-muon's and
// cifar10-96's networks on random data, bf16, channels_last, batch 256, fused and not: the
// operator's share of a step. On a noisy machine, interleave the two:
//   build/bench/kiln_bench_fused --benchmark_filter=step --benchmark_min_time=2 --benchmark_repetitions=10 \
//     --benchmark_enable_random_interleaving=true
// In evaluation (BN's running statistics, under no grad: one forward pass, the pooled tensor never
// written): the same blocks forward (pool_bn_gelu_eval) and one evaluation forward of the two
// networks, batch 500 (airbench_eval; the TTA repeats it on flipped and shifted copies).
// Run: build/bench/kiln_bench_fused [--benchmark_filter=bf16]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>

#include "kiln/core/config.h"
#include "kiln/core/host_memory.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/model.h"
#include "kiln/train/loss.h"

namespace {

// Which path ran, and on how many threads: every benchmark's label.
std::string label(bool fused) {
  return std::string(fused ? "fused " + kiln::fused_cpu_isa() : "LibTorch") + ", " + std::to_string(at::get_num_threads()) +
         " threads";
}

// The preset's network as kiln trains it on the CPU in bf16: whitening fitted to x, channels_last,
// bf16 weights (BN in fp32), the fused operators on or off.
kiln::ClassifierPtr bench_net(const std::string& preset, const torch::Tensor& x, bool fused) {
  auto model = kiln::make_model(kiln::Config::from_file(kiln::find_preset(preset)), 3, 10);
  model->fit_to_data(x);
  kiln::to_channels_last(*model);
  kiln::set_precision(*model, torch::kBFloat16);
  kiln::set_fused_cpu(*model, fused);
  return model;
}

// state.range: 0 channels, 1 height = width, 2 pool (0/1), 3 residual (0/1), 4 fused (0/1).
void pool_bn_gelu(benchmark::State& state, torch::ScalarType dtype) {
  const int64_t batch = 500, C = state.range(0), H = state.range(1);
  const bool pool = state.range(2) != 0, residual = state.range(3) != 0, fused = state.range(4) != 0;
  torch::manual_seed(0);
  kiln::BatchNorm bn(C, kiln::BatchNormOptions{0.4, 1e-12});
  bn->fused_cpu = fused;
  bn->train();
  auto x = torch::randn({batch, C, H, H}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(true);
  const int64_t Ho = pool ? H / 2 : H;
  auto up = torch::randn({batch, C, Ho, Ho}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::Tensor res;
  if (residual)
    res = torch::gelu(torch::randn({batch, C, Ho, Ho})).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast).requires_grad_(true);
  if (kiln::fused_cpu_applies(x, *bn, kiln::Activation::GELU, pool, res) != fused) {
    state.SkipWithError("the fused operator does not apply as asked");
    return;
  }
  auto step = [&] {
    auto out = kiln::pool_bn_act(x, *bn, kiln::Activation::GELU, 0.0, pool, res);
    out.backward(up);
    x.mutable_grad().reset();
    if (res.defined()) res.mutable_grad().reset();
    bn->bias.mutable_grad().reset();
    bn->weight.mutable_grad().reset();
  };
  step();  // warm-up (allocator)
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(label(fused));
}

// The same blocks in evaluation: forward alone, under no grad, BN with its running statistics.
void pool_bn_gelu_eval(benchmark::State& state, torch::ScalarType dtype) {
  const int64_t batch = 500, C = state.range(0), H = state.range(1);
  const bool pool = state.range(2) != 0, residual = state.range(3) != 0, fused = state.range(4) != 0;
  torch::manual_seed(0);
  kiln::BatchNorm bn(C);
  {
    torch::NoGradGuard ng;
    bn->running_mean.normal_();
    bn->running_var.uniform_(0.5, 2.0);
  }
  bn->fused_cpu = fused;
  bn->eval();
  torch::NoGradGuard ng;
  auto x = torch::randn({batch, C, H, H}).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  const int64_t Ho = pool ? H / 2 : H;
  torch::Tensor res;
  if (residual) res = torch::gelu(torch::randn({batch, C, Ho, Ho})).to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  if (kiln::fused_cpu_applies(x, *bn, kiln::Activation::GELU, pool, res) != fused) {
    state.SkipWithError("the fused operator does not apply as asked");
    return;
  }
  benchmark::DoNotOptimize(kiln::pool_bn_act(x, *bn, kiln::Activation::GELU, 0.0, pool, res));  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(kiln::pool_bn_act(x, *bn, kiln::Activation::GELU, 0.0, pool, res));
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(label(fused));
}

void shapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"C", "H", "pool", "residual", "fused"});
  for (auto [c, h, pool, res] : {std::tuple{64, 31, 1, 0}, {256, 15, 1, 0}, {256, 7, 1, 0}, {64, 15, 0, 0}, {256, 7, 0, 0},
                                 {256, 3, 0, 0}, {128, 15, 0, 1}, {384, 7, 0, 1}, {512, 3, 0, 1}})
    for (int fused : {0, 1}) b->Args({c, h, pool, res, fused});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

// state.range: 0 fused (0/1). The preset's network (its widths, convs per group, whitening fitted
// to the random batch), bf16 weights, channels_last; plain SGD (the update is the same either way).
void airbench_step(benchmark::State& state, const std::string& preset) {
  const int64_t batch = 256;
  const bool fused = state.range(0) != 0;
  torch::manual_seed(0);
  auto x = torch::randn({batch, 3, 32, 32});
  auto y = torch::randint(0, 10, {batch}, torch::kInt64);
  auto model = bench_net(preset, x, fused);
  model->train();
  x = x.to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(1e-4).momentum(0.9).nesterov(true));
  auto step = [&] {
    auto loss = kiln::classification_loss(model->forward(x), y, 0.0, true);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  step();  // warm-up (allocator, oneDNN primitives)
  for (auto _ : state) step();
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(label(fused));
}

// state.range: 0 fused (0/1). One evaluation forward of the preset's network (bf16 weights,
// channels_last, eval mode, no grad), batch 500: what the test pass and each TTA view cost.
void airbench_eval(benchmark::State& state, const std::string& preset) {
  const int64_t batch = 500;
  const bool fused = state.range(0) != 0;
  torch::manual_seed(0);
  auto x = torch::randn({batch, 3, 32, 32});
  auto model = bench_net(preset, x, fused);
  model->eval();
  torch::NoGradGuard ng;
  x = x.to(torch::kBFloat16).contiguous(torch::MemoryFormat::ChannelsLast);
  benchmark::DoNotOptimize(model->forward(x));  // warm-up (allocator, oneDNN primitives)
  for (auto _ : state) benchmark::DoNotOptimize(model->forward(x));
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(label(fused));
}

}  // namespace

BENCHMARK_CAPTURE(airbench_eval, cifar10_94_muon, std::string("cifar10-94-muon"))
    ->ArgName("fused")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(airbench_eval, cifar10_96, std::string("cifar10-96"))
    ->ArgName("fused")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(pool_bn_gelu_eval, bf16, torch::kBFloat16)->Apply(shapes);
BENCHMARK_CAPTURE(pool_bn_gelu_eval, fp32, torch::kFloat32)->Apply(shapes);
BENCHMARK_CAPTURE(airbench_step, cifar10_94_muon, std::string("cifar10-94-muon"))
    ->ArgName("fused")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(airbench_step, cifar10_96, std::string("cifar10-96"))
    ->ArgName("fused")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(pool_bn_gelu, bf16, torch::kBFloat16)->Apply(shapes);
BENCHMARK_CAPTURE(pool_bn_gelu, fp32, torch::kFloat32)->Apply(shapes);
int main(int argc, char** argv) {
  kiln::set_host_memory(kiln::HostMemory::Retain);  // as `kiln train` and `kiln bench` run (--host-memory retain)
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
