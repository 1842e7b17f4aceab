// The autograd side that both fused block operators share (kiln/nn/fused_cpu.h on the CPU,
// kiln/nn/fused_gpu.h on CUDA): GELU(BN(pool(x)) [+ residual]) as an autograd function of x (and
// the residual), BN's weight and bias, whose two directions an `Impl` gives:
//   static torch::Tensor Impl::forward(AutogradContext*, x, residual (undefined: none), weight,
//                                      bias, running_mean, running_var, bool pool, double momentum,
//                                      double eps);   // moves the running statistics
//   static FusedGrads Impl::backward(AutogradContext*, const variable_list& grads, bool weight_needs_grad);
// An autograd function's inputs must be defined tensors, so "no residual" is a function of its own.
#pragma once
#include <torch/torch.h>

#include "kiln/nn/layers.h"

namespace kiln {

struct FusedGrads {
  torch::Tensor dx, dresidual, dweight, dbias;
};

template <class Impl>
struct FusedBlockFunction : torch::autograd::Function<FusedBlockFunction<Impl>> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor weight,
                               torch::Tensor bias, torch::Tensor running_mean, torch::Tensor running_var, bool pool,
                               double momentum, double eps) {
    return Impl::forward(ctx, x, {}, weight, bias, running_mean, running_var, pool, momentum, eps);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto d = Impl::backward(ctx, grads, ctx->needs_input_grad(1));
    return {d.dx, d.dweight, d.dbias, {}, {}, {}, {}, {}};
  }
};

template <class Impl>
struct FusedBlockAddFunction : torch::autograd::Function<FusedBlockAddFunction<Impl>> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor residual,
                               torch::Tensor weight, torch::Tensor bias, torch::Tensor running_mean,
                               torch::Tensor running_var, bool pool, double momentum, double eps) {
    return Impl::forward(ctx, x, residual, weight, bias, running_mean, running_var, pool, momentum, eps);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto d = Impl::backward(ctx, grads, ctx->needs_input_grad(2));
    return {d.dx, d.dresidual, d.dweight, d.dbias, {}, {}, {}, {}, {}};
  }
};

// The block in training through Impl, with bn's parameters, statistics and options.
template <class Impl>
torch::Tensor apply_fused_block(const torch::Tensor& x, BatchNormImpl& bn, bool pool, const torch::Tensor& residual) {
  if (residual.defined())
    return FusedBlockAddFunction<Impl>::apply(x, residual, bn.weight, bn.bias, bn.running_mean, bn.running_var, pool,
                                              bn.options.momentum, bn.options.eps);
  return FusedBlockFunction<Impl>::apply(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, pool,
                                         bn.options.momentum, bn.options.eps);
}

}  // namespace kiln
