// A device's measured peaks, the yardsticks of `kiln bench`'s "fraction of peak": the rate of
// a large matrix product and of a wide 3x3 convolution, in the run's own precision.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

namespace kiln {

struct Peak {
  double tflops = 0;
  std::string shape;  // what was timed: "2048 x 2048 x 2048", "500 x 256 x 16 x 16 -> 256, 3x3"
};

// The measured matrix-product peak in TFLOP/s, in the run's own precision (`dtype`: a bf16 run
// on a CPU with AMX is measured against bf16's peak, not fp32's): square products of side 8192 on
// CUDA, up to 2048 on the CPU (measure_peak's growth), timed between device synchronisations.
Peak measure_matmul_peak(const torch::Device& d, torch::ScalarType dtype);
// The measured convolution peak in TFLOP/s, in the run's precision and memory layout: the
// forward of a 256 -> 256 3x3 convolution (padding 1) on a batch of 16 x 16 maps, 500 of them on
// CUDA and up to 500 on the CPU (2 x 500 x 256 x 256 x 9 x 16 x 16 = 151 GFLOP a call), the shape
// of a wide network's middle layers. CNN training is mostly convolutions, which run below the
// matrix-product rate.
Peak measure_conv_peak(const torch::Device& d, torch::ScalarType dtype, bool channels_last);

// Which peak a run's rate is best read against: "matrix product", unless products run at under a
// quarter of the convolutions' rate in that precision on that device (no fast product kernel for
// it: fp16 on a CPU without fp16 arithmetic, an AMD EPYC at ~0.001 against ~0.035 TFLOP/s), then
// "convolution", where a run's share of the product peak would pass 100%. (In fp32 the product's
// peak reads 0.7-0.9x the convolution's there: noise and kernels, no gap; hence a quarter.)
const char* peak_yardstick(const Peak& matmul, const Peak& conv);

// How both are measured. `shapes` sizes are tried smallest first, the last the full one; `make(i)`
// sets up size i and returns one call of it and its FLOPs. The first size is called once untimed
// (CUDA's lazy loading, cuBLAS's handle); then each size is called once (its warm-up: oneDNN's
// primitive, cuDNN's algorithm), synchronised and timed; a call slower than
// `slow_call_s` ends the growth there, as does the last size. At the size reached, the best
// rate of three trials of `reps` calls (of one call where the growth stopped early), each
// trial bracketed by `sync`. The growth is for slow paths: fp16 products on a CPU without fp16
// arithmetic run at 1-2 GFLOP/s (an AMD EPYC, lscpu family 25 model 17), where a 2048^3 product
// takes ~20 s and the full measurement took minutes; a fast path reaches the full size and is
// timed as before.
struct PeakProbe {
  std::function<void()> call;
  double flops = 0;
  std::string shape;
};
struct PeakMeasurement {
  Peak peak;
  size_t size_index = 0;  // the size measured at
  int timed_calls = 0;    // calls in the three trials
};
PeakMeasurement measure_peak(size_t shapes, const std::function<PeakProbe(size_t)>& make, const std::function<void()>& sync,
                             int reps, double slow_call_s = 1.0);

}  // namespace kiln
