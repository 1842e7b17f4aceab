// Batched augmentations as tensor ops on any device. Each takes the random draws as
// tensors (so the draws can be made once per epoch on the CPU, from a seeded generator,
// and the ops stay exact and deterministic on every device).
#pragma once
#include <torch/torch.h>

namespace kiln {

// x: B x C x H x W. Pads by `pad` (reflect or zeros) then crops back to H x W at per-example
// offsets dy, dx in [0, 2*pad] (int64, B): output[b] = padded[b, :, dy:dy+H, dx:dx+W].
torch::Tensor random_crop(const torch::Tensor& x, int64_t pad, bool reflect, const torch::Tensor& dy,
                          const torch::Tensor& dx);
// Same crop applied to an already padded batch (B x C x (H+2p) x (W+2p)).
torch::Tensor crop_padded(const torch::Tensor& padded, int64_t h, int64_t w, const torch::Tensor& dy,
                          const torch::Tensor& dx);
// Mirrors (left-right) the examples whose `flip` (bool, B) is true.
torch::Tensor flip_where(const torch::Tensor& x, const torch::Tensor& flip);
// Zeroes the size x size square at rows [y0, y0+size), cols [x0, x0+size) of each example.
torch::Tensor cutout(const torch::Tensor& x, int64_t size, const torch::Tensor& y0, const torch::Tensor& x0);

}  // namespace kiln
