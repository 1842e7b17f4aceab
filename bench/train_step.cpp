// Throughput of one ResNet-9 training step (forward, loss, backward, SGD update) on
// random data already on the device: what the training loop's inner step costs, without
// data loading. Items/s = images per second. Run: build/bench/kiln_bench [--device cuda]
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstring>

#include "kiln/core/config.h"
#include "kiln/core/device.h"
#include "kiln/nn/model.h"
#include "kiln/train/loss.h"

namespace {
torch::Device g_device(torch::kCPU);

void train_step(benchmark::State& state, std::string widths, torch::ScalarType dtype) {
  const int64_t batch = state.range(0);
  kiln::Config cfg;
  cfg.set("model.widths", widths);
  torch::manual_seed(0);
  auto model = kiln::make_model(cfg, 3, 10);
  model->to(g_device);
  kiln::set_precision(*model, dtype);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(1e-3).momentum(0.9).nesterov(true).weight_decay(0.256));
  auto x = torch::randn({batch, 3, 32, 32}, torch::TensorOptions().device(g_device)).to(dtype);
  auto y = torch::randint(0, 10, {batch}, torch::TensorOptions().dtype(torch::kInt64).device(g_device));
  auto step = [&] {
    auto loss = kiln::classification_loss(model->forward(x), y, 0.0, true);
    opt.zero_grad();
    loss.backward();
    opt.step();
  };
  step();  // warm-up (allocator, kernel selection)
  if (g_device.is_cuda()) torch::cuda::synchronize();
  for (auto _ : state) {
    step();
    if (g_device.is_cuda()) torch::cuda::synchronize();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(kiln::device_name(g_device) + ", " + std::to_string(at::get_num_threads()) + " threads");
}
}  // namespace

BENCHMARK_CAPTURE(train_step, resnet9_full_fp32, std::string("[64, 128, 256, 512]"), torch::kFloat32)
    ->Arg(512)->Iterations(3)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, resnet9_quarter_fp32, std::string("[16, 32, 64, 128]"), torch::kFloat32)
    ->Arg(512)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(train_step, resnet9_quarter_bf16, std::string("[16, 32, 64, 128]"), torch::kBFloat16)
    ->Arg(512)->Iterations(5)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i)
    if (std::strncmp(argv[i], "--device=", 9) == 0) g_device = kiln::parse_device(argv[i] + 9);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
