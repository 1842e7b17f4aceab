#include "kiln/report/progress.h"

#include <unistd.h>

#include <cmath>

namespace kiln {

Progress::Progress(bool enabled, FILE* out)
    : enabled_(enabled), live_(enabled && isatty(fileno(out))), out_(out) {}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

void Progress::update(int64_t epoch, int64_t epochs, int64_t step, int64_t steps, double loss, double ips,
                      double eta) {
  if (!live_) return;
  const int width = 24;
  int filled = steps > 0 ? int(width * step / steps) : 0;
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  char lossbuf[32] = "  ?   ";
  if (loss >= 0) std::snprintf(lossbuf, sizeof lossbuf, "%.4f", loss);
  std::fprintf(out_, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %s  %.0f img/s  ETA %s", (long long)epoch,
               (long long)epochs, bar.c_str(), (long long)step, (long long)steps, lossbuf, ips,
               format_duration(eta).c_str());
  std::fflush(out_);
  dirty_ = true;
}

void Progress::line(const std::string& l) {
  if (!enabled_) return;
  if (dirty_) std::fprintf(out_, "\r\033[K");
  dirty_ = false;
  std::fprintf(out_, "%s\n", l.c_str());
  std::fflush(out_);
}

}  // namespace kiln
