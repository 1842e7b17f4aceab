// `kiln lr-find`: an exponential learning-rate sweep over the preset's own training, its plot
// and a suggested optim.lr (lr_find, kiln/train/trainer.h; the files: kiln/train/pictures.h).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "kiln/core/fs.h"
#include "kiln/report/html.h"
#include "kiln/train/pictures.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {

struct LrFindFlags {
  DeviceFlags dev;
  std::string preset, out;
  std::vector<std::string> sets;
  double lo = 1e-7, hi = 1.0;
  int64_t steps = 200;
};

int run_lr_find(const LrFindFlags& f) {
  Setup su = setup(f.dev, f.preset, f.sets);
  const auto optim = OptimizerSettings::from_config(su.cfg);
  auto tt = load_for(su.cfg, f.dev.data);
  const std::string out = f.out.empty() ? "runs/lr-find-" + preset_stem(su.preset_path) + "-" + timestamp() : f.out;
  make_dirs(out);
  std::cerr << "lr-find: " << f.steps << " steps of " << f.preset << ", LR " << f.lo << " -> " << f.hi
            << " (optim.lr units, loss_reduction = " << (optim.sum_loss() ? "sum" : "mean") << ")\n";
  auto r = lr_find(su.cfg, tt, su.device, f.lo, f.hi, f.steps);
  write_lr_find(out, r, su.cfg, f.preset);
  write_report(out);
  std::printf("suggested optim.lr = %.3g (steepest descent of the smoothed loss); loss lowest at %.3g; preset has %.3g\n"
              "plot: %s/lr_find.png (loss against log LR, red line at the suggestion), data: %s/lr_find.csv, "
              "report: %s/report.html\n",
              r.steepest_lr, r.min_loss_lr, optim.lr, out.c_str(), out.c_str(), out.c_str());
  return 0;
}

}  // namespace

Command add_lr_find(CLI::App& app, const std::string&) {
  auto f = std::make_shared<LrFindFlags>();
  auto* sub = app.add_subcommand("lr-find", "Exponential learning-rate sweep: loss against LR (PNG + CSV) and a suggested optim.lr");
  sub->add_option("--preset,-p", f->preset, "preset to sweep")->required();
  sub->add_option("--min", f->lo, "first LR")->capture_default_str();
  sub->add_option("--max", f->hi, "last LR")->capture_default_str();
  sub->add_option("--steps", f->steps, "training steps in the sweep")->capture_default_str();
  add_device_options(sub, f->dev);
  sub->add_option("--out", f->out, "directory for lr_find.png and lr_find.csv");
  sub->add_option("--set", f->sets, "override a key of the preset (repeatable)")->take_all();
  return {sub, [f] { return run_lr_find(*f); }};
}

}  // namespace kiln::cli
