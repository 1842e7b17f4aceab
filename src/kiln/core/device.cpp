#include "kiln/core/device.h"

#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "kiln/build_info.h"
#include "kiln/git_commit.h"
#include "kiln/core/cpu_kernels.h"
#include "kiln/core/host_memory.h"
#include "kiln/core/error.h"
#include "kiln/core/precision.h"
#ifdef KILN_HAS_CUDA
#include "kiln/cuda/device_info.h"
#endif

namespace kiln {

torch::Device parse_device(const std::string& s) {
  if (s == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  torch::Device d(torch::kCPU);
  try {
    d = torch::Device(s);
  } catch (const std::exception&) {
    throw Error("--device '" + s + "' is not a device (cpu, cuda, cuda:N, auto)");
  }
  if (d.is_cuda() && !torch::cuda::is_available())
    throw Error("--device " + s + ": no CUDA device is available here (LibTorch built with CUDA " +
                std::string(*KILN_TORCH_CUDA ? KILN_TORCH_CUDA : "none") + ")");
  return d;
}

std::string cpuinfo_field(const std::string& key, const std::string& cpuinfo) {
  std::string text = cpuinfo;
  if (text.empty()) {
    std::ifstream f("/proc/cpuinfo");
    std::stringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) != 0) continue;
    const auto colon = line.find(':');
    if (colon == std::string::npos) return "";
    const auto start = line.find_first_not_of(" \t", colon + 1);
    return start == std::string::npos ? "" : line.substr(start);
  }
  return "";
}

std::string device_name(const torch::Device& d) {
  if (d.is_cuda()) {
#ifdef KILN_HAS_CUDA
    return cuda::device_name(d.has_index() ? d.index() : 0);
#else
    return "CUDA device (kiln built without its CUDA sources)";
#endif
  }
  const auto model = cpuinfo_field("model name");
  return model.empty() ? "cpu" : model;
}

void set_deterministic(bool on) {
  if (on) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);  // before any cuBLAS handle exists
  // warn_only: a few CUDA backward kernels (max-pool's among them) have no deterministic
  // version; LibTorch then warns instead of stopping the run.
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/true);
  at::globalContext().setDeterministicCuDNN(on);
  at::globalContext().setBenchmarkCuDNN(!on);
}

std::string provenance_json(const torch::Device& d, const std::string& command_line, const Precision* precision) {
  nlohmann::ordered_json j;
  j["kiln_version"] = KILN_VERSION;
  j["kiln_commit"] = KILN_GIT_COMMIT;
  j["libtorch_version"] = TORCH_VERSION;
  j["libtorch_cuda"] = KILN_TORCH_CUDA;
  j["device"] = d.str();
  j["device_name"] = device_name(d);
  j["cuda_available"] = torch::cuda::is_available();
  if (at::detail::getCUDAHooks().hasCUDA()) {
    j["cuda_runtime"] = at::detail::getCUDAHooks().versionCUDART();
    j["cudnn_version"] = at::detail::getCUDAHooks().versionCuDNN();
  }
  if (!d.is_cuda()) {
    const auto& k = cpu_kernels();
    j["cpu_kernels"] = {{"aten", k.aten}, {"onednn", k.onednn}, {"mkl", k.mkl}};
    j["cpu_native_bf16"] = k.bf16;  // "AMX" | "AVX512-BF16" | ""
  }
  if (precision)
    j["precision"] = {{"compute", c10::toString(precision->compute)},
                      {"weights", c10::toString(precision->weights)},
                      {"master_weights", precision->master_weights()},
                      {"chosen", precision->describe()}};
  j["threads"] = at::get_num_threads();
  j["host_memory"] = host_memory_description();
  j["deterministic"] = at::globalContext().deterministicAlgorithms();
  j["command_line"] = command_line;
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  j["host"] = host;
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  j["started_utc"] = buf;
  return j.dump(2);
}

}  // namespace kiln
