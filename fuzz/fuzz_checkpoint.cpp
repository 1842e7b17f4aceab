// libFuzzer entry point: a checkpoint file (LibTorch's zip archive with kiln's entries) read as
// `kiln train --resume` and `kiln eval` read it: checkpoint_config, then load_checkpoint. Twice:
// the bytes as they are (kiln's check of each record's CRC-32, kiln/core/zip_check.h, refuses
// nearly every change), then, when they differ, with each record's CRC-32 in the zip directory
// rewritten to match its bytes, so that changes reach LibTorch's reader and kiln's reading behind
// it (a hand-made or hostile file's CRC-32s can be right).
#include <zlib.h>

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

// The CRC-32 of a deflated record inflated, or nothing when it does not inflate (or inflates to
// more than the size the directory records).
std::optional<uint32_t> inflated_crc(const std::string& bytes, const kiln::ZipRecord& r) {
  z_stream s{};
  if (inflateInit2(&s, -15) != Z_OK) return std::nullopt;
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data() + r.data_offset));
  s.avail_in = static_cast<uInt>(r.size);
  std::string out(1 << 16, '\0');
  uint32_t crc = 0;
  uint64_t total = 0;
  int rc = Z_OK;
  while (rc == Z_OK && total <= r.uncompressed) {
    s.next_out = reinterpret_cast<Bytef*>(out.data());
    s.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&s, Z_NO_FLUSH);
    const size_t got = out.size() - s.avail_out;
    crc = kiln::crc32(reinterpret_cast<const uint8_t*>(out.data()), got, crc);
    total += got;
    if (rc == Z_OK && got == 0 && s.avail_in == 0) break;
  }
  inflateEnd(&s);
  if (rc != Z_STREAM_END) return std::nullopt;
  return crc;
}

// The bytes with every record's directory CRC-32 set to what its bytes give; nothing when the
// directory does not read or no CRC-32 changed.
std::optional<std::string> with_crcs_rewritten(const uint8_t* d, size_t n) {
  std::string bytes(reinterpret_cast<const char*>(d), n);
  std::vector<kiln::ZipRecord> dir;
  try {
    std::istringstream in(bytes);
    dir = kiln::zip_directory(in, n, "fuzz");
  } catch (const kiln::Error&) {
    return std::nullopt;
  }
  bool changed = false;
  for (const auto& r : dir) {
    std::optional<uint32_t> crc;
    if (r.method == 0) crc = kiln::crc32(reinterpret_cast<const uint8_t*>(bytes.data() + r.data_offset), r.size);
    else if (r.method == 8 && r.size <= UINT32_MAX) crc = inflated_crc(bytes, r);
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
