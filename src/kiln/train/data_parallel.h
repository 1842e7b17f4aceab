// Data parallelism inside a run (one part of kiln/train/run.h; kiln/dist/dist.h holds the
// process group): every rank starts from rank 0's weights, its gradients are summed over the
// ranks in buckets overlapped with backward, the epoch's sums are added once an epoch, BN's
// running statistics are averaged before evaluating and saving, and each rank's share of the
// test evaluation is added up.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "kiln/core/config.h"
#include "kiln/dist/dist.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_settings.h"

namespace kiln {

struct EvalResult;

class DataParallel {
 public:
  // group: the job (nullptr or a world of 1: one process, and every method is a no-op).
  DataParallel(std::shared_ptr<dist::Group> group, const RunSettings& s);
  bool active() const { return group_ != nullptr; }
  dist::Group* group() const { return group_.get(); }
  int64_t size() const { return group_ ? group_->size() : 1; }

  // dist.sync_bn for the length of a run: the model's BatchNorms take the ranks' union batch's
  // statistics (the group passed to them; cleared when the scope ends).
  struct SyncBnScope {
    SyncBnScope(Classifier& m, dist::Group* g) : model(m) { set_sync_bn_group(model, g); }
    ~SyncBnScope() { set_sync_bn_group(model, nullptr); }
    Classifier& model;
  };
  std::unique_ptr<SyncBnScope> sync_bn_scope(Classifier& model) const;

  // Every rank starts from rank 0's weights and buffers (the same seed gives the same ones;
  // this makes it so whatever the init); returns the line that describes the job.
  std::string start(Classifier& model, Classifier* ema, int64_t shard_n, int64_t batch_size);
  // Around backward: the gradients summed over the ranks, overlapped with backward; averaged
  // for a mean loss (the mean over the union batch), summed for a summed loss (the sum).
  void begin_backward(Classifier& model);
  void finish_backward();
  // The set of parameters that take gradients changed: the all-reduce is rebuilt on next use.
  void drop_reducer() { reducer_.reset(); }
  // The epoch's sums: [loss sum, hits, per-step mean losses...] summed over the ranks, the
  // per-step means averaged. One all-reduce an epoch.
  void reduce_epoch(torch::Tensor& sums) const;
  // BN's running statistics (and any other floating-point buffer) averaged over the ranks, so
  // every rank evaluates and rank 0 saves the same model.
  void average_buffers(Classifier& model, Classifier* ema) const;
  // Each rank evaluated its share of the test set: the sums added (predictions dropped).
  void reduce_eval(EvalResult& ev, const torch::Device& device) const;

 private:
  std::shared_ptr<dist::Group> group_;
  bool sum_loss_, sync_bn_;
  int64_t bucket_bytes_;
  std::unique_ptr<dist::GradReducer> reducer_;  // the gradient all-reduce (hooks and buckets), kept across steps
};

}  // namespace kiln
