// kiln's dependency-free inference runtime (issue #8): C++17 and the standard library only — no
// LibTorch — so it builds anywhere a C++ compiler goes (WebAssembly included). It loads a model
// written by `kiln export --format kiln` (docs/kiln-format.md) and predicts one image at a time.
// Supported: every network of kiln's zoo (model.name = resnet9 | airbench | separable | dense:
// kiln/nn/model.h, airbench.h, tiny.h) with any activation kiln has (relu, relu6, celu, gelu) and
// their switches that change evaluation (model.whiten, model.pool_before_bn, model.output_scale,
// model.head_norm, model.convs_per_group); BatchNorm with its running statistics; the run's
// test-time augmentation (eval.tta: flip, flip+translate) as kiln evaluates. int8 files (and
// 4-bit ones, two values to a byte) are dequantised once on load (the weights travel small;
// the arithmetic is fp32).
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "kiln/pixels/pixels.h"  // px::Fit only: the runtime itself reads no images

namespace kiln::rt {

struct Tensor {
  std::string name;  // as in the file, for messages
  std::vector<int64_t> shape;
  std::vector<float> data;
  int64_t dim(size_t i) const { return shape.at(i); }
};

struct Model {
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> tensors;
  std::vector<std::string> classes;
  int64_t channels = 0, height = 0, width = 0;
  bool int8 = false;
  // The metadata the forward pass needs, parsed once by parse().
  std::string kind, activation;
  float celu_alpha = 1, bn_eps = 1e-5f;
  std::vector<float> mean, stdev;
  std::vector<int64_t> widths;
  int64_t depth = 0;
  // resnet9 and airbench (metadata written since 2026-12-03; separable and dense files need none)
  float output_scale = 1;
  bool pool_before_bn = false, head_norm = false;
  std::string whiten = "none";  // resnet9: none | 3x3 | 2x2 (airbench's is always 2x2)
  int64_t convs_per_group = 2;  // airbench
  // Test-time augmentation, as kiln's evaluation applies it (kiln/nn/layers.h predict_with_tta):
  // none | flip (the mean of the logits of the image and its mirror, 2 passes) | flip+translate
  // ((1 - w) * flip(x) + w * the mean of flip() at the image shifted one pixel up-left and one
  // down-right with reflection at the borders, 6 passes). From the file's metadata `tta` and
  // `tta_translate_weight` (written since 2026-12-04; older files: none). Assign to change it.
  std::string tta = "none";
  double tta_translate_weight = 0.5;
  // How an image file becomes this input, as the run's image folders and `kiln predict` prepare
  // it (kiln/pixels/pixels.h): with stored_channels, alpha over `background`, fitted to
  // stored_height x stored_width as `resize` says (stretch | center_crop | pad), then the central
  // `eval_crop` of each side resized to height x width (data.input_size, data.eval_crop). From the
  // file's metadata `stored`, `resize`, `background` and `eval_crop` (written since 2026-12-04);
  // older files: resize empty (only images already of the input's size can be prepared), the
  // stored size the input's, eval_crop 1.
  int64_t stored_channels = 0, stored_height = 0, stored_width = 0;
  std::string resize;
  int64_t background = 0;
  double eval_crop = 1;
  // The same, for kiln::px::model_input (kiln_pixels: the image files' preparation).
  px::Fit image_fit() const { return {stored_channels, stored_height, stored_width, resize, background, eval_crop, channels, height, width}; }
  // One image as C x H x W pixel values in 0..255 (planar); returns the logits, with `tta`. A
  // file whose tensors do not fit its network (a shape, a missing tensor, an input too small for
  // its pooling) throws std::runtime_error naming the tensor, before reading past any of them.
  std::vector<float> predict(const float* pixels) const;
  std::vector<float> forward(const float* pixels) const;  // the plain network's logits (no TTA)
  int64_t classify(const float* pixels) const;           // argmax of predict()
  int64_t views() const;  // the network passes predict() makes an image: 1, 2 or 6 (throws on an unknown tta)
  const Tensor& tensor(const std::string& name) const;  // throws naming the tensor
};

// Parses a .kiln file; throws std::runtime_error naming `name` and what is wrong. A file with a
// `crc32` (below) is checked against it before anything else is read, and refused as damaged when
// its bytes do not give it; a file written before 2026-12-05 has none and is read unchecked.
Model parse(const std::vector<uint8_t>& bytes, const std::string& name);
Model load(const std::string& path);

// The convolutions' loops that run: "AVX2" where the build has them (x86-64, GCC or Clang) and
// the CPU runs AVX2, else "portable" (vectors of 4 floats, with GCC or Clang), else "plain" (plain
// arrays). All give bit-identical logits. use_kernels picks them for every later call: kBest
// (the default) the fastest there, kPortable the portable ones, kPlain the plain ones (tests
// compare the three; kiln-classify --portable, --plain).
enum class Kernels { kBest, kPortable, kPlain };
const char* kernels();
void use_kernels(Kernels k);

// The error function in single precision as the runtime's GELU computes it, and e^x for x <= 0
// as its CELU does (below -87.3, e^-87.3): within 2 ulp of the exact values, from + and x alone
// (no libm), so the same bits on every platform and build.
float erf(float x);
float exp_nonpositive(float x);

// The file's CRC-32 (docs/kiln-format.md): metadata `crc32`, 8 lower-case hex digits, the CRC-32 (of zip and
// PNG) of every byte of the file with those 8 digits read as "00000000". kiln writes it as the
// first metadata entry, so that damage anywhere after its 37th byte is found before the rest is read.
// crc32_field: where the 8 digits lie (the first entry `crc32` with a value of 8 bytes), or nothing.
std::optional<size_t> crc32_field(const uint8_t* bytes, size_t n);
// The CRC-32 the digits at `field` should hold.
uint32_t file_crc32(const uint8_t* bytes, size_t n, size_t field);
// Writes into the file's `crc32` what its bytes give (tools that change a file on purpose: tests,
// fuzzing); false when the file has no `crc32`.
bool reseal(std::vector<uint8_t>& bytes);
// What a loaded model's file was checked by, for tools to print: "CRC-32 89abcdef checked" (parse
// refuses a file whose bytes do not give its `crc32`), or "no CRC-32 (exported before 2026-12-05):
// unchecked" (the web page's words).
std::string integrity(const Model& model);

// Small file helpers for the runtime's tools (kiln-classify, kiln-web-check).
std::vector<uint8_t> read_bytes(const std::string& path);  // throws naming the path
// The big-endian uint32 at `at` (IDX headers); throws naming `name` when the bytes end first.
uint32_t big_endian_u32(const std::vector<uint8_t>& b, size_t at, const std::string& name);

}  // namespace kiln::rt
