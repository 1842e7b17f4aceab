// HEIF and AVIF (kiln/pixels/pixels.h: decode, header_of_file), read with Debian's libheif 1.15
// (libde265 for HEVC, dav1d for AV1), against files other encoders wrote: tests/heif/, the HEIC
// files by pillow-heif 1.9.0 (libheif 1.23.7 with x265), the AVIF files by Pillow 13.0.0's own
// libavif 1.4.2 (tests/heif/make_fixtures.py). The lossless pictures follow a formula this test
// computes; the lossy ones must give the pixels those packages decoded from them (tests/heif/*.rgb,
// *.rgba) within the bound each test states and measured, the two decoders' colour conversion
// differing where the bitstream's decoding does not.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "helpers.h"
#include "kiln/core/error.h"
#include "kiln/data/folder.h"
#include "kiln/pixels/pixels.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::expect_image;
using kiln::test::fixture_picture;
using kiln::test::read_bytes;
using kiln::test::TempDir;
using kiln::test::write_bytes;

namespace heif_test {

using Bytes = std::vector<uint8_t>;

std::string fixture(const std::string& name) { return std::string(KILN_SOURCE_DIR) + "/tests/heif/" + name; }

// A fixture's bytes, the test failing where they do not hold the box `box` (what the test is about).
Bytes fixture_holding(const std::string& name, const std::string& box) {
  const Bytes b = read_bytes(fixture(name));
  EXPECT_NE(std::string(b.begin(), b.end()).find(box), std::string::npos) << name << " has no '" << box << "' box";
  return b;
}

int max_difference(const Bytes& a, const Bytes& b) {
  EXPECT_EQ(a.size(), b.size());
  int most = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) most = std::max(most, std::abs(int{a[i]} - int{b[i]}));
  return most;
}

void expect_header(const std::string& name, int c, int h, int w) {
  const auto header = px::header_of_file(fixture(name));
  EXPECT_EQ(header.c, c) << name;
  EXPECT_EQ(header.h, h) << name;
  EXPECT_EQ(header.w, w) << name;
}

TEST(Heif, LosslessPicturesGiveTheirPixelsAndTheHeaderItsSize) {
  ASSERT_TRUE(px::kReadsHeif);
  EXPECT_NE(px::decoders().find("; HEIF/AVIF (libheif 1."), std::string::npos) << px::decoders();  // kiln env's images line
  EXPECT_NE(px::decoders().find(": HEVC yes, AV1 yes)"), std::string::npos) << px::decoders();
  for (const char* path : {"a/b.heic", "B.HEIC", "c.heif", "d.avif", "e.AVIF"}) EXPECT_TRUE(px::is_image_file(path)) << path;
  EXPECT_FALSE(px::is_image_file("f.mp4"));
  for (const bool alpha : {false, true}) {
    const std::string name = alpha ? "rgba-lossless.heic" : "rgb-lossless.heic";
    const Bytes b = read_bytes(fixture(name));
    EXPECT_EQ(px::format_problem(b.data(), b.size()), "") << name;
    const px::Image img = px::decode(b, name);
    expect_image(img, alpha ? 4 : 3, 5, 7, fixture_picture(7, 5, alpha), name);
    expect_header(name, alpha ? 4 : 3, 5, 7);
  }
}

// A grid of tiles (as phones store a photo) is read whole: 3 x 2 tiles of 32 x 32, the last
// column and row cut to the image's 70 x 40, assembled by libheif, the tiles decoded in the
// calling thread.
TEST(Heif, AGridOfTilesIsReadWhole) {
  expect_image(px::decode(fixture_holding("grid-lossless.heic", "grid"), "grid-lossless.heic"), 3, 40, 70, fixture_picture(70, 40, false),
               "grid-lossless.heic");
  expect_header("grid-lossless.heic", 3, 40, 70);
}

// A monochrome HEIC (4:0:0) reads as RGB with three equal channels.
TEST(Heif, AMonochromeImageGivesThreeEqualChannels) {
  const px::Image img = px::decode(read_bytes(fixture("grey-lossless.heic")), "grey-lossless.heic");
  ASSERT_EQ(img.c, 3);
  ASSERT_EQ(img.h, 5);
  ASSERT_EQ(img.w, 7);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(img.at(y, x, k), (30 * x + 7 + 40 * y) % 256) << y << "," << x << "," << k;
  expect_header("grey-lossless.heic", 3, 5, 7);
}

// The largest difference, over samples, between a pixel of `pixels` (c channels interleaved, the
// first 3 compared) and its 8 neighbours: how far a pixel's colour can move when its chroma is taken from
// a neighbouring pixel's.
int neighbourhood_range(const Bytes& pixels, int c, int h, int w) {
  int m = 0;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int y2 = std::max(0, y - 1); y2 <= std::min(h - 1, y + 1); ++y2)
        for (int x2 = std::max(0, x - 1); x2 <= std::min(w - 1, x + 1); ++x2)
          for (int k = 0; k < 3; ++k)
            m = std::max(m, std::abs(int{pixels[static_cast<size_t>((y * w + x) * c + k)]} - int{pixels[static_cast<size_t>((y2 * w + x2) * c + k)]}));
  return m;
}

// Lossy files give the pixels the other decoder gave, to within the rounding of the conversion from
// YCbCr to RGB (1 where the chroma is not subsampled or both decoders take it as stored), and,
// for the AVIF in 4:2:0, to within what the two decoders' different chroma upsampling can move a
// pixel: libavif interpolates between chroma samples, libheif repeats (1.15) or interpolates
// otherwise (1.23), so a pixel's chroma may come from its neighbours'; the bound is the reference's
// own neighbourhood_range + 1 (14 on this gradient; measured: 9 with Debian 12's libheif 1.15,
// 10 with Debian 13's 1.23). A channel out of place or the picture mirrored is a difference of over
// 40 on these gradients (checked below, so the bounds can fail).
TEST(Heif, LossyFilesGiveTheOtherDecodersPixels) {
  const struct {
    const char* file;
    const char* pixels;
    int c, h, w, bound;
  } cases[] = {
      {"rgb-lossy.heic", "rgb-lossy-heic.rgb", 3, 12, 16, 1},
      {"rgb-lossy-odd.heic", "rgb-lossy-odd-heic.rgb", 3, 11, 15, 1},
      {"rgb-10bit.heic", "rgb-10bit-heic.rgb", 3, 12, 16, 1},
      {"rgb-lossy.avif", "rgb-lossy-avif.rgb", 3, 12, 16, 1},
      {"rgba-lossy.avif", "rgba-lossy-avif.rgba", 4, 12, 16, -1},  // -1: neighbourhood_range + 1
  };
  for (const auto& k : cases) {
    const Bytes want = read_bytes(fixture(k.pixels));
    ASSERT_EQ(want.size(), static_cast<size_t>(k.c * k.h * k.w)) << k.pixels;
    const px::Image img = px::decode(read_bytes(fixture(k.file)), k.file);
    ASSERT_EQ(img.c, k.c) << k.file;
    ASSERT_EQ(img.h, k.h) << k.file;
    ASSERT_EQ(img.w, k.w) << k.file;
    const int bound = k.bound >= 0 ? k.bound : neighbourhood_range(want, k.c, k.h, k.w) + 1;
    ASSERT_LT(bound, 40) << k.file;  // below what a swap or a mirror gives
    EXPECT_LE(max_difference(img.data, want), bound) << k.file;
    expect_header(k.file, k.c, k.h, k.w);
    Bytes swapped = img.data;  // red and blue exchanged: far outside every bound
    for (size_t i = 0; i < swapped.size(); i += static_cast<size_t>(k.c)) std::swap(swapped[i], swapped[i + 2]);
    EXPECT_GT(max_difference(swapped, want), 40) << k.file;
    EXPECT_GT(max_difference(px::oriented(img, 2).data, want), 40) << k.file;  // mirrored left-right
  }
}

// The file's own rotation ('irot', here 90 degrees anticlockwise, which Pillow wrote for EXIF
// orientation 6) is applied, as browsers apply it: the 3 x 5 picture is shown 5 wide, 3 high, as
// Pillow shows it after exif_transpose.
TEST(Heif, TheFilesRotationIsApplied) {
  const px::Image img = px::decode(fixture_holding("turned.avif", "irot"), "turned.avif");
  ASSERT_EQ(img.h, 3);
  ASSERT_EQ(img.w, 5);
  EXPECT_LE(max_difference(img.data, read_bytes(fixture("turned-avif.rgb"))), 1);
  const px::Image shown = px::oriented(px::Image{3, 5, 3, fixture_picture(3, 5, false)}, 6);  // the picture turned as EXIF 6 says
  EXPECT_LE(max_difference(img.data, shown.data), 2);
  expect_header("turned.avif", 3, 3, 5);
}

// decode's `channels` converts an HEIF as it converts a WebP: as stb_image converts a PNG.
TEST(Heif, ChannelsConvertAsStbImageConverts) {
  for (const bool alpha : {false, true}) {
    const std::string name = alpha ? "rgba-lossless.heic" : "rgb-lossless.heic";
    const Bytes b = read_bytes(fixture(name)), pixels = fixture_picture(7, 5, alpha);
    const int c0 = alpha ? 4 : 3;
    for (int c = 1; c <= 4; ++c) {
      const px::Image img = px::decode(b, name, c);
      ASSERT_EQ(img.c, c);
      for (size_t i = 0; i < 35; ++i) {
        const uint8_t* in = pixels.data() + i * static_cast<size_t>(c0);
        const uint8_t* out = img.data.data() + i * static_cast<size_t>(c);
        if (c <= 2) EXPECT_EQ(out[0], (in[0] * 77 + in[1] * 150 + in[2] * 29) >> 8) << name << " as " << c;
        else for (int k = 0; k < 3; ++k) EXPECT_EQ(out[k], in[k]) << name << " as " << c;
        if (c == 2 || c == 4) EXPECT_EQ(out[c - 1], alpha ? in[3] : 255) << name << " as " << c;
      }
    }
  }
}

// Every cut of a file is refused with libheif's message naming the file and, where the cut falls
// inside a box, kiln's word that the file is cut short: never a crash, never an image. The header
// pass refuses a cut header alike.
TEST(Heif, CutFilesAreRefusedByName) {
  for (const char* name : {"rgba-lossless.heic", "rgb-lossy.avif"}) {
    const Bytes b = read_bytes(fixture(name));
    std::vector<size_t> ends;  // where the file's top-level boxes end (32-bit sizes in these files)
    for (size_t at = 0; at + 8 <= b.size(); at = ends.back()) ends.push_back(at + (size_t{b[at]} << 24 | size_t{b[at + 1]} << 16 | size_t{b[at + 2]} << 8 | b[at + 3]));
    ASSERT_EQ(ends.back(), b.size()) << name;
    for (size_t n = 12; n < b.size(); n += 3) {
      const Bytes cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
      const bool inside_a_box = std::find(ends.begin(), ends.end(), n) == ends.end();
      expect_error_containing([&] { px::decode(cut, "cut.heic"); },
                              "cannot decode image 'cut.heic': libheif: ");
      if (inside_a_box)
        expect_error_containing([&] { px::decode(cut, "cut.heic"); }, "; the file is cut short: its boxes take ");
    }
  }
  TempDir d;
  const Bytes b = read_bytes(fixture("rgb-lossless.heic"));
  write_bytes((d.path / "cut.heic").string(), Bytes(b.begin(), b.begin() + 40));
  expect_error_containing([&] { px::header_of_file((d.path / "cut.heic").string()); },
                          "cannot decode image '" + (d.path / "cut.heic").string() + "': libheif: ");
  expect_error_containing([&] { px::header_of_file((d.path / "cut.heic").string()); }, "; the file is cut short: its boxes take ");
}

// A file whose image claims 10,000 x 10,000 pixels (its 'ispe' box, the image's spatial extent,
// edited) is refused by kiln's 64-Mpixel limit before anything is decoded, by decode and by the
// header pass, as a PNG or WebP bomb is: whether it is shown at that size (turned.avif) or cropped
// to 7 x 5 by its clean aperture (rgb-lossless.heic, whose 64 x 64 coded picture is cut so).
TEST(Heif, AnImplausibleSizeIsRefusedBeforeDecoding) {
  for (const char* name : {"turned.avif", "rgb-lossless.heic"}) {
    Bytes b = read_bytes(fixture(name));
    const std::string text(b.begin(), b.end());
    const size_t at = text.find("ispe");
    ASSERT_NE(at, std::string::npos) << name;
    ASSERT_EQ(text.find("clap") != std::string::npos, std::string(name) == "rgb-lossless.heic") << name;
    for (const size_t field : {at + 8, at + 12})  // after the version and flags: width, height (32 bits, big-endian)
      for (int k = 0; k < 4; ++k) b[field + static_cast<size_t>(k)] = static_cast<uint8_t>(10000u >> (24 - 8 * k));
    expect_error_containing([&] { px::decode(b, "big.heic"); }, "image 'big.heic': implausible size 10000x10000");
    TempDir d;
    write_bytes((d.path / "big.heic").string(), b);
    expect_error_containing([&] { px::header_of_file((d.path / "big.heic").string()); }, "implausible size 10000x10000");
  }
}

// An ISO media file that is not an HEIF image (an MP4, say) is named as such, with its brand;
// compatible brands count (an HEIF whose major brand is another's).
TEST(Heif, OtherIsoMediaFilesAreNamed) {
  const std::string mp4("\0\0\0\x18" "ftypisom\0\0\x02\0" "isomiso2", 24);
  const std::string said = px::format_problem(reinterpret_cast<const uint8_t*>(mp4.data()), mp4.size());
  EXPECT_NE(said.find("not a PNG, JPEG, BMP, WebP or HEIF/AVIF file, the formats kiln reads, but an ISO media file (MP4, QuickTime, ...) that is "
                      "not an HEIF/AVIF image, brand 'isom'"),
            std::string::npos)
      << said;
  expect_error_containing([&] { px::decode(Bytes(mp4.begin(), mp4.end()), "clip.heic"); }, "cannot decode image 'clip.heic': not a PNG");
  const std::string compatible("\0\0\0\x18" "ftypabcd\0\0\0\0" "mif1avif", 24);
  EXPECT_EQ(px::format_problem(reinterpret_cast<const uint8_t*>(compatible.data()), compatible.size()), "");
  const std::string beyond("\0\0\0\x10" "ftypabcd\0\0\0\0" "avif", 20);  // 'avif' after the box's 16 bytes
  EXPECT_NE(px::format_problem(reinterpret_cast<const uint8_t*>(beyond.data()), beyond.size()), "");
}

// A class folder of HEIC and AVIF images beside PNG ones: the rotated AVIF by its shown size.
TEST(Heif, AFolderReadsHeifAndAvifImagesBesideOthers) {
  TempDir d;
  write_bytes((d.path / "a" / "0.heic").string(), read_bytes(fixture("rgb-lossless.heic")));
  write_bytes((d.path / "a" / "1.HEIF").string(), read_bytes(fixture("rgba-lossless.heic")));
  write_bytes((d.path / "b" / "0.avif").string(), read_bytes(fixture("turned.avif")));
  FolderOptions options;
  options.image_size = {5, 7};  // the rotated AVIF, 5 x 3, stretched
  FolderReport report;
  const auto ds = read_image_folder(d.path.string(), options, &report);
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 5, 7}));
  Bytes first(static_cast<size_t>(3 * 5 * 7));  // image 0, planar, back to interleaved
  const auto planar = ds.images[0].contiguous();
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 35; ++i) first[static_cast<size_t>(i * 3 + k)] = planar.data_ptr<uint8_t>()[k * 35 + i];
  EXPECT_EQ(first, fixture_picture(7, 5, false));
  EXPECT_EQ(ds.labels[2].item<int64_t>(), 1);
  EXPECT_EQ(std::string(px::kImageExtensions), ".png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif");
}

}  // namespace heif_test
