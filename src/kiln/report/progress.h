// A one-line live progress bar on a terminal (epoch, step, loss, images/s, ETA); on
// anything else (a log file, CI) only the per-epoch lines are printed.
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

namespace kiln {

class Progress {
 public:
  explicit Progress(bool enabled = true, FILE* out = stderr);
  bool live() const { return live_; }
  // Redraws the bar; loss < 0 means "not known yet".
  void update(int64_t epoch, int64_t epochs, int64_t step, int64_t steps, double loss, double images_per_s,
              double eta_seconds);
  // Ends the live line (if any) and prints `line` on its own.
  void line(const std::string& line);

 private:
  bool enabled_, live_;
  FILE* out_;
  bool dirty_ = false;
};

std::string format_duration(double seconds);

}  // namespace kiln
