// A helper of tests/onnx_check.py: what LibTorch computes for a checkpoint's network on its
// run's test images (data.test_subset), so ONNX Runtime's results can be compared with it.
//   onnx_reference CHECKPOINT DATA_ROOT OUT_DIR [GRANULARITY BITS] [--tta MODE]
// Writes, as raw little-endian arrays: pixels.f32 (N x C x H x W, 0..255, the graph's input),
// labels.i64 (N), logits.f32 (N x K: the fp32 network, eval mode, with the test-time
// augmentation kiln's evaluation applies, kiln::predict_with_tta: the run's eval.tta and
// eval.tta_translate_weight, or MODE) and logits-int8.f32 (the same after kiln quantize's weight
// round trip on the grid GRANULARITY (channel | tensor, default channel) and BITS (2 to 8,
// default 8)), plus shape.txt "N C H W K" and tta.txt (the mode applied).
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "kiln/data/dataset.h"
#include "kiln/data/loader.h"
#include "kiln/deploy/export.h"
#include "kiln/deploy/quantize.h"
#include "kiln/nn/layers.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

namespace {
void write(const std::string& path, const torch::Tensor& t) {
  auto c = t.contiguous();
  std::ofstream o(path, std::ios::binary);
  o.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
  if (!o) throw std::runtime_error("cannot write " + path);
}

// The network's logits as kiln evaluates them: its own loader's normalisation, in batches,
// through the test-time augmentation `tta`.
torch::Tensor logits(kiln::Classifier& model, const kiln::Dataset& test, const std::vector<double>& mean,
                     const std::vector<double>& stdev, const std::string& tta, double translate_weight) {
  torch::NoGradGuard ng;
  model.eval();
  kiln::DeviceLoader loader(test, torch::kCPU, torch::kFloat32, mean, stdev);
  std::vector<torch::Tensor> out;
  for (int64_t b = 0; b < loader.size(); b += 500)
    out.push_back(kiln::predict_with_tta([&](const torch::Tensor& x) { return model.forward(x); },
                                         loader.slice(b, std::min(loader.size(), b + 500)).x, tta, translate_weight)
                      .to(torch::kFloat32));
  return torch::cat(out);
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string tta;
  if (args.size() >= 2 && args[args.size() - 2] == "--tta") tta = args.back(), args.resize(args.size() - 2);
  if (args.size() != 3 && args.size() != 5) {
    std::cerr << "usage: onnx_reference CHECKPOINT DATA_ROOT OUT_DIR [GRANULARITY BITS] [--tta MODE]\n";
    return 2;
  }
  try {
    kiln::IntGrid grid;
    if (args.size() == 5)
      grid = kiln::IntGrid(kiln::parse_granularity(args[3], "GRANULARITY"), kiln::check_bits(std::stoll(args[4]), "BITS"));
    auto ck = kiln::load_checkpoint(args[0], torch::kCPU);
    ck.model->to(torch::kFloat32);
    const auto d = kiln::RunSettings::from_config(ck.cfg).data;
    kiln::ExportInfo asked;
    asked.tta = tta;
    const auto applied = kiln::export_tta(ck, asked);  // what kiln export applies: --tta MODE, or the run's eval.tta
    auto test = kiln::load_dataset(d.dataset, args[1], d.folder, d.folder_options).test.head(d.test_subset);
    const std::string out = args[2];
    auto pixels = test.images.to(torch::kFloat32);
    write(out + "/pixels.f32", pixels);
    write(out + "/labels.i64", test.labels.to(torch::kInt64));
    write(out + "/logits.f32", logits(*ck.model, test, ck.mean, ck.std, applied.mode, applied.translate_weight));
    kiln::quantize_weights_inplace(*ck.model, grid);
    write(out + "/logits-int8.f32", logits(*ck.model, test, ck.mean, ck.std, applied.mode, applied.translate_weight));
    std::ofstream(out + "/shape.txt") << pixels.size(0) << " " << pixels.size(1) << " " << pixels.size(2) << " "
                                       << pixels.size(3) << " " << test.classes.size() << "\n";
    std::ofstream(out + "/tta.txt") << applied.mode << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "onnx_reference: " << e.what() << "\n";
    return 1;
  }
}
