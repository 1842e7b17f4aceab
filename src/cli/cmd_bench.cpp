// `kiln bench`: a preset timed as the peers time it, n runs, into one JSON file
// (kiln/train/bench_set.h).
#include <cstdio>

#include "cli/commands.h"
#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/train/bench_set.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {

struct BenchFlags {
  DeviceFlags dev;
  std::string preset, out, profile, peaks_from;
  std::vector<std::string> sets;
  int runs = 1, warmup = 1;
};

int run_bench(const BenchFlags& f, const std::string& cmdline) {
  if (f.runs < 1) throw Error("--runs must be at least 1");
  Setup su = setup(f.dev, f.preset, f.sets);
  auto tt = load_for(su.cfg, f.dev.data);
  BenchSetOptions o;
  o.name = preset_stem(su.preset_path);
  o.runs = f.runs;
  o.warmup = f.warmup;
  o.out = f.out.empty() ? "runs/bench-" + o.name + "-" + timestamp() + ".json" : f.out;
  o.profile = f.profile;
  o.peaks_from = f.peaks_from;
  o.command = cmdline;
  const auto r = bench_set(su.cfg, tt, su.device, o);
  const double peak = r.matmul_peak.tflops, conv = r.conv_peak.tflops;
  std::printf("%s on %s (%s), n=%d:\n  accuracy   %s %%\n  time       %s s\n  FLOPs/run  %.3g  ->  %s TFLOP/s, "
              "%.1f%% of the %s %.3g TFLOP/s matrix-product peak, %.1f%% of the %.3g TFLOP/s convolution peak\n  clock: whitening fit + training + final "
              "%s evaluation; data loading, model construction and warm-up excluded\n  json: %s\n",
              o.name.c_str(), device_name(su.device).c_str(), su.device.str().c_str(), f.runs,
              format_summary(r.test_acc, 2, 100).c_str(), format_summary(r.seconds, 3).c_str(), r.flops_per_run,
              format_summary(r.tflops, 3).c_str(), peak > 0 ? 100 * r.tflops.mean / peak : 0.0,
              r.peaks_from == "measured" ? "measured" : ("measured in " + r.peaks_from).c_str(), peak,
              conv > 0 ? 100 * r.tflops.mean / conv : 0.0, conv,
              RunSettings::from_config(su.cfg).loop.tta.c_str(), o.out.c_str());
  if (std::string(peak_yardstick(r.matmul_peak, r.conv_peak)) == "convolution")
    std::printf("  note: matrix products run at under a quarter of the convolutions' rate in this precision here "
                "(no fast product kernel for it on this device): the convolution peak is the yardstick\n");
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app, const std::string& cmdline) {
  auto f = std::make_shared<BenchFlags>();
  auto* sub = app.add_subcommand("bench", "Time a preset as the peers do (whitening + training + final TTA eval), n runs: accuracy and time with 95% CI, FLOPs, TFLOP/s, fraction of the matmul peak; writes JSON");
  sub->add_option("--preset,-p", f->preset, "preset name or path")->required();
  sub->add_option("--runs", f->runs, "timed runs (seeds train.seed + k)")->capture_default_str();
  sub->add_option("--warmup", f->warmup, "untimed warm-up runs first (cuDNN autotuning, allocator)")->capture_default_str();
  sub->add_option("--peaks-from", f->peaks_from, "an earlier kiln bench JSON of this device, precision, layout and thread count: its peaks, instead of measuring them again (~15 s on one thread of an AVX2 CPU)");
  sub->add_option("--profile", f->profile, "CSV: after the timed runs, one more run under LibTorch's profiler: kernels by device time (CUDA), operators by host self time");
  add_device_options(sub, f->dev);
  sub->add_option("--out", f->out, "the JSON file (default runs/bench-<preset>-<time>.json)");
  sub->add_option("--set", f->sets, "override a key (repeatable); on the CPU use a subset, e.g. --set data.train_subset=2000")->take_all();
  return {sub, [f, &cmdline] { return run_bench(*f, cmdline); }};
}

}  // namespace kiln::cli
