// libFuzzer entry point for kiln::fuzz::digits (fuzz/targets.h): the web page's digits file.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::digits(data, size);
  return 0;
}
