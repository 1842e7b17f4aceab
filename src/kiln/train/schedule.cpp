#include "kiln/train/schedule.h"

#include "kiln/core/error.h"

namespace kiln {

double piecewise_linear(const Knots& k, double x) {
  if (k.empty()) throw Error("piecewise_linear: no knots");
  if (x <= k.front().first) return k.front().second;
  if (x >= k.back().first) return k.back().second;
  for (size_t i = 1; i < k.size(); ++i) {
    if (x <= k[i].first) {
      auto [x0, y0] = k[i - 1];
      auto [x1, y1] = k[i];
      return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
    }
  }
  return k.back().second;
}

LrSchedule LrSchedule::from_config(const Config& cfg, int64_t steps_per_epoch) {
  return {cfg.f("optim.lr"), cfg.knots("schedule.knots"), cfg.s("schedule.knot_unit") == "fraction",
          cfg.f("schedule.epochs"), steps_per_epoch};
}

double LrSchedule::at_step(int64_t global_step) const {
  double epoch = static_cast<double>(global_step + 1) / static_cast<double>(steps_per_epoch);
  return peak_lr * piecewise_linear(knots, fraction ? epoch / epochs : epoch);
}

}  // namespace kiln
