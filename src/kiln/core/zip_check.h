// A zip archive's directory, and its records checked against the CRC-32s it stores for them.
// kiln's checkpoints are LibTorch's zip archives (tensors and pickles stored, TorchScript code
// deflated, with a ZIP64 end record). LibTorch 2.11's reader (PyTorchStreamReader over its
// bundled miniz) does not compare a record with its CRC-32, so a checkpoint damaged on disk or
// in a copy loaded without a word: a flipped bit in a weight gave NaN losses and 10% accuracy.
// kiln checks the records first.
#pragma once
#include <cstdint>
#include <istream>
#include <optional>
#include <string>
#include <vector>

#include "kiln/core/crc32.h"

namespace kiln {

// The CRC-32 of zip, gzip and PNG, continued from `crc` (0 to start): zlib's when kiln has zlib,
// else crc32_portable (kiln/core/crc32.h). Tests hold both to the bit-by-bit definition.
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);

struct ZipRecord {
  std::string name;
  uint16_t flags = 0;         // general purpose bit flags (bit 0: encrypted)
  uint16_t method = 0;        // 0 stored, 8 deflated, ...
  uint32_t crc = 0;           // as the central directory records it
  uint64_t size = 0;          // the bytes it takes in the file (compressed size)
  uint64_t uncompressed = 0;  // its size once extracted
  uint64_t data_offset = 0;   // where its bytes start in the file
  uint64_t crc_field = 0;     // where the central directory holds its CRC-32 (for tools that rewrite it)
};

// The records the archive's central directory lists, each placed in the file by its local
// header. Throws Error("<what>: ...") when the directory cannot be read or a record does not
// lie inside the file. `in` holds `size` bytes.
std::vector<ZipRecord> zip_directory(std::istream& in, uint64_t size, const std::string& what);

// The CRC-32 of a record's bytes as extracted: stored ones read in pieces of 1 MiB, deflated ones
// inflated with zlib (nothing in a kiln built without zlib). Throws Error("<what>: ...") for an
// encrypted record, a method other than stored or deflated, or a deflate stream that does not
// give exactly the size the directory records.
std::optional<uint32_t> record_crc(std::istream& in, const ZipRecord& r, const std::string& what);

// Checks every record as a checkpoint's: not encrypted, stored (LibTorch's tensors and pickles)
// or deflated (its TorchScript code/ records), and its bytes, inflated when deflated, give the
// CRC-32 recorded for it. Throws Error("<what>: ...") naming the first record that fails. Reads
// the records in pieces of 1 MiB. A kiln built without zlib cannot inflate, and leaves the
// deflated records unchecked (LibTorch parses them; a damaged one fails there).
void check_zip_records(std::istream& in, uint64_t size, const std::string& what);

}  // namespace kiln
