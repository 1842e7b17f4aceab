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

// Reduce-LR-on-plateau (Keras's / PyTorch's ReduceLROnPlateau, mode "min", relative
// threshold): after every epoch, the monitored loss counts as an improvement when it is below
// best x (1 - threshold); after more than `patience` epochs in a row without one, the multiplier
// is scaled by `factor` (not below min_multiplier) and the count restarts. The multiplier
// applies on top of the piecewise-linear schedule from the next epoch on. factor = 1: off.
struct Plateau {
  double factor = 1.0, threshold = 1e-4, min_multiplier = 0.0;
  int64_t patience = 2;
  // state (checkpointed)
  double multiplier = 1.0, best = 1e300;
  int64_t bad_epochs = 0;
  bool enabled() const { return factor < 1.0; }
  // Feeds one epoch's loss; returns true when the multiplier changed.
  bool observe(double loss);
  static Plateau from_config(const Config& cfg);
};

}  // namespace kiln

