#include "kiln/core/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"

namespace kiln {
namespace fs = std::filesystem;

Bytes read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  f.seekg(0, std::ios::end);
  auto n = static_cast<size_t>(f.tellg());
  f.seekg(0);
  Bytes b(n);
  if (n && !f.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n)))
    throw Error("cannot read '" + path + "'");
  return b;
}

bool is_gzip(const Bytes& b) { return b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

Bytes gunzip(const Bytes& gz, const std::string& what) {
  z_stream s{};
  if (inflateInit2(&s, 15 + 16) != Z_OK) throw Error("zlib: inflateInit failed for " + what);
  Bytes out;
  out.resize(gz.size() * 4 + 1024);
  s.next_in = const_cast<Bytef*>(gz.data());
  s.avail_in = static_cast<uInt>(gz.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (s.total_out == out.size()) out.resize(out.size() * 2);
    s.next_out = out.data() + s.total_out;
    s.avail_out = static_cast<uInt>(out.size() - s.total_out);
    rc = inflate(&s, Z_NO_FLUSH);
    if (rc == Z_BUF_ERROR && s.avail_in == 0) {
      inflateEnd(&s);
      throw Error("'" + what + "' is truncated: the gzip stream ends early");
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      std::string msg = s.msg ? s.msg : "unknown error";
      inflateEnd(&s);
      throw Error("'" + what + "' is not valid gzip data: " + msg);
    }
  }
  out.resize(s.total_out);
  inflateEnd(&s);
  return out;
}

Bytes read_maybe_gzip(const std::string& path) {
  Bytes b = read_file(path);
  return is_gzip(b) ? gunzip(b, path) : b;
}

static void fsync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void commit_file(const std::string& tmp, const std::string& path) {
  fsync_path(tmp);
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  auto dir = fs::path(path).parent_path();
  fsync_path(dir.empty() ? "." : dir.string());
}

void atomic_write(const std::string& path, const void* data, size_t size) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
    f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
    if (!f.flush()) throw Error("write to '" + tmp + "' failed (disk full?)");
  }
  commit_file(tmp, path);
}

void atomic_write(const std::string& path, const std::string& text) {
  atomic_write(path, text.data(), text.size());
}

static std::string digest_hex(const EVP_MD* md, const uint8_t* p, size_t n) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(p, n, out, &len, md, nullptr);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

std::string md5_hex(const Bytes& b) { return digest_hex(EVP_md5(), b.data(), b.size()); }
std::string sha256_hex(const Bytes& b) { return digest_hex(EVP_sha256(), b.data(), b.size()); }
std::string md5_file_hex(const std::string& path) { return md5_hex(read_file(path)); }

bool file_exists(const std::string& path) { return fs::is_regular_file(path); }
bool dir_exists(const std::string& path) { return fs::is_directory(path); }
void make_dirs(const std::string& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw Error("cannot create directory '" + path + "': " + ec.message());
}

static int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return ::remove(path); }

void remove_tree(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
    throw Error("cannot remove '" + path + "': " + std::strerror(errno));
}

}  // namespace kiln
