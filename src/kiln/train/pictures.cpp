#include "kiln/train/pictures.h"

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/loader.h"
#include "kiln/report/png.h"
#include "kiln/report/show.h"
#include "kiln/train/run_settings.h"

namespace kiln {

namespace {

// What every picture shares: the settings, the class names, the output file, the grid scale.
struct Picture {
  RunSettings s;
  const TrainTest& tt;
  std::string file;
  int count, scale;
  std::string name(int64_t k) const {
    const auto& c = tt.train.classes;
    return k < static_cast<int64_t>(c.size()) ? c[static_cast<size_t>(k)] : std::to_string(k);
  }
  // The training subset on the CPU, normalised as training normalises it.
  struct Train {
    Dataset data;
    std::vector<double> mean, sd;
  };
  Train train(bool always_normalize = false) const {
    Train t{tt.train.head(s.data.train_subset), {}, {}};
    if (s.data.normalize || always_normalize) std::tie(t.mean, t.sd) = DeviceLoader::channel_stats(t.data);
    return t;
  }
};

void draw_augmented(const Picture& c, const Config& cfg) {
  auto t = c.train();
  DeviceLoader L(t.data, torch::kCPU, torch::kFloat32, t.mean, t.sd, false, c.s.data.view);
  AugmentOptions aug = AugmentOptions::from_config(cfg);
  auto b = L.batch(L.plan(c.s.loop.seed, 0, true, aug), 0, c.count, aug);
  std::vector<std::string> caps;
  for (int64_t i = 0; i < b.y.size(0); ++i) caps.push_back(c.name(b.y[i].item<int64_t>()));
  image_grid(to_pixels(b.x, t.mean, t.sd), caps, {}, 8, c.scale).save(c.file);
}

// Batch 0 of epoch `epoch` exactly as the trainer draws it: each example before (its label)
// and after augmentation ("aug"), side by side.
void draw_batch(const Picture& c, const Config& cfg, int64_t epoch) {
  auto t = c.train();
  DeviceLoader L(t.data, torch::kCPU, torch::kFloat32, t.mean, t.sd, false, c.s.data.view);
  AugmentOptions aug = AugmentOptions::from_config(cfg);
  auto plan = L.plan(c.s.loop.seed, epoch, true, aug);
  const int64_t n = std::min<int64_t>(c.count, L.size());
  auto b = L.batch(plan, 0, n, aug);
  auto first = plan.order.slice(0, 0, n).cpu();
  auto originals = t.data.images.index_select(0, first);
  if (!c.s.data.view.identity(originals.size(2), originals.size(3)))  // shown at the size the network sees
    originals = to_pixels(L.take(first).x, t.mean, t.sd);
  auto pairs = torch::stack({originals, to_pixels(b.x, t.mean, t.sd)}, 1).flatten(0, 1);
  std::vector<std::string> caps;
  for (int64_t i = 0; i < n; ++i) {
    caps.push_back(c.name(b.y[i].item<int64_t>()));
    caps.push_back("aug");
  }
  image_grid(pairs, caps, {}, 8, c.scale).save(c.file);
  std::printf("batch 0 of epoch %lld (seed %lld): each original, then augmented (aug)\n", (long long)epoch,
              (long long)c.s.loop.seed);
}

void draw_evaluation(const Picture& c, const std::string& what, LoadedCheckpoint* lc, const std::string& out) {
  if (!lc) throw Error("kiln show " + what + " needs --checkpoint RUN/checkpoint.pt");
  const auto& classes = c.tt.train.classes;
  auto test = c.tt.test.head(c.s.data.test_subset);
  // As its run evaluated (precision, layout, fused operators), so that the pictures show the run's
  // own predictions: its confusion matrix and its count of mistakes.
  const auto run = as_its_run_evaluated(*lc);
  DeviceLoader L(test, torch::kCPU, run.step.resolve(torch::kCPU).compute, lc->mean, lc->std, run.step.channels_last,
                 c.s.data.view);
  auto ev = evaluate(*lc->model, L, c.s.data.test_batch_size, c.s.loop.tta, c.s.loop.tta_translate_weight);
  if (what == "confusion") {
    auto m = confusion_matrix(ev.predictions, test.labels, static_cast<int64_t>(classes.size()));
    confusion_image(m, classes).save(c.file);
    std::string csv;
    for (int64_t i = 0; i < m.size(0); ++i) {
      for (int64_t j = 0; j < m.size(1); ++j) csv += (j ? "," : "") + std::to_string(m[i][j].item<int64_t>());
      csv += "\n";
    }
    atomic_write(out + "/confusion.csv", csv);
    return;
  }
  predictions_grid(test.images, test.labels, ev.predictions, classes, c.count, c.scale).save(c.file);
  auto wrong = ev.predictions.ne(test.labels).sum().item<int64_t>();
  std::printf("%lld of %lld test images misclassified; mistakes first (red: true>predicted)\n", (long long)wrong,
              (long long)test.size());
}

void draw_filters(const Picture& c, const std::string& what, LoadedCheckpoint* lc) {
  auto model = lc ? lc->model
                  : make_model(c.s.model, c.tt.train.images.size(1), static_cast<int64_t>(c.tt.train.classes.size()));
  auto net = std::dynamic_pointer_cast<ResNet9>(model);
  if (!net) throw Error("kiln show " + what + ": only for ResNet-9 models");
  if (what == "filters") {
    auto w = net->whiten ? net->whiten->weight : net->prep->conv->weight;
    image_grid(filters_to_pixels(w.detach()), {}, {}, 16, 8).save(c.file);
    if (!lc) std::printf("note: an untrained model (no --checkpoint): these are initial filters\n");
    return;
  }
  if (!net->whiten) throw Error("model.whiten is \"none\" in this configuration; try --set model.whiten=3x3");
  if (!lc) {  // fit on the training data as training would
    auto t = c.train(/*always_normalize=*/true);
    DeviceLoader L(t.data, torch::kCPU, torch::kFloat32, t.mean, t.sd);
    net->fit_to_data(L.data().slice(0, 0, std::min<int64_t>(L.size(), c.s.model.whiten_samples)));
  }
  auto lambda = net->whiten->eigenvalues.to(torch::kFloat64);
  const int64_t d = lambda.size(0);
  // Undo the 1/sqrt(lambda + eps) scaling: the eigenvectors themselves, largest first.
  auto v = net->whiten->weight.slice(0, 0, d).to(torch::kFloat64) * (lambda + net->whiten->eps).sqrt().view({-1, 1, 1, 1});
  std::vector<std::string> caps;
  for (int64_t i = 0; i < d; ++i) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2g", lambda[i].item<double>());
    caps.push_back(b);
  }
  image_grid(filters_to_pixels(v), caps, {}, 9, 12).save(c.file);
}

}  // namespace

std::string draw_picture(const std::string& what, const Config& cfg, LoadedCheckpoint* lc, const TrainTest& tt,
                         const std::string& out, int count, int64_t epoch) {
  make_dirs(out);
  const Picture c{RunSettings::from_config(cfg), tt, out + "/" + what + ".png", count, tt.train.images.size(2) <= 32 ? 3 : 1};
  if (what == "aug") draw_augmented(c, cfg);
  else if (what == "batch") draw_batch(c, cfg, epoch);
  else if (what == "predictions" || what == "confusion") draw_evaluation(c, what, lc, out);
  else if (what == "filters" || what == "whitening") draw_filters(c, what, lc);
  else throw Error("kiln show: '" + what + "' is not one of aug | batch | predictions | confusion | filters | whitening");
  return c.file;
}

void write_lr_find(const std::string& dir, const LrFindResult& r, const Config& cfg, const std::string& preset) {
  std::string csv = "step,lr,loss,smoothed\n";
  for (size_t i = 0; i < r.lr.size(); ++i) {
    char line[128];
    std::snprintf(line, sizeof line, "%zu,%.9g,%.9g,%.9g\n", i, r.lr[i], r.loss[i], r.smoothed[i]);
    csv += line;
  }
  atomic_write(dir + "/lr_find.csv", csv);
  // The raw losses are clipped to the smoothed curve's range so that one spike does not flatten the plot.
  const double top = *std::max_element(r.smoothed.begin(), r.smoothed.end()) * 1.1;
  std::vector<double> raw = r.loss;
  for (auto& v : raw) v = std::min(v, top);
  plot_xy(r.lr, {raw, r.smoothed}, {Rgb{190, 190, 230}, Rgb{30, 60, 200}}, true, r.steepest_lr).save(dir + "/lr_find.png");
  nlohmann::ordered_json lj{{"suggested_lr", r.steepest_lr},
                            {"min_loss_lr", r.min_loss_lr},
                            {"preset_lr", OptimizerSettings::from_config(cfg).lr},
                            {"steps", r.lr.size()},
                            {"preset", preset}};
  atomic_write(dir + "/lr_find.json", lj.dump(2) + "\n");
  atomic_write(dir + "/config.toml", cfg.to_toml());
}

}  // namespace kiln
