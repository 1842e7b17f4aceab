#include "kiln/train/sync_audit.h"

#include <ATen/record_function.h>

#include <atomic>
#include <cstring>

#include "kiln/core/error.h"

namespace kiln {

namespace {

struct Seen {
  std::mutex mu;
  std::string first;
};
std::atomic<Seen*> g_seen{nullptr};
thread_local int t_allowed = 0;

std::unique_ptr<at::ObserverContext> on_start(const at::RecordFunction& fn) {
  if (t_allowed) return nullptr;
  Seen* s = g_seen.load(std::memory_order_acquire);
  if (!s) return nullptr;
  const char* name = fn.name();
  if (const char* why = SyncAudit::would_sync(name)) {
    std::lock_guard<std::mutex> lock(s->mu);
    if (s->first.empty()) s->first = std::string(name) + " (" + why + ")";
  }
  return nullptr;
}

Seen g_storage;

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
  Seen* expected = nullptr;
  if (!g_seen.compare_exchange_strong(expected, &g_storage))
    throw Error("train.sync_check: another run in this process is already being watched");
  {
    std::lock_guard<std::mutex> lock(g_storage.mu);
    g_storage.first.clear();
  }
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(&on_start).scopes({at::RecordScope::FUNCTION}));
}

void SyncAudit::stop() {
  if (!handle_) return;
  at::removeCallback(handle_);
  handle_ = 0;
  g_seen.store(nullptr, std::memory_order_release);
}

std::string SyncAudit::take() {
  std::lock_guard<std::mutex> lock(g_storage.mu);
  std::string f;
  f.swap(g_storage.first);
  return f;
}

SyncAudit::Allow::Allow() { ++t_allowed; }
SyncAudit::Allow::~Allow() { --t_allowed; }

}  // namespace kiln
