// kiln-classify: the dependency-free runtime's command line (no LibTorch; stb decodes image files). Classifies the
// images of an IDX file (MNIST / Fashion-MNIST layout, uncompressed) or of a CIFAR-10 binary
// batch with a model from `kiln export --format kiln`, and prints the accuracy. Each image gets
// the run's test-time augmentation (the file's `tta`, as `kiln eval` applies it) unless --tta
// says otherwise (none | flip | flip+translate). --portable runs the convolutions' portable loops
// where the AVX2 ones would run, --plain their plain-array build (the same logits to the bit; for
// timing them). --threads N classifies N slices of the images at once (default 1: the runtime
// itself runs an image on one thread); the time is then the wall clock over all of them.
//   kiln-classify MODEL.kiln IMAGES-idx3-ubyte LABELS-idx1-ubyte [--limit N] [--tta MODE] [--portable|--plain] [--threads N]
//   kiln-classify MODEL.kiln test_batch.bin [--limit N] [--tta MODE] [--portable|--plain] [--threads N]
// Given image files instead (PNG, JPEG, BMP, any size), or folders (the images under each, at any
// depth, sorted by path, hidden ones passed over), it prints each one's classes as
// `kiln predict` does, the image prepared as kiln predict prepares it (tools/classify_files.h):
//   kiln-classify MODEL.kiln IMAGE... [--top K] [--json FILE] [--grey] [--tta MODE] [--portable|--plain] [--threads N]
// (--grey: colour images for a grey model made grey by BT.601 luma, as kiln predict --grey does;
// --threads N: N files at once.)
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "classify_files.h"
#include "kiln/pixels/image_files.h"
#include "kiln/pixels/pixels.h"
#include "kiln/runtime/runtime.h"

int main(int argc, char** argv) {
  try {
    std::vector<std::string> args(argv + 1, argv + argc);
    long limit = -1;
    std::string tta;  // empty: the file's
    // Takes "--name VALUE" out of args; false when absent.
    auto option = [&](const char* opt, std::string& value) {
      for (size_t i = 0; i + 1 < args.size(); ++i)
        if (args[i] == opt) {
          value = args[i + 1];
          args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
          return true;
        }
      return false;
    };
    // "--name N" with N a whole number from lo to hi, else an error naming the option and the value;
    // false when absent.
    auto count = [&](const char* opt, long lo, long hi, long& out) {
      std::string v;
      if (!option(opt, v)) return false;
      char* end = nullptr;
      errno = 0;
      const long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || errno == ERANGE || n < lo || n > hi)
        throw std::runtime_error(std::string(opt) + " " + v + ": give a whole number " +
                                 (hi == LONG_MAX ? std::to_string(lo) + " or more" : "from " + std::to_string(lo) + " to " + std::to_string(hi)));
      out = n;
      return true;
    };
    const bool limit_given = count("--limit", 1, LONG_MAX, limit);
    long threads = 1;
    count("--threads", 1, 1024, threads);
    option("--tta", tta);
    for (auto [flag, k] : {std::pair<const char*, kiln::rt::Kernels>{"--portable", kiln::rt::Kernels::kPortable}, {"--plain", kiln::rt::Kernels::kPlain}})
      if (auto it = std::find(args.begin(), args.end(), flag); it != args.end()) {
        kiln::rt::use_kernels(k);
        args.erase(it);
      }
    long top = 3;
    const bool top_given = count("--top", 1, LONG_MAX, top);
    std::string json;
    const bool json_given = option("--json", json);
    const auto grey_at = std::find(args.begin(), args.end(), "--grey");
    const bool grey = grey_at != args.end();
    if (grey) args.erase(grey_at);
    // Image files and folders (each read as the images under it, at any depth), or IDX / CIFAR files.
    const auto image_or_folder = [](const std::string& a) {
      std::error_code ec;
      return kiln::px::is_image_file(a) || std::filesystem::is_directory(a, ec);
    };
    const bool files = args.size() >= 2 && std::all_of(args.begin() + 1, args.end(), image_or_folder);
    if (!files && args.size() >= 2 && std::any_of(args.begin() + 1, args.end(), image_or_folder))
      throw std::runtime_error("'" + *std::find_if_not(args.begin() + 1, args.end(), image_or_folder) +
                               "' is not an image file (.png, .jpg, .jpeg, .bmp) or a folder, and image files cannot be mixed with IDX or CIFAR files");
    if (!files && args.size() != 2 && args.size() != 3) {
      std::fprintf(stderr, "usage: kiln-classify MODEL.kiln IMAGES-idx3-ubyte LABELS-idx1-ubyte [--limit N] [--tta none|flip|flip+translate] [--portable|--plain] [--threads N]\n"
                           "       kiln-classify MODEL.kiln cifar10_batch.bin [--limit N] [--tta none|flip|flip+translate] [--portable|--plain] [--threads N]\n"
                           "       kiln-classify MODEL.kiln IMAGE.png|jpg|jpeg|bmp|FOLDER... [--top K] [--json FILE] [--grey] [--tta none|flip|flip+translate] [--portable|--plain] [--threads N]\n");
      return 2;
    }
    if (files && limit_given) throw std::runtime_error("--limit is for IDX and CIFAR files, not image files");
    if (!files && (top_given || json_given || grey)) throw std::runtime_error("--top, --json and --grey are for image files (.png, .jpg, .jpeg, .bmp)");
    auto model = kiln::rt::load(args[0]);
    if (!tta.empty()) model.tta = tta;
    const int64_t views = model.views();  // refuses an unknown --tta before any work
    if (files) {
      kiln::px::PassedOver passed;
      const auto images = kiln::px::expand_folders({args.begin() + 1, args.end()}, passed);
      if (!passed.empty()) std::fprintf(stderr, "note: %s\n", passed.text().c_str());
      return kiln::tools::classify_files(model, args[0], images, top, json, grey, threads);
    }
    const size_t pix = static_cast<size_t>(model.channels * model.height * model.width);
    std::vector<std::vector<float>> images;
    std::vector<int> labels;
    if (args.size() == 3) {
      auto im = kiln::rt::read_bytes(args[1]), lb = kiln::rt::read_bytes(args[2]);
      if (kiln::rt::big_endian_u32(im, 0, args[1]) != 2051 || kiln::rt::big_endian_u32(lb, 0, args[2]) != 2049)
        throw std::runtime_error("not IDX image/label files (magic numbers)");
      const uint32_t n = kiln::rt::big_endian_u32(im, 4, args[1]), h = kiln::rt::big_endian_u32(im, 8, args[1]),
                     w = kiln::rt::big_endian_u32(im, 12, args[1]);
      if (kiln::rt::big_endian_u32(lb, 4, args[2]) != n) throw std::runtime_error("image and label counts differ");
      if (int64_t(h) != model.height || int64_t(w) != model.width || model.channels != 1)
        throw std::runtime_error("the model expects " + std::to_string(model.channels) + "x" + std::to_string(model.height) + "x" +
                                 std::to_string(model.width) + " images");
      if (im.size() < 16 + size_t(n) * h * w || lb.size() < 8 + size_t(n)) throw std::runtime_error("truncated IDX data");
      for (uint32_t i = 0; i < n; ++i) {
        images.emplace_back(im.begin() + 16 + long(i) * h * w, im.begin() + 16 + long(i + 1) * h * w);
        labels.push_back(lb[8 + i]);
      }
    } else {
      auto b = kiln::rt::read_bytes(args[1]);
      const size_t rec = 1 + pix;
      if (b.size() % rec != 0) throw std::runtime_error("not a CIFAR binary batch for this model's image size");
      for (size_t at = 0; at < b.size(); at += rec) {
        labels.push_back(b[at]);
        images.emplace_back(b.begin() + long(at) + 1, b.begin() + long(at + rec));
      }
    }
    size_t n = images.size();
    if (limit >= 0 && size_t(limit) < n) n = size_t(limit);
    // Thread t classifies images [n t / T, n (t + 1) / T); predict() is const and shares nothing.
    std::vector<size_t> right(static_cast<size_t>(threads), 0);
    std::vector<std::string> failed(static_cast<size_t>(threads));
    auto slice = [&](size_t t) {
      try {
        for (size_t i = n * t / size_t(threads); i < n * (t + 1) / size_t(threads); ++i)
          right[t] += model.classify(images[i].data()) == labels[i];
      } catch (const std::exception& e) {
        failed[t] = e.what();
      }
    };
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> pool;
    for (size_t t = 1; t < size_t(threads); ++t) pool.emplace_back(slice, t);
    slice(0);
    for (auto& th : pool) th.join();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto& f : failed)
      if (!f.empty()) throw std::runtime_error(f);
    size_t total = 0;
    for (size_t r : right) total += r;
    const std::string who = threads == 1 ? "one thread" : std::to_string(threads) + " threads, wall clock";
    std::printf("accuracy %.4f (%zu of %zu) with %s weights, tta %s (%lld network pass%s an image); %.2f ms per image (%s, this runtime, %s loops); %s\n",
                double(total) / double(n), total, n,
                !model.int8 ? "fp32" : model.meta.count("int8_grid") ? model.meta.at("int8_grid").c_str() : "int8", model.tta.c_str(),
                static_cast<long long>(views), views == 1 ? "" : "es", 1e3 * s / double(n), who.c_str(), kiln::rt::kernels(),
                kiln::rt::integrity(model).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kiln-classify: error: %s\n", e.what());
    return 2;
  }
}
