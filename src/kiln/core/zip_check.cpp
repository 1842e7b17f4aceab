// The zip format's facts used here (PKWARE's APPNOTE.TXT): the end of central directory record
// (signature 50 4b 05 06, 22 bytes and a comment of up to 65,535), its ZIP64 locator (50 4b 06
// 07, 20 bytes, just before it) and ZIP64 end record (50 4b 06 06), the central directory's
// entries (50 4b 01 02, 46 bytes, then name, extra field and comment; a size or offset of
// 0xFFFFFFFF is in the ZIP64 extra field, id 0x0001, in the order uncompressed size,
// compressed size, offset), and each record's local header (50 4b 03 04, 30 bytes, then name
// and extra field, then the record's bytes).
#include "kiln/core/zip_check.h"

#include <algorithm>
#include <cstdio>

#include "kiln/build_info.h"
#include "kiln/core/error.h"
#if KILN_HAVE_ZLIB
#include <zlib.h>
#endif

namespace kiln {

namespace {

uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }
uint32_t le32(const uint8_t* p) { return le16(p) | static_cast<uint32_t>(le16(p + 2)) << 16; }
uint64_t le64(const uint8_t* p) { return le32(p) | static_cast<uint64_t>(le32(p + 4)) << 32; }

std::string hex32(uint32_t v) {
  char s[11];
  std::snprintf(s, sizeof s, "0x%08x", v);
  return s;
}

// Reads n bytes at `at`; throws when the stream holds fewer (the caller checked `at + n <= size`,
// so a short read means the file changed under us or a read error).
void read_at(std::istream& in, uint64_t at, uint8_t* out, size_t n, const std::string& what) {
  in.clear();
  in.seekg(static_cast<std::streamoff>(at));
  in.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(n));
  if (static_cast<size_t>(in.gcount()) != n)
    throw Error(what + ": reading " + std::to_string(n) + " bytes at offset " + std::to_string(at) + " failed");
}

struct End {
  uint64_t entries = 0, dir_offset = 0, dir_size = 0;
};

// The end of central directory record, searched from the end (it may be followed by a
// comment), and the ZIP64 end record when a locator precedes it.
End read_end(std::istream& in, uint64_t size, const std::string& what) {
  const std::string bad = what + ": no zip directory at its end (truncated, or not a checkpoint)";
  if (size < 22) throw Error(bad);
  const uint64_t tail_n = std::min<uint64_t>(size, 22 + 65535 + 20);
  std::vector<uint8_t> tail(tail_n);
  read_at(in, size - tail_n, tail.data(), tail_n, what);
  for (uint64_t i = tail_n - 22 + 1; i-- > 0;) {
    const uint8_t* p = tail.data() + i;
    if (le32(p) != 0x06054b50u || i + 22 + le16(p + 20) > tail_n) continue;
    End e{le16(p + 10), le32(p + 16), le32(p + 12)};
    if (i >= 20 && le32(p - 20) == 0x07064b50u) {  // ZIP64: the locator points at the ZIP64 end record
      const uint64_t at = le64(p - 20 + 8);
      if (at > size || size - at < 56) throw Error(what + ": its ZIP64 end record lies outside the file (truncated or corrupt?)");
      uint8_t z[56];
      read_at(in, at, z, 56, what);
      if (le32(z) != 0x06064b50u) throw Error(what + ": no ZIP64 end record where its locator points (corrupt?)");
      e = End{le64(z + 32), le64(z + 48), le64(z + 40)};
    }
    if (e.dir_offset > size || e.dir_size > size - e.dir_offset)
      throw Error(what + ": its zip directory (" + std::to_string(e.dir_size) + " bytes at offset " +
                  std::to_string(e.dir_offset) + ") lies outside the file's " + std::to_string(size) +
                  " bytes (truncated or corrupt?)");
    if (e.entries > e.dir_size / 46)
      throw Error(what + ": its zip directory claims " + std::to_string(e.entries) + " records, more than its " +
                  std::to_string(e.dir_size) + " bytes can hold (corrupt?)");
    return e;
  }
  throw Error(bad);
}

// A size or offset of 0xFFFFFFFF stands for the next 8 bytes of the ZIP64 extra field.
void read_zip64_extra(const uint8_t* x, size_t n, ZipRecord& r, uint64_t& local, bool u, bool c, bool o,
                      const std::string& where) {
  for (size_t at = 0; at + 4 <= n;) {
    const uint16_t id = le16(x + at), len = le16(x + at + 2);
    if (at + 4 + len > n) break;
    if (id == 0x0001) {
      const uint8_t* f = x + at + 4;
      size_t left = len;
      const std::pair<bool, uint64_t*> fields[] = {{u, &r.uncompressed}, {c, &r.size}, {o, &local}};
      for (const auto& [want, dst] : fields) {
        if (!want) continue;
        if (left < 8) throw Error(where + ": its ZIP64 extra field is too short (corrupt?)");
        *dst = le64(f);
        f += 8;
        left -= 8;
      }
      return;
    }
    at += 4 + len;
  }
  throw Error(where + ": a size or offset of 0xFFFFFFFF without its ZIP64 extra field (corrupt?)");
}

}  // namespace

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc) {
#if KILN_HAVE_ZLIB
  // zlib's (1.2.13: 3.1-3.4 GiB/s against 1.7-1.8 for slicing-by-8 on the development machine's AMD EPYC,
  // bench/results/checkpoint-crc-cost-2026-12-05-epyc.txt), in pieces its uInt can count.
  uLong c = crc;
  for (; n > 0;) {
    const size_t k = std::min<size_t>(n, 1u << 30);
    c = ::crc32(c, p, static_cast<uInt>(k));
    p += k, n -= k;
  }
  return static_cast<uint32_t>(c);
#else
  return crc32_portable(p, n, crc);
#endif
}

std::vector<ZipRecord> zip_directory(std::istream& in, uint64_t size, const std::string& what) {
  const End end = read_end(in, size, what);
  std::vector<uint8_t> dir(end.dir_size);
  read_at(in, end.dir_offset, dir.data(), dir.size(), what);
  std::vector<ZipRecord> out;
  out.reserve(end.entries);
  size_t at = 0;
  for (uint64_t i = 0; i < end.entries; ++i) {
    const std::string nth = what + ": zip directory entry " + std::to_string(i + 1) + " of " + std::to_string(end.entries);
    if (dir.size() - at < 46 || le32(dir.data() + at) != 0x02014b50u) throw Error(nth + " is not where the directory says (corrupt?)");
    const uint8_t* e = dir.data() + at;
    const size_t name_n = le16(e + 28), extra_n = le16(e + 30), comment_n = le16(e + 32);
    if (dir.size() - at - 46 < name_n + extra_n + comment_n) throw Error(nth + " runs past the directory's end (corrupt?)");
    ZipRecord r;
    r.name.assign(reinterpret_cast<const char*>(e + 46), name_n);
    r.flags = le16(e + 8);
    r.method = le16(e + 10);
    r.crc = le32(e + 16);
    r.crc_field = end.dir_offset + at + 16;
    r.size = le32(e + 20);
    r.uncompressed = le32(e + 24);
    uint64_t local = le32(e + 42);
    const std::string where = what + ": its record '" + r.name + "'";
    const bool u = r.uncompressed == 0xFFFFFFFFu, c = r.size == 0xFFFFFFFFu, o = local == 0xFFFFFFFFu;
    if (u || c || o) read_zip64_extra(e + 46 + name_n, extra_n, r, local, u, c, o, where);
    if (local > size || size - local < 30) throw Error(where + " starts outside the file (truncated or corrupt?)");
    uint8_t h[30];
    read_at(in, local, h, 30, what);
    if (le32(h) != 0x04034b50u) throw Error(where + " has no local header where the directory says (corrupt?)");
    r.data_offset = local + 30 + le16(h + 26) + le16(h + 28);
    if (r.data_offset > size || r.size > size - r.data_offset)
      throw Error(where + " (" + std::to_string(r.size) + " bytes) runs past the file's end (truncated or corrupt?)");
    out.push_back(std::move(r));
    at += 46 + name_n + extra_n + comment_n;
  }
  return out;
}

namespace {

// The CRC-32 of a stored record's bytes, read in pieces of 1 MiB.
uint32_t stored_crc(std::istream& in, const ZipRecord& r, const std::string& what) {
  std::vector<uint8_t> buf;
  uint32_t crc = 0;
  for (uint64_t done = 0; done < r.size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(r.size - done, 1 << 20));
    buf.resize(n);
    read_at(in, r.data_offset + done, buf.data(), n, what);
    crc = crc32(buf.data(), n, crc);
    done += n;
  }
  return crc;
}

#if KILN_HAVE_ZLIB
// The CRC-32 of a deflated record's bytes once inflated (raw deflate, zlib's windowBits -15);
// throws when they do not inflate to exactly the size the directory records.
uint32_t deflated_crc(std::istream& in, const ZipRecord& r, const std::string& what) {
  z_stream s{};
  if (inflateInit2(&s, -15) != Z_OK) throw Error(what + ": zlib's inflateInit2 failed");
  std::vector<uint8_t> src, dst(1 << 16);
  uint32_t crc = 0;
  uint64_t read = 0, out = 0;
  int rc = Z_OK;
  std::string problem;
  while (rc != Z_STREAM_END && problem.empty()) {
    if (s.avail_in == 0 && read < r.size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(r.size - read, 1 << 20));
      src.resize(n);
      read_at(in, r.data_offset + read, src.data(), n, what);
      read += n;
      s.next_in = src.data();
      s.avail_in = static_cast<uInt>(n);
    }
    s.next_out = dst.data();
    s.avail_out = static_cast<uInt>(dst.size());
    rc = inflate(&s, Z_NO_FLUSH);
    const size_t got = dst.size() - s.avail_out;
    crc = crc32(dst.data(), got, crc);
    out += got;
    if (out > r.uncompressed) problem = "inflates to more than the " + std::to_string(r.uncompressed) + " bytes the directory records";
    else if (rc == Z_BUF_ERROR && s.avail_in == 0 && read == r.size) problem = "ends before its deflate stream does";
    else if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) problem = std::string("is not valid deflate data (") + (s.msg ? s.msg : "zlib error") + ")";
  }
  inflateEnd(&s);
  if (problem.empty() && out != r.uncompressed)
    problem = "inflates to " + std::to_string(out) + " bytes, not the " + std::to_string(r.uncompressed) + " the directory records";
  if (!problem.empty()) throw Error(what + " is damaged: its record '" + r.name + "' " + problem);
  return crc;
}
#endif

}  // namespace

std::optional<uint32_t> record_crc(std::istream& in, const ZipRecord& r, const std::string& what) {
  const std::string where = what + ": its record '" + r.name + "'";
  if (r.flags & 1) throw Error(where + " is encrypted; kiln's checkpoints are not");
  if (r.method == 0) {
    if (r.uncompressed != r.size)
      throw Error(where + " is stored uncompressed but its two sizes differ (" + std::to_string(r.size) + " and " +
                  std::to_string(r.uncompressed) + " bytes; corrupt?)");
    return stored_crc(in, r, what);
  }
  if (r.method == 8) {
#if KILN_HAVE_ZLIB
    return deflated_crc(in, r, what);
#else
    return std::nullopt;  // without zlib, LibTorch's deflated records (its TorchScript code/, which it parses) go unchecked
#endif
  }
  throw Error(where + " is compressed by zip method " + std::to_string(r.method) +
              "; checkpoints hold records stored or deflated (methods 0 and 8) only");
}

void check_zip_records(std::istream& in, uint64_t size, const std::string& what) {
  for (const ZipRecord& r : zip_directory(in, size, what)) {
    const auto crc = record_crc(in, r, what);
    if (crc && *crc != r.crc)
      throw Error(what + " is damaged: its record '" + r.name + "' (" + std::to_string(r.uncompressed) +
                  " bytes) does not match the CRC-32 the file stores for it (" + hex32(r.crc) + "; its bytes give " +
                  hex32(*crc) + "): the file changed after it was written (a disk or copy error?)");
  }
}

}  // namespace kiln
