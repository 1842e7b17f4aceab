// Labeled / unlabeled splits for semi-supervised work (self-training, issue #7).
#pragma once
#include <torch/torch.h>

#include "kiln/data/dataset.h"

namespace kiln {

struct LabeledSplit {
  Dataset labeled;      // n examples, as balanced over the classes as n allows
  Dataset unlabeled;    // the rest; its labels are all -1, so nothing in training can read them
  torch::Tensor hidden_labels;  // the unlabeled examples' true labels, for measuring pseudo-labels only
  torch::Tensor labeled_index, unlabeled_index;  // positions in the source dataset (int64, ascending)
};

// A seeded, class-balanced split: floor(n / C) examples of every class (one more for the first
// n mod C classes, in a seeded order), drawn at random within each class; the rest unlabeled.
// Throws when a class has too few examples for its share.
LabeledSplit split_labeled(const Dataset& ds, int64_t n, uint64_t seed);
// The split with these examples labeled (any order; each once) and the rest unlabeled. Choosing
// a balanced split has to read every label; given the indices, nothing else does.
LabeledSplit split_by_index(const Dataset& ds, const torch::Tensor& labeled_index);

}  // namespace kiln
