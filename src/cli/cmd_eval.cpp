// `kiln eval`: a checkpoint's test accuracy, evaluated as its run evaluated it.
#include <cstdio>

#include "cli/commands.h"

namespace kiln::cli {
namespace {

struct EvalFlags {
  DeviceFlags dev;
  std::string checkpoint;
};

int run_eval(const EvalFlags& f) {
  Setup su = setup(f.dev);
  auto ck = load_checkpoint(f.checkpoint, su.device);
  auto r = evaluate_checkpoint(ck, load_for(ck.cfg, f.dev.data), su.device);
  std::printf("test accuracy %.2f%% (%lld images, loss %.4f) — %s after %lld epochs\n", 100 * r.acc, (long long)r.n,
              r.loss, f.checkpoint.c_str(), (long long)ck.epochs_done);
  return 0;
}

}  // namespace

Command add_eval(CLI::App& app, const std::string&) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = app.add_subcommand("eval", "Test accuracy of a checkpoint");
  sub->add_option("--checkpoint,-c", f->checkpoint, "checkpoint.pt of a run")->required();
  add_device_options(sub, f->dev);
  return {sub, [f] { return run_eval(*f); }};
}

}  // namespace kiln::cli
