#include "classify_files.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <thread>

#include "kiln/pixels/pixels.h"

namespace kiln::tools {

std::vector<float> prepare(const kiln::rt::Model& m, const std::string& model_path, const std::string& image, bool grey_by_luma) {
  return kiln::px::model_input(kiln::px::read(image), m.image_fit(), image, model_path, grey_by_luma);
}

namespace {
std::vector<double> softmax(const std::vector<float>& z) {
  const double top = *std::max_element(z.begin(), z.end());
  std::vector<double> p(z.size());
  double sum = 0;
  for (size_t i = 0; i < z.size(); ++i) sum += p[i] = std::exp(static_cast<double>(z[i]) - top);
  for (auto& v : p) v /= sum;
  return p;
}

void write_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!(f << text) || !f.flush()) throw std::runtime_error("cannot write '" + tmp + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write '" + path + "'");
  }
}
}  // namespace

int classify_files(const kiln::rt::Model& m, const std::string& model_path, const std::vector<std::string>& images, long top,
                   const std::string& json, bool grey_by_luma, long threads) {
  // Every file read and classified before any line: thread t takes files t, t + T, ...; the first
  // failure in the files' order is the one reported.
  std::vector<std::vector<double>> probs(images.size());
  std::vector<std::string> failed(images.size());
  auto work = [&](size_t t) {
    for (size_t i = t; i < images.size(); i += static_cast<size_t>(threads)) try {
        probs[i] = softmax(m.predict(prepare(m, model_path, images[i], grey_by_luma).data()));
      } catch (const std::exception& e) {
        failed[i] = e.what();
      }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < static_cast<size_t>(threads); ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (const auto& f : failed)
    if (!f.empty()) throw std::runtime_error(f);
  const std::string resize = m.resize.empty() ? "not recorded" : m.resize;
  std::printf("%s: %zu image(s) as %lld x %lld x %lld (data.resize = %s), eval.tta = %s; %s\n", model_path.c_str(), images.size(),
              static_cast<long long>(m.stored_channels), static_cast<long long>(m.stored_height), static_cast<long long>(m.stored_width),
              resize.c_str(), m.tta.c_str(), kiln::rt::integrity(m).c_str());
  const size_t k = std::min(static_cast<size_t>(top), m.classes.size());
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& p = probs[i];
    std::vector<size_t> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    nlohmann::ordered_json best = nlohmann::ordered_json::array();
    std::printf("%s: %s %.1f%%", images[i].c_str(), m.classes.at(order[0]).c_str(), 100 * p[order[0]]);
    for (size_t j = 0; j < k; ++j) {
      if (j > 0) std::printf(j == 1 ? " (then %s %.1f%%" : ", %s %.1f%%", m.classes.at(order[j]).c_str(), 100 * p[order[j]]);
      best.push_back({{"class", m.classes.at(order[j])}, {"index", order[j]}, {"probability", p[order[j]]}});
    }
    std::printf("%s\n", k > 1 ? ")" : "");
    rows.push_back({{"file", images[i]}, {"top", best}});
  }
  if (!json.empty()) {
    const nlohmann::ordered_json j{{"model", model_path},
                                   {"input", {{"channels", m.stored_channels}, {"height", m.stored_height}, {"width", m.stored_width}, {"resize", resize}}},
                                   {"tta", m.tta},
                                   {"predictions", rows}};
    write_atomically(json, j.dump(1) + "\n");
  }
  return 0;
}

}  // namespace kiln::tools
