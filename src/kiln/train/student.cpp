#include "kiln/train/student.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/folder.h"
#include "kiln/report/show.h"
#include "kiln/train/trainer.h"

namespace kiln {

PseudoLabels teacher_pseudo_labels(const StudentSettings& st, const Dataset& unlabeled, const torch::Device& dev,
                                   int64_t batch_size) {
  const auto teacher = load_checkpoint(st.teacher, dev);
  const auto ts = as_its_run_evaluated(teacher);
  DeviceLoader tl(unlabeled, dev, ts.step.resolve(dev).compute, teacher.mean, teacher.std, ts.step.channels_last, ts.data.view);
  return make_pseudo_labels(*teacher.model, tl, batch_size, st.mode, st.threshold, st.temperature, st.tta);
}

namespace {

// pseudo_labels.csv: one row per image of selftrain.unlabeled_folder, what the teacher said of it.
std::string labels_csv(const std::vector<std::string>& paths, const PseudoLabels& pl, const std::vector<std::string>& classes) {
  const auto predicted = pl.predicted.to(torch::kCPU, torch::kInt64).contiguous();
  const auto confidence = pl.confidence.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto keep = pl.keep.to(torch::kCPU, torch::kBool).contiguous();
  const auto* p = predicted.data_ptr<int64_t>();
  const auto* q = confidence.data_ptr<double>();
  const auto* k = keep.data_ptr<bool>();
  std::string out = "path,pseudo_label,confidence,kept\n";
  for (size_t i = 0; i < paths.size(); ++i) {
    const auto c = static_cast<size_t>(p[i]);
    char conf[32];
    std::snprintf(conf, sizeof conf, "%.6f", q[i]);
    out += csv_field(paths[i]) + "," + csv_field(c < classes.size() ? classes[c] : std::to_string(c)) + "," + conf + "," +
           (k[i] ? "true" : "false") + "\n";
  }
  return out;
}

}  // namespace

Student::Student(const RunSettings& s, const RunData& data, const torch::Device& dev, torch::ScalarType dtype,
                 bool channels_last, const AugmentOptions& aug)
    : dev_(dev), seed_(s.loop.seed), aug_(aug), teacher_(s.student.teacher) {
  const auto& st = s.student;
  Dataset unlabeled;
  std::vector<std::string> paths;  // a folder's images, relative to it
  torch::Tensor hidden;  // their true labels: known for the split's rest, not for a folder's images
  if (!st.unlabeled_folder.empty()) {
    const auto& stored = data.train->data();  // the folder's images take the training images' stored shape
    FolderReport r;
    unlabeled = read_unlabeled_images(st.unlabeled_folder, stored.size(1), stored.size(2), stored.size(3), st.unlabeled,
                                      s.data.folder_options, &r, &paths);  // selftrain.unlabeled: the first N by path
    source_ = "selftrain.unlabeled_folder " + folder_report_line(st.unlabeled_folder, unlabeled, r);
    unlabeled.classes = data.class_names;
    folder_ = st.unlabeled_folder;
    Md5 md5;
    for (const auto& p : paths) md5.update(p.data(), p.size()).update("\n", 1);
    const auto px = unlabeled.images.contiguous();
    folder_md5_ = md5.update(px.data_ptr(), px.nbytes()).hex();
  } else {
    unlabeled = data.split.unlabeled.head(st.unlabeled);
    hidden = data.split.hidden_labels.slice(0, 0, unlabeled.size());
    if (unlabeled.size() == 0) throw Error("selftrain.teacher: the split leaves no unlabeled examples (data.labeled = all of them)");
  }
  unlabeled_ = unlabeled.size();
  teacher_md5_ = md5_file_hex(st.teacher);
  const auto pl = teacher_pseudo_labels(st, unlabeled, dev, s.data.test_batch_size);
  if (pl.targets.size(1) != data.classes)
    throw Error("selftrain.teacher = '" + teacher_ + "' predicts " + std::to_string(pl.targets.size(1)) +
                " classes; this dataset has " + std::to_string(data.classes));
  quality_ = pseudo_label_quality(pl, hidden);
  if (!paths.empty()) csv_ = labels_csv(paths, pl, data.class_names);
  auto keep = pl.keep.nonzero().view({-1});
  Dataset kept{unlabeled.images.index_select(0, keep), torch::full({keep.size(0)}, -1, torch::kInt64), unlabeled.classes};
  const int64_t bs = data.batch_size;
  pbs_ = std::max<int64_t>(1, std::llround(static_cast<double>(bs) * st.ratio));
  if (kept.size() < pbs_)
    throw Error("selftrain: only " + std::to_string(kept.size()) + " unlabeled examples pass selftrain.threshold = " +
                std::to_string(st.threshold) + ", fewer than one pseudo-labeled batch (" +
                std::to_string(pbs_) + " = data.batch_size x selftrain.ratio); lower the threshold or the ratio");
  pseudo_ = std::make_unique<DeviceLoader>(kept, dev, dtype, data.mean, data.std, channels_last, s.data.view);
  targets_ = pl.targets.index_select(0, keep).to(dev, torch::kFloat32);
  batches_ = kept.size() / pbs_;
  loss_ = std::make_unique<StudentLoss>(st.pseudo_weight, st.weight, st.loss_normalization, s.optim.label_smoothing);
  epoch_parts_ = torch::zeros({2}, torch::TensorOptions().dtype(torch::kFloat64).device(dev));
  json_ = nlohmann::ordered_json{{"teacher", teacher_},
                                 {"unlabeled_folder", st.unlabeled_folder},
                                 {"unlabeled", unlabeled.size()},
                                 {"kept", quality_.kept},
                                 {"coverage", quality_.coverage},
                                 {"accuracy", quality_.accuracy},
                                 {"mode", st.mode},
                                 {"threshold", st.threshold},
                                 {"temperature", st.temperature},
                                 {"tta", st.tta},
                                 {"pseudo_batch", pbs_},
                                 {"labeled_batch", bs}}
              .dump(2);
}

void Student::check_resumed(const std::string& teacher_md5, const std::string& folder_md5) const {
  const std::string advice = ": its pseudo-labels, and so the batches, would not be the interrupted run's. Put back what the "
                             "run started with, or start a new run (--init takes this one's weights)";
  if (teacher_md5 != teacher_md5_)
    throw Error("resuming a student: its teacher, selftrain.teacher = '" + teacher_ + "', is not the file the run started with (MD5 " +
                teacher_md5 + ", now " + teacher_md5_ + ")" + advice);
  if (folder_md5 != folder_md5_)
    throw Error("resuming a student: the images of selftrain.unlabeled_folder = '" + folder_ +
                "' are not those the run started with (MD5 of their paths and pixels " + folder_md5 + ", now " + folder_md5_ +
                "; " + std::to_string(unlabeled_) + " images read now)" + advice);
}

std::vector<std::pair<std::string, std::string>> Student::files() const {
  std::vector<std::pair<std::string, std::string>> f{{"pseudo_labels.json", json_ + "\n"}};
  if (!csv_.empty()) f.emplace_back("pseudo_labels.csv", csv_);
  return f;
}

std::string Student::summary_line() const {
  char buf[256];
  std::snprintf(buf, sizeof buf, "pseudo-labels from %s: %lld of %lld unlabeled kept (coverage %.1f%%), ", teacher_.c_str(),
                (long long)quality_.kept, (long long)unlabeled_, 100 * quality_.coverage);
  std::string line = source_.empty() ? std::string() : source_ + "\n";
  line += buf;
  if (std::isnan(quality_.accuracy)) return line + "accuracy unknown (the folder's images have no labels)";
  std::snprintf(buf, sizeof buf, "accuracy %.2f%%", 100 * quality_.accuracy);
  return line + buf;
}

std::pair<Batch, torch::Tensor> Student::batch(int64_t g) {
  const int64_t e = g / batches_, k = g % batches_;
  if (!plan_ || plan_->epoch != e) plan_ = std::make_unique<EpochPlan>(pseudo_->plan(derive_seed(seed_, 77), e, true, aug_));
  auto b = pseudo_->batch(*plan_, k, pbs_, aug_);
  auto targets = targets_.index_select(0, plan_->order.slice(0, k * pbs_, (k + 1) * pbs_));
  return {b, targets};
}

std::pair<torch::Tensor, torch::Tensor> Student::forward(Classifier& model, const Batch& b, int64_t g, bool sum_loss) {
  auto [pb, targets] = batch(g);
  const int64_t nl = b.y.size(0);
  auto all = model.forward(torch::cat({b.x, pb.x}));
  auto logits = all.slice(0, 0, nl);
  auto parts = (*loss_)(logits, b.y, all.slice(0, nl), targets);
  {
    torch::NoGradGuard ng;
    epoch_parts_ += torch::stack({parts.labeled.detach(), parts.pseudo.detach()}).to(torch::kFloat64);
  }
  auto loss = sum_loss ? parts.total * static_cast<double>(nl) : parts.total;
  return {logits, loss};
}

}  // namespace kiln
