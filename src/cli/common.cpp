#include "cli/common.h"

#include <ATen/Parallel.h>

#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>

#include "kiln/core/device.h"
#include "kiln/core/host_memory.h"
#include "kiln/train/run_settings.h"

namespace kiln::cli {
namespace {
std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) {
  if (g_stop.exchange(true)) std::_Exit(130);  // a second Ctrl-C: leave at once
}
}  // namespace

void add_device_options(CLI::App* sub, DeviceFlags& f) {
  sub->add_option("--data", f.data, "data root (holds cifar10/, mnist/, ...)");
  sub->add_option("--device", f.device, "cpu | cuda | cuda:N | auto")->capture_default_str();
  sub->add_option("--threads", f.threads, "CPU threads for LibTorch (0 = its default)");
  sub->add_option("--host-memory", f.host_memory,
                  "retain: freed host memory is kept for reuse (glibc's mmap off, heap trimmed only past 2 GiB: no page faults on every "
                  "step's large tensors; resident memory stays at its peak) | system: the C library's defaults")
      ->capture_default_str();  // checked once, by parse_host_memory in setup()
}

Setup setup(const DeviceFlags& f, const std::string& preset, const std::vector<std::string>& sets) {
  if (f.threads > 0) at::set_num_threads(f.threads);
  set_host_memory(parse_host_memory(f.host_memory));  // before the data and the model are allocated
  Setup s;
  s.device = parse_device(f.device);
  if (!preset.empty()) {
    s.preset_path = find_preset(preset);
    s.cfg = Config::from_file(s.preset_path);
    for (auto& a : sets) s.cfg.set_assignment(a);
  }
  return s;
}

TrainTest load_for(const Config& cfg, const std::string& data) {
  const auto d = RunSettings::from_config(cfg).data;
  auto tt = load_dataset(d.dataset, resolve_data_root(data), d.folder, d.folder_options);
  for (auto& n : tt.notes) std::cerr << n << "\n";
  for (auto& w : tt.warnings) std::cerr << "note: " << w << "\n";
  return tt;
}

ModelIO model_io(const LoadedCheckpoint& ck, const std::string& checkpoint_path, const std::string& data) {
  return model_io_of(ck, [&] {
    std::cerr << "note: '" << checkpoint_path
              << "' does not hold its class names and image size (written before 2026-12-04): reading them from its run's dataset\n";
    return load_for(ck.cfg, data);
  });
}

void add_grid_options(CLI::App* sub, GridFlags& f) {
  sub->add_option("--granularity", f.granularity,
                  "channel: a scale per output channel | tensor: one scale per weight, the coarser grid (default: the "
                  "checkpoint's train.qat_granularity when it was trained with train.qat, else channel)")
      ->check(CLI::IsMember({"channel", "tensor"}));
  sub->add_option("--bits", f.bits,
                  "bits of the symmetric grid, 2 to 8 (4: 7 steps each side, held in int8; default: the checkpoint's "
                  "train.qat_bits when it was trained with train.qat, else 8)");
}

ChosenGrid grid_for(const Config& checkpoint_cfg, const GridFlags& f) {
  const auto step = RunSettings::from_config(checkpoint_cfg).step;
  ChosenGrid c;
  if (step.qat) c = {step.qat_grid, "the run's train.qat grid"};
  else c = {IntGrid(), "int8 per channel, the default"};
  if (!f.granularity.empty()) c.grid.granularity = parse_granularity(f.granularity, "--granularity");
  if (f.bits != 0) c.grid.bits = check_bits(f.bits, "--bits");
  if (!f.granularity.empty() || f.bits != 0) c.source = "as asked";
  return c;
}

std::string timestamp() {
  auto t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", std::localtime(&t));
  return buf;
}

std::string preset_stem(const std::string& preset_path) { return std::filesystem::path(preset_path).stem().string(); }

const std::atomic<bool>* stop_on_signals(bool term) {
  std::signal(SIGINT, on_stop_signal);
  if (term) std::signal(SIGTERM, on_stop_signal);
  return &g_stop;
}

RunOptions run_options(const torch::Device& device, const std::string& command_line, bool verbose) {
  RunOptions o;
  o.device = device;
  o.command_line = command_line;
  o.verbose = verbose;
  o.stop = stop_on_signals();
  return o;
}

}  // namespace kiln::cli
