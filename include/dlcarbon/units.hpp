#pragma once
// Quantities with units: the one place where "400 W", "14.8 days" or
// "0.429 kgCO2e/kWh" become numbers. Inside dlcarbon everything is SI:
// s, J, W, kgCO2e, FLOP, byte. No other file converts units.
//
//   auto q = dlcarbon::units::parse_quantity("1,287 MWh", Kind::energy);
//   q.value       // 4.6332e12 (J)
//   q.resolution  // 1.8e9 (J): half a unit of the last printed digit

#include <stdexcept>
#include <string>
#include <string_view>

namespace dlcarbon::units {

// What a quantity measures. Each kind has one SI unit and a list of accepted spellings.
enum class Kind {
  ratio,      // bare number: PUE, utilisation, shares
  count,      // bare number or with a count noun: "300e9 tokens"
  time,       // s
  power,      // W
  energy,     // J
  co2e,       // kgCO2e
  intensity,  // kgCO2e/J
  work,       // FLOP
  rate,       // FLOP/s
  bytes,      // B
  bandwidth,  // B/s
  frequency,  // 1/s: requests, images or inferences per unit time ("5e6 images/day")
};

// Human description of a kind with an example, used in error messages:
// "a power (e.g. \"400 W\")".
std::string describe(Kind kind);
// The same with a qualifier before the example: describe(power, "greater than 0") is
// "a power greater than 0 (e.g. \"400 W\")".
std::string describe(Kind kind, const std::string& qualifier);
// The SI unit symbol dlcarbon uses internally and writes as `units` attributes.
std::string si_symbol(Kind kind);

struct Quantity {
  double value = 0;       // SI
  double resolution = 0;  // SI; half a unit of the last printed digit (0.5 for "27", 0.05 for "3.1")
  // What a count counts where its text says so: "token", "sample", "image", "param" or "request"
  // (requests, inferences, queries), singular or plural alike; "" for a bare number.
  std::string noun;
};

// Thrown for text that is not a quantity of the expected kind. The message says what was
// expected and what was found (without file or key: the caller adds those).
class QuantityError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Parses "<number> <unit>". The number may have thousands separators ("1,287") and an
// exponent. Throws QuantityError when the number is malformed or not finite, the unit is
// unknown, missing where one is needed, or of another dimension.
Quantity parse_quantity(std::string_view text, Kind expected);

// Conversion factors for output and reports (value in SI times factor = value in unit).
inline constexpr double joule_per_kwh = 3.6e6;
inline constexpr double seconds_per_hour = 3600.0;
inline constexpr double seconds_per_day = 86400.0;
inline constexpr double kg_per_tonne = 1000.0;
inline constexpr double kg_per_pound = 0.45359237;

}  // namespace dlcarbon::units
