#include "kiln/core/peak.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace kiln {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::function<void()> device_sync(const torch::Device& d) {
  return [d] { (void)torch::zeros({1}, torch::TensorOptions().device(d)).cpu(); };
}

}  // namespace

PeakMeasurement measure_peak(size_t shapes, const std::function<PeakProbe(size_t)>& make, const std::function<void()>& sync,
                             int reps, double slow_call_s) {
  TORCH_CHECK(shapes > 0 && reps > 0, "measure_peak: no sizes or no repetitions");
  PeakMeasurement m;
  PeakProbe probe = make(0);
  probe.call();  // the device's own warm-up (CUDA's lazy loading, cuBLAS's handle), not timed
  for (size_t i = 0; i < shapes; ++i) {
    if (i > 0) probe = make(i);
    sync();
    const auto t0 = std::chrono::steady_clock::now();
    probe.call();
    sync();
    m.size_index = i;
    if (seconds_since(t0) > slow_call_s) {
      reps = 1;
      break;
    }
  }
  for (int trial = 0; trial < 3; ++trial) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; ++r) probe.call();
    sync();
    m.peak.tflops = std::max(m.peak.tflops, probe.flops * reps / seconds_since(t0) / 1e12);
    m.timed_calls += reps;
  }
  m.peak.shape = probe.shape;
  return m;
}

Peak measure_matmul_peak(const torch::Device& d, torch::ScalarType dtype) {
  torch::NoGradGuard ng;
  // Large enough that the product runs at the library's full rate on each device (on 2 CPU
  // threads a 2048^2 product takes ~0.08 s in fp32, ~0.03 s in bf16 with AMX).
  const std::vector<int64_t> sides = d.is_cuda() ? std::vector<int64_t>{8192} : std::vector<int64_t>{256, 512, 1024, 2048};
  auto opts = torch::TensorOptions().device(d).dtype(dtype);
  torch::Tensor a, b, c;
  auto make = [&](size_t i) {
    const int64_t n = sides[i];
    a = torch::randn({n, n}, opts), b = torch::randn({n, n}, opts);
    const std::string s = std::to_string(n);
    return PeakProbe{[&] { c = a.mm(b); }, 2.0 * n * n * n, s + " x " + s + " x " + s};
  };
  return measure_peak(sides.size(), make, device_sync(d), d.is_cuda() ? 20 : 4).peak;
}

Peak measure_conv_peak(const torch::Device& d, torch::ScalarType dtype, bool channels_last) {
  torch::NoGradGuard ng;
  const int64_t c = 256, hw = 16, k = 3;
  const std::vector<int64_t> batches = d.is_cuda() ? std::vector<int64_t>{500} : std::vector<int64_t>{8, 16, 32, 64, 125, 250, 500};
  auto opts = torch::TensorOptions().device(d).dtype(dtype);
  torch::Tensor x, w, y;
  auto make = [&](size_t i) {
    const int64_t n = batches[i];
    x = torch::randn({n, c, hw, hw}, opts), w = torch::randn({c, c, k, k}, opts) * 0.02;
    if (channels_last) {
      x = x.contiguous(torch::MemoryFormat::ChannelsLast);
      w = w.contiguous(torch::MemoryFormat::ChannelsLast);
    }
    return PeakProbe{[&] { y = torch::conv2d(x, w, {}, /*stride=*/1, /*padding=*/1); }, 2.0 * n * c * c * k * k * hw * hw,
                     std::to_string(n) + " x 256 x 16 x 16 -> 256, 3x3"};
  };
  return measure_peak(batches.size(), make, device_sync(d), d.is_cuda() ? 20 : 1).peak;
}

const char* peak_yardstick(const Peak& matmul, const Peak& conv) {
  return matmul.tflops > 0 && matmul.tflops < conv.tflops / 4 ? "convolution" : "matrix product";
}

}  // namespace kiln
