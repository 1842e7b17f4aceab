// `kiln predict`: a checkpoint's classes for image files (PNG, JPEG, BMP, WebP, HEIF/AVIF) of any size, prepared
// as the run's image folders are (kiln/data/folder.h: an alpha channel over data.background,
// grey images to RGB, fitted to the stored size by data.resize) and evaluated as the run
// evaluated (as_its_run_evaluated: its layout, precision, data.input_size / eval_crop view,
// normalisation and eval.tta). Prints each file's class and probability and the next --top.
// The class names and the stored size come from the checkpoint (cli/common.h's model_io; the
// run's dataset is read only for a checkpoint older than them).
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/folder.h"
#include "kiln/data/loader.h"
#include "kiln/pixels/image_files.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

namespace kiln::cli {
namespace {

struct PredictFlags {
  DeviceFlags dev;
  std::string checkpoint;
  std::vector<std::string> images;
  int64_t top = 3;
  std::string json;  // --json: the same predictions as a JSON file
  bool grey = false;  // --grey: colour images for a grey model by BT.601 luma instead of refused
};

int run_predict(const PredictFlags& f) {
  if (f.top < 1) throw Error("--top must be 1 or more");
  Setup su = setup(f.dev);
  auto ck = load_checkpoint(f.checkpoint, su.device);
  const auto s = as_its_run_evaluated(ck);
  const auto io = model_io(ck, f.checkpoint, f.dev.data);  // the class names and the stored image size
  const int64_t C = io.channels, H = io.height, W = io.width;
  auto read = s.data.folder_options;
  read.grey_by_luma = f.grey;
  px::PassedOver passed;
  const auto files = px::expand_folders(f.images, passed);  // a folder: its images at any depth, sorted by path
  if (!passed.empty()) std::fprintf(stderr, "note: %s\n", passed.text().c_str());
  // kChunk images at a time, so that a folder of any size is never held whole: their stored
  // pixels, then only their probabilities.
  constexpr size_t kChunk = 1024;
  std::vector<torch::Tensor> chunks;
  for (size_t at = 0; at < files.size(); at += kChunk) {
    std::vector<torch::Tensor> images;
    for (size_t i = at; i < std::min(files.size(), at + kChunk); ++i)
      images.push_back(read_image_as(files[i], C, H, W, read));  // refuses colour for a grey model unless --grey
    Dataset ds;
    ds.images = torch::stack(images);
    ds.labels = torch::zeros({ds.images.size(0)}, torch::kInt64);
    DeviceLoader loader(ds, su.device, s.step.resolve(su.device).compute, ck.mean, ck.std, s.step.channels_last, s.data.view);
    chunks.push_back(torch::softmax(logits_of(*ck.model, loader, s.data.test_batch_size, s.loop.tta, s.loop.tta_translate_weight), 1).cpu());
  }
  const auto p = torch::cat(chunks);
  const int64_t k = std::min<int64_t>(f.top, p.size(1));
  const auto [values, index] = p.topk(k, 1);
  std::printf("%s: %lld image(s) as %lld x %lld x %lld (data.resize = %s), eval.tta = %s\n", f.checkpoint.c_str(),
              (long long)p.size(0), (long long)C, (long long)H, (long long)W, s.data.folder_options.resize.c_str(),
              s.loop.tta.c_str());
  const auto pv = values.accessor<float, 2>();
  const auto pi = index.accessor<int64_t, 2>();
  auto cls = [&](int64_t i, int64_t j) { return io.classes.at(static_cast<size_t>(pi[i][j])).c_str(); };
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (int64_t i = 0; i < p.size(0); ++i) {
    std::printf("%s: %s %.1f%%", files[static_cast<size_t>(i)].c_str(), cls(i, 0), 100.0 * pv[i][0]);
    for (int64_t j = 1; j < k; ++j) std::printf(j == 1 ? " (then %s %.1f%%" : ", %s %.1f%%", cls(i, j), 100.0 * pv[i][j]);
    std::printf("%s\n", k > 1 ? ")" : "");
    nlohmann::ordered_json top = nlohmann::ordered_json::array();
    for (int64_t j = 0; j < k; ++j) top.push_back({{"class", cls(i, j)}, {"index", pi[i][j]}, {"probability", pv[i][j]}});
    rows.push_back({{"file", files[static_cast<size_t>(i)]}, {"top", top}});
  }
  if (!f.json.empty()) {
    const nlohmann::ordered_json j{{"checkpoint", f.checkpoint},
                                   {"input", {{"channels", C}, {"height", H}, {"width", W}, {"resize", s.data.folder_options.resize}}},
                                   {"tta", s.loop.tta},
                                   {"predictions", rows}};
    atomic_write(f.json, j.dump(1) + "\n");
  }
  return 0;
}

}  // namespace

Command add_predict(CLI::App& app, const std::string&) {
  auto f = std::make_shared<PredictFlags>();
  auto* sub = app.add_subcommand("predict", "Classify image files (PNG, JPEG, BMP, WebP, HEIF/AVIF, any size), or the images under folders, with a checkpoint, as its run evaluated");
  sub->add_option("--checkpoint,-c", f->checkpoint, "checkpoint.pt of a run")->required();
  sub->add_option("--top", f->top, "also print the next classes, this many in all (default 3)");
  sub->add_option("--json", f->json, "also write the predictions to this JSON file: each file's classes, indices and probabilities, best first");
  sub->add_flag("--grey", f->grey, "a grey model takes colour images made grey by BT.601 luma (0.299 R + 0.587 G + 0.114 B; refused without it)");
  sub->add_option("images", f->images, "image files, or folders: every image under a folder, at any depth, sorted by path (hidden files and folders passed over)")->required();
  add_device_options(sub, f->dev);
  return {sub, [f] { return run_predict(*f); }};
}

}  // namespace kiln::cli
