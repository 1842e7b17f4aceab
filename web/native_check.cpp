// kiln-web-check: web/kiln_web.cpp compiled natively, driven the way the page's test mode
// drives its WebAssembly build; prints one JSON object (the reference the browser and node
// results are compared with: tests/cli_web.sh).
//   kiln-web-check MODEL.kiln IMAGES-idx3-ubyte INDEX DIGITS.bin RECIPE PASSES SEED   (PASSES 0: no training, DIGITS.bin unread)
// IMAGES may also be a CIFAR binary batch (records of a label byte then C x H x W planar bytes).
#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/runtime/runtime.h"
#include "kiln_web.h"

namespace {
void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + kw_error());
}
}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc != 8) {
      std::fprintf(stderr, "usage: kiln-web-check MODEL.kiln IMAGES-idx3-ubyte INDEX DIGITS.bin RECIPE PASSES SEED\n");
      return 2;
    }
    auto model = kiln::rt::read_bytes(argv[1]), im = kiln::rt::read_bytes(argv[2]);
    check(kw_model_load(model.data(), static_cast<int>(model.size())), "model");
    const size_t k = std::stoul(argv[3]);
    // The model's input size: an IDX file's images must have it; a CIFAR record holds it.
    const auto parsed = kiln::rt::parse(model, argv[1]);
    const size_t px = static_cast<size_t>(parsed.channels * parsed.height * parsed.width);
    size_t at = 0;  // where image k's bytes begin
    if (im.size() >= 16 && kiln::rt::big_endian_u32(im, 0, argv[2]) == 2051) {
      const uint32_t n = kiln::rt::big_endian_u32(im, 4, argv[2]), h = kiln::rt::big_endian_u32(im, 8, argv[2]),
                     w = kiln::rt::big_endian_u32(im, 12, argv[2]);
      if (size_t(h) * w != px) throw std::runtime_error(std::string(argv[2]) + ": its images are not the model's size");
      if (k >= n || im.size() < 16 + size_t(n) * h * w) throw std::runtime_error("no image " + std::to_string(k));
      at = 16 + k * px;
    } else {
      if (im.size() % (1 + px) != 0) throw std::runtime_error(std::string(argv[2]) + ": neither IDX images nor a CIFAR batch for this model's input");
      if (k >= im.size() / (1 + px)) throw std::runtime_error("no image " + std::to_string(k));
      at = k * (1 + px) + 1;
    }
    const int classes = kw_model_classes();
    float* in = kw_model_input();
    for (size_t i = 0; i < px; ++i) in[i] = im[at + i];
    const float* z = kw_model_predict();
    if (!z) throw std::runtime_error(std::string("predict: ") + kw_error());
    int label = 0;
    std::string logits = "[";
    for (int c = 0; c < classes; ++c) {
      if (z[c] > z[label]) label = c;
      char buf[32];
      std::snprintf(buf, sizeof buf, "%s%.9g", c ? "," : "", static_cast<double>(z[c]));
      logits += buf;
    }
    logits += "]";
    const int recipe = std::stoi(argv[5]), passes = std::stoi(argv[6]);
    auto t0 = std::chrono::steady_clock::now();
    if (passes > 0) {  // 0: classify only (DIGITS.bin is not read)
      const auto digits = kiln::rt::read_bytes(argv[4]);
      check(kw_zip_load(digits.data(), static_cast<int>(digits.size())), "digits");
      check(kw_zip_start(recipe, std::stoi(argv[7]), passes), "start");
      for (int taken; (taken = kw_zip_train(500)) > 0;) {
      }
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("{\"runner\":\"native\",\"info\":%s,\"label\":%d,\"logits\":%s,\"recipe\":\"%s\",\"metrics\":%s,\"wall_seconds\":%.3f}\n",
                kw_model_info(), label, logits.c_str(), kw_zip_recipe_name(recipe), kw_zip_metrics(), wall);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln-web-check: error: %s\n", e.what());
    return 1;
  }
}
