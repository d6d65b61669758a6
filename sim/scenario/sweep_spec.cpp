// Reading a sweep file (docs/sweep.md). The scenario it names is read by load_scenario, once
// per point, with the point's values as overrides.

#include <cmath>
#include <algorithm>
#include <cstdio>
#include <limits>

#include "dlcarbon/sweep.hpp"
#include "dlcarbon/text.hpp"
#include "dlcarbon/units.hpp"
#include "yaml_reader.hpp"

namespace fs = std::filesystem;

namespace dlcarbon {
namespace {

using detail::MapView;
using detail::Value;

std::string number_text(double x, int digits = 17) { return text::number_g(x, digits); }

double plain_number(const YAML::Node& n) {
  if (!n.IsScalar()) return std::numeric_limits<double>::quiet_NaN();
  const std::string& s = n.Scalar();
  // Plain decimals only, as in a scenario: strtod also reads "0x100" and " 256" (since session 43,
  // a review: a range of [0x100, 0x200] had run as 256 and 512).
  if (s.find_first_not_of("0123456789+-.eE,") != std::string::npos) return std::numeric_limits<double>::quiet_NaN();
  if (s.find(',') != std::string::npos) {
    // Thousands separators, as a scenario reads them ("2,048" is 2048; since session 46, a review:
    // text here, so that 2048 and "2,048" ran as two points).
    try {
      return units::parse_quantity(s, units::Kind::count).value;
    } catch (const units::QuantityError&) {
      return std::numeric_limits<double>::quiet_NaN();
    }
  }
  char* end = nullptr;
  const double x = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(x)) return std::numeric_limits<double>::quiet_NaN();
  return x;
}

// A value's content, for telling two values of a grid apart: numbers as numbers ("0.5" and "0.50"),
// maps with their keys in order, lists item by item (since session 42, a review: `{utilisation:
// 0.5}` and `{utilisation: 0.50}` ran twice).
std::string canonical_text(const YAML::Node& n, int depth = 0) {
  if (depth > 64) return "";
  if (n.IsScalar()) {
    const double x = plain_number(n);
    if (std::isnan(x)) return "s:" + n.Scalar();
    char b[40];
    std::snprintf(b, sizeof b, "n:%.17g", x);
    return b;
  }
  if (n.IsSequence()) {
    std::string out = "[";
    for (const auto& item : n) out += canonical_text(item, depth + 1) + ",";
    return out + "]";
  }
  if (n.IsMap()) {
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& kv : n) items.emplace_back(canonical_text(kv.first, depth + 1), canonical_text(kv.second, depth + 1));
    std::sort(items.begin(), items.end());
    std::string out = "{";
    for (const auto& [k, v] : items) out += k + ":" + v + ",";
    return out + "}";
  }
  return "~";
}

std::string flow_text(const YAML::Node& n) {
  if (n.IsScalar()) return n.Scalar();
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

std::string yaml_text(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return e.c_str();
}

// The keys of a reference's entry that an inline map changes in its copy ({id: test-dc, pue: 1.3}
// at a `datacenter` key: datacenters.test-dc.pue), through nested references too (a region map in
// a data centre map) and lists (a deployment's regions). `field`: the key the node is the value of.
void reference_changes(const YAML::Node& n, const std::string& field, std::vector<std::string>& out, int depth = 0) {
  if (depth > 64) return;  // the reader has refused deeper documents already
  if (n.IsSequence()) {
    for (const auto& item : n) reference_changes(item, field, out, depth + 1);
    return;
  }
  if (!n.IsMap()) return;
  // The keys whose value names an entry of another section, or is a map with its id and overrides.
  const std::string section = field == "datacenter" ? "datacenters" : field == "region" ? "regions"
                              : field == "hardware" ? "hardware" : "";
  const YAML::Node id = n["id"];  // a node that is not there throws on IsScalar(): IsDefined() first
  const bool named = !section.empty() && id.IsDefined() && id.IsScalar();
  for (const auto& kv : n) {
    if (!kv.first.IsScalar()) continue;
    const std::string& key = kv.first.Scalar();
    if (named && key != "id") out.push_back(section + "." + id.Scalar() + "." + key);
    reference_changes(kv.second, key, out, depth + 1);
  }
}

bool overlapping(const std::string& a, const std::string& b) {
  return a == b || b.rfind(a + ".", 0) == 0 || a.rfind(b + ".", 0) == 0;
}

SweepParameter read_parameter(const Value& v, SweepMethod method) {
  if (!v.node.IsMap()) v.expected("a map with key and values (or range)");
  const MapView m(v, {"key", "values", "range", "steps", "scale", "integer", "unit"});
  m.require("key");
  SweepParameter p;
  p.key = detail::read_text(m.at("key"));
  p.at = m.at("key").location();
  if (m.has("values") == m.has("range")) {
    v.fail(m.has("values") ? "give either values or range, not both" : "missing required key \"values\" (or \"range\")");
  }
  if (m.has("values")) {
    for (const char* k : {"steps", "scale", "integer", "unit"}) {
      if (m.has(k)) m.at(k).fail(std::string(k) + " goes with range, not with values");
    }
    const Value list = m.at("values");
    if (!list.node.IsSequence() || list.node.size() == 0) list.expected("a non-empty list of values");
    for (std::size_t i = 0; i < list.node.size(); ++i) {
      const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
      if (item.node.IsNull()) item.expected("a value");
      // The same value twice in a grid would run the same points twice, their rows alike (since
      // session 41). A draw may weight a value so (latin-hypercube, monte-carlo: [a, a, b]).
      const std::string text = canonical_text(item.node);
      for (std::size_t j = 0; method == SweepMethod::grid && j < p.values_yaml.size(); ++j) {
        if (canonical_text(list.node[j]) == text) {
          item.fail("the value " + flow_text(item.node) + " is given twice (first at line " + std::to_string(p.values_at[j].line) +
                    ", column " + std::to_string(p.values_at[j].column) + "): its points would run twice");
        }
      }
      p.values_yaml.push_back(yaml_text(item.node));
      p.values_shown.push_back(flow_text(item.node));
      p.values_numeric.push_back(plain_number(item.node));
      p.values_at.push_back(item.location());
      p.values_changes.emplace_back();
      reference_changes(item.node, p.key.substr(p.key.rfind('.') + 1), p.values_changes.back());
    }
    return p;
  }
  const Value range = m.at("range");
  if (!range.node.IsSequence() || range.node.size() != 2) range.expected("[low, high], two numbers");
  const Value lo_v = range.child(range.node[0], "[0]"), hi_v = range.child(range.node[1], "[1]");
  p.lo = plain_number(lo_v.node);
  p.hi = plain_number(hi_v.node);
  if (std::isnan(p.lo)) lo_v.expected("a number");
  if (std::isnan(p.hi)) hi_v.expected("a number");
  if (!(p.hi > p.lo)) hi_v.expected("a number above the low end " + lo_v.node.Scalar());
  if (!std::isfinite(p.hi - p.lo)) range.expected("a range whose width is a finite number");
  p.ranged = true;
  p.range_at = range.location();
  if (m.has("scale")) p.log_scale = detail::read_choice(m.at("scale"), {"linear", "log"}) == "log";
  if (p.log_scale && !(p.lo > 0)) lo_v.expected("a number > 0 (scale: log)");
  if (m.has("integer")) p.integer = detail::read_bool(m.at("integer"));
  if (p.integer && (p.lo != std::floor(p.lo) || p.hi != std::floor(p.hi))) {
    // (The end that is not whole, not "a list"; since session 47, a review.)
    char end[32];
    std::snprintf(end, sizeof end, "%.15g", p.lo != std::floor(p.lo) ? p.lo : p.hi);
    range.fail("expected integer ends (integer: true), got " + text::quoted(end));
  }
  if (m.has("unit")) p.unit = detail::read_text(m.at("unit"));
  if (method == SweepMethod::grid) {
    if (!m.has("steps")) {
      range.fail("a grid needs values, or a range with steps (or use method latin-hypercube or monte-carlo)");
    }
    const std::int64_t steps = detail::read_positive_int(m.at("steps"));
    if (steps < 2) m.at("steps").expected("at least 2 steps (both ends)");
    if (steps > 1'000'000) m.at("steps").expected("at most 1000000 steps");
    for (std::int64_t i = 0; i < steps; ++i) {
      const double f = static_cast<double>(i) / static_cast<double>(steps - 1);
      double x = p.log_scale ? std::exp(std::log(p.lo) + f * (std::log(p.hi) - std::log(p.lo))) : p.lo + f * (p.hi - p.lo);
      // The ends are the range's, and a log step to 15 significant digits: exp(log(x)) lands an
      // ulp off a round value (4.0000000000000009 for the third step of 1 to 1024), which an
      // integer key refused and a plain run of the value did not equal (since session 46, a review).
      if (p.log_scale) x = std::strtod(number_text(x, 15).c_str(), nullptr);
      if (i == 0) x = p.lo;
      if (i == steps - 1) x = p.hi;
      if (p.integer) x = std::round(x);
      if (!p.values_numeric.empty() && x == p.values_numeric.back()) continue;  // integer steps that coincide
      const std::string t = number_text(x);
      p.values_yaml.push_back(p.unit.empty() ? t : text::yaml_quoted(t + " " + p.unit));
      char shown[40];
      std::snprintf(shown, sizeof shown, p.integer ? "%.0f" : "%.6g", x);
      p.values_shown.push_back(p.unit.empty() ? shown : std::string(shown) + " " + p.unit);
      p.values_numeric.push_back(x);
      p.values_at.push_back(p.range_at);
    }
    p.ranged = false;
    p.stepped = true;
    p.steps = steps;
  } else if (m.has("steps")) {
    m.at("steps").fail("steps is for a grid; latin-hypercube and monte-carlo draw `samples` values");
  }
  return p;
}

}  // namespace

SweepSpec load_sweep_spec(const fs::path& file) {
  SweepSpec spec;
  spec.display = file.lexically_normal().generic_string();
  const YAML::Node root = detail::read_yaml_file(file, spec.display, spec.given_text, {}, "");
  const Value top{root, &spec.display, ""};
  const MapView map(top, {"schema_version", "sweep", "parameters"});
  if (!map.has("schema_version")) {
    throw InputError(format_input_error({spec.display, 1, 1}, "",
                                        "missing required key \"schema_version\" (this format is version 1)"));
  }
  const Value version = map.at("schema_version");
  if (!version.node.IsScalar() || version.node.Scalar() != "1") version.expected("1 (the only schema version so far)");
  map.require("sweep");
  map.require("parameters");
  const MapView s(map.at("sweep"), {"name", "scenario", "method", "samples", "seed"});
  s.require("name");
  s.require("scenario");
  spec.name = detail::read_id(s.at("name"));
  const Value scenario = s.at("scenario");
  // The path as the file system resolves it (a `..` after a linked folder leaves the link's target,
  // as `extends:` resolves it), written tidily where that names the same file (since session 44, a
  // review: `lnk/../base.yaml` was cut to `base.yaml` as text).
  const fs::path joined = file.parent_path() / detail::read_text(scenario), tidy = joined.lexically_normal();
  std::error_code ec;
  spec.scenario = fs::exists(joined, ec) && !fs::equivalent(joined, tidy, ec) ? joined : tidy;
  if (!fs::is_regular_file(spec.scenario, ec)) {
    // Something that is there but not a file (a folder, a device) is named as such (since session 36).
    const bool there = fs::exists(spec.scenario, ec);
    scenario.fail((there ? text::quoted(spec.scenario.generic_string()) + " is not a regular file (name the scenario's YAML file)"
                         : "no scenario file " + text::quoted(spec.scenario.generic_string())) +
                  " (the path is relative to the sweep file)");
  }
  if (s.has("method")) {
    const std::string m = detail::read_choice(s.at("method"), {"grid", "latin-hypercube", "monte-carlo"});
    spec.method = m == "grid" ? SweepMethod::grid : m == "latin-hypercube" ? SweepMethod::latin_hypercube
                                                                          : SweepMethod::monte_carlo;
  }
  if (spec.method == SweepMethod::grid) {
    if (s.has("samples")) s.at("samples").fail("samples is for latin-hypercube and monte-carlo; a grid runs every combination");
    // (Since session 35; before, accepted and ignored.)
    if (s.has("seed")) s.at("seed").fail("seed is for latin-hypercube and monte-carlo draws; a grid draws nothing");
  } else {
    s.require("samples");
    spec.samples = detail::read_positive_int(s.at("samples"));
    if (spec.samples > kMaxSweepPoints) {
      s.at("samples").expected("at most " + std::to_string(kMaxSweepPoints) + " samples (split a larger study into several sweeps)");
    }
  }
  if (s.has("seed")) {
    const std::int64_t seed = detail::read_int(s.at("seed"));
    if (seed < 0) s.at("seed").expected("a seed >= 0");
    spec.seed = static_cast<std::uint64_t>(seed);
  }
  const Value params = map.at("parameters");
  if (!params.node.IsSequence() || params.node.size() == 0) params.expected("a non-empty list of parameters");
  for (std::size_t i = 0; i < params.node.size(); ++i) {
    const Value item = params.child(params.node[i], "[" + std::to_string(i) + "]");
    spec.parameters.push_back(read_parameter(item, spec.method));
    for (std::size_t j = 0; j + 1 < spec.parameters.size(); ++j) {
      const std::string& a = spec.parameters[j].key;
      const std::string& b = spec.parameters.back().key;
      const Value key = item.child(item.node["key"], "key");
      if (a == b) {
        key.fail("duplicate key " + text::quoted(a) + " (first at line " + std::to_string(spec.parameters[j].at.line) + ")");
      }
      // One key inside the other: the value of the outer would overwrite the inner's, or the
      // inner's a part of the outer's, depending on the order; either way a column would lie.
      if (overlapping(a, b)) {
        key.fail("key " + text::quoted(b) + " overlaps " + text::quoted(a) + " (line " +
                 std::to_string(spec.parameters[j].at.line) + "): sweep one or the other");
      }
    }
  }
  // A value that changes an entry in the copy its reference makes, and a key that sweeps the same
  // key of that entry: the copy takes the value's figure whatever the key's column says (since
  // session 41, a review; before, the point ran at the value's figure under the key's column).
  for (std::size_t i = 0; i < spec.parameters.size(); ++i) {
    const SweepParameter& p = spec.parameters[i];
    for (std::size_t v = 0; v < p.values_changes.size(); ++v) {
      for (const std::string& changed : p.values_changes[v]) {
        for (std::size_t j = 0; j < spec.parameters.size(); ++j) {
          const SweepParameter& q = spec.parameters[j];
          if (j == i || !overlapping(changed, q.key)) continue;
          throw InputError(format_input_error(
              p.values_at[v], "parameters[" + std::to_string(i) + "].values[" + std::to_string(v) + "]",
              "this value sets " + text::quoted(changed) + " in the copy its reference makes, which overlaps key " +
                  text::quoted(q.key) + " (line " + std::to_string(q.at.line) +
                  "): the copy would keep the value's figure whatever that key's column says; sweep one or the other"));
        }
      }
    }
  }
  if (spec.method == SweepMethod::grid) {
    double n = 1;
    for (const auto& p : spec.parameters) n *= static_cast<double>(p.values_yaml.size());
    if (n > static_cast<double>(kMaxSweepPoints)) {
      params.fail("the grid has " + number_text(n) + " points, more than " + std::to_string(kMaxSweepPoints) +
                  " (split it, or sample it with latin-hypercube)");
    }
  }
  return spec;
}

}  // namespace dlcarbon
