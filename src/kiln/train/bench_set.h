// `kiln bench`: a preset timed as the peers time it (bench_run, kiln/train/trainer.h), over
// warm-up runs then n timed runs with consecutive seeds, into one JSON file (accuracy and time
// with their 95% intervals, FLOPs, TFLOP/s against the device's measured matrix-product peak,
// what the clock included, provenance), rewritten after every run so that a run cut short by a
// time budget keeps what it measured. Optionally one more run under LibTorch's profiler.
#pragma once
#include <string>

#include "kiln/core/config.h"
#include "kiln/core/peak.h"
#include "kiln/data/dataset.h"
#include "kiln/report/stats.h"

namespace kiln {

struct BenchSetOptions {
  std::string name;        // the preset's name, recorded
  int runs = 1, warmup = 1;
  std::string out;         // the JSON file
  std::string profile;     // "" or a CSV file: the profiled run's kernels and operators
  std::string command;     // recorded in the provenance
  // "" (measure the peaks, ~15 s on one thread of an AVX2 CPU: bench/results/bench-peaks-from-2026-12-04-epyc.txt) or an earlier `kiln bench` JSON
  // whose peaks to take instead: it must name the same device, precision, layout and (on the
  // CPU) thread count, or bench_set refuses it naming the key that differs.
  std::string peaks_from;
};

struct BenchSetResult {
  Summary test_acc, seconds, tflops;
  double flops_per_run = 0;
  Peak matmul_peak, conv_peak;  // measured in the run's precision (and layout, for the convolution)
  std::string peaks_from;       // where they came from: "measured" or the JSON file they were read from
};

BenchSetResult bench_set(const Config& cfg, const TrainTest& data, const torch::Device& device, const BenchSetOptions& o);

}  // namespace kiln
