// Post-training int8 weight quantisation (issue #8): per-output-channel, symmetric.
//   scale_c = max_i |w_c,i| / 127   (1 for an all-zero channel)
// or per tensor (the granularity "tensor"): one scale, max |w| / 127 over the whole weight, kept
// as that scale repeated per channel, so every exporter and reader takes it unchanged.
//   q_c,i   = clamp(round(w_c,i / scale_c), -127, 127)   (int8; -128 unused, so the grid is symmetric)
//   w'_c,i  = q_c,i * scale_c
// With fewer bits b (2 to 8) the same grid has qmax = 2^(b-1) - 1 steps each side in place of
// 127 (b = 4: scale = max |w| / 7, q in [-7, 7]), still held in int8 (no packing): the coarser
// grids that show what quantisation-aware training recovers where int8 itself costs nothing.
// Applied to every conv and linear weight (the tensors that hold nearly all the bytes); biases,
// BatchNorm parameters and statistics and fixed buffers (whitening) stay fp32. The error of
// each weight is at most scale_c / 2.
#pragma once
#include <torch/torch.h>

#include <set>
#include <string>

namespace kiln {

struct QuantizedTensor {
  torch::Tensor q;      // int8, the weight's shape
  torch::Tensor scale;  // fp32, one per output channel (dim 0)
  torch::Tensor dequantize() const;
};
// kChannel: a scale per output channel; kTensor: one for the whole weight (a depthwise filter's
// channels then share one grid: the coarser choice that the per-channel one improves on).
enum class Granularity { kChannel, kTensor };
Granularity parse_granularity(const std::string& s, const std::string& what);  // "channel" | "tensor"
const char* granularity_name(Granularity g);

// The grid the weights are rounded to: its granularity and its bits (8 = int8).
struct IntGrid {
  IntGrid(Granularity g = Granularity::kChannel, int b = 8) : granularity(g), bits(b) {}
  Granularity granularity;
  int bits;
  int qmax() const { return (1 << (bits - 1)) - 1; }  // 127 at 8 bits, 7 at 4, 1 at 2
  std::string name() const;                          // "int8 per-channel", "int4 per-tensor", ...
};
// A number of bits from 2 to 8; `what` names the key or flag in the error.
int check_bits(int64_t bits, const std::string& what);
QuantizedTensor quantize_per_channel(const torch::Tensor& w, const IntGrid& grid = {});

// The weights int8 applies to: every trainable conv and linear weight of `model` (fixed
// buffers-as-weights, like a frozen whitening filter, are left out), in module order.
std::vector<torch::Tensor> quantizable_weights(torch::nn::Module& model);
// The same weights by tensor identity (TensorImpl addresses), for exporters that walk all tensors.
std::set<const void*> quantizable_set(torch::nn::Module& model);

struct QuantizeReport {
  int64_t tensors = 0;          // conv / linear weights quantised
  int64_t fp32_bytes = 0;       // the whole model in fp32 (parameters + floating buffers)
  int64_t int8_bytes = 0;       // the same with those weights as int8 + one fp32 scale per channel (any bits: no packing)
  double max_abs_error = 0;     // largest |w - w'| over all quantised weights
};
// Replaces every conv and linear weight of `model` by its round trip through `grid` (dequantised,
// so the model runs unchanged in LibTorch and its accuracy is the quantised model's).
QuantizeReport quantize_weights_inplace(torch::nn::Module& model, const IntGrid& grid = {});

}  // namespace kiln
