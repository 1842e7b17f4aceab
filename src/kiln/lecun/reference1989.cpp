#include "kiln/lecun/reference1989.h"

#include <torch/torch.h>

namespace kiln::lecun {

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
