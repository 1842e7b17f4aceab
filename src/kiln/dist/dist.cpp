#include "kiln/dist/dist.h"

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cmath>
#include <cstdlib>

#include "kiln/core/error.h"

namespace kiln::dist {

// Defined in kiln/cuda/dist_nccl.cpp when LibTorch has CUDA.
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                                    std::chrono::milliseconds timeout);

#ifndef KILN_HAS_NCCL
c10::intrusive_ptr<c10d::Backend> make_nccl_backend(const c10::intrusive_ptr<c10d::Store>&, int, int, std::chrono::milliseconds) {
  throw Error("the nccl backend needs a kiln built against a CUDA LibTorch, with nccl.h found");
}
#endif

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> pg;
  std::chrono::milliseconds timeout{120000};
  // Gloo (CPU): the host waits for each collective, up to the timeout. NCCL (CUDA): Work::wait
  // without a timeout only makes the current stream wait for NCCL's (no host block); with a
  // timeout it would block the host until the GPU finished, at every bucket and every sync-BN
  // layer. NCCL's own watchdog enforces the process group's timeout instead. (NCCL: NOT YET RUN.)
  bool host_waits = true;
  void wait(const c10::intrusive_ptr<c10d::Work>& work) const {
    if (host_waits) work->wait(timeout);
    else work->wait();
  }
};

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1 << 20) throw Error(std::string("environment variable ") + name + "='" + v + "' is not a rank/size/port number");
  return static_cast<int>(x);
}

// A collective's failure (a peer closed the connection, or the timeout passed) as kiln's error.
[[noreturn]] void lost(const Group& g, const char* what, const std::exception& e) {
  std::string msg = e.what();
  if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
  throw Error("rank " + std::to_string(g.rank()) + " of " + std::to_string(g.size()) + ": the " + what +
              " across ranks failed (" + msg + "): another rank died, was stopped or cannot be reached. " +
              "Stopping; the run's last checkpoint is intact (rank 0 writes it), resume with the same world size");
}

}  // namespace

Options from_environment() {
  Options o;
  o.world_size = env_int("WORLD_SIZE", 1);
  o.rank = env_int("RANK", 0);
  o.local_rank = env_int("LOCAL_RANK", o.rank);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  o.master_port = env_int("MASTER_PORT", o.master_port);
  return o;
}

void set_master(Options& o, const std::string& s, const std::string& what) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size())
    throw Error(what + " = '" + s + "' is not ADDR:PORT");
  o.master_addr = s.substr(0, colon);
  try {
    size_t used = 0;
    int port = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || port <= 0 || port > 65535) throw std::out_of_range("port");
    o.master_port = port;
  } catch (const std::exception&) {
    throw Error(what + " = '" + s + "': the port is not a number in 1..65535");
  }
}

Group::~Group() = default;

std::shared_ptr<Group> Group::connect(const Options& o, const torch::Device& device) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw Error("rank " + std::to_string(o.rank) + " is not in 0.." + std::to_string(o.world_size - 1) + " (world size " +
                std::to_string(o.world_size) + ")");
  std::string backend = o.backend;
  if (backend == "auto") backend = device.is_cuda() ? "nccl" : "gloo";
  if (backend != "gloo" && backend != "nccl") throw Error("dist backend '" + o.backend + "' is not one of: auto | gloo | nccl");
  if (backend == "nccl" && !device.is_cuda()) throw Error("the nccl backend needs --device cuda; use gloo on the CPU");
  if (backend == "gloo" && device.is_cuda()) throw Error("kiln's gloo path runs on the CPU; use nccl with --device cuda");
  std::shared_ptr<Group> g(new Group());
  g->impl_ = std::make_unique<Impl>();
  g->rank_ = o.rank;
  g->size_ = o.world_size;
  g->backend_ = backend;
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  g->impl_->timeout = timeout;
  const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.numWorkers = static_cast<size_t>(o.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    g->impl_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    throw Error("rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ": could not " +
                (o.rank == 0 ? "serve the rendezvous at " + where + " and hear from every rank"
                             : "reach the rendezvous at " + where + " (rank 0)") +
                " within " + std::to_string(static_cast<int>(std::lround(o.timeout_s))) + " s: " + msg);
  }
  try {
    if (backend == "gloo") {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      if (const char* ifname = std::getenv("KILN_GLOO_IFNAME"); ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (o.master_addr == "127.0.0.1" || o.master_addr == "localhost")
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      g->impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(g->impl_->store, o.rank, o.world_size, opts);
    } else {
      g->impl_->pg = make_nccl_backend(g->impl_->store, o.rank, o.world_size, timeout);
      g->impl_->host_waits = false;
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    if (auto nl = msg.find('\n'); nl != std::string::npos) msg = msg.substr(0, nl);
    throw Error("rank " + std::to_string(o.rank) + ": the " + backend + " backend could not connect the " +
                std::to_string(o.world_size) + " ranks (rendezvous " + where + "): " + msg);
  }
  return g;
}

void Group::all_reduce_sum(std::vector<torch::Tensor>& t) {
  if (size_ == 1 || t.empty()) return;
  try {
    impl_->wait(impl_->pg->allreduce(t));
  } catch (const std::exception& e) {
    lost(*this, "all-reduce", e);
  }
}

void Group::broadcast(std::vector<torch::Tensor>& t, int root) {
  if (size_ == 1 || t.empty()) return;
  try {
    c10d::BroadcastOptions bo;
    bo.rootRank = root;
    for (auto& x : t) {  // one tensor a call: c10d's broadcast takes one per device
      std::vector<torch::Tensor> one{x};
      impl_->wait(impl_->pg->broadcast(one, bo));
    }
  } catch (const std::exception& e) {
    lost(*this, "broadcast", e);
  }
}

struct GradReducer::Bucket {
  torch::Tensor flat;
  int64_t expected = 0, ready = 0;
  bool started = false;
  c10::intrusive_ptr<c10d::Work> work;
};

GradReducer::GradReducer(Group& group, const std::vector<torch::Tensor>& params, bool average, int64_t bucket_bytes)
    : group_(group), average_(average), params_(params), where_(params.size()) {
  // Buckets in reverse order: backward reaches the last layers first.
  int64_t bytes = 0;
  std::vector<std::vector<size_t>> members;
  for (size_t k = params_.size(); k-- > 0;) {
    const auto& p = params_[k];
    if (members.empty() || bytes >= bucket_bytes ||
        params_[members.back().front()].scalar_type() != p.scalar_type() || params_[members.back().front()].device() != p.device()) {
      members.emplace_back();
      bytes = 0;
    }
    members.back().push_back(k);
    bytes += p.numel() * static_cast<int64_t>(p.element_size());
  }
  for (auto& m : members) {
    auto b = std::make_unique<Bucket>();
    int64_t at = 0;
    for (size_t k : m) {
      where_[k] = {buckets_.size(), at};
      at += params_[k].numel();
    }
    b->flat = torch::zeros({at}, params_[m.front()].options().requires_grad(false));
    b->expected = static_cast<int64_t>(m.size());
    buckets_.push_back(std::move(b));
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    hooks_.push_back(params_[k].register_hook([this, k](const torch::Tensor& g) {
      auto [b, at] = where_[k];
      auto& bucket = *buckets_[b];
      {
        torch::NoGradGuard ng;
        bucket.flat.slice(0, at, at + g.numel()).copy_(g.reshape({-1}));
      }
      if (++bucket.ready == bucket.expected) {
        launch(b);
        ++early_;
      }
      return g;
    }));
  }
}

void GradReducer::begin() {
  torch::NoGradGuard ng;
  for (auto& b : buckets_) {
    b->flat.zero_();  // the slots of parameters that get no gradient this step stay zero
    b->ready = 0;
    b->started = false;
    b->work.reset();
  }
  early_ = 0;
  finished_ = false;
}

GradReducer::~GradReducer() {
  for (size_t k = 0; k < hooks_.size(); ++k) params_[k].remove_hook(hooks_[k]);
}

void GradReducer::launch(size_t b) {
  auto& bucket = *buckets_[b];
  if (bucket.started) return;
  bucket.started = true;
  try {
    std::vector<torch::Tensor> one{bucket.flat};
    bucket.work = group_.impl().pg->allreduce(one);
  } catch (const std::exception& e) {
    lost(group_, "gradient all-reduce", e);
  }
}

void GradReducer::finish() {
  if (finished_) return;
  finished_ = true;
  // Buckets with a parameter that got no gradient: started now, in the same order on every
  // rank (the same model takes the same path).
  for (size_t b = 0; b < buckets_.size(); ++b) launch(b);
  try {
    for (auto& bucket : buckets_) {
      group_.impl().wait(bucket->work);
      if (average_) bucket->flat.div_(static_cast<double>(group_.size()));
    }
  } catch (const std::exception& e) {
    lost(group_, "gradient all-reduce", e);
  }
  torch::NoGradGuard ng;
  for (size_t k = 0; k < params_.size(); ++k) {
    auto& g = params_[k].mutable_grad();
    if (!g.defined()) continue;
    auto [b, at] = where_[k];
    g.copy_(buckets_[b]->flat.slice(0, at, at + g.numel()).view_as(g));
  }
}


namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

std::vector<int64_t> reduce_dims(const torch::Tensor& x) {
  std::vector<int64_t> d{0};
  for (int64_t i = 2; i < x.dim(); ++i) d.push_back(i);
  return d;
}
std::vector<int64_t> bcast_shape(const torch::Tensor& x) {
  std::vector<int64_t> s(static_cast<size_t>(x.dim()), 1);
  s[1] = x.size(1);
  return s;
}

struct SyncBN : torch::autograd::Function<SyncBN> {
  static torch::Tensor forward(AutogradContext* ctx, torch::Tensor x, torch::Tensor weight, torch::Tensor bias,
                               torch::Tensor running_mean, torch::Tensor running_var, double momentum, double eps,
                               int64_t group_ptr) {
    auto* g = reinterpret_cast<Group*>(group_ptr);
    const int64_t C = x.size(1);
    auto dims = reduce_dims(x);
    auto shape = bcast_shape(x);
    auto xf = x.to(torch::kFloat32);
    // One all-reduce: per-channel sums of x and x^2 and the example count, in float64.
    auto count = torch::full({1}, static_cast<double>(x.numel() / C), x.options().dtype(torch::kFloat64));
    auto stats = torch::cat({xf.sum(dims).to(torch::kFloat64), (xf * xf).sum(dims).to(torch::kFloat64), count});
    std::vector<torch::Tensor> v{stats};
    g->all_reduce_sum(v);
    const auto n = stats[2 * C];
    auto mean = stats.slice(0, 0, C) / n;
    auto var = (stats.slice(0, C, 2 * C) / n - mean * mean).clamp_min(0);
    {
      torch::NoGradGuard ng;
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()) * momentum);
      running_var.mul_(1 - momentum).add_((var * n / (n - 1)).to(running_var.scalar_type()) * momentum);
    }
    auto invstd = (var + eps).rsqrt().to(torch::kFloat32);
    auto xhat = (xf - mean.to(torch::kFloat32).view(shape)) * invstd.view(shape);
    auto w = weight.defined() ? weight.to(torch::kFloat32) : torch::ones({C}, xf.options());
    auto y = xhat * w.view(shape);
    if (bias.defined()) y = y + bias.to(torch::kFloat32).view(shape);
    ctx->save_for_backward({xhat, invstd, w, n});  // n stays on the device: no host read
    ctx->saved_data["group"] = group_ptr;
    ctx->saved_data["dtype"] = static_cast<int64_t>(x.scalar_type());
    ctx->saved_data["wdtype"] = weight.defined() ? static_cast<int64_t>(weight.scalar_type()) : int64_t{-1};
    return y.to(x.scalar_type());
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto xhat = saved[0], invstd = saved[1], w = saved[2], n = saved[3];
    auto* g = reinterpret_cast<Group*>(ctx->saved_data["group"].toInt());
    const int64_t C = xhat.size(1);
    auto dims = reduce_dims(xhat);
    auto shape = bcast_shape(xhat);
    auto dy = grads[0].to(torch::kFloat32);
    auto sum_dy = dy.sum(dims), sum_dy_xhat = (dy * xhat).sum(dims);
    // The input's gradient needs the sums over every rank's batch; the parameters' gradients
    // are this rank's share (the trainer's gradient all-reduce adds the shares).
    auto both = torch::cat({sum_dy, sum_dy_xhat}).to(torch::kFloat64);
    std::vector<torch::Tensor> v{both};
    g->all_reduce_sum(v);
    auto mean_dy = (both.slice(0, 0, C) / n).to(torch::kFloat32), mean_dy_xhat = (both.slice(0, C, 2 * C) / n).to(torch::kFloat32);
    auto dx = (w * invstd).view(shape) * (dy - mean_dy.view(shape) - xhat * mean_dy_xhat.view(shape));
    const auto dtype = static_cast<c10::ScalarType>(ctx->saved_data["dtype"].toInt());
    const int64_t wdtype = ctx->saved_data["wdtype"].toInt();
    torch::Tensor dw, db;
    if (wdtype >= 0 && ctx->needs_input_grad(1)) dw = sum_dy_xhat.to(static_cast<c10::ScalarType>(wdtype));
    if (ctx->needs_input_grad(2)) db = sum_dy.to(wdtype >= 0 ? static_cast<c10::ScalarType>(wdtype) : torch::kFloat32);
    return {dx.to(dtype), dw, db, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor sync_batch_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              torch::Tensor& running_mean, torch::Tensor& running_var, double momentum, double eps,
                              Group& group) {
  return SyncBN::apply(x, weight, bias, running_mean, running_var, momentum, eps, reinterpret_cast<int64_t>(&group));
}

}  // namespace kiln::dist
