// Self-training's pieces against their definitions (kiln/train/selftrain.h).
#include <stb/stb_image_write.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "helpers.h"
#include "kiln/data/folder.h"
#include "kiln/data/split.h"
#include "kiln/nn/layers.h"
#include "kiln/train/loss.h"
#include "kiln/train/selftrain.h"
#include "kiln/train/selftrain_experiment.h"
#include "kiln/train/student.h"
#include "kiln/train/trainer.h"

using namespace kiln;

TEST(SelfTrain, StudentLossFixedAndRatioWeights) {
  torch::manual_seed(0);
  auto ll = torch::randn({4, 10}), lp = torch::randn({12, 10});
  auto y = torch::tensor({1, 2, 3, 4}, torch::kInt64);
  auto q = torch::softmax(torch::randn({12, 10}), 1);
  auto Ll = classification_loss(ll, y, 0.1, false);
  auto Lp = -(q * torch::log_softmax(lp, 1)).sum(1).mean();
  StudentLoss fixed("fixed", 0.5, false, 0.1);
  auto f = fixed(ll, y, lp, q);
  EXPECT_NEAR(f.total.item<double>(), (Ll + 0.5 * Lp).item<double>(), 1e-6);
  StudentLoss ratio("ratio", 1.0, false, 0.1);
  auto r = ratio(ll, y, lp, q);
  EXPECT_NEAR(r.total.item<double>(), (Ll + 3.0 * Lp).item<double>(), 1e-6);  // 12 pseudo / 4 labeled
  EXPECT_NEAR(r.scale.item<double>(), 3.0, 1e-6);
}

TEST(SelfTrain, LossNormalizationUsesRunningMeansOfBothParts) {
  torch::manual_seed(1);
  StudentLoss norm("fixed", 1.0, true, 0.0);
  double sum_l = 0, sum_p = 0;
  for (int step = 0; step < 3; ++step) {
    auto ll = torch::randn({8, 10}) * (step + 1), lp = torch::randn({8, 10});
    auto y = torch::randint(0, 10, {8}, torch::kInt64);
    auto q = torch::one_hot(torch::randint(0, 10, {8}, torch::kInt64), 10).to(torch::kFloat32);
    auto parts = norm(ll, y, lp, q);
    sum_l += parts.labeled.item<double>();
    sum_p += parts.pseudo.item<double>();
    const double s = (sum_l / (step + 1)) / (sum_p / (step + 1));
    EXPECT_NEAR(parts.scale.item<double>(), s, 1e-5) << "step " << step;
    EXPECT_NEAR(parts.total.item<double>(), parts.labeled.item<double>() + s * parts.pseudo.item<double>(), 1e-4);
  }
  // Gradients flow through both parts, not through the scale.
  auto ll = torch::randn({4, 10}, torch::requires_grad()), lp = torch::randn({4, 10}, torch::requires_grad());
  auto parts = norm(ll, torch::zeros({4}, torch::kInt64), lp, torch::full({4, 10}, 0.1));
  parts.total.backward();
  EXPECT_GT(ll.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(lp.grad().abs().sum().item<double>(), 0);
}

TEST(SelfTrain, PseudoLabelsHardSoftThresholdAndTheirQuality) {
  // A teacher trained on 200 labeled synthetic examples labels 500 unlabeled ones far above
  // chance, without reading their labels (they are -1 in the loader).
  auto tt = kiln::test::synthetic(700, 100);
  Config c;
  c.set("model.widths", "[8, 16, 16, 32]");
  c.set("data.batch_size", "50");
  c.set("data.labeled", "200");
  c.set("schedule.epochs", "20");
  c.set("optim.lr", "0.004");
  kiln::test::no_augmentation(c);
  c.set("train.precision", "fp32");
  kiln::test::TempDir d;
  auto tr = train(c, tt, kiln::test::quiet_options(d / "teacher"));
  std::printf("teacher test accuracy %.3f\n", tr.final_test_acc);
  auto lc = load_checkpoint(d / "teacher/checkpoint.pt", torch::kCPU);
  auto split = split_labeled(tt.train, 200, 0);
  DeviceLoader U(split.unlabeled, torch::kCPU, torch::kFloat32, lc.mean, lc.std);
  auto hard = make_pseudo_labels(*lc.model, U, 100, "hard", 0.0, 1.0, "none");
  auto q = pseudo_label_quality(hard, split.hidden_labels);
  EXPECT_EQ(q.coverage, 1.0);
  EXPECT_GT(q.accuracy, 0.5) << "chance is 0.1";
  EXPECT_TRUE(hard.targets.sum(1).eq(1).all().item<bool>());
  EXPECT_TRUE(torch::equal(hard.targets.argmax(1), hard.predicted));
  auto soft = make_pseudo_labels(*lc.model, U, 100, "soft", 0.0, 2.0, "flip");
  EXPECT_TRUE(torch::allclose(soft.targets.sum(1), torch::ones({500}), 1e-5, 1e-5));
  EXPECT_LT(std::get<0>(soft.targets.max(1)).mean().item<double>(), soft.confidence.mean().item<double>() + 1e-6);  // T = 2 flattens
  auto sure = make_pseudo_labels(*lc.model, U, 100, "hard", 0.5, 1.0, "none");
  auto qs = pseudo_label_quality(sure, split.hidden_labels);
  EXPECT_LE(qs.coverage, 1.0);
  EXPECT_TRUE(sure.keep.eq(sure.confidence >= 0.5).all().item<bool>());
  std::printf("pseudo-labels: all %.3f (coverage %.3f); confidence >= 0.5: %.3f (coverage %.3f)\n", q.accuracy, q.coverage,
              qs.accuracy, qs.coverage);
  if (qs.kept > 20) EXPECT_GE(qs.accuracy, q.accuracy - 0.05);  // confident labels are not worse
}

namespace {
Config small_config() {
  Config c;
  c.set("model.widths", "[8, 16, 16, 32]");
  c.set("data.batch_size", "20");
  c.set("optim.lr", "0.004");
  kiln::test::no_augmentation(c);
  c.set("train.precision", "fp32");
  c.set("train.checkpoint_every", "100");
  return c;
}

// small_config() on `labeled` labels for `epochs` epochs, trained as a teacher into dir/teacher;
// returns that config (the teacher's).
Config train_teacher(const TrainTest& tt, const kiln::test::TempDir& dir, const std::string& labeled, const std::string& epochs) {
  Config c = small_config();
  c.set("data.labeled", labeled);
  c.set("schedule.epochs", epochs);
  train(c, tt, kiln::test::quiet_options(dir / "teacher"));
  return c;
}

// An image (C x H x W, uint8) as a lossless PNG at `file`, its folders made as needed.
void write_png(const std::filesystem::path& file, const torch::Tensor& chw) {
  const auto hwc = chw.permute({1, 2, 0}).contiguous();
  std::filesystem::create_directories(file.parent_path());
  ASSERT_TRUE(stbi_write_png(file.c_str(), static_cast<int>(hwc.size(1)), static_cast<int>(hwc.size(0)),
                             static_cast<int>(hwc.size(2)), hwc.data_ptr<uint8_t>(), static_cast<int>(hwc.size(1) * hwc.size(2))));
}

// printf(pattern, i): the file names that keep path order the index order.
std::string numbered(const char* pattern, int64_t i) {
  char name[32];
  std::snprintf(name, sizeof name, pattern, (long long)i);
  return name;
}
}  // namespace

TEST(SelfTrain, StudentLearnsFromThePseudoLabelsItIsGiven) {
  // A teacher trained on 300 labels; a student with only 10 labels of its own. If the pseudo-
  // labels reach the student aligned with their images, it ends far above a 10-label baseline.
  auto tt = kiln::test::synthetic(600, 200);
  kiln::test::TempDir d;
  Config t = small_config();
  t.set("data.labeled", "300");
  t.set("schedule.epochs", "12");
  auto teacher = train(t, tt, kiln::test::quiet_options(d / "teacher"));
  Config base = small_config();
  base.set("data.labeled", "10");
  base.set("data.batch_size", "10");
  base.set("schedule.epochs", "60");
  auto alone = train(base, tt, kiln::test::quiet_options());
  Config s = student_config(base, d / "teacher/checkpoint.pt");
  s.set("selftrain.ratio", "4");
  s.set("selftrain.mode", "hard");
  auto student = train(s, tt, kiln::test::quiet_options(d / "student"));
  auto pl = nlohmann::json::parse(read_file(d / "student/pseudo_labels.json"));
  std::printf("teacher (300 labels) %.3f; 10 labels alone %.3f; student (10 labels + 590 pseudo-labels, accuracy %.3f) %.3f\n",
              teacher.final_test_acc, alone.final_test_acc, pl["accuracy"].get<double>(), student.final_test_acc);
  EXPECT_EQ(pl["kept"].get<int64_t>(), 590);
  EXPECT_GT(pl["accuracy"].get<double>(), 0.5);
  EXPECT_GT(student.final_test_acc, alone.final_test_acc + 0.15);
  EXPECT_GT(student.final_test_acc, 0.5);
}

TEST(SelfTrain, TeacherPseudoLabelsAreItsRunsPredictions) {
  // The teacher labels as its run evaluated: its precision, layout and (on the CPU) fused
  // operators. So with its own TTA, its hard pseudo-labels of its run's test images are right
  // exactly as often as its run's final evaluation was. In bf16 the fused and NCHW evaluations
  // round differently: before the teacher took its run's layout and fused operators, the fused
  // teacher here labelled 55 of 200 right where its run had counted 54 (2026-12-03).
  auto tt = kiln::test::synthetic(512, 200);
  for (bool fused : {true, false}) {
    const Config c = kiln::test::tiny_bf16_airbench(fused);
    ASSERT_EQ(c.s("eval.tta"), "flip+translate");
    ASSERT_EQ(c.f("eval.tta_translate_weight"), 0.5);  // make_pseudo_labels' translate weight
    kiln::test::TempDir d;
    const auto run = train(c, tt, kiln::test::quiet_options(d / "teacher"));
    StudentSettings st;
    st.teacher = d / "teacher/checkpoint.pt";
    st.mode = "hard";
    st.threshold = 0;
    st.tta = c.s("eval.tta");
    const auto pl = teacher_pseudo_labels(st, tt.test, torch::kCPU, c.i("data.test_batch_size"));
    const auto q = pseudo_label_quality(pl, tt.test.labels);
    EXPECT_EQ(std::lround(q.accuracy * 200), std::lround(run.final_test_acc * 200)) << "train.fused_cpu = " << fused;
  }
}

TEST(SelfTrain, StudentNeverReadsTheUnlabeledExamplesLabels) {
  // Given the split (choosing a class-balanced one must read every label), scrambling the
  // labels of every example outside the labeled part changes nothing in the student's training
  // (bit for bit on the CPU); only the measurement of the pseudo-labels, which is what those
  // labels are kept for, sees them.
  auto tt = kiln::test::synthetic(300, 50);
  kiln::test::TempDir d;
  Config c = train_teacher(tt, d, "100", "3");
  Config s = student_config(c, d / "teacher/checkpoint.pt");
  s.set("model.dropout", "0.2");
  s.set("model.stochastic_depth", "0.2");
  s.set("selftrain.ratio", "2");
  s.set("selftrain.loss_normalization", "true");
  auto split = split_labeled(tt.train, 100, 0);
  auto opt_a = kiln::test::quiet_options(d / "a");
  opt_a.labeled_index = split.labeled_index;
  train(s, tt, opt_a);
  TrainTest scrambled = tt;
  scrambled.train.labels = tt.train.labels.clone();
  scrambled.train.labels.index_put_({split.unlabeled_index}, (tt.train.labels.index_select(0, split.unlabeled_index) + 3) % 10);
  auto opt_b = kiln::test::quiet_options(d / "b");
  opt_b.labeled_index = split.labeled_index;
  train(s, scrambled, opt_b);
  // (Without the given split, the scrambled labels would move the balanced split itself.)
  EXPECT_FALSE(torch::equal(split_labeled(scrambled.train, 100, 0).labeled_index, split.labeled_index));
  EXPECT_EQ(kiln::test::without_times(kiln::test::read_metrics(d / "a")),
            kiln::test::without_times(kiln::test::read_metrics(d / "b")));
  auto wa = load_checkpoint(d / "a/checkpoint.pt", torch::kCPU), wb = load_checkpoint(d / "b/checkpoint.pt", torch::kCPU);
  auto pa = wa.model->parameters(), pb = wb.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
  auto qa = nlohmann::json::parse(read_file(d / "a/pseudo_labels.json")), qb = nlohmann::json::parse(read_file(d / "b/pseudo_labels.json"));
  EXPECT_NE(qa["accuracy"], qb["accuracy"]);  // the scrambled truth is seen by the measurement only
}

TEST(SelfTrain, StudentOnAnUnlabeledFolderIsTheStudentOnTheSplitsRest) {
  // selftrain.unlabeled_folder: the split's unlabeled images written out as PNGs (lossless, at
  // their size; two folders deep, named so that path order is the split's order) train the same
  // student, bit for bit, as the split's rest does; only the pseudo-labels' accuracy is unknown.
  auto tt = kiln::test::synthetic(300, 50);
  kiln::test::TempDir d;
  Config c = train_teacher(tt, d, "100", "3");
  Config s = student_config(c, d / "teacher/checkpoint.pt");
  s.set("selftrain.ratio", "2");
  auto split = split_labeled(tt.train, 100, 0);
  const int64_t n = split.unlabeled.size();
  for (int64_t i = 0; i < n; ++i)
    write_png(d.path / "unlabeled" / (i < n / 2 ? "a" : "b/deeper") / numbered("%05lld.png", i), split.unlabeled.images[i]);
  train(s, tt, kiln::test::quiet_options(d / "split"));
  Config f = s;
  f.set("selftrain.unlabeled_folder", d / "unlabeled");
  train(f, tt, kiln::test::quiet_options(d / "folder"));
  EXPECT_EQ(kiln::test::without_times(kiln::test::read_metrics(d / "split")),
            kiln::test::without_times(kiln::test::read_metrics(d / "folder")));
  auto a = load_checkpoint(d / "split/checkpoint.pt", torch::kCPU), b = load_checkpoint(d / "folder/checkpoint.pt", torch::kCPU);
  auto pa = a.model->parameters(), pb = b.model->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << "parameter " << i;
  auto qa = nlohmann::json::parse(read_file(d / "split/pseudo_labels.json")),
       qb = nlohmann::json::parse(read_file(d / "folder/pseudo_labels.json"));
  EXPECT_EQ(qb["unlabeled"], n);
  EXPECT_EQ(qa["coverage"], qb["coverage"]);
  EXPECT_TRUE(qa["accuracy"].is_number());
  EXPECT_TRUE(qb["accuracy"].is_null()) << qb.dump();
  EXPECT_EQ(qb["unlabeled_folder"], d / "unlabeled");
  // pseudo_labels.csv: each image's path and label; scored against the truth kept aside, its
  // labels are exactly as accurate as the split's run measured its own.
  const auto bytes = read_file(d / "folder/pseudo_labels.csv");
  std::istringstream csv(std::string(bytes.begin(), bytes.end()));
  std::string row;
  std::getline(csv, row);
  EXPECT_EQ(row, "path,pseudo_label,confidence,kept");
  int64_t rows = 0, right = 0;
  while (std::getline(csv, row)) {
    const auto c1 = row.find(','), c2 = row.find(',', c1 + 1);
    char expected_path[40];
    std::snprintf(expected_path, sizeof expected_path, "%s/%05lld.png", rows < n / 2 ? "a" : "b/deeper", (long long)rows);
    EXPECT_EQ(row.substr(0, c1), expected_path);
    EXPECT_EQ(row.substr(row.rfind(',') + 1), "true");  // selftrain.threshold = 0 keeps all
    right += row.substr(c1 + 1, c2 - c1 - 1) == tt.train.classes[split.hidden_labels[rows].item<int64_t>()];
    ++rows;
  }
  EXPECT_EQ(rows, n);
  EXPECT_NEAR(static_cast<double>(right) / n, qa["accuracy"].get<double>(), 1e-12);
  EXPECT_FALSE(std::filesystem::exists(d / "split/pseudo_labels.csv")) << "the split's rest has no paths to list";
  // selftrain.unlabeled = N: the first N images by path, and N rows.
  Config first = f;
  first.set("selftrain.unlabeled", "60");
  first.set("selftrain.ratio", "1");
  train(first, tt, kiln::test::quiet_options(d / "first"));
  const auto b60 = read_file(d / "first/pseudo_labels.csv");
  const std::string rows60(b60.begin(), b60.end());
  EXPECT_EQ(std::count(rows60.begin(), rows60.end(), '\n'), 61);
  EXPECT_NE(rows60.find("\na/00059.png,"), std::string::npos);
  EXPECT_EQ(nlohmann::json::parse(read_file(d / "first/pseudo_labels.json"))["unlabeled"], 60);

  // Every training example labeled (data.labeled = 0) and the folder to pseudo-label: allowed.
  // Without either, the refusal names both ways.
  Config all = f;
  all.set("data.labeled", "0");
  EXPECT_NO_THROW(RunSettings::from_config(all).check_compatible(1, false));
  all.set("selftrain.unlabeled_folder", "");
  kiln::test::expect_error_containing([&] { RunSettings::from_config(all).check_compatible(1, false); }, "data.labeled > 0");
  kiln::test::expect_error_containing([&] { RunSettings::from_config(all).check_compatible(1, false); }, "selftrain.unlabeled_folder");
}

TEST(SelfTrain, UnlabeledFolderImagesTakeTheRunsShapeOrAreRefusedByName) {
  kiln::test::TempDir d;
  std::vector<uint8_t> rgb(8 * 6 * 3, 200), grey(5 * 5, 90);
  std::filesystem::create_directories(d / "u/x");
  ASSERT_TRUE(stbi_write_png((d / "u/x/colour.png").c_str(), 8, 6, 3, rgb.data(), 8 * 3));
  ASSERT_TRUE(stbi_write_png((d / "u/grey.png").c_str(), 5, 5, 1, grey.data(), 5));
  {
    std::ofstream(d / "u/notes.txt") << "not an image";
  }
  FolderOptions o;
  const auto ds = read_unlabeled_images(d / "u", 3, 4, 4, 0, o);
  ASSERT_EQ(ds.images.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_TRUE(ds.labels.eq(-1).all().item<bool>());
  EXPECT_TRUE(ds.images[0].eq(90).all().item<bool>()) << "u/grey.png (first by path): grey copied to RGB, resized";
  EXPECT_TRUE(ds.images[1].eq(200).all().item<bool>()) << "u/x/colour.png";
  FolderOptions small = o;  // 2 images of 3 x 512 x 512 (1.5 MiB) over a 1 MiB limit: one would fit
  small.memory_limit_mb = 1;
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "u", 3, 512, 512, 0, small); },
                                      "more than the 1 MiB allowed (data.memory_limit_mb");
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "u", 3, 512, 512, 0, small); }, "selftrain.unlabeled = 1 ");
  // The first N by path are all that is read: with N = 1 the colour image is never opened.
  EXPECT_EQ(read_unlabeled_images(d / "u", 1, 4, 4, 1, o).size(), 1);
  EXPECT_EQ(read_unlabeled_images(d / "u", 3, 512, 512, 1, small).size(), 1);
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "u", 1, 4, 4, 0, o); }, "colour.png");
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "u", 1, 4, 4, 0, o); }, "grey");
  std::filesystem::create_directories(d / "empty/sub");
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "empty", 3, 4, 4, 0, o); }, "selftrain.unlabeled_folder");
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "empty", 3, 4, 4, 0, o); }, "no .png");
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "missing", 3, 4, 4, 0, o); }, "selftrain.unlabeled_folder");
  kiln::test::expect_error_containing([&] { read_unlabeled_images(d / "missing", 3, 4, 4, 0, o); }, "does not exist");
}

TEST(SelfTrain, StudentLogsTheTwoPartsOfItsLoss) {
  // metrics.jsonl and TensorBoard carry the student's labelled and pseudo-labelled losses per
  // epoch; with a fixed weight w and no normalisation the loss it optimises is, step by step,
  // L_l + w L_p, so the epoch's train_loss (equal batches) is their means combined the same way.
  auto tt = kiln::test::synthetic(300, 50);
  kiln::test::TempDir d;
  Config c = train_teacher(tt, d, "100", "2");
  Config s = student_config(c, d / "teacher/checkpoint.pt");
  s.set("schedule.epochs", "3");
  s.set("selftrain.weight", "0.5");
  s.set("selftrain.ratio", "2");
  train(s, tt, kiln::test::quiet_options(d / "student"));
  const auto metrics = kiln::test::read_metrics(d / "student");
  ASSERT_EQ(metrics.size(), 3u);
  for (const auto& m : metrics) {
    ASSERT_TRUE(m.contains("student_labeled_loss") && m.contains("student_pseudo_loss")) << m.dump();
    const double l = m["student_labeled_loss"], p = m["student_pseudo_loss"];
    EXPECT_GT(p, 0);
    EXPECT_NEAR(m["train_loss"].get<double>(), l + 0.5 * p, 1e-5 * (l + p)) << m.dump();
  }
  EXPECT_LT(metrics.back()["student_labeled_loss"].get<double>(), metrics.front()["student_labeled_loss"].get<double>());
  // A run without a teacher has neither field.
  EXPECT_FALSE(kiln::test::read_metrics(d / "teacher").front().contains("student_labeled_loss"));
}

TEST(SelfTrain, StudentResumesExactly) {
  auto tt = kiln::test::synthetic(300, 50);
  kiln::test::TempDir d;
  Config c = train_teacher(tt, d, "100", "2");
  Config s = student_config(c, d / "teacher/checkpoint.pt");
  s.set("schedule.epochs", "4");
  s.set("model.stochastic_depth", "0.3");
  s.set("aug.policy", "randaugment");
  s.set("selftrain.loss_normalization", "true");
  s.set("selftrain.ratio", "3");  // 60 pseudo per step over 200 kept: the pseudo epochs do not line up with the labeled ones
  kiln::test::expect_exact_resume(s, tt, d.path.string(), {7}, "student");  // mid-epoch (5 steps per epoch)
}

TEST(SelfTrain, ResumedFolderStudentIsExactAndRefusesAChangedTeacherOrFolder) {
  // A folder student resumes exactly. Its pseudo-labels are made again on resume, so a changed
  // teacher file or folder image would change its batches mid-run: refused, naming which, and
  // nothing is lost (the checkpoint stays; with the original put back the run resumes).
  auto tt = kiln::test::synthetic(300, 50);
  kiln::test::TempDir d;
  Config c = train_teacher(tt, d, "100", "2");
  Config other = c;
  other.set("train.seed", "5");
  train(other, tt, kiln::test::quiet_options(d / "teacher2"));
  const auto rest = split_labeled(tt.train, 100, 0).unlabeled.images.slice(0, 0, 80);
  auto image = [&](int64_t i) { return d.path / "u" / numbered("%03lld.png", i); };
  for (int64_t i = 0; i < rest.size(0); ++i) write_png(image(i), rest[i]);
  Config s = student_config(c, d / "teacher/checkpoint.pt");
  s.set("schedule.epochs", "3");
  s.set("selftrain.unlabeled_folder", d / "u");
  kiln::test::expect_exact_resume(s, tt, d.path.string(), {7}, "folder student");

  auto cut = [&](const std::string& name) {
    auto o = kiln::test::quiet_options(d / name);
    o.stop_after_steps = 4;
    ASSERT_TRUE(train(s, tt, o).interrupted);
  };
  const auto checkpoint_bytes = [&](const std::string& name) { return read_file(d / (name + "/checkpoint.pt")); };
  // One pixel of one image changed: refused, naming the folder.
  cut("folder_changed");
  const auto kept = checkpoint_bytes("folder_changed");
  auto changed = rest[40].clone();
  changed[0][0][0] = static_cast<uint8_t>(255 - changed[0][0][0].item<uint8_t>());
  write_png(image(40), changed);
  kiln::test::expect_error_containing([&] { resume(tt, kiln::test::quiet_options(d / "folder_changed")); },
                                      "selftrain.unlabeled_folder = '" + (d / "u") + "' are not those the run started with");
  EXPECT_EQ(checkpoint_bytes("folder_changed"), kept) << "the refusal rewrote the checkpoint";
  write_png(image(40), rest[40]);
  EXPECT_FALSE(resume(tt, kiln::test::quiet_options(d / "folder_changed")).interrupted);
  EXPECT_EQ(kiln::test::without_times(kiln::test::read_metrics(d / "folder_changed")),
            kiln::test::without_times(kiln::test::read_metrics(d / "full")));
  // An image renamed (same pixels, another path order): refused too.
  cut("renamed");
  std::filesystem::rename(d.path / "u/079.png", d.path / "u/000a.png");
  kiln::test::expect_error_containing([&] { resume(tt, kiln::test::quiet_options(d / "renamed")); }, "paths and pixels");
  std::filesystem::rename(d.path / "u/000a.png", d.path / "u/079.png");
  // Another teacher in the teacher's file: refused, naming it.
  cut("teacher_changed");
  const auto teacher = read_file(d / "teacher/checkpoint.pt");
  std::filesystem::copy_file(d.path / "teacher2/checkpoint.pt", d.path / "teacher/checkpoint.pt",
                             std::filesystem::copy_options::overwrite_existing);
  kiln::test::expect_error_containing([&] { resume(tt, kiln::test::quiet_options(d / "teacher_changed")); },
                                      "selftrain.teacher = '" + (d / "teacher/checkpoint.pt") + "', is not the file the run started with");
  atomic_write(d / "teacher/checkpoint.pt", teacher.data(), teacher.size());
  EXPECT_FALSE(resume(tt, kiln::test::quiet_options(d / "teacher_changed")).interrupted);
  EXPECT_EQ(kiln::test::without_times(kiln::test::read_metrics(d / "teacher_changed")),
            kiln::test::without_times(kiln::test::read_metrics(d / "full")));
}

TEST(SelfTrain, StudentRefusesWhatItCannotDo) {
  auto tt = kiln::test::synthetic(100, 20);
  kiln::test::TempDir d;
  Config c = train_teacher(tt, d, "40", "1");
  Config s = student_config(c, d / "teacher/checkpoint.pt");
  Config no_split = s;
  no_split.set("data.labeled", "0");
  kiln::test::expect_error_containing([&] { train(no_split, tt, kiln::test::quiet_options()); }, "data.labeled > 0");
  Config picky = s;
  picky.set("selftrain.threshold", "0.999999");
  kiln::test::expect_error_containing([&] { train(picky, tt, kiln::test::quiet_options()); }, "pass selftrain.threshold");
  Config missing = student_config(c, d / "nope/checkpoint.pt");
  kiln::test::expect_error_containing([&] { train(missing, tt, kiln::test::quiet_options()); }, "nope/checkpoint.pt");
}

TEST(SelfTrain, StudentConfigAddsNoiseAndWidth) {
  Config c;
  c.set("selftrain.student_dropout", "0.3");
  c.set("selftrain.student_stochastic_depth", "0.1");
  c.set("selftrain.student_width_mult", "1.5");
  auto s = student_config(c, "t/checkpoint.pt");
  EXPECT_EQ(s.s("selftrain.teacher"), "t/checkpoint.pt");
  EXPECT_EQ(s.f("model.dropout"), 0.3);
  EXPECT_EQ(s.f("model.stochastic_depth"), 0.1);
  EXPECT_EQ(s.ints("model.widths"), (std::vector<int64_t>{96, 192, 384, 768}));
  EXPECT_EQ(c.f("model.dropout"), 0.0);  // the teacher's config is untouched
  // A longer schedule and the weight decay of the larger mixed batch, only where set.
  EXPECT_EQ(s.f("schedule.epochs"), c.f("schedule.epochs"));
  EXPECT_EQ(s.f("optim.weight_decay"), c.f("optim.weight_decay"));
  c.set("selftrain.student_epochs", "16.5");
  c.set("selftrain.student_weight_decay", "0");
  s = student_config(c, "t/checkpoint.pt");
  EXPECT_EQ(s.f("schedule.epochs"), 16.5);
  EXPECT_EQ(s.f("optim.weight_decay"), 0.0);
}

TEST(SelfTrain, ExperimentWithATeacherStrengthTrainsTheBaselinesOnceForEveryStudentStrength) {
  // --teacher-aug S1 --aug S1,S4: the S1 baselines teach the S1 and the S4 students; they are
  // trained once, and the second strength reads them back.
  auto tt = kiln::test::synthetic(200, 50);
  kiln::test::TempDir d;
  Config base = small_config();
  base.set("data.labeled", "60");
  base.set("schedule.epochs", "1");
  SelftrainExperiment e;
  e.strengths = {"S1", "S4"};
  e.runs = 1;
  e.teacher_strength = "S9";
  EXPECT_THROW(check_selftrain(base, e), Error);
  e.teacher_strength = "S1";
  std::string table;
  ASSERT_TRUE(run_selftrain(base, e, tt, d.path.string(), kiln::test::quiet_options(), table));
  const auto teacher = (d / "teacher-S1/baseline/run-00/checkpoint.pt");
  EXPECT_TRUE(std::filesystem::exists(teacher));
  EXPECT_FALSE(std::filesystem::exists(d / "S1/baseline")) << "baselines trained per strength";
  EXPECT_FALSE(std::filesystem::exists(d / "S4/baseline"));
  for (auto s : {"S1", "S4"}) {
    auto pl = nlohmann::json::parse(read_file(d / (std::string(s) + "/round-1/run-00/pseudo_labels.json")));
    EXPECT_EQ(pl["teacher"].get<std::string>(), teacher) << s;
  }
  auto doc = nlohmann::json::parse(read_file(d / "selftrain.json"));
  EXPECT_EQ(doc["strengths"][1]["baseline"]["test_acc"], doc["strengths"][0]["baseline"]["test_acc"]);
  EXPECT_EQ(doc["strengths"][1]["teacher_strength"], "S1");
  EXPECT_NE(table.find("| S4 (baseline S1) |"), std::string::npos) << table;
}

TEST(SelfTrain, ExperimentOnAnUnlabeledFolderIsTheExperimentOnTheSplitsRest) {
  // kiln selftrain with selftrain.unlabeled_folder: the split's rest written out as PNGs gives
  // every round's students the same test accuracies as the split's rest itself; only the
  // pseudo-labels' accuracy is unknown (null in selftrain.json, "unknown" in the table). With a
  // folder, --labels 0 labels the whole training set; without one it is refused.
  auto tt = kiln::test::synthetic(200, 50);
  kiln::test::TempDir d;
  Config base = small_config();
  base.set("data.labeled", "60");
  base.set("schedule.epochs", "1");
  const auto rest = split_labeled(tt.train, 60, 0).unlabeled.images;
  for (int64_t i = 0; i < rest.size(0); ++i) write_png(d.path / "images" / numbered("%03lld.png", i), rest[i]);
  SelftrainExperiment e;
  e.strengths = {"S1"};
  e.rounds = 2;
  Config folder = base;
  folder.set("selftrain.unlabeled_folder", d / "images");
  EXPECT_NO_THROW(check_selftrain(folder, e));
  std::string split_table, folder_table;
  ASSERT_TRUE(run_selftrain(base, e, tt, d / "split", kiln::test::quiet_options(), split_table));
  ASSERT_TRUE(run_selftrain(folder, e, tt, d / "folder", kiln::test::quiet_options(), folder_table));
  auto a = nlohmann::json::parse(read_file(d / "split/selftrain.json")), b = nlohmann::json::parse(read_file(d / "folder/selftrain.json"));
  EXPECT_TRUE(a["unlabeled_folder"].is_null());
  EXPECT_EQ(b["unlabeled_folder"], d / "images");
  const auto& ra = a["strengths"][0]["rounds"];
  const auto& rb = b["strengths"][0]["rounds"];
  ASSERT_EQ(rb.size(), 2u);
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(ra[r]["test_acc"], rb[r]["test_acc"]) << "round " << r + 1;
    EXPECT_EQ(ra[r]["pseudo_coverage"], rb[r]["pseudo_coverage"]) << "round " << r + 1;
    EXPECT_TRUE(ra[r]["pseudo_accuracy"][0].is_number());
    EXPECT_TRUE(rb[r]["pseudo_accuracy"][0].is_null()) << rb.dump();
  }
  auto pl2 = nlohmann::json::parse(read_file(d / "folder/S1/round-2/run-00/pseudo_labels.json"));
  EXPECT_EQ(pl2["teacher"], d / "folder/S1/round-1/run-00/checkpoint.pt") << "round 2 is taught by round 1's student";
  EXPECT_EQ(pl2["unlabeled_folder"], d / "images");
  EXPECT_TRUE(std::filesystem::exists(d / "folder/S1/round-2/run-00/pseudo_labels.csv"));
  EXPECT_NE(folder_table.find("unlabeled images from " + (d / "images")), std::string::npos) << folder_table;
  EXPECT_NE(folder_table.find("| S1 | 2 | unknown (no labels) |"), std::string::npos) << folder_table;
  EXPECT_EQ(split_table.find("unknown"), std::string::npos) << split_table;

  // --labels 0: the whole training set labeled, the folder pseudo-labeled; refused without it.
  Config all = folder;
  all.set("data.labeled", "0");
  e.rounds = 1;
  ASSERT_TRUE(run_selftrain(all, e, tt, d / "all", kiln::test::quiet_options(), folder_table));
  EXPECT_NE(folder_table.find("# Self-training: all labels"), std::string::npos) << folder_table;
  auto pl = nlohmann::json::parse(read_file(d / "all/S1/round-1/run-00/pseudo_labels.json"));
  EXPECT_EQ(pl["unlabeled"], rest.size(0));
  all.set("selftrain.unlabeled_folder", "");
  kiln::test::expect_error_containing([&] { check_selftrain(all, e); }, "--labels N > 0");
  kiln::test::expect_error_containing([&] { check_selftrain(all, e); }, "selftrain.unlabeled_folder=DIR");
}

// The student's forward pass is one batch, cat(labelled, pseudo-labelled) (kiln/train/student.cpp), and
// ghost BN normalises each split with its own statistics. The splits interleave (example k in
// split k mod S, the notebook's view()), so every split holds both kinds, in the preset's
// proportions: here each split's labelled examples are marked -1 and its pseudo-labelled ones
// +1, and a split that held one kind only would normalise to all zeros.
TEST(SelfTrain, EveryGhostSplitHoldsLabelledAndPseudoLabelledExamples) {
  Config c = Config::from_file(find_preset("cifar10-selftrain"));
  const int64_t nl = c.i("data.batch_size"), S = c.i("model.ghost_bn_splits");
  const int64_t np = std::llround(static_cast<double>(nl) * c.f("selftrain.ratio"));
  ASSERT_EQ((nl + np) % S, 0) << "the student's batch must divide into the splits";
  BatchNormOptions o;
  o.ghost_splits = S;
  BatchNorm bn(1, o);
  auto x = torch::cat({torch::full({nl, 1, 1, 1}, -1.0), torch::full({np, 1, 1, 1}, 1.0)});
  auto y = bn(x).view({(nl + np) / S, S});  // row r holds examples r*S .. r*S + S - 1: column j is split j
  for (int64_t j = 0; j < S; ++j) {
    auto split = y.select(1, j);
    EXPECT_GT(split.abs().min().item<double>(), 0.5) << "split " << j << " holds one kind of example only";
    // Labelled ones normalise below the split's mean, pseudo-labelled ones above.
    auto kinds = x.view({(nl + np) / S, S}).select(1, j);
    EXPECT_TRUE(split.lt(0).eq(kinds.lt(0)).all().item<bool>()) << "split " << j;
  }
}

TEST(SelfTrain, AirbenchPresetIsCifar10_94WithTheCitedSemiSupervisedValues) {
  // configs/cifar10-selftrain-airbench.toml's header gives each value's source.
  Config c = Config::from_file(find_preset("cifar10-selftrain-airbench"));
  Config a = Config::from_file(find_preset("cifar10-94"));
  for (auto key : {"model.widths"}) EXPECT_EQ(c.ints(key), a.ints(key)) << key;
  for (auto key : {"optim.lr", "optim.momentum", "optim.label_smoothing", "optim.lookahead_decay", "model.output_scale"})
    EXPECT_EQ(c.f(key), a.f(key)) << key;
  EXPECT_EQ(c.s("model.name"), "airbench");
  EXPECT_EQ(c.i("data.labeled"), 4000);
  EXPECT_EQ(c.i("data.batch_size"), 128);
  EXPECT_EQ(c.f("selftrain.ratio"), 7.0);                                      // FixMatch's mu
  EXPECT_EQ(c.i("data.batch_size") * (1 + c.f("selftrain.ratio")), a.i("data.batch_size"));  // airbench94's 1,024
  EXPECT_NEAR(c.f("optim.weight_decay"), 0.0153 * 128 / 11.5, 1e-15);        // airbench94's wd rule at 128
  EXPECT_EQ(c.f("selftrain.student_weight_decay"), a.f("optim.weight_decay"));  // ... and at 1,024
  EXPECT_EQ(c.s("selftrain.mode"), "hard");
  EXPECT_EQ(c.f("selftrain.threshold"), 0.3);  // Noisy Student's filter (not FixMatch's 0.95: label smoothing)
  EXPECT_EQ(c.s("selftrain.pseudo_weight"), "ratio");
  EXPECT_EQ(c.f("selftrain.weight"), 1.0);
  EXPECT_EQ(c.f("selftrain.student_dropout"), 0.5);  // Noisy Student's final-layer dropout
  EXPECT_EQ(c.f("selftrain.student_epochs"), 16.0);  // 496 steps of 1,024 ~ airbench94's 9.9 x 48
  EXPECT_EQ(c.i("model.convs_per_group"), 2);        // no residual branch: no stochastic depth
  EXPECT_EQ(c.f("selftrain.student_stochastic_depth"), 0.0);
}
