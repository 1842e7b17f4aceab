#include "kiln/report/profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <map>

#include "kiln/core/error.h"

namespace kiln {
namespace tap = torch::autograd::profiler;
namespace tpi = torch::profiler::impl;

Profiler::Profiler(bool cuda) {
  // Without a GPU, Kineto still probes for one and logs "gpuGetDeviceCount failed" as an ERROR:
  // noise on a CPU run, silenced unless the user set its level.
  if (!cuda) setenv("KINETO_LOG_LEVEL", "5", /*overwrite=*/0);
  tpi::ProfilerConfig config(tpi::ProfilerState::KINETO);
  std::set<tpi::ActivityType> activities{tpi::ActivityType::CPU};
  if (cuda) activities.insert(tpi::ActivityType::CUDA);
  try {
    tap::prepareProfiler(config, activities);
    tap::enableProfiler(config, activities);
  } catch (const std::exception& e) {
    throw Error(std::string("starting LibTorch's profiler failed: ") + e.what());
  }
  active_ = true;
}

Profiler::~Profiler() {
  if (active_) {
    try {
      tap::disableProfiler();
    } catch (...) {  // a destructor must not throw; the profile is lost anyway
    }
  }
}

ProfileTable Profiler::stop() {
  if (!active_) throw Error("Profiler::stop called twice");
  active_ = false;
  auto result = tap::disableProfiler();
  struct Span {
    uint64_t start, end;
    size_t index;
    double children_ns = 0;
  };
  std::map<uint64_t, std::vector<Span>> by_thread;  // host operators, per thread
  std::map<std::string, std::pair<int64_t, double>> device, host;  // name -> calls, ns
  const auto& events = result->events();
  for (size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    if (e.deviceType() == c10::DeviceType::CPU) {
      if (!e.isAsync()) by_thread[e.startThreadId()].push_back({e.startNs(), e.endNs(), i});
    } else {
      auto& d = device[e.name()];
      d.first += 1;
      d.second += static_cast<double>(e.durationNs());
    }
  }
  // Self time of each host operator: its duration less its direct children's (the operators
  // nested inside it on its thread).
  for (auto& [tid, spans] : by_thread) {
    std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
      return a.start != b.start ? a.start < b.start : a.end > b.end;
    });
    std::vector<Span*> stack;
    for (auto& s : spans) {
      while (!stack.empty() && stack.back()->end <= s.start) stack.pop_back();
      if (!stack.empty()) stack.back()->children_ns += static_cast<double>(s.end - s.start);
      stack.push_back(&s);
    }
    for (auto& s : spans) {
      auto& h = host[events[s.index].name()];
      h.first += 1;
      h.second += std::max(0.0, static_cast<double>(s.end - s.start) - s.children_ns);
    }
  }
  ProfileTable t;
  auto add = [&](const std::map<std::string, std::pair<int64_t, double>>& m, const std::string& kind, double& total) {
    std::vector<ProfileRow> rows;
    for (auto& [name, v] : m) {
      rows.push_back({kind, name, v.first, v.second / 1e6, 0});
      total += v.second / 1e6;
    }
    for (auto& r : rows) r.share = total > 0 ? r.ms / total : 0;
    std::sort(rows.begin(), rows.end(), [](const ProfileRow& a, const ProfileRow& b) { return a.ms > b.ms; });
    t.rows.insert(t.rows.end(), rows.begin(), rows.end());
  };
  add(device, "device", t.device_ms);
  add(host, "host", t.host_ms);
  return t;
}

std::string ProfileTable::csv(size_t top) const {
  std::string out = "kind,name,calls,ms,share\n";
  std::map<std::string, size_t> seen;
  for (auto& r : rows) {
    if (top && ++seen[r.kind] > top) continue;
    std::string name = r.name;
    std::replace(name.begin(), name.end(), '"', '\'');
    char buf[96];
    std::snprintf(buf, sizeof buf, ",%lld,%.4f,%.5f\n", (long long)r.calls, r.ms, r.share);
    out += r.kind + ",\"" + name + "\"" + buf;
  }
  return out;
}

}  // namespace kiln
