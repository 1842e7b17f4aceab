// erff over a grid of floats, as the runtime's GELU calls it (erf(x / sqrt(2))), one bit pattern a
// line: built natively (glibc's libm) and with em++ (Emscripten's musl), the two outputs show
// where WebAssembly's erf is not glibc's (bench/results/wasm-erf-vs-glibc-2026-12-04-epyc.json).
//   g++ -O3 bench/wasm_erf.cpp -o erf && ./erf > native.txt
//   em++ -O3 -sSINGLE_FILE=1 -sENVIRONMENT=node bench/wasm_erf.cpp -o erf.js && node erf.js > wasm.txt
#include <cmath>
#include <cstdio>
#include <cstring>
#include <cstdint>
int main() {
  for (float x = -6.f; x < 6.f; x += 1.0f / 4096) { float e = std::erf(x / std::sqrt(2.f)); uint32_t a; std::memcpy(&a, &e, 4); std::printf("%08x\n", a); }
}
