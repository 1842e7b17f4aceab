#include "kiln/dist/launch.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "kiln/core/error.h"

namespace kiln::dist {
namespace {

std::atomic<int> g_forward_signal{0};
extern "C" void on_launch_signal(int sig) { g_forward_signal = sig; }

// The rank's process: the launcher variables, then the command in place of this program.
[[noreturn]] void exec_rank(const LaunchOptions& o, int rank) {
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(o.port).c_str(), 1);
  std::vector<char*> argv;
  for (auto& a : o.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  ::execvp(argv[0], argv.data());
  std::fprintf(stderr, "kiln launch: cannot run '%s'\n", argv[0]);
  std::_Exit(127);
}

void signal_alive(const std::vector<pid_t>& pids, const std::vector<bool>& done, int sig) {
  for (size_t r = 0; r < pids.size(); ++r)
    if (!done[r]) ::kill(pids[r], sig);
}

}  // namespace

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("launch: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error("launch: cannot bind a loopback socket to find a free port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

int launch(LaunchOptions o) {
  if (o.nproc < 1) throw Error("launch: --nproc must be at least 1");
  if (o.command.empty())
    throw Error("launch: give the command after --, e.g.  kiln launch --nproc 2 -- kiln train --preset P --out D");
  if (o.command[0] == "kiln") o.command[0] = std::filesystem::read_symlink("/proc/self/exe").string();  // this kiln, wherever PATH points
  if (o.port <= 0) o.port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < o.nproc; ++r) {
    pid_t pid = ::fork();
    if (pid < 0) throw Error("launch: fork failed");
    if (pid == 0) exec_rank(o, r);
    pids.push_back(pid);
  }
  std::cerr << "launch: " << o.nproc << " ranks (pids";
  for (auto p : pids) std::cerr << " " << p;
  std::cerr << "), rendezvous 127.0.0.1:" << o.port << "\n";
  std::signal(SIGINT, on_launch_signal);
  std::signal(SIGTERM, on_launch_signal);
  int first_failure = 0, alive = o.nproc;
  std::vector<bool> done(static_cast<size_t>(o.nproc), false);
  std::chrono::steady_clock::time_point failed_at{};
  bool termed = false, killed = false;
  while (alive > 0) {
    if (int sig = g_forward_signal.exchange(0)) signal_alive(pids, done, sig);
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (size_t r = 0; r < pids.size(); ++r) {
        if (pids[r] != pid) continue;
        done[r] = true;
        --alive;
        const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (code == 0) continue;
        std::cerr << "launch: rank " << r << " (pid " << pid << ") "
                  << (WIFEXITED(status) ? "exited with " + std::to_string(code)
                                        : "was killed by signal " + std::to_string(WTERMSIG(status)))
                  << (first_failure == 0 ? "; the other ranks get " + std::to_string(static_cast<int>(o.grace)) + " s to stop"
                                         : std::string())
                  << "\n";
        if (first_failure == 0) {
          first_failure = code;
          failed_at = std::chrono::steady_clock::now();
        }
      }
      continue;
    }
    if (first_failure != 0 && alive > 0) {
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
      if (!termed && waited > o.grace) {
        std::cerr << "launch: stopping the remaining ranks (SIGTERM)\n";
        signal_alive(pids, done, SIGTERM);
        termed = true;
      } else if (termed && !killed && waited > o.grace + 10) {
        signal_alive(pids, done, SIGKILL);
        killed = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return first_failure;
}

}  // namespace kiln::dist
