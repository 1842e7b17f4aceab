// A run's configuration: every hyperparameter is a dotted key ("optim.lr") with a type,
// a default and a one-line doc, declared once in config.cpp's schema. Presets are TOML
// files in configs/ (tables give the first part of the key); `--set key=value` overrides
// with the same type checks. Unknown keys are errors that suggest the nearest known key.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace kiln {

// Piecewise-linear knots: (x, y) pairs with increasing x.
using Knots = std::vector<std::pair<double, double>>;
using ConfigValue = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, Knots>;

// What a key accepts beyond its type, in its schema row; Config::set_value checks it for every
// source (presets, --set, code), after refusing NaN and infinite floats.
struct KeyRule {
  enum class Kind { kAny, kPositive, kNonNegative, kProbability, kFactor, kOneOf, kWidths, kIncreasingKnots };
  Kind kind = Kind::kAny;
  std::vector<std::string> choices;   // kOneOf
  size_t min_size = 0, max_size = 0;  // kWidths: how many integers (each positive)
  std::string size_message;           // kWidths: the refusal of another count
  std::string describe() const;       // "> 0", "in [0, 1)", "one of: a | b", ... ("" for kAny)
  void check(const std::string& key, const ConfigValue& v) const;  // throws kiln::Error naming the key
};
KeyRule positive();       // > 0
KeyRule non_negative();   // >= 0
KeyRule probability();    // in [0, 1)
KeyRule factor();         // in (0, 1]
KeyRule one_of(std::vector<std::string> choices);
KeyRule widths(size_t min_size, size_t max_size, std::string size_message);
KeyRule increasing_knots();  // at least two [x, value] pairs, x increasing

struct ConfigKey {
  std::string key;
  ConfigValue default_value;
  std::string doc;
  KeyRule rule = {};
};

class Config {
 public:
  // Every key kiln knows, in the order they are documented and written out.
  static const std::vector<ConfigKey>& schema();
  // The defaults of the schema.
  Config();
  // Reads a preset: TOML file on top of the defaults. `base` chains presets ("base = name").
  static Config from_file(const std::string& path);
  static Config from_toml_string(const std::string& text, const std::string& what);

  // `text` is parsed as a TOML value of the key's type ("0.1", "true", "[64, 128]",
  // "[[0,0],[5,1]]"); a bare word is accepted for string keys.
  void set(const std::string& key, const std::string& text);
  // "key=value" form of set().
  void set_assignment(const std::string& assignment);

  bool b(const std::string& key) const;
  int64_t i(const std::string& key) const;
  double f(const std::string& key) const;  // also reads int keys
  const std::string& s(const std::string& key) const;
  const std::vector<int64_t>& ints(const std::string& key) const;
  const Knots& knots(const std::string& key) const;

  void set_value(const std::string& key, ConfigValue v);  // typed, checked
  const ConfigValue& value(const std::string& key) const;

  // The resolved configuration as TOML (every key, grouped by table) and as JSON.
  std::string to_toml() const;
  std::string to_json() const;

  // The known key closest to `key` by edit distance ("" when nothing is close).
  static std::string nearest_key(const std::string& key);

 private:
  const ConfigValue& get(const std::string& key) const;
  std::map<std::string, ConfigValue> values_;
};

// Finds a preset by name ("cifar10-resnet9-baseline") or path ("my.toml"): a path that
// exists, then $KILN_CONFIGS, the source tree's configs/ and the installed share/kiln/configs.
std::string find_preset(const std::string& name_or_path);
std::vector<std::string> list_presets();

}  // namespace kiln
