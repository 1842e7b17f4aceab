#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "helpers.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/nn/model.h"
#include "kiln/report/memory.h"
#include "kiln/train/trainer.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::TempDir;
using kiln::test::tiny_config;
using kiln::test::synthetic;
using kiln::test::expect_exact_resume;
using kiln::test::quiet_options;
using kiln::test::read_metrics;
using kiln::test::without_times;

namespace {

Config real_cifar_config(int64_t train_n, int64_t test_n) {
  Config c = Config::from_file(find_preset("cifar10-resnet9-baseline"));
  c.set("model.widths", "[16, 32, 64, 128]");  // quarter width: 1/16 of the FLOPs
  c.set("data.train_subset", std::to_string(train_n));
  c.set("data.test_subset", std::to_string(test_n));
  return c;
}

}  // namespace

TEST(ResNet9, FullWidthShapesAndParameterCount) {
  Config c;
  auto m = make_model(c, 3, 10);
  // Convs 6,563,520 + BN 4,480 + linear 5,120 (Myrtle's ResNet-9).
  EXPECT_EQ(count_parameters(*m), 6573120);
  auto out = m->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 10}));
  // MNIST-sized input works too (28 -> 14 -> 7 -> 3 -> global max-pool).
  EXPECT_EQ(make_model(c, 1, 10)->forward(torch::randn({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
}

TEST(ResNet9, FullWidthOneStepUpdatesEveryParameter) {
  torch::manual_seed(0);
  Config c;
  auto m = make_model(c, 3, 10);
  std::vector<torch::Tensor> before;
  for (auto& p : m->parameters()) before.push_back(p.detach().clone());
  torch::optim::SGD opt(m->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9).nesterov(true));
  auto loss = torch::nn::functional::cross_entropy(m->forward(torch::randn({4, 3, 32, 32})), torch::tensor({0, 1, 2, 3}));
  loss.backward();
  opt.step();
  EXPECT_TRUE(std::isfinite(loss.item<double>()));
  auto params = m->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_FALSE(torch::equal(params[i], before[i])) << "parameter " << i;
}

TEST(Precision, Bf16KeepsBatchNormInFp32AndAgreesWithFp32) {
  Config c;
  c.set("model.widths", "[8, 16, 16, 32]");
  torch::manual_seed(5);
  auto m32 = make_model(c, 3, 10);
  torch::manual_seed(5);
  auto m16 = make_model(c, 3, 10);
  set_precision(*m16, torch::kBFloat16);
  for (auto& item : m16->named_parameters())
    EXPECT_EQ(item.value().scalar_type(),
              item.key().find("bn") != std::string::npos ? torch::kFloat32 : torch::kBFloat16)
        << item.key();
  for (auto& item : m16->named_buffers())
    if (item.value().is_floating_point()) EXPECT_EQ(item.value().scalar_type(), torch::kFloat32) << item.key();
  auto x = torch::randn({8, 3, 16, 16});
  auto y32 = m32->forward(x), y16 = m16->forward(x.to(torch::kBFloat16)).to(torch::kFloat32);
  EXPECT_LT((y32 - y16).abs().max().item<double>(), 0.05 * y32.abs().max().item<double>() + 1e-3);
}

TEST(Precision, Bf16TrainingLearnsOnCpu) {
  auto tt = synthetic(640, 200);
  Config c = tiny_config();
  c.set("train.precision", "bf16");
  c.set("schedule.epochs", "10");
  auto r16 = train(c, tt, quiet_options());
  c.set("train.precision", "fp32");
  auto r32 = train(c, tt, quiet_options());
  std::cout << "synthetic task: bf16 " << r16.final_test_acc << ", fp32 " << r32.final_test_acc << "\n";
  // Bounds and the spread they were set from (issue #27): bf16 / fp32 measured 0.755 / 0.74 on an
  // Intel Xeon with AMX (native kernels) and 0.76 / 0.79 with its AVX2 kernels (2026-11-30);
  // earlier sessions on an AMD EPYC, within the same range. 200 test images: one image is 0.005,
  // and the run-to-run spread of these accuracies is a few points, well inside 0.1.
  EXPECT_GT(r32.final_test_acc, 0.6);  // chance is 0.1
  // bf16 weights drop updates below 1/256 of a weight; it must still come close to fp32.
  EXPECT_GT(r16.final_test_acc, r32.final_test_acc - 0.1) << "bf16 training fell behind fp32";
}

TEST(Train, ResumeMidEpochAndAtEpochBoundaryEqualsUninterrupted) {
  auto tt = synthetic(512, 200);
  Config c = tiny_config();  // 8 steps per epoch, 2 epochs
  TempDir d;
  auto full = train(c, tt, quiet_options(d / "full"));
  ASSERT_FALSE(full.interrupted);
  ASSERT_EQ(full.epochs.size(), 2u);
  expect_exact_resume(c, tt, d.path.string(), {11, 8, 3}, "tiny config", d / "full");  // mid-epoch, at the boundary, early
}

TEST(Train, RunDirectoryContentsAndEvalFromCheckpoint) {
  auto tt = synthetic(256, 100);
  Config c = tiny_config();
  TempDir d;
  auto r = train(c, tt, quiet_options(d / "run"));
  for (auto f : {"config.toml", "provenance.json", "metrics.jsonl", "checkpoint.pt", "final.json"})
    EXPECT_TRUE(std::filesystem::exists(d / ("run/" + std::string(f)))) << f;
  for (auto& e : std::filesystem::directory_iterator(d / "run"))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << "leftover " << e.path();
  auto ms = read_metrics(d / "run");
  ASSERT_EQ(ms.size(), 2u);
  for (auto k : {"epoch", "train_loss", "train_acc", "test_acc", "lr", "epoch_seconds", "images_per_s"})
    EXPECT_TRUE(ms[1].contains(k)) << k;
  auto prov = nlohmann::json::parse(read_file(d / "run/provenance.json"));
  EXPECT_EQ(prov["libtorch_version"], "2.11.0");
  EXPECT_TRUE(prov.contains("kiln_commit"));
  Config back = Config::from_file(d / "run/config.toml");
  EXPECT_EQ(back.ints("model.widths"), c.ints("model.widths"));
  // The checkpoint alone reproduces the final test accuracy.
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  DeviceLoader test(tt.test, torch::kCPU, torch::kFloat32, lc.mean, lc.std);
  EXPECT_DOUBLE_EQ(evaluate(*lc.model, test, 100).acc, r.final_test_acc);
  // It holds the class names and the stored image size: what the model needs without its dataset.
  EXPECT_EQ(lc.class_names, tt.train.classes);
  EXPECT_EQ(lc.stored_shape, (std::vector<int64_t>{tt.train.images.size(1), tt.train.images.size(2), tt.train.images.size(3)}));
  const auto io = model_io_of(lc, [&]() -> TrainTest {
    ADD_FAILURE() << "the dataset was read for a checkpoint that holds its classes and image size";
    return tt;
  });
  EXPECT_EQ(io.classes, tt.train.classes);
  EXPECT_EQ(std::vector<int64_t>({io.channels, io.height, io.width}), lc.stored_shape);
  // A damaged checkpoint is refused by name.
  auto bytes = read_file(d / "run/checkpoint.pt");
  bytes.resize(bytes.size() / 2);
  kiln::test::write_bytes(d / "bad.pt", bytes);
  expect_error_containing([&] { checkpoint_config(d / "bad.pt"); }, "bad.pt");
}

namespace {
// A checkpoint with only what load_checkpoint needs (a file written before 2026-12-04 held no
// "classes" and "stored_shape"), plus `extra` named IValues or tensors.
void write_minimal_checkpoint(const std::string& path, LoadedCheckpoint& lc, int64_t in_ch, int64_t classes,
                              const std::function<void(torch::serialize::OutputArchive&)>& extra) {
  torch::serialize::OutputArchive ar, m;
  lc.model->save(m);
  ar.write("model", m);
  ar.write("config", c10::IValue(lc.cfg.to_toml()));
  ar.write("position", torch::tensor({int64_t{2}, int64_t{0}, int64_t{16}, int64_t{512}}, torch::kInt64));
  ar.write("shape", torch::tensor({in_ch, classes}, torch::kInt64));
  std::vector<double> norm = lc.mean;
  norm.insert(norm.end(), lc.std.begin(), lc.std.end());
  ar.write("norm", torch::tensor(norm, torch::kFloat64));
  extra(ar);
  ar.save_to(path);
}
}  // namespace

TEST(Train, CheckpointWithoutClassNamesReadsThemFromTheDatasetAndBadOnesAreRefused) {
  auto tt = synthetic(256, 100);
  TempDir d;
  train(tiny_config(), tt, quiet_options(d / "run"));
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  const int64_t C = tt.train.images.size(1), K = static_cast<int64_t>(tt.train.classes.size());
  write_minimal_checkpoint(d / "old.pt", lc, C, K, [](auto&) {});
  auto old = load_checkpoint(d / "old.pt", torch::kCPU);
  EXPECT_TRUE(old.class_names.empty());
  EXPECT_TRUE(old.stored_shape.empty());
  int reads = 0;
  auto renamed = tt;
  for (auto& n : renamed.train.classes) n = "from-the-dataset-" + n;
  const auto io = model_io_of(old, [&] { ++reads; return renamed; });
  EXPECT_EQ(reads, 1);
  EXPECT_EQ(io.classes, renamed.train.classes);
  EXPECT_EQ(std::vector<int64_t>({io.channels, io.height, io.width}), lc.stored_shape);
  // Names that are not a JSON array, too few names, a shape that is not C x H x W of the model's
  // channels: each refused, naming the file and the key.
  auto names = [](std::string json) { return [json](torch::serialize::OutputArchive& ar) { ar.write("classes", c10::IValue(json)); }; };
  auto shape = [](torch::Tensor t) { return [t](torch::serialize::OutputArchive& ar) { ar.write("stored_shape", t); }; };
  const std::vector<std::pair<std::function<void(torch::serialize::OutputArchive&)>, std::string>> bad = {
      {names("not json"), "'classes' is not a JSON array of names"},
      {names("[1, 2]"), "'classes' is not a JSON array of names"},
      {names(nlohmann::json(std::vector<std::string>(static_cast<size_t>(K - 1), "c")).dump()), "'classes' names " + std::to_string(K - 1) + " classes, its model has " + std::to_string(K) + " outputs"},
      {shape(torch::tensor({C + 1, int64_t{16}, int64_t{16}}, torch::kInt64)), "'stored_shape' is not {channels, height, width}"},
      {shape(torch::tensor({C, int64_t{16}}, torch::kInt64)), "'stored_shape' is not {channels, height, width}"},
      {shape(torch::tensor({C, int64_t{0}, int64_t{16}}, torch::kInt64)), "'stored_shape' is not {channels, height, width}"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    const auto path = d / ("bad" + std::to_string(i) + ".pt");
    write_minimal_checkpoint(path, lc, C, K, bad[i].first);
    expect_error_containing([&] { load_checkpoint(path, torch::kCPU); }, "'" + path + "': its " + bad[i].second);
  }
}

TEST(Train, NanLossStopsWithAClearMessageAndKeepsTheCheckpoint) {
  auto tt = synthetic(256, 100);
  Config c = tiny_config();
  c.set("schedule.epochs", "3");
  TempDir d;
  {
    auto ok = tiny_config();
    ok.set("schedule.epochs", "1");
    train(ok, tt, quiet_options(d / "run"));
  }
  auto before = md5_file_hex(d / "run/checkpoint.pt");
  c.set("optim.lr", "1e30");
  expect_error_containing([&] { train(c, tt, quiet_options(d / "run")); }, "training loss became");
  EXPECT_EQ(md5_file_hex(d / "run/checkpoint.pt"), before);
}

TEST(Train, DeterministicOnCpu) {
  auto tt = synthetic(256, 100);
  Config c = tiny_config();
  TempDir d;
  train(c, tt, quiet_options(d / "a"));
  train(c, tt, quiet_options(d / "b"));
  EXPECT_EQ(without_times(read_metrics(d / "a")), without_times(read_metrics(d / "b")));
}

// Real data from here on ($KILN_DATA/cifar10).
TEST(RealData, ResNet9OverfitsTenCifarImages) {
  auto root = kiln::test::real_data_root();
  if (root.empty() || !std::filesystem::exists(root + "/cifar10"))
    GTEST_SKIP() << "CIFAR-10 not found: set KILN_DATA to a directory holding cifar10/";
  auto tt = load_dataset("cifar10", root);
  Config c = real_cifar_config(10, 10);
  c.set("data.batch_size", "10");
  c.set("aug.pad", "0");
  c.set("aug.flip", "false");
  c.set("aug.cutout", "0");
  c.set("optim.weight_decay", "0");
  c.set("optim.lr", "0.01");
  c.set("schedule.knots", "[[0, 1], [1, 1]]");
  c.set("schedule.epochs", "40");
  c.set("train.eval_every", "100");
  auto r = train(c, tt, quiet_options());
  EXPECT_EQ(r.epochs.back().train_acc, 1.0);
  EXPECT_LT(r.epochs.back().train_loss, 0.05);
}

TEST(RealData, ShortCifarRunBeatsFloor) {
  auto root = kiln::test::real_data_root();
  if (root.empty() || !std::filesystem::exists(root + "/cifar10"))
    GTEST_SKIP() << "CIFAR-10 not found: set KILN_DATA to a directory holding cifar10/";
  auto tt = load_dataset("cifar10", root);
  // 5,000 training images, 4 epochs, quarter-width ResNet-9; the first 2,000 test images
  // (of this copy's round-robin order: 200 per class).
  Config c = real_cifar_config(5000, 2000);
  c.set("data.batch_size", "256");
  c.set("optim.lr", "0.0015625");     // 0.4 / 256 per example, summed loss
  c.set("optim.weight_decay", "0.128");
  c.set("schedule.epochs", "4");
  c.set("schedule.knot_unit", "fraction");
  c.set("schedule.knots", "[[0, 0], [0.25, 1], [1, 0]]");
  auto r = train(c, tt, quiet_options());
  std::cout << "short CIFAR-10 run: test accuracy " << 100 * r.final_test_acc << "% in " << r.train_seconds << " s\n";
  EXPECT_GT(r.final_test_acc, 0.40);  // chance is 10%
}

TEST(Train, ResumeIsExactWithEveryTrickOn) {
  auto tt = synthetic(512, 200);
  Config c = tiny_config();
  c.set("model.activation", "celu");
  c.set("model.celu_alpha", "0.3");
  c.set("model.pool_before_bn", "true");
  c.set("model.ghost_bn_splits", "4");
  c.set("model.bn_weight_freeze", "true");
  c.set("model.whiten", "3x3");
  c.set("model.whiten_samples", "100");
  c.set("optim.bn_bias_lr_mult", "64");
  c.set("optim.bn_bias_wd_div", "64");
  c.set("ema.enabled", "true");
  c.set("ema.every", "3");
  c.set("ema.momentum", "0.5");  // updates after the stop still depend on the restored average
  c.set("eval.tta", "flip+translate");
  TempDir d;
  expect_exact_resume(c, tt, d.path.string(), {10});
}

TEST(Train, LeakWatchStaysFlatAcrossEpochs) {
  auto tt = synthetic(256, 100);
  Config c = tiny_config();
  c.set("schedule.epochs", "5");
  c.set("ema.enabled", "true");
  TempDir d;
  train(c, tt, quiet_options(d / "run"));
  auto ms = read_metrics(d / "run");
  ASSERT_EQ(ms.size(), 5u);
  EXPECT_GT(ms[1]["live_allocations"].get<int64_t>(), 0);  // the counter is installed and sees the model
  for (size_t e = 2; e < ms.size(); ++e) {
    EXPECT_EQ(ms[e]["live_allocations"], ms[1]["live_allocations"]) << "epoch " << e + 1;
    EXPECT_EQ(ms[e]["live_bytes"], ms[1]["live_bytes"]) << "epoch " << e + 1;
  }
}

TEST(Train, LeakWatchCountsTensorsThatStayAlive) {
  install_cpu_allocation_counter();
  auto before = memory_stats(torch::kCPU);
  std::vector<torch::Tensor> kept;
  for (int i = 0; i < 10; ++i) kept.push_back(torch::empty({1000}, torch::kFloat32));
  auto during = memory_stats(torch::kCPU);
  EXPECT_EQ(during.live_allocations - before.live_allocations, 10);
  EXPECT_EQ(during.live_bytes - before.live_bytes, 40000);
  kept.clear();
  EXPECT_EQ(memory_stats(torch::kCPU).live_allocations, before.live_allocations);
}

TEST(Train, ResumeFromAnEndOfEpochCheckpointEqualsUninterrupted) {
  // What a SIGKILL leaves: the checkpoint written at the end of an epoch (no interrupt
  // checkpoint after it). Resuming from it must not replay an empty epoch.
  auto tt = synthetic(512, 200);
  Config c = tiny_config();
  c.set("schedule.epochs", "3");
  TempDir d;
  auto full = train(c, tt, quiet_options(d / "full"));
  Config one = c;
  // The same run's state after epoch 1, as its own end-of-epoch checkpoint: a run killed
  // in epoch 2 leaves exactly this on disk.
  auto o = quiet_options(d / "cut");
  o.stop_when = [](const EpochMetrics& m) { return m.epoch == 1; };
  train(c, tt, o);
  remove_tree(d / "cut/final.json");
  auto rest = resume(tt, quiet_options(d / "cut"));
  EXPECT_EQ(without_times(read_metrics(d / "cut")), without_times(read_metrics(d / "full")));
  EXPECT_EQ(rest.final_test_acc, full.final_test_acc);
}

TEST(Train, DivergenceShortOfNanStopsTheRunAndKeepsTheCheckpoint) {
  // A learning rate x1000 sends the loss to ~1e6 without a NaN: stopped at the end of the epoch
  // it happens in, with the previous epoch's checkpoint untouched.
  auto tt = synthetic(256, 100);
  Config c = tiny_config();
  c.set("schedule.epochs", "4");
  c.set("schedule.knot_unit", "epoch");
  c.set("schedule.knots", "[[0, 0.001], [1, 0.001], [1.01, 1], [4, 1]]");  // a good first epoch, then x1000
  c.set("optim.lr", "2");
  TempDir d;
  expect_error_containing([&] { train(c, tt, quiet_options(d / "run")); }, "training diverged in epoch");
  auto m = read_metrics(d / "run");
  ASSERT_GE(m.size(), 1u);
  auto lc = load_checkpoint(d / "run/checkpoint.pt", torch::kCPU);
  EXPECT_EQ(lc.epochs_done, static_cast<int64_t>(m.size()));
  for (auto& p : lc.model->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
}

TEST(Metrics, LineRoundTripsWithPerClassAccuracies) {
  // A resumed run rewrites metrics.jsonl from its history: every field must come back, a class
  // without test images (NaN, written as null) included.
  EpochMetrics m;
  m.epoch = 2;
  m.evaluated = true;
  m.test_loss = 1.5;
  m.test_acc = 0.5;
  m.test_class_acc = {0.25, std::nan(""), 1.0};
  const auto line = m.to_json();
  EXPECT_NE(line.find("\"test_class_acc\":[0.25,null,1.0]"), std::string::npos) << line;
  const auto back = EpochMetrics::from_json(line);
  ASSERT_EQ(back.test_class_acc.size(), 3u);
  EXPECT_TRUE(std::isnan(back.test_class_acc[1]));
  EXPECT_EQ(back.to_json(), line);
  EpochMetrics not_evaluated;  // no evaluation, no per-class field
  EXPECT_EQ(not_evaluated.to_json().find("test_class_acc"), std::string::npos);
}
