// WebP (kiln/pixels/pixels.h: decode, header_of_file), read with Debian's libwebp, against files
// another encoder wrote: tests/webp/, written by Pillow 13.0.0 with its own libwebp 1.6.0
// (tests/webp/make_fixtures.py). The lossless pictures follow a formula this test computes; the
// lossy ones must give the pixels Pillow decoded from them (tests/webp/*.rgb, *.rgba).
#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "helpers.h"
#include "kiln/data/folder.h"
#include "kiln/pixels/image_files.h"
#include "kiln/pixels/pixels.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::expect_image;
using kiln::test::fixture_picture;
using kiln::test::read_bytes;
using kiln::test::TempDir;
using kiln::test::write_bytes;

namespace webp_test {

using Bytes = std::vector<uint8_t>;

std::string fixture(const std::string& name) { return std::string(KILN_SOURCE_DIR) + "/tests/webp/" + name; }

// The pixels as a PNG, by stb_image_write.
Bytes png_of(int w, int h, int c, const Bytes& pixels) {
  Bytes png;
  stbi_write_png_to_func([](void* ctx, void* data, int size) {
    auto* o = static_cast<Bytes*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &png, w, h, c, pixels.data(), w * c);
  return png;
}

TEST(WebP, LosslessPicturesGiveTheirPixelsAndTheHeaderItsSize) {
  EXPECT_TRUE(px::kReadsWebP);
  EXPECT_TRUE(px::is_image_file("a/b.webp"));
  EXPECT_TRUE(px::is_image_file("B.WebP"));
  for (const bool alpha : {false, true}) {
    const std::string name = alpha ? "rgba-lossless.webp" : "rgb-lossless.webp";
    const Bytes b = read_bytes(fixture(name));
    EXPECT_EQ(px::format_problem(b.data(), b.size()), "") << name;
    expect_image(px::decode(b, name), alpha ? 4 : 3, 5, 7, fixture_picture(7, 5, alpha), name);
    const auto h = px::header_of_file(fixture(name));
    EXPECT_EQ(h.w, 7) << name;
    EXPECT_EQ(h.h, 5) << name;
    EXPECT_EQ(h.c, alpha ? 4 : 3) << name;
  }
}

TEST(WebP, LossyPicturesGiveThePixelsPillowDecodes) {
  for (const bool alpha : {false, true}) {
    const std::string name = alpha ? "rgba-lossy.webp" : "rgb-lossy.webp";
    const Bytes want = read_bytes(fixture(alpha ? "rgba-lossy.rgba" : "rgb-lossy.rgb"));
    ASSERT_EQ(want.size(), (alpha ? 4u : 3u) * 16 * 12) << name;
    expect_image(px::decode(read_bytes(fixture(name)), name), alpha ? 4 : 3, 12, 16, want, name);
    EXPECT_EQ(px::header_of_file(fixture(name)).c, alpha ? 4 : 3) << name;
  }
}

// An animation is read as Pillow (and torchvision's ImageFolder) opens it: its first frame.
TEST(WebP, AnAnimationGivesItsFirstFrame) {
  const Bytes b = read_bytes(fixture("animated.webp"));
  const auto img = px::decode(b, "animated.webp");
  ASSERT_EQ(img.h, 5);
  ASSERT_EQ(img.w, 7);
  const auto h = px::header_of_file(fixture("animated.webp"));
  EXPECT_EQ(h.c, img.c);
  EXPECT_EQ(h.w, 7);
  Bytes colour;  // the first frame's colour (an alpha channel, where the file has one, is opaque)
  for (size_t i = 0; i < img.data.size(); i += static_cast<size_t>(img.c)) {
    colour.insert(colour.end(), img.data.begin() + static_cast<std::ptrdiff_t>(i), img.data.begin() + static_cast<std::ptrdiff_t>(i) + 3);
    if (img.c == 4) EXPECT_EQ(img.data[i + 3], 255);
  }
  EXPECT_EQ(colour, fixture_picture(7, 5, false));
  // cut inside its second frame: the first frame is there, the file is still refused as cut short
  const Bytes cut(b.begin(), b.end() - 40);
  expect_error_containing([&] { px::decode(cut, "cut.webp"); }, "cannot decode image 'cut.webp': its WebP animation is malformed or cut short");
}

// A WebP's EXIF orientation is not applied: Chromium 156 applies none
// (bench/results/webp-exif-chromium-2026-12-05.txt), so the picture is shown as stored.
TEST(WebP, ItsExifOrientationIsNotApplied) {
  const Bytes b = read_bytes(fixture("exif-turned.webp"));
  const std::string tiff_orientation_6 = std::string("EXIF") + '\x1a' + std::string(3, '\0') + "MM";
  ASSERT_NE(std::string(b.begin(), b.end()).find(tiff_orientation_6), std::string::npos) << "the fixture has no EXIF chunk";
  expect_image(px::decode(b, "exif-turned.webp"), 3, 5, 3, fixture_picture(3, 5, false), "exif-turned.webp");
  const auto h = px::header_of_file(fixture("exif-turned.webp"));
  EXPECT_EQ(h.w, 3);
  EXPECT_EQ(h.h, 5);
}

// The header pass reads a file's first 16 KiB; a WebP's ICC profile comes before its pixels and
// can be longer, and its first chunk (VP8X) gives the size.
TEST(WebP, TheHeaderComesFromTheFirstChunkBeforeALargeIccProfile) {
  ASSERT_GT(read_bytes(fixture("big-icc.webp")).size(), 16u * 1024);
  const auto h = px::header_of_file(fixture("big-icc.webp"));
  EXPECT_EQ(h.w, 7);
  EXPECT_EQ(h.h, 5);
  EXPECT_EQ(h.c, 3);
  expect_image(px::read(fixture("big-icc.webp")), 3, 5, 7, fixture_picture(7, 5, false), "big-icc.webp");
}

// decode's `channels` converts a WebP as stb_image converts a PNG of the same pixels.
TEST(WebP, ChannelsConvertAsStbImageConverts) {
  for (const bool alpha : {false, true}) {
    const std::string name = alpha ? "rgba-lossless.webp" : "rgb-lossless.webp";
    const Bytes webp = read_bytes(fixture(name)), pixels = fixture_picture(7, 5, alpha);
    const Bytes png = png_of(7, 5, alpha ? 4 : 3, pixels);
    for (int c = 1; c <= 4; ++c)
      EXPECT_EQ(px::decode(webp, name, c).data, px::decode(png, "same.png", c).data) << name << " as " << c << " channels";
  }
}

TEST(WebP, DamagedOrImplausibleFilesAreRefusedByName) {
  const Bytes b = read_bytes(fixture("rgb-lossless.webp"));
  for (const size_t n : {size_t{12}, size_t{20}, b.size() / 2, b.size() - 4}) {
    const Bytes cut(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
    expect_error_containing([&] { px::decode(cut, "cut.webp"); }, "cannot decode image 'cut.webp': its WebP data is");
  }
  TempDir d;
  write_bytes((d.path / "cut.webp").string(), Bytes(b.begin(), b.begin() + 20));
  expect_error_containing([&] { px::header_of_file((d.path / "cut.webp").string()); },
                          "cannot decode image '" + (d.path / "cut.webp").string() + "': its WebP data is cut short");
  // Canvases of 10,000 x 10,000 (a VP8X chunk's width - 1 and height - 1, 24 bits each, at bytes
  // 24 and 27): an animation's is its size, a bomb; a still picture's must match its pixels'.
  const auto with_canvas = [&](const std::string& name) {
    Bytes b = read_bytes(fixture(name));
    EXPECT_EQ(std::string(b.begin() + 12, b.begin() + 16), "VP8X") << name;
    for (const size_t at : {size_t{24}, size_t{27}}) {
      b[at] = 9999 & 255;
      b[at + 1] = 9999 >> 8;
      b[at + 2] = 0;
    }
    return b;
  };
  expect_error_containing([&] { px::decode(with_canvas("animated.webp"), "big.webp"); }, "image 'big.webp': implausible size 10000x10000");
  write_bytes((d.path / "big.webp").string(), with_canvas("animated.webp"));
  expect_error_containing([&] { px::header_of_file((d.path / "big.webp").string()); }, "implausible size 10000x10000");
  expect_error_containing([&] { px::decode(with_canvas("exif-turned.webp"), "odd.webp"); }, "cannot decode image 'odd.webp': its WebP data is malformed");
  // A lossless bitstream's header (0x2f, then width - 1 and height - 1 in 14 bits each) of 10,000 x 10,000.
  const uint32_t bits = 9999u | 9999u << 14;
  Bytes vp8l = {'R', 'I', 'F', 'F', 20, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L', 8, 0, 0, 0, 0x2f};
  for (int k = 0; k < 4; ++k) vp8l.push_back(static_cast<uint8_t>(bits >> (8 * k)));
  vp8l.insert(vp8l.end(), {0, 0, 0});
  expect_error_containing([&] { px::decode(vp8l, "bomb.webp"); }, "image 'bomb.webp': implausible size 10000x10000");
  // a RIFF file of another kind is not a WebP
  const std::string wave("RIFF\x24\0\0\0WAVEfmt ", 16);
  EXPECT_NE(px::format_problem(reinterpret_cast<const uint8_t*>(wave.data()), wave.size()).find("not a PNG, JPEG, BMP, WebP or HEIF/AVIF file"), std::string::npos);
}

// A class folder of WebP images beside PNG ones: each read as its PNG twin.
TEST(WebP, AFolderReadsWebPImagesBesidePngOnes) {
  TempDir d;
  const Bytes pixels = fixture_picture(7, 5, false);
  const Bytes png = png_of(7, 5, 3, pixels);
  write_bytes((d.path / "a" / "0.png").string(), png);
  write_bytes((d.path / "a" / "1.WEBP").string(), read_bytes(fixture("rgb-lossless.webp")));
  write_bytes((d.path / "b" / "0.webp").string(), read_bytes(fixture("big-icc.webp")));
  const auto ds = read_image_folder(d.path.string());
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 5, 7}));
  EXPECT_TRUE(ds.images[0].equal(ds.images[1]));
  EXPECT_TRUE(ds.images[0].equal(ds.images[2]));
  EXPECT_EQ(ds.labels[2].item<int64_t>(), 1);
  EXPECT_EQ(std::string(px::kImageExtensions), ".png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif");
}

}  // namespace webp_test
