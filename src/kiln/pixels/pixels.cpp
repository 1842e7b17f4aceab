#include "kiln/pixels/pixels.h"

#include <stb/stb_image.h>
#include <stb/stb_image_resize.h>
#ifdef KILN_PIXELS_WEBP  // the native build (Debian's libwebp); kiln.js leaves WebP to the browser
#include <webp/decode.h>
#include <webp/demux.h>
#endif
#ifdef KILN_PIXELS_HEIF  // the native build with KILN_WITH_HEIF (Debian's libheif)
#include <libheif/heif.h>
#endif

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <string_view>

#include "kiln/core/crc32.h"
#include "kiln/core/error.h"

namespace kiln::px {

#ifdef KILN_PIXELS_WEBP
const bool kReadsWebP = true;
#define KILN_WEBP_EXTENSIONS "/.webp"
#else
const bool kReadsWebP = false;
#define KILN_WEBP_EXTENSIONS ""
#endif
#ifdef KILN_PIXELS_HEIF
const bool kReadsHeif = true;
#define KILN_HEIF_EXTENSIONS "/.heic/.heif/.avif"
#else
const bool kReadsHeif = false;
#define KILN_HEIF_EXTENSIONS ""
#endif
const char* const kImageExtensions = ".png/.jpg/.jpeg/.bmp" KILN_WEBP_EXTENSIONS KILN_HEIF_EXTENSIONS;

#ifdef KILN_PIXELS_HEIF
// libheif initialised once and never finished: its codecs stay registered for the process. Its
// API asks for heif_init before any other call where the decoders are plugins, as in Debian 13's
// libheif 1.23 (libheif-plugin-libde265, -dav1d); `kiln env`'s decoder line calls it too, though
// 1.23 was seen to load its plugins on first use without it.
namespace {
const heif_error& heif_initialised() {
  static const heif_error initialised = heif_init(nullptr);
  return initialised;
}
}  // namespace
#endif

std::string decoders() {
  std::string out = "PNG, JPEG, BMP (stb_image)";
#ifdef KILN_PIXELS_WEBP
  const int v = WebPGetDecoderVersion();
  out += "; WebP (libwebp " + std::to_string(v >> 16) + "." + std::to_string(v >> 8 & 255) + "." + std::to_string(v & 255) + ")";
#endif
#ifdef KILN_PIXELS_HEIF
  const heif_error& init = heif_initialised();
  out += std::string("; HEIF/AVIF (libheif ") + heif_get_version();
  if (init.code != heif_error_Ok) out += std::string(", heif_init failed: ") + (init.message ? init.message : "no message");
  out += std::string(": HEVC ") + (heif_have_decoder_for_format(heif_compression_HEVC) ? "yes" : "no") + ", AV1 " +
         (heif_have_decoder_for_format(heif_compression_AV1) ? "yes" : "no") + ")";
#endif
  return out;
}

bool is_image_file(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return !ext.empty() && ("/" + std::string(kImageExtensions) + "/").find("/" + ext + "/") != std::string::npos;
}

namespace {
// A WebP's signature: a RIFF container ('RIFF', its size, 'WEBP').
bool is_webp(const uint8_t* h, size_t n) {
  return n >= 12 && std::equal(h, h + 4, "RIFF") && std::equal(h + 8, h + 12, "WEBP");
}

// An ISO base media file (HEIF, AVIF, MP4, QuickTime, ...): a 'ftyp' box first.
bool is_iso_media(const uint8_t* h, size_t n) { return n >= 12 && std::equal(h + 4, h + 8, "ftyp"); }

// An HEIF or AVIF still image: an ISO media file whose 'ftyp' box names one of their brands, as the
// major brand or a compatible one (ISO/IEC 23008-12 annex B: heic, heix, heim, heis, mif1; the image
// sequences' hevc, hevx, msf1; ISO/IEC 23000-22 and AV1-AVIF: miaf, avif, avis). The box's brands
// are read within its size and the n bytes given.
bool is_heif(const uint8_t* h, size_t n) {
  if (!is_iso_media(h, n)) return false;
  const size_t size = static_cast<size_t>(h[0]) << 24 | static_cast<size_t>(h[1]) << 16 | static_cast<size_t>(h[2]) << 8 | h[3];
  const size_t end = std::min(n, size < 16 ? size_t{12} : size);
  static const char* const brands[] = {"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "miaf", "avif", "avis"};
  for (size_t at = 8; at + 4 <= end; at += at == 8 ? 8 : 4)  // the major brand, its minor version skipped, then the compatible ones
    for (const char* b : brands)
      if (std::equal(h + at, h + at + 4, b)) return true;
  return false;
}
}  // namespace

void check_size(int64_t w, int64_t h, const std::string& name) {
  if (w <= 0 || h <= 0 || w * h > (int64_t{1} << 26))  // 64 Mpixel: a bomb, not a training image
    throw Error("image '" + name + "': implausible size " + std::to_string(w) + "x" + std::to_string(h));
}

std::string format_problem(const uint8_t* h, size_t n) {
  using namespace std::literals;
  auto starts = [&](size_t at, std::string_view sig) {
    return n >= at + sig.size() && std::equal(sig.begin(), sig.end(), h + at, [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; });
  };
  if (starts(0, "\x89PNG\r\n\x1a\n"sv) || starts(0, "\xFF\xD8"sv) || starts(0, "BM"sv)) return "";
  if (kReadsWebP && is_webp(h, n)) return "";
  if (kReadsHeif && is_heif(h, n)) return "";
  static const struct { size_t at; std::string_view sig; const char* name; } known[] = {
      {0, "GIF8"sv, "a GIF"},
      {0, "II*\0"sv, "a TIFF"},
      {0, "MM\0*"sv, "a TIFF"},
      {0, "8BPS"sv, "a Photoshop"},
      {0, "#?RADIANCE"sv, "a Radiance HDR"},
      {0, "#?RGBE"sv, "a Radiance HDR"},
      {0, "\x53\x80\xF6\x34"sv, "a Softimage PIC"},
      {0, "qoif"sv, "a QOI"},
      {0, "\0\0\0\x0CjP  "sv, "a JPEG 2000"},
      {0, "\xFF\x4F\xFF\x51"sv, "a JPEG 2000"},
      {0, "\0\0\x01\0"sv, "an ICO"},
  };
  std::string what = is_webp(h, n) ? "a WebP" : is_heif(h, n) ? "an HEIF/AVIF" : "";  // here only where kiln does not read them (kiln.js)
  if (what.empty() && is_iso_media(h, n)) {  // an MP4, a QuickTime movie, ...: its major brand, where printable
    what = "an ISO media file (MP4, QuickTime, ...) that is not an HEIF/AVIF image";
    if (std::all_of(h + 8, h + 12, [](uint8_t c) { return c >= 32 && c < 127; })) what += ", brand '" + std::string(h + 8, h + 12) + "'";
  }
  for (const auto& k : known)
    if (what.empty() && starts(k.at, k.sig)) what = k.name;
  if (n >= 3 && h[0] == 'P' && h[1] >= '1' && h[1] <= '7' && std::isspace(h[2])) what = "a Netpbm (PNM)";
  if (n == 0) what = "an empty file";
  if (what.empty()) {  // its first bytes, in hex
    static const char* digits = "0123456789abcdef";
    what = "a file whose first bytes are";
    for (size_t i = 0; i < std::min<size_t>(n, 8); ++i) what += std::string(" ") + digits[h[i] >> 4] + digits[h[i] & 15];
  }
  const std::string formats = std::string("PNG, JPEG") + (kReadsWebP || kReadsHeif ? ", BMP" : " or BMP") +
                              (kReadsWebP ? kReadsHeif ? ", WebP" : " or WebP" : "") + (kReadsHeif ? " or HEIF/AVIF" : "");
  return "not a " + formats + " file, the formats kiln reads, but " + what + ": convert it to PNG first";
}

#if defined(KILN_PIXELS_WEBP) || defined(KILN_PIXELS_HEIF)
namespace {
// Channels converted as stb_image converts them (decode's `channels`), for the decoders that do
// not: grey is its luma (77 R + 150 G + 29 B) >> 8, an added alpha is 255, a dropped one dropped.
Image converted_as_stb(const Image& img, int channels) {
  if (channels == 0 || channels == img.c) return img;
  Image out{channels, img.h, img.w, std::vector<uint8_t>(static_cast<size_t>(channels * img.h * img.w))};
  const bool colour = img.c >= 3, alpha = img.c == 2 || img.c == 4;
  for (size_t i = 0, n = static_cast<size_t>(img.h * img.w); i < n; ++i) {
    const uint8_t* in = img.data.data() + i * static_cast<size_t>(img.c);
    uint8_t* o = out.data.data() + i * static_cast<size_t>(channels);
    const uint8_t a = alpha ? in[img.c - 1] : 255;
    const uint8_t y = colour ? static_cast<uint8_t>((in[0] * 77 + in[1] * 150 + in[2] * 29) >> 8) : in[0];
    if (channels <= 2) o[0] = y;
    else for (int k = 0; k < 3; ++k) o[k] = colour ? in[k] : in[0];
    if (channels == 2 || channels == 4) o[channels - 1] = a;
  }
  return out;
}
}  // namespace
#endif

#ifdef KILN_PIXELS_WEBP
namespace {
std::string webp_problem(VP8StatusCode s) {
  switch (s) {
    case VP8_STATUS_NOT_ENOUGH_DATA: return "its WebP data is cut short";
    case VP8_STATUS_UNSUPPORTED_FEATURE: return "a WebP feature libwebp does not support";
    case VP8_STATUS_OUT_OF_MEMORY: return "out of memory decoding its WebP data";
    default: return "its WebP data is malformed";
  }
}

// A WebP's features (size, alpha, animation) from its first bytes, the size checked; throws naming `name`.
WebPBitstreamFeatures webp_features(const uint8_t* b, size_t n, const std::string& name) {
  WebPBitstreamFeatures f;
  const VP8StatusCode s = WebPGetFeatures(b, n, &f);
  if (s != VP8_STATUS_OK) throw Error("cannot decode image '" + name + "': " + webp_problem(s));
  check_size(f.width, f.height, name);
  return f;
}

// A WebP as libwebp decodes it, with the channels the file holds (RGB, or RGBA where it has
// alpha; WebP has no grey): a still picture's pixels, or an animation's first frame as its canvas
// shows it (WebPAnimDecoder: the canvas transparent black where the frame does not cover it), as
// Pillow opens one (and torchvision's ImageFolder with it). No EXIF orientation: Chromium 156
// applies none to a WebP (bench/results/webp-exif-chromium-2026-12-05.txt), and Pillow's open
// leaves every format as stored.
Image decode_webp(const std::vector<uint8_t>& b, const std::string& name) {
  const WebPBitstreamFeatures f = webp_features(b.data(), b.size(), name);
  const int c = f.has_alpha ? 4 : 3;
  if (!f.has_animation) {
    Image out{c, f.height, f.width, std::vector<uint8_t>(static_cast<size_t>(c * int64_t{f.width} * f.height))};
    const uint8_t* ok = f.has_alpha ? WebPDecodeRGBAInto(b.data(), b.size(), out.data.data(), out.data.size(), c * f.width)
                                    : WebPDecodeRGBInto(b.data(), b.size(), out.data.data(), out.data.size(), c * f.width);
    if (!ok) throw Error("cannot decode image '" + name + "': its WebP data is malformed or cut short");
    return out;
  }
  WebPAnimDecoderOptions options;
  if (!WebPAnimDecoderOptionsInit(&options)) throw Error("cannot decode image '" + name + "': libwebp's animation decoder is not the version kiln was built with");
  options.color_mode = MODE_RGBA;  // not premultiplied
  options.use_threads = 0;
  const WebPData data{b.data(), b.size()};
  std::unique_ptr<WebPAnimDecoder, void (*)(WebPAnimDecoder*)> anim(WebPAnimDecoderNew(&data, &options), &WebPAnimDecoderDelete);
  WebPAnimInfo info;
  uint8_t* canvas = nullptr;
  int timestamp = 0;
  if (!anim || !WebPAnimDecoderGetInfo(anim.get(), &info) || info.canvas_width != static_cast<uint32_t>(f.width) ||
      info.canvas_height != static_cast<uint32_t>(f.height) || !WebPAnimDecoderGetNext(anim.get(), &canvas, &timestamp))
    throw Error("cannot decode image '" + name + "': its WebP animation is malformed or cut short (kiln reads its first frame)");
  return converted_as_stb(Image{4, f.height, f.width, std::vector<uint8_t>(canvas, canvas + 4 * int64_t{f.width} * f.height)}, c);
}
}  // namespace
#endif

#ifdef KILN_PIXELS_HEIF
namespace {
using HeifContext = std::unique_ptr<heif_context, void (*)(heif_context*)>;
using HeifHandle = std::unique_ptr<heif_image_handle, void (*)(const heif_image_handle*)>;
using HeifImage = std::unique_ptr<heif_image, void (*)(const heif_image*)>;

// How an ISO media file of `size` bytes falls short of its own top-level boxes (ftyp, meta, mdat,
// ...: a 32-bit size, or 1 and a 64-bit one, or 0 for "to the end"): "; the file is cut short: ..."
// where the last box it starts needs more bytes than there are, else "" (also for a malformed
// size, which libheif's message covers). read(at, n, out) gives up to n bytes at offset `at`.
template <class Read>
std::string iso_cut_short(uint64_t size, Read read) {
  uint64_t at = 0;
  for (int boxes = 0; at < size && boxes < 4096; ++boxes) {
    uint8_t h[16] = {};
    const size_t got = read(at, size - at < 16 ? static_cast<size_t>(size - at) : size_t{16}, h);
    uint64_t n = 0;
    for (int k = 0; k < 4; ++k) n = n << 8 | h[k];
    if (n == 1) {
      n = 0;
      for (int k = 8; k < 16; ++k) n = n << 8 | h[k];
    } else if (n == 0) {
      n = size - at;
    }
    const uint64_t header = h[0] == 0 && h[1] == 0 && h[2] == 0 && h[3] == 1 ? 16 : 8;
    if (got < header || n > size - at)
      return "; the file is cut short: its boxes take " + (got < header ? "more than " + std::to_string(size) : std::to_string(at + n)) +
             " bytes, it has " + std::to_string(size);
    if (n < header) return "";
    at += n;
  }
  return "";
}

// Where libheif's decoders are plugins, a system may lack one (Ubuntu 24.04's libheif1 installs
// an AV1 plugin and no HEVC one): the decoders missing, and the packages that hold them.
std::string missing_heif_decoders() {
  std::string out;
  if (!heif_have_decoder_for_format(heif_compression_HEVC)) out += "HEVC (HEIC: libheif-plugin-libde265)";
  if (!heif_have_decoder_for_format(heif_compression_AV1)) out += std::string(out.empty() ? "" : ", ") + "AV1 (AVIF: libheif-plugin-dav1d)";
  return out.empty() ? "" : "; this libheif has no decoder for " + out + "; on Debian and Ubuntu the package in brackets adds it";
}

// Throws kiln's message for a libheif error, naming the file, with `hint()` after it.
template <class Hint>
void heif_ok(const heif_error& e, const std::string& name, Hint hint) {
  if (e.code != heif_error_Ok)
    throw Error("cannot decode image '" + name + "': libheif: " + (e.message && *e.message ? e.message : "error " + std::to_string(e.code)) +
                (e.code == heif_error_Unsupported_feature && e.subcode == heif_suberror_Unsupported_codec ? missing_heif_decoders() : "") + hint());
}
void heif_ok(const heif_error& e, const std::string& name) {
  heif_ok(e, name, [] { return std::string(); });
}

// A context for one file, its tiles decoded in the calling thread (the folder loaders decode
// files on threads of their own).
HeifContext heif_context_for(const std::string& name) {
  heif_ok(heif_initialised(), name);
  HeifContext ctx(heif_context_alloc(), &heif_context_free);
  if (!ctx) throw Error("cannot decode image '" + name + "': libheif could not allocate a context");
  heif_context_set_max_decoding_threads(ctx.get(), 0);
  return ctx;
}

// The primary image of a file read into `ctx`, and its size as shown (libheif's width and height
// after the file's transformations: rotation 'irot', mirroring 'imir', the clean aperture 'clap'),
// checked, as is the size it is stored at (its 'ispe' box). A bitstream coded larger than its
// 'ispe' says is bounded by libheif's own limit (32,768 pixels a side), not by kiln's.
template <class Hint>
HeifHandle heif_primary(heif_context* ctx, const std::string& name, Header* header, Hint hint) {
  heif_image_handle* h = nullptr;
  heif_ok(heif_context_get_primary_image_handle(ctx, &h), name, hint);
  HeifHandle handle(h, &heif_image_handle_release);
  header->w = heif_image_handle_get_width(h);
  header->h = heif_image_handle_get_height(h);
  header->c = heif_image_handle_has_alpha_channel(h) ? 4 : 3;
  check_size(header->w, header->h, name);
  // The size libheif decodes at, before the crop: a clean aperture ('clap') can show 7 x 5 pixels
  // of a 10,000 x 10,000 image. (Where libheif reports none, 0, the shown size stands.)
  const int ispe_w = heif_image_handle_get_ispe_width(h), ispe_h = heif_image_handle_get_ispe_height(h);
  if (ispe_w > 0 || ispe_h > 0) check_size(ispe_w, ispe_h, name);
  return handle;
}

// An HEIF (HEVC) or AVIF (AV1) file's primary image as libheif decodes it: 8-bit RGB, or RGBA where
// it has an alpha plane (a 10- or 12-bit image reduced to 8 bits, chroma upsampled by libheif, a
// monochrome one as three equal channels), with the file's rotation, mirroring and crop applied as
// HEIF prescribes: upright as browsers show an AVIF and Apple's Photos a HEIC. An EXIF orientation
// inside an HEIF is not applied: HEIF's transformations are the ones that hold (ISO/IEC 23008-12,
// 6.5.12), and libheif, Chromium and Pillow ignore it too.
Image decode_heif(const std::vector<uint8_t>& b, const std::string& name) {
  const auto cut = [&] {
    return iso_cut_short(b.size(), [&](uint64_t at, size_t n, uint8_t* out) {
      std::copy(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n), out);
      return n;
    });
  };
  HeifContext ctx = heif_context_for(name);
  heif_ok(heif_context_read_from_memory_without_copy(ctx.get(), b.data(), b.size(), nullptr), name, cut);
  Header header;
  HeifHandle handle = heif_primary(ctx.get(), name, &header, cut);
  std::unique_ptr<heif_decoding_options, void (*)(heif_decoding_options*)> options(heif_decoding_options_alloc(), &heif_decoding_options_free);
  if (!options) throw Error("cannot decode image '" + name + "': libheif could not allocate its decoding options");
  options->convert_hdr_to_8bit = 1;
  heif_image* decoded = nullptr;
  heif_ok(heif_decode_image(handle.get(), &decoded, heif_colorspace_RGB, header.c == 4 ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB,
                            options.get()),
          name, cut);
  HeifImage image(decoded, &heif_image_release);
  int stride = 0;
  const uint8_t* plane = heif_image_get_plane_readonly(decoded, heif_channel_interleaved, &stride);
  const int w = heif_image_get_width(decoded, heif_channel_interleaved), h = heif_image_get_height(decoded, heif_channel_interleaved);
  if (!plane || w != header.w || h != header.h || heif_image_get_bits_per_pixel_range(decoded, heif_channel_interleaved) != 8 ||
      stride < header.c * w)
    throw Error("cannot decode image '" + name + "': libheif gave " + std::to_string(w) + "x" + std::to_string(h) +
                " pixels for an image of " + std::to_string(header.w) + "x" + std::to_string(header.h));
  Image out{header.c, h, w, std::vector<uint8_t>(static_cast<size_t>(header.c * int64_t{w} * h))};
  for (int y = 0; y < h; ++y)
    std::copy(plane + static_cast<size_t>(y) * static_cast<size_t>(stride), plane + static_cast<size_t>(y) * static_cast<size_t>(stride) + header.c * w,
              out.data.begin() + static_cast<std::ptrdiff_t>(int64_t{y} * header.c * w));
  return out;
}

// An HEIF/AVIF file's header (its size as shown, its channels) without decoding it: libheif reads
// the boxes of the file header_of_file has open (its pixels are not read), through `f`.
Header heif_header_of_file(FILE* f, const std::string& path) {
  struct Open {
    FILE* f;
    int64_t size;
  } open{f, 0};
  if (std::fseek(f, 0, SEEK_END) != 0 || (open.size = ftello(f)) < 0 || std::fseek(f, 0, SEEK_SET) != 0)
    throw Error("cannot read image '" + path + "'");
  // Version 1 of the reader: the fields a newer libheif adds after these (1.19's range requests)
  // stay zero, and libheif reads them only from a reader that says version 2 or more.
  static const heif_reader reader = [] {
    heif_reader r{};
    r.reader_api_version = 1;
    r.get_position = [](void* u) -> int64_t { return ftello(static_cast<Open*>(u)->f); };
    r.read = [](void* data, size_t n, void* u) { return std::fread(data, 1, n, static_cast<Open*>(u)->f) == n ? 0 : 1; };
    r.seek = [](int64_t at, void* u) { return fseeko(static_cast<Open*>(u)->f, at, SEEK_SET); };
    r.wait_for_file_size = [](int64_t target, void* u) {
      return target <= static_cast<Open*>(u)->size ? heif_reader_grow_status_size_reached : heif_reader_grow_status_size_beyond_eof;
    };
    return r;
  }();
  const auto cut = [&] {
    return iso_cut_short(static_cast<uint64_t>(open.size), [&](uint64_t at, size_t n, uint8_t* out) {
      return fseeko(f, static_cast<off_t>(at), SEEK_SET) == 0 ? std::fread(out, 1, n, f) : size_t{0};
    });
  };
  HeifContext ctx = heif_context_for(path);
  heif_ok(heif_context_read_from_reader(ctx.get(), &reader, &open, nullptr), path, cut);
  Header header;
  heif_primary(ctx.get(), path, &header, cut);
  return header;
}
}  // namespace
#endif

Image decode(const std::vector<uint8_t>& b, const std::string& name, int channels) {
  if (b.empty()) throw Error("cannot decode image '" + name + "': the file is empty");
  if (b.size() > static_cast<size_t>(std::numeric_limits<int>::max())) throw Error("image '" + name + "' is too large");
  const std::string format = format_problem(b.data(), b.size());
  if (!format.empty()) throw Error("cannot decode image '" + name + "': " + format);
#ifdef KILN_PIXELS_WEBP
  if (is_webp(b.data(), b.size())) return converted_as_stb(decode_webp(b, name), channels);
#endif
#ifdef KILN_PIXELS_HEIF
  if (is_heif(b.data(), b.size())) return converted_as_stb(decode_heif(b, name), channels);
#endif
  const std::string tables = jpeg_table_problem(b);  // before stb reads any of it: stbi_info reads the tables too
  if (!tables.empty()) throw Error("cannot decode image '" + name + "': " + tables);
  int w = 0, h = 0, ch = 0;
  if (!stbi_info_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &ch))
    throw Error("cannot decode image '" + name + "': " + stbi_failure_reason());
  check_size(w, h, name);
  unsigned char* px = stbi_load_from_memory(b.data(), static_cast<int>(b.size()), &w, &h, &ch, channels);
  if (!px) throw Error("cannot decode image '" + name + "': " + stbi_failure_reason());
  Image out{channels > 0 ? channels : ch, h, w, {}};
  out.data.assign(px, px + out.c * out.h * out.w);
  stbi_image_free(px);
  const int o = exif_orientation(b);
  return o == 1 ? out : oriented(out, o);
}

namespace {
// The orientation tag in an EXIF segment's TIFF structure `t` (n bytes), 1 where there is none.
int tiff_orientation(const uint8_t* t, size_t n) {
  if (n < 8) return 1;
  const bool little = t[0] == 'I' && t[1] == 'I';
  if (!little && !(t[0] == 'M' && t[1] == 'M')) return 1;
  auto u16 = [&](size_t o) { return little ? t[o] | t[o + 1] << 8 : t[o] << 8 | t[o + 1]; };
  auto u32 = [&](size_t o) {
    return little ? uint32_t(t[o]) | uint32_t(t[o + 1]) << 8 | uint32_t(t[o + 2]) << 16 | uint32_t(t[o + 3]) << 24
                  : uint32_t(t[o]) << 24 | uint32_t(t[o + 1]) << 16 | uint32_t(t[o + 2]) << 8 | uint32_t(t[o + 3]);
  };
  if (u16(2) != 42) return 1;
  const size_t ifd = u32(4);  // the first IFD: the main image's
  if (ifd > n || n - ifd < 2) return 1;
  const size_t count = static_cast<size_t>(u16(ifd));
  for (size_t i = 0; i < count; ++i) {
    const size_t e = ifd + 2 + 12 * i;
    if (e > n || n - e < 12) return 1;
    if (u16(e) != 0x0112) continue;
    if (u16(e + 2) != 3 || u32(e + 4) != 1) return 1;  // a SHORT, one of it
    const int v = u16(e + 8);
    return v >= 1 && v <= 8 ? v : 1;
  }
  return 1;
}

// A JPEG's segments walked as stb_image (and libjpeg) walk them, over n bytes read with
// `read(offset, count, out)` (false past the end): bytes between segments and fill bytes skipped,
// markers without a length stepped over, and after a scan's header its entropy-coded data, up to
// the next marker that is neither a stuffed 0x00 nor a restart. `visit(marker, offset, length)`
// sees each segment that has a length (its payload: from `offset`, `length` bytes, the two length
// bytes left out) and returns false to stop; the walk stops too at the end of the image and after
// a segment that runs past the bytes (visited too: stb_image reads such a segment, as zeros past
// the end). Nothing at all where the bytes do not start with SOI. One walk for the EXIF
// orientation (in memory or read from a file segment by segment) and the table check.
template <class Read, class Visit>
void walk_jpeg(Read read, size_t n, Visit visit) {
  uint8_t h[4];
  if (n < 2 || !read(0, 2, h) || h[0] != 0xFF || h[1] != 0xD8) return;  // not a JPEG (SOI)
  auto is_restart = [](uint8_t m) { return m >= 0xD0 && m <= 0xD7; };
  size_t p = 2;
  while (p + 1 < n) {
    if (!read(p, 2, h)) return;
    if (h[0] != 0xFF || h[1] == 0xFF) { ++p; continue; }       // bytes between segments, fill bytes
    const uint8_t m = h[1];
    if (m == 0xD9) return;                                      // end of image
    if (m == 0x00 || m == 0x01 || is_restart(m) || m == 0xD8) { p += 2; continue; }  // no length
    if (p + 4 > n || !read(p + 2, 2, h + 2)) return;
    const size_t len = static_cast<size_t>(h[2]) << 8 | h[3];  // the length counts itself
    if (len < 2) return;
    if (!visit(m, p + 4, len - 2) || len > n - p - 2) return;   // the last segment where it is cut short
    p += 2 + len;
    if (m == 0xDA)                                              // a scan's entropy-coded data
      for (; p + 1 < n && read(p, 2, h); ++p)
        if (h[0] == 0xFF && h[1] != 0x00 && h[1] != 0xFF && !is_restart(h[1])) break;
  }
}

// The orientation in the first APP1 "Exif" segment before the first scan, 1 where there is none.
template <class Read>
int orientation_in(Read read, size_t n) {
  int o = 1;
  walk_jpeg(read, n, [&](uint8_t m, size_t at, size_t len) {
    if (m == 0xDA) return false;                                // no metadata after the first scan
    if (m != 0xE1 || len < 6) return true;                      // another segment (JFIF, XMP, ICC, tables)
    std::vector<uint8_t> seg(len);
    if (!read(at, len, seg.data())) return false;               // cut short: as stored
    static const uint8_t exif[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (!std::equal(exif, exif + 6, seg.begin())) return true;
    o = tiff_orientation(seg.data() + 6, seg.size() - 6);       // the first decides
    return false;
  });
  return o;
}

// A PNG's chunks before its pixels: visit(type, offset, length) sees each whole chunk (its data:
// from `offset`, `length` bytes) whose CRC-32 matches, up to the first IDAT (or IEND) and not
// past it; a chunk whose CRC-32 does not match is passed over, as libpng discards a damaged
// ancillary chunk. Returns whether the walk reached IDAT or IEND (false for bytes that end first,
// or that are not a PNG: the signature 89 'PNG' 0D 0A 1A 0A).
const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

template <class Visit>
bool walk_png(const std::vector<uint8_t>& b, Visit visit) {
  if (b.size() < 8 || !std::equal(kPngSignature, kPngSignature + 8, b.begin())) return false;
  auto be32 = [&](size_t at) { return uint32_t(b[at]) << 24 | uint32_t(b[at + 1]) << 16 | uint32_t(b[at + 2]) << 8 | uint32_t(b[at + 3]); };
  for (size_t p = 8; b.size() - p >= 8;) {
    const size_t len = be32(p);
    const std::string_view type(reinterpret_cast<const char*>(b.data() + p + 4), 4);
    if (type == "IDAT" || type == "IEND") return true;
    if (len > b.size() - p - 8 || b.size() - p - 8 - len < 4) return false;  // cut short
    if (crc32_portable(b.data() + p + 4, 4 + len) == be32(p + 8 + len) && !visit(type, p + 8, len)) return true;
    p += 12 + len;
  }
  return false;
}

// The orientation in a PNG's first eXIf chunk before its pixels (PNG 3rd edition: an eXIf after
// IDAT is ignored, as browsers ignore it), 1 where there is none. The chunk holds the TIFF
// structure itself, without JPEG's "Exif\0\0".
int png_orientation(const std::vector<uint8_t>& b) {
  int o = 1;
  walk_png(b, [&](std::string_view type, size_t at, size_t len) {
    if (type != "eXIf") return true;
    o = tiff_orientation(b.data() + at, len);                   // the first decides
    return false;
  });
  return o;
}

// `read` over bytes in memory.
auto memory_reader(const std::vector<uint8_t>& b) {
  return [&b](size_t at, size_t count, uint8_t* out) {
    if (at > b.size() || count > b.size() - at) return false;
    std::copy_n(b.begin() + static_cast<std::ptrdiff_t>(at), count, out);
    return true;
  };
}

// A JPEG's bytes from `at` on as stb_image reads them: 0 past the end.
struct Stream {
  const std::vector<uint8_t>* b;
  size_t at;
  uint8_t operator[](size_t k) const { return at + k < b->size() ? (*b)[at + k] : 0; }
};

// The tables a JPEG has defined so far, as its segments come (DQT, DHT, the frame), and whether a
// scan's header asks for one that is not there.
struct DefinedTables {
  bool dqt[4] = {}, dht[2][4] = {};  // quantization tables; Huffman tables, DC (0) and AC (1)
  std::vector<std::pair<int, int>> components;  // the frame's: component id, quantization table
  bool progressive = false;

  // Segment `m`'s payload (L bytes, read as stb reads them: a table's header where it starts,
  // even past the segment's end): what it defines, for the table segments and the frames stb
  // decodes; a problem with the segment itself, or "".
  std::string take(uint8_t m, Stream seg, size_t L) {
    if (m == 0xDB) {                                            // DQT: one or more tables
      for (size_t q = 0; q < L;) {
        if ((seg[q] >> 4) > 1 || (seg[q] & 15) > 3) break;      // stb refuses the file
        const size_t size = 1 + 64 * ((seg[q] >> 4) ? 2 : 1);
        if (size > L - q) break;
        dqt[seg[q] & 15] = true;
        q += size;
      }
    } else if (m == 0xC4) {                                     // DHT: one or more tables
      for (size_t q = 0; q < L;) {
        const int tc = seg[q] >> 4, th = seg[q] & 15;
        if (tc > 1 || th > 3) break;                            // stb refuses the file before it reads on
        size_t count = 0;
        for (int i = 1; i <= 16; ++i) count += seg[q + i];
        // More than 256 codes: stb_image 2.27 (Debian 12's libstb) writes them past its 257-entry
        // arrays before it checks anything else (stb issue #1289; the fuzzer found it once it saw
        // inside stb); libjpeg refuses such a table as bogus.
        if (count > 256)
          return "a JPEG whose DHT segment defines Huffman table " + std::string(tc ? "AC " : "DC ") + std::to_string(th) + " with " +
                 std::to_string(count) + " codes, more than the 256 a table can hold (a damaged file)";
        if (17 + count > L - q) break;                          // the segment's length is wrong: stb refuses the file
        dht[tc][th] = true;
        q += 17 + count;
      }
    } else if (m == 0xC0 || m == 0xC1 || m == 0xC2) {           // baseline, extended, progressive
      progressive = m == 0xC2;
      components.clear();
      for (size_t i = 0; L >= 6 && i < seg[5] && 6 + 3 * i + 2 < L; ++i) components.emplace_back(seg[6 + 3 * i], seg[8 + 3 * i]);
    }
    return "";
  }

  // The first table a scan header (L bytes) uses and nothing defined, "" where there is none (and
  // for a header too short to say: stb refuses it).
  std::string missing_for_scan(Stream seg, size_t L) const {
    if (L < 1 || L < 1 + 2 * size_t(seg[0]) + 3) return "";
    const size_t k = seg[0];
    const int ss = seg[1 + 2 * k], ah = seg[3 + 2 * k] >> 4;
    const bool dc = !progressive || (ss == 0 && ah == 0), ac = !progressive || ss > 0;  // what this scan decodes with
    for (size_t i = 0; i < k; ++i) {
      const int id = seg[1 + 2 * i], td = seg[2 + 2 * i] >> 4, ta = seg[2 + 2 * i] & 15;
      for (const auto& c : components)
        if (c.first == id && (c.second > 3 || !dqt[c.second]))
          return "a JPEG whose component " + std::to_string(id) + " uses quantization table " + std::to_string(c.second) +
                 ", which no DQT segment before its scan defines (a damaged file)";
      if (dc && (td > 3 || !dht[0][td]))
        return "a JPEG whose scan uses Huffman table DC " + std::to_string(td) +
               ", which no DHT segment before it defines (a damaged file, or a motion-JPEG frame without its tables)";
      if (ac && (ta > 3 || !dht[1][ta]))
        return "a JPEG whose scan uses Huffman table AC " + std::to_string(ta) +
               ", which no DHT segment before it defines (a damaged file, or a motion-JPEG frame without its tables)";
    }
    return "";
  }
};

// jpeg_table_problem, of the whole file or (to_frame) only of what comes up to its frame header:
// what stbi_info reads.
std::string table_problem(const std::vector<uint8_t>& b, bool to_frame) {
  DefinedTables defined;
  std::string problem;
  walk_jpeg(memory_reader(b), b.size(), [&](uint8_t m, size_t at, size_t len) {
    problem = m == 0xDA ? defined.missing_for_scan(Stream{&b, at}, len)  // a scan: its tables must be there
                        : defined.take(m, Stream{&b, at}, len);
    return problem.empty() && !(to_frame && (m == 0xC0 || m == 0xC1 || m == 0xC2));
  });
  return problem;
}

// Whether a JPEG's bytes reach its first scan: all that stbi_info, the table check before the
// frame header and the EXIF orientation read lies before it.
bool reaches_scan(const std::vector<uint8_t>& b) {
  bool scan = false;
  walk_jpeg(memory_reader(b), b.size(), [&](uint8_t m, size_t, size_t) { return !(scan = m == 0xDA); });
  return scan;
}
// Whether the first bytes of an image file hold all the header pass reads: a JPEG's up to its
// first scan, a PNG's up to its first IDAT, any other file's first bytes (its signature, or that
// it has none kiln reads: read no further; a WebP's size and alpha are in its first chunk, VP8X
// or the pixels' own header).
bool holds_header(const std::vector<uint8_t>& b) {
  if (b.size() >= 2 && b[0] == 0xFF && b[1] == 0xD8) return reaches_scan(b);
  if (b.size() >= 8 && std::equal(kPngSignature, kPngSignature + 8, b.begin())) return walk_png(b, [](std::string_view, size_t, size_t) { return true; });
  return true;
}
}  // namespace

std::string jpeg_table_problem(const std::vector<uint8_t>& b) { return table_problem(b, false); }

int exif_orientation(const std::vector<uint8_t>& b) {
  return !b.empty() && b[0] == 0x89 ? png_orientation(b) : orientation_in(memory_reader(b), b.size());
}

Header header_of_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw Error("cannot open image '" + path + "'");
  // The file's first 16 KiB; a JPEG's up to its first scan, a PNG's up to its first IDAT (growing
  // by doubling: EXIF, ICC and XMP segments and chunks can be large), so the file is opened once
  // and read once.
  std::vector<uint8_t> head;
  for (size_t want = 16 * 1024;; want *= 2) {
    const size_t had = head.size();
    head.resize(want);
    head.resize(had + std::fread(head.data() + had, 1, want - had, f.get()));
    if (std::ferror(f.get())) throw Error("cannot read image '" + path + "'");
    if (head.size() < want || holds_header(head)) break;  // the whole file, or enough of it
  }
  if (head.empty()) throw Error("cannot decode image '" + path + "': the file is empty");
  const std::string format = format_problem(head.data(), head.size());
  if (!format.empty()) throw Error("cannot decode image '" + path + "': " + format);
#ifdef KILN_PIXELS_WEBP
  if (is_webp(head.data(), head.size())) {  // its size and alpha are in its first chunk (VP8X, or the pixels' header)
    const WebPBitstreamFeatures f = webp_features(head.data(), head.size(), path);
    return Header{f.width, f.height, f.has_alpha ? 4 : 3};
  }
#endif
#ifdef KILN_PIXELS_HEIF
  if (is_heif(head.data(), head.size())) return heif_header_of_file(f.get(), path);
#endif
  Header h;
  int orientation = 1;
  if (head[0] == 0xFF) {  // a JPEG: the tables stbi_info reads checked first, as decode checks them all
    const std::string tables = table_problem(head, true);
    if (!tables.empty()) throw Error("cannot decode image '" + path + "': " + tables);
    if (!stbi_info_from_memory(head.data(), static_cast<int>(head.size()), &h.w, &h.h, &h.c))
      throw Error("cannot decode image '" + path + "': " + stbi_failure_reason());
    orientation = exif_orientation(head);
  } else {  // PNG, BMP: stb reads their headers from the file itself (a paletted PNG's up to its pixels)
    std::rewind(f.get());
    if (!stbi_info_from_file(f.get(), &h.w, &h.h, &h.c))
      throw Error("cannot decode image '" + path + "': " + (stbi_failure_reason() ? stbi_failure_reason() : "unknown format"));
    orientation = exif_orientation(head);  // a PNG's eXIf (the head reaches its first IDAT); a BMP: 1
  }
  check_size(h.w, h.h, path);
  if (orientation >= 5) std::swap(h.w, h.h);  // shown turned: decode turns it
  return h;
}

Image oriented(const Image& img, int o) {
  if (o < 1 || o > 8) throw Error("EXIF orientation must be 1..8, not " + std::to_string(o));
  if (o == 1) return img;
  const bool swap = o >= 5;
  const int64_t H = img.h, W = img.w, oh = swap ? W : H, ow = swap ? H : W;
  Image out{img.c, oh, ow, std::vector<uint8_t>(img.data.size())};
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      int64_t sy = y, sx = x;  // the stored pixel shown at (y, x)
      switch (o) {
        case 2: sx = W - 1 - x; break;
        case 3: sy = H - 1 - y; sx = W - 1 - x; break;
        case 4: sy = H - 1 - y; break;
        case 5: sy = x; sx = y; break;
        case 6: sy = H - 1 - x; sx = y; break;
        case 7: sy = H - 1 - x; sx = W - 1 - y; break;
        case 8: sy = x; sx = W - 1 - y; break;
      }
      for (int64_t k = 0; k < img.c; ++k) out.data[static_cast<size_t>((y * ow + x) * img.c + k)] = img.at(sy, sx, k);
    }
  return out;
}

Image read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open image '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error("cannot read image '" + path + "'");
  return decode(bytes, path);
}

Image with_channels(const Image& img, int64_t channels, int64_t background, const std::string& name, bool grey_by_luma) {
  if (channels != 1 && channels != 3) throw Error("images convert to 1 or 3 channels, not " + std::to_string(channels));
  if (img.c == channels) return img;
  const int64_t colour = img.c >= 3 ? 3 : 1;
  const bool luma = colour == 3 && channels == 1;
  if (luma && !grey_by_luma)
    throw Error("image '" + name + "' has " + std::to_string(img.c) +
                " channels (colour), and this model takes grey images (1 channel): convert it to grey first, or pass --grey for BT.601 luma");
  const bool alpha = img.c == 2 || img.c == 4;
  // Channel k of pixel (y, x) composited over the background, rounded half up.
  auto over = [&](int64_t y, int64_t x, int64_t k) {
    const int v = img.at(y, x, k);
    if (!alpha) return v;
    const int a = img.at(y, x, img.c - 1);
    return (v * a + (255 - a) * static_cast<int>(background) + 127) / 255;
  };
  Image out{channels, img.h, img.w, std::vector<uint8_t>(static_cast<size_t>(channels * img.h * img.w))};
  for (int64_t y = 0; y < img.h; ++y)
    for (int64_t x = 0; x < img.w; ++x)
      for (int64_t k = 0; k < channels; ++k) {
        const int v = luma ? (299 * over(y, x, 0) + 587 * over(y, x, 1) + 114 * over(y, x, 2) + 500) / 1000 : over(y, x, colour == 3 ? k : 0);
        out.data[static_cast<size_t>((y * img.w + x) * channels + k)] = static_cast<uint8_t>(v);
      }
  return out;
}

Image resized(const Image& img, int64_t H, int64_t W) {
  if (img.h == H && img.w == W) return img;
  Image out{img.c, H, W, std::vector<uint8_t>(static_cast<size_t>(img.c * H * W))};
  auto filter = [](int64_t from, int64_t to) { return to < from ? STBIR_FILTER_BOX : STBIR_FILTER_TRIANGLE; };
  if (!stbir_resize(img.data.data(), static_cast<int>(img.w), static_cast<int>(img.h), 0, out.data.data(), static_cast<int>(W),
                    static_cast<int>(H), 0, STBIR_TYPE_UINT8, static_cast<int>(img.c), STBIR_ALPHA_CHANNEL_NONE, 0,
                    STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, filter(img.w, W), filter(img.h, H), STBIR_COLORSPACE_LINEAR, nullptr))
    throw Error("resizing an image failed");
  return out;
}

namespace {
int64_t scaled(int64_t n, double s) { return std::max<int64_t>(1, std::llround(static_cast<double>(n) * s)); }

// `part` copied into `into` with its top-left corner at (top, left), clipped: the rows and
// columns of part from (from_y, from_x) on.
void place(Image& into, const Image& part, int64_t top, int64_t left, int64_t from_y, int64_t from_x) {
  for (int64_t y = 0; y < into.h - top && from_y + y < part.h; ++y)
    for (int64_t x = 0; x < into.w - left && from_x + x < part.w; ++x)
      for (int64_t k = 0; k < into.c; ++k)
        into.data[static_cast<size_t>(((top + y) * into.w + left + x) * into.c + k)] = part.at(from_y + y, from_x + x, k);
}
}  // namespace

Image fitted(const Image& img, int64_t H, int64_t W, const std::string& mode, int64_t background) {
  if (mode == "stretch") return resized(img, H, W);
  const double sy = static_cast<double>(H) / static_cast<double>(img.h), sx = static_cast<double>(W) / static_cast<double>(img.w);
  Image out{img.c, H, W, std::vector<uint8_t>(static_cast<size_t>(img.c * H * W), static_cast<uint8_t>(background))};
  if (mode == "center_crop") {  // cover H x W, then cut the middle out
    const double s = std::max(sy, sx);
    const int64_t nh = std::max(H, scaled(img.h, s)), nw = std::max(W, scaled(img.w, s));
    place(out, resized(img, nh, nw), 0, 0, (nh - H) / 2, (nw - W) / 2);
    return out;
  }
  if (mode == "pad") {  // fit inside H x W, centred on the background
    const double s = std::min(sy, sx);
    const int64_t nh = std::min(H, scaled(img.h, s)), nw = std::min(W, scaled(img.w, s));
    place(out, resized(img, nh, nw), (H - nh) / 2, (W - nw) / 2, 0, 0);
    return out;
  }
  throw Error("data.resize = '" + mode + "' (stretch | center_crop | pad)");
}

Image stored_as(Image img, int64_t C, int64_t H, int64_t W, const std::string& mode, int64_t background, const std::string& name,
                bool* converted, bool* was_resized, bool grey_by_luma) {
  const bool c = img.c != C, r = img.h != H || img.w != W;
  if (c) img = with_channels(img, C, background, name, grey_by_luma);
  if (r) img = fitted(img, H, W, mode, background);
  if (converted) *converted = c;
  if (was_resized) *was_resized = r;
  return img;
}

Image read_as(const std::string& path, int64_t C, int64_t H, int64_t W, const std::string& mode, int64_t background,
              bool* converted, bool* was_resized, bool grey_by_luma) {
  return stored_as(read(path), C, H, W, mode, background, path, converted, was_resized, grey_by_luma);
}

std::vector<float> model_input(const Image& img, const Fit& fit, const std::string& name, const std::string& model_name, bool grey_by_luma) {
  if (fit.resize.empty()) {  // a file exported before 2026-12-04: only images the network takes as they are
    const Image x = img.c != fit.channels ? with_channels(img, fit.channels, 0, name, grey_by_luma) : img;
    if (x.h != fit.height || x.w != fit.width)
      throw Error("image '" + name + "' is " + std::to_string(x.w) + "x" + std::to_string(x.h) + ", and '" + model_name + "' takes " +
                  std::to_string(fit.width) + "x" + std::to_string(fit.height) +
                  " without saying how its run fitted other sizes (exported before 2026-12-04): export it again with kiln export");
    return planar(x);
  }
  const Image x = stored_as(img, fit.stored_channels, fit.stored_height, fit.stored_width, fit.resize, fit.background, name, nullptr,
                            nullptr, grey_by_luma);
  return view(x, fit.eval_crop, fit.height, fit.width);
}

std::vector<float> planar(const Image& img) {
  std::vector<float> out(img.data.size());
  for (int64_t k = 0; k < img.c; ++k)
    for (int64_t i = 0; i < img.h * img.w; ++i) out[static_cast<size_t>(k * img.h * img.w + i)] = img.data[static_cast<size_t>(i * img.c + k)];
  return out;
}

namespace {
// One axis's resampling matrix (out x size, row-major): the span [start, start + len) resized to
// `out` pixels, augment.h's resize_weights in float.
std::vector<float> axis_weights(int64_t start, int64_t len, int64_t size, int64_t out) {
  std::vector<float> w(static_cast<size_t>(out * size), 0.0f);
  const float scale = static_cast<float>(len) / static_cast<float>(out), support = std::max(scale, 1.0f);
  for (int64_t i = 0; i < out; ++i) {
    const float centre = static_cast<float>(start) + (static_cast<float>(i) + 0.5f) * scale;
    float sum = 0;
    for (int64_t j = start; j < start + len; ++j) {
      const float v = std::max(0.0f, 1.0f - std::fabs(static_cast<float>(j) + 0.5f - centre) / support);
      w[static_cast<size_t>(i * size + j)] = v;
      sum += v;
    }
    for (int64_t j = start; j < start + len; ++j) w[static_cast<size_t>(i * size + j)] /= sum;
  }
  return w;
}
// torchvision's CenterCrop of `fraction` of a side of n pixels: its length and first pixel.
std::pair<int64_t, int64_t> centre_span(int64_t n, double fraction) {
  const auto len = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(static_cast<double>(n) * fraction)));
  return {static_cast<int64_t>(std::nearbyint(static_cast<double>(n - len) / 2.0)), len};
}
}  // namespace

std::vector<float> view(const Image& img, double fraction, int64_t out_h, int64_t out_w) {
  if (!(fraction > 0 && fraction <= 1)) throw Error("data.eval_crop must be in (0, 1]");
  if (fraction == 1 && out_h == img.h && out_w == img.w) return planar(img);
  const auto [top, ch] = centre_span(img.h, fraction);
  const auto [left, cw] = centre_span(img.w, fraction);
  const auto wy = axis_weights(top, ch, img.h, out_h), wx = axis_weights(left, cw, img.w, out_w);
  const auto x = planar(img);
  std::vector<float> rows(static_cast<size_t>(out_h * img.w)), out(static_cast<size_t>(img.c * out_h * out_w));
  for (int64_t k = 0; k < img.c; ++k) {
    const float* plane = x.data() + k * img.h * img.w;
    for (int64_t i = 0; i < out_h; ++i)  // rows: Wy x
      for (int64_t u = 0; u < img.w; ++u) {
        float s = 0;
        for (int64_t j = top; j < top + ch; ++j) s += wy[static_cast<size_t>(i * img.h + j)] * plane[j * img.w + u];
        rows[static_cast<size_t>(i * img.w + u)] = s;
      }
    for (int64_t i = 0; i < out_h; ++i)  // then columns: (Wy x) Wx^T
      for (int64_t v = 0; v < out_w; ++v) {
        float s = 0;
        for (int64_t u = left; u < left + cw; ++u) s += rows[static_cast<size_t>(i * img.w + u)] * wx[static_cast<size_t>(v * img.w + u)];
        out[static_cast<size_t>((k * out_h + i) * out_w + v)] = s;
      }
  }
  return out;
}

}  // namespace kiln::px
