// Shared test helpers: temporary directories, small files, the real-data location.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "kiln/core/fs.h"
#include "kiln/data/dataset.h"
#include "kiln/pixels/pixels.h"
#include "kiln/train/trainer.h"

namespace kiln::test {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    char tmpl[] = "/tmp/kiln-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    kiln::remove_tree(path.string());
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A file's bytes (a test fixture's), the test failing where it cannot be opened.
inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << path;
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

// The picture of the lossless image fixtures (tests/webp/, tests/heif/; tests/fixture_pictures.py
// writes it): colour (30 x + 7, 40 y + 3, 11 x y) mod 256 at (x, y), and alpha (20 + 30 x + 5 y)
// mod 256 where there is one; row-major, interleaved.
inline std::vector<uint8_t> fixture_picture(int w, int h, bool alpha) {
  std::vector<uint8_t> b;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      b.insert(b.end(), {static_cast<uint8_t>(30 * x + 7), static_cast<uint8_t>(40 * y + 3), static_cast<uint8_t>(11 * x * y % 256)});
      if (alpha) b.push_back(static_cast<uint8_t>((20 + 30 * x + 5 * y) % 256));
    }
  return b;
}

// A decoded image has `c` channels, h x w pixels and exactly `data`; `what` names it in failures.
inline void expect_image(const px::Image& img, int64_t c, int64_t h, int64_t w, const std::vector<uint8_t>& data, const std::string& what) {
  EXPECT_EQ(img.c, c) << what;
  EXPECT_EQ(img.h, h) << what;
  EXPECT_EQ(img.w, w) << what;
  EXPECT_EQ(img.data, data) << what;
}

// The real-data root ($KILN_DATA), or "" (the caller then skips, naming what it missed).
inline std::string real_data_root() {
  const char* e = std::getenv("KILN_DATA");
  return e ? e : "";
}

// Asserts that `fn` throws kiln::Error (or another std::exception) whose message holds `needle`.
template <class F>
void expect_error_containing(F fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an error containing '" << needle << "'";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message was: " << e.what();
  }
}

// Training-test helpers.
// A learnable synthetic set: class c is a bright 4x4 square at a class-specific place, in noise.
inline TrainTest synthetic(int64_t n_train, int64_t n_test, int64_t size = 16) {
  torch::manual_seed(123);
  auto make = [&](int64_t n) {
    auto x = torch::randint(0, 100, {n, 3, size, size}).to(torch::kUInt8);
    auto y = torch::arange(n) % 10;
    for (int64_t i = 0; i < n; ++i) {
      int64_t c = y[i].item<int64_t>(), r = (c / 4) * 4 + 1, col = (c % 4) * 3 + 1;
      x[i].slice(1, r, r + 4).slice(2, col, col + 4).fill_(250);
    }
    std::vector<std::string> classes;
    for (int c = 0; c < 10; ++c) classes.push_back("c" + std::to_string(c));
    return Dataset{x, y, classes};
  };
  TrainTest tt;
  tt.train = make(n_train);
  tt.test = make(n_test);
  tt.name = "synthetic";
  return tt;
}

// For the synthetic set, whose class is where its square is: no translation, flip or cutout.
inline void no_augmentation(Config& c) {
  c.set("aug.pad", "0");
  c.set("aug.flip", "false");
  c.set("aug.cutout", "0");
}

// A tiny ResNet-9 (8/16/16/32) for the synthetic set: batches of 64, 2 epochs, the
// piecewise-linear LR up for 30% then down, pad 2 + flip + cutout 4, label smoothing 0.1, fp32.
inline Config tiny_config() {
  Config c;
  c.set("model.widths", "[8, 16, 16, 32]");
  c.set("data.batch_size", "64");
  c.set("data.test_batch_size", "100");
  c.set("schedule.epochs", "2");
  c.set("schedule.knot_unit", "fraction");
  c.set("schedule.knots", "[[0, 0], [0.3, 1], [1, 0]]");
  c.set("optim.lr", "0.002");
  c.set("optim.weight_decay", "0.1");
  c.set("aug.pad", "2");
  c.set("aug.cutout", "4");
  c.set("optim.label_smoothing", "0.1");
  c.set("train.precision", "fp32");
  return c;
}

// Adam at `lr` on the mean loss, without weight decay, in fp32.
inline void plain_adam(Config& c, const std::string& lr) {
  c.set("optim.name", "adam");
  c.set("optim.lr", lr);
  c.set("optim.loss_reduction", "mean");
  c.set("optim.weight_decay", "0");
  c.set("train.precision", "fp32");
}

inline RunOptions quiet_options(const std::string& dir = "") {
  RunOptions o;
  o.verbose = false;
  o.run_dir = dir;
  return o;
}

inline std::vector<nlohmann::json> read_metrics(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream f(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// The numbers of a run, without the wall-clock fields.
inline std::vector<nlohmann::json> without_times(std::vector<nlohmann::json> ms) {
  for (auto& m : ms)
    for (auto k : {"epoch_seconds", "eval_seconds", "images_per_s", "train_seconds", "live_allocations", "live_bytes"})
      m.erase(k);
  return ms;
}

// Exact resume, the one check every trick's state must pass: `cfg` is stopped after each of
// `stops` steps (as Ctrl-C stops a run: a checkpoint at that step) in root/cut<N>, resumed,
// and must then equal the uninterrupted run exactly: the same metrics (wall-clock fields
// aside), the same final test accuracy and bit-identical final weights (the EMA's, when the
// run keeps one). The uninterrupted run is the one in `full_dir`, or is trained in root/full.
inline void expect_exact_resume(const Config& cfg, const TrainTest& tt, const std::string& root,
                                const std::vector<int64_t>& stops, const std::string& what = "",
                                std::string full_dir = "") {
  if (full_dir.empty()) {
    full_dir = root + "/full";
    ASSERT_FALSE(train(cfg, tt, quiet_options(full_dir)).interrupted) << what;
  }
  const auto full = without_times(read_metrics(full_dir));
  const double full_acc = nlohmann::json::parse(read_file(full_dir + "/final.json"))["final_test_acc"].get<double>();
  const auto full_weights = load_checkpoint(full_dir + "/checkpoint.pt", torch::kCPU).model->named_parameters();
  for (int64_t stop_at : stops) {
    const std::string dir = root + "/cut" + std::to_string(stop_at), at = what + ", stopped after step " + std::to_string(stop_at);
    auto o = quiet_options(dir);
    o.stop_after_steps = stop_at;
    ASSERT_TRUE(train(cfg, tt, o).interrupted) << at << ": the run ended before that step";
    auto rest = resume(tt, quiet_options(dir));
    ASSERT_FALSE(rest.interrupted) << at;
    EXPECT_EQ(without_times(read_metrics(dir)), full) << at;
    EXPECT_EQ(rest.final_test_acc, full_acc) << at;
    const auto weights = load_checkpoint(dir + "/checkpoint.pt", torch::kCPU).model->named_parameters();
    ASSERT_EQ(weights.size(), full_weights.size()) << at;
    for (size_t i = 0; i < weights.size(); ++i)
      EXPECT_TRUE(torch::equal(weights[i].value(), full_weights[i].value())) << at << ": " << weights[i].key() << " differs";
  }
}

// A narrow airbench preset on the 16x16 synthetic set: widths 8/16/16, batches of 64 (8 steps
// per epoch of 512), 200 whitening images, fp32.
inline Config tiny_airbench(const std::string& name = "cifar10-94") {
  Config c = Config::from_file(find_preset(name));
  c.set("model.widths", "[8, 16, 16]");
  c.set("data.batch_size", "64");
  c.set("data.test_batch_size", "100");
  c.set("model.whiten_samples", "200");
  c.set("train.precision", "fp32");
  return c;
}

// tiny_airbench with three convs a group, 2 epochs, in bf16 with train.fused_cpu = fused: a run
// whose fused and plain evaluations round differently (in fp32 they agree to the bit), for the
// tests that a checkpoint's readers predict as its run did.
inline Config tiny_bf16_airbench(bool fused) {
  Config c = tiny_airbench();
  c.set("model.convs_per_group", "3");
  c.set("schedule.epochs", "2");
  c.set("train.precision", "bf16");
  c.set("train.fused_cpu", fused ? "true" : "false");
  return c;
}

// The separable network of issue #8, narrow (8/16/32, two blocks a stage).
inline Config separable_config() {
  Config c;
  c.set("model.name", "separable");
  c.set("model.widths", "[8, 16, 32]");
  c.set("model.depth", "2");
  return c;
}

// A preset shrunk for the 16x16 synthetic set: fp32, batches of `batch`, `epochs` epochs, 100
// whitening images, and narrow widths for its model (airbench 8/16/16 with the whitening bias
// trained for 1 epoch; ResNet-9 8/16/16/32; others as they are).
inline Config shrunk_preset(const std::string& preset, const std::string& batch, const std::string& epochs) {
  Config c = Config::from_file(find_preset(preset));
  c.set("data.batch_size", batch);
  c.set("data.test_batch_size", "100");
  c.set("train.precision", "fp32");
  c.set("schedule.epochs", epochs);
  c.set("model.whiten_samples", "100");
  if (c.s("model.name") == "airbench") {
    c.set("model.widths", "[8, 16, 16]");
    c.set("model.whiten_bias_epochs", "1");
  } else if (c.s("model.name") == "resnet9") {
    c.set("model.widths", "[8, 16, 16, 32]");
  }
  return c;
}

// |a - b| within 2e-4 (relative above 1), or within 3x the noise floor: how far the eager path
// lands from itself when only rounding changes (the largest of the noise runs given: the order of
// its floating-point sums, one thread instead of two; its learning rate one ulp away). Muon's
// orthogonalised steps keep their size as the gradients shrink at the end of the schedule, so
// rounding noise grows there into visible differences (1e-3 in the weights after 20 steps of the
// tiny cifar10-94-muon); a bug in the twin would show far above that floor, and from the first epoch.
inline void expect_close_runs(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b,
                              const std::vector<std::vector<nlohmann::json>>& noise_runs, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (const auto& noise : noise_runs) ASSERT_EQ(a.size(), noise.size()) << what;
  for (size_t i = 0; i < a.size(); ++i)
    for (auto k : {"train_loss", "test_loss", "train_acc", "test_acc", "lr"}) {
      const double x = a[i][k].get<double>();
      double floor = 0;
      for (const auto& noise : noise_runs) floor = std::max(floor, std::abs(noise[i][k].get<double>() - x));
      EXPECT_NEAR(x, b[i][k].get<double>(), std::max(2e-4 * std::max(1.0, std::abs(x)), 3 * floor))
          << what << " epoch " << i + 1 << " " << k << " (eager's own noise " << floor << ")";
    }
}
inline void expect_close_runs(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b,
                              const std::vector<nlohmann::json>& noise, const std::string& what) {
  expect_close_runs(a, b, std::vector<std::vector<nlohmann::json>>{noise}, what);
}


// The CRC-32 of zip and PNG by its definition, one bit at a time (ISO 3309: reflected polynomial
// 0xEDB88320, initial and final XOR 0xFFFFFFFF): what kiln's table-driven ones must equal.
inline uint32_t crc32_by_bits(const std::vector<uint8_t>& b) {
  uint32_t c = 0xFFFFFFFFu;
  for (uint8_t x : b) {
    c ^= x;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}

}  // namespace kiln::test
