// `kiln quantize`: a checkpoint's test accuracy in fp32, then with its conv and linear weights
// quantised to int8 (per output channel, symmetric; or with --granularity tensor one scale per
// weight; with --bits B < 8 the coarser B-bit grid, held in int8; kiln/deploy/quantize.h; by
// default a QAT run's own grid, cli/common.h's grid_for); writes
// quantize.json beside the checkpoint (quantize-tensor.json, quantize-int4.json,
// quantize-tensor-int4.json for the other grids), or the file --out names. Its int8_* keys are
// the quantised model's at whatever "bits" says (the values are held in int8 either way).
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kiln/core/fs.h"
#include "kiln/deploy/quantize.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {

struct QuantizeFlags {
  DeviceFlags dev;
  std::string checkpoint;
  GridFlags grid;
  std::string out;  // --out ("" = the grid's file beside the checkpoint)
};

// The grid's file beside the checkpoint: quantize.json for int8 per channel, else
// quantize[-tensor][-intB].json.
std::string default_report(const std::string& checkpoint, const IntGrid& g) {
  auto dir = std::filesystem::path(checkpoint).parent_path().string();
  return (dir.empty() ? std::string(".") : dir) + "/quantize" + (g.granularity == Granularity::kTensor ? "-tensor" : "") +
         (g.bits == 8 ? "" : "-int" + std::to_string(g.bits)) + ".json";
}

int run_quantize(const QuantizeFlags& f) {
  Setup su = setup(f.dev);
  auto ck = load_checkpoint(f.checkpoint, su.device);
  // The table compares weights (fp32 against int8) in fp32 arithmetic, whatever the run computed
  // in: with bf16 or fp16 the int8 grid would be rounded once more, and the exported model that
  // kiln-classify runs computes in fp32.
  set_precision(*ck.model, torch::kFloat32);
  const auto tt = load_for(ck.cfg, f.dev.data);
  auto before = evaluate_checkpoint(ck, tt, su.device, torch::kFloat32);
  const auto chosen = grid_for(ck.cfg, f.grid);
  const IntGrid g = chosen.grid;
  auto q = quantize_weights_inplace(*ck.model, g);
  auto after = evaluate_checkpoint(ck, tt, su.device, torch::kFloat32);
  const int64_t changed = before.predictions.ne(after.predictions).sum().item<int64_t>();
  std::printf("%s (%lld test images, eval.tta = %s, fp32 arithmetic; grid: %s, %s)\n", f.checkpoint.c_str(), (long long)before.n,
              RunSettings::from_config(ck.cfg).loop.tta.c_str(), g.name().c_str(), chosen.source.c_str());
  std::printf("| weights | test accuracy | bytes |\n|---|---|---|\n");
  std::printf("| fp32 | %.2f%% | %lld |\n", 100 * before.acc, (long long)q.fp32_bytes);
  std::printf("| int%d (per-%s, symmetric%s; %lld tensors) | %.2f%% | %lld |\n", g.bits, granularity_name(g.granularity),
              g.bits < 8 ? ", held as int8" : "", (long long)q.tensors, 100 * after.acc, (long long)q.int8_bytes);
  std::printf("difference %+.2f points; %lld of %lld predictions changed; largest weight error %.3g\n",
              100 * (after.acc - before.acc), (long long)changed, (long long)before.n, q.max_abs_error);
  nlohmann::ordered_json j{{"checkpoint", f.checkpoint},       {"granularity", granularity_name(g.granularity)},
                           {"bits", g.bits},                   {"test_images", before.n},
                           {"fp32_test_acc", before.acc},      {"int8_test_acc", after.acc},
                           {"fp32_bytes", q.fp32_bytes},       {"int8_bytes", q.int8_bytes},
                           {"quantized_tensors", q.tensors},   {"predictions_changed", changed},
                           {"max_abs_weight_error", q.max_abs_error}};
  // int8_bytes: as kiln export --int8 writes the weights, a scale per channel either way.
  const std::string report = f.out.empty() ? default_report(f.checkpoint, g) : f.out;
  atomic_write(report, j.dump(2) + "\n");
  std::printf("wrote %s\n", report.c_str());
  return 0;
}

}  // namespace

Command add_quantize(CLI::App& app, const std::string&) {
  auto f = std::make_shared<QuantizeFlags>();
  auto* sub = app.add_subcommand("quantize", "Test accuracy of a checkpoint in fp32 and with int8 weights (per-channel, symmetric); writes quantize.json beside it");
  sub->add_option("--checkpoint,-c", f->checkpoint, "checkpoint.pt of a run")->required();
  add_grid_options(sub, f->grid);  // per tensor writes quantize-tensor.json; 4 bits quantize[-tensor]-int4.json
  sub->add_option("--out", f->out, "the JSON report's path (default: quantize.json beside the checkpoint; quantize-tensor.json, "
                                   "quantize-int4.json, ... for the other grids)");
  add_device_options(sub, f->dev);
  return {sub, [f] { return run_quantize(*f); }};
}

}  // namespace kiln::cli
