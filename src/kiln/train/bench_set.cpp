#include "kiln/train/bench_set.h"

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/core/peak.h"
#include "kiln/report/profile.h"
#include "kiln/train/run_set.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

namespace kiln {
namespace {

void make_parent(const std::string& file) {
  auto parent = std::filesystem::path(file).parent_path().string();
  make_dirs(parent.empty() ? "." : parent);
}

// One more run (another seed, outside the statistics) under LibTorch's profiler: the kernels
// by device time (CUDA) and the operators by host self time, as CSV.
void profile_run(Config cfg, int64_t seed, const TrainTest& data, const torch::Device& device, const std::string& csv) {
  cfg.set_value("train.seed", seed);
  std::cerr << "profiling one more run (not counted)...\n";
  Profiler prof(device.is_cuda());
  auto b = bench_run(cfg, data, device);
  auto table = prof.stop();
  make_parent(csv);
  atomic_write(csv, table.csv());
  std::fprintf(stderr, "profiled run: %.2f%% in %.3f s (the profiler's overhead included); device %.1f ms, host %.1f ms\n",
               100 * b.test_acc, b.seconds, table.device_ms, table.host_ms);
  std::map<std::string, int> shown;
  for (auto& row : table.rows)
    if (++shown[row.kind] <= 8)
      std::fprintf(stderr, "  %-6s %5.1f%%  %9.1f ms  %7lld x  %s\n", row.kind.c_str(), 100 * row.share, row.ms,
                   (long long)row.calls, row.name.substr(0, 90).c_str());
  std::fprintf(stderr, "profile: %s\n", csv.c_str());
}

// The peaks of an earlier `kiln bench` JSON (`path`), when it was measured where this run runs:
// the same device name and type, precision, layout and LibTorch thread count (a CPU's peak
// scales with its threads). Anything else is refused, naming the file and the key.
void read_peaks(const std::string& path, const nlohmann::json& want, BenchSetResult& res) {
  nlohmann::json j;
  try {
    const auto bytes = read_file(path);
    j = nlohmann::json::parse(bytes.begin(), bytes.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error("--peaks-from " + path + ": not a kiln bench JSON (" + e.what() + ")");
  }
  auto field = [&](const std::string& key) -> nlohmann::json {
    const auto ptr = nlohmann::json::json_pointer("/" + key);
    if (!j.contains(ptr)) throw Error("--peaks-from " + path + ": no '" + key + "' (not a kiln bench JSON?)");
    return j.at(ptr);
  };
  for (const auto& [key, value] : want.items()) {
    const auto got = field(key);
    if (got != value)
      throw Error("--peaks-from " + path + ": its peaks were measured with " + key + " = " + got.dump() + ", this run has " +
                  value.dump() + ": measure them here (leave --peaks-from out)");
  }
  for (const auto& key : {"matmul_peak_tflops", "conv_peak_tflops"})
    if (!field(key).is_number() || !(field(key).get<double>() > 0))
      throw Error("--peaks-from " + path + ": '" + key + "' is " + field(key).dump() + ", not a positive rate");
  res.matmul_peak = {field("matmul_peak_tflops").get<double>(), field("matmul_peak_shape").get<std::string>()};
  res.conv_peak = {field("conv_peak_tflops").get<double>(), field("conv_peak_shape").get<std::string>()};
  res.peaks_from = path;
}

}  // namespace

BenchSetResult bench_set(const Config& cfg, const TrainTest& data, const torch::Device& device, const BenchSetOptions& o) {
  if (o.runs < 1) throw Error("--runs must be at least 1");
  const auto s = RunSettings::from_config(cfg);
  const auto prec = s.step.resolve(device);
  const auto dtype = prec.compute;
  const char* layout = s.step.layout();
  std::cerr << "kiln bench: " << o.name << " on " << device_name(device) << " (" << device.str() << ", "
            << prec.describe() << ", " << layout << ", fused operators " << s.step.fused(device) << "), "
            << o.warmup << " warm-up run(s) then " << o.runs
            << " timed; clock: whitening fit + training + final " << s.loop.tta
            << " evaluation, each bracketed by device synchronisation; excluded: data loading, "
               "model construction, per-epoch evaluation (off), the warm-up runs\n";
  BenchSetResult res;
  if (!o.peaks_from.empty()) {  // read before the warm-ups: a file refused costs no run
    nlohmann::json want = {{"device", device.str()}, {"device_name", device_name(device)},
                           {"precision", c10::toString(dtype)}, {"layout", layout}};
    if (!device.is_cuda()) want["provenance/threads"] = at::get_num_threads();
    read_peaks(o.peaks_from, want, res);
  }
  const auto seed = static_cast<int64_t>(s.loop.seed);
  for (int w = 0; w < o.warmup; ++w) {
    Config c = cfg;
    c.set_value("train.seed", seed + 100000 + w);
    auto b = bench_run(c, data, device);
    std::fprintf(stderr, "warm-up %d: %.2f%% in %.3f s (not counted)\n", w + 1, 100 * b.test_acc, b.seconds);
  }
  if (o.peaks_from.empty()) {
    std::cerr << "measuring the device's matrix-product and convolution peaks...\n";
    res.matmul_peak = measure_matmul_peak(device, dtype);
    res.conv_peak = measure_conv_peak(device, dtype, s.step.channels_last);  // in the run's layout (train.channels_last)
    res.peaks_from = "measured";
  }
  const Peak &mm = res.matmul_peak, &conv = res.conv_peak;
  std::fprintf(stderr, "peaks%s: matrix product %.3g TFLOP/s (%s), convolution %.3g TFLOP/s (%s)\n",
               o.peaks_from.empty() ? "" : (" (from " + o.peaks_from + ")").c_str(), mm.tflops, mm.shape.c_str(),
               conv.tflops, conv.shape.c_str());
  std::vector<double> acc, secs, whiten, train_s, eval_s, cpu_s, tflops;
  std::vector<std::string> warnings;  // the runs', each once
  // Written after every run, so that a run cut short by a time budget keeps what it measured.
  auto write_json = [&](bool complete) {
    res.test_acc = summarize(acc), res.seconds = summarize(secs), res.tflops = summarize(tflops);
    nlohmann::ordered_json j;
    j["preset"] = o.name;
    j["description"] = s.description;
    j["device"] = device.str();
    j["device_name"] = device_name(device);
    j["precision"] = c10::toString(dtype);  // the arithmetic's
    j["precision_detail"] = prec.describe();
    j["layout"] = layout;  // train.channels_last: the images', weights' and buffers' memory format
    // train.fused_cpu: the fused CPU kernels' instruction set, or "off"; train.fused_cuda: "cuda" or "off"
    j["fused_cpu"] = device.is_cpu() ? s.step.fused(device) : "off";
    j["fused_cuda"] = device.is_cuda() ? s.step.fused(device) : "off";
    j["runs"] = static_cast<int>(acc.size());
    j["runs_requested"] = o.runs;
    j["complete"] = complete;
    j["warmup_runs"] = o.warmup;
    j["clock_includes"] = "whitening fit + training steps of every epoch + the final evaluation with eval.tta, each "
                          "interval bracketed by device synchronisation";
    j["clock_excludes"] = "data loading, model construction, per-epoch evaluation (switched off), warm-up runs";
    j["test_acc"] = summary_json(res.test_acc);
    j["seconds"] = summary_json(res.seconds);
    j["flops_per_run"] = res.flops_per_run;
    j["tflops"] = summary_json(res.tflops);
    j["matmul_peak_tflops"] = mm.tflops;
    j["matmul_peak_shape"] = mm.shape;  // smaller than 2048^3 on the CPU only where that path is slow (kiln/core/peak.h)
    j["fraction_of_peak"] = mm.tflops > 0 ? res.tflops.mean / mm.tflops : 0;
    j["conv_peak_tflops"] = conv.tflops;  // 256 -> 256 3x3 on 500 x 256 x 16 x 16, the run's precision and layout
    j["conv_peak_shape"] = conv.shape;
    j["fraction_of_conv_peak"] = conv.tflops > 0 ? res.tflops.mean / conv.tflops : 0;
    j["peak_yardstick"] = peak_yardstick(mm, conv);  // which of the two fractions to read (kiln/core/peak.h)
    j["peaks_from"] = res.peaks_from;  // "measured" by this run, or the earlier JSON they were read from (--peaks-from)
    j["per_run"] = {{"test_acc", acc}, {"seconds", secs}, {"whiten_seconds", whiten}, {"train_seconds", train_s},
                    {"eval_seconds", eval_s}, {"cpu_seconds", cpu_s}};
    j["cpu_seconds_includes"] = "the process's CPU time, every thread (std::clock), over the training and the final "
                                "evaluation, not the whitening fit: time its threads waited for a CPU is not in it, a "
                                "slowdown while running is";
    if (!warnings.empty()) j["warnings"] = warnings;
    j["provenance"] = nlohmann::json::parse(provenance_json(device, o.command, &prec));
    j["config"] = nlohmann::json::parse(cfg.to_json());
    make_parent(o.out);
    atomic_write(o.out, j.dump(2) + "\n");
  };
  for (int r = 0; r < o.runs; ++r) {
    Config c = cfg;
    c.set_value("train.seed", seed + r);
    auto b = bench_run(c, data, device);
    acc.push_back(b.test_acc);
    secs.push_back(b.seconds);
    whiten.push_back(b.whiten_seconds);
    train_s.push_back(b.train_seconds);
    eval_s.push_back(b.eval_seconds);
    cpu_s.push_back(b.cpu_seconds);
    res.flops_per_run = b.flops;
    merge_warnings(warnings, b.warnings);
    tflops.push_back(b.flops / b.seconds / 1e12);
    std::fprintf(stderr, "run %d/%d (seed %lld): %.2f%%  %.3f s  (whiten %.3f, train %.3f, eval %.3f; CPU time %.3f s)\n",
                 r + 1, o.runs, (long long)(seed + r), 100 * b.test_acc, b.seconds, b.whiten_seconds, b.train_seconds,
                 b.eval_seconds, b.cpu_seconds);
    write_json(r + 1 == o.runs);
  }
  if (!o.profile.empty()) profile_run(cfg, seed + o.runs, data, device, o.profile);
  return res;
}

}  // namespace kiln
