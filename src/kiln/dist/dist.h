// Data-parallel training on PyTorch's c10d process groups (issue #9): Gloo on the CPU, NCCL on
// CUDA (kiln/cuda/dist_nccl.cpp, compiled when LibTorch has CUDA; not yet run on a GPU). A
// Group is one process's membership of the job: its rank, the world size, and the collectives
// the trainer needs. The c10d types stay inside dist.cpp, so nothing else needs gloo's headers.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace kiln::dist {

struct Options {
  int world_size = 1, rank = 0, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string backend = "auto";  // auto (gloo on the CPU, nccl on CUDA) | gloo | nccl
  double timeout_s = 120;        // connecting, and any collective: a rank gone quiet this long stops the others
};

// The usual launcher variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), each
// where the variable is set; the caller then applies its own flags on top. Throws naming the
// variable when one is not a number.
Options from_environment();
// "ADDR:PORT" into master_addr / master_port (throws naming `what` when malformed).
void set_master(Options& o, const std::string& addr_port, const std::string& what);

class Group {
 public:
  // Joins the job: rank 0 serves a TCPStore at master_addr:master_port, the others connect to
  // it (within timeout_s), then the backend connects every pair. Throws kiln::Error naming the
  // master and the timeout when it cannot.
  static std::shared_ptr<Group> connect(const Options& o, const torch::Device& device);
  virtual ~Group();
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& backend() const { return backend_; }

  // In place, over every rank (SUM). Tensors must live on the group's device.
  void all_reduce_sum(std::vector<torch::Tensor>& tensors);
  void broadcast(std::vector<torch::Tensor>& tensors, int root = 0);
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  Group() = default;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1;
  std::string backend_;
};

// The gradient all-reduce overlapped with backward. Built once for a set of parameters, it
// hooks each of them; as backward produces a parameter's gradient the hook copies it into its
// bucket (buckets of about bucket_bytes, filled in reverse parameter order, the order backward
// reaches them), and a full bucket's all-reduce starts at once, in the backend's threads, while
// backward goes on. Each step: begin() before backward, finish() after it, which starts what is
// left (parameters that got no gradient this step: zeros), waits, and writes the sums (divided
// by the world size when `average`) into the .grad of each parameter that has one. The buckets
// are allocated once; the hooks go with the object.
class GradReducer {
 public:
  GradReducer(Group& group, const std::vector<torch::Tensor>& params, bool average, int64_t bucket_bytes = 25 << 20);
  ~GradReducer();
  GradReducer(const GradReducer&) = delete;
  GradReducer& operator=(const GradReducer&) = delete;
  void begin();
  void finish();
  const std::vector<torch::Tensor>& params() const { return params_; }
  int buckets_started_during_backward() const { return early_; }

  struct Bucket;

 private:
  void launch(size_t b);
  Group& group_;
  bool average_;
  std::vector<torch::Tensor> params_;
  std::vector<unsigned> hooks_;
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<std::pair<size_t, int64_t>> where_;  // per parameter: bucket, offset
  int early_ = 0;
  bool finished_ = false;
};

// Synchronised batch norm: what kiln's BatchNorm (kiln/nn/layers.h) computes in training when
// its sync_group is set (kiln::set_sync_bn_group): the batch normalised with the statistics of
// every rank's batch together (as one process with the union batch would), the backward pass
// reducing the two sums it needs; the parameters' gradients stay per rank (the gradient
// all-reduce sums them).
torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              torch::Tensor& running_mean, torch::Tensor& running_var, double momentum, double eps,
                              Group& group);

}  // namespace kiln::dist
