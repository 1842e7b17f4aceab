// The airbench block's "2x2 max-pool -> BatchNorm -> GELU", "BatchNorm -> GELU" and "BatchNorm ->
// + residual -> GELU" as one operator on CUDA (train.fused_cuda), with the definitions of the CPU's
// fused operator (kiln/nn/fused_cpu.h): the same choice in each pooling window, BN over the batch
// with its running statistics moved, the exact GELU (here CUDA's erf, as LibTorch's CUDA GELU).
// Why: the H200's profile of cifar10-94-muon (docs/perf.md, "GPU") put 29% of the device's time in
// LibTorch's max_pool2d kernels, whose NHWC backward reads int64 indices (4x the fp16 values they
// index); with BN and GELU, by a count of each kernel's reads and writes (not a measurement), the
// plain path moves about 33 times the pooled tensor's bytes a step and this operator about 20 times
// (docs/perf.md, "GPU").
//
// In training: forward, one pass over x that pools (y stored) and sums each channel's statistics in
// chunks, a small kernel that finishes them (and moves the running statistics), one pass that writes
// z = GELU(BN(y) [+ residual]); backward, one pass that writes GELU's gradient g and sums g and
// g (y - mean) in chunks, a small finishing kernel, one pass that writes dx, finding each window's
// choice again from x (no indices kept). Saved for backward: x, y, four per-channel vectors and the
// residual. In evaluation (nothing needs a gradient): one pass, the pooled value never stored. No
// launch waits for the device or reads a value back (train.sync_check holds); the sums' order is
// fixed (no atomics), so by construction the operator's results repeat to the bit on one GPU.
//
// NOT YET RUN ON A GPU (2026-12-05): the CUDA kernels (kiln/cuda/fused_kernels.cu) compile, and the
// CPU's tests run this operator end to end with their launches emulated on the host
// (kiln/nn/fused_host.cpp, the same per-thread bodies) and with the kernels' own source run on the
// host thread by thread (kiln/nn/fused_cuda_on_host.cpp); train.fused_cuda is off by default until the
// GPU window's campaign has checked and timed it (docs/gpu.md).
#pragma once
#include <torch/torch.h>

#include "kiln/nn/layers.h"

namespace kiln {

// Whether pool_bn_act takes this operator: bn.fused_cuda set; x on CUDA in a build with the
// kernels, on a GPU they were compiled for (compute capability 7.5 or later: sm_75, sm_80 and
// sm_90 code, and Hopper's PTX for newer GPUs); fp32, fp16 or bf16; and the conditions the CPU's
// fused operator shares (fusable_block).
bool fused_gpu_applies(const torch::Tensor& x, const BatchNormImpl& bn, Activation act, bool pool,
                       const torch::Tensor& residual = {});

// GELU(bn(pool ? max_pool2d(x, 2) : x) [+ residual]) by the fused operator: training (an autograd
// operator) or evaluation as bn is. On CUDA tensors the kernels; on CPU tensors the host's stand-in
// for them that set_fused_gpu_on_cpu chose (slow: for the tests). The caller has checked fusable_block.
torch::Tensor fused_gpu(const torch::Tensor& x, BatchNormImpl& bn, bool pool, const torch::Tensor& residual = {});

// Which launches fused_gpu uses for tensors on `device`: "cuda", on the CPU "host emulation" or
// "CUDA source on the host" (set_fused_gpu_on_cpu), or "none" (CUDA without the kernels in this build).
const char* fused_gpu_backend(const torch::Device& device);

// For the tests and `kiln fused-check --device cpu`: the GPU's operator on CPU tensors, its launches
// run by the host's emulation (kItems: kiln/nn/fused_host.cpp, every work item in turn) or by the
// CUDA kernels' own source compiled for the host (kCudaSource: kiln/nn/fused_cuda_on_host.cpp, thread
// by thread). While not kOff, fused_gpu_applies also takes CPU tensors (with the same conditions), so
// that a whole training runs on the CPU through the GPU's operator. kOff by default; nothing but the
// tests and the check turns it on. Global, for every thread.
enum class FusedGpuOnCpu { kOff, kItems, kCudaSource };
void set_fused_gpu_on_cpu(FusedGpuOnCpu how);
FusedGpuOnCpu fused_gpu_on_cpu();

// Sets BatchNormImpl::fused_cuda on every BatchNorm in `model` (train.fused_cuda).
void set_fused_cuda(torch::nn::Module& model, bool on);

}  // namespace kiln
