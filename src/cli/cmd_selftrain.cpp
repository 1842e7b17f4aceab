// `kiln selftrain`: Zoph et al. 2020's experiment (kiln/train/selftrain_experiment.h).
#include <iostream>

#include "cli/commands.h"
#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/train/selftrain_experiment.h"

namespace kiln::cli {
namespace {

struct SelftrainFlags {
  DeviceFlags dev;
  std::string preset, out;
  std::vector<std::string> sets, strengths;
  std::string teacher_strength;
  int64_t labels = 4000, split_seed = -1;
  int rounds = 1, runs = 1;
  bool quiet = false;
};

int run_selftrain_cmd(const SelftrainFlags& f, const std::string& cmdline) {
  Setup su = setup(f.dev);
  SelftrainExperiment e;
  e.preset = find_preset(f.preset);
  e.strengths = f.strengths;
  e.teacher_strength = f.teacher_strength;
  e.rounds = f.rounds;
  e.runs = f.runs;
  e.command = cmdline;
  if (f.labels < 0) throw Error("kiln selftrain needs --labels N >= 0 (the labeled examples; 0 = all, with selftrain.unlabeled_folder)");
  Config base = Config::from_file(e.preset);
  base.set_value("data.labeled", f.labels);
  if (f.split_seed >= 0) base.set_value("data.split_seed", f.split_seed);
  for (auto& a : f.sets) base.set_assignment(a);
  check_selftrain(base, e);  // before the data is loaded or anything is written
  const std::string out = f.out.empty() ? "runs/selftrain-" + preset_stem(e.preset) + "-" + timestamp() : f.out;
  auto tt = load_for(base, f.dev.data);
  std::cerr << "kiln selftrain: " << e.preset << ", " << (f.labels > 0 ? std::to_string(f.labels) : std::string("all")) << " labels";
  const auto folder = base.s("selftrain.unlabeled_folder");
  if (!folder.empty()) std::cerr << ", unlabeled images from " << folder;
  std::cerr << ", strengths";
  for (auto& a : f.strengths) std::cerr << " " << a;
  std::cerr << ", " << f.rounds << " round(s), " << f.runs << " run(s) each, on " << device_name(su.device)
            << "; directory " << out << " (run the same command again to continue after an interruption)\n";
  std::string table;
  if (!run_selftrain(base, e, tt, out, run_options(su.device, cmdline, !f.quiet), table)) return 130;
  std::cout << table;
  std::cerr << "table: " << out << "/selftrain.md; report: " << out << "/report.html\n";
  return 0;
}

}  // namespace

Command add_selftrain(CLI::App& app, const std::string& cmdline) {
  auto f = std::make_shared<SelftrainFlags>();
  auto* sub = app.add_subcommand("selftrain", "Self-training (Zoph et al. 2020): supervised baseline vs noisy student per augmentation strength, n runs each, rounds of students; a table with Welch p-values");
  sub->add_option("--preset,-p", f->preset, "preset of the baseline and students (e.g. cifar10-selftrain)")->required();
  add_device_options(sub, f->dev);
  sub->add_option("--labels", f->labels, "labeled examples (a seeded, class-balanced split; the rest is unlabeled, unless --set selftrain.unlabeled_folder=DIR gives the unlabeled images: then 0 = the whole training set)")->capture_default_str();
  sub->add_option("--aug", f->strengths, "augmentation strengths, comma-separated: S1,S2,S3,S4 (each optionally +cutout)")->delimiter(',')->required();
  sub->add_option("--teacher-aug", f->teacher_strength,
                  "the baselines' (round-1 teachers') strength for every --aug, trained once (default: each strength's own)");
  sub->add_option("--rounds", f->rounds, "rounds of students (each taught by the previous round)")->capture_default_str();
  sub->add_option("--runs", f->runs, "runs per strength (seeds train.seed + k); run k of every round is taught by run k of the one before")->capture_default_str();
  sub->add_option("--split-seed", f->split_seed, "override data.split_seed");
  sub->add_option("--out", f->out, "directory (default runs/selftrain-<preset>-<time>); an existing one is continued");
  sub->add_option("--set", f->sets, "override a key for baselines and students (repeatable)")->take_all();
  sub->add_flag("--quiet,-q", f->quiet, "no progress bar or epoch lines");
  return {sub, [f, &cmdline] { return run_selftrain_cmd(*f, cmdline); }};
}

}  // namespace kiln::cli
