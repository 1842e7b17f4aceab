// kiln: the command line, a thin layer over the library (src/kiln).
#include <ATen/Parallel.h>
#include <CLI/CLI.hpp>

#include <array>
#include <atomic>
#include <thread>
#include <csignal>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <torch/version.h>

#include "kiln/build_info.h"
#include "kiln/git_commit.h"
#include "kiln/core/config.h"
#include "kiln/core/cpu_kernels.h"
#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/dataset.h"
#include "kiln/data/loader.h"
#include "kiln/data/split.h"
#include "kiln/dist/dist.h"
#include "kiln/report/profile.h"
#include "kiln/report/html.h"
#include "kiln/report/png.h"
#include "kiln/report/show.h"
#include "kiln/report/stats.h"
#include "kiln/lecun/zipcode.h"
#include "kiln/deploy/export.h"
#include "kiln/deploy/quantize.h"
#include "kiln/runtime/runtime.h"
#include "kiln/train/ablation.h"
#include "kiln/train/selftrain.h"
#include "kiln/train/trainer.h"
#ifdef KILN_WITH_FETCH
#include "kiln/data/fetch.h"
#endif

namespace fs = std::filesystem;
using namespace kiln;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_sigint(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C: leave at once
}

std::string joined_args(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}

std::string timestamp() {
  auto t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

TrainTest load_for(const Config& cfg, const std::string& data_opt) {
  auto root = resolve_data_root(data_opt);
  auto tt = load_dataset(cfg.s("data.dataset"), root, cfg.s("data.folder"));
  for (auto& w : tt.warnings) std::cerr << "note: " << w << "\n";
  return tt;
}

// A Summary as the JSON object summary.json and the bench JSON share.
nlohmann::ordered_json summary_json(const Summary& s) {
  return nlohmann::ordered_json{{"n", s.n},           {"mean", s.mean},          {"std", s.std},
                                {"min", s.min},       {"max", s.max},            {"ci95_low", s.ci_low},
                                {"ci95_high", s.ci_high}};
}

void write_summary(const std::string& dir, const Config& cfg, const std::vector<RunResult>& rs,
                   const torch::Device& dev) {
  std::vector<double> acc, secs;
  for (auto& r : rs) acc.push_back(r.final_test_acc), secs.push_back(r.train_seconds);
  auto sa = summarize(acc), st = summarize(secs);
  const auto& js = summary_json;
  nlohmann::ordered_json j;
  j["runs"] = rs.size();
  j["device"] = dev.str();
  j["device_name"] = device_name(dev);
  j["final_test_acc"] = js(sa);
  j["train_seconds"] = js(st);
  j["train_seconds_includes"] = "training steps of every epoch (host clock, synchronised at each epoch's end); "
                                "data loading, evaluation and checkpoints excluded";
  j["per_run_test_acc"] = acc;
  j["per_run_train_seconds"] = secs;
  atomic_write(dir + "/summary.json", j.dump(2) + "\n");
  std::string md = "# " + cfg.s("meta.description") + "\n\n| metric | value |\n|---|---|\n";
  md += "| final test accuracy (%) | " + format_summary(sa, 2, 100) + " |\n";
  md += "| training time (s) | " + format_summary(st, 1) + " |\n";
  md += "\nDevice: " + device_name(dev) + " (" + dev.str() + "). Time: training steps only; data loading, "
        "evaluation and checkpoints excluded.\n";
  atomic_write(dir + "/summary.md", md);
  write_report(dir);
  std::cerr << "\nfinal test accuracy: " << format_summary(sa, 2, 100) << " %\ntraining time:       "
            << format_summary(st, 1) << " s  (" << device_name(dev) << ")\nsummary: " << dir << "/summary.md\n";
}

// One run in opt.run_dir: skipped when it finished before (its final.json is read back),
// resumed when it has a checkpoint, else trained from `cfg`.
RunResult run_one(const Config& cfg, const TrainTest& tt, const RunOptions& opt, const std::string& what) {
  RunResult res;
  res.run_dir = opt.run_dir;
  if (file_exists(opt.run_dir + "/final.json")) {
    auto j = nlohmann::json::parse(read_file(opt.run_dir + "/final.json"));
    res.final_test_acc = j["final_test_acc"];
    res.train_seconds = j["train_seconds"];
    std::cerr << opt.run_dir << ": already complete\n";
    return res;
  }
  if (file_exists(opt.run_dir + "/checkpoint.pt")) {
    std::cerr << "--- resuming " << opt.run_dir << "\n";
    return resume(tt, opt);
  }
  std::cerr << "--- " << what << " (seed " << cfg.i("train.seed") << ")\n";
  return train(cfg, tt, opt);
}

// Runs `runs` trainings of cfg (seeds train.seed + k) in dir/run-XX, skipping runs that
// finished before and resuming interrupted ones. Returns false when interrupted.
bool run_set(const Config& cfg, const TrainTest& tt, const std::string& dir, int runs, RunOptions opt,
             std::vector<RunResult>& results) {
  make_dirs(dir);
  DirLock lock(dir);  // one writer per set directory (each run's own directory is locked by train())
  atomic_write(dir + "/config.toml", cfg.to_toml());
  atomic_write(dir + "/runs.json", nlohmann::json{{"runs", runs}}.dump() + "\n");
  for (int r = 0; r < runs; ++r) {
    char name[16];
    std::snprintf(name, sizeof name, "run-%02d", r);
    opt.run_dir = dir + "/" + name;
    Config c = cfg;
    c.set_value("train.seed", cfg.i("train.seed") + r);
    RunResult res = run_one(c, tt, opt, "run " + std::to_string(r + 1) + "/" + std::to_string(runs));
    if (res.interrupted) return false;
    results.push_back(res);
  }
  return true;
}

// Joins a data-parallel job when the flags or the launcher's environment say there is one
// (world size > 1); the backend and timeout come from the run's configuration.
std::shared_ptr<dist::Group> join_job(const dist::Options& given, const Config& cfg, const torch::Device& dev,
                                      const std::string& out, int runs) {
  if (given.world_size <= 1) return nullptr;
  if (runs != 1) throw Error("--runs N with data parallelism: start one job a run (each job's ranks train one model together)");
  if (out.empty()) throw Error("a data-parallel run needs --out (or --resume): every rank must name the same run directory");
  dist::Options o = given;
  o.backend = cfg.s("dist.backend");
  o.timeout_s = cfg.f("dist.timeout_s");
  auto g = dist::Group::connect(o, dev);
  if (o.rank == 0)
    std::cerr << "data parallel: " << o.world_size << " ranks joined at " << o.master_addr << ":" << o.master_port << " ("
              << g->backend() << ")\n";
  return g;
}

int cmd_train(const std::string& preset, const std::string& data, const std::string& device_s, int threads,
              int64_t seed, int runs, std::string out, const std::vector<std::string>& sets,
              const std::string& resume_dir, bool quiet, const std::string& cmdline, const dist::Options& dopt) {
  if (threads > 0) at::set_num_threads(threads);
  auto dev = parse_device(device_s);
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  RunOptions opt;
  opt.device = dev;
  opt.command_line = cmdline;
  opt.verbose = !quiet && dopt.rank == 0;  // a data-parallel job speaks through rank 0
  opt.stop = &g_stop;

  if (!resume_dir.empty()) {
    if (!dir_exists(resume_dir)) throw Error("--resume: no run directory '" + resume_dir + "'");
    if (!sets.empty()) {
      // A resumed run continues exactly as configured: an override that changes anything
      // (the model above all) is refused, naming the key.
      bool single = !file_exists(resume_dir + "/runs.json");
      Config stored = single ? checkpoint_config(resume_dir + "/checkpoint.pt") : Config::from_file(resume_dir + "/config.toml");
      Config wanted = stored;
      for (auto& a : sets) wanted.set_assignment(a);
      auto js = nlohmann::json::parse(stored.to_json()), jw = nlohmann::json::parse(wanted.to_json());
      for (auto& [k, v] : jw.items())
        if (js[k] != v)
          throw Error("--resume continues a run exactly as it was configured; --set would change " + k + " from " +
                      js[k].dump() + " (stored in " + resume_dir + ") to " + v.dump() +
                      (k.rfind("model.", 0) == 0 ? ", a different model" : std::string()) + ". Start a new run instead.");
    }
    if (!file_exists(resume_dir + "/runs.json")) {  // a single run
      auto stored = checkpoint_config(resume_dir + "/checkpoint.pt");
      auto tt = load_for(stored, data);
      opt.run_dir = resume_dir;
      opt.dist = join_job(dopt, stored, dev, resume_dir, 1);
      auto r = resume(tt, opt);
      if (r.interrupted) return 130;
      if (dopt.rank == 0) std::cerr << "final test accuracy " << 100 * r.final_test_acc << "%\n";
      return 0;
    }
    if (dopt.world_size > 1) throw Error("--resume of a set of runs with data parallelism: resume each run directory on its own");
    Config base = Config::from_file(resume_dir + "/config.toml");
    auto n = nlohmann::json::parse(read_file(resume_dir + "/runs.json"))["runs"].get<int>();
    auto tt = load_for(base, data);
    std::vector<RunResult> results;
    if (!run_set(base, tt, resume_dir, n, opt, results)) return 130;
    write_summary(resume_dir, base, results, dev);
    return 0;
  }

  if (preset.empty()) throw Error("kiln train needs --preset NAME (see 'kiln presets') or --resume DIR");
  auto preset_path = find_preset(preset);
  Config cfg = Config::from_file(preset_path);
  for (auto& s : sets) cfg.set_assignment(s);
  if (seed >= 0) cfg.set_value("train.seed", seed);
  if (runs < 1) throw Error("--runs must be at least 1");
  opt.dist = join_job(dopt, cfg, dev, out, runs);
  if (out.empty()) out = "runs/" + fs::path(preset_path).stem().string() + "-" + timestamp();
  auto tt = load_for(cfg, data);
  if (dopt.rank == 0) std::cerr << "kiln " << KILN_VERSION << ": " << preset_path << " on " << dev.str() << " (" << device_name(dev)
            << "), " << at::get_num_threads() << " threads; " << tt.name << " from " << tt.source << " ("
            << tt.train.size() << " train / " << tt.test.size() << " test); run directory " << out << "\n";
  // A run that fails before it has written a checkpoint leaves no directory behind (one that
  // existed before is left alone).
  const bool fresh = !dir_exists(out) && dopt.rank == 0;
  struct Cleanup {
    std::string dir;
    bool armed;
    ~Cleanup() {
      if (armed && std::uncaught_exceptions() > 0 && !file_exists(dir + "/checkpoint.pt") &&
          !file_exists(dir + "/run-00/checkpoint.pt"))
        remove_tree(dir);
    }
  } cleanup{out, fresh};
  if (dopt.rank == 0) make_dirs(out);
  if (runs == 1) {
    opt.run_dir = out;
    auto r = train(cfg, tt, opt);
    if (r.interrupted) return 130;
    if (dopt.rank == 0)
      std::cerr << "final test accuracy " << 100 * r.final_test_acc << "% after " << r.train_seconds
              << " s of training (n=1; use --runs N for a mean with its interval)\n";
    return 0;
  }
  std::vector<RunResult> results;
  if (!run_set(cfg, tt, out, runs, opt, results)) return 130;
  write_summary(out, cfg, results, dev);
  return 0;
}

int cmd_ablate(const std::string& name, const std::string& data, const std::string& device_s, int threads, int runs,
               std::string out, const std::vector<std::string>& sets, bool quiet, const std::string& cmdline) {
  if (threads > 0) at::set_num_threads(threads);
  auto dev = parse_device(device_s);
  std::signal(SIGINT, on_sigint);
  auto path = find_ablation(name);
  auto ab = Ablation::from_file(path);
  auto cfgs = ab.configs(sets);
  if (out.empty()) out = "runs/" + fs::path(path).stem().string() + "-" + timestamp();
  make_dirs(out);
  auto tt = load_for(cfgs[0], data);
  std::cerr << "kiln ablate: " << ab.description << "\n" << cfgs.size() << " rows x " << runs << " runs on "
            << device_name(dev) << "; directory " << out << " (rerun the same command with --out " << out
            << " to continue after an interruption)\n";
  RunOptions opt;
  opt.device = dev;
  opt.command_line = cmdline;
  opt.verbose = !quiet;
  opt.stop = &g_stop;
  std::vector<AblationResult> rows;
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (size_t i = 0; i < cfgs.size(); ++i) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "/row-%02zu", i);
    std::cerr << "=== row " << i + 1 << "/" << cfgs.size() << ": " << ab.rows[i].name << "\n";
    std::vector<RunResult> results;
    if (!run_set(cfgs[i], tt, out + dir, runs, opt, results)) return 130;
    AblationResult r{ab.rows[i].name, cfgs[i].f("schedule.epochs"), {}, {}};
    for (auto& x : results) r.acc.push_back(x.final_test_acc), r.seconds.push_back(x.train_seconds);
    rows.push_back(r);
    j.push_back({{"name", r.name}, {"epochs", r.epochs}, {"test_acc", r.acc}, {"train_seconds", r.seconds}});
    auto md = "# " + ab.description + "\n\n" + ablation_markdown(rows, device_name(dev) + " (" + dev.str() + ")");
    atomic_write(out + "/ablation.md", md);  // rewritten after every row
    atomic_write(out + "/ablation.json", j.dump(2) + "\n");
  }
  std::cout << ablation_markdown(rows, device_name(dev) + " (" + dev.str() + ")");
  write_report(out);
  std::cerr << "table: " << out << "/ablation.md; report: " << out << "/report.html\n";
  return 0;
}

// `kiln selftrain`: Zoph et al. 2020's experiment. For every augmentation strength: n
// supervised baselines on the labeled split (they are also the first teachers), then
// `rounds` rounds of noisy students, each taught by the previous round's run with the same
// index (the same seed). Directory: out/<strength>/baseline/run-XX, out/<strength>/round-R/run-XX;
// selftrain.json and selftrain.md are rewritten after every run, so an interrupted experiment
// continues where it stopped when the same command is run again.
int cmd_selftrain(const std::string& preset, int64_t labels, const std::vector<std::string>& strengths, int rounds,
                  int runs, int64_t split_seed, const std::string& data, const std::string& device_s, int threads,
                  std::string out, const std::vector<std::string>& sets, bool quiet, const std::string& cmdline) {
  if (threads > 0) at::set_num_threads(threads);
  auto dev = parse_device(device_s);
  std::signal(SIGINT, on_sigint);
  std::signal(SIGTERM, on_sigint);
  if (runs < 1 || rounds < 1) throw Error("kiln selftrain needs --runs >= 1 and --rounds >= 1");
  if (labels <= 0) throw Error("kiln selftrain needs --labels N > 0 (the labeled examples)");
  if (strengths.empty()) throw Error("kiln selftrain needs --aug (e.g. S1,S4)");
  auto preset_path = find_preset(preset);
  Config base = Config::from_file(preset_path);
  base.set_value("data.labeled", labels);
  if (split_seed >= 0) base.set_value("data.split_seed", split_seed);
  for (auto& a : sets) base.set_assignment(a);
  for (auto& a : strengths) {  // refuse a bad name before anything is written
    Config probe = base;
    apply_strength(probe, a);
  }
  if (out.empty()) out = "runs/selftrain-" + fs::path(preset_path).stem().string() + "-" + timestamp();
  auto tt = load_for(base, data);
  split_labeled(tt.train.head(base.i("data.train_subset")), labels, static_cast<uint64_t>(base.i("data.split_seed")));  // refused here, before anything is written
  make_dirs(out);
  DirLock lock(out);
  std::cerr << "kiln selftrain: " << preset_path << ", " << labels << " labels, strengths";
  for (auto& a : strengths) std::cerr << " " << a;
  std::cerr << ", " << rounds << " round(s), " << runs << " run(s) each, on " << device_name(dev) << "; directory " << out
            << " (run the same command again to continue after an interruption)\n";
  RunOptions opt;
  opt.device = dev;
  opt.command_line = cmdline;
  opt.verbose = !quiet;
  opt.stop = &g_stop;
  const std::string devname = device_name(dev) + " (" + dev.str() + ")";

  nlohmann::ordered_json doc;
  doc["preset"] = preset_path;
  doc["labels"] = labels;
  doc["split_seed"] = base.i("data.split_seed");
  doc["runs"] = runs;
  doc["rounds"] = rounds;
  doc["device"] = devname;
  doc["command"] = cmdline;
  doc["strengths"] = nlohmann::ordered_json::array();
  auto write_tables = [&] {
    std::string md = "# Self-training: " + std::to_string(labels) + " labels (" + base.s("data.dataset") + ")\n\n" +
                     "Supervised baseline (the round-1 teacher) against the noisy student of the last round, test "
                     "accuracy in %: mean ± std (n, 95% CI); the gain with Welch's two-sided p-value. Device: " + devname +
                     ".\n\n| augmentation | supervised | student | gain | p |\n|---|---|---|---|---|\n";
    std::string rounds_md = "\n## Per round: the teacher's pseudo-labels and the student\n\n| augmentation | round | "
                            "pseudo-label accuracy | coverage | student accuracy |\n|---|---|---|---|---|\n";
    for (auto& st : doc["strengths"]) {
      std::vector<double> b = st["baseline"]["test_acc"];
      if (b.empty()) continue;
      auto sb = summarize(b);
      std::string row = "| " + st["name"].get<std::string>() + " | " + format_summary(sb, 2, 100) + " | ";
      if (!st["rounds"].empty() && !st["rounds"].back()["test_acc"].empty()) {
        std::vector<double> s = st["rounds"].back()["test_acc"];
        auto ss = summarize(s);
        char gain[64];
        std::snprintf(gain, sizeof gain, "%+.2f", 100 * (ss.mean - sb.mean));
        char p[32];
        if (s.size() >= 2 && b.size() >= 2) std::snprintf(p, sizeof p, "%.3g", welch_p_value(s, b));
        else std::snprintf(p, sizeof p, "n/a (n < 2)");
        row += format_summary(ss, 2, 100) + " | " + gain + " | " + p + " |";
      } else {
        row += "(not yet) | | |";
      }
      md += row + "\n";
      int r = 1;
      for (auto& rd : st["rounds"]) {
        std::vector<double> pa = rd["pseudo_accuracy"], pc = rd["pseudo_coverage"], sa = rd["test_acc"];
        if (sa.empty()) continue;
        rounds_md += "| " + st["name"].get<std::string>() + " | " + std::to_string(r++) + " | " +
                     format_summary(summarize(pa), 2, 100) + " | " + format_summary(summarize(pc), 1, 100) + " | " +
                     format_summary(summarize(sa), 2, 100) + " |\n";
      }
    }
    md += rounds_md;
    md += "\nStrengths (kiln/train/selftrain.h): S1 flip + translate; S2 S1 + AutoAugment (CIFAR-10 policy); S3 S2 + "
          "scale jitter [0.75, 1.33]; S4 RandAugment(2, 15/30) + scale jitter + flip + translate. Pseudo-label accuracy "
          "is measured against the unlabeled examples' true labels, which training never reads.\n";
    atomic_write(out + "/selftrain.md", md);
    atomic_write(out + "/selftrain.json", doc.dump(2) + "\n");
    return md;
  };
  for (const auto& strength : strengths) {
    Config cfg = base;
    apply_strength(cfg, strength);
    const std::string dir = out + "/" + strength;
    make_dirs(dir);
    atomic_write(dir + "/config.toml", cfg.to_toml());
    nlohmann::ordered_json st;
    st["name"] = strength;
    st["baseline"]["test_acc"] = nlohmann::ordered_json::array();
    st["rounds"] = nlohmann::ordered_json::array();
    doc["strengths"].push_back(st);
    auto& cur = doc["strengths"].back();
    std::cerr << "=== " << strength << ": supervised baselines\n";
    std::vector<std::string> teachers;
    for (int k = 0; k < runs; ++k) {
      char name[16];
      std::snprintf(name, sizeof name, "/run-%02d", k);
      opt.run_dir = dir + "/baseline" + name;
      Config c = cfg;
      c.set_value("train.seed", cfg.i("train.seed") + k);
      auto r = run_one(c, tt, opt, strength + " baseline " + std::to_string(k + 1) + "/" + std::to_string(runs));
      if (r.interrupted) return 130;
      cur["baseline"]["test_acc"].push_back(r.final_test_acc);
      teachers.push_back(opt.run_dir + "/checkpoint.pt");
      write_tables();
    }
    for (int round = 1; round <= rounds; ++round) {
      std::cerr << "=== " << strength << ": round " << round << " students\n";
      nlohmann::ordered_json rd;
      rd["test_acc"] = rd["pseudo_accuracy"] = rd["pseudo_coverage"] = nlohmann::ordered_json::array();
      cur["rounds"].push_back(rd);
      auto& cr = cur["rounds"].back();
      std::vector<std::string> next;
      for (int k = 0; k < runs; ++k) {
        char name[32];
        std::snprintf(name, sizeof name, "/round-%d/run-%02d", round, k);
        opt.run_dir = dir + name;
        Config c = student_config(cfg, teachers[static_cast<size_t>(k)]);
        c.set_value("train.seed", cfg.i("train.seed") + k);
        auto r = run_one(c, tt, opt, strength + " round " + std::to_string(round) + " student " + std::to_string(k + 1) + "/" + std::to_string(runs));
        if (r.interrupted) return 130;
        auto fin = nlohmann::json::parse(read_file(opt.run_dir + "/final.json"));
        cr["test_acc"].push_back(r.final_test_acc);
        cr["pseudo_accuracy"].push_back(fin["pseudo_labels"]["accuracy"].get<double>());
        cr["pseudo_coverage"].push_back(fin["pseudo_labels"]["coverage"].get<double>());
        next.push_back(opt.run_dir + "/checkpoint.pt");
        write_tables();
      }
      teachers = next;
    }
  }
  auto md = write_tables();
  std::cout << md;
  write_report(out);
  std::cerr << "table: " << out << "/selftrain.md; report: " << out << "/report.html\n";
  return 0;
}

// Train error, test error, test misses and seconds of the last pass of every seed, summarised.
std::array<Summary, 4> final_pass_stats(const std::vector<std::vector<kiln::lecun::PassMetrics>>& all) {
  std::vector<double> tr, te, miss, secs;
  for (auto& a : all) {
    tr.push_back(a.back().train_error);
    te.push_back(a.back().test_error);
    miss.push_back(a.back().test_misses);
    secs.push_back(a.back().seconds);
  }
  return {summarize(tr), summarize(te), summarize(miss), summarize(secs)};
}

int cmd_lecun1989(bool modern, int seeds, const std::string& data, int threads, std::string out,
                  const std::string& cmdline) {
  using namespace kiln::lecun;
  auto root = resolve_data_root(data);
  auto mnist = load_dataset("mnist", root);
  for (auto& w : mnist.warnings) std::cerr << "note: " << w << "\n";
  auto z = make_zipcode_data(mnist);
  std::cerr << "data: " << z.note << "\n";
  if (out.empty()) out = std::string("runs/lecun1989") + (modern ? "-modern-" : "-") + timestamp();
  make_dirs(out);
  std::string md;
  auto pct = [](double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f%%", 100 * x);
    return std::string(b);
  };
  if (!modern) {
    auto r = classic_recipe();
    std::vector<std::vector<PassMetrics>> all;
    for (int s = 0; s < seeds; ++s) {
      std::cerr << "--- seed " << s << ": " << r.name << "\n";
      all.push_back(train_zipcode(z, r, static_cast<uint64_t>(s), [](const PassMetrics& m) {
        std::fprintf(stderr, "pass %2d  loss %.6f  train error %.2f%% (%d)  test error %.2f%% (%d misses)  %.2fs\n",
                     m.pass, m.train_loss, 100 * m.train_error, m.train_misses, 100 * m.test_error, m.test_misses,
                     m.seconds);
      }));
    }
    auto [st, se, sm, ss] = final_pass_stats(all);
    char buf[512];
    md = "# LeCun et al. 1989 as Karpathy's 2022 reproduction ran it (23 passes, batch 1, SGD 0.03, MSE against "
         "+-1, plain tanh)\n\nNot the paper's own method, which used a scaled tanh 1.7159 tanh(2x/3), targets inside "
         "the tanh's range and a diagonal-Hessian Newton step (docs/lecun1989.md).\n\n"
         "| | train error | test error | test misses (of 2007) |\n|---|---|---|---|\n"
         "| paper (1989) | 0.14% | 5.0% | 102 |\n| reference reproduction (PyTorch, 2022) | 0.62% | 4.09% | 82 |\n";
    std::snprintf(buf, sizeof buf, "| kiln (n=%lld seeds) | %s ± %.2f | %s ± %.2f | %.1f ± %.1f |\n", (long long)se.n,
                  pct(st.mean).c_str(), 100 * st.std, pct(se.mean).c_str(), 100 * se.std, sm.mean, sm.std);
    md += buf;
    std::snprintf(buf, sizeof buf,
                  "\nkiln's digits: %s. The reference drew its digits at random from all of MNIST; here they may come "
                  "from a subset (see the data line), so the numbers differ somewhat. Wall time per run (23 passes, "
                  "both splits evaluated after every pass): %.2f s mean (n=%lld, %s).\n",
                  z.note.c_str(), ss.mean, (long long)ss.n, device_name(torch::kCPU).c_str());
    md += buf;
  } else {
    auto recipes = modern_recipes();
    const int nt = std::max(1, threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency()));
    md = "# LeCun 1989, modernised step by step (each row adds to the one above)\n\n"
         "| step | passes | train error | test error (mean ± std) | 95% CI | test misses | n | s/run |\n"
         "|---|---|---|---|---|---|---|---|\n";
    for (auto& r : recipes) {
      std::vector<std::vector<PassMetrics>> all(seeds);
      std::vector<std::thread> pool;
      std::atomic<int> next{0};
      for (int t = 0; t < std::min(nt, seeds); ++t)
        pool.emplace_back([&] {
          for (int s; (s = next++) < seeds;) all[s] = train_zipcode(z, r, static_cast<uint64_t>(s));
        });
      for (auto& th : pool) th.join();
      auto [st, se, sm, ss] = final_pass_stats(all);
      char buf[512];
      std::snprintf(buf, sizeof buf, "| %s | %d | %.2f%% | %.2f%% ± %.2f | %.2f–%.2f%% | %.1f | %lld | %.1f |\n",
                    r.name.c_str(), r.passes, 100 * st.mean, 100 * se.mean, 100 * se.std, 100 * se.ci_low,
                    100 * se.ci_high, sm.mean, (long long)se.n, ss.mean);
      md += buf;
      std::cerr << buf;
    }
    md += "\nReference reproduction (PyTorch, 2022): 4.09% (82 misses) for the baseline, 1.59% (32 misses) at the "
          "last step. kiln's digits: " + z.note + ". Time per run includes the per-pass evaluation of both splits; "
          "seeds ran " + std::to_string(std::min(nt, seeds)) + " at a time on " + device_name(torch::kCPU) + ".\n";
  }
  atomic_write(out + "/results.md", md);
  write_report(out);
  std::cout << md;
  std::cerr << "table: " << out << "/results.md\n";
  (void)cmdline;
  return 0;
}

int cmd_overfit(const std::string& preset, int64_t examples, int64_t max_epochs, double lr, double target,
                const std::string& data, const std::string& device_s, int threads, const std::vector<std::string>& sets) {
  if (threads > 0) at::set_num_threads(threads);
  auto dev = parse_device(device_s);
  Config cfg = Config::from_file(find_preset(preset));
  for (auto& s : sets) cfg.set_assignment(s);
  cfg = overfit_config(cfg, examples, max_epochs, lr);
  auto tt = load_for(cfg, data);
  RunOptions opt;
  opt.device = dev;
  opt.verbose = false;
  std::cerr << "overfitting " << examples << " example(s) of " << tt.name << " with " << preset
            << " (no augmentation, label smoothing, weight decay, ghost BN or EMA; lr " << lr << ", sum loss)\n"
            << "epoch  loss (nats/example)  train accuracy\n";
  int64_t shown = 0;
  auto r = overfit(cfg, tt, target, opt);
  for (auto& m : r.curve)
    if (++shown <= 10 || m.epoch % 10 == 0 || &m == &r.curve.back())
      std::fprintf(stderr, "%5lld  %19.6f  %13.1f%%\n", (long long)m.epoch, m.train_loss, 100 * m.train_acc);
  if (r.reached) {
    std::printf("overfit: reached 100%% training accuracy and loss %.4g < %.4g in %zu steps\n", r.curve.back().train_loss,
                target, r.curve.size());
    return 0;
  }
  std::printf("overfit: FAILED to memorise %lld example(s) in %lld steps (last loss %.4g, accuracy %.1f%%): "
              "a bug in the model or the loop, or try --lr\n",
              (long long)examples, (long long)max_epochs, r.curve.empty() ? NAN : r.curve.back().train_loss,
              r.curve.empty() ? 0.0 : 100 * r.curve.back().train_acc);
  return 1;
}

int cmd_lr_find(const std::string& preset, double lo, double hi, int64_t steps, const std::string& data,
                const std::string& device_s, int threads, std::string out, const std::vector<std::string>& sets) {
  if (threads > 0) at::set_num_threads(threads);
  auto dev = parse_device(device_s);
  Config cfg = Config::from_file(find_preset(preset));
  for (auto& s : sets) cfg.set_assignment(s);
  auto tt = load_for(cfg, data);
  if (out.empty()) out = "runs/lr-find-" + fs::path(find_preset(preset)).stem().string() + "-" + timestamp();
  make_dirs(out);
  std::cerr << "lr-find: " << steps << " steps of " << preset << ", LR " << lo << " -> " << hi
            << " (optim.lr units, loss_reduction = " << cfg.s("optim.loss_reduction") << ")\n";
  auto r = lr_find(cfg, tt, dev, lo, hi, steps);
  std::string csv = "step,lr,loss,smoothed\n";
  for (size_t i = 0; i < r.lr.size(); ++i) {
    char line[128];
    std::snprintf(line, sizeof line, "%zu,%.9g,%.9g,%.9g\n", i, r.lr[i], r.loss[i], r.smoothed[i]);
    csv += line;
  }
  atomic_write(out + "/lr_find.csv", csv);
  // The raw losses are clipped to the smoothed curve's range so that one spike does not flatten the plot.
  double top = *std::max_element(r.smoothed.begin(), r.smoothed.end()) * 1.1;
  std::vector<double> raw = r.loss;
  for (auto& v : raw) v = std::min(v, top);
  plot_xy(r.lr, {raw, r.smoothed}, {Rgb{190, 190, 230}, Rgb{30, 60, 200}}, true, r.steepest_lr)
      .save(out + "/lr_find.png");
  nlohmann::ordered_json lj{{"suggested_lr", r.steepest_lr}, {"min_loss_lr", r.min_loss_lr}, {"preset_lr", cfg.f("optim.lr")},
                            {"steps", r.lr.size()}, {"preset", preset}};
  atomic_write(out + "/lr_find.json", lj.dump(2) + "\n");
  atomic_write(out + "/config.toml", cfg.to_toml());
  write_report(out);
  std::printf("suggested optim.lr = %.3g (steepest descent of the smoothed loss); loss lowest at %.3g; preset has %.3g\n"
              "plot: %s/lr_find.png (loss against log LR, red line at the suggestion), data: %s/lr_find.csv, "
              "report: %s/report.html\n",
              r.steepest_lr, r.min_loss_lr, cfg.f("optim.lr"), out.c_str(), out.c_str(), out.c_str());
  return 0;
}

int cmd_show(const std::string& what, const std::string& preset, const std::string& ckpt, const std::string& data,
             std::string out, int count, int64_t epoch, const std::vector<std::string>& sets) {
  const torch::Device cpu(torch::kCPU);
  Config cfg;
  LoadedCheckpoint lc;
  if (!ckpt.empty()) {
    lc = load_checkpoint(ckpt, cpu);
    cfg = lc.cfg;
  } else if (!preset.empty()) {
    cfg = Config::from_file(find_preset(preset));
  } else {
    throw Error("kiln show needs --preset or --checkpoint");
  }
  for (auto& s : sets) cfg.set_assignment(s);
  auto tt = load_for(cfg, data);
  if (out.empty()) out = ckpt.empty() ? "runs/show-" + fs::path(find_preset(preset)).stem().string()
                                      : fs::path(ckpt).parent_path().string();
  if (out.empty()) out = ".";
  make_dirs(out);
  const auto& classes = tt.train.classes;
  auto name = [&](int64_t k) { return k < static_cast<int64_t>(classes.size()) ? classes[k] : std::to_string(k); };
  const int scale = tt.train.images.size(2) <= 32 ? 3 : 1;
  std::string file = out + "/" + what + ".png";
  if (what == "aug") {
    auto train = tt.train.head(cfg.i("data.train_subset"));
    std::vector<double> mean, sd;
    if (cfg.b("data.normalize")) std::tie(mean, sd) = DeviceLoader::channel_stats(train);
    DeviceLoader L(train, cpu, torch::kFloat32, mean, sd);
    AugmentOptions aug = AugmentOptions::from_config(cfg);
    auto b = L.batch(L.plan(static_cast<uint64_t>(cfg.i("train.seed")), 0, true, aug), 0, count, aug);
    std::vector<std::string> caps;
    for (int64_t i = 0; i < b.y.size(0); ++i) caps.push_back(name(b.y[i].item<int64_t>()));
    image_grid(to_pixels(b.x, mean, sd), caps, {}, 8, scale).save(file);
  } else if (what == "batch") {
    // Batch 0 of epoch --epoch exactly as the trainer draws it: each example before (its
    // label) and after augmentation ("aug"), side by side.
    auto train = tt.train.head(cfg.i("data.train_subset"));
    std::vector<double> mean, sd;
    if (cfg.b("data.normalize")) std::tie(mean, sd) = DeviceLoader::channel_stats(train);
    DeviceLoader L(train, cpu, torch::kFloat32, mean, sd);
    AugmentOptions aug = AugmentOptions::from_config(cfg);
    auto plan = L.plan(static_cast<uint64_t>(cfg.i("train.seed")), epoch, true, aug);
    const int64_t n = std::min<int64_t>(count, L.size());
    auto b = L.batch(plan, 0, n, aug);
    auto originals = train.images.index_select(0, plan.order.slice(0, 0, n).cpu());
    auto pairs = torch::stack({originals, to_pixels(b.x, mean, sd)}, 1).flatten(0, 1);
    std::vector<std::string> caps;
    for (int64_t i = 0; i < n; ++i) {
      caps.push_back(name(b.y[i].item<int64_t>()));
      caps.push_back("aug");
    }
    image_grid(pairs, caps, {}, 8, scale).save(file);
    std::printf("batch 0 of epoch %lld (seed %lld): each original, then augmented (aug)\n", (long long)epoch,
                (long long)cfg.i("train.seed"));
  } else if (what == "predictions" || what == "confusion") {
    if (!lc.model) throw Error("kiln show " + what + " needs --checkpoint RUN/checkpoint.pt");
    auto test = tt.test.head(cfg.i("data.test_subset"));
    DeviceLoader L(test, cpu, torch::kFloat32, lc.mean, lc.std);
    set_precision(*lc.model, torch::kFloat32);
    auto ev = evaluate(*lc.model, L, cfg.i("data.test_batch_size"), cfg.s("eval.tta"), cfg.f("eval.tta_translate_weight"));
    if (what == "confusion") {
      auto m = confusion_matrix(ev.predictions, test.labels, static_cast<int64_t>(classes.size()));
      confusion_image(m, classes).save(file);
      std::string csv;
      for (int64_t i = 0; i < m.size(0); ++i) {
        for (int64_t j = 0; j < m.size(1); ++j) csv += (j ? "," : "") + std::to_string(m[i][j].item<int64_t>());
        csv += "\n";
      }
      atomic_write(out + "/confusion.csv", csv);
    } else {
      predictions_grid(test.images, test.labels, ev.predictions, classes, count, scale).save(file);
      auto wrong = ev.predictions.ne(test.labels).sum().item<int64_t>();
      std::printf("%lld of %lld test images misclassified; mistakes first (red: true>predicted)\n",
                  (long long)wrong, (long long)test.size());
    }
  } else if (what == "filters" || what == "whitening") {
    auto model = lc.model ? lc.model : make_model(cfg, tt.train.images.size(1), static_cast<int64_t>(classes.size()));
    auto net = std::dynamic_pointer_cast<ResNet9>(model);
    if (!net) throw Error("kiln show " + what + ": only for ResNet-9 models");
    if (what == "whitening") {
      if (!net->whiten) throw Error("model.whiten is \"none\" in this configuration; try --set model.whiten=3x3");
      if (!lc.model) {  // fit on the training data as training would
        auto train = tt.train.head(cfg.i("data.train_subset"));
        auto [mean, sd] = DeviceLoader::channel_stats(train);
        DeviceLoader L(train, cpu, torch::kFloat32, mean, sd);
        net->fit_to_data(L.data().slice(0, 0, std::min<int64_t>(L.size(), cfg.i("model.whiten_samples"))));
      }
      auto lambda = net->whiten->eigenvalues.to(torch::kFloat64);
      const int64_t d = lambda.size(0);
      // Undo the 1/sqrt(lambda + eps) scaling: the eigenvectors themselves, largest first.
      auto v = net->whiten->weight.slice(0, 0, d).to(torch::kFloat64) *
               (lambda + net->whiten->eps).sqrt().view({-1, 1, 1, 1});
      std::vector<std::string> caps;
      for (int64_t i = 0; i < d; ++i) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2g", lambda[i].item<double>());
        caps.push_back(b);
      }
      image_grid(filters_to_pixels(v), caps, {}, 9, 12).save(file);
    } else {
      auto w = net->whiten ? net->whiten->weight : net->prep->conv->weight;
      image_grid(filters_to_pixels(w.detach()), {}, {}, 16, 8).save(file);
      if (!lc.model) std::printf("note: an untrained model (no --checkpoint): these are initial filters\n");
    }
  } else {
    throw Error("kiln show: '" + what + "' is not one of aug | batch | predictions | confusion | filters | whitening");
  }
  std::printf("wrote %s\n", file.c_str());
  return 0;
}

int cmd_bench(const std::string& preset, int runs, int warmup, const std::string& data, const std::string& device_s,
              int threads, std::string out, const std::vector<std::string>& sets, const std::string& cmdline,
              const std::string& profile) {
  if (threads > 0) at::set_num_threads(threads);
  auto dev = parse_device(device_s);
  if (preset.empty()) throw Error("kiln bench needs --preset NAME");
  if (runs < 1) throw Error("--runs must be at least 1");
  auto preset_path = find_preset(preset);
  Config cfg = Config::from_file(preset_path);
  for (auto& s : sets) cfg.set_assignment(s);
  auto tt = load_for(cfg, data);
  const auto stem = fs::path(preset_path).stem().string();
  if (out.empty()) out = "runs/bench-" + stem + "-" + timestamp() + ".json";
  const auto dtype = resolve_precision(cfg.s("train.precision"), dev);
  std::cerr << "kiln bench: " << stem << " on " << device_name(dev) << " (" << dev.str() << ", " << c10::toString(dtype)
            << "), " << warmup << " warm-up run(s) then " << runs << " timed; clock: whitening fit + training + final "
            << cfg.s("eval.tta") << " evaluation, each bracketed by device synchronisation; excluded: data loading, "
               "model construction, per-epoch evaluation (off), the warm-up runs\n";
  const int64_t seed = cfg.i("train.seed");
  for (int w = 0; w < warmup; ++w) {
    Config c = cfg;
    c.set_value("train.seed", seed + 100000 + w);
    auto b = bench_run(c, tt, dev);
    std::fprintf(stderr, "warm-up %d: %.2f%% in %.3f s (not counted)\n", w + 1, 100 * b.test_acc, b.seconds);
  }
  std::cerr << "measuring the device's matrix-product peak...\n";
  const double peak = measure_matmul_tflops(dev, dtype);
  std::vector<double> acc, secs, whiten, train_s, eval_s, tflops;
  double flops = 0;
  const auto& js = summary_json;
  Summary sa, st, sf;
  // Written after every run, so that a run cut short by a time budget keeps what it measured.
  auto write_json = [&](bool complete) {
    sa = summarize(acc), st = summarize(secs), sf = summarize(tflops);
    nlohmann::ordered_json j;
    j["preset"] = stem;
    j["description"] = cfg.s("meta.description");
    j["device"] = dev.str();
    j["device_name"] = device_name(dev);
    j["precision"] = c10::toString(dtype);
    j["runs"] = static_cast<int>(acc.size());
    j["runs_requested"] = runs;
    j["complete"] = complete;
    j["warmup_runs"] = warmup;
    j["clock_includes"] = "whitening fit + training steps of every epoch + the final evaluation with eval.tta, each "
                          "interval bracketed by device synchronisation";
    j["clock_excludes"] = "data loading, model construction, per-epoch evaluation (switched off), warm-up runs";
    j["test_acc"] = js(sa);
    j["seconds"] = js(st);
    j["flops_per_run"] = flops;
    j["tflops"] = js(sf);
    j["matmul_peak_tflops"] = peak;
    j["fraction_of_peak"] = peak > 0 ? sf.mean / peak : 0;
    j["per_run"] = {{"test_acc", acc}, {"seconds", secs}, {"whiten_seconds", whiten}, {"train_seconds", train_s},
                    {"eval_seconds", eval_s}};
    j["provenance"] = nlohmann::json::parse(provenance_json(dev, cmdline));
    j["config"] = nlohmann::json::parse(cfg.to_json());
    auto parent = fs::path(out).parent_path().string();
    make_dirs(parent.empty() ? "." : parent);
    atomic_write(out, j.dump(2) + "\n");
  };
  for (int r = 0; r < runs; ++r) {
    Config c = cfg;
    c.set_value("train.seed", seed + r);
    auto b = bench_run(c, tt, dev);
    acc.push_back(b.test_acc);
    secs.push_back(b.seconds);
    whiten.push_back(b.whiten_seconds);
    train_s.push_back(b.train_seconds);
    eval_s.push_back(b.eval_seconds);
    flops = b.flops;
    tflops.push_back(b.flops / b.seconds / 1e12);
    std::fprintf(stderr, "run %d/%d (seed %lld): %.2f%%  %.3f s  (whiten %.3f, train %.3f, eval %.3f)\n", r + 1, runs,
                 (long long)(seed + r), 100 * b.test_acc, b.seconds, b.whiten_seconds, b.train_seconds, b.eval_seconds);
    write_json(r + 1 == runs);
  }
  if (!profile.empty()) {
    // One more run (another seed, outside the statistics) under LibTorch's profiler: the
    // kernels by device time (CUDA) and the operators by host self time.
    Config c = cfg;
    c.set_value("train.seed", seed + runs);
    std::cerr << "profiling one more run (not counted)...\n";
    Profiler prof(dev.is_cuda());
    auto b = bench_run(c, tt, dev);
    auto table = prof.stop();
    auto parent = fs::path(profile).parent_path().string();
    make_dirs(parent.empty() ? "." : parent);
    atomic_write(profile, table.csv());
    std::fprintf(stderr, "profiled run: %.2f%% in %.3f s (the profiler's overhead included); device %.1f ms, host %.1f ms\n",
                 100 * b.test_acc, b.seconds, table.device_ms, table.host_ms);
    std::map<std::string, int> shown;
    for (auto& row : table.rows)
      if (++shown[row.kind] <= 8)
        std::fprintf(stderr, "  %-6s %5.1f%%  %9.1f ms  %7lld x  %s\n", row.kind.c_str(), 100 * row.share, row.ms,
                     (long long)row.calls, row.name.substr(0, 90).c_str());
    std::fprintf(stderr, "profile: %s\n", profile.c_str());
  }
  std::printf("%s on %s (%s), n=%d:\n  accuracy   %s %%\n  time       %s s\n  FLOPs/run  %.3g  ->  %s TFLOP/s, "
              "%.1f%% of the measured %.3g TFLOP/s matrix-product peak\n  clock: whitening fit + training + final "
              "%s evaluation; data loading, model construction and warm-up excluded\n  json: %s\n",
              stem.c_str(), device_name(dev).c_str(), dev.str().c_str(), runs, format_summary(sa, 2, 100).c_str(),
              format_summary(st, 3).c_str(), flops, format_summary(sf, 3).c_str(), peak > 0 ? 100 * sf.mean / peak : 0.0,
              peak, cfg.s("eval.tta").c_str(), out.c_str());
  return 0;
}

// A checkpoint with its run's test set on the device, evaluated as the run evaluated it
// (batch size, TTA): what `kiln eval` and `kiln quantize` share.
struct CheckpointOnTestSet {
  LoadedCheckpoint lc;
  std::unique_ptr<DeviceLoader> loader;
  CheckpointOnTestSet(const std::string& ckpt, const std::string& data, const std::string& device_s, int threads) {
    if (threads > 0) at::set_num_threads(threads);
    auto dev = parse_device(device_s);
    lc = load_checkpoint(ckpt, dev);
    auto tt = load_for(lc.cfg, data);
    loader = std::make_unique<DeviceLoader>(tt.test.head(lc.cfg.i("data.test_subset")), dev,
                                            resolve_precision(lc.cfg.s("train.precision"), dev), lc.mean, lc.std);
  }
  EvalResult evaluate_now() {
    return evaluate(*lc.model, *loader, lc.cfg.i("data.test_batch_size"), lc.cfg.s("eval.tta"),
                    lc.cfg.f("eval.tta_translate_weight"));
  }
};

int cmd_eval(const std::string& ckpt, const std::string& data, const std::string& device_s, int threads) {
  CheckpointOnTestSet c(ckpt, data, device_s, threads);
  auto& lc = c.lc;
  auto r = c.evaluate_now();
  std::printf("test accuracy %.2f%% (%lld images, loss %.4f) — %s after %lld epochs\n", 100 * r.acc,
              (long long)r.n, r.loss, ckpt.c_str(), (long long)lc.epochs_done);
  return 0;
}

// `kiln quantize`: a checkpoint's test accuracy in fp32, then with its conv and linear weights
// quantised to int8 (per output channel, symmetric); writes quantize.json beside the checkpoint.
int cmd_quantize(const std::string& ckpt, const std::string& data, const std::string& device_s, int threads) {
  CheckpointOnTestSet c(ckpt, data, device_s, threads);
  auto& lc = c.lc;
  auto before = c.evaluate_now();
  auto q = quantize_weights_inplace(*lc.model);
  auto after = c.evaluate_now();
  const int64_t changed = before.predictions.ne(after.predictions).sum().item<int64_t>();
  std::printf("%s (%lld test images, eval.tta = %s)\n", ckpt.c_str(), (long long)before.n, lc.cfg.s("eval.tta").c_str());
  std::printf("| weights | test accuracy | bytes |\n|---|---|---|\n");
  std::printf("| fp32 | %.2f%% | %lld |\n", 100 * before.acc, (long long)q.fp32_bytes);
  std::printf("| int8 (per-channel, symmetric; %lld tensors) | %.2f%% | %lld |\n", (long long)q.tensors, 100 * after.acc,
              (long long)q.int8_bytes);
  std::printf("difference %+.2f points; %lld of %lld predictions changed; largest weight error %.3g\n",
              100 * (after.acc - before.acc), (long long)changed, (long long)before.n, q.max_abs_error);
  nlohmann::ordered_json j{{"checkpoint", ckpt},          {"test_images", before.n},
                           {"fp32_test_acc", before.acc}, {"int8_test_acc", after.acc},
                           {"fp32_bytes", q.fp32_bytes},  {"int8_bytes", q.int8_bytes},
                           {"quantized_tensors", q.tensors}, {"predictions_changed", changed},
                           {"max_abs_weight_error", q.max_abs_error}};
  auto dir = fs::path(ckpt).parent_path().string();
  atomic_write((dir.empty() ? std::string(".") : dir) + "/quantize.json", j.dump(2) + "\n");
  return 0;
}

// `kiln export`: a checkpoint's weights as safetensors (fp32, or int8 conv/linear weights with
// per-channel scales), with what rebuilding the model needs in the metadata (kiln/deploy/export.h).
int cmd_export(const std::string& ckpt, const std::string& format, bool int8, std::string out, const std::string& data) {
  if (format != "safetensors" && format != "kiln") throw Error("--format '" + format + "' is not one of: kiln | safetensors");
  auto lc = load_checkpoint(ckpt, torch::kCPU);
  const auto& model_name = lc.cfg.s("model.name");
  if (format == "kiln" && model_name != "separable" && model_name != "dense")
    throw Error("--format kiln is for the models kiln's runtime runs (model.name = separable | dense); this checkpoint's is '" +
                model_name + "': use --format safetensors");
  auto tt = load_for(lc.cfg, data);  // the input shape and the class names
  ExportInfo info{{tt.train.images.size(1), tt.train.images.size(2), tt.train.images.size(3)}, tt.train.classes};
  const std::string ext = format == "kiln" ? ".kiln" : ".safetensors";
  if (out.empty()) out = (fs::path(ckpt).parent_path() / ((int8 ? "model-int8" : "model") + ext)).string();
  auto bytes = format == "kiln" ? export_kiln(lc, info, out, int8) : export_safetensors(lc, info, out, int8);
  std::printf("wrote %s: %lld bytes (%s weights, %lld parameters)\n", out.c_str(), (long long)bytes, int8 ? "int8" : "fp32",
              (long long)count_parameters(*lc.model));
  return 0;
}

// `kiln web`: a static site (docs/web.md) from the page and its WebAssembly (built by CMake
// when emscripten is installed), a .kiln model and the 1989 digits drawn from MNIST.
int cmd_web(const std::string& model, const std::string& data, const std::string& out, std::string web_dir) {
  const std::vector<std::string> page = {"index.html", "kiln_api.js", "kiln.js"};
  auto has_page = [&](const std::string& d) {
    for (auto& f : page)
      if (!fs::exists(fs::path(d) / f)) return false;
    return true;
  };
  if (web_dir.empty()) {
    for (const char* d : {KILN_BUILD_WEB_DIR, KILN_INSTALL_WEB_DIR})
      if (has_page(d)) {
        web_dir = d;
        break;
      }
    if (web_dir.empty())
      throw Error(std::string("the page's WebAssembly (kiln.js) was not built (looked in ") + KILN_BUILD_WEB_DIR + " and " +
                  KILN_INSTALL_WEB_DIR + "): install emscripten and node-acorn (apt-get install emscripten node-acorn), "
                  "then reconfigure and rebuild kiln");
  } else if (!has_page(web_dir)) {
    throw Error("--web-dir '" + web_dir + "' does not hold index.html, kiln_api.js and kiln.js");
  }
  nlohmann::json site{{"kiln_version", KILN_VERSION}, {"model", nullptr}, {"digits", nullptr}};
  std::string model_line = "no model (--model M.kiln adds one; the page can also open one)";
  Bytes model_bytes;
  if (!model.empty()) {
    model_bytes = read_file(model);
    try {
      auto m = kiln::rt::parse(model_bytes, model);  // refuse what the page could not run
      site["model"] = "model.kiln";
      site["model_source"] = fs::path(model).filename().string();
      model_line = model + " (" + m.kind + ", " + (m.int8 ? "int8" : "fp32") + ", " + std::to_string(model_bytes.size()) + " bytes)";
    } catch (const std::runtime_error& e) {
      throw Error(std::string("--model: ") + e.what());
    }
  }
  Bytes digits;
  std::string digits_line;
  try {
    auto mnist = load_dataset("mnist", resolve_data_root(data));
    auto z = kiln::lecun::make_zipcode_data(mnist);
    digits = kiln::lecun::encode_digits(z.train, z.test);
    site["digits"] = "digits.bin";
    site["digits_note"] = z.note + "; 8 bits a pixel";
    digits_line = z.note;
  } catch (const Error& e) {
    std::cerr << "kiln web: note: no 1989 digits, so the page cannot train the 1989 network (" << e.what() << ")\n";
    digits_line = "none (MNIST not found)";
  }
  make_dirs(out);
  for (auto& f : page) {
    auto b = read_file((fs::path(web_dir) / f).string());
    atomic_write((fs::path(out) / f).string(), b.data(), b.size());
  }
  if (!model_bytes.empty()) atomic_write((fs::path(out) / "model.kiln").string(), model_bytes.data(), model_bytes.size());
  if (!digits.empty()) atomic_write((fs::path(out) / "digits.bin").string(), digits.data(), digits.size());
  atomic_write((fs::path(out) / "site.json").string(), site.dump(2) + "\n");
  std::printf("wrote the page to %s\n  model: %s\n  1989 digits: %s\n  page: %s (kiln.js %lld bytes)\n"
              "serve it (browsers do not fetch from file://), e.g.: python3 -m http.server -d %s 8000, then open http://localhost:8000/\n",
              out.c_str(), model_line.c_str(), digits_line.c_str(), web_dir.c_str(),
              (long long)fs::file_size(fs::path(web_dir) / "kiln.js"), out.c_str());
  return 0;
}

int cmd_data_info(const std::string& name, const std::string& data, const std::string& folder) {
  auto tt = load_dataset(name, resolve_data_root(data), folder);
  for (auto& w : tt.warnings) std::cerr << "note: " << w << "\n";
  std::printf("%s from %s\n", name.c_str(), tt.source.c_str());
  for (auto* part : {&tt.train, &tt.test}) {
    auto counts = torch::bincount(part->labels, {}, static_cast<int64_t>(part->classes.size()));
    auto s = part->images.sizes();
    std::printf("  %s: %lld images of %lldx%lldx%lld; per class:", part == &tt.train ? "train" : "test ",
                (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
    for (int64_t c = 0; c < counts.size(0); ++c) std::printf(" %lld", (long long)counts[c].item<int64_t>());
    std::printf("\n");
  }
  auto [m, sd] = DeviceLoader::channel_stats(tt.train);
  std::printf("  train pixel mean/std per channel:");
  for (size_t c = 0; c < m.size(); ++c) std::printf(" %.3f/%.3f", m[c], sd[c]);
  std::printf("\n");
  return 0;
}

}  // namespace

// `kiln launch --nproc N -- COMMAND...`: N processes of COMMAND on this machine with the
// launcher variables set (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT: a
// free port unless given). Ctrl-C is passed on to every rank. When one rank fails, the others
// get `grace` seconds to stop by themselves (their collectives fail at once when a peer's
// connection closes, or after dist.timeout_s), then SIGTERM, then SIGKILL. Exit status: 0 when
// every rank succeeded, else the first failure's (128 + signal for a rank killed by a signal).
std::atomic<int> g_forward_signal{0};
extern "C" void on_launch_signal(int sig) { g_forward_signal = sig; }

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("launch: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error("launch: cannot bind a loopback socket to find a free port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

int cmd_launch(int nproc, int port, double grace, std::vector<std::string> cmd) {
  if (nproc < 1) throw Error("launch: --nproc must be at least 1");
  if (cmd.empty()) throw Error("launch: give the command after --, e.g.  kiln launch --nproc 2 -- kiln train --preset P --out D");
  if (cmd[0] == "kiln") cmd[0] = fs::read_symlink("/proc/self/exe").string();  // this kiln, wherever PATH points
  if (port <= 0) port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) throw Error("launch: fork failed");
    if (pid == 0) {
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : cmd) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "kiln launch: cannot run '%s'\n", argv[0]);
      std::_Exit(127);
    }
    pids.push_back(pid);
  }
  std::cerr << "launch: " << nproc << " ranks (pids";
  for (auto p : pids) std::cerr << " " << p;
  std::cerr << "), rendezvous 127.0.0.1:" << port << "\n";
  std::signal(SIGINT, on_launch_signal);
  std::signal(SIGTERM, on_launch_signal);
  int first_failure = 0, alive = nproc;
  std::vector<bool> done(static_cast<size_t>(nproc), false);
  std::chrono::steady_clock::time_point failed_at{};
  bool termed = false, killed = false;
  while (alive > 0) {
    if (int sig = g_forward_signal.exchange(0)) {
      for (int r = 0; r < nproc; ++r)
        if (!done[static_cast<size_t>(r)]) ::kill(pids[static_cast<size_t>(r)], sig);
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < nproc; ++r) {
        if (pids[static_cast<size_t>(r)] != pid) continue;
        done[static_cast<size_t>(r)] = true;
        --alive;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code != 0) {
          std::cerr << "launch: rank " << r << " (pid " << pid << ") "
                    << (WIFEXITED(status) ? "exited with " + std::to_string(code) : "was killed by signal " + std::to_string(WTERMSIG(status)))
                    << (first_failure == 0 ? "; the other ranks get " + std::to_string(static_cast<int>(grace)) + " s to stop" : std::string())
                    << "\n";
          if (first_failure == 0) {
            first_failure = code;
            failed_at = std::chrono::steady_clock::now();
          }
        }
      }
      continue;
    }
    if (first_failure != 0 && alive > 0) {
      double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
      if (!termed && waited > grace) {
        std::cerr << "launch: stopping the remaining ranks (SIGTERM)\n";
        for (int r = 0; r < nproc; ++r)
          if (!done[static_cast<size_t>(r)]) ::kill(pids[static_cast<size_t>(r)], SIGTERM);
        termed = true;
      } else if (termed && !killed && waited > grace + 10) {
        for (int r = 0; r < nproc; ++r)
          if (!done[static_cast<size_t>(r)]) ::kill(pids[static_cast<size_t>(r)], SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return first_failure;
}

// The options every training-like subcommand shares.
void add_device_options(CLI::App* sub, std::string& data, std::string& device, int& threads) {
  sub->add_option("--data", data, "data root (holds cifar10/, mnist/, ...)");
  sub->add_option("--device", device, "cpu | cuda | cuda:N | auto")->capture_default_str();
  sub->add_option("--threads", threads, "CPU threads for LibTorch (0 = its default)");
}

int main(int argc, char** argv) {
  CLI::App app{"kiln: fast image-classifier training in C++, every trick a switch.\n"
               "Data root: --data, else $KILN_DATA, else $XDG_DATA_HOME/kiln or ~/.local/share/kiln."};
  app.require_subcommand(1);
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which kiln reports and
  // survives (the previous checkpoint is kept), instead of the process dying of SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION + " (" + KILN_GIT_COMMIT + ")");

  std::string preset, data, device = "auto", out, resume_dir, ckpt, folder, mirror;
  int threads = 0, runs = 1;
  int64_t seed = -1;
  bool quiet = false, force = false, keys = false;
  std::vector<std::string> sets;

  auto* train = app.add_subcommand("train", "Train a model from a preset; writes a run directory");
  train->add_option("--preset,-p", preset, "preset name (kiln presets) or path to a .toml file");
  add_device_options(train, data, device, threads);
  train->add_option("--seed", seed, "override train.seed (run k of --runs uses seed + k)");
  train->add_option("--runs", runs, "independent runs with consecutive seeds; N > 1 writes a summary")->capture_default_str();
  train->add_option("--out", out, "run directory (default runs/<preset>-<time>)");
  train->add_option("--set", sets, "override a key: --set optim.lr=0.001 (repeatable)")->take_all();
  train->add_option("--resume", resume_dir, "continue the run (or set of runs) in this directory");
  std::string init_ckpt;
  train->add_option("--init", init_ckpt, "start from another run's weights (sets train.init): pre-training + fine-tuning");
  train->add_flag("--quiet,-q", quiet, "no progress bar or epoch lines");
  int world_size = 0, dist_rank = -1;
  std::string master;
  train->add_option("--world-size", world_size, "data parallelism: how many processes train together (default $WORLD_SIZE, else 1)");
  train->add_option("--rank", dist_rank, "this process's rank, 0..world-size-1 (default $RANK)");
  train->add_option("--master", master, "ADDR:PORT of rank 0's rendezvous (default $MASTER_ADDR:$MASTER_PORT, else 127.0.0.1:29500)");
  bool deterministic = false;
  train->add_flag("--deterministic", deterministic, "deterministic algorithms, no cuDNN autotuning (docs/determinism.md)");

  int launch_nproc = 1, launch_port = 0;
  double launch_grace = 30;
  std::vector<std::string> launch_cmd;
  auto* launch = app.add_subcommand("launch", "Start N processes of a kiln command on this machine as one data-parallel job (sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): kiln launch --nproc 2 -- kiln train --preset P --out D");
  launch->add_option("--nproc,-n", launch_nproc, "processes (ranks)")->required();
  launch->add_option("--master-port", launch_port, "rendezvous port on 127.0.0.1 (default: a free one)");
  launch->add_option("--grace", launch_grace, "seconds the other ranks get to stop after one fails, before SIGTERM")->capture_default_str();
  launch->add_option("command", launch_cmd, "the command, after --")->required();
  auto* ablate = app.add_subcommand("ablate", "Run an ablation (configs/ablations/): one row per trick, n runs each, a table with Welch p-values");
  ablate->add_option("--preset,-p", preset, "ablation name (e.g. myrtle-ablation) or path")->required();
  add_device_options(ablate, data, device, threads);
  ablate->add_option("--runs", runs, "runs per row")->capture_default_str();
  ablate->add_option("--out", out, "directory (default runs/<ablation>-<time>); an existing one is continued");
  ablate->add_option("--set", sets, "override a key in every row, after the row's own (repeatable)")->take_all();
  ablate->add_flag("--quiet,-q", quiet, "no progress bar or epoch lines");

  int64_t st_labels = 4000, split_seed = -1;
  int st_rounds = 1;
  std::vector<std::string> strengths;
  auto* selftrain = app.add_subcommand("selftrain", "Self-training (Zoph et al. 2020): supervised baseline vs noisy student per augmentation strength, n runs each, rounds of students; a table with Welch p-values");
  selftrain->add_option("--preset,-p", preset, "preset of the baseline and students (e.g. cifar10-selftrain)")->required();
  add_device_options(selftrain, data, device, threads);
  selftrain->add_option("--labels", st_labels, "labeled examples (a seeded, class-balanced split; the rest is unlabeled)")->capture_default_str();
  selftrain->add_option("--aug", strengths, "augmentation strengths, comma-separated: S1,S2,S3,S4 (each optionally +cutout)")->delimiter(',')->required();
  selftrain->add_option("--rounds", st_rounds, "rounds of students (each taught by the previous round)")->capture_default_str();
  selftrain->add_option("--runs", runs, "runs per strength (seeds train.seed + k); run k of every round is taught by run k of the one before")->capture_default_str();
  selftrain->add_option("--split-seed", split_seed, "override data.split_seed");
  selftrain->add_option("--out", out, "directory (default runs/selftrain-<preset>-<time>); an existing one is continued");
  selftrain->add_option("--set", sets, "override a key for baselines and students (repeatable)")->take_all();
  selftrain->add_flag("--quiet,-q", quiet, "no progress bar or epoch lines");

  bool modern = false;
  int seeds = 0;
  auto* lecun = app.add_subcommand("lecun1989", "LeCun et al. 1989's zip-code network on MNIST-drawn digits, with the paper's table; --modern for the step-by-step modernisation");
  lecun->add_flag("--modern", modern, "the modern variant, row by row (cross-entropy, AdamW, shift augmentation, ReLU + dropout)");
  lecun->add_option("--seeds", seeds, "runs per row (default 1 for the reproduction, 5 for --modern)");
  lecun->add_option("--data", data, "data root holding mnist/");
  lecun->add_option("--threads", threads, "seeds trained in parallel with --modern (default: all cores)");
  lecun->add_option("--out", out, "directory for results.md (default runs/lecun1989-<time>)");

  int64_t examples = 10, max_steps = 200;
  double overfit_lr = 0.01, loss_target = 0.01;
  auto* over = app.add_subcommand("overfit", "Make a model memorise 1 or 10 training examples (exit 1 if it cannot): the first check after any change");
  over->add_option("--preset,-p", preset, "preset whose model and data to use")->required();
  over->add_option("--examples,-n", examples, "how many training examples (the first N)")->capture_default_str();
  over->add_option("--max-steps", max_steps, "give up after this many steps (one step per epoch)")->capture_default_str();
  over->add_option("--lr", overfit_lr, "constant learning rate on the summed loss")->capture_default_str();
  over->add_option("--loss-target", loss_target, "success: 100% accuracy and mean loss below this")->capture_default_str();
  add_device_options(over, data, device, threads);
  over->add_option("--set", sets, "override a key of the preset first (repeatable)")->take_all();

  double lr_lo = 1e-7, lr_hi = 1.0;
  int64_t lr_steps = 200;
  auto* lrf = app.add_subcommand("lr-find", "Exponential learning-rate sweep: loss against LR (PNG + CSV) and a suggested optim.lr");
  lrf->add_option("--preset,-p", preset, "preset to sweep")->required();
  lrf->add_option("--min", lr_lo, "first LR")->capture_default_str();
  lrf->add_option("--max", lr_hi, "last LR")->capture_default_str();
  lrf->add_option("--steps", lr_steps, "training steps in the sweep")->capture_default_str();
  add_device_options(lrf, data, device, threads);
  lrf->add_option("--out", out, "directory for lr_find.png and lr_find.csv");
  lrf->add_option("--set", sets, "override a key of the preset (repeatable)")->take_all();

  std::string what;
  int count = 64;
  int64_t show_epoch = 0;
  auto* show = app.add_subcommand("show", "Pictures as PNG: aug (augmented training batch), batch (originals beside their augmented versions), predictions and confusion (of a checkpoint), filters, whitening (eigen-patches)");
  show->add_option("what", what, "aug | batch | predictions | confusion | filters | whitening")->required();
  show->add_option("--epoch", show_epoch, "for batch: the epoch (0-based) whose first batch to show")->capture_default_str();
  show->add_option("--preset,-p", preset, "preset (for aug, filters, whitening)");
  show->add_option("--checkpoint,-c", ckpt, "a run's checkpoint.pt (predictions, confusion; trained filters)");
  show->add_option("--data", data, "data root");
  show->add_option("--out", out, "directory for <what>.png (default: the checkpoint's run directory, or runs/show-<preset>)");
  show->add_option("--count,-n", count, "images in a grid")->capture_default_str();
  show->add_option("--set", sets, "override a key (repeatable)")->take_all();

  int warmup = 1;
  std::string profile;
  auto* bench = app.add_subcommand("bench", "Time a preset as the peers do (whitening + training + final TTA eval), n runs: accuracy and time with 95% CI, FLOPs, TFLOP/s, fraction of the matmul peak; writes JSON");
  bench->add_option("--preset,-p", preset, "preset name or path")->required();
  bench->add_option("--runs", runs, "timed runs (seeds train.seed + k)")->capture_default_str();
  bench->add_option("--warmup", warmup, "untimed warm-up runs first (cuDNN autotuning, allocator)")->capture_default_str();
  bench->add_option("--profile", profile, "CSV: after the timed runs, one more run under LibTorch's profiler: kernels by device time (CUDA), operators by host self time");
  add_device_options(bench, data, device, threads);
  bench->add_option("--out", out, "the JSON file (default runs/bench-<preset>-<time>.json)");
  bench->add_option("--set", sets, "override a key (repeatable); on the CPU use a subset, e.g. --set data.train_subset=2000")->take_all();

  std::vector<std::string> report_dirs;
  auto* report = app.add_subcommand("report", "(Re)write report.html in run, multi-run, ablation or lr-find directories");
  report->add_option("dirs", report_dirs, "directories")->required();

  auto* eval = app.add_subcommand("eval", "Test accuracy of a checkpoint");
  eval->add_option("--checkpoint,-c", ckpt, "checkpoint.pt of a run")->required();
  add_device_options(eval, data, device, threads);
  std::string export_format = "safetensors";
  bool export_int8 = false;
  auto* exp = app.add_subcommand("export", "Write a checkpoint's weights as safetensors or kiln's own format (fp32, or --int8), with the config, normalisation, input shape and classes");
  exp->add_option("--checkpoint,-c", ckpt, "checkpoint.pt of a run")->required();
  exp->add_option("--format", export_format, "safetensors | kiln (kiln's own format, read by the dependency-free runtime; docs/kiln-format.md)")->capture_default_str();
  exp->add_flag("--int8", export_int8, "conv and linear weights as int8 with per-channel scales (<name>.scale)");
  exp->add_option("--out", out, "file (default: model[-int8].safetensors beside the checkpoint)");
  exp->add_option("--data", data, "data root (for the input shape and class names)");
  std::string web_model, web_dir;
  auto* web = app.add_subcommand("web", "Write a static web page that classifies what you draw or drop with a .kiln model, and trains the 1989 network live, all in WebAssembly (docs/web.md)");
  web->add_option("--model,-m", web_model, "a model from `kiln export --format kiln` (int8 travels smallest)");
  web->add_option("--out", out, "directory for the site")->required();
  web->add_option("--data", data, "data root holding mnist/ (the 1989 digits)");
  web->add_option("--web-dir", web_dir, "where the built page is (default: this build's, else the installed one)");
  auto* quant = app.add_subcommand("quantize", "Test accuracy of a checkpoint in fp32 and with int8 weights (per-channel, symmetric); writes quantize.json beside it");
  quant->add_option("--checkpoint,-c", ckpt, "checkpoint.pt of a run")->required();
  add_device_options(quant, data, device, threads);

  auto* dataset = app.add_subcommand("data", "Datasets: fetch and inspect");
  dataset->require_subcommand(1);
  std::string dname;
  auto* fetch = dataset->add_subcommand("fetch", "Download, verify (md5) and unpack a dataset into the data root");
  fetch->add_option("name", dname, "cifar10 | cifar100 | mnist | fashion-mnist")->required();
  fetch->add_option("--data", data, "data root");
  fetch->add_flag("--force", force, "fetch again even when the folder exists");
  fetch->add_option("--mirror", mirror, "fetch the same file names from this base URL instead (e.g. file:///srv/m)");
  auto* info = dataset->add_subcommand("info", "Check a dataset and print its shape, class counts and pixel statistics");
  info->add_option("name", dname, "cifar10 | cifar100 | mnist | fashion-mnist | folder")->required();
  info->add_option("--data", data, "data root");
  info->add_option("--folder", folder, "root with train/ and test/ (for 'folder')");

  auto* presets = app.add_subcommand("presets", "List presets, or every configuration key with --keys");
  presets->add_flag("--keys", keys, "list every key with its default and meaning");
  auto* env = app.add_subcommand("env", "What this machine runs kiln with: versions, the CPU, and the kernels LibTorch picks for it (ATen, oneDNN, MKL)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    set_deterministic(deterministic);
    if (*train && !init_ckpt.empty()) sets.push_back("train.init=\"" + init_ckpt + "\"");
    if (*launch) return cmd_launch(launch_nproc, launch_port, launch_grace, launch_cmd);
    if (*train) {
      auto dopt = dist::from_environment();
      if (world_size > 0) dopt.world_size = world_size;
      if (dist_rank >= 0) dopt.rank = dist_rank;
      if (!master.empty()) dist::set_master(dopt, master, "--master");
      return cmd_train(preset, data, device, threads, seed, runs, out, sets, resume_dir, quiet, joined_args(argc, argv), dopt);
    }
    if (*selftrain)
      return cmd_selftrain(preset, st_labels, strengths, st_rounds, runs, split_seed, data, device, threads, out, sets, quiet,
                           joined_args(argc, argv));
    if (*ablate) return cmd_ablate(preset, data, device, threads, runs, out, sets, quiet, joined_args(argc, argv));
    if (*lecun) return cmd_lecun1989(modern, seeds > 0 ? seeds : (modern ? 5 : 1), data, threads, out, joined_args(argc, argv));
    if (*over)
      return cmd_overfit(preset, examples, max_steps, overfit_lr, loss_target, data, device, threads, sets);
    if (*lrf) return cmd_lr_find(preset, lr_lo, lr_hi, lr_steps, data, device, threads, out, sets);
    if (*show) return cmd_show(what, preset, ckpt, data, out, count, show_epoch, sets);
    if (*report) {
      for (auto& d : report_dirs) std::printf("wrote %s\n", write_report(d).c_str());
      return 0;
    }
    if (*eval) return cmd_eval(ckpt, data, device, threads);
    if (*quant) return cmd_quantize(ckpt, data, device, threads);
    if (*web) return cmd_web(web_model, data, out, web_dir);
    if (*exp) return cmd_export(ckpt, export_format, export_int8, out, data);
    if (*bench) return cmd_bench(preset, runs, warmup, data, device, threads, out, sets, joined_args(argc, argv), profile);
    if (*fetch) {
#ifdef KILN_WITH_FETCH
      auto spec = builtin_fetch_spec(dname);
      if (!mirror.empty()) spec = with_mirror(spec, mirror);
      fetch_dataset(spec, resolve_data_root(data), force, [](const std::string& s) { std::cerr << s << "\n"; });
      return 0;
#else
      throw Error("this kiln was built without download support (KILN_WITH_FETCH=OFF)");
#endif
    }
    if (*info) return cmd_data_info(dname, data, folder);
    if (*env) {
      std::printf("kiln %s (%s), LibTorch %s (CUDA %s), CUDA available: %s, threads: %d\n%s", KILN_VERSION, KILN_GIT_COMMIT,
                  TORCH_VERSION, *KILN_TORCH_CUDA ? KILN_TORCH_CUDA : "none", torch::cuda::is_available() ? "yes" : "no",
                  at::get_num_threads(), describe(cpu_kernels()).c_str());
      return 0;
    }
    if (*presets) {
      if (keys) {
        const auto all = nlohmann::json::parse(Config().to_json());
        for (auto& k : Config::schema()) {
          const auto rule = k.rule.describe();
          std::printf("%-24s %-28s %s%s\n", k.key.c_str(), all[k.key].dump().c_str(), k.doc.c_str(),
                      rule.empty() || k.rule.kind == KeyRule::Kind::kOneOf ? "" : (" [" + rule + "]").c_str());
        }
      } else {
        for (auto& p : list_presets()) {
          auto c = Config::from_file(find_preset(p));
          std::printf("%-30s %s\n", p.c_str(), c.s("meta.description").c_str());
        }
      }
      return 0;
    }
  } catch (const Error& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "kiln: LibTorch error: " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::bad_alloc&) {
    std::cerr << "kiln: out of memory\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "kiln: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
