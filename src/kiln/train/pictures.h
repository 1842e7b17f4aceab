// `kiln show`'s pictures, as PNG: an augmented training batch (aug), a batch's originals
// beside their augmented versions exactly as the trainer draws them (batch), a checkpoint's
// predictions (mistakes first) and confusion matrix (with confusion.csv), a ResNet-9's first
// filters, and the whitening layer's eigen-patches; and lr-find's loss-against-LR plot.
#pragma once
#include <string>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"
#include "kiln/train/trainer.h"

namespace kiln {

// Draws `what` (aug | batch | predictions | confusion | filters | whitening) into out/<what>.png
// and returns that path. `cfg` is the run's configuration; `checkpoint` the trained model, or
// nullptr (predictions and confusion need one; filters and whitening then show an untrained,
// freshly fitted model). `count`: images in a grid; `epoch`: for batch, the epoch (0-based).
std::string draw_picture(const std::string& what, const Config& cfg, LoadedCheckpoint* checkpoint, const TrainTest& tt,
                         const std::string& out, int count, int64_t epoch);

// `kiln lr-find`'s files in `dir`: lr_find.csv (step, lr, loss, smoothed), lr_find.png (the
// loss against log LR, raw losses clipped to the smoothed curve's range, a line at the
// suggestion), lr_find.json (suggestion, lowest-loss LR, the preset's LR) and config.toml.
void write_lr_find(const std::string& dir, const LrFindResult& r, const Config& cfg, const std::string& preset);

}  // namespace kiln
