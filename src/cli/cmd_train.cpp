// `kiln train`: one run, a set of runs (--runs N), a resumed run or set (--resume), or one
// rank of a data-parallel job (--world-size/--rank/--master, or the launcher's environment).
#include <iostream>

#include "cli/commands.h"
#include "kiln/build_info.h"
#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/dist/dist.h"
#include "kiln/train/run_set.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {

struct TrainFlags {
  DeviceFlags dev;
  std::string preset, out, resume_dir, init, master;
  std::vector<std::string> sets;
  int64_t seed = -1;
  int runs = 1, world_size = 0, rank = -1;
  bool quiet = false, deterministic = false;
};

// Joins a data-parallel job when the flags or the launcher's environment say there is one
// (world size > 1); the backend and timeout come from the run's configuration.
std::shared_ptr<dist::Group> join_job(const dist::Options& given, const Config& cfg, const torch::Device& dev,
                                      const std::string& out, int runs) {
  if (given.world_size <= 1) return nullptr;
  if (runs != 1) throw Error("--runs N with data parallelism: start one job a run (each job's ranks train one model together)");
  if (out.empty()) throw Error("a data-parallel run needs --out (or --resume): every rank must name the same run directory");
  const auto s = RunSettings::from_config(cfg).dist;
  dist::Options o = given;
  o.backend = s.backend;
  o.timeout_s = s.timeout_s;
  auto g = dist::Group::connect(o, dev);
  if (o.rank == 0)
    std::cerr << "data parallel: " << o.world_size << " ranks joined at " << o.master_addr << ":" << o.master_port << " ("
              << g->backend() << ")\n";
  return g;
}

// The runs' warnings again under the result they qualify (said at each run's start, long
// scrolled away by then), each once.
void repeat_warnings(const std::vector<RunResult>& results) {
  std::vector<std::string> said;
  for (auto& r : results) merge_warnings(said, r.warnings);
  for (auto& w : said) std::cerr << "kiln: the result above comes with a warning: " << w << "\n";
}

void print_summary(const SetSummary& s, const torch::Device& dev, const std::string& dir, const std::vector<RunResult>& results) {
  std::cerr << "\nfinal test accuracy: " << format_summary(s.test_acc, 2, 100) << " %\ntraining time:       "
            << format_summary(s.train_seconds, 1) << " s  (" << device_name(dev) << ")\nsummary: " << dir << "/summary.md\n";
  repeat_warnings(results);
}

// --resume DIR: a single run continues from its checkpoint; a set of runs continues with the
// runs it has not finished. --set may only restate what the directory was started with.
int resume_dir(const TrainFlags& f, const Setup& su, RunOptions opt, const dist::Options& dopt) {
  const auto& dir = f.resume_dir;
  if (!dir_exists(dir)) throw Error("--resume: no run directory '" + dir + "'");
  const Config stored = stored_config(dir);
  if (!f.sets.empty()) refuse_changed_overrides(stored, f.sets, dir);
  auto tt = load_for(stored, f.dev.data);
  if (!is_run_set(dir)) {
    opt.run_dir = dir;
    opt.dist = join_job(dopt, stored, su.device, dir, 1);
    auto r = resume(tt, opt);
    if (r.interrupted) return 130;
    if (dopt.rank == 0) {
      std::cerr << "final test accuracy " << 100 * r.final_test_acc << "%\n";
      repeat_warnings({r});
    }
    return 0;
  }
  if (dopt.world_size > 1) throw Error("--resume of a set of runs with data parallelism: resume each run directory on its own");
  std::vector<RunResult> results;
  if (!run_set(stored, tt, dir, run_set_size(dir), opt, results)) return 130;
  print_summary(write_summary(dir, RunSettings::from_config(stored).description, results, su.device), su.device, dir, results);
  return 0;
}

int run_train(TrainFlags f, const std::string& cmdline) {
  set_deterministic(f.deterministic);
  if (!f.init.empty()) f.sets.push_back("train.init=\"" + f.init + "\"");
  auto dopt = dist::from_environment();
  if (f.world_size > 0) dopt.world_size = f.world_size;
  if (f.rank >= 0) dopt.rank = f.rank;
  if (!f.master.empty()) dist::set_master(dopt, f.master, "--master");
  if (f.resume_dir.empty() && f.preset.empty())
    throw Error("kiln train needs --preset NAME (see 'kiln presets') or --resume DIR");
  Setup su = setup(f.dev, f.resume_dir.empty() ? f.preset : "", f.sets);
  RunOptions opt = run_options(su.device, cmdline, !f.quiet && dopt.rank == 0);  // a data-parallel job speaks through rank 0
  if (!f.resume_dir.empty()) return resume_dir(f, su, opt, dopt);

  Config& cfg = su.cfg;
  if (f.seed >= 0) cfg.set_value("train.seed", f.seed);
  if (f.runs < 1) throw Error("--runs must be at least 1");
  opt.dist = join_job(dopt, cfg, su.device, f.out, f.runs);
  const std::string out = f.out.empty() ? "runs/" + preset_stem(su.preset_path) + "-" + timestamp() : f.out;
  auto tt = load_for(cfg, f.dev.data);
  const RunSettings rs = RunSettings::from_config(cfg);
  const StepSettings& step = rs.step;
  if (dopt.rank == 0)
    std::cerr << "kiln " << KILN_VERSION << ": " << su.preset_path << " on " << su.device.str() << " ("
              << device_name(su.device) << "), " << at::get_num_threads() << " threads; " << tt.name << " from "
              << tt.source << " (" << rs.data.describe_use(tt.train.size(), tt.test.size()) << "); precision "
              << step.resolve(su.device).describe() << ", " << step.layout() << ", fused operators "
              << step.fused(su.device) << "; run directory " << out << "\n";
  // A run that fails before it has written a checkpoint leaves no directory behind (one that
  // existed before is left alone).
  struct Cleanup {
    std::string dir;
    bool armed;
    ~Cleanup() {
      if (armed && std::uncaught_exceptions() > 0 && !file_exists(dir + "/checkpoint.pt") &&
          !file_exists(dir + "/run-00/checkpoint.pt"))
        remove_tree(dir);
    }
  } cleanup{out, !dir_exists(out) && dopt.rank == 0};
  if (dopt.rank == 0) make_dirs(out);
  if (f.runs == 1) {
    opt.run_dir = out;
    auto r = train(cfg, tt, opt);
    if (r.interrupted) return 130;
    if (dopt.rank == 0) {
      std::cerr << "final test accuracy " << 100 * r.final_test_acc << "% after " << r.train_seconds
                << " s of training (n=1; use --runs N for a mean with its interval)\n";
      repeat_warnings({r});
    }
    return 0;
  }
  std::vector<RunResult> results;
  if (!run_set(cfg, tt, out, f.runs, opt, results)) return 130;
  print_summary(write_summary(out, RunSettings::from_config(cfg).description, results, su.device), su.device, out, results);
  return 0;
}

}  // namespace

Command add_train(CLI::App& app, const std::string& cmdline) {
  auto f = std::make_shared<TrainFlags>();
  auto* sub = app.add_subcommand("train", "Train a model from a preset; writes a run directory");
  sub->add_option("--preset,-p", f->preset, "preset name (kiln presets) or path to a .toml file");
  add_device_options(sub, f->dev);
  sub->add_option("--seed", f->seed, "override train.seed (run k of --runs uses seed + k)");
  sub->add_option("--runs", f->runs, "independent runs with consecutive seeds; N > 1 writes a summary")->capture_default_str();
  sub->add_option("--out", f->out, "run directory (default runs/<preset>-<time>)");
  sub->add_option("--set", f->sets, "override a key: --set optim.lr=0.001 (repeatable)")->take_all();
  sub->add_option("--resume", f->resume_dir, "continue the run (or set of runs) in this directory");
  sub->add_option("--init", f->init, "start from another run's weights (sets train.init): pre-training + fine-tuning");
  sub->add_flag("--quiet,-q", f->quiet, "no progress bar or epoch lines");
  sub->add_option("--world-size", f->world_size, "data parallelism: how many processes train together (default $WORLD_SIZE, else 1)");
  sub->add_option("--rank", f->rank, "this process's rank, 0..world-size-1 (default $RANK)");
  sub->add_option("--master", f->master, "ADDR:PORT of rank 0's rendezvous (default $MASTER_ADDR:$MASTER_PORT, else 127.0.0.1:29500)");
  sub->add_flag("--deterministic", f->deterministic, "deterministic algorithms, no cuDNN autotuning (docs/determinism.md)");
  return {sub, [f, &cmdline] { return run_train(*f, cmdline); }};
}

}  // namespace kiln::cli
