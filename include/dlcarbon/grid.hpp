#pragma once
// The grid over time (sim/lifecycle): a region's carbon intensity as a piecewise-constant
// function of time (its trace, read as it is over its span and repeated outside it every
// max(365 days, its span), or its annual value), integrated exactly.
//
//   double kg = power_w * intensity_integral(region, t0, t1);   // kgCO2e for a constant power

#include "dlcarbon/accounting.hpp"
#include "dlcarbon/inference_cost.hpp"
#include "dlcarbon/scenario.hpp"

namespace dlcarbon::lifecycle {

// The period a trace repeats with outside its span: 365 days, or its span (first row to the end of
// its last; a last row whole calendar years after the first closes it) where that is longer or
// shorter by more than half a row (a leap year's 8,784 hours, several years; a typical day).
double trace_period_s(const IntensityTrace& trace);

// Days since 1970-01-01 (UTC) of a civil date, and back (proleptic Gregorian).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d);
void civil_from_days(std::int64_t days, std::int64_t& y, unsigned& m, unsigned& d);

// Where a trajectory's years count from (unix s): 1 January of the region's `year`; with a trace
// of a year or more, a calendar year before the end of the trace's span (its rows are never
// scaled, its repeats are); with a shorter pattern (a typical day or week), its first row.
double trajectory_reference(const GridRegion& region);

// The trajectory's calendar years: the start of year k after `ref` (ref's date k years on: 365 or
// 366 days each), and the year holding `t` (negative before `ref`).
double year_start(double ref, double k);
double years_since(double ref, double t);

// Integral of the location-based intensity over [t0, t1] (seconds since 1970 UTC): kgCO2e/J x s.
double intensity_integral(const GridRegion& region, double t0, double t1);

// Mean intensity over [t0, t1] (kgCO2e/J); the point value when t1 == t0.
double mean_intensity(const GridRegion& region, double t0, double t1);

// Places a costed training job in time: where its region has a trace or a trajectory, location-based CO2e is
// the facility power times the integral of the intensity over [start, start + duration]
// (exact: power is constant over the job, intensity piecewise constant).
void place_in_time(const TrainingJob& job, TrainingFootprint& footprint);
// The same for an inference job: its batches run back to back on its accelerator from the
// scenario's start, over [start, start + accelerator time] (the point value at the start where that
// time is zero).
void place_in_time(const InferenceJob& job, InferenceResult& result);

}  // namespace dlcarbon::lifecycle
