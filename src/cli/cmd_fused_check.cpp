// `kiln fused-check`: the fused GPU operator (train.fused_cuda) against LibTorch's operators on a
// device (kiln/nn/fused_check.h): CUDA's kernels on a GPU; on the CPU their host emulation, or their
// own source compiled for the host and run thread by thread (--on-cpu cuda-source).
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/git_commit.h"
#include "kiln/nn/fused_check.h"
#include "kiln/nn/fused_gpu.h"

namespace kiln::cli {
namespace {

struct FusedCheckFlags {
  std::string device = "auto", out, on_cpu = "emulation";
  int64_t batch = 0;
  bool time = false;
};

int run_fused_check(const FusedCheckFlags& f) {
  const auto device = parse_device(f.device);
  if (f.on_cpu != "emulation" && !device.is_cpu())
    throw Error("kiln fused-check: --on-cpu " + f.on_cpu + " is for --device cpu; on " + device.str() +
                " the check runs CUDA's kernels");
  if (f.on_cpu == "cuda-source") set_fused_gpu_on_cpu(FusedGpuOnCpu::kCudaSource);
  const std::string backend = fused_gpu_backend(device);
  if (backend == "none")
    throw Error("kiln fused-check: this build has no CUDA kernels for the fused operator (built without CUDA, or "
                "sanitized); nothing to check on " + device.str());
  const int64_t batch = f.batch > 0 ? f.batch : device.is_cuda() ? 1024 : 8;
  std::printf("kiln fused-check on %s (%s, the fused operator's %s), batch %lld%s\n", device_name(device).c_str(),
              device.str().c_str(), backend.c_str(), static_cast<long long>(batch),
              f.time && device.is_cuda() ? ", timed" : "");
  const bool timed = f.time && device.is_cuda();
  const double copy_gbps = timed ? device_copy_gbps(device) : -1;
  if (timed) std::printf("a device-to-device copy of 256 MiB: %.0f GB/s (read + written, median of 20)\n", copy_gbps);
  const auto checks = check_fused_gpu(device, batch, f.time);
  int failed = 0;
  nlohmann::json cases = nlohmann::json::array();
  for (const auto& c : checks) {
    failed += !c.ok;
    std::printf("%-4s %-40s worst: %-17s off by %.3g (LibTorch's operators %.3g, allowed %.3g)", c.ok ? "ok" : "FAIL",
                c.what.c_str(), c.worst.c_str(), c.error, c.plain_error, c.allowed);
    if (c.fused_ms >= 0)
      std::printf("; %.3f ms fused (%.0f GB/s by the count), %.3f ms LibTorch's", c.fused_ms,
                  c.fused_bytes / (c.fused_ms * 1e-3) / 1e9, c.plain_ms);
    std::printf("\n");
    cases.push_back({{"case", c.what}, {"ok", c.ok}, {"worst", c.worst}, {"error", c.error},
                     {"plain_error", c.plain_error}, {"allowed", c.allowed}, {"fused_ms", c.fused_ms},
                     {"plain_ms", c.plain_ms}, {"fused_bytes", c.fused_bytes},
                     {"fused_gbps", c.fused_ms > 0 ? c.fused_bytes / (c.fused_ms * 1e-3) / 1e9 : -1.0}});
  }
  std::printf("%s: %d of %zu cases within their bounds\n", failed ? "FAILED" : "passed",
              static_cast<int>(checks.size()) - failed, checks.size());
  if (!f.out.empty()) {
    nlohmann::json j = {{"device", device.str()}, {"device_name", device_name(device)}, {"backend", backend},
                        {"batch", batch}, {"commit", KILN_GIT_COMMIT}, {"passed", failed == 0},
                        {"copy_gbps", copy_gbps},
                        {"bytes", "fused_bytes: what the fused operator's kernels load and store in global memory in "
                                  "what fused_ms times, counted from their code (kiln/nn/fused_launch.h, "
                                  "fused::traffic), not measured; fused_gbps = fused_bytes / fused_ms; copy_gbps: a "
                                  "measured device-to-device copy of 256 MiB, read + written"},
                        {"timing", timed ?
                                   "forward + backward (evaluation: forward), median of 20 after 3 warm-ups, the "
                                   "device synchronised around each" : "not timed"},
                        {"cases", cases}};
    atomic_write(f.out, j.dump(1) + "\n");
    std::printf("wrote %s\n", f.out.c_str());
  }
  return failed ? 1 : 0;
}

}  // namespace

Command add_fused_check(CLI::App& app, const std::string&) {
  auto f = std::make_shared<FusedCheckFlags>();
  auto* sub = app.add_subcommand(
      "fused-check",
      "Check the fused GPU operator (train.fused_cuda) against LibTorch's operators: CUDA's kernels on a GPU, their "
      "host emulation (or their own source run on the host) on the CPU; exit 1 when a case is off its bound");
  sub->add_option("--device", f->device, "cpu, cuda, cuda:N or auto (CUDA when available)");
  sub->add_option("--batch", f->batch, "the airbench blocks' batch (default: 1024 on CUDA, 8 on the CPU)");
  sub->add_flag("--time", f->time, "time each case, fused and LibTorch's (CUDA)");
  sub->add_option("--on-cpu", f->on_cpu,
                  "with --device cpu, what runs the kernels' launches: emulation (each work item in turn, the "
                  "kernels' bodies) or cuda-source (the CUDA source itself, compiled for the host, thread by thread "
                  "with its grids, shared memory and barriers)")
      ->check(CLI::IsMember({"emulation", "cuda-source"}));
  sub->add_option("--out", f->out, "write the cases as JSON here");
  return {sub, [f] { return run_fused_check(*f); }};
}

}  // namespace kiln::cli
