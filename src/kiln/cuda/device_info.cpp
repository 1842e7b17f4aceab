// Ran on an NVIDIA H200 (2026-12-04; bench/results/gpu-window-h200-2026-12-04-campaign.txt).
#include "kiln/cuda/device_info.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

namespace kiln::cuda {

std::string device_name(int index) {
  auto* p = at::cuda::getDeviceProperties(index);
  return p ? std::string(p->name) : "cuda:" + std::to_string(index);
}

std::pair<int64_t, int64_t> allocator_stats(int index) {
  auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
  const auto all = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  return {s.allocation[all].current, s.allocated_bytes[all].current};
}

int set_sync_debug_mode(int mode) {
  auto& w = c10::cuda::warning_state();
  const int old = static_cast<int>(w.get_sync_debug_mode());
  w.set_sync_debug_mode(static_cast<c10::cuda::SyncDebugMode>(mode));
  return old;
}

}  // namespace kiln::cuda
