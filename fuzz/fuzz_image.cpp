// libFuzzer entry point for kiln::fuzz::image (fuzz/targets.h).
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::image(data, size);
  return 0;
}
