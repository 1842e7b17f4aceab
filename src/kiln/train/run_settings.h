// A run's settings, typed and parsed once (RunSettings::from_config): every key the run's
// parts read, grouped by part, with the string choices as enums, and the refusals of
// combinations that cannot work in one place (check_compatible). The keys' types, defaults,
// ranges and meanings are the schema's (kiln/core/config.cpp); the parts never look a key
// up by string. (The model's and the optimiser's own keys are read by make_model and
// make_sgd from the same Config; the augmentation's by AugmentOptions::from_config, the
// schedule's by LrSchedule and Plateau::from_config.)
#pragma once
#include <cstdint>
#include <string>

#include "kiln/core/config.h"
#include "kiln/core/precision.h"
#include "kiln/data/dataset.h"
#include "kiln/data/loader.h"
#include "kiln/deploy/quantize.h"
#include "kiln/nn/model.h"

namespace kiln {

enum class LossReduction { kMean, kSum };
enum class PlateauMetric { kTrainLoss, kTestLoss };

struct DataSettings {
  std::string dataset = "cifar10";            // data.dataset
  std::string folder;                         // data.folder (dataset = folder)
  FolderOptions folder_options;               // data.image_size, resize, background, memory_limit_mb, val_fraction, split_seed
  int64_t train_subset = 0, test_subset = 0;  // data.*: the first N examples (0 = all)
  int64_t labeled = 0, split_seed = 0;        // data.labeled, data.split_seed
  int64_t batch_size = 512, test_batch_size = 1000;
  bool drop_last = true, normalize = true;
  View view;          // data.input_size, data.eval_crop: what the network sees (kiln/data/loader.h)
  double epochs = 1;  // schedule.epochs (fractional: airbench94's 9.9)
  // What a run takes of data sets of these sizes, as its first line says it: "50000 train /
  // 10000 test", or with subsets and a labeled split "the first 2000 of 50000 train, 400 of them
  // labeled / the first 500 of 10000 test" (the subset rule of Dataset::head: 0 or more than
  // there are = all).
  std::string describe_use(int64_t train_size, int64_t test_size) const;
};

struct StepSettings {
  std::string precision = "auto";  // train.precision: auto | fp32 | bf16 | fp16 (resolved against the device)
  bool master_weights = true;      // train.master_weights (bf16: fp32 weights and optimiser state)
  bool channels_last = true;       // train.channels_last (every device; measured faster on the CPU, not run on CUDA)
  bool fused_cpu = true;           // train.fused_cpu (kiln/nn/fused_cpu.h)
  bool fused_cuda = false;         // train.fused_cuda (kiln/nn/fused_gpu.h)
  bool static_step = false;        // train.static_step
  bool cuda_graph = false;         // train.cuda_graph (implies the static step)
  bool sync_check = false;         // train.sync_check
  bool qat = false;                // train.qat
  IntGrid qat_grid;                // train.qat_granularity, train.qat_bits
  bool uses_static() const { return static_step || cuda_graph; }
  // The memory format's name as the run's first line and `kiln bench`'s JSON ("layout") give it.
  const char* layout() const { return channels_last ? "channels_last" : "NCHW"; }
  // The fused operators as the run's first line and `kiln bench`'s JSON ("fused_cpu", "fused_cuda")
  // give them: on the CPU fused_cpu_isa() when train.fused_cpu is set, on CUDA "cuda" when
  // train.fused_cuda is set (fused_gpu_backend), else "off".
  std::string fused(const torch::Device& d) const;
  Precision resolve(const torch::Device& d) const { return resolve_precision(precision, master_weights, d); }
};

struct LoopSettings {
  uint64_t seed = 0;              // train.seed
  std::string init;               // train.init: a checkpoint to start from ("" = none)
  int64_t eval_every = 1, checkpoint_every = 1, progress_every = 1;
  double divergence_loss = 0;     // train.divergence_loss (0: 25 ln C)
  std::string tta = "none";       // eval.tta: none | flip | flip+translate
  double tta_translate_weight = 0.5;
};

struct OptimizerSettings {
  std::string name = "sgd";        // optim.name: sgd | muon | adam | adamw
  bool is_sgd() const { return name == "sgd" || name == "muon"; }
  double lr = 0, momentum = 0, label_smoothing = 0, weight_decay = 0;
  bool nesterov = false;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, adam_eps = 1e-8;
  double bn_bias_lr_mult = 1, bn_bias_wd_div = 1;  // the BN biases' group
  double head_lr_mult = 1, head_wd_div = 1;        // the head's group (its own when either differs from 1)
  LossReduction reduction = LossReduction::kMean;
  bool sum_loss() const { return reduction == LossReduction::kSum; }
  bool lr_in_momentum = false;     // optim.sgd_form = lr_in_momentum (the Myrtle notebook's update)
  double muon_lr = 0, muon_momentum = 0;
  bool muon_nesterov = false, muon_normalize = false;
  int64_t muon_ns_steps = 5;
  bool lookahead = false;
  int64_t lookahead_every = 5;
  double lookahead_decay = 0, lookahead_power = 3;
  bool whiten_bias_linear = false;  // optim.whiten_bias_schedule = linear_to_zero
  int64_t whiten_bias_epochs = 0;   // model.whiten_bias_epochs
  bool ema = false;                 // ema.enabled
  int64_t ema_every = 5;
  double ema_momentum = 0.99;
  bool plateau = false;             // schedule.plateau_factor < 1
  PlateauMetric plateau_metric = PlateauMetric::kTrainLoss;
  static OptimizerSettings from_config(const Config& cfg);
};

struct StudentSettings {
  std::string teacher;              // selftrain.teacher ("" = not a student)
  int64_t unlabeled = 0;            // selftrain.unlabeled: the first N unlabeled examples
  std::string unlabeled_folder;     // selftrain.unlabeled_folder ("" = the rest of data.labeled's split)
  std::string mode = "soft";        // selftrain.mode: hard | soft
  double threshold = 0, temperature = 1, ratio = 1, weight = 1;
  std::string pseudo_weight = "fixed";  // selftrain.pseudo_weight: fixed | ratio
  bool loss_normalization = false;
  std::string tta = "none";         // selftrain.tta
  // kiln selftrain's students (student_config): their noise and width
  double student_dropout = 0, student_stochastic_depth = 0, student_width_mult = 1;
  double student_epochs = 0;         // 0 = the teacher's schedule.epochs
  double student_weight_decay = -1;  // negative = the teacher's optim.weight_decay
};

struct FilterSettings {
  int64_t keep = 0;                 // filter.keep (0 = off)
  int64_t train_every = 4;          // filter.train_every
  int64_t convs_per_group = 2;      // filter.convs_per_group (the proxy's)
};

struct DistSettings {
  bool sync_bn = false;             // dist.sync_bn
  double bucket_mb = 25;            // dist.bucket_mb
  std::string backend = "auto";     // dist.backend: auto | gloo | nccl
  double timeout_s = 120;           // dist.timeout_s
};

struct RunSettings {
  std::string description;  // meta.description
  DataSettings data;
  StepSettings step;
  LoopSettings loop;
  OptimizerSettings optim;
  ModelOptions model;  // the network's own settings (kiln/nn/model.h)
  StudentSettings student;
  FilterSettings filter;
  DistSettings dist;

  static RunSettings from_config(const Config& cfg);
  // The combinations no run can take, refused with the keys to change: the static step with
  // QAT, the plateau, Adam or a student; a test-loss plateau without per-epoch evaluation;
  // proxy filtering off an airbench network, with a batch it cannot shrink, without
  // drop_last or beside a student; a student without a labelled split; data parallelism
  // (world > 1) with the static step, a student, proxy filtering, or Gloo on CUDA.
  void check_compatible(int64_t world_size, bool gloo_on_cuda) const;
};

}  // namespace kiln
