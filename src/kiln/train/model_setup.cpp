#include "kiln/train/model_setup.h"

#include <chrono>
#include <map>

#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/nn/fused_cpu.h"
#include "kiln/nn/fused_gpu.h"
#include "kiln/train/run_settings.h"
#include "kiln/train/trainer.h"

namespace kiln {

void sync_device(const torch::Device& device) { torch::zeros({1}, torch::TensorOptions().device(device)).cpu(); }

ClassifierPtr ModelSetup::build(const Config& c, Classifier* whiten_from) {
  const auto ms = ModelOptions::from_config(c);
  auto m = make_model(ms, data_.in_channels, data_.classes);
  m->to(dev_);
  auto n = std::min<int64_t>(data_.train->size(), ms.whiten_samples);
  if (ms.whiten_fitted() && whiten_from) {
    torch::NoGradGuard ng;
    auto src = whiten_from->named_buffers();
    int64_t copied = 0;
    for (auto& b : m->named_buffers())
      if (b.key().rfind("whiten.", 0) == 0 && src.contains(b.key())) {
        b.value().copy_(src[b.key()]);
        ++copied;
      }
    if (copied == 0) throw Error("internal: no whitening tensors to copy to the proxy network");
  } else if (ms.whiten_fitted()) {
    if (dev_.is_cuda()) sync_device(dev_);
    auto t = std::chrono::steady_clock::now();
    m->fit_to_data(data_.train->data().slice(0, 0, n).to(torch::kFloat32));
    if (dev_.is_cuda()) sync_device(dev_);
    whiten_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  set_precision(*m, dtype_);
  if (channels_last_) to_channels_last(*m);
  set_fused_cpu(*m, fused_cpu_);
  set_fused_cuda(*m, fused_cuda_);
  return m;
}

std::string ModelSetup::init_from(Classifier& model, const std::string& ckpt) const {
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
  for (auto& p : model.named_parameters()) take(p.key(), p.value());
  for (auto& b : model.named_buffers()) take(b.key(), b.value());
  if (copied == 0) throw Error("train.init = '" + ckpt + "': no tensor of that checkpoint's model matches this model by name and shape");
  return "initialised " + std::to_string(copied) + " of " + std::to_string(total) + " tensors from " + ckpt +
         (skipped.empty() ? std::string() : "; kept the initialisation of: " + skipped);
}

}  // namespace kiln
