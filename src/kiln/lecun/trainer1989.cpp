#include "kiln/lecun/trainer1989.h"

#include <cmath>
#include <cstring>
#include <stdexcept>

namespace kiln::lecun {

Recipe classic_recipe() { return Recipe{"LeCun 1989 (MSE, tanh, SGD 0.03, 23 passes)", Variant{}, false, 0.03, 0.03, 23, false}; }

std::vector<Recipe> modern_recipes() {
  std::vector<Recipe> rs;
  Recipe r = classic_recipe();
  r.name = "baseline as above";
  rs.push_back(r);
  r.name = "cross-entropy, no output tanh (SGD 0.01)";
  r.variant.cross_entropy = true;
  r.lr = r.lr_end = 0.01;
  rs.push_back(r);
  r.name = "AdamW 3e-4 -> 1e-4 (46 passes)";
  r.adamw = true;
  r.lr = 3e-4;
  r.lr_end = 1e-4;
  r.passes = 46;
  rs.push_back(r);
  r.name = "+-1 px shift augmentation (60 passes)";
  r.shift = true;
  r.passes = 60;
  rs.push_back(r);
  r.name = "ReLU, dropout 0.25 before H3 (80 passes)";
  r.variant.relu = true;
  r.variant.dropout = 0.25;
  r.passes = 80;
  rs.push_back(r);
  return rs;
}

Trainer1989::Trainer1989(const Recipe& r, uint64_t seed)
    : net(r.variant), recipe(r), draws_(seed ^ 0x5deece66dULL), keep_(192, 1) {
  Rng init_rng(seed);
  net.init(init_rng);
}

double Trainer1989::step(const Digits& train, int i, int pass) {
  double lr = recipe.lr;
  if (recipe.adamw && recipe.passes > 1) {
    double a = static_cast<double>(pass) / (recipe.passes - 1);
    lr = (1 - a) * recipe.lr + a * recipe.lr_end;
  }
  Draws d;
  if (recipe.shift) {
    d.shift_rows = static_cast<int>(draws_.next() % 3) - 1;
    d.shift_cols = static_cast<int>(draws_.next() % 3) - 1;
  }
  if (recipe.variant.dropout > 0) {
    for (auto& k : keep_) k = draws_.uniform() >= recipe.variant.dropout;
    d.keep = keep_.data();
  }
  double loss = net.step(train.image(i), train.y[static_cast<size_t>(i)], true, d);
  if (recipe.adamw) adam_.update(net.params, net.grads, lr);
  else sgd_update(net.params, net.grads, lr);
  return loss;
}

int count_misses(Net1989<float>& net, const Digits& d) {
  int misses = 0;
  for (int i = 0; i < d.size(); ++i) misses += net.predict(d.image(i)) != d.y[static_cast<size_t>(i)];
  return misses;
}

double Trainer1989::errors(const Digits& d, int& misses) {
  misses = count_misses(net, d);
  return d.size() ? static_cast<double>(misses) / d.size() : 0.0;
}

}  // namespace kiln::lecun

namespace kiln::lecun {

namespace {
constexpr char kMagic[9] = "KILNZIP1";
void put32(std::vector<uint8_t>& b, uint32_t v) {
  for (int k = 0; k < 4; ++k) b.push_back(static_cast<uint8_t>(v >> (8 * k)));
}
uint32_t get32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v |= uint32_t(b[at + static_cast<size_t>(k)]) << (8 * k);
  return v;
}
}  // namespace

std::vector<uint8_t> encode_digits(const Digits& train, const Digits& test) {
  std::vector<uint8_t> b(kMagic, kMagic + 8);
  put32(b, static_cast<uint32_t>(train.size()));
  put32(b, static_cast<uint32_t>(test.size()));
  for (const Digits* d : {&train, &test})
    for (int y : d->y) {
      if (y < 0 || y > 9) throw std::runtime_error("digit label " + std::to_string(y) + " is not 0-9");
      b.push_back(static_cast<uint8_t>(y));
    }
  for (const Digits* d : {&train, &test})
    for (float x : d->x) {
      double v = std::nearbyint((static_cast<double>(x) + 1.0) * 127.5);
      b.push_back(static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v));
    }
  return b;
}

void decode_digits(const std::vector<uint8_t>& b, const std::string& name, Digits& train, Digits& test) {
  if (b.size() < 16 || std::memcmp(b.data(), kMagic, 8) != 0)
    throw std::runtime_error(name + ": not a kiln digits file (it must start with KILNZIP1)");
  const uint64_t n_train = get32(b, 8), n_test = get32(b, 12), n = n_train + n_test;
  if (b.size() != 16 + n * 257)
    throw std::runtime_error(name + ": " + std::to_string(b.size()) + " bytes, but a file of " + std::to_string(n_train) +
                             " + " + std::to_string(n_test) + " digits has " + std::to_string(16 + n * 257));
  for (Digits* d : {&train, &test}) {
    d->x.clear();
    d->y.clear();
  }
  for (uint64_t i = 0; i < n; ++i) {
    int y = b[16 + i];
    if (y > 9) throw std::runtime_error(name + ": digit " + std::to_string(i) + " has label " + std::to_string(y));
    (i < n_train ? train : test).y.push_back(y);
  }
  const uint8_t* px = b.data() + 16 + n;
  for (uint64_t i = 0; i < n; ++i)
    for (int k = 0; k < 256; ++k) (i < n_train ? train : test).x.push_back(static_cast<float>(px[i * 256 + k] / 127.5 - 1.0));
}

}  // namespace kiln::lecun
