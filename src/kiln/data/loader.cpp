#include "kiln/data/loader.h"

#include <ATen/CPUGeneratorImpl.h>

#include "kiln/core/error.h"
#include "kiln/data/augment.h"

namespace kiln {

uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

DeviceLoader::DeviceLoader(const Dataset& ds, torch::Device device, torch::ScalarType dtype,
                           const std::vector<double>& mean, const std::vector<double>& std, bool channels_last)
    : channels_last_(channels_last) {
  auto C = ds.images.size(1);
  auto x = ds.images.to(device).to(torch::kFloat32);  // uint8 crosses once, then converts on the device
  if (!mean.empty()) {
    if (static_cast<int64_t>(mean.size()) != C || static_cast<int64_t>(std.size()) != C)
      throw Error("normalisation needs one mean and std per channel (" + std::to_string(C) + ")");
    auto m = torch::tensor(mean, torch::kFloat32).to(device).view({1, C, 1, 1});
    auto s = torch::tensor(std, torch::kFloat32).to(device).view({1, C, 1, 1});
    x = (x - m) / s;
  } else {
    x = x / 255.0;
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
  const int64_t N = size(), H = data_.size(2), W = data_.size(3);
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
  return p;
}

Batch DeviceLoader::batch(const EpochPlan& p, int64_t k, int64_t bs, const AugmentOptions& aug) const {
  const int64_t b0 = k * bs, b1 = std::min(size(), b0 + bs);
  auto idx = p.order.slice(0, b0, b1);
  auto x = data_.index_select(0, idx);
  if (aug.pad > 0) x = random_crop(x, aug.pad, aug.reflect, p.dy.slice(0, b0, b1), p.dx.slice(0, b0, b1));
  if (aug.flip) x = flip_where(x, p.flip.slice(0, b0, b1));
  if (aug.cutout > 0) x = cutout(x, aug.cutout, p.cut_y.slice(0, b0, b1), p.cut_x.slice(0, b0, b1));
  if (channels_last_) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  return {x, labels_.index_select(0, idx)};
}

Batch DeviceLoader::slice(int64_t begin, int64_t end) const {
  return {data_.slice(0, begin, end), labels_.slice(0, begin, end)};
}

}  // namespace kiln
