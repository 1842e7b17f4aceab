#include "kiln/deploy/quantize.h"

#include "kiln/core/error.h"
#include "kiln/nn/tiny.h"

namespace kiln {

torch::Tensor QuantizedTensor::dequantize() const {
  std::vector<int64_t> shape(static_cast<size_t>(q.dim()), 1);
  shape[0] = -1;
  return q.to(torch::kFloat32) * scale.view(shape);
}

Granularity parse_granularity(const std::string& s, const std::string& what) {
  if (s == "channel") return Granularity::kChannel;
  if (s == "tensor") return Granularity::kTensor;
  throw Error(what + " = '" + s + "': one of channel | tensor");
}

const char* granularity_name(Granularity g) { return g == Granularity::kTensor ? "tensor" : "channel"; }

std::string IntGrid::name() const {
  return "int" + std::to_string(bits) + " per-" + granularity_name(granularity);
}

int check_bits(int64_t bits, const std::string& what) {
  if (bits < 2 || bits > 8) throw Error(what + " = " + std::to_string(bits) + ": the bits of the weights' grid, 2 to 8");
  return static_cast<int>(bits);
}

QuantizedTensor quantize_per_channel(const torch::Tensor& w, const IntGrid& grid) {
  if (w.dim() < 1 || w.size(0) == 0) throw Error("int8 quantisation needs a weight with output channels");
  check_bits(grid.bits, "quantisation bits");
  const double qmax = grid.qmax();
  auto f = w.detach().to(torch::kFloat32);
  auto absmax = std::get<0>(f.abs().reshape({f.size(0), -1}).max(1));
  if (grid.granularity == Granularity::kTensor) absmax = absmax.max().expand({f.size(0)}).contiguous();
  auto scale = torch::where(absmax > 0, absmax / qmax, torch::ones_like(absmax));
  std::vector<int64_t> shape(static_cast<size_t>(f.dim()), 1);
  shape[0] = -1;
  QuantizedTensor r;
  r.scale = scale;
  r.q = torch::round(f / scale.view(shape)).clamp(-qmax, qmax).to(torch::kInt8);
  return r;
}

std::vector<torch::Tensor> quantizable_weights(torch::nn::Module& model) {
  std::vector<torch::Tensor> out;
  for (auto& m : model.modules(/*include_self=*/false)) {
    torch::Tensor w;
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) w = c->weight;
    else if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(m.get())) w = l->weight;
    if (w.defined() && w.requires_grad()) out.push_back(w);
  }
  return out;
}

std::set<const void*> quantizable_set(torch::nn::Module& model) {
  std::set<const void*> out;
  for (auto& w : quantizable_weights(model)) out.insert(w.unsafeGetTensorImpl());
  return out;
}

QuantizeReport quantize_weights_inplace(torch::nn::Module& model, const IntGrid& grid) {
  torch::NoGradGuard ng;
  QuantizeReport r;
  r.fp32_bytes = weight_bytes(model);
  int64_t saved = 0;
  for (auto& w : quantizable_weights(model)) {
    auto qt = quantize_per_channel(w, grid);
    auto back = qt.dequantize().to(w.device(), w.scalar_type());
    r.max_abs_error = std::max(r.max_abs_error, (back.to(torch::kFloat32) - w.to(torch::kFloat32)).abs().max().item<double>());
    w.copy_(back);
    ++r.tensors;
    saved += w.numel() * 3 - w.size(0) * 4;  // 4 bytes -> 1 byte each, plus a 4-byte scale per channel
  }
  r.int8_bytes = r.fp32_bytes - saved;
  return r;
}

}  // namespace kiln
