#pragma once
// The one exception type for bad input. Its message is the whole line the user sees:
//   scenarios/a.yaml:12:5: training[0].accelerators: expected a positive integer, got "ten"
// The CLI prints it and exits with code 2; nothing is written.

#include <stdexcept>
#include <string>

namespace dlcarbon {

struct SourceLocation {
  std::string file;  // as the user named it (relative paths stay relative)
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
};

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "file:line:col: key.path: what" (line and column left out when unknown, key path when empty).
std::string format_input_error(const SourceLocation& where, const std::string& key_path,
                               const std::string& what);

}  // namespace dlcarbon
