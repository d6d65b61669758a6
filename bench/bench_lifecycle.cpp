// Scale of the lifecycle simulation (docs/performance.md): R regions with hourly grid traces,
// C cohorts (deployment x region) holding 1e9 replicas in all, Y years, monthly steps and bins.
//
//   build/bench_lifecycle                    # the target: 1e4 cohorts, 50 regions, 10 years
//   build/bench_lifecycle COHORTS REGIONS YEARS [THREADS]
//
// Prints wall time, events and peak resident memory (getrusage). Each size runs in a fresh
// process, so the peak memory is that of one run.

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "dlcarbon/lifecycle.hpp"

using namespace dlcarbon;
using namespace dlcarbon::lifecycle;

int main(int argc, char** argv) {
  const long cohorts = argc > 1 ? std::atol(argv[1]) : 10000;
  const long regions = argc > 2 ? std::atol(argv[2]) : 50;
  const double years = argc > 3 ? std::atof(argv[3]) : 10;
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  if (cohorts < regions || regions < 1 || !(years > 0)) {
    std::fprintf(stderr, "usage: bench_lifecycle [COHORTS >= REGIONS] [REGIONS >= 1] [YEARS > 0] [THREADS]\n");
    return 2;
  }
  constexpr double kStart = 1735689600, kDay = 86400, kYear = 365 * kDay;
  const auto t_build = std::chrono::steady_clock::now();
  LifecyclePlan plan;
  plan.start = kStart;
  plan.end = kStart + years * kYear;
  plan.resolution = Resolution::month;
  // Synthetic hourly traces (a year each, repeated): a daily and a seasonal swing around a
  // per-region mean, like the real 2023 traces in data/grid/hourly.
  for (long r = 0; r < regions; ++r) {
    auto tr = std::make_shared<IntensityTrace>();
    const double mean = 1e-7 * (0.2 + 1.6 * static_cast<double>(r) / static_cast<double>(regions));
    for (int h = 0; h < 8760; ++h) {
      tr->time_unix_s.push_back(static_cast<std::int64_t>(kStart) + h * 3600);
      tr->kg_per_j.push_back(mean * (1 + 0.3 * std::sin(h * 2 * M_PI / 24 + static_cast<double>(r)) + 0.2 * std::sin(h * 2 * M_PI / 8760)));
    }
    Site s;
    s.id = "region-" + std::to_string(r);
    s.region.id = s.id;
    s.region.trace = tr;
    s.region.year = 2025;
    s.region.annual_change = -0.03;
    s.pue = 1.1;
    plan.sites.push_back(s);
  }
  // Deployments: one per `regions` cohorts; 1e9 replicas in all, growing 20 %/year; autoscaled
  // ones (every fourth) follow demand instead.
  const long deployments = cohorts / regions;
  const double per_cohort = 1e9 / static_cast<double>(deployments * regions);
  for (long d = 0; d < deployments; ++d) {
    DeploymentPlan p;
    p.id = "deployment-" + std::to_string(d);
    p.model = "model-" + std::to_string(d % 20);
    p.start = kStart;
    p.end = plan.end;
    p.step_s = kYear / 12;
    Growth g;
    g.form = Growth::Form::exponential;
    g.initial = per_cohort * static_cast<double>(regions);
    g.rate_per_year = 0.2;
    g.start_unix_s = static_cast<std::int64_t>(kStart);
    if (d % 4 != 3) p.replicas = g;
    p.demand = g;
    p.demand.initial *= 0.5;  // requests/s: half a request per replica per second on average
    for (int h = 0; h < 24; ++h) p.diurnal[static_cast<std::size_t>(h)] = 0.5 + (h >= 8 && h < 22 ? 0.857 : 0);
    const auto cost = [](const char* id, double busy, double idle, double rps, double embodied, double lifetime) {
      ServiceCost c;
      c.hardware_id = id;
      c.busy_w = busy;
      c.idle_w = idle;
      c.requests_per_s = rps;
      c.embodied_kg = embodied;
      c.lifetime_s = lifetime;
      return c;
    };
    const ServiceCost a = cost("gpu-a", 400, 80, 1.5, 150, 4 * kYear), b = cost("gpu-b", 700, 120, 4, 450, 5 * kYear);
    p.mix = {MixPlan{kStart, {a}, {1.0}}, MixPlan{kStart + 3 * kYear, {a, b}, {0.5, 0.5}}, MixPlan{kStart + 6 * kYear, {b}, {1.0}}};
    plan.deployments.push_back(p);
    for (long r = 0; r < regions; ++r) {
      plan.cohorts.push_back({static_cast<std::size_t>(d), static_cast<std::size_t>(r), 1.0 / static_cast<double>(regions),
                              static_cast<double>((r % 24) - 12) * 3600});
    }
  }
  const auto t_run = std::chrono::steady_clock::now();
  const LifecycleResult result = simulate_lifecycle(plan, threads);
  const auto t_end = std::chrono::steady_clock::now();
  double co2e = 0;
  for (const auto& t : result.totals) co2e += t.co2e_location_kg;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double build_s = std::chrono::duration<double>(t_run - t_build).count();
  const double run_s = std::chrono::duration<double>(t_end - t_run).count();
  std::printf("cohorts %ld regions %ld years %g threads %d: plan %.2f s, simulate %.2f s, %llu events, %zu series rows, "
              "peak RSS %.0f MiB, %.4g tCO2e\n",
              cohorts, regions, years, threads, build_s, run_s, static_cast<unsigned long long>(result.events),
              result.series.size(), static_cast<double>(ru.ru_maxrss) / 1024.0, co2e / 1000);
  return 0;
}
