// `kiln launch`: N processes of one command on this machine as one data-parallel job, with the
// launcher variables every rank reads (dist::from_environment): RANK, LOCAL_RANK, WORLD_SIZE,
// MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port unless given). SIGINT and SIGTERM are
// passed on to every rank. When one rank fails, the others get `grace` seconds to stop by
// themselves (their collectives fail at once when a peer's connection closes, or after
// dist.timeout_s), then SIGTERM, then, 10 s later, SIGKILL.
#pragma once
#include <string>
#include <vector>

namespace kiln::dist {

struct LaunchOptions {
  int nproc = 1;
  int port = 0;                      // 0: a free loopback port
  double grace = 30;                 // seconds
  std::vector<std::string> command;  // argv; "kiln" as argv[0] means this very executable
};

// Starts the ranks and waits for all of them. Returns 0 when every rank succeeded, else the
// first failure's exit status (128 + signal for a rank killed by a signal). Installs its own
// SIGINT/SIGTERM handlers for the duration.
int launch(LaunchOptions o);

// A loopback TCP port that was free a moment ago (bound to port 0, read back, closed).
int free_port();

}  // namespace kiln::dist
