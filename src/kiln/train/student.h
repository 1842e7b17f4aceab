// Self-training's student (one part of kiln/train/run.h; issue #7, selftrain.teacher): the
// teacher pseudo-labels the unlabelled rest of the run's split (its labels were replaced by -1
// in split_labeled; the true ones are used only to measure the pseudo-labels), or the images of
// selftrain.unlabeled_folder (no labels: the pseudo-labels' accuracy is unknown), and every step
// adds a batch of pseudo-labelled examples, cycling through them in their own seeded epochs, to
// the labelled batch; one forward over both (BN statistics over both), the student's loss on
// the two parts (kiln/train/selftrain.h).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/loader.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_data.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/selftrain.h"

namespace kiln {

// The teacher's (st.teacher, a checkpoint) pseudo-labels of `unlabeled` (its labels unread), in
// batches of batch_size: the teacher in its run's precision, layout and fused CPU operators
// (as_its_run_evaluated), so that with TTA as its run's a hard label is its run's prediction.
PseudoLabels teacher_pseudo_labels(const StudentSettings& st, const Dataset& unlabeled, const torch::Device& device,
                                   int64_t batch_size);

class Student {
 public:
  // Loads the teacher (selftrain.teacher), pseudo-labels the split's unlabelled examples (or
  // selftrain.unlabeled_folder's images, fitted to the training images' stored size) and
  // keeps those that pass selftrain.threshold. Throws when too few pass or the teacher knows
  // other classes (RunSettings::check_compatible refused the set-ups that cannot work).
  Student(const RunSettings& s, const RunData& data, const torch::Device& device, torch::ScalarType dtype, bool channels_last,
          const AugmentOptions& aug);

  // The forward and loss of one step: the labelled batch (x, y) and global step g's
  // pseudo-labelled batch; logits of the labelled part come back for the accuracy. The loss
  // is a sum over the labelled examples when sum_loss (optim.lr's units kept), else a mean.
  std::pair<torch::Tensor, torch::Tensor> forward(Classifier& model, const Batch& labeled, int64_t g, bool sum_loss);

  std::string summary_line() const;  // the pseudo-labels' coverage and accuracy, for the log
  const std::string& json() const { return json_; }  // pseudo_labels.json
  // The files a run writes for its student (name, content): pseudo_labels.json, and for
  // selftrain.unlabeled_folder pseudo_labels.csv (path,pseudo_label,confidence,kept per image).
  std::vector<std::pair<std::string, std::string>> files() const;

  // What the pseudo-labels were made from, for a resumed run to check: the MD5 of the teacher's
  // checkpoint file, and of selftrain.unlabeled_folder's images (their paths and decoded pixels,
  // as fitted to the run; "" for the split's rest, which is the dataset's).
  const std::string& teacher_md5() const { return teacher_md5_; }
  const std::string& folder_md5() const { return folder_md5_; }
  // Throws, naming the file or folder, when a resumed run finds either changed since the run
  // started: its pseudo-labels, and so its batches, would not be the interrupted run's.
  void check_resumed(const std::string& teacher_md5, const std::string& folder_md5) const;

  torch::Tensor state() const { return loss_->state(); }  // the loss normalisation's running sums
  void set_state(const torch::Tensor& s) { loss_->set_state(s, dev_); }

  // The epoch's two parts of the loss, summed over its steps on the device (float64: the
  // labelled part's mean loss L_l, the pseudo-labelled part's L_p; no host read per step).
  // reset_epoch() zeroes them; the run reads them with the epoch's other sums and checkpoints them.
  const torch::Tensor& epoch_parts() const { return epoch_parts_; }
  void reset_epoch() { epoch_parts_.zero_(); }
  void set_epoch_parts(const torch::Tensor& p) { epoch_parts_.copy_(p); }

 private:
  // The pseudo-labelled batch of global step g: a function of (seed, g) alone, so a resumed
  // run draws exactly the same batches.
  std::pair<Batch, torch::Tensor> batch(int64_t g);

  torch::Device dev_;
  uint64_t seed_;
  AugmentOptions aug_;
  std::unique_ptr<DeviceLoader> pseudo_;
  torch::Tensor targets_;  // kept x classes, fp32, on the device
  std::unique_ptr<EpochPlan> plan_;
  std::unique_ptr<StudentLoss> loss_;
  torch::Tensor epoch_parts_;  // float64 [2] on the device
  int64_t pbs_ = 0, batches_ = 0;
  std::string teacher_;
  std::string teacher_md5_, folder_md5_;
  std::string folder_;
  std::string source_;  // selftrain.unlabeled_folder: what reading it found and cost ("" = the split's rest)
  int64_t unlabeled_ = 0;
  PseudoLabelQuality quality_;
  std::string json_, csv_;
};

}  // namespace kiln
