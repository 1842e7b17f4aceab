// NOT YET RUN on a GPU: compiled against LibTorch's CUDA headers on a CPU-only machine.
#include "kiln/cuda/device_info.h"

#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>

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

struct GraphStep::Impl {
  at::cuda::CUDAGraph graph;
  bool captured = false;
};

GraphStep::GraphStep() : impl_(std::make_unique<Impl>()) {}
GraphStep::~GraphStep() = default;

void GraphStep::capture(const std::function<void()>& step, int warmup) {
  auto side = c10::cuda::getStreamFromPool();
  at::cuda::CUDAEvent ready;
  ready.record(c10::cuda::getCurrentCUDAStream());
  ready.block(side);
  {
    c10::cuda::CUDAStreamGuard guard(side);
    for (int i = 0; i < warmup; ++i) step();
    impl_->graph.capture_begin();
    step();
    impl_->graph.capture_end();
  }
  at::cuda::CUDAEvent done;
  done.record(side);
  done.block(c10::cuda::getCurrentCUDAStream());
  impl_->captured = true;
}

void GraphStep::replay() { impl_->graph.replay(); }
bool GraphStep::captured() const { return impl_->captured; }

}  // namespace kiln::cuda
