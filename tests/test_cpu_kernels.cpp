// The machine a test log comes from: every test process prints the CPU and the kernel families
// LibTorch picked on it, so a failure report says where it happened (issue #27).
#include <gtest/gtest.h>

#include <iostream>

#include "kiln/core/cpu_kernels.h"
#include "kiln/core/device.h"
#include "kiln/core/peak.h"
#include "kiln/core/precision.h"

#include <ATen/record_function.h>
#include <torch/torch.h>

namespace {

class PrintCpuKernels : public ::testing::Environment {
 public:
  void SetUp() override { std::cout << "[ machine  ] " << kiln::describe(kiln::cpu_kernels()) << std::flush; }
};
::testing::Environment* const kPrint = ::testing::AddGlobalTestEnvironment(new PrintCpuKernels);

}  // namespace

// Each library names its instruction set (on x86, where LibTorch's wheel carries oneDNN and
// MKL), and asking twice gives the same answer without printing anything.
TEST(CpuKernels, EachLibraryNamesItsInstructionSet) {
  const auto& k = kiln::cpu_kernels();
  EXPECT_FALSE(k.cpu_model.empty());
  EXPECT_NE(k.aten, "unknown");
#if defined(__x86_64__)
  EXPECT_NE(k.onednn, "unknown");
  EXPECT_NE(k.mkl, "unknown");
  EXPECT_NE(k.onednn.find("Intel"), std::string::npos) << k.onednn;  // oneDNN words every x86 ISA "Intel AVX..." or "Intel SSE..."
#endif
  testing::internal::CaptureStdout();
  const auto& again = kiln::cpu_kernels();
  EXPECT_EQ(testing::internal::GetCapturedStdout(), "");
  EXPECT_EQ(&again, &k);
  EXPECT_NE(kiln::describe(k).find("onednn: " + k.onednn), std::string::npos);
  // the bf16 line scripts read (tests/bench_programs.sh): the feature precision.h reads, or "emulated"
  EXPECT_EQ(k.bf16, kiln::native_bf16());
  EXPECT_NE(kiln::describe(k).find("\nbf16: " + (k.bf16.empty() ? std::string("emulated (") : k.bf16 + "\n")),
            std::string::npos) << kiln::describe(k);
}

// kiln bench's yardstick is the matrix-product peak in the run's own precision: a bf16 run on a
// CPU with AMX is held against bf16's peak (issue #20: measured in fp32 it reported 0.141 TFLOP/s
// where bf16 products run at 0.55, and runs showed 145% of peak). The products it times are
// watched here (LibTorch's RecordFunction) for their dtype.
TEST(CpuKernels, MatmulPeakIsMeasuredInTheRunsPrecision) {
  static std::vector<c10::ScalarType> seen;
  seen.clear();
  auto handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
        if (std::string(fn.name()) == "aten::mm")
          for (const auto& v : fn.inputs())
            if (v.isTensor()) seen.push_back(v.toTensor().scalar_type());
        return nullptr;
      })
          .needsInputs(true)
          .scopes({at::RecordScope::FUNCTION}));
  const double peak = kiln::measure_matmul_peak(torch::Device(torch::kCPU), torch::kBFloat16).tflops;
  at::removeCallback(handle);
  EXPECT_GT(peak, 0);
  ASSERT_FALSE(seen.empty());
  for (auto t : seen) EXPECT_EQ(t, torch::kBFloat16);
}
