#include "kiln/data/split.h"

#include <ATen/CPUGeneratorImpl.h>

#include "kiln/core/error.h"
#include "kiln/data/loader.h"

namespace kiln {

LabeledSplit split_labeled(const Dataset& ds, int64_t n, uint64_t seed) {
  const int64_t N = ds.size(), C = static_cast<int64_t>(ds.classes.size());
  if (n <= 0 || n > N) throw Error("data.labeled = " + std::to_string(n) + " must be in 1.." + std::to_string(N));
  if (C <= 0) throw Error("data.labeled needs a dataset with classes");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(derive_seed(seed, 777));
  auto labels = ds.labels.to(torch::kInt64).contiguous();
  // Which classes get the extra example when n is not a multiple of C.
  auto class_order = torch::randperm(C, gen, torch::kInt64);
  std::vector<int64_t> share(static_cast<size_t>(C), n / C);
  for (int64_t i = 0; i < n % C; ++i) share[static_cast<size_t>(class_order[i].item<int64_t>())] += 1;
  std::vector<torch::Tensor> picked;
  for (int64_t c = 0; c < C; ++c) {
    auto idx = labels.eq(c).nonzero().flatten();
    const int64_t want = share[static_cast<size_t>(c)];
    if (idx.size(0) < want)
      throw Error("data.labeled = " + std::to_string(n) + ": class '" + ds.classes[static_cast<size_t>(c)] + "' has only " +
                  std::to_string(idx.size(0)) + " examples, fewer than its share of " + std::to_string(want));
    auto perm = torch::randperm(idx.size(0), gen, torch::kInt64);
    picked.push_back(idx.index_select(0, perm.slice(0, 0, want)));
  }
  return split_by_index(ds, torch::cat(picked));
}

LabeledSplit split_by_index(const Dataset& ds, const torch::Tensor& labeled_index) {
  const int64_t N = ds.size();
  auto lab_idx = std::get<0>(labeled_index.to(torch::kInt64).flatten().sort());
  if (lab_idx.numel() == 0 || lab_idx[0].item<int64_t>() < 0 || lab_idx[-1].item<int64_t>() >= N)
    throw Error("labeled split: indices must be in 0.." + std::to_string(N - 1));
  if (lab_idx.numel() > 1 && lab_idx.slice(0, 1).eq(lab_idx.slice(0, 0, -1)).any().item<bool>())
    throw Error("labeled split: an index appears twice");
  auto labels = ds.labels.to(torch::kInt64).contiguous();
  auto mask = torch::ones({N}, torch::kBool);
  mask.index_fill_(0, lab_idx, false);
  auto unl_idx = mask.nonzero().flatten();
  LabeledSplit s;
  s.labeled_index = lab_idx;
  s.unlabeled_index = unl_idx;
  s.labeled = Dataset{ds.images.index_select(0, lab_idx), labels.index_select(0, lab_idx), ds.classes};
  s.hidden_labels = labels.index_select(0, unl_idx);
  s.unlabeled = Dataset{ds.images.index_select(0, unl_idx), torch::full({unl_idx.size(0)}, -1, torch::kInt64), ds.classes};
  return s;
}

}  // namespace kiln
