// The optimisers against their definitions (kiln/train/optim.h): Muon's Newton-Schulz iteration
// against an SVD and two Muon steps by hand, a Lookahead update, Adam and AdamW steps.
#include <cmath>

#include "helpers.h"
#include "kiln/nn/tiny.h"
#include "kiln/train/optim.h"

using namespace kiln;
using kiln::test::separable_config;

TEST(Muon, NewtonSchulzIsTheScalarIterationOnTheSingularValues) {
  torch::manual_seed(0);
  for (auto shape : {std::vector<int64_t>{16, 40}, std::vector<int64_t>{40, 16}}) {
    auto G = torch::randn(shape, torch::kFloat64);
    auto X = newton_schulz(G, 3, torch::kFloat64);
    auto [U, S, Vh] = torch::linalg_svd(G, /*full_matrices=*/false);
    auto s = S / (G.norm() + 1e-7);
    for (int i = 0; i < 3; ++i) s = 3.4445 * s - 4.7750 * s.pow(3) + 2.0315 * s.pow(5);
    auto want = U.mm(torch::diag(s)).mm(Vh);
    EXPECT_TRUE(torch::allclose(X, want, 1e-9, 1e-9)) << "shape " << shape[0] << "x" << shape[1];
    // Singular vectors kept: X^T G is symmetric (V p(S) S V^T).
    auto XtG = X.t().mm(G);
    EXPECT_TRUE(torch::allclose(XtG, XtG.t(), 1e-8, 1e-8));
  }
}

TEST(Muon, TwoStepsMatchTheDefinition) {
  torch::manual_seed(1);
  auto p = torch::randn({8, 3, 3, 3}, torch::kFloat32).requires_grad_(true);
  auto p0 = p.detach().clone();
  Muon mu({p}, 0.6, true, 3, true);
  auto g1 = torch::randn_like(p0), g2 = torch::randn_like(p0);
  auto ns = [](const torch::Tensor& u) { return newton_schulz(u.reshape({8, -1}), 3, torch::kFloat32).view({8, 3, 3, 3}); };
  p.mutable_grad() = g1.clone();
  mu.step(0.1);
  auto buf = g1.clone();
  auto w = p0 * (std::sqrt(8.0) / p0.norm());
  w = w - 0.1 * ns(g1 + 0.6 * buf);
  EXPECT_TRUE(torch::allclose(p.detach(), w, 1e-5, 1e-6));
  p.mutable_grad() = g2.clone();
  mu.step(0.05);
  buf = 0.6 * buf + g2;
  w = w * (std::sqrt(8.0) / w.norm());
  w = w - 0.05 * ns(g2 + 0.6 * buf);
  EXPECT_TRUE(torch::allclose(p.detach(), w, 1e-5, 1e-6));
}

TEST(Lookahead, UpdateIsLerpThenCopyBackAndOneTakesTheSlowWeights) {
  torch::nn::Linear lin(3, 2);
  auto w0 = lin->weight.detach().clone();
  Lookahead la(*lin);
  {
    torch::NoGradGuard ng;
    lin->weight.add_(1.0);
  }
  auto w1 = lin->weight.detach().clone();
  la.update(*lin, 0.25);
  auto slow = 0.25 * w0 + 0.75 * w1;
  EXPECT_TRUE(torch::allclose(lin->weight, slow));
  {
    torch::NoGradGuard ng;
    lin->weight.add_(5.0);
  }
  la.update(*lin, 1.0);  // the end of training: the slow weights, whatever the fast ones did
  EXPECT_TRUE(torch::allclose(lin->weight, slow));
}

TEST(Tiny, AdamAndAdamWStepsAsDefined) {
  // One step from the start: m = (1 - b1) g, v = (1 - b2) g^2, bias-corrected to g and g^2, so
  //   adam:  p1 = p0 - lr (g + wd p0) / (|g + wd p0| + eps)       (L2: decay in the gradient)
  //   adamw: p1 = p0 (1 - lr wd) - lr g / (|g| + eps)              (decoupled)
  for (std::string name : {"adam", "adamw"}) {
    Config c = separable_config();
    c.set("optim.name", name);
    c.set("optim.weight_decay", "0.1");
    c.set("optim.adam_eps", "1e-3");
    auto m = make_model(c, 3, 10);
    auto setup = make_sgd(c, *m, 0.01);
    EXPECT_FALSE(setup.is_sgd);
    auto& w = dynamic_cast<SeparableNet*>(m.get())->fc->weight;
    auto p0 = w.detach().clone();
    setup.zero_grad();
    m->forward(torch::randn({4, 3, 32, 32})).pow(2).sum().backward();
    auto g = w.grad().detach().clone();
    setup.step();
    torch::Tensor want;
    if (name == "adam") {
      auto gg = g + 0.1 * p0;
      want = p0 - 0.01 * gg / (gg.abs() + 1e-3);
    } else {
      want = p0 * (1 - 0.01 * 0.1) - 0.01 * g / (g.abs() + 1e-3);
    }
    EXPECT_TRUE(torch::allclose(w.detach(), want, 1e-5, 1e-6)) << name;
    setup.set_lr(0.5);
    EXPECT_DOUBLE_EQ(setup.optimizer->param_groups()[0].options().get_lr(), 0.5);
  }
}
