#pragma once
#include <string>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon::detail {
// The scenario after extends, catalogs and overrides, as YAML with SI numbers (units in the keys).
std::string emit_resolved(const Scenario& scenario);
}  // namespace dlcarbon::detail
