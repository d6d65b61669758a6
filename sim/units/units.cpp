#include "dlcarbon/units.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>

#include "dlcarbon/text.hpp"

namespace dlcarbon::units {
namespace {

// Exponents of the base dimensions: time, energy, CO2e mass, work (FLOP), bytes.
struct Dim {
  int time = 0, energy = 0, mass = 0, work = 0, bytes = 0;
  bool operator==(const Dim&) const = default;
  Dim operator-(const Dim& o) const {
    return {time - o.time, energy - o.energy, mass - o.mass, work - o.work, bytes - o.bytes};
  }
};

constexpr Dim kNone{};
constexpr Dim kTime{1, 0, 0, 0, 0};
constexpr Dim kEnergy{0, 1, 0, 0, 0};
constexpr Dim kPower{-1, 1, 0, 0, 0};
constexpr Dim kMass{0, 0, 1, 0, 0};
constexpr Dim kIntensity{0, -1, 1, 0, 0};
constexpr Dim kWork{0, 0, 0, 1, 0};
constexpr Dim kRate{-1, 0, 0, 1, 0};
constexpr Dim kBytes{0, 0, 0, 0, 1};
constexpr Dim kBandwidth{-1, 0, 0, 0, 1};
constexpr Dim kFrequency{-1, 0, 0, 0, 0};

struct Atom {
  std::string_view name;
  double factor;  // to SI
  Dim dim;
  bool prefixable;
  bool count_noun = false;  // "tokens": dimensionless but only allowed for counts
};

// The unit table. A year is 365 days (accounting convention; documented in docs/scenario-format.md).
constexpr std::array kAtoms{
    Atom{"s", 1, kTime, true},
    Atom{"min", 60, kTime, false},
    Atom{"h", 3600, kTime, false},
    Atom{"hr", 3600, kTime, false},
    Atom{"hour", 3600, kTime, false},
    Atom{"hours", 3600, kTime, false},
    Atom{"d", 86400, kTime, false},
    Atom{"day", 86400, kTime, false},
    Atom{"days", 86400, kTime, false},
    Atom{"week", 604800, kTime, false},
    Atom{"weeks", 604800, kTime, false},
    Atom{"month", 365 * 86400.0 / 12, kTime, false},
    Atom{"months", 365 * 86400.0 / 12, kTime, false},
    Atom{"yr", 365 * 86400.0, kTime, false},
    Atom{"year", 365 * 86400.0, kTime, false},
    Atom{"years", 365 * 86400.0, kTime, false},
    Atom{"J", 1, kEnergy, true},
    Atom{"Wh", 3600, kEnergy, true},
    Atom{"W", 1, kPower, true},
    Atom{"gCO2e", 1e-3, kMass, true},
    Atom{"gCO2", 1e-3, kMass, true},
    Atom{"g", 1e-3, kMass, true},
    Atom{"tCO2e", 1e3, kMass, true},
    Atom{"tCO2", 1e3, kMass, true},
    Atom{"t", 1e3, kMass, true},
    Atom{"lbCO2e", kg_per_pound, kMass, false},
    Atom{"lbsCO2e", kg_per_pound, kMass, false},
    Atom{"lb", kg_per_pound, kMass, false},
    Atom{"lbs", kg_per_pound, kMass, false},
    Atom{"FLOP", 1, kWork, true},
    Atom{"FLOPs", 1, kWork, true},
    Atom{"OP", 1, kWork, true},
    Atom{"OPs", 1, kWork, true},
    Atom{"FLOPS", 1, kRate, true},
    Atom{"OPS", 1, kRate, true},
    Atom{"B", 1, kBytes, true},
    Atom{"byte", 1, kBytes, true},
    Atom{"bytes", 1, kBytes, true},
    Atom{"KiB", 1024.0, kBytes, false},
    Atom{"MiB", 1024.0 * 1024, kBytes, false},
    Atom{"GiB", 1024.0 * 1024 * 1024, kBytes, false},
    Atom{"TiB", 1024.0 * 1024 * 1024 * 1024, kBytes, false},
    Atom{"token", 1, kNone, false, true},
    Atom{"tokens", 1, kNone, false, true},
    Atom{"sample", 1, kNone, false, true},
    Atom{"samples", 1, kNone, false, true},
    Atom{"param", 1, kNone, false, true},
    Atom{"params", 1, kNone, false, true},
    Atom{"parameters", 1, kNone, false, true},
    Atom{"requests", 1, kNone, false, true},
    Atom{"inferences", 1, kNone, false, true},
    Atom{"images", 1, kNone, false, true},
    Atom{"image", 1, kNone, false, true},
    Atom{"request", 1, kNone, false, true},
    Atom{"inference", 1, kNone, false, true},
    Atom{"queries", 1, kNone, false, true},
};

struct Prefix {
  std::string_view symbol;
  double factor;
};
constexpr std::array kPrefixes{
    Prefix{"k", 1e3},  Prefix{"K", 1e3},  Prefix{"M", 1e6},   Prefix{"G", 1e9},
    Prefix{"T", 1e12}, Prefix{"P", 1e15}, Prefix{"E", 1e18},  Prefix{"m", 1e-3},
    Prefix{"u", 1e-6}, Prefix{"µ", 1e-6}, Prefix{"μ", 1e-6}, Prefix{"n", 1e-9},  Prefix{"p", 1e-12},
};
// (Micro as the micro sign U+00B5 and as the Greek letter mu U+03BC, which Unicode prefers and
// keyboards type: both since session 43, a review; before, "10 μs" was an unknown unit.)

struct UnitValue {
  double factor = 1;
  Dim dim;
  bool count_noun = false;
  std::string_view noun;  // the count noun's family (Quantity::noun)
  bool per_count = false;  // a count noun below the line ("W/token")
};

std::string_view noun_family(std::string_view atom) {
  for (const std::string_view family : {"token", "sample", "image", "param", "request"}) {
    if (atom.substr(0, family.size()) == family) return family;
  }
  if (atom == "inference" || atom == "inferences" || atom == "queries") return "request";
  return "";
}

std::optional<UnitValue> lookup_atom(std::string_view s) {
  for (const auto& a : kAtoms) {
    if (a.name == s) return UnitValue{a.factor, a.dim, a.count_noun, a.count_noun ? noun_family(a.name) : std::string_view{}};
  }
  for (const auto& p : kPrefixes) {
    if (s.size() > p.symbol.size() && s.substr(0, p.symbol.size()) == p.symbol) {
      const auto rest = s.substr(p.symbol.size());
      for (const auto& a : kAtoms) {
        if (!a.prefixable || a.name != rest) continue;
        // Prefixes below one only where they are used: not on bytes, FLOP or tonnes ("25 mB" was
        // read as 0.025 B and "463 mtCO2e", a common spelling of metric tonnes, as 463 kg; since
        // session 44, a review).
        const bool tonnes = a.dim == kMass && a.factor == 1e3;
        if (p.factor < 1 && (a.dim == kBytes || a.dim == kWork || a.dim == kRate || tonnes)) continue;
        return UnitValue{p.factor * a.factor, a.dim, false};
      }
    }
  }
  return std::nullopt;
}

// A unit is an atom, or atom/atom ("kgCO2e/kWh", "GB/s"). Spaces inside are ignored
// ("kg CO2e / kWh").
std::optional<UnitValue> parse_unit(std::string_view text, std::string& bad_part) {
  std::string squashed;
  for (const char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) squashed += c;
  }
  const auto slash = squashed.find('/');
  const std::string num = squashed.substr(0, slash);
  // "/day": a bare rate, as in "20 /day".
  auto top = num.empty() && slash != std::string::npos ? std::optional<UnitValue>(UnitValue{1, kNone, true, {}}) : lookup_atom(num);
  if (!top) {
    bad_part = num;
    return std::nullopt;
  }
  if (slash == std::string::npos) return top;
  const std::string den = squashed.substr(slash + 1);
  auto bottom = lookup_atom(den);
  if (!bottom || den.find('/') != std::string::npos) {
    bad_part = den;
    return std::nullopt;
  }
  return UnitValue{top->factor / bottom->factor, top->dim - bottom->dim, top->count_noun && top->dim == kNone, top->noun,
                   bottom->count_noun};
}

Dim dim_of(Kind kind) {
  switch (kind) {
    case Kind::ratio:
    case Kind::count: return kNone;
    case Kind::time: return kTime;
    case Kind::power: return kPower;
    case Kind::energy: return kEnergy;
    case Kind::co2e: return kMass;
    case Kind::intensity: return kIntensity;
    case Kind::work: return kWork;
    case Kind::rate: return kRate;
    case Kind::bytes: return kBytes;
    case Kind::bandwidth: return kBandwidth;
    case Kind::frequency: return kFrequency;
  }
  return kNone;
}

std::string name_of(const Dim& d, bool count_noun) {
  if (d == kNone) return count_noun ? "a count" : "a bare number";
  if (d == kTime) return "a duration";
  if (d == kPower) return "a power";
  if (d == kEnergy) return "an energy";
  if (d == kMass) return "a CO2e mass";
  if (d == kIntensity) return "a carbon intensity";
  if (d == kWork) return "an amount of work";
  if (d == kRate) return "a compute rate";
  if (d == kBytes) return "a size in bytes";
  if (d == kBandwidth) return "a bandwidth";
  if (d == kFrequency) return "a rate per unit time";
  return "an unsupported combination of units";
}

struct Number {
  double value = 0;
  double half_ulp = 0;  // half a unit of the last printed digit
  std::size_t length = 0;
};

// [+-]digits(,ddd)*[.digits][e[+-]digits], commas only in groups of three.
std::optional<Number> parse_number(std::string_view s, std::string& why) {
  std::size_t i = 0;
  std::string plain;
  // (A leading '+' is read and left out of the text std::from_chars reads, which takes '-' only;
  // since session 46, a review: "+1.1" was "not a number".)
  if (i < s.size() && s[i] == '-') plain += s[i++];
  else if (i < s.size() && s[i] == '+') ++i;
  const std::size_t int_start = i;
  std::size_t group = 0;
  bool saw_comma = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == ',')) {
    if (s[i] == ',') {
      if ((saw_comma && group != 3) || group == 0 || (!saw_comma && group > 3)) {
        why = "misplaced thousands separator";
        return std::nullopt;
      }
      saw_comma = true;
      group = 0;
    } else {
      plain += s[i];
      ++group;
    }
    ++i;
  }
  if (saw_comma && group != 3) {
    why = "misplaced thousands separator";
    return std::nullopt;
  }
  int frac_digits = 0;
  bool any_digit = i > int_start;
  if (i < s.size() && s[i] == '.') {
    plain += s[i++];
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      plain += s[i++];
      ++frac_digits;
      any_digit = true;
    }
  }
  if (!any_digit) {
    why = "not a number";
    return std::nullopt;
  }
  int exponent = 0;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    std::size_t j = i + 1;
    const bool negative = j < s.size() && s[j] == '-';
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) {
      long magnitude = 0;
      for (; j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])); ++j) {
        magnitude = std::min(magnitude * 10 + (s[j] - '0'), 100000L);
      }
      exponent = static_cast<int>(negative ? -magnitude : magnitude);
      plain += 'e';
      plain += std::to_string(exponent);
      i = j;
    }
  }
  Number n;
  const auto res = std::from_chars(plain.data(), plain.data() + plain.size(), n.value);
  if (res.ec == std::errc::result_out_of_range || !std::isfinite(n.value)) {
    why = "number out of range";
    return std::nullopt;
  }
  if (res.ec != std::errc()) {
    why = "not a number";
    return std::nullopt;
  }
  n.half_ulp = 0.5 * std::pow(10.0, exponent - frac_digits);
  n.length = i;
  return n;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string describe(Kind kind) {
  switch (kind) {
    case Kind::ratio: return "a number (e.g. \"1.58\")";
    case Kind::count: return "a count (e.g. \"300e9 tokens\" or \"300B tokens\")";
    case Kind::time: return "a duration (e.g. \"14.8 days\")";
    case Kind::power: return "a power (e.g. \"400 W\")";
    case Kind::energy: return "an energy (e.g. \"1,287 MWh\")";
    case Kind::co2e: return "a CO2e mass (e.g. \"552 tCO2e\")";
    case Kind::intensity: return "a carbon intensity (e.g. \"0.429 kgCO2e/kWh\")";
    case Kind::work: return "an amount of work (e.g. \"3.14e23 FLOP\")";
    case Kind::rate: return "a compute rate (e.g. \"125 TFLOP/s\")";
    case Kind::bytes: return "a size (e.g. \"32 GB\")";
    case Kind::bandwidth: return "a bandwidth (e.g. \"900 GB/s\")";
    case Kind::frequency: return "a rate per unit time (e.g. \"5e6 images/day\")";
  }
  return "a quantity";
}

std::string describe(Kind kind, const std::string& qualifier) {
  std::string d = describe(kind);
  const auto example = d.find(" (e.g.");
  if (example == std::string::npos) return d + " " + qualifier;
  return d.insert(example, " " + qualifier);
}

std::string si_symbol(Kind kind) {
  switch (kind) {
    case Kind::ratio:
    case Kind::count: return "1";
    case Kind::time: return "s";
    case Kind::power: return "W";
    case Kind::energy: return "J";
    case Kind::co2e: return "kgCO2e";
    case Kind::intensity: return "kgCO2e/J";
    case Kind::work: return "FLOP";
    case Kind::rate: return "FLOP/s";
    case Kind::bytes: return "B";
    case Kind::bandwidth: return "B/s";
    case Kind::frequency: return "1/s";
  }
  return "1";
}

Quantity parse_quantity(std::string_view raw, Kind expected) {
  const std::string_view s = trim(raw);
  auto fail = [&](const std::string& why) -> QuantityError {
    std::string msg = "expected " + describe(expected) + ", got " + text::quoted(raw);
    if (!why.empty()) msg += " (" + why + ")";
    return QuantityError(msg);
  };
  if (s.empty()) throw fail("");
  std::string why;
  const auto number = parse_number(s, why);
  if (!number) {
    // "nan", "inf" and friends get a precise reason.
    std::string lower;
    for (const char c : s.substr(0, 5)) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower.rfind("nan", 0) == 0 || lower.rfind(".nan", 0) == 0 || lower.rfind("inf", 0) == 0 ||
        lower.rfind(".inf", 0) == 0 || lower.rfind("-inf", 0) == 0 || lower.rfind("+inf", 0) == 0) {
      why = "not a finite number";
    }
    throw fail(why);
  }
  std::string_view unit_text = trim(s.substr(number->length));
  // A count may carry a multiplier: k or K (thousand), M (million), B or G (billion), T (trillion),
  // alone or before its count noun ("25.6M params", "300B tokens"; since session 42, a review: the
  // graph-file format documented "1.2M" and the parser refused it). Only on counts, where "B"
  // cannot be a byte.
  double multiplier = 1;
  if (expected == Kind::count && !unit_text.empty()) {
    double m = 0;
    switch (unit_text.front()) {
      case 'k':
      case 'K': m = 1e3; break;
      case 'M': m = 1e6; break;
      case 'B':
      case 'G': m = 1e9; break;
      case 'T': m = 1e12; break;
      default: break;
    }
    const std::string_view rest = trim(unit_text.substr(1));
    std::string ignored;
    const auto noun = rest.empty() ? std::nullopt : parse_unit(rest, ignored);
    if (m > 0 && (rest.empty() || (noun && noun->count_noun))) {
      multiplier = m;
      unit_text = rest;
    }
  }
  UnitValue unit;
  if (!unit_text.empty()) {
    std::string bad;
    const auto parsed = parse_unit(unit_text, bad);
    // "1 h 30 min": two quantities, not a unit "h30min" (since session 47, a review).
    bool second_number = false;
    for (std::size_t i = 1; i < unit_text.size(); ++i) {
      second_number = second_number || (unit_text[i - 1] == ' ' && unit_text[i] >= '0' && unit_text[i] <= '9');
    }
    if (!parsed && second_number) throw fail("one number and one unit, e.g. \"1.5 h\", not two quantities");
    if (!parsed) throw fail("unknown unit " + text::quoted(bad));
    unit = *parsed;
  }
  const Dim want = dim_of(expected);
  if (unit_text.empty() && want != kNone) throw fail("no unit");
  // "560 W/token", "10 days/request": no value of the format is a rate per count, and the count,
  // dimensionless, had been dropped, the figure read as 560 W (since session 43, a review).
  if (unit.per_count) throw fail("a quantity per token, sample, image, parameter or request: give the whole quantity");
  if (!(unit.dim == want)) throw fail(name_of(unit.dim, unit.count_noun));
  // Units that cancel ("1.2 W/W", "7e9 kg/t") are not a bare number or a count, and a rate per unit
  // time counts something, or nothing ("20 /day"), above the line: "5e6 W/J" is no demand (since
  // session 44, a review: they were read, 1000 times off where the prefixes differ).
  if ((want == kNone || expected == Kind::frequency) && !unit_text.empty() && !unit.count_noun) {
    throw fail(want == kNone ? "units that cancel out: give a bare number" + std::string(expected == Kind::count ? " or a count noun" : "")
                             : "a rate of what: give a count noun, e.g. \"requests/s\"");
  }
  if (unit.count_noun && expected != Kind::count && expected != Kind::frequency) throw fail(name_of(unit.dim, true));
  const double value = number->value * multiplier * unit.factor;
  if (!std::isfinite(value)) throw fail("number out of range");
  return Quantity{value, number->half_ulp * multiplier * unit.factor, std::string(unit.noun)};
}

}  // namespace dlcarbon::units
