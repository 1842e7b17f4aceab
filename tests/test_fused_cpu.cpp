// The fused CPU operator (kiln/nn/fused_cpu.h) and the fused GPU operator (kiln/nn/fused_gpu.h, its
// CUDA launches emulated on the host) against LibTorch's max_pool2d -> batch_norm -> (add) -> gelu:
// in training, outputs, every gradient and the running statistics; in evaluation, outputs with the
// running statistics; in fp32 and bf16 (and fp16 for the GPU's), with the pool and without, with a
// residual and without, even and odd sizes, ties in the pooling windows; and where they must not apply.
#include <functional>

#include "helpers.h"
#include "kiln/core/host_grid.h"
#include "kiln/nn/fused_check.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/fused_gpu.h"
#include "kiln/core/config.h"
#include "kiln/nn/fused_launch.h"
#include "kiln/nn/layers.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

using namespace kiln;

namespace {

// Which operator computes the block: LibTorch's, the fused CPU one, or the fused GPU one through the
// host's emulation of its CUDA launches.
enum class Path { kPlain, kCpu, kGpuEmulated };

// The block by `path`, checking first that the fused operators apply where `expect_fused` says.
torch::Tensor block(const torch::Tensor& x, BatchNormImpl& bn, bool pool, const torch::Tensor& res, Path path,
                    bool expect_fused) {
  EXPECT_EQ(fused_cpu_applies(x, bn, Activation::GELU, pool, res), expect_fused && path == Path::kCpu);
  if (path != Path::kGpuEmulated) return pool_bn_act(x, bn, Activation::GELU, 0.0, pool, res);
  EXPECT_EQ(fusable_block(x, bn, Activation::GELU, pool, res), expect_fused);
  return fused_gpu(x, bn, pool, res);
}

struct Result {
  torch::Tensor out, dx, dweight, dbias, running_mean, running_var, dresidual;
};

// act(bn(pool(x)) [+ residual]) forward and backward (upstream gradient `up`) through pool_bn_act,
// by `path`, on a fresh BatchNorm whose trainable weight and bias are `w`, `b`.
Result run(const torch::Tensor& x_in, const torch::Tensor& up, const torch::Tensor& w, const torch::Tensor& b,
           bool pool, Path path, torch::ScalarType dtype, bool expect_fused, const torch::Tensor& res_in = {}) {
  BatchNorm bn(x_in.size(1), BatchNormOptions{0.3, 1e-5});
  {
    torch::NoGradGuard ng;
    bn->weight.copy_(w);
    bn->bias.copy_(b);
    bn->running_mean.fill_(0.5);
    bn->running_var.fill_(2.0);
  }
  if (dtype == torch::kFloat64) bn->to(torch::kFloat64);  // the reference: everything in fp64
  bn->fused_cpu = path == Path::kCpu;
  bn->train();
  auto x = x_in.to(dtype).contiguous(torch::MemoryFormat::ChannelsLast).detach().requires_grad_(true);
  torch::Tensor res;
  if (res_in.defined()) res = res_in.to(dtype).contiguous(torch::MemoryFormat::ChannelsLast).detach().requires_grad_(true);
  auto out = block(x, *bn, pool, res, path, expect_fused);
  out.backward(up.to(dtype));
  return {out.detach().to(torch::kFloat64),
          x.grad().to(torch::kFloat64),
          bn->weight.grad().to(torch::kFloat64),
          bn->bias.grad().to(torch::kFloat64),
          bn->running_mean.to(torch::kFloat64),
          bn->running_var.to(torch::kFloat64),
          res.defined() ? res.grad().to(torch::kFloat64) : torch::Tensor()};
}

double max_error(const torch::Tensor& a, const torch::Tensor& ref) { return (a - ref).abs().max().item<double>(); }
double max_abs(const torch::Tensor& t) { return t.abs().max().item<double>(); }

// Every tensor of `fast` and of `plain` against the fp64 reference `ref` (LibTorch's operators in
// fp64 on the same rounded input): the fused operator must be no further from it than
// `ratio` x LibTorch's own operators in the same dtype, or than `floor_eps` x the dtype's epsilon
// x the tensor's magnitude, whichever is larger. A wrong formula or a misrouted gradient is off
// by the magnitude itself.
// The weight's and bias's gradients are sums over the batch of GELU's gradient g, which both paths
// round to the dtype before summing, each from its own t (LibTorch's rounded, the fused one's not):
// their errors are random walks of those roundings, and one can be twice the other by chance (seed
// 31 of bf16's 8x8 pool case: 0.028 against 0.014, the bound there 0.019). For them the
// bound also admits `sum_noise`: 4 standard deviations of a sum of M roundings of half an ulp each
// at the upstream gradient's rms, 4 sqrt(M / 12) eps rms(up) (0 where nothing is rounded).
void expect_as_accurate(const Result& fast, const Result& plain, const Result& ref, double eps, double ratio,
                        double floor_eps, const std::string& what, double sum_noise = 0) {
  auto check = [&](const torch::Tensor& f, const torch::Tensor& p, const torch::Tensor& r, const char* name,
                   double noise = 0) {
    const double e_fast = max_error(f, r), e_plain = max_error(p, r), scale = std::max(max_abs(r), 1e-30);
    EXPECT_LE(e_fast, fused_allowed_error({eps, ratio, floor_eps}, e_plain, scale, noise))
        << what << ": " << name << " fused off by " << e_fast << ", LibTorch's operators by " << e_plain
        << " (magnitude " << scale << ")";
  };
  check(fast.out, plain.out, ref.out, "output");
  check(fast.dx, plain.dx, ref.dx, "input gradient");
  check(fast.dweight, plain.dweight, ref.dweight, "weight gradient", sum_noise);
  check(fast.dbias, plain.dbias, ref.dbias, "bias gradient", sum_noise);
  check(fast.running_mean, plain.running_mean, ref.running_mean, "running mean");
  check(fast.running_var, plain.running_var, ref.running_var, "running variance");
  if (ref.dresidual.defined()) check(fast.dresidual, plain.dresidual, ref.dresidual, "residual gradient");
}

const char* dtype_name(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? "bf16" : dtype == torch::kFloat16 ? "fp16" : "fp32";
}

// The bounds of both fused operators against LibTorch's in the same dtype: kiln/nn/fused_check.h
// (fused_bound, fused_sum_noise, fused_allowed_error), which `kiln fused-check` applies on a GPU.
void compare_paths(int64_t N, int64_t C, int64_t H, int64_t W, bool pool, torch::ScalarType dtype, uint64_t seed,
                   bool residual = false, Path path = Path::kCpu) {
  torch::manual_seed(seed);
  // Conv-output-like: a per-channel offset a few times the spread, so the statistics' sums would
  // cancel if summed naively.
  auto x = (torch::randn({N, C, H, W}) + 3 * torch::randn({1, C, 1, 1})).to(dtype).to(torch::kFloat64);
  const int64_t Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W;
  auto up = torch::randn({N, C, Ho, Wo}).to(dtype).to(torch::kFloat64);
  auto w = 1 + 0.5 * torch::rand({C}), b = 0.5 * torch::randn({C});
  // An earlier GELU's output: mostly positive, of the normalised values' size.
  torch::Tensor res;
  if (residual) res = torch::gelu(torch::randn({N, C, Ho, Wo})).to(dtype).to(torch::kFloat64);
  const std::string what = std::string(path == Path::kGpuEmulated ? "GPU (emulated) " : "CPU ") + dtype_name(dtype) +
                           (pool ? " pool" : " no pool") + (residual ? " residual" : "") +
                           " N" + std::to_string(N) + " C" + std::to_string(C) + " " + std::to_string(H) + "x" +
                           std::to_string(W);
  auto ref = run(x, up, w, b, pool, Path::kPlain, torch::kFloat64, false, res);
  auto plain = run(x, up, w, b, pool, Path::kPlain, dtype, false, res);
  const FusedBound bd = fused_bound(dtype);
  const double noise = fused_sum_noise(dtype, N * Ho * Wo, up.square().mean().sqrt().item<double>());
  if (path == Path::kGpuEmulated) {  // one thread: the emulation runs the work items in turn
    expect_as_accurate(run(x, up, w, b, pool, path, dtype, true, res), plain, ref, bd.eps, bd.ratio, bd.floor_ulps, what,
                       noise);
    return;
  }
  // On one thread and on three (rows split unevenly, each thread's sums in its own slot).
  const int before = at::get_num_threads();
  for (int threads : {1, 3}) {
    at::set_num_threads(threads);
    auto fast = run(x, up, w, b, pool, path, dtype, true, res);
    expect_as_accurate(fast, plain, ref, bd.eps, bd.ratio, bd.floor_ulps, what + ", " + std::to_string(threads) + " thread(s)",
                       noise);
  }
  at::set_num_threads(before);
}

// Evaluation: act(bn(pool(x)) [+ residual]) with BN's running statistics `rm`, `rv`, under no grad,
// fused or not; the output in fp64, and the statistics must come back untouched.
torch::Tensor run_eval(const torch::Tensor& x_in, const torch::Tensor& w, const torch::Tensor& b, const torch::Tensor& rm,
                       const torch::Tensor& rv, bool pool, Path path, torch::ScalarType dtype, bool expect_fused,
                       const torch::Tensor& res_in) {
  BatchNorm bn(x_in.size(1), BatchNormOptions{0.3, 1e-5});
  {
    torch::NoGradGuard ng;
    bn->weight.copy_(w);
    bn->bias.copy_(b);
    bn->running_mean.copy_(rm);
    bn->running_var.copy_(rv);
  }
  if (dtype == torch::kFloat64) bn->to(torch::kFloat64);
  bn->fused_cpu = path == Path::kCpu;
  bn->eval();
  torch::NoGradGuard ng;
  auto x = x_in.to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  torch::Tensor res;
  if (res_in.defined()) res = res_in.to(dtype).contiguous(torch::MemoryFormat::ChannelsLast);
  auto out = block(x, *bn, pool, res, path, expect_fused);
  EXPECT_EQ(out.scalar_type(), dtype);
  EXPECT_TRUE(out.is_contiguous(torch::MemoryFormat::ChannelsLast) || dtype == torch::kFloat64);
  EXPECT_TRUE(torch::equal(bn->running_mean.to(torch::kFloat32), rm.to(torch::kFloat32)) &&
              torch::equal(bn->running_var.to(torch::kFloat32), rv.to(torch::kFloat32)))
      << "evaluation moved the running statistics";
  return out.to(torch::kFloat64);
}

// The evaluation path against LibTorch's operators and their fp64 reference, as compare_paths does
// for training: fp32 within 64 ulps of the magnitude or 2x LibTorch's error, bf16 within 1.25x
// LibTorch's own bf16 error (or half an ulp of the magnitude).
void compare_eval(int64_t N, int64_t C, int64_t H, int64_t W, bool pool, torch::ScalarType dtype, uint64_t seed,
                  bool residual, Path path = Path::kCpu) {
  torch::manual_seed(seed);
  auto x = (torch::randn({N, C, H, W}) + 3 * torch::randn({1, C, 1, 1})).to(dtype).to(torch::kFloat64);
  const int64_t Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W;
  auto w = 1 + 0.5 * torch::rand({C}), b = 0.5 * torch::randn({C});
  // Running statistics near the batch's but not equal to them: a wrong pick (the batch's) shows.
  auto rm = 3 * torch::randn({C}), rv = 0.5 + 2 * torch::rand({C});
  torch::Tensor res;
  if (residual) res = torch::gelu(torch::randn({N, C, Ho, Wo})).to(dtype).to(torch::kFloat64);
  const std::string what = std::string(path == Path::kGpuEmulated ? "GPU (emulated) eval " : "CPU eval ") + dtype_name(dtype) +
                           (pool ? " pool" : " no pool") + (residual ? " residual" : "") + " N" + std::to_string(N) +
                           " C" + std::to_string(C) + " " + std::to_string(H) + "x" + std::to_string(W);
  const auto ref = run_eval(x, w, b, rm, rv, pool, Path::kPlain, torch::kFloat64, false, res);
  const auto plain = run_eval(x, w, b, rm, rv, pool, Path::kPlain, dtype, false, res);
  const FusedBound bd = fused_bound(dtype);
  const int before = at::get_num_threads();
  for (int threads : {1, 3}) {
    if (path == Path::kGpuEmulated && threads > 1) break;  // the emulation: one thread
    at::set_num_threads(threads);
    const auto fast = run_eval(x, w, b, rm, rv, pool, path, dtype, true, res);
    const double e_fast = max_error(fast, ref), e_plain = max_error(plain, ref), scale = max_abs(ref);
    EXPECT_LE(e_fast, fused_allowed_error(bd, e_plain, scale))
        << what << ", " << threads << " thread(s): fused off by " << e_fast << ", LibTorch's operators by " << e_plain
        << " (magnitude " << scale << ")";
  }
  at::set_num_threads(before);
}

// The tiny cifar10-94 (2 convs a group) and its 3-conv variant (cifar10-96's groups: the residual
// block) on the synthetic set, 2 epochs in fp32, with `fuse(config, true)` against `fuse(config,
// false)`: the same losses and accuracies up to the eager path's own rounding noise (LibTorch's
// operators on one thread instead of two).
void expect_training_tracks_unfused(const std::function<void(Config&, bool)>& fuse, const std::string& what) {
  for (const char* convs : {"2", "3"}) {
    SCOPED_TRACE(std::string("model.convs_per_group = ") + convs);
    auto tt = test::synthetic(512, 200);
    auto run_with = [&](bool fused, int threads) {
      Config c = test::tiny_airbench();
      c.set("model.convs_per_group", convs);
      c.set("schedule.epochs", "2");
      fuse(c, fused);
      const int before = at::get_num_threads();
      at::set_num_threads(threads);
      test::TempDir dir;
      train(c, tt, test::quiet_options(dir.path.string()));
      at::set_num_threads(before);
      return test::without_times(test::read_metrics(dir.path.string()));
    };
    auto unfused = run_with(false, 2), fused = run_with(true, 2), noise = run_with(false, 1);
    test::expect_close_runs(unfused, fused, noise, what);
  }
}

// While alive, the GPU's operator takes CPU tensors, its launches run by the host's emulation or
// by the CUDA kernels' own source compiled for the host (set_fused_gpu_on_cpu).
// Nested, the inner one's end gives back the outer one's choice.
struct EmulatedGpu {
  explicit EmulatedGpu(FusedGpuOnCpu how = FusedGpuOnCpu::kItems) : before(fused_gpu_on_cpu()) {
    set_fused_gpu_on_cpu(how);
  }
  ~EmulatedGpu() { set_fused_gpu_on_cpu(before); }
  FusedGpuOnCpu before;
};

}  // namespace

TEST(FusedCpu, EvaluationMatchesLibTorch) {
  // BN with the running statistics, in one pass (the pooled tensor never stored), with and without
  // the pool and the residual, odd sizes (the last row and column dropped), one value per channel.
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    compare_eval(6, 8, 8, 8, true, dtype, 21, false);
    compare_eval(5, 24, 7, 9, true, dtype, 22, false);
    compare_eval(4, 40, 7, 5, false, dtype, 23, false);
    compare_eval(6, 8, 8, 8, false, dtype, 24, true);
    compare_eval(5, 24, 7, 9, true, dtype, 25, true);
    compare_eval(1, 16, 2, 2, true, dtype, 26, false);  // one value per channel: fine in evaluation
  }
}

TEST(FusedCpu, PoolBatchNormGeluMatchesLibTorchInFp32) {
  compare_paths(6, 8, 8, 8, true, torch::kFloat32, 1);
  compare_paths(5, 24, 7, 9, true, torch::kFloat32, 2);  // odd sizes: the last row and column dropped
  compare_paths(3, 64, 15, 15, true, torch::kFloat32, 3);
}

TEST(FusedCpu, BatchNormGeluMatchesLibTorchInFp32) {
  compare_paths(6, 8, 8, 8, false, torch::kFloat32, 4);
  compare_paths(4, 40, 7, 5, false, torch::kFloat32, 5);
}

TEST(FusedCpu, BatchNormAddGeluMatchesLibTorch) {
  // The 3-conv group's last block: act(bn(conv(x)) + x0); also with the pool (not used, but allowed).
  compare_paths(6, 8, 8, 8, false, torch::kFloat32, 10, true);
  compare_paths(4, 40, 7, 5, false, torch::kFloat32, 11, true);
  compare_paths(5, 24, 7, 9, true, torch::kFloat32, 12, true);
  compare_paths(8, 32, 8, 8, false, torch::kBFloat16, 13, true);
  compare_paths(5, 24, 7, 9, true, torch::kBFloat16, 14, true);
}

TEST(FusedCpu, MatchesLibTorchInBf16) {
  compare_paths(8, 32, 16, 16, true, torch::kBFloat16, 6);
  compare_paths(5, 24, 7, 9, true, torch::kBFloat16, 7);
  compare_paths(8, 32, 8, 8, false, torch::kBFloat16, 8);
}

TEST(FusedCpu, TiesInAWindowRouteTheGradientAsMaxPoolDoes) {
  // Integers from a small range: most windows hold ties, and the gradient must go to the one
  // element max_pool2d picks (its indices: the first maximum in row-major order), every other
  // element exactly 0. (The values there are held by the accuracy tests above.)
  // Both fused operators (the GPU's through its emulation, also in fp16).
  torch::manual_seed(9);
  for (auto [path, dtype] : std::vector<std::pair<Path, torch::ScalarType>>{{Path::kCpu, torch::kFloat32},
                                                                            {Path::kCpu, torch::kBFloat16},
                                                                            {Path::kGpuEmulated, torch::kFloat32},
                                                                            {Path::kGpuEmulated, torch::kFloat16},
                                                                            {Path::kGpuEmulated, torch::kBFloat16}}) {
    auto x = torch::randint(0, 3, {4, 16, 6, 7}).to(torch::kFloat64);  // odd width: the last column gets 0
    auto up = torch::randn({4, 16, 3, 3}).to(dtype).to(torch::kFloat64);
    auto w = torch::ones({16}), b = torch::zeros({16});
    auto fast = run(x, up, w, b, true, path, dtype, true);
    auto indices = std::get<1>(torch::max_pool2d_with_indices(x.to(dtype), 2));
    auto chosen = torch::zeros({4, 16, 6 * 7}, torch::kFloat64).scatter_(2, indices.flatten(2), 1.0).view({4, 16, 6, 7});
    EXPECT_EQ((fast.dx * (1 - chosen)).abs().max().item<double>(), 0.0) << c10::toString(dtype) << ": gradient off the chosen element";
    EXPECT_GT((fast.dx * chosen != 0).sum().item<int64_t>(), indices.numel() * 9 / 10) << c10::toString(dtype);
    const auto ties = ((x.unfold(2, 2, 2).unfold(3, 2, 2).flatten(4) == x.unfold(2, 2, 2).unfold(3, 2, 2).flatten(4).amax(4, true))
                           .sum(4) > 1).sum().item<int64_t>();
    EXPECT_GT(ties, indices.numel() / 4) << "the test's windows hold too few ties to test anything";
  }
}

// ---- the fused GPU operator, its CUDA launches emulated on the host (kiln/nn/fused_host.cpp) ----

TEST(FusedGpuEmulated, TrainingMatchesLibTorch) {
  for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    compare_paths(6, 8, 8, 8, true, dtype, 31, false, Path::kGpuEmulated);
    compare_paths(5, 24, 7, 9, true, dtype, 32, false, Path::kGpuEmulated);  // odd sizes: a row and a column dropped
    compare_paths(4, 40, 7, 5, false, dtype, 33, false, Path::kGpuEmulated);
    compare_paths(6, 8, 8, 8, false, dtype, 34, true, Path::kGpuEmulated);   // + residual
    compare_paths(5, 24, 7, 9, true, dtype, 35, true, Path::kGpuEmulated);
  }
  // More pixels than the statistics' items take one at a time (2,475 pixels of 64 channels: chunks
  // of 2, the last of 1, 1,238 chunks over the 32 lanes), as the airbench shapes are on a GPU.
  compare_paths(11, 64, 31, 31, true, torch::kFloat16, 36, false, Path::kGpuEmulated);
}

TEST(FusedGpuEmulated, EvaluationMatchesLibTorch) {
  for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    compare_eval(6, 8, 8, 8, true, dtype, 41, false, Path::kGpuEmulated);
    compare_eval(5, 24, 7, 9, true, dtype, 42, true, Path::kGpuEmulated);
    compare_eval(4, 40, 7, 5, false, dtype, 43, true, Path::kGpuEmulated);
    compare_eval(1, 16, 2, 2, true, dtype, 44, false, Path::kGpuEmulated);  // one value per channel
  }
}

TEST(FusedGpuEmulated, ChunksCoverEveryPixelOnce) {
  // The statistics' items: every pixel in exactly one chunk, no chunk empty, about kItems items.
  for (int64_t C : {1, 8, 64, 256, 1000})
    for (int64_t M : {1, 2, 31, 2475, 128000, 512000}) {
      const fused::Shape s{M, 1, 1, C, 1, 1, false};
      const auto ch = fused::chunks_of(s);
      EXPECT_GE(ch.per, 1);
      EXPECT_GE(ch.chunks * ch.per, M) << "C " << C << ", M " << M;
      EXPECT_LT((ch.chunks - 1) * ch.per, M) << "C " << C << ", M " << M << ": an empty chunk";
      EXPECT_LE(ch.chunks * C, std::max<int64_t>(2 * fused::kItems, C)) << "C " << C << ", M " << M;
    }
}

TEST(FusedGpuEmulated, TrafficCountsEachKernelsLoadsAndStores) {
  // fp16, N 2, C 8, a 4 x 4 input pooled to 2 x 2: E = 2 x 2 x 2 x 8 elements x 2 bytes = 128 bytes;
  // 8 pixels of 8 channels: 8 chunks of 1 pixel, partial sums 2 x 8 x 8 floats = 512 bytes.
  const fused::Shape s{2, 4, 4, 8, 2, 2, true};
  const auto ch = fused::chunks_of(s);
  ASSERT_EQ(ch.chunks * ch.per, 8);
  ASSERT_EQ(ch.chunks, 8);
  const int64_t E = 128, partials = 512;
  auto t = fused::traffic(s, ch, 2, false, true);
  // stats: x (4E) -> y (E), partials; finish: partials; bn_gelu: y -> z
  EXPECT_EQ(t.forward, (4 * E + E + partials) + partials + 2 * E);
  // grad_sums: dz, y -> g, partials; finish: partials; input_grad: g, y, x (4E) -> dx (4E)
  EXPECT_EQ(t.backward, (3 * E + partials) + partials + (2 * E + 4 * E + 4 * E));
  EXPECT_EQ(t.forward + t.backward - 4 * partials, 20 * E) << "docs/perf.md's count: 7P forward, 13P backward";
  // + residual: read in bn_gelu and grad_sums
  const auto r = fused::traffic(s, ch, 2, true, true);
  EXPECT_EQ(r.forward - t.forward, E);
  EXPECT_EQ(r.backward - t.backward, E);
  // odd: dx (2 x 5 x 4 x 8 elements, 640 bytes) zeroed first
  const fused::Shape odd{2, 5, 4, 8, 2, 2, true};
  EXPECT_EQ(fused::traffic(odd, fused::chunks_of(odd), 2, false, true).backward, t.backward + 640);
  // without the pool (y is x): 3E forward, 6E backward, as docs/perf.md's 9P
  const fused::Shape flat{2, 2, 2, 8, 2, 2, false};
  const auto f = fused::traffic(flat, fused::chunks_of(flat), 2, false, true);
  EXPECT_EQ(f.forward + f.backward - 4 * partials, 9 * E);
  // evaluation: one pass, x (4E) -> z; fp32 doubles it
  EXPECT_EQ(fused::traffic(s, ch, 2, false, false).forward, 5 * E);
  EXPECT_EQ(fused::traffic(s, ch, 2, false, false).backward, 0);
  EXPECT_EQ(fused::traffic(s, ch, 4, true, false).forward, 2 * 6 * E);
}

TEST(FusedGpuEmulated, CopyBandwidthIsMeasured) {
  // kiln fused-check --time's yardstick for the counted bytes, here on the CPU's memory: a finite,
  // positive rate (how fast is not a test's business).
  const double gbps = device_copy_gbps(torch::kCPU);
  EXPECT_TRUE(std::isfinite(gbps) && gbps > 0) << gbps;
}

TEST(FusedGpuEmulated, ShortAirbenchTrainingTracksTheUnfusedOne) {
  // A whole training through the GPU's operator, its kernels emulated on the CPU (BN's frozen
  // weight, so no weight gradient; evaluation, the test pass and its TTA, through the operator too).
  const EmulatedGpu emulated;
  expect_training_tracks_unfused(
      [](Config& c, bool fused) {
        c.set("train.fused_cpu", "false");
        c.set("train.fused_cuda", fused ? "true" : "false");
      },
      "the GPU's operator (emulated) vs LibTorch's operators");
}

// ---- the fused GPU operator, its CUDA kernels' own source run on the host (kiln/nn/fused_cuda_on_host.cpp) ----

namespace {

// Every tensor of a and b equal to the bit.
void expect_identical(const Result& a, const Result& b, const std::string& what) {
  auto same = [&](const torch::Tensor& x, const torch::Tensor& y, const char* name) {
    if (!x.defined() && !y.defined()) return;
    EXPECT_TRUE(x.defined() && y.defined() && torch::equal(x, y))
        << what << ": " << name << " differs" << (x.defined() && y.defined() ? ", by up to " + std::to_string(max_error(x, y)) : "");
  };
  same(a.out, b.out, "output");
  same(a.dx, b.dx, "input gradient");
  same(a.dweight, b.dweight, "weight gradient");
  same(a.dbias, b.dbias, "bias gradient");
  same(a.running_mean, b.running_mean, "running mean");
  same(a.running_var, b.running_var, "running variance");
  same(a.dresidual, b.dresidual, "residual gradient");
}

// The block in training and in evaluation through the host's emulation and through the CUDA source
// run on the host, in order and with threads and blocks reversed: the same bits everywhere.
void expect_cuda_source_matches_emulation(int64_t N, int64_t C, int64_t H, int64_t W, bool pool,
                                          torch::ScalarType dtype, uint64_t seed, bool residual) {
  torch::manual_seed(seed);
  auto x = (torch::randn({N, C, H, W}) + 3 * torch::randn({1, C, 1, 1})).to(dtype).to(torch::kFloat64);
  const int64_t Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W;
  auto up = torch::randn({N, C, Ho, Wo}).to(dtype).to(torch::kFloat64);
  auto w = 1 + 0.5 * torch::rand({C}), b = 0.5 * torch::randn({C});
  auto rm = 3 * torch::randn({C}), rv = 0.5 + 2 * torch::rand({C});
  torch::Tensor res;
  if (residual) res = torch::gelu(torch::randn({N, C, Ho, Wo})).to(dtype).to(torch::kFloat64);
  const std::string what = std::string(dtype_name(dtype)) + (pool ? " pool" : " no pool") + (residual ? " residual" : "") +
                           " N" + std::to_string(N) + " C" + std::to_string(C) + " " + std::to_string(H) + "x" +
                           std::to_string(W);
  auto both = [&](FusedGpuOnCpu how, cuda_host::Schedule order) {
    const EmulatedGpu on(how);
    cuda_host::set_schedule(order);
    EXPECT_STREQ(fused_gpu_backend(torch::kCPU),
                 how == FusedGpuOnCpu::kItems ? "host emulation" : "CUDA source on the host");
    auto r = std::make_pair(run(x, up, w, b, pool, Path::kGpuEmulated, dtype, true, res),
                            run_eval(x, w, b, rm, rv, pool, Path::kGpuEmulated, dtype, true, res));
    cuda_host::set_schedule(cuda_host::Schedule::kInOrder);
    return r;
  };
  const auto items = both(FusedGpuOnCpu::kItems, cuda_host::Schedule::kInOrder);
  for (auto order : {cuda_host::Schedule::kInOrder, cuda_host::Schedule::kReversed}) {
    const std::string how = what + (order == cuda_host::Schedule::kReversed ? ", threads and blocks reversed" : "");
    const auto source = both(FusedGpuOnCpu::kCudaSource, order);
    expect_identical(source.first, items.first, "training, " + how);
    EXPECT_TRUE(torch::equal(source.second, items.second)) << "evaluation, " << how;
  }
}

}  // namespace

TEST(FusedGpuCudaSource, MatchesTheEmulationBitForBit) {
  // The kernels' source as nvcc compiles it, its grids, indices, shared memory and barriers run on
  // the host, against the emulation that runs the same bodies item by item (itself held to
  // LibTorch's operators above): any slip in the launch (a wrong grid, an item skipped or taken
  // twice, a lane or channel misplaced in the finishing kernels' shared memory) changes bits.
  for (auto dtype : {torch::kFloat32, torch::kFloat16, torch::kBFloat16}) {
    expect_cuda_source_matches_emulation(6, 8, 8, 8, true, dtype, 51, false);
    expect_cuda_source_matches_emulation(5, 24, 7, 9, true, dtype, 52, true);    // odd sizes, + residual
    expect_cuda_source_matches_emulation(4, 40, 7, 5, false, dtype, 53, true);  // + residual, no pool
  }
  // Several item blocks of 256 threads; 70 channels: nine lane blocks of 8, the last partial (its
  // threads past channel 69 must neither read nor write); 1,238 chunks of 2 pixels over the 32 lanes
  // (2,475 pixels of 64 channels).
  expect_cuda_source_matches_emulation(3, 70, 12, 10, true, torch::kFloat16, 54, false);
  expect_cuda_source_matches_emulation(11, 64, 31, 31, true, torch::kFloat16, 55, false);
}

TEST(FusedGpuCudaSource, TiesInAWindowRouteTheGradientAsMaxPoolDoes) {
  // The tie test's inputs through the CUDA source: the same bits as the emulation, which that test
  // holds to max_pool2d's choice.
  torch::manual_seed(9);
  auto x = torch::randint(0, 3, {4, 16, 6, 7}).to(torch::kFloat64);
  auto up = torch::randn({4, 16, 3, 3}).to(torch::kFloat16).to(torch::kFloat64);
  auto w = torch::ones({16}), b = torch::zeros({16});
  Result items, source;
  {
    const EmulatedGpu on(FusedGpuOnCpu::kItems);
    items = run(x, up, w, b, true, Path::kGpuEmulated, torch::kFloat16, true);
  }
  {
    const EmulatedGpu on(FusedGpuOnCpu::kCudaSource);
    source = run(x, up, w, b, true, Path::kGpuEmulated, torch::kFloat16, true);
  }
  expect_identical(source, items, "ties, fp16");
}

TEST(FusedGpuCudaSource, ShortAirbenchTrainingTracksTheUnfusedOne) {
  // The whole tiny training through the CUDA source run on the host.
  const EmulatedGpu emulated(FusedGpuOnCpu::kCudaSource);
  expect_training_tracks_unfused(
      [](Config& c, bool fused) {
        c.set("train.fused_cpu", "false");
        c.set("train.fused_cuda", fused ? "true" : "false");
      },
      "the GPU's operator (its CUDA source on the host) vs LibTorch's operators");
}

TEST(FusedGpu, AppliesOnlyOnCudaAndWhereSet) {
  BatchNorm bn(8);
  bn->train();
  auto cl = torch::randn({4, 8, 6, 6}).contiguous(torch::MemoryFormat::ChannelsLast);
  set_fused_cuda(*bn, true);
  EXPECT_TRUE(bn->fused_cuda);
  EXPECT_FALSE(fused_gpu_applies(cl, *bn, Activation::GELU, true)) << "a CPU tensor";
  EXPECT_TRUE(fusable_block(cl, *bn, Activation::GELU, true));
  {
  const EmulatedGpu emulated;  // the tests' hook: CPU tensors through the emulation
  EXPECT_TRUE(fused_gpu_applies(cl, *bn, Activation::GELU, true));
  EXPECT_TRUE(fused_gpu_applies(cl.to(torch::kFloat16), *bn, Activation::GELU, true));
  EXPECT_FALSE(fused_gpu_applies(cl.to(torch::kFloat64), *bn, Activation::GELU, true)) << "fp64";
  EXPECT_FALSE(fused_gpu_applies(cl.contiguous(), *bn, Activation::GELU, true)) << "NCHW";
  EXPECT_FALSE(fused_gpu_applies(cl, *bn, Activation::CELU, true)) << "another activation";
  }
  EXPECT_FALSE(fused_gpu_applies(cl, *bn, Activation::GELU, true)) << "a CPU tensor, the hook off again";
  {
    const EmulatedGpu outer(FusedGpuOnCpu::kCudaSource);
    { const EmulatedGpu inner(FusedGpuOnCpu::kItems); }
    EXPECT_EQ(fused_gpu_on_cpu(), FusedGpuOnCpu::kCudaSource) << "the outer guard's choice, given back";
    EXPECT_STREQ(fused_gpu_backend(torch::kCPU), "CUDA source on the host");
  }
  EXPECT_EQ(fused_gpu_on_cpu(), FusedGpuOnCpu::kOff);
  EXPECT_STREQ(fused_gpu_backend(torch::kCPU), "host emulation");
  set_fused_cuda(*bn, false);
  EXPECT_FALSE(bn->fused_cuda);
  // train.fused_cuda reaches the run's step settings (off by default: not yet run on a GPU)
  Config c = Config::from_file(find_preset("cifar10-94-muon"));
  EXPECT_FALSE(RunSettings::from_config(c).step.fused_cuda);
  c.set("train.fused_cuda", "true");
  const auto s = RunSettings::from_config(c);
  EXPECT_TRUE(s.step.fused_cuda);
  EXPECT_EQ(s.step.fused(torch::kCPU), fused_cpu_isa()) << "on the CPU the CPU's operator";
}

TEST(FusedCpu, AppliesOnlyWhereItComputesTheSameThing) {
  BatchNorm bn(8);
  bn->fused_cpu = true;
  bn->train();
  auto cl = torch::randn({4, 8, 6, 6}).contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(fused_cpu_applies(cl, *bn, Activation::GELU, true));
  EXPECT_TRUE(fused_cpu_applies(cl.to(torch::kBFloat16), *bn, Activation::GELU, false));
  EXPECT_FALSE(fused_cpu_applies(cl.contiguous(), *bn, Activation::GELU, true)) << "NCHW";
  EXPECT_FALSE(fused_cpu_applies(cl.to(torch::kFloat16), *bn, Activation::GELU, true)) << "fp16";
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::CELU, true)) << "another activation";
  EXPECT_FALSE(fused_cpu_applies(cl.slice(0, 0, 1).slice(2, 0, 1).slice(3, 0, 1).contiguous(torch::MemoryFormat::ChannelsLast), *bn,
                                 Activation::GELU, false))
      << "one value per channel: LibTorch's own error";
  // A residual must be the output's shape and dtype, channels_last (else LibTorch's add: broadcasting, promotion).
  auto res = torch::randn({4, 8, 6, 6}).contiguous(torch::MemoryFormat::ChannelsLast);
  EXPECT_TRUE(fused_cpu_applies(cl, *bn, Activation::GELU, false, res));
  EXPECT_TRUE(fused_cpu_applies(cl, *bn, Activation::GELU, true, res.slice(2, 0, 3).slice(3, 0, 3).contiguous(torch::MemoryFormat::ChannelsLast)));
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, true, res)) << "residual of the unpooled shape";
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, false, res.contiguous())) << "NCHW residual";
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, false, res.to(torch::kBFloat16))) << "residual of another dtype";
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, false, res.slice(0, 0, 1))) << "broadcast residual";
  bn->options.ghost_splits = 2;
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, true)) << "ghost BN";
  // Evaluation: only where nothing needs a gradient (BN's parameters require one here, so grad mode
  // decides; an input requiring one keeps LibTorch's operators even so); ghost splits act in
  // training only.
  bn->eval();
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, true)) << "evaluation with grad mode on";
  {
    torch::NoGradGuard ng;
    EXPECT_TRUE(fused_cpu_applies(cl, *bn, Activation::GELU, true)) << "evaluation under no grad, ghost BN";
    EXPECT_TRUE(fused_cpu_applies(cl.slice(0, 0, 1).slice(2, 0, 2).slice(3, 0, 2).contiguous(torch::MemoryFormat::ChannelsLast),
                                  *bn, Activation::GELU, true))
        << "evaluation, one value per channel";
    EXPECT_FALSE(fused_cpu_applies(cl.contiguous(), *bn, Activation::GELU, true)) << "evaluation, NCHW";
    EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, true, res)) << "evaluation, residual of the unpooled shape";
  }
  bn->weight.set_requires_grad(false);
  bn->bias.set_requires_grad(false);
  EXPECT_TRUE(fused_cpu_applies(cl, *bn, Activation::GELU, true)) << "evaluation, nothing requires a gradient";
  EXPECT_FALSE(fused_cpu_applies(cl.detach().requires_grad_(true), *bn, Activation::GELU, true))
      << "evaluation of an input that requires a gradient (a saliency map's)";
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, false, res.detach().requires_grad_(true)))
      << "evaluation with a residual that requires a gradient";
  // ... and there pool_bn_act is LibTorch's, exactly, with the gradient reaching the input.
  auto xg = cl.detach().requires_grad_(true);
  auto out = pool_bn_act(xg, *bn, Activation::GELU, 0, true);
  EXPECT_TRUE(torch::equal(out, torch::gelu(bn->forward(torch::max_pool2d(cl, 2)))));
  out.sum().backward();
  EXPECT_TRUE(xg.grad().defined());
  bn->train();
  bn->options.ghost_splits = 1;
  bn->fused_cpu = false;
  EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, true)) << "train.fused_cpu = false";
  bn->eval();
  {
    torch::NoGradGuard ng;
    EXPECT_FALSE(fused_cpu_applies(cl, *bn, Activation::GELU, true)) << "evaluation, train.fused_cpu = false";
  }
  bn->fused_cpu = true;
  const auto isa = fused_cpu_isa(), name = isa.substr(0, isa.find(' '));  // " (one thread: ...)" without OpenMP
  EXPECT_TRUE(name == "avx512" || name == "avx2" || name == "baseline") << isa;
}

TEST(FusedCpu, ShortAirbenchTrainingTracksTheUnfusedOne) {
  expect_training_tracks_unfused([](Config& c, bool fused) { c.set("train.fused_cpu", fused ? "true" : "false"); },
                                 "fused vs LibTorch's operators");
}

TEST(FusedCpu, KilnEvalEvaluatesACheckpointAsItsRunDid) {
  // `kiln eval` (evaluate_checkpoint) reports the checkpoint's test accuracy "as its run evaluated
  // it": the run's precision, batch size and TTA, and also its layout (channels_last) and, on the
  // CPU, its fused operators; then its loss and accuracy are the run's final ones to the last bit.
  // With train.fused_cpu off the same holds through LibTorch's operators.
  auto tt = test::synthetic(512, 200);
  for (bool fused : {true, false}) {
    // Before evaluate_checkpoint took the run's fused operators, `kiln eval` read 27.5% where the
    // run had 27.0% (2026-12-02).
    const Config c = test::tiny_bf16_airbench(fused);
    test::TempDir dir;
    const auto r = train(c, tt, test::quiet_options(dir / "run"));
    const auto ck = load_checkpoint(dir / "run/checkpoint.pt", torch::kCPU);
    const auto e = evaluate_checkpoint(ck, tt, torch::kCPU);
    EXPECT_EQ(e.acc, r.final_test_acc) << "train.fused_cpu = " << fused;
    EXPECT_EQ(e.loss, r.final_test_loss) << "train.fused_cpu = " << fused;
  }
}
