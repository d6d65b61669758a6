#pragma once
// Internal to sim/scenario: `models[].design` -> ModelDesign.
#include <deque>
#include <string>

#include "dlcarbon/design.hpp"
#include "yaml_reader.hpp"

namespace dlcarbon::detail {
// `files` keeps the names of graph files read on the way (Values point into it).
ModelDesign read_design(const Value& v, std::deque<std::string>& files);
}
