// Every kiln subcommand, one file each (src/cli/cmd_*.cpp): add_X declares X's options on
// `app` and returns what runs it; `command_line` (the whole argv, recorded in run
// directories) is filled in before the parse and read when the command runs.
#pragma once
#include <string>
#include <vector>

#include "cli/common.h"

namespace kiln::cli {

Command add_train(CLI::App& app, const std::string& command_line);      // cmd_train.cpp
Command add_launch(CLI::App& app, const std::string& command_line);     // cmd_launch.cpp
Command add_ablate(CLI::App& app, const std::string& command_line);     // cmd_ablate.cpp
Command add_selftrain(CLI::App& app, const std::string& command_line);  // cmd_selftrain.cpp
Command add_lecun1989(CLI::App& app, const std::string& command_line);  // cmd_lecun1989.cpp
Command add_overfit(CLI::App& app, const std::string& command_line);    // cmd_overfit.cpp
Command add_lr_find(CLI::App& app, const std::string& command_line);    // cmd_lr_find.cpp
Command add_show(CLI::App& app, const std::string& command_line);       // cmd_show.cpp
Command add_bench(CLI::App& app, const std::string& command_line);      // cmd_bench.cpp
Command add_eval(CLI::App& app, const std::string& command_line);       // cmd_eval.cpp
Command add_export(CLI::App& app, const std::string& command_line);     // cmd_export.cpp
Command add_web(CLI::App& app, const std::string& command_line);        // cmd_web.cpp
Command add_quantize(CLI::App& app, const std::string& command_line);   // cmd_quantize.cpp
Command add_predict(CLI::App& app, const std::string& command_line);    // cmd_predict.cpp
Command add_fused_check(CLI::App& app, const std::string& command_line);  // cmd_fused_check.cpp
std::vector<Command> add_data(CLI::App& app, const std::string& command_line);           // cmd_data.cpp: data fetch, data info
std::vector<Command> add_info_commands(CLI::App& app, const std::string& command_line);  // cmd_info.cpp: presets, env, report

}  // namespace kiln::cli
