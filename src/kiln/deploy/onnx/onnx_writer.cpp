// kiln/deploy/onnx_graph.h's model as an onnx::ModelProto (Debian 12's libonnx-dev 1.12, with
// libprotobuf 3.21). Built in its own library, kiln_onnx, without LibTorch's include path (whose
// bundled protobuf 3.13 headers would shadow the ones ONNX's classes were generated with).
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <stdexcept>

#include "kiln/deploy/onnx_graph.h"

namespace kiln::onnx {
namespace {

void set_dims(::onnx::TypeProto* type, const std::vector<int64_t>& dims) {
  auto* t = type->mutable_tensor_type();
  t->set_elem_type(::onnx::TensorProto::FLOAT);
  auto* shape = t->mutable_shape();
  for (auto d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) dim->set_dim_param("batch");
    else dim->set_dim_value(d);
  }
}

void add_attribute(::onnx::NodeProto* node, const Attribute& a) {
  auto* p = node->add_attribute();
  p->set_name(a.name);
  switch (a.kind) {
    case Attribute::Kind::Int:
      p->set_type(::onnx::AttributeProto::INT);
      p->set_i(a.i);
      break;
    case Attribute::Kind::Ints:
      p->set_type(::onnx::AttributeProto::INTS);
      for (auto v : a.ints) p->add_ints(v);
      break;
    case Attribute::Kind::Float:
      p->set_type(::onnx::AttributeProto::FLOAT);
      p->set_f(a.f);
      break;
    case Attribute::Kind::String:
      p->set_type(::onnx::AttributeProto::STRING);
      p->set_s(a.s);
      break;
  }
}

void add_initializer(::onnx::GraphProto* g, const Initializer& init) {
  auto* t = g->add_initializer();
  t->set_name(init.name);
  int64_t n = 1;
  for (auto d : init.dims) t->add_dims(d), n *= d;
  using Type = Initializer::Type;
  const size_t have = init.type == Type::Int8 ? init.i8.size() : init.type == Type::Int64 ? init.i64.size() : init.f32.size();
  if (static_cast<int64_t>(have) != n)
    throw std::runtime_error("initializer '" + init.name + "' has " + std::to_string(have) + " values for " +
                             std::to_string(n) + " elements");
  // raw_data: little-endian bytes (ONNX's TensorProto definition), as this host stores them.
  switch (init.type) {
    case Type::Int8:
      t->set_data_type(::onnx::TensorProto::INT8);
      t->set_raw_data(init.i8.data(), init.i8.size());
      break;
    case Type::Int64:
      t->set_data_type(::onnx::TensorProto::INT64);
      t->set_raw_data(init.i64.data(), init.i64.size() * sizeof(int64_t));
      break;
    case Type::Float:
      t->set_data_type(::onnx::TensorProto::FLOAT);
      t->set_raw_data(init.f32.data(), init.f32.size() * sizeof(float));
      break;
  }
}

}  // namespace

bool available() { return true; }

std::string serialize_checked(const Model& m) {
  ::onnx::ModelProto model;
  model.set_ir_version(::onnx::IR_VERSION);
  model.set_producer_name(m.producer_name);
  model.set_producer_version(m.producer_version);
  model.set_doc_string(m.doc);
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(m.opset);
  for (auto& [k, v] : m.metadata) {
    auto* p = model.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  auto* g = model.mutable_graph();
  g->set_name(m.graph_name);
  auto* in = g->add_input();
  in->set_name(m.input.name);
  set_dims(in->mutable_type(), m.input.dims);
  auto* out = g->add_output();
  out->set_name(m.output.name);
  set_dims(out->mutable_type(), m.output.dims);
  for (auto& init : m.initializers) add_initializer(g, init);
  for (auto& n : m.nodes) {
    auto* node = g->add_node();
    node->set_op_type(n.op_type);
    node->set_name(n.name);
    for (auto& s : n.inputs) node->add_input(s);
    for (auto& s : n.outputs) node->add_output(s);
    for (auto& a : n.attributes) add_attribute(node, a);
  }
  try {
    ::onnx::checker::check_model(model);
    // Strict shape inference with type checks: what onnx.checker.check_model(full_check=True) adds.
    ::onnx::ShapeInferenceOptions options(/*check_type=*/true, /*strict_mode=*/1, /*data_prop=*/false);
    ::onnx::ModelProto inferred = model;
    ::onnx::shape_inference::InferShapes(inferred, ::onnx::OpSchemaRegistry::Instance(), options);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("the ONNX checker refused the graph kiln built: ") + e.what());
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw std::runtime_error("protobuf could not serialise the ONNX model");
  return bytes;
}

}  // namespace kiln::onnx
