#include "kiln/train/optim.h"

#include <cmath>
#include <set>

#include "kiln/nn/model.h"

namespace kiln {

torch::Tensor newton_schulz(const torch::Tensor& G, int64_t steps, torch::ScalarType dtype, double eps) {
  TORCH_CHECK(G.dim() == 2, "newton_schulz needs a matrix");
  const double a = 3.4445, b = -4.7750, c = 2.0315;
  auto X = G.to(dtype);
  X = X / (X.norm() + eps);
  const bool tall = G.size(0) > G.size(1);
  if (tall) X = X.t();
  for (int64_t i = 0; i < steps; ++i) {
    auto A = X.mm(X.t());
    auto B = b * A + c * A.mm(A);
    X = a * X + B.mm(X);
  }
  return tall ? X.t() : X;
}

Muon::Muon(std::vector<torch::Tensor> params, double momentum, bool nesterov, int64_t ns_steps, bool normalize)
    : params_(std::move(params)), momentum_(momentum), nesterov_(nesterov), normalize_(normalize), ns_steps_(ns_steps) {
  for (auto& p : params_) bufs_.push_back(torch::zeros_like(p));
}

void Muon::step(double lr) {
  torch::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i];
    auto g = p.grad();
    if (!g.defined()) continue;
    auto& buf = bufs_[i];
    buf.mul_(momentum_).add_(g);
    auto u = nesterov_ ? g.add(buf, momentum_) : buf;
    if (normalize_) p.mul_(std::sqrt(static_cast<double>(p.size(0))) / p.norm());
    auto dtype = p.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
    auto update = newton_schulz(u.reshape({u.size(0), -1}), ns_steps_, dtype).view(p.sizes());
    p.add_(update.to(p.dtype()), -lr);
  }
}

void Muon::zero_grad() {
  for (auto& p : params_) p.mutable_grad() = torch::Tensor();
}

void Muon::save(torch::serialize::OutputArchive& ar) const {
  for (size_t i = 0; i < bufs_.size(); ++i) ar.write("buf" + std::to_string(i), bufs_[i]);
}

void Muon::load(torch::serialize::InputArchive& ar) {
  for (size_t i = 0; i < bufs_.size(); ++i) {
    torch::Tensor t;
    ar.read("buf" + std::to_string(i), t);
    bufs_[i].copy_(t);
  }
}

torch::Tensor SgdLrInMomentum::step(LossClosure closure) {
  torch::NoGradGuard ng;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode grad(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    const auto& o = static_cast<const torch::optim::SGDOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto d = o.weight_decay() != 0 ? p.grad().add(p, o.weight_decay()) : p.grad().clone();
      d.mul_(-o.lr());
      if (o.momentum() == 0) {
        p.add_(d);
        continue;
      }
      auto it = state_.find(p.unsafeGetTensorImpl());
      torch::Tensor v;
      if (it == state_.end()) {  // v starts at 0, so its first value is d
        v = d.clone();
        auto st = std::make_unique<torch::optim::SGDParamState>();
        st->momentum_buffer(v);
        state_[p.unsafeGetTensorImpl()] = std::move(st);
      } else {
        v = static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer();
        v.mul_(o.momentum()).add_(d);
      }
      p.add_(o.nesterov() ? d.add_(v, o.momentum()) : v);
    }
  }
  return loss;
}

void SgdSetup::set_lr(double lr, double whiten_lr) {
  auto& groups = optimizer->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].options().set_lr((whiten_group[g] && whiten_lr >= 0 ? whiten_lr : lr) * lr_mult[g]);
  current_muon_lr_ = peak_lr > 0 ? muon_peak_lr * lr / peak_lr : 0;
}

void SgdSetup::zero_grad() {
  optimizer->zero_grad();
  if (muon) muon->zero_grad();
}

void SgdSetup::step() {
  optimizer->step();
  if (muon) muon->step(current_muon_lr_);
}

void SgdSetup::save(torch::serialize::OutputArchive& ar) const {
  optimizer->save(ar);
  if (muon) {
    torch::serialize::OutputArchive m;
    muon->save(m);
    ar.write("muon", m);
  }
}

void SgdSetup::load(torch::serialize::InputArchive& ar) {
  optimizer->load(ar);
  if (muon) {
    torch::serialize::InputArchive m;
    ar.read("muon", m);
    muon->load(m);
  }
}

SgdSetup make_sgd(const Config& cfg, torch::nn::Module& model, double lr) {
  return make_sgd(OptimizerSettings::from_config(cfg), model, lr);
}

SgdSetup make_sgd(const OptimizerSettings& o, torch::nn::Module& model, double lr) {
  auto key = [](const torch::Tensor& t) { return static_cast<const void*>(t.unsafeGetTensorImpl()); };
  std::set<const void*> bn_bias, head, whiten_bias;
  for (auto& b : batchnorm_biases(model)) bn_bias.insert(key(b));
  const bool own_head = o.head_lr_mult != 1.0 || o.head_wd_div != 1.0;
  const bool own_whiten = o.whiten_bias_linear;
  const bool muon = o.name == "muon";
  for (auto& item : model.named_parameters()) {
    if (item.key().rfind("fc.", 0) == 0) head.insert(key(item.value()));
    if (item.key() == "whiten_bias") whiten_bias.insert(key(item.value()));
  }
  std::vector<torch::Tensor> rest, biases, heads, whitens, filters;
  for (auto& p : model.parameters()) {
    if (muon && p.dim() == 4) filters.push_back(p);
    else if (bn_bias.count(key(p))) biases.push_back(p);
    else if (own_head && head.count(key(p))) heads.push_back(p);
    else if (own_whiten && whiten_bias.count(key(p))) whitens.push_back(p);
    else rest.push_back(p);
  }
  const double wd = o.weight_decay;
  auto base = torch::optim::SGDOptions(lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(wd);
  SgdSetup s;
  const auto& name = o.name;
  s.is_sgd = o.is_sgd();
  const std::tuple<double, double> betas{o.adam_beta1, o.adam_beta2};
  auto adam = torch::optim::AdamOptions(lr).betas(betas).eps(o.adam_eps).weight_decay(wd);
  auto adamw = torch::optim::AdamWOptions(lr).betas(betas).eps(o.adam_eps).weight_decay(wd);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor>& ps, double mult, double wd_div, bool whiten) {
    if (ps.empty()) return;
    if (name == "adam") {
      auto o = adam;
      groups.emplace_back(ps, std::make_unique<torch::optim::AdamOptions>(o.weight_decay(wd / wd_div)));
    } else if (name == "adamw") {
      auto o = adamw;
      groups.emplace_back(ps, std::make_unique<torch::optim::AdamWOptions>(o.weight_decay(wd / wd_div)));
    } else {
      auto o = base;
      groups.emplace_back(ps, std::make_unique<torch::optim::SGDOptions>(o.weight_decay(wd / wd_div)));
    }
    s.lr_mult.push_back(mult);
    s.whiten_group.push_back(whiten);
  };
  add(rest, 1.0, 1.0, false);
  add(biases, o.bn_bias_lr_mult, o.bn_bias_wd_div, false);
  add(heads, o.head_lr_mult, o.head_wd_div, false);
  add(whitens, 1.0, 1.0, true);
  if (name == "adam") s.optimizer = std::make_unique<torch::optim::Adam>(groups, adam);
  else if (name == "adamw") s.optimizer = std::make_unique<torch::optim::AdamW>(groups, adamw);
  else if (o.lr_in_momentum) s.optimizer = std::make_unique<SgdLrInMomentum>(groups, base);
  else s.optimizer = std::make_unique<torch::optim::SGD>(groups, base);
  if (muon) {
    s.muon = std::make_unique<Muon>(filters, o.muon_momentum, o.muon_nesterov, o.muon_ns_steps, o.muon_normalize);
  }
  s.peak_lr = o.lr;
  s.muon_peak_lr = o.muon_lr;
  s.set_lr(lr);
  return s;
}

Lookahead::Lookahead(torch::nn::Module& model) {
  torch::NoGradGuard ng;
  for (auto& p : model.parameters()) slow_.push_back(p.detach().clone());
  for (auto& b : model.buffers())
    if (b.is_floating_point()) slow_.push_back(b.detach().clone());
}

void Lookahead::update(torch::nn::Module& model, double decay) {
  torch::NoGradGuard ng;
  size_t i = 0;
  auto apply = [&](torch::Tensor& t) {
    auto& s = slow_[i++];
    s.lerp_(t, 1 - decay);
    t.copy_(s);
  };
  for (auto& p : model.parameters()) apply(p);
  for (auto& b : model.buffers())
    if (b.is_floating_point()) apply(b);
}

void Lookahead::save(torch::serialize::OutputArchive& ar) const {
  for (size_t i = 0; i < slow_.size(); ++i) ar.write("slow" + std::to_string(i), slow_[i]);
}

void Lookahead::load(torch::serialize::InputArchive& ar) {
  for (size_t i = 0; i < slow_.size(); ++i) {
    torch::Tensor t;
    ar.read("slow" + std::to_string(i), t);
    slow_[i].copy_(t);
  }
}

void ema_update(torch::nn::Module& avg, torch::nn::Module& current, double m) {
  torch::NoGradGuard ng;
  auto a = avg.parameters(), b = current.parameters();
  for (size_t i = 0; i < a.size(); ++i) a[i].mul_(m).add_(b[i], 1 - m);
  auto c = avg.buffers(), d = current.buffers();
  for (size_t i = 0; i < c.size(); ++i) {
    if (c[i].is_floating_point()) c[i].mul_(m).add_(d[i], 1 - m);
    else c[i].copy_(d[i]);
  }
}

void copy_weights(torch::nn::Module& dst, torch::nn::Module& src) {
  torch::NoGradGuard ng;
  auto a = dst.parameters(), b = src.parameters();
  for (size_t i = 0; i < a.size(); ++i) a[i].copy_(b[i]);
  auto c = dst.buffers(), d = src.buffers();
  for (size_t i = 0; i < c.size(); ++i) c[i].copy_(d[i]);
}

}  // namespace kiln
