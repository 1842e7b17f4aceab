#include "kiln/nn/fused_check.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <optional>

#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/fused_gpu.h"
#include "kiln/nn/fused_launch.h"
#include "kiln/nn/layers.h"

namespace kiln {

FusedBound fused_bound(torch::ScalarType dtype) {
  if (dtype == torch::kFloat32) return {1.19e-7, 2.0, 64};
  return {dtype == torch::kBFloat16 ? 7.8125e-3 : 9.765625e-4, 1.25, 1.0};
}

double fused_sum_noise(torch::ScalarType dtype, int64_t M, double upstream_rms) {
  if (dtype == torch::kFloat32) return 0;
  return 4 * std::sqrt(M / 12.0) * fused_bound(dtype).eps * upstream_rms;
}

double fused_allowed_error(const FusedBound& b, double plain_error, double magnitude, double noise) {
  return std::max({b.ratio * plain_error, b.floor_ulps * b.eps * magnitude, noise});
}

namespace {

struct CheckCase {
  int64_t N, C, H, W;
  bool pool, residual, training;
  torch::ScalarType dtype;
  std::string what() const {
    const char* d = dtype == torch::kFloat32 ? "fp32" : dtype == torch::kFloat16 ? "fp16" : "bf16";
    return std::string(training ? "train " : "eval ") + d + (pool ? " pool" : " no pool") +
           (residual ? " + residual" : "") + " N" + std::to_string(N) + " C" + std::to_string(C) + " " +
           std::to_string(H) + "x" + std::to_string(W);
  }
};

enum class CheckWay { kPlain, kFused };

struct CheckOutputs {
  std::vector<std::pair<const char*, torch::Tensor>> tensors;  // in fp64
};

// The case's inputs, made on the CPU from the seed (the same numbers on every device), in fp64
// after rounding to the case's dtype.
struct CheckInputs {
  torch::Tensor x, up, w, b, rm, rv, res;
};
CheckInputs inputs_of(const CheckCase& c, uint64_t seed) {
  torch::manual_seed(seed);
  const int64_t Ho = c.pool ? c.H / 2 : c.H, Wo = c.pool ? c.W / 2 : c.W;
  auto rounded = [&](const torch::Tensor& t) { return t.to(c.dtype).to(torch::kFloat64); };
  CheckInputs in;
  // conv-output-like: a per-channel offset a few times the spread, so sums taken naively cancel
  in.x = rounded(torch::randn({c.N, c.C, c.H, c.W}) + 3 * torch::randn({1, c.C, 1, 1}));
  in.up = rounded(torch::randn({c.N, c.C, Ho, Wo}));
  in.w = (1 + 0.5 * torch::rand({c.C})).to(torch::kFloat64);
  in.b = (0.5 * torch::randn({c.C})).to(torch::kFloat64);
  in.rm = (3 * torch::randn({c.C})).to(torch::kFloat64);
  in.rv = (0.5 + 2 * torch::rand({c.C})).to(torch::kFloat64);
  if (c.residual) in.res = rounded(torch::gelu(torch::randn({c.N, c.C, Ho, Wo})));
  return in;
}

// The median ms of `iters` calls of `call` after 3 untimed ones, the device synchronised around
// each (on CUDA: a copy to the host waits for the current stream's queue).
double median_ms_of(const torch::Device& device, const std::function<void()>& call, int iters) {
  auto sync = [&] {
    if (device.is_cuda()) (void)torch::zeros({1}, torch::TensorOptions().device(device)).cpu();
  };
  for (int i = 0; i < 3; ++i) call();
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    sync();
    const auto t0 = std::chrono::steady_clock::now();
    call();
    sync();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// One pass of the block, `way`, in `dtype` (fp64: the reference), on `device`; with `iters` > 0,
// that many more timed after 3 warm-ups (median ms).
CheckOutputs run_block(const CheckCase& c, const CheckInputs& in, CheckWay way, torch::ScalarType dtype,
                       const torch::Device& device, int iters, double* median_ms) {
  BatchNorm bn(c.C, BatchNormOptions{0.3, 1e-5});
  {
    torch::NoGradGuard ng;
    bn->weight.copy_(in.w);
    bn->bias.copy_(in.b);
    bn->running_mean.copy_(in.rm);
    bn->running_var.copy_(in.rv);
  }
  bn->to(device, dtype == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
  if (c.training) bn->train(); else bn->eval();
  const auto on = [&](const torch::Tensor& t) {
    return t.to(device, dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  };
  auto x = on(in.x);
  auto res = c.residual ? on(in.res) : torch::Tensor();
  auto up = c.training ? on(in.up) : torch::Tensor();
  if (c.training) {
    x.requires_grad_(true);
    if (res.defined()) res.requires_grad_(true);
  }
  auto once = [&]() {
    torch::Tensor out;
    {
      std::optional<torch::NoGradGuard> ng;
      if (!c.training) ng.emplace();
      out = way == CheckWay::kFused ? fused_gpu(x, *bn, c.pool, res)
                               : pool_bn_act(x, *bn, Activation::GELU, 0.0, c.pool, res);
    }
    if (c.training) out.backward(up);
    return out;
  };
  // the running statistics before the first pass: the pass to compare moves them once
  auto out = once();
  CheckOutputs o;
  auto f64 = [](const torch::Tensor& t) { return t.detach().to(torch::kCPU, torch::kFloat64); };
  o.tensors.push_back({"output", f64(out)});
  if (c.training) {
    o.tensors.push_back({"input gradient", f64(x.grad())});
    o.tensors.push_back({"weight gradient", f64(bn->weight.grad())});
    o.tensors.push_back({"bias gradient", f64(bn->bias.grad())});
    o.tensors.push_back({"running mean", f64(bn->running_mean)});
    o.tensors.push_back({"running variance", f64(bn->running_var)});
    if (res.defined()) o.tensors.push_back({"residual gradient", f64(res.grad())});
  }
  if (iters > 0) *median_ms = median_ms_of(device, [&] { out = once(); }, iters);
  return o;
}

FusedCheck check_case(const CheckCase& c, const torch::Device& device, bool time, uint64_t seed) {
  const auto in = inputs_of(c, seed);
  const bool timed = time && device.is_cuda();
  FusedCheck r;
  r.what = c.what();
  const auto ref = run_block(c, in, CheckWay::kPlain, torch::kFloat64, device, 0, nullptr);
  const auto plain = run_block(c, in, CheckWay::kPlain, c.dtype, device, timed ? 20 : 0, &r.plain_ms);
  const auto fused = run_block(c, in, CheckWay::kFused, c.dtype, device, timed ? 20 : 0, &r.fused_ms);
  const auto bound = fused_bound(c.dtype);
  const int64_t M = c.N * (c.pool ? c.H / 2 : c.H) * (c.pool ? c.W / 2 : c.W);
  const double noise = fused_sum_noise(c.dtype, M, in.up.defined() ? in.up.square().mean().sqrt().item<double>() : 0);
  {
    const fused::Shape s{c.N, c.H, c.W, c.C, c.pool ? c.H / 2 : c.H, c.pool ? c.W / 2 : c.W, c.pool};
    const auto t = fused::traffic(s, fused::chunks_of(s), c.dtype == torch::kFloat32 ? 4 : 2, c.residual, c.training);
    r.fused_bytes = static_cast<double>(t.forward + t.backward);
  }
  r.ok = true;
  double worst_ratio = -1;
  for (size_t i = 0; i < ref.tensors.size(); ++i) {
    const auto& [name, t_ref] = ref.tensors[i];
    const bool summed = std::string(name) == "weight gradient" || std::string(name) == "bias gradient";
    const double e = (fused.tensors[i].second - t_ref).abs().max().item<double>();
    const double ep = (plain.tensors[i].second - t_ref).abs().max().item<double>();
    const double mag = std::max(t_ref.abs().max().item<double>(), 1e-30);
    const double allowed = fused_allowed_error(bound, ep, mag, summed ? noise : 0);
    const bool ok = e <= allowed;  // (a NaN error fails)
    const double ratio = std::isnan(e) ? 1e300 : e / allowed;
    if (!ok) r.ok = false;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      r.worst = name;
      r.error = e;
      r.plain_error = ep;
      r.allowed = allowed;
    }
  }
  return r;
}

}  // namespace

double device_copy_gbps(const torch::Device& device) {
  const int64_t n = int64_t{256} << 20;  // bytes
  auto src = torch::ones({n}, torch::TensorOptions().dtype(torch::kUInt8).device(device));
  auto dst = torch::empty_like(src);
  return 2.0 * static_cast<double>(n) / (median_ms_of(device, [&] { dst.copy_(src); }, 20) * 1e-3) / 1e9;
}

std::vector<FusedCheck> check_fused_gpu(const torch::Device& device, int64_t batch, bool time, uint64_t seed) {
  std::vector<CheckCase> cases;
  const auto f16 = torch::kFloat16;
  // the airbench94 groups' blocks (widths 64, 256, 256 on 32x32): conv -> pool -> BN -> GELU, then
  // conv -> BN -> GELU at the pooled size; cifar10-96's third conv adds the group's residual
  for (bool training : {true, false}) {
    cases.push_back({batch, 64, 32, 32, true, false, training, f16});
    cases.push_back({batch, 64, 16, 16, false, false, training, f16});
    cases.push_back({batch, 256, 16, 16, true, false, training, f16});
    cases.push_back({batch, 256, 8, 8, false, false, training, f16});
    cases.push_back({batch, 256, 8, 8, true, false, training, f16});
    cases.push_back({batch, 256, 4, 4, false, false, training, f16});
    cases.push_back({batch, 256, 8, 8, false, true, training, f16});
  }
  // odd sizes (a row and a column dropped by the pool), every dtype, residuals
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    cases.push_back({5, 24, 7, 9, true, true, true, dtype});
    cases.push_back({4, 40, 7, 5, false, true, true, dtype});
    cases.push_back({5, 24, 7, 9, true, true, false, dtype});
  }
  std::vector<FusedCheck> out;
  for (size_t i = 0; i < cases.size(); ++i) out.push_back(check_case(cases[i], device, time, seed + i));
  return out;
}

}  // namespace kiln
