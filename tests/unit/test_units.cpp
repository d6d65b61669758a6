#include <doctest/doctest.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include "dlcarbon/error.hpp"
#include "dlcarbon/text.hpp"
#include "dlcarbon/units.hpp"

using dlcarbon::units::Kind;
using dlcarbon::units::parse_quantity;
using dlcarbon::units::QuantityError;

namespace {
double si(const char* text, Kind kind) { return parse_quantity(text, kind).value; }
std::string message(const char* text, Kind kind) {
  try {
    parse_quantity(text, kind);
  } catch (const QuantityError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_CASE("energies convert to joules") {
  // 1 kWh = 1000 W x 3600 s = 3.6e6 J; 1,287 MWh = 1287 x 3.6e9 J = 4.6332e12 J.
  CHECK(si("1 kWh", Kind::energy) == approx(3.6e6).epsilon(1e-15));
  CHECK(si("1,287 MWh", Kind::energy) == approx(4.6332e12).epsilon(1e-15));
  CHECK(si("5 J", Kind::energy) == 5);
  CHECK(si("2 GJ", Kind::energy) == approx(2e9).epsilon(1e-15));
  CHECK(si("0.75 pJ", Kind::energy) == approx(0.75e-12).epsilon(1e-12));  // an energy roofline's e_flop
  CHECK(si("3 PJ", Kind::energy) == approx(3e15).epsilon(1e-15));
}

TEST_CASE("durations convert to seconds") {
  // 14.8 days x 86,400 s = 1,278,720 s; a year is 365 days = 31,536,000 s.
  CHECK(si("14.8 days", Kind::time) == approx(1278720).epsilon(1e-15));
  CHECK(si("12 h", Kind::time) == 43200);
  CHECK(si("3.55e6 h", Kind::time) == approx(1.278e10).epsilon(1e-15));
  CHECK(si("1 year", Kind::time) == 31536000);
  CHECK(si("90 min", Kind::time) == 5400);
  CHECK(si("2 weeks", Kind::time) == 1209600);
  CHECK(si("250 ms", Kind::time) == approx(0.25).epsilon(1e-15));
}

TEST_CASE("powers, masses and intensities") {
  CHECK(si("400 W", Kind::power) == 400);
  CHECK(si("3.43 kW", Kind::power) == approx(3430).epsilon(1e-15));
  // 552 t = 552,000 kg; 26 lb = 26 x 0.45359237 kg = 11.79340162 kg.
  CHECK(si("552 tCO2e", Kind::co2e) == 552000);
  CHECK(si("26 lbCO2e", Kind::co2e) == approx(11.79340162).epsilon(1e-12));
  CHECK(si("9.78 kgCO2e", Kind::co2e) == approx(9.78).epsilon(1e-15));
  CHECK(si("340.5 kg CO2e", Kind::co2e) == approx(340.5).epsilon(1e-15));
  // 0.429 kg/kWh = 0.429 / 3.6e6 kg/J = 1.191666...e-7 kg/J.
  CHECK(si("0.429 kgCO2e/kWh", Kind::intensity) == approx(0.429 / 3.6e6).epsilon(1e-15));
  // 20 g/kWh = 0.02 kg / 3.6e6 J.
  CHECK(si("20 gCO2e/kWh", Kind::intensity) == approx(0.02 / 3.6e6).epsilon(1e-15));
  // 998.443 lb/MWh x 0.45359237 kg/lb / 3.6e9 J/MWh.
  CHECK(si("998.443 lbCO2e/MWh", Kind::intensity) ==
        approx(998.443 * 0.45359237 / 3.6e9).epsilon(1e-12));
}

TEST_CASE("work, rates, bytes and counts") {
  CHECK(si("3.14e23 FLOP", Kind::work) == approx(3.14e23).epsilon(1e-15));
  CHECK(si("125 TFLOP/s", Kind::rate) == approx(1.25e14).epsilon(1e-15));
  CHECK(si("125 TFLOPS", Kind::rate) == approx(1.25e14).epsilon(1e-15));
  CHECK(si("1979 TOPS", Kind::rate) == approx(1.979e15).epsilon(1e-15));
  CHECK(si("32 GB", Kind::bytes) == approx(3.2e10).epsilon(1e-15));
  CHECK(si("16 GiB", Kind::bytes) == approx(16.0 * 1024 * 1024 * 1024).epsilon(1e-15));
  CHECK(si("900 GB/s", Kind::bandwidth) == approx(9e11).epsilon(1e-15));
  CHECK(si("300e9 tokens", Kind::count) == approx(3e11).epsilon(1e-15));
  CHECK(si("175e9", Kind::count) == approx(1.75e11).epsilon(1e-15));
  // Multipliers on counts, alone or before the noun (since session 42): k/K, M, B/G, T.
  CHECK(si("1.2M", Kind::count) == approx(1.2e6).epsilon(1e-15));
  CHECK(si("25.6M params", Kind::count) == approx(2.56e7).epsilon(1e-15));
  CHECK(si("300B tokens", Kind::count) == approx(3e11).epsilon(1e-15));
  CHECK(si("300 Btokens", Kind::count) == approx(3e11).epsilon(1e-15));
  CHECK(si("2T", Kind::count) == approx(2e12).epsilon(1e-15));
  CHECK(si("5k", Kind::count) == approx(5e3).epsilon(1e-15));
  CHECK(si("5 G images", Kind::count) == approx(5e9).epsilon(1e-15));
  CHECK(parse_quantity("25.6M params", Kind::count).noun == "param");
  // Not a multiplier elsewhere, nor before what is not a count noun.
  CHECK(message("1.2M", Kind::energy).find("unknown unit \"M\"") != std::string::npos);
  CHECK(message("1.2Mfoo", Kind::count).find("unknown unit") != std::string::npos);
  CHECK(message("1 MWh", Kind::count).find("an energy") != std::string::npos);
  CHECK(si("1.58", Kind::ratio) == approx(1.58).epsilon(1e-15));
}

TEST_CASE("the resolution is half a unit of the last printed digit, in SI") {
  // "27 kWh": 0.5 kWh = 1.8e6 J. "3.1 days": 0.05 day = 4320 s. "552.1 t": 0.05 t = 50 kg.
  CHECK(parse_quantity("27 kWh", Kind::energy).resolution == approx(1.8e6).epsilon(1e-12));
  CHECK(parse_quantity("3.1 days", Kind::time).resolution == approx(4320).epsilon(1e-12));
  CHECK(parse_quantity("552.1 tCO2e", Kind::co2e).resolution == approx(50).epsilon(1e-12));
  // "3.14e23": last digit is 1e21, half of it 5e20.
  CHECK(parse_quantity("3.14e23 FLOP", Kind::work).resolution == approx(5e20).epsilon(1e-12));
  // "1,287 MWh": 0.5 MWh = 1.8e9 J.
  CHECK(parse_quantity("1,287 MWh", Kind::energy).resolution == approx(1.8e9).epsilon(1e-12));
}

TEST_CASE("bad quantities are rejected with the reason") {
  CHECK(message("300 kg", Kind::power) == "expected a power (e.g. \"400 W\"), got \"300 kg\" (a CO2e mass)");
  CHECK(message("12", Kind::time) == "expected a duration (e.g. \"14.8 days\"), got \"12\" (no unit)");
  CHECK(message("nan W", Kind::power) == "expected a power (e.g. \"400 W\"), got \"nan W\" (not a finite number)");
  CHECK(message("inf", Kind::ratio) == "expected a number (e.g. \"1.58\"), got \"inf\" (not a finite number)");
  CHECK(message("1e400 J", Kind::energy) ==
        "expected an energy (e.g. \"1,287 MWh\"), got \"1e400 J\" (number out of range)");
  CHECK(message("3 Wats", Kind::power) == "expected a power (e.g. \"400 W\"), got \"3 Wats\" (unknown unit \"Wats\")");
  // Two quantities are said as such, not as a unit "h30min" (since session 47, a review); a unit
  // with a digit of its own is still an unknown unit.
  CHECK(message("1 h 30 min", Kind::time) ==
        "expected a duration (e.g. \"14.8 days\"), got \"1 h 30 min\" (one number and one unit, e.g. \"1.5 h\", not two quantities)");
  CHECK(message("1 kgCO2x", Kind::co2e).find("unknown unit") != std::string::npos);
  CHECK(message("1,28 MWh", Kind::energy) ==
        "expected an energy (e.g. \"1,287 MWh\"), got \"1,28 MWh\" (misplaced thousands separator)");
  CHECK(message("", Kind::power) == "expected a power (e.g. \"400 W\"), got \"\"");
  // A leading '+' is a sign, once (since session 46, a review: "+1.1" was "not a number").
  CHECK(parse_quantity("+1.1", Kind::ratio).value == approx(1.1));
  CHECK(parse_quantity("+10 days", Kind::time).value == approx(864000));
  CHECK(parse_quantity("+2,048", Kind::count).value == approx(2048));
  CHECK(message("++1", Kind::ratio) == "expected a number (e.g. \"1.58\"), got \"++1\" (not a number)");
  CHECK(message("+-1", Kind::ratio) == "expected a number (e.g. \"1.58\"), got \"+-1\" (not a number)");
  CHECK(message("ten", Kind::count) == "expected a count (e.g. \"300e9 tokens\" or \"300B tokens\"), got \"ten\" (not a number)");
  CHECK(message("1.5 tokens", Kind::ratio) ==
        "expected a number (e.g. \"1.58\"), got \"1.5 tokens\" (a count)");
  CHECK(message("5 kWh", Kind::power) == "expected a power (e.g. \"400 W\"), got \"5 kWh\" (an energy)");
  CHECK(message("1 kWh/kgCO2e", Kind::intensity) ==
        "expected a carbon intensity (e.g. \"0.429 kgCO2e/kWh\"), got \"1 kWh/kgCO2e\" "
        "(an unsupported combination of units)");
}

TEST_CASE("describe with a qualifier") {
  CHECK(dlcarbon::units::describe(Kind::power, "greater than 0") == "a power greater than 0 (e.g. \"400 W\")");
}

TEST_CASE("did-you-mean suggestions") {
  using dlcarbon::text::closest;
  using dlcarbon::text::edit_distance;
  // "trainig" -> "training": one insertion. "acelerators" -> "accelerators": one insertion.
  CHECK(edit_distance("trainig", "training") == 1);
  CHECK(edit_distance("ab", "ba") == 1);  // an adjacent transposition counts once
  CHECK(closest("trainig", {"scenario", "training", "models"}) == "training");
  CHECK(closest("xyz", {"scenario", "training"}).empty());
  CHECK(dlcarbon::text::quoted("a\"b\x01") == "\"a\\\"b\\x01\"");
}

TEST_CASE("an error message stays one line: control characters in keys and file names are escaped") {
  // Since session 35: an unknown key "bad<newline>key<ESC>[2J" split the message and cleared the
  // terminal.
  const std::string m = dlcarbon::format_input_error({"a\nb.yaml", 3, 1}, "bad\nkey\x1b[2J", "unknown key");
  CHECK(m == "a\\x0ab.yaml:3:1: bad\\x0akey\\x1b[2J: unknown key");
  CHECK(m.find('\n') == std::string::npos);
  // Invisible code points are shown by number (since session 43, a review): a no-break space, a
  // zero-width space, a byte order mark in a key, a right-to-left override; visible non-ASCII
  // stays as it is, and a byte that is not UTF-8 shows as \xNN.
  using dlcarbon::text::quoted;
  CHECK(quoted("10\xc2\xa0" "days") == "\"10\\u{00A0}days\"");
  CHECK(quoted("gpu\xe2\x80\x8b") == "\"gpu\\u{200B}\"");
  CHECK(dlcarbon::format_input_error({"s.yaml", 1, 1}, "\xef\xbb\xbf" "key", "unknown key") == "s.yaml:1:1: \\u{FEFF}key: unknown key");
  CHECK(quoted("a\xe2\x80\xae" " b") == "\"a\\u{202E} b\"");
  CHECK(quoted("\xc2\xb5" "s \xc3\xa9" "t\xc3\xa9 \xe2\x82\xac") == "\"\xc2\xb5" "s \xc3\xa9" "t\xc3\xa9 \xe2\x82\xac\"");
  CHECK(quoted("\xff\xc3") == "\"\\xff\\xc3\"");
}

TEST_CASE("micro as u, the micro sign or the Greek mu, and no rate per count") {
  // Since session 43, a review: "10 μs" (Greek mu, U+03BC) was an unknown unit, and "560 W/token"
  // was read as 560 W, the count below the line dropped.
  CHECK(si("10 us", Kind::time) == approx(1e-5));
  CHECK(si("10 \xc2\xb5" "s", Kind::time) == approx(1e-5));
  CHECK(si("10 \xce\xbc" "s", Kind::time) == approx(1e-5));
  CHECK(message("560 W/token", Kind::power) ==
        "expected a power (e.g. \"400 W\"), got \"560 W/token\" (a quantity per token, sample, image, parameter or "
        "request: give the whole quantity)");
  CHECK(message("10 days/request", Kind::time).find("a quantity per token") != std::string::npos);
  CHECK(si("10 requests/s", Kind::frequency) == 10);
}

TEST_CASE("no small prefixes on bytes, FLOP or tonnes, and no units that cancel") {
  // Since session 44, a review: "25 mB" was 0.025 B, "463 mtCO2e" 463 kg, "1.2 W/W" a PUE of 1.2,
  // "7e9 kg/t" 7e6 parameters and "5e6 W/J" a demand of 5e6 requests a second.
  for (const char* bytes : {"25 mB", "80 nB", "80 uB", "2 mB/s"}) {
    CHECK(message(bytes, std::string(bytes).find("/s") != std::string::npos ? Kind::bandwidth : Kind::bytes).find("unknown unit") !=
          std::string::npos);
  }
  CHECK(message("989 mFLOP/s", Kind::rate).find("unknown unit") != std::string::npos);
  CHECK(message("3 mFLOP", Kind::work).find("unknown unit") != std::string::npos);
  CHECK(message("463 mtCO2e", Kind::co2e).find("unknown unit \"mtCO2e\"") != std::string::npos);
  CHECK(message("463 mt", Kind::co2e).find("unknown unit") != std::string::npos);
  // Where they are used they stay: ms, mW, mJ, pJ, mg, mgCO2e, kB, MtCO2e.
  CHECK(si("5 ms", Kind::time) == approx(5e-3));
  CHECK(si("5 mW", Kind::power) == approx(5e-3));
  CHECK(si("0.75 pJ", Kind::energy) == approx(0.75e-12));
  CHECK(si("5 mgCO2e", Kind::co2e) == approx(5e-6));
  CHECK(si("25 kB", Kind::bytes) == 25000);
  CHECK(si("2 MtCO2e", Kind::co2e) == approx(2e9));
  CHECK(message("1.2 W/W", Kind::ratio) == "expected a number (e.g. \"1.58\"), got \"1.2 W/W\" (units that cancel out: give a bare number)");
  CHECK(message("1.2 days/days", Kind::ratio).find("units that cancel out") != std::string::npos);
  CHECK(message("7e9 kg/t", Kind::count).find("units that cancel out: give a bare number or a count noun") != std::string::npos);
  CHECK(message("5e6 W/J", Kind::frequency).find("a rate of what") != std::string::npos);
  CHECK(si("7e9 params", Kind::count) == 7e9);
  CHECK(si("20 /day", Kind::frequency) == approx(20.0 / 86400));
  CHECK(si("5e6 images/day", Kind::frequency) == approx(5e6 / 86400));
}

TEST_CASE("UTC times: digits where the pattern has them") {
  long long t = 0;
  CHECK(dlcarbon::text::parse_utc_time("2023-01-01 01:00:00", t));
  CHECK(t == 1672534800);
  CHECK(dlcarbon::text::parse_utc_time("2023-01-02", t));
  CHECK(t == 1672617600);
  // sscanf's fields took a sign or a space (since session 38, refused).
  for (const char* bad : {"2023-+1-01", "2023- 1-01", "+023-01-01", "2023-01-01 +1:00:00", "2023-01-01T01:00:00", "2023-02-30"}) {
    INFO(bad);
    CHECK_FALSE(dlcarbon::text::parse_utc_time(bad, t));
  }
}

TEST_CASE("a memory message's sizes in the unit that shows them") {
  using dlcarbon::text::byte_size;
  CHECK(byte_size(512) == "512 B");
  CHECK(byte_size(40960) == "41.0 kB");
  CHECK(byte_size(3.2e6) == "3.2 MB");
  CHECK(byte_size(8e10) == "80.0 GB");
  CHECK(dlcarbon::text::more_than(80000040960.0, "gpu", 8e10) == "41.0 kB more than the 80.0 GB gpu has");
}
