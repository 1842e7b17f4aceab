// Replays tests/fuzz_regressions/<target>/* through the fuzz targets' bodies (fuzz/targets.h)
// in the ordinary build: inputs the fuzzers found (or that were written by hand to pin down a
// hostile case) must be refused cleanly, for good, whatever the build.
#include <filesystem>

#include "../fuzz/targets.h"
#include "helpers.h"
#include "kiln/pixels/pixels.h"

namespace fs = std::filesystem;

namespace {
const std::string kDir = KILN_SOURCE_DIR "/tests/fuzz_regressions/";

int replay(const std::string& target, void (*fn)(const uint8_t*, size_t)) {
  int n = 0;
  if (!fs::exists(kDir + target)) return 0;
  for (auto& e : fs::directory_iterator(kDir + target)) {
    auto b = kiln::read_file(e.path().string());
    fn(b.data(), b.size());  // a crash or an escaping exception fails the test
    ++n;
  }
  return n;
}
// The folder loaders' header pass over a file (what stbi_info reads, checked first).
void px_header(const std::string& path) { kiln::px::header_of_file(path); }
}  // namespace

TEST(FuzzRegressions, EveryStoredInputIsRefusedCleanly) {
  int n = replay("cifar10", kiln::fuzz::cifar10) + replay("idx", kiln::fuzz::idx) + replay("image", kiln::fuzz::image) +
          replay("config", kiln::fuzz::config) + replay("model", kiln::fuzz::model) +
          replay("digits", kiln::fuzz::digits);
  EXPECT_GE(n, 10);
}

TEST(FuzzRegressions, HostileHeadersAreRefusedWithTheirReason) {
  kiln::test::expect_error_containing(
      [] { kiln::decode_image(kiln::read_file(kDir + "image/png-bomb-header.png"), "bomb.png"); }, "implausible size");
  // fuzz_image, 2026-12-04: a JPEG without DQT whose scan uses AC Huffman table 0, never defined
  // (a bit flipped in its DHT); Debian's stb_image crashed reading the table it never initialised.
  kiln::test::expect_error_containing(
      [] { kiln::decode_image(kiln::read_file(kDir + "image/undefined-tables-stb-crash.jpg"), "crash.jpg"); },
      "cannot decode image 'crash.jpg': a JPEG whose component 1 uses quantization table 0, which no DQT segment");
  // fuzz_image with stb_image instrumented (2026-12-04): DHT segments whose tables count more than
  // 256 codes, which stb_image 2.27 writes past its arrays (stb issue #1289): one before the frame
  // header (where stbi_info, the folder's header pass, already overflowed), one cut short by the
  // file's end (stb reads the counts before it notices).
  kiln::test::expect_error_containing(
      [] { kiln::decode_image(kiln::read_file(kDir + "image/dht-1039-codes-before-frame.jpg"), "dht.jpg"); },
      "cannot decode image 'dht.jpg': a JPEG whose DHT segment defines Huffman table DC 0 with 1039 codes, more than the 256");
  kiln::test::expect_error_containing(
      [] { px_header(kDir + "image/dht-1039-codes-before-frame.jpg"); }, "Huffman table DC 0 with 1039 codes");
  kiln::test::expect_error_containing(
      [] { kiln::decode_image(kiln::read_file(kDir + "image/dht-cut-short-past-256-codes.jpg"), "cut.jpg"); },
      "cannot decode image 'cut.jpg': a JPEG whose DHT segment defines Huffman table DC 0 with");
  // fuzz_checkpoint with its seed whole (2026-12-04): a checkpoint whose TorchScript code record
  // says "class Module(Mndule)" (one bit); LibTorch throws torch::jit::ErrorReport, not
  // c10::Error, which kiln reported as an internal error (exit 3). Since 2026-12-05 kiln checks
  // each record's CRC-32 first and refuses the file as damaged; the "-crc-fixed" copy, its CRC-32
  // rewritten to match, still reaches LibTorch's parser and its error.
  kiln::test::expect_error_containing([] { kiln::checkpoint_config(kDir + "checkpoint/torchscript-code-mutated.pt"); },
                                      "torchscript-code-mutated.pt' is damaged: its record 'archive/code/__torch__/___torch_mangle_21.py'");
  kiln::test::expect_error_containing([] { kiln::checkpoint_config(kDir + "checkpoint/torchscript-code-mutated-crc-fixed.pt"); },
                                      "torchscript-code-mutated-crc-fixed.pt' is not a readable kiln checkpoint (truncated or corrupt?)");
  auto b = kiln::read_file(kDir + "idx/huge-header.idx");
  kiln::Bytes im(b.begin() + 2, b.begin() + 2 + 16), lb(b.begin() + 18, b.end());
  kiln::test::expect_error_containing([&] { kiln::parse_idx(im, lb, "huge.idx", "l.idx"); }, "file has 16 bytes");
  kiln::lecun::Digits train, test;
  kiln::test::expect_error_containing(
      [&] { kiln::lecun::decode_digits(kiln::read_file(kDir + "digits/huge-counts.bin"), "d.bin", train, test); },
      "d.bin: 16 bytes, but a file of 2147483647 + 2147483647 digits has");
}
