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

// PyTorch's CUDA sync debug mode (0 off, 1 warn, 2 error): with 2, any call that makes the host
// wait for the device (item(), a blocking copy, nonzero, a stream synchronize) throws. Returns
// the previous mode. train.sync_check sets 2 around the training steps.
int set_sync_debug_mode(int mode);

// Captures one training step (a callable that only enqueues device work) in a CUDA graph.
// PyTorch's CUDA-graph notes: run the step eagerly a few times on a side stream before
// capturing it on that stream (lazy initialisation, cuBLAS workspaces and autograd's stream
// bookkeeping then happen outside the capture). warm_up() runs one real step on the object's
// side stream, fenced by events against the current stream on both sides; the trainer's first
// three steps of a capture are such warm-ups. capture() records the step on the same side
// stream without running it: call replay() to run it, then once per step. The step must keep
// every tensor it reads at fixed addresses (the static step of kiln/train/static_step.h does).
// NOT YET RUN on a GPU.
class GraphStep {
 public:
  GraphStep();
  ~GraphStep();
  void warm_up(const std::function<void()>& step);
  void capture(const std::function<void()>& step);
  void replay();
  bool captured() const;
  int warm_ups() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cuda
