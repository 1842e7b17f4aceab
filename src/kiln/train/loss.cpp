#include "kiln/train/loss.h"

namespace kiln {

torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& y, double eps, bool sum) {
  namespace F = torch::nn::functional;
  auto opts = F::CrossEntropyFuncOptions().label_smoothing(eps);
  if (sum) opts = opts.reduction(torch::kSum);
  else opts = opts.reduction(torch::kMean);
  return F::cross_entropy(logits.to(torch::kFloat32), y, opts);
}

torch::Tensor classification_loss_per_example(const torch::Tensor& logits, const torch::Tensor& y, double eps) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(logits.to(torch::kFloat32), y, F::CrossEntropyFuncOptions().label_smoothing(eps).reduction(torch::kNone));
}

}  // namespace kiln
