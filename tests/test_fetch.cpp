#include <archive.h>
#include <archive_entry.h>

#include <filesystem>

#include "helpers.h"
#include "kiln/core/fs.h"
#include "kiln/data/dataset.h"
#include "kiln/data/fetch.h"

using namespace kiln;
using kiln::test::expect_error_containing;
using kiln::test::TempDir;

namespace {
// A tar.gz shaped like the official cifar-10-binary.tar.gz, with 3 records per file.
void write_fake_cifar_archive(const std::string& path) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  struct archive* a = archive_write_new();
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK) << archive_error_string(a);
  std::vector<std::string> names = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                    "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  for (auto& n : names) {
    std::vector<uint8_t> rec;
    for (int i = 0; i < 3; ++i) {
      rec.push_back(static_cast<uint8_t>(i));
      rec.insert(rec.end(), 3072, static_cast<uint8_t>(i * 9));
    }
    struct archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, ("cifar-10-batches-bin/" + n).c_str());
    archive_entry_set_size(e, static_cast<la_int64_t>(rec.size()));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    archive_write_header(a, e);
    archive_write_data(a, rec.data(), rec.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
}
}  // namespace

TEST(Fetch, DownloadsVerifiesAndExtractsFromAFileUrl) {
  TempDir d;
  write_fake_cifar_archive(d / "mirror/cifar-10-binary.tar.gz");
  auto spec = with_mirror(builtin_fetch_spec("cifar10"), "file://" + (d / "mirror"));
  EXPECT_EQ(spec.files[0].url, "file://" + (d / "mirror") + "/cifar-10-binary.tar.gz");
  spec.files[0].md5 = md5_file_hex(d / "mirror/cifar-10-binary.tar.gz");
  auto out = fetch_dataset(spec, d / "data", false);
  EXPECT_EQ(out, d / "data/cifar10");
  auto tt = load_dataset("cifar10", d / "data");
  EXPECT_EQ(tt.train.size(), 15);
  EXPECT_EQ(tt.test.size(), 3);
  // Only the finished folder is left in the data root.
  int entries = 0;
  for (auto& e : std::filesystem::directory_iterator(d / "data")) ++entries, (void)e;
  EXPECT_EQ(entries, 1);
  // A second fetch keeps what is there.
  EXPECT_NO_THROW(fetch_dataset(spec, d / "data", false));
}

TEST(Fetch, ChecksumMismatchLeavesNothingBehind) {
  TempDir d;
  write_fake_cifar_archive(d / "mirror/cifar-10-binary.tar.gz");
  auto spec = with_mirror(builtin_fetch_spec("cifar10"), "file://" + (d / "mirror"));  // official md5: mismatch
  expect_error_containing([&] { fetch_dataset(spec, d / "data", false); }, "checksum mismatch");
  EXPECT_TRUE(std::filesystem::is_empty(d / "data"));
}

TEST(Fetch, MissingFileIsADownloadError) {
  TempDir d;
  auto spec = with_mirror(builtin_fetch_spec("mnist"), "file://" + (d / "nowhere"));
  expect_error_containing([&] { fetch_dataset(spec, d / "data", false); }, "download of file://");
  EXPECT_FALSE(std::filesystem::exists(d / "data/mnist"));
  expect_error_containing([] { builtin_fetch_spec("imagenet"); }, "unknown dataset 'imagenet'");
}

TEST(Fetch, PlainFilesDatasetsAreMovedIntoPlace) {
  TempDir d;
  auto spec = builtin_fetch_spec("fashion-mnist");
  spec = with_mirror(spec, "file://" + (d / "m"));
  for (auto& f : spec.files) {
    auto name = f.url.substr(f.url.rfind('/') + 1);
    kiln::test::write_bytes(d / ("m/" + name), {1, 2, 3, static_cast<uint8_t>(name.size())});
    f.md5 = md5_file_hex(d / ("m/" + name));
  }
  fetch_dataset(spec, d / "data", false);
  EXPECT_TRUE(std::filesystem::exists(d / "data/fashion-mnist/t10k-labels-idx1-ubyte.gz"));
}
