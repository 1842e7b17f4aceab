// What watches the training steps from the host without making it wait: the progress bar's
// late loss read-back (LateLoss) and train.sync_check (SyncCheck).
#pragma once
#include <c10/core/Event.h>
#include <torch/torch.h>

#include <memory>

#include "kiln/train/sync_audit.h"

namespace kiln {

// The progress bar's loss: copied off the device without blocking and read a step or more
// later, once the copy has landed (on the CPU the value is simply there).
class LateLoss {
 public:
  explicit LateLoss(const torch::Device& d);
  void push(const torch::Tensor& loss);  // a copy starts unless the previous one is in flight
  double last();                          // the latest landed value; -1 before the first

 private:
  void poll();
  torch::Device device_;
  torch::Tensor host_;
  std::unique_ptr<c10::Event> event_;
  bool pending_ = false;
  double last_ = -1;
};

// train.sync_check: on CUDA, PyTorch's sync debug mode set to "error" while the training steps
// run, so a host-device synchronisation hidden in a step throws instead of silently costing time
// (ran on an H200 on 2026-12-04: the ordinary step and the CUDA graph of cifar10-94 passed it). On the CPU, where nothing waits, SyncAudit watches the steps for the
// operators that would synchronise on CUDA (kiln/train/sync_audit.h) and check() stops the run
// after the step that called one.
class SyncCheck {
 public:
  bool wanted = false;  // train.sync_check
  bool cuda = false;    // the run's device
  ~SyncCheck() { pause(); }
  void resume() { set(wanted); }
  void pause() { set(false); }
  // The CPU audit's finding in the step just done, as the error the run stops with.
  void check(int64_t global_step, int64_t epoch);

 private:
  void set(bool on);
  bool active_ = false;
  SyncAudit audit_;
};

}  // namespace kiln
