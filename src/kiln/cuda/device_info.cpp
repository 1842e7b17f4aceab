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
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool();
  bool captured = false;
  int warm_ups = 0;
  // Runs fn on the side stream: it waits for the current stream's work, and the current stream
  // waits for its work (events only: the host does not wait).
  void on_side(const std::function<void()>& fn) {
    auto current = c10::cuda::getCurrentCUDAStream();
    at::cuda::CUDAEvent ready;
    ready.record(current);
    ready.block(side);
    {
      c10::cuda::CUDAStreamGuard guard(side);
      fn();
    }
    at::cuda::CUDAEvent done;
    done.record(side);
    done.block(current);
  }
};

GraphStep::GraphStep() : impl_(std::make_unique<Impl>()) {}
GraphStep::~GraphStep() = default;

void GraphStep::warm_up(const std::function<void()>& step) {
  impl_->on_side(step);
  ++impl_->warm_ups;
}

void GraphStep::capture(const std::function<void()>& step) {
  impl_->on_side([&] {
    impl_->graph.capture_begin();
    step();
    impl_->graph.capture_end();
  });
  impl_->captured = true;
}

int GraphStep::warm_ups() const { return impl_->warm_ups; }

void GraphStep::replay() { impl_->graph.replay(); }
bool GraphStep::captured() const { return impl_->captured; }

}  // namespace kiln::cuda
