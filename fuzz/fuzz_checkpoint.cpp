// libFuzzer entry point: a checkpoint file (LibTorch's zip archive with kiln's entries) read as
// `kiln train --resume` and `kiln eval` read it: checkpoint_config, then load_checkpoint.
#include <string>

#include "kiln/core/error.h"
#include "kiln/train/trainer.h"
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kiln::fuzz::ScratchFile scratch("kiln-fuzz-checkpoint.pt");  // LibTorch reads checkpoints from files
  const std::string& path = scratch.path;
  scratch.write(data, size);
  try {
    auto cfg = kiln::checkpoint_config(path);
    auto lc = kiln::load_checkpoint(path, torch::kCPU);
    (void)cfg;
    (void)lc;
  } catch (const kiln::Error&) {
  }
  return 0;
}
