// Ran on an NVIDIA H200 (2026-12-04; graph_step.h says what).
#include "kiln/cuda/graph_step.h"

#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

namespace kiln::cuda {

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
