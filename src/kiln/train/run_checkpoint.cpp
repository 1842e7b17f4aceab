// The run's checkpoint: every part's section, the position, the RNG states and the history,
// written atomically; and the way back in.
#include <nlohmann/json.hpp>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/train/run.h"

namespace kiln {

namespace {
void set_generator_state(at::Generator g, const torch::Tensor& state) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
}
}  // namespace

void Run::save_checkpoint() {
  if (!log_.writes()) return;
  torch::serialize::OutputArchive ar, m;
  model_->save(m);
  ar.write("model", m);
  optim_->save(ar);   // optim, lookahead, ema, plateau
  policy_->save(ar);  // static_optim
  if (filter_) {
    torch::serialize::OutputArchive fa;
    filter_->save(fa);
    ar.write("filter_proxy", fa);
  }
  ar.write("position", torch::tensor({epoch_, step_, global_step_, seen_}, torch::kInt64));
  // A data-parallel run's position counts each rank's steps over its shard: resume it with
  // as many ranks.
  ar.write("world_size", torch::tensor({dp_.size()}, torch::kInt64));
  ar.write("timing", torch::tensor({epoch_seconds_, train_seconds_}, torch::kFloat64));
  ar.write("accumulators", torch::stack({sums_.loss_sum, sums_.correct.to(torch::kFloat64)}).cpu());
  ar.write("step_losses", sums_.step_losses.cpu());
  if (student_) {
    ar.write("student_loss", student_->state());
    ar.write("student_epoch_parts", student_->epoch_parts().cpu());
    ar.write("student_teacher_md5", c10::IValue(student_->teacher_md5()));
    ar.write("student_folder_md5", c10::IValue(student_->folder_md5()));
  }
  ar.write("rng_cpu", at::detail::getDefaultCPUGenerator().get_state());
  if (dev_.is_cuda()) ar.write("rng_device", at::globalContext().defaultGenerator(dev_).get_state());
  ar.write("config", c10::IValue(cfg_.to_toml()));
  ar.write("shape", torch::tensor({data_.in_channels, data_.classes}, torch::kInt64));
  // What a user of the model needs without the dataset (`kiln predict`, `kiln export`): the
  // class names (a JSON array) and the stored image size C x H x W (before data.input_size).
  ar.write("classes", c10::IValue(nlohmann::json(data_.class_names).dump()));
  const auto& stored = data_.train->data();
  ar.write("stored_shape", torch::tensor({stored.size(1), stored.size(2), stored.size(3)}, torch::kInt64));
  std::vector<double> norm = data_.mean;
  norm.insert(norm.end(), data_.std.begin(), data_.std.end());
  ar.write("norm", torch::tensor(norm, torch::kFloat64));
  nlohmann::json hist = nlohmann::json::array();
  for (auto& e : history_) hist.push_back(nlohmann::json::parse(e.to_json()));
  ar.write("history", c10::IValue(hist.dump()));
  // Serialised in memory first, then written by atomic_write (temporary file, fsync, rename):
  // LibTorch's own file writer cannot report a failed write (a full disk) without aborting.
  std::ostringstream bytes;
  ar.save_to(bytes);
  const std::string data = bytes.str();
  try {
    atomic_write(log_.path("checkpoint.pt"), data.data(), data.size());
  } catch (const Error& e) {
    throw Error("writing the checkpoint '" + log_.path("checkpoint.pt") + "' failed: " + e.what() +
                " (the previous checkpoint is kept)");
  }
}

void Run::load_checkpoint_state(torch::serialize::InputArchive& ar) {
  if (student_) {  // first: a student whose teacher or unlabeled folder changed is refused before anything is restored
    c10::IValue teacher_md5, folder_md5;  // absent from checkpoints written before 2026-12-03 (third session): not checked
    if (ar.try_read("student_teacher_md5", teacher_md5) && ar.try_read("student_folder_md5", folder_md5))
      student_->check_resumed(teacher_md5.toStringRef(), folder_md5.toStringRef());
  }
  torch::serialize::InputArchive m;
  ar.read("model", m);
  model_->load(m);
  optim_->load(ar);
  if (filter_) {
    torch::serialize::InputArchive fa;
    ar.read("filter_proxy", fa);
    filter_->load(fa);
  }
  torch::Tensor pos, timing, acc, world;
  const int64_t saved_world = ar.try_read("world_size", world) ? world[0].item<int64_t>() : 1;
  if (saved_world != dp_.size())
    throw Error("this checkpoint was written by a run of " + std::to_string(saved_world) + " rank(s); resume it with " +
                std::to_string(saved_world) + " (now " + std::to_string(dp_.size()) +
                "): each rank's shard and step count depend on it");
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
  if (!(ar.try_read("step_losses", sl) && sl.numel() == data_.steps)) sl = torch::Tensor();
  policy_->load_sums(sums_, acc, sl);
  policy_->load(ar);
  if (student_) {
    torch::Tensor st;
    ar.read("student_loss", st);
    student_->set_state(st);
    torch::Tensor parts;  // absent from checkpoints written before 2026-12-03: the epoch's parts restart at 0
    if (ar.try_read("student_epoch_parts", parts) && parts.numel() == 2) student_->set_epoch_parts(parts);
    else student_->reset_epoch();
  }
  torch::Tensor rng;
  ar.read("rng_cpu", rng);
  set_generator_state(at::detail::getDefaultCPUGenerator(), rng);
  if (dev_.is_cuda() && ar.try_read("rng_device", rng)) set_generator_state(at::globalContext().defaultGenerator(dev_), rng);
  c10::IValue hist;
  ar.read("history", hist);
  history_.clear();
  for (auto& e : nlohmann::json::parse(hist.toStringRef())) history_.push_back(EpochMetrics::from_json(e.dump()));
  // metrics.jsonl and steps.csv rewritten to exactly the epochs the checkpoint holds.
  log_.rewind(history_, epoch_ * data_.steps);
}

}  // namespace kiln
