// The commands that describe rather than train: `kiln presets` (the presets, or every key with
// --keys), `kiln env` (versions, the CPU, the kernels LibTorch picks and the image decoders) and `kiln report`
// (report.html of run directories).
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kiln/build_info.h"
#include "kiln/core/cpu_kernels.h"
#include "kiln/git_commit.h"
#include "kiln/pixels/pixels.h"
#include "kiln/report/html.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {

int run_presets(bool keys) {
  if (keys) {
    const auto all = nlohmann::json::parse(Config().to_json());
    for (auto& k : Config::schema()) {
      const auto rule = k.rule.describe();
      std::printf("%-24s %-28s %s%s\n", k.key.c_str(), all[k.key].dump().c_str(), k.doc.c_str(),
                  rule.empty() || k.rule.kind == KeyRule::Kind::kOneOf ? "" : (" [" + rule + "]").c_str());
    }
    return 0;
  }
  for (auto& p : list_presets())
    std::printf("%-30s %s\n", p.c_str(), RunSettings::from_config(Config::from_file(find_preset(p))).description.c_str());
  return 0;
}

int run_env() {
  std::printf("kiln %s (%s), LibTorch %s (CUDA %s), CUDA available: %s, threads: %d\n%simages: %s\n", KILN_VERSION, KILN_GIT_COMMIT,
              TORCH_VERSION, *KILN_TORCH_CUDA ? KILN_TORCH_CUDA : "none", torch::cuda::is_available() ? "yes" : "no",
              at::get_num_threads(), describe(cpu_kernels()).c_str(), px::decoders().c_str());
  return 0;
}

}  // namespace

std::vector<Command> add_info_commands(CLI::App& app, const std::string&) {
  auto keys = std::make_shared<bool>(false);
  auto dirs = std::make_shared<std::vector<std::string>>();
  auto* presets = app.add_subcommand("presets", "List presets, or every configuration key with --keys");
  presets->add_flag("--keys", *keys, "list every key with its default and meaning");
  auto* env = app.add_subcommand("env", "What this machine runs kiln with: versions, the CPU, the kernels LibTorch picks for it (ATen, oneDNN, MKL), and the image decoders");
  auto* report = app.add_subcommand("report", "(Re)write report.html in run, multi-run, ablation or lr-find directories");
  report->add_option("dirs", *dirs, "directories")->required();
  return {{presets, [keys] { return run_presets(*keys); }},
          {env, [] { return run_env(); }},
          {report, [dirs] {
             for (auto& d : *dirs) std::printf("wrote %s\n", write_report(d).c_str());
             return 0;
           }}};
}

}  // namespace kiln::cli
