// `kiln lecun1989`: the 1989 zip-code network's reproduction table, or --modern's step-by-step
// table (kiln/lecun/tables.h), on digits drawn from MNIST.
#include <cstdio>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "kiln/core/fs.h"
#include "kiln/lecun/tables.h"
#include "kiln/report/html.h"

namespace kiln::cli {
namespace {

struct LecunFlags {
  std::string data, out;
  bool modern = false;
  int seeds = 0, threads = 0;
};

int run_lecun(const LecunFlags& f) {
  auto mnist = load_dataset("mnist", resolve_data_root(f.data));
  for (auto& w : mnist.warnings) std::cerr << "note: " << w << "\n";
  const auto z = lecun::make_zipcode_data(mnist);
  std::cerr << "data: " << z.note << "\n";
  const int seeds = f.seeds > 0 ? f.seeds : (f.modern ? 5 : 1);
  const std::string out = f.out.empty() ? std::string("runs/lecun1989") + (f.modern ? "-modern-" : "-") + timestamp() : f.out;
  make_dirs(out);
  std::string md;
  if (f.modern) {
    const int threads = f.threads > 0 ? f.threads : static_cast<int>(std::thread::hardware_concurrency());
    md = lecun::modern_table(z, seeds, threads, [](const std::string& row) { std::cerr << row; });
  } else {
    md = lecun::reproduction_table(
        z, seeds, [](int s) { std::cerr << "--- seed " << s << ": " << lecun::classic_recipe().name << "\n"; },
        [](const lecun::PassMetrics& m) {
          std::fprintf(stderr, "pass %2d  loss %.6f  train error %.2f%% (%d)  test error %.2f%% (%d misses)  %.2fs\n",
                       m.pass, m.train_loss, 100 * m.train_error, m.train_misses, 100 * m.test_error, m.test_misses,
                       m.seconds);
        });
  }
  atomic_write(out + "/results.md", md);
  write_report(out);
  std::cout << md;
  std::cerr << "table: " << out << "/results.md\n";
  return 0;
}

}  // namespace

Command add_lecun1989(CLI::App& app, const std::string&) {
  auto f = std::make_shared<LecunFlags>();
  auto* sub = app.add_subcommand("lecun1989", "LeCun et al. 1989's zip-code network on MNIST-drawn digits, with the paper's table; --modern for the step-by-step modernisation");
  sub->add_flag("--modern", f->modern, "the modern variant, row by row (cross-entropy, AdamW, shift augmentation, ReLU + dropout)");
  sub->add_option("--seeds", f->seeds, "runs per row (default 1 for the reproduction, 5 for --modern)");
  sub->add_option("--data", f->data, "data root holding mnist/");
  sub->add_option("--threads", f->threads, "seeds trained in parallel with --modern (default: all cores)");
  sub->add_option("--out", f->out, "directory for results.md (default runs/lecun1989-<time>)");
  return {sub, [f] { return run_lecun(*f); }};
}

}  // namespace kiln::cli
