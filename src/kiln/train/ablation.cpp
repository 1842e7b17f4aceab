#include "kiln/train/ablation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <toml++/toml.h>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/report/html.h"
#include "kiln/train/run_set.h"
#include "kiln/train/run_settings.h"

namespace kiln {

namespace {
void flatten_sets(const toml::table& t, const std::string& prefix, std::vector<std::pair<std::string, std::string>>& out) {
  for (auto& [k, node] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = node.as_table()) {
      flatten_sets(*sub, key, out);
    } else {
      std::ostringstream os;
      if (auto s = node.as_string()) os << '"' << s->get() << '"';
      else node.visit([&](auto&& v) { os << v; });
      out.emplace_back(key, os.str());
    }
  }
}
}  // namespace

Ablation Ablation::from_file(const std::string& path) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw Error(path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  Ablation a;
  a.description = t["description"].value_or(std::string(""));
  a.base = t["base"].value_or(std::string(""));
  if (a.base.empty()) throw Error(path + ": an ablation needs 'base = \"<preset>\"'");
  const std::string mode = t["mode"].value_or(std::string("cumulative"));
  if (mode != "cumulative" && mode != "leave_one_out")
    throw Error(path + ": mode = \"" + mode + "\": an ablation's mode is cumulative or leave_one_out");
  a.leave_one_out = mode == "leave_one_out";
  for (auto& [k, node] : t)
    if (k.str() != "description" && k.str() != "base" && k.str() != "mode" && k.str() != "row")
      throw Error(path + ": unknown field '" + std::string(k.str()) + "' (description, base, mode, [[row]])");
  auto rows = t["row"].as_array();
  if (!rows || rows->empty()) throw Error(path + ": an ablation needs at least one [[row]]");
  for (auto& r : *rows) {
    auto rt = r.as_table();
    if (!rt) throw Error(path + ": each [[row]] must be a table");
    AblationRow row;
    row.name = (*rt)["name"].value_or(std::string(""));
    if (row.name.empty()) throw Error(path + ": a [[row]] has no name");
    if (auto set = (*rt)["set"].as_table()) flatten_sets(*set, "", row.sets);
    for (auto& [k, node] : *rt)
      if (k.str() != "name" && k.str() != "set")
        throw Error(path + ": row '" + row.name + "': unknown field '" + std::string(k.str()) + "' (name, set)");
    if (a.leave_one_out && a.rows.empty() && !row.sets.empty())
      throw Error(path + ": row '" + row.name + "': with mode = \"leave_one_out\" the first row is the base preset as it is "
                  "and sets nothing (each other row is compared with it)");
    row.number = a.rows.size();
    a.rows.push_back(row);
  }
  a.rows_in_file = a.rows.size();
  if (a.leave_one_out && a.rows.size() < 2) throw Error(path + ": a leave_one_out ablation needs the base row and at least one other");
  return a;
}

std::vector<Config> Ablation::configs(const std::vector<std::string>& overrides) const {
  std::vector<Config> out;
  const Config base_config = Config::from_file(find_preset(base));
  Config c = base_config;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    if (leave_one_out) c = base_config;
    bool changes = row.sets.empty() && i == 0;  // the first row may be the base as it is
    for (auto& [k, v] : row.sets) {
      try {
        const ConfigValue before = c.value(k);
        c.set(k, v);
        changes = changes || !(c.value(k) == before);
      } catch (const Error& e) {
        throw Error("ablation row '" + row.name + "': " + e.what());
      }
    }
    if (!changes)
      throw Error("ablation row '" + row.name + "' changes nothing: its settings are already those of " +
                  (leave_one_out ? "the base preset '" + base + "'" : std::string("the row before it")));
    Config resolved = c;
    for (auto& o : overrides) resolved.set_assignment(o);
    resolved.set_value("meta.description", row.name);
    out.push_back(resolved);
  }
  return out;
}

std::vector<std::string> Ablation::overridden_rows(const std::vector<std::string>& overrides) const {
  std::vector<std::string> out;
  for (auto& o : overrides) {
    const std::string key = o.substr(0, o.find('='));
    std::string names;
    int n = 0;
    for (auto& row : rows)
      for (auto& [k, v] : row.sets)
        if (k == key) {
          names += std::string(n++ ? ", '" : "'") + row.name + "'";
          break;
        }
    if (n > 0)
      out.push_back("--set " + o + " replaces what " + std::to_string(n) + (n == 1 ? " row sets: " : " rows set: ") + names);
  }
  return out;
}

std::vector<size_t> Ablation::pick_rows(const std::string& spec, std::string* note) const {
  const size_t n = rows.size();
  const auto refuse = [&](const std::string& why) -> Error {
    return Error("--rows '" + spec + "': " + why + " (rows are numbered 1 to " + std::to_string(n) +
                 "; kiln ablate --list shows them)");
  };
  const auto number = [&](const std::string& text) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
      throw refuse("'" + text + "' is not a row number");
    const size_t v = text.size() > 9 ? n + 1 : std::stoul(text);  // digits only: no sign, no overflow
    if (v < 1 || v > n) throw refuse("there is no row " + text);
    return v - 1;
  };
  std::vector<size_t> picked;
  std::stringstream in(spec);
  std::string part;
  while (std::getline(in, part, ',')) {
    const auto dash = part.find('-');
    const size_t first = number(part.substr(0, dash)), last = dash == std::string::npos ? first : number(part.substr(dash + 1));
    if (last < first) throw refuse("'" + part + "' runs backwards");
    for (size_t i = first; i <= last; ++i) {
      if (std::find(picked.begin(), picked.end(), i) != picked.end()) throw refuse("row " + std::to_string(i + 1) + " is named twice");
      picked.push_back(i);
    }
  }
  if (picked.empty()) throw refuse("no row named");
  std::sort(picked.begin(), picked.end());
  if (leave_one_out && picked.front() != 0) {
    picked.insert(picked.begin(), 0);
    if (note) *note = "--rows '" + spec + "': row 1, '" + rows[0].name + "', is run too: every row is compared with it";
  }
  if (!leave_one_out)
    for (size_t i = 1; i < picked.size(); ++i)
      if (picked[i] != picked[i - 1] + 1)
        throw refuse("a cumulative ablation's rows must follow one another (each adds its trick to the rows before it "
                     "and is compared with the one before it), and row " + std::to_string(picked[i] + 1) +
                     " does not follow row " + std::to_string(picked[i - 1] + 1));
  return picked;
}

Ablation Ablation::only(const std::vector<size_t>& places) const {
  Ablation a = *this;
  a.rows.clear();
  for (size_t i : places) a.rows.push_back(rows.at(i));
  return a;
}

std::string Ablation::listing(const std::vector<Config>& configs) const {
  std::string out;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    std::string sets;
    for (auto& [k, v] : row.sets) sets += (sets.empty() ? "" : ", ") + k + " = " + v;
    char num[16];
    std::snprintf(num, sizeof num, "%3zu  ", row.number + 1);
    out += num + row.name + "  (" + (sets.empty() ? std::string("the base as it is") : sets) + ")";
    const size_t against = i == 0 ? 0 : compared_with(i, leave_one_out);
    if (i > 0 && configs.size() == rows.size() && differs_only_in_evaluation(configs[i], configs[against]))
      out += "; trains nothing: evaluates row " + std::to_string(rows[against].number + 1) + "'s networks again";
    out += "\n";
  }
  return out;
}

std::string ablation_markdown(const std::vector<AblationResult>& rows, const std::string& device, bool against_first) {
  std::ostringstream md;
  md << "| step | epochs | time/run (s) | test acc (%) mean ± std | n | 95% CI | Δ vs "
     << (against_first ? "first row" : "previous") << " | p (Welch) |\n";
  md << "|---|---|---|---|---|---|---|---|\n";
  char buf[512];
  for (size_t i = 0; i < rows.size(); ++i) {
    auto a = summarize(rows[i].acc), t = summarize(rows[i].seconds);
    std::string ci = a.n > 1 ? [&] {
      char b[64];
      std::snprintf(b, sizeof b, "%.2f–%.2f", 100 * a.ci_low, 100 * a.ci_high);
      return std::string(b);
    }() : "—";
    std::string delta = "—", p = "—";
    if (i > 0) {
      const auto& other = rows[Ablation::compared_with(i, against_first)].acc;
      auto prev = summarize(other);
      char b[64];
      std::snprintf(b, sizeof b, "%+.2f", 100 * (a.mean - prev.mean));
      delta = b;
      const bool paired = !rows[i].networks_of.empty();
      double pv = paired ? paired_p_value(rows[i].acc, other) : welch_p_value(rows[i].acc, other);
      if (std::isfinite(pv)) {
        std::snprintf(b, sizeof b, paired ? "%.3g (paired)" : "%.3g", pv);
        p = b;
      }
    }
    std::snprintf(buf, sizeof buf, "| %s | %g | %.1f | %.2f ± %.2f | %lld | %s | %s | %s |\n", rows[i].name.c_str(),
                  rows[i].epochs, t.mean, 100 * a.mean, 100 * a.std, (long long)a.n, ci.c_str(), delta.c_str(),
                  p.c_str());
    md << buf;
  }
  md << "\nDevice: " << device
     << ". Time: training steps only (host clock, synchronised at each epoch's end); data loading, evaluation "
        "and checkpoints excluded. With n runs per row, differences below roughly 2.8·std/√n are not resolved "
        "(n = 3 and std 0.15 points: about 0.3 points).\n";
  for (auto& r : rows)
    if (!r.networks_of.empty())
      md << "\nRow '" << r.name << "' trained nothing: it is the networks of row '" << r.networks_of
         << "' evaluated again, run by run, with " << r.eval_change
         << ", so its time is theirs and its p-value the paired t-test's (kiln ablate --train-every-row trains it).\n";
  for (size_t i = 0; i < rows.size(); ++i)
    for (auto& w : rows[i].warnings) md << "\n**Warning** (" << rows[i].name << "): " << w << "\n";
  return md.str();
}

namespace {
bool is_eval_key(const std::string& key) { return key.rfind("eval.", 0) == 0; }  // read by evaluation alone
}  // namespace

bool differs_only_in_evaluation(const Config& a, const Config& b, std::string* change) {
  std::string eval_change;
  for (auto& k : Config::schema()) {
    if (a.value(k.key) == b.value(k.key) || k.key.rfind("meta.", 0) == 0) continue;
    if (!is_eval_key(k.key)) return false;
    std::string v;
    std::visit([&](auto&& x) { v = nlohmann::json(x).dump(); }, a.value(k.key));
    eval_change += (eval_change.empty() ? "" : ", ") + k.key + " = " + v;
  }
  if (change) *change = eval_change;
  return !eval_change.empty();
}

namespace {

// An evaluation-only row: each of `trained`'s networks (its runs' final checkpoints) evaluated
// again with cfg's eval settings; dir/evaluated.json says which and what came of it. What those
// runs warned of holds for these networks too.
AblationResult evaluate_again(const Config& cfg, const std::string& change, const AblationResult& of,
                              const std::vector<RunResult>& trained, const TrainTest& data, const std::string& dir,
                              const torch::Device& device) {
  AblationResult r;
  r.epochs = of.epochs, r.warnings = of.warnings, r.networks_of = of.name, r.eval_change = change;
  make_dirs(dir);
  atomic_write(dir + "/config.toml", cfg.to_toml());
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  for (auto& t : trained) {
    auto ck = load_checkpoint(t.run_dir + "/checkpoint.pt", device);
    for (auto& k : Config::schema())
      if (is_eval_key(k.key)) ck.cfg.set_value(k.key, cfg.value(k.key));
    const auto ev = evaluate_checkpoint(ck, data, device);
    std::fprintf(stderr, "%s/checkpoint.pt evaluated with %s: test accuracy %.2f%% (trained with %.2f%%)\n",
                 t.run_dir.c_str(), r.eval_change.c_str(), 100 * ev.acc, 100 * t.final_test_acc);
    r.acc.push_back(ev.acc), r.seconds.push_back(t.train_seconds);
    runs.push_back({{"checkpoint", t.run_dir + "/checkpoint.pt"}, {"test_acc", ev.acc}, {"test_loss", ev.loss},
                    {"its_own_test_acc", t.final_test_acc}});
  }
  nlohmann::ordered_json j{{"what", "the networks of row '" + of.name + "' evaluated again with " + r.eval_change +
                                        " (kiln ablate: an evaluation-only row trains nothing)"},
                           {"networks_of", of.name}, {"eval_change", r.eval_change}, {"runs", runs}};
  atomic_write(dir + "/evaluated.json", j.dump(2) + "\n");
  return r;
}

}  // namespace

std::string find_ablation(const std::string& name) {
  if (std::filesystem::is_regular_file(name)) return name;
  try {
    return find_preset("ablations/" + name);
  } catch (const Error&) {
    throw Error("no ablation named '" + name + "' (configs/ablations/<name>.toml, or a path)");
  }
}

bool run_ablation(const Ablation& ab, const std::vector<Config>& configs, const TrainTest& data, const std::string& out,
                  int runs, const RunOptions& opt, std::string& table, bool train_every_row) {
  const std::string device = device_name(opt.device) + " (" + opt.device.str() + ")";
  std::vector<AblationResult> rows;
  std::vector<std::vector<RunResult>> trained;  // each row's runs (an evaluation-only row: the networks it evaluated)
  nlohmann::ordered_json j = nlohmann::ordered_json::array();
  for (size_t i = 0; i < configs.size(); ++i) {
    char dir[32];
    std::snprintf(dir, sizeof dir, "/row-%02zu", ab.rows[i].number);
    std::cerr << "=== row " << ab.rows[i].number + 1 << "/" << ab.rows_in_file;
    if (ab.subset()) std::cerr << " (" << i + 1 << " of the " << ab.rows.size() << " run here)";
    std::cerr << ": " << ab.rows[i].name << "\n";
    const size_t against = i == 0 ? 0 : Ablation::compared_with(i, ab.leave_one_out);
    AblationResult r;
    std::string change;
    if (i > 0 && !train_every_row && differs_only_in_evaluation(configs[i], configs[against], &change)) {
      r = evaluate_again(configs[i], change, rows[against], trained[against], data, out + dir, opt.device);
      trained.push_back(trained[against]);  // the networks a later row would evaluate are these
    } else {
      trained.emplace_back();
      if (!run_set(configs[i], data, out + dir, runs, opt, trained.back())) return false;
      r.epochs = RunSettings::from_config(configs[i]).data.epochs;
      for (auto& x : trained.back()) {
        r.acc.push_back(x.final_test_acc), r.seconds.push_back(x.train_seconds);
        merge_warnings(r.warnings, x.warnings);
      }
    }
    r.name = ab.rows[i].name;
    rows.push_back(r);
    j.push_back({{"row", ab.rows[i].number + 1},
                 {"name", r.name},
                 {"compared_with", i == 0 ? nlohmann::ordered_json() : nlohmann::ordered_json(ab.rows[Ablation::compared_with(i, ab.leave_one_out)].name)},
                 {"epochs", r.epochs},
                 {"test_acc", r.acc},
                 {"train_seconds", r.seconds}});
    if (!r.warnings.empty()) j.back()["warnings"] = r.warnings;
    if (!r.networks_of.empty()) {
      j.back()["networks_of"] = r.networks_of;  // trained nothing: those networks, evaluated with eval_change
      j.back()["eval_change"] = r.eval_change;
      j.back()["p_test"] = "paired t";
    }
    table = ablation_markdown(rows, device, ab.leave_one_out);
    std::string which;
    if (ab.subset()) {
      for (auto& row : ab.rows) which += (which.empty() ? "" : ", ") + std::to_string(row.number + 1);
      which = "Rows " + which + " of the " + std::to_string(ab.rows_in_file) + " in the ablation's file (kiln ablate --rows).\n\n";
    }
    atomic_write(out + "/ablation.md", "# " + ab.description + "\n\n" + which + table);  // rewritten after every row
    atomic_write(out + "/ablation.json", j.dump(2) + "\n");
  }
  write_report(out);
  return true;
}

}  // namespace kiln
