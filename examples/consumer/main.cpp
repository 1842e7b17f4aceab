// Builds kiln's ResNet-9 through the installed library and runs one forward pass.
#include <kiln/core/config.h>
#include <kiln/nn/model.h>

#include <iostream>

int main() {
  kiln::Config cfg;
  cfg.set("model.widths", "[8, 16, 16, 32]");
  auto model = kiln::make_model(cfg, 3, 10);
  auto out = model->forward(torch::randn({2, 3, 32, 32}));
  std::cout << "consumer: logits " << out.sizes() << ", " << kiln::count_parameters(*model) << " parameters\n";
  return out.size(1) == 10 ? 0 : 1;
}
