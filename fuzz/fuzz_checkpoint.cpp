// libFuzzer entry point: a checkpoint file (LibTorch's zip archive with kiln's entries) read as
// `kiln train --resume` and `kiln eval` read it: checkpoint_config, then load_checkpoint. Twice:
// the bytes as they are (kiln's check of each record's CRC-32, kiln/core/zip_check.h, refuses
// nearly every change), then, when they differ, with each record's CRC-32 in the zip directory
// rewritten to match its bytes, so that changes reach LibTorch's reader and kiln's reading behind
// it (a hand-made or hostile file's CRC-32s can be right).
#include <cstdlib>
#include <new>
#include <optional>
#include <sstream>
#include <string>

#include "kiln/core/error.h"
#include "kiln/core/zip_check.h"
#include "kiln/train/trainer.h"
#include "targets.h"

// ASan's operator new reports a failed allocation as a fatal error where the standard's throws
// std::bad_alloc, as kiln's own builds do. LibTorch's unpickler reserves a string of the length a
// pickle claims before reading it (2^48 bytes for a changed length: std::bad_alloc, which kiln
// reports as an unreadable checkpoint), so in this target new and delete are malloc and free,
// which stay ASan's: heap errors are still found; lost is only the check that new pairs with
// delete. The aligned forms stay ASan's, in pairs.
void* operator new(std::size_t n) {
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

// The bytes with every record's directory CRC-32 set to what its bytes give; nothing when the
// directory does not read or no CRC-32 changed.
std::optional<std::string> with_crcs_rewritten(const uint8_t* d, size_t n) {
  std::string bytes(reinterpret_cast<const char*>(d), n);
  std::istringstream in(bytes);  // a copy: the rewrites below leave what it reads as it was
  std::vector<kiln::ZipRecord> dir;
  try {
    dir = kiln::zip_directory(in, n, "fuzz");
  } catch (const kiln::Error&) {
    return std::nullopt;
  }
  bool changed = false;
  for (const auto& r : dir) {
    std::optional<uint32_t> crc;
    try {
      crc = kiln::record_crc(in, r, "fuzz");
    } catch (const kiln::Error&) {  // a record that does not extract keeps its CRC-32
    }
    if (!crc || *crc == r.crc) continue;
    for (int k = 0; k < 4; ++k) bytes[r.crc_field + static_cast<size_t>(k)] = static_cast<char>((*crc >> (8 * k)) & 0xFF);
    changed = true;
  }
  if (!changed) return std::nullopt;
  return bytes;
}

void read_as_kiln_does(const std::string& path) {
  try {
    auto cfg = kiln::checkpoint_config(path);
    auto lc = kiln::load_checkpoint(path, torch::kCPU);
    (void)cfg;
    (void)lc;
  } catch (const kiln::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kiln::fuzz::ScratchFile scratch("kiln-fuzz-checkpoint.pt");  // LibTorch reads checkpoints from files
  scratch.write(data, size);
  read_as_kiln_does(scratch.path);
  if (auto fixed = with_crcs_rewritten(data, size)) {
    scratch.write(reinterpret_cast<const uint8_t*>(fixed->data()), fixed->size());
    read_as_kiln_does(scratch.path);
  }
  return 0;
}
