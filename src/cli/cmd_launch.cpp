// `kiln launch --nproc N -- COMMAND...`: N ranks of COMMAND on this machine as one
// data-parallel job (kiln/dist/launch.h).
#include "cli/commands.h"
#include "kiln/dist/launch.h"

namespace kiln::cli {

Command add_launch(CLI::App& app, const std::string&) {
  auto o = std::make_shared<dist::LaunchOptions>();
  auto* sub = app.add_subcommand("launch", "Start N processes of a kiln command on this machine as one data-parallel job (sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): kiln launch --nproc 2 -- kiln train --preset P --out D");
  sub->add_option("--nproc,-n", o->nproc, "processes (ranks)")->required();
  sub->add_option("--master-port", o->port, "rendezvous port on 127.0.0.1 (default: a free one)");
  sub->add_option("--grace", o->grace, "seconds the other ranks get to stop after one fails, before SIGTERM")->capture_default_str();
  sub->add_option("command", o->command, "the command, after --")->required();
  return {sub, [o] { return dist::launch(*o); }};
}

}  // namespace kiln::cli
