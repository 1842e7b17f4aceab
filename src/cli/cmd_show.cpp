// `kiln show`: pictures as PNG (kiln/train/pictures.h).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "kiln/core/error.h"
#include "kiln/train/pictures.h"

namespace kiln::cli {
namespace {

struct ShowFlags {
  std::string what, preset, checkpoint, data, out;
  std::vector<std::string> sets;
  int count = 64;
  int64_t epoch = 0;
};

int run_show(const ShowFlags& f) {
  Config cfg;
  LoadedCheckpoint lc;
  std::string out = f.out;
  if (!f.checkpoint.empty()) {
    lc = load_checkpoint(f.checkpoint, torch::kCPU);
    cfg = lc.cfg;
    if (out.empty()) out = std::filesystem::path(f.checkpoint).parent_path().string();
    if (out.empty()) out = ".";
  } else if (!f.preset.empty()) {
    const auto path = find_preset(f.preset);
    cfg = Config::from_file(path);
    if (out.empty()) out = "runs/show-" + preset_stem(path);
  } else {
    throw Error("kiln show needs --preset or --checkpoint");
  }
  for (auto& s : f.sets) cfg.set_assignment(s);
  auto tt = load_for(cfg, f.data);
  const auto file = draw_picture(f.what, cfg, lc.model ? &lc : nullptr, tt, out, f.count, f.epoch);
  std::printf("wrote %s\n", file.c_str());
  return 0;
}

}  // namespace

Command add_show(CLI::App& app, const std::string&) {
  auto f = std::make_shared<ShowFlags>();
  auto* sub = app.add_subcommand("show", "Pictures as PNG: aug (augmented training batch), batch (originals beside their augmented versions), predictions and confusion (of a checkpoint), filters, whitening (eigen-patches)");
  sub->add_option("what", f->what, "aug | batch | predictions | confusion | filters | whitening")->required();
  sub->add_option("--epoch", f->epoch, "for batch: the epoch (0-based) whose first batch to show")->capture_default_str();
  sub->add_option("--preset,-p", f->preset, "preset (for aug, filters, whitening)");
  sub->add_option("--checkpoint,-c", f->checkpoint, "a run's checkpoint.pt (predictions, confusion; trained filters)");
  sub->add_option("--data", f->data, "data root");
  sub->add_option("--out", f->out, "directory for <what>.png (default: the checkpoint's run directory, or runs/show-<preset>)");
  sub->add_option("--count,-n", f->count, "images in a grid")->capture_default_str();
  sub->add_option("--set", f->sets, "override a key (repeatable)")->take_all();
  return {sub, [f] { return run_show(*f); }};
}

}  // namespace kiln::cli
