#pragma once
// Sweeps (docs/sweep.md): one scenario, many points, each point a set of values for keys of
// the scenario.
//
//   SweepSpec spec = load_sweep_spec("scenarios/sweeps/gpt3-parallelism.yaml");  // sim/scenario
//   for (const SweepPoint& p : expand_sweep(spec)) {                               // sim/sweep
//     LoadOptions o{data_dir, p.overrides};
//     Scenario s = load_scenario(spec.scenario, o);
//   }

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dlcarbon/error.hpp"
#include "dlcarbon/scenario.hpp"

namespace dlcarbon {

enum class SweepMethod { grid, latin_hypercube, monte_carlo };

struct SweepParameter {
  std::string key;  // as in Override::key
  SourceLocation at;
  // `values:` (a grid's steps are turned into values when the file is read)
  std::vector<std::string> values_yaml;
  std::vector<std::string> values_shown;
  std::vector<double> values_numeric;  // NaN where a value is not a plain number
  std::vector<SourceLocation> values_at;
  // For each value, the keys its inline references change in the copies they make: a value
  // {id: test-dc, pue: 1.3} of training.a.datacenter changes datacenters.test-dc.pue for job a.
  std::vector<std::vector<std::string>> values_changes;
  // `range:` for latin-hypercube and monte-carlo draws
  bool ranged = false;
  bool stepped = false;  // a grid's range with steps, turned into values (lo and hi kept)
  std::int64_t steps = 0;  // the steps asked for (integer steps that coincide give fewer values)
  double lo = 0, hi = 0;
  bool log_scale = false, integer = false;
  std::string unit;  // appended to a drawn number: 12.5 -> "12.5 days"
  SourceLocation range_at;
};

struct SweepSpec {
  std::string display;              // the sweep file as the user named it
  std::string name;
  std::filesystem::path scenario;   // relative to the working directory
  SweepMethod method = SweepMethod::grid;
  std::int64_t samples = 0;         // latin-hypercube and monte-carlo
  std::uint64_t seed = 0;
  std::vector<SweepParameter> parameters;
  std::string given_text;           // the sweep file byte for byte
};

// Reads and checks a sweep file (the scenario it names is checked when points load).
// Throws InputError naming file:line:col and key.
SweepSpec load_sweep_spec(const std::filesystem::path& file);

// Every process holds every point's values (a few hundred bytes a parameter): a million points
// is a few GB at most. A larger study is several sweeps.
inline constexpr std::int64_t kMaxSweepPoints = 1'000'000;

struct SweepPoint {
  std::int64_t index = 0;
  std::vector<Override> overrides;  // one per parameter, in the file's order
  std::vector<std::string> shown;   // each parameter's value as text
  std::vector<double> numeric;      // each parameter's value as a number, NaN if none
};

// Grid: the product of the value counts (the last parameter varies fastest); otherwise samples.
std::int64_t sweep_size(const SweepSpec& spec);

// Every point, deterministic in (spec, seed): the same for any shard or thread count, and on any
// machine whose std::exp and std::log agree (log scales).
std::vector<SweepPoint> expand_sweep(const SweepSpec& spec);

// A share of the points for one process of a Slurm array or an mpirun: index in [0, count).
struct Shard {
  std::int64_t index = 0, count = 1;
};
// "3/10" (0-based), or "auto": the rank and size from mpirun (OMPI_COMM_WORLD_RANK/SIZE,
// PMI_RANK/SIZE), srun (SLURM_PROCID/NTASKS inside a job step) or a Slurm array
// (SLURM_ARRAY_TASK_ID/COUNT, counted from SLURM_ARRAY_TASK_MIN in steps of
// SLURM_ARRAY_TASK_STEP); one shard when none is set. Throws InputError.
Shard parse_shard(const std::string& text);
// Which launch this process belongs to ("SLURM_JOB_ID=123", the PMIx namespace, ...; "" outside
// one): shard files carry it, so that a gather does not take a file an earlier job left.
std::string launch_token();
// The points of one shard: index % count == shard index (round robin, so that expensive
// corners of a grid spread over the shards).
std::vector<std::int64_t> shard_points(std::int64_t total, const Shard& shard);

// Runs `run_one(index)` for every index of `todo` on `threads` threads (0: all cores), in
// batches of a few points per thread, and calls `after_batch(points done)` between batches,
// never concurrently with run_one (the place to write a checkpoint or a progress line). An
// exception in run_one stops the sweep and is rethrown here.
void run_points(const std::vector<std::int64_t>& todo, int threads, const std::function<void(std::int64_t)>& run_one,
                const std::function<void(std::size_t)>& after_batch);

}  // namespace dlcarbon
