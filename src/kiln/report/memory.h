// Leak watch: live tensor allocations and bytes on a device. On the CPU kiln installs a
// counting wrapper around LibTorch's CPU allocator (every CPU tensor storage is counted while
// it lives); on CUDA it reads the caching allocator's own statistics (current allocations and
// allocated bytes; CUDA path not yet run). The trainer writes both into metrics.jsonl after
// every epoch, where they must stay flat.
#pragma once
#include <torch/torch.h>

namespace kiln {

struct MemoryStats {
  int64_t live_allocations = 0;
  int64_t live_bytes = 0;
};

// Installs the CPU counting allocator (idempotent; later allocations are counted).
void install_cpu_allocation_counter();
MemoryStats memory_stats(const torch::Device& device);

}  // namespace kiln
