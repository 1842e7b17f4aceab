// Device selection and description, device-generic. CUDA specifics live in kiln/cuda/.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>
#include <string>

namespace kiln {

// "cpu", "cuda", "cuda:1", or "auto" (CUDA when available). Errors clearly when CUDA is
// asked for and absent.
torch::Device parse_device(const std::string& s);
// The value of /proc/cpuinfo's first line that starts with `key` ("model name", "flags"), or
// "" when there is none; `cpuinfo`: the file's text (empty: read /proc/cpuinfo).
std::string cpuinfo_field(const std::string& key, const std::string& cpuinfo = "");
// Human-readable device name: the CPU model from /proc/cpuinfo, or the GPU's name.
std::string device_name(const torch::Device& d);
struct Precision;
// Versions and environment for the run's provenance.json (with the run's precision when given).
std::string provenance_json(const torch::Device& d, const std::string& command_line, const Precision* precision = nullptr);
// --deterministic: deterministic algorithms everywhere LibTorch has them, cuDNN autotuning
// off, cuBLAS's deterministic workspace. On the CPU kiln's runs are bitwise reproducible
// for a seed and thread count with or without it (tested); see docs/determinism.md for CUDA.
void set_deterministic(bool on);

}  // namespace kiln
