#include "kiln/deploy/export.h"

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/core/zip_check.h"  // kiln::crc32
#include "kiln/deploy/quantize.h"
#include "kiln/nn/layers.h"

namespace kiln {

int64_t export_safetensors(const LoadedCheckpoint& ck, const ExportInfo& info, const std::string& path, bool int8) {
  torch::NoGradGuard ng;
  auto& model = *ck.model;
  const auto quantizable = quantizable_set(model);
  struct Entry {
    std::string name, dtype;
    std::vector<int64_t> shape;
    torch::Tensor data;  // contiguous, CPU, of the dtype
  };
  std::vector<Entry> entries;
  std::set<std::string> names;
  auto add = [&](const std::string& name, const torch::Tensor& t) {
    if (!names.insert(name).second) throw Error("export: tensor name '" + name + "' appears twice");
    if (int8 && quantizable.count(t.unsafeGetTensorImpl())) {
      auto q = quantize_per_channel(t, info.grid);
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
  if (int8) meta["int8_grid"] = info.grid.name();
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

namespace {
void put_u32(std::string& o, uint64_t v) {
  if (v > 0xffffffffULL) throw Error("export: a size does not fit the .kiln format's 32 bits");
  for (int i = 0; i < 4; ++i) o += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_str(std::string& o, const std::string& s) {
  put_u32(o, s.size());
  o += s;
}
template <class T>
std::string joined(const std::vector<T>& v, const std::string& sep) {
  std::ostringstream ss;
  ss.precision(9);
  for (size_t i = 0; i < v.size(); ++i) ss << (i ? sep : "") << v[i];
  return ss.str();
}
}  // namespace

ExportTta export_tta(const LoadedCheckpoint& ck, const ExportInfo& info) {
  const auto loop = RunSettings::from_config(ck.cfg).loop;
  ExportTta t{info.tta.empty() ? loop.tta : info.tta, loop.tta_translate_weight};
  tta_view_count(t.mode);  // refuses an unknown mode
  return t;
}

ExportImageFit export_image_fit(const LoadedCheckpoint& ck, const ExportInfo& info) {
  const auto data = RunSettings::from_config(ck.cfg).data;
  return {info.stored_shape.empty() ? info.input_shape : info.stored_shape, data.folder_options.resize,
          data.folder_options.background, data.view.fraction};
}

int64_t export_kiln(const LoadedCheckpoint& ck, const ExportInfo& info, const std::string& path, bool int8) {
  torch::NoGradGuard ng;
  auto& model = *ck.model;
  const auto quantizable = quantizable_set(model);
  const auto m = ModelOptions::from_config(ck.cfg);
  const auto tta = export_tta(ck, info);
  const auto fit = export_image_fit(ck, info);
  std::vector<std::pair<std::string, std::string>> meta = {
      // the file's CRC-32, first so that a reader finds it before any other length (since
      // 2026-12-05): written as 8 zeros, then set to the CRC-32 of the whole file as written
      {"crc32", "00000000"},
      {"format_version", "1"},
      {"model", m.name},
      {"activation", activation_name(m.block.activation)},
      {"celu_alpha", joined(std::vector<double>{m.block.celu_alpha}, "")},
      {"widths", joined(m.widths, ",")},
      {"depth", std::to_string(m.depth)},
      {"bn_eps", joined(std::vector<double>{m.block.bn.eps}, "")},
      {"input", joined(info.input_shape, ",")},
      {"mean", joined(ck.mean, ",")},
      {"std", joined(ck.std, ",")},
      {"classes", joined(info.classes, "\n")},
      {"int8", int8 ? "true" : "false"},
      {"config", ck.cfg.to_toml()},
      // resnet9 and airbench (since 2026-12-03): the switches that change their evaluation
      {"output_scale", joined(std::vector<double>{m.output_scale}, "")},
      {"pool_before_bn", m.block.pool_before_bn ? "true" : "false"},
      {"whiten", m.whiten},
      {"head_norm", m.head_norm ? "true" : "false"},
      {"convs_per_group", std::to_string(m.convs_per_group)},
      // the run's test-time augmentation, which the runtime applies as kiln's evaluation does (since 2026-12-04)
      {"tta", tta.mode},
      {"tta_translate_weight", joined(std::vector<double>{tta.translate_weight}, "")},
      // how an image file becomes the input (since 2026-12-04): kiln/pixels/pixels.h
      {"stored", joined(fit.stored, ",")},
      {"resize", fit.resize},
      {"background", std::to_string(fit.background)},
      {"eval_crop", joined(std::vector<double>{fit.eval_crop}, "")}};
  if (int8) meta.emplace_back("int8_grid", info.grid.name());
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& p : model.named_parameters()) tensors.emplace_back(p.key(), p.value());
  for (auto& b : model.named_buffers())
    if (b.value().is_floating_point()) tensors.emplace_back(b.key(), b.value());
  std::string out = "KILNMDL1";
  put_u32(out, meta.size());
  put_u32(out, tensors.size());
  size_t crc_field = 0;  // where the crc32 entry's 8 digits lie
  for (auto& [k, v] : meta) {
    put_str(out, k);
    if (k == "crc32") crc_field = out.size() + 4;  // after the value's length
    put_str(out, v);
  }
  for (auto& [name, t] : tensors) {
    put_str(out, name);
    const bool q = int8 && quantizable.count(t.unsafeGetTensorImpl());
    const bool packed = q && info.grid.bits <= 4;  // values in [-7, 7]: two to a byte (dtype 2)
    out += static_cast<char>(packed ? 2 : q ? 1 : 0);
    if (t.dim() > 8) throw Error("export: tensor '" + name + "' has more than 8 dimensions");
    out += static_cast<char>(t.dim());
    for (auto d : t.sizes()) put_u32(out, static_cast<uint64_t>(d));
    if (q) {
      auto qt = quantize_per_channel(t, info.grid);
      auto sc = qt.scale.to(torch::kFloat32).contiguous().cpu();
      out.append(static_cast<const char*>(sc.data_ptr()), static_cast<size_t>(sc.numel()) * 4);
      auto qq = qt.q.contiguous().cpu();
      const auto* v = qq.data_ptr<int8_t>();
      const size_t n = static_cast<size_t>(qq.numel());
      if (!packed) {
        out.append(reinterpret_cast<const char*>(v), n);
      } else {  // element 2k in the low nibble of byte k, 2k + 1 in the high one (0 past the end)
        for (size_t k = 0; k < n; k += 2) {
          const unsigned lo = static_cast<unsigned>(v[k]) & 0xF, hi = k + 1 < n ? static_cast<unsigned>(v[k + 1]) & 0xF : 0;
          out += static_cast<char>(lo | hi << 4);
        }
      }
    } else {
      auto f = t.detach().to(torch::kFloat32).contiguous().cpu();
      out.append(static_cast<const char*>(f.data_ptr()), static_cast<size_t>(f.numel()) * 4);  // little-endian host
    }
  }
  char crc_hex[9];
  std::snprintf(crc_hex, sizeof crc_hex, "%08x", crc32(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
  std::memcpy(&out[crc_field], crc_hex, 8);
  atomic_write(path, out.data(), out.size());
  return static_cast<int64_t>(out.size());
}

}  // namespace kiln
