// A JPEG's EXIF orientation (kiln/pixels/pixels.h): the eight transforms against their
// definitions on a 2 x 3 picture worked by hand, the tag found in real JPEG bytes (stb_image_write's,
// with an APP1 "Exif" segment put after the SOI, both byte orders, behind a JFIF and an XMP
// segment and bytes between segments), and malformed or truncated segments read as "as stored"
// without reading past the bytes; a PNG's eXIf chunk alike (stb_image_write's PNG, the chunk put
// after IHDR or behind a large text chunk; after IDAT or with a wrong CRC-32 it is passed over).
// And JPEGs whose scans use a table no segment defines, refused before stb_image decodes them.
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "helpers.h"
#include "kiln/core/crc32.h"
#include "kiln/data/folder.h"
#include "kiln/pixels/pixels.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::TempDir;
using kiln::test::write_bytes;

namespace {

using Bytes = std::vector<uint8_t>;

// The EXIF orientation's definition (EXIF 2.3, tag 0x0112) on stored pixels
//   0 1 2
//   3 4 5
// as shown: each row of `shown` lists the stored values, row by row, of the picture shown.
TEST(Exif, EachOrientationShowsThePictureAsItsDefinitionSays) {
  const px::Image stored{1, 2, 3, {0, 1, 2, 3, 4, 5}};
  const struct { int o; int64_t h, w; Bytes shown; } cases[] = {
      {1, 2, 3, {0, 1, 2, 3, 4, 5}},  // as stored
      {2, 2, 3, {2, 1, 0, 5, 4, 3}},  // mirrored left-right
      {3, 2, 3, {5, 4, 3, 2, 1, 0}},  // turned 180 degrees
      {4, 2, 3, {3, 4, 5, 0, 1, 2}},  // mirrored top-bottom
      {5, 3, 2, {0, 3, 1, 4, 2, 5}},  // transposed (the main diagonal)
      {6, 3, 2, {3, 0, 4, 1, 5, 2}},  // turned 90 degrees clockwise
      {7, 3, 2, {5, 2, 4, 1, 3, 0}},  // transposed across the other diagonal
      {8, 3, 2, {2, 5, 1, 4, 0, 3}},  // turned 90 degrees anticlockwise
  };
  for (const auto& c : cases) {
    const auto got = px::oriented(stored, c.o);
    EXPECT_EQ(got.h, c.h) << "orientation " << c.o;
    EXPECT_EQ(got.w, c.w) << "orientation " << c.o;
    EXPECT_EQ(got.data, c.shown) << "orientation " << c.o;
  }
  // 6 then 8 (clockwise, then anticlockwise) is the picture; 3 twice too; 2 is its own inverse.
  EXPECT_EQ(px::oriented(px::oriented(stored, 6), 8).data, stored.data);
  EXPECT_EQ(px::oriented(px::oriented(stored, 3), 3).data, stored.data);
  expect_error_containing([&] { px::oriented(stored, 9); }, "EXIF orientation must be 1..8, not 9");
}

TEST(Exif, ChannelsTravelWithTheirPixel) {
  const px::Image rgb{3, 1, 2, {10, 11, 12, 20, 21, 22}};
  const auto turned = px::oriented(rgb, 6);  // 1 x 2 turned clockwise: 2 x 1, the left pixel on top
  EXPECT_EQ(turned.h, 2);
  EXPECT_EQ(turned.w, 1);
  EXPECT_EQ(turned.data, (Bytes{10, 11, 12, 20, 21, 22}));
  EXPECT_EQ(px::oriented(rgb, 2).data, (Bytes{20, 21, 22, 10, 11, 12}));
}

// A w x h RGB JPEG (every pixel different; 5 x 3 by default), as stb_image_write writes it.
Bytes jpeg(int w = 5, int h = 3) {
  Bytes pixels;
  for (int i = 0; i < w * h; ++i) pixels.insert(pixels.end(), {uint8_t(17 * i), uint8_t(255 - 13 * i), uint8_t(40 + 7 * i)});
  Bytes out;
  stbi_write_jpg_to_func([](void* ctx, void* data, int size) {
    auto* o = static_cast<Bytes*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &out, w, h, 3, pixels.data(), 95);
  return out;
}

// An APP1 segment holding `payload`.
Bytes app1(const Bytes& payload) {
  const size_t len = payload.size() + 2;
  // Sized first, then filled: GCC 12 misreads inserting into a 4-byte vector as a copy past it
  // (-Warray-bounds / -Wstringop-overread on std::vector::insert).
  Bytes s(4 + payload.size());
  s[0] = 0xFF, s[1] = 0xE1, s[2] = uint8_t(len >> 8), s[3] = uint8_t(len & 0xFF);
  std::copy(payload.begin(), payload.end(), s.begin() + 4);
  return s;
}

// "Exif\0\0" and a TIFF structure whose first IFD holds `entries` tags: (tag, type, count, value),
// the orientation tag's SHORT value in the entry's first two value bytes.
struct Entry { uint16_t tag, type; uint32_t count; uint16_t value; };
Bytes exif(bool little, const std::vector<Entry>& entries, uint32_t ifd_offset = 8) {
  Bytes t = {'E', 'x', 'i', 'f', 0, 0};
  auto put16 = [&](uint16_t v) { little ? t.insert(t.end(), {uint8_t(v), uint8_t(v >> 8)}) : t.insert(t.end(), {uint8_t(v >> 8), uint8_t(v)}); };
  auto put32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) t.push_back(uint8_t(v >> (little ? 8 * i : 24 - 8 * i)));
  };
  t.insert(t.end(), 2, little ? uint8_t('I') : uint8_t('M'));
  put16(42);
  put32(ifd_offset);
  put16(static_cast<uint16_t>(entries.size()));
  for (const auto& e : entries) {
    put16(e.tag);
    put16(e.type);
    put32(e.count);
    put16(e.value);
    put16(0);
  }
  put32(0);  // no next IFD
  return t;
}

// `segments` put right after the JPEG's SOI (its first two bytes).
Bytes with_segments(const Bytes& file, const std::vector<Bytes>& segments) {
  Bytes out(file.begin(), file.begin() + 2);
  for (const auto& s : segments) out.insert(out.end(), s.begin(), s.end());
  out.insert(out.end(), file.begin() + 2, file.end());
  return out;
}

// `file`, tagged with orientation `o` in the byte order `little` says, read as tagged and decoded
// as `stored` (its pixels untagged) turned by `o`.
void expect_shown_turned(const Bytes& file, const std::string& name, const px::Image& stored, int o, bool little) {
  const std::string what = std::string(little ? "II" : "MM") + " orientation " + std::to_string(o);
  EXPECT_EQ(px::exif_orientation(file), o) << what;
  const auto shown = px::decode(file, name);
  const auto want = px::oriented(stored, o);
  EXPECT_EQ(shown.h, want.h) << what;
  EXPECT_EQ(shown.w, want.w) << what;
  EXPECT_EQ(shown.data, want.data) << what;
}

TEST(Exif, AJpegsOrientationIsAppliedWhenDecoded) {
  const Bytes plain = jpeg();
  ASSERT_GT(plain.size(), 100u);
  EXPECT_EQ(px::exif_orientation(plain), 1);
  const auto stored = px::decode(plain, "plain.jpg");
  ASSERT_EQ(stored.h, 3);
  ASSERT_EQ(stored.w, 5);
  const Bytes xmp = app1([] { std::string s = "http://ns.adobe.com/xap/1.0/"; s.push_back('\0'); s += "<x/>"; return Bytes(s.begin(), s.end()); }());
  for (bool little : {true, false})
    for (int o = 1; o <= 8; ++o) {
      // another tag first, as cameras write (Make), then the orientation
      const Bytes seg = app1(exif(little, {{0x010F, 2, 4, 0x4B4B}, {0x0112, 3, 1, uint16_t(o)}}));
      // bytes between segments, skipped as stb_image and libjpeg skip them, hide nothing
      const Bytes junk{0x00, 0x14, 0x14};
      for (const Bytes& file : {with_segments(plain, {seg}), with_segments(plain, {xmp, seg}), with_segments(plain, {xmp, junk, seg, junk})}) {
        expect_shown_turned(file, "tagged.jpg", stored, o, little);
      }
      // the conversion to fewer channels asked of the decoder keeps the orientation
      EXPECT_EQ(px::decode(with_segments(plain, {seg}), "tagged.jpg", 1).data, px::oriented(px::decode(plain, "plain.jpg", 1), o).data);
    }
}

TEST(Exif, MalformedOrTruncatedSegmentsLeaveThePictureAsStored) {
  const Bytes plain = jpeg();
  const auto stored = px::decode(plain, "plain.jpg");
  const Entry turn{0x0112, 3, 1, 6};
  const std::vector<std::pair<std::string, Bytes>> files = {
      {"orientation 0", with_segments(plain, {app1(exif(true, {{0x0112, 3, 1, 0}}))})},
      {"orientation 9", with_segments(plain, {app1(exif(true, {{0x0112, 3, 1, 9}}))})},
      {"a LONG, not a SHORT", with_segments(plain, {app1(exif(true, {{0x0112, 4, 1, 6}}))})},
      {"two values", with_segments(plain, {app1(exif(true, {{0x0112, 3, 2, 6}}))})},
      {"no orientation tag", with_segments(plain, {app1(exif(false, {{0x010F, 2, 4, 0x4B4B}}))})},
      {"the IFD past the segment", with_segments(plain, {app1(exif(true, {turn}, 4000))})},
      {"the IFD offset at the segment's end", with_segments(plain, {app1(exif(true, {turn}, 20))})},
      {"byte order XX", [&] { auto e = exif(true, {turn}); e[6] = e[7] = 'X'; return with_segments(plain, {app1(e)}); }()},
      {"not 42", [&] { auto e = exif(true, {turn}); e[8] = 43; return with_segments(plain, {app1(e)}); }()},
      {"more entries than the segment holds, none the orientation",
       [&] { auto e = exif(true, {{0x010F, 2, 4, 0x4B4B}}); e[14] = 200; return with_segments(plain, {app1(e)}); }()},
      {"EXIF after the scan", [&] {
         Bytes f(plain.begin(), plain.end() - 2);  // the trailing EOI moved after the segment
         const auto s = app1(exif(true, {turn}));
         f.insert(f.end(), s.begin(), s.end());
         f.insert(f.end(), {0xFF, 0xD9});
         return f;
       }()},
  };
  for (const auto& [what, file] : files) {
    EXPECT_EQ(px::exif_orientation(file), 1) << what;
    EXPECT_EQ(px::decode(file, "odd.jpg").data, stored.data) << what;
  }
  // Entries are read while they lie inside the segment: an orientation before the count runs out is read.
  auto over = exif(true, {turn});
  over[14] = 200;
  EXPECT_EQ(px::exif_orientation(with_segments(plain, {app1(over)})), 6);
  // A segment whose length runs past the file, and every prefix of a tagged file: never a read
  // past the bytes (the sanitizer build runs this); the tag counts once its whole segment (SOI,
  // marker, length and payload: 4 + the length) is there, and not a byte before.
  const Bytes tagged = with_segments(plain, {app1(exif(false, {turn}))});
  const size_t whole = 4 + (size_t(tagged[4]) << 8 | tagged[5]);
  ASSERT_LT(whole + 8, tagged.size());
  for (size_t n = 0; n <= whole + 8; ++n) {
    const int o = px::exif_orientation(Bytes(tagged.begin(), tagged.begin() + static_cast<std::ptrdiff_t>(n)));
    EXPECT_EQ(o, n >= whole ? 6 : 1) << n;
  }
  Bytes long_segment(tagged.begin(), tagged.begin() + 40);
  long_segment[4] = 0x7F;  // APP1's length: 32 K, far past the 40 bytes
  EXPECT_EQ(px::exif_orientation(long_segment), 1);
  // A PNG's signature alone and a BMP's bytes: as stored.
  EXPECT_EQ(px::exif_orientation(Bytes{0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A}), 1);
  EXPECT_EQ(px::exif_orientation(Bytes{'B', 'M', 0, 0}), 1);
}

// A w x h RGB PNG (every pixel different), as stb_image_write writes it.
Bytes png(int w = 5, int h = 3) {
  Bytes pixels;
  for (int i = 0; i < w * h; ++i) pixels.insert(pixels.end(), {uint8_t(17 * i), uint8_t(255 - 13 * i), uint8_t(40 + 7 * i)});
  Bytes out;
  stbi_write_png_to_func([](void* ctx, void* data, int size) {
    auto* o = static_cast<Bytes*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &out, w, h, 3, pixels.data(), 3 * w);
  return out;
}

// A PNG chunk: length, type, data, and the CRC-32 of type and data (or `crc` where given).
Bytes chunk(const std::string& type, const Bytes& data, std::optional<uint32_t> crc = std::nullopt) {
  Bytes c;
  auto put32 = [&](uint32_t v) { c.insert(c.end(), {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)}); };
  put32(static_cast<uint32_t>(data.size()));
  c.insert(c.end(), type.begin(), type.end());
  c.insert(c.end(), data.begin(), data.end());
  put32(crc ? *crc : crc32_portable(c.data() + 4, c.size() - 4));
  return c;
}

// `chunks` put in a PNG at byte `at`: 33, right after its IHDR chunk (8 + 25 bytes), by default.
Bytes with_chunks(const Bytes& file, const std::vector<Bytes>& chunks, size_t at = 33) {
  Bytes out(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(at));
  for (const auto& c : chunks) out.insert(out.end(), c.begin(), c.end());
  out.insert(out.end(), file.begin() + static_cast<std::ptrdiff_t>(at), file.end());
  return out;
}

// An eXIf chunk's data: the TIFF structure alone (exif() without its "Exif\0\0").
Bytes tiff(bool little, const std::vector<Entry>& entries) {
  const Bytes e = exif(little, entries);
  return Bytes(e.begin() + 6, e.end());
}

// ImageMagick's older way to keep EXIF in a PNG: a text chunk keyed "Raw profile type exif" whose
// text is "\nexif\n", the length in 8 columns, then the bytes in hex, 72 digits a line. `type` is
// tEXt (the text as it is) or zTXt (method 0: zlib-compressed).
Bytes raw_profile_chunk(const std::string& type, const Bytes& payload) {
  char length[16];
  std::snprintf(length, sizeof length, "%8zu", payload.size());
  std::string text = std::string("\nexif\n") + length + "\n";
  for (size_t i = 0; i < payload.size(); ++i) {
    static const char* hex = "0123456789abcdef";
    text += hex[payload[i] >> 4], text += hex[payload[i] & 15];
    if (i % 36 == 35 || i + 1 == payload.size()) text += '\n';
  }
  std::string data = "Raw profile type exif";
  data.push_back('\0');
  if (type == "zTXt") {
    uLongf n = compressBound(text.size());
    Bytes z(n);
    EXPECT_EQ(compress(z.data(), &n, reinterpret_cast<const Bytef*>(text.data()), text.size()), Z_OK);
    data.push_back('\0');  // compression method 0
    data.append(reinterpret_cast<const char*>(z.data()), n);
  } else {
    data += text;
  }
  return chunk(type, Bytes(data.begin(), data.end()));
}

TEST(Exif, APngsEXIfChunkIsAppliedWhenDecoded) {
  const Bytes plain = png();
  ASSERT_EQ(std::string(plain.begin() + 12, plain.begin() + 16), "IHDR");
  EXPECT_EQ(px::exif_orientation(plain), 1);
  const auto stored = px::decode(plain, "plain.png");
  ASSERT_EQ(stored.h, 3);
  ASSERT_EQ(stored.w, 5);
  const Bytes text = chunk("tEXt", [] { std::string s = "Comment"; s.push_back('\0'); s += "kiln"; return Bytes(s.begin(), s.end()); }());
  for (bool little : {true, false})
    for (int o = 1; o <= 8; ++o) {
      const Bytes x = chunk("eXIf", tiff(little, {{0x010F, 2, 4, 0x4B4B}, {0x0112, 3, 1, uint16_t(o)}}));
      for (const Bytes& file : {with_chunks(plain, {x}), with_chunks(plain, {text, x})}) {
        expect_shown_turned(file, "tagged.png", stored, o, little);
      }
      EXPECT_EQ(px::decode(with_chunks(plain, {x}), "tagged.png", 1).data, px::oriented(px::decode(plain, "plain.png", 1), o).data);
    }
}

TEST(Exif, APngsEXIfAfterItsPixelsDamagedOrMalformedLeavesThePictureAsStored) {
  const Bytes plain = png();
  const auto stored = px::decode(plain, "plain.png");
  const Entry turn{0x0112, 3, 1, 6};
  const Bytes good = chunk("eXIf", tiff(true, {turn}));
  const size_t iend = plain.size() - 12;  // the last chunk: IEND, after the pixels
  ASSERT_EQ(std::string(plain.begin() + static_cast<std::ptrdiff_t>(iend) + 4, plain.begin() + static_cast<std::ptrdiff_t>(iend) + 8), "IEND");
  const std::vector<std::pair<std::string, Bytes>> files = {
      {"eXIf after IDAT", with_chunks(plain, {good}, iend)},
      {"a wrong CRC-32", with_chunks(plain, {chunk("eXIf", tiff(true, {turn}), 0x12345678)})},
      {"JPEG's 'Exif\\0\\0' before the TIFF structure", with_chunks(plain, {chunk("eXIf", exif(true, {turn}))})},
      {"orientation 9", with_chunks(plain, {chunk("eXIf", tiff(true, {{0x0112, 3, 1, 9}}))})},
      {"an empty eXIf", with_chunks(plain, {chunk("eXIf", {})})},
      {"another chunk's type", with_chunks(plain, {chunk("eXIF", tiff(true, {turn}))})},
      // Not read, as Debian 12's Chromium 156 does not read it (Pillow's getexif does):
      // bench/results/png-exif-chromium-2026-12-05.txt.
      {"a tEXt 'Raw profile type exif'", with_chunks(plain, {raw_profile_chunk("tEXt", exif(true, {turn}))})},
      {"a zTXt 'Raw profile type exif'", with_chunks(plain, {raw_profile_chunk("zTXt", exif(true, {turn}))})},
  };
  for (const auto& [what, file] : files) {
    EXPECT_EQ(px::exif_orientation(file), 1) << what;
    EXPECT_EQ(px::decode(file, "odd.png").data, stored.data) << what;
  }
  // The first eXIf whose CRC-32 matches decides: a damaged one is passed over, a second is not read.
  EXPECT_EQ(px::exif_orientation(with_chunks(plain, {chunk("eXIf", tiff(true, {{0x0112, 3, 1, 3}}), 0), good})), 6);
  EXPECT_EQ(px::exif_orientation(with_chunks(plain, {good, chunk("eXIf", tiff(true, {{0x0112, 3, 1, 3}}))})), 6);
  // Every prefix of a tagged file: never a read past the bytes (the sanitizer build runs this);
  // the tag counts once its whole chunk (length, type, data and CRC-32) is there, not a byte before.
  const Bytes tagged = with_chunks(plain, {good});
  const size_t whole = 33 + good.size();
  for (size_t n = 0; n <= whole + 8; ++n)
    EXPECT_EQ(px::exif_orientation(Bytes(tagged.begin(), tagged.begin() + static_cast<std::ptrdiff_t>(n))), n >= whole ? 6 : 1) << n;
  // A chunk whose length runs past the file, or past 2^32 - 1 from its start: as stored.
  Bytes long_chunk = tagged;
  long_chunk[33] = 0x7F;
  EXPECT_EQ(px::exif_orientation(long_chunk), 1);
  long_chunk[33] = 0xFF, long_chunk[34] = 0xFF, long_chunk[35] = 0xFF, long_chunk[36] = 0xFF;
  EXPECT_EQ(px::exif_orientation(long_chunk), 1);
}

// The folder loaders read every header before decoding: an image stored 3 wide and 5 high and
// turned by its EXIF tag counts as the 5 x 3 it is shown as, beside an upright 5 x 3 one.
TEST(Exif, AFolderCountsATurnedJpegAtTheSizeItIsShown) {
  TempDir d;
  const Bytes upright = jpeg(5, 3), tall = jpeg(3, 5);
  write_bytes((d.path / "cat" / "upright.jpg").string(), upright);
  for (int o : {6, 8}) write_bytes((d.path / "dog" / ("turned" + std::to_string(o) + ".jpg")).string(),
                                   with_segments(tall, {app1(exif(o == 8, {{0x0112, 3, 1, uint16_t(o)}}))}));
  for (const auto& [file, w, h] : {std::tuple<std::string, int, int>{"dog/turned6.jpg", 5, 3}, {"dog/turned8.jpg", 5, 3}, {"cat/upright.jpg", 5, 3}}) {
    const auto header = px::header_of_file((d.path / file).string());  // the header pass: the size shown
    EXPECT_EQ(header.w, w) << file;
    EXPECT_EQ(header.h, h) << file;
  }
  expect_error_containing([&] { px::header_of_file((d.path / "none.jpg").string()); }, "cannot open image '");
  const auto ds = read_image_folder(d.path.string());
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{3, 3, 3, 5}));
  for (int o : {6, 8}) {
    const auto want = px::oriented(px::decode(tall, "tall.jpg"), o);
    ASSERT_EQ(want.h, 3);
    const auto got = ds.images[o == 6 ? 1 : 2].permute({1, 2, 0}).contiguous();
    EXPECT_EQ(Bytes(got.data_ptr<uint8_t>(), got.data_ptr<uint8_t>() + got.numel()), want.data) << "orientation " << o;
  }
  // A JPEG whose segments before its scan run past the header pass's first read (16 KiB, then
  // doubled until the scan; 100,000 bytes after its end keep it from reading the whole file at
  // once): read on to its EXIF segment, still counted turned.
  const Bytes big_xmp = app1([] { std::string s = "http://ns.adobe.com/xap/1.0/"; s.push_back('\0'); s += std::string(40000, ' '); return Bytes(s.begin(), s.end()); }());
  Bytes late = with_segments(tall, {big_xmp, app1(exif(true, {{0x0112, 3, 1, 6}}))});
  late.insert(late.end(), 100000, 0);
  write_bytes((d.path / "late.jpg").string(), late);
  EXPECT_EQ(px::header_of_file((d.path / "late.jpg").string()).w, 5);
  EXPECT_EQ(px::decode(read_file((d.path / "late.jpg").string()), "late.jpg").w, 5);
}

// The same for PNGs: turned by their eXIf chunk, counted and stored at the size shown; one whose
// chunks before its pixels run past the header pass's first read is read on to its eXIf.
TEST(Exif, AFolderCountsATurnedPngAtTheSizeItIsShown) {
  TempDir d;
  const Bytes tall = png(3, 5);
  write_bytes((d.path / "cat" / "upright.png").string(), png(5, 3));
  for (int o : {6, 8}) write_bytes((d.path / "dog" / ("turned" + std::to_string(o) + ".png")).string(),
                                   with_chunks(tall, {chunk("eXIf", tiff(o == 6, {{0x0112, 3, 1, uint16_t(o)}}))}));
  const Bytes big_text = chunk("iTXt", [] { std::string s = "XML:com.adobe.xmp"; s.append(5, '\0'); s += std::string(40000, ' '); return Bytes(s.begin(), s.end()); }());
  Bytes late = with_chunks(tall, {big_text, chunk("eXIf", tiff(true, {{0x0112, 3, 1, 6}}))});
  late.insert(late.end(), 100000, 0);  // after IEND, where stb_image reads nothing
  write_bytes((d.path / "dog" / "late.png").string(), late);
  for (const char* file : {"dog/turned6.png", "dog/turned8.png", "dog/late.png", "cat/upright.png"}) {
    const auto header = px::header_of_file((d.path / file).string());
    EXPECT_EQ(header.w, 5) << file;
    EXPECT_EQ(header.h, 3) << file;
  }
  const auto ds = read_image_folder(d.path.string());
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{4, 3, 3, 5}));
  const auto stored = px::decode(tall, "tall.png");
  for (int i : {1, 2, 3}) {  // dog/late.png, dog/turned6.png, dog/turned8.png, in the folder's (sorted) order
    const auto want = px::oriented(stored, i == 3 ? 8 : 6);
    const auto got = ds.images[i].permute({1, 2, 0}).contiguous();
    EXPECT_EQ(Bytes(got.data_ptr<uint8_t>(), got.data_ptr<uint8_t>() + got.numel()), want.data) << i;
  }
}

}  // namespace

namespace {
// The offsets of a JPEG's table headers: DHT's class/id bytes (0x00 DC 0, 0x10 AC 0, ...) or
// DQT's precision/id bytes, and [start, end) of each such segment.
struct Tables {
  std::vector<size_t> headers;
  std::vector<std::pair<size_t, size_t>> segments;
};
Tables tables(const Bytes& b, uint8_t marker) {
  Tables t;
  for (size_t p = 2; p + 4 <= b.size() && b[p] == 0xFF && b[p + 1] != 0xDA;) {
    const size_t len = size_t(b[p + 2]) << 8 | b[p + 3];
    if (b[p + 1] == marker) {
      t.segments.emplace_back(p, p + 2 + len);
      for (size_t q = p + 4; q < p + 2 + len;) {
        t.headers.push_back(q);
        size_t size = 1 + 64 * ((b[q] >> 4) ? 2 : 1);
        if (marker == 0xC4) {
          size = 17;
          for (int i = 1; i <= 16; ++i) size += b[q + i];
        }
        q += size;
      }
    }
    p += 2 + len;
  }
  return t;
}
}  // namespace

// stb_image decodes a scan whose Huffman or quantization table no segment defined from memory it
// never initialised (fuzz_image crashed inside Debian 12's libstb on such a file); kiln refuses
// the file first, naming it and the table, and takes every JPEG that defines its tables.
TEST(JpegTables, AScanUsingATableNoSegmentDefinesIsRefusedBeforeDecoding) {
  const Bytes good = jpeg();
  EXPECT_EQ(px::jpeg_table_problem(good), "");
  EXPECT_EQ(px::decode(good, "good.jpg").w, 5);
  const Tables dht = tables(good, 0xC4), dqt = tables(good, 0xDB);
  ASSERT_EQ(dht.headers.size(), 4u);  // stb_image_write: DC 0, AC 0, DC 1, AC 1
  ASSERT_FALSE(dqt.segments.empty());
  const struct { uint8_t from, to; const char* message; } relabelled[] = {
      {0x10, 0x11, "a JPEG whose scan uses Huffman table AC 0, which no DHT segment before it defines"},
      {0x00, 0x02, "a JPEG whose scan uses Huffman table DC 0, which no DHT segment before it defines"},
      {0x11, 0x13, "a JPEG whose scan uses Huffman table AC 1, which no DHT segment before it defines"},
  };
  for (const auto& r : relabelled) {
    Bytes b = good;
    size_t changed = 0;
    for (size_t h : dht.headers)
      if (b[h] == r.from) b[h] = r.to, ++changed;
    ASSERT_EQ(changed, 1u) << int(r.from);
    EXPECT_NE(px::jpeg_table_problem(b).find(r.message), std::string::npos) << px::jpeg_table_problem(b);
    expect_error_containing([&] { px::decode(b, "relabelled.jpg"); }, std::string("cannot decode image 'relabelled.jpg': ") + r.message);
  }
  // A table counting more than 256 codes (stb_image 2.27 writes them past its arrays, stb issue
  // #1289): the counts of codes 15 and 16 bits long in DC table 0 set to 255 each.
  Bytes many = good;
  const size_t dc0 = dht.headers[0];
  ASSERT_EQ(many[dc0], 0x00);
  size_t codes = 255 + 255;
  for (int i = 1; i <= 14; ++i) codes += many[dc0 + i];
  many[dc0 + 15] = many[dc0 + 16] = 255;
  EXPECT_NE(px::jpeg_table_problem(many).find("a JPEG whose DHT segment defines Huffman table DC 0 with " + std::to_string(codes) +
                                              " codes, more than the 256 a table can hold"),
            std::string::npos) << px::jpeg_table_problem(many);
  expect_error_containing([&] { px::decode(many, "many.jpg"); }, "cannot decode image 'many.jpg': a JPEG whose DHT segment");
  // Without its DQT segments: the first component's quantization table is undefined.
  Bytes no_dqt = good;
  for (auto it = dqt.segments.rbegin(); it != dqt.segments.rend(); ++it)
    no_dqt.erase(no_dqt.begin() + std::ptrdiff_t(it->first), no_dqt.begin() + std::ptrdiff_t(it->second));
  expect_error_containing([&] { px::decode(no_dqt, "no-dqt.jpg"); },
                          "cannot decode image 'no-dqt.jpg': a JPEG whose component 1 uses quantization table 0, which no DQT segment before its scan defines");
  // A table defined twice, bytes between segments (skipped by stb too) and an EXIF segment: taken.
  Bytes padded = with_segments(good, {app1(exif(false, {{0x0112, 3, 1, 1}})), Bytes{0x00, 0x14, 0x14}});
  EXPECT_EQ(px::jpeg_table_problem(padded), "");
  EXPECT_EQ(px::decode(padded, "padded.jpg").data, px::decode(good, "good.jpg").data);
  // Not JPEGs, and every prefix of one (the cut segment read as stb reads it, zeros past the end):
  // no table problem.
  EXPECT_EQ(px::jpeg_table_problem(Bytes{0x89, 'P', 'N', 'G'}), "");
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_EQ(px::jpeg_table_problem(Bytes(good.begin(), good.begin() + std::ptrdiff_t(n))), "") << n;
}
