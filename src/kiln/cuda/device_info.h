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

// Captures one training step (a callable that only enqueues device work) in a CUDA graph on a
// side stream, after `warmup` eager runs there (0: the caller has already run the step eagerly,
// as the trainer does for its first three steps). Capturing records the step without running
// it: call replay() to run it, then once per step. The step must keep every tensor it reads
// at fixed addresses (the static step of kiln/train/static_step.h does).
class GraphStep {
 public:
  GraphStep();
  ~GraphStep();
  void capture(const std::function<void()>& step, int warmup = 0);
  void replay();
  bool captured() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cuda
