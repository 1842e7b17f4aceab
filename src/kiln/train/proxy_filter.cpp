#include "kiln/train/proxy_filter.h"

#include <optional>

#include "kiln/core/error.h"
#include "kiln/core/precision.h"
#include "kiln/train/loss.h"
#include "kiln/train/run_settings.h"

namespace kiln {

Config proxy_config(const Config& cfg) {
  Config p = cfg;
  p.set_value("model.widths", cfg.value("filter.widths"));
  p.set_value("model.convs_per_group", RunSettings::from_config(cfg).filter.convs_per_group);
  p.set_value("model.whiten_bias_epochs", int64_t{0});
  p.set_value("model.dropout", 0.0);
  p.set_value("model.stochastic_depth", 0.0);
  return p;
}

ProxyFilter::ProxyFilter(ClassifierPtr proxy, SgdSetup sgd, const FilterOptions& o)
    : proxy_(std::move(proxy)), sgd_(std::move(sgd)), o_(o) {
  if (o_.keep <= 0) throw Error("filter.keep must be positive for a proxy filter");
  if (o_.train_every <= 0) throw Error("filter.train_every must be positive");
}

torch::Tensor ProxyFilter::select(const torch::Tensor& x, const torch::Tensor& y, int64_t global_step, double lr) {
  const int64_t n = x.size(0);
  if (o_.keep >= n)
    throw Error("filter.keep = " + std::to_string(o_.keep) + " keeps every example of a batch of " + std::to_string(n) +
                "; it must be smaller than data.batch_size");
  const bool learn = global_step % o_.train_every == 0;
  proxy_->train();
  torch::Tensor per;
  {
    std::optional<torch::NoGradGuard> ng;
    if (!learn) ng.emplace();
    ComputeGuard compute(*proxy_, x);
    per = classification_loss_per_example(proxy_->forward(x), y, o_.label_smoothing);
  }
  // Ascending positions, so the kept batch keeps the drawn order whatever top-k's own order.
  auto idx = std::get<0>(std::get<1>(per.detach().topk(o_.keep, 0, /*largest=*/true, /*sorted=*/false)).sort());
  forward_images += n;
  if (learn) {
    auto kept = per.index_select(0, idx);
    auto loss = o_.sum_loss ? kept.sum() : kept.mean();
    sgd_.set_lr(lr);
    sgd_.zero_grad();
    loss.backward();
    sgd_.step();
    trained_images += o_.keep;
  }
  return idx;
}

Batch ProxyFilter::filter(const Batch& b, int64_t global_step, double lr) {
  auto idx = select(b.x, b.y, global_step, lr);
  auto x = b.x.index_select(0, idx);  // index_select allocates in the default layout
  if (b.x.dim() == 4 && !b.x.is_contiguous() && b.x.is_contiguous(torch::MemoryFormat::ChannelsLast))
    x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  return Batch{x, b.y.index_select(0, idx)};
}

void ProxyFilter::save(torch::serialize::OutputArchive& ar) const {
  torch::serialize::OutputArchive m, o;
  proxy_->save(m);
  sgd_.save(o);
  ar.write("model", m);
  ar.write("optim", o);
}

void ProxyFilter::load(torch::serialize::InputArchive& ar) {
  torch::serialize::InputArchive m, o;
  ar.read("model", m);
  proxy_->load(m);
  ar.read("optim", o);
  sgd_.load(o);
}

}  // namespace kiln
