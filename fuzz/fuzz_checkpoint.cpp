// libFuzzer entry point: a checkpoint file (LibTorch's zip archive with kiln's entries) read as
// `kiln train --resume` and `kiln eval` read it: checkpoint_config, then load_checkpoint.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "kiln/core/error.h"
#include "kiln/train/trainer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/kiln-fuzz-checkpoint-" + std::to_string(getpid()) + ".pt";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    auto cfg = kiln::checkpoint_config(path);
    auto lc = kiln::load_checkpoint(path, torch::kCPU);
    (void)cfg;
    (void)lc;
  } catch (const kiln::Error&) {
  }
  return 0;
}
