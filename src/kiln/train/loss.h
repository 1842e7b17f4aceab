// Cross-entropy with label smoothing, summed or averaged over the batch.
#pragma once
#include <torch/torch.h>

namespace kiln {

// loss = -sum_c q_c log softmax(logits)_c with q = (1 - eps) * onehot(y) + eps / C,
// reduced by sum or mean over the batch. Logits are upcast to fp32 first.
torch::Tensor classification_loss(const torch::Tensor& logits, const torch::Tensor& y, double label_smoothing,
                                  bool sum_reduction);
// The same loss for each example (fp32, one value per row of logits).
torch::Tensor classification_loss_per_example(const torch::Tensor& logits, const torch::Tensor& y, double label_smoothing);

}  // namespace kiln
