// Sets of runs: one configuration trained n times with consecutive seeds, each run in its own
// directory (dir/run-XX), finished runs skipped, interrupted ones resumed, and the set's
// summary (mean, std, 95% interval of accuracy and time). `kiln train --runs N`, `kiln
// ablate` (a set per row) and `kiln selftrain` (a set per strength and round) are built on it.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"
#include "kiln/report/stats.h"
#include "kiln/train/trainer.h"

namespace kiln {

// One run in opt.run_dir: read back when it finished before (its final.json), resumed when
// it has a checkpoint, else trained from `cfg`. `what` names it in the log line.
RunResult run_one(const Config& cfg, const TrainTest& data, const RunOptions& opt, const std::string& what);

// `runs` trainings of cfg (seeds train.seed + k) in dir/run-XX, one writer per directory
// (a lock), dir/config.toml and dir/runs.json written first so that the set can be resumed.
// Appends each run's result to `results`; returns false when interrupted (opt.stop).
bool run_set(const Config& cfg, const TrainTest& data, const std::string& dir, int runs, RunOptions opt,
             std::vector<RunResult>& results);

// Whether `dir` holds a set of runs (runs.json) rather than one run.
bool is_run_set(const std::string& dir);
// The runs a set directory was started with (its runs.json).
int run_set_size(const std::string& dir);
// The configuration a run directory (its checkpoint) or a set directory (config.toml) was started with.
Config stored_config(const std::string& dir);
// A resumed run continues exactly as configured: throws, naming the key and both values, when
// any of `overrides` (key=value) would change `stored` (the directory it came from: `dir`).
void refuse_changed_overrides(const Config& stored, const std::vector<std::string>& overrides, const std::string& dir);

// dir/summary.json, dir/summary.md and dir/report.html of a finished set; returns the two
// summaries (test accuracy, training seconds) for the caller to print.
struct SetSummary {
  Summary test_acc, train_seconds;
};
SetSummary write_summary(const std::string& dir, const std::string& description, const std::vector<RunResult>& results,
                         const torch::Device& device);

// A Summary as the JSON object the summaries and the bench file share:
// {"n", "mean", "std", "min", "max", "ci95_low", "ci95_high"}.
nlohmann::ordered_json summary_json(const Summary& s);

}  // namespace kiln
