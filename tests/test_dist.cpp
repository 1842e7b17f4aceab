// Data parallelism (kiln/dist/dist.h). One process here; tests/cli_dist.sh runs the ranks as
// processes (2 ranks x batch B against 1 process x batch 2B, and a killed rank).
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "helpers.h"
#include "kiln/data/loader.h"
#include "kiln/dist/dist.h"

namespace {
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int p = ntohs(a.sin_port);
  ::close(fd);
  return p;
}
// A job of one rank (its collectives are the identity), on a free loopback port.
std::shared_ptr<kiln::dist::Group> one_rank() {
  kiln::dist::Options o;
  o.master_port = free_port();
  o.timeout_s = 20;
  return kiln::dist::Group::connect(o, torch::kCPU);
}
}  // namespace

// With one rank, synchronised BN is batch norm: forward, running statistics and all three
// gradients against torch::batch_norm's.
TEST(Dist, SyncBatchNormOfOneRankIsBatchNorm) {
  auto g = one_rank();
  torch::manual_seed(3);
  auto x = (torch::randn({6, 4, 5, 3}, torch::kFloat64) * 2 + 1).to(torch::kFloat32);
  auto w = torch::rand({4}) + 0.5, b = torch::randn({4});
  auto up = torch::randn({6, 4, 5, 3});
  auto run = [&](bool sync) {
    auto xi = x.clone().requires_grad_(), wi = w.clone().requires_grad_(), bi = b.clone().requires_grad_();
    auto rm = torch::zeros({4}), rv = torch::ones({4});
    auto y = sync ? kiln::dist::sync_batch_norm(xi, wi, bi, rm, rv, 0.1, 1e-5, *g)
                  : torch::batch_norm(xi, wi, bi, rm, rv, true, 0.1, 1e-5, false);
    (y * up).sum().backward();
    return std::vector<torch::Tensor>{y.detach(), rm, rv, xi.grad(), wi.grad(), bi.grad()};
  };
  auto a = run(true), r = run(false);
  const char* names[] = {"output", "running_mean", "running_var", "grad x", "grad weight", "grad bias"};
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_LT((a[i] - r[i]).abs().max().item<double>(), 2e-5) << names[i] << "\n" << a[i] << "\n" << r[i];
}

// The overlapped gradient all-reduce's mechanics on one rank (the sum over one rank is the
// identity): every bucket starts during backward, as soon as its last gradient is in, and
// finish() leaves the gradients as backward made them.
TEST(Dist, GradReducerStartsBucketsDuringBackward) {
  auto g = one_rank();
  torch::manual_seed(5);
  torch::nn::Sequential net(torch::nn::Linear(6, 5), torch::nn::Tanh(), torch::nn::Linear(5, 4), torch::nn::Tanh(),
                            torch::nn::Linear(4, 3));
  auto x = torch::randn({7, 6});
  auto grads = [&](bool reduce, int64_t bucket_bytes, int* early) {
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    std::unique_ptr<kiln::dist::GradReducer> r;
    if (reduce) {
      r = std::make_unique<kiln::dist::GradReducer>(*g, net->parameters(), true, bucket_bytes);
      r->begin();
    }
    net->forward(x).pow(2).sum().backward();
    if (r) {
      *early = r->buckets_started_during_backward();
      r->finish();
    }
    std::vector<torch::Tensor> out;
    for (auto& p : net->parameters()) out.push_back(p.grad().clone());
    return out;
  };
  int early = -1;
  auto plain = grads(false, 0, nullptr);
  auto one_each = grads(true, 1, &early);  // 1 byte: every parameter its own bucket
  EXPECT_EQ(early, 6);
  auto one_bucket = grads(true, 1 << 20, &early);
  EXPECT_EQ(early, 1);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_TRUE(torch::allclose(one_each[i], plain[i], 0, 0));
    EXPECT_TRUE(torch::allclose(one_bucket[i], plain[i], 0, 0));
  }
  // One reducer kept across steps (as the trainer keeps it): each step begins afresh.
  kiln::dist::GradReducer kept(*g, net->parameters(), true, 1);
  for (int step = 0; step < 2; ++step) {
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    kept.begin();
    net->forward(x * (step + 1)).pow(2).sum().backward();
    EXPECT_EQ(kept.buckets_started_during_backward(), 6) << "step " << step;
    kept.finish();
    std::vector<torch::Tensor> reduced;
    for (auto& p : net->parameters()) reduced.push_back(p.grad().clone());
    for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
    kept.begin();  // (its hooks fire again; the plain gradients are read before finish)
    net->forward(x * (step + 1)).pow(2).sum().backward();
    auto params = net->parameters();
    for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::allclose(reduced[i], params[i].grad(), 0, 0)) << i;
    kept.finish();
  }
}

// The ranks' shards of an epoch: disjoint, together the single process's first per_rank * W
// positions, and batch k of the ranks together is the single process's batch k of W x B.
TEST(Dist, ShardsAreStridedAndCarryTheirDraws) {
  auto tt = kiln::test::synthetic(103, 10);
  kiln::DeviceLoader L(tt.train, torch::kCPU, torch::kFloat32, {}, {});
  kiln::AugmentOptions aug;
  aug.pad = 2, aug.flip = true, aug.cutout = 3;
  auto p = L.plan(7, 1, true, aug);
  const int64_t W = 3, per = 103 / W, B = 5;
  std::vector<kiln::EpochPlan> shards;
  for (int64_t r = 0; r < W; ++r) shards.push_back(kiln::shard_plan(p, r, W, per));
  for (int64_t r = 0; r < W; ++r) {
    ASSERT_EQ(shards[r].order.size(0), per);
    for (int64_t j = 0; j < per; ++j) {
      ASSERT_EQ(shards[r].order[j].item<int64_t>(), p.order[j * W + r].item<int64_t>());
      ASSERT_EQ(shards[r].dy[j].item<int64_t>(), p.dy[j * W + r].item<int64_t>());
      ASSERT_EQ(shards[r].flip[j].item<bool>(), p.flip[j * W + r].item<bool>());
      ASSERT_EQ(shards[r].cut_x[j].item<int64_t>(), p.cut_x[j * W + r].item<int64_t>());
    }
  }
  // batch 2 of each rank = the single process's batch 2 of W*B, as a set, with the same pixels
  auto whole = L.batch(p, 2, W * B, aug);
  std::vector<torch::Tensor> xs, ys;
  for (int64_t r = 0; r < W; ++r) {
    auto b = L.batch(shards[r], 2, B, aug);
    xs.push_back(b.x), ys.push_back(b.y);
  }
  // rank r's example i is position W*i + r of the single batch
  auto stacked = torch::stack(xs, 1).reshape_as(whole.x), labels = torch::stack(ys, 1).reshape({-1});
  EXPECT_TRUE(torch::equal(stacked, whole.x));
  EXPECT_TRUE(torch::equal(labels, whole.y));
}

TEST(Dist, BadLaunchSettingsAreRefusedByName) {
  kiln::dist::Options o;
  kiln::test::expect_error_containing([&] { kiln::dist::set_master(o, "host", "--master"); }, "--master = 'host' is not ADDR:PORT");
  kiln::test::expect_error_containing([&] { kiln::dist::set_master(o, "h:99999", "--master"); }, "port is not a number");
  o.world_size = 2, o.rank = 2;
  kiln::test::expect_error_containing([&] { kiln::dist::Group::connect(o, torch::kCPU); }, "rank 2 is not in 0..1");
  ::setenv("WORLD_SIZE", "two", 1);
  kiln::test::expect_error_containing([] { kiln::dist::from_environment(); }, "WORLD_SIZE='two'");
  ::unsetenv("WORLD_SIZE");
}
