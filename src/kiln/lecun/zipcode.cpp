#include "kiln/lecun/zipcode.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>

#include "kiln/core/error.h"

namespace kiln::lecun {

namespace {
Digits to_digits(const Dataset& ds, const torch::Tensor& idx) {
  namespace F = torch::nn::functional;
  auto x = ds.images.index_select(0, idx).to(torch::kFloat32) / 127.5 - 1.0;
  x = F::interpolate(x, F::InterpolateFuncOptions().size(std::vector<int64_t>{16, 16}).mode(torch::kBilinear).align_corners(false));
  x = x.contiguous();
  Digits d;
  d.x.assign(x.data_ptr<float>(), x.data_ptr<float>() + x.numel());
  auto y = ds.labels.index_select(0, idx);
  for (int64_t i = 0; i < y.size(0); ++i) d.y.push_back(static_cast<int>(y[i].item<int64_t>()));
  return d;
}
}  // namespace

ZipcodeData make_zipcode_data(const TrainTest& mnist, uint64_t seed, int n_train, int n_test) {
  if (mnist.train.images.size(2) != 28 || mnist.train.images.size(1) != 1)
    throw Error("the 1989 reproduction draws its digits from MNIST (1x28x28 images)");
  if (mnist.train.size() < n_train || mnist.test.size() < n_test)
    throw Error("MNIST has " + std::to_string(mnist.train.size()) + "/" + std::to_string(mnist.test.size()) +
                " train/test digits; the 1989 set needs " + std::to_string(n_train) + "/" + std::to_string(n_test));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  ZipcodeData z;
  z.train = to_digits(mnist.train, torch::randperm(mnist.train.size(), gen, torch::kInt64).slice(0, 0, n_train));
  z.test = to_digits(mnist.test, torch::randperm(mnist.test.size(), gen, torch::kInt64).slice(0, 0, n_test));
  z.note = std::to_string(n_train) + " training digits drawn from " + std::to_string(mnist.train.size()) +
           " MNIST training digits and " + std::to_string(n_test) + " test digits from " +
           std::to_string(mnist.test.size()) + " MNIST test digits (seed " + std::to_string(seed) + ")";
  return z;
}

std::vector<PassMetrics> train_zipcode(const ZipcodeData& data, const Recipe& r, uint64_t seed,
                                       const std::function<void(const PassMetrics&)>& on_pass) {
  auto t0 = std::chrono::steady_clock::now();
  Trainer1989 t(r, seed);
  std::vector<PassMetrics> out;
  for (int pass = 0; pass < r.passes; ++pass) {
    double loss_sum = 0;
    for (int i = 0; i < data.train.size(); ++i) loss_sum += t.step(data.train, i, pass);
    PassMetrics m;
    m.pass = pass + 1;
    m.train_loss = loss_sum / data.train.size();
    m.train_error = t.errors(data.train, m.train_misses);
    m.test_error = t.errors(data.test, m.test_misses);
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(m);
    if (on_pass) on_pass(m);
  }
  return out;
}

}  // namespace kiln::lecun
