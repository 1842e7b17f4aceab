#include "kiln/nn/export.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/nn/quantize.h"

namespace kiln {

int64_t export_safetensors(const LoadedCheckpoint& ck, const ExportInfo& info, const std::string& path, bool int8) {
  torch::NoGradGuard ng;
  auto& model = *ck.model;
  // The conv and linear weights (the ones int8 applies to), by tensor identity.
  std::set<const void*> quantizable;
  for (auto& m : model.modules(/*include_self=*/false)) {
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(m.get())) quantizable.insert(c->weight.unsafeGetTensorImpl());
    else if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(m.get())) quantizable.insert(l->weight.unsafeGetTensorImpl());
  }
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    torch::Tensor data;  // contiguous, CPU, of the dtype
  };
  std::vector<Entry> entries;
  std::set<std::string> names;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    if (!names.insert(name).second) throw Error("export: tensor name '" + name + "' appears twice");
    if (int8 && quantizable.count(t.unsafeGetTensorImpl()) && t.requires_grad()) {
      auto q = quantize_per_channel(t);
      entries.push_back({name, "I8", t.sizes().vec(), q.q.contiguous().cpu()});
      entries.push_back({name + ".scale", "F32", {q.scale.size(0)}, q.scale.to(torch::kFloat32).contiguous().cpu()});
      names.insert(name + ".scale");
    } else if (t.is_floating_point()) {
      entries.push_back({name, "F32", t.sizes().vec(), t.detach().to(torch::kFloat32).contiguous().cpu()});
    } else {
      entries.push_back({name, "I64", t.sizes().vec(), t.detach().to(torch::kInt64).contiguous().cpu()});
    }
  };
  for (auto& p : model.named_parameters()) add(p.key(), p.value());
  for (auto& b : model.named_buffers()) add(b.key(), b.value());

  nlohmann::ordered_json header;
  int64_t offset = 0;
  for (auto& e : entries) {
    const int64_t n = static_cast<int64_t>(e.data.numel() * e.data.element_size());
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  nlohmann::ordered_json meta;
  meta["format"] = "kiln";
  meta["config"] = ck.cfg.to_toml();
  meta["mean"] = nlohmann::json(ck.mean).dump();
  meta["std"] = nlohmann::json(ck.std).dump();
  meta["input_shape"] = nlohmann::json(info.input_shape).dump();
  meta["classes"] = nlohmann::json(info.classes).dump();
  meta["int8"] = int8 ? "true" : "false";
  header["__metadata__"] = meta;
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  std::string out(8, '\0');
  uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((len >> (8 * i)) & 0xff);  // little-endian
  out += h;
  out.reserve(out.size() + static_cast<size_t>(offset));
  for (auto& e : entries) {
    const size_t n = static_cast<size_t>(e.data.numel() * e.data.element_size());
    out.append(static_cast<const char*>(e.data.data_ptr()), n);  // LibTorch's CPU tensors are little-endian here
  }
  atomic_write(path, out.data(), out.size());
  return static_cast<int64_t>(out.size());
}

}  // namespace kiln
