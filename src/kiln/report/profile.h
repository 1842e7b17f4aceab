// A profile of a stretch of work under LibTorch's own (Kineto) profiler, with no outside tool:
// the operators by their self time on the host, and on CUDA the device's kernels (and copies)
// by their time on the device: the "top kernels" table of `kiln bench --profile`. (The CUDA
// half ran on an H200 on 2026-12-04: bench/results/gpu-window-h200-2026-12-04-campaign.txt.)
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace kiln {

struct ProfileRow {
  std::string kind;   // "device" (a kernel, memcpy or memset on the GPU) or "host" (an operator, self time)
  std::string name;
  int64_t calls = 0;
  double ms = 0;      // summed
  double share = 0;   // of its kind's total
};

struct ProfileTable {
  std::vector<ProfileRow> rows;  // device rows first, each kind by time, descending
  double host_ms = 0, device_ms = 0;
  // CSV: kind,name,calls,ms,share (the first `top` of each kind; 0 = all).
  std::string csv(size_t top = 0) const;
};

// Profiles from construction to stop(). Only one may be active at a time.
class Profiler {
 public:
  explicit Profiler(bool cuda);
  ~Profiler();
  ProfileTable stop();

 private:
  bool active_ = false;
};

}  // namespace kiln
