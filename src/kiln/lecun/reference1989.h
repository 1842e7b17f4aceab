// The LibTorch autograd twin of the 1989 network (tests only): Net1989::step written with
// LibTorch's autograd in float64, so tests/test_lecun1989.cpp can check the hand-written
// forward and backward against it.
#pragma once
#include <vector>

#include "kiln/lecun/net1989.h"
#include "kiln/lecun/trainer1989.h"

namespace kiln::lecun {

// The LibTorch autograd twin of Net1989::step (float64), for tests: returns the loss and
// writes the flat gradient and the outputs.
double reference_step(const std::vector<double>& params, const double* x, int label, bool train, const Variant& v,
                      const Draws& d, std::vector<double>& grads, std::vector<double>* outputs = nullptr);

}  // namespace kiln::lecun
