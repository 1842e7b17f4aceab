// The configuration schema: every key with its default, its meaning and its rule (range,
// choices, shape), and the rules themselves. kiln/core/config.cpp reads and checks configs
// against it; `kiln presets --keys` prints it.
#include <cmath>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/core/error.h"

namespace kiln {

const std::vector<ConfigKey>& Config::schema() {
  static const std::vector<ConfigKey> keys = {
      {"meta.description", std::string(""), "what this preset is (free text)"},
      // data
      {"data.dataset", std::string("cifar10"), "cifar10 | cifar100 | mnist | fashion-mnist | folder", one_of({"cifar10", "cifar100", "mnist", "fashion-mnist", "folder"})},
      {"data.folder", std::string(""), "image-folder root (train/<class>/*, test/<class>/*) for dataset = folder"},
      {"data.train_subset", int64_t{0}, "use the first N training examples (0 = all)"},
      {"data.test_subset", int64_t{0}, "use the first N test examples (0 = all)"},
      {"data.labeled", int64_t{0}, "train on a seeded, class-balanced subset of N labeled examples (0 = all); the rest is unlabeled (kiln/data/split.h)"},
      {"data.split_seed", int64_t{0}, "seed of the labeled/unlabeled split and of data.val_fraction's hold-out (independent of train.seed, so runs with different seeds share one split)"},
      {"data.image_size", std::vector<int64_t>{}, "dataset = folder: [H, W] resizes every image as it is decoded ([] = the files' own size, which must then agree; kiln/data/folder.h)", widths(0, 2, "data.image_size needs [H, W], or [] for the files' own size")},
      {"data.resize", std::string("stretch"), "dataset = folder, with data.image_size: stretch (aspect ratio not kept) | center_crop (scale to cover, cut the middle) | pad (scale to fit, pad with data.background)", one_of({"stretch", "center_crop", "pad"})},
      {"data.background", int64_t{0}, "dataset = folder: the grey level (0..255) alpha channels are composited over and data.resize = pad fills with", non_negative()},
      {"data.memory_limit_mb", int64_t{0}, "dataset = folder: refuse a folder whose decoded images need more (0 = half the memory available when loading)", non_negative()},
      {"data.load_threads", int64_t{0}, "dataset = folder: threads that decode the images (0 = every core); the result is the same whatever the number", non_negative()},
      {"data.val_fraction", 0.0, "dataset = folder: a folder without test/ holds out this fraction of train/ (stratified, seeded by data.split_seed) as its evaluation set; with test/, test/ is used", probability()},
      {"data.input_size", std::vector<int64_t>{}, "[H, W] the network sees: evaluation (and training without aug.random_resized_crop) takes the central data.eval_crop of each stored image resized to it, antialiased bilinear; [] = the stored size (kiln/data/loader.h)", widths(0, 2, "data.input_size needs [H, W], or [] for the stored size")},
      {"data.eval_crop", 1.0, "the central fraction of each side evaluation keeps before resizing to data.input_size (timm's crop_pct; ImageNet convention 0.875; 1 = all)", factor()},
      {"data.batch_size", int64_t{512}, "training batch size", positive()},
      {"data.test_batch_size", int64_t{1000}, "evaluation batch size", positive()},
      {"data.drop_last", true, "drop the last incomplete training batch of each epoch"},
      {"data.normalize", true, "subtract the training set's per-channel mean and divide by its std"},
      // augmentation
      {"aug.pad", int64_t{4}, "pixels of padding before the random crop back to full size (0 = no translate)"},
      {"aug.pad_mode", std::string("reflect"), "reflect | zeros", one_of({"reflect", "zeros"})},
      {"aug.flip", true, "random horizontal flip with probability 1/2"},
      {"aug.cutout", int64_t{8}, "side of the square cutout, fully inside the image (0 = off)"},
      {"aug.flip_mode", std::string("random"), "random (each image, each epoch, p = 1/2) | alternating (airbench: random in epoch 0, then every image mirrored relative to that on odd epochs)", one_of({"random", "alternating"})},
      {"aug.policy", std::string("none"), "none | autoaugment (AutoAugment's CIFAR-10 policy) | randaugment (RandAugment(N, M)); before translate, flip and cutout (kiln/data/policy.h)", one_of({"none", "autoaugment", "randaugment"})},
      {"aug.randaugment_n", int64_t{2}, "RandAugment: operations per image", positive()},
      {"aug.randaugment_m", int64_t{9}, "RandAugment: magnitude bin, 0 .. aug.randaugment_bins - 1"},
      {"aug.randaugment_bins", int64_t{31}, "RandAugment: number of magnitude bins (torchvision: 31)", positive()},
      {"aug.fill", 128.0, "pixel value geometric policy operations bring in from outside the image"},
      {"aug.scale_min", 1.0, "scale jitter: smallest scale (drawn log-uniformly in [scale_min, scale_max]; 1 and 1 = off)", positive()},
      {"aug.scale_max", 1.0, "scale jitter: largest scale (> 1 zooms in on a random window, < 1 zooms out onto a random place)", positive()},
      {"aug.random_resized_crop", false, "torchvision's RandomResizedCrop before everything else: a box of area fraction in [rrc_scale_min, rrc_scale_max] and aspect ratio log-uniform in [rrc_ratio_min, rrc_ratio_max], resized to data.input_size (antialiased bilinear); for images larger than the network's input"},
      {"aug.rrc_scale_min", 0.08, "random-resized crop: smallest area fraction (torchvision: 0.08)", factor()},
      {"aug.rrc_scale_max", 1.0, "random-resized crop: largest area fraction (torchvision: 1)", factor()},
      {"aug.rrc_ratio_min", 0.75, "random-resized crop: smallest aspect ratio w / h (torchvision: 3/4)", positive()},
      {"aug.rrc_ratio_max", 4.0 / 3.0, "random-resized crop: largest aspect ratio w / h (torchvision: 4/3)", positive()},
      // model
      {"model.name", std::string("resnet9"), "resnet9 | airbench (whitening -> 3 conv groups -> pool -> linear) | separable (depthwise-separable stages; widths = stem, then one per stage) | dense (dense blocks; widths = stem, then each block's growth rate) (kiln/nn/tiny.h)", one_of({"resnet9", "airbench", "separable", "dense"})},
      {"model.depth", int64_t{2}, "separable: blocks per stage; dense: layers per dense block", positive()},
      {"model.init", std::string("default"), "default (LibTorch's) | glorot_normal (every conv and linear weight ~ N(0, 2 / (fan_in + fan_out)), biases 0)", one_of({"default", "glorot_normal"})},
      {"model.widths", std::vector<int64_t>{64, 128, 256, 512}, "channel widths: resnet9's prep, layer1, layer2, layer3; airbench's three groups", widths(2, 8, "model.widths needs 4 integers (resnet9), 3 (airbench), or 2 to 8 (separable: stem, then one per stage; dense: stem, then each dense block's growth rate)")},
      {"model.convs_per_group", int64_t{2}, "airbench: convs per group (3 adds a residual around the last two, as airbench96)", positive()},
      {"model.conv_init", std::string("default"), "default (LibTorch's kaiming-uniform) | dirac (airbench: the first in_channels filters are identities)", one_of({"default", "dirac"})},
      {"model.head_norm", false, "airbench94_muon's head: weight rescaled to unit std at init, logits divided by the feature width (else x output_scale)"},
      {"model.whiten_bias_epochs", int64_t{0}, "airbench: the whitening conv has a bias, trained for the first N epochs then frozen (0 = no bias)"},
      {"model.whiten_bias_init", std::string("zeros"), "airbench: the whitening bias's init: zeros (airbench94/95/96, whose conv class zeroes it) | uniform (PyTorch's default conv bias init, U(+-1/sqrt(fan_in)); airbench94_muon's plain nn.Conv2d)", one_of({"zeros", "uniform"})},
      {"model.dropout", 0.0, "dropout probability on the pooled features before the head (student noise; 0 = off)", probability()},
      {"model.stochastic_depth", 0.0, "probability of dropping each residual branch, per example, in training (scaled by 1/(1-p); student noise; 0 = off)", probability()},
      {"model.output_scale", 0.125, "logits are multiplied by this (Myrtle: 0.125)"},
      {"model.bn_momentum", 0.1, "BatchNorm running-stat momentum, LibTorch convention (new = (1-m)*old + m*batch)"},
      {"model.bn_eps", 1e-5, "BatchNorm epsilon"},
      {"model.activation", std::string("relu"), "relu | celu | gelu | relu6", one_of({"relu", "celu", "gelu", "relu6"})},
      {"model.celu_alpha", 0.075, "CELU's alpha (Myrtle: 0.075; 0.3 with a frozen BN scale of 1/4 folded in)"},
      {"model.pool_before_bn", false, "max-pool straight after the conv, before BN and the activation"},
      {"model.ghost_bn_splits", int64_t{1}, "ghost batch norm: BN statistics over this many sub-batches (1 = plain BN)", positive()},
      {"model.bn_weight_freeze", false, "BN scale is a constant (not trained) at model.bn_weight_init"},
      {"model.bn_weight_init", 1.0, "initial (or frozen) BN scale"},
      {"model.whiten", std::string("none"), "none | 3x3 (Myrtle) | 2x2 (airbench, with negated filters): patch-whitening input layer", one_of({"none", "3x3", "2x2"})},
      {"model.whiten_eps", 1e-2, "eps in 1/sqrt(lambda + eps) of the whitening filters"},
      {"model.whiten_samples", int64_t{10000}, "training images (the first N) the whitening is fitted on"},
      {"model.whiten_trained", false, "airbench: the 2x2 whitening conv is not fitted to the data but trained with the other weights from a conv's init (LibTorch's kaiming-uniform; its first C filters identities with model.conv_init = dirac): the whitening taken out, as airbench94-ablation does"},
      // optimiser
      {"optim.name", std::string("sgd"), "sgd | muon (Muon for every 4-D conv filter, SGD for the rest; airbench94_muon) | adam (L2 weight decay in the gradient) | adamw (decoupled weight decay)", one_of({"sgd", "muon", "adam", "adamw"})},
      {"optim.adam_beta1", 0.9, "Adam/AdamW: beta1", probability()},
      {"optim.adam_beta2", 0.999, "Adam/AdamW: beta2", probability()},
      {"optim.adam_eps", 1e-8, "Adam/AdamW: epsilon"},
      {"optim.lr", 0.4 / 512, "peak learning rate in LibTorch's units for the loss as defined by loss_reduction"},
      {"optim.momentum", 0.9, "SGD momentum"},
      {"optim.nesterov", true, "Nesterov momentum"},
      {"optim.sgd_form", std::string("libtorch"), "SGD's momentum: libtorch (the buffer sums gradients; the current LR scales the whole update) | lr_in_momentum (Myrtle.ai's notebook: the buffer sums LR-scaled updates, v = m v - lr (g + wd w), w += -lr (g + wd w) + m v); the same while the LR is constant", one_of({"libtorch", "lr_in_momentum"})},
      {"optim.weight_decay", 5e-4 * 512, "L2 weight decay added to the gradient (LibTorch SGD units)"},
      {"optim.loss_reduction", std::string("sum"), "sum | mean: the loss over the batch", one_of({"sum", "mean"})},
      {"optim.label_smoothing", 0.0, "label smoothing of the cross-entropy target (0 = off)", probability()},
      {"optim.bn_bias_lr_mult", 1.0, "BN biases' learning rate = optim.lr times this (Myrtle: 64)"},
      {"optim.bn_bias_wd_div", 1.0, "BN biases' weight decay = optim.weight_decay divided by this (Myrtle: 64)"},
      {"optim.head_lr_mult", 1.0, "the final linear layer's LR = optim.lr times this"},
      {"optim.head_wd_div", 1.0, "the final linear layer's weight decay = optim.weight_decay divided by this"},
      {"optim.whiten_bias_schedule", std::string("main"), "LR of the whitening bias: main (the main schedule) | linear_to_zero (from optim.lr to 0 over model.whiten_bias_epochs)", one_of({"main", "linear_to_zero"})},
      {"optim.muon_lr", 0.24, "Muon: LR of the conv filters (the update is orthogonalised; its scale is this LR)"},
      {"optim.muon_momentum", 0.6, "Muon: momentum of the filters' gradient buffer"},
      {"optim.muon_nesterov", true, "Muon: Nesterov momentum"},
      {"optim.muon_ns_steps", int64_t{3}, "Muon: Newton-Schulz iterations of the orthogonalisation", positive()},
      {"optim.muon_normalize", true, "Muon: rescale each filter tensor to norm sqrt(out_channels) before every step"},
      {"optim.lookahead", false, "Lookahead (airbench): every lookahead_every steps, slow = lerp(slow, weights, 1 - decay), weights = slow; slow weights taken at the end (a run of fewer than lookahead_every steps ends at its initial weights: warned)"},
      {"optim.lookahead_every", int64_t{5}, "Lookahead: steps between updates", positive()},
      {"optim.lookahead_decay", 0.7737809375, "Lookahead: decay at the end of training (airbench: 0.95^5)"},
      {"optim.lookahead_power", 3.0, "Lookahead: decay(t) = lookahead_decay * (t / T)^power at step t of T"},
      // EMA of the weights (evaluation uses the averaged copy)
      {"ema.enabled", false, "keep an exponential moving average of the weights and evaluate with it (a run too short for the average to leave the initial weights, ema.momentum^(steps / ema.every) > 0.5, is warned of)"},
      {"ema.every", int64_t{5}, "update the average every N steps", positive()},
      {"ema.momentum", 0.99, "per update (not per step): avg = m * avg + (1 - m) * weights"},
      // evaluation
      {"eval.tta", std::string("none"), "test-time augmentation: none | flip | flip+translate", one_of({"none", "flip", "flip+translate"})},
      {"eval.tta_translate_weight", 0.5, "weight of the translated views in flip+translate"},
      // schedule
      {"schedule.epochs", 24.0, "training epochs; fractional values train ceil(epochs * steps per epoch) steps (airbench94: 9.9)", positive()},
      {"schedule.knots", Knots{{0, 0}, {5, 1}, {24, 0}}, "LR multiplier: piecewise-linear (x, value) knots", increasing_knots()},
      {"schedule.knot_unit", std::string("epoch"), "epoch | fraction: the unit of the knots' x (fraction: steps done / total steps)", one_of({"epoch", "fraction"})},
      {"schedule.lr_at", std::string("after_step"), "after_step (step s uses the schedule at s + 1 steps done) | before_step (at s, as PyTorch's LambdaLR; the airbench presets)", one_of({"after_step", "before_step"})},
      {"schedule.plateau_factor", 1.0, "reduce-LR-on-plateau: multiply the LR by this when the monitored loss stalls (1 = off; e.g. 0.5)", factor()},
      {"schedule.plateau_patience", int64_t{2}, "reduce-LR-on-plateau: epochs without improvement tolerated before reducing", non_negative()},
      {"schedule.plateau_threshold", 1e-4, "reduce-LR-on-plateau: an improvement is a loss below best x (1 - threshold)"},
      {"schedule.plateau_min", 0.0, "reduce-LR-on-plateau: the smallest multiplier"},
      {"schedule.plateau_metric", std::string("train_loss"), "reduce-LR-on-plateau: train_loss | test_loss (needs train.eval_every = 1)", one_of({"train_loss", "test_loss"})},
      // data filtering by a proxy network (airbench96_faster)
      {"filter.keep", int64_t{0}, "proxy filtering: train on the N examples of each batch with the highest loss under a small proxy network trained alongside (airbench96_faster: 512 of 1024; 0 = off)", non_negative()},
      {"filter.widths", std::vector<int64_t>{32, 64, 64}, "proxy filtering: the proxy airbench network's three group widths", widths(3, 3, "filter.widths needs 3 integers (the proxy is an airbench network)")},
      {"filter.convs_per_group", int64_t{2}, "proxy filtering: the proxy's convs per group", positive()},
      {"filter.train_every", int64_t{4}, "proxy filtering: the proxy takes an SGD step (on its own kept examples) on every Nth batch; the others only pass forward", positive()},
      // training
      {"selftrain.teacher", std::string(""), "self-training student: the teacher's checkpoint.pt; it pseudo-labels the unlabeled rest of data.labeled's split, whose labels are never read, or selftrain.unlabeled_folder ("" = off)"},
      {"selftrain.unlabeled_folder", std::string(""), "self-training student: pseudo-label every .png/.jpg/.jpeg/.bmp/.webp/.heic/.heif/.avif under this directory (any depth, folder names ignored, sorted by path; fitted to the training images' size by data.resize) instead of data.labeled's rest; the pseudo-labels' accuracy is then unknown ("" = the split's rest)"},
      {"selftrain.unlabeled", int64_t{0}, "use the first N unlabeled examples (0 = all)"},
      {"selftrain.mode", std::string("hard"), "hard (one-hot of the teacher's argmax) | soft (softmax(logits / temperature))", one_of({"hard", "soft"})},
      {"selftrain.threshold", 0.0, "drop unlabeled examples whose teacher confidence (max probability) is below this"},
      {"selftrain.temperature", 1.0, "soft pseudo-labels: softmax temperature", positive()},
      {"selftrain.tta", std::string("none"), "the teacher's test-time augmentation when labeling: none | flip | flip+translate", one_of({"none", "flip", "flip+translate"})},
      {"selftrain.ratio", 1.0, "pseudo-labeled examples per labeled example in each batch", positive()},
      {"selftrain.pseudo_weight", std::string("fixed"), "weight of the pseudo-labeled loss: fixed (selftrain.weight) | ratio (selftrain.weight x n_pseudo / n_labeled, as the public Noisy Student code)", one_of({"fixed", "ratio"})},
      {"selftrain.weight", 1.0, "the pseudo-labeled loss's weight w"},
      {"selftrain.loss_normalization", false, "rescale the pseudo-labeled loss by running mean(labeled loss) / running mean(pseudo loss) (the paper's normalisation)"},
      {"selftrain.student_dropout", 0.0, "kiln selftrain: the students' model.dropout (noise)", probability()},
      {"selftrain.student_stochastic_depth", 0.0, "kiln selftrain: the students' model.stochastic_depth (noise)", probability()},
      {"selftrain.student_width_mult", 1.0, "kiln selftrain: the students' model.widths times this (a wider student)", positive()},
      {"selftrain.student_epochs", 0.0, "kiln selftrain: the students' schedule.epochs, over the labeled examples (0 = the teacher's)", non_negative()},
      {"selftrain.student_weight_decay", -1.0, "kiln selftrain: the students' optim.weight_decay, for their larger labeled + pseudo-labeled batches (negative = the teacher's)"},
      {"train.seed", int64_t{0}, "seed of the model init, shuffling and augmentation"},
      {"train.init", std::string(""), "start from another run's weights: a checkpoint.pt (its EMA weights when it kept them); tensors whose name and shape match are copied, the rest keep their initialisation"},
      {"train.precision", std::string("auto"), "auto (fp16 on CUDA as the peers; on the CPU bf16 where it is native: AMX or AVX512-BF16, else fp32) | fp32 | bf16 (bf16 compute, fp32 master weights and optimiser state) | fp16 (the whole model fp16, as airbench); BN stays fp32 (kiln/core/precision.h)", one_of({"auto", "fp32", "bf16", "fp16"})},
      {"train.master_weights", true, "bf16: keep the weights, gradients and optimiser state in fp32 and compute in bf16 (false: the whole model cast to bf16, updates rounded to bf16)"},
      {"train.channels_last", true, "channels_last memory format for the images, parameters and buffers (every device; measured faster on the CPU, docs/perf.md; on CUDA not run yet)"},
      {"train.fused_cpu", true, "CPU, training and evaluation: the airbench block's 2x2 max-pool -> BatchNorm -> GELU, BatchNorm -> GELU and (3-conv groups) BatchNorm -> + residual -> GELU each as one fused operator (kiln/nn/fused_cpu.h; docs/perf.md) instead of LibTorch's three, two and three (in evaluation only where nothing needs a gradient); false: LibTorch's operators"},
      {"train.fused_cuda", false, "CUDA, training and evaluation: the same three blocks as train.fused_cpu, each as one fused operator on the GPU (kiln/nn/fused_gpu.h) instead of LibTorch's max_pool2d, batch_norm, add and gelu kernels; NOT YET RUN ON A GPU (its CUDA kernels compile and its arithmetic is tested on the CPU through an emulation), so off until the GPU window has checked and timed it (docs/gpu.md)"},
      {"train.eval_every", int64_t{1}, "evaluate test accuracy every N epochs (and always at the end)"},
      {"train.checkpoint_every", int64_t{1}, "write the checkpoint every N epochs (and at the end / on Ctrl-C)"},
      {"train.progress_every", int64_t{10}, "steps between progress-bar updates"},
      {"train.divergence_loss", 0.0, "stop the run when an epoch's mean training loss exceeds this (0: 25 x ln(classes), far above chance; < 0: never)"},
      {"train.qat", false, "quantisation-aware training: every step's forward and backward see the int8 round trip of each conv and linear weight (kiln/deploy/quantize.h); the gradient there updates the fp32 weights (straight-through)"},
      {"train.qat_granularity", std::string("channel"), "train.qat's int8 grid: channel (a scale per output channel, as kiln quantize and kiln export --int8 by default) | tensor (one scale per weight, as kiln quantize --granularity tensor)", one_of({"channel", "tensor"})},
      {"train.qat_bits", int64_t{8}, "train.qat's grid: bits of the symmetric integer grid, 2 to 8 (8 = int8; 4: 7 steps each side, as kiln quantize --bits 4)"},
      {"train.static_step", false, "run each step through the graph-safe static step (LR table and counters on the device; kiln/train/static_step.h)"},
      {"train.sync_check", false, "stop the run at a host-device synchronisation inside a training step: on CUDA PyTorch's sync debug mode set to error; on the CPU the steps' operators watched for the ones that would synchronise on CUDA (item(), nonzero, boolean indexing, unique, ...)"},
      {"train.cuda_graph", false, "CUDA: capture the static step in a CUDA graph after 3 eager steps and replay it"},
      // data parallelism (kiln/dist/dist.h; used with --world-size > 1 or the launcher's RANK/WORLD_SIZE)
      {"dist.sync_bn", false, "BatchNorm statistics over every rank's batch together (as one process with the union batch); false: each rank's own (like ghost BN)"},
      {"dist.bucket_mb", 25.0, "gradient all-reduce bucket size in MiB"},
      {"dist.timeout_s", 120.0, "seconds to wait for the other ranks (connecting, any collective) before stopping with an error"},
      {"dist.backend", std::string("auto"), "auto (gloo on the CPU, nccl on CUDA) | gloo | nccl", one_of({"auto", "gloo", "nccl"})},
  };
  return keys;
}

namespace {
KeyRule rule_of(KeyRule::Kind kind) {
  KeyRule r;
  r.kind = kind;
  return r;
}
}  // namespace

KeyRule positive() { return rule_of(KeyRule::Kind::kPositive); }
KeyRule non_negative() { return rule_of(KeyRule::Kind::kNonNegative); }
KeyRule probability() { return rule_of(KeyRule::Kind::kProbability); }
KeyRule factor() { return rule_of(KeyRule::Kind::kFactor); }
KeyRule one_of(std::vector<std::string> choices) {
  KeyRule r = rule_of(KeyRule::Kind::kOneOf);
  r.choices = std::move(choices);
  return r;
}
KeyRule widths(size_t min_size, size_t max_size, std::string size_message) {
  KeyRule r = rule_of(KeyRule::Kind::kWidths);
  r.min_size = min_size, r.max_size = max_size, r.size_message = std::move(size_message);
  return r;
}
KeyRule increasing_knots() { return rule_of(KeyRule::Kind::kIncreasingKnots); }

std::string KeyRule::describe() const {
  switch (kind) {
    case Kind::kAny: return "";
    case Kind::kPositive: return "> 0";
    case Kind::kNonNegative: return ">= 0";
    case Kind::kProbability: return "in [0, 1)";
    case Kind::kFactor: return "in (0, 1]";
    case Kind::kOneOf: {
      std::string list;
      for (auto& c : std::set<std::string>(choices.begin(), choices.end())) list += (list.empty() ? "" : " | ") + c;
      return "one of: " + list;
    }
    case Kind::kWidths:
      return (min_size == max_size ? std::to_string(min_size) : std::to_string(min_size) + " to " + std::to_string(max_size)) +
             " positive integers";
    case Kind::kIncreasingKnots: return "two or more [x, value] pairs, x increasing";
  }
  return "";
}

void KeyRule::check(const std::string& key, const ConfigValue& v) const {
  auto number = [&] { return v.index() == 1 ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v); };
  switch (kind) {
    case Kind::kAny: return;
    case Kind::kPositive:
      if (!(number() > 0)) throw Error(key + " must be positive");
      return;
    case Kind::kNonNegative:
      if (!(number() >= 0)) throw Error(key + " must be >= 0");
      return;
    case Kind::kProbability:
      if (!(number() >= 0 && number() < 1)) throw Error(key + " must be in [0, 1)");
      return;
    case Kind::kFactor:
      if (!(number() > 0 && number() <= 1)) throw Error(key + " must be in (0, 1]");
      return;
    case Kind::kOneOf: {
      auto& s = std::get<std::string>(v);
      if (std::find(choices.begin(), choices.end(), s) == choices.end())
        throw Error(key + " = '" + s + "' is not " + describe());
      return;
    }
    case Kind::kWidths: {
      auto& w = std::get<std::vector<int64_t>>(v);
      if (w.size() < min_size || w.size() > max_size) throw Error(size_message);
      for (auto x : w)
        if (x <= 0) throw Error(key + " must be positive");
      return;
    }
    case Kind::kIncreasingKnots: {
      auto& ks = std::get<Knots>(v);
      if (ks.size() < 2) throw Error(key + " needs at least two [x, value] pairs");
      for (size_t i = 1; i < ks.size(); ++i)
        if (!(ks[i].first > ks[i - 1].first))
          throw Error(key + ": x values must increase (" + std::to_string(ks[i - 1].first) + " then " +
                      std::to_string(ks[i].first) + ")");
      return;
    }
  }
}

}  // namespace kiln
