// A helper of tests/cli_folder.sh: CIFAR-10 binary files as an image folder,
// OUT/{train,test}/<class>/<index>.png, either as they are (plain: 32 x 32 RGB) or mixed, as a
// user's own folder might be: each image enlarged (Catmull-Rom) to a random size of 40..96 px a
// side (each side drawn alone, so aspect ratios change), one in ten stored greyscale (ITU-R BT.601 luma), two
// in ten RGBA (opaque), the rest RGB.
// "jpeg": as they are, as JPEG quality 75 (stb_image_write), for loading-speed figures.
//   folder_from_cifar CIFAR_DIR OUT N_TRAIN N_TEST plain|mixed|jpeg
#include <stb/stb_image_resize.h>
#include <stb/stb_image_write.h>

#include <filesystem>
#include <iostream>
#include <random>

#include "kiln/data/dataset.h"
#include "kiln/data/folder.h"

namespace {
bool jpeg = false;

void write_png(const std::string& path, const torch::Tensor& chw) {
  auto hwc = chw.permute({1, 2, 0}).contiguous();
  const int h = static_cast<int>(hwc.size(0)), w = static_cast<int>(hwc.size(1)), c = static_cast<int>(hwc.size(2));
  const bool ok = jpeg ? stbi_write_jpg((path.substr(0, path.size() - 4) + ".jpg").c_str(), w, h, c, hwc.data_ptr<uint8_t>(), 75)
                       : stbi_write_png(path.c_str(), w, h, c, hwc.data_ptr<uint8_t>(), w * c);
  if (!ok) throw std::runtime_error("cannot write " + path);
}

// Enlarged as an image editor would (Catmull-Rom, stb_image_resize's default for enlarging).
torch::Tensor enlarge(const torch::Tensor& chw, int H, int W) {
  auto in = chw.permute({1, 2, 0}).contiguous();
  const int h = static_cast<int>(in.size(0)), w = static_cast<int>(in.size(1)), c = static_cast<int>(in.size(2));
  auto out = torch::empty({H, W, c}, torch::kUInt8);
  if (!stbir_resize(in.data_ptr<uint8_t>(), w, h, 0, out.data_ptr<uint8_t>(), W, H, 0, STBIR_TYPE_UINT8, c, STBIR_ALPHA_CHANNEL_NONE, 0,
                    STBIR_EDGE_CLAMP, STBIR_EDGE_CLAMP, STBIR_FILTER_CATMULLROM, STBIR_FILTER_CATMULLROM, STBIR_COLORSPACE_LINEAR, nullptr))
    throw std::runtime_error("resize failed");
  return out.permute({2, 0, 1}).contiguous();
}

void write_split(const kiln::Dataset& ds, int64_t n, const std::string& dir, bool mixed, std::mt19937& rng) {
  std::uniform_int_distribution<int> side(40, 96), kind(0, 9);
  for (auto& c : ds.classes) std::filesystem::create_directories(dir + "/" + c);
  for (int64_t i = 0; i < std::min(n, ds.size()); ++i) {
    auto img = ds.images[i];
    if (mixed) {
      const int H = side(rng), W = side(rng);
      img = enlarge(img, H, W);
      const int k = kind(rng);
      if (k == 0) {  // grey
        auto f = img.to(torch::kFloat32);
        img = (0.299 * f[0] + 0.587 * f[1] + 0.114 * f[2]).round().clamp(0, 255).to(torch::kUInt8).unsqueeze(0);
      } else if (k <= 2) {  // RGBA, opaque
        img = torch::cat({img, torch::full({1, img.size(1), img.size(2)}, 255, torch::kUInt8)});
      }
    }
    write_png(dir + "/" + ds.classes[static_cast<size_t>(ds.labels[i].item<int64_t>())] + "/" + std::to_string(i) + ".png", img);
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: folder_from_cifar CIFAR_ROOT OUT N_TRAIN N_TEST plain|mixed|jpeg\n";
    return 2;
  }
  try {
    auto tt = kiln::load_dataset("cifar10", argv[1]);
    const bool mixed = std::string(argv[5]) == "mixed";
    jpeg = std::string(argv[5]) == "jpeg";
    std::mt19937 rng(12345);
    write_split(tt.train, std::stoll(argv[3]), std::string(argv[2]) + "/train", mixed, rng);
    write_split(tt.test, std::stoll(argv[4]), std::string(argv[2]) + "/test", mixed, rng);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "folder_from_cifar: " << e.what() << "\n";
    return 1;
  }
}
