// The 1989 reproduction's recipes and its batch-1 training loop, dependency-free (no LibTorch):
// `kiln lecun1989` (through zipcode.h) and the web page (web/kiln_web.cpp, compiled to
// WebAssembly) train with this same code.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kiln/lecun/net1989.h"

namespace kiln::lecun {

// 16x16 digits in [-1, 1] (row-major, 256 floats each) and their classes.
struct Digits {
  std::vector<float> x;
  std::vector<int> y;
  int size() const { return static_cast<int>(y.size()); }
  const float* image(int i) const { return x.data() + 256 * static_cast<size_t>(i); }
};

struct Recipe {
  std::string name;
  Variant variant;
  bool adamw = false;    // else plain SGD
  double lr = 0.03;      // SGD, or AdamW's start
  double lr_end = 0.03;  // AdamW: linear decay to this over the passes
  int passes = 23;
  bool shift = false;    // +-1 px wrap-around roll of the input, drawn per step
};
// The paper's setting, and the modern steps of the reference reproduction (cumulative).
Recipe classic_recipe();
std::vector<Recipe> modern_recipes();

// How many of `d` the net misclassifies (eval mode).
int count_misses(Net1989<float>& net, const Digits& d);

// One training run of a recipe from a fresh init (seed): batch size 1, the examples in their
// fixed order. Steps can be taken a few at a time (the web page trains between frames).
class Trainer1989 {
 public:
  Trainer1989(const Recipe& r, uint64_t seed);
  // One SGD/AdamW step on example i during pass `pass` (0-based); returns its loss.
  double step(const Digits& train, int i, int pass);
  // Fraction of `d` misclassified (eval mode); `misses` gets the count.
  double errors(const Digits& d, int& misses);
  Net1989<float> net;
  Recipe recipe;

 private:
  AdamW<float> adam_;
  Rng draws_;
  std::vector<uint8_t> keep_;
};

}  // namespace kiln::lecun

namespace kiln::lecun {

// The digits file the web page trains on (written by `kiln web`; docs/web.md): "KILNZIP1",
// then n_train and n_test (uint32, little-endian), then one label byte per digit (train
// first), then 256 bytes per digit, b = round((x + 1) * 127.5), so x = b / 127.5 - 1.
std::vector<uint8_t> encode_digits(const Digits& train, const Digits& test);
// Throws std::runtime_error naming `name` when the bytes are not such a file.
void decode_digits(const std::vector<uint8_t>& bytes, const std::string& name, Digits& train, Digits& test);

}  // namespace kiln::lecun
