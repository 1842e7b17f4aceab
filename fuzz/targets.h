// The fuzz targets' bodies, shared by the libFuzzer binaries (fuzz/fuzz_*.cpp, built with
// -DKILN_FUZZ=ON and clang) and by the regression test that replays tests/fuzz_regressions/
// through the ordinary build (tests/test_fuzz_regressions.cpp). Each feeds outside input to one
// parser; a kiln::Error (a clean refusal) is the expected outcome for garbage, anything else
// (a crash, a sanitizer report, another exception type escaping) is a finding.
#pragma once
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/data/dataset.h"
#include "kiln/lecun/trainer1989.h"
#include "kiln/pixels/pixels.h"
#include "kiln/runtime/runtime.h"

namespace kiln::fuzz {

inline void cifar10(const uint8_t* d, size_t n) {
  try {
    auto ds = parse_cifar10_bin(Bytes(d, d + n), "fuzz.bin");
    (void)ds;
  } catch (const Error&) {
  }
}

// IDX: the input, gunzipped when it is gzip, split at a point given by its first two bytes
// into an image file and a label file.
inline void idx(const uint8_t* d, size_t n) {
  try {
    Bytes b(d, d + n);
    if (is_gzip(b)) b = gunzip(b, "fuzz.gz");
    if (b.size() < 2) return;
    size_t cut = 2 + ((size_t(b[0]) << 8 | b[1]) % (b.size() - 1));
    if (cut > b.size()) cut = b.size();
    Bytes im(b.begin() + 2, b.begin() + static_cast<std::ptrdiff_t>(cut)), lb(b.begin() + static_cast<std::ptrdiff_t>(cut), b.end());
    auto ds = parse_idx(im, lb, "fuzz-images.idx", "fuzz-labels.idx");
    (void)ds;
  } catch (const Error&) {
  }
}

// A file for inputs that parsers read from a path: $TMPDIR (or /tmp)/PID-`name`, one per process,
// removed when the process exits (a crash leaves it; libFuzzer's crash-* file holds the same bytes).
struct ScratchFile {
  std::string path;
  explicit ScratchFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() / (std::to_string(getpid()) + "-" + name)).string()) {}
  ~ScratchFile() { std::remove(path.c_str()); }
  void write(const uint8_t* d, size_t n) const {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) return;
    std::fwrite(d, 1, n, f);
    std::fclose(f);
  }
};

// An image file's bytes decoded (kiln predict, kiln-classify, the web page) and, written to a
// file, read by the folder loaders' header pass (px::header_of_file: what stbi_info reads).
inline void image(const uint8_t* d, size_t n) {
  try {
    auto t = decode_image(Bytes(d, d + n), "fuzz.png", n % 2 ? 3 : 0);
    (void)t;
  } catch (const Error&) {
  }
  static const ScratchFile file("kiln-fuzz-image.png");
  file.write(d, n);
  try {
    (void)px::header_of_file(file.path);
  } catch (const Error&) {
  }
}

// A preset's TOML, then each of its lines as a --set override.
inline void config(const uint8_t* d, size_t n) {
  std::string text(reinterpret_cast<const char*>(d), n);
  try {
    auto c = Config::from_toml_string(text, "fuzz.toml");
    (void)c.to_toml();
  } catch (const Error&) {
  }
  Config c;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    try {
      c.set_assignment(text.substr(start, end - start));
    } catch (const Error&) {
    }
    start = end + 1;
  }
}

// A .kiln model file as the dependency-free runtime reads it (it reports problems as
// std::runtime_error: the runtime has no kiln::Error). Twice when the file has a CRC-32
// (metadata crc32): as it is (the check refuses nearly every change), then with the CRC-32 set to
// what its bytes give, so that changes reach the parser and the network behind it (a hand-made
// or hostile file's CRC-32 can be right).
inline void model_once(const std::vector<uint8_t>& bytes) {
  try {
    auto m = kiln::rt::parse(bytes, "fuzz.kiln");
    // Then run it, as the web page runs a dropped file, where that stays quick: a small image
    // and few weights (the network's work grows with both).
    size_t weights = 0;
    for (auto& [name, t] : m.tensors) weights += t.data.size();
    if (m.channels * m.height * m.width <= 1024 && weights <= 4096) {
      std::vector<float> pixels(static_cast<size_t>(m.channels * m.height * m.width), 128.f);
      (void)m.predict(pixels.data());
    }
  } catch (const std::runtime_error&) {
  } catch (const std::invalid_argument&) {  // a malformed number in the metadata (std::stoll)
  } catch (const std::out_of_range&) {
  }
}
inline void model(const uint8_t* d, size_t n) {
  std::vector<uint8_t> bytes(d, d + n);
  model_once(bytes);
  if (kiln::rt::reseal(bytes) && !std::equal(bytes.begin(), bytes.end(), d)) model_once(bytes);
}

// The web page's 1989 digits file (kiln/lecun/trainer1989.h), as the page's WebAssembly reads it.
inline void digits(const uint8_t* d, size_t n) {
  try {
    kiln::lecun::Digits train, test;
    kiln::lecun::decode_digits(std::vector<uint8_t>(d, d + n), "fuzz-digits.bin", train, test);
  } catch (const std::runtime_error&) {
  }
}

}  // namespace kiln::fuzz
