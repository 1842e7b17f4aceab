// CUDA's kernel language on the host (kiln/core/cuda_on_host.h): kernels written as for nvcc, run on
// the CPU thread by thread. Every thread of the grid runs once with its own indices; shared memory
// is the block's; a barrier holds every thread of the block; the schedules in order and reversed
// tell a racy kernel from a correct one; the launch's limits and the divergent barrier are reported;
// fp16 and bf16 round as c10's (CUDA's) conversions do. Compiled alone (tests/CMakeLists.txt): the
// header defines CUDA's keywords as macros.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "kiln/core/cuda_on_host.h"

namespace {

// Each thread writes its global linear index and its block's and thread's coordinates.
__global__ void coordinates_kernel(int* seen, unsigned* coords) {
  const unsigned block = (blockIdx.z * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
  const unsigned per_block = blockDim.x * blockDim.y * blockDim.z;
  const unsigned t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const unsigned i = block * per_block + t;
  seen[i] += 1;
  unsigned* c = coords + 6 * i;
  c[0] = blockIdx.x, c[1] = blockIdx.y, c[2] = blockIdx.z, c[3] = threadIdx.x, c[4] = threadIdx.y, c[5] = threadIdx.z;
}

// A block's sum by a tree in shared memory (blockDim.x a power of two, at most 256).
__global__ void block_sum_kernel(const double* in, double* out, int n) {
  __shared__ double partial[256];
  const int t = threadIdx.x;
  const int i = blockIdx.x * blockDim.x + t;
  partial[t] = i < n ? in[i] : 0.0;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < static_cast<int>(half)) partial[t] += partial[t + half];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = partial[0];
}

// Each thread reads its neighbour's value from shared memory, with or without a barrier between
// the writes and the reads (without: a data race).
template <bool kBarrier>
__global__ void neighbour_kernel(int* out) {
  __shared__ int value[64];
  const int t = threadIdx.x, n = blockDim.x;
  value[t] = 1000 * blockIdx.x + t;
  if (kBarrier) __syncthreads();
  out[blockIdx.x * n + t] = value[(t + 1) % n];
}

// Threads of odd index return before the barrier the others wait at.
__global__ void divergent_kernel(int* out) {
  if (threadIdx.x % 2 == 1) return;
  __syncthreads();
  out[threadIdx.x] = 1;
}

// Only the second block reaches a barrier.
__global__ void barrier_after_the_first_block_kernel(int* out) {
  if (blockIdx.x == 1) __syncthreads();
  out[blockIdx.x] = 1;
}

__global__ void throwing_kernel(int* out) {
  if (blockIdx.x == 1 && threadIdx.x == 3) throw std::runtime_error("thread (3, 1) fails");
  out[blockIdx.x * blockDim.x + threadIdx.x] = 1;
}

__global__ void nested_kernel(int* out) { KILN_CUDA_LAUNCH(coordinates_kernel, 1, 1, nullptr)(out, nullptr); }

struct ScheduleGuard {
  explicit ScheduleGuard(Schedule s) : before(schedule()) { set_schedule(s); }
  ~ScheduleGuard() { set_schedule(before); }
  Schedule before;
};

}  // namespace

TEST(CudaOnHost, EveryThreadOfTheGridRunsOnceWithItsIndices) {
  for (Schedule order : {Schedule::kInOrder, Schedule::kReversed}) {
    const ScheduleGuard guard(order);
    const dim3 grid(3, 2, 2), block(4, 3, 2);
    const unsigned n = 12 * 24;
    std::vector<int> seen(n, 0);
    std::vector<unsigned> coords(6 * n, 999);
    KILN_CUDA_LAUNCH(coordinates_kernel, grid, block, nullptr)(seen.data(), coords.data());
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 1; }));
    for (unsigned i = 0; i < n; ++i) {
      const unsigned b = i / 24, t = i % 24;
      const unsigned want[6] = {b % 3, b / 3 % 2, b / 6, t % 4, t / 4 % 3, t / 12};
      for (int k = 0; k < 6; ++k) ASSERT_EQ(coords[6 * i + k], want[k]) << "thread " << i << ", coordinate " << k;
    }
  }
}

TEST(CudaOnHost, SharedMemoryAndBarriersGiveABlocksTreeSum) {
  const int n = 1000;
  std::vector<double> in(n);
  std::iota(in.begin(), in.end(), 1.0);
  for (Schedule order : {Schedule::kInOrder, Schedule::kReversed}) {
    const ScheduleGuard guard(order);
    std::vector<double> out(4, -1);
    KILN_CUDA_LAUNCH(block_sum_kernel, 4, 256, nullptr)(in.data(), out.data(), n);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess);
    for (int b = 0; b < 4; ++b) {
      double want = 0;
      for (int i = 256 * b; i < std::min(n, 256 * (b + 1)); ++i) want += in[i];
      EXPECT_EQ(out[b], want) << "block " << b;
    }
  }
}

TEST(CudaOnHost, TheTwoSchedulesTellARaceFromABarrier) {
  auto run = [](bool barrier, Schedule order) {
    const ScheduleGuard guard(order);
    std::vector<int> out(3 * 64, -1);
    if (barrier)
      KILN_CUDA_LAUNCH(neighbour_kernel<true>, 3, 64, nullptr)(out.data());
    else
      KILN_CUDA_LAUNCH(neighbour_kernel<false>, 3, 64, nullptr)(out.data());
    return out;
  };
  const auto fenced = run(true, Schedule::kInOrder);
  EXPECT_EQ(fenced, run(true, Schedule::kReversed));
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 64; ++t) ASSERT_EQ(fenced[b * 64 + t], 1000 * b + (t + 1) % 64);
  EXPECT_NE(run(false, Schedule::kInOrder), run(false, Schedule::kReversed))
      << "without the barrier the result must depend on the schedule";
}

TEST(CudaOnHost, ADivergentBarrierIsAnError) {
  std::vector<int> out(32, 0);
  try {
    KILN_CUDA_LAUNCH(divergent_kernel, 1, 32, nullptr)(out.data());
    FAIL() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_NE(std::string(e.what()).find("divergent_kernel"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("16 of its 32 threads wait at __syncthreads while 16 have returned"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(KILN_CUDA_LAUNCH(barrier_after_the_first_block_kernel, 2, 8, nullptr)(out.data()), std::logic_error);
  EXPECT_THROW(__syncthreads(), std::logic_error) << "outside a kernel";
  EXPECT_THROW(KILN_CUDA_LAUNCH(nested_kernel, 1, 1, nullptr)(out.data()), std::logic_error);
  // and the next launch runs as usual
  std::vector<int> seen(2, 0);
  std::vector<unsigned> coords(12);
  KILN_CUDA_LAUNCH(coordinates_kernel, 2, 1, nullptr)(seen.data(), coords.data());
  EXPECT_EQ(seen, std::vector<int>({1, 1}));
}

TEST(CudaOnHost, AThreadsExceptionReachesTheLauncher) {
  std::vector<int> out(16, 0);
  EXPECT_THROW(KILN_CUDA_LAUNCH(throwing_kernel, 2, 8, nullptr)(out.data()), std::runtime_error);
  EXPECT_EQ(out[0], 1) << "block 0 ran";
}

TEST(CudaOnHost, AnInvalidConfigurationIsReportedAndNotRun) {
  std::vector<int> seen(2048, 0);
  std::vector<unsigned> coords(6 * 2048);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  for (const auto& [grid, block] : std::vector<std::pair<dim3, dim3>>{{dim3(1), dim3(1025)},
                                                                        {dim3(1), dim3(32, 33)},
                                                                        {dim3(1), dim3(1, 1, 65)},
                                                                        {dim3(0), dim3(32)},
                                                                        {dim3(1, 65536), dim3(1)},
                                                                        {dim3(1), dim3(0)}}) {
    KILN_CUDA_LAUNCH(coordinates_kernel, grid, block, nullptr)(seen.data(), coords.data());
    EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration) << grid.x << "x" << grid.y << ", " << block.x << "x"
                                                                 << block.y << "x" << block.z;
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "read once, the error is reset";
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int v) { return v == 0; })) << "a refused launch ran";
  KILN_CUDA_LAUNCH(coordinates_kernel, 1, dim3(32, 32), nullptr)(seen.data(), coords.data());  // 1,024: allowed
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), 1), 1024);
  EXPECT_STREQ(cudaGetErrorString(cudaErrorInvalidConfiguration), "invalid configuration argument");
}

TEST(CudaOnHost, HalfAndBfloat16RoundToNearestEven) {
  // The conversions are c10's (LibTorch's own fp16 and bf16 on the CPU): the same bits as c10::Half
  // and c10::BFloat16 on a sweep of values.
  std::vector<float> values = {0.0f, -0.0f, 1.0f, 1.0f + 1.0f / 2048, 1.0f + 3.0f / 2048, 65504.0f, 65520.0f, 1e-8f,
                               6e-5f, -3.14159f, 1e30f, -1e30f, 3.0e38f};
  for (int i = 0; i < 2000; ++i) values.push_back(std::ldexp(static_cast<float>(i * 7919 % 4093) - 2046.5f, i % 40 - 30));
  for (float v : values) {
    const __half h = __float2half_rn(v);
    EXPECT_EQ(h.x, c10::Half(v).x) << v;
    EXPECT_EQ(__half2float(h), static_cast<float>(c10::Half(v))) << v;
    const __nv_bfloat16 b = __float2bfloat16_rn(v);
    EXPECT_EQ(b.x, c10::BFloat16(v).x) << v;
    EXPECT_EQ(__bfloat162float(b), static_cast<float>(c10::BFloat16(v))) << v;
  }
  // IEEE's round to nearest even (bits as NumPy's float16 and PyTorch's bfloat16 give them): ties to
  // the even neighbour, in the normal and the subnormal range; overflow to infinity.
  EXPECT_EQ(__float2half_rn(1.0f + 1.0f / 2048).x, 0x3C00);
  EXPECT_EQ(__float2half_rn(1.0f + 3.0f / 2048).x, 0x3C02);
  EXPECT_EQ(__float2half_rn(std::ldexp(1.0f, -25)).x, 0x0000);
  EXPECT_EQ(__float2half_rn(std::ldexp(3.0f, -25)).x, 0x0002);
  EXPECT_EQ(__float2half_rn(65519.0f).x, 0x7BFF);
  EXPECT_EQ(__float2half_rn(65520.0f).x, 0x7C00);
  EXPECT_EQ(__float2half_rn(-0.0f).x, 0x8000);
  EXPECT_EQ(__float2bfloat16_rn(1.0f + 1.0f / 256).x, 0x3F80);
  EXPECT_EQ(__float2bfloat16_rn(1.0f + 3.0f / 256).x, 0x3F82);
  EXPECT_EQ(__float2bfloat16_rn(3.0e38f).x, 0x7F62);
  EXPECT_EQ(__half2float(__half{0x3C01}), 1.0f + 1.0f / 1024);
  EXPECT_EQ(__bfloat162float(__nv_bfloat16{0x3F81}), 1.0f + 1.0f / 128);
}
