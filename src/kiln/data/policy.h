// Learned and random augmentation policies, batched on the device (issue #7's augmentation
// strengths): the image operations of AutoAugment (Cubuk et al. 2019) and RandAugment (Cubuk
// et al. 2020), AutoAugment's CIFAR-10 policy, RandAugment(N, M), and scale jitter.
//
// Every operation works on a whole batch at once, with a magnitude per example, on pixel-valued
// float images (B x C x H x W, values in [0, 255]); nothing reads the device back. The random
// draws (which operation, whether it fires, its sign) are made on the CPU once per epoch from
// the loader's seeded generator (kiln/data/loader.h), so an epoch is reproducible on its own
// and identical on every device.
//
// Semantics follow PIL / torchvision's definitions of the operations (facts, re-implemented):
//   ShearX(m)      output (x, y) samples the input at (x + m y, y)      (shear about the top-left corner)
//   ShearY(m)      ... at (x, y + m x)
//   TranslateX(m)  ... at (x - m, y): the image moves m pixels right    (m an integer number of pixels)
//   TranslateY(m)  ... at (x, y - m)
//   Rotate(m)      rotation by m degrees about the image centre (counter-clockwise on screen)
//   Brightness(m)  blend with black by factor 1 + m
//   Color(m)       blend with the image's grayscale by factor 1 + m    (saturation)
//   Contrast(m)    blend with the mean of the grayscale by factor 1 + m
//   Sharpness(m)   blend with the image smoothed by [[1,1,1],[1,5,1],[1,1,1]]/13 (border kept) by 1 + m
//   Posterize(m)   keep the top m bits of each 8-bit value
//   Solarize(m)    invert every value >= m
//   AutoContrast   stretch each channel's [min, max] to [0, 255]
//   Equalize       histogram equalisation per channel (PIL's lookup table)
//   Invert         255 - x
// where blend(img, d, f) = clamp(d + f (img - d), 0, 255). Geometric operations sample with
// nearest neighbour (pixel centres at +0.5; ties rounded half to even, as grid_sample's nearest
// mode) and fill what comes from outside with `fill`. tests/policy_vs_torchvision.py checks
// every operation against torchvision's.
// One deliberate difference: PIL rounds to 8 bits after every operation; kiln keeps the values
// in float between operations and rounds only where an operation is defined on integers
// (Posterize, Solarize's threshold test, Equalize).
#pragma once
#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <string>
#include <vector>

namespace kiln {

enum class PixelOp : int64_t {
  Identity = 0,
  ShearX,
  ShearY,
  TranslateX,
  TranslateY,
  Rotate,
  Brightness,
  Color,
  Contrast,
  Sharpness,
  Posterize,
  Solarize,
  AutoContrast,
  Equalize,
  Invert,
  Count
};
const char* op_name(PixelOp op);
bool op_is_geometric(PixelOp op);  // ShearX .. Rotate
bool op_is_signed(PixelOp op);     // the magnitude is negated with probability 1/2

// A magnitude bin in the operation's units, unsigned (bins as torchvision: 10 for
// AutoAugment, 31 for RandAugment): shear 0.3 b/(n-1); translate trunc(150/331 size b/(n-1))
// pixels (width for X, height for Y); rotate 30 b/(n-1) degrees; brightness, color,
// contrast, sharpness 0.9 b/(n-1); posterize 8 - round(b / ((n-1)/4)) bits; solarize
// 255 (1 - b/(n-1)); 0 for the rest.
double op_magnitude(PixelOp op, int64_t bin, int64_t bins, int64_t height, int64_t width);

// ---- the operations, each on the whole batch (x: float, B x C x H x W, in [0, 255]; per-example tensors of B) ----
// theta: B x 2 x 3 maps an output pixel centre (u + 0.5, v + 0.5) (u column, v row) to an input
// position p; the pixel taken is round(p - 0.5), half to even.
torch::Tensor affine_nearest(const torch::Tensor& x, const torch::Tensor& theta, double fill);
// The B x 2 x 3 matrices of a geometric operation with per-example magnitudes (the identity for other operations).
torch::Tensor op_affine(PixelOp op, const torch::Tensor& magnitude, int64_t height, int64_t width);
torch::Tensor blend(const torch::Tensor& img, const torch::Tensor& degenerate, const torch::Tensor& factor);
torch::Tensor grayscale(const torch::Tensor& x);  // B x 1 x H x W: 0.2989 R + 0.587 G + 0.114 B (1 channel: itself)
torch::Tensor adjust_brightness(const torch::Tensor& x, const torch::Tensor& factor);
torch::Tensor adjust_color(const torch::Tensor& x, const torch::Tensor& factor);
torch::Tensor adjust_contrast(const torch::Tensor& x, const torch::Tensor& factor);
torch::Tensor adjust_sharpness(const torch::Tensor& x, const torch::Tensor& factor);
torch::Tensor posterize(const torch::Tensor& x, const torch::Tensor& bits);
torch::Tensor solarize(const torch::Tensor& x, const torch::Tensor& threshold);
torch::Tensor autocontrast(const torch::Tensor& x);
torch::Tensor equalize(const torch::Tensor& x);
torch::Tensor invert(const torch::Tensor& x);
// One operation on every example, each with its own magnitude (signed, the operation's units).
torch::Tensor apply_op(const torch::Tensor& x, PixelOp op, const torch::Tensor& magnitude, double fill);

// Per-example operation sequences: op (int64, B x S: a PixelOp per slot), magnitude (float, B x S).
struct PolicyDraws {
  torch::Tensor op, magnitude;
};
// AutoAugment's CIFAR-10 policy (25 sub-policies of two operations, each with its
// probability and magnitude bin of 10; Cubuk et al. 2019, as torchvision lists it): each
// example picks a sub-policy uniformly; each of its two operations fires with its
// probability (else Identity); signed magnitudes get a random sign.
PolicyDraws draw_autoaugment_cifar10(int64_t n, int64_t height, int64_t width, at::Generator& gen);
// RandAugment(N, M): N operations per example, uniform over the 14 of RandAugment's space
// (Identity .. Equalize, no Invert), each at magnitude bin M of `bins`, random sign.
PolicyDraws draw_randaugment(int64_t n, int64_t num_ops, int64_t magnitude_bin, int64_t bins, int64_t height,
                             int64_t width, at::Generator& gen);
// Applies the slots in order. `present` (optional, one flag per PixelOp) names the operations
// that occur in this batch, so the others are not computed at all (the loader knows this on
// the host from its CPU draws); empty: compute all. Geometric slots are fused into one gather.
torch::Tensor apply_policy(const torch::Tensor& x, const torch::Tensor& op, const torch::Tensor& magnitude, double fill,
                           const std::vector<bool>& present = {});

// Scale jitter (on any values, e.g. normalised images): output pixel p samples the input at
// (p - offset) / scale, bilinear, zeros outside. scale > 1 zooms in (a random window of the
// enlarged image), scale < 1 zooms out (the shrunk image at a random place on a zero canvas).
// scale, oy, ox: float, B; offsets in pixels, drawn in [min(0, size - scale size), max(0, size - scale size)].
torch::Tensor scale_jitter(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& oy,
                           const torch::Tensor& ox);

}  // namespace kiln
