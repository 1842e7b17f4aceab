#include "kiln/train/run_data.h"

#include <cmath>

#include "kiln/core/error.h"

namespace kiln {

RunData::RunData(const DataSettings& s, const TrainTest& data, const torch::Tensor& labeled_index, const torch::Device& dev,
                 torch::ScalarType dtype, bool channels_last, const dist::Group* dist) {
  auto tr = data.train.head(s.train_subset);
  if (s.labeled > 0) {
    if (labeled_index.defined()) {
      split = split_by_index(tr, labeled_index);
      if (split.labeled.size() != s.labeled)
        throw Error("the given labeled split has " + std::to_string(split.labeled.size()) + " examples; data.labeled = " +
                    std::to_string(s.labeled));
    } else {
      split = split_labeled(tr, s.labeled, static_cast<uint64_t>(s.split_seed));
    }
    tr = split.labeled;
  }
  auto te = data.test.head(s.test_subset);
  in_channels = tr.images.size(1);
  class_names = tr.classes;
  classes = static_cast<int64_t>(tr.classes.size());
  if (s.normalize) std::tie(mean, std) = DeviceLoader::channel_stats(tr);
  train = std::make_unique<DeviceLoader>(tr, dev, dtype, mean, std, channels_last, s.view);
  test = std::make_unique<DeviceLoader>(te, dev, dtype, mean, std, channels_last, s.view);
  batch_size = s.batch_size;
  if (dist) {
    const int64_t W = dist->size(), R = dist->rank();
    // Every rank the same number of examples (the permutation's tail beyond a multiple of the
    // world size is dropped each epoch), so every rank takes the same number of steps.
    shard_n = train->size() / W;
    if (shard_n == 0) throw Error("fewer training examples than ranks");
    // The test set: rank r evaluates examples r, r + W, ...; the sums are added across ranks.
    auto idx = torch::arange(R, te.size(), W, torch::kInt64);
    Dataset part{te.images.index_select(0, idx), te.labels.index_select(0, idx), te.classes};
    test_shard = std::make_unique<DeviceLoader>(part, dev, dtype, mean, std, channels_last, s.view);
  }
  const int64_t n = dist ? shard_n : train->size();
  steps = s.drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
  if (steps == 0)
    throw Error("data.batch_size = " + std::to_string(batch_size) + " is larger than the " + std::to_string(n) +
                " training examples" + (dist ? " of each rank" : "") +
                " with data.drop_last = true; lower the batch size or set data.drop_last=false");
  total_steps = static_cast<int64_t>(std::ceil(s.epochs * static_cast<double>(steps) - 1e-9));
  epochs = (total_steps + steps - 1) / steps;  // the last one may be partial (airbench94: 9.9 epochs)
}

EpochPlan RunData::plan(uint64_t seed, int64_t epoch, const AugmentOptions& aug, const dist::Group* dist) const {
  auto p = train->plan(seed, epoch, /*shuffle=*/true, aug);
  if (dist) p = shard_plan(p, dist->rank(), dist->size(), shard_n);
  return p;
}

}  // namespace kiln
