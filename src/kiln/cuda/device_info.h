// CUDA-only helpers (compiled only when LibTorch has CUDA; see CMakeLists.txt).
// Ran on an NVIDIA H200 (2026-12-04; bench/results/gpu-window-h200-2026-12-04-campaign.txt).
#pragma once
#include <string>
#include <utility>
#include <cstdint>

namespace kiln::cuda {

std::string device_name(int index);
// The caching allocator's current allocation count and allocated bytes on a device.
std::pair<int64_t, int64_t> allocator_stats(int index);

// PyTorch's CUDA sync debug mode (0 off, 1 warn, 2 error): with 2, any call that makes the host
// wait for the device (item(), a blocking copy, nonzero, a stream synchronize) throws. Returns
// the previous mode. train.sync_check sets 2 around the training steps.
int set_sync_debug_mode(int mode);

}  // namespace kiln::cuda
