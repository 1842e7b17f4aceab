// libFuzzer entry point for kiln::fuzz::cifar10 (fuzz/targets.h).
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::cifar10(data, size);
  return 0;
}
