// The bag of tricks' layers, each named as the field names it, each with its definition.
#pragma once
#include <torch/torch.h>

#include <string>

namespace kiln {
namespace dist {
class Group;
}  // namespace dist

// Activations by name. CELU(x; a) = max(0, x) + min(0, a * (exp(x / a) - 1));
// ReLU6(x) = min(max(0, x), 6) (MobileNet's, friendly to int8).
enum class Activation { ReLU, CELU, GELU, ReLU6 };
Activation parse_activation(const std::string& name);
std::string activation_name(Activation a);  // the inverse of parse_activation
torch::Tensor activate(const torch::Tensor& x, Activation a, double celu_alpha);

struct BatchNormOptions {
  double momentum = 0.1;        // LibTorch convention: running = (1 - m) * running + m * batch
  double eps = 1e-5;
  int64_t ghost_splits = 1;     // ghost batch norm: statistics over this many sub-batches
  bool freeze_weight = false;   // the scale is a constant buffer, not a parameter
  double weight_init = 1.0;
};

// Batch norm with two of the tricks built in:
// - ghost batch norm: in training, the batch is cut into `ghost_splits` interleaved splits,
//   example k in split k mod ghost_splits (Myrtle.ai's notebook: input.view(-1, C * splits, H, W)),
//   each normalised with its own statistics; the running statistics move towards the mean of
//   the splits' statistics (identical to plain BN applied split by split from the same state,
//   then averaging the running statistics; the notebook keeps one running copy per split and
//   averages them before evaluating, which is the same average since the update is linear). A
//   batch that does not divide evenly is normalised as one batch. Evaluation uses the running
//   statistics as usual. Interleaving puts every kind of example of a concatenated batch (the
//   self-training student's labelled + pseudo-labelled halves) into every split.
// - frozen scale: the weight is a buffer fixed at weight_init (not trained, not in any
//   optimiser group, not weight-decayed).
// Parameters and running statistics stay fp32 whatever the activations' dtype.
struct BatchNormImpl : torch::nn::Module {
  explicit BatchNormImpl(int64_t channels, BatchNormOptions o = {});
  torch::Tensor forward(const torch::Tensor& x);
  BatchNormOptions options;
  torch::Tensor weight, bias, running_mean, running_var;
  // dist.sync_bn: while set, training batches are normalised with the statistics of every
  // rank's batch together (dist::sync_batch_norm); nullptr: this process's batch alone.
  dist::Group* sync_group = nullptr;
  // train.fused_cpu: pool_bn_act may take this layer, its pool before and its GELU after as one
  // fused CPU operator, in training and in evaluation (kiln/nn/fused_cpu.h); false: LibTorch's operators.
  bool fused_cpu = false;
  // train.fused_cuda: the same on CUDA (kiln/nn/fused_gpu.h; not yet run on a GPU).
  bool fused_cuda = false;
};
TORCH_MODULE(BatchNorm);

// Sets (or with nullptr clears) the synchronised-BN group of every BatchNorm in `model`.
void set_sync_bn_group(torch::nn::Module& model, dist::Group* group);

// Patch whitening (Myrtle.ai; airbench): a fixed convolution whose filters are the
// eigenvectors v_i of the uncentred second-moment matrix of the training set's k x k x C
// patches, each scaled by 1 / sqrt(lambda_i + eps), so the whitened patches' second-moment
// matrix is diag(lambda_i / (lambda_i + eps)). With `with_negated`, the negated filters are
// appended (airbench's 2x2 variant: 2 * k*k*C output channels). Filters are ordered by
// decreasing eigenvalue. Not trained (buffers); fitted once by fit(). With `trained` (the
// whitening taken out, as an ablation: airbench's model.whiten_trained), the same convolution's
// weight is a parameter, all zeros until its owner initialises it, trained with the other weights
// and never fitted: fit() then refuses.
struct PatchWhiteningImpl : torch::nn::Module {
  PatchWhiteningImpl(int64_t in_channels, int64_t kernel, double eps, bool with_negated, int64_t padding,
                     bool trained = false);
  // Fits the filters to x (N x C x H x W, any float dtype); returns the eigenvalues (descending).
  torch::Tensor fit(const torch::Tensor& x);
  // With `bias` (one per output channel), added inside the convolution, as a conv with
  // bias = true: one pass over the output, not a second elementwise add.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& bias = {});
  int64_t out_channels() const;
  int64_t in_channels, kernel, padding;
  double eps;
  bool with_negated, trained;
  torch::Tensor weight;       // out_channels x C x k x k
  torch::Tensor eigenvalues;  // k*k*C, descending
};
TORCH_MODULE(PatchWhitening);

// Test-time augmentation: "none", "flip" (mean of the logits of the image and its mirror),
// or "flip+translate": (1 - w) * flip(x) + w * mean of flip() at the reflect-padded image
// shifted one pixel up-left and one pixel down-right (airbench's level 2, w = 0.5).
torch::Tensor predict_with_tta(const std::function<torch::Tensor(const torch::Tensor&)>& f, const torch::Tensor& x,
                               const std::string& mode, double translate_weight);

// How many network passes an image the test-time augmentation `mode` takes: none 1, flip 2,
// flip+translate 6. Throws kiln::Error for any other mode.
int64_t tta_view_count(const std::string& mode);

}  // namespace kiln
