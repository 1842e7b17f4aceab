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
  std::string rows;
  bool rows_given = false;  // --rows "" is refused, not taken as every row
  int runs = 1;
  bool quiet = false, list = false, train_every_row = false;
};

int run_ablate(const AblateFlags& f, const std::string& cmdline) {
  const auto path = find_ablation(f.name);
  auto ab = Ablation::from_file(path);
  if (f.list) {
    std::cout << ab.description << " (" << path << ", mode " << (ab.leave_one_out ? "leave_one_out" : "cumulative")
              << ", base preset " << ab.base << "):\n" << ab.listing(f.train_every_row ? std::vector<Config>{} : ab.configs(f.sets));
    return 0;
  }
  Setup su = setup(f.dev);
  auto cfgs = ab.configs(f.sets);  // every row's, so that a cumulative row has the ones before it
  for (auto& line : ab.overridden_rows(f.sets)) std::cerr << "kiln ablate: note: " << line << "\n";
  if (f.rows_given) {
    std::string note;
    const auto picked = ab.pick_rows(f.rows, &note);
    if (!note.empty()) std::cerr << "kiln ablate: note: " << note << "\n";
    std::vector<Config> kept;
    for (size_t i : picked) kept.push_back(cfgs[i]);
    cfgs = kept;
    ab = ab.only(picked);
  }
  const std::string out = f.out.empty() ? "runs/" + preset_stem(path) + "-" + timestamp() : f.out;
  make_dirs(out);
  auto tt = load_for(cfgs[0], f.dev.data);
  const std::string of_its = ab.subset() ? " of its " + std::to_string(ab.rows_in_file) : "";
  std::cerr << "kiln ablate: " << ab.description << "\n" << cfgs.size() << of_its << " rows x " << f.runs << " runs on "
            << device_name(su.device) << "; directory " << out << " (rerun the same command with --out " << out
            << " to continue after an interruption)\n";
  std::string table;
  if (!run_ablation(ab, cfgs, tt, out, f.runs, run_options(su.device, cmdline, !f.quiet), table, f.train_every_row)) return 130;
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
  auto* rows = sub->add_option("--rows", f->rows, "run only these rows, by their numbers from 1 (--list): \"3,11\", \"2-5\"; a leave_one_out ablation's first row always; a cumulative one's must follow one another. Runs go to the same row-XX directories as the whole ablation's, so either reuses the other's");
  sub->add_flag("--list", f->list, "print the rows, numbered, with what each sets, and exit");
  sub->add_flag("--train-every-row", f->train_every_row, "train a row that differs from the row it is compared with only in eval.* (test-time augmentation) instead of evaluating that row's networks again");
  sub->add_flag("--quiet,-q", f->quiet, "no progress bar or epoch lines");
  return {sub, [f, rows, &cmdline] {
            f->rows_given = rows->count() > 0;
            return run_ablate(*f, cmdline);
          }};
}

}  // namespace kiln::cli
