#include "kiln/train/step_watch.h"

#include <c10/core/impl/VirtualGuardImpl.h>

#include <string>

#include "kiln/core/error.h"
#ifdef KILN_HAS_CUDA
#include "kiln/cuda/device_info.h"
#endif

namespace kiln {

LateLoss::LateLoss(const torch::Device& d) : device_(d) {
  if (d.is_cuda()) {
    host_ = torch::empty({}, torch::TensorOptions().dtype(torch::kFloat32).pinned_memory(true));
    event_ = std::make_unique<c10::Event>(d.type());
  }
}

void LateLoss::push(const torch::Tensor& loss) {
  if (!device_.is_cuda()) {
    SyncAudit::Allow host_value;  // on the CPU the value is simply there; CUDA takes the copy below
    last_ = loss.item<float>();
    return;
  }
  poll();
  if (pending_) return;  // the previous copy has not landed yet: skip this one
  host_.copy_(loss.detach().to(torch::kFloat32), /*non_blocking=*/true);
  c10::impl::VirtualGuardImpl guard(device_.type());
  event_->record(guard.getStream(device_));
  pending_ = true;
}

double LateLoss::last() {
  poll();
  return last_;
}

void LateLoss::poll() {
  if (pending_ && event_->query()) {
    last_ = host_.item<float>();
    pending_ = false;
  }
}

void SyncCheck::check(int64_t global_step, int64_t epoch) {
  if (!audit_.watching()) return;
  const auto op = audit_.take();
  if (op.empty()) return;
  pause();
  throw Error("train.sync_check: training step " + std::to_string(global_step + 1) + " (epoch " + std::to_string(epoch + 1) +
              ") calls " + op + ", which makes the host wait for the device on CUDA (seen on the CPU, where "
              "kiln watches the steps' operators for it)");
}

void SyncCheck::set(bool on) {
  if (on == active_) return;
  active_ = on;
  if (!cuda) {
    if (on) audit_.start();
    else audit_.stop();
    return;
  }
#ifdef KILN_HAS_CUDA
  kiln::cuda::set_sync_debug_mode(on ? 2 : 0);
#endif
}

}  // namespace kiln
