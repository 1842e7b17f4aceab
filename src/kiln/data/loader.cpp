#include "kiln/data/loader.h"

#include <ATen/CPUGeneratorImpl.h>

#include "kiln/core/error.h"
#include "kiln/data/augment.h"
#include "kiln/data/policy.h"

namespace kiln {

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

View View::from_config(const Config& cfg) {
  View v;
  const auto& size = cfg.ints("data.input_size");
  if (!size.empty()) v.h = size[0], v.w = size[1];
  v.fraction = cfg.f("data.eval_crop");
  return v;
}

AugmentOptions AugmentOptions::from_config(const Config& cfg) {
  AugmentOptions a;
  a.pad = cfg.i("aug.pad");
  a.reflect = cfg.s("aug.pad_mode") == "reflect";
  a.flip = cfg.b("aug.flip");
  a.alternating = cfg.s("aug.flip_mode") == "alternating";
  a.cutout = cfg.i("aug.cutout");
  a.policy = cfg.s("aug.policy");
  a.randaugment_n = cfg.i("aug.randaugment_n");
  a.randaugment_m = cfg.i("aug.randaugment_m");
  a.randaugment_bins = cfg.i("aug.randaugment_bins");
  a.fill = cfg.f("aug.fill");
  a.scale_min = cfg.f("aug.scale_min");
  a.scale_max = cfg.f("aug.scale_max");
  a.random_resized_crop = cfg.b("aug.random_resized_crop");
  a.rrc_scale_min = cfg.f("aug.rrc_scale_min");
  a.rrc_scale_max = cfg.f("aug.rrc_scale_max");
  a.rrc_ratio_min = cfg.f("aug.rrc_ratio_min");
  a.rrc_ratio_max = cfg.f("aug.rrc_ratio_max");
  return a;
}

DeviceLoader::DeviceLoader(const Dataset& ds, torch::Device device, torch::ScalarType dtype,
                           const std::vector<double>& mean, const std::vector<double>& std, bool channels_last,
                           const View& view)
    : channels_last_(channels_last), view_(view) {
  if (!(view.fraction > 0 && view.fraction <= 1)) throw Error("data.eval_crop must be in (0, 1]");
  auto C = ds.images.size(1);
  auto x = ds.images.to(device).to(torch::kFloat32);  // uint8 crosses once, then converts on the device
  if (!mean.empty()) {
    if (static_cast<int64_t>(mean.size()) != C || static_cast<int64_t>(std.size()) != C)
      throw Error("normalisation needs one mean and std per channel (" + std::to_string(C) + ")");
    auto m = torch::tensor(mean, torch::kFloat32).to(device).view({1, C, 1, 1});
    auto s = torch::tensor(std, torch::kFloat32).to(device).view({1, C, 1, 1});
    x = (x - m) / s;
    mean_ = m, scale_ = s;
  } else {
    x = x / 255.0;
    mean_ = torch::zeros({1, C, 1, 1}, x.options());
    scale_ = torch::full({1, C, 1, 1}, 255.0, x.options());
  }
  data_ = x.to(dtype);
  if (channels_last_) data_ = data_.contiguous(torch::MemoryFormat::ChannelsLast);
  labels_ = ds.labels.to(device);
}

std::pair<std::vector<double>, std::vector<double>> DeviceLoader::channel_stats(const Dataset& ds) {
  auto x = ds.images.to(torch::kFloat64);
  auto mean = x.mean({0, 2, 3}), std = x.std({0, 2, 3});
  std::vector<double> m(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
  std::vector<double> s(std.data_ptr<double>(), std.data_ptr<double>() + std.numel());
  return {m, s};
}

int64_t DeviceLoader::num_batches(int64_t bs, bool drop_last) const {
  return drop_last ? size() / bs : (size() + bs - 1) / bs;
}

EpochPlan DeviceLoader::plan(uint64_t seed, int64_t epoch, bool shuffle, const AugmentOptions& aug) const {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, 1000 + static_cast<uint64_t>(epoch)));
  // Crop offsets, cutout and the policy's magnitudes are in the View's pixels (what the
  // augmentations after the resize see).
  const int64_t N = size(), H = input_height(), W = input_width();
  auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  auto dev = data_.device();
  EpochPlan p;
  p.epoch = epoch;
  auto order = shuffle ? torch::randperm(N, gen, i64) : torch::arange(N, i64);
  p.order = order.to(dev, /*non_blocking=*/true);
  if (aug.pad > 0) {
    p.dy = torch::randint(0, 2 * aug.pad + 1, {N}, gen, i64).to(dev, true);
    p.dx = torch::randint(0, 2 * aug.pad + 1, {N}, gen, i64).to(dev, true);
  }
  if (aug.flip && aug.alternating) {
    // One coin per example for the whole run (its own stream), read through the epoch's order
    // and inverted on odd epochs.
    auto base_gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, 999));
    auto base = torch::rand({N}, base_gen) < 0.5;
    auto f = base.index_select(0, order);
    p.flip = (epoch % 2 == 1 ? f.logical_not() : f).to(dev, true);
  } else if (aug.flip) {
    p.flip = (torch::rand({N}, gen) < 0.5).to(dev, true);
  }
  if (aug.cutout > 0) {
    if (aug.cutout > H || aug.cutout > W) throw Error("aug.cutout = " + std::to_string(aug.cutout) + " exceeds the image size");
    p.cut_y = torch::randint(0, H - aug.cutout + 1, {N}, gen, i64).to(dev, true);
    p.cut_x = torch::randint(0, W - aug.cutout + 1, {N}, gen, i64).to(dev, true);
  }
  // Drawn after the draws above, so that runs without a policy or scale jitter see exactly the
  // draws they always did.
  if (aug.policy != "none") {
    PolicyDraws d;
    if (aug.policy == "autoaugment") d = draw_autoaugment_cifar10(N, H, W, gen);
    else if (aug.policy == "randaugment") d = draw_randaugment(N, aug.randaugment_n, aug.randaugment_m, aug.randaugment_bins, H, W, gen);
    else throw Error("aug.policy = '" + aug.policy + "' is not one of: none | autoaugment | randaugment");
    // Indexed by position in the epoch, like the other draws.
    p.pol_op_host = d.op;
    p.pol_op = d.op.to(dev, true);
    p.pol_mag = d.magnitude.to(dev, true);
  }
  if (aug.scale_jitter()) {
    if (!(aug.scale_min > 0 && aug.scale_max >= aug.scale_min))
      throw Error("aug.scale_min / aug.scale_max must satisfy 0 < min <= max");
    auto s = torch::exp(std::log(aug.scale_min) + (std::log(aug.scale_max) - std::log(aug.scale_min)) * torch::rand({N}, gen, torch::kFloat64));
    // The window (s > 1) or the placement (s < 1): uniform over every position that keeps the
    // image covering the output (or inside it).
    auto span_y = static_cast<double>(H) - s * static_cast<double>(H), span_x = static_cast<double>(W) - s * static_cast<double>(W);
    auto oy = torch::minimum(span_y, torch::zeros_like(span_y)) + span_y.abs() * torch::rand({N}, gen, torch::kFloat64);
    auto ox = torch::minimum(span_x, torch::zeros_like(span_x)) + span_x.abs() * torch::rand({N}, gen, torch::kFloat64);
    p.scale = s.to(torch::kFloat32).to(dev, true);
    p.scale_oy = oy.to(torch::kFloat32).to(dev, true);
    p.scale_ox = ox.to(torch::kFloat32).to(dev, true);
  }
  if (aug.random_resized_crop) {
    if (!(aug.rrc_scale_min > 0 && aug.rrc_scale_max >= aug.rrc_scale_min && aug.rrc_scale_max <= 1))
      throw Error("aug.rrc_scale_min / aug.rrc_scale_max must satisfy 0 < min <= max <= 1");
    if (!(aug.rrc_ratio_min > 0 && aug.rrc_ratio_max >= aug.rrc_ratio_min))
      throw Error("aug.rrc_ratio_min / aug.rrc_ratio_max must satisfy 0 < min <= max");
    auto b = draw_resized_crops(N, data_.size(2), data_.size(3), aug.rrc_scale_min, aug.rrc_scale_max, aug.rrc_ratio_min,
                                aug.rrc_ratio_max, gen);
    p.box_top = b.top.to(dev, true), p.box_left = b.left.to(dev, true);
    p.box_h = b.h.to(dev, true), p.box_w = b.w.to(dev, true);
  }
  return p;
}

EpochPlan shard_plan(const EpochPlan& p, int64_t rank, int64_t world, int64_t per_rank) {
  auto pos = torch::arange(rank, per_rank * world, world, torch::kInt64);
  auto take = [&](const torch::Tensor& t) { return t.defined() ? t.index_select(0, pos.to(t.device())) : t; };
  EpochPlan s;
  s.epoch = p.epoch;
  s.order = take(p.order);
  s.dy = take(p.dy), s.dx = take(p.dx);
  s.flip = take(p.flip);
  s.cut_y = take(p.cut_y), s.cut_x = take(p.cut_x);
  s.pol_op = take(p.pol_op), s.pol_mag = take(p.pol_mag), s.pol_op_host = take(p.pol_op_host);
  s.scale = take(p.scale), s.scale_oy = take(p.scale_oy), s.scale_ox = take(p.scale_ox);
  s.box_top = take(p.box_top), s.box_left = take(p.box_left), s.box_h = take(p.box_h), s.box_w = take(p.box_w);
  return s;
}

Batch DeviceLoader::batch(const EpochPlan& p, int64_t k, int64_t bs, const AugmentOptions& aug) const {
  const int64_t b0 = k * bs, b1 = std::min(p.order.size(0), b0 + bs);
  auto idx = p.order.slice(0, b0, b1);
  auto x = data_.index_select(0, idx);
  if (p.box_top.defined()) {
    auto sl = [&](const torch::Tensor& t) { return t.slice(0, b0, b1); };
    x = resized_crop(x, {sl(p.box_top), sl(p.box_left), sl(p.box_h), sl(p.box_w)}, input_height(), input_width());
  } else {
    x = viewed(x);
  }
  if (p.pol_op.defined() || p.scale.defined()) {
    auto xf = x.to(torch::kFloat32);
    if (p.pol_op.defined()) {
      std::vector<bool> present(static_cast<size_t>(PixelOp::Count), false);
      auto ops = p.pol_op_host.slice(0, b0, b1).contiguous();
      const int64_t* o = ops.data_ptr<int64_t>();
      for (int64_t i = 0; i < ops.numel(); ++i) present[static_cast<size_t>(o[i])] = true;
      auto pix = (xf * scale_ + mean_).round().clamp(0, 255);
      pix = apply_policy(pix, p.pol_op.slice(0, b0, b1), p.pol_mag.slice(0, b0, b1), aug.fill, present);
      xf = (pix - mean_) / scale_;
    }
    if (p.scale.defined()) xf = scale_jitter(xf, p.scale.slice(0, b0, b1), p.scale_oy.slice(0, b0, b1), p.scale_ox.slice(0, b0, b1));
    x = xf.to(data_.scalar_type());
  }
  if (aug.pad > 0) x = random_crop(x, aug.pad, aug.reflect, p.dy.slice(0, b0, b1), p.dx.slice(0, b0, b1));
  if (aug.flip) x = flip_where(x, p.flip.slice(0, b0, b1));
  if (aug.cutout > 0) x = cutout(x, aug.cutout, p.cut_y.slice(0, b0, b1), p.cut_x.slice(0, b0, b1));
  if (channels_last_) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  return {x, labels_.index_select(0, idx)};
}

torch::Tensor DeviceLoader::viewed(const torch::Tensor& x) const {
  const int64_t H = data_.size(2), W = data_.size(3);
  if (view_.identity(H, W)) return x;
  auto y = resized_crop(x, center_boxes(x.size(0), H, W, view_.fraction), input_height(), input_width());
  return channels_last_ ? y.contiguous(torch::MemoryFormat::ChannelsLast) : y;
}

Batch DeviceLoader::slice(int64_t begin, int64_t end) const {
  return {viewed(data_.slice(0, begin, end)), labels_.slice(0, begin, end)};
}

Batch DeviceLoader::take(const torch::Tensor& index) const {
  auto i = index.to(data_.device());
  return {viewed(data_.index_select(0, i)), labels_.index_select(0, i)};
}

}  // namespace kiln
