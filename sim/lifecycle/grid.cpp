#include "dlcarbon/grid.hpp"

#include <algorithm>
#include <cmath>

namespace dlcarbon::lifecycle {
namespace {

constexpr double kYear = 365.0 * 86400.0;
constexpr double kMeanYear = 365.2425 * 86400.0;  // the Gregorian calendar's mean year

// F(u) = integral of the trace from its start to u, for u in [start, start + period].
double within_period(const IntensityTrace& t, double u) {
  const double start = static_cast<double>(t.time_unix_s.front());
  const double end = start + trace_period_s(t);
  double total = 0;
  const std::size_t n = t.time_unix_s.size();
  // Sum of whole segments before u, then the part of the segment holding u. (Called twice per
  // integral.)
  for (std::size_t i = 0; i < n; ++i) {
    const double a = static_cast<double>(t.time_unix_s[i]);
    if (a >= u) break;
    double b = i + 1 < n ? static_cast<double>(t.time_unix_s[i + 1]) : a + static_cast<double>(t.period_s);
    if (i + 1 == n) b = std::max(b, end);  // the last value holds to the end of the period
    b = std::min(b, end);
    total += t.kg_per_j[i] * (std::min(b, u) - a);
  }
  return total;
}

// G(t) = integral from the trace start to t, for any t: whole periods plus the part-period.
double cumulative(const IntensityTrace& t, double time) {
  const double start = static_cast<double>(t.time_unix_s.front());
  const double period = trace_period_s(t);
  const double periods = std::floor((time - start) / period);
  const double whole = periods != 0 ? periods * within_period(t, start + period) : 0;
  return whole + within_period(t, time - periods * period);
}

}  // namespace

// Days since 1970-01-01 of a civil date, and back (proleptic Gregorian; Hinnant's algorithms).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

namespace {
// `t` moved by whole calendar years (29 February to 1 March where the target year has none).
std::int64_t plus_years(std::int64_t t, std::int64_t years) {
  const std::int64_t day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
  const std::int64_t second = t - day * 86400;
  std::int64_t y = 0;
  unsigned m = 0, d = 0;
  civil_from_days(day, y, m, d);
  return days_from_civil(y + years, m, d) * 86400 + second;
}
}  // namespace

double trace_period_s(const IntensityTrace& t) {
  if (t.time_unix_s.empty()) return kYear;
  const std::int64_t front = t.time_unix_s.front(), back = t.time_unix_s.back();
  // The rows cover [front, back + period). A last row exactly whole calendar years after the first
  // (an hourly 2023 file that ends with 2024-01-01 00:00) closes the span rather than adding a
  // period to it: the span is [front, back), and a year of 8,760 hours plus that row still repeats
  // every 365 days. A leap year's own last day (2024-12-31, 366 daily rows) is not such a row.
  const std::int64_t years = (back - front + 43200) / static_cast<std::int64_t>(kYear);
  // From 29 February to a year without one, the same date years on is 1 March (plus_years) or, as
  // pandas and Java count it, 28 February: either closes.
  const std::int64_t shifted = years >= 1 ? plus_years(front, years) : 0;
  const auto day_of = [](std::int64_t t) { return t >= 0 ? t / 86400 : -((-t + 86399) / 86400); };
  std::int64_t y = 0;
  unsigned fm = 0, fd = 0, sm = 0, sd = 0;
  civil_from_days(day_of(front), y, fm, fd);
  civil_from_days(day_of(shifted), y, sm, sd);
  const bool leap_day_moved = fm == 2 && fd == 29 && sm == 3 && sd == 1;
  const bool closing = years >= 1 && (shifted == back || (leap_day_moved && shifted - 86400 == back));
  const double span = static_cast<double>(back - front) + (closing ? 0.0 : static_cast<double>(t.period_s));
  // Within half a row's interval of a year (a rounding of the same year), a year. Shorter, the trace
  // is a pattern (a typical day, a week) that repeats over its own span (since session 38, from a
  // review: before, the last value held to the end of the year, so a day's trace read its 23:00
  // row for the other 364 days).
  // The year is the calendar year from the first row: 366 days from 1 January of a leap year (a
  // review, session 43: a 2024 monthly trace, 335 days + its 29-day smallest gap, had been snapped
  // to 365 days, so its own 31 December read January's row).
  const double half_row = static_cast<double>(t.period_s) / 2;
  const double calendar = static_cast<double>(plus_years(front, 1) - front);
  if (std::abs(span - calendar) <= half_row) return calendar;
  return std::abs(span - kYear) <= half_row ? kYear : span;
}


namespace {

double base_integral(const GridRegion& region, double t0, double t1) {
  if (!region.trace) return region.intensity_kg_per_j * (t1 - t0);
  return cumulative(*region.trace, t1) - cumulative(*region.trace, t0);
}

// Start of the region's reference year (1 January of `year`, UTC).
double reference_start(const GridRegion& region) {
  const int y = region.year > 0 ? region.year : 1970;
  // Days from 1970-01-01 to 1 January of y (proleptic Gregorian).
  long long days = 0;
  for (int k = 1970; k < y; ++k) days += ((k % 4 == 0 && k % 100 != 0) || k % 400 == 0) ? 366 : 365;
  for (int k = y; k < 1970; ++k) days -= ((k % 4 == 0 && k % 100 != 0) || k % 400 == 0) ? 366 : 365;
  return static_cast<double>(days) * 86400.0;
}

}  // namespace

double trajectory_reference(const GridRegion& region) {
  if (region.trace && !region.trace->time_unix_s.empty()) {
    // A trace is the grid as it was over its span: the trajectory scales its repeats only, by year
    // after the span's end (for a one-year trace from 1 January of the region's year, the same
    // years as without a trace). Since session 31; before, the years after 1 January of `year`,
    // which also scaled a longer trace's own later rows. A pattern shorter than a year (a typical
    // day or week) stands for the year from its first row: its repeats in that year are year 0
    // (since session 41, a review: a typical day's second day had been scaled as the next year's).
    // A year before the span's end, in calendar years (since session 45: 365 days, which put a
    // 2024 trace's reference on 2 January).
    const std::int64_t front = region.trace->time_unix_s.front();
    const double period = trace_period_s(*region.trace);
    if (period < kYear) return static_cast<double>(front);
    return static_cast<double>(plus_years(front + static_cast<std::int64_t>(std::llround(period)), -1));
  }
  return reference_start(region);
}

// Calendar years from `ref`: year k begins on ref's date k years on (365 or 366 days each; since
// session 45, a review: 365-day years had moved 2024-12-31 into 2025's factor, and 2030's onto
// 29 December 2029). The calendar repeats every 400 years (146,097 days): far years are placed
// by whole cycles, exactly.
double year_start(double ref, double k) {
  constexpr double kCycleYears = 400, kCycleS = 146097 * 86400.0;
  // (Past 10^12 years, beyond a second's precision and the calendar's integers: the mean year.)
  if (!std::isfinite(k) || std::abs(k) > 1e12 || !std::isfinite(ref) || std::abs(ref) > 1e15) return ref + k * kMeanYear;
  const double cycles = std::floor(k / kCycleYears);
  const auto within = static_cast<std::int64_t>(k - cycles * kCycleYears);
  const auto r = static_cast<std::int64_t>(std::llround(ref));
  return static_cast<double>(plus_years(r, within)) + (ref - static_cast<double>(r)) + cycles * kCycleS;
}

double years_since(double ref, double t) {
  double k = std::floor((t - ref) / kMeanYear);
  if (!std::isfinite(k) || std::abs(k) > 1e12) return k;  // (beyond a second's precision)
  while (year_start(ref, k + 1) <= t) ++k;
  while (year_start(ref, k) > t) --k;
  return k;
}

double intensity_integral(const GridRegion& region, double t0, double t1) {
  if (!(t1 > t0)) return 0;
  if (region.annual_change == 0) return base_integral(region, t0, t1);
  // A trajectory scales calendar year k after the reference by (1 + change)^k (constant within a
  // year, so the integral stays exact): split [t0, t1] at year boundaries.
  const double ref = trajectory_reference(region);
  const double r = 1 + region.annual_change;
  const auto scale = [&](double k) { return std::pow(r, std::max(0.0, k)); };
  const double k0 = years_since(ref, t0), k1 = years_since(ref, t1);
  // Year by year for the first thousand years; beyond (a training job of 10^7 years, an inference
  // job of 10^25 requests) the whole years before the last in closed form, sum of r^max(0, k),
  // each holding a mean Gregorian year of the base (the trace's mean over its period). Since
  // session 43, a review: a year at a time, the loop ran for minutes and, past 10^23 s, no longer
  // advanced. A shrinking trajectory leaves the closed-form years below 10^-45 of the first.
  constexpr double kLoopYears = 1000;
  double total = 0;
  double a = t0, k = k0;
  while (a < t1 && k - k0 < kLoopYears) {
    double b = std::min(t1, year_start(ref, k + 1));
    if (!(b > a)) b = t1;  // (a boundary lost to rounding)
    total += scale(k) * base_integral(region, a, b);
    a = b;
    ++k;
  }
  if (!(a < t1)) return total;
  double per_year = region.intensity_kg_per_j * kMeanYear;
  if (region.trace && !region.trace->time_unix_s.empty()) {
    const double period = trace_period_s(*region.trace), front = static_cast<double>(region.trace->time_unix_s.front());
    per_year = base_integral(region, front, front + period) * kMeanYear / period;
  }
  // sum over j = k..k1-1 of r^max(0, j): the years before the reference at 1, then a geometric series.
  const double lo = k, hi = k1 - 1;
  const double before = std::max(0.0, std::min(hi, -1.0) - lo + 1);
  const double m = std::max(lo, 0.0), n = hi - m + 1;
  const double after = n <= 0 ? 0.0 : r == 1 ? n : std::pow(r, m) * (std::pow(r, n) - 1) / (r - 1);
  const double last_start = std::min(t1, std::max(a, year_start(ref, k1)));
  return total + per_year * (before + after) + scale(k1) * base_integral(region, last_start, t1);
}

double mean_intensity(const GridRegion& region, double t0, double t1) {
  if (!(t1 > t0)) return intensity_integral(region, t0, t0 + 1);
  return intensity_integral(region, t0, t1) / (t1 - t0);
}

void place_in_time(const TrainingJob& job, TrainingFootprint& f) {
  const GridRegion& region = job.datacenter.region;
  if ((!region.trace && region.annual_change == 0) || !(f.duration_s > 0) || !job.start_unix_s) return;
  const double t0 = static_cast<double>(*job.start_unix_s), t1 = t0 + f.duration_s;
  f.intensity_location_kg_per_j = mean_intensity(region, t0, t1);
  f.co2e_location_kg = f.facility_energy_j / f.duration_s * intensity_integral(region, t0, t1);
}

void place_in_time(const InferenceJob& job, InferenceResult& r) {
  // (Since session 43, a review: an inference job's CO2e had taken the region's annual value,
  // its trace and trajectory left out: 2.9 times too high ten years into a -10 %/year trajectory.)
  const GridRegion& region = job.datacenter.region;
  if ((!region.trace && region.annual_change == 0) || !r.ok) return;
  const double t0 = static_cast<double>(job.start_unix_s), t1 = t0 + r.accelerator_time_s;
  r.co2e_location_kg = r.facility_energy_j * mean_intensity(region, t0, t1);
}

}  // namespace dlcarbon::lifecycle
