// Optimiser construction (parameter groups), Muon, Lookahead and weight averaging.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/train/run_settings.h"

namespace kiln {

// Newton-Schulz orthogonalisation (Muon's "zeroth power"): X = G / (|G|_F + eps), transposed
// when G has more rows than columns, then `steps` times  A = X X^T,  X = a X + (b A + c A A) X
// with (a, b, c) = (3.4445, -4.7750, 2.0315), in `dtype` (bf16 on CUDA as the peer; fp32 on the
// CPU). For G = U S V^T the result is U p(S / |G|_F) V^T with p the scalar iteration applied
// `steps` times: singular vectors kept, singular values pushed towards ~1 (0.5..1.5), which is
// what tests/test_airbench.cpp checks against an SVD.
torch::Tensor newton_schulz(const torch::Tensor& G, int64_t steps, torch::ScalarType dtype, double eps = 1e-7);

// Muon for 4-D conv filters (airbench94_muon): per filter tensor p with gradient g,
//   buf = momentum * buf + g;   u = nesterov ? g + momentum * buf : buf
//   p *= sqrt(out_channels) / |p|   (when normalize)
//   p -= lr * newton_schulz(u reshaped to out_channels x rest)
// No weight decay. State: the momentum buffers (saved in checkpoints).
class Muon {
 public:
  Muon(std::vector<torch::Tensor> params, double momentum, bool nesterov, int64_t ns_steps, bool normalize);
  void step(double lr);
  void zero_grad();
  void save(torch::serialize::OutputArchive& ar) const;
  void load(torch::serialize::InputArchive& ar);
  const std::vector<torch::Tensor>& params() const { return params_; }

 private:
  std::vector<torch::Tensor> params_, bufs_;
  double momentum_;
  bool nesterov_, normalize_;
  int64_t ns_steps_;
};

// SGD with momentum as Myrtle.ai's notebook writes it (optim.sgd_form = "lr_in_momentum";
// davidcpage/cifar10-fast, torch_backend.py, nesterov_update): per parameter w with gradient g,
//   d = -lr (g + wd w);   v = momentum v + d;   w += nesterov ? d + momentum v : v
// The buffer v sums LR-scaled updates, so a new LR reaches the momentum only through new steps.
// LibTorch's SGD sums gradients in its buffer b and scales the whole step by the current LR
// (b = momentum b + (g + wd w); w -= lr (g + wd w + momentum b)): the two agree while the LR is
// constant (v = -lr b) and differ whenever the schedule moves it. Same groups, options and
// checkpoint state (SGDParamState's momentum_buffer holds v) as LibTorch's SGD.
class SgdLrInMomentum : public torch::optim::SGD {
 public:
  using torch::optim::SGD::SGD;
  torch::Tensor step(LossClosure closure = nullptr) override;
};

// The run's optimisers. SGD holds every parameter Muon does not (all of them with optim.name =
// "sgd"), in groups: 0 the rest (x1), then when present the BN biases (LR x bn_bias_lr_mult,
// weight decay / bn_bias_wd_div), the head (x head_lr_mult, / head_wd_div; a group of its own
// only when either differs from 1), the whitening bias (a group of its own only with
// optim.whiten_bias_schedule = linear_to_zero).
// With optim.name = adam | adamw the same groups go to LibTorch's Adam / AdamW instead (betas,
// eps from optim.adam_*; Adam adds weight decay to the gradient, AdamW decays the weights).
struct SgdSetup {
  std::unique_ptr<torch::optim::Optimizer> optimizer;  // SGD, or Adam / AdamW
  bool is_sgd = true;
  std::vector<double> lr_mult;     // per SGD group, the factor on the scheduled LR
  std::vector<bool> whiten_group;  // per SGD group: follows the whitening bias's own LR
  std::unique_ptr<Muon> muon;      // with optim.name = "muon"
  double peak_lr = 0, muon_peak_lr = 0;
  // lr: the main schedule's LR (optim.lr x multiplier); Muon gets muon_lr x the same
  // multiplier. whiten_lr >= 0 sets the whitening bias group's LR (else it follows lr).
  void set_lr(double lr, double whiten_lr = -1);
  void zero_grad();
  void step();
  void save(torch::serialize::OutputArchive& ar) const;
  void load(torch::serialize::InputArchive& ar);
  double current_muon_lr_ = 0;
};

SgdSetup make_sgd(const OptimizerSettings& s, torch::nn::Module& model, double initial_lr);
SgdSetup make_sgd(const Config& cfg, torch::nn::Module& model, double initial_lr);  // OptimizerSettings::from_config(cfg)

// Lookahead as airbench keeps it: slow copies of every parameter and floating-point buffer;
// update(decay): slow = decay * slow + (1 - decay) * current, then current = slow.
// update(1.0) therefore puts the slow weights into the model (done at the end of training).
class Lookahead {
 public:
  explicit Lookahead(torch::nn::Module& model);
  void update(torch::nn::Module& model, double decay);
  void save(torch::serialize::OutputArchive& ar) const;
  void load(torch::serialize::InputArchive& ar);

 private:
  std::vector<torch::Tensor> slow_;
};

// avg = m * avg + (1 - m) * current for every parameter and floating-point buffer (BN
// running statistics included, so the averaged model's BN matches its weights); integer
// buffers are copied.
void ema_update(torch::nn::Module& avg, torch::nn::Module& current, double m);
// Copies every parameter and buffer.
void copy_weights(torch::nn::Module& dst, torch::nn::Module& src);

}  // namespace kiln
