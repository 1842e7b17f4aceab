// stb_image compiled into kiln from Debian's header (libstb-dev), in the sanitizer and fuzz build
// only (KILN_SANITIZE, CMakeLists.txt): there AddressSanitizer, UBSan and libFuzzer's coverage
// see inside the code that parses image files, which Debian's libstb (the same source, both
// 0.0~git20220908) hides from them in the ordinary build. Every format, as libstb has them, so
// tests that ask libstb what it decodes ask the same code; kiln itself hands it only PNG, JPEG
// and BMP (px::format_problem). The fuzzer found stb issue #1289 only once it saw in here.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
