// airbench96_faster's proxy filter (kiln/train/proxy_filter.h) against its definition, in runs
// (kept examples, exact resume, the static step's twin) and in its refusals.
#include "helpers.h"
#include "kiln/core/error.h"
#include "kiln/nn/airbench.h"
#include "kiln/train/loss.h"
#include "kiln/train/optim.h"
#include "kiln/train/proxy_filter.h"

using namespace kiln;
using kiln::test::expect_close_runs;
using kiln::test::expect_exact_resume;
using kiln::test::quiet_options;
using kiln::test::read_metrics;
using kiln::test::synthetic;
using kiln::test::TempDir;
using kiln::test::tiny_airbench;
using kiln::test::without_times;

// airbench96_faster's proxy filter (kiln/train/proxy_filter.h) against its definition: the
// kept examples are the top-k of the proxy's label-smoothed loss; the proxy's weights move only
// on every train_every-th batch, by exactly one SGD step on the summed loss of its kept ones.
TEST(ProxyFilter, KeepsTheHardestAndTrainsTheProxyEveryNthBatch) {
  Config c = tiny_airbench("cifar10-96-faster");
  c.set("filter.widths", "[8, 8, 8]");
  Config pc = proxy_config(c);
  EXPECT_EQ(pc.i("model.convs_per_group"), 2);
  EXPECT_EQ(pc.i("model.whiten_bias_epochs"), 0);
  auto data = torch::rand({200, 3, 16, 16}) * 2 - 1;
  auto make = [&] {
    torch::manual_seed(5);
    auto m = make_model(pc, 3, 10);
    m->fit_to_data(data);
    return m;
  };
  auto proxy = make(), twin = make();
  const double lr = 3e-4;
  FilterOptions fo;
  fo.keep = 24;
  fo.train_every = 4;
  fo.label_smoothing = 0.2;
  fo.sum_loss = true;
  ProxyFilter f(proxy, make_sgd(pc, *proxy, lr), fo);
  auto twin_sgd = make_sgd(pc, *twin, lr);
  auto params = [](Classifier& m) {
    std::vector<torch::Tensor> v;
    for (auto& p : m.parameters()) v.push_back(p.detach().clone());
    return v;
  };
  torch::manual_seed(9);
  for (int64_t step : {1, 4}) {
    auto x = torch::randn({64, 3, 16, 16}), y = torch::randint(0, 10, {64});
    auto before = params(*proxy);
    auto idx = f.select(x, y, step, lr);
    twin->train();
    auto per = classification_loss_per_example(twin->forward(x), y, 0.2);
    auto want = std::get<0>(std::get<1>(per.detach().topk(24)).sort());
    ASSERT_TRUE(torch::equal(idx, want)) << "step " << step;
    // every kept loss is at least every dropped one
    auto mask = torch::ones({64}, torch::kBool).index_fill_(0, idx, false);
    EXPECT_GE(per.detach().index_select(0, idx).min().item<double>(), per.detach().masked_select(mask).max().item<double>());
    auto after = params(*proxy);
    if (step % 4 != 0) {
      for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i])) << "forward-only step moved a weight";
    } else {
      twin_sgd.set_lr(lr);
      twin_sgd.zero_grad();
      per.index_select(0, idx).sum().backward();
      twin_sgd.step();
      bool moved = false;
      auto tw = params(*twin);
      for (size_t i = 0; i < before.size(); ++i) {
        moved = moved || !torch::equal(before[i], after[i]);
        EXPECT_TRUE(torch::allclose(after[i], tw[i], 1e-5, 1e-6)) << "parameter " << i;
      }
      EXPECT_TRUE(moved);
    }
    // BN statistics move on every batch (train mode), as the twin's
    auto bp = proxy->buffers(), bt = twin->buffers();
    for (size_t i = 0; i < bp.size(); ++i) EXPECT_TRUE(torch::allclose(bp[i], bt[i], 1e-5, 1e-6)) << "buffer " << i;
  }
  EXPECT_EQ(f.forward_images, 128);
  EXPECT_EQ(f.trained_images, 24);
}

// A run with the filter trains the main network on filter.keep examples a step, records the
// proxy in final.json, and resumes exactly (the proxy and its optimiser are checkpointed); the
// static step (the CUDA graph's device-generic twin) gives the same numbers.
TEST(ProxyFilter, RunsTrainOnTheKeptExamplesResumeExactlyAndMatchTheStaticStep) {
  auto tt = synthetic(512, 100);
  Config c = tiny_airbench("cifar10-96-faster");
  c.set("filter.widths", "[8, 8, 8]");
  c.set("filter.keep", "32");
  c.set("schedule.epochs", "2.5");
  c.set("model.whiten_bias_epochs", "1");
  TempDir d;
  auto full = train(c, tt, quiet_options(d / "full"));
  auto fj = nlohmann::json::parse(read_file(d / "full/final.json"));
  EXPECT_EQ(fj["filter"]["keep"], 32);
  EXPECT_EQ(fj["filter"]["batch"], 64);
  EXPECT_GT(fj["filter"]["proxy_parameters"].get<int64_t>(), 0);
  auto m = read_metrics(d / "full");
  ASSERT_EQ(m.size(), 3u);
  // A full epoch is 8 steps of 32 kept examples: the main network saw 256 images, not 512.
  EXPECT_NEAR(m[0]["images_per_s"].get<double>() * m[0]["epoch_seconds"].get<double>(), 256.0, 1e-6 * 256);
  expect_exact_resume(c, tt, d.path.string(), {6, 13}, "filtered", d / "full");
  // The static step against the eager path, within 2e-4 or 3x the eager path's own thread-order
  // noise (expect_close_runs).
  Config st = c;
  st.set("train.static_step", "true");
  train(st, tt, quiet_options(d / "static"));
  const int threads = torch::get_num_threads();
  torch::set_num_threads(threads == 1 ? 2 : 1);
  train(c, tt, quiet_options(d / "noise"));
  torch::set_num_threads(threads);
  expect_close_runs(m, read_metrics(d / "static"), read_metrics(d / "noise"), "filtered static step");
  // Without the filter the same run is a different one (the filter is not a no-op).
  Config off = c;
  off.set("filter.keep", "0");
  train(off, tt, quiet_options(d / "off"));
  EXPECT_NE(without_times(read_metrics(d / "off")), without_times(m));
}

TEST(ProxyFilter, BadSettingsNameTheirKey) {
  auto tt = synthetic(256, 50);
  auto expect_error = [&](Config c, const std::string& needle) {
    try {
      train(c, tt, quiet_options());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  Config c = tiny_airbench("cifar10-96-faster");
  c.set("filter.keep", "64");  // = the batch
  expect_error(c, "filter.keep = 64 must be smaller than data.batch_size = 64");
  Config r = Config::from_file(find_preset("cifar10-resnet9-baseline"));
  r.set("filter.keep", "8");
  r.set("data.batch_size", "32");
  expect_error(r, "filter.keep: the proxy is an airbench network");
  Config w = tiny_airbench("cifar10-96-faster");
  EXPECT_THROW(w.set("filter.widths", "[8, 8]"), Error);
  EXPECT_THROW(w.set("filter.train_every", "0"), Error);
  EXPECT_THROW(w.set("filter.keep", "-1"), Error);
}
