// Piecewise-linear schedules: (x, value) knots, linear between them, constant outside.
#pragma once
#include "kiln/core/config.h"

namespace kiln {

double piecewise_linear(const Knots& knots, double x);

// The learning rate of a step: optim.lr times the schedule at the position reached *after*
// the step (global_step + 1 steps done; or, with schedule.lr_at = before_step, before it), in
// epochs or as a fraction of training (steps / total steps)
// (schedule.knot_unit), so warm-up scales with the length of training when it is a fraction.
struct LrSchedule {
  double peak_lr;
  Knots knots;
  bool fraction;  // knots' x is a fraction of training (else epochs)
  double epochs;
  int64_t steps_per_epoch;
  int64_t total_steps;  // ceil(epochs * steps_per_epoch): the denominator of "fraction"
  bool before_step;     // schedule.lr_at = before_step: step s uses f(s) (PyTorch's LambdaLR)
  static LrSchedule from_config(const Config& cfg, int64_t steps_per_epoch);
  double at_step(int64_t global_step) const;
};

}  // namespace kiln
