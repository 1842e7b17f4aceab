// Reading a run's checkpoint from outside the run: its configuration, the trained model, and
// the model evaluated as its run evaluated it.
#include <fstream>
#include <nlohmann/json.hpp>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/core/zip_check.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/fused_gpu.h"
#include "kiln/nn/model.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

namespace kiln {

torch::serialize::InputArchive open_checkpoint(const std::string& path, std::optional<torch::Device> device) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!file_exists(path) || !in) throw Error("no checkpoint at '" + path + "'");
  const auto size = static_cast<uint64_t>(in.tellg());
  check_zip_records(in, size, "'" + path + "'");  // LibTorch's reader does not check them
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path, device);
  } catch (const std::exception& e) {  // c10::Error from the zip reader; torch::jit::ErrorReport from its code/ records
    throw Error("'" + path + "' is not a readable kiln checkpoint (truncated or corrupt?)");
  }
  return ar;
}

Config checkpoint_config(torch::serialize::InputArchive& ar, const std::string& path) {
  c10::IValue v;
  if (!ar.try_read("config", v) || !v.isString()) throw Error("'" + path + "' is not a kiln checkpoint (no config inside)");
  return Config::from_toml_string(v.toStringRef(), path + " (stored config)");
}

Config checkpoint_config(const std::string& path) {
  auto ar = open_checkpoint(path);
  return checkpoint_config(ar, path);
}

void reading_checkpoint(const std::string& path, const std::function<void()>& read) {
  auto refused = [&](const std::string& why) {
    return Error("'" + path + "' does not hold what kiln expects of a checkpoint (" + why +
                 "): a file damaged before it was written, or not written by kiln");
  };
  try {
    read();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const c10::Error& e) {
    throw refused(e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw refused(e.what());
  }
}

namespace {
// "classes" and "stored_shape", when the checkpoint holds them (kiln/train/run_checkpoint.cpp),
// checked against the model's shape: a mismatch is a damaged or hand-made file, refused by key.
void read_model_io(torch::serialize::InputArchive& ar, const std::string& path, int64_t in_ch, int64_t classes,
                   LoadedCheckpoint& lc) {
  c10::IValue names;
  if (ar.try_read("classes", names)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(names.toStringRef());
      lc.class_names = j.get<std::vector<std::string>>();
    } catch (const std::exception&) {
      throw Error("'" + path + "': its 'classes' is not a JSON array of names");
    }
    if (static_cast<int64_t>(lc.class_names.size()) != classes)
      throw Error("'" + path + "': its 'classes' names " + std::to_string(lc.class_names.size()) + " classes, its model has " +
                  std::to_string(classes) + " outputs");
  }
  torch::Tensor stored;
  if (ar.try_read("stored_shape", stored)) {
    stored = stored.cpu();
    if (stored.dim() != 1 || stored.numel() != 3 || stored.scalar_type() != torch::kInt64 || stored[0].item<int64_t>() != in_ch ||
        stored.min().item<int64_t>() < 1)
      throw Error("'" + path + "': its 'stored_shape' is not {channels, height, width} of the model's " + std::to_string(in_ch) +
                  "-channel images");
    lc.stored_shape = {stored[0].item<int64_t>(), stored[1].item<int64_t>(), stored[2].item<int64_t>()};
  }
}
}  // namespace

LoadedCheckpoint load_checkpoint(const std::string& path, const torch::Device& device) {
  LoadedCheckpoint lc;
  auto ar = open_checkpoint(path, device);
  lc.cfg = checkpoint_config(ar, path);
  reading_checkpoint(path, [&] {
    torch::serialize::InputArchive m;
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
    read_model_io(ar, path, in_ch, classes, lc);
    lc.model = make_model(lc.cfg, in_ch, classes);
    lc.model->to(device);
    set_precision(*lc.model, RunSettings::from_config(lc.cfg).step.resolve(device).weights);
    torch::serialize::InputArchive e;
    lc.model->load(ar.try_read("ema", e) ? e : m);  // the averaged weights, when the run kept them
  });
  return lc;
}

ModelIO model_io_of(const LoadedCheckpoint& ck, const std::function<TrainTest()>& dataset) {
  if (!ck.class_names.empty() && ck.stored_shape.size() == 3)
    return {ck.class_names, ck.stored_shape[0], ck.stored_shape[1], ck.stored_shape[2]};
  const auto tt = dataset();
  return {tt.train.classes, tt.train.images.size(1), tt.train.images.size(2), tt.train.images.size(3)};
}

RunSettings as_its_run_evaluated(const LoadedCheckpoint& ck) {
  auto s = RunSettings::from_config(ck.cfg);
  if (s.step.channels_last) to_channels_last(*ck.model);
  set_fused_cpu(*ck.model, s.step.fused_cpu);
  set_fused_cuda(*ck.model, s.step.fused_cuda);
  return s;
}

EvalResult evaluate_checkpoint(const LoadedCheckpoint& ck, const TrainTest& data, const torch::Device& device,
                               std::optional<torch::ScalarType> compute) {
  const auto s = as_its_run_evaluated(ck);
  DeviceLoader loader(data.test.head(s.data.test_subset), device, compute.value_or(s.step.resolve(device).compute), ck.mean,
                      ck.std, s.step.channels_last, s.data.view);
  return evaluate(*ck.model, loader, s.data.test_batch_size, s.loop.tta, s.loop.tta_translate_weight);
}

}  // namespace kiln
