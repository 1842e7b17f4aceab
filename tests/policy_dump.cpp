// A helper of tests/policy_vs_torchvision.py: applies kiln's augmentation operations
// (kiln/data/policy.h) to images given by Python, so that an independent implementation
// (torchvision's) can check them.
//   policy_dump IN.pt OUT.pt
// IN.pt: torch.save((images uint8 B x C x H x W, ops int64 K, magnitudes float K)).
// OUT.pt: K x B x C x H x W float, operation k at magnitude k applied to every image.
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <iterator>

#include "kiln/data/policy.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: policy_dump IN.pt OUT.pt\n";
    return 2;
  }
  std::ifstream f(argv[1], std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto t = torch::pickle_load(bytes).toTuple();
  auto x = t->elements()[0].toTensor().to(torch::kFloat32);
  auto ops = t->elements()[1].toTensor().to(torch::kInt64);
  auto mags = t->elements()[2].toTensor().to(torch::kFloat32);
  std::vector<torch::Tensor> out;
  for (int64_t k = 0; k < ops.size(0); ++k) {
    auto m = torch::full({x.size(0)}, mags[k].item<float>());
    out.push_back(kiln::apply_op(x, static_cast<kiln::PixelOp>(ops[k].item<int64_t>()), m, 128.0));
  }
  auto data = torch::pickle_save(torch::stack(out));
  std::ofstream o(argv[2], std::ios::binary);
  o.write(data.data(), static_cast<std::streamsize>(data.size()));
  return o ? 0 : 1;
}
