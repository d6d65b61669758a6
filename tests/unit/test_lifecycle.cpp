// The lifecycle simulation: hand-worked cases (off, idle, busy; fixed and time-varying
// intensity; one growth step; overload), conservation and determinism.
#include <doctest/doctest.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include <cmath>
#include <map>
#include <memory>

#include "dlcarbon/collectives.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/graph.hpp"
#include "dlcarbon/inference_cost.hpp"
#include "dlcarbon/lifecycle.hpp"
#include "dlcarbon/lifecycle_plan.hpp"

using namespace dlcarbon;
using namespace dlcarbon::lifecycle;

namespace {

constexpr double kDay = 86400, kHour = 3600;
constexpr double kStart = 1735689600;  // 2025-01-01T00:00:00Z (a Wednesday)

Site fixed_site(const std::string& id, double kg_per_j, double pue) {
  Site s;
  s.id = id;
  s.region.id = id + "-grid";
  s.region.intensity_kg_per_j = kg_per_j;
  s.pue = pue;
  return s;
}

Growth constant(double x) {
  Growth g;
  g.initial = x;
  g.start_unix_s = static_cast<std::int64_t>(kStart);
  return g;
}

ServiceCost gpu(double busy_w, double idle_w, double rps, double embodied_kg = 0, double lifetime_s = 1e9) {
  ServiceCost k;
  k.hardware_id = "gpu";
  k.busy_w = busy_w;
  k.idle_w = idle_w;
  k.requests_per_s = rps;
  k.embodied_kg = embodied_kg;
  k.lifetime_s = lifetime_s;
  return k;
}

DeploymentPlan cloud(double start, double end, std::optional<Growth> replicas, Growth demand, ServiceCost cost) {
  DeploymentPlan d;
  d.id = "svc";
  d.model = "m";
  d.start = start;
  d.end = end;
  d.step_s = kDay;
  d.replicas = std::move(replicas);
  d.demand = std::move(demand);
  d.mix = {MixPlan{start, {std::move(cost)}, {1.0}}};
  return d;
}

// A day of phones (edge): `demand` inferences/s a device on average, the profile 0.5 in hours
// 0-11 and 1.5 in hours 12-23 (mean 1), charging 80 % efficient.
DeploymentPlan day_of_phones(double devices, double demand, ServiceCost cost) {
  DeploymentPlan d;
  d.id = "phones";
  d.model = "m";
  d.kind = Deployment::Kind::edge;
  d.start = kStart;
  d.end = kStart + kDay;
  d.step_s = kDay;
  d.devices = constant(devices);
  d.demand = constant(demand);
  d.diurnal.assign(24, 0.5);
  for (int h = 12; h < 24; ++h) d.diurnal[static_cast<std::size_t>(h)] = 1.5;
  d.charging_efficiency = 0.8;
  d.mix = {MixPlan{kStart, {std::move(cost)}, {1.0}}};
  return d;
}

double sum_phase(const LifecycleResult& r, Phase p, double SeriesRow::*field) {
  double s = 0;
  for (const auto& row : r.series) {
    if (row.phase == p) s += row.*field;
  }
  return s;
}

}  // namespace

TEST_CASE("off, idle and busy at a fixed intensity, by hand") {
  // 10 replicas, each 400 W busy, 100 W idle, 2 requests/s at full load; demand 5 requests/s, flat.
  // Capacity 20 requests/s, so utilisation u = 0.25. On from day 2 to day 7 (5 days = 432,000 s),
  // off before and after. PUE 1.5, intensity 1e-7 kg/J (0.36 kg/kWh).
  //   busy (inference) facility power = 10 x 0.25 x 400 x 1.5 = 1,500 W -> 6.48e8 J, 64.8 kg
  //   idle facility power             = 10 x 0.75 x 100 x 1.5 = 1,125 W -> 4.86e8 J, 48.6 kg
  //   requests                        = 5 x 432,000 = 2.16e6
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + 10 * kDay;
  plan.resolution = Resolution::day;
  plan.sites = {fixed_site("dc", 1e-7, 1.5)};
  plan.deployments = {cloud(kStart + 2 * kDay, kStart + 7 * kDay, constant(10), constant(5), gpu(400, 100, 2))};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::energy_j) == approx(6.48e8).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::idle, &SeriesRow::energy_j) == approx(4.86e8).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::co2e_location_kg) == approx(64.8).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::idle, &SeriesRow::co2e_location_kg) == approx(48.6).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::requests) == approx(2.16e6).epsilon(1e-12));
  // Off: no row before day 2 or from day 7; each day in between holds a fifth.
  for (const auto& row : r.series) {
    CHECK(row.bin_start >= kStart + 2 * kDay);
    CHECK(row.bin_end <= kStart + 7 * kDay);
    if (row.phase == Phase::inference) CHECK(row.energy_j == approx(6.48e8 / 5).epsilon(1e-12));
  }
  REQUIRE(r.deployments.size() == 1);
  CHECK(r.deployments[0].requests == approx(2.16e6).epsilon(1e-12));
  CHECK(r.deployments[0].co2e_per_inference_kg == approx((64.8 + 48.6) / 2.16e6).epsilon(1e-12));
  CHECK(r.deployments[0].unserved_requests == 0);
  CHECK(r.deployments[0].mean_utilisation == approx(0.25).epsilon(1e-12));
  // No demand: the fleet idles (10 x 100 W x 1.5 for 5 days: 6.48e8 J, 64.8 kg) and serves
  // nothing, so there is no figure per inference (NaN, not 0).
  plan.deployments = {cloud(kStart + 2 * kDay, kStart + 7 * kDay, constant(10), constant(0), gpu(400, 100, 2))};
  const auto idle = simulate_lifecycle(plan, 1);
  CHECK(idle.deployments[0].co2e_location_kg == approx(64.8).epsilon(1e-12));
  CHECK(std::isnan(idle.deployments[0].co2e_per_inference_kg));
  CHECK(std::isnan(idle.deployments[0].co2e_per_useful_inference_kg));
}

TEST_CASE("a time-varying intensity and a daily profile, by hand") {
  // The grid: 1e-7 kg/J for the first 12 hours of 2025-01-01, 3e-7 kg/J after (a two-row trace).
  // 1,000 phones (edge), each 0.01 inferences/s on average; the profile is 0.5 in hours 0-11 and 1.5
  // in hours 12-23 (mean 1). An inference takes 0.1 s at 2 W (0.2 J); charging is 80 % efficient,
  // so the grid supplies 0.25 J per inference. Over one day:
  //   hours 0-11:  1000 x 0.01 x 0.5 = 5 /s x 43,200 s = 216,000 inferences -> 54,000 J x 1e-7 = 5.4e-3 kg
  //   hours 12-23: 15 /s x 43,200 s = 648,000 inferences -> 162,000 J x 3e-7 = 4.86e-2 kg
  //   total: 864,000 inferences, 216,000 J, 5.4e-2 kg
  auto trace = std::make_shared<IntensityTrace>();
  trace->time_unix_s = {static_cast<std::int64_t>(kStart), static_cast<std::int64_t>(kStart + 12 * kHour)};
  trace->kg_per_j = {1e-7, 3e-7};
  trace->period_s = 12 * 3600;
  Site s = fixed_site("users", 2e-7, 1.0);
  s.region.trace = trace;
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + kDay;
  plan.resolution = Resolution::hour;
  plan.sites = {s};
  DeploymentPlan d = day_of_phones(1000, 0.01, gpu(2, 0, 10));
  d.useful_fraction = 0.5;
  plan.deployments = {d};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::requests) == approx(864000).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::energy_j) == approx(216000).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::co2e_location_kg) == approx(5.4e-2).epsilon(1e-12));
  // Hour 13 alone: 15 /s x 3,600 s x 0.25 J x 3e-7 kg/J = 4.05e-3 kg.
  for (const auto& row : r.series) {
    if (row.bin_start == kStart + 13 * kHour && row.phase == Phase::inference) {
      CHECK(row.co2e_location_kg == approx(4.05e-3).epsilon(1e-12));
    }
  }
  CHECK(r.deployments[0].useful_requests == approx(432000).epsilon(1e-12));
  CHECK(r.deployments[0].co2e_per_useful_inference_kg == approx(5.4e-2 / 432000).epsilon(1e-12));
  // Duty cycle: 864,000 inferences x 0.1 s over 1,000 devices x 86,400 s = 0.001.
  CHECK(r.deployments[0].mean_utilisation == approx(0.001).epsilon(1e-12));
}

TEST_CASE("one growth step, idle replicas and embodied carbon, by hand") {
  // Replicas: 10 until day 5, 20 from day 5 (a piecewise step); no demand, so every replica idles at
  // 100 W (PUE 1). Embodied: 1,000 kg per replica over a 1,000-day life = 1 kg per replica-day.
  //   idle energy = (10 x 5 + 20 x 5) replica-days x 100 W x 86,400 s = 1.296e9 J
  //   embodied    = (10 x 5 + 20 x 5) kg = 150 kg
  Growth step;
  step.form = Growth::Form::piecewise;
  step.time_unix_s = {static_cast<std::int64_t>(kStart), static_cast<std::int64_t>(kStart + 5 * kDay)};
  step.values = {10, 20};
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + 10 * kDay;
  plan.resolution = Resolution::month;
  plan.sites = {fixed_site("dc", 1e-7, 1.0)};
  plan.deployments = {cloud(kStart, kStart + 10 * kDay, step, constant(0), gpu(400, 100, 2, 1000, 1000 * kDay))};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  CHECK(sum_phase(r, Phase::idle, &SeriesRow::energy_j) == approx(1.296e9).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::embodied, &SeriesRow::co2e_location_kg) == approx(150).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::embodied, &SeriesRow::energy_j) == 0);
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::energy_j) == 0);
  CHECK(r.deployments[0].peak_replicas == 20);
}

TEST_CASE("demand beyond capacity: replicas run flat out and the rest is unserved") {
  // 1 replica, 1 request/s at most, 400 W busy; demand 1.5 requests/s for one day.
  //   busy energy = 400 W x 86,400 s = 3.456e7 J; served 86,400; unserved 0.5 x 86,400 = 43,200.
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + kDay;
  plan.sites = {fixed_site("dc", 1e-7, 1.0)};
  plan.deployments = {cloud(kStart, kStart + kDay, constant(1), constant(1.5), gpu(400, 100, 1))};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::energy_j) == approx(3.456e7).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::idle, &SeriesRow::energy_j) == 0);
  CHECK(r.deployments[0].requests == approx(86400).epsilon(1e-12));
  CHECK(r.deployments[0].unserved_requests == approx(43200).epsilon(1e-12));
  CHECK(r.deployments[0].mean_utilisation == approx(1.0).epsilon(1e-12));
}

TEST_CASE("an edge device asked for more than it can serve runs flat out and the rest is unserved") {
  // 10 phones, each asked for 10 inferences/s on average; the profile is 0.5 in hours 0-11 and 1.5
  // in hours 12-23. A phone serves at most 10 /s (0.1 s at 2 W an inference), 80 % charging;
  // embodied 1,000 kg over 1,000 days of busy time: 1 kg a busy device-day.
  //   hours 0-11:  5 /s a phone, u = 0.5: served 10 x 5 x 43,200 = 2.16e6, 10 x 0.5 x 2 / 0.8 W x 43,200 s = 5.4e5 J
  //   hours 12-23: 15 /s asked, u = 1: served 10 x 10 x 43,200 = 4.32e6, 1.08e6 J; unserved 10 x 5 x 43,200 = 2.16e6
  //   busy device-days 10 x (0.5 + 1) / 2 = 7.5 (7.5 kg embodied); mean utilisation 0.75
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + kDay;
  plan.resolution = Resolution::hour;
  plan.sites = {fixed_site("users", 1e-7, 1.0)};
  const DeploymentPlan d = day_of_phones(10, 10, gpu(2, 0, 10, 1000, 1000 * kDay));
  plan.deployments = {d};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::requests) == approx(6.48e6).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::energy_j) == approx(1.62e6).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::embodied, &SeriesRow::co2e_location_kg) == approx(7.5).epsilon(1e-12));
  CHECK(r.deployments[0].unserved_requests == approx(2.16e6).epsilon(1e-12));
  CHECK(r.deployments[0].mean_utilisation == approx(0.75).epsilon(1e-12));
  // Hour 13 alone: 10 phones flat out, 10 x 10 /s x 3,600 s = 3.6e5 served.
  for (const auto& row : r.series) {
    if (row.bin_start == kStart + 13 * kHour && row.phase == Phase::inference) CHECK(row.requests == approx(3.6e5).epsilon(1e-12));
  }
}

namespace {

// A plan with everything at once: three sites (two with hourly traces and a trajectory, one with
// a market-based intensity), cloud and edge deployments with growth, a mix change and profiles,
// autoscaling, and training runs.
LifecyclePlan rich_plan() {
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + 2 * 365 * kDay;
  plan.resolution = Resolution::month;
  for (int s = 0; s < 3; ++s) {
    Site site = fixed_site("site" + std::to_string(s), 1e-7 * (1 + s), 1.1 + 0.1 * s);
    if (s < 2) {
      auto tr = std::make_shared<IntensityTrace>();
      for (int h = 0; h < 24 * 365; ++h) {
        tr->time_unix_s.push_back(static_cast<std::int64_t>(kStart + h * kHour));
        tr->kg_per_j.push_back(1e-7 * (1.5 + std::sin(h * 0.2618 + s)));
      }
      site.region.trace = tr;
      site.region.year = 2024;
      site.region.annual_change = -0.05;
    } else {
      site.market_kg_per_j = 2e-8;
    }
    plan.sites.push_back(site);
  }
  Growth exp_growth = constant(100);
  exp_growth.form = Growth::Form::exponential;
  exp_growth.rate_per_year = 0.4;
  Growth logistic = constant(1e6);
  logistic.form = Growth::Form::logistic;
  logistic.capacity = 1e8;
  logistic.rate_per_year = 2;
  DeploymentPlan a = cloud(kStart + 10 * kDay, plan.end - 20 * kDay, exp_growth, constant(150), gpu(700, 150, 2.5, 463, 4 * 365 * kDay));
  a.id = "a";
  a.mix.push_back(MixPlan{kStart + 200 * kDay, {gpu(700, 150, 2.5, 463, 4 * 365 * kDay), gpu(1000, 200, 6, 600, 4 * 365 * kDay)}, {0.5, 0.5}});
  a.mix.back().costs[1].hardware_id = "gpu2";
  for (int h = 0; h < 24; ++h) a.diurnal[static_cast<std::size_t>(h)] = 0.6 + 0.8 * (h >= 8 && h < 20);
  DeploymentPlan b = cloud(kStart, plan.end, std::nullopt, constant(40), gpu(300, 60, 4, 200, 3 * 365 * kDay));
  b.id = "b";
  b.model = "m2";
  b.headroom = 0.3;
  b.weekly = {1.1, 1.1, 1.1, 1.1, 1.0, 0.8, 0.8};
  DeploymentPlan c;
  c.id = "c";
  c.model = "m3";
  c.kind = Deployment::Kind::edge;
  c.start = kStart;
  c.end = plan.end;
  c.step_s = 7 * kDay;
  c.devices = logistic;
  c.demand = constant(1e-4);
  c.charging_efficiency = 0.85;
  c.useful_fraction = 0.002;
  c.mix = {MixPlan{kStart, {gpu(3, 0, 20, 50, 3 * 365 * kDay)}, {1.0}}};
  c.mix.front().costs[0].hardware_id = "phone";
  plan.deployments = {a, b, c};
  plan.cohorts = {{0, 0, 0.5, -5 * kHour}, {0, 1, 0.3, 3600}, {0, 2, 0.2, 9 * kHour}, {1, 1, 0.7, 0}, {1, 2, 0.3, 0},
                  {2, 0, 0.6, 0}, {2, 1, 0.4, 0}};
  for (int j = 0; j < 5; ++j) {
    TrainingRun t;
    t.id = "train-" + std::to_string(j);
    t.model = "m";
    t.hardware_id = "gpu";
    t.site = static_cast<std::size_t>(j % 3);
    t.start = kStart + j * 91 * kDay + 0.37 * kDay;
    t.duration_s = 20 * kDay + 1234;
    t.it_w = 5e5;
    t.embodied_kg_per_s = 1e-4;
    plan.training.push_back(t);
  }
  return plan;
}

}  // namespace

TEST_CASE("conservation: the time series sum to the totals, and the totals to the summaries, to 1e-9") {
  const auto r = simulate_lifecycle(rich_plan(), 2);
  REQUIRE(r.series.size() > 100);
  // Time series summed over time == entity totals summed, per (site, hardware, model, phase).
  std::map<std::tuple<std::string, std::string, std::string, int>, std::array<double, 4>> by_series, by_totals;
  for (const auto& x : r.series) {
    auto& a = by_series[{x.site, x.hardware, x.model, static_cast<int>(x.phase)}];
    a[0] += x.energy_j;
    a[1] += x.co2e_location_kg;
    a[2] += x.co2e_market_kg;
    a[3] += x.requests;
  }
  for (const auto& x : r.totals) {
    auto& a = by_totals[{x.site, x.hardware, x.model, static_cast<int>(x.phase)}];
    a[0] += x.energy_j;
    a[1] += x.co2e_location_kg;
    a[2] += x.co2e_market_kg;
    a[3] += x.requests;
  }
  REQUIRE(by_series.size() == by_totals.size());
  for (const auto& [key, a] : by_series) {
    const auto& b = by_totals.at(key);
    for (int i = 0; i < 4; ++i) CHECK(std::abs(a[static_cast<std::size_t>(i)] - b[static_cast<std::size_t>(i)]) <= 1e-9 * std::abs(b[static_cast<std::size_t>(i)]));
  }
  // Entity totals == deployment summaries.
  for (const auto& d : r.deployments) {
    double e = 0, c = 0, q = 0;
    for (const auto& x : r.totals) {
      if (x.entity == d.id) {
        e += x.energy_j;
        c += x.co2e_location_kg;
        q += x.requests;
      }
    }
    CHECK(std::abs(e - d.energy_j) <= 1e-9 * d.energy_j);
    CHECK(std::abs(c - d.co2e_location_kg) <= 1e-9 * d.co2e_location_kg);
    CHECK(std::abs(q - d.requests) <= 1e-9 * d.requests);
    CHECK(d.requests > 0);
  }
  // Market-based equals location-based where a site has no market figure, and is lower at site2.
  for (const auto& x : r.totals) {
    if (x.site != "site2" && x.phase != Phase::embodied) CHECK(x.co2e_market_kg == approx(x.co2e_location_kg).epsilon(1e-12));
  }
}

TEST_CASE("determinism: 1 and 2 threads give bit-identical results") {
  const auto plan = rich_plan();
  const auto a = simulate_lifecycle(plan, 1), b = simulate_lifecycle(plan, 2);
  REQUIRE(a.series.size() == b.series.size());
  for (std::size_t i = 0; i < a.series.size(); ++i) {
    CHECK(a.series[i].energy_j == b.series[i].energy_j);
    CHECK(a.series[i].co2e_location_kg == b.series[i].co2e_location_kg);
    CHECK(a.series[i].requests == b.series[i].requests);
    CHECK(a.series[i].site == b.series[i].site);
  }
  REQUIRE(a.totals.size() == b.totals.size());
  for (std::size_t i = 0; i < a.totals.size(); ++i) CHECK(a.totals[i].co2e_market_kg == b.totals[i].co2e_market_kg);
  CHECK(a.events == b.events);
}

TEST_CASE("calendar bins: months and years in UTC") {
  // 2025-01-15 to 2025-04-02: Jan (part), Feb, Mar, Apr (part) -> 5 edges.
  const double t0 = kStart + 14 * kDay, t1 = kStart + (31 + 28 + 31 + 1) * kDay;
  const auto e = bin_edges(t0, t1, Resolution::month);
  REQUIRE(e.size() == 5);
  CHECK(e[1] == kStart + 31 * kDay);        // 2025-02-01
  CHECK(e[2] == kStart + (31 + 28) * kDay); // 2025-03-01
  const auto y = bin_edges(kStart, kStart + 800 * kDay, Resolution::year);
  REQUIRE(y.size() == 4);
  CHECK(y[1] == kStart + 365 * kDay);       // 2026-01-01
  CHECK(y[2] == kStart + 730 * kDay);       // 2027-01-01
}

TEST_CASE("a half-hourly trace, a start off the hour, a growth step inside a month, and no capacity") {
  // Grid: 1e-7 kg/J in the first half of every hour, 3e-7 in the second (a half-hourly trace of a
  // year, repeated): every hour averages 2e-7. 10 idle replicas at 100 W (PUE 1) until 12:00 on
  // day 3, 20 after (a piecewise step that falls inside the monthly step), over 10 days that
  // start 30 minutes after midnight. Nothing can serve (0 requests/s per replica), so requests
  // are unserved and the replicas idle.
  //   idle energy = 100 W x (10 x 2.5 days + 20 x 7.5 days) x 86,400 s = 1.512e9 J (the first
  //   30 minutes: 10 replicas; the horizon is 10 days from 00:30)
  //   carbon = 1.512e9 J x 2e-7 kg/J = 302.4 kg (exact: every step boundary is on a half hour)
  auto trace = std::make_shared<IntensityTrace>();
  for (int k = 0; k < 2 * 24 * 365; ++k) {
    trace->time_unix_s.push_back(static_cast<std::int64_t>(kStart) + k * 1800);
    trace->kg_per_j.push_back(k % 2 == 0 ? 1e-7 : 3e-7);
  }
  trace->period_s = 1800;
  Site s = fixed_site("dc", 0, 1.0);
  s.region.trace = trace;
  Growth step;
  step.form = Growth::Form::piecewise;
  step.time_unix_s = {static_cast<std::int64_t>(kStart), static_cast<std::int64_t>(kStart + 2.5 * kDay)};
  step.values = {10, 20};
  LifecyclePlan plan;
  plan.start = kStart + 1800;
  plan.end = plan.start + 10 * kDay;
  plan.sites = {s};
  auto d = cloud(plan.start, plan.end, step, constant(5), gpu(400, 100, 0));
  d.step_s = 365 * kDay / 12;
  plan.deployments = {d};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  const double replica_days = 10 * (2.5 - 1800 / kDay) + 20 * (7.5 + 1800 / kDay);
  CHECK(sum_phase(r, Phase::idle, &SeriesRow::energy_j) == approx(100 * replica_days * kDay).epsilon(1e-12));
  CHECK(sum_phase(r, Phase::idle, &SeriesRow::co2e_location_kg) == approx(100 * replica_days * kDay * 2e-7).epsilon(1e-9));
  CHECK(r.deployments[0].unserved_requests == approx(5 * 10 * kDay).epsilon(1e-12));
}

TEST_CASE("overload hour by hour from a start that is not on a whole second") {
  // 1 replica of 1 request/s against 1.5 requests/s, from 1234.567 s after midnight, for a day:
  // it runs flat out (400 W) the whole day; the loop over hours must end.
  LifecyclePlan plan;
  plan.start = kStart + 1234.567;
  plan.end = plan.start + kDay;
  plan.sites = {fixed_site("dc", 1e-7, 1.0)};
  plan.deployments = {cloud(plan.start, plan.end, constant(1), constant(1.5), gpu(400, 100, 1))};
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  const auto r = simulate_lifecycle(plan, 1);
  CHECK(sum_phase(r, Phase::inference, &SeriesRow::energy_j) == approx(400 * kDay).epsilon(1e-12));
  CHECK(r.deployments[0].unserved_requests == approx(0.5 * kDay).epsilon(1e-12));
}

TEST_CASE("a plan that cannot be simulated is refused, not run") {
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + kDay;
  plan.sites = {fixed_site("dc", 1e-7, 1.0)};
  plan.deployments = {cloud(kStart, kStart + kDay, constant(1), constant(1), gpu(400, 100, 1))};
  plan.cohorts = {CohortPlan{0, 3, 1.0, 0}};  // no site 3
  CHECK_THROWS_AS(simulate_lifecycle(plan, 1), std::invalid_argument);
  plan.cohorts = {CohortPlan{0, 0, 1.0, 0}};
  plan.deployments[0].mix[0].shares = {0.5, 0.5};  // two shares, one hardware
  CHECK_THROWS_AS(simulate_lifecycle(plan, 1), std::invalid_argument);
}

TEST_CASE("growth curves by hand") {
  Growth g = constant(100);
  g.form = Growth::Form::exponential;
  g.rate_per_year = 0.4;
  // +40 %/year for two 365-day years: 100 x 1.4^2 = 196.
  CHECK(growth_at(g, kStart + 2 * 365 * kDay) == approx(196).epsilon(1e-12));
  Growth l = constant(1e6);
  l.form = Growth::Form::logistic;
  l.capacity = 1e8;
  l.rate_per_year = 2;
  // K / (1 + (K/N0 - 1) e^(-r t)) at t = 1 year: 1e8 / (1 + 99 e^-2) = 6.9448e6.
  CHECK(growth_at(l, kStart + 365 * kDay) == approx(1e8 / (1 + 99 * std::exp(-2.0))).epsilon(1e-12));
  CHECK(growth_at(l, kStart) == approx(1e6).epsilon(1e-12));
  Growth p;
  p.form = Growth::Form::piecewise;
  p.time_unix_s = {static_cast<std::int64_t>(kStart + kDay), static_cast<std::int64_t>(kStart + 3 * kDay)};
  p.values = {5, 7};
  CHECK(growth_at(p, kStart) == 5);              // before the first date: the first value
  CHECK(growth_at(p, kStart + 2 * kDay) == 5);
  CHECK(growth_at(p, kStart + 3 * kDay) == 7);   // from its date on
}

namespace {
// 1 PFLOP/s fp16 at half its peak in GEMMs, 1 TB/s at half, no launch cost, 300 W.
Hardware made_up_hardware() {
  Hardware hw;
  hw.id = "made-up";
  hw.peak_flop_per_s = {{"fp16", 1e15}};
  hw.memory_bandwidth_bytes_per_s = 1e12;
  hw.memory_efficiency = 0.5;
  hw.gemm_efficiency = 0.5;
  hw.kernel_launch_s = 0;
  hw.tdp_w = 300;
  hw.efficiency_source = "test";
  return hw;
}
// One decoder layer: d 2048, 16 heads of 128, FFN 4096, vocabulary 1,000, 4,096 positions.
TransformerDesign one_layer_decoder() {
  TransformerDesign t;
  t.arch = TransformerDesign::Arch::decoder;
  t.decoder_layers = 1;
  t.d_model = 2048;
  t.heads = 16;
  t.head_dim = 128;
  t.d_ff = 4096;
  t.vocab = 1000;
  t.seq_len = 4096;
  return t;
}
// A deployment of `t` serving requests of 1,000 tokens in and 10 out, in fp16, `batch` at a time.
Deployment serving(const TransformerDesign& t, std::int64_t batch) {
  Deployment d;
  d.id = "svc";
  d.model_id = "m";
  d.design = t;
  d.batch = batch;
  d.precision = "fp16";
  d.tokens_in = 1000;
  d.tokens_out = 10;
  return d;
}
}  // namespace

TEST_CASE("serving a latent-attention decoder reads its compressed cache, by hand") {
  // Decode time grows with the context through the KV cache alone (the decode step's graph does
  // not depend on it). A one-layer decoder with latent attention (kv_lora_rank 512, rotary 64)
  // caches 576 values a token in fp16: 1,152 B. 1,000 more prompt tokens over 10 decoded tokens
  // add 10 x 1,000 x 1,152 B = 1.152e7 B of cache reads, at 1e12 B/s x 0.5 = 2.304e-5 s; a cache
  // of full keys and values (2 x 16 heads x 128 in fp16 = 8,192 B a token) would add 1.6384e-4 s.
  Hardware hw = made_up_hardware();
  TransformerDesign t = one_layer_decoder();
  t.kv_lora_rank = 512;
  t.rope_head_dim = 64;
  Deployment d = serving(t, 1);
  const double short_prompt = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  const double long_prompt = serving_cost(d, hw).decode_s;
  // 9 decode steps (the prefill yields the first of the 10 tokens), each reading 1,000 more cached
  // tokens.
  CHECK(long_prompt - short_prompt == approx(9 * 1000 * 1152.0 / 5e11));
  t.kv_lora_rank = 0;
  t.rope_head_dim = 0;
  d.design = t;
  d.tokens_in = 1000;
  const double gqa_short = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  CHECK(serving_cost(d, hw).decode_s - gqa_short == approx(9 * 1000 * 8192.0 / 5e11));
  // An Evolved Transformer decoder cell attends to its own tokens twice (16 heads wide, then the
  // cell's own attention), each with keys and values d_model wide: two caches, 16,384 B a token
  // (since session 34; before, one).
  t.evolved = true;
  d.design = t;
  d.tokens_in = 1000;
  const double evolved_short = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  CHECK(serving_cost(d, hw).decode_s - evolved_short == approx(9 * 1000 * 16384.0 / 5e11));
}

TEST_CASE("an encoder-decoder generates with its decoder alone, reading a cross cache, by hand") {
  // The one-layer decoder with a one-layer encoder before it (since session 41, from a review: an
  // encoder-decoder had been costed as one teacher-forced pass). Its prompt of 1,000 tokens is the
  // encoder's; its decoder starts from one token, so its own contexts are those of a decoder-only
  // model given a prompt of 1 token. Each of the 9 decode steps also reads the cross cache, 1,000
  // positions x 8,192 B, and the rest of the cross-attention sub-block at one token: the query and
  // output projections, 2 x 2,048 x 2,048 fp16 weights and the token's 2 x (2,048 + 2,048) values in
  // and out, 16,793,600 B; and (since session 45, a review) its LayerNorm, 2 x (2 x 2,048 + 2 x
  // 2,048 scale and shift) = 16,384 B, its residual add, 2 x 3 x 2,048 = 12,288 B, and its score,
  // softmax and context kernels as the graph has them at one encoder position (the cache's 1,000
  // are above): 16 heads x 2 x (128 + 128 + 1) = 8,224 B twice and 2 x (16 + 16) = 64 B; 45,184 B;
  // all at 1e12 B/s x 0.5 (memory-bound at batch 1).
  Hardware hw = made_up_hardware();
  TransformerDesign ed = one_layer_decoder();
  ed.arch = TransformerDesign::Arch::encoder_decoder;
  ed.encoder_layers = 1;
  Deployment d = serving(ed, 1);
  Deployment alone = serving(one_layer_decoder(), 1);
  alone.tokens_in = 1;
  const ServiceCost k = serving_cost(d, hw);
  CHECK(k.decode_s - serving_cost(alone, hw).decode_s == approx(9 * (1000 * 8192.0 + 16793600.0 + 45184.0) / 5e11));
  // Seven kernels a step for the sub-block (norm, query, scores, softmax, context, output, residual),
  // each a launch of 1 ms (two before session 45).
  Hardware launching = hw;
  launching.kernel_launch_s = 1e-3;
  CHECK(serving_cost(d, launching).decode_s - serving_cost(alone, launching).decode_s ==
        approx(9 * (1000 * 8192.0 + 16793600.0 + 45184.0) / 5e11 + 9 * 7 * 1e-3));
  // The encoder runs once, in the prefill: three encoder layers leave the decode as it was.
  ed.encoder_layers = 3;
  d.design = ed;
  const ServiceCost deeper = serving_cost(d, hw);
  CHECK(deeper.decode_s == approx(k.decode_s));
  CHECK(deeper.prefill_s > k.prefill_s);
  // Every second of a batch is charged at least the device's static power, launch gaps included:
  // with 1 s launches the batch is nearly all gaps, and a replica serving draws no less than one
  // idle (a review, session 43: the cross-attention's launch gap, 9 s of this batch, had been left
  // out of the energy, so serving drew less than idle).
  hw.kernel_launch_s = 1.0;
  const ServiceCost gaps = serving_cost(d, hw);
  CHECK(gaps.idle_w > 0);
  CHECK(gaps.busy_w >= gaps.idle_w);
}

TEST_CASE("a sliding window bounds the cache a decode step reads, by hand") {
  // The one-layer decoder's cache in fp16 is 2 x 16 heads x 128 = 8,192 B a token. With a window of
  // 1,500 positions, a prompt of 1,000 decodes at contexts 1,000-1,010, all inside the window (1,005
  // on average), and a prompt of 2,000 reads 1,500 at every step: 495 more tokens over 9 decode
  // steps, 9 x 495 x 8,192 B at 1e12 B/s x 0.5. A window of 500 reads 500 whatever the prompt.
  Hardware hw = made_up_hardware();
  TransformerDesign t = one_layer_decoder();
  t.sliding_window = 1500;
  Deployment d = serving(t, 1);
  d.tokens_in = 1000;
  const double short_prompt = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  CHECK(serving_cost(d, hw).decode_s - short_prompt == approx(9 * 495 * 8192.0 / 5e11));
  t.sliding_window = 500;
  d.design = t;
  d.tokens_in = 1000;
  const double narrow = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  CHECK(serving_cost(d, hw).decode_s == approx(narrow));
  // Every layer global (global_every 1): the whole context again, 9 x 1,000 x 8,192 B more.
  t.global_every = 1;
  d.design = t;
  d.tokens_in = 1000;
  const double global = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  CHECK(serving_cost(d, hw).decode_s - global == approx(9 * 1000 * 8192.0 / 5e11));
}

TEST_CASE("decode attention runs its products on the matrix units: a latent cache stays memory-bound") {
  // The latent-attention layer above at batch 64, on a device whose fp32 (vector) rate is a
  // thirtieth of its fp16 matrix rate, as a GPU's CUDA cores are to its tensor cores. A cached token
  // costs every head 2 (512 + 64) + 2 x 512 = 2,176 FLOPs: 16 heads, 34,816 FLOPs against 1,152 B,
  // 30 FLOPs a byte. At the matrix rate (1e15 x 0.5) against 5e11 B/s the balance is 1,000 FLOPs a
  // byte: memory-bound, 1,000 more prompt tokens adding 9 x 64 x 1,000 x 1,152 B / 5e11 B/s. At the
  // vector rate (3.3e13 x 0.5: 33 FLOPs a byte) it would still be memory-bound here, but 128 heads
  // (DeepSeek-V3's) make 242 FLOPs a byte, compute-bound on the vector units by a factor of 7
  // (before session 34 the products ran there).
  Hardware hw = made_up_hardware();
  hw.peak_flop_per_s["fp32"] = 1e15 / 30;
  TransformerDesign t = one_layer_decoder();
  t.kv_lora_rank = 512;
  t.rope_head_dim = 64;
  t.heads = 128;
  t.head_dim = 16;  // d_model 2048 over 128 heads
  Deployment d = serving(t, 64);
  const double short_prompt = serving_cost(d, hw).decode_s;
  d.tokens_in = 2000;
  const double long_prompt = serving_cost(d, hw).decode_s;
  CHECK(long_prompt - short_prompt == approx(9 * 64 * 1000 * 1152.0 / 5e11));
}

TEST_CASE("a serving replica's memory by hand: weights, the largest op's tensors and the KV cache at its largest moment") {
  // One layer, d 2048, 16 heads of 128, FFN 4096, vocabulary 1,000, rotary positions, fp16, fused
  // attention (no score matrix); 2 requests of 1,000 prompt tokens and 10 output tokens. A replica
  // holds its weights and the larger of two moments (since session 34; before, the prefill's
  // activations and the full cache together, which never coexist):
  // - the prefill: its largest ops, the QKV product, reading 2,000 x 2,048 and writing 2,000 x 6,144
  //   values, and the FFN's activation, reading and writing 2,000 x 4,096 (the fused attention kernel
  //   moves as many): 16,384,000 values, 32,768,000 B; and the prompt's cache, 2 requests x 1 layer x
  //   (K and V) x 16 heads x 128 x 1,000 tokens x 2 B = 16,384,000 B;
  // - the last decode step: its largest op, the QKV product or the FFN's activation on one token a
  //   request, 16,384 values, 32,768 B; and the cache at 1,009 tokens (the last output token is not
  //   fed back), 16,531,456 B.
  // The prefill's is the larger here. Weights: the parameters x 2 B.
  Hardware hw = made_up_hardware();
  TransformerDesign t = one_layer_decoder();
  t.position = TransformerDesign::Position::rotary;
  Deployment d = serving(t, 2);
  d.fusion = "attention";
  const double weights = graph::count_parameters(t) * 2, activations = 32768000.0, prompt = 16384000.0;
  const ServiceCost one = serving_cost(d, hw);
  CHECK(one.memory_bytes == approx(weights + activations + prompt).epsilon(1e-12));
  CHECK(one.fits);  // the catalog gives no memory: nothing to check against
  // A replica of 2 accelerators holds half of each on either.
  d.accelerators_per_replica = 2;
  CHECK(serving_cost(d, hw).memory_bytes == approx((weights + activations + prompt) / 2).epsilon(1e-12));
  // One KV head (multi-query attention): the two ranks each hold it, and the cache is 1/16 as large;
  // the weights lose 15/16 of the K and V projections (2 x (2,048 x 1,920 + 1,920 biases) values),
  // and the largest op is the FFN's activation, as above.
  TransformerDesign mqa = t;
  mqa.kv_heads = 1;
  d.design = mqa;
  const double mqa_weights = graph::count_parameters(mqa) * 2;
  CHECK(mqa_weights == approx(weights - 2.0 * 2 * (2048 * 1920 + 1920)).epsilon(1e-12));
  CHECK(serving_cost(d, hw).memory_bytes == approx((mqa_weights + activations) / 2 + prompt / 16).epsilon(1e-12));
  d.design = t;
  d.accelerators_per_replica = 1;
  // 100,001 output tokens: the cache at 101,000 tokens, 1,654,784,000 B, outweighs the prefill's
  // activations: the last decode step's moment.
  d.tokens_out = 100001;
  const double long_cache = 2.0 * 2 * 16 * 128 * 101000 * 2;
  CHECK(serving_cost(d, hw).memory_bytes == approx(weights + 32768.0 + long_cache).epsilon(1e-12));
  hw.memory_bytes = weights + 32768.0 + long_cache;
  CHECK(serving_cost(d, hw).fits);
  hw.memory_bytes = weights + 32768.0 + long_cache - 1;
  const ServiceCost full = serving_cost(d, hw);
  CHECK_FALSE(full.fits);
  CHECK(full.memory_text.find("does not fit: a batch of 2 needs") == 0);
  CHECK(full.memory_text.find("KV cache at 101000 tokens a request 1.7 GB") != std::string::npos);
}

TEST_CASE("a tensor-parallel replica: its ranks split the work, each launches every kernel, and they all-reduce") {
  // Since session 45 (a review: a replica of k had served k times one device's throughput at k
  // times its power). The one-layer decoder at batch 1, 1,000 tokens in and 10 out, fp16, on two
  // GPUs of one node (NVLink at the made-up default, a tenth of the memory bandwidth: 1e11 B/s).
  // The layer's two row-parallel outputs (attention output, feed-forward down projection) are
  // all-reduced: in the prefill 1,000 x 2,048 x 2 B each, in a decode step 2,048 x 2 B each.
  Hardware hw = made_up_hardware();
  hw.kind = "gpu";
  TransformerDesign t = one_layer_decoder();
  t.position = TransformerDesign::Position::rotary;
  Deployment d = serving(t, 1);
  d.fusion = "attention";
  const ServiceCost one = serving_cost(d, hw);
  d.accelerators_per_replica = 2;
  const ServiceCost two = serving_cost(d, hw);
  comm::Group pair;
  pair.ranks = 2;
  pair.nccl = true;
  pair.fullest = 2;
  pair.bandwidth = 1e11;
  const double ar_prefill = comm::collectives_s(comm::Collective::all_reduce, 2 * 1000 * 2048 * 2.0, 2, pair);
  const double ar_step = comm::collectives_s(comm::Collective::all_reduce, 2 * 2048 * 2.0, 2, pair);
  REQUIRE(ar_step > 0);
  // Without launch times, each rank does half of every kernel's work (the cache split by its 16
  // heads), but the full-width ops, three LayerNorms (2 x (2 x 2,048 + 4,096) B a token) and two
  // residual adds (2 x 3 x 2,048 B a token), run whole on both: 49,176,576 B in the prefill's 1,000
  // tokens and 73,728 B in a step's one, at 5e11 B/s. Half the single device's times, plus half the
  // full-width ops' again, plus the collectives.
  const double full_prefill = 49176576.0 / 5e11, full_step = 73728.0 / 5e11;
  CHECK(two.prefill_s == approx(one.prefill_s / 2 + full_prefill / 2 + ar_prefill));
  CHECK(two.decode_s == approx(one.decode_s / 2 + 9 * (full_step / 2 + ar_step)));
  CHECK(two.requests_per_s == approx(1 / two.batch_s));
  // Energy: the batch's FLOPs and bytes as one device's, the full-width ops' once more (their
  // bytes above; 8 FLOPs an element a norm, 1 a residual add: 53,248 a token), static power
  // (0.3 x 300 W) on both ranks for the replica's time.
  const auto dev = hardware::make_device_model(hw);
  REQUIRE(dev.e_byte_j > 0);
  const double again = dev.e_byte_j * (49176576.0 + 9 * 73728.0) + dev.e_flop_j * (1000 + 9) * 53248.0;
  CHECK(two.busy_w * two.batch_s == approx(one.busy_w * one.batch_s + again + 90 * (2 * two.batch_s - one.batch_s)));
  // Launches are paid on every rank: with 0.1 ms a kernel, the replica's decode grows by as much as
  // one device's does.
  Hardware launching = hw;
  launching.kernel_launch_s = 1e-4;
  d.accelerators_per_replica = 1;
  const double one_launches = serving_cost(d, launching).decode_s - one.decode_s;
  d.accelerators_per_replica = 2;
  CHECK(one_launches > 0);
  CHECK(serving_cost(d, launching).decode_s - two.decode_s == approx(one_launches));
  // One KV head (multi-query): both ranks hold the whole cache and read it whole, 1,005 positions on
  // average x 2 x 128 x 2 B = 514,560 B a step at 5e11 B/s, not half of it (the full-width ops as
  // above).
  TransformerDesign mqa = t;
  mqa.kv_heads = 1;
  d.design = mqa;
  d.accelerators_per_replica = 1;
  const ServiceCost mqa_one = serving_cost(d, hw);
  d.accelerators_per_replica = 2;
  const ServiceCost mqa_two = serving_cost(d, hw);
  CHECK(mqa_two.decode_s == approx(mqa_one.decode_s / 2 + 9 * (ar_step + full_step / 2 + 514560.0 / 5e11 / 2)));
  // A model without a tensor-parallel layout (an MLP): two devices each serving their own batches.
  Deployment mlp = d;
  mlp.design = MlpDesign{{1024, 4096, 1024}};
  mlp.tokens_in = mlp.tokens_out = 0;
  mlp.accelerators_per_replica = 1;
  const ServiceCost mlp_one = serving_cost(mlp, hw);
  mlp.accelerators_per_replica = 2;
  const ServiceCost mlp_two = serving_cost(mlp, hw);
  CHECK(mlp_two.requests_per_s == approx(2 * mlp_one.requests_per_s));
  CHECK(mlp_two.busy_w == approx(2 * mlp_one.busy_w));
  CHECK(mlp_two.memory_bytes == approx(mlp_one.memory_bytes));  // each device holds all of it
  // A mixture's layer all-reduces once: its shared experts' output joins the routed experts' first.
  TransformerDesign moe = t;
  moe.experts = 4;
  moe.top_k = 2;
  moe.shared_experts = 1;
  InferenceJob step;
  step.design = moe;
  step.hardware = hw;
  step.precision = "fp16";
  step.fusion = "attention";
  const InferenceResult r = cost_inference(step);
  CHECK(r.tensor_allreduces == 2);  // the attention's output and the mixture's
  moe.shared_experts = 0;
  step.design = moe;
  CHECK(cost_inference(step).tensor_allreduces == 2);
}

TEST_CASE("the time series' size bound counts series keys, not runs or cohorts") {
  // Since session 42: 1,000 years hourly could run out of memory; the bound refuses it before the
  // series are allocated. 1,000 retraining runs of one job on one site are two series (training,
  // embodied), not 2,000.
  LifecyclePlan plan;
  plan.start = 0;
  plan.end = 10 * 3600.0;  // 10 hours: 10 bins + 2 at most
  plan.resolution = Resolution::hour;
  for (int i = 0; i < 1000; ++i) plan.training.push_back(TrainingRun{"t", "m", "gpu", 0, 0, 3600, 1, 0});
  CHECK(series_rows_bound(plan) == 12 * 2);
  plan.training.push_back(TrainingRun{"u", "m", "gpu", 1, 0, 3600, 1, 0});  // another site
  CHECK(series_rows_bound(plan) == 12 * 4);
  plan.end = 1000 * 365 * 86400.0;
  CHECK(series_rows_bound(plan) > kMaxSeriesRows);
  plan.resolution = Resolution::day;
  CHECK(series_rows_bound(plan) < kMaxSeriesRows);
}
