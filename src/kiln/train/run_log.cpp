#include "kiln/train/run_log.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/report/html.h"
#include "kiln/report/show.h"
#include "kiln/train/run_settings.h"

namespace kiln {

namespace {
constexpr const char* kStepsHeader = "step,epoch,lr,loss\n";
}

RunLog::RunLog(std::string run_dir, bool writes, bool verbose)
    : run_dir_(std::move(run_dir)), writes_(writes && !run_dir_.empty()), progress_(verbose) {}

std::string RunLog::path(const std::string& name) const { return (std::filesystem::path(run_dir_) / name).string(); }

void RunLog::start(const Config& cfg, const torch::Device& dev, const std::string& command_line,
                   const std::vector<std::pair<std::string, std::string>>& extra_files) {
  if (!writes_) return;
  make_dirs(run_dir_);
  atomic_write(path("config.toml"), cfg.to_toml());
  const auto precision = RunSettings::from_config(cfg).step.resolve(dev);
  atomic_write(path("provenance.json"), provenance_json(dev, command_line, &precision) + "\n");
  atomic_write(path("metrics.jsonl"), std::string());
  atomic_write(path("steps.csv"), std::string(kStepsHeader));
  for (const auto& [name, content] : extra_files) atomic_write(path(name), content);
}

void RunLog::open_tensorboard(const Batch& b, const std::vector<double>& mean, const std::vector<double>& std,
                              const std::vector<std::string>& class_names) {
  if (!writes_) return;
  class_names_ = class_names;
  tb_ = std::make_unique<EventWriter>(run_dir_);
  std::vector<std::string> caps;
  auto y = b.y.cpu();
  for (int64_t i = 0; i < y.size(0); ++i) {
    auto k = y[i].item<int64_t>();
    caps.push_back(k < static_cast<int64_t>(class_names.size()) ? class_names[k] : std::to_string(k));
  }
  auto grid = image_grid(to_pixels(b.x, mean, std), caps, {}, 8, b.x.size(2) <= 32 ? 2 : 1);
  tb_->image("data/augmented_batch", grid.png(), grid.height, grid.width, 3, 0);
  try {
    grid.save(path("augmented_batch.png"));
  } catch (const Error& e) {  // a picture must never cost the run
    progress_.line(std::string("note: ") + e.what());
  }
  tb_->flush();
}

void RunLog::epoch(const EpochMetrics& m, int64_t epochs, int64_t g0, int64_t steps, const double* step_losses,
                   const std::function<double(int64_t)>& lr_at, int64_t global_step) {
  if (writes_) {
    std::ofstream f(path("metrics.jsonl"), std::ios::app);
    f << m.to_json() << "\n";
    std::ofstream st(path("steps.csv"), std::ios::app);
    char line[96];
    for (int64_t k = 0; k < steps; ++k) {
      std::snprintf(line, sizeof line, "%lld,%lld,%.6g,%.6g\n", (long long)(g0 + k + 1), (long long)m.epoch, lr_at(g0 + k),
                    step_losses[k]);
      st << line;
    }
    if (!f.flush() || !st.flush())
      throw Error("appending to '" + path("metrics.jsonl") + "' / steps.csv failed (disk full or file-size limit?); "
                  "the last checkpoint is kept: resume with  kiln train --resume " + run_dir_);
  }
  if (tb_) {  // TensorBoard: x axis = training steps done
    const int64_t s = global_step;
    tb_->scalar("train/loss", m.train_loss, s);
    tb_->scalar("train/accuracy", m.train_acc, s);
    if (m.evaluated) {
      tb_->scalar("test/accuracy", m.test_acc, s);
      tb_->scalar("test/loss", m.test_loss, s);
      for (size_t c = 0; c < m.test_class_acc.size(); ++c)  // per class, in their own group
        if (!std::isnan(m.test_class_acc[c]))
          tb_->scalar("test_class_accuracy/" + (c < class_names_.size() ? class_names_[c] : std::to_string(c)), m.test_class_acc[c], s);
    }
    if (!std::isnan(m.student_labeled_loss)) {
      tb_->scalar("student/labeled_loss", m.student_labeled_loss, s);
      tb_->scalar("student/pseudo_loss", m.student_pseudo_loss, s);
    }
    tb_->scalar("lr", m.lr, s);
    tb_->scalar("images_per_s", m.images_per_s, s);
    tb_->scalar("epoch", static_cast<double>(m.epoch), s);
    tb_->flush();
  }
  char buf[256];
  std::snprintf(buf, sizeof buf, "epoch %3lld/%lld  loss %.4f  train %.2f%%  %s  lr %.3g  %.1fs  %.0f img/s",
                (long long)m.epoch, (long long)epochs, m.train_loss, 100 * m.train_acc,
                m.evaluated ? ("test " + std::to_string(100 * m.test_acc).substr(0, 5) + "%").c_str() : "           ", m.lr,
                m.epoch_seconds, m.images_per_s);
  progress_.line(buf);
}

void RunLog::rewind(const std::vector<EpochMetrics>& history, int64_t steps_done) {
  if (!writes_) return;
  std::string lines;
  for (auto& e : history) lines += e.to_json() + "\n";
  atomic_write(path("metrics.jsonl"), lines);
  std::string steps = kStepsHeader;
  if (file_exists(path("steps.csv"))) {
    auto b = read_file(path("steps.csv"));
    std::istringstream in(std::string(b.begin(), b.end()));
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line))
      if (!line.empty() && std::stoll(line.substr(0, line.find(','))) <= steps_done) steps += line + "\n";
  }
  atomic_write(path("steps.csv"), steps);
}

void RunLog::final_pictures(const DeviceLoader& test, const torch::Tensor& predictions, const std::vector<double>& mean,
                            const std::vector<double>& std, const std::vector<std::string>& class_names, int64_t global_step) {
  if (!writes_ || !predictions.defined() || predictions.numel() == 0) return;
  auto labels = test.labels().cpu();
  auto grid = predictions_grid(to_pixels(test.data(), mean, std), labels, predictions, class_names, 48,
                               test.data().size(2) <= 32 ? 2 : 1);
  auto matrix = confusion_matrix(predictions, labels, static_cast<int64_t>(class_names.size()));
  auto conf = confusion_image(matrix, class_names);
  try {
    grid.save(path("predictions.png"));
    conf.save(path("confusion.png"));
    atomic_write(path("per_class.csv"), per_class_csv(matrix, class_names));
  } catch (const Error& e) {
    progress_.line(std::string("note: ") + e.what());
  }
  if (tb_) {
    tb_->image("test/predictions", grid.png(), grid.height, grid.width, 3, global_step);
    tb_->image("test/confusion", conf.png(), conf.height, conf.width, 3, global_step);
    tb_->flush();
  }
}

void RunLog::final_json(const std::string& json) {
  if (writes_) atomic_write(path("final.json"), json + "\n");
}

void RunLog::report_quietly() {
  if (!writes_) return;
  try {
    write_report(run_dir_);
  } catch (const std::exception& e) {
    progress_.line(std::string("note: report.html not written: ") + e.what());
  }
}

}  // namespace kiln
