#include "dlcarbon/grid.hpp"

#include <algorithm>
#include <cmath>

namespace dlcarbon::lifecycle {
namespace {

constexpr double kYear = 365.0 * 86400.0;

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

double trace_period_s(const IntensityTrace& t) {
  if (t.time_unix_s.empty()) return kYear;
  const double span = static_cast<double>(t.time_unix_s.back() - t.time_unix_s.front()) + static_cast<double>(t.period_s);
  return std::max(kYear, span);
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

double intensity_integral(const GridRegion& region, double t0, double t1) {
  if (!(t1 > t0)) return 0;
  if (region.annual_change == 0) return base_integral(region, t0, t1);
  // A trajectory scales year k after the reference year by (1 + change)^k (constant within a
  // 365-day year, so the integral stays exact): split [t0, t1] at year boundaries.
  const double ref = reference_start(region);
  double total = 0;
  double a = t0;
  while (a < t1) {
    const double k = std::floor((a - ref) / kYear);
    const double b = std::min(t1, ref + (k + 1) * kYear);
    total += std::pow(1 + region.annual_change, std::max(0.0, k)) * base_integral(region, a, b);
    a = b;
  }
  return total;
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

}  // namespace dlcarbon::lifecycle
