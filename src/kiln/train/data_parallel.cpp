#include "kiln/train/data_parallel.h"

#include <vector>

#include "kiln/train/trainer.h"

namespace kiln {

namespace {
std::vector<torch::Tensor> model_tensors(Classifier& m) {
  std::vector<torch::Tensor> t;
  for (auto& p : m.parameters()) t.push_back(p.data());
  for (auto& b : m.buffers()) t.push_back(b);
  return t;
}
}  // namespace

DataParallel::DataParallel(std::shared_ptr<dist::Group> group, const RunSettings& s)
    : group_(group && group->size() > 1 ? group : nullptr),
      sum_loss_(s.optim.sum_loss()),
      sync_bn_(s.dist.sync_bn),
      bucket_bytes_(static_cast<int64_t>(s.dist.bucket_mb * (1 << 20))) {}

std::unique_ptr<DataParallel::SyncBnScope> DataParallel::sync_bn_scope(Classifier& model) const {
  return std::make_unique<SyncBnScope>(model, group_ && sync_bn_ ? group_.get() : nullptr);
}

std::string DataParallel::start(Classifier& model, Classifier* ema, int64_t shard_n, int64_t bs) {
  if (!group_) return "";
  auto t = model_tensors(model);
  group_->broadcast(t, 0);
  if (ema) {
    auto e = model_tensors(*ema);
    group_->broadcast(e, 0);
  }
  return "data parallel: rank " + std::to_string(group_->rank()) + " of " + std::to_string(group_->size()) + " (" +
         group_->backend() + "), " + std::to_string(shard_n) + " examples a rank an epoch, batch " + std::to_string(bs) +
         " a rank (" + std::to_string(bs * group_->size()) + " in all), BN statistics " +
         (sync_bn_ ? "synchronised" : "per rank");
}

void DataParallel::begin_backward(Classifier& model) {
  if (!group_) return;
  if (!reducer_) {  // built on first use and kept across steps
    std::vector<torch::Tensor> params;
    for (auto& p : model.parameters())
      if (p.requires_grad()) params.push_back(p);
    reducer_ = std::make_unique<dist::GradReducer>(*group_, params, !sum_loss_, bucket_bytes_);
  }
  reducer_->begin();
}

void DataParallel::finish_backward() {
  if (group_) reducer_->finish();
}

void DataParallel::reduce_epoch(torch::Tensor& both) const {
  if (!group_) return;
  std::vector<torch::Tensor> v{both};
  group_->all_reduce_sum(v);
  both.slice(0, 2).div_(static_cast<double>(group_->size()));
}

void DataParallel::average_buffers(Classifier& model, Classifier* ema) const {
  if (!group_) return;
  torch::NoGradGuard ng;
  for (Classifier* m : {&model, ema}) {
    if (!m) continue;
    std::vector<torch::Tensor> bufs;
    for (auto& b : m->buffers())
      if (b.is_floating_point()) bufs.push_back(b);
    if (bufs.empty()) continue;
    std::vector<torch::Tensor> flat_views;
    for (auto& b : bufs) flat_views.push_back(b.reshape({-1}).to(torch::kFloat64));
    std::vector<torch::Tensor> v{torch::cat(flat_views)};
    group_->all_reduce_sum(v);
    v[0].div_(static_cast<double>(group_->size()));
    int64_t at = 0;
    for (auto& b : bufs) {
      b.copy_(v[0].slice(0, at, at + b.numel()).view_as(b));
      at += b.numel();
    }
  }
}

void DataParallel::reduce_eval(EvalResult& ev, const torch::Device& dev) const {
  if (!group_) return;
  auto sums = torch::tensor({ev.loss * static_cast<double>(ev.n), ev.acc * static_cast<double>(ev.n), static_cast<double>(ev.n)},
                            torch::TensorOptions().dtype(torch::kFloat64).device(dev));
  std::vector<torch::Tensor> v{sums};
  group_->all_reduce_sum(v);
  auto h = sums.cpu();
  ev.n = static_cast<int64_t>(h[2].item<double>());
  ev.loss = h[0].item<double>() / std::max<int64_t>(ev.n, 1);
  ev.acc = h[1].item<double>() / std::max<int64_t>(ev.n, 1);
  ev.predictions = torch::Tensor();  // a shard's only
}

}  // namespace kiln
