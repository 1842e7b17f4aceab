// `kiln ablate`: an ablation (configs/ablations/), a set of runs per row, the table with Welch
// p-values (kiln/train/ablation.h).
#include <iostream>

#include "cli/commands.h"
#include "kiln/core/device.h"
#include "kiln/core/fs.h"
#include "kiln/train/ablation.h"

namespace kiln::cli {
namespace {

struct AblateFlags {
  DeviceFlags dev;
  std::string name, out;
  std::vector<std::string> sets;
  int runs = 1;
  bool quiet = false;
};

int run_ablate(const AblateFlags& f, const std::string& cmdline) {
  Setup su = setup(f.dev);
  const auto path = find_ablation(f.name);
  const auto ab = Ablation::from_file(path);
  const auto cfgs = ab.configs(f.sets);
  for (auto& line : ab.overridden_rows(f.sets)) std::cerr << "kiln ablate: note: " << line << "\n";
  const std::string out = f.out.empty() ? "runs/" + preset_stem(path) + "-" + timestamp() : f.out;
  make_dirs(out);
  auto tt = load_for(cfgs[0], f.dev.data);
  std::cerr << "kiln ablate: " << ab.description << "\n" << cfgs.size() << " rows x " << f.runs << " runs on "
            << device_name(su.device) << "; directory " << out << " (rerun the same command with --out " << out
            << " to continue after an interruption)\n";
  std::string table;
  if (!run_ablation(ab, cfgs, tt, out, f.runs, run_options(su.device, cmdline, !f.quiet), table)) return 130;
  std::cout << table;
  std::cerr << "table: " << out << "/ablation.md; report: " << out << "/report.html\n";
  return 0;
}

}  // namespace

Command add_ablate(CLI::App& app, const std::string& cmdline) {
  auto f = std::make_shared<AblateFlags>();
  auto* sub = app.add_subcommand("ablate", "Run an ablation (configs/ablations/): one row per trick, n runs each, a table with Welch p-values");
  sub->add_option("--preset,-p", f->name, "ablation name (e.g. myrtle-ablation) or path")->required();
  add_device_options(sub, f->dev);
  sub->add_option("--runs", f->runs, "runs per row")->capture_default_str();
  sub->add_option("--out", f->out, "directory (default runs/<ablation>-<time>); an existing one is continued");
  sub->add_option("--set", f->sets, "override a key in every row, after the row's own (repeatable)")->take_all();
  sub->add_flag("--quiet,-q", f->quiet, "no progress bar or epoch lines");
  return {sub, [f, &cmdline] { return run_ablate(*f, cmdline); }};
}

}  // namespace kiln::cli
