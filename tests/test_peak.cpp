// kiln bench's peaks (kiln/core/peak.h): the sizes grow until one is slow or the full one is
// reached; the first call is a warm-up; the trials run at the size reached. Fake probes whose
// calls sleep stand in for fast and slow paths (no bound here depends on this machine's speed:
// a "slow" call sleeps 300 ms against a 100 ms threshold, a "fast" one nothing).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "kiln/core/peak.h"

namespace {

struct FakeDevice {
  std::vector<double> sleep_s;     // how long each size's calls take
  double first_call_extra_s = 0;   // the device's lazy start, on its very first call
  std::vector<int> made, calls;    // per size
  int total_calls = 0, syncs = 0;
  explicit FakeDevice(std::vector<double> s) : sleep_s(std::move(s)), made(sleep_s.size()), calls(sleep_s.size()) {}
  kiln::PeakMeasurement measure(int reps, double slow_s = 0.1) {
    return kiln::measure_peak(
        sleep_s.size(),
        [this](size_t i) {
          ++made[i];
          return kiln::PeakProbe{[this, i] {
                                   const double s = sleep_s[i] + (total_calls++ == 0 ? first_call_extra_s : 0);
                                   ++calls[i];
                                   std::this_thread::sleep_for(std::chrono::duration<double>(std::max(s, 1e-6)));
                                 },
                                 1e9 * (i + 1), "size " + std::to_string(i)};
        },
        [this] { ++syncs; }, reps, slow_s);
  }
};

}  // namespace

TEST(Peak, AFastPathReachesTheFullSizeWithAllItsRepetitions) {
  FakeDevice dev({0, 0, 0, 0});
  const auto m = dev.measure(4);
  EXPECT_EQ(m.size_index, 3u);
  EXPECT_EQ(m.peak.shape, "size 3");
  EXPECT_EQ(m.timed_calls, 12);  // three trials of four
  EXPECT_EQ(dev.made, (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(dev.calls, (std::vector<int>{2, 1, 1, 13}));  // size 0: the untimed warm-up and its timed call
  EXPECT_GT(m.peak.tflops, 0);
}

TEST(Peak, ASlowSizeEndsTheGrowthAndIsTimedOneCallATrial) {
  FakeDevice dev({0, 0, 0.3, 0});
  const auto m = dev.measure(4);
  EXPECT_EQ(m.size_index, 2u);
  EXPECT_EQ(m.peak.shape, "size 2");
  EXPECT_EQ(m.timed_calls, 3);
  EXPECT_EQ(dev.made, (std::vector<int>{1, 1, 1, 0}));  // the full size is never set up
  EXPECT_EQ(dev.calls, (std::vector<int>{2, 1, 4, 0}));
  // 3 GFLOP a call of at least 0.3 s: at most 0.01 TFLOP/s, and not far below (a sleep overshoots, never undershoots)
  EXPECT_LE(m.peak.tflops, 3e9 / 0.3 / 1e12);
  EXPECT_GT(m.peak.tflops, 3e9 / 3.0 / 1e12);
}

TEST(Peak, TheDevicesFirstCallIsNotTimed) {
  FakeDevice dev({0, 0, 0, 0});
  dev.first_call_extra_s = 0.3;  // CUDA's lazy loading, cuBLAS's handle
  const auto m = dev.measure(4);
  EXPECT_EQ(m.size_index, 3u);
  EXPECT_EQ(m.timed_calls, 12);
}

// The yardstick is the product peak unless products run at under a quarter of the convolutions'
// rate: the fp16 pair measured on the AMD EPYC (bench/results/cpu-peaks-fp16-2026-12-03-epyc.json)
// picks the convolution, its fp32 pair (products 0.77x) and the AMX Xeon's bf16 the product.
TEST(Peak, TheYardstickIsTheConvolutionOnlyWhereProductsRunFarBelowIt) {
  using kiln::Peak;
  EXPECT_STREQ(kiln::peak_yardstick(Peak{0.00112, ""}, Peak{0.035, ""}), "convolution");
  EXPECT_STREQ(kiln::peak_yardstick(Peak{0.173, ""}, Peak{0.225, ""}), "matrix product");
  EXPECT_STREQ(kiln::peak_yardstick(Peak{2.5, ""}, Peak{0.9, ""}), "matrix product");
  EXPECT_STREQ(kiln::peak_yardstick(Peak{0.25, ""}, Peak{1.0, ""}), "matrix product");  // exactly a quarter
  EXPECT_STREQ(kiln::peak_yardstick(Peak{0.2499, ""}, Peak{1.0, ""}), "convolution");
  EXPECT_STREQ(kiln::peak_yardstick(Peak{0, ""}, Peak{1.0, ""}), "matrix product");  // unmeasured: no claim
}

TEST(Peak, TheRealProbesNameWhatTheyTimed) {
  const torch::Device cpu(torch::kCPU);
  const auto mm = kiln::measure_matmul_peak(cpu, torch::kFloat32);
  EXPECT_GT(mm.tflops, 0);
  EXPECT_TRUE(mm.shape == "2048 x 2048 x 2048" || mm.shape == "1024 x 1024 x 1024" || mm.shape == "512 x 512 x 512" ||
              mm.shape == "256 x 256 x 256")
      << mm.shape;
  const auto conv = kiln::measure_conv_peak(cpu, torch::kFloat32, true);
  EXPECT_GT(conv.tflops, 0);
  EXPECT_NE(conv.shape.find(" x 256 x 16 x 16 -> 256, 3x3"), std::string::npos) << conv.shape;
}
