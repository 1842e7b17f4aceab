#include "kiln/core/config.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <toml++/toml.h>

#include "kiln/build_info.h"
#include "kiln/core/error.h"

namespace kiln {
namespace fs = std::filesystem;


namespace {

std::string type_name(const ConfigValue& v) {
  switch (v.index()) {
    case 0: return "a bool";
    case 1: return "an integer";
    case 2: return "a float";
    case 3: return "a string";
    case 4: return "a list of integers";
    default: return "a list of [x, y] pairs";
  }
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1u : 0u)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Converts a TOML node to the type of `like`; returns false when it does not fit.
bool convert(const toml::node& n, const ConfigValue& like, ConfigValue& out) {
  switch (like.index()) {
    case 0:
      if (auto v = n.as_boolean()) return out = v->get(), true;
      return false;
    case 1:
      if (auto v = n.as_integer()) return out = v->get(), true;
      return false;
    case 2:
      if (auto v = n.as_floating_point()) return out = v->get(), true;
      if (auto v = n.as_integer()) return out = static_cast<double>(v->get()), true;
      return false;
    case 3:
      if (auto v = n.as_string()) return out = v->get(), true;
      return false;
    case 4: {
      auto arr = n.as_array();
      if (!arr) return false;
      std::vector<int64_t> xs;
      for (auto& e : *arr) {
        auto v = e.as_integer();
        if (!v) return false;
        xs.push_back(v->get());
      }
      return out = xs, true;
    }
    default: {
      auto arr = n.as_array();
      if (!arr) return false;
      Knots ks;
      for (auto& e : *arr) {
        auto pair = e.as_array();
        if (!pair || pair->size() != 2) return false;
        double xy[2];
        for (size_t k = 0; k < 2; ++k) {
          auto& p = (*pair)[k];
          if (auto f = p.as_floating_point()) xy[k] = f->get();
          else if (auto i = p.as_integer()) xy[k] = static_cast<double>(i->get());
          else return false;
        }
        ks.emplace_back(xy[0], xy[1]);
      }
      return out = ks, true;
    }
  }
}

const ConfigKey* find_key(const std::string& key) {
  for (auto& k : Config::schema())
    if (k.key == key) return &k;
  return nullptr;
}

std::string unknown_key_message(const std::string& key, const std::string& where) {
  std::string msg = where + "unknown configuration key '" + key + "'";
  auto near = Config::nearest_key(key);
  if (!near.empty()) msg += "; did you mean '" + near + "'?";
  return msg + " ('kiln presets --keys' lists every key)";
}

void validate(const std::string& key, const ConfigValue& v) {
  // No float key means anything as NaN or infinity (optim.lr = nan would reach LibTorch as
  // "Invalid learning rate: nan"; a NaN weight decay would train to NaN without a word).
  if (auto* d = std::get_if<double>(&v); d && !std::isfinite(*d))
    throw Error(key + " = " + std::to_string(*d) + " is not a finite number");
  if (auto* ks = std::get_if<Knots>(&v))
    for (auto& [x, y] : *ks)
      if (!std::isfinite(x) || !std::isfinite(y)) throw Error(key + ": every [x, value] must be finite numbers");
  if (auto* k = find_key(key)) k->rule.check(key, v);
}

void flatten(const toml::table& t, const std::string& prefix, std::vector<std::pair<std::string, const toml::node*>>& out) {
  for (auto& [k, node] : t) {
    std::string key = prefix.empty() ? std::string(k.str()) : prefix + "." + std::string(k.str());
    if (auto sub = node.as_table()) {
      // Inline tables of known leaf keys do not exist in the schema, so recurse always.
      flatten(*sub, key, out);
    } else {
      out.emplace_back(key, &node);
    }
  }
}

}  // namespace

Config::Config() {
  for (auto& k : schema()) values_[k.key] = k.default_value;
}

std::string Config::nearest_key(const std::string& key) {
  std::string best;
  size_t best_d = std::string::npos;
  // Compare against the full key and against its last part, so "lr" finds "optim.lr".
  for (auto& k : schema()) {
    auto leaf = k.key.substr(k.key.find('.') + 1);
    size_t d = std::min(edit_distance(key, k.key), edit_distance(key, leaf) + 1);
    if (d < best_d) best_d = d, best = k.key;
  }
  return best_d <= std::max<size_t>(3, key.size() / 3) ? best : "";
}

const ConfigValue& Config::get(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw Error(unknown_key_message(key, ""));
  return it->second;
}

const ConfigValue& Config::value(const std::string& key) const { return get(key); }

void Config::set_value(const std::string& key, ConfigValue v) {
  auto& cur = get(key);
  if (cur.index() != v.index()) {
    if (cur.index() == 2 && v.index() == 1) v = static_cast<double>(std::get<int64_t>(v));
    else throw Error("configuration key '" + key + "' takes " + type_name(cur) + ", not " + type_name(v));
  }
  validate(key, v);
  values_[key] = std::move(v);
}

void Config::set(const std::string& key, const std::string& text) {
  auto& cur = get(key);
  ConfigValue out;
  toml::table t;
  bool parsed = true;
  try {
    t = toml::parse("v = " + text);
  } catch (const toml::parse_error&) {
    parsed = false;
  }
  if (parsed && convert(*t.get("v"), cur, out)) {
    set_value(key, out);
    return;
  }
  if (cur.index() == 3) {  // bare word for a string key
    set_value(key, text);
    return;
  }
  throw Error("--set " + key + "=" + text + ": '" + text + "' is not " + type_name(cur) +
              " (TOML syntax: 0.1, 12, true, \"text\", [1, 2], [[0, 0], [5, 1]])");
}

void Config::set_assignment(const std::string& a) {
  auto eq = a.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--set expects key=value, got '" + a + "'");
  set(a.substr(0, eq), a.substr(eq + 1));
}

Config Config::from_toml_string(const std::string& text, const std::string& what) {
  toml::table t;
  try {
    t = toml::parse(text, what);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << what << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
    throw Error(os.str());
  }
  Config c;
  if (auto base = t.get("base")) {
    auto name = base->as_string();
    if (!name) throw Error(what + ": 'base' must be a preset name");
    c = from_file(find_preset(name->get()));
  }
  std::vector<std::pair<std::string, const toml::node*>> items;
  flatten(t, "", items);
  for (auto& [key, node] : items) {
    if (key == "base") continue;
    auto* spec = find_key(key);
    auto line = std::to_string(node->source().begin.line);
    if (!spec) throw Error(unknown_key_message(key, what + ":" + line + ": "));
    ConfigValue v;
    if (!convert(*node, spec->default_value, v))
      throw Error(what + ":" + line + ": '" + key + "' takes " + type_name(spec->default_value));
    try {
      c.set_value(key, v);
    } catch (const Error& e) {
      throw Error(what + ":" + line + ": " + e.what());
    }
  }
  return c;
}

Config Config::from_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error("cannot open preset '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  return from_toml_string(ss.str(), path);
}

bool Config::b(const std::string& key) const { return std::get<bool>(get(key)); }
int64_t Config::i(const std::string& key) const { return std::get<int64_t>(get(key)); }
double Config::f(const std::string& key) const {
  auto& v = get(key);
  return v.index() == 1 ? static_cast<double>(std::get<int64_t>(v)) : std::get<double>(v);
}
const std::string& Config::s(const std::string& key) const { return std::get<std::string>(get(key)); }
const std::vector<int64_t>& Config::ints(const std::string& key) const {
  return std::get<std::vector<int64_t>>(get(key));
}
const Knots& Config::knots(const std::string& key) const { return std::get<Knots>(get(key)); }

namespace {
void insert_value(toml::table& t, const std::string& leaf, const ConfigValue& v) {
  switch (v.index()) {
    case 0: t.insert(leaf, std::get<bool>(v)); break;
    case 1: t.insert(leaf, std::get<int64_t>(v)); break;
    case 2: t.insert(leaf, std::get<double>(v)); break;
    case 3: t.insert(leaf, std::get<std::string>(v)); break;
    case 4: {
      toml::array a;
      for (auto x : std::get<std::vector<int64_t>>(v)) a.push_back(x);
      t.insert(leaf, std::move(a));
      break;
    }
    default: {
      toml::array a;
      for (auto& [x, y] : std::get<Knots>(v)) a.push_back(toml::array{x, y});
      t.insert(leaf, std::move(a));
    }
  }
}
}  // namespace

std::string Config::to_toml() const {
  toml::table root;
  for (auto& k : schema()) {
    auto dot = k.key.find('.');
    auto table = k.key.substr(0, dot), leaf = k.key.substr(dot + 1);
    if (!root.contains(table)) root.insert(table, toml::table{});
    insert_value(*root[table].as_table(), leaf, values_.at(k.key));
  }
  std::ostringstream os;
  os << root << "\n";
  return os.str();
}

std::string Config::to_json() const {
  nlohmann::ordered_json j;
  for (auto& k : schema()) {
    auto& v = values_.at(k.key);
    std::visit([&](auto&& x) { j[k.key] = x; }, v);
  }
  return j.dump(2);
}

std::string find_preset(const std::string& name) {
  if (fs::is_regular_file(name)) return name;
  std::vector<std::string> dirs;
  if (const char* e = std::getenv("KILN_CONFIGS")) dirs.push_back(e);
  dirs.push_back(KILN_SOURCE_CONFIG_DIR);
  dirs.push_back(KILN_INSTALL_CONFIG_DIR);
  for (auto& d : dirs) {
    auto p = fs::path(d) / (name + ".toml");
    if (fs::is_regular_file(p)) return p.string();
  }
  std::string known;
  for (auto& p : list_presets()) known += " " + p;
  throw Error("no preset named '" + name + "' (known:" + known + "); a path to a .toml file also works");
}

std::vector<std::string> list_presets() {
  std::set<std::string> names;
  std::vector<std::string> dirs;
  if (const char* e = std::getenv("KILN_CONFIGS")) dirs.push_back(e);
  dirs.push_back(KILN_SOURCE_CONFIG_DIR);
  dirs.push_back(KILN_INSTALL_CONFIG_DIR);
  for (auto& d : dirs) {
    std::error_code ec;
    for (auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".toml") names.insert(e.path().stem().string());
  }
  return {names.begin(), names.end()};
}

}  // namespace kiln
