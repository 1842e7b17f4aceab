// CUDA-only helpers (compiled only when LibTorch has CUDA; see CMakeLists.txt).
// NOT YET RUN on a GPU: written and compiled on a CPU-only machine.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <cstdint>

namespace kiln::cuda {

std::string device_name(int index);
// The caching allocator's current allocation count and allocated bytes on a device.
std::pair<int64_t, int64_t> allocator_stats(int index);

// Captures one training step (a callable that only enqueues device work) in a CUDA graph
// after `warmup` eager runs on a side stream, then replays it. The step must keep every
// tensor it reads at fixed addresses (e.g. the learning rate in a device tensor).
class GraphStep {
 public:
  GraphStep();
  ~GraphStep();
  void capture(const std::function<void()>& step, int warmup = 3);
  void replay();
  bool captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cuda
