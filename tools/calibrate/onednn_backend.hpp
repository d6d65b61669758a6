#pragma once
// oneDNN (CPU) kernels for calibration. Only tools/calibrate includes oneDNN.
#include <functional>
#include <memory>
#include <string>

#include "calibration.hpp"

namespace dlcarbon::calibrate {

class OneDnnBackend {
 public:
  OneDnnBackend();
  ~OneDnnBackend();
  // A runnable kernel: run(reps) executes it `reps` times and returns seconds per execution.
  // Empty when the CPU has no native implementation (oneDNN would fall back to reference code).
  std::function<double(int)> prepare(const KernelSpec& spec);
  std::string version() const;
  std::string isa() const;
  bool native(const std::string& dtype);  // a non-reference matmul exists for this dtype

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dlcarbon::calibrate
