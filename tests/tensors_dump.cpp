// A helper of tests/safetensors_read.py: a checkpoint's model tensors (the EMA weights when the
// run kept them, as kiln export takes them) written with LibTorch's own serialiser, so Python can
// compare kiln's safetensors files against an independent copy.
//   tensors_dump CHECKPOINT OUT.pt
#include <torch/torch.h>

#include <fstream>
#include <iostream>

#include "kiln/train/trainer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tensors_dump CHECKPOINT OUT.pt\n";
    return 2;
  }
  auto lc = kiln::load_checkpoint(argv[1], torch::kCPU);
  c10::Dict<std::string, torch::Tensor> d;
  for (auto& p : lc.model->named_parameters()) d.insert(p.key(), p.value().detach().to(torch::kFloat32));
  for (auto& b : lc.model->named_buffers()) d.insert(b.key(), b.value().detach());
  auto data = torch::pickle_save(c10::IValue(d));
  std::ofstream o(argv[2], std::ios::binary);
  o.write(data.data(), static_cast<std::streamsize>(data.size()));
  return o ? 0 : 1;
}
