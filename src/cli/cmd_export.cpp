// `kiln export`: a checkpoint's weights as safetensors or kiln's own format (fp32, or int8
// conv/linear weights with per-channel scales: by default int8 per channel, a QAT run's own
// grid, or --granularity/--bits; cli/common.h's grid_for), with what rebuilding the model needs in the
// metadata (kiln/deploy/export.h); or the whole network as an ONNX graph
// (kiln/deploy/onnx_export.h).
#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "kiln/core/error.h"
#include "kiln/data/loader.h"
#include "kiln/deploy/export.h"
#include "kiln/deploy/onnx_export.h"
#include "kiln/nn/layers.h"

namespace kiln::cli {
namespace {

struct ExportFlags {
  std::string checkpoint, format = "safetensors", out, data, tta;
  bool int8 = false;
  GridFlags grid;
};

int run_export(const ExportFlags& f) {
  if (f.format != "safetensors" && f.format != "kiln" && f.format != "onnx")
    throw Error("--format '" + f.format + "' is not one of: safetensors | kiln | onnx");
  if (f.format == "onnx" && !onnx::available())
    throw Error("--format onnx: this kiln was built without ONNX (apt-get install libonnx-dev libprotobuf-dev, then "
                "configure with -DKILN_WITH_ONNX=ON; scripts/install-deps.sh installs them)");
  if (!f.tta.empty() && f.format == "safetensors")
    throw Error("--tta: safetensors holds the weights only; the test-time augmentation travels in --format kiln or onnx");
  if (!f.int8 && (!f.grid.granularity.empty() || f.grid.bits != 0))
    throw Error("--granularity and --bits choose the grid of the --int8 weights: add --int8");
  auto ck = load_checkpoint(f.checkpoint, torch::kCPU);
  const auto io = model_io(ck, f.checkpoint, f.data);  // the input shape and the class names
  // The network's input: data.input_size when the run set one (the exported model expects images
  // already cropped and resized to it), else the stored size.
  const auto view = View::from_config(ck.cfg);
  ExportInfo info{{io.channels, view.out_h(io.height), view.out_w(io.width)}, io.classes};
  info.stored_shape = {io.channels, io.height, io.width};
  const auto chosen = grid_for(ck.cfg, f.grid);
  info.grid = chosen.grid;
  info.tta = f.tta;
  const auto tta = export_tta(ck, info);  // refuses an unknown --tta before anything is written
  const std::string ext = "." + f.format;
  const std::string out = !f.out.empty() ? f.out
      : (std::filesystem::path(f.checkpoint).parent_path() / ((f.int8 ? "model-int8" : "model") + ext)).string();
  const auto bytes = f.format == "kiln" ? export_kiln(ck, info, out, f.int8)
                    : f.format == "onnx" ? export_onnx(ck, info, out, f.int8)
                                         : export_safetensors(ck, info, out, f.int8);
  const std::string weights = f.int8 ? "int8 weights on the " + info.grid.name() + " grid (" + chosen.source + ")" : "fp32 weights";
  std::printf("wrote %s: %lld bytes (%s, %lld parameters)\n", out.c_str(), (long long)bytes, weights.c_str(),
              (long long)count_parameters(*ck.model));
  // What the model does with each image: the plain network or the views of its TTA.
  const std::string source = f.tta.empty() ? "the run's eval.tta" : "--tta";
  auto applied = [&](const std::string& where) {
    return tta.mode == "none" ? "the plain network, no test-time augmentation (" + source + ")"
        : "test-time augmentation " + tta.mode + " " + where + " (" + source + "): " + std::to_string(tta_view_count(tta.mode)) +
              " network passes an image";
  };
  if (f.format == "onnx")
    std::printf("ONNX opset 17, checked by ONNX's checker: input 'pixels' float32 [batch, %lld, %lld, %lld] in 0..255 "
                "(normalisation in the graph), output 'logits' [batch, %zu]; %s\n",
                (long long)info.input_shape[0], (long long)info.input_shape[1], (long long)info.input_shape[2], info.classes.size(),
                applied("in the graph").c_str());
  if (f.format == "kiln") std::printf("%s\n", applied("applied by the runtime").c_str());
  return 0;
}

}  // namespace

Command add_export(CLI::App& app, const std::string&) {
  auto f = std::make_shared<ExportFlags>();
  auto* sub = app.add_subcommand("export", "Write a checkpoint's model as ONNX (the network, runnable by ONNX Runtime), or its weights as safetensors or kiln's own format (fp32, or --int8), with the config, normalisation, input shape and classes");
  sub->add_option("--checkpoint,-c", f->checkpoint, "checkpoint.pt of a run")->required();
  sub->add_option("--format", f->format, "safetensors | kiln (kiln's own format, read by the dependency-free runtime; docs/kiln-format.md) | onnx (the network as an ONNX graph; docs/onnx.md)")->capture_default_str();
  sub->add_flag("--int8", f->int8, "conv and linear weights as int8 with per-channel scales (<name>.scale; ONNX: DequantizeLinear)");
  add_grid_options(sub, f->grid);  // with --int8
  sub->add_option("--tta", f->tta, "kiln and onnx formats: the test-time augmentation the model applies, none | flip | flip+translate (default: the run's eval.tta; ONNX: in the graph, the views batched through the network)");
  sub->add_option("--out", f->out, "file (default: model[-int8].<format> beside the checkpoint)");
  sub->add_option("--data", f->data, "data root: the run's dataset, read for the input shape and class names only when the checkpoint does not hold them (written before 2026-12-04)");
  return {sub, [f] { return run_export(*f); }};
}

}  // namespace kiln::cli
