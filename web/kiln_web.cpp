#include "kiln_web.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/lecun/trainer1989.h"
#include "kiln/pixels/pixels.h"
#include "kiln/runtime/runtime.h"

namespace {

std::string g_error;
std::unique_ptr<kiln::rt::Model> g_model;
std::vector<float> g_input, g_logits;
std::string g_info;
int64_t g_file_bytes = 0;

kiln::lecun::Digits g_train, g_test;
std::unique_ptr<kiln::lecun::Trainer1989> g_zip;
int g_passes = 0, g_done = 0, g_step = 0;
double g_loss_sum = 0, g_clock = 0;
std::string g_metrics = "[]", g_name;
float g_zip_in[256];

std::string quoted(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += static_cast<char>(c);
    else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      o += buf;
    } else o += static_cast<char>(c);
  }
  return o + "\"";
}

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    g_error = e.what();
    return -1;
  }
}

std::vector<kiln::lecun::Recipe> recipes() {
  std::vector<kiln::lecun::Recipe> rs{kiln::lecun::classic_recipe()};
  auto modern = kiln::lecun::modern_recipes();
  rs.insert(rs.end(), modern.begin() + 1, modern.end());  // modern row 0 is the classic recipe again
  return rs;
}

// The model's input for a decoded picture (kw_image_prepare*).
void prepare_input(const kiln::px::Image& img, int grey) {
  if (!g_model) throw std::runtime_error("no model loaded");
  const auto x = kiln::px::model_input(img, g_model->image_fit(), "the picture", "the model", grey != 0);
  if (x.size() != g_input.size()) throw std::runtime_error("the prepared picture is not the model's input size");
  std::copy(x.begin(), x.end(), g_input.begin());  // into the buffer kw_model_input() handed out
}

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

extern "C" {

const char* kw_error() { return g_error.c_str(); }

int kw_model_load(const uint8_t* bytes, int size) {
  return guarded([&] {
    if (!bytes || size <= 0) throw std::runtime_error("no model bytes");
    auto m = std::make_unique<kiln::rt::Model>(kiln::rt::parse(std::vector<uint8_t>(bytes, bytes + size), "model.kiln"));
    int64_t params = 0;
    for (const auto& [name, t] : m->tensors)  // BN's running statistics are buffers, not parameters
      if (name.find("running_") == std::string::npos) params += static_cast<int64_t>(t.data.size());
    std::string info = "{\"kind\":" + quoted(m->kind) + ",\"classes\":[";
    for (size_t i = 0; i < m->classes.size(); ++i) info += (i ? "," : "") + quoted(m->classes[i]);
    info += "],\"channels\":" + std::to_string(m->channels) + ",\"height\":" + std::to_string(m->height) +
            ",\"width\":" + std::to_string(m->width) + ",\"int8\":" + (m->int8 ? "true" : "false") +
            ",\"params\":" + std::to_string(params) + ",\"file_bytes\":" + std::to_string(size) +
            ",\"integrity\":" + quoted(kiln::rt::integrity(*m)) + ",\"meta\":{";
    bool first = true;
    for (const auto& [k, v] : m->meta) {
      info += (first ? "" : ",") + quoted(k) + ":" + quoted(v);
      first = false;
    }
    info += "}}";
    g_input.assign(static_cast<size_t>(m->channels * m->height * m->width), 0.f);
    g_logits.clear();
    g_info = info;
    g_file_bytes = size;
    g_model = std::move(m);
  });
}

const char* kw_model_info() { return g_model ? g_info.c_str() : "null"; }
float* kw_model_input() { return g_model ? g_input.data() : nullptr; }
int kw_model_classes() { return g_model ? static_cast<int>(g_model->classes.size()) : 0; }

int kw_image_prepare(const uint8_t* bytes, int size, int grey) {
  return guarded([&] {
    if (!bytes || size <= 0) throw std::runtime_error("no picture bytes");
    prepare_input(kiln::px::decode(std::vector<uint8_t>(bytes, bytes + size), "the picture"), grey);
  });
}

int kw_image_prepare_rgba(const uint8_t* rgba, int w, int h, int grey) {
  return guarded([&] {
    if (!rgba) throw std::runtime_error("no picture pixels");
    kiln::px::check_size(w, h, "the picture");
    const size_t n = static_cast<size_t>(w) * static_cast<size_t>(h) * 4;
    prepare_input(kiln::px::Image{4, h, w, std::vector<uint8_t>(rgba, rgba + n)}, grey);
  });
}

const float* kw_model_predict() {
  if (!g_model) {
    g_error = "no model loaded";
    return nullptr;
  }
  if (guarded([&] { g_logits = g_model->predict(g_input.data()); }) != 0) return nullptr;
  return g_logits.data();
}

int kw_zip_load(const uint8_t* bytes, int size) {
  return guarded([&] {
    if (!bytes || size <= 0) throw std::runtime_error("no digits bytes");
    kiln::lecun::decode_digits(std::vector<uint8_t>(bytes, bytes + size), "digits.bin", g_train, g_test);
    if (g_train.size() == 0) throw std::runtime_error("digits.bin holds no training digits");
    g_zip.reset();
  });
}

int kw_zip_recipes() { return static_cast<int>(recipes().size()); }

const char* kw_zip_recipe_name(int recipe) {
  auto rs = recipes();
  if (recipe < 0 || recipe >= static_cast<int>(rs.size())) return "";
  g_name = rs[static_cast<size_t>(recipe)].name;
  return g_name.c_str();
}

int kw_zip_recipe_passes(int recipe) {
  auto rs = recipes();
  return recipe < 0 || recipe >= static_cast<int>(rs.size()) ? 0 : rs[static_cast<size_t>(recipe)].passes;
}

int kw_zip_start(int recipe, int seed, int passes) {
  return guarded([&] {
    auto rs = recipes();
    if (recipe < 0 || recipe >= static_cast<int>(rs.size())) throw std::runtime_error("no recipe " + std::to_string(recipe));
    if (g_train.size() == 0) throw std::runtime_error("load the digits first");
    auto r = rs[static_cast<size_t>(recipe)];
    if (passes > 0) r.passes = passes;  // AdamW's decay then runs over these passes
    g_zip = std::make_unique<kiln::lecun::Trainer1989>(r, static_cast<uint64_t>(seed));
    g_passes = r.passes, g_done = 0, g_step = 0, g_loss_sum = 0, g_metrics = "[]", g_clock = 0;
  });
}

int kw_zip_train(int max_steps) {
  if (!g_zip) {
    g_error = "kw_zip_start first";
    return -1;
  }
  int taken = 0;
  const double t0 = now_s();
  while (taken < max_steps && g_done < g_passes && g_step < g_train.size()) {
    g_loss_sum += g_zip->step(g_train, g_step++, g_done);
    ++taken;
  }
  if (g_done < g_passes && g_step == g_train.size()) {
    int train_misses = 0, test_misses = 0;
    const double train_error = g_zip->errors(g_train, train_misses), test_error = g_zip->errors(g_test, test_misses);
    g_clock += now_s() - t0;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"pass\":%d,\"train_loss\":%.9g,\"train_error\":%.9g,\"test_error\":%.9g,\"train_misses\":%d,"
                  "\"test_misses\":%d,\"seconds\":%.4f}",
                  g_done + 1, g_loss_sum / g_train.size(), train_error, test_error, train_misses, test_misses, g_clock);
    g_metrics.pop_back();
    g_metrics += (g_done ? "," : "") + std::string(buf) + "]";
    ++g_done, g_step = 0, g_loss_sum = 0;
    return taken;
  }
  g_clock += now_s() - t0;
  return taken;
}

int kw_zip_passes_done() { return g_done; }
int kw_zip_passes() { return g_passes; }
int kw_zip_step_in_pass() { return g_step; }
int kw_zip_train_size() { return g_train.size(); }
const char* kw_zip_metrics() { return g_metrics.c_str(); }
float* kw_zip_input() { return g_zip_in; }

int kw_zip_predict() {
  if (!g_zip) {
    g_error = "no 1989 network: kw_zip_start first";
    return -1;
  }
  return g_zip->net.predict(g_zip_in);
}

const float* kw_zip_outputs() { return g_zip ? g_zip->net.outputs() : nullptr; }

}  // extern "C"
