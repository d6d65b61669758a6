#pragma once
// Internal to sim/scenario: `models[].design` -> ModelDesign.
#include "dlcarbon/design.hpp"
#include "yaml_reader.hpp"

namespace dlcarbon::detail {
ModelDesign read_design(const Value& v);
}
