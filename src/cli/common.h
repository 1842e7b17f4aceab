// What every kiln subcommand shares: the device options (--data, --device, --threads), the
// one set-up they all start with (threads, device, preset, --set), loading the data a
// configuration names, the stop flag that Ctrl-C raises, and the shape of a subcommand: each
// src/cli/cmd_*.cpp declares its options on its own CLI11 subcommand and returns what runs it.
#pragma once
#include <CLI/CLI.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "kiln/core/config.h"
#include "kiln/data/dataset.h"
#include "kiln/deploy/quantize.h"
#include "kiln/train/trainer.h"

namespace kiln::cli {

struct DeviceFlags {
  std::string data;             // --data: the data root ("" = $KILN_DATA, else the default)
  std::string device = "auto";  // --device
  int threads = 0;              // --threads (0 = LibTorch's default)
  std::string host_memory = "retain";  // --host-memory: retain | system (kiln/core/host_memory.h)
};
// --data, --device, --threads and --host-memory on `sub`.
void add_device_options(CLI::App* sub, DeviceFlags& f);

// The grid `kiln quantize` and `kiln export --int8` round the weights to (kiln/deploy/quantize.h):
// --granularity and --bits where given, else the checkpoint's own train.qat grid when it was
// trained with train.qat (the grid its weights were trained for), else int8 per channel.
struct GridFlags {
  std::string granularity;  // --granularity ("" = not given)
  int bits = 0;             // --bits (0 = not given)
};
void add_grid_options(CLI::App* sub, GridFlags& f);
struct ChosenGrid {
  IntGrid grid;
  std::string source;  // "the run's train.qat grid", "as asked" (a flag given), "int8 per channel, the default"
};
ChosenGrid grid_for(const Config& checkpoint_cfg, const GridFlags& f);

// The common set-up: LibTorch's threads, the host allocator's policy, the device, and (when `preset` is given) the preset's
// configuration with every --set assignment applied in order.
struct Setup {
  torch::Device device{torch::kCPU};
  std::string preset_path;  // "" when no preset was given
  Config cfg;
};
Setup setup(const DeviceFlags& f, const std::string& preset = "", const std::vector<std::string>& sets = {});

// The dataset `cfg` names (data.dataset, data.folder) from the data root `data` (resolved as
// --data says), its notes printed to stderr.
TrainTest load_for(const Config& cfg, const std::string& data);
// The checkpoint's ModelIO (kiln/train/trainer.h), its run's dataset read from `data` (resolved
// as --data says) only for a checkpoint older than the names and size it holds; says so on stderr.
ModelIO model_io(const LoadedCheckpoint& ck, const std::string& checkpoint_path, const std::string& data);
// "YYYYmmdd-HHMMSS", local time: the default run directories' suffix.
std::string timestamp();
// A preset file's name without its directory and extension.
std::string preset_stem(const std::string& preset_path);

// Installs handlers that raise the returned flag on SIGINT (and SIGTERM when `term`); a second
// signal leaves at once (exit 130). Runs given the flag checkpoint and return.
const std::atomic<bool>* stop_on_signals(bool term = true);
// RunOptions for a run on `device`, recording `command_line`, stopping on the flag above.
RunOptions run_options(const torch::Device& device, const std::string& command_line, bool verbose);

// A registered subcommand: its CLI11 node and what runs it once the command line is parsed
// (returning the exit status; kiln::Error and the others are caught in main).
struct Command {
  CLI::App* sub = nullptr;
  std::function<int()> run;
};

}  // namespace kiln::cli
