// The fused operator's CUDA kernels (kiln/cuda/fused_kernels.cu), this very source, compiled as
// host C++ with kiln/core/cuda_on_host.h in place of CUDA's headers: fused::cuda_source_on_host()
// runs every launch on the CPU, thread by thread (kiln/nn/fused_launch.h). Compiled alone (the
// header's macros and names stay out of other files).
#define KILN_CUDA_ON_HOST
#include "kiln/cuda/fused_kernels.cu"
