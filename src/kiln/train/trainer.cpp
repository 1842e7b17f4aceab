#include "kiln/train/trainer.h"

#include <c10/core/Event.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/split.h"
#include "kiln/report/html.h"
#include "kiln/report/memory.h"
#include "kiln/report/progress.h"
#include "kiln/report/show.h"
#include "kiln/report/tensorboard.h"
#include "kiln/nn/quantize.h"
#include "kiln/nn/tiny.h"
#include "kiln/train/loss.h"
#include "kiln/train/optim.h"
#include "kiln/train/proxy_filter.h"
#include "kiln/train/schedule.h"
#include "kiln/train/selftrain.h"
#include "kiln/train/static_step.h"
#include "kiln/train/sync_audit.h"
#ifdef KILN_HAS_CUDA
#include "kiln/cuda/device_info.h"
#endif

namespace kiln {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string EpochMetrics::to_json() const {
  nlohmann::ordered_json j;
  j["epoch"] = epoch;
  j["train_loss"] = train_loss;
  j["train_acc"] = train_acc;
  if (evaluated) {
    j["test_loss"] = test_loss;
    j["test_acc"] = test_acc;
  }
  j["lr"] = lr;
  j["epoch_seconds"] = epoch_seconds;
  j["eval_seconds"] = eval_seconds;
  j["images_per_s"] = images_per_s;
  j["train_seconds"] = train_seconds;
  j["live_allocations"] = live_allocations;
  j["live_bytes"] = live_bytes;
  return j.dump();
}

EpochMetrics EpochMetrics::from_json(const std::string& line) {
  auto e = nlohmann::json::parse(line);
  EpochMetrics m;
  m.epoch = e["epoch"];
  m.train_loss = e["train_loss"];
  m.train_acc = e["train_acc"];
  m.evaluated = e.contains("test_acc");
  if (m.evaluated) m.test_loss = e["test_loss"], m.test_acc = e["test_acc"];
  m.lr = e["lr"];
  m.epoch_seconds = e["epoch_seconds"];
  m.eval_seconds = e["eval_seconds"];
  m.images_per_s = e["images_per_s"];
  m.train_seconds = e["train_seconds"];
  m.live_allocations = e.value("live_allocations", int64_t{0});
  m.live_bytes = e.value("live_bytes", int64_t{0});
  return m;
}

namespace {

void set_generator_state(at::Generator g, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The progress bar's loss: copied off the device without blocking and read a step or more
// later, once the copy has landed (on the CPU the value is simply there).
class LateLoss {
 public:
  explicit LateLoss(const torch::Device& d) : device_(d) {
    if (d.is_cuda()) {
      host_ = torch::empty({}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
      event_ = std::make_unique<c10::Event>(d.type());
    }
  }
  void push(const torch::Tensor& loss) {
    if (!device_.is_cuda()) {
      SyncAudit::Allow host_value;  // on the CPU the value is simply there; CUDA takes the copy below
      last_ = loss.item<float>();
      return;
    }
    poll();
    if (pending_) return;  // the previous copy has not landed yet: skip this one
    host_.copy_(loss.detach().to(torch::kFloat32), /*non_blocking=*/true);
    c10::impl::VirtualGuardImpl guard(device_.type());
    event_->record(guard.getStream(device_));
    pending_ = true;
  }
  double last() {
    poll();
    return last_;
  }

 private:
  void poll() {
    if (pending_ && event_->query()) {
      last_ = host_.item<float>();
      pending_ = false;
    }
  }
  torch::Device device_;
  torch::Tensor host_;
  std::unique_ptr<c10::Event> event_;
  bool pending_ = false;
  double last_ = -1;
};

// train.sync_check: on CUDA, PyTorch's sync debug mode set to "error" while the training steps
// run, so a host-device synchronisation hidden in a step throws instead of silently costing time
// (NOT YET RUN on a GPU). On the CPU, where nothing waits, SyncAudit watches the steps for the
// operators that would synchronise on CUDA (kiln/train/sync_audit.h) and check() stops the run
// after the step that called one.
class SyncCheck {
 public:
  bool wanted = false;  // train.sync_check
  bool cuda = false;    // the run's device
  ~SyncCheck() { pause(); }
  void resume() { set(wanted); }
  void pause() { set(false); }
  // The CPU audit's finding in the step just done, as the error the run stops with.
  void check(int64_t global_step, int64_t epoch) {
    if (!audit_.watching()) return;
    const auto op = audit_.take();
    if (op.empty()) return;
    pause();
    throw Error("train.sync_check: training step " + std::to_string(global_step + 1) + " (epoch " + std::to_string(epoch + 1) +
                  ") calls " + op + ", which makes the host wait for the device on CUDA (seen on the CPU, where "
                  "kiln watches the steps' operators for it)");
  }

 private:
  void set(bool on) {
    if (on == active_) return;
    active_ = on;
    if (!cuda) {
      if (on) audit_.start();
      else audit_.stop();
      return;
    }
#ifdef KILN_HAS_CUDA
    kiln::cuda::set_sync_debug_mode(on ? 2 : 0);
#endif
  }
  bool active_ = false;
  SyncAudit audit_;
};

constexpr const char* kStepsHeader = "step,epoch,lr,loss\n";

class Run {
 public:
  Run(const Config& cfg, const TrainTest& data, const RunOptions& opt)
      : cfg_(cfg), opt_(opt), dev_(opt.device), progress_(opt.verbose) {
    install_cpu_allocation_counter();
    dtype_ = resolve_precision(cfg.s("train.precision"), dev_);
    channels_last_ = dev_.is_cuda() && cfg.b("train.channels_last");
    auto train = data.train.head(cfg.i("data.train_subset"));
    LabeledSplit split;
    if (cfg.i("data.labeled") > 0) {
      if (opt.labeled_index.defined()) {
        split = split_by_index(train, opt.labeled_index);
        if (split.labeled.size() != cfg.i("data.labeled"))
          throw Error("the given labeled split has " + std::to_string(split.labeled.size()) + " examples; data.labeled = " +
                      std::to_string(cfg.i("data.labeled")));
      } else {
        split = split_labeled(train, cfg.i("data.labeled"), static_cast<uint64_t>(cfg.i("data.split_seed")));
      }
      train = split.labeled;
    }
    auto test = data.test.head(cfg.i("data.test_subset"));
    in_channels_ = train.images.size(1);
    class_names_ = train.classes;
    classes_ = static_cast<int64_t>(train.classes.size());
    if (cfg.b("data.normalize")) std::tie(mean_, std_) = DeviceLoader::channel_stats(train);
    train_ = std::make_unique<DeviceLoader>(train, dev_, dtype_, mean_, std_, channels_last_);
    test_ = std::make_unique<DeviceLoader>(test, dev_, dtype_, mean_, std_, channels_last_);
    bs_ = cfg.i("data.batch_size");
    if (opt.dist && opt.dist->size() > 1) {
      dist_ = opt.dist;
      const int64_t W = dist_->size(), R = dist_->rank();
      if (cfg.b("train.static_step") || cfg.b("train.cuda_graph"))
        throw Error("data-parallel runs take the ordinary step (the gradient all-reduce sits between backward and the "
                    "optimiser); set train.static_step and train.cuda_graph to false");
      if (!cfg.s("selftrain.teacher").empty()) throw Error("selftrain.teacher: the student's pseudo-labeled batches are not sharded yet; run the student in one process");
      if (dist_->backend() == "gloo" && dev_.is_cuda()) throw Error("the gloo backend runs on the CPU: use --device cpu, or nccl on CUDA");
      // Every rank the same number of examples (the permutation's tail beyond a multiple of the
      // world size is dropped each epoch), so every rank takes the same number of steps.
      shard_n_ = train_->size() / W;
      if (shard_n_ == 0) throw Error("fewer training examples than ranks");
      // The test set: rank r evaluates examples r, r + W, ...; the sums are added across ranks.
      auto idx = torch::arange(R, test.size(), W, torch::kInt64);
      Dataset part{test.images.index_select(0, idx), test.labels.index_select(0, idx), test.classes};
      test_shard_ = std::make_unique<DeviceLoader>(part, dev_, dtype_, mean_, std_, channels_last_);
    }
    writes_ = !opt.run_dir.empty() && (!dist_ || dist_->rank() == 0);
    {
      const int64_t n = dist_ ? shard_n_ : train_->size();
      steps_ = cfg.b("data.drop_last") ? n / bs_ : (n + bs_ - 1) / bs_;
    }
    if (steps_ == 0)
      throw Error("data.batch_size = " + std::to_string(bs_) + " is larger than the " +
                  std::to_string(dist_ ? shard_n_ : train_->size()) + " training examples" + (dist_ ? " of each rank" : "") +
                  " with data.drop_last = true; lower the batch size or set data.drop_last=false");
    total_steps_ = static_cast<int64_t>(std::ceil(cfg.f("schedule.epochs") * static_cast<double>(steps_) - 1e-9));
    epochs_ = (total_steps_ + steps_ - 1) / steps_;  // the last one may be partial (airbench94: 9.9 epochs)
    sched_ = LrSchedule::from_config(cfg, steps_);
    aug_ = AugmentOptions::from_config(cfg);
    seed_ = static_cast<uint64_t>(cfg.i("train.seed"));

    torch::manual_seed(seed_);
    model_ = build_model();
    if (!cfg.s("train.init").empty() && !opt.resuming) init_from(cfg.s("train.init"));
    ema_every_ = cfg.i("ema.every");
    ema_momentum_ = cfg.f("ema.momentum");
    if (cfg.b("ema.enabled")) {
      ema_ = build_model(cfg_, model_.get());  // the model's whitening copied, not fitted a second time
      copy_weights(*ema_, *model_);
    }
    sgd_ = make_sgd(cfg, *model_, sched_.at_step(0));
    if (cfg.b("optim.lookahead")) {
      lookahead_ = std::make_unique<Lookahead>(*model_);
      la_every_ = cfg.i("optim.lookahead_every");
      la_decay_ = cfg.f("optim.lookahead_decay");
      la_power_ = cfg.f("optim.lookahead_power");
    }
    for (auto& item : model_->named_parameters())
      if (item.key() == "whiten_bias") whiten_bias_ = item.value();
    whiten_bias_steps_ = cfg.i("model.whiten_bias_epochs") * steps_;
    whiten_linear_ = cfg.s("optim.whiten_bias_schedule") == "linear_to_zero";
    sum_loss_ = cfg.s("optim.loss_reduction") == "sum";
    smoothing_ = cfg.f("optim.label_smoothing");
    if (cfg.b("train.qat")) {
      if (cfg.b("train.static_step") || cfg.b("train.cuda_graph"))
        throw Error("train.qat runs on the ordinary step; set train.static_step and train.cuda_graph to false");
      qat_weights_ = quantizable_weights(*model_);
    }
    plateau_ = Plateau::from_config(cfg);
    if (plateau_.enabled() && (cfg.b("train.static_step") || cfg.b("train.cuda_graph")))
      throw Error("schedule.plateau_factor < 1 changes the LR as training goes; the static step's LR table is fixed "
                  "(set train.static_step and train.cuda_graph to false)");
    if (plateau_.enabled() && cfg.s("schedule.plateau_metric") == "test_loss" && cfg.i("train.eval_every") != 1)
      throw Error("schedule.plateau_metric = \"test_loss\" needs the test loss of every epoch: set train.eval_every = 1");
    if ((cfg.b("train.static_step") || cfg.b("train.cuda_graph")) && !sgd_.is_sgd)
      throw Error("train.static_step / train.cuda_graph implement SGD and Muon only; optim.name = '" + cfg.s("optim.name") +
                  "' runs on the ordinary step (set both to false)");
    if (cfg.b("train.static_step") || cfg.b("train.cuda_graph")) {
      std::vector<double> lrs, wlrs;
      for (int64_t g = 0; g < total_steps_; ++g) {
        lrs.push_back(sched_.at_step(g));
        if (whiten_linear_) wlrs.push_back(whiten_lr(g));
      }
      StaticStepOptions so;
      so.label_smoothing = smoothing_;
      so.sum_loss = sum_loss_;
      so.momentum = cfg.f("optim.momentum");
      so.nesterov = cfg.b("optim.nesterov");
      so.lr_in_momentum = cfg.s("optim.sgd_form") == "lr_in_momentum";
      so.muon_lr_ratio = cfg.f("optim.muon_lr") / cfg.f("optim.lr");
      so.muon_momentum = cfg.f("optim.muon_momentum");
      so.muon_nesterov = cfg.b("optim.muon_nesterov");
      so.muon_normalize = cfg.b("optim.muon_normalize");
      so.muon_ns_steps = cfg.i("optim.muon_ns_steps");
      static_ = std::make_unique<StaticStep>(*model_, sgd_, so, lrs, wlrs, dev_);
      graph_wanted_ = cfg.b("train.cuda_graph");
      use_graph_ = graph_wanted_ && dev_.is_cuda();
#ifndef KILN_HAS_CUDA
      if (use_graph_) throw Error("train.cuda_graph: this kiln was built without CUDA sources");
#endif
      reset_accumulators();
    }
    reset_accumulators();
    sync_check_.wanted = cfg.b("train.sync_check");
    sync_check_.cuda = dev_.is_cuda();
    if (!cfg.s("selftrain.teacher").empty()) setup_student(split);
    if (cfg.i("filter.keep") > 0) setup_filter();
  }

  // filter.keep > 0 (airbench96_faster): the proxy network, its optimiser (the run's settings
  // and schedule), fitted to the data as the main network is (its whitening time counts).
  void setup_filter() {
    const int64_t keep = cfg_.i("filter.keep");
    if (cfg_.s("model.name") != "airbench")
      throw Error("filter.keep: the proxy is an airbench network, for model.name = \"airbench\" runs (this one: '" +
                  cfg_.s("model.name") + "')");
    if (keep >= bs_)
      throw Error("filter.keep = " + std::to_string(keep) + " must be smaller than data.batch_size = " + std::to_string(bs_));
    if (!cfg_.b("data.drop_last"))
      throw Error("filter.keep needs data.drop_last = true (every batch the same size, so every step keeps as many)");
    if (dist_) throw Error("filter.keep: proxy filtering is not data parallel yet; run it in one process");
    if (pseudo_) throw Error("filter.keep: proxy filtering and selftrain.teacher do not combine; set one of them off");
    Config pc = proxy_config(cfg_);
    torch::manual_seed(derive_seed(seed_, 91));  // the proxy's own init, independent of the main network's
    auto proxy = build_model(pc, model_.get());  // the main network's whitening, not fitted twice
    proxy->train();
    FilterOptions fo;
    fo.keep = keep;
    fo.train_every = cfg_.i("filter.train_every");
    fo.label_smoothing = smoothing_;
    fo.sum_loss = sum_loss_;
    filter_ = std::make_unique<ProxyFilter>(proxy, make_sgd(pc, *proxy, sched_.at_step(0)), fo);
  }

  // Self-training's student (issue #7): the teacher pseudo-labels the unlabeled rest of the
  // split (its labels were replaced by -1 in split_labeled; the true ones are used only to
  // measure the pseudo-labels), and every step adds a batch of pseudo-labeled examples,
  // cycling through them in their own seeded epochs, to the labeled batch.
  void setup_student(const LabeledSplit& split) {
    const auto& teacher_path = cfg_.s("selftrain.teacher");
    if (cfg_.i("data.labeled") <= 0)
      throw Error("selftrain.teacher needs data.labeled > 0: the unlabeled examples are the rest of that split");
    if (static_)
      throw Error("selftrain.teacher: the student's mixed batches run on the ordinary step; set train.static_step = false "
                  "and train.cuda_graph = false");
    auto unlabeled = split.unlabeled.head(cfg_.i("selftrain.unlabeled"));
    auto hidden = split.hidden_labels.slice(0, 0, unlabeled.size());
    if (unlabeled.size() == 0) throw Error("selftrain.teacher: the split leaves no unlabeled examples (data.labeled = all of them)");
    auto teacher = load_checkpoint(teacher_path, dev_);
    PseudoLabels pl;
    {
      DeviceLoader tl(unlabeled, dev_, resolve_precision(teacher.cfg.s("train.precision"), dev_), teacher.mean, teacher.std);
      pl = make_pseudo_labels(*teacher.model, tl, cfg_.i("data.test_batch_size"), cfg_.s("selftrain.mode"),
                              cfg_.f("selftrain.threshold"), cfg_.f("selftrain.temperature"), cfg_.s("selftrain.tta"));
    }
    if (pl.targets.size(1) != classes_)
      throw Error("selftrain.teacher = '" + teacher_path + "' predicts " + std::to_string(pl.targets.size(1)) +
                  " classes; this dataset has " + std::to_string(classes_));
    pseudo_quality_ = pseudo_label_quality(pl, hidden);
    auto keep = pl.keep.nonzero().view({-1});
    Dataset kept{unlabeled.images.index_select(0, keep), torch::full({keep.size(0)}, -1, torch::kInt64), unlabeled.classes};
    pbs_ = std::max<int64_t>(1, std::llround(static_cast<double>(bs_) * cfg_.f("selftrain.ratio")));
    if (kept.size() < pbs_)
      throw Error("selftrain: only " + std::to_string(kept.size()) + " unlabeled examples pass selftrain.threshold = " +
                  std::to_string(cfg_.f("selftrain.threshold")) + ", fewer than one pseudo-labeled batch (" +
                  std::to_string(pbs_) + " = data.batch_size x selftrain.ratio); lower the threshold or the ratio");
    pseudo_ = std::make_unique<DeviceLoader>(kept, dev_, dtype_, mean_, std_, channels_last_);
    pseudo_targets_ = pl.targets.index_select(0, keep).to(dev_, torch::kFloat32);
    pseudo_batches_ = kept.size() / pbs_;
    student_loss_ = std::make_unique<StudentLoss>(cfg_.s("selftrain.pseudo_weight"), cfg_.f("selftrain.weight"),
                                                  cfg_.b("selftrain.loss_normalization"), smoothing_);
    char buf[256];
    std::snprintf(buf, sizeof buf, "pseudo-labels from %s: %lld of %lld unlabeled kept (coverage %.1f%%), accuracy %.2f%%",
                  teacher_path.c_str(), (long long)pseudo_quality_.kept, (long long)unlabeled.size(),
                  100 * pseudo_quality_.coverage, 100 * pseudo_quality_.accuracy);
    progress_.line(buf);
    pseudo_json_ = nlohmann::ordered_json{{"teacher", teacher_path},
                                          {"unlabeled", unlabeled.size()},
                                          {"kept", pseudo_quality_.kept},
                                          {"coverage", pseudo_quality_.coverage},
                                          {"accuracy", pseudo_quality_.accuracy},
                                          {"mode", cfg_.s("selftrain.mode")},
                                          {"threshold", cfg_.f("selftrain.threshold")},
                                          {"temperature", cfg_.f("selftrain.temperature")},
                                          {"tta", cfg_.s("selftrain.tta")},
                                          {"pseudo_batch", pbs_},
                                          {"labeled_batch", bs_}}
                       .dump(2);
  }

  // The pseudo-labeled batch of global step g: its own epochs over the kept examples, a
  // function of (seed, g) alone, so a resumed run draws exactly the same batches.
  std::pair<Batch, torch::Tensor> pseudo_batch(int64_t g) {
    const int64_t e = g / pseudo_batches_, k = g % pseudo_batches_;
    if (!pseudo_plan_ || pseudo_plan_->epoch != e)
      pseudo_plan_ = std::make_unique<EpochPlan>(pseudo_->plan(derive_seed(seed_, 77), e, true, aug_));
    auto b = pseudo_->batch(*pseudo_plan_, k, pbs_, aug_);
    auto targets = pseudo_targets_.index_select(0, pseudo_plan_->order.slice(0, k * pbs_, (k + 1) * pbs_));
    return {b, targets};
  }

  // The model as the config says: built, fitted to the training data (whitening), on the
  // device, in the run's precision.
  // whiten_from: a model of the same whitening settings, fitted already, whose whitening
  // tensors ("whiten.*") are copied instead of fitting again (the proxy of filter.keep: the
  // same eigenvectors of the same patches).
  ClassifierPtr build_model() { return build_model(cfg_); }
  ClassifierPtr build_model(const Config& c, Classifier* whiten_from = nullptr) {
    auto m = make_model(c, in_channels_, classes_);
    m->to(dev_);
    auto n = std::min<int64_t>(train_->size(), c.i("model.whiten_samples"));
    if (c.s("model.whiten") != "none" && whiten_from) {
      torch::NoGradGuard ng;
      auto src = whiten_from->named_buffers();
      int64_t copied = 0;
      for (auto& b : m->named_buffers())
        if (b.key().rfind("whiten.", 0) == 0 && src.contains(b.key())) {
          b.value().copy_(src[b.key()]);
          ++copied;
        }
      if (copied == 0) throw Error("internal: no whitening tensors to copy to the proxy network");
    } else if (c.s("model.whiten") != "none") {
      if (dev_.is_cuda()) sync_device();
      auto t = Clock::now();
      m->fit_to_data(train_->data().slice(0, 0, n).to(torch::kFloat32));
      if (dev_.is_cuda()) sync_device();
      whiten_seconds_ += seconds_since(t);
    }
    set_precision(*m, dtype_);
    if (channels_last_) to_channels_last(*m);
    return m;
  }

  // train.init: copies every tensor of the checkpoint's model whose name and shape match.
  void init_from(const std::string& ckpt) {
    auto src = load_checkpoint(ckpt, torch::kCPU);
    std::map<std::string, torch::Tensor> theirs;
    for (auto& p : src.model->named_parameters()) theirs[p.key()] = p.value();
    for (auto& b : src.model->named_buffers()) theirs[b.key()] = b.value();
    int64_t copied = 0, total = 0;
    std::string skipped;
    torch::NoGradGuard ng;
    auto take = [&](const std::string& name, torch::Tensor t) {
      ++total;
      auto it = theirs.find(name);
      if (it != theirs.end() && it->second.sizes() == t.sizes()) {
        t.copy_(it->second.to(t.device()).to(t.dtype()));
        ++copied;
      } else {
        skipped += (skipped.empty() ? "" : ", ") + name;
      }
    };
    for (auto& p : model_->named_parameters()) take(p.key(), p.value());
    for (auto& b : model_->named_buffers()) take(b.key(), b.value());
    if (copied == 0) throw Error("train.init = '" + ckpt + "': no tensor of that checkpoint's model matches this model by name and shape");
    progress_.line("initialised " + std::to_string(copied) + " of " + std::to_string(total) + " tensors from " + ckpt +
                   (skipped.empty() ? std::string() : "; kept the initialisation of: " + skipped));
  }

  void write_run_files() {
    if (!writes_) return;
    make_dirs(opt_.run_dir);
    atomic_write(path("config.toml"), cfg_.to_toml());
    atomic_write(path("provenance.json"), provenance_json(dev_, opt_.command_line) + "\n");
    atomic_write(path("metrics.jsonl"), std::string());
    atomic_write(path("steps.csv"), std::string(kStepsHeader));
    if (!pseudo_json_.empty()) atomic_write(path("pseudo_labels.json"), pseudo_json_ + "\n");
  }

  RunResult run() {
    RunResult r;
    r.parameters = count_parameters(*model_);
    {
      char buf[200];
      std::snprintf(buf, sizeof buf, "model %s: %lld parameters, %.1f KB of fp32 weights, %.2f MFLOP per %lldx%lld image",
                    cfg_.s("model.name").c_str(), (long long)r.parameters, weight_bytes(*model_) / 1024.0,
                    forward_flops() / 1e6, (long long)train_->data().size(2), (long long)train_->data().size(3));
      progress_.line(buf);
    }
    r.run_dir = opt_.run_dir;
    LateLoss late(dev_);
    SyncBnScope sync_bn(dist_ && cfg_.b("dist.sync_bn") ? dist_.get() : nullptr);
    if (dist_) {
      // Every rank starts from rank 0's weights and buffers (the same seed gives the same ones;
      // this makes it so whatever the init).
      auto t = model_tensors(*model_);
      dist_->broadcast(t, 0);
      if (ema_) {
        auto e = model_tensors(*ema_);
        dist_->broadcast(e, 0);
      }
      progress_.line("data parallel: rank " + std::to_string(dist_->rank()) + " of " + std::to_string(dist_->size()) + " (" +
                     dist_->backend() + "), " + std::to_string(shard_n_) + " examples a rank an epoch, batch " +
                     std::to_string(bs_) + " a rank (" + std::to_string(bs_ * dist_->size()) + " in all), BN statistics " +
                     (cfg_.b("dist.sync_bn") ? "synchronised" : "per rank"));
    }
    if (writes_) {
      tb_ = std::make_unique<EventWriter>(opt_.run_dir);
      log_augmented_batch();
    }
    const int64_t every = std::max<int64_t>(1, cfg_.i("train.progress_every"));
    for (; epoch_ < epochs_; ++epoch_) {
      auto plan = train_->plan(seed_, epoch_, /*shuffle=*/true, aug_);
      if (dist_) plan = shard_plan(plan, dist_->rank(), dist_->size(), shard_n_);
      model_->train();
      if (whiten_bias_.defined()) whiten_bias_.requires_grad_(global_step_ < whiten_bias_steps_);
      if (static_) static_->set_position(global_step_, step_);
      if (dev_.is_cuda()) sync_device();  // the clock starts when the device is idle
      auto t0 = Clock::now();
      sync_check_.resume();
      try {
        for (; step_ < steps_ && global_step_ < total_steps_; ++step_, ++global_step_) {
          if ((opt_.stop && opt_.stop->load()) || global_step_ == opt_.stop_after_steps) {
            sync_check_.pause();
            epoch_seconds_ += seconds_since(t0);
            save_checkpoint();
            progress_.line("stopped at epoch " + std::to_string(epoch_ + 1) + " step " + std::to_string(step_) +
                           "; checkpoint written" +
                           (opt_.run_dir.empty() ? "" : ": resume with  kiln train --resume " + opt_.run_dir));
            r.interrupted = true;
            r.epochs = history_;
            write_report_quietly();
            return r;
          }
          lr_ = sched_.at_step(global_step_) * plateau_.multiplier;
          if (whiten_bias_.defined() && global_step_ == whiten_bias_steps_) {
            whiten_bias_.requires_grad_(false);
            drop_graph();      // the step's work changed: capture again
            reducer_.reset();  // and the all-reduce's parameters (its hooks go with it)
          }
          auto b = train_->batch(plan, step_, bs_, aug_);
          if (filter_) b = filter_->filter(b, global_step_, lr_);  // the kept examples alone go on
          if (static_) {
            static_step(b);
            after_step(b.y.size(0));
            if (opt_.in_step) opt_.in_step();
            sync_check_.check(global_step_, epoch_);
            continue;
          }
          sgd_.set_lr(lr_, whiten_linear_ ? whiten_lr(global_step_) : -1.0);
          torch::Tensor logits, loss;
          // train.qat: the step sees the int8 round trip of the weights; the fp32 ones are put
          // back before the optimiser applies the gradient (straight-through estimator).
          std::vector<torch::Tensor> masters;
          if (!qat_weights_.empty()) {
            torch::NoGradGuard ng;
            for (auto& w : qat_weights_) {
              masters.push_back(w.detach().clone());
              w.copy_(quantize_per_channel(w).dequantize().to(w.scalar_type()));
            }
          }
          if (pseudo_) {
            // One forward over labeled + pseudo-labeled examples (BN statistics over both), the
            // student's loss on the two parts (kiln/train/selftrain.h); x n_l keeps optim.lr's
            // units when the loss is a sum.
            auto [pb, targets] = pseudo_batch(global_step_);
            const int64_t nl = b.y.size(0);
            auto all = model_->forward(torch::cat({b.x, pb.x}));
            logits = all.slice(0, 0, nl);
            auto parts = (*student_loss_)(logits, b.y, all.slice(0, nl), targets);
            loss = sum_loss_ ? parts.total * static_cast<double>(nl) : parts.total;
          } else {
            logits = model_->forward(b.x);
            loss = classification_loss(logits, b.y, smoothing_, sum_loss_);
          }
          sgd_.zero_grad();
          // Data parallel: the gradients summed over the ranks, overlapped with backward; averaged
          // for a mean loss (the mean over the union batch), summed for a summed loss (the sum).
          if (dist_) grad_reducer().begin();
          loss.backward();
          if (dist_) reducer_->finish();
          if (!masters.empty()) {
            torch::NoGradGuard ng;
            for (size_t i = 0; i < masters.size(); ++i) qat_weights_[i].copy_(masters[i]);
          }
          sgd_.step();
          {
            torch::NoGradGuard ng;
            auto l = loss.detach().to(torch::kFloat64);
            loss_sum_ += sum_loss_ ? l : l * static_cast<double>(b.y.size(0));
            correct_ += logits.argmax(1).eq(b.y).sum();
            step_losses_[step_].copy_(sum_loss_ ? l / static_cast<double>(b.y.size(0)) : l);
          }
          after_step(b.y.size(0));
          if (progress_.live() && (step_ + 1) % every == 0) {
            late.push(loss);
            double el = epoch_seconds_ + seconds_since(t0);
            double ips = seen_ / std::max(el, 1e-9);
            double remaining = double(total_steps_ - global_step_ - 1) * b.y.size(0) / std::max(ips, 1e-9);
            double shown = late.last();
            progress_.update(epoch_ + 1, epochs_, step_ + 1, steps_, shown < 0 ? -1 : (sum_loss_ ? shown / bs_ : shown),
                             ips, remaining);
          }
          if (opt_.in_step) opt_.in_step();
          sync_check_.check(global_step_, epoch_);
        }
      } catch (const c10::Error& e) {
        sync_check_.pause();
        if (sync_check_.wanted && std::string(e.what()).find("synchroniz") != std::string::npos)
          throw Error("train.sync_check: a host-device synchronisation inside training step " + std::to_string(global_step_ + 1) +
                      " (epoch " + std::to_string(epoch_ + 1) + "): " + e.what_without_backtrace());
        throw;
      }
      sync_check_.pause();
      finish_epoch(t0);
      step_ = 0;
      if (opt_.stop_when && opt_.stop_when(history_.back())) {
        r.stopped_early = true;
        break;
      }
    }
    r.epochs = history_;
    if (!history_.empty()) {
      r.final_test_acc = history_.back().test_acc;
      r.final_test_loss = history_.back().test_loss;
      r.train_seconds = history_.back().train_seconds;
    }
    if (writes_) {
      nlohmann::ordered_json j;
      j["final_test_acc"] = r.final_test_acc;
      j["final_test_loss"] = r.final_test_loss;
      j["train_seconds"] = r.train_seconds;
      j["epochs"] = epochs_;
      j["parameters"] = r.parameters;
      j["weight_bytes"] = weight_bytes(*model_);  // fp32: every parameter and floating-point buffer
      j["flops_per_image"] = forward_flops();     // forward pass, 2 x multiply-adds of convs and linears (0: unknown)
      if (!pseudo_json_.empty()) j["pseudo_labels"] = nlohmann::json::parse(pseudo_json_);
      if (filter_)
        j["filter"] = {{"keep", filter_->options().keep},
                       {"batch", bs_},
                       {"train_every", filter_->options().train_every},
                       {"proxy_parameters", count_parameters(filter_->proxy())},
                       {"proxy_flops_per_image", filter_->proxy().forward_flops(train_->data().size(2), train_->data().size(3))}};
      atomic_write(path("final.json"), j.dump(2) + "\n");
      log_final_pictures();
      write_report_quietly();
    }
    return r;
  }

  // The final evaluation as pictures: a prediction grid (mistakes first) and the confusion
  // matrix, as PNGs in the run directory and as TensorBoard image summaries.
  void log_final_pictures() {
    if (dist_)  // the ranks evaluated shares of the test set: rank 0 predicts all of it for the pictures
      last_eval_ = evaluate(ema_ ? *ema_ : *model_, *test_, cfg_.i("data.test_batch_size"), cfg_.s("eval.tta"),
                            cfg_.f("eval.tta_translate_weight"));
    if (!last_eval_.predictions.defined() || last_eval_.predictions.numel() == 0) return;
    auto labels = test_->labels().cpu();
    auto grid = predictions_grid(to_pixels(test_->data(), mean_, std_), labels, last_eval_.predictions, class_names_, 48,
                                 test_->data().size(2) <= 32 ? 2 : 1);
    auto conf = confusion_image(confusion_matrix(last_eval_.predictions, labels, classes_), class_names_);
    try {
      grid.save(path("predictions.png"));
      conf.save(path("confusion.png"));
    } catch (const Error& e) {
      progress_.line(std::string("note: ") + e.what());
    }
    if (tb_) {
      tb_->image("test/predictions", grid.png(), grid.height, grid.width, 3, global_step_);
      tb_->image("test/confusion", conf.png(), conf.height, conf.width, 3, global_step_);
      tb_->flush();
    }
  }

  void write_report_quietly() {
    if (!writes_) return;
    try {
      write_report(opt_.run_dir);
    } catch (const std::exception& e) {  // a report must never cost the run
      progress_.line(std::string("note: report.html not written: ") + e.what());
    }
  }

  // TensorBoard image: the first 32 augmented training images of epoch 1, as the model sees them.
  void log_augmented_batch() {
    auto plan = train_->plan(seed_, 0, true, aug_);
    auto b = train_->batch(plan, 0, std::min<int64_t>(32, bs_), aug_);
    std::vector<std::string> caps;
    auto y = b.y.cpu();
    for (int64_t i = 0; i < y.size(0); ++i) {
      auto k = y[i].item<int64_t>();
      caps.push_back(k < static_cast<int64_t>(class_names_.size()) ? class_names_[k] : std::to_string(k));
    }
    auto grid = image_grid(to_pixels(b.x, mean_, std_), caps, {}, 8, b.x.size(2) <= 32 ? 2 : 1);
    tb_->image("data/augmented_batch", grid.png(), grid.height, grid.width, 3, 0);
    try {
      grid.save(path("augmented_batch.png"));
    } catch (const Error& e) {  // a picture must never cost the run
      progress_.line(std::string("note: ") + e.what());
    }
    tb_->flush();
  }

  LrFindResult sweep(double lr_min, double lr_max, int64_t steps) {
    std::vector<torch::Tensor> losses;
    std::vector<double> lrs;
    model_->train();
    for (int64_t s = 0, epoch = 0; s < steps; ++epoch) {
      auto plan = train_->plan(seed_, epoch, true, aug_);
      for (int64_t k = 0; k < steps_ && s < steps; ++k, ++s) {
        double lr = lr_min * std::pow(lr_max / lr_min, static_cast<double>(s) / std::max<int64_t>(steps - 1, 1));
        sgd_.set_lr(lr);
        auto b = train_->batch(plan, k, bs_, aug_);
        auto loss = classification_loss(model_->forward(b.x), b.y, smoothing_, sum_loss_);
        sgd_.zero_grad();
        loss.backward();
        sgd_.step();
        losses.push_back(loss.detach() / (sum_loss_ ? static_cast<double>(b.y.size(0)) : 1.0));
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

  void load_checkpoint_state(torch::serialize::InputArchive& ar) {
    torch::serialize::InputArchive m, o;
    ar.read("model", m);
    model_->load(m);
    ar.read("optim", o);
    sgd_.load(o);
    if (lookahead_) {
      torch::serialize::InputArchive la;
      ar.read("lookahead", la);
      lookahead_->load(la);
    }
    if (ema_) {
      torch::serialize::InputArchive e;
      ar.read("ema", e);
      ema_->load(e);
    }
    if (filter_) {
      torch::serialize::InputArchive fa;
      ar.read("filter_proxy", fa);
      filter_->load(fa);
    }
    torch::Tensor pos, timing, acc, world;
    const int64_t saved_world = ar.try_read("world_size", world) ? world[0].item<int64_t>() : 1;
    const int64_t now_world = dist_ ? dist_->size() : 1;
    if (saved_world != now_world)
      throw Error("this checkpoint was written by a run of " + std::to_string(saved_world) + " rank(s); resume it with " +
                  std::to_string(saved_world) + " (now " + std::to_string(now_world) + "): each rank's shard and step count depend on it");
    ar.read("position", pos);
    ar.read("timing", timing);
    ar.read("accumulators", acc);
    epoch_ = pos[0].item<int64_t>();
    step_ = pos[1].item<int64_t>();
    global_step_ = pos[2].item<int64_t>();
    seen_ = pos[3].item<int64_t>();
    epoch_seconds_ = timing[0].item<double>();
    train_seconds_ = timing[1].item<double>();
    torch::Tensor sl;
    bool have_sl = ar.try_read("step_losses", sl) && sl.numel() == steps_;
    if (static_) {
      loss_sum_.copy_(acc[0]);
      correct_.copy_(acc[1].to(torch::kInt64));
      if (have_sl) step_losses_.copy_(sl);
      torch::serialize::InputArchive so;
      ar.read("static_optim", so);
      static_->load_state(so);
    } else {
      loss_sum_ = acc[0].to(dev_).clone();
      correct_ = acc[1].to(torch::kInt64).to(dev_).clone();
      if (have_sl) step_losses_ = sl.to(dev_).clone();
    }
    if (plateau_.enabled()) {
      torch::Tensor pl;
      ar.read("plateau", pl);
      plateau_.multiplier = pl[0].item<double>();
      plateau_.best = pl[1].item<double>();
      plateau_.bad_epochs = static_cast<int64_t>(pl[2].item<double>());
    }
    if (student_loss_) {
      torch::Tensor st;
      ar.read("student_loss", st);
      student_loss_->set_state(st, dev_);
    }
    torch::Tensor rng;
    ar.read("rng_cpu", rng);
    set_generator_state(at::detail::getDefaultCPUGenerator(), rng);
    if (dev_.is_cuda() && ar.try_read("rng_device", rng)) set_generator_state(at::globalContext().defaultGenerator(dev_), rng);
    c10::IValue hist;
    ar.read("history", hist);
    history_.clear();
    std::string lines;
    for (auto& e : nlohmann::json::parse(hist.toStringRef())) {
      history_.push_back(EpochMetrics::from_json(e.dump()));
      lines += history_.back().to_json() + "\n";
    }
    // metrics.jsonl is rewritten to exactly the epochs the checkpoint holds.
    if (writes_) {
      atomic_write(path("metrics.jsonl"), lines);
      // steps.csv likewise: the steps of the completed epochs only.
      std::string steps = kStepsHeader;
      if (file_exists(path("steps.csv"))) {
        auto b = read_file(path("steps.csv"));
        std::istringstream in(std::string(b.begin(), b.end()));
        std::string line;
        std::getline(in, line);
        while (std::getline(in, line))
          if (!line.empty() && std::stoll(line.substr(0, line.find(','))) <= epoch_ * steps_) steps += line + "\n";
      }
      atomic_write(path("steps.csv"), steps);
    }
  }

 private:
  std::string path(const std::string& name) const { return (fs::path(opt_.run_dir) / name).string(); }

  // The gradient all-reduce for the parameters that take gradients: built on first use and kept
  // across steps; the step that freezes airbench's whitening bias drops it (the set changed).
  dist::GradReducer& grad_reducer() {
    if (!reducer_) {
      std::vector<torch::Tensor> params;
      for (auto& p : model_->parameters())
        if (p.requires_grad()) params.push_back(p);
      reducer_ = std::make_unique<dist::GradReducer>(*dist_, params, !sum_loss_,
                                                      static_cast<int64_t>(cfg_.f("dist.bucket_mb") * (1 << 20)));
    }
    return *reducer_;
  }

  // dist.sync_bn for the length of a run.
  struct SyncBnScope {
    explicit SyncBnScope(dist::Group* g) { dist::set_sync_bn_group(g); }
    ~SyncBnScope() { dist::set_sync_bn_group(nullptr); }
  };
  static std::vector<torch::Tensor> model_tensors(Classifier& m) {
    std::vector<torch::Tensor> t;
    for (auto& p : m.parameters()) t.push_back(p.data());
    for (auto& b : m.buffers()) t.push_back(b);
    return t;
  }
  // BN's running statistics (and any other floating-point buffer) averaged over the ranks, so
  // every rank evaluates and rank 0 saves the same model (per-rank BN drifts them apart; with
  // dist.sync_bn they are equal already).
  void average_buffers() {
    torch::NoGradGuard ng;
    for (Classifier* m : {model_.get(), ema_.get()}) {
      if (!m) continue;
      std::vector<torch::Tensor> bufs;
      for (auto& b : m->buffers())
        if (b.is_floating_point()) bufs.push_back(b);
      if (bufs.empty()) continue;
      std::vector<torch::Tensor> flat_views;
      for (auto& b : bufs) flat_views.push_back(b.reshape({-1}).to(torch::kFloat64));
      std::vector<torch::Tensor> v{torch::cat(flat_views)};
      dist_->all_reduce_sum(v);
      v[0].div_(static_cast<double>(dist_->size()));
      int64_t at = 0;
      for (auto& b : bufs) {
        b.copy_(v[0].slice(0, at, at + b.numel()).view_as(b));
        at += b.numel();
      }
    }
  }

  double whiten_lr(int64_t step) const {
    if (whiten_bias_steps_ <= 0) return 0;
    return sched_.peak_lr * std::max(0.0, 1.0 - static_cast<double>(step) / whiten_bias_steps_);
  }

  // The bookkeeping after a step, shared by both paths: counts, EMA, Lookahead (outside any
  // captured graph: they work on the weights in place).
  void after_step(int64_t n) {
    seen_ += n;
    images_trained_ += n;
    if (ema_ && (global_step_ + 1) % ema_every_ == 0) ema_update(*ema_, *model_, ema_momentum_);
    if (lookahead_ && (global_step_ + 1) % la_every_ == 0)
      lookahead_->update(*model_, la_decay_ * std::pow(static_cast<double>(global_step_ + 1) / total_steps_, la_power_));
  }

  // One step through the static step: eagerly, or (train.cuda_graph) eagerly for the first
  // three steps of a capture, then captured once and replayed. The capture's footprint (the
  // address of every tensor the step uses) is compared before each replay: a tensor that moved
  // would leave the graph reading and writing memory it no longer owns, silently. On the CPU,
  // where train.cuda_graph has no graph, the same contract is checked from the fourth step on.
  void static_step(const Batch& b) {
    static_->load(b.x, b.y);
    if (graph_wanted_) {
      if (captured_at_ < 0 && ++eager_before_capture_ > 3) {
#ifdef KILN_HAS_CUDA
        if (use_graph_) {
          if (!graph_) graph_ = std::make_unique<kiln::cuda::GraphStep>();
          sync_check_.pause();  // capturing is once, not a step's work
          graph_->capture([this] { static_->run(); });  // on the warm-ups' side stream; records, does not run
          sync_check_.resume();
        }
#endif
        footprint_ = static_->footprint();
        captured_at_ = global_step_;
      } else if (captured_at_ >= 0) {
        const auto what = static_->moved_since(footprint_);
        if (!what.empty())
          throw Error("train.cuda_graph: " + what + " changed after the step was captured (at step " + std::to_string(captured_at_ + 1) +
                      "; now step " + std::to_string(global_step_ + 1) +
                      "): a replay repeats the recorded addresses and host decisions, so it would use memory the tensor no "
                      "longer owns or a decision no longer true. What changes it between steps must write in place "
                      "(copy_, zero_), or drop the graph so that the step is captured again");
      }
#ifdef KILN_HAS_CUDA
      if (use_graph_) {
        if (!graph_) graph_ = std::make_unique<kiln::cuda::GraphStep>();
        if (graph_->captured()) graph_->replay();
        else graph_->warm_up([this] { static_->run(); });  // the three steps before a capture, on its side stream
        return;
      }
#endif
    }
    static_->run();
  }

  void drop_graph() {
#ifdef KILN_HAS_CUDA
    graph_.reset();
#endif
    eager_before_capture_ = 0;
    captured_at_ = -1;
    footprint_.clear();
  }

  void sync_device() { torch::zeros({1}, torch::TensorOptions().device(dev_)).cpu(); }

  void reset_accumulators() {
    if (static_) {  // the static step's own tensors, zeroed in place
      static_->reset_epoch(steps_);
      loss_sum_ = static_->loss_sum;
      correct_ = static_->correct;
      step_losses_ = static_->step_losses;
      seen_ = 0;
      epoch_seconds_ = 0;
      return;
    }
    auto o = torch::TensorOptions().device(dev_);
    loss_sum_ = torch::zeros({}, o.dtype(torch::kFloat64));
    correct_ = torch::zeros({}, o.dtype(torch::kInt64));
    step_losses_ = torch::zeros({steps_}, o.dtype(torch::kFloat64));
    seen_ = 0;
    epoch_seconds_ = 0;
  }

  void finish_epoch(Clock::time_point t0) {
    // The epoch's single read of the device: loss sum (NaN/Inf flags itself) and hits.
    auto both = torch::cat({torch::stack({loss_sum_, correct_.to(torch::kFloat64)}), step_losses_});
    if (dist_) {  // one all-reduce an epoch: sums over the ranks; the per-step mean losses averaged
      std::vector<torch::Tensor> v{both};
      dist_->all_reduce_sum(v);
      both.slice(0, 2).div_(static_cast<double>(dist_->size()));
    }
    both = both.cpu();
    epoch_seconds_ += seconds_since(t0);
    const int64_t seen = dist_ ? seen_ * dist_->size() : seen_;  // every rank trains on as many
    double loss_sum = both[0].item<double>();
    if (!std::isfinite(loss_sum))
      throw Error("training loss became " + std::string(std::isnan(loss_sum) ? "NaN" : "Inf") + " in epoch " +
                  std::to_string(epoch_ + 1) + " (lr " + std::to_string(lr_) + "); try a lower optim.lr. " +
                  (opt_.run_dir.empty() ? std::string("")
                                        : "The last good checkpoint is " + path("checkpoint.pt") + " (not overwritten)."));
    {
      // Divergence short of NaN (a learning rate x1000 sends the loss to 1e6 and beyond): the
      // epoch's mean loss against a bound far above chance (ln C), from the same single read.
      const double bound = cfg_.f("train.divergence_loss") == 0 ? 25 * std::log(static_cast<double>(std::max<int64_t>(classes_, 2)))
                                                                  : cfg_.f("train.divergence_loss");
      const double mean = loss_sum / std::max<int64_t>(seen, 1);
      if (bound > 0 && mean > bound)
        throw Error("training diverged in epoch " + std::to_string(epoch_ + 1) + ": mean loss " + std::to_string(mean) +
                    " exceeds train.divergence_loss = " + std::to_string(bound) + " (chance is ln " +
                    std::to_string(classes_) + " = " + std::to_string(std::log(static_cast<double>(classes_))) +
                    "); try a lower optim.lr (now " + std::to_string(lr_) + "). " +
                    (opt_.run_dir.empty() ? std::string("")
                                          : "The last good checkpoint is " + path("checkpoint.pt") + " (not overwritten)."));
    }
    train_seconds_ += epoch_seconds_;
    EpochMetrics m;
    m.epoch = epoch_ + 1;
    m.train_loss = loss_sum / std::max<int64_t>(seen, 1);
    m.train_acc = both[1].item<double>() / std::max<int64_t>(seen, 1);
    m.lr = lr_;
    m.epoch_seconds = epoch_seconds_;
    m.images_per_s = seen / std::max(epoch_seconds_, 1e-9);
    m.train_seconds = train_seconds_;
    bool last = epoch_ + 1 == epochs_;
    if (last && lookahead_) lookahead_->update(*model_, 1.0);  // the slow weights are the result
    if (dist_) average_buffers();  // every rank holds the same model before it is evaluated or saved
    if (last || (epoch_ + 1) % std::max<int64_t>(1, cfg_.i("train.eval_every")) == 0) {
      auto te = Clock::now();
      auto ev = evaluate(ema_ ? *ema_ : *model_, dist_ ? *test_shard_ : *test_, cfg_.i("data.test_batch_size"),
                         cfg_.s("eval.tta"), cfg_.f("eval.tta_translate_weight"));
      if (dist_) {  // each rank evaluated its share of the test set: add the sums
        auto sums = torch::tensor({ev.loss * static_cast<double>(ev.n), ev.acc * static_cast<double>(ev.n), static_cast<double>(ev.n)},
                                  torch::TensorOptions().dtype(torch::kFloat64).device(dev_));
        std::vector<torch::Tensor> v{sums};
        dist_->all_reduce_sum(v);
        auto h = sums.cpu();
        ev.n = static_cast<int64_t>(h[2].item<double>());
        ev.loss = h[0].item<double>() / std::max<int64_t>(ev.n, 1);
        ev.acc = h[1].item<double>() / std::max<int64_t>(ev.n, 1);
        ev.predictions = torch::Tensor();  // a shard's only
      }
      m.eval_seconds = seconds_since(te);
      m.evaluated = true;
      m.test_loss = ev.loss;
      m.test_acc = ev.acc;
      last_eval_ = ev;
    }
    reset_accumulators();
    auto mem = memory_stats(dev_);
    m.live_allocations = mem.live_allocations;
    m.live_bytes = mem.live_bytes;
    history_.push_back(m);
    if (writes_) {
      std::ofstream f(path("metrics.jsonl"), std::ios::app);
      f << m.to_json() << "\n";
      // Per-step losses (read with the epoch's sums above), step = steps done after it.
      std::ofstream st(path("steps.csv"), std::ios::app);
      const int64_t g0 = epoch_ * steps_;
      char line[96];
      for (int64_t k = 0; k < std::min(steps_, total_steps_ - g0); ++k) {
        std::snprintf(line, sizeof line, "%lld,%lld,%.6g,%.6g\n", (long long)(g0 + k + 1), (long long)(epoch_ + 1),
                      sched_.at_step(g0 + k) * plateau_.multiplier, both.data_ptr<double>()[2 + k]);
        st << line;
      }
      if (!f.flush() || !st.flush())
        throw Error("appending to '" + path("metrics.jsonl") + "' / steps.csv failed (disk full or file-size limit?); "
                    "the last checkpoint is kept: resume with  kiln train --resume " + opt_.run_dir);
    }
    if (tb_) {  // TensorBoard: x axis = training steps done
      const int64_t s = global_step_;
      tb_->scalar("train/loss", m.train_loss, s);
      tb_->scalar("train/accuracy", m.train_acc, s);
      if (m.evaluated) {
        tb_->scalar("test/accuracy", m.test_acc, s);
        tb_->scalar("test/loss", m.test_loss, s);
      }
      tb_->scalar("lr", m.lr, s);
      tb_->scalar("images_per_s", m.images_per_s, s);
      tb_->scalar("epoch", static_cast<double>(m.epoch), s);
      tb_->flush();
    }
    char buf[256];
    std::snprintf(buf, sizeof buf, "epoch %3lld/%lld  loss %.4f  train %.2f%%  %s  lr %.3g  %.1fs  %.0f img/s",
                  (long long)m.epoch, (long long)epochs_, m.train_loss, 100 * m.train_acc,
                  m.evaluated ? ("test " + std::to_string(100 * m.test_acc).substr(0, 5) + "%").c_str() : "           ",
                  m.lr, m.epoch_seconds, m.images_per_s);
    progress_.line(buf);
    // Reduce-LR-on-plateau decides the next epoch's multiplier from this epoch's loss.
    if (plateau_.enabled() &&
        plateau_.observe(cfg_.s("schedule.plateau_metric") == "test_loss" && m.evaluated ? m.test_loss : m.train_loss))
      progress_.line("reduce-LR-on-plateau: no improvement for " + std::to_string(plateau_.patience + 1) +
                     " epochs; LR multiplier now " + std::to_string(plateau_.multiplier));
    // The checkpoint records the epochs completed and the start of the next one: (epoch + 1,
    // step 0). (Recording step = steps_ here made a resume from this checkpoint replay an empty
    // epoch; the SIGKILL test of tests/cli_crash.sh found it.)
    ++epoch_;
    const int64_t step = step_;
    step_ = 0;
    if (last || epoch_ % std::max<int64_t>(1, cfg_.i("train.checkpoint_every")) == 0) save_checkpoint();
    step_ = step;
    --epoch_;
  }

  void save_checkpoint() {
    if (!writes_) return;
    torch::serialize::OutputArchive ar, m, o;
    model_->save(m);
    sgd_.save(o);
    ar.write("model", m);
    ar.write("optim", o);
    if (lookahead_) {
      torch::serialize::OutputArchive la;
      lookahead_->save(la);
      ar.write("lookahead", la);
    }
    if (static_) {
      torch::serialize::OutputArchive so;
      static_->save(so);
      ar.write("static_optim", so);
    }
    if (filter_) {
      torch::serialize::OutputArchive fa;
      filter_->save(fa);
      ar.write("filter_proxy", fa);
    }
    if (ema_) {
      torch::serialize::OutputArchive e;
      ema_->save(e);
      ar.write("ema", e);
    }
    ar.write("position", torch::tensor({epoch_, step_, global_step_, seen_}, torch::kInt64));
    // A data-parallel run's position counts each rank's steps over its shard: resume it with
    // as many ranks.
    ar.write("world_size", torch::tensor({static_cast<int64_t>(dist_ ? dist_->size() : 1)}, torch::kInt64));
    ar.write("timing", torch::tensor({epoch_seconds_, train_seconds_}, torch::kFloat64));
    ar.write("accumulators", torch::stack({loss_sum_, correct_.to(torch::kFloat64)}).cpu());
    ar.write("step_losses", step_losses_.cpu());
    if (student_loss_) ar.write("student_loss", student_loss_->state());
    if (plateau_.enabled())
      ar.write("plateau", torch::tensor({plateau_.multiplier, plateau_.best, static_cast<double>(plateau_.bad_epochs)}, torch::kFloat64));
    ar.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
    if (dev_.is_cuda()) ar.write("rng_device", at::globalContext().defaultGenerator(dev_).get_state());
    ar.write("config", c10::IValue(cfg_.to_toml()));
    ar.write("shape", torch::tensor({in_channels_, classes_}, torch::kInt64));
    ar.write("norm", torch::tensor(mean_.empty() ? std::vector<double>{} : [&] {
      std::vector<double> v = mean_;
      v.insert(v.end(), std_.begin(), std_.end());
      return v;
    }(), torch::kFloat64));
    nlohmann::json hist = nlohmann::json::array();
    for (auto& e : history_) hist.push_back(nlohmann::json::parse(e.to_json()));
    ar.write("history", c10::IValue(hist.dump()));
    // Serialised in memory first, then written by atomic_write (temporary file, fsync, rename):
    // LibTorch's own file writer cannot report a failed write (a full disk) without aborting.
    std::ostringstream bytes;
    ar.save_to(bytes);
    const std::string data = bytes.str();
    try {
      atomic_write(path("checkpoint.pt"), data.data(), data.size());
    } catch (const Error& e) {
      throw Error("writing the checkpoint '" + path("checkpoint.pt") + "' failed: " + e.what() +
                  " (the previous checkpoint is kept)");
    }
  }

  Config cfg_;
  RunOptions opt_;
  torch::Device dev_;
  Progress progress_;
  torch::ScalarType dtype_;
  bool channels_last_;
  int64_t in_channels_, classes_;
  std::vector<std::string> class_names_;
  std::vector<double> mean_, std_;
  std::unique_ptr<DeviceLoader> train_, test_;
  std::shared_ptr<dist::Group> dist_;          // set when data parallel (world > 1)
  bool writes_ = false;                        // this process writes run_dir (rank 0 only)
  int64_t shard_n_ = 0;                        // examples a rank an epoch
  std::unique_ptr<DeviceLoader> test_shard_;   // this rank's share of the test set
  std::unique_ptr<dist::GradReducer> reducer_;  // the gradient all-reduce (hooks and buckets), kept across steps
  ClassifierPtr model_, ema_;
  SgdSetup sgd_;
  std::unique_ptr<Lookahead> lookahead_;
  std::unique_ptr<StaticStep> static_;  // train.static_step / train.cuda_graph
  std::unique_ptr<ProxyFilter> filter_;  // filter.keep > 0: the proxy that picks each batch's kept examples
  SyncCheck sync_check_;                 // train.sync_check: on while the steps run (paused around a graph capture)
  // self-training student (selftrain.teacher)
  std::unique_ptr<DeviceLoader> pseudo_;
  torch::Tensor pseudo_targets_;  // kept x classes, fp32, on the device
  std::unique_ptr<EpochPlan> pseudo_plan_;
  std::unique_ptr<StudentLoss> student_loss_;
  int64_t pbs_ = 0, pseudo_batches_ = 0;
  PseudoLabelQuality pseudo_quality_;
  std::string pseudo_json_;
  bool use_graph_ = false;    // train.cuda_graph on a CUDA device: capture and replay
  bool graph_wanted_ = false;  // train.cuda_graph anywhere: the capture's address contract is checked
#ifdef KILN_HAS_CUDA
  std::unique_ptr<kiln::cuda::GraphStep> graph_;
#endif
  int eager_before_capture_ = 0;
  int64_t captured_at_ = -1;              // the global step of the capture; -1: none
  std::vector<const void*> footprint_;  // the step's tensors' addresses at the capture
  int64_t la_every_ = 5;
  double la_decay_ = 0, la_power_ = 3;
  torch::Tensor whiten_bias_;  // the airbench whitening bias, trained for whiten_bias_steps_ steps
  int64_t whiten_bias_steps_ = 0;
  bool whiten_linear_ = false;  // its LR falls linearly to 0 over those steps (airbench94_muon)
  int64_t ema_every_ = 5;
  double ema_momentum_ = 0.99;
  AugmentOptions aug_;
  LrSchedule sched_;
  Plateau plateau_;  // schedule.plateau_*: a multiplier on sched_, decided after each epoch
  std::vector<torch::Tensor> qat_weights_;  // train.qat: the conv and linear weights
  int64_t bs_, steps_, epochs_, total_steps_;
  uint64_t seed_;
  bool sum_loss_;
  double smoothing_;
  // position and the epoch's running sums
  int64_t epoch_ = 0, step_ = 0, global_step_ = 0, seen_ = 0;
  double lr_ = 0, epoch_seconds_ = 0, train_seconds_ = 0;

 public:
  double whiten_seconds_ = 0;  // fitting the whitening layer(s), device synchronised around it
  int64_t images_trained_ = 0;  // examples through the training steps (all epochs)
  double forward_flops() const {
    return model_->forward_flops(train_->data().size(2), train_->data().size(3));
  }
  // The proxy's training FLOPs (forward over every drawn example, backward, at 2x forward, over
  // the ones it trained on); 0 without a proxy.
  double filter_flops() const {
    if (!filter_) return 0;
    const double f = filter_->proxy().forward_flops(train_->data().size(2), train_->data().size(3));
    return f * static_cast<double>(filter_->forward_images) + 2 * f * static_cast<double>(filter_->trained_images);
  }

 private:
  torch::Tensor loss_sum_, correct_, step_losses_;  // step_losses_: per example, each step of the epoch
  EvalResult last_eval_;
  std::vector<EpochMetrics> history_;
  std::unique_ptr<EventWriter> tb_;
};

}  // namespace

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
  auto r = run.run();
  BenchRun b;
  b.test_acc = r.final_test_acc;
  b.whiten_seconds = run.whiten_seconds_;
  b.train_seconds = r.train_seconds;
  b.eval_seconds = r.epochs.empty() ? 0 : r.epochs.back().eval_seconds;
  b.seconds = b.whiten_seconds + b.train_seconds + b.eval_seconds;
  const double fwd = run.forward_flops();
  const std::string tta = cfg.s("eval.tta");
  const double views = tta == "flip+translate" ? 6 : tta == "flip" ? 2 : 1;
  const int64_t test_n = data.test.head(cfg.i("data.test_subset")).size();
  b.flops = fwd > 0 ? 3 * fwd * static_cast<double>(run.images_trained_) + views * fwd * static_cast<double>(test_n) + run.filter_flops() : 0;
  return b;
}

Config checkpoint_config(const std::string& path) {
  if (!file_exists(path)) throw Error("no checkpoint at '" + path + "'");
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
  } catch (const c10::Error& e) {
    throw Error("'" + path + "' is not a readable kiln checkpoint (truncated or corrupt?)");
  }
  c10::IValue v;
  if (!ar.try_read("config", v)) throw Error("'" + path + "' is not a kiln checkpoint (no config inside)");
  return Config::from_toml_string(v.toStringRef(), path + " (stored config)");
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
  Config cfg = checkpoint_config(ckpt);
  Run run(cfg, data, opt);
  torch::serialize::InputArchive ar;
  ar.load_from(ckpt, opt.device);
  run.load_checkpoint_state(ar);
  return run.run();
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
    auto logits = predict_with_tta([&](const torch::Tensor& x) { return model.forward(x); }, batch.x, tta,
                                   translate_weight);
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

LoadedCheckpoint load_checkpoint(const std::string& path, const torch::Device& device) {
  LoadedCheckpoint lc;
  lc.cfg = checkpoint_config(path);
  torch::serialize::InputArchive ar, m;
  ar.load_from(path, device);
  torch::Tensor norm, pos;
  ar.read("norm", norm);
  ar.read("position", pos);
  lc.epochs_done = pos[0].item<int64_t>();
  norm = norm.cpu();
  auto n = norm.numel() / 2;
  for (int64_t i = 0; i < n; ++i) {
    lc.mean.push_back(norm[i].item<double>());
    lc.std.push_back(norm[n + i].item<double>());
  }
  ar.read("model", m);
  torch::Tensor shape;
  ar.read("shape", shape);
  const int64_t in_ch = shape[0].item<int64_t>(), classes = shape[1].item<int64_t>();
  lc.model = make_model(lc.cfg, in_ch, classes);
  lc.model->to(device);
  set_precision(*lc.model, resolve_precision(lc.cfg.s("train.precision"), device));
  torch::serialize::InputArchive e;
  lc.model->load(ar.try_read("ema", e) ? e : m);  // the averaged weights, when the run kept them
  return lc;
}

}  // namespace kiln
