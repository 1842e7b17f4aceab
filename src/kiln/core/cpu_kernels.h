// Which CPU a computation ran on and which kernel families LibTorch chose for it. The same
// program gives different low bits on different CPUs: ATen's vectorised kernels, oneDNN
// (convolutions) and MKL (fp32 matrix products) each pick an instruction set at run time
// (AVX2, AVX-512, AMX ...), and each can be held lower by an environment variable, which is
// how CI runs the numerical tests on "another CPU" (tests/other_isa.sh, issue #27).
#pragma once
#include <string>

namespace kiln {

struct CpuKernels {
  std::string cpu_model;  // /proc/cpuinfo's "model name"
  std::string aten;       // ATen's CPU capability (DEFAULT, AVX2, AVX512); ATEN_CPU_CAPABILITY lowers it
  std::string onednn;     // the ISA oneDNN dispatches to, as its verbose mode states it; ONEDNN_MAX_CPU_ISA lowers it
  std::string mkl;        // the instruction set MKL dispatches to, as its verbose mode states it; MKL_ENABLE_INSTRUCTIONS lowers it
  std::string bf16;       // the CPU's bf16 arithmetic: "AMX", "AVX512-BF16", or "" (emulated in fp32; precision.h's native_bf16)
};

// Asks each library (a small fp32 convolution and matrix product run with oneDNN's and MKL's
// verbose modes on, their standard output captured). Computed once per process; "unknown"
// where a library did not say.
const CpuKernels& cpu_kernels();

// One line per field, "cpu: ...", "aten: ...", "onednn: ...", "mkl: ...", "bf16: ..." (the
// feature, or "emulated" where the CPU has neither: scripts read this line, tests/bench_programs.sh).
std::string describe(const CpuKernels& k);

}  // namespace kiln
