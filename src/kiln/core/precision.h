// What a run computes in and what it keeps its weights in (train.precision,
// train.master_weights), and the guard that makes a model kept in fp32 compute in bf16.
//
//   fp32   everything fp32.
//   bf16   the data, the convolutions and matrix products in bf16 (LibTorch's autocast, its
//          CPU and CUDA op lists), the weights, their gradients and the optimiser state in
//          fp32: master weights, so small updates are not lost to bf16's 8-bit mantissa.
//          train.master_weights = false casts the whole model to bf16 instead (BN stays fp32),
//          as kiln did before; the update then rounds to bf16 every step.
//   fp16   the whole model cast to fp16 (BN fp32), the optimiser stepping fp16 weights:
//          airbench's recipe as its code runs it (model.half(), no loss scaling).
//          train.master_weights does not apply (fp32 masters with fp16 compute would want a
//          loss scale, which kiln does not have).
//   auto   fp16 on CUDA (the peers' choice); on the CPU bf16 where the CPU computes it natively
//          (AMX or AVX512-BF16 in /proc/cpuinfo's flags), else fp32.
// fp16 (auto) ran on an H200 on 2026-12-04, eagerly and in the CUDA graph. NOT RUN ON CUDA:
// bf16 with master weights on a GPU (a switch there; auto picks fp16), including
// autocast inside a captured CUDA graph (train.cuda_graph), has not run.
// The CPU paths are tested (tests/test_precision.cpp).
#pragma once
#include <torch/torch.h>

#include <string>

namespace kiln {

struct Precision {
  torch::ScalarType compute = torch::kFloat32;  // the data and the network's arithmetic
  torch::ScalarType weights = torch::kFloat32;  // parameters, gradients, optimiser state
  std::string reason;                           // how it was chosen ("auto: the CPU has AMX", ...)
  bool master_weights() const { return compute != weights; }
  // "bf16 compute, fp32 master weights (auto: the CPU has AVX512-BF16)"
  std::string describe() const;
};

// Resolves train.precision and train.master_weights for a device.
Precision resolve_precision(const std::string& name, bool master_weights, const torch::Device& device);

// The CPU's native bf16 arithmetic, from /proc/cpuinfo's flags: "AMX" (amx_bf16),
// "AVX512-BF16" (avx512_bf16), or "" (none: bf16 would be emulated, slower than fp32).
// `cpuinfo`: the file's text (empty: read /proc/cpuinfo).
std::string native_bf16(const std::string& cpuinfo = "");

// While alive: when x is of a narrower floating type than the model's weights (a bf16 batch,
// fp32 master weights), LibTorch's autocast to x's type on x's device type, with its weight
// cache off (the weights change at every step, and a cached copy would be stale); otherwise
// nothing. Restores the previous autocast state when it ends. Thread-local, as autocast is.
class ComputeGuard {
 public:
  ComputeGuard(const torch::nn::Module& model, const torch::Tensor& x);
  ~ComputeGuard();
  ComputeGuard(const ComputeGuard&) = delete;
  ComputeGuard& operator=(const ComputeGuard&) = delete;
  bool active() const { return active_; }

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false, was_cache_ = true;
  torch::ScalarType was_dtype_ = torch::kFloat32;
};

}  // namespace kiln
