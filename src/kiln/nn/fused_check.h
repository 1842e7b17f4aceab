// `kiln fused-check`: the fused GPU operator (kiln/nn/fused_gpu.h) held to LibTorch's operators on
// the device it runs on, so that the GPU window can check CUDA's kernels before it times them
// (docs/gpu.md, step a). On the CPU the same check runs the host's emulation of the kernels (the
// rehearsal, and a CTest).
//
// Each case runs GELU(BN(pool(x)) [+ residual]) three ways on the device: LibTorch's operators in
// fp64 (the reference, on the same rounded inputs), LibTorch's operators in the case's dtype, and
// the fused operator in that dtype. In training it compares the output, the input's, weight's,
// bias's and residual's gradients and the running statistics; in evaluation the output. The fused
// operator passes where each of its errors is within the bound of fused_allowed_error.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace kiln {

// How far a fused operator may be from the fp64 reference, against LibTorch's own operators in the
// same dtype: ratio x LibTorch's error, or floor_ulps ulps (eps = the dtype's ulp at 1) of the
// tensor's magnitude, whichever is larger; for a sum over the batch of values rounded to the dtype
// (the weight's and bias's gradients), also `noise`, 4 standard deviations of the roundings' walk.
//   fp32:       ratio 2, 64 ulps (the fused CPU operator's Phi fit, the sums' order);
//   bf16, fp16: ratio 1.25 (rounding boundaries falling the other way), 1 ulp (the result's own
//               rounding and half an ulp of the rounded value it comes from: one of 100 seeds of
//               the CPU tests' bf16 8x8 pool case had the input gradient off by 0.026 against
//               LibTorch's 0.021, at a magnitude of 6.7 whose ulp is 0.031; half an ulp failed it).
// A wrong formula or a misrouted gradient is off by the magnitude itself.
struct FusedBound {
  double eps, ratio, floor_ulps;
};
FusedBound fused_bound(torch::ScalarType dtype);
// 4 sqrt(M / 12) eps rms(upstream): M values, each rounded by up to half an ulp of the upstream
// gradient's size (0 in fp32, where the tests' sums are not rounded).
double fused_sum_noise(torch::ScalarType dtype, int64_t M, double upstream_rms);
double fused_allowed_error(const FusedBound& b, double plain_error, double magnitude, double noise = 0);

struct FusedCheck {
  std::string what;   // e.g. "train fp16 pool N1024 C64 32x32"
  std::string worst;  // the compared tensor nearest its bound
  double error = 0, plain_error = 0, allowed = 0;  // of `worst`
  bool ok = false;
  // forward + backward in training, the forward in evaluation, median ms of 20 after 3 warm-ups
  // (timed: CUDA only; -1 where not timed)
  double fused_ms = -1, plain_ms = -1;
  // the bytes the fused operator's kernels load and store in what fused_ms times, by the count of
  // fused::traffic (not measured)
  double fused_bytes = 0;
};

// GB/s of a device-to-device copy of 256 MiB (bytes read + bytes written), the median of 20 after 3
// warm-ups, the device synchronised around each: the bandwidth the fused kernels' counted bytes
// are set against (CUDA; on the CPU the same copy in memory).
double device_copy_gbps(const torch::Device& device);

// The cases: the airbench presets' blocks at `batch` in fp16 (the dtype `train.precision = auto`
// picks on CUDA; bf16 on the CPU, whose LibTorch has every operator in it), in training and in
// evaluation, with and without the pool, a residual block; then small odd-sized blocks in fp32,
// bf16 and fp16 with residuals. time: time each training and evaluation case (CUDA).
std::vector<FusedCheck> check_fused_gpu(const torch::Device& device, int64_t batch, bool time, uint64_t seed = 1);

}  // namespace kiln
