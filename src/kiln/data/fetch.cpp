#include "kiln/data/fetch.h"

#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"
#include "kiln/core/fs.h"

namespace kiln {
namespace fs = std::filesystem;

const FetchSpec& builtin_fetch_spec(const std::string& name) {
  static const std::vector<FetchSpec> specs = {
      {"cifar10",
       {{"https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530", true}},
       "cifar-10-batches-bin"},
      {"cifar100",
       {{"https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8", true}},
       "cifar-100-binary"},
      {"mnist",
       {{"https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", false},
        {"https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", false},
        {"https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", false},
        {"https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", false}},
       ""},
      {"fashion-mnist",
       {{"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d", false},
        {"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe", false},
        {"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79", false},
        {"http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310", false}},
       ""},
  };
  for (auto& s : specs)
    if (s.name == name) return s;
  throw Error("kiln data fetch: unknown dataset '" + name + "' (cifar10 | cifar100 | mnist | fashion-mnist)");
}

std::vector<std::string> fetchable_datasets() { return {"cifar10", "cifar100", "mnist", "fashion-mnist"}; }

FetchSpec with_mirror(FetchSpec spec, const std::string& mirror) {
  std::string base = mirror;
  while (!base.empty() && base.back() == '/') base.pop_back();
  for (auto& f : spec.files) f.url = base + f.url.substr(f.url.rfind('/'));
  return spec;
}

namespace {

size_t write_cb(char* p, size_t size, size_t n, void* user) {
  auto* f = static_cast<std::ofstream*>(user);
  f->write(p, static_cast<std::streamsize>(size * n));
  return f->good() ? size * n : 0;
}

void download(const std::string& url, const std::string& dest) {
  static const bool init = (curl_global_init(CURL_GLOBAL_DEFAULT) == 0);
  (void)init;
  std::ofstream f(dest, std::ios::binary);
  if (!f) throw Error("cannot write '" + dest + "'");
  CURL* c = curl_easy_init();
  if (!c) throw Error("libcurl: cannot create a handle");
  char err[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &f);
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  f.close();
  if (rc != CURLE_OK)
    throw Error("download of " + url + " failed: " + (err[0] ? std::string(err) : curl_easy_strerror(rc)));
}

void extract(const std::string& archive_path, const std::string& dest) {
  struct archive* a = archive_read_new();
  archive_read_support_filter_all(a);
  archive_read_support_format_all(a);
  if (archive_read_open_filename(a, archive_path.c_str(), 1 << 16) != ARCHIVE_OK) {
    std::string e = archive_error_string(a);
    archive_read_free(a);
    throw Error("cannot open archive '" + archive_path + "': " + e);
  }
  struct archive_entry* entry;
  int rc;
  while ((rc = archive_read_next_header(a, &entry)) == ARCHIVE_OK) {
    std::string name = archive_entry_pathname(entry);
    fs::path rel(name);
    bool unsafe = rel.is_absolute();
    for (auto& part : rel) unsafe |= part == "..";
    if (unsafe) {
      archive_read_free(a);
      throw Error("archive '" + archive_path + "' holds an unsafe path '" + name + "'");
    }
    auto out = fs::path(dest) / rel;
    if (archive_entry_filetype(entry) == AE_IFDIR) {
      fs::create_directories(out);
      continue;
    }
    if (archive_entry_filetype(entry) != AE_IFREG) continue;
    fs::create_directories(out.parent_path());
    std::ofstream f(out, std::ios::binary);
    const void* buf;
    size_t size;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(a, &buf, &size, &off)) == ARCHIVE_OK)
      f.write(static_cast<const char*>(buf), static_cast<std::streamsize>(size));
    if (r != ARCHIVE_EOF) {
      std::string e = archive_error_string(a);
      archive_read_free(a);
      throw Error("archive '" + archive_path + "' is damaged at '" + name + "': " + e);
    }
  }
  if (rc != ARCHIVE_EOF) {
    std::string e = archive_error_string(a) ? archive_error_string(a) : "unknown error";
    archive_read_free(a);
    throw Error("archive '" + archive_path + "' is damaged: " + e);
  }
  archive_read_free(a);
}

}  // namespace

std::string fetch_dataset(const FetchSpec& spec, const std::string& root, bool force,
                          const std::function<void(const std::string&)>& log) {
  auto say = [&](const std::string& s) {
    if (log) log(s);
  };
  auto final_dir = fs::path(root) / spec.name;
  if (fs::exists(final_dir) && !force) {
    say("'" + final_dir.string() + "' already exists; nothing to do (--force fetches again)");
    return final_dir.string();
  }
  make_dirs(root);
  auto tmp = fs::path(root) / (".kiln-fetch-" + spec.name + "-" + std::to_string(::getpid()));
  remove_tree(tmp.string());
  fs::create_directories(tmp / "unpacked");
  try {
    for (auto& f : spec.files) {
      auto file = f.url.substr(f.url.rfind('/') + 1);
      auto dl = tmp / file;
      say("downloading " + f.url);
      download(f.url, dl.string());
      auto md5 = md5_file_hex(dl.string());
      if (md5 != f.md5)
        throw Error("checksum mismatch for " + f.url + ": md5 " + md5 + ", expected " + f.md5 +
                    " (corrupt or not the official file); nothing was written");
      say("  md5 ok (" + md5 + ")");
      if (f.extract) extract(dl.string(), (tmp / "unpacked").string());
      else fs::rename(dl, tmp / "unpacked" / file);
      if (f.extract) remove_tree(dl.string());
    }
    auto src = spec.archive_dir.empty() ? tmp / "unpacked" : tmp / "unpacked" / spec.archive_dir;
    if (!fs::is_directory(src))
      throw Error("the archive for '" + spec.name + "' has no folder '" + spec.archive_dir + "'");
    if (fs::exists(final_dir)) remove_tree(final_dir.string());  // only with --force
    fs::rename(src, final_dir);
    remove_tree(tmp.string());
  } catch (...) {
    try {
      remove_tree(tmp.string());
    } catch (...) {
    }
    throw;
  }
  say("wrote " + final_dir.string());
  return final_dir.string();
}

}  // namespace kiln
