#pragma once
// The whole life of models (sim/lifecycle, docs/lifecycle.md): training jobs and their
// retraining, deployments whose replicas and demand grow over years in several regions, on a
// hardware mix that is refreshed, with embodied carbon; simulated on the event engine.
//
// Power is piecewise constant between events except for the demand profile d(t) (hourly), and
// every stream's power has the form P(t) = A + B d(t) between two events of its cohort. With the
// region's hourly intensity I(t), energy and carbon over [t0, t1] are
//   E = A (t1 - t0) + B D(t0, t1),   C = A Phi_I(t0, t1) + B Phi_dI(t0, t1)
// where D, Phi_I and Phi_dI are prefix sums kept per region (a grid change updates a region's
// integral, never a cohort). The results are exact for piecewise-constant inputs.
//
//   LifecyclePlan plan = plan_lifecycle(scenario, training_footprints);
//   LifecycleResult r = simulate_lifecycle(plan, /*threads=*/2);

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon::lifecycle {

enum class Phase : int { training = 0, inference = 1, idle = 2, embodied = 3 };
inline constexpr int kPhases = 4;
const char* to_string(Phase phase);

// Time-series bins: calendar hours, days, months or years (UTC).
enum class Resolution { hour, day, month, year };
Resolution parse_resolution(const std::string& text);  // throws std::invalid_argument
// Bin boundaries covering [t0, t1]: t0, the calendar boundaries after it, t1.
std::vector<double> bin_edges(double t0, double t1, Resolution resolution);

// What the cost room says about one replica (cloud) or device (edge) of one kind of hardware.
struct ServiceCost {
  std::string hardware_id;
  double busy_w = 0;              // IT power of a replica while serving (device + host share)
  double idle_w = 0;              // IT power of a provisioned replica with nothing to do (cloud)
  double requests_per_s = 0;      // throughput of a replica at full utilisation
  double embodied_kg = 0;         // per replica (cloud: accelerators x per-device; edge: the device)
  double lifetime_s = 4 * 365 * 86400.0;
  // One batch, for the record: its time and, for LLM serving, the prefill and decode parts.
  double batch_s = 0, prefill_s = 0, decode_s = 0;
  // Memory a batch holds on each accelerator of a replica (cloud; the device at the edge): the
  // weights, the largest op's tensors and, for LLM serving, the KV cache at the requests' full
  // length, all split evenly over the replica's accelerators. `fits`: within the hardware's memory
  // (true where the catalog gives none); `memory_text` says what it needs where it does not.
  double memory_bytes = 0;
  bool fits = true;
  std::string memory_text;
};

// Where energy is drawn: a data centre (cloud) or the users' grid (edge, PUE 1).
struct Site {
  std::string id;
  bool edge = false;  // the users' grid (no PUE), not a data centre
  GridRegion region;
  double pue = 1;
  std::optional<double> market_kg_per_j;  // market-based intensity; location-based where absent
  bool inline_override = false;           // a data centre overridden inline (its name gets "#k")
};

struct MixPlan {
  double from = 0;
  std::vector<ServiceCost> costs;
  std::vector<double> shares;
};

struct DeploymentPlan {
  std::string id, model;
  Deployment::Kind kind = Deployment::Kind::cloud;
  double start = 0, end = 0, step_s = 86400;
  std::optional<Growth> replicas;  // cloud; absent: autoscaled
  double headroom = 0.2;
  Growth demand;                   // cloud: requests/s (global); edge: inferences/s per device
  std::optional<Growth> devices;   // edge
  std::vector<double> diurnal = std::vector<double>(24, 1.0), weekly = std::vector<double>(7, 1.0);
  double charging_efficiency = 1;
  double useful_fraction = 1;
  std::vector<MixPlan> mix;
  // False where a replica cannot hold the model and its batch on some hardware of its mix
  // (`ServiceCost::fits`): the deployment cannot run, has no cohorts, and its summary's figures
  // are NaN (unknown, not zero), as a training job's that does not fit.
  bool runs = true;
};

struct CohortPlan {
  std::size_t deployment = 0, site = 0;
  double share = 1;
  double utc_offset_s = 0;
};

// A training job placed in time: constant IT power over [start, start + duration).
struct TrainingRun {
  std::string id, model, hardware_id;
  std::size_t site = 0;
  double start = 0, duration_s = 0;
  double it_w = 0;                 // IT power of the whole job
  double embodied_kg_per_s = 0;    // the job's accelerators, amortised over their lifetime
};

struct LifecyclePlan {
  double start = 0, end = 0;  // unix s; the horizon
  Resolution resolution = Resolution::month;
  std::vector<Site> sites;
  std::vector<DeploymentPlan> deployments;
  std::vector<CohortPlan> cohorts;
  std::vector<TrainingRun> training;
};

// At most how many rows the time series of a plan can have: bins x, on each site, the phases of
// each (hardware, model) pair its cohorts and runs draw (three a deployment's hardware: serving,
// idle, embodied; two a training run's). An upper bound, from the plan alone, checked before the
// series are allocated (each row holds its strings and figures: ~0.7 kB measured in session 42).
double series_rows_bound(const LifecyclePlan& plan);
inline constexpr double kMaxSeriesRows = 1e7;

// One row of the time series: a bin x phase x site x hardware x model.
struct SeriesRow {
  double bin_start = 0, bin_end = 0;
  Phase phase = Phase::inference;
  std::string site, region, hardware, model;
  double energy_j = 0, co2e_location_kg = 0, co2e_market_kg = 0, requests = 0;
};

// Totals per entity (deployment or training run) x site x hardware x phase.
struct EntityTotal {
  std::string entity, entity_kind, site, region, hardware, model;
  Phase phase = Phase::inference;
  double energy_j = 0, co2e_location_kg = 0, co2e_market_kg = 0, requests = 0;
};

// Per deployment: what was served and what it cost per inference and per useful inference.
struct DeploymentSummary {
  std::string id, model;
  double requests = 0, useful_requests = 0, unserved_requests = 0;
  double energy_j = 0, co2e_location_kg = 0, co2e_market_kg = 0;  // all phases, embodied included
  double co2e_per_inference_kg = 0, co2e_per_useful_inference_kg = 0;
  double peak_replicas = 0;
  // Busy replica-time / provisioned replica-time (cloud); at the edge, the devices' duty cycle
  // (time spent on this model's inferences / device time).
  double mean_utilisation = 0;
};

struct LifecycleResult {
  std::vector<SeriesRow> series;
  std::vector<EntityTotal> totals;
  std::vector<DeploymentSummary> deployments;
  std::uint64_t events = 0;
};

// Where results leave the simulation: rows in a fixed order (site by site, then by key), from
// the calling thread, after the run. The HDF5 writer is one observer; tests use the in-memory
// one behind the second overload.
class Observer {
 public:
  virtual ~Observer() = default;
  virtual void series(const SeriesRow& row) = 0;
  virtual void total(const EntityTotal& total) = 0;
  virtual void deployment(const DeploymentSummary& summary) = 0;
};

// Runs the plan on the event engine (partitions = sites) and reports to `observer`; returns the
// number of events. Bit-identical for any thread count.
std::uint64_t simulate_lifecycle(const LifecyclePlan& plan, int threads, Observer& observer);
LifecycleResult simulate_lifecycle(const LifecyclePlan& plan, int threads);

// The value of a growth curve at `unix_s` (exponential and logistic from their start; piecewise
// and trace as step functions, the first value before the first date).
double growth_at(const Growth& growth, double unix_s);

// The intensity of a region at `unix_s` (its trace, read as it is over its span and repeated with
// trace_period_s outside it, or its annual value; times its trajectory). kgCO2e/J.
double intensity_at(const GridRegion& region, double unix_s);

}  // namespace dlcarbon::lifecycle
