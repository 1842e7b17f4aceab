// The CRC-32 of zip, gzip and PNG (ISO 3309 / IEEE 802.3: polynomial 0x04C11DB7 reflected, initial
// and final XOR 0xFFFFFFFF) in standard C++ alone, so that both kiln's checkpoint check
// (kiln/core/zip_check.h, which prefers zlib's where kiln has zlib) and the dependency-free
// runtime's .kiln check (kiln/runtime/runtime.h, WebAssembly included) use the same code.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

namespace kiln {

namespace crc32_detail {
using Table = std::array<std::array<uint32_t, 256>, 8>;
// tables[0] is the byte-at-a-time table of the reflected polynomial 0xEDB88320; tables[k][b] is
// the CRC of byte b followed by k zero bytes, which lets eight bytes be folded in at once.
// Filled on first use into zeroed storage: a table computed where it is declared, clang folds
// into the program's data (kiln.js 692,100 bytes against 682,052, its 8 KB in base64;
// bench/results/kiln-js-size-2026-12-05-epyc.txt).
inline const Table& tables() {
  static Table t;
  static const bool filled = [] {
    for (uint32_t b = 0; b < 256; ++b) {
      uint32_t c = b;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
      t[0][b] = c;
    }
    for (uint32_t b = 0; b < 256; ++b)
      for (int k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFF];
    return true;
  }();
  (void)filled;
  return t;
}
inline uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
}  // namespace crc32_detail

// The CRC-32 of n bytes continued from `crc` (0 to start), eight table lookups a step over 8
// bytes ("slicing-by-8"; 1.7-1.8 GiB/s on the development machine's AMD EPYC,
// bench/results/checkpoint-crc-cost-2026-12-05-epyc.txt). Tests hold it to the bit-by-bit definition.
inline uint32_t crc32_portable(const uint8_t* p, size_t n, uint32_t crc = 0) {
  const auto& t = crc32_detail::tables();
  uint32_t c = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const uint32_t lo = c ^ crc32_detail::le32(p), hi = crc32_detail::le32(p + 4);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
        t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) c = (c >> 8) ^ t[0][(c ^ *p) & 0xFF];
  return ~c;
}

}  // namespace kiln
