// What a run leaves behind (one part of kiln/train/run.h): the run directory (config.toml,
// provenance.json, metrics.jsonl, steps.csv, final.json, pictures, report.html), the TensorBoard
// events and the lines on the terminal. Only the writing process (rank 0) writes files; every
// process prints.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/loader.h"
#include "kiln/report/progress.h"
#include "kiln/report/tensorboard.h"
#include "kiln/train/trainer.h"

namespace kiln {

class RunLog {
 public:
  // writes: this process writes run_dir ("" writes nothing).
  RunLog(std::string run_dir, bool writes, bool verbose);
  bool writes() const { return writes_; }
  std::string path(const std::string& name) const;
  Progress& progress() { return progress_; }
  void line(const std::string& s) { progress_.line(s); }

  // The run directory's first files: config.toml, provenance.json, an empty metrics.jsonl and
  // steps.csv, and extra_files (name, content): a student's pseudo_labels.json and .csv.
  void start(const Config& cfg, const torch::Device& device, const std::string& command_line,
             const std::vector<std::pair<std::string, std::string>>& extra_files = {});
  // TensorBoard from here on, with the first 32 augmented training images of epoch 1 as a
  // picture (data/augmented_batch; augmented_batch.png).
  void open_tensorboard(const Batch& first, const std::vector<double>& mean, const std::vector<double>& std,
                        const std::vector<std::string>& class_names);
  // One epoch: a line of metrics.jsonl, its steps' lines in steps.csv (step = steps done after
  // it; lr_at(g) the LR of global step g; step_losses: the epoch's per-step mean losses), the
  // TensorBoard scalars at `global_step` steps done (with test_class_accuracy/<class> when the
  // epoch's evaluation has them), and the epoch line on the terminal.
  void epoch(const EpochMetrics& m, int64_t epochs, int64_t first_step, int64_t steps, const double* step_losses,
             const std::function<double(int64_t)>& lr_at, int64_t global_step);
  // Resuming: metrics.jsonl rewritten to exactly `history`, steps.csv to the steps up to
  // `steps_done`.
  void rewind(const std::vector<EpochMetrics>& history, int64_t steps_done);
  // The final evaluation as pictures: a prediction grid (mistakes first) and the confusion
  // matrix, as PNGs and TensorBoard images.
  void final_pictures(const DeviceLoader& test, const torch::Tensor& predictions, const std::vector<double>& mean,
                      const std::vector<double>& std, const std::vector<std::string>& class_names, int64_t global_step);
  void final_json(const std::string& json);
  void report_quietly();  // report.html; a report must never cost the run

 private:
  std::string run_dir_;
  bool writes_;
  Progress progress_;
  std::unique_ptr<EventWriter> tb_;
  std::vector<std::string> class_names_;  // open_tensorboard's: the per-class scalars' tags
};

}  // namespace kiln
