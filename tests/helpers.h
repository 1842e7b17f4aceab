// Shared test helpers: temporary directories, small files, the real-data location.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kiln/core/fs.h"

namespace kiln::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/kiln-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    kiln::remove_tree(path.string());
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// The real-data root ($KILN_DATA), or "" (the caller then skips, naming what it missed).
inline std::string real_data_root() {
  const char* e = std::getenv("KILN_DATA");
  return e ? e : "";
}

// Asserts that `fn` throws kiln::Error (or another std::exception) whose message holds `needle`.
template <class F>
void expect_error_containing(F fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message was: " << e.what();
  }
}

}  // namespace kiln::test
