#include "kiln/train/sync_audit.h"

#include <ATen/record_function.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "kiln/core/error.h"

namespace kiln {

namespace {

// One audit at a time: whether it is watching, and the first operator it saw.
std::atomic<bool> g_watching{false};
std::mutex g_mu;
std::string g_first;
thread_local int t_allowed = 0;

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (t_allowed || !g_watching.load(std::memory_order_acquire)) return nullptr;
  const char* name = fn.name();
  if (const char* why = SyncAudit::would_sync(name)) {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_first.empty()) g_first = std::string(name) + " (" + why + ")";
  }
  return nullptr;
}

}  // namespace

const char* SyncAudit::would_sync(const char* op) {
  if (!op || std::strncmp(op, "aten::", 6) != 0) return nullptr;
  static const struct {
    const char* name;
    const char* why;
  } kOps[] = {
      {"aten::_local_scalar_dense", "a tensor's value read on the host: item(), a scalar conversion"},
      {"aten::item", "a tensor's value read on the host"},
      {"aten::is_nonzero", "a tensor used as a bool on the host"},
      {"aten::equal", "torch::equal returns a host bool"},
      {"aten::allclose", "returns a host bool"},
      {"aten::nonzero", "an output whose size depends on the values (also boolean indexing)"},
      {"aten::masked_select", "an output whose size depends on the values"},
      {"aten::_unique", "an output whose size depends on the values"},
      {"aten::_unique2", "an output whose size depends on the values"},
      {"aten::unique_dim", "an output whose size depends on the values"},
      {"aten::unique_consecutive", "an output whose size depends on the values"},
      {"aten::bincount", "its length is the largest value"},
      {"aten::histc", "the range is read from the values when min = max"},
      {"aten::repeat_interleave", "the output size is read from the repeats unless given"},
  };
  for (auto& k : kOps)
    if (std::strcmp(op, k.name) == 0) return k.why;
  return nullptr;
}

SyncAudit::~SyncAudit() { stop(); }

void SyncAudit::start() {
  if (handle_) return;
  if (g_watching.exchange(true)) throw Error("train.sync_check: another run in this process is already being watched");
  take();
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start).scopes({at::RecordScope::FUNCTION}));
}

void SyncAudit::stop() {
  if (!handle_) return;
  at::removeCallback(handle_);
  handle_ = 0;
  g_watching.store(false, std::memory_order_release);
}

std::string SyncAudit::take() {
  std::lock_guard<std::mutex> lock(g_mu);
  std::string f;
  f.swap(g_first);
  return f;
}

SyncAudit::Allow::Allow() { ++t_allowed; }
SyncAudit::Allow::~Allow() { --t_allowed; }

}  // namespace kiln
