// Self-training's pieces (issue #7, Zoph et al. 2020, "Rethinking Pre-training and
// Self-training"): a teacher's pseudo-labels on unlabeled images, their quality against the
// hidden labels, and the student's loss on batches that mix labeled and pseudo-labeled
// examples. The trainer's student mode (selftrain.* keys) and `kiln selftrain` use them.
#pragma once
#include <torch/torch.h>

#include <string>

#include "kiln/core/config.h"
#include "kiln/data/loader.h"
#include "kiln/nn/model.h"

namespace kiln {

struct PseudoLabels {
  torch::Tensor targets;     // N x C target distributions: one-hot ("hard") or softmax(logits / T) ("soft")
  torch::Tensor keep;        // N bool: the teacher's confidence (max probability at T = 1) >= threshold
  torch::Tensor confidence;  // N, max softmax probability at T = 1
  torch::Tensor predicted;   // N int64, argmax
};

// The teacher in eval mode over `unlabeled` (its labels are never read), with test-time
// augmentation `tta` (none | flip | flip+translate). mode "hard": one-hot of the argmax;
// "soft": softmax(logits / temperature). Examples below `threshold` confidence are dropped
// (keep = false) in either mode. One host read at the end.
PseudoLabels make_pseudo_labels(Classifier& teacher, const DeviceLoader& unlabeled, int64_t batch_size,
                                const std::string& mode, double threshold, double temperature, const std::string& tta);

// Accuracy of the kept pseudo-labels against the hidden true labels (NaN when hidden_labels is
// undefined: images without labels), and coverage (the kept fraction).
struct PseudoLabelQuality {
  double accuracy = 0, coverage = 0;
  int64_t kept = 0;
};
PseudoLabelQuality pseudo_label_quality(const PseudoLabels& p, const torch::Tensor& hidden_labels);

// -sum_c q_c log softmax(logits)_c per example (q: target distributions), fp32.
torch::Tensor soft_cross_entropy(const torch::Tensor& logits, const torch::Tensor& targets);

// The student's loss on a batch of n_l labeled and n_p pseudo-labeled examples:
//   L = L_l + w * s * L_p
// with L_l, L_p the mean losses of the two parts (labeled: cross-entropy with label
// smoothing; pseudo: soft cross-entropy against the targets), and two separate weightings:
//   pseudo_weight (w): "fixed" -> w = weight;  "ratio" -> w = weight * n_p / n_l (the batch
//     ratio, as the public Noisy Student code weights its unlabeled loss);
//   loss_normalization (s): off -> s = 1;  on -> s = mean(L_l) / mean(L_p) over the steps so
//     far (this one included, detached), so the pseudo-labeled loss is rescaled to the labeled
//     loss's running level (the normalisation of the paper).
// The running sums live on the device: no host synchronisation per step.
class StudentLoss {
 public:
  StudentLoss(std::string pseudo_weight, double weight, bool loss_normalization, double label_smoothing);
  struct Parts {
    torch::Tensor total, labeled, pseudo, scale;  // scale = w * s
  };
  Parts operator()(const torch::Tensor& logits_labeled, const torch::Tensor& y, const torch::Tensor& logits_pseudo,
                   const torch::Tensor& targets);
  // The running sums (empty before the first step), for checkpoints: resuming restores them exactly.
  torch::Tensor state() const;
  void set_state(const torch::Tensor& sums, const torch::Device& device);

 private:
  std::string mode_;
  double weight_, smoothing_;
  bool normalize_;
  torch::Tensor sum_l_, sum_p_;  // running sums of the two mean losses
};

// The augmentation strengths of the experiment (Zoph et al. 2020's S1-S4, in kiln's CIFAR
// version), set on top of a config:
//   S1: flip + translate (the preset's aug.pad, 4 if it has none), no policy, no scale jitter
//   S2: S1 + AutoAugment's CIFAR-10 policy
//   S3: S2 + scale jitter in [0.75, 1.33]
//   S4: RandAugment(2, 15 of 31 bins) + scale jitter in [0.75, 1.33] + flip + translate
// Cutout is off unless the name ends in "+cutout" (then aug.cutout = 16, AutoAugment's CIFAR
// setting). Unknown names are refused.
void apply_strength(Config& cfg, const std::string& strength);
// A student's configuration in `kiln selftrain`: `base` with selftrain.teacher = `teacher`,
// its noise (model.dropout, model.stochastic_depth from selftrain.student_*), and model.widths
// times selftrain.student_width_mult; schedule.epochs and optim.weight_decay from
// selftrain.student_epochs and selftrain.student_weight_decay where those are set.
Config student_config(const Config& base, const std::string& teacher);

}  // namespace kiln
