// CUDA-only (compiled only when LibTorch has CUDA; see CMakeLists.txt): the CUDA graph of one
// training step, used by kiln/train/step_policy.cpp for train.cuda_graph.
// Ran on an NVIDIA H200 (2026-12-04, commit 93a8abd; bench/results/gpu-window-h200-2026-12-04-campaign.txt): cifar10-94 for 2
// epochs under train.sync_check, per-epoch losses within 0.0015 of the static step's, and
// cifar10-94-muon n = 10 (93.99%, 1.623 s a run).
#pragma once
#include <functional>
#include <memory>

namespace kiln::cuda {

// Captures one training step (a callable that only enqueues device work) in a CUDA graph.
// PyTorch's CUDA-graph notes: run the step eagerly a few times on a side stream before
// capturing it on that stream (lazy initialisation, cuBLAS workspaces and autograd's stream
// bookkeeping then happen outside the capture). warm_up() runs one real step on the object's
// side stream, fenced by events against the current stream on both sides; the trainer's first
// three steps of a capture are such warm-ups. capture() records the step on the same side
// stream without running it: call replay() to run it, then once per step. The step must keep
// every tensor it reads at fixed addresses (the static step of kiln/train/static_step.h does).
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
