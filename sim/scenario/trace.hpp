#pragma once
// Internal to sim/scenario: grid intensity traces from CSV (Electricity Maps layout:
// datetime_utc or date_utc, zone, gco2_per_kwh_direct, gco2_per_kwh_lca).
#include <memory>

#include "dlcarbon/scenario.hpp"
#include "yaml_reader.hpp"

namespace dlcarbon::detail {
// `v` is the region's `trace` map; the file is relative to the file that names it.
std::shared_ptr<const IntensityTrace> read_trace(const Value& v);
}  // namespace dlcarbon::detail
