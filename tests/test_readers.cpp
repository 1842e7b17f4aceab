#include <stb/stb_image_write.h>
#include <zlib.h>
#include <algorithm>

#include "helpers.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/dataset.h"
#include "kiln/data/folder.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::TempDir;
using kiln::test::write_bytes;

namespace {
// n CIFAR-10 records: label i % 10, pixel p of record i = (i + p) % 256.
std::vector<uint8_t> cifar10_records(int n, int label_offset = 0) {
  std::vector<uint8_t> b;
  for (int i = 0; i < n; ++i) {
    b.push_back(static_cast<uint8_t>((i + label_offset) % 10));
    for (int p = 0; p < 3072; ++p) b.push_back(static_cast<uint8_t>((i + p) % 256));
  }
  return b;
}

std::vector<uint8_t> be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}

void write_idx(const std::string& images, const std::string& labels, int n, int h, int w, bool gz) {
  std::vector<uint8_t> im = be32(2051), lb = be32(2049);
  for (uint32_t v : {uint32_t(n), uint32_t(h), uint32_t(w)}) {
    auto x = be32(v);
    im.insert(im.end(), x.begin(), x.end());
  }
  auto x = be32(n);
  lb.insert(lb.end(), x.begin(), x.end());
  for (int i = 0; i < n; ++i) {
    for (int p = 0; p < h * w; ++p) im.push_back(static_cast<uint8_t>(i * 7 + p));
    lb.push_back(static_cast<uint8_t>(i % 10));
  }
  if (!gz) {
    write_bytes(images, im);
    write_bytes(labels, lb);
    return;
  }
  for (auto [path, data] : {std::pair{images, &im}, std::pair{labels, &lb}}) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, data->data(), static_cast<unsigned>(data->size()));
    gzclose(f);
  }
}
}  // namespace

TEST(Readers, Cifar10KnownFile) {
  TempDir d;
  write_bytes(d / "a.bin", cifar10_records(5));
  write_bytes(d / "b.bin", cifar10_records(3, 5));
  auto ds = read_cifar10_bin({d / "a.bin", d / "b.bin"});
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{8, 3, 32, 32}));
  EXPECT_EQ(ds.labels[6].item<int64_t>(), (1 + 5) % 10);
  // Record 2, channel 1 (G), row 3, column 4 is byte 1024 + 3*32 + 4 of its pixels.
  EXPECT_EQ(ds.images[2][1][3][4].item<uint8_t>(), (2 + 1024 + 3 * 32 + 4) % 256);
  EXPECT_EQ(ds.classes[0], "airplane");
}

TEST(Readers, Cifar10TruncatedAndBadLabel) {
  TempDir d;
  auto b = cifar10_records(2);
  b.resize(b.size() - 100);
  write_bytes(d / "t.bin", b);
  expect_error_containing([&] { read_cifar10_bin({d / "t.bin"}); }, "t.bin");
  expect_error_containing([&] { read_cifar10_bin({d / "t.bin"}); }, "truncated");
  auto c = cifar10_records(3);
  c[3073 * 2] = 42;
  write_bytes(d / "l.bin", c);
  expect_error_containing([&] { read_cifar10_bin({d / "l.bin"}); }, "record 2 has label 42");
  expect_error_containing([&] { read_cifar10_bin({d / "missing.bin"}); }, "missing.bin");
}

TEST(Readers, Cifar100FineAndCoarse) {
  TempDir d;
  std::vector<uint8_t> b;
  for (int i = 0; i < 4; ++i) {
    b.push_back(static_cast<uint8_t>(i));        // coarse
    b.push_back(static_cast<uint8_t>(50 + i));   // fine
    for (int p = 0; p < 3072; ++p) b.push_back(static_cast<uint8_t>(p));
  }
  write_bytes(d / "train.bin", b);
  EXPECT_EQ(read_cifar100_bin(d / "train.bin").labels[3].item<int64_t>(), 53);
  EXPECT_EQ(read_cifar100_bin(d / "train.bin", true).labels[3].item<int64_t>(), 3);
  b[1] = 100;
  write_bytes(d / "bad.bin", b);
  expect_error_containing([&] { read_cifar100_bin(d / "bad.bin"); }, "outside 0..99");
}

TEST(Readers, IdxPlainAndGzip) {
  TempDir d;
  for (bool gz : {false, true}) {
    auto im = d / (gz ? "i.gz" : "i"), lb = d / (gz ? "l.gz" : "l");
    write_idx(im, lb, 12, 5, 6, gz);
    auto ds = read_idx(im, lb);
    ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{12, 1, 5, 6}));
    EXPECT_EQ(ds.images[3][0][1][2].item<uint8_t>(), uint8_t(3 * 7 + 1 * 6 + 2));
    EXPECT_EQ(ds.labels[11].item<int64_t>(), 1);
  }
}

TEST(Readers, IdxCorruptFilesNameTheProblem) {
  TempDir d;
  write_idx(d / "i", d / "l", 4, 3, 3, false);
  auto im = read_file(d / "i");
  auto cut = im;
  cut.resize(cut.size() - 5);
  write_bytes(d / "cut", cut);
  expect_error_containing([&] { read_idx(d / "cut", d / "l"); }, "truncated");
  auto bad = im;
  bad[3] = 0x99;
  write_bytes(d / "magic", bad);
  expect_error_containing([&] { read_idx(d / "magic", d / "l"); }, "magic number 2051");
  write_idx(d / "i5", d / "l5", 5, 3, 3, false);
  expect_error_containing([&] { read_idx(d / "i", d / "l5"); }, "holds 4 images");
  // A truncated gzip stream.
  write_idx(d / "g", d / "gl", 50, 8, 8, true);
  auto g = read_file(d / "g");
  g.resize(g.size() / 2);
  write_bytes(d / "gcut", g);
  expect_error_containing([&] { read_idx(d / "gcut", d / "gl"); }, "gcut");
}

TEST(Readers, ImageFolder) {
  TempDir d;
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 3; ++i) {
      std::vector<uint8_t> px(4 * 5 * 3);
      for (size_t p = 0; p < px.size(); ++p) px[p] = static_cast<uint8_t>(c * 100 + i * 10 + p);
      auto dir = d.path / (c ? "dog" : "cat");
      std::filesystem::create_directories(dir);
      stbi_write_png((dir / ("img" + std::to_string(i) + ".png")).c_str(), 5, 4, 3, px.data(), 5 * 3);
    }
  auto ds = read_image_folder(d.path.string());
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{6, 3, 4, 5}));
  EXPECT_EQ(ds.classes, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(ds.labels[4].item<int64_t>(), 1);
  // dog/img1.png, pixel (row 2, col 3), channel 1: byte (2*5 + 3)*3 + 1 of the HWC buffer.
  EXPECT_EQ(ds.images[4][1][2][3].item<uint8_t>(), uint8_t(100 + 10 + (2 * 5 + 3) * 3 + 1));
  // An image of another size is refused by name.
  std::vector<uint8_t> big(7 * 7 * 3, 1);
  stbi_write_png((d.path / "dog" / "odd.png").c_str(), 7, 7, 3, big.data(), 7 * 3);
  expect_error_containing([&] { read_image_folder(d.path.string()); }, "odd.png");
  write_bytes(d / "cat/broken.png", {1, 2, 3});
  expect_error_containing([&] { read_image_folder(d.path.string()); }, "broken.png");
}

// A folder dataset whose test/ and train/ disagree names the classes that differ.
TEST(Readers, ImageFolderClassMismatchNamesTheClass) {
  TempDir d;
  auto png = [&](const std::string& rel) {
    std::vector<uint8_t> px(4 * 4 * 3, 7);
    std::filesystem::create_directories((d.path / rel).parent_path());
    stbi_write_png((d.path / rel).c_str(), 4, 4, 3, px.data(), 4 * 3);
  };
  for (auto c : {"cat", "dog"}) png(std::string("train/") + c + "/0.png");
  for (auto c : {"cat", "dog", "fox"}) png(std::string("test/") + c + "/0.png");
  expect_error_containing([&] { load_dataset("folder", "", d.path.string()); }, "test/ has 'fox', which train/ lacks");
  kiln::remove_tree((d.path / "test/fox").string());  // (std::filesystem::remove_all binds to libtorch's copy and crashes)
  kiln::remove_tree((d.path / "test/dog").string());
  expect_error_containing([&] { load_dataset("folder", "", d.path.string()); }, "train/ has 'dog', which test/ lacks");
  png("test/dog/0.png");
  EXPECT_EQ(load_dataset("folder", "", d.path.string()).test.classes, (std::vector<std::string>{"cat", "dog"}));
}

TEST(Readers, MissingDatasetNamesTheFetchCommand) {
  TempDir d;
  expect_error_containing([&] { load_dataset("cifar10", d.path.string()); }, "kiln data fetch cifar10 --data");
  expect_error_containing([&] { load_dataset("fashion-mnist", d.path.string()); }, "kiln data fetch fashion-mnist");
}

TEST(Readers, DataRootPrecedence) {
  setenv("KILN_DATA", "/from/env", 1);
  EXPECT_EQ(resolve_data_root("/from/cli"), "/from/cli");
  EXPECT_EQ(resolve_data_root(""), "/from/env");
  unsetenv("KILN_DATA");
  setenv("XDG_DATA_HOME", "/xdg", 1);
  EXPECT_EQ(resolve_data_root(""), "/xdg/kiln");
  unsetenv("XDG_DATA_HOME");
}

// Real data: the CIFAR-10 copy under $KILN_DATA (CI points it at ../shared/data).
TEST(RealData, Cifar10Statistics) {
  auto root = kiln::test::real_data_root();
  if (root.empty() || !std::filesystem::exists(root + "/cifar10"))
    GTEST_SKIP() << "CIFAR-10 not found: set KILN_DATA to a directory holding cifar10/";
  auto tt = load_dataset("cifar10", root);
  ASSERT_EQ(tt.train.size(), 50000);
  ASSERT_EQ(tt.test.size(), 10000);
  auto mean = tt.train.images.to(torch::kFloat64).mean({0, 2, 3});
  // The published per-channel means of the CIFAR-10 training set.
  EXPECT_NEAR(mean[0].item<double>(), 125.307, 0.01);
  EXPECT_NEAR(mean[1].item<double>(), 122.950, 0.01);
  EXPECT_NEAR(mean[2].item<double>(), 113.865, 0.01);
  EXPECT_TRUE(torch::bincount(tt.train.labels).eq(5000).all().item<bool>());
  EXPECT_EQ(md5_file_hex(root + "/cifar10/data_batch_1.bin"), "5dd7e06a14cb22eb9f671a540d1b7c25");
}

TEST(RealData, MnistFirstTrainingDigitIsFive) {
  auto root = kiln::test::real_data_root();
  if (root.empty() || !std::filesystem::exists(root + "/mnist"))
    GTEST_SKIP() << "MNIST not found: set KILN_DATA to a directory holding mnist/";
  auto tt = load_dataset("mnist", root);
  EXPECT_EQ(tt.train.labels[0].item<int64_t>(), 5);
  EXPECT_EQ(tt.test.size(), 10000);
  EXPECT_EQ(tt.train.images.sizes(), (std::vector<int64_t>{tt.train.size(), 1, 28, 28}));
}

TEST(Digest, Md5MatchesRfc1321TestSuite) {
  auto md5 = [](const std::string& s) { return md5_hex(Bytes(s.begin(), s.end())); };
  EXPECT_EQ(md5(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(md5("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(md5("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(md5("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  // 62 bytes: the length no longer fits the last block, the padding takes a second one.
  EXPECT_EQ(md5("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"), "d174ab98d277d9f5a5611c2c9f419d9f");
  EXPECT_EQ(md5("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a");
  // Fed in pieces of every size from 1 to 80 bytes (across the 64-byte blocks and the 56-byte
  // padding boundary), the digest is the whole message's; hex() does not close it.
  std::string msg;
  for (int i = 0; i < 300; ++i) msg += static_cast<char>('a' + (i * 7) % 26);
  for (size_t piece = 1; piece <= 80; ++piece) {
    Md5 m;
    for (size_t at = 0; at < msg.size(); at += piece) {
      m.update(msg.data() + at, std::min(piece, msg.size() - at));
      EXPECT_EQ(m.hex(), md5(msg.substr(0, std::min(at + piece, msg.size())))) << "piece " << piece << " at " << at;
    }
  }
  EXPECT_EQ(Md5().update("abc", 3).hex(), "900150983cd24fb0d6963f7d28e17f72");
}
