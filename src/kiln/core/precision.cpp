#include "kiln/core/precision.h"

#include <ATen/autocast_mode.h>

#include <sstream>

#include "kiln/core/device.h"
#include "kiln/core/error.h"

namespace kiln {

namespace {
const char* short_name(torch::ScalarType t) {
  switch (t) {
    case torch::kBFloat16: return "bf16";
    case torch::kFloat16: return "fp16";
    default: return "fp32";
  }
}

bool has_flag(const std::string& flags_line, const std::string& flag) {
  std::istringstream in(flags_line);
  std::string w;
  while (in >> w)
    if (w == flag) return true;
  return false;
}
}  // namespace

std::string Precision::describe() const {
  std::string s = short_name(compute);
  if (master_weights()) s += " compute, " + std::string(short_name(weights)) + " master weights";
  else if (compute != torch::kFloat32) s += " weights and compute (BN fp32)";
  if (!reason.empty()) s += " (" + reason + ")";
  return s;
}

std::string native_bf16(const std::string& cpuinfo) {
  const auto flags = cpuinfo_field("flags", cpuinfo);  // the first processor's flags speak for all
  if (has_flag(flags, "amx_bf16")) return "AMX";
  if (has_flag(flags, "avx512_bf16")) return "AVX512-BF16";
  return "";
}

Precision resolve_precision(const std::string& name, bool master_weights, const torch::Device& device) {
  Precision p;
  std::string chosen = name;
  if (name == "auto") {
    if (device.is_cuda()) {
      chosen = "fp16";
      p.reason = "auto: fp16 on CUDA";
    } else {
      const auto feature = native_bf16();
      chosen = feature.empty() ? "fp32" : "bf16";
      p.reason = feature.empty() ? "auto: this CPU has no native bf16 (neither AMX nor AVX512-BF16)"
                                 : "auto: the CPU has " + feature;
    }
  } else if (name != "fp32" && name != "bf16" && name != "fp16") {
    throw Error("train.precision = '" + name + "' (auto | fp32 | bf16 | fp16)");
  }
  if (chosen == "bf16") {
    p.compute = torch::kBFloat16;
    p.weights = master_weights ? torch::kFloat32 : torch::kBFloat16;
  } else if (chosen == "fp16") {
    p.compute = p.weights = torch::kFloat16;
  }
  return p;
}

ComputeGuard::ComputeGuard(const torch::nn::Module& model, const torch::Tensor& x) {
  if (!x.defined() || !x.is_floating_point()) return;
  torch::ScalarType weights = x.scalar_type();
  for (const auto& p : model.parameters())
    if (p.dim() >= 2) {  // a convolution's or a linear layer's weight (BN's stay fp32 in every precision)
      weights = p.scalar_type();
      break;
    }
  if (c10::elementSize(x.scalar_type()) >= c10::elementSize(weights)) return;
  active_ = true;
  type_ = x.device().type();
  was_enabled_ = at::autocast::is_autocast_enabled(type_);
  was_dtype_ = at::autocast::get_autocast_dtype(type_);
  was_cache_ = at::autocast::is_autocast_cache_enabled();
  at::autocast::set_autocast_enabled(type_, true);
  at::autocast::set_autocast_dtype(type_, x.scalar_type());
  at::autocast::set_autocast_cache_enabled(false);
}

ComputeGuard::~ComputeGuard() {
  if (!active_) return;
  at::autocast::set_autocast_enabled(type_, was_enabled_);
  at::autocast::set_autocast_dtype(type_, was_dtype_);
  at::autocast::set_autocast_cache_enabled(was_cache_);
}

}  // namespace kiln
