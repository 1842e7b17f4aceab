// The machine a test log comes from: every test process prints the CPU and the kernel families
// LibTorch picked on it, so a failure report says where it happened (issue #27).
#include <gtest/gtest.h>

#include <iostream>

#include "kiln/core/cpu_kernels.h"

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
}
