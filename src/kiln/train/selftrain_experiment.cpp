#include "kiln/train/selftrain_experiment.h"

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/split.h"
#include "kiln/report/html.h"
#include "kiln/report/stats.h"
#include "kiln/train/run_set.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/selftrain.h"

namespace kiln {
namespace {

using Json = nlohmann::ordered_json;

// The baseline against the last round's students per strength, then every round's
// pseudo-labels and students, from the experiment's record (selftrain.json's content).
std::string selftrain_markdown(const Json& doc, int64_t labels, const std::string& dataset, const std::string& device) {
  const bool folder = doc.contains("unlabeled_folder") && !doc["unlabeled_folder"].is_null();
  std::string md = "# Self-training: " + (labels > 0 ? std::to_string(labels) : std::string("all")) + " labels (" + dataset +
                   ")" + (folder ? ", unlabeled images from " + doc["unlabeled_folder"].get<std::string>() : std::string()) +
                   "\n\n" +
                   "Supervised baseline (the round-1 teacher) against the noisy student of the last round, test "
                   "accuracy in %: mean ± std (n, 95% CI); the gain with Welch's two-sided p-value. Device: " + device +
                   ".\n\n| augmentation | supervised | student | gain | p |\n|---|---|---|---|---|\n";
  std::string rounds_md = "\n## Per round: the teacher's pseudo-labels and the student\n\n| augmentation | round | "
                          "pseudo-label accuracy | coverage | student accuracy |\n|---|---|---|---|---|\n";
  for (auto& st : doc["strengths"]) {
    std::vector<double> b = st["baseline"]["test_acc"];
    if (b.empty()) continue;
    auto sb = summarize(b);
    const std::string name = st["name"].get<std::string>(), tname = st.value("teacher_strength", name);
    std::string row = "| " + name + (tname == name ? "" : " (baseline " + tname + ")") + " | " + format_summary(sb, 2, 100) + " | ";
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
      std::vector<double> pc = rd["pseudo_coverage"], sa = rd["test_acc"];
      if (sa.empty()) continue;
      std::vector<double> pa;
      for (const auto& a : rd["pseudo_accuracy"])
        if (a.is_number()) pa.push_back(a.get<double>());
      rounds_md += "| " + st["name"].get<std::string>() + " | " + std::to_string(r++) + " | " +
                   (pa.empty() ? std::string("unknown (no labels)") : format_summary(summarize(pa), 2, 100)) + " | " +
                   format_summary(summarize(pc), 1, 100) + " | " +
                   format_summary(summarize(sa), 2, 100) + " |\n";
    }
  }
  md += rounds_md;
  md += "\nStrengths (kiln/train/selftrain.h): S1 flip + translate; S2 S1 + AutoAugment (CIFAR-10 policy); S3 S2 + "
        "scale jitter [0.75, 1.33]; S4 RandAugment(2, 15/30) + scale jitter + flip + translate. ";
  md += folder ? "The unlabeled examples are the folder's images, which have no labels: their pseudo-labels cannot be "
                 "scored (each run's pseudo_labels.csv lists them).\n"
               : "Pseudo-label accuracy is measured against the unlabeled examples' true labels, which training never "
                 "reads.\n";
  return md;
}

std::string run_name(const std::string& prefix, int k) {
  char name[16];
  std::snprintf(name, sizeof name, "run-%02d", k);
  return prefix + name;
}

}  // namespace

void check_selftrain(const Config& base, const SelftrainExperiment& e) {
  if (e.runs < 1 || e.rounds < 1) throw Error("kiln selftrain needs --runs >= 1 and --rounds >= 1");
  const auto s = RunSettings::from_config(base);
  if (s.data.labeled <= 0 && s.student.unlabeled_folder.empty())
    throw Error("kiln selftrain needs --labels N > 0 (the labeled examples; the rest of the training set is the unlabeled "
                "data), or --set selftrain.unlabeled_folder=DIR (a directory of unlabeled images; then --labels 0 labels the "
                "whole training set)");
  if (e.strengths.empty()) throw Error("kiln selftrain needs --aug (e.g. S1,S4)");
  auto named = e.strengths;  // every strength a run will use, the teachers' too: an unknown name is refused now
  if (!e.teacher_strength.empty()) named.push_back(e.teacher_strength);
  for (const auto& a : named) {
    Config probe = base;
    apply_strength(probe, a);
  }
}

bool run_selftrain(const Config& base, const SelftrainExperiment& e, const TrainTest& data, const std::string& out,
                   RunOptions opt, std::string& table) {
  const auto settings = RunSettings::from_config(base);
  const auto seed = static_cast<int64_t>(settings.loop.seed);
  if (settings.data.labeled > 0)  // data.labeled = 0 (a folder's images are the unlabeled data): the whole training set
    split_labeled(data.train.head(settings.data.train_subset), settings.data.labeled,
                  static_cast<uint64_t>(settings.data.split_seed));  // refused here, before anything is written
  make_dirs(out);
  DirLock lock(out);
  const std::string device = device_name(opt.device) + " (" + opt.device.str() + ")";
  Json doc;
  doc["preset"] = e.preset;
  doc["labels"] = settings.data.labeled;
  doc["unlabeled_folder"] = settings.student.unlabeled_folder.empty() ? Json() : Json(settings.student.unlabeled_folder);
  doc["split_seed"] = settings.data.split_seed;
  doc["runs"] = e.runs;
  doc["teacher_strength"] = e.teacher_strength.empty() ? Json("each student's own") : Json(e.teacher_strength);
  doc["rounds"] = e.rounds;
  doc["device"] = device;
  doc["command"] = e.command;
  doc["strengths"] = Json::array();
  auto write_tables = [&] {
    table = selftrain_markdown(doc, settings.data.labeled, settings.data.dataset, device);
    atomic_write(out + "/selftrain.md", table);
    atomic_write(out + "/selftrain.json", doc.dump(2) + "\n");
  };
  const std::string of_runs = "/" + std::to_string(e.runs);
  for (const auto& strength : e.strengths) {
    Config cfg = base;
    apply_strength(cfg, strength);
    const std::string dir = out + "/" + strength;
    make_dirs(dir);
    atomic_write(dir + "/config.toml", cfg.to_toml());
    Json st;
    st["name"] = strength;
    st["baseline"]["test_acc"] = Json::array();
    st["rounds"] = Json::array();
    doc["strengths"].push_back(st);
    auto& cur = doc["strengths"].back();
    // The baselines: at this strength, or once at the teacher strength (a finished run is read
    // back, so the second strength reuses the first one's).
    const std::string tname = e.teacher_strength.empty() ? strength : e.teacher_strength;
    Config tcfg = base;
    apply_strength(tcfg, tname);
    const std::string bdir = e.teacher_strength.empty() ? dir + "/baseline/" : out + "/teacher-" + tname + "/baseline/";
    cur["teacher_strength"] = tname;
    std::cerr << "=== " << strength << ": supervised baselines (" << tname << ")\n";
    std::vector<std::string> teachers;
    for (int k = 0; k < e.runs; ++k) {
      opt.run_dir = run_name(bdir, k);
      Config c = tcfg;
      c.set_value("train.seed", seed + k);
      auto r = run_one(c, data, opt, tname + " baseline " + std::to_string(k + 1) + of_runs);
      if (r.interrupted) return false;
      cur["baseline"]["test_acc"].push_back(r.final_test_acc);
      teachers.push_back(opt.run_dir + "/checkpoint.pt");
      write_tables();
    }
    for (int round = 1; round <= e.rounds; ++round) {
      std::cerr << "=== " << strength << ": round " << round << " students\n";
      Json rd;
      rd["test_acc"] = rd["pseudo_accuracy"] = rd["pseudo_coverage"] = Json::array();
      cur["rounds"].push_back(rd);
      auto& cr = cur["rounds"].back();
      std::vector<std::string> next;
      for (int k = 0; k < e.runs; ++k) {
        opt.run_dir = run_name(dir + "/round-" + std::to_string(round) + "/", k);
        Config c = student_config(cfg, teachers[static_cast<size_t>(k)]);
        c.set_value("train.seed", seed + k);
        auto r = run_one(c, data, opt,
                         strength + " round " + std::to_string(round) + " student " + std::to_string(k + 1) + of_runs);
        if (r.interrupted) return false;
        auto fin = nlohmann::json::parse(read_file(opt.run_dir + "/final.json"));
        cr["test_acc"].push_back(r.final_test_acc);
        const auto& acc = fin["pseudo_labels"]["accuracy"];  // null for a folder's images
        cr["pseudo_accuracy"].push_back(acc.is_number() ? Json(acc.get<double>()) : Json());
        cr["pseudo_coverage"].push_back(fin["pseudo_labels"]["coverage"].get<double>());
        next.push_back(opt.run_dir + "/checkpoint.pt");
        write_tables();
      }
      teachers = next;
    }
  }
  write_tables();
  write_report(out);
  return true;
}

}  // namespace kiln
