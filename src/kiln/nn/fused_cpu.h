// The airbench block's "2x2 max-pool -> BatchNorm -> GELU", "BatchNorm -> GELU" and, closing a
// 3-conv group, "BatchNorm -> + residual -> GELU" as one CPU operator each, where LibTorch runs
// three and writes each result to memory: on an AMX Xeon these operators took ~22% of a
// cifar10-94-muon step, the convolutions ~52% (docs/perf.md). In training it is an autograd
// operator (forward and backward); in evaluation, where nothing needs a gradient (the test pass,
// its TTA, a teacher's pseudo-labels), one forward pass over the input with BN's running
// statistics, the pooled tensor never written. train.fused_cpu switches it
// (BatchNormImpl::fused_cpu); tests/test_fused_cpu.cpp holds it to the plain operators.
//
// Definitions, as LibTorch's operators (CPU; BN in training mode, and in evaluation mode with
// mean and var the running statistics, nothing updated):
//   pool:  y = max over each 2x2 window, stride 2, floor (odd last row and column dropped); the
//          first maximum in the window's row-major order is taken, a NaN wins (max_pool2d's rule),
//          and its gradient goes to that one element;
//   BN:    t = (y - mean) / sqrt(var + eps) * weight + bias over the batch's statistics (biased var),
//          running = (1 - momentum) * running + momentum * batch (unbiased var);
//   add:   t + residual, where there is one (same shape and dtype; its gradient is GELU's);
//   GELU:  z = t * Phi(t) = t / 2 * erfc(-t / sqrt 2) (the exact one, torch.nn.GELU's default).
// Inside: statistics are summed in double (each row in float); t (and t + residual) is not rounded
// to bf16 before the GELU; GELU's gradient is (as on the plain path) rounded to the activations'
// dtype before BN's backward, and BN's gradient before the pool's. Phi comes from Abramowitz &
// Stegun 7.1.26 (the fit ATen's vectorised erf uses; absolute error < 1.5e-7) and one exponential
// (a degree-6 polynomial after range reduction), shared with GELU's gradient. The kernels are plain
// loops that the compiler vectorises, built for AVX-512, AVX2 and the baseline and chosen by ATen's
// own CPU capability (ATEN_CPU_CAPABILITY lowers both alike); they split rows over LibTorch's
// threads (at::parallel_for; one thread when built without OpenMP, e.g. by clang), each thread's
// sums in its own slot, so the result depends on the thread count only (as LibTorch's own kernels).
// Saved for backward: the block's input, the pooled tensor and the residual (the plain path keeps
// the first two, the pool's int64 indices, BN's output and GELU's input; the residual is the
// group's earlier activation, which the next conv keeps anyway).
#pragma once
#include <torch/torch.h>

#include <string>

#include "kiln/nn/layers.h"

namespace kiln {

// act(bn(pool ? max_pool2d(x, 2) : x) [+ residual]): the fused GPU operator when it applies
// (kiln/nn/fused_gpu.h, fused_gpu_applies), else the fused CPU one when it applies
// (fused_cpu_applies), else LibTorch's operators.
torch::Tensor pool_bn_act(const torch::Tensor& x, BatchNormImpl& bn, Activation act, double celu_alpha, bool pool,
                          const torch::Tensor& residual = {});

// What both fused operators (this one and kiln/nn/fused_gpu.h) need of a block: GELU; bn training
// with its own batch's statistics (no ghost splits, no sync group; more than one value per
// channel), or bn evaluating with nothing needing a gradient (grad mode off, or neither x, the
// residual nor BN's parameters requiring one); a defined, non-empty 4-D x in channels_last memory;
// fp32 BN parameters and statistics on x's device; a residual, where given, of the output's shape
// and x's dtype, on x's device in channels_last memory.
bool fusable_block(const torch::Tensor& x, const BatchNormImpl& bn, Activation act, bool pool,
                   const torch::Tensor& residual = {});

// Whether pool_bn_act fuses on the CPU for this input: bn.fused_cpu set, a float or bf16 CPU
// tensor, and fusable_block.
bool fused_cpu_applies(const torch::Tensor& x, const BatchNormImpl& bn, Activation act, bool pool,
                       const torch::Tensor& residual = {});

// Sets BatchNormImpl::fused_cpu on every BatchNorm in `model` (train.fused_cpu).
void set_fused_cpu(torch::nn::Module& model, bool on);

// The instruction set the fused kernels run with here: "avx512", "avx2" or "baseline" (with
// " (one thread: built without OpenMP)" where so built).
std::string fused_cpu_isa();

}  // namespace kiln
