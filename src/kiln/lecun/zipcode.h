// The 1989 reproduction's data and training loop (LibTorch for the data preparation; the
// training itself runs on the dependency-free Net1989). The autograd twin: reference1989.h.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "kiln/data/dataset.h"
#include "kiln/lecun/trainer1989.h"

namespace kiln::lecun {

// The 1989 set is lost; like the reference reproduction, draw 7,291 training digits from
// MNIST's training set and 2,007 test digits from its test set at random (a CPU generator
// seeded with `seed`), scale pixels to [-1, 1] and downscale 28x28 -> 16x16 bilinearly.
struct ZipcodeData {
  Digits train, test;
  std::string note;  // where the digits came from
};
ZipcodeData make_zipcode_data(const TrainTest& mnist, uint64_t seed = 1337, int n_train = 7291, int n_test = 2007);

struct PassMetrics {
  int pass = 0;
  double train_loss = 0, train_error = 0, test_error = 0;
  int train_misses = 0, test_misses = 0;
  double seconds = 0;  // wall time since the start, evaluations included
};

// Trains from a fresh init (seed) with batch size 1 in the fixed example order, evaluating
// both splits after every pass; `on_pass` sees each pass's metrics. overlap_eval: each pass's
// evaluation runs on a second thread beside the next pass's training (on_pass then sees a
// pass's metrics once the next pass has trained); the metrics are those of evaluating in turn.
// Off where runs already fill the cores (--modern trains seeds in parallel).
std::vector<PassMetrics> train_zipcode(const ZipcodeData& data, const Recipe& r, uint64_t seed,
                                       const std::function<void(const PassMetrics&)>& on_pass = {},
                                       bool overlap_eval = true);

}  // namespace kiln::lecun
