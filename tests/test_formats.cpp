// The image formats kiln decodes (kiln/pixels/pixels.h: format_problem): PNG, JPEG and BMP, on
// the command line as on the web page, and WebP on the command line (tests/test_webp.cpp). Files
// in the other formats Debian's libstb decodes (GIF, TGA, Radiance HDR, PNM: each checked to
// decode in libstb itself, so the refusal is kiln's) are refused by decode and by the folder
// loaders' header pass, naming the file and the format.
#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cstdint>
#include <string>
#include <vector>

#include "helpers.h"
#include "kiln/data/folder.h"
#include "kiln/pixels/pixels.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::TempDir;
using kiln::test::write_bytes;

namespace formats_test {

using Bytes = std::vector<uint8_t>;

// A 3 x 2 RGB picture written by stb_image_write's writer `write` (PNG, JPEG, BMP, TGA, HDR).
template <class Write>
Bytes written(Write write) {
  Bytes out;
  write([](void* ctx, void* data, int size) {
    auto* o = static_cast<Bytes*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &out);
  return out;
}
const uint8_t kPixels[3 * 2 * 3] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180};

Bytes png() { return written([](auto f, void* o) { stbi_write_png_to_func(f, o, 3, 2, 3, kPixels, 9); }); }
Bytes jpeg() { return written([](auto f, void* o) { stbi_write_jpg_to_func(f, o, 3, 2, 3, kPixels, 95); }); }
Bytes bmp() { return written([](auto f, void* o) { stbi_write_bmp_to_func(f, o, 3, 2, 3, kPixels); }); }
Bytes tga() { return written([](auto f, void* o) { stbi_write_tga_to_func(f, o, 3, 2, 3, kPixels); }); }
Bytes hdr() {
  float rgb[3 * 2 * 3];
  for (int i = 0; i < 18; ++i) rgb[i] = kPixels[i] / 255.0f;
  return written([&](auto f, void* o) { stbi_write_hdr_to_func(f, o, 3, 2, 3, rgb); });
}
Bytes pnm() {  // binary PPM (P6): header, then the pixels
  const std::string head = "P6\n3 2\n255\n";
  Bytes b(head.begin(), head.end());
  b.insert(b.end(), kPixels, kPixels + sizeof kPixels);
  return b;
}
// A 1 x 1 GIF89a: header, logical screen with a 2-colour table, image descriptor, LZW data
// (minimum code size 2: clear, index 0, end), trailer.
Bytes gif() {
  return {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0x80, 0, 0, 0, 0, 0, 255, 255, 255,
          ',', 0, 0, 0, 0, 1, 0, 1, 0, 0, 2, 2, 0x44, 0x01, 0, ';'};
}

// Whether Debian's libstb itself decodes the bytes.
bool stb_decodes(const Bytes& b) {
  int w = 0, h = 0, c = 0;
  unsigned char* p = stbi_load_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &c, 0);
  stbi_image_free(p);
  return p != nullptr;
}

TEST(Formats, PngJpegAndBmpAreDecoded) {
  for (const auto& [name, bytes] : {std::pair<std::string, Bytes>{"a.png", png()}, {"a.jpg", jpeg()}, {"a.bmp", bmp()}}) {
    EXPECT_EQ(px::format_problem(bytes.data(), bytes.size()), "") << name;
    const auto img = px::decode(bytes, name);
    EXPECT_EQ(img.w, 3) << name;
    EXPECT_EQ(img.h, 2) << name;
    EXPECT_EQ(img.c, 3) << name;
  }
  EXPECT_EQ(px::decode(png(), "a.png").data, Bytes(kPixels, kPixels + sizeof kPixels));
  EXPECT_EQ(px::decode(bmp(), "a.bmp").data, Bytes(kPixels, kPixels + sizeof kPixels));
}

TEST(Formats, OtherFormatsLibstbDecodesAreRefusedByName) {
  const struct { const char* file; Bytes bytes; const char* said; } others[] = {
      {"anim.gif", gif(), "but a GIF: convert it to PNG first"},
      {"scan.ppm", pnm(), "but a Netpbm (PNM):"},
      {"sky.hdr", hdr(), "but a Radiance HDR:"},
      {"old.tga", tga(), "but a file whose first bytes are 00 00 0a 00 00 00 00 00:"},
  };
  for (const auto& o : others) {
    ASSERT_TRUE(stb_decodes(o.bytes)) << o.file << ": libstb does not decode it, so the test shows nothing";
    expect_error_containing([&] { px::decode(o.bytes, o.file); },
                            std::string("cannot decode image '") + o.file + "': not a PNG, JPEG, BMP, WebP or HEIF/AVIF file, the formats kiln reads, " + o.said);
  }
  // Signatures of formats stb does not read are named too (a WebP's and an HEIF's only where kiln does
  // not read them: kiln.js); fewer bytes than a signature are not it.
  const std::string webp("RIFF\x10\0\0\0WEBPVP8 ", 16);
  EXPECT_EQ(px::format_problem(reinterpret_cast<const uint8_t*>(webp.data()), webp.size()), "");
  const std::string heif("\0\0\0\x18" "ftypheic", 12), mov("\0\0\0\x14" "ftypqt  ", 12);  // HEIF is read (tests/test_heif.cpp)
  EXPECT_EQ(px::format_problem(reinterpret_cast<const uint8_t*>(heif.data()), heif.size()), "");
  EXPECT_NE(px::format_problem(reinterpret_cast<const uint8_t*>(mov.data()), mov.size()).find("but an ISO media file (MP4, QuickTime, ...) that is not an HEIF/AVIF image, brand 'qt  '"), std::string::npos);
  const uint8_t tiff[] = {'I', 'I', '*', 0, 8, 0, 0, 0}, half_png[] = {0x89, 'P', 'N', 'G'}, b = 'B';
  EXPECT_NE(px::format_problem(tiff, sizeof tiff).find("but a TIFF"), std::string::npos);
  EXPECT_NE(px::format_problem(half_png, sizeof half_png).find("first bytes are 89 50 4e 47:"), std::string::npos);
  EXPECT_NE(px::format_problem(&b, 1).find("first bytes are 42:"), std::string::npos);
  EXPECT_NE(px::format_problem(nullptr, 0).find("but an empty file:"), std::string::npos);
}

// The folder loaders read every header first: a GIF named .png is refused there, by name, before
// anything is decoded; the header pass's size and channels are decode's.
TEST(Formats, AFolderRefusesAnotherFormatBehindAnImageName) {
  TempDir d;
  write_bytes((d.path / "cat" / "a.png").string(), png());
  write_bytes((d.path / "dog" / "b.bmp").string(), bmp());
  const auto h = px::header_of_file((d.path / "dog" / "b.bmp").string());
  EXPECT_EQ(h.w, 3);
  EXPECT_EQ(h.h, 2);
  EXPECT_EQ(h.c, 3);
  EXPECT_EQ(read_image_folder(d.path.string()).images.sizes(), (std::vector<int64_t>{2, 3, 2, 3}));
  write_bytes((d.path / "dog" / "c.png").string(), gif());
  expect_error_containing([&] { read_image_folder(d.path.string()); },
                          "cannot decode image '" + (d.path / "dog" / "c.png").string() + "': not a PNG, JPEG, BMP, WebP or HEIF/AVIF file, the formats kiln reads, but a GIF");
  write_bytes((d.path / "dog" / "c.png").string(), {});
  expect_error_containing([&] { read_image_folder(d.path.string()); }, "c.png': the file is empty");
  expect_error_containing([&] { px::header_of_file((d.path / "none.png").string()); }, "cannot open image '");
}

}  // namespace formats_test
