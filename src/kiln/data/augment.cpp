#include "kiln/data/augment.h"

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

}  // namespace kiln
