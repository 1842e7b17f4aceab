// The device-resident loader: the whole dataset is moved to the device once as uint8 and
// normalised there once; shuffling and augmentation are batched tensor ops. All random
// draws of an epoch (the permutation, crop offsets, flips, cutout positions) come from a
// CPU generator seeded with (seed, epoch) alone and are moved to the device once per
// epoch, so an epoch is reproducible on its own (exact resume, same draws on every device)
// and no step waits on the host.
#pragma once
#include <torch/torch.h>

#include <string>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"

namespace kiln {

// The network's input as the loader presents it (issue #26): the central `fraction` of each side
// of the stored images, resized to h x w (antialiased bilinear, kiln/data/augment.h) — timm's
// crop_pct, i.e. torchvision's Resize(size / fraction) + CenterCrop(size) with the crop taken
// first. Evaluation always sees this view; training sees it too unless
// aug.random_resized_crop draws its own boxes. h = w = 0 and fraction 1: the images as stored.
struct View {
  int64_t h = 0, w = 0;  // data.input_size ([] = the stored size)
  double fraction = 1;   // data.eval_crop
  // The output size for stored images of height x width.
  int64_t out_h(int64_t height) const { return h > 0 ? h : height; }
  int64_t out_w(int64_t width) const { return w > 0 ? w : width; }
  bool identity(int64_t height, int64_t width) const {
    return fraction == 1 && out_h(height) == height && out_w(width) == width;
  }
  // data.input_size and data.eval_crop.
  static View from_config(const Config& cfg);
};

struct AugmentOptions {
  int64_t pad = 0;       // translate by up to `pad` pixels (random crop of the padded image)
  bool reflect = true;   // reflect padding (else zeros)
  bool flip = false;     // random horizontal flip
  int64_t cutout = 0;    // square side (0 = off)
  bool alternating = false;  // with flip: airbench's alternating flip (each image flipped at random in
                             // epoch 0, then mirrored relative to that on odd epochs)
  // Before the translate/flip/cutout above (kiln/data/policy.h), on pixel values:
  std::string policy = "none";  // none | autoaugment (the CIFAR-10 policy) | randaugment
  int64_t randaugment_n = 2, randaugment_m = 9, randaugment_bins = 31;
  double fill = 128;            // what geometric operations bring in from outside (pixel value)
  double scale_min = 1, scale_max = 1;  // scale jitter: a scale drawn log-uniformly in [min, max] (1, 1: off)
  bool scale_jitter() const { return scale_min != 1 || scale_max != 1; }
  // Random-resized crop, first of all (torchvision's RandomResizedCrop; kiln/data/augment.h): a
  // box of area fraction in [rrc_scale_min, rrc_scale_max] and aspect ratio (w / h) log-uniform in
  // [rrc_ratio_min, rrc_ratio_max], resized to the View's size.
  bool random_resized_crop = false;
  double rrc_scale_min = 0.08, rrc_scale_max = 1, rrc_ratio_min = 3.0 / 4, rrc_ratio_max = 4.0 / 3;
  // The aug.* keys of a configuration.
  static AugmentOptions from_config(const Config& cfg);
};

struct EpochPlan {
  int64_t epoch = 0;
  torch::Tensor order;        // permutation of the examples (device)
  torch::Tensor dy, dx;       // crop offsets per position in the epoch (device)
  torch::Tensor flip;         // bool per position
  torch::Tensor cut_y, cut_x; // cutout corners per position
  torch::Tensor pol_op, pol_mag;  // policy operations and magnitudes per position (device), N x S
  torch::Tensor pol_op_host;      // the same operations on the CPU: which ones a batch needs, without asking the device
  torch::Tensor scale, scale_oy, scale_ox;  // scale jitter per position (device)
  torch::Tensor box_top, box_left, box_h, box_w;  // random-resized crop boxes per position (device)
};

struct Batch {
  torch::Tensor x, y;
};

class DeviceLoader {
 public:
  // mean/std: per-channel, in 0..255 pixel units (empty: no normalisation, just /255).
  // view: what slice() returns and batch() starts from (the stored images by default).
  DeviceLoader(const Dataset& ds, torch::Device device, torch::ScalarType dtype, const std::vector<double>& mean,
               const std::vector<double>& std, bool channels_last = false, const View& view = {});

  // Per-channel mean and std of a dataset's pixels (0..255 units).
  static std::pair<std::vector<double>, std::vector<double>> channel_stats(const Dataset& ds);

  int64_t size() const { return labels_.size(0); }
  int64_t num_batches(int64_t batch_size, bool drop_last) const;
  const torch::Tensor& data() const { return data_; }  // as stored (before the view)
  // The size of every batch and slice: the View's.
  int64_t input_height() const { return view_.out_h(data_.size(2)); }
  int64_t input_width() const { return view_.out_w(data_.size(3)); }
  const torch::Tensor& labels() const { return labels_; }

  // The epoch's random draws, from (seed, epoch) alone.
  EpochPlan plan(uint64_t seed, int64_t epoch, bool shuffle, const AugmentOptions& aug) const;
  // Batch k of an epoch, augmented.
  Batch batch(const EpochPlan& plan, int64_t k, int64_t batch_size, const AugmentOptions& aug) const;
  // Examples [begin, end) in order, unaugmented, through the View (evaluation).
  Batch slice(int64_t begin, int64_t end) const;
  // The examples at `index`, unaugmented, through the View.
  Batch take(const torch::Tensor& index) const;

 private:
  torch::Tensor data_;    // N x C x H x W, normalised, `dtype`, on the device
  torch::Tensor labels_;  // N, int64, on the device
  torch::Tensor mean_, scale_;  // 1 x C x 1 x 1 fp32: pixel = data * scale + mean
  bool channels_last_;
  View view_;
  torch::Tensor viewed(const torch::Tensor& x) const;  // the View applied to a batch
};

// Rank `rank` of `world`'s share of an epoch: positions rank, rank + world, ... of the first
// `per_rank * world` (each rank gets per_rank), with every per-position draw (crop, flip,
// cutout, policy, scale, crop box) taken along, so an example is augmented as it would be in a single
// process, and the ranks' batches k together are the single process's batch k of world times
// the size.
EpochPlan shard_plan(const EpochPlan& p, int64_t rank, int64_t world, int64_t per_rank);

// A 64-bit seed derived from a run seed and a stream index (splitmix64 mixing).
uint64_t derive_seed(uint64_t seed, uint64_t stream);

}  // namespace kiln
