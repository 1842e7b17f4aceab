#include "kiln/core/host_memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <limits>

#include "kiln/core/error.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer) || __has_feature(thread_sanitizer)
#define KILN_SANITIZED_ALLOCATOR 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define KILN_SANITIZED_ALLOCATOR 1
#endif

namespace kiln {
namespace {
std::string g_description = "system (glibc's defaults)";
bool g_changed = false;  // has mallopt been called
}

HostMemory parse_host_memory(const std::string& s, const std::string& what) {
  if (s == "retain") return HostMemory::Retain;
  if (s == "system") return HostMemory::System;
  throw Error(what + " = '" + s + "': expected retain (freed host memory kept for reuse) or system (the C library's defaults)");
}

bool set_host_memory(HostMemory m) {
#if defined(KILN_SANITIZED_ALLOCATOR)
  g_description = std::string(m == HostMemory::Retain ? "retain" : "system") + " (not applied: the allocator is the sanitizer's)";
  return false;
#elif defined(__GLIBC__)
  bool ok;
  if (m == HostMemory::Retain) {
    // No block from mmap (large ones come from the heap, where a free keeps them), and the
    // heap's top trimmed back to the system only past 2 GiB free (mallopt takes an int). Blocks allocated on a thread whose arena
    // cannot hold them still fall back to mmap: glibc does that whatever the count says.
    ok = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max()) == 1;
    g_description = ok ? "retain (glibc: mmap off, heap trimmed only past 2 GiB)" : "retain (not applied: glibc's mallopt refused it)";
    g_changed = true;
  } else if (!g_changed) {
    ok = true;  // nothing was changed: glibc's defaults (their mmap threshold rising by itself) stand
    g_description = "system (glibc's defaults)";
  } else {
    // Back to glibc's documented defaults, as near as mallopt can: once set by hand, the mmap
    // threshold stays at 128 KiB instead of rising by itself.
    ok = mallopt(M_MMAP_MAX, 65536) == 1 && mallopt(M_MMAP_THRESHOLD, 128 * 1024) == 1 &&
         mallopt(M_TRIM_THRESHOLD, 128 * 1024) == 1;
    g_description = ok ? "system (glibc's defaults, the mmap threshold fixed at 128 KiB)"
                       : "system (not applied: glibc's mallopt refused it)";
  }
  return ok;
#else
  g_description = std::string(m == HostMemory::Retain ? "retain" : "system") + " (not applied: the C library is not glibc)";
  return false;
#endif
}

std::string host_memory_description() { return g_description; }

}  // namespace kiln
