// What runs beside a training run rather than in it: train() and resume() (the run directory's
// lock), `kiln overfit`, `kiln lr-find`'s sweep, `kiln bench`'s timed run and evaluate().
#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/core/precision.h"
#include "kiln/nn/layers.h"
#include "kiln/train/loss.h"
#include "kiln/train/run.h"

namespace kiln {
namespace fs = std::filesystem;

namespace {
// Half-written files of a writer that died (atomic_write's "<name>.tmp.<pid>"): with the lock
// held, nobody else can be writing them.
void remove_stale_temporaries(const std::string& dir) {
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().find(".tmp.") != std::string::npos) remove_tree(e.path().string());
}
}  // namespace

RunResult train(const Config& cfg, const TrainTest& data, const RunOptions& opt) {
  std::unique_ptr<DirLock> lock;
  const bool writer = !opt.dist || opt.dist->rank() == 0;  // a data-parallel run's other ranks write nothing
  if (!opt.run_dir.empty() && writer) {
    make_dirs(opt.run_dir);
    lock = std::make_unique<DirLock>(opt.run_dir);
    remove_stale_temporaries(opt.run_dir);
  }
  Run run(cfg, data, opt);
  run.write_run_files();
  return run.run();
}

Config overfit_config(const Config& preset, int64_t examples, int64_t max_epochs, double lr) {
  Config c = preset;
  c.set_value("data.train_subset", examples);
  c.set_value("data.test_subset", examples);
  c.set_value("data.batch_size", examples);
  c.set_value("data.drop_last", false);
  c.set_value("aug.pad", int64_t{0});
  c.set_value("aug.flip", false);
  c.set_value("aug.cutout", int64_t{0});
  c.set_value("optim.label_smoothing", 0.0);  // 0.2 would put a floor of ~0.87 nats under the loss
  c.set_value("optim.weight_decay", 0.0);
  c.set_value("optim.loss_reduction", std::string("sum"));
  c.set_value("optim.lr", lr);
  c.set_value("optim.bn_bias_lr_mult", 1.0);
  c.set_value("optim.bn_bias_wd_div", 1.0);
  c.set_value("model.ghost_bn_splits", int64_t{1});  // ghost BN cannot split 10 examples
  c.set_value("ema.enabled", false);
  c.set_value("filter.keep", int64_t{0});  // every example, every step
  c.set_value("eval.tta", std::string("none"));
  c.set_value("schedule.epochs", max_epochs);
  c.set_value("schedule.knot_unit", std::string("fraction"));
  c.set_value("schedule.knots", Knots{{0, 1}, {1, 1}});
  c.set_value("train.eval_every", max_epochs);
  c.set_value("train.checkpoint_every", max_epochs);
  return c;
}

OverfitResult overfit(const Config& cfg, const TrainTest& data, double loss_target, RunOptions opt) {
  OverfitResult out;
  opt.stop_when = [&](const EpochMetrics& m) { return m.train_acc == 1.0 && m.train_loss < loss_target; };
  auto r = train(cfg, data, opt);
  out.curve = r.epochs;
  out.reached = !out.curve.empty() && opt.stop_when(out.curve.back());
  return out;
}

LrFindResult lr_find(const Config& cfg, const TrainTest& data, const torch::Device& device, double lr_min,
                     double lr_max, int64_t steps) {
  if (!(lr_min > 0 && lr_max > lr_min && steps >= 3)) throw Error("lr-find needs 0 < min < max and at least 3 steps");
  RunOptions opt;
  opt.device = device;
  opt.verbose = false;
  Run run(cfg, data, opt);
  return run.sweep(lr_min, lr_max, steps);
}

BenchRun bench_run(Config cfg, const TrainTest& data, const torch::Device& device) {
  cfg.set_value("train.eval_every", int64_t{1} << 40);  // only the final (TTA) evaluation
  RunOptions opt;
  opt.device = device;
  opt.verbose = false;
  Run run(cfg, data, opt);
  const std::clock_t cpu0 = std::clock();
  auto r = run.run();
  const std::clock_t cpu1 = std::clock();
  BenchRun b;
  b.cpu_seconds = static_cast<double>(cpu1 - cpu0) / CLOCKS_PER_SEC;
  b.test_acc = r.final_test_acc;
  b.warnings = r.warnings;
  b.whiten_seconds = run.whiten_seconds();
  b.train_seconds = r.train_seconds;
  b.eval_seconds = r.epochs.empty() ? 0 : r.epochs.back().eval_seconds;
  b.seconds = b.whiten_seconds + b.train_seconds + b.eval_seconds;
  const double fwd = run.forward_flops();
  const auto s = RunSettings::from_config(cfg);
  const auto views = static_cast<double>(tta_view_count(s.loop.tta));
  const int64_t test_n = data.test.head(s.data.test_subset).size();
  b.flops = fwd > 0 ? 3 * fwd * static_cast<double>(run.images_trained()) + views * fwd * static_cast<double>(test_n) + run.filter_flops() : 0;
  return b;
}

void merge_warnings(std::vector<std::string>& into, const std::vector<std::string>& from) {
  for (const auto& w : from)
    if (std::find(into.begin(), into.end(), w) == into.end()) into.push_back(w);
}

RunResult resume(const TrainTest& data, const RunOptions& opt_in) {
  RunOptions opt = opt_in;
  opt.resuming = true;
  auto ckpt = (fs::path(opt.run_dir) / "checkpoint.pt").string();
  std::unique_ptr<DirLock> lock;
  if (!opt.dist || opt.dist->rank() == 0) {
    lock = std::make_unique<DirLock>(opt.run_dir);
    remove_stale_temporaries(opt.run_dir);
  }
  auto ar = open_checkpoint(ckpt, opt.device);
  Run run(checkpoint_config(ar, ckpt), data, opt);
  reading_checkpoint(ckpt, [&] { run.load_checkpoint_state(ar); });
  return run.run();
}

torch::Tensor eval_logits(Classifier& model, const torch::Tensor& x, const std::string& tta, double translate_weight) {
  ComputeGuard compute(model, x);  // the batch's precision (bf16 data, fp32 master weights: autocast)
  return predict_with_tta([&](const torch::Tensor& t) { return model.forward(t); }, x, tta, translate_weight);
}

torch::Tensor logits_of(Classifier& model, const DeviceLoader& loader, int64_t bs, const std::string& tta,
                        double translate_weight) {
  torch::NoGradGuard ng;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<torch::Tensor> logits;
  for (int64_t b = 0; b < loader.size(); b += bs) {
    auto x = loader.slice(b, std::min(loader.size(), b + bs)).x;  // images only: labels untouched
    logits.push_back(eval_logits(model, x, tta, translate_weight).to(torch::kFloat32));
  }
  model.train(was_training);
  return torch::cat(logits);
}

EvalResult evaluate(Classifier& model, const DeviceLoader& loader, int64_t bs, const std::string& tta,
                    double translate_weight) {
  torch::NoGradGuard ng;
  bool was_training = model.is_training();
  model.eval();
  auto dev = loader.data().device();
  auto loss_sum = torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
  auto correct = torch::zeros({}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
  std::vector<torch::Tensor> preds;
  for (int64_t b = 0; b < loader.size(); b += bs) {
    auto batch = loader.slice(b, std::min(loader.size(), b + bs));
    auto logits = eval_logits(model, batch.x, tta, translate_weight);
    loss_sum += classification_loss(logits, batch.y, 0.0, true).to(torch::kFloat64);
    auto p = logits.argmax(1);
    correct += p.eq(batch.y).sum();
    preds.push_back(p);
  }
  model.train(was_training);
  EvalResult r;
  r.n = loader.size();
  auto both = torch::stack({loss_sum, correct.to(torch::kFloat64)}).cpu();
  r.loss = both[0].item<double>() / std::max<int64_t>(r.n, 1);
  r.acc = both[1].item<double>() / std::max<int64_t>(r.n, 1);
  r.predictions = preds.empty() ? torch::empty({0}, torch::kInt64) : torch::cat(preds).cpu();
  return r;
}

LrFindResult Run::sweep(double lr_min, double lr_max, int64_t steps) {
  std::vector<torch::Tensor> losses;
  std::vector<double> lrs;
  model_->train();
  for (int64_t s = 0, epoch = 0; s < steps; ++epoch) {
    auto plan = data_.train->plan(seed(), epoch, true, aug_);
    for (int64_t k = 0; k < data_.steps && s < steps; ++k, ++s) {
      double lr = lr_min * std::pow(lr_max / lr_min, static_cast<double>(s) / std::max<int64_t>(steps - 1, 1));
      optim_->sgd.set_lr(lr);
      auto b = data_.train->batch(plan, k, data_.batch_size, aug_);
      ComputeGuard compute(*model_, b.x);
      auto loss = classification_loss(model_->forward(b.x), b.y, s_.optim.label_smoothing, s_.optim.sum_loss());
      optim_->sgd.zero_grad();
      loss.backward();
      optim_->sgd.step();
      losses.push_back(loss.detach() / (s_.optim.sum_loss() ? static_cast<double>(b.y.size(0)) : 1.0));
      lrs.push_back(lr);
    }
  }
  auto host = torch::stack(losses).to(torch::kFloat64).cpu();  // the sweep's one read
  LrFindResult r;
  double avg = 0, best = 1e300;
  for (size_t i = 0; i < lrs.size(); ++i) {
    double l = host[static_cast<int64_t>(i)].item<double>();
    avg = 0.98 * avg + 0.02 * l;
    double sm = avg / (1 - std::pow(0.98, static_cast<double>(i + 1)));
    if (!std::isfinite(l) || (i > 10 && sm > 4 * best)) break;  // diverged
    best = std::min(best, sm);
    r.lr.push_back(lrs[i]);
    r.loss.push_back(l);
    r.smoothed.push_back(sm);
  }
  if (r.lr.size() < 3) throw Error("lr-find: the loss diverged at once; lower the starting LR (--min)");
  size_t imin = std::min_element(r.smoothed.begin(), r.smoothed.end()) - r.smoothed.begin();
  r.min_loss_lr = r.lr[imin];
  // Slopes over a stencil of +-n/10 points, so the noise of single steps (and the smoothing's
  // start-up) cannot win; only up to the minimum.
  const size_t k = std::max<size_t>(1, r.lr.size() / 10);
  double steepest = 0;
  size_t isteep = 0;
  for (size_t i = k; i + k < r.lr.size() && i <= imin; ++i) {
    double slope = (r.smoothed[i + k] - r.smoothed[i - k]) / (std::log(r.lr[i + k]) - std::log(r.lr[i - k]));
    if (slope < steepest) steepest = slope, isteep = i;
  }
  r.steepest_lr = isteep ? r.lr[isteep] : r.min_loss_lr;  // the loss never fell: its lowest point
  return r;
}

}  // namespace kiln
