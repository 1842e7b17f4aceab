// libFuzzer entry point for kiln::fuzz::model (fuzz/targets.h): the runtime's .kiln parser.
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::fuzz::model(data, size);
  return 0;
}
