// Ablations: a sequence of rows, each a set of config overrides, each row trained n times and
// compared with another by Welch's t-test. Files: configs/ablations/<name>.toml:
//   description = "..."
//   base = "cifar10-resnet9-baseline"     # the first row's preset
//   mode = "cumulative"                   # or "leave_one_out"
//   [[row]]
//   name = "pool before BN"
//   set = { "model.pool_before_bn" = true }
// cumulative (the default): each row's overrides go on top of the previous row's, so the rows
// read "add this trick", and each row is compared with the one before it (Myrtle.ai's post).
// leave_one_out: the first row is the base preset as it is (it may not set anything) and every
// other row is the base with its own overrides only, compared with the first row: "the whole
// recipe without this trick" (the airbench paper's way of asking what a trick buys).
// A row whose overrides leave the configuration it starts from unchanged is an error, naming it.
// A row that differs from the row it is compared with only in how the networks are evaluated
// (eval.*: test-time augmentation) trains nothing: it evaluates that row's trained networks again,
// run by run, with its own eval settings, and is compared with it by the paired t-test (the same
// networks on both sides). `kiln ablate --train-every-row` trains such a row instead; on the CPU
// both give the same accuracies and test losses, to the bit (CTest cli.ablate_smoke).
#pragma once
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"
#include "kiln/report/stats.h"
#include "kiln/train/trainer.h"

namespace kiln {

struct AblationRow {
  std::string name;
  std::vector<std::pair<std::string, std::string>> sets;  // key, TOML value text
  size_t number = 0;  // its place in the file, from 0: its run directory is row-XX with XX this number
};

struct Ablation {
  std::string description, base;
  bool leave_one_out = false;  // mode = "leave_one_out" (else "cumulative")
  std::vector<AblationRow> rows;
  size_t rows_in_file = 0;  // rows.size() unless only() kept some
  bool subset() const { return rows.size() != rows_in_file; }
  // The row that row i (> 0) is compared with: the first (leave_one_out) or the one before it.
  static size_t compared_with(size_t i, bool leave_one_out) { return leave_one_out ? 0 : i - 1; }
  static Ablation from_file(const std::string& path);
  // The resolved configuration of every row; `overrides` (key=value) apply to all rows, last.
  std::vector<Config> configs(const std::vector<std::string>& overrides = {}) const;
  // One line for each override (key=value) whose key some rows set themselves, so that it
  // replaces their own values (a smoke test's shorter schedule does this on purpose; a row whose
  // only change is replaced is the row before it, or the base): "--set K=V replaces what N
  // row(s) set: 'A', 'B'". Empty when no override touches a row's key.
  std::vector<std::string> overridden_rows(const std::vector<std::string>& overrides) const;
  // kiln ablate --rows: the rows (their places, from 0) that `spec` names by their numbers from
  // 1, as `kiln ablate --list` and the run print them: "3,11", "2-5", "1,4-6". leave_one_out:
  // the first row, which every row is compared with, is kept even when not named (`note` says
  // so). cumulative: the rows named must follow one another, since each row adds its trick to
  // the ones before it and is compared with the one before it; the first of them is compared
  // with none. A number out of range, a row named twice, or text that is not a number is
  // refused, naming `spec`.
  std::vector<size_t> pick_rows(const std::string& spec, std::string* note = nullptr) const;
  // The ablation with only the rows at `places` (pick_rows'), in the file's order.
  Ablation only(const std::vector<size_t>& places) const;
  // One line a row: its number from 1, its name and what it sets ("(the base as it is)"); given
  // the rows' configs (configs()), an evaluation-only row's line ends "; trains nothing: evaluates
  // row N's networks again".
  std::string listing(const std::vector<Config>& configs = {}) const;
};

struct AblationResult {
  std::string name;
  double epochs = 0;
  std::vector<double> acc, seconds;
  std::vector<std::string> warnings;  // what its runs warned of, each once (RunResult::warnings)
  // Set when the row trained nothing and evaluated again the networks of the row it is compared
  // with (then compared with it by the paired t-test): that row's name, and its eval settings
  // ("eval.tta = \"none\"") that differ. `seconds` are then the networks' training times.
  std::string networks_of, eval_change;
};

// Whether `a` and `b` differ in how the networks are evaluated (the eval.* keys) and in nothing
// else that a run reads (meta.* aside): what makes a row evaluation-only. `change` gets a's
// differing eval settings, "key = value" joined by ", ".
bool differs_only_in_evaluation(const Config& a, const Config& b, std::string* change = nullptr);

// The table as markdown: epochs, mean time per run, mean test accuracy ± std, n, 95% CI,
// and the change from the previous row (or, with `against_first`, from the first row) with
// Welch's p-value, or the paired t-test's for an evaluation-only row (AblationResult::networks_of).
std::string ablation_markdown(const std::vector<AblationResult>& rows, const std::string& device,
                              bool against_first = false);

// `kiln ablate`: each row of `configs` (Ablation::configs) as a set of `runs` runs in
// out/row-XX (kiln/train/run_set.h: finished runs are skipped, interrupted ones resumed, so the
// same call continues an interrupted ablation); out/ablation.md and out/ablation.json are
// rewritten after every row. Returns false when interrupted (opt.stop), else true with the
// markdown table in `table`. An evaluation-only row (above) writes out/row-XX/config.toml and
// out/row-XX/evaluated.json (each run's checkpoint, test accuracy and loss) and trains nothing,
// unless `train_every_row`.
bool run_ablation(const Ablation& ab, const std::vector<Config>& configs, const TrainTest& data, const std::string& out,
                  int runs, const RunOptions& opt, std::string& table, bool train_every_row = false);

// Finds configs/ablations/<name>.toml (or a path).
std::string find_ablation(const std::string& name_or_path);

}  // namespace kiln
