#include "kiln/train/run_set.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/report/html.h"
#include "kiln/train/run_settings.h"

namespace kiln {

RunResult run_one(const Config& cfg, const TrainTest& data, const RunOptions& opt, const std::string& what) {
  RunResult res;
  res.run_dir = opt.run_dir;
  if (file_exists(opt.run_dir + "/final.json")) {
    auto j = nlohmann::json::parse(read_file(opt.run_dir + "/final.json"));
    res.final_test_acc = j["final_test_acc"];
    res.train_seconds = j["train_seconds"];
    if (j.contains("warnings")) res.warnings = j["warnings"].get<std::vector<std::string>>();
    std::cerr << opt.run_dir << ": already complete\n";
    return res;
  }
  if (file_exists(opt.run_dir + "/checkpoint.pt")) {
    std::cerr << "--- resuming " << opt.run_dir << "\n";
    return resume(data, opt);
  }
  std::cerr << "--- " << what << " (seed " << RunSettings::from_config(cfg).loop.seed << ")\n";
  return train(cfg, data, opt);
}

bool run_set(const Config& cfg, const TrainTest& data, const std::string& dir, int runs, RunOptions opt,
             std::vector<RunResult>& results) {
  make_dirs(dir);
  DirLock lock(dir);  // one writer per set directory (each run's own directory is locked by train())
  atomic_write(dir + "/config.toml", cfg.to_toml());
  atomic_write(dir + "/runs.json", nlohmann::json{{"runs", runs}}.dump() + "\n");
  const auto seed = static_cast<int64_t>(RunSettings::from_config(cfg).loop.seed);
  for (int r = 0; r < runs; ++r) {
    char name[16];
    std::snprintf(name, sizeof name, "run-%02d", r);
    opt.run_dir = dir + "/" + name;
    Config c = cfg;
    c.set_value("train.seed", seed + r);
    RunResult res = run_one(c, data, opt, "run " + std::to_string(r + 1) + "/" + std::to_string(runs));
    if (res.interrupted) return false;
    results.push_back(res);
  }
  return true;
}

bool is_run_set(const std::string& dir) { return file_exists(dir + "/runs.json"); }

int run_set_size(const std::string& dir) {
  const std::string path = dir + "/runs.json";
  try {
    return nlohmann::json::parse(read_file(path)).at("runs").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not a set of runs' runs.json (" + e.what() + ")");
  }
}

Config stored_config(const std::string& dir) {
  return is_run_set(dir) ? Config::from_file(dir + "/config.toml") : checkpoint_config(dir + "/checkpoint.pt");
}

void refuse_changed_overrides(const Config& stored, const std::vector<std::string>& overrides, const std::string& dir) {
  Config wanted = stored;
  for (auto& a : overrides) wanted.set_assignment(a);
  auto js = nlohmann::json::parse(stored.to_json()), jw = nlohmann::json::parse(wanted.to_json());
  for (auto& [k, v] : jw.items())
    if (js[k] != v)
      throw Error("--resume continues a run exactly as it was configured; --set would change " + k + " from " +
                  js[k].dump() + " (stored in " + dir + ") to " + v.dump() +
                  (k.rfind("model.", 0) == 0 ? ", a different model" : std::string()) + ". Start a new run instead.");
}

nlohmann::ordered_json summary_json(const Summary& s) {
  return nlohmann::ordered_json{{"n", s.n},     {"mean", s.mean},         {"std", s.std},
                                {"min", s.min}, {"max", s.max},           {"ci95_low", s.ci_low},
                                {"ci95_high", s.ci_high}};
}

SetSummary write_summary(const std::string& dir, const std::string& description, const std::vector<RunResult>& results,
                         const torch::Device& device) {
  std::vector<double> acc, secs;
  for (auto& r : results) acc.push_back(r.final_test_acc), secs.push_back(r.train_seconds);
  const SetSummary s{summarize(acc), summarize(secs)};
  nlohmann::ordered_json j;
  j["runs"] = results.size();
  j["device"] = device.str();
  j["device_name"] = device_name(device);
  j["final_test_acc"] = summary_json(s.test_acc);
  j["train_seconds"] = summary_json(s.train_seconds);
  j["train_seconds_includes"] = "training steps of every epoch (host clock, synchronised at each epoch's end); "
                                "data loading, evaluation and checkpoints excluded";
  j["per_run_test_acc"] = acc;
  j["per_run_train_seconds"] = secs;
  std::vector<std::string> warnings;  // each once, in the order the runs said them
  for (auto& r : results) merge_warnings(warnings, r.warnings);
  if (!warnings.empty()) j["warnings"] = warnings;
  atomic_write(dir + "/summary.json", j.dump(2) + "\n");
  std::string md = "# " + description + "\n\n| metric | value |\n|---|---|\n";
  md += "| final test accuracy (%) | " + format_summary(s.test_acc, 2, 100) + " |\n";
  md += "| training time (s) | " + format_summary(s.train_seconds, 1) + " |\n";
  md += "\nDevice: " + device_name(device) + " (" + device.str() + "). Time: training steps only; data loading, "
        "evaluation and checkpoints excluded.\n";
  for (auto& w : warnings) md += "\n**Warning:** " + w + "\n";
  atomic_write(dir + "/summary.md", md);
  write_report(dir);
  return s;
}

}  // namespace kiln
