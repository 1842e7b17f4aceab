#include "kiln/core/cpu_kernels.h"

#include <ATen/Context.h>
#include <ATen/native/verbose_wrapper.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>

#include "kiln/core/device.h"
#include "kiln/core/precision.h"

namespace kiln {
namespace {

// Runs fn with file descriptor 1 sent to a temporary file and returns what was written there
// (the libraries' verbose modes print with printf, not through std::cout).
std::string capture_stdout(const std::function<void()>& fn) {
  std::cout.flush();
  std::fflush(stdout);
  char path[] = "/tmp/kiln-kernels-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return "";
  unlink(path);
  const int saved = dup(1);
  dup2(fd, 1);
  try {
    fn();
  } catch (...) {
  }
  std::cout.flush();
  std::fflush(stdout);
  dup2(saved, 1);
  close(saved);
  std::string out;
  lseek(fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

// The text after `key` up to the end of its line (or up to `stop`), "" when absent.
std::string field(const std::string& text, const std::string& key, const std::string& stop = "\n") {
  const auto at = text.find(key);
  if (at == std::string::npos) return "";
  const auto from = at + key.size();
  const auto end = text.find(stop, from);
  return text.substr(from, end == std::string::npos ? std::string::npos : end - from);
}

std::string aten_capability() {
  std::string c = at::get_cpu_capability();
  return c.empty() ? "unknown" : c;
}

CpuKernels query() {
  CpuKernels k;
  k.cpu_model = device_name(torch::Device(torch::kCPU));
  k.aten = aten_capability();
  torch::NoGradGuard ng;
  // An fp32 convolution goes through oneDNN on x86 (bf16 would not under an AVX2 limit).
  const auto x = torch::randn({2, 8, 8, 8}), w = torch::randn({8, 8, 3, 3});
  const std::string dnnl = capture_stdout([&] {
    torch::verbose::_mkldnn_set_verbose(1);
    (void)torch::conv2d(x, w);
    torch::verbose::_mkldnn_set_verbose(0);
  });
  k.onednn = field(dnnl, "info,cpu,isa:");
  // An fp32 matrix product is MKL's sgemm in the PyPI wheel's LibTorch.
  const auto a = torch::randn({32, 32});
  const std::string mkl = capture_stdout([&] {
    torch::verbose::_mkl_set_verbose(1);
    (void)a.mm(a);
    torch::verbose::_mkl_set_verbose(0);
  });
  k.mkl = field(mkl, "architecture ", ", Lnx");
  if (k.onednn.empty()) k.onednn = "unknown";
  if (k.mkl.empty()) k.mkl = "unknown";
  k.bf16 = native_bf16();
  return k;
}

}  // namespace

const CpuKernels& cpu_kernels() {
  static const CpuKernels k = query();
  return k;
}

std::string describe(const CpuKernels& k) {
  std::ostringstream s;
  s << "cpu: " << k.cpu_model << "\n"
    << "aten: " << k.aten << "\n"
    << "onednn: " << k.onednn << "\n"
    << "mkl: " << k.mkl << "\n"
    << "bf16: " << (k.bf16.empty() ? "emulated (neither AMX nor AVX512-BF16)" : k.bf16) << "\n";
  for (auto var : {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"})
    if (const char* v = std::getenv(var)) s << "limited by: " << var << "=" << v << "\n";
  return s.str();
}

}  // namespace kiln
