// `kiln predict`: a checkpoint's classes for image files (PNG, JPEG, BMP) of any size, prepared
// as the run's image folders are (kiln/data/folder.h: an alpha channel over data.background,
// grey images to RGB, fitted to the stored size by data.resize) and evaluated as the run
// evaluated (as_its_run_evaluated: its layout, precision, data.input_size / eval_crop view,
// normalisation and eval.tta). Prints each file's class and probability and the next --top.
#include <algorithm>
#include <cstdio>

#include "cli/commands.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/core/precision.h"
#include "kiln/data/folder.h"
#include "kiln/data/loader.h"
#include "kiln/nn/layers.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {

struct PredictFlags {
  DeviceFlags dev;
  std::string checkpoint;
  std::vector<std::string> images;
  int64_t top = 3;
};

// One file as the run's folder loader would store it: uint8 C x H x W.
torch::Tensor prepared(const std::string& path, int64_t C, int64_t H, int64_t W, const FolderOptions& o) {
  auto img = decode_image(read_file(path), path, 0);
  if (img.size(0) >= 3 && C == 1)
    throw Error("image '" + path + "' has " + std::to_string(img.size(0)) + " channels (colour), and this model takes grey images (1 channel): convert it to grey first");
  if (img.size(0) != C) img = convert_channels(img, C, o.background);
  if (img.size(1) != H || img.size(2) != W) img = fit_image(img, H, W, o.resize, o.background);
  return img;
}

int run_predict(const PredictFlags& f) {
  if (f.top < 1) throw Error("--top must be 1 or more");
  Setup su = setup(f.dev);
  auto ck = load_checkpoint(f.checkpoint, su.device);
  const auto s = as_its_run_evaluated(ck);
  const auto tt = load_for(ck.cfg, f.dev.data);  // the class names and the stored image size
  const int64_t C = tt.train.images.size(1), H = tt.train.images.size(2), W = tt.train.images.size(3);
  Dataset ds;
  std::vector<torch::Tensor> images;
  for (const auto& p : f.images) images.push_back(prepared(p, C, H, W, s.data.folder_options));
  ds.images = torch::stack(images);
  ds.labels = torch::zeros({ds.images.size(0)}, torch::kInt64);
  DeviceLoader loader(ds, su.device, s.step.resolve(su.device).compute, ck.mean, ck.std, s.step.channels_last, s.data.view);
  torch::NoGradGuard ng;
  ck.model->eval();
  std::vector<torch::Tensor> probs;
  for (int64_t b = 0; b < loader.size(); b += s.data.test_batch_size) {
    auto batch = loader.slice(b, std::min(loader.size(), b + s.data.test_batch_size));
    ComputeGuard compute(*ck.model, batch.x);
    auto logits = predict_with_tta([&](const torch::Tensor& x) { return ck.model->forward(x); }, batch.x, s.loop.tta,
                                   s.loop.tta_translate_weight);
    probs.push_back(torch::softmax(logits.to(torch::kFloat32), 1));
  }
  const auto p = torch::cat(probs).cpu();
  const int64_t k = std::min<int64_t>(f.top, p.size(1));
  const auto [values, index] = p.topk(k, 1);
  std::printf("%s: %lld image(s) as %lld x %lld x %lld (data.resize = %s), eval.tta = %s\n", f.checkpoint.c_str(),
              (long long)p.size(0), (long long)C, (long long)H, (long long)W, s.data.folder_options.resize.c_str(),
              s.loop.tta.c_str());
  for (int64_t i = 0; i < p.size(0); ++i) {
    std::printf("%s: %s %.1f%%", f.images[static_cast<size_t>(i)].c_str(),
                tt.train.classes.at(static_cast<size_t>(index[i][0].item<int64_t>())).c_str(), 100 * values[i][0].item<double>());
    for (int64_t j = 1; j < k; ++j)
      std::printf(j == 1 ? " (then %s %.1f%%" : ", %s %.1f%%",
                  tt.train.classes.at(static_cast<size_t>(index[i][j].item<int64_t>())).c_str(), 100 * values[i][j].item<double>());
    std::printf("%s\n", k > 1 ? ")" : "");
  }
  return 0;
}

}  // namespace

Command add_predict(CLI::App& app, const std::string&) {
  auto f = std::make_shared<PredictFlags>();
  auto* sub = app.add_subcommand("predict", "Classify image files (PNG, JPEG, BMP, any size) with a checkpoint, as its run evaluated");
  sub->add_option("--checkpoint,-c", f->checkpoint, "checkpoint.pt of a run")->required();
  sub->add_option("--top", f->top, "also print the next classes, this many in all (default 3)");
  sub->add_option("images", f->images, "image files")->required();
  add_device_options(sub, f->dev);
  return {sub, [f] { return run_predict(*f); }};
}

}  // namespace kiln::cli
