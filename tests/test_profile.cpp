// kiln/report/profile.h on the CPU: LibTorch's profiler around known work. Self time is an
// operator's time less the operators nested in it, so a wrapper (aten::matmul, which calls
// aten::mm) gets little of it and the kernel-doing operator most; every share is of its kind's
// total, and the table is sorted.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kiln/report/profile.h"

using namespace kiln;

TEST(Profile, SelfTimeGoesToTheOperatorThatDoesTheWork) {
  auto a = torch::randn({384, 384}), b = torch::randn({384, 384});
  Profiler p(/*cuda=*/false);
  for (int i = 0; i < 20; ++i) a = torch::matmul(a, b).div_(20.0);
  auto t = p.stop();
  const ProfileRow *mm = nullptr, *matmul = nullptr;
  double share = 0, last = 1e300;
  for (auto& r : t.rows) {
    ASSERT_EQ(r.kind, "host");  // no device on the CPU
    EXPECT_LE(r.ms, last) << "sorted by time";
    last = r.ms;
    share += r.share;
    if (r.name == "aten::mm") mm = &r;
    if (r.name == "aten::matmul") matmul = &r;
  }
  ASSERT_TRUE(mm && matmul);
  EXPECT_EQ(mm->calls, 20);
  EXPECT_EQ(matmul->calls, 20);
  EXPECT_GT(mm->ms, 5 * matmul->ms) << "matmul's self time excludes the mm inside it";
  EXPECT_EQ(t.rows.front().name, "aten::mm");
  EXPECT_NEAR(share, 1.0, 1e-9);
  EXPECT_EQ(t.device_ms, 0.0);
  auto csv = t.csv(3);
  EXPECT_EQ(csv.rfind("kind,name,calls,ms,share\n", 0), 0u);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 4) << csv;  // header + the top 3
  EXPECT_NE(csv.find("host,\"aten::mm\",20,"), std::string::npos) << csv;
}

TEST(Profile, StoppingTwiceIsAnError) {
  Profiler p(false);
  p.stop();
  EXPECT_THROW(p.stop(), std::exception);
}
