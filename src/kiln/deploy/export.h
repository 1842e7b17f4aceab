// Exporting a trained model's weights (issue #8): safetensors, so Python users can open them
// (https://github.com/huggingface/safetensors: an 8-byte little-endian header length N, N bytes
// of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}} padded
// with spaces to a multiple of 8, then the raw little-endian tensor bytes).
//
// kiln writes every parameter and buffer of the model (the EMA weights when the run kept them)
// under its LibTorch name, fp32 ("F32"). With int8, every conv and linear weight is stored as
// "I8" (kiln/deploy/quantize.h: per output channel, symmetric) with its per-channel scales as
// "<name>.scale" (F32): weight = q * scale[channel]. The metadata (strings, as the format
// requires) hold what is needed to rebuild and feed the model: "format" = "kiln", "config"
// (the resolved TOML), "mean" and "std" (JSON arrays, 0..255 pixel units), "input_shape"
// (JSON [C, H, W]), "classes" (JSON array), "int8" ("true" / "false"), and with int8
// "int8_grid" (the grid's name, e.g. "int8 per-channel", "int4 per-tensor": ExportInfo::grid).
// Every grid is written the same way (int8 values, a scale per output channel), so readers take
// any of them unchanged.
#pragma once
#include <string>
#include <vector>

#include "kiln/deploy/quantize.h"
#include "kiln/train/trainer.h"

namespace kiln {

struct ExportInfo {
  std::vector<int64_t> input_shape;   // C, H, W
  std::vector<std::string> classes;
  IntGrid grid;  // int8 exports: the weights' grid (int8 per channel unless told; kiln export gives a QAT run its own)
  // The test-time augmentation the exported model applies (kiln and ONNX formats): none | flip |
  // flip+translate, or empty for the run's own eval.tta (kiln export --tta).
  std::string tta;
  // The images as the run stored them, C, H, W, before data.input_size / eval_crop's view (empty:
  // input_shape).
  std::vector<int64_t> stored_shape;
};

// How an image file becomes the exported model's input, written beside it (kiln format: "stored",
// "resize", "background", "eval_crop"; ONNX: the same with "stored_shape"): the stored size, the
// run's data.resize and data.background (kiln/pixels/pixels.h), and its data.eval_crop.
struct ExportImageFit {
  std::vector<int64_t> stored;  // C, H, W
  std::string resize;
  int64_t background = 0;
  double eval_crop = 1;
};
ExportImageFit export_image_fit(const LoadedCheckpoint& ckpt, const ExportInfo& info);

// The test-time augmentation an export applies: ExportInfo::tta, else the run's eval.tta, with
// the run's eval.tta_translate_weight. Throws kiln::Error naming an unknown mode.
struct ExportTta {
  std::string mode;
  double translate_weight = 0.5;
};
ExportTta export_tta(const LoadedCheckpoint& ckpt, const ExportInfo& info);

// kiln's own format (docs/kiln-format.md), read by the dependency-free runtime
// (kiln/runtime/runtime.h): metadata strings, then every floating-point parameter and buffer,
// fp32 or (int8) the conv/linear weights as int8 with per-channel scales, packed two values to a
// byte when ExportInfo::grid has 4 bits or fewer. Atomic; returns bytes.
int64_t export_kiln(const LoadedCheckpoint& ckpt, const ExportInfo& info, const std::string& path, bool int8);

// Writes `path` atomically; returns the bytes written.
int64_t export_safetensors(const LoadedCheckpoint& ckpt, const ExportInfo& info, const std::string& path, bool int8);

}  // namespace kiln
