// `kiln overfit`: memorise 1 or 10 training examples, or say that the model or loop cannot
// (exit 1): the first check after any change (overfit_config, kiln/train/trainer.h).
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cli/commands.h"

namespace kiln::cli {
namespace {

struct OverfitFlags {
  DeviceFlags dev;
  std::string preset;
  std::vector<std::string> sets;
  int64_t examples = 10, max_steps = 200;
  double lr = 0.01, loss_target = 0.01;
};

int run_overfit(const OverfitFlags& f) {
  Setup su = setup(f.dev, f.preset, f.sets);
  const Config cfg = overfit_config(su.cfg, f.examples, f.max_steps, f.lr);
  auto tt = load_for(cfg, f.dev.data);
  RunOptions opt;
  opt.device = su.device;
  opt.verbose = false;
  std::cerr << "overfitting " << f.examples << " example(s) of " << tt.name << " with " << f.preset
            << " (no augmentation, label smoothing, weight decay, ghost BN or EMA; lr " << f.lr << ", sum loss)\n"
            << "epoch  loss (nats/example)  train accuracy\n";
  int64_t shown = 0;
  auto r = overfit(cfg, tt, f.loss_target, opt);
  for (auto& m : r.curve)
    if (++shown <= 10 || m.epoch % 10 == 0 || &m == &r.curve.back())
      std::fprintf(stderr, "%5lld  %19.6f  %13.1f%%\n", (long long)m.epoch, m.train_loss, 100 * m.train_acc);
  if (r.reached) {
    std::printf("overfit: reached 100%% training accuracy and loss %.4g < %.4g in %zu steps\n", r.curve.back().train_loss,
                f.loss_target, r.curve.size());
    return 0;
  }
  std::printf("overfit: FAILED to memorise %lld example(s) in %lld steps (last loss %.4g, accuracy %.1f%%): "
              "a bug in the model or the loop, or try --lr\n",
              (long long)f.examples, (long long)f.max_steps, r.curve.empty() ? NAN : r.curve.back().train_loss,
              r.curve.empty() ? 0.0 : 100 * r.curve.back().train_acc);
  return 1;
}

}  // namespace

Command add_overfit(CLI::App& app, const std::string&) {
  auto f = std::make_shared<OverfitFlags>();
  auto* sub = app.add_subcommand("overfit", "Make a model memorise 1 or 10 training examples (exit 1 if it cannot): the first check after any change");
  sub->add_option("--preset,-p", f->preset, "preset whose model and data to use")->required();
  sub->add_option("--examples,-n", f->examples, "how many training examples (the first N)")->capture_default_str();
  sub->add_option("--max-steps", f->max_steps, "give up after this many steps (one step per epoch)")->capture_default_str();
  sub->add_option("--lr", f->lr, "constant learning rate on the summed loss")->capture_default_str();
  sub->add_option("--loss-target", f->loss_target, "success: 100% accuracy and mean loss below this")->capture_default_str();
  add_device_options(sub, f->dev);
  sub->add_option("--set", f->sets, "override a key of the preset first (repeatable)")->take_all();
  return {sub, [f] { return run_overfit(*f); }};
}

}  // namespace kiln::cli
