// The host allocator's policy (kiln/core/host_memory.h) against its definition: with `retain` a
// freed 64 MiB tensor's pages are reused by the next one without page faults; with `system`
// (glibc's defaults) each one is mapped afresh and faults its pages in.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include "kiln/core/error.h"
#include "kiln/core/host_memory.h"

namespace {

// Minor page faults of allocating, writing and freeing a 64 MiB tensor `reps` times.
long faults_of_reusing(int reps) {
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  for (int i = 0; i < reps; ++i) {
    auto t = torch::empty({int64_t(64) << 20}, torch::kUInt8);
    t.fill_(1);
  }
  getrusage(RUSAGE_SELF, &after);
  return after.ru_minflt - before.ru_minflt;
}

}  // namespace

TEST(HostMemory, RetainReusesFreedBlocksWithoutPageFaultsWhereSystemFaultsThemIn) {
  // Nothing set yet: glibc's own defaults, whose mmap threshold rises by itself to 32 MiB at most,
  // so a 64 MiB block is still mapped afresh each time.
  if (!kiln::set_host_memory(kiln::HostMemory::System))
    GTEST_SKIP() << "the allocator cannot be set here: " << kiln::host_memory_description();
  faults_of_reusing(1);
  const long system = faults_of_reusing(4);
  ASSERT_TRUE(kiln::set_host_memory(kiln::HostMemory::Retain));
  EXPECT_EQ(kiln::host_memory_description(), "retain (glibc: mmap off, heap trimmed only past 2 GiB)");
  // The first ones grow the heap and fault its pages in (after the blocks glibc's defaults left,
  // two did on an AMD EPYC, 2026-12-01); from then on a freed block is the next one's.
  faults_of_reusing(3);
  const long retain = faults_of_reusing(4);
  kiln::set_host_memory(kiln::HostMemory::System);  // the other tests run with glibc's defaults
  EXPECT_EQ(kiln::host_memory_description(), "system (glibc's defaults, the mmap threshold fixed at 128 KiB)");
  // 64 MiB is 16,384 pages of 4 KiB (32 of 2 MiB where transparent huge pages back it).
  EXPECT_GE(system, 4 * 32) << "glibc's defaults unmap a freed 64 MiB block: each new one faults in";
  EXPECT_LE(retain * 10, system) << "retain: " << retain << " faults, system: " << system;
}

TEST(HostMemory, ParsesItsTwoNamesAndRefusesOthersNamingTheOption) {
  EXPECT_EQ(kiln::parse_host_memory("retain"), kiln::HostMemory::Retain);
  EXPECT_EQ(kiln::parse_host_memory("system"), kiln::HostMemory::System);
  try {
    kiln::parse_host_memory("fast");
    FAIL() << "accepted 'fast'";
  } catch (const kiln::Error& e) {
    EXPECT_NE(std::string(e.what()).find("--host-memory = 'fast'"), std::string::npos) << e.what();
  }
}
