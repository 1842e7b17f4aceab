#include <filesystem>

#include "helpers.h"
#include "kiln/core/fs.h"
#include "kiln/report/tensorboard.h"

using namespace kiln;

TEST(TensorBoard, Crc32cKnownValues) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32c(reinterpret_cast<const uint8_t*>(s.data()), s.size()), 0xE3069283u);  // the standard check value
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
}

TEST(TensorBoard, RecordsAreFramedWithLengthsAndMaskedCrcs) {
  kiln::test::TempDir d;
  std::string path;
  {
    EventWriter w(d.path.string());
    w.scalar("train/loss", 0.5, 3);
    path = w.path();
  }
  auto b = read_file(path);
  size_t off = 0;
  int records = 0;
  while (off < b.size()) {
    ASSERT_LE(off + 12, b.size());
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(b[off + i]) << (8 * i);
    uint32_t lc = 0, dc = 0;
    for (int i = 0; i < 4; ++i) lc |= uint32_t(b[off + 8 + i]) << (8 * i);
    EXPECT_EQ(lc, masked_crc32c(b.data() + off, 8));
    ASSERT_LE(off + 12 + n + 4, b.size());
    for (int i = 0; i < 4; ++i) dc |= uint32_t(b[off + 12 + n + i]) << (8 * i);
    EXPECT_EQ(dc, masked_crc32c(b.data() + off + 12, n));
    off += 12 + n + 4;
    ++records;
  }
  EXPECT_EQ(records, 2);  // the file-version event and the scalar
  std::string all(b.begin(), b.end());
  EXPECT_NE(all.find("brain.Event:2"), std::string::npos);
  EXPECT_NE(all.find("train/loss"), std::string::npos);
}
