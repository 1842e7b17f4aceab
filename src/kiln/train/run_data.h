// The run's data side (one part of kiln/train/run.h): the training subset and its labelled
// split, the normalisation, the loaders on the device in the run's precision and layout, each
// rank's share when data parallel, and the step counts every other part reads.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"
#include "kiln/data/loader.h"
#include "kiln/data/split.h"
#include "kiln/dist/dist.h"
#include "kiln/train/run_settings.h"

namespace kiln {

struct RunData {
  // data.train_subset and data.test_subset applied; with data.labeled > 0 the training set is
  // the labelled part of the split (`labeled_index` when defined, else split_labeled with
  // data.split_seed). `dist` (nullptr: one process) gives each rank a strided shard of every
  // epoch and of the test set.
  RunData(const DataSettings& s, const TrainTest& data, const torch::Tensor& labeled_index, const torch::Device& device,
          torch::ScalarType dtype, bool channels_last, const dist::Group* dist);

  LabeledSplit split;  // filled when data.labeled > 0 (the student's unlabelled examples)
  std::unique_ptr<DeviceLoader> train, test;
  std::unique_ptr<DeviceLoader> test_shard;  // this rank's share of the test set (data parallel only)
  std::vector<double> mean, std;             // data.normalize: the training set's channel statistics
  int64_t in_channels = 0, classes = 0;
  std::vector<std::string> class_names;
  int64_t batch_size = 0;   // data.batch_size (a rank's, when data parallel)
  int64_t shard_n = 0;      // examples a rank an epoch (data parallel only)
  int64_t steps = 0;        // steps an epoch
  int64_t total_steps = 0;  // ceil(schedule.epochs x steps)
  int64_t epochs = 0;       // epochs started; the last may be partial (airbench94: 9.9)

  // The epoch's plan of a rank: the shuffled order with its augmentation draws, this rank's shard.
  EpochPlan plan(uint64_t seed, int64_t epoch, const AugmentOptions& aug, const dist::Group* dist) const;
  // The network's input size (data.input_size, else the stored size).
  int64_t image_height() const { return train->input_height(); }
  int64_t image_width() const { return train->input_width(); }
};

}  // namespace kiln
