// Image files to the pixels a network takes, without LibTorch (stb_image and stb_image_resize;
// libwebp for WebP and libheif for HEIF/AVIF in the native build): one implementation for the folder loaders and `kiln
// predict` (kiln/data/folder.h, which wrap it in tensors) and for the runtime's command line
// (kiln-classify), so an image file gives both the same pixels.
//
// - decode: PNG, JPEG, BMP (and nothing else stb_image reads) and, in the native build, WebP
//   (libwebp: a still picture, or an animation's first frame) with the channels the file holds,
//   and the EXIF orientation (tag 0x0112) of a JPEG's APP1 "Exif" segment or a PNG's eXIf chunk
//   applied, so a phone's upright photo is upright here as browsers, galleries and the web page
//   show it (PIL's Image.open, and so torchvision's ImageFolder, leaves it as stored). A missing,
//   malformed or out-of-range tag is orientation 1, the pixels as stored. A WebP's EXIF is not
//   applied: Chromium applies none either. And, where kReadsHeif, HEIF and AVIF (libheif: the
//   primary image, HEVC or AV1, 8-bit RGB or RGBA, with the file's own rotation, mirroring and
//   crop applied; its EXIF orientation, which HEIF's transformations override, not).
// - with_channels: grey to RGB by copying; an alpha channel composited over a grey `background`,
//   out = floor((a x + (255 - a) background + 127) / 255); colour to grey is refused unless asked
//   for by luma (ITU-R BT.601, after the alpha: floor((299 R + 587 G + 114 B + 500) / 1000), i.e.
//   0.299 R + 0.587 G + 0.114 B rounded half up: the web page's formula, in integers).
// - fitted: to H x W as data.resize says: "stretch" (aspect ratio not kept), "center_crop"
//   (scaled to cover H x W, the middle cut out) or "pad" (scaled to fit inside, centred on
//   `background`); a shrinking axis with a box filter, a growing one with a triangle filter,
//   linear colour space, clamped edges.
// - view: the loader's View (kiln/data/loader.h, data.input_size and data.eval_crop): the
//   central `fraction` of each side (torchvision's CenterCrop rounding) resized to out_h x out_w
//   with the antialiased triangle filter of kiln/data/augment.h's resize_weights, as planar floats.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace kiln::px {

// 8-bit pixels interleaved as decoders give them: row-major h x w x c, with c = 1 (grey),
// 2 (grey + alpha), 3 (RGB) or 4 (RGBA).
struct Image {
  int64_t c = 0, h = 0, w = 0;
  std::vector<uint8_t> data;
  uint8_t at(int64_t y, int64_t x, int64_t k) const { return data[static_cast<size_t>((y * w + x) * c + k)]; }
};

// Whether this build reads WebP: the native one does (Debian's libwebp); kiln.js, the web page's
// WebAssembly, leaves WebP to the browser's decoders.
extern const bool kReadsWebP;

// Whether this build reads HEIF (.heic, .heif) and AVIF: the native one built with KILN_WITH_HEIF
// (Debian's libheif) does; kiln.js and the GPU machine's carried binary do not.
extern const bool kReadsHeif;

// The extensions of the image files kiln reads, as messages list them: ".png/.jpg/.jpeg/.bmp",
// "/.webp" after them where kReadsWebP, "/.heic/.heif/.avif" where kReadsHeif. is_image_file reads
// this list.
extern const char* const kImageExtensions;

// The formats this build decodes and with what, for `kiln env`: "PNG, JPEG, BMP (stb_image); WebP
// (libwebp 1.2.4); HEIF (libheif 1.15.1: HEVC yes, AV1 yes)", each library's version as it reports
// it at run time, and whether libheif has a decoder for HEIC's HEVC and AVIF's AV1.
std::string decoders();

// Whether a path names an image file kiln reads: its extension, any case, is in kImageExtensions.
bool is_image_file(const std::string& path);

// Refuses a header's size w x h that no image kiln reads has: not positive, or over 64 Mpixel (a
// decompression bomb); throws kiln::Error naming `name`.
void check_size(int64_t w, int64_t h, const std::string& name);

// Why kiln does not decode a file that begins with these n bytes, or "" for the formats it reads:
// PNG, JPEG and BMP (signatures 89 'PNG' 0D 0A 1A 0A, FF D8 and 'BM'), on the command line as on
// the web page, whose kiln.js holds only those three of stb_image's decoders; and WebP ('RIFF',
// 4 bytes, 'WEBP') where kReadsWebP; HEIF/AVIF (a 'ftyp' box naming one of their brands) where
// kReadsHeif. Debian's libstb,
// which the command line links, holds them all (GIF, TGA, PSD, HDR, PIC, PNM: TGA has no
// signature, so stb tries it on any bytes) and its GIF decoder has open memory-safety reports
// (CVE-2023-45661, -45664, -45666, -45667): kiln hands it none of those. The message names the
// format where its signature is a common one (GIF, WebP, TIFF, HEIF/AVIF, MP4, ...).
std::string format_problem(const uint8_t* head, size_t n);

// Decodes an image file's bytes; `channels` 0 keeps the file's, 1..4 converts as stb_image does.
// Throws kiln::Error naming `name`: empty, not PNG/JPEG/BMP/WebP/HEIF/AVIF, undecodable, or over 64 Mpixel
// (a decompression bomb).
Image decode(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);
// An image file's header, read without decoding it (the folder loaders' first pass): its size as
// shown (EXIF orientations 5 to 8 swap the stored one; a JPEG read up to its first scan, a PNG up
// to its first IDAT, a WebP's first chunk, an HEIF's boxes by libheif) and its channels. Throws kiln::Error
// naming the file where decode would refuse it by its header: unreadable, empty, not
// PNG/JPEG/BMP, a header stb_image cannot read, or over 64 Mpixel.
struct Header {
  int w = 0, h = 0, c = 0;
};
Header header_of_file(const std::string& path);
// Why stb_image must not decode these JPEG bytes, or "" (also for bytes that are not a JPEG): a
// scan that uses a Huffman table (DC or AC) or a component whose quantization table no DHT / DQT
// segment before it defined, which stb_image reads from memory it never initialised (Debian 12's
// libstb: a crash found by fuzz_image); or a DHT segment defining a table of more than 256 codes,
// which stb_image 2.27 writes past its arrays (stb issue #1289). libjpeg refuses both; decode()
// refuses them too, before stb reads any of it (stbi_info reads the tables before the frame
// header: header_of_file checks those). Segments are read as stb reads them: bytes between
// segments skipped, every scan's entropy-coded data skipped to the next marker, a table's header
// read where it starts even past its segment's end, and a file's end read as zeros.
std::string jpeg_table_problem(const std::vector<uint8_t>& bytes);
// An image file's EXIF orientation, 1..8 (TIFF 6.0 / EXIF 2.3 tag 0x0112): a JPEG's, from its first
// APP1 "Exif" segment before its first scan; a PNG's, from its first eXIf chunk (PNG 3rd edition;
// the TIFF structure without "Exif\0\0") before its first IDAT whose CRC-32 matches (libpng
// discards a damaged ancillary chunk; browsers ignore an eXIf after the pixels). 1 for a BMP, a
// file with neither, or one whose segment or chunk is malformed or truncated (every read is
// bounds-checked; nothing is thrown).
int exif_orientation(const std::vector<uint8_t>& bytes);
// The image as EXIF orientation `o` says to show it (1 as stored; 2 mirrored left-right; 3 turned
// 180 degrees; 4 mirrored top-bottom; 5 transposed; 6 turned 90 degrees clockwise; 7 transposed
// across the other diagonal; 8 turned 90 degrees anticlockwise); 5 to 8 swap height and width.
Image oriented(const Image& image, int o);
Image read(const std::string& path);  // decode(the file's bytes, path)

// The image with `channels` (1 or 3) channels (see above). `name` is for the refusal of colour
// to grey, which names it.
Image with_channels(const Image& image, int64_t channels, int64_t background, const std::string& name = "an image", bool grey_by_luma = false);
// stb_image_resize to H x W: box filter on a shrinking axis, triangle on a growing one (the same
// size: the image itself).
Image resized(const Image& image, int64_t H, int64_t W);
// Fitted to H x W as `mode` (stretch | center_crop | pad) says; throws naming data.resize otherwise.
Image fitted(const Image& image, int64_t H, int64_t W, const std::string& mode, int64_t background);

// An image file as a folder's images are stored: decoded, with C channels and fitted to H x W
// (the unchanged image where it already is); `converted` / `resized` (optional) say whether it
// had to be.
Image read_as(const std::string& path, int64_t C, int64_t H, int64_t W, const std::string& mode, int64_t background,
              bool* converted = nullptr, bool* was_resized = nullptr, bool grey_by_luma = false);

// A decoded image as a folder's images are stored (read_as without the reading); `name` is for
// the refusal of colour to grey.
Image stored_as(Image image, int64_t C, int64_t H, int64_t W, const std::string& mode, int64_t background, const std::string& name,
                bool* converted = nullptr, bool* was_resized = nullptr, bool grey_by_luma = false);
// How a model's run turned an image into its input: the stored size and channels, data.resize,
// data.background, data.eval_crop, and the input's size (a .kiln file's metadata, kiln/runtime's
// Model::image_fit). resize empty: a file exported before 2026-12-04, which says none of it.
struct Fit {
  int64_t stored_channels = 0, stored_height = 0, stored_width = 0;
  std::string resize;
  int64_t background = 0;
  double eval_crop = 1;
  int64_t channels = 0, height = 0, width = 0;
};
// The model's input for a decoded image, planar C x H x W floats 0..255: stored_as, then view.
// With `fit.resize` empty only an image of the input's size is taken (its channels converted);
// another is refused naming `name` and `model_name`. kiln-classify and the web page's runtime
// prepare every picture so.
std::vector<float> model_input(const Image& image, const Fit& fit, const std::string& name, const std::string& model_name,
                               bool grey_by_luma = false);
// Planar floats C x h x w, the pixel values 0..255.
std::vector<float> planar(const Image& image);
// The central `fraction` (in (0, 1]) of each side resized to out_h x out_w (see above), planar
// floats; fraction 1 and the image's own size: planar(image).
std::vector<float> view(const Image& image, double fraction, int64_t out_h, int64_t out_w);

}  // namespace kiln::px
