// Writes a seed corpus for each fuzz target into the directory given: valid small inputs of
// every format (so the fuzzers start from the accepting paths) and a few broken ones.
#include <stb/stb_image_write.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "kiln/core/config.h"
#include "kiln/report/png.h"
#include "kiln/lecun/trainer1989.h"
#include "kiln/deploy/export.h"
#include "kiln/train/trainer.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

static void put(const fs::path& p, const Bytes& b) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}
static void be32(Bytes& b, uint32_t v) {
  for (int k = 3; k >= 0; --k) b.push_back(static_cast<uint8_t>(v >> (8 * k)));
}
static Bytes gzip(const Bytes& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  Bytes out(in.size() + 1024);
  z.next_in = const_cast<uint8_t*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: make_seeds DIR [CONFIG_DIR]\n";
    return 2;
  }
  fs::path dir = argv[1];
  // CIFAR-10: two records, and a truncated one.
  Bytes cifar;
  for (int r = 0; r < 2; ++r) {
    cifar.push_back(static_cast<uint8_t>(r * 7));
    for (int i = 0; i < 3072; ++i) cifar.push_back(static_cast<uint8_t>(i * (r + 3)));
  }
  put(dir / "cifar10/two-records.bin", cifar);
  put(dir / "cifar10/truncated.bin", Bytes(cifar.begin(), cifar.begin() + 4000));
  // IDX in the fuzz target's layout: 2 bytes giving the cut, then images, then labels.
  Bytes im, lb;
  be32(im, 2051), be32(im, 3), be32(im, 4), be32(im, 4);
  for (int i = 0; i < 48; ++i) im.push_back(static_cast<uint8_t>(i * 5));
  be32(lb, 2049), be32(lb, 3);
  for (uint8_t l : {1, 7, 9}) lb.push_back(l);
  Bytes joined = {static_cast<uint8_t>((im.size()) >> 8), static_cast<uint8_t>(im.size())};
  joined.insert(joined.end(), im.begin(), im.end());
  joined.insert(joined.end(), lb.begin(), lb.end());
  put(dir / "idx/plain.idx", joined);
  put(dir / "idx/gzip.idx.gz", gzip(joined));
  // Images: a PNG from kiln's own canvas, and a BMP header cut short.
  kiln::Canvas c(5, 4);
  c.set(1, 1, {200, 10, 10});
  put(dir / "image/tiny.png", c.png());
  put(dir / "image/cut.bmp", Bytes{'B', 'M', 0x46, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0, 0x28, 0, 0, 0});
  // A 4 x 3 JPEG (stb_image_write's) with an EXIF segment turning it clockwise (orientation 6,
  // big-endian TIFF), so the fuzzer starts from the EXIF parser's accepting path.
  Bytes jpg;
  uint8_t rgb[4 * 3 * 3];
  for (int i = 0; i < 4 * 3 * 3; ++i) rgb[i] = static_cast<uint8_t>(i * 7);
  stbi_write_jpg_to_func([](void* ctx, void* d, int n) {
    auto* o = static_cast<Bytes*>(ctx);
    o->insert(o->end(), static_cast<uint8_t*>(d), static_cast<uint8_t*>(d) + n);
  }, &jpg, 4, 3, 3, rgb, 90);
  const Bytes exif = {0xFF, 0xE1, 0, 34, 'E', 'x', 'i', 'f', 0, 0, 'M', 'M', 0, 42, 0, 0, 0, 8,
                      0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0};
  jpg.insert(jpg.begin() + 2, exif.begin(), exif.end());
  put(dir / "image/exif-turned.jpg", jpg);
  // The PNG with the same TIFF structure in an eXIf chunk after its IHDR (PNG's eXIf holds it
  // without "Exif\0\0"), its CRC-32 right, so the fuzzer starts from the PNG chunk walk's accepting path.
  {
    Bytes png = c.png();
    Bytes x = {0, 0, 0, static_cast<uint8_t>(exif.size() - 10), 'e', 'X', 'I', 'f'};
    x.insert(x.end(), exif.begin() + 10, exif.end());
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), x.data() + 4, static_cast<uInt>(x.size() - 4));
    x.insert(x.end(), {static_cast<uint8_t>(crc >> 24), static_cast<uint8_t>(crc >> 16), static_cast<uint8_t>(crc >> 8), static_cast<uint8_t>(crc)});
    png.insert(png.begin() + 33, x.begin(), x.end());
    put(dir / "image/exif-turned.png", png);
  }
  // The same JPEG with its AC Huffman table 0 relabelled AC 1 (one bit, as fuzz_image found it):
  // its scans use a table no segment defines, which kiln refuses before stb_image reads it.
  for (size_t p = 2; p + 4 <= jpg.size() && jpg[p] == 0xFF;) {
    const size_t len = size_t(jpg[p + 2]) << 8 | jpg[p + 3];
    if (jpg[p + 1] == 0xC4) {
      for (size_t q = p + 4; q + 17 <= p + 2 + len;) {
        size_t count = 0;
        for (int i = 1; i <= 16; ++i) count += jpg[q + i];
        if (jpg[q] == 0x10) jpg[q] = 0x11;
        q += 17 + count;
      }
    }
    p += 2 + len;
  }
  put(dir / "image/undefined-table.jpg", jpg);
  // Config: every preset, and a few overrides.
  fs::create_directories(dir / "config");
  if (argc > 2)
    for (auto& e : fs::directory_iterator(argv[2]))
      if (e.path().extension() == ".toml") fs::copy_file(e.path(), dir / "config" / e.path().filename(), fs::copy_options::overwrite_existing);
  std::string sets = "optim.lr=0.1\nmodel.widths=[8, 8, 8, 8]\nschedule.knots=[[0, 0], [1, 1]]\naug.flip=false\n";
  put(dir / "config/sets.txt", Bytes(sets.begin(), sets.end()));
  // Checkpoint: one step of a tiny run on random data.
  kiln::Config cfg;
  cfg.set("model.widths", "[4, 4, 4, 4]");
  cfg.set("data.batch_size", "8");
  cfg.set("schedule.epochs", "1");
  cfg.set("train.precision", "fp32");
  kiln::TrainTest tt;
  tt.train = {torch::randint(0, 255, {8, 3, 8, 8}).to(torch::kUInt8), torch::arange(8) % 10, {}};
  for (int k = 0; k < 10; ++k) tt.train.classes.push_back(std::to_string(k));
  tt.test = tt.train;
  kiln::RunOptions o;
  o.verbose = false;
  o.run_dir = (dir / "run").string();
  kiln::train(cfg, tt, o);
  fs::create_directories(dir / "checkpoint");
  fs::copy_file(dir / "run/checkpoint.pt", dir / "checkpoint/tiny.pt", fs::copy_options::overwrite_existing);
  // Model: the runtime's .kiln files (fp32, int8 and packed int4) of a tiny separable net.
  {
    kiln::LoadedCheckpoint lc;
    lc.cfg.set("model.name", "separable");
    lc.cfg.set("model.widths", "[4, 4]");
    lc.cfg.set("model.depth", "1");
    lc.model = kiln::make_model(lc.cfg, 1, 3);
    lc.mean = {100}, lc.std = {50};
    kiln::ExportInfo info{{1, 6, 6}, {"a", "b", "c"}};
    fs::create_directories(dir / "model");
    kiln::export_kiln(lc, info, (dir / "model/tiny.kiln").string(), false);
    kiln::export_kiln(lc, info, (dir / "model/tiny-int8.kiln").string(), true);
    info.grid = kiln::IntGrid(kiln::Granularity::kChannel, 4);  // 4-bit values, two to a byte (dtype 2)
    kiln::export_kiln(lc, info, (dir / "model/tiny-int4.kiln").string(), true);
    // ResNet-9 and airbench (the residual blocks, the whitenings, the max-pooled heads), on the
    // smallest images their pooling leaves a pixel of: 8 x 8 (8 -> 4 -> 2 -> 1), 16 x 16 (15 -> 7 -> 3 -> 1).
    for (const std::string net : {"resnet9", "airbench"}) {
      const bool r9 = net == "resnet9";
      kiln::LoadedCheckpoint r;
      r.cfg.set("model.name", net);
      r.cfg.set("model.widths", r9 ? "[2, 2, 2, 2]" : "[2, 2, 2]");
      r.cfg.set("model.whiten", r9 ? "3x3" : "2x2");
      if (!r9) r.cfg.set("model.whiten_bias_epochs", "1");
      r.cfg.set("eval.tta", r9 ? "flip" : "flip+translate");  // the runtime's test-time augmentation too
      r.model = kiln::make_model(r.cfg, 1, 3);
      r.mean = {100}, r.std = {50};
      const int64_t side = r9 ? 8 : 16;
      kiln::export_kiln(r, kiln::ExportInfo{{1, side, side}, {"a", "b", "c"}}, (dir / "model" / (net + ".kiln")).string(), false);
    }
  }
  // Digits: the web page's 1989 digits file (3 training digits, 2 test digits).
  {
    kiln::lecun::Digits train, test;
    for (int i = 0; i < 5; ++i) {
      auto& d = i < 3 ? train : test;
      d.y.push_back(i);
      for (int p = 0; p < 256; ++p) d.x.push_back(static_cast<float>((p * (i + 1)) % 256) / 127.5f - 1.f);
    }
    fs::create_directories(dir / "digits");
    auto b = kiln::lecun::encode_digits(train, test);
    put(dir / "digits/five.bin", b);
  }
  std::cout << "seeds in " << dir.string() << "\n";
  return 0;
}
