// Batched augmentations as tensor ops on any device. Each takes the random draws as
// tensors (so the draws can be made once per epoch on the CPU, from a seeded generator,
// and the ops stay exact and deterministic on every device).
#pragma once
#include <ATen/core/Generator.h>
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


// ---- resized crops (issue #26: images larger than CIFAR's) ----
// Boxes in whole pixels, one per example: top, left, height, width (int64, B).
struct Boxes {
  torch::Tensor top, left, h, w;
};
// The resampling matrices of one axis: row i of example b's matrix (B x out x size) weighs the
// input pixels 0 .. size-1 for output pixel i when the span [start, start + len) of the axis is
// resized to `out` pixels with the triangle (bilinear) filter, widened by the shrink factor when
// shrinking (antialiased, as PIL and torch's interpolate(bilinear, align_corners = false,
// antialias = true) define it): centre c_i = start + (i + 0.5) len / out, support
// s = max(1, len / out), weight of pixel j = max(0, 1 - |j + 0.5 - c_i| / s) inside the span
// (0 outside), each row normalised to sum 1. fp32, on start's device.
torch::Tensor resize_weights(const torch::Tensor& start, const torch::Tensor& len, int64_t size, int64_t out);
// Each example's box resized to out_h x out_w (values of any range; fp32 arithmetic, x's dtype
// back): out[b, c] = Wy[b] x[b, c] Wx[b]^T with the matrices of resize_weights.
torch::Tensor resized_crop(const torch::Tensor& x, const Boxes& box, int64_t out_h, int64_t out_w);
// torchvision's RandomResizedCrop.get_params for each of n images of h x w, from `gen`: up to 10
// attempts of an area fraction uniform in [scale_min, scale_max] and an aspect ratio (w / h)
// log-uniform in [ratio_min, ratio_max], w = round(sqrt(area ratio)), h = round(sqrt(area / ratio))
// (half to even, as Python's round); the first that fits is placed uniformly at random;
// if none fits, the central crop with the ratio clamped to the range. Boxes on the CPU.
Boxes draw_resized_crops(int64_t n, int64_t h, int64_t w, double scale_min, double scale_max, double ratio_min,
                         double ratio_max, at::Generator& gen);
// The central box keeping `fraction` of each side (h' = round(h f), w' = round(w f), top =
// round((h - h') / 2), left likewise: torchvision's CenterCrop), the same for n images.
Boxes center_boxes(int64_t n, int64_t h, int64_t w, double fraction);

}  // namespace kiln
