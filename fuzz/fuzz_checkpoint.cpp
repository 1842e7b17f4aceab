// libFuzzer entry point: a checkpoint file (LibTorch's zip archive with kiln's entries) read as
// `kiln train --resume` and `kiln eval` read it: checkpoint_config, then load_checkpoint.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "kiln/core/error.h"
#include "kiln/train/trainer.h"

namespace {
// The file each input is written to (LibTorch reads checkpoints from files), one per process in
// $TMPDIR (or /tmp), removed when the fuzzer exits (a crash leaves it; its crash-* file holds the same bytes).
struct ScratchFile {
  std::string path = (std::filesystem::temp_directory_path() / ("kiln-fuzz-checkpoint-" + std::to_string(getpid()) + ".pt")).string();
  ~ScratchFile() { std::remove(path.c_str()); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const ScratchFile scratch;
  const std::string& path = scratch.path;
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
