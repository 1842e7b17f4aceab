// An ONNX model as plain C++ data, and its serialisation with the ONNX library (issue #24).
//
// This header has no LibTorch and no protobuf in it on purpose: LibTorch ships its own, older
// protobuf headers (3.13) on its include path, and ONNX's generated classes need the protobuf
// they were generated with (Debian 12's libonnx-dev 1.12 with libprotobuf 3.21). So the code
// that knows the networks (kiln/deploy/onnx_export.cpp, with LibTorch) describes the graph here,
// and one file built without LibTorch's include path (kiln/deploy/onnx/onnx_writer.cpp, the
// kiln_onnx library) turns it into an onnx::ModelProto, checks it with ONNX's own checker and
// strict shape inference, and serialises it.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kiln::onnx {

struct Attribute {
  enum class Kind { Int, Ints, Float, String };
  std::string name;
  Kind kind = Kind::Int;
  int64_t i = 0;
  std::vector<int64_t> ints;
  float f = 0;
  std::string s;
  static Attribute make_int(std::string n, int64_t v) { Attribute a; a.name = std::move(n), a.kind = Kind::Int, a.i = v; return a; }
  static Attribute make_ints(std::string n, std::vector<int64_t> v) { Attribute a; a.name = std::move(n), a.kind = Kind::Ints, a.ints = std::move(v); return a; }
  static Attribute make_float(std::string n, float v) { Attribute a; a.name = std::move(n), a.kind = Kind::Float, a.f = v; return a; }
  static Attribute make_string(std::string n, std::string v) { Attribute a; a.name = std::move(n), a.kind = Kind::String, a.s = std::move(v); return a; }
};

struct Node {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::vector<Attribute> attributes;
};

// A constant tensor of the graph: float32, int8 (quantised weights and their zero points) or
// int64 (the index and shape inputs of Slice, Pad, Reshape and ReduceSum); the vector of its type
// holds the values.
struct Initializer {
  enum class Type { Float, Int8, Int64 };
  std::string name;
  std::vector<int64_t> dims;
  Type type = Type::Float;
  std::vector<float> f32;
  std::vector<int8_t> i8;
  std::vector<int64_t> i64;
  static Initializer make_float(std::string n, std::vector<int64_t> d, std::vector<float> v) { Initializer t; t.name = std::move(n), t.dims = std::move(d), t.f32 = std::move(v); return t; }
  static Initializer make_int8(std::string n, std::vector<int64_t> d, std::vector<int8_t> v) { Initializer t; t.name = std::move(n), t.dims = std::move(d), t.type = Type::Int8, t.i8 = std::move(v); return t; }
  static Initializer make_int64(std::string n, std::vector<int64_t> d, std::vector<int64_t> v) { Initializer t; t.name = std::move(n), t.dims = std::move(d), t.type = Type::Int64, t.i64 = std::move(v); return t; }
};

// A graph input or output, float32; a dimension < 0 is symbolic, named `batch`.
struct Value {
  std::string name;
  std::vector<int64_t> dims;
};

struct Model {
  std::string graph_name, doc;
  std::string producer_name = "kiln", producer_version;
  int64_t opset = 17;  // the newest Debian 12's ONNX 1.12 knows
  std::vector<Node> nodes;
  std::vector<Initializer> initializers;
  Value input, output;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props, in order
};

// True when this kiln was built with ONNX (-DKILN_WITH_ONNX=ON).
bool available();

// The model as ONNX bytes, after onnx::checker::check_model and strict shape inference have
// accepted it (the checks of the Python onnx.checker.check_model(full_check=True)). Throws
// std::runtime_error with the checker's message when they do not, or when this kiln was built
// without ONNX.
std::string serialize_checked(const Model& model);

}  // namespace kiln::onnx
