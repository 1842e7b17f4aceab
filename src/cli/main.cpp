// kiln: the command line. It declares the subcommands (one file each, src/cli/cmd_*.cpp, over
// library functions), parses, runs the one given, and turns errors into messages and exit
// statuses: 2 for a bad input or setting (kiln::Error), 3 for LibTorch's errors, memory and
// anything unexpected, 130 for an interrupted run.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "cli/commands.h"
#include "kiln/build_info.h"
#include "kiln/core/device.h"
#include "kiln/core/error.h"
#include "kiln/git_commit.h"

namespace {
std::string joined_args(int argc, char** argv) {
  std::string s;
  for (int i = 0; i < argc; ++i) s += (i ? " " : "") + std::string(argv[i]);
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  using namespace kiln::cli;
  CLI::App app{"kiln: fast image-classifier training in C++, every trick a switch.\n"
               "Data root: --data, else $KILN_DATA, else $XDG_DATA_HOME/kiln or ~/.local/share/kiln."};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("kiln ") + KILN_VERSION + " (" + KILN_GIT_COMMIT + ")");
  // Past a file-size limit (ulimit -f) a write then fails with EFBIG, which kiln reports and
  // survives (the previous checkpoint is kept), instead of the process dying of SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);

  const std::string cmdline = joined_args(argc, argv);
  std::vector<Command> commands = {add_train(app, cmdline),     add_launch(app, cmdline),  add_ablate(app, cmdline),
                                   add_selftrain(app, cmdline), add_lecun1989(app, cmdline), add_overfit(app, cmdline),
                                   add_lr_find(app, cmdline),   add_show(app, cmdline),    add_bench(app, cmdline),
                                   add_eval(app, cmdline),      add_export(app, cmdline),  add_web(app, cmdline),
                                   add_quantize(app, cmdline), add_predict(app, cmdline), add_fused_check(app, cmdline)};
  for (auto* group : {add_data, add_info_commands})
    for (auto& c : group(app, cmdline)) commands.push_back(c);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    kiln::set_deterministic(false);  // cuDNN autotuning on; `kiln train --deterministic` turns it off
    for (auto& c : commands)
      if (c.sub->parsed()) return c.run();
  } catch (const kiln::Error& e) {
    std::cerr << "kiln: error: " << e.what() << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "kiln: LibTorch error: " << e.what_without_backtrace() << "\n";
    return 3;
  } catch (const std::bad_alloc&) {
    std::cerr << "kiln: out of memory\n";
    return 3;
  } catch (const std::exception& e) {
    std::cerr << "kiln: internal error: " << e.what() << "\n";
    return 3;
  }
  return 0;
}
