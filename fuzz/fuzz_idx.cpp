// libFuzzer entry point for kiln::fuzz::idx (fuzz/targets.h).
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::idx(data, size);
  return 0;
}
