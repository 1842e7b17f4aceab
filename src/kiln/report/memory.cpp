#include "kiln/report/memory.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>

#include <atomic>
#include <mutex>
#include <unordered_map>

#ifdef KILN_HAS_CUDA
#include "kiln/cuda/device_info.h"
#endif

namespace kiln {

namespace {
// LibTorch's CPU allocation (c10::alloc_cpu / free_cpu, as its default allocator does) with a
// count of what is alive. The data pointer is its own context (some LibTorch paths call
// raw_allocate, which requires that), so sizes are kept in a side table.
class CountingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) override {
    void* p = c10::alloc_cpu(n);
    if (p) {
      std::lock_guard<std::mutex> lock(mu_);
      sizes_[p] = n;
      ++live_;
      bytes_ += static_cast<int64_t>(n);
    }
    return {p, p, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
  MemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {live_, bytes_};
  }
  static void release(void* p);

 private:
  std::mutex mu_;
  std::unordered_map<void*, size_t> sizes_;
  int64_t live_ = 0, bytes_ = 0;
};

CountingCpuAllocator* g_counter = nullptr;
}  // namespace

void CountingCpuAllocator::release(void* p) {
  if (!p) return;
  {
    std::lock_guard<std::mutex> lock(g_counter->mu_);
    auto it = g_counter->sizes_.find(p);
    if (it != g_counter->sizes_.end()) {
      --g_counter->live_;
      g_counter->bytes_ -= static_cast<int64_t>(it->second);
      g_counter->sizes_.erase(it);
    }
  }
  c10::free_cpu(p);
}

void install_cpu_allocation_counter() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_counter = new CountingCpuAllocator();  // lives for the process
    c10::SetCPUAllocator(g_counter, /*priority=*/100);
  });
}

MemoryStats memory_stats(const torch::Device& d) {
  if (d.is_cuda()) {
#ifdef KILN_HAS_CUDA
    auto s = cuda::allocator_stats(d.has_index() ? d.index() : 0);
    return {s.first, s.second};
#else
    return {};
#endif
  }
  return g_counter ? g_counter->stats() : MemoryStats{};
}

}  // namespace kiln
