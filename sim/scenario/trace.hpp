#pragma once
// Internal to sim/scenario: grid intensity traces from CSV (Electricity Maps layout:
// datetime_utc or date_utc, zone, gco2_per_kwh_direct, gco2_per_kwh_lca).
#include <memory>

#include "dlcarbon/scenario.hpp"
#include "yaml_reader.hpp"

namespace dlcarbon::detail {
// `v` is the region's `trace` map; the file is relative to the file that names it.
std::shared_ptr<const IntensityTrace> read_trace(const Value& v);
// A growth trace (replicas, devices, demand over time): CSV "time,value", relative to the file that names it.
void read_growth_trace(const Value& file_value, Growth& growth);
}  // namespace dlcarbon::detail
