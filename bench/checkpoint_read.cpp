// What checking a checkpoint's records against their CRC-32s (kiln/core/zip_check.h) costs beside
// LibTorch's reading of the same file: the CRC-32 alone on 16 MiB in memory (bytes/s; zlib's and
// kiln's slicing-by-8 for builds without zlib), the check
// of every record of a checkpoint file, LibTorch's InputArchive::load_from of it (no check), and
// kiln's load_checkpoint (the check, load_from and the model built and filled). The file is read
// from the page cache after the first repetition. Then the same for the checkpoint's .kiln export
// (fp32, read by the dependency-free runtime, kiln/runtime/runtime.h) in memory: the file's CRC-32
// alone (the runtime's slicing-by-8, as in kiln.js), rt::parse with its check, and rt::parse of
// the same bytes without the crc32 entry (a file from before 2026-12-05: no check).
// Run: build/bench/kiln_bench_checkpoint [CHECKPOINT.pt] [--benchmark_repetitions=10]
//   Without a file it writes one: a run of cifar10-resnet9-baseline (full width, fp32, SGD with
//   momentum: 52.7 MB) for one step on 32 random 32 x 32 images, in a temporary directory.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/core/fs.h"
#include "kiln/core/zip_check.h"
#include "kiln/deploy/export.h"
#include "kiln/runtime/runtime.h"
#include "kiln/train/trainer.h"

namespace {

std::string g_path;

template <uint32_t (*Crc)(const uint8_t*, size_t, uint32_t)>
void crc32_in_memory(benchmark::State& st) {
  std::vector<uint8_t> b(16 << 20);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  for (auto _ : st) benchmark::DoNotOptimize(Crc(b.data(), b.size(), 0));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(b.size()));
}

void check_records(benchmark::State& st) {
  const auto size = std::filesystem::file_size(g_path);
  for (auto _ : st) {
    std::ifstream in(g_path, std::ios::binary);
    kiln::check_zip_records(in, size, g_path);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(size));
}

void libtorch_load_from(benchmark::State& st) {
  for (auto _ : st) {
    torch::serialize::InputArchive ar;
    ar.load_from(g_path);
    benchmark::DoNotOptimize(ar);
  }
}

void kiln_load_checkpoint(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(kiln::load_checkpoint(g_path, torch::kCPU).model);
}

std::vector<uint8_t> g_kiln, g_kiln_unchecked;  // the .kiln export, and without its crc32 entry

void kiln_file_crc32(benchmark::State& st) {
  const size_t field = *kiln::rt::crc32_field(g_kiln.data(), g_kiln.size());
  for (auto _ : st) benchmark::DoNotOptimize(kiln::rt::file_crc32(g_kiln.data(), g_kiln.size(), field));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(g_kiln.size()));
}

template <const std::vector<uint8_t>* Bytes>
void kiln_file_parse(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(kiln::rt::parse(*Bytes, "bench.kiln").tensors.size());
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(Bytes->size()));
}

// The checkpoint's .kiln export (fp32), and the same bytes as a file from before its crc32 entry.
void export_kiln_file(const std::string& checkpoint, const std::string& dir) {
  const auto ck = kiln::load_checkpoint(checkpoint, torch::kCPU);
  kiln::ExportInfo info{{3, 32, 32}, {}};
  for (int c = 0; c < 10; ++c) info.classes.push_back("c" + std::to_string(c));
  kiln::export_kiln(ck, info, dir + "/model.kiln", false);
  g_kiln = kiln::rt::read_bytes(dir + "/model.kiln");
  const size_t field = *kiln::rt::crc32_field(g_kiln.data(), g_kiln.size());  // kiln writes it first: 29
  g_kiln_unchecked.assign(g_kiln.begin(), g_kiln.begin() + 16);
  g_kiln_unchecked[8] = static_cast<uint8_t>(g_kiln_unchecked[8] - 1);  // one metadata entry fewer (of 20-odd)
  g_kiln_unchecked.insert(g_kiln_unchecked.end(), g_kiln.begin() + static_cast<long>(field + 8), g_kiln.end());
}

// One step of a full-width ResNet-9 on random images: a checkpoint of the size of a real run's.
std::string write_resnet9_checkpoint(const std::string& dir) {
  auto cfg = kiln::Config::from_file(kiln::find_preset("cifar10-resnet9-baseline"));
  cfg.set("schedule.epochs", "1");
  cfg.set("data.batch_size", "32");
  cfg.set("train.precision", "fp32");
  torch::manual_seed(0);
  std::vector<std::string> classes;
  for (int c = 0; c < 10; ++c) classes.push_back("c" + std::to_string(c));
  kiln::TrainTest tt;
  tt.train = kiln::Dataset{torch::randint(0, 256, {32, 3, 32, 32}).to(torch::kUInt8), torch::arange(32) % 10, classes};
  tt.test = kiln::Dataset{torch::randint(0, 256, {32, 3, 32, 32}).to(torch::kUInt8), torch::arange(32) % 10, classes};
  tt.name = "random";
  kiln::RunOptions opt;
  opt.verbose = false;
  opt.run_dir = dir + "/run";
  kiln::train(cfg, tt, opt);
  return opt.run_dir + "/checkpoint.pt";
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (argc > 2) {
    std::cerr << "usage: " << argv[0] << " [CHECKPOINT.pt] [--benchmark_...]\n";
    return 2;
  }
  std::string tmp;
  if (argc == 2) {
    g_path = argv[1];
  } else {
    char tmpl[] = "/tmp/kiln-bench-checkpoint-XXXXXX";
    tmp = mkdtemp(tmpl);
    g_path = write_resnet9_checkpoint(tmp);
  }
  char kiln_tmpl[] = "/tmp/kiln-bench-model-XXXXXX";
  const std::string kiln_dir = mkdtemp(kiln_tmpl);
  export_kiln_file(g_path, kiln_dir);
  std::cout << g_path << ": " << std::filesystem::file_size(g_path) << " bytes; its .kiln export (fp32): " << g_kiln.size()
            << " bytes\n";
  benchmark::RegisterBenchmark("crc32_16MiB_in_memory", crc32_in_memory<kiln::crc32>)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("crc32_portable_16MiB_in_memory", crc32_in_memory<kiln::crc32_portable>)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("check_zip_records", check_records)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("libtorch_load_from", libtorch_load_from)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kiln_load_checkpoint", kiln_load_checkpoint)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kiln_file_crc32", kiln_file_crc32)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kiln_file_parse_checked", kiln_file_parse<&g_kiln>)->Unit(benchmark::kMillisecond);
  benchmark::RegisterBenchmark("kiln_file_parse_unchecked", kiln_file_parse<&g_kiln_unchecked>)->Unit(benchmark::kMillisecond);
  benchmark::RunSpecifiedBenchmarks();
  if (!tmp.empty()) kiln::remove_tree(tmp);
  kiln::remove_tree(kiln_dir);
  return 0;
}
