// `kiln data fetch`: downloads a dataset's official files (libcurl), checks their published
// md5, extracts archives (libarchive) and moves the finished folder into place with one
// rename, so the data root never holds half a dataset.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace kiln {

struct FetchFile {
  std::string url;
  std::string md5;     // published checksum of the downloaded file
  bool extract;        // an archive (tar.gz) to unpack, or a file kept as downloaded
};

struct FetchSpec {
  std::string name;        // folder under the data root: cifar10, cifar100, mnist, fashion-mnist
  std::vector<FetchFile> files;
  std::string archive_dir; // the folder inside the archive that becomes root/<name> ("" = the files themselves)
};

// The official sources of cifar10, cifar100, mnist and fashion-mnist.
const FetchSpec& builtin_fetch_spec(const std::string& name);
std::vector<std::string> fetchable_datasets();

// Replaces the directory part of every URL with `mirror` (e.g. file:///srv/mirror).
FetchSpec with_mirror(FetchSpec spec, const std::string& mirror);

// Fetches into root/<spec.name>; returns that path. Throws kiln::Error on a download
// failure or checksum mismatch, leaving nothing behind. An existing folder is kept unless
// `force`.
std::string fetch_dataset(const FetchSpec& spec, const std::string& root, bool force,
                          const std::function<void(const std::string&)>& log = {});

}  // namespace kiln
