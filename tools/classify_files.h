// kiln-classify's image files mode: PNG, JPEG, BMP or WebP files of any size classified by the runtime,
// each prepared as `kiln predict` prepares it (kiln/pixels/pixels.h: the channels, data.resize and
// data.background to the stored size, then data.eval_crop's view to the input), with the model's
// test-time augmentation. Prints kiln predict's lines (each file's class and probability, then
// the next `top`) and, with `json`, writes its JSON (kiln predict --json's layout, "model" for
// "checkpoint").
#pragma once
#include <string>
#include <vector>

#include "kiln/runtime/runtime.h"

namespace kiln::tools {

// The pixels the model takes for one image file: planar C x H x W floats in 0..255. Throws naming
// the file (undecodable, colour for a grey model) or, for a file exported before the image
// metadata, an image not already of the model's input size.
// grey_by_luma: a colour image for a grey model by BT.601 luma (--grey) instead of refused.
std::vector<float> prepare(const kiln::rt::Model& model, const std::string& model_path, const std::string& image, bool grey_by_luma = false);

// threads: files prepared and classified on this many threads at once (each file on one; the
// output the same in any case, in the files' order).
int classify_files(const kiln::rt::Model& model, const std::string& model_path, const std::vector<std::string>& images, long top,
                   const std::string& json, bool grey_by_luma, long threads = 1);

}  // namespace kiln::tools
