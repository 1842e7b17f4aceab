// `kiln web`: a static site (docs/web.md) from the page and its WebAssembly (built by CMake
// when emscripten is installed), a .kiln model and the 1989 digits drawn from MNIST.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "kiln/build_info.h"
#include "kiln/core/error.h"
#include "kiln/core/fs.h"
#include "kiln/lecun/zipcode.h"
#include "kiln/runtime/runtime.h"

namespace kiln::cli {
namespace {
namespace fs = std::filesystem;

struct WebFlags {
  std::string model, data, out, web_dir;
};

int run_web(const std::string& model, const std::string& data, const std::string& out, std::string web_dir) {
  const std::vector<std::string> page = {"index.html", "kiln_api.js", "kiln.js"};
  auto has_page = [&](const std::string& d) {
    for (auto& f : page)
      if (!fs::exists(fs::path(d) / f)) return false;
    return true;
  };
  // The model first: a file the page could not run is refused whether or not this kiln built the page.
  nlohmann::json site{{"kiln_version", KILN_VERSION}, {"model", nullptr}, {"digits", nullptr}};
  std::string model_line = "no model (--model M.kiln adds one; the page can also open one)";
  Bytes model_bytes;
  if (!model.empty()) {
    model_bytes = read_file(model);
    try {
      auto m = kiln::rt::parse(model_bytes, model);  // refuse what the page could not run
      site["model"] = "model.kiln";
      site["model_source"] = fs::path(model).filename().string();
      model_line = model + " (" + m.kind + ", " + (m.int8 ? "int8" : "fp32") + ", " + std::to_string(model_bytes.size()) + " bytes)";
    } catch (const std::runtime_error& e) {
      throw Error(std::string("--model: ") + e.what());
    }
  }
  if (web_dir.empty()) {
    for (const char* d : {KILN_BUILD_WEB_DIR, KILN_INSTALL_WEB_DIR})
      if (has_page(d)) {
        web_dir = d;
        break;
      }
    if (web_dir.empty())
      throw Error(std::string("the page's WebAssembly (kiln.js) was not built (looked in ") + KILN_BUILD_WEB_DIR + " and " +
                  KILN_INSTALL_WEB_DIR + "): install emscripten and node-acorn (apt-get install emscripten node-acorn), "
                  "then reconfigure and rebuild kiln");
  } else if (!has_page(web_dir)) {
    throw Error("--web-dir '" + web_dir + "' does not hold index.html, kiln_api.js and kiln.js");
  }
  Bytes digits;
  std::string digits_line;
  try {
    auto mnist = load_dataset("mnist", resolve_data_root(data));
    auto z = kiln::lecun::make_zipcode_data(mnist);
    digits = kiln::lecun::encode_digits(z.train, z.test);
    site["digits"] = "digits.bin";
    site["digits_note"] = z.note + "; 8 bits a pixel";
    digits_line = z.note;
  } catch (const Error& e) {
    std::cerr << "kiln web: note: no 1989 digits, so the page cannot train the 1989 network (" << e.what() << ")\n";
    digits_line = "none (MNIST not found)";
  }
  make_dirs(out);
  for (auto& f : page) {
    auto b = read_file((fs::path(web_dir) / f).string());
    atomic_write((fs::path(out) / f).string(), b.data(), b.size());
  }
  if (!model_bytes.empty()) atomic_write((fs::path(out) / "model.kiln").string(), model_bytes.data(), model_bytes.size());
  if (!digits.empty()) atomic_write((fs::path(out) / "digits.bin").string(), digits.data(), digits.size());
  atomic_write((fs::path(out) / "site.json").string(), site.dump(2) + "\n");
  std::printf("wrote the page to %s\n  model: %s\n  1989 digits: %s\n  page: %s (kiln.js %lld bytes)\n"
              "serve it (browsers do not fetch from file://), e.g.: python3 -m http.server -d %s 8000, then open http://localhost:8000/\n",
              out.c_str(), model_line.c_str(), digits_line.c_str(), web_dir.c_str(),
              (long long)fs::file_size(fs::path(web_dir) / "kiln.js"), out.c_str());
  return 0;
}

}  // namespace

Command add_web(CLI::App& app, const std::string&) {
  auto f = std::make_shared<WebFlags>();
  auto* sub = app.add_subcommand("web", "Write a static web page that classifies what you draw or drop with a .kiln model, and trains the 1989 network live, all in WebAssembly (docs/web.md)");
  sub->add_option("--model,-m", f->model, "a model from `kiln export --format kiln` (int8 travels smallest)");
  sub->add_option("--out", f->out, "directory for the site")->required();
  sub->add_option("--data", f->data, "data root holding mnist/ (the 1989 digits)");
  sub->add_option("--web-dir", f->web_dir, "where the built page is (default: this build's, else the installed one)");
  return {sub, [f] { return run_web(f->model, f->data, f->out, f->web_dir); }};
}

}  // namespace kiln::cli
