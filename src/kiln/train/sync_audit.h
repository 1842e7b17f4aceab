// train.sync_check where CUDA's own sync debug mode cannot look: on the CPU nothing waits for
// a device, so a hidden synchronisation costs nothing there and shows nowhere, until the same
// step runs on a GPU. SyncAudit watches the operators a step calls (LibTorch's RecordFunction
// observers, all threads) for the ones that make the host wait for a CUDA device: reading a
// value (item(), is_nonzero, equal), and the data-dependent shapes (nonzero, masked_select,
// boolean indexing, unique, bincount, histc, repeat_interleave without an output size). What it
// cannot see on the CPU: a copy to host memory (`.cpu()` is a no-op there) and a blocking
// stream or event synchronisation; CUDA's own check covers those on a GPU.
#pragma once
#include <cstdint>
#include <string>

namespace kiln {

class SyncAudit {
 public:
  SyncAudit() = default;
  ~SyncAudit();
  SyncAudit(const SyncAudit&) = delete;
  SyncAudit& operator=(const SyncAudit&) = delete;

  // Watching on / off (one audit at a time in a process: a second start() throws).
  void start();
  void stop();
  bool watching() const { return handle_ != 0; }

  // The first operator seen since the last take(), with what it does ("aten::_local_scalar_dense
  // (a tensor's value read on the host: item(), a scalar conversion)"); "" if none. Clears it.
  std::string take();

  // Whether an operator (RecordFunction's name, "aten::nonzero") synchronises on CUDA.
  static const char* would_sync(const char* op);

  // While one lives on a thread, that thread's operators are not watched: a host read that
  // only the CPU path makes (on CUDA the same code takes another, asynchronous way).
  struct Allow {
    Allow();
    ~Allow();
  };

 private:
  uint64_t handle_ = 0;
};

}  // namespace kiln
