#include "kiln/data/augment.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace kiln {

torch::Tensor crop_padded(const torch::Tensor& p, int64_t h, int64_t w, const torch::Tensor& dy,
                          const torch::Tensor& dx) {
  const auto B = p.size(0), C = p.size(1), Wp = p.size(3);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(p.device());
  // Two gathers: rows dy[b] + i, then columns dx[b] + j.
  auto rows = (torch::arange(h, opts).view({1, 1, h, 1}) + dy.to(p.device()).view({B, 1, 1, 1}))
                  .expand({B, C, h, Wp});
  auto x = p.gather(2, rows);
  auto cols = (torch::arange(w, opts).view({1, 1, 1, w}) + dx.to(p.device()).view({B, 1, 1, 1}))
                  .expand({B, C, h, w});
  return x.gather(3, cols);
}

torch::Tensor random_crop(const torch::Tensor& x, int64_t pad, bool reflect, const torch::Tensor& dy,
                          const torch::Tensor& dx) {
  if (pad == 0) return x;
  namespace F = torch::nn::functional;
  auto opts = F::PadFuncOptions({pad, pad, pad, pad});
  torch::Tensor p = reflect ? F::pad(x, opts.mode(torch::kReflect)) : F::pad(x, opts.mode(torch::kConstant).value(0));
  return crop_padded(p, x.size(2), x.size(3), dy, dx);
}

torch::Tensor flip_where(const torch::Tensor& x, const torch::Tensor& flip) {
  auto m = flip.to(x.device()).view({-1, 1, 1, 1});
  return torch::where(m, x.flip({3}), x);
}

torch::Tensor cutout(const torch::Tensor& x, int64_t size, const torch::Tensor& y0, const torch::Tensor& x0) {
  if (size <= 0) return x;
  const auto B = x.size(0), H = x.size(2), W = x.size(3);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(x.device());
  auto r = torch::arange(H, opts).view({1, H, 1});
  auto c = torch::arange(W, opts).view({1, 1, W});
  auto ys = y0.to(x.device()).view({B, 1, 1}), xs = x0.to(x.device()).view({B, 1, 1});
  auto box = (r >= ys) & (r < ys + size) & (c >= xs) & (c < xs + size);  // B x H x W
  return x.masked_fill(box.unsqueeze(1), 0);
}

torch::Tensor resize_weights(const torch::Tensor& start, const torch::Tensor& len, int64_t size, int64_t out) {
  auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(start.device());
  const auto B = start.size(0);
  auto s0 = start.to(f32).view({B, 1, 1}), n = len.to(f32).view({B, 1, 1});
  auto scale = n / static_cast<double>(out);                                   // input pixels per output pixel
  auto centre = s0 + (torch::arange(out, f32).view({1, out, 1}) + 0.5) * scale;  // B x out x 1
  auto support = scale.clamp_min(1.0);
  auto j = torch::arange(size, f32).view({1, 1, size});
  auto wgt = (1.0 - (j + 0.5 - centre).abs() / support).clamp_min(0.0);
  wgt = wgt * ((j >= s0) & (j < s0 + n)).to(torch::kFloat32);
  return wgt / wgt.sum(2, /*keepdim=*/true);
}

torch::Tensor resized_crop(const torch::Tensor& x, const Boxes& box, int64_t out_h, int64_t out_w) {
  auto dev = x.device();
  auto wy = resize_weights(box.top.to(dev), box.h.to(dev), x.size(2), out_h);                     // B x oh x H
  auto wx = resize_weights(box.left.to(dev), box.w.to(dev), x.size(3), out_w).transpose(1, 2);  // B x W x ow
  auto y = wy.unsqueeze(1).matmul(x.to(torch::kFloat32)).matmul(wx.unsqueeze(1));
  return y.to(x.scalar_type());
}

Boxes draw_resized_crops(int64_t n, int64_t h, int64_t w, double scale_min, double scale_max, double ratio_min,
                         double ratio_max, at::Generator& gen) {
  constexpr int kAttempts = 10;
  auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  // Every random number the attempts could use, drawn up front so the draws do not depend on
  // which attempt fits: area fraction, log-ratio and the two placements, per attempt.
  auto u = torch::rand({n, kAttempts, 4}, gen, f64).contiguous();
  const double* r = u.data_ptr<double>();
  auto top = torch::empty({n}, torch::kInt64), left = torch::empty({n}, torch::kInt64);
  auto bh = torch::empty({n}, torch::kInt64), bw = torch::empty({n}, torch::kInt64);
  int64_t *t = top.data_ptr<int64_t>(), *l = left.data_ptr<int64_t>(), *ph = bh.data_ptr<int64_t>(),
          *pw = bw.data_ptr<int64_t>();
  const double area = static_cast<double>(h) * static_cast<double>(w);
  const double lr0 = std::log(ratio_min), lr1 = std::log(ratio_max);
  for (int64_t b = 0; b < n; ++b) {
    bool found = false;
    for (int a = 0; a < kAttempts && !found; ++a) {
      const double* q = r + (b * kAttempts + a) * 4;
      const double target = area * (scale_min + (scale_max - scale_min) * q[0]);
      const double ratio = std::exp(lr0 + (lr1 - lr0) * q[1]);
      const auto cw = static_cast<int64_t>(std::nearbyint(std::sqrt(target * ratio)));
      const auto ch = static_cast<int64_t>(std::nearbyint(std::sqrt(target / ratio)));
      if (cw > 0 && cw <= w && ch > 0 && ch <= h) {
        ph[b] = ch, pw[b] = cw;
        t[b] = std::min<int64_t>(h - ch, static_cast<int64_t>(q[2] * static_cast<double>(h - ch + 1)));
        l[b] = std::min<int64_t>(w - cw, static_cast<int64_t>(q[3] * static_cast<double>(w - cw + 1)));
        found = true;
      }
    }
    if (found) continue;
    const double in_ratio = static_cast<double>(w) / static_cast<double>(h);
    int64_t cw = w, ch = h;
    if (in_ratio < ratio_min) ch = static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / ratio_min));
    else if (in_ratio > ratio_max) cw = static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * ratio_max));
    ph[b] = ch, pw[b] = cw, t[b] = (h - ch) / 2, l[b] = (w - cw) / 2;
  }
  return {top, left, bh, bw};
}

Boxes center_boxes(int64_t n, int64_t h, int64_t w, double fraction) {
  const auto ch = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * fraction)));
  const auto cw = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(static_cast<double>(w) * fraction)));
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(h - ch) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(w - cw) / 2.0));
  auto full = [n](int64_t v) { return torch::full({n}, v, torch::kInt64); };
  return {full(top), full(left), full(ch), full(cw)};
}

}  // namespace kiln
