// The training loop, written out plainly: data on the device, a step with no host-device
// synchronisation (losses and accuracies accumulate on the device and are read once per
// epoch), evaluation, metrics.jsonl, and checkpoints that resume exactly.
#pragma once
#include <torch/torch.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/dist/dist.h"
#include "kiln/data/dataset.h"
#include "kiln/data/loader.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_settings.h"

namespace kiln {

struct EpochMetrics {
  int64_t epoch = 0;           // 1-based: epochs completed
  double train_loss = 0;       // mean per example (as optimised: label smoothing included)
  double train_acc = 0;        // on the augmented batches, during the epoch
  bool evaluated = false;
  double test_loss = 0;        // plain cross-entropy
  double test_acc = 0;
  // Per class (class order), when the evaluation's predictions were at hand (one process): the
  // fraction of that class's test images predicted right; NaN for a class with none.
  std::vector<double> test_class_acc;
  // A self-training student's two parts of the loss, each the mean over the epoch's steps of
  // its mean per example (labelled: cross-entropy with label smoothing; pseudo-labelled: soft
  // cross-entropy against the teacher's targets), unweighted; NaN when not a student.
  double student_labeled_loss = std::nan(""), student_pseudo_loss = std::nan("");
  double lr = 0;               // at the epoch's last step
  double epoch_seconds = 0;    // training steps only (evaluation excluded), read after a sync
  double eval_seconds = 0;
  double images_per_s = 0;
  double train_seconds = 0;    // cumulative training time
  int64_t live_allocations = 0, live_bytes = 0;  // leak watch, after the epoch (report/memory.h)
  std::string to_json() const;
  static EpochMetrics from_json(const std::string& line);  // the inverse of to_json
};

struct RunOptions {
  torch::Device device{torch::kCPU};
  std::string run_dir;              // "" writes nothing
  std::string command_line;
  bool verbose = true;              // progress bar and per-epoch lines on stderr
  const std::atomic<bool>* stop = nullptr;  // when set: checkpoint at the current step and return
  int64_t stop_after_steps = -1;    // for tests: stop as if interrupted after this many steps
  std::function<void()> in_step;    // for tests: called inside every training step (after the update), where train.sync_check watches
  // Called after every epoch; returning true ends training there (early stop, no checkpoint
  // beyond the epoch's own).
  std::function<bool(const EpochMetrics&)> stop_when;
  bool resuming = false;            // set by resume(): the weights come from the run's checkpoint, not train.init
  // With data.labeled: the labeled examples' indices in the training set, chosen by the caller
  // (split_labeled on the same set); undefined: the run makes the split from data.labeled and
  // data.split_seed itself.
  torch::Tensor labeled_index;
  // Data parallelism (kiln/dist/dist.h): this process's membership of a job of several ranks
  // (nullptr or a world of 1: a single process). Each rank trains on a strided shard of every
  // epoch's permutation; rank 0 alone writes run_dir (the others read it to resume).
  std::shared_ptr<dist::Group> dist;
};

struct RunResult {
  std::vector<EpochMetrics> epochs;
  double final_test_acc = 0, final_test_loss = 0;
  double train_seconds = 0;
  bool interrupted = false;
  bool stopped_early = false;  // stop_when said so
  int64_t parameters = 0;
  std::string run_dir;
  std::vector<std::string> warnings;  // said at the start (stderr) and kept in final.json
};

// Appends the warnings of `from` that `into` does not hold yet, in their order: a set's, an
// ablation row's and a bench's warnings, each once.
void merge_warnings(std::vector<std::string>& into, const std::vector<std::string>& from);

// Trains from scratch as `cfg` says on `data` (data.train_subset / test_subset applied here).
RunResult train(const Config& cfg, const TrainTest& data, const RunOptions& opt);
// Continues the run whose checkpoint is in opt.run_dir (its config comes from the checkpoint).
RunResult resume(const TrainTest& data, const RunOptions& opt);

struct EvalResult {
  double loss = 0, acc = 0;
  int64_t n = 0;
  torch::Tensor predictions;  // int64, N, on the CPU
};
// Evaluates in eval mode (restores the previous mode), one host read at the end, with
// test-time augmentation `tta` (none | flip | flip+translate; see predict_with_tta).
EvalResult evaluate(Classifier& model, const DeviceLoader& loader, int64_t batch_size, const std::string& tta = "none",
                    double translate_weight = 0.5);
// One batch's logits as an evaluation computes them: in the batch's precision (ComputeGuard) with
// test-time augmentation `tta` (predict_with_tta). The caller sets eval mode and no_grad.
torch::Tensor eval_logits(Classifier& model, const torch::Tensor& x, const std::string& tta, double translate_weight);
// Every image's logits (N x K, fp32, on the loader's device), eval_logits over batches of
// `batch_size`, in eval mode without gradients (the previous mode restored): pseudo-labelling,
// `kiln predict`.
torch::Tensor logits_of(Classifier& model, const DeviceLoader& loader, int64_t batch_size, const std::string& tta,
                        double translate_weight);

// A trained model restored from a checkpoint (the EMA weights when the run kept an EMA), with the normalisation it was trained with.
struct LoadedCheckpoint {
  Config cfg;
  ClassifierPtr model;
  std::vector<double> mean, std;
  int64_t epochs_done = 0;
  // The run's class names and stored image size {C, H, W} (before data.input_size's view);
  // both empty for checkpoints written before 2026-12-04 (fourth session), which did not hold them.
  std::vector<std::string> class_names;
  std::vector<int64_t> stored_shape;
};
LoadedCheckpoint load_checkpoint(const std::string& path, const torch::Device& device);
// What a checkpoint's model takes and gives: its class names and the stored image size (before
// data.input_size's view). From the checkpoint; for one written before it held them, from the
// run's training set, which `dataset` is called to load (only then).
struct ModelIO {
  std::vector<std::string> classes;
  int64_t channels = 0, height = 0, width = 0;
};
ModelIO model_io_of(const LoadedCheckpoint& ck, const std::function<TrainTest()>& dataset);
// Puts the checkpoint's model as its run evaluated it: in the run's layout (train.channels_last)
// and with its fused CPU operators (train.fused_cpu); their roundings are the run's (in bf16 the
// fused evaluation's differ from LibTorch's operators' and can move an image's prediction).
// Returns the run's settings, parsed once (step.channels_last: the layout the inputs must come in).
RunSettings as_its_run_evaluated(const LoadedCheckpoint& ck);
// The checkpoint's model on its run's test set (data.test_subset of `data`), evaluated as the
// run evaluated it: its precision on `device`, its layout (train.channels_last: the model is put
// in it) and fused CPU operators (train.fused_cpu), data.test_batch_size, eval.tta. `kiln eval` reports
// this; `kiln quantize` (before and after int8) passes `compute` = fp32, the inputs' dtype in
// place of the run's (the model's weights must already be in it: set_precision).
EvalResult evaluate_checkpoint(const LoadedCheckpoint& ck, const TrainTest& data, const torch::Device& device,
                               std::optional<torch::ScalarType> compute = std::nullopt);

// `kiln overfit`: the preset with everything that fights memorisation switched off (no
// augmentation, label smoothing, weight decay, ghost BN, EMA, TTA), on the first `examples`
// training examples in one batch, at a constant LR, for up to `max_epochs` steps.
Config overfit_config(const Config& preset, int64_t examples, int64_t max_epochs, double lr);
struct OverfitResult {
  bool reached = false;  // 100% training accuracy with the loss below the target
  std::vector<EpochMetrics> curve;
};
OverfitResult overfit(const Config& cfg, const TrainTest& data, double loss_target, RunOptions opt);

// `kiln lr-find`: an exponential learning-rate sweep from lr_min to lr_max over `steps` steps
// of the preset's own training (data, augmentation, model, optimiser; the LR in optim.lr's
// units), ended early once the smoothed loss passes 4x its minimum. Losses are per example,
// read from the device once, at the end.
struct LrFindResult {
  std::vector<double> lr, loss, smoothed;  // smoothed: bias-corrected EMA (0.98) of the loss
  double steepest_lr = 0;  // where the smoothed loss falls fastest against log(lr): the suggestion
  double min_loss_lr = 0;  // where the smoothed loss is lowest
};
LrFindResult lr_find(const Config& cfg, const TrainTest& data, const torch::Device& device, double lr_min,
                     double lr_max, int64_t steps);

// `kiln bench`: one timed run as the peers time it. The clock covers fitting the whitening
// layer, the training steps of every epoch and the final evaluation (with the preset's TTA);
// it excludes loading the data, building the model and (here: skipped) per-epoch evaluation.
// Each interval is bracketed by device synchronisation (host clock; on CUDA that is the
// interval CUDA events around the same work would measure, up to launch latency).
struct BenchRun {
  double test_acc = 0;
  double seconds = 0;  // whiten + train + eval
  double whiten_seconds = 0, train_seconds = 0, eval_seconds = 0;
  // The process's CPU time (every thread, std::clock) over the training and the final evaluation
  // (not the whitening fit). Beside the wall clock it tells a slow run's cause on a shared machine:
  // time the threads waited for a CPU counts in the wall clock only; a slowdown while running
  // (caches and memory shared with other tenants) in both.
  double cpu_seconds = 0;
  double flops = 0;    // 3 x forward FLOPs x training images + TTA views x forward x test images (0: unknown)
  std::vector<std::string> warnings;  // RunResult::warnings
};
BenchRun bench_run(Config cfg, const TrainTest& data, const torch::Device& device);

// A checkpoint opened for reading; refused, naming the file, when it is missing, when a record's
// bytes do not match the CRC-32 stored for them (LibTorch does not check them:
// kiln/core/zip_check.h) or when LibTorch cannot read the archive.
torch::serialize::InputArchive open_checkpoint(const std::string& path, std::optional<torch::Device> device = std::nullopt);
// The configuration stored in a checkpoint.
Config checkpoint_config(torch::serialize::InputArchive& ar, const std::string& path);
Config checkpoint_config(const std::string& path);
// Runs `read` on an opened checkpoint's records: LibTorch's errors (a missing record, a tensor of
// the wrong shape) become an Error naming the file.
void reading_checkpoint(const std::string& path, const std::function<void()>& read);

}  // namespace kiln
