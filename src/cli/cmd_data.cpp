// `kiln data fetch` (download, verify, unpack) and `kiln data info` (a dataset's shape, class
// counts and pixel statistics).
#include <cstdio>
#include <iostream>

#include "cli/commands.h"
#include "kiln/core/error.h"
#include "kiln/data/loader.h"
#include "kiln/train/run_settings.h"
#ifdef KILN_WITH_FETCH
#include "kiln/data/fetch.h"
#endif

namespace kiln::cli {
namespace {

struct DataFlags {
  std::string name, data, folder, mirror;
  std::vector<std::string> sets;
  bool force = false;
};

int run_fetch(const DataFlags& f) {
#ifdef KILN_WITH_FETCH
  auto spec = builtin_fetch_spec(f.name);
  if (!f.mirror.empty()) spec = with_mirror(spec, f.mirror);
  fetch_dataset(spec, resolve_data_root(f.data), f.force, [](const std::string& s) { std::cerr << s << "\n"; });
  return 0;
#else
  (void)f;
  throw Error("this kiln was built without download support (KILN_WITH_FETCH=OFF)");
#endif
}

int run_data_info(const std::string& name, const std::string& data, const std::string& folder, const std::vector<std::string>& sets) {
  Config cfg;  // the defaults, plus --set: how a folder is read (data.image_size, data.resize, ...)
  for (auto& s : sets) cfg.set_assignment(s);
  auto tt = load_dataset(name, resolve_data_root(data), folder, RunSettings::from_config(cfg).data.folder_options);
  for (auto& n : tt.notes) std::cerr << n << "\n";
  for (auto& w : tt.warnings) std::cerr << "note: " << w << "\n";
  std::printf("%s from %s\n", name.c_str(), tt.source.c_str());
  for (auto* part : {&tt.train, &tt.test}) {
    auto counts = torch::bincount(part->labels, {}, static_cast<int64_t>(part->classes.size()));
    auto s = part->images.sizes();
    std::printf("  %s: %lld images of %lldx%lldx%lld; per class:", part == &tt.train ? "train" : "test ",
                (long long)s[0], (long long)s[1], (long long)s[2], (long long)s[3]);
    for (int64_t c = 0; c < counts.size(0); ++c) std::printf(" %lld", (long long)counts[c].item<int64_t>());
    std::printf("\n");
  }
  auto [m, sd] = DeviceLoader::channel_stats(tt.train);
  std::printf("  train pixel mean/std per channel:");
  for (size_t c = 0; c < m.size(); ++c) std::printf(" %.3f/%.3f", m[c], sd[c]);
  std::printf("\n");
  return 0;
}

}  // namespace

std::vector<Command> add_data(CLI::App& app, const std::string&) {
  auto f = std::make_shared<DataFlags>();
  auto* dataset = app.add_subcommand("data", "Datasets: fetch and inspect");
  dataset->require_subcommand(1);
  auto* fetch = dataset->add_subcommand("fetch", "Download, verify (md5) and unpack a dataset into the data root");
  fetch->add_option("name", f->name, "cifar10 | cifar100 | mnist | fashion-mnist")->required();
  fetch->add_option("--data", f->data, "data root");
  fetch->add_flag("--force", f->force, "fetch again even when the folder exists");
  fetch->add_option("--mirror", f->mirror, "fetch the same file names from this base URL instead (e.g. file:///srv/m)");
  auto* info = dataset->add_subcommand("info", "Check a dataset and print its shape, class counts and pixel statistics");
  info->add_option("name", f->name, "cifar10 | cifar100 | mnist | fashion-mnist | folder")->required();
  info->add_option("--data", f->data, "data root");
  info->add_option("--folder", f->folder, "root with train/ and test/ (for 'folder')");
  info->add_option("--set", f->sets, "key=value: how a folder is read (data.image_size, data.resize, data.background, data.val_fraction, data.load_threads, ...)");
  return {{fetch, [f] { return run_fetch(*f); }}, {info, [f] { return run_data_info(f->name, f->data, f->folder, f->sets); }}};
}

}  // namespace kiln::cli
