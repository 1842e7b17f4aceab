#include "kiln/train/optim.h"

#include <set>

#include "kiln/nn/model.h"

namespace kiln {

void SgdSetup::set_lr(double lr) {
  auto& groups = optimizer->param_groups();
  for (size_t g = 0; g < groups.size(); ++g)
    static_cast<torch::optim::SGDOptions&>(groups[g].options()).lr(lr * lr_mult[g]);
}

SgdSetup make_sgd(const Config& cfg, torch::nn::Module& model, double lr) {
  std::set<const void*> bn_bias;
  for (auto& b : batchnorm_biases(model)) bn_bias.insert(b.unsafeGetTensorImpl());
  std::vector<torch::Tensor> rest, biases;
  for (auto& p : model.parameters()) (bn_bias.count(p.unsafeGetTensorImpl()) ? biases : rest).push_back(p);
  auto base = torch::optim::SGDOptions(lr)
                  .momentum(cfg.f("optim.momentum"))
                  .nesterov(cfg.b("optim.nesterov"))
                  .weight_decay(cfg.f("optim.weight_decay"));
  SgdSetup s;
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(rest, std::make_unique<torch::optim::SGDOptions>(base));
  s.lr_mult.push_back(1.0);
  if (!biases.empty()) {
    auto bo = base;
    bo.weight_decay(cfg.f("optim.weight_decay") / cfg.f("optim.bn_bias_wd_div"));
    groups.emplace_back(biases, std::make_unique<torch::optim::SGDOptions>(bo));
    s.lr_mult.push_back(cfg.f("optim.bn_bias_lr_mult"));
  }
  s.optimizer = std::make_unique<torch::optim::SGD>(groups, base);
  s.set_lr(lr);
  return s;
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
