// How freed host memory goes back to the system. With glibc's defaults every block above the
// malloc mmap threshold (128 KiB, rising by itself to at most 32 MiB) is a fresh mmap, and a
// free unmaps it: a CPU training step's activations (cifar10-94 at batch 1,024 in bf16: 128 MiB
// for the first group's convolution output alone) are mapped, zero-filled page by page on first
// touch and unmapped again every step. `Retain` turns that off for the process (glibc's mmap
// count to 0 and its heap trim threshold at 2 GiB), so freed blocks are reused by the next step;
// `System` leaves glibc's defaults. Measured on cifar10-94's smoke run (2 EPYC cores, bf16,
// 2026-12-01, docs/perf.md): page faults 4.2 M -> 0.4 M and system time 10-11 s -> 1.0-1.2 s an
// invocation. The price is
// that a process's resident memory stays at its peak until it exits.
#pragma once
#include <string>

namespace kiln {

enum class HostMemory { Retain, System };

// "retain" | "system"; anything else is a kiln::Error naming `what`.
HostMemory parse_host_memory(const std::string& s, const std::string& what = "--host-memory");

// Applies `m` to this process's C library allocator. Returns false where it can change nothing
// (not glibc, or its allocator replaced, as under AddressSanitizer); the setting then stays
// whatever the allocator does.
bool set_host_memory(HostMemory m);

// What the last set_host_memory asked and whether it took: "retain (glibc: mmap off, no heap
// trim)", "system (glibc's defaults)" (nothing changed), "system (glibc's defaults, the mmap
// threshold fixed at 128 KiB)" (back from retain: glibc's threshold no longer rises by itself once
// set), or "... (not applied: <why>)".
std::string host_memory_description();

}  // namespace kiln
