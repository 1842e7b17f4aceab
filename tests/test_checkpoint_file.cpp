// A checkpoint's bytes checked before LibTorch reads them (kiln/core/zip_check.h): the CRC-32
// against its definition, the zip directory against archives built here by the format's
// rules, and damaged checkpoints refused by name, with nothing lost.
#include <random>
#include <sstream>

#include "helpers.h"
#include "kiln/build_info.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/core/zip_check.h"
#include "kiln/train/trainer.h"

using kiln::test::expect_error_containing;
using kiln::test::TempDir;

namespace checkpoint_file_test {

using kiln::test::crc32_by_bits;

void put16(std::string& s, uint32_t v) { s += char(v & 0xFF), s += char((v >> 8) & 0xFF); }
void put32(std::string& s, uint32_t v) { put16(s, v & 0xFFFF), put16(s, v >> 16); }
void put64(std::string& s, uint64_t v) { put32(s, static_cast<uint32_t>(v)), put32(s, static_cast<uint32_t>(v >> 32)); }

struct Rec {
  std::string name, data;
};

// A zip archive of stored records, laid out by APPNOTE.TXT: each record's local header and
// bytes, then the central directory and the end record. With zip64, every entry's sizes and
// offset are 0xFFFFFFFF in the directory with the values in a ZIP64 extra field, and a ZIP64 end
// record and locator precede the end record (as LibTorch's writer puts them). `pad` puts an
// extra field of that many bytes in each local header (LibTorch aligns its records so).
std::string make_zip(const std::vector<Rec>& recs, bool zip64, size_t pad = 0, const std::string& comment = "") {
  std::string out, dir;
  for (const Rec& r : recs) {
    const uint32_t crc = kiln::crc32(reinterpret_cast<const uint8_t*>(r.data.data()), r.data.size());
    const uint64_t local = out.size();
    put32(out, 0x04034b50), put16(out, 20), put16(out, 0), put16(out, 0), put32(out, 0), put32(out, crc);
    put32(out, static_cast<uint32_t>(r.data.size())), put32(out, static_cast<uint32_t>(r.data.size()));
    put16(out, static_cast<uint32_t>(r.name.size())), put16(out, static_cast<uint32_t>(pad));
    out += r.name + std::string(pad, 'Z') + r.data;
    std::string extra;
    if (zip64) put16(extra, 1), put16(extra, 24), put64(extra, r.data.size()), put64(extra, r.data.size()), put64(extra, local);
    const uint32_t small = zip64 ? 0xFFFFFFFFu : 0;
    put32(dir, 0x02014b50), put16(dir, 45), put16(dir, 45), put16(dir, 0), put16(dir, 0), put32(dir, 0), put32(dir, crc);
    put32(dir, zip64 ? small : static_cast<uint32_t>(r.data.size())), put32(dir, zip64 ? small : static_cast<uint32_t>(r.data.size()));
    put16(dir, static_cast<uint32_t>(r.name.size())), put16(dir, static_cast<uint32_t>(extra.size())), put16(dir, 0);
    put16(dir, 0), put16(dir, 0), put32(dir, 0), put32(dir, zip64 ? small : static_cast<uint32_t>(local));
    dir += r.name + extra;
  }
  const uint64_t dir_at = out.size();
  out += dir;
  if (zip64) {
    const uint64_t end64_at = out.size();
    put32(out, 0x06064b50), put64(out, 44), put16(out, 45), put16(out, 45), put32(out, 0), put32(out, 0);
    put64(out, recs.size()), put64(out, recs.size()), put64(out, dir.size()), put64(out, dir_at);
    put32(out, 0x07064b50), put32(out, 0), put64(out, end64_at), put32(out, 1);
  }
  put32(out, 0x06054b50), put16(out, 0), put16(out, 0);
  put16(out, zip64 ? 0xFFFF : static_cast<uint32_t>(recs.size())), put16(out, zip64 ? 0xFFFF : static_cast<uint32_t>(recs.size()));
  put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(dir.size())), put32(out, zip64 ? 0xFFFFFFFFu : static_cast<uint32_t>(dir_at));
  put16(out, static_cast<uint32_t>(comment.size()));
  return out + comment;
}

std::vector<kiln::ZipRecord> directory_of(const std::string& zip) {
  std::istringstream in(zip);
  return kiln::zip_directory(in, zip.size(), "'z.zip'");
}

void check(const std::string& zip) {
  std::istringstream in(zip);
  kiln::check_zip_records(in, zip.size(), "'z.zip'");
}

// A checkpoint of a tiny run, written by kiln.
std::string tiny_checkpoint(const TempDir& d) {
  kiln::train(kiln::test::tiny_config(), kiln::test::synthetic(64, 32), kiln::test::quiet_options(d / "run"));
  return d / "run/checkpoint.pt";
}

std::vector<kiln::ZipRecord> directory_of_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return kiln::zip_directory(in, std::filesystem::file_size(path), "'" + path + "'");
}

const kiln::ZipRecord& record(const std::vector<kiln::ZipRecord>& dir, const std::string& suffix) {
  for (const auto& r : dir)
    if (r.name.size() >= suffix.size() && r.name.compare(r.name.size() - suffix.size(), suffix.size(), suffix) == 0) return r;
  throw std::runtime_error("no record ending in " + suffix);
}

}  // namespace checkpoint_file_test

using namespace checkpoint_file_test;

TEST(Crc32, BothMatchTheDefinitionAtEveryLengthAndSplit) {
  for (auto* crc : {&kiln::crc32, &kiln::crc32_portable}) {
    const std::string check_value = "123456789";  // the CRC-32 catalogue's check value
    EXPECT_EQ(crc(reinterpret_cast<const uint8_t*>(check_value.data()), check_value.size(), 0), 0xCBF43926u);
    EXPECT_EQ(crc(nullptr, 0, 0), 0u);
    std::mt19937 rng(7);
    std::vector<uint8_t> b(300);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    for (size_t start = 0; start < 9; ++start)  // every alignment of the 8-byte steps
      for (size_t n = 0; start + n <= b.size(); n += 1 + n / 8) {
        const std::vector<uint8_t> part(b.begin() + static_cast<long>(start), b.begin() + static_cast<long>(start + n));
        ASSERT_EQ(crc(b.data() + start, n, 0), crc32_by_bits(part)) << "start " << start << ", " << n << " bytes";
      }
    // Continued over pieces, as the checker reads a record, it gives the whole's.
    for (size_t cut : {0, 1, 7, 8, 9, 150, 299, 300})
      EXPECT_EQ(crc(b.data() + cut, b.size() - cut, crc(b.data(), cut, 0)), crc32_by_bits(b)) << cut;
  }
}

TEST(ZipCheck, ReadsTheDirectoryPlainAndZip64WithPaddingAndAComment) {
  const std::vector<Rec> recs = {{"a/version", "3\n"}, {"a/data/0", std::string(1000, '\x7f')}, {"a/empty", ""}};
  for (bool zip64 : {false, true})
    for (size_t pad : {0, 20}) {
      const std::string zip = make_zip(recs, zip64, pad, "a comment after the end record");
      const auto dir = directory_of(zip);
      ASSERT_EQ(dir.size(), recs.size());
      for (size_t i = 0; i < recs.size(); ++i) {
        EXPECT_EQ(dir[i].name, recs[i].name);
        EXPECT_EQ(dir[i].method, 0);
        EXPECT_EQ(dir[i].size, recs[i].data.size());
        EXPECT_EQ(dir[i].uncompressed, recs[i].data.size());
        EXPECT_EQ(zip.substr(dir[i].data_offset, dir[i].size), recs[i].data) << recs[i].name << (zip64 ? " (zip64)" : "");
        EXPECT_EQ(dir[i].crc, crc32_by_bits(std::vector<uint8_t>(recs[i].data.begin(), recs[i].data.end())));
        uint32_t at_field = 0;  // the directory's CRC field, little-endian
        for (int k = 3; k >= 0; --k) at_field = at_field << 8 | static_cast<uint8_t>(zip[dir[i].crc_field + static_cast<size_t>(k)]);
        EXPECT_EQ(at_field, dir[i].crc);
      }
      EXPECT_NO_THROW(check(zip));
    }
}

TEST(ZipCheck, RefusesDamageNamingTheRecordOrTheDirectory) {
  const std::vector<Rec> recs = {{"a/version", "3\n"}, {"a/data/0", std::string(1000, '\x7f')}};
  for (bool zip64 : {false, true}) {
    const std::string good = make_zip(recs, zip64);
    const auto dir = directory_of(good);
    auto with = [&](size_t at, char v) { std::string z = good; z[at] = v; return z; };
    // One bit in a record's bytes.
    expect_error_containing([&] { check(with(dir[1].data_offset + 500, '\x7e')); },
                            "'z.zip' is damaged: its record 'a/data/0' (1000 bytes) does not match the CRC-32 the file stores for it");
    // Cut short: the end record is gone, or the directory or a record lies past the end.
    expect_error_containing([&] { check(good.substr(0, good.size() - 1)); }, "'z.zip': no zip directory at its end");
    expect_error_containing([&] { check(good.substr(0, 10)); }, "'z.zip': no zip directory at its end");
    // The directory says a record is compressed by a method checkpoints never use, or encrypted.
    const size_t entry1 = dir[1].crc_field - 16;
    expect_error_containing([&] { check(with(entry1 + 10, 12)); }, "its record 'a/data/0' is compressed by zip method 12");
    expect_error_containing([&] { check(with(entry1 + 8, 1)); }, "its record 'a/data/0' is encrypted");
    // A local header that is not one (the directory's offset wrong).
    expect_error_containing([&] { check(with(dir[1].data_offset - 30 - 8, 'X')); }, "its record 'a/data/0' has no local header");
  }
  // Without ZIP64: a directory offset past the file, an entry count its bytes cannot hold, a
  // record longer than the file.
  const std::string good = make_zip(recs, false);
  const size_t end = good.size() - 22;
  auto with32 = [&](size_t at, uint32_t v) { std::string z = good; for (int k = 0; k < 4; ++k) z[at + k] = char((v >> (8 * k)) & 0xFF); return z; };
  expect_error_containing([&] { check(with32(end + 16, 0x00FFFFFF)); }, "its zip directory (");
  expect_error_containing([&] { check(with32(end + 8, 0x7FFF7FFF)); }, "its zip directory claims 32767 records, more than its");
  const size_t entry1 = directory_of(good)[1].crc_field - 16;
  expect_error_containing([&] { check(with32(entry1 + 20, 5000)); }, "its record 'a/data/0' (5000 bytes) runs past the file's end");
}

#if KILN_HAVE_ZLIB
TEST(ZipCheck, DeflatedRecordsAreInflatedAndChecked) {
  // LibTorch deflates its TorchScript code/ records: a real checkpoint holds some, and they pass.
  TempDir d;
  const std::string path = tiny_checkpoint(d);
  const auto dir = directory_of_file(path);
  size_t deflated = 0;
  for (const auto& r : dir) deflated += r.method == 8;
  ASSERT_GT(deflated, 0u) << "LibTorch no longer deflates any record: this test no longer tests inflation";
  EXPECT_NO_THROW(kiln::open_checkpoint(path));
  // One bit changed in a deflated record: refused, whether the stream breaks or inflates to other bytes.
  for (const auto& r : dir) {
    if (r.method != 8) continue;
    auto bytes = kiln::read_file(path);
    bytes[r.data_offset + r.size / 2] ^= 0x10;
    kiln::test::write_bytes(d / "bad.pt", bytes);
    expect_error_containing([&] { kiln::checkpoint_config(d / "bad.pt"); }, "bad.pt' is damaged: its record '" + r.name + "'");
    break;
  }
}
#endif

TEST(ZipCheck, ADamagedCheckpointIsRefusedByNameAndResumeLosesNothing) {
  TempDir d;
  const std::string path = tiny_checkpoint(d);
  const auto dir = directory_of_file(path);
  const auto good = kiln::read_file(path);
  // LibTorch alone loads a checkpoint whose weights changed on disk (it does not check CRC-32s):
  // the first record of tensor bytes with a high exponent bit flipped in each float.
  const auto& weights = record(dir, "/data/0");
  auto bytes = good;
  for (uint64_t i = 3; i < weights.size; i += 4) bytes[weights.data_offset + i] ^= 0x40;
  kiln::test::write_bytes(d / "flipped.pt", bytes);
  torch::serialize::InputArchive ar;
  EXPECT_NO_THROW(ar.load_from(d / "flipped.pt")) << "LibTorch now refuses a damaged record itself";
  const std::string named = "flipped.pt' is damaged: its record '" + weights.name + "' (" + std::to_string(weights.size) +
                            " bytes) does not match the CRC-32";
  expect_error_containing([&] { kiln::load_checkpoint(d / "flipped.pt", torch::kCPU); }, named);
  expect_error_containing([&] { kiln::checkpoint_config(d / "flipped.pt"); }, named);
  // One bit in the pickle that names the records, and in the version record.
  for (const std::string suffix : {"/data.pkl", "/version"}) {
    const auto& r = record(dir, suffix);
    bytes = good;
    bytes[r.data_offset + r.size / 2] ^= 0x01;
    kiln::test::write_bytes(d / "one-bit.pt", bytes);
    expect_error_containing([&] { kiln::load_checkpoint(d / "one-bit.pt", torch::kCPU); }, "one-bit.pt' is damaged: its record '" + r.name + "'");
  }
  // `kiln train --resume` on the damaged run: refused before anything is written; the file stays as it was.
  bytes = good;
  bytes[weights.data_offset + 1] ^= 0x01;
  kiln::test::write_bytes(path, bytes);
  auto opt = kiln::test::quiet_options(d / "run");
  expect_error_containing([&] { kiln::resume(kiln::test::synthetic(64, 32), opt); }, "checkpoint.pt' is damaged: its record '" + weights.name + "'");
  EXPECT_EQ(kiln::read_file(path), bytes);
}

TEST(ZipCheck, ACheckpointWithoutARecordKilnNeedsIsRefusedByName) {
  // Whole (every CRC-32 right) but without "position": LibTorch's error, named by the file.
  TempDir d;
  auto lc = kiln::load_checkpoint(tiny_checkpoint(d), torch::kCPU);
  torch::serialize::OutputArchive ar, m;
  lc.model->save(m);
  ar.write("model", m);
  ar.write("config", c10::IValue(lc.cfg.to_toml()));
  ar.write("norm", torch::tensor({0.5, 0.5}, torch::kFloat64));
  ar.save_to(d / "partial.pt");
  expect_error_containing([&] { kiln::load_checkpoint(d / "partial.pt", torch::kCPU); },
                          "partial.pt' does not hold what kiln expects of a checkpoint (");
  // Its configuration still reads (kiln eval and run sets need only that).
  EXPECT_NO_THROW(kiln::checkpoint_config(d / "partial.pt"));
  // A file that is no zip archive at all.
  kiln::test::write_bytes(d / "text.pt", std::vector<uint8_t>(100, 'x'));
  expect_error_containing([&] { kiln::checkpoint_config(d / "text.pt"); }, "text.pt': no zip directory at its end (truncated, or not a checkpoint)");
}
