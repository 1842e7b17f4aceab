// kiln/deploy/onnx_graph.h in a kiln built without ONNX (-DKILN_WITH_ONNX=OFF, or Debian's
// libonnx-dev / libprotobuf-dev missing at configure time).
#include <stdexcept>

#include "kiln/deploy/onnx_graph.h"

namespace kiln::onnx {

bool available() { return false; }

std::string serialize_checked(const Model&) {
  throw std::runtime_error(
      "this kiln was built without ONNX: install Debian's libonnx-dev and libprotobuf-dev "
      "(scripts/install-deps.sh does), then configure again with -DKILN_WITH_ONNX=ON");
}

}  // namespace kiln::onnx
