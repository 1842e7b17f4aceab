#include "kiln/train/schedule.h"

#include <cmath>

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
  const double epochs = cfg.f("schedule.epochs");
  auto total = static_cast<int64_t>(std::ceil(epochs * static_cast<double>(steps_per_epoch) - 1e-9));
  return {cfg.f("optim.lr"), cfg.knots("schedule.knots"), cfg.s("schedule.knot_unit") == "fraction", epochs,
          steps_per_epoch, total, cfg.s("schedule.lr_at") == "before_step"};
}

double LrSchedule::at_step(int64_t global_step) const {
  const double done = static_cast<double>(global_step + (before_step ? 0 : 1));
  const double x = fraction ? done / static_cast<double>(total_steps) : done / static_cast<double>(steps_per_epoch);
  return peak_lr * piecewise_linear(knots, x);
}

bool Plateau::observe(double loss) {
  if (!enabled()) return false;
  if (loss < best * (1.0 - threshold)) {
    best = loss;
    bad_epochs = 0;
    return false;
  }
  if (++bad_epochs <= patience) return false;
  const double next = std::max(min_multiplier, multiplier * factor);
  bad_epochs = 0;
  if (next == multiplier) return false;
  multiplier = next;
  return true;
}

Plateau Plateau::from_config(const Config& cfg) {
  Plateau p;
  p.factor = cfg.f("schedule.plateau_factor");
  p.patience = cfg.i("schedule.plateau_patience");
  p.threshold = cfg.f("schedule.plateau_threshold");
  p.min_multiplier = cfg.f("schedule.plateau_min");
  return p;
}

}  // namespace kiln

