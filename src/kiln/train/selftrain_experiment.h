// `kiln selftrain`: Zoph et al. 2020's experiment (issue #7). For every augmentation strength:
// n supervised baselines on the labelled split (they are also the first teachers), then
// `rounds` rounds of noisy students, each taught by the previous round's run with the same
// index (the same seed). Directory: out/<strength>/baseline/run-XX and
// out/<strength>/round-R/run-XX; out/selftrain.json and out/selftrain.md are rewritten after
// every run, so an interrupted experiment continues where it stopped when run again. The
// unlabeled examples are the split's rest (every pseudo-label scored against the true label
// kept aside), or with selftrain.unlabeled_folder a directory of images without labels (the
// pseudo-labels' accuracy is then unknown; data.labeled may be 0: the whole training set).
#pragma once
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"
#include "kiln/train/trainer.h"

namespace kiln {

struct SelftrainExperiment {
  std::string preset;                  // the preset's path, recorded in selftrain.json
  std::vector<std::string> strengths;  // S1..S4, each optionally +cutout (apply_strength)
  // The baselines' (round-1 teachers') strength for every student strength ("" = the student's
  // own): then the baselines are trained once, in out/teacher-<strength>/baseline, and every
  // strength's students are taught by them.
  std::string teacher_strength;
  int rounds = 1, runs = 1;
  std::string command;                 // recorded in selftrain.json
};

// Refuses, before the data is loaded, what the experiment could not run: fewer than one run or
// round, data.labeled <= 0 without selftrain.unlabeled_folder, no strengths or a bad strength name. `base` is the baseline's
// configuration (data.labeled and data.split_seed set).
void check_selftrain(const Config& base, const SelftrainExperiment& e);

// Runs (or continues) the experiment in `out`, refusing a labelled split the training set
// cannot give before it writes anything. Returns false when interrupted (opt.stop), else true
// with the markdown tables in `table`.
bool run_selftrain(const Config& base, const SelftrainExperiment& e, const TrainTest& data, const std::string& out,
                   RunOptions opt, std::string& table);

}  // namespace kiln
