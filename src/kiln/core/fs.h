// File helpers: whole-file reads, gzip inflation, atomic writes, digests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace kiln {

using Bytes = std::vector<uint8_t>;

// Reads a whole file; throws kiln::Error naming the path when it cannot.
Bytes read_file(const std::string& path);
// True when the bytes start with the gzip magic (1f 8b).
bool is_gzip(const Bytes& b);
// Inflates a gzip stream; `what` names the source in error messages (truncation, bad data).
Bytes gunzip(const Bytes& gz, const std::string& what);
// read_file, then gunzip when the content is gzip (whatever the file's name).
Bytes read_maybe_gzip(const std::string& path);

// Writes `data` to `path` so that readers see either the old file or the whole new one:
// a temporary file in the same directory, fsync, then rename over the target.
void atomic_write(const std::string& path, const void* data, size_t size);
void atomic_write(const std::string& path, const std::string& text);
// Renames `tmp` over `path` after fsyncing it (for files written by other means).
void commit_file(const std::string& tmp, const std::string& path);

// An exclusive advisory lock (flock) on dir/.kiln.lock for this object's lifetime, so two
// processes never write one run directory; the second gets an error naming the holder's pid.
// The kernel drops the lock when the holder dies (kill -9 included).
class DirLock {
 public:
  explicit DirLock(const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  std::string path_;
  int fd_ = -1;
};

// MD5 (RFC 1321), fed in pieces: update() as often as needed, hex() at any point (it does not
// close the digest). Used to check downloads and a resumed run's inputs, not for security.
class Md5 {
 public:
  Md5& update(const void* data, size_t n);
  std::string hex() const;

 private:
  void block(const uint8_t* p);
  uint32_t h_[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  uint8_t buf_[64] = {};
  size_t held_ = 0;
  uint64_t total_ = 0;
};

std::string md5_hex(const Bytes& b);
std::string md5_file_hex(const std::string& path);

bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
void make_dirs(const std::string& path);
// Deletes a file or a directory tree; no error when it does not exist. (Not
// std::filesystem::remove_all: libtorch.so exports a copy of it that crashes when called
// from code linked against it, seen with torch 2.11.0 on Debian 12's libstdc++.)
void remove_tree(const std::string& path);

}  // namespace kiln
