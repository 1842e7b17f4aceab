#include "kiln/nn/fused_gpu.h"

#include "kiln/nn/fused_autograd.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/fused_launch.h"

#ifdef KILN_HAS_FUSED_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <atomic>
#include <optional>

namespace kiln {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::atomic<FusedGpuOnCpu> g_on_cpu{FusedGpuOnCpu::kOff};  // set_fused_gpu_on_cpu

// The launches that stand in for CUDA's on CPU tensors.
const fused::Launch& cpu_launches() {
  return g_on_cpu == FusedGpuOnCpu::kCudaSource ? fused::cuda_source_on_host() : fused::host_launch();
}

// The launches for x's device, the stream to launch on, and x's device made current (CUDA).
struct GpuBackend {
  explicit GpuBackend(const torch::Tensor& x) {
    if (x.device().is_cpu()) {
      launch = &cpu_launches();
      return;
    }
#ifdef KILN_HAS_FUSED_CUDA
    guard.emplace(x.device());
    launch = &fused::cuda_launch();
    stream = c10::cuda::getCurrentCUDAStream(x.device().index()).stream();
#else
    throw std::logic_error("kiln: the fused GPU operator on " + x.device().str() + " in a build without its kernels");
#endif
  }
  const fused::Launch* launch = nullptr;
  void* stream = nullptr;
#ifdef KILN_HAS_FUSED_CUDA
  std::optional<c10::cuda::CUDAGuard> guard;
#endif
};

fused::Dtype gpu_dtype_of(const torch::Tensor& x) {
  switch (x.scalar_type()) {
    case torch::kFloat32: return fused::Dtype::kFloat32;
    case torch::kFloat16: return fused::Dtype::kFloat16;
    case torch::kBFloat16: return fused::Dtype::kBFloat16;
    default: throw std::logic_error("kiln: the fused GPU operator on " + std::string(c10::toString(x.scalar_type())));
  }
}

fused::Shape gpu_shape_of(const torch::Tensor& x, bool pool) {
  fused::Shape s{x.size(0), x.size(2), x.size(3), x.size(1), x.size(2), x.size(3), pool};
  if (pool) s.Ho = s.H / 2, s.Wo = s.W / 2;
  return s;
}

torch::Tensor gpu_like_channels_last(const torch::Tensor& x, int64_t H, int64_t W) {
  return torch::empty({x.size(0), x.size(1), H, W}, x.options().memory_format(torch::MemoryFormat::ChannelsLast));
}
torch::Tensor gpu_floats(const torch::Tensor& x, std::initializer_list<int64_t> sizes) {
  return torch::empty(sizes, x.options().dtype(torch::kFloat32).memory_format(torch::MemoryFormat::Contiguous));
}
const void* ptr_or_null(const torch::Tensor& t) { return t.defined() ? t.data_ptr() : nullptr; }
float* f32(const torch::Tensor& t) { return t.data_ptr<float>(); }

// The operator's two directions (kiln/nn/fused_autograd.h).
struct FusedGpuImpl {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& residual,
                               const torch::Tensor& weight, const torch::Tensor& bias,
                               const torch::Tensor& running_mean, const torch::Tensor& running_var, bool pool,
                               double momentum, double eps) {
    GpuBackend be(x);
    const auto s = gpu_shape_of(x, pool);
    const auto ch = fused::chunks_of(s);
    const auto d = gpu_dtype_of(x);
    auto y = pool ? gpu_like_channels_last(x, s.Ho, s.Wo) : x;
    auto z = gpu_like_channels_last(x, s.Ho, s.Wo);
    auto part = gpu_floats(x, {2, ch.chunks * s.C});
    auto stats = gpu_floats(x, {4, s.C});  // mean, rstd, scale, shift
    float *p1 = f32(part), *p2 = p1 + ch.chunks * s.C;
    float *mean = f32(stats), *rstd = mean + s.C, *scale = rstd + s.C, *shift = scale + s.C;
    be.launch->stats(d, s, ch, x.data_ptr(), y.data_ptr(), p1, p2, be.stream);
    be.launch->finish_stats(d, s, ch, x.data_ptr(), p1, p2, f32(weight), f32(bias), f32(running_mean),
                            f32(running_var), mean, rstd, scale, shift, momentum, eps, be.stream);
    be.launch->bn_gelu(d, s, ch, y.data_ptr(), ptr_or_null(residual), z.data_ptr(), scale, shift, be.stream);
    ctx->save_for_backward({x, y, stats, residual});
    ctx->saved_data["pool"] = pool;
    return z;
  }

  static FusedGrads backward(AutogradContext* ctx, const variable_list& grads, bool weight_needs_grad) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &y = saved[1], &stats = saved[2], &residual = saved[3];
    const bool pool = ctx->saved_data["pool"].toBool();
    GpuBackend be(x);
    const auto s = gpu_shape_of(x, pool);
    const auto ch = fused::chunks_of(s);
    const auto d = gpu_dtype_of(x);
    auto dz = grads[0].to(y.scalar_type()).contiguous(torch::MemoryFormat::ChannelsLast);
    auto g = gpu_like_channels_last(x, s.Ho, s.Wo);
    // an odd last row or column lies outside every window: its gradient is 0
    const bool odd = pool && (s.H % 2 != 0 || s.W % 2 != 0);
    auto dx = odd ? torch::zeros_like(x, x.options().memory_format(torch::MemoryFormat::ChannelsLast))
                  : gpu_like_channels_last(x, s.H, s.W);
    auto part = gpu_floats(x, {2, ch.chunks * s.C});
    auto bd = gpu_floats(x, {2, s.C});  // B, D
    auto dweight = gpu_floats(x, {s.C}), dbias = gpu_floats(x, {s.C});
    float *p1 = f32(part), *p2 = p1 + ch.chunks * s.C, *B = f32(bd), *D = B + s.C;
    const float* st = stats.data_ptr<float>();
    const float *mean = st, *rstd = st + s.C, *scale = st + 2 * s.C, *shift = st + 3 * s.C;
    be.launch->grad_sums(d, s, ch, dz.data_ptr(), y.data_ptr(), ptr_or_null(residual), g.data_ptr(), scale, shift,
                         mean, p1, p2, be.stream);
    be.launch->finish_grads(s, ch, p1, p2, scale, rstd, B, D, f32(dweight), f32(dbias), be.stream);
    // A = scale: dy = A g + B (y - mean) + D
    be.launch->input_grad(d, s, ch, x.data_ptr(), y.data_ptr(), g.data_ptr(), dx.data_ptr(), scale, B, D, mean,
                          be.stream);
    // the residual's gradient is GELU's, g (the plain path's add passes it on as it is)
    return {dx, residual.defined() ? g : torch::Tensor(), weight_needs_grad ? dweight : torch::Tensor(), dbias};
  }
};

// Evaluation (BN with its running statistics; nothing to differentiate): the coefficients on the
// device, then one pass.
torch::Tensor fused_eval(const torch::Tensor& x, const BatchNormImpl& bn, bool pool, const torch::Tensor& residual) {
  GpuBackend be(x);
  const auto s = gpu_shape_of(x, pool);
  auto z = gpu_like_channels_last(x, s.Ho, s.Wo);
  auto coeffs = gpu_floats(x, {2, s.C});
  float *scale = f32(coeffs), *shift = scale + s.C;
  be.launch->eval_coeffs(s.C, f32(bn.weight), f32(bn.bias), f32(bn.running_mean), f32(bn.running_var),
                         bn.options.eps, scale, shift, be.stream);
  be.launch->pool_bn_gelu(gpu_dtype_of(x), s, fused::chunks_of(s), x.data_ptr(), ptr_or_null(residual), z.data_ptr(),
                          scale, shift, be.stream);
  return z;
}

}  // namespace

bool fused_gpu_applies(const torch::Tensor& x, const BatchNormImpl& bn, Activation act, bool pool,
                       const torch::Tensor& residual) {
  if (!bn.fused_cuda || !x.defined()) return false;
  const auto t = x.scalar_type();
  if (t != torch::kFloat32 && t != torch::kFloat16 && t != torch::kBFloat16) return false;
  if (x.device().is_cpu()) return g_on_cpu != FusedGpuOnCpu::kOff && fusable_block(x, bn, act, pool, residual);
#ifdef KILN_HAS_FUSED_CUDA
  if (!x.device().is_cuda()) return false;
  const auto* prop = at::cuda::getDeviceProperties(x.device().index());
  if (prop->major * 10 + prop->minor < 75) return false;  // no code for it in the build
  return fusable_block(x, bn, act, pool, residual);
#else
  (void)act, (void)pool, (void)residual;
  return false;
#endif
}

void set_fused_gpu_on_cpu(FusedGpuOnCpu how) { g_on_cpu = how; }
FusedGpuOnCpu fused_gpu_on_cpu() { return g_on_cpu; }

torch::Tensor fused_gpu(const torch::Tensor& x, BatchNormImpl& bn, bool pool, const torch::Tensor& residual) {
  if (!bn.is_training()) return fused_eval(x, bn, pool, residual);
  return apply_fused_block<FusedGpuImpl>(x, bn, pool, residual);
}

const char* fused_gpu_backend(const torch::Device& device) {
  if (device.is_cpu()) return cpu_launches().name;
#ifdef KILN_HAS_FUSED_CUDA
  if (device.is_cuda()) return fused::cuda_launch().name;
#endif
  return "none";
}

void set_fused_cuda(torch::nn::Module& model, bool on) {
  for (auto& m : model.modules(/*include_self=*/true))
    if (auto* bn = m->as<BatchNormImpl>()) bn->fused_cuda = on;
}

}  // namespace kiln
