#include "kiln/train/static_step.h"

#include <algorithm>

#include "kiln/core/error.h"
#include "kiln/core/precision.h"
#include "kiln/train/loss.h"

namespace kiln {

StaticStep::StaticStep(Classifier& model, const SgdSetup& setup, const StaticStepOptions& o,
                       const std::vector<double>& lr_table, const std::vector<double>& whiten_lr_table,
                       const torch::Device& device)
    : model_(model), o_(o) {
  lr_table_ = torch::tensor(lr_table, torch::kFloat64).to(torch::kFloat32).to(device);
  if (!whiten_lr_table.empty()) whiten_lr_table_ = torch::tensor(whiten_lr_table, torch::kFloat64).to(torch::kFloat32).to(device);
  auto i64 = torch::TensorOptions().dtype(torch::kInt64).device(device);
  global_step_ = torch::zeros({1}, i64);
  epoch_step_ = torch::zeros({1}, i64);
  auto& pg = setup.optimizer->param_groups();
  for (size_t g = 0; g < pg.size(); ++g) {
    Group G;
    G.params = pg[g].params();
    for (auto& p : G.params) G.bufs.push_back(torch::zeros_like(p));
    G.lr_mult = setup.lr_mult[g];
    G.weight_decay = static_cast<const torch::optim::SGDOptions&>(pg[g].options()).weight_decay();
    G.whiten = setup.whiten_group[g];
    G.muon = false;
    groups_.push_back(std::move(G));
  }
  if (setup.muon) {
    Group G;
    G.params = setup.muon->params();
    for (auto& p : G.params) G.bufs.push_back(torch::zeros_like(p));
    G.lr_mult = o.muon_lr_ratio;
    G.weight_decay = 0;
    G.whiten = false;
    G.muon = true;
    groups_.push_back(std::move(G));
  }
}

void StaticStep::load(const torch::Tensor& x, const torch::Tensor& y) {
  if (!x_.defined()) {
    x_ = torch::empty_like(x);
    y_ = torch::empty_like(y);
  }
  if (x.sizes() != x_.sizes())
    throw Error("the static (CUDA-graph) step needs batches of one size; set data.drop_last = true");
  x_.copy_(x);
  y_.copy_(y);
}

void StaticStep::set_position(int64_t global_step, int64_t step_in_epoch) {
  global_step_.fill_(global_step);
  epoch_step_.fill_(step_in_epoch);
}

void StaticStep::reset_epoch(int64_t steps_per_epoch) {
  if (loss_sum.defined()) {  // in place: a captured graph holds these addresses
    loss_sum.zero_();
    correct.zero_();
    step_losses.zero_();
    return;
  }
  auto dev = lr_table_.device();
  loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
  correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  step_losses = torch::zeros({steps_per_epoch}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
}

void StaticStep::run() {
  for (auto& G : groups_)
    for (auto& p : G.params)
      if (p.grad().defined()) p.mutable_grad().zero_();  // in place: the grads keep their addresses
  torch::Tensor logits, loss;
  {
    // bf16 data, fp32 master weights: autocast, its weight cache off (a cached cast would
    // outlive the update; on CUDA it would also be an allocation a captured graph keeps).
    ComputeGuard compute(model_, x_);
    logits = model_.forward(x_);
    loss = classification_loss(logits, y_, o_.label_smoothing, o_.sum_loss);
    loss.backward();
  }
  torch::NoGradGuard ng;
  auto lr = lr_table_.index_select(0, global_step_);  // 1-element device tensor
  auto wlr = whiten_lr_table_.defined() ? whiten_lr_table_.index_select(0, global_step_) : lr;
  for (auto& G : groups_) {
    // The LR stays fp32 (a 1-element device tensor): LR x update is formed in fp32 and rounded
    // once into fp16 or bf16 weights, as LibTorch's SGD does with its scalar LR.
    const auto glr = (G.whiten ? wlr : lr) * G.lr_mult;
    for (size_t i = 0; i < G.params.size(); ++i) {
      auto& p = G.params[i];
      if (!p.grad().defined() || !p.requires_grad()) continue;
      auto& buf = G.bufs[i];
      if (G.muon) {
        // As kiln::Muon::step, with the LR from the table.
        auto g = p.grad();
        buf.mul_(o_.muon_momentum).add_(g);
        auto u = o_.muon_nesterov ? g.add(buf, o_.muon_momentum) : buf;
        if (o_.muon_normalize) p.mul_(std::sqrt(static_cast<double>(p.size(0))) / p.norm());
        auto dtype = p.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
        auto upd = newton_schulz(u.reshape({u.size(0), -1}), o_.muon_ns_steps, dtype).view(p.sizes()).to(p.dtype());
        p.sub_(upd * glr);
        continue;
      }
      auto d = G.weight_decay != 0 ? p.grad().add(p, G.weight_decay) : p.grad();
      if (o_.lr_in_momentum) {
        // As kiln::SgdLrInMomentum: d = -lr (g + wd p); buf = m buf + d (buf starts at 0);
        // p += nesterov ? d + m buf : buf.
        auto step = (d * glr).neg_().to(p.scalar_type());
        buf.mul_(o_.momentum).add_(step);
        p.add_(o_.nesterov ? step.add_(buf, o_.momentum) : buf);
        continue;
      }
      // As LibTorch's SGD: d = g + wd p; buf = m buf + d (buf starts at 0, so its first value
      // is d, as LibTorch's clone); d = nesterov ? d + m buf : buf; p -= lr d.
      buf.mul_(o_.momentum).add_(d);
      d = o_.nesterov ? d.add(buf, o_.momentum) : buf;
      p.sub_(d * glr);
    }
  }
  auto l = loss.detach().to(torch::kFloat64);
  const double n = static_cast<double>(y_.size(0));
  loss_sum.add_(o_.sum_loss ? l : l * n);
  correct.add_(logits.argmax(1).eq(y_).sum());
  step_losses.index_copy_(0, epoch_step_, (o_.sum_loss ? l / n : l).view({1}));
  global_step_.add_(1);
  epoch_step_.add_(1);
}

namespace {
const void* address(const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
}  // namespace

// The order here and in moved_since's names is one: parameters, their gradients, buffers,
// momentum buffers, then the step's own tensors.
std::vector<const void*> StaticStep::footprint() const {
  std::vector<const void*> a;
  auto params = model_.parameters();
  auto buffers = model_.buffers();
  a.reserve(2 * params.size() + buffers.size() + 16);
  for (auto& p : params) a.push_back(address(p));
  for (auto& p : params) a.push_back(address(p.grad()));
  for (auto& b : buffers) a.push_back(address(b));
  for (auto& G : groups_)
    for (auto& b : G.bufs) a.push_back(address(b));
  for (auto* t : {&x_, &y_, &lr_table_, &whiten_lr_table_, &global_step_, &epoch_step_, &loss_sum, &correct, &step_losses})
    a.push_back(address(*t));
  // The host's decisions a capture freezes: which parameters take a gradient (the update skips
  // the others) and each module's train/eval mode (BN's batch statistics, dropout).
  static const char flag = 0;
  for (auto& p : params) a.push_back(p.requires_grad() ? &flag : nullptr);
  for (auto& m : model_.modules(/*include_self=*/true)) a.push_back(m->is_training() ? &flag : nullptr);
  return a;
}

std::string StaticStep::moved_since(const std::vector<const void*>& captured) const {
  const auto now = footprint();  // called before every replay: the names below only on a change
  if (now == captured) return "";
  if (now.size() != captured.size())
    return "the set of tensors the step uses (" + std::to_string(captured.size()) + " at the capture, " +
           std::to_string(now.size()) + " now: a parameter or buffer was added or removed)";
  const size_t i = static_cast<size_t>(std::mismatch(now.begin(), now.end(), captured.begin()).first - now.begin());
  auto params = model_.named_parameters();
  auto buffers = model_.named_buffers();
  const size_t np = params.size(), nb = buffers.size();
  if (i < np) return "parameter '" + params[i].key() + "'";
  if (i < 2 * np) {
    const std::string what = "the gradient of parameter '" + params[i - np].key() + "'";
    return now[i] == nullptr ? what + " (set to none)" : captured[i] == nullptr ? what + " (created after the capture)" : what;
  }
  if (i < 2 * np + nb) return "buffer '" + buffers[i - 2 * np].key() + "'";
  size_t k = i - 2 * np - nb;
  for (auto& G : groups_) {
    if (k < G.bufs.size()) {
      std::string of = "a parameter the model no longer holds";
      for (auto& p : params)
        if (p.value().unsafeGetTensorImpl() == G.params[k].unsafeGetTensorImpl()) of = "parameter '" + p.key() + "'";
      return std::string(G.muon ? "the Muon" : "the SGD") + " momentum buffer of " + of;
    }
    k -= G.bufs.size();
  }
  static const char* own[] = {"the static input batch", "the static labels", "the LR table", "the whitening-bias LR table",
                              "the global step counter", "the step-in-epoch counter", "the loss sum", "the hit count",
                              "the per-step losses"};
  if (k < 9) return own[k];
  k -= 9;
  if (k < np) return "whether parameter '" + params[k].key() + "' takes a gradient (requires_grad " +
                     (now[i] ? "true" : "false") + " now)";
  k -= np;
  auto modules = model_.named_modules("", /*include_self=*/true);
  if (k < modules.size())
    return "the train/eval mode of " + (modules[k].key().empty() ? std::string("the model") : "module '" + modules[k].key() + "'") +
           " (" + (now[i] ? "train" : "eval") + " now)";
  return "entry " + std::to_string(i) + " of the footprint";
}

void StaticStep::save(torch::serialize::OutputArchive& ar) const {
  int k = 0;
  for (auto& G : groups_)
    for (auto& b : G.bufs) ar.write("buf" + std::to_string(k++), b);
}

void StaticStep::load_state(torch::serialize::InputArchive& ar) {
  int k = 0;
  for (auto& G : groups_)
    for (auto& b : G.bufs) {
      torch::Tensor t;
      ar.read("buf" + std::to_string(k++), t);
      b.copy_(t);
    }
}

}  // namespace kiln
