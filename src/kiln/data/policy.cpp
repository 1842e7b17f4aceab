#include "kiln/data/policy.h"

#include <cmath>

#include "kiln/core/error.h"

namespace kiln {

namespace {
using P = PixelOp;
constexpr double kPi = 3.14159265358979323846;

torch::Tensor per_example(const torch::Tensor& t, const torch::Tensor& like) {
  return t.to(like.device(), torch::kFloat32).view({-1, 1, 1, 1});
}

struct Step {
  PixelOp op;
  double prob;
  int bin;  // -1: no magnitude
};
struct SubPolicy {
  Step a, b;
};
// AutoAugment's CIFAR-10 policy: (operation, probability, magnitude bin of 10).
const SubPolicy kCifar10[25] = {
    {{P::Invert, 0.1, -1}, {P::Contrast, 0.2, 6}},
    {{P::Rotate, 0.7, 2}, {P::TranslateX, 0.3, 9}},
    {{P::Sharpness, 0.8, 1}, {P::Sharpness, 0.9, 3}},
    {{P::ShearY, 0.5, 8}, {P::TranslateY, 0.7, 9}},
    {{P::AutoContrast, 0.5, -1}, {P::Equalize, 0.9, -1}},
    {{P::ShearY, 0.2, 7}, {P::Posterize, 0.3, 7}},
    {{P::Color, 0.4, 3}, {P::Brightness, 0.6, 7}},
    {{P::Sharpness, 0.3, 9}, {P::Brightness, 0.7, 9}},
    {{P::Equalize, 0.6, -1}, {P::Equalize, 0.5, -1}},
    {{P::Contrast, 0.6, 7}, {P::Sharpness, 0.6, 5}},
    {{P::Color, 0.7, 7}, {P::TranslateX, 0.5, 8}},
    {{P::Equalize, 0.3, -1}, {P::AutoContrast, 0.4, -1}},
    {{P::TranslateY, 0.4, 3}, {P::Sharpness, 0.2, 6}},
    {{P::Brightness, 0.9, 6}, {P::Color, 0.2, 8}},
    {{P::Solarize, 0.5, 2}, {P::Invert, 0.0, -1}},
    {{P::Equalize, 0.2, -1}, {P::AutoContrast, 0.6, -1}},
    {{P::Equalize, 0.2, -1}, {P::Equalize, 0.6, -1}},
    {{P::Color, 0.9, 9}, {P::Equalize, 0.6, -1}},
    {{P::AutoContrast, 0.8, -1}, {P::Solarize, 0.2, 8}},
    {{P::Brightness, 0.1, 3}, {P::Color, 0.7, 0}},
    {{P::Solarize, 0.4, 5}, {P::AutoContrast, 0.9, -1}},
    {{P::TranslateY, 0.9, 9}, {P::TranslateY, 0.7, 9}},
    {{P::AutoContrast, 0.9, -1}, {P::Solarize, 0.8, 3}},
    {{P::Equalize, 0.8, -1}, {P::Invert, 0.1, -1}},
    {{P::TranslateY, 0.7, 9}, {P::AutoContrast, 0.9, -1}},
};
}  // namespace

const char* op_name(PixelOp op) {
  static const char* names[] = {"Identity",   "ShearX",   "ShearY",    "TranslateX", "TranslateY",
                                "Rotate",     "Brightness", "Color",   "Contrast",   "Sharpness",
                                "Posterize",  "Solarize", "AutoContrast", "Equalize", "Invert"};
  auto i = static_cast<int64_t>(op);
  return i >= 0 && i < static_cast<int64_t>(PixelOp::Count) ? names[i] : "?";
}

bool op_is_geometric(PixelOp op) { return op >= P::ShearX && op <= P::Rotate; }
bool op_is_signed(PixelOp op) { return op >= P::ShearX && op <= P::Sharpness; }

double op_magnitude(PixelOp op, int64_t bin, int64_t bins, int64_t H, int64_t W) {
  if (bins < 2 || bin < 0 || bin >= bins) throw Error("augmentation magnitude bin " + std::to_string(bin) + " is outside 0.." + std::to_string(bins - 1));
  const double t = static_cast<double>(bin) / static_cast<double>(bins - 1);
  switch (op) {
    case P::ShearX:
    case P::ShearY: return 0.3 * t;
    case P::TranslateX: return std::trunc(150.0 / 331.0 * static_cast<double>(W) * t);
    case P::TranslateY: return std::trunc(150.0 / 331.0 * static_cast<double>(H) * t);
    case P::Rotate: return 30.0 * t;
    case P::Brightness:
    case P::Color:
    case P::Contrast:
    case P::Sharpness: return 0.9 * t;
    case P::Posterize: return 8.0 - std::round(static_cast<double>(bin) / ((bins - 1) / 4.0));
    case P::Solarize: return 255.0 * (1.0 - t);
    default: return 0.0;
  }
}

torch::Tensor affine_nearest(const torch::Tensor& x, const torch::Tensor& theta, double fill) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto f = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto th = theta.to(f.device(), torch::kFloat32);
  auto u = (torch::arange(W, f) + 0.5).view({1, 1, W});
  auto v = (torch::arange(H, f) + 0.5).view({1, H, 1});
  auto t = [&](int r, int c) { return th.select(1, r).select(1, c).view({B, 1, 1}); };
  // Nearest pixel: the source position minus the half-pixel offset, rounded half to even (as
  // grid_sample's nearest mode, and so torchvision, rounds ties).
  auto sx = torch::round(t(0, 0) * u + t(0, 1) * v + t(0, 2) - 0.5).to(torch::kInt64);  // B x H x W
  auto sy = torch::round(t(1, 0) * u + t(1, 1) * v + t(1, 2) - 0.5).to(torch::kInt64);
  auto valid = (sx >= 0) & (sx < W) & (sy >= 0) & (sy < H);
  auto idx = (sy.clamp(0, H - 1) * W + sx.clamp(0, W - 1)).view({B, 1, H * W}).expand({B, C, H * W});
  auto out = x.reshape({B, C, H * W}).gather(2, idx).view({B, C, H, W});
  return torch::where(valid.unsqueeze(1), out, torch::full({}, fill, out.options()));
}

torch::Tensor op_affine(PixelOp op, const torch::Tensor& mag, int64_t H, int64_t W) {
  auto m = mag.to(torch::kFloat64).view({-1});
  const int64_t B = m.size(0);
  auto one = torch::ones({B}, m.options()), zero = torch::zeros({B}, m.options());
  torch::Tensor r0, r1;  // rows (a, b, c): source = a u + b v + c
  switch (op) {
    case P::ShearX: r0 = torch::stack({one, m, zero}, 1), r1 = torch::stack({zero, one, zero}, 1); break;
    case P::ShearY: r0 = torch::stack({one, zero, zero}, 1), r1 = torch::stack({m, one, zero}, 1); break;
    case P::TranslateX: r0 = torch::stack({one, zero, -m}, 1), r1 = torch::stack({zero, one, zero}, 1); break;
    case P::TranslateY: r0 = torch::stack({one, zero, zero}, 1), r1 = torch::stack({zero, one, -m}, 1); break;
    case P::Rotate: {
      // Counter-clockwise on screen by m degrees about the centre c. With rows growing
      // downwards, the output pixel p takes the input at
      //   u' = cx + cos(m) (u - cx) - sin(m) (v - cy),  v' = cy + sin(m) (u - cx) + cos(m) (v - cy)
      // (at m = 90 the top-right corner lands top-left, as numpy's and LibTorch's rot90 do).
      auto a = m * (kPi / 180.0);
      auto c = torch::cos(a), s = torch::sin(a);
      const double cx = W / 2.0, cy = H / 2.0;
      r0 = torch::stack({c, -s, cx - c * cx + s * cy}, 1);
      r1 = torch::stack({s, c, cy - s * cx - c * cy}, 1);
      break;
    }
    default: r0 = torch::stack({one, zero, zero}, 1), r1 = torch::stack({zero, one, zero}, 1);
  }
  return torch::stack({r0, r1}, 1).to(mag.device(), torch::kFloat32);
}

torch::Tensor blend(const torch::Tensor& img, const torch::Tensor& d, const torch::Tensor& factor) {
  return (d + per_example(factor, img) * (img - d)).clamp(0, 255);
}

torch::Tensor grayscale(const torch::Tensor& x) {
  if (x.size(1) != 3) return x.size(1) == 1 ? x : x.mean(1, true);
  return 0.2989 * x.select(1, 0).unsqueeze(1) + 0.587 * x.select(1, 1).unsqueeze(1) + 0.114 * x.select(1, 2).unsqueeze(1);
}

torch::Tensor adjust_brightness(const torch::Tensor& x, const torch::Tensor& f) { return blend(x, torch::zeros_like(x), f); }
torch::Tensor adjust_color(const torch::Tensor& x, const torch::Tensor& f) { return blend(x, grayscale(x).expand_as(x), f); }
torch::Tensor adjust_contrast(const torch::Tensor& x, const torch::Tensor& f) {
  return blend(x, grayscale(x).mean({1, 2, 3}, true).expand_as(x), f);
}

torch::Tensor adjust_sharpness(const torch::Tensor& x, const torch::Tensor& f) {
  const int64_t C = x.size(1), H = x.size(2), W = x.size(3);
  if (H < 3 || W < 3) return x;
  auto k = torch::ones({3, 3}, x.options());
  k[1][1] = 5.0;
  k = (k / 13.0).view({1, 1, 3, 3}).expand({C, 1, 3, 3}).contiguous();
  auto smooth = torch::conv2d(x, k, torch::Tensor(), at::IntArrayRef{1}, at::IntArrayRef{0}, at::IntArrayRef{1}, C);  // interior only
  auto d = x.clone();
  d.slice(2, 1, H - 1).slice(3, 1, W - 1).copy_(smooth);
  return blend(x, d, f);
}

torch::Tensor posterize(const torch::Tensor& x, const torch::Tensor& bits) {
  auto q = torch::exp2(8.0 - per_example(bits, x).round());
  return torch::floor(x.round().clamp(0, 255) / q) * q;
}

torch::Tensor solarize(const torch::Tensor& x, const torch::Tensor& threshold) {
  return torch::where(x.round() >= per_example(threshold, x), 255.0 - x, x);
}

torch::Tensor autocontrast(const torch::Tensor& x) {
  auto lo = x.amin({2, 3}, true), hi = x.amax({2, 3}, true);
  auto span = hi - lo;
  auto out = ((x - lo) * (255.0 / span.clamp_min(1e-6))).clamp(0, 255);
  return torch::where(span > 0, out, x);
}

torch::Tensor equalize(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto xi = x.round().clamp(0, 255).to(torch::kInt64).reshape({B * C, H * W});
  // Histograms by sorting and counting (no atomics: deterministic on every device).
  auto sorted = std::get<0>(xi.sort(1));
  auto bins = torch::arange(256, xi.options()).view({1, 256}).expand({B * C, 256}).contiguous();
  auto before = torch::searchsorted(sorted, bins, /*out_int32=*/false, /*right=*/false);  // pixels below each value
  auto upto = torch::searchsorted(sorted, bins, /*out_int32=*/false, /*right=*/true);    // pixels at or below
  auto hist = upto - before;
  auto last = sorted.select(1, H * W - 1).unsqueeze(1);                   // the highest non-empty bin
  auto step = torch::div(H * W - hist.gather(1, last), 255, "floor");      // (total - its count) // 255
  auto lut = torch::div(before + torch::div(step, 2, "floor"), step.clamp_min(1), "floor").clamp_max(255);
  auto out = torch::where(step.gt(0), lut.gather(1, xi), xi);
  return out.to(x.scalar_type()).view({B, C, H, W});
}

torch::Tensor invert(const torch::Tensor& x) { return 255.0 - x; }

torch::Tensor apply_op(const torch::Tensor& x, PixelOp op, const torch::Tensor& mag, double fill) {
  auto one_plus = [&] { return 1.0 + mag.to(torch::kFloat32); };
  switch (op) {
    case P::Identity: return x;
    case P::ShearX:
    case P::ShearY:
    case P::TranslateX:
    case P::TranslateY:
    case P::Rotate: return affine_nearest(x, op_affine(op, mag, x.size(2), x.size(3)), fill);
    case P::Brightness: return adjust_brightness(x, one_plus());
    case P::Color: return adjust_color(x, one_plus());
    case P::Contrast: return adjust_contrast(x, one_plus());
    case P::Sharpness: return adjust_sharpness(x, one_plus());
    case P::Posterize: return posterize(x, mag);
    case P::Solarize: return solarize(x, mag);
    case P::AutoContrast: return autocontrast(x);
    case P::Equalize: return equalize(x);
    case P::Invert: return invert(x);
    default: throw Error("unknown augmentation operation " + std::to_string(static_cast<int64_t>(op)));
  }
}

PolicyDraws draw_autoaugment_cifar10(int64_t n, int64_t H, int64_t W, at::Generator& gen) {
  auto which = torch::randint(0, 25, {n}, gen, torch::kInt64);
  auto coin = torch::rand({n, 2}, gen, torch::kFloat64);
  auto sign = torch::randint(0, 2, {n, 2}, gen, torch::kInt64);
  PolicyDraws d;
  d.op = torch::zeros({n, 2}, torch::kInt64);
  d.magnitude = torch::zeros({n, 2}, torch::kFloat32);
  auto w = which.accessor<int64_t, 1>();
  auto c = coin.accessor<double, 2>();
  auto s = sign.accessor<int64_t, 2>();
  auto op = d.op.accessor<int64_t, 2>();
  auto mg = d.magnitude.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const SubPolicy& sp = kCifar10[w[i]];
    for (int j = 0; j < 2; ++j) {
      const Step& st = j == 0 ? sp.a : sp.b;
      if (c[i][j] >= st.prob) continue;  // Identity
      op[i][j] = static_cast<int64_t>(st.op);
      double m = st.bin < 0 ? 0.0 : op_magnitude(st.op, st.bin, 10, H, W);
      if (op_is_signed(st.op) && s[i][j] == 1) m = -m;
      mg[i][j] = static_cast<float>(m);
    }
  }
  return d;
}

PolicyDraws draw_randaugment(int64_t n, int64_t num_ops, int64_t bin, int64_t bins, int64_t H, int64_t W,
                             at::Generator& gen) {
  if (num_ops < 1) throw Error("aug.randaugment_n must be at least 1");
  if (bin < 0 || bin >= bins) throw Error("aug.randaugment_m = " + std::to_string(bin) + " is outside 0.." + std::to_string(bins - 1));
  const int64_t space = static_cast<int64_t>(P::Equalize) + 1;  // Identity .. Equalize
  PolicyDraws d;
  d.op = torch::randint(0, space, {n, num_ops}, gen, torch::kInt64);
  auto sign = torch::randint(0, 2, {n, num_ops}, gen, torch::kInt64);
  std::vector<float> mags(space);
  for (int64_t k = 0; k < space; ++k) mags[k] = static_cast<float>(op_magnitude(static_cast<PixelOp>(k), bin, bins, H, W));
  d.magnitude = torch::zeros({n, num_ops}, torch::kFloat32);
  auto op = d.op.accessor<int64_t, 2>();
  auto s = sign.accessor<int64_t, 2>();
  auto mg = d.magnitude.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < num_ops; ++j) {
      auto o = static_cast<PixelOp>(op[i][j]);
      mg[i][j] = (op_is_signed(o) && s[i][j] == 1) ? -mags[op[i][j]] : mags[op[i][j]];
    }
  return d;
}

torch::Tensor apply_policy(const torch::Tensor& x_in, const torch::Tensor& op_all, const torch::Tensor& mag_all,
                           double fill, const std::vector<bool>& present) {
  auto x = x_in;
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  auto op_dev = op_all.to(x.device());
  auto mag_dev = mag_all.to(x.device());
  auto uses = [&](PixelOp k) { return present.empty() || present[static_cast<size_t>(k)]; };
  bool any_geo = false;
  for (int64_t k = static_cast<int64_t>(P::ShearX); k <= static_cast<int64_t>(P::Rotate); ++k) any_geo |= uses(static_cast<PixelOp>(k));
  for (int64_t s = 0; s < op_dev.size(1); ++s) {
    auto op = op_dev.select(1, s), mag = mag_dev.select(1, s);
    if (any_geo) {  // every geometric operation of the slot as one per-example affine map, one gather
      auto theta = op_affine(P::Identity, mag, H, W);
      for (int64_t k = static_cast<int64_t>(P::ShearX); k <= static_cast<int64_t>(P::Rotate); ++k) {
        if (!uses(static_cast<PixelOp>(k))) continue;
        theta = torch::where(op.eq(k).view({B, 1, 1}), op_affine(static_cast<PixelOp>(k), mag, H, W), theta);
      }
      x = affine_nearest(x, theta, fill);
    }
    for (int64_t k = static_cast<int64_t>(P::Brightness); k < static_cast<int64_t>(P::Count); ++k) {
      if (!uses(static_cast<PixelOp>(k))) continue;
      x = torch::where(op.eq(k).view({B, 1, 1, 1}), apply_op(x, static_cast<PixelOp>(k), mag, fill), x);
    }
  }
  return x;
}

torch::Tensor scale_jitter(const torch::Tensor& x, const torch::Tensor& scale, const torch::Tensor& oy,
                           const torch::Tensor& ox) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  auto f = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  auto s = scale.to(f.device(), torch::kFloat32).view({B, 1, 1});
  auto u = (torch::arange(W, f) + 0.5).view({1, 1, W});
  auto v = (torch::arange(H, f) + 0.5).view({1, H, 1});
  // Input position in pixels, then grid_sample's [-1, 1] (align_corners = false: -1 is the left edge).
  auto gx = 2.0 * ((u - ox.to(f.device(), torch::kFloat32).view({B, 1, 1})) / s) / W - 1.0;
  auto gy = 2.0 * ((v - oy.to(f.device(), torch::kFloat32).view({B, 1, 1})) / s) / H - 1.0;
  auto grid = torch::stack({gx.expand({B, H, W}), gy.expand({B, H, W})}, 3);
  namespace F = torch::nn::functional;
  auto out = F::grid_sample(x.to(torch::kFloat32), grid,
                            F::GridSampleFuncOptions().mode(torch::kBilinear).padding_mode(torch::kZeros).align_corners(false));
  return out.to(x.scalar_type());
}

}  // namespace kiln
