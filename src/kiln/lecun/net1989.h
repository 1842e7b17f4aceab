// LeCun et al. (1989), "Backpropagation Applied to Handwritten Zip Code Recognition": the
// zip-code network, exactly, as a dependency-free C++ forward/backward (no LibTorch, no
// allocation per step), so 23 passes of batch-1 SGD take seconds, and the same code can be
// compiled to WebAssembly. Checked against the LibTorch autograd twin (kiln/lecun/reference1989.h).
//
// 16x16 input in [-1, 1] -> H1: 12 maps 8x8, 5x5 kernels, stride 2, input padded by 2 with
// -1, untied biases (12x8x8) -> H2: 12 maps 4x4, 5x5 kernels, stride 2, padded by 2 with -1,
// each map connected to 8 of H1's 12 maps (maps 0-3 <- 0-7, 4-7 <- 4-11, 8-11 <- {0-3, 8-11}),
// untied biases (12x4x4) -> H3: 30 units fully connected -> output: 10 fully connected.
// tanh on every layer; 9,760 parameters. The modern variant swaps in cross-entropy (no
// output tanh), ReLU on the hidden layers and dropout before H3.
#pragma once
#include <cstdint>
#include <vector>

namespace kiln::lecun {

// Offsets into the flat parameter vector (the reference's tensors, row-major):
// H1w [12][1][5][5], H1b [12][8][8], H2w [12][8][5][5], H2b [12][4][4],
// H3w [192][30] (x @ H3w), H3b [30], outw [30][10], outb [10].
enum : int {
  kH1w = 0, kH1b = 300, kH2w = 1068, kH2b = 3468, kH3w = 3660, kH3b = 9420, kOutw = 9450, kOutb = 9750,
  kParams = 9760
};
// The 8 H1 maps feeding each H2 map.
extern const int kH2Inputs[12][8];

struct Variant {
  bool cross_entropy = false;  // else mean-squared error over the 10 outputs against +-1 targets
  bool relu = false;           // ReLU on H1-H3 (else tanh)
  double dropout = 0.0;        // on H2's 192 outputs, before H3 (training only)
};

// Random draws of one training step (so two implementations can consume the same ones).
struct Draws {
  int shift_rows = 0, shift_cols = 0;  // wrap-around roll of the input, like torch.roll
  const uint8_t* keep = nullptr;       // 192 dropout keep flags (nullptr: keep all)
};

// A small, fast, seedable generator (splitmix64), dependency-free.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed) {}
  uint64_t next();
  double uniform();  // [0, 1)
};

template <class T>
class Net1989 {
 public:
  explicit Net1989(Variant v = {});
  // U(+-2.4 / sqrt(fan_in)) weights, zero biases, output biases -1 (the reference reproduction).
  void init(Rng& rng);
  std::vector<T> params, grads;
  Variant variant;

  // One example: x is 16x16 (row-major), target the class. Fills `grads` (overwriting) when
  // `backward`; returns the loss. Training draws apply only when `train`.
  T step(const T* x, int label, bool train, const Draws& d, bool backward = true);
  // Class with the largest output (eval mode).
  int predict(const T* x);
  const T* outputs() const { return out_; }  // after step/predict: tanh outputs or logits
  const T* hidden1() const { return h1_; }   // H1's 12 x 8 x 8 activations of the last step

 private:
  void activate(T* z, int n) const;  // in place, over a contiguous run (vectorisable)
  T in_[20 * 20];           // padded, shifted input
  T p1_[25 * 64];           // H1's input patches, tap-major: p1_[tap][position]
  T p2_[3][16 * 200];       // H2's input patches per connection group: [position][input map j, tap]
  T dp2_[16 * 200];
  T h1_[12 * 64];           // H1 activations
  T q_[12 * 12 * 12];       // H1 padded with -1
  T h2_[192], h2d_[192];    // H2 activations, after dropout
  T h3_[30], out_[10];
  // gradient scratch
  T dq_[12 * 12 * 12], dh2_[192], dh3_[30], dout_[10];
};

// Optimisers on the flat vectors.
template <class T>
void sgd_update(std::vector<T>& p, const std::vector<T>& g, double lr);

template <class T>
struct AdamW {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;  // PyTorch's defaults
  std::vector<T> m, v;
  int64_t t = 0;
  void update(std::vector<T>& p, const std::vector<T>& g, double lr);
};

}  // namespace kiln::lecun
