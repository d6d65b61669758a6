#include <doctest/doctest.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include <cmath>
#include <memory>

#include "dlcarbon/grid.hpp"

using namespace dlcarbon;

namespace {
constexpr double kGPerKwh = 1e-3 / 3.6e6;  // 1 gCO2e/kWh in kgCO2e/J
constexpr double k2023 = 1672531200;       // 2023-01-01T00:00:00Z

GridRegion traced() {
  auto t = std::make_shared<IntensityTrace>();
  t->time_unix_s = {static_cast<std::int64_t>(k2023), static_cast<std::int64_t>(k2023) + 3600,
                    static_cast<std::int64_t>(k2023) + 7200};
  t->kg_per_j = {100 * kGPerKwh, 200 * kGPerKwh, 300 * kGPerKwh};
  t->period_s = 3600;
  GridRegion r;
  r.id = "r";
  r.intensity_kg_per_j = 999 * kGPerKwh;  // not used where the trace applies
  r.trace = t;
  return r;
}
}  // namespace

TEST_CASE("the integral of a piecewise-constant trace is exact") {
  const GridRegion r = traced();
  // [00:30, 02:30]: half an hour at 100, an hour at 200, half an hour at 300 = 400 g/kWh x h,
  // a mean of 200 g/kWh.
  CHECK(lifecycle::intensity_integral(r, k2023 + 1800, k2023 + 9000) == approx(400 * 3600 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, k2023 + 1800, k2023 + 9000) == approx(200 * kGPerKwh));
  // Shorter than a year, the trace repeats over its own span, 3 hours (since session 38; before,
  // its last value held to the end of the 365-day year): [03:00, 05:00] reads hours 0 and 1, 150.
  CHECK(lifecycle::mean_intensity(r, k2023 + 10800, k2023 + 18000) == approx(150 * kGPerKwh));
  // So the same hours one and two years later, and before the trace, read the same (8,760 hours
  // are 2,920 spans).
  const double year = 365 * 86400.0;
  for (const double shift : {year, 2 * year, -year}) {
    CHECK(lifecycle::mean_intensity(r, k2023 + shift + 1800, k2023 + shift + 9000) == approx(200 * kGPerKwh));
  }
  // A whole year: 2,920 spans of 1 h at 100, 1 h at 200 and 1 h at 300.
  CHECK(lifecycle::intensity_integral(r, k2023, k2023 + year) == approx(2920.0 * (100 + 200 + 300) * 3600 * kGPerKwh));
  CHECK(lifecycle::intensity_integral(r, k2023 + 10, k2023 + 10) == 0);
}

TEST_CASE("a trace longer than 365 days is read as it is, and repeats with its own span") {
  // Two years of days from 2022-01-01: 100 g/kWh through 2022, 500 through 2023 (and a leap
  // year's 366th day is its own, below). Before session 31 every time folded into the first 365
  // days, so 2023 read 2022's values.
  constexpr double k2022 = 1640995200, day = 86400;
  auto t = std::make_shared<IntensityTrace>();
  for (int d = 0; d < 730; ++d) {
    t->time_unix_s.push_back(static_cast<std::int64_t>(k2022 + d * day));
    t->kg_per_j.push_back((d < 365 ? 100 : 500) * kGPerKwh);
  }
  t->period_s = 86400;
  GridRegion r;
  r.trace = t;
  CHECK(lifecycle::trace_period_s(*t) == approx(730 * day));
  // 10 days from 2023-06-01 (day 516) read 2023's rows.
  CHECK(lifecycle::mean_intensity(r, k2022 + 516 * day, k2022 + 526 * day) == approx(500 * kGPerKwh));
  // Outside the span it repeats every 730 days: day 882 (2024-06-01) reads day 152 (2022).
  CHECK(lifecycle::mean_intensity(r, k2022 + 882 * day, k2022 + 892 * day) == approx(100 * kGPerKwh));
  // A leap year's trace (2024, 366 days) keeps its 31 December.
  constexpr double k2024 = 1704067200;
  auto leap = std::make_shared<IntensityTrace>();
  for (int d = 0; d < 366; ++d) {
    leap->time_unix_s.push_back(static_cast<std::int64_t>(k2024 + d * day));
    leap->kg_per_j.push_back((d == 365 ? 900 : 200) * kGPerKwh);
  }
  leap->period_s = 86400;
  r.trace = leap;
  CHECK(lifecycle::mean_intensity(r, k2024 + 365 * day, k2024 + 366 * day) == approx(900 * kGPerKwh));
  CHECK(lifecycle::intensity_integral(r, k2024, k2024 + 366 * day) == approx((365 * 200 + 900) * day * kGPerKwh));
  // A monthly 2024 trace (rows on each 1st, smallest gap February's 29 days: 335 + 29 = 364 days)
  // is the calendar year 2024, 366 days, not 365 (a review, session 43: its 31 December had read
  // January's row); 1 January 2025 reads January again.
  {
    auto monthly = std::make_shared<IntensityTrace>();
    for (unsigned m = 1; m <= 12; ++m) {
      monthly->time_unix_s.push_back(lifecycle::days_from_civil(2024, m, 1) * 86400);
      monthly->kg_per_j.push_back(100.0 * m * kGPerKwh);
    }
    monthly->period_s = 29 * 86400;
    CHECK(lifecycle::trace_period_s(*monthly) == approx(366 * day));
    GridRegion mr;
    mr.trace = monthly;
    CHECK(lifecycle::mean_intensity(mr, k2024 + 365 * day, k2024 + 366 * day) == approx(1200 * kGPerKwh));
    CHECK(lifecycle::mean_intensity(mr, k2024 + 366 * day, k2024 + 367 * day) == approx(100 * kGPerKwh));
    // The same file for 2023 (smallest gap 28 days: 334 + 28 = 362) is 365 days, as before.
    for (unsigned m = 1; m <= 12; ++m) monthly->time_unix_s[m - 1] = lifecycle::days_from_civil(2023, m, 1) * 86400;
    monthly->period_s = 28 * 86400;
    CHECK(lifecycle::trace_period_s(*monthly) == approx(365 * day));
  }
  // A trace shorter than a year repeats over its span (3 hours), one within half a row of a year
  // every 365 days.
  CHECK(lifecycle::trace_period_s(*traced().trace) == approx(3 * 3600.0));
  {
    auto almost = std::make_shared<IntensityTrace>();
    for (int h = 0; h < 8760; ++h) {
      almost->time_unix_s.push_back(static_cast<std::int64_t>(k2022) + 3600 * h);
      almost->kg_per_j.push_back(100 * kGPerKwh);
    }
    almost->period_s = 3600;
    CHECK(lifecycle::trace_period_s(*almost) == approx(365 * day));
    almost->time_unix_s.pop_back();
    almost->kg_per_j.pop_back();
    CHECK(lifecycle::trace_period_s(*almost) == approx(8759 * 3600.0));
  }
  // An hourly year that ends with the next year's first hour (8,761 rows) closes its span there:
  // it repeats every 365 days, not 365 days and an hour (which would slip an hour a year).
  constexpr double k2023 = 1672531200;
  auto closing = std::make_shared<IntensityTrace>();
  for (int h = 0; h <= 8760; ++h) {
    closing->time_unix_s.push_back(static_cast<std::int64_t>(k2023 + h * 3600.0));
    closing->kg_per_j.push_back((h % 24 == 0 ? 1000 : 100) * kGPerKwh);
  }
  closing->period_s = 3600;
  CHECK(lifecycle::trace_period_s(*closing) == approx(365 * day));
  r.trace = closing;
  // 2027-06-01 00:00 (1,612 days on) is a midnight of the repeated year: 1000 g/kWh.
  const double june_2027 = 1811808000;
  CHECK(lifecycle::mean_intensity(r, june_2027, june_2027 + 3600) == approx(1000 * kGPerKwh));
  // From 29 February, a closing row on 28 February a year on closes the span too (pandas' and
  // Java's year on); the period stays 365 days.
  constexpr double k20240229 = 1709164800;
  auto leap_start = std::make_shared<IntensityTrace>();
  for (int h = 0; h < 8760; ++h) {
    leap_start->time_unix_s.push_back(static_cast<std::int64_t>(k20240229 + h * 3600.0));
    leap_start->kg_per_j.push_back(100 * kGPerKwh);
  }
  leap_start->time_unix_s.push_back(static_cast<std::int64_t>(k20240229 + 8760 * 3600.0));  // 2025-02-28
  leap_start->kg_per_j.push_back(999 * kGPerKwh);
  leap_start->period_s = 3600;
  CHECK(lifecycle::trace_period_s(*leap_start) == approx(365 * day));
  // A trajectory scales a longer trace's repeats, never its own rows: -50 %/year from the
  // two-year trace's end, so 2023's rows read 500 and the first repeat (2024) 0.5 x 100.
  r.trace = t;
  r.year = 2022;
  r.annual_change = -0.5;
  CHECK(lifecycle::trajectory_reference(r) == approx(k2022 + 365 * day));
  // A leap year's trace (2024, 8,784 hours): its repeats are 2025's and on, a calendar year after 1
  // January 2024 (365 days from its end had put the reference on 2 January; session 45).
  auto leap_year = std::make_shared<IntensityTrace>();
  for (int h = 0; h < 8784; ++h) {
    leap_year->time_unix_s.push_back(static_cast<std::int64_t>(k2024 + h * 3600.0));
    leap_year->kg_per_j.push_back(100 * kGPerKwh);
  }
  leap_year->period_s = 3600;
  GridRegion leap_region;
  leap_region.trace = leap_year;
  leap_region.year = 2024;
  leap_region.annual_change = -0.5;
  CHECK(lifecycle::trajectory_reference(leap_region) == k2024);
  CHECK(lifecycle::mean_intensity(leap_region, k2024 + 365 * day, k2024 + 366 * day) == approx(100 * kGPerKwh));  // 2024-12-31
  CHECK(lifecycle::mean_intensity(leap_region, k2024 + 366 * day, k2024 + 367 * day) == approx(50 * kGPerKwh));  // 2025-01-01
  CHECK(lifecycle::mean_intensity(r, k2022 + 516 * day, k2022 + 526 * day) == approx(500 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, k2022 + 740 * day, k2022 + 741 * day) == approx(50 * kGPerKwh));
  // A typical day stands for the year from its first row (since session 41, from a review: its
  // second day had been scaled as the next year's): -50 %/year leaves 2022's days at the day's
  // 100 and 300 g/kWh (mean 200) and halves 2023's.
  auto typical = std::make_shared<IntensityTrace>();
  for (int h = 0; h < 24; ++h) {
    typical->time_unix_s.push_back(static_cast<std::int64_t>(k2022 + h * 3600.0));
    typical->kg_per_j.push_back((h < 12 ? 100 : 300) * kGPerKwh);
  }
  typical->period_s = 3600;
  r.trace = typical;
  CHECK(lifecycle::trajectory_reference(r) == approx(k2022));
  CHECK(lifecycle::mean_intensity(r, k2022 + day, k2022 + 2 * day) == approx(200 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, k2022 + 364 * day, k2022 + 365 * day) == approx(200 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, k2022 + 365 * day, k2022 + 366 * day) == approx(100 * kGPerKwh));
}

TEST_CASE("without a trace the annual value applies") {
  GridRegion r;
  r.intensity_kg_per_j = 500 * kGPerKwh;
  CHECK(lifecycle::intensity_integral(r, 0, 7200) == approx(500 * 7200 * kGPerKwh));
}

TEST_CASE("a training job placed in time on a trace") {
  // 1 accelerator, 1 kW facility power for 2 h from 00:30: 2 kWh x a mean of 200 g/kWh = 0.4 kg.
  TrainingJob job;
  job.datacenter.region = traced();
  job.start_unix_s = static_cast<std::int64_t>(k2023) + 1800;
  TrainingFootprint f;
  f.duration_s = 7200;
  f.facility_energy_j = 2 * 3.6e6;
  f.co2e_location_kg = 123;  // replaced
  lifecycle::place_in_time(job, f);
  CHECK(f.co2e_location_kg == approx(0.4));
  CHECK(f.intensity_location_kg_per_j == approx(200 * kGPerKwh));
}

TEST_CASE("an inference job placed in time on a trace and on a trajectory") {
  // Its batches back to back from the scenario's start: 2 h of accelerator time from 00:30 on the
  // trace, 2 kWh x a mean of 200 g/kWh = 0.4 kg (since session 43, a review: it had taken the
  // region's annual value).
  InferenceJob job;
  job.datacenter.region = traced();
  job.start_unix_s = static_cast<std::int64_t>(k2023) + 1800;
  InferenceResult r;
  r.accelerator_time_s = 7200;
  r.facility_energy_j = 2 * 3.6e6;
  r.co2e_location_kg = 123;  // replaced
  lifecycle::place_in_time(job, r);
  CHECK(r.co2e_location_kg == approx(0.4));
  // Ten years into a -10 %/year trajectory from 500 g/kWh in 2025: 500 x 0.9^10, over 1 s or over
  // none (the point value).
  GridRegion g;
  g.intensity_kg_per_j = 500 * kGPerKwh;
  g.year = 2025;
  g.annual_change = -0.10;
  job.datacenter.region = g;
  job.start_unix_s = static_cast<std::int64_t>(lifecycle::days_from_civil(2035, 6, 1) * 86400);
  r.facility_energy_j = 3.6e6;
  r.accelerator_time_s = 1;
  lifecycle::place_in_time(job, r);
  CHECK(r.co2e_location_kg == approx(0.5 * std::pow(0.9, 10)));
  r.accelerator_time_s = 0;
  lifecycle::place_in_time(job, r);
  CHECK(r.co2e_location_kg == approx(0.5 * std::pow(0.9, 10)));
}

TEST_CASE("a trajectory over thousands of years: the whole years in closed form, as year by year") {
  // Since session 43, from a review: year by year, a span of 10^7 years ran for minutes and one of
  // 10^23 s never ended. 1,500 years (the closed form) equal two spans of 750 (year by year), on
  // the annual value and on a 3-hour trace (2,920 patterns a 365-day year); -10 %/year from 2023,
  // from the middle of 2022 (a head year before the reference at 1).
  const double year = 365 * 86400.0;
  for (const bool trace : {false, true}) {
    GridRegion r = trace ? traced() : GridRegion{};
    if (!trace) r.intensity_kg_per_j = 100 * kGPerKwh;
    r.year = 2023;
    r.annual_change = -0.10;
    const double ref = lifecycle::trajectory_reference(r);
    const double t0 = ref - 0.5 * year, t1 = lifecycle::year_start(ref, 1499) + 0.25 * year;
    const double tm = lifecycle::year_start(ref, 749) + 0.5 * year;
    const double whole = lifecycle::intensity_integral(r, t0, t1);
    CHECK(whole == approx(lifecycle::intensity_integral(r, t0, tm) + lifecycle::intensity_integral(r, tm, t1)));
    // By hand on the annual value: half a year at 100, then 100 x 0.9^k for the whole calendar
    // years 2023 + k, k = 0..1498 (365 or 366 days), and a quarter of year 1499 (negligible).
    double by_hand = 0.5 * year;
    for (int k = 0; k < 1499; ++k) {
      const double days = static_cast<double>(lifecycle::days_from_civil(2024 + k, 1, 1) - lifecycle::days_from_civil(2023 + k, 1, 1));
      by_hand += std::pow(0.9, k) * days * 86400;
    }
    by_hand += std::pow(0.9, 1499) * 0.25 * year;
    if (!trace) CHECK(whole == approx(100 * kGPerKwh * by_hand));
  }
  // 10^23 s at -5 %/year: finite and quick, the series' sum over calendar years from 1970 (about
  // 1 / 0.05 years at 100 g/kWh; the years past the thousandth are below 10^-22 of the first).
  GridRegion g;
  g.intensity_kg_per_j = 100 * kGPerKwh;
  g.year = 1970;
  g.annual_change = -0.05;
  double series = 0;
  for (int k = 0; k < 1000; ++k) {
    series += std::pow(0.95, k) * static_cast<double>(lifecycle::days_from_civil(1971 + k, 1, 1) - lifecycle::days_from_civil(1970 + k, 1, 1)) * 86400;
  }
  CHECK(lifecycle::intensity_integral(g, 0, 1e23) == approx(100 * kGPerKwh * series));
  CHECK(series == approx(year / 0.05).epsilon(0.001));
}

TEST_CASE("a trajectory scales each year after the reference year") {
  // 100 g/kWh in 2023, -10 %/year: 2023 at 100, 2024 at 90, 2025 at 81, calendar years (since
  // session 45, a review: 365-day years from 1 January 2023 had put 31 December 2024 in 2025).
  GridRegion r;
  r.intensity_kg_per_j = 100 * kGPerKwh;
  r.year = 2023;
  r.annual_change = -0.10;
  const double year = 365 * 86400.0;
  const auto jan1 = [](int y) { return static_cast<double>(lifecycle::days_from_civil(y, 1, 1) * 86400); };
  CHECK(lifecycle::mean_intensity(r, jan1(2023), jan1(2024)) == approx(100 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, jan1(2024), jan1(2025)) == approx(90 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, jan1(2025), jan1(2026)) == approx(81 * kGPerKwh));
  CHECK(lifecycle::mean_intensity(r, jan1(2025) - 86400, jan1(2025)) == approx(90 * kGPerKwh));  // 2024-12-31
  CHECK(lifecycle::years_since(jan1(2023), jan1(2025) - 1) == 1);
  CHECK(lifecycle::years_since(jan1(2023), jan1(2025)) == 2);
  CHECK(lifecycle::year_start(jan1(2023), 7) == jan1(2030));
  CHECK(lifecycle::year_start(jan1(2023), 407) == jan1(2430));  // a whole 400-year cycle on
  // Half of 2023 and half of 2024 (182.5 days each): (100 + 90) / 2.
  CHECK(lifecycle::mean_intensity(r, jan1(2024) - year / 2, jan1(2024) + year / 2) == approx(95 * kGPerKwh));
  // Before the reference year the value is not extrapolated backwards.
  CHECK(lifecycle::mean_intensity(r, k2023 - year, k2023) == approx(100 * kGPerKwh));
}
