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

double reference_step(const std::vector<double>& params, const double* xin, int label, bool train, const Variant& v,
                      const Draws& d, std::vector<double>& grads, std::vector<double>* outputs) {
  namespace F = torch::nn::functional;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  auto p = torch::tensor(params, opts).requires_grad_();
  auto slice = [&](int off, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return p.slice(0, off, off + n).view(shape);
  };
  auto H1w = slice(kH1w, {12, 1, 5, 5}), H1b = slice(kH1b, {12, 8, 8}), H2w = slice(kH2w, {12, 8, 5, 5}),
       H2b = slice(kH2b, {12, 4, 4}), H3w = slice(kH3w, {192, 30}), H3b = slice(kH3b, {30}),
       outw = slice(kOutw, {30, 10}), outb = slice(kOutb, {10});
  auto act = [&](const torch::Tensor& t) { return v.relu ? torch::relu(t) : torch::tanh(t); };
  auto x = torch::from_blob(const_cast<double*>(xin), {1, 1, 16, 16}, opts).clone();
  if (train && (d.shift_rows || d.shift_cols)) x = torch::roll(x, {d.shift_rows, d.shift_cols}, {2, 3});
  auto pad = F::PadFuncOptions({2, 2, 2, 2}).mode(torch::kConstant).value(-1.0);
  x = F::pad(x, pad);
  x = act(F::conv2d(x, H1w, F::Conv2dFuncOptions().stride(2)) + H1b);
  x = F::pad(x, pad);
  auto s1 = F::conv2d(x.slice(1, 0, 8), H2w.slice(0, 0, 4), F::Conv2dFuncOptions().stride(2));
  auto s2 = F::conv2d(x.slice(1, 4, 12), H2w.slice(0, 4, 8), F::Conv2dFuncOptions().stride(2));
  auto s3 = F::conv2d(torch::cat({x.slice(1, 0, 4), x.slice(1, 8, 12)}, 1), H2w.slice(0, 8, 12),
                      F::Conv2dFuncOptions().stride(2));
  x = act(torch::cat({s1, s2, s3}, 1) + H2b).flatten(1);
  if (train && v.dropout > 0 && d.keep) {
    auto keep = torch::empty({1, 192}, opts);
    for (int i = 0; i < 192; ++i) keep[0][i] = d.keep[i] ? 1.0 / (1.0 - v.dropout) : 0.0;
    x = x * keep;
  }
  x = act(x.mm(H3w) + H3b);
  auto z = x.mm(outw) + outb;
  torch::Tensor loss;
  if (v.cross_entropy) {
    loss = F::cross_entropy(z, torch::tensor({static_cast<int64_t>(label)}));
  } else {
    z = torch::tanh(z);
    auto target = torch::full({1, 10}, -1.0, opts);
    target[0][label] = 1.0;
    loss = (z - target).pow(2).mean();
  }
  loss.backward();
  auto g = p.grad().contiguous();
  grads.assign(g.data_ptr<double>(), g.data_ptr<double>() + kParams);
  if (outputs) {
    auto zc = z.detach().contiguous();
    outputs->assign(zc.data_ptr<double>(), zc.data_ptr<double>() + 10);
  }
  return loss.item<double>();
}

}  // namespace kiln::lecun
