#include "kiln/core/fs.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kiln/build_info.h"
#if KILN_HAVE_ZLIB
#include <zlib.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "kiln/core/error.h"

namespace kiln {
namespace fs = std::filesystem;

Bytes read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("'" + path + "' is not a regular file" + (S_ISDIR(st.st_mode) ? " (it is a directory)" : ""));
  }
  Bytes b(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < b.size()) {
    ssize_t n = ::read(fd, b.data() + done, b.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : 0;
      ::close(fd);
      throw Error("cannot read '" + path + "'" + (err ? std::string(": ") + std::strerror(err) : ": it shrank while being read"));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return b;
}

bool is_gzip(const Bytes& b) { return b.size() >= 2 && b[0] == 0x1f && b[1] == 0x8b; }

Bytes gunzip(const Bytes& gz, const std::string& what) {
#if !KILN_HAVE_ZLIB
  throw Error("'" + what + "' is gzip-compressed and this kiln was built without zlib: gunzip it first");
#else
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
#endif
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
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write '" + tmp + "': " + std::strerror(errno));
  const char* p = static_cast<const char*>(data);
  size_t left = size;
  // Fault injection for the crash tests (tests/cli_crash.sh): with KILN_FAULT_KILL_AT_WRITE=N
  // the process SIGKILLs itself halfway through its Nth atomic write.
  static const long kill_at = [] {
    const char* e = std::getenv("KILN_FAULT_KILL_AT_WRITE");
    return e ? std::atol(e) : 0L;
  }();
  static long writes = 0;
  if (kill_at > 0 && ++writes == kill_at) {
    (void)!::write(fd, p, size / 2);
    ::fsync(fd);
    ::raise(SIGKILL);
  }
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : ENOSPC;
      ::close(fd);
      ::unlink(tmp.c_str());  // nothing half-written stays behind; `path` is untouched
      throw Error("writing '" + path + "' failed: " + std::strerror(err) + " (disk full or file-size limit?); the previous version is kept");
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    throw Error("writing '" + path + "' failed: " + std::strerror(err) + "; the previous version is kept");
  }
  try {
    commit_file(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

DirLock::DirLock(const std::string& dir) : path_(dir + "/.kiln.lock") {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error("cannot create the lock file '" + path_ + "': " + std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {0};
    ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    ::close(fd_);
    fd_ = -1;
    throw Error("another kiln process is writing to '" + dir + "'" +
                (n > 0 ? " (pid " + std::string(buf, static_cast<size_t>(n)) + ")" : std::string()) +
                "; two runs in one directory are refused: wait for it, or use another --out");
  }
  std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

DirLock::~DirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock; the file stays (harmless, and racy to delete)
}

void atomic_write(const std::string& path, const std::string& text) {
  atomic_write(path, text.data(), text.size());
}

// MD5 as specified in RFC 1321: downloads against their published checksums, and the inputs a
// resumed run must find unchanged (a student's teacher and unlabeled folder). Not for security.
namespace {
const uint32_t kMd5Shifts[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
}  // namespace

void Md5::block(const uint8_t* p) {
  static const auto K = [] {
    std::array<uint32_t, 64> k{};
    for (int i = 0; i < 64; ++i) k[i] = static_cast<uint32_t>(std::floor(std::fabs(std::sin(i + 1.0)) * 4294967296.0));
    return k;
  }();
  auto rotl = [](uint32_t x, uint32_t c) { return (x << c) | (x >> (32 - c)); };
  uint32_t w[16];
  for (int i = 0; i < 16; ++i)
    w[i] = uint32_t(p[4 * i]) | uint32_t(p[4 * i + 1]) << 8 | uint32_t(p[4 * i + 2]) << 16 | uint32_t(p[4 * i + 3]) << 24;
  uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3];
  for (uint32_t i = 0; i < 64; ++i) {
    uint32_t f, g;
    if (i < 16) f = (b & c) | (~b & d), g = i;
    else if (i < 32) f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
    else if (i < 48) f = b ^ c ^ d, g = (3 * i + 5) % 16;
    else f = c ^ (b | ~d), g = (7 * i) % 16;
    uint32_t t = d;
    d = c;
    c = b;
    b = b + rotl(a + f + K[i] + w[g], kMd5Shifts[i]);
    a = t;
  }
  h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d;
}

Md5& Md5::update(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  total_ += n;
  while (n > 0) {
    if (held_ == 0 && n >= 64) {  // whole blocks straight from the caller's memory
      block(p);
      p += 64, n -= 64;
      continue;
    }
    const size_t take = std::min(n, size_t(64) - held_);
    std::memcpy(buf_ + held_, p, take);
    held_ += take, p += take, n -= take;
    if (held_ == 64) block(buf_), held_ = 0;
  }
  return *this;
}

std::string Md5::hex() const {
  Md5 m = *this;  // padding is added to a copy: hex() leaves this one open to more updates
  const uint64_t bits = static_cast<uint64_t>(total_) * 8;
  uint8_t pad[72] = {0x80};
  const size_t zeros = (m.held_ < 56 ? 56 : 120) - m.held_;
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (8 * i));
  m.update(pad, zeros);
  m.update(len, 8);
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint32_t v : m.h_)
    for (int i = 0; i < 4; ++i) {
      uint8_t byte = static_cast<uint8_t>(v >> (8 * i));
      out += digits[byte >> 4];
      out += digits[byte & 15];
    }
  return out;
}

std::string md5_hex(const Bytes& msg) { return Md5().update(msg.data(), msg.size()).hex(); }

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
