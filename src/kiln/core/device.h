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

// The measured matrix-product peak of a device in TFLOP/s, in the run's own precision (`dtype`:
// a bf16 run on a CPU with AMX is measured against bf16's peak, not fp32's): square products of
// side n (8192 on CUDA, 2048 on the CPU) timed between device synchronisations, best of several
// repetitions after a warm-up. The yardstick for `kiln bench`'s "fraction of peak".
double measure_matmul_tflops(const torch::Device& d, torch::ScalarType dtype);
// The measured convolution peak in TFLOP/s, in the run's precision and memory layout: the
// forward of a 256 -> 256 3x3 convolution (padding 1) on a 500 x 256 x 16 x 16 batch, the shape
// of a wide network's middle layers (2 x 500 x 256 x 256 x 9 x 16 x 16 = 151 GFLOP a call), timed
// between device synchronisations, best of three after a warm-up. The second yardstick of
// `kiln bench`: CNN training is mostly convolutions, which run below the matrix-product rate.
double measure_conv_tflops(const torch::Device& d, torch::ScalarType dtype, bool channels_last);

}  // namespace kiln
