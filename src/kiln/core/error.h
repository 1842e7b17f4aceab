// kiln's one exception type: a message a user can act on (it names the file, key or
// value at fault). The CLI prints it without a stack trace and exits non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace kiln {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace kiln
