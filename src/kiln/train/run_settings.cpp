#include "kiln/train/run_settings.h"

#include "kiln/core/error.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/fused_gpu.h"

namespace kiln {

OptimizerSettings OptimizerSettings::from_config(const Config& cfg) {
  OptimizerSettings o;
  o.name = cfg.s("optim.name");
  o.lr = cfg.f("optim.lr");
  o.momentum = cfg.f("optim.momentum");
  o.label_smoothing = cfg.f("optim.label_smoothing");
  o.nesterov = cfg.b("optim.nesterov");
  o.weight_decay = cfg.f("optim.weight_decay");
  o.adam_beta1 = cfg.f("optim.adam_beta1");
  o.adam_beta2 = cfg.f("optim.adam_beta2");
  o.adam_eps = cfg.f("optim.adam_eps");
  o.bn_bias_lr_mult = cfg.f("optim.bn_bias_lr_mult");
  o.bn_bias_wd_div = cfg.f("optim.bn_bias_wd_div");
  o.head_lr_mult = cfg.f("optim.head_lr_mult");
  o.head_wd_div = cfg.f("optim.head_wd_div");
  o.reduction = cfg.s("optim.loss_reduction") == "sum" ? LossReduction::kSum : LossReduction::kMean;
  o.lr_in_momentum = cfg.s("optim.sgd_form") == "lr_in_momentum";
  o.muon_lr = cfg.f("optim.muon_lr");
  o.muon_momentum = cfg.f("optim.muon_momentum");
  o.muon_nesterov = cfg.b("optim.muon_nesterov");
  o.muon_normalize = cfg.b("optim.muon_normalize");
  o.muon_ns_steps = cfg.i("optim.muon_ns_steps");
  o.lookahead = cfg.b("optim.lookahead");
  o.lookahead_every = cfg.i("optim.lookahead_every");
  o.lookahead_decay = cfg.f("optim.lookahead_decay");
  o.lookahead_power = cfg.f("optim.lookahead_power");
  o.whiten_bias_linear = cfg.s("optim.whiten_bias_schedule") == "linear_to_zero";
  o.whiten_bias_epochs = cfg.i("model.whiten_bias_epochs");
  o.ema = cfg.b("ema.enabled");
  o.ema_every = cfg.i("ema.every");
  o.ema_momentum = cfg.f("ema.momentum");
  o.plateau = cfg.f("schedule.plateau_factor") < 1.0;
  o.plateau_metric = cfg.s("schedule.plateau_metric") == "test_loss" ? PlateauMetric::kTestLoss : PlateauMetric::kTrainLoss;
  return o;
}

std::string StepSettings::fused(const torch::Device& d) const {
  if (d.is_cpu()) return fused_cpu ? fused_cpu_isa() : "off";
  return fused_cuda && d.is_cuda() ? fused_gpu_backend(d) : "off";
}

std::string DataSettings::describe_use(int64_t train_size, int64_t test_size) const {
  auto part = [](int64_t subset, int64_t size, const char* what) {
    const std::string all = std::to_string(size) + " " + what;
    return subset > 0 && subset < size ? "the first " + std::to_string(subset) + " of " + all : all;
  };
  std::string s = part(train_subset, train_size, "train");
  if (labeled > 0) s += ", " + std::to_string(labeled) + " of them labeled";
  return s + " / " + part(test_subset, test_size, "test");
}

RunSettings RunSettings::from_config(const Config& cfg) {
  RunSettings s;
  s.description = cfg.s("meta.description");
  auto& d = s.data;
  d.dataset = cfg.s("data.dataset");
  d.folder = cfg.s("data.folder");
  d.train_subset = cfg.i("data.train_subset");
  d.test_subset = cfg.i("data.test_subset");
  d.labeled = cfg.i("data.labeled");
  d.split_seed = cfg.i("data.split_seed");
  auto& fo = d.folder_options;
  fo.image_size = cfg.ints("data.image_size");
  if (!fo.image_size.empty() && fo.image_size.size() != 2) throw Error("data.image_size needs [H, W], or [] for the files' own size");
  fo.resize = cfg.s("data.resize");
  fo.background = cfg.i("data.background");
  if (fo.background > 255) throw Error("data.background must be a grey level in 0..255");
  fo.memory_limit_mb = cfg.i("data.memory_limit_mb");
  fo.val_fraction = cfg.f("data.val_fraction");
  fo.threads = static_cast<int>(cfg.i("data.load_threads"));
  fo.split_seed = static_cast<uint64_t>(d.split_seed);
  d.batch_size = cfg.i("data.batch_size");
  d.test_batch_size = cfg.i("data.test_batch_size");
  d.drop_last = cfg.b("data.drop_last");
  d.normalize = cfg.b("data.normalize");
  d.view = View::from_config(cfg);
  d.epochs = cfg.f("schedule.epochs");

  auto& st = s.step;
  st.precision = cfg.s("train.precision");
  st.master_weights = cfg.b("train.master_weights");
  st.channels_last = cfg.b("train.channels_last");
  st.fused_cpu = cfg.b("train.fused_cpu");
  st.fused_cuda = cfg.b("train.fused_cuda");
  st.static_step = cfg.b("train.static_step");
  st.cuda_graph = cfg.b("train.cuda_graph");
  st.sync_check = cfg.b("train.sync_check");
  st.qat = cfg.b("train.qat");
  st.qat_grid = IntGrid(parse_granularity(cfg.s("train.qat_granularity"), "train.qat_granularity"),
                        check_bits(cfg.i("train.qat_bits"), "train.qat_bits"));

  auto& l = s.loop;
  l.seed = static_cast<uint64_t>(cfg.i("train.seed"));
  l.init = cfg.s("train.init");
  l.eval_every = cfg.i("train.eval_every");
  l.checkpoint_every = cfg.i("train.checkpoint_every");
  l.progress_every = cfg.i("train.progress_every");
  l.divergence_loss = cfg.f("train.divergence_loss");
  l.tta = cfg.s("eval.tta");
  l.tta_translate_weight = cfg.f("eval.tta_translate_weight");

  s.optim = OptimizerSettings::from_config(cfg);
  s.model = ModelOptions::from_config(cfg);

  auto& t = s.student;
  t.teacher = cfg.s("selftrain.teacher");
  t.unlabeled = cfg.i("selftrain.unlabeled");
  t.unlabeled_folder = cfg.s("selftrain.unlabeled_folder");
  t.mode = cfg.s("selftrain.mode");
  t.threshold = cfg.f("selftrain.threshold");
  t.temperature = cfg.f("selftrain.temperature");
  t.ratio = cfg.f("selftrain.ratio");
  t.weight = cfg.f("selftrain.weight");
  t.pseudo_weight = cfg.s("selftrain.pseudo_weight");
  t.loss_normalization = cfg.b("selftrain.loss_normalization");
  t.tta = cfg.s("selftrain.tta");
  t.student_dropout = cfg.f("selftrain.student_dropout");
  t.student_stochastic_depth = cfg.f("selftrain.student_stochastic_depth");
  t.student_width_mult = cfg.f("selftrain.student_width_mult");
  t.student_epochs = cfg.f("selftrain.student_epochs");
  t.student_weight_decay = cfg.f("selftrain.student_weight_decay");

  s.filter.keep = cfg.i("filter.keep");
  s.filter.train_every = cfg.i("filter.train_every");
  s.filter.convs_per_group = cfg.i("filter.convs_per_group");
  s.dist.sync_bn = cfg.b("dist.sync_bn");
  s.dist.bucket_mb = cfg.f("dist.bucket_mb");
  s.dist.backend = cfg.s("dist.backend");
  s.dist.timeout_s = cfg.f("dist.timeout_s");
  return s;
}

void RunSettings::check_compatible(int64_t world, bool gloo_on_cuda) const {
  const bool student_run = !student.teacher.empty();
  if (world > 1) {
    if (step.uses_static())
      throw Error("data-parallel runs take the ordinary step (the gradient all-reduce sits between backward and the "
                  "optimiser); set train.static_step and train.cuda_graph to false");
    if (student_run) throw Error("selftrain.teacher: the student's pseudo-labeled batches are not sharded yet; run the student in one process");
    if (gloo_on_cuda) throw Error("the gloo backend runs on the CPU: use --device cpu, or nccl on CUDA");
  }
  if (step.qat && step.uses_static())
    throw Error("train.qat runs on the ordinary step; set train.static_step and train.cuda_graph to false");
  if (optim.plateau && step.uses_static())
    throw Error("schedule.plateau_factor < 1 changes the LR as training goes; the static step's LR table is fixed "
                "(set train.static_step and train.cuda_graph to false)");
  if (optim.plateau && optim.plateau_metric == PlateauMetric::kTestLoss && loop.eval_every != 1)
    throw Error("schedule.plateau_metric = \"test_loss\" needs the test loss of every epoch: set train.eval_every = 1");
  if (step.uses_static() && !optim.is_sgd())
    throw Error("train.static_step / train.cuda_graph implement SGD and Muon only; optim.name = '" + optim.name +
                "' runs on the ordinary step (set both to false)");
  if (student_run) {
    if (data.labeled <= 0 && student.unlabeled_folder.empty())
      throw Error("selftrain.teacher needs unlabeled images: set data.labeled > 0 (the rest of that split is pseudo-labeled) "
                  "or selftrain.unlabeled_folder (a directory of images)");
    if (step.uses_static())
      throw Error("selftrain.teacher: the student's mixed batches run on the ordinary step; set train.static_step = false "
                  "and train.cuda_graph = false");
  }
  if (filter.keep > 0) {
    if (model.name != "airbench")
      throw Error("filter.keep: the proxy is an airbench network, for model.name = \"airbench\" runs (this one: '" + model.name +
                  "')");
    if (filter.keep >= data.batch_size)
      throw Error("filter.keep = " + std::to_string(filter.keep) + " must be smaller than data.batch_size = " +
                  std::to_string(data.batch_size));
    if (!data.drop_last)
      throw Error("filter.keep needs data.drop_last = true (every batch the same size, so every step keeps as many)");
    if (world > 1) throw Error("filter.keep: proxy filtering is not data parallel yet; run it in one process");
    if (student_run) throw Error("filter.keep: proxy filtering and selftrain.teacher do not combine; set one of them off");
  }
}

}  // namespace kiln
