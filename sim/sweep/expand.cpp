// Sweep expansion (grid, Latin hypercube, Monte Carlo), shards, and the parallel point loop.
//
// Draws come from a counter-based generator (splitmix64 of seed, point and parameter), so a
// point's values depend on nothing but the sweep file: not on shards, threads or order.

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>

#include "dlcarbon/sweep.hpp"
#include "dlcarbon/text.hpp"

namespace dlcarbon {
namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// A uniform number in [0, 1) for (seed, stream, counter), 53 random bits.
double uniform(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
  const std::uint64_t h = splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ counter);
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

// Streams: jitter and Monte Carlo draws per parameter, and the permutation of each
// parameter's strata in a Latin hypercube.
constexpr std::uint64_t kDrawStream = 0x64726177ULL;     // "draw"
constexpr std::uint64_t kStrataStream = 0x73747261ULL;   // "stra"

std::string number_text(double x, int digits) { return text::number_g(x, digits); }

// The value of a parameter at a fraction f in [0, 1) of its range or list.
void place(const SweepParameter& p, double f, std::size_t j, SweepPoint& point) {
  if (!p.ranged) {
    std::size_t k = static_cast<std::size_t>(f * static_cast<double>(p.values_yaml.size()));
    if (k >= p.values_yaml.size()) k = p.values_yaml.size() - 1;
    point.overrides[j] = {p.key, p.values_yaml[k], p.values_at[k], p.at};
    point.shown[j] = p.values_shown[k];
    point.numeric[j] = p.values_numeric[k];
    return;
  }
  double x;
  if (p.integer) {
    // Uniform over the integers lo..hi (log scale: over their logarithms, ends included).
    if (p.log_scale) {
      x = std::floor(std::exp(std::log(p.lo) + f * (std::log(p.hi + 1) - std::log(p.lo))));
    } else {
      x = std::floor(p.lo + f * (p.hi - p.lo + 1));
    }
    x = std::min(std::max(x, p.lo), p.hi);
  } else {
    x = p.log_scale ? std::exp(std::log(p.lo) + f * (std::log(p.hi) - std::log(p.lo))) : p.lo + f * (p.hi - p.lo);
  }
  const std::string exact = number_text(x, 17), shown = p.integer ? number_text(x, 17) : number_text(x, 6);
  point.overrides[j] = {p.key, p.unit.empty() ? exact : text::yaml_quoted(exact + " " + p.unit), p.range_at, p.at};
  point.shown[j] = p.unit.empty() ? shown : shown + " " + p.unit;
  point.numeric[j] = x;
}

}  // namespace

std::int64_t sweep_size(const SweepSpec& spec) {
  if (spec.method != SweepMethod::grid) return spec.samples;
  std::int64_t n = 1;
  for (const auto& p : spec.parameters) n *= static_cast<std::int64_t>(p.values_yaml.size());
  return n;
}

std::vector<SweepPoint> expand_sweep(const SweepSpec& spec) {
  const std::int64_t n = sweep_size(spec);
  const std::size_t np = spec.parameters.size();
  std::vector<SweepPoint> points(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    SweepPoint& pt = points[static_cast<std::size_t>(i)];
    pt.index = i;
    pt.overrides.resize(np);
    pt.shown.resize(np);
    pt.numeric.resize(np);
  }
  if (spec.method == SweepMethod::grid) {
    for (std::int64_t i = 0; i < n; ++i) {
      std::int64_t rest = i;
      for (std::size_t j = np; j-- > 0;) {
        const auto& p = spec.parameters[j];
        const auto count = static_cast<std::int64_t>(p.values_yaml.size());
        const std::int64_t k = rest % count;
        rest /= count;
        // The exact fraction of value k, so that place() picks k.
        place(p, (static_cast<double>(k) + 0.5) / static_cast<double>(count), j, points[static_cast<std::size_t>(i)]);
      }
    }
    return points;
  }
  for (std::size_t j = 0; j < np; ++j) {
    std::vector<std::int64_t> stratum;
    if (spec.method == SweepMethod::latin_hypercube) {
      // Fisher-Yates with the counter-based generator: a permutation of the n strata.
      stratum.resize(static_cast<std::size_t>(n));
      std::iota(stratum.begin(), stratum.end(), 0);
      for (std::int64_t k = n - 1; k > 0; --k) {
        const auto r = static_cast<std::int64_t>(uniform(spec.seed, kStrataStream + j, static_cast<std::uint64_t>(k)) *
                                                 static_cast<double>(k + 1));
        std::swap(stratum[static_cast<std::size_t>(k)], stratum[static_cast<std::size_t>(std::min(r, k))]);
      }
    }
    for (std::int64_t i = 0; i < n; ++i) {
      const double u = uniform(spec.seed, kDrawStream + j, static_cast<std::uint64_t>(i));
      const double f = stratum.empty() ? u
                                       : (static_cast<double>(stratum[static_cast<std::size_t>(i)]) + u) /
                                             static_cast<double>(n);
      place(spec.parameters[j], f, j, points[static_cast<std::size_t>(i)]);
    }
  }
  return points;
}

namespace {
// A non-empty run of decimal digits (no sign, no spaces).
bool digits_only(const std::string& t) { return !t.empty() && t.find_first_not_of("0123456789") == std::string::npos; }
}  // namespace

Shard parse_shard(const std::string& text) {
  // A variable that is set must be a whole number from 0 to 10^9: anything else (text, a sign,
  // past 2^63) is bad input naming it, never a silent fall back to the whole sweep (every task of
  // an array would then run all the points into one file) nor a count that overflows.
  auto env_int = [](const char* name, std::int64_t& out) {
    const char* v = std::getenv(name);
    if (!v) return false;
    const std::string t(v);  // set but empty is bad too (since session 35; before, unset)
    if (t.size() > 10 || !digits_only(t) || std::stoll(t) > 1000000000) {
      throw InputError(std::string("--shard auto: the environment variable ") + name + "=" + text::quoted(t) +
                       " is not a whole number from 0 to 10^9");
    }
    out = std::stoll(t);
    return true;
  };
  // A job step's id is a number (the batch script's own step, where a Slurm sets one, may be a
  // word such as "batch": not an srun step).
  auto env_number = [](const char* name) {
    const char* v = std::getenv(name);
    return v && digits_only(v);
  };
  Shard s;
  if (text == "auto") {
    std::int64_t rank = 0, size = 0, min = 0;
    std::int64_t step = 1;
    // srun's tasks (a job step: SLURM_STEP_ID set; the batch script itself has SLURM_PROCID 0
    // and SLURM_NTASKS too, and must not take shard 0 of N).
    const bool srun_step = env_number("SLURM_STEP_ID");
    // A rank without its count (or a count without its rank) is a broken launch, not the whole
    // sweep (since session 35; before, e.g. SLURM_ARRAY_TASK_ID alone ran every point).
    const auto pair = [](const char* a, const char* b) {
      if ((std::getenv(a) != nullptr) != (std::getenv(b) != nullptr)) {
        throw InputError(std::string("--shard auto: ") + (std::getenv(a) ? a : b) + " is set but " + (std::getenv(a) ? b : a) +
                         " is not: the environment names a shard without the count (or the count without the shard)");
      }
    };
    pair("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE");
    pair("PMI_RANK", "PMI_SIZE");
    pair("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT");
    if (srun_step) pair("SLURM_PROCID", "SLURM_NTASKS");
    // A launcher of one rank (mpirun -n 1, srun's PMI with one task in an array task) shards
    // nothing: the array's task, if any, names the shard (since session 44, a review: every array
    // task ran the whole sweep under a one-rank PMI).
    if ((env_int("OMPI_COMM_WORLD_RANK", rank) && env_int("OMPI_COMM_WORLD_SIZE", size) && size > 1) ||
        (env_int("PMI_RANK", rank) && env_int("PMI_SIZE", size) && size > 1) ||
        (srun_step && env_int("SLURM_PROCID", rank) && env_int("SLURM_NTASKS", size) && size > 1)) {
      s = {rank, size};
    } else if (env_int("SLURM_ARRAY_TASK_ID", rank) && env_int("SLURM_ARRAY_TASK_COUNT", size)) {
      // --array=MIN-MAX[:STEP]: task ids MIN, MIN+STEP, ...
      env_int("SLURM_ARRAY_TASK_MIN", min);
      env_int("SLURM_ARRAY_TASK_STEP", step);
      if (step < 1) step = 1;
      s = {(rank - min) / step, size};
    } else {
      return Shard{};
    }
    if (s.count < 1 || s.index < 0 || s.index >= s.count) {
      throw InputError("--shard auto: the environment gives shard " + std::to_string(s.index) + " of " +
                       std::to_string(s.count) + ", expected 0 <= shard < count");
    }
    return s;
  }
  const auto slash = text.find('/');
  auto whole = [](const std::string& t, std::int64_t& out) {
    if (t.size() > 12 || !digits_only(t)) return false;
    out = std::stoll(t);
    return true;
  };
  if (slash == std::string::npos || !whole(text.substr(0, slash), s.index) || !whole(text.substr(slash + 1), s.count) ||
      s.count < 1 || s.index >= s.count) {
    throw InputError("--shard: expected I/N with 0 <= I < N (e.g. 3/10, or $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT), or auto; got " +
                     text::quoted(text));
  }
  return s;
}

std::string launch_token() {
  for (const char* name : {"SLURM_ARRAY_JOB_ID", "SLURM_JOB_ID", "PMIX_NAMESPACE", "OMPI_MCA_orte_ess_jobid",
                           "OMPI_MCA_ess_base_jobid"}) {
    if (const char* v = std::getenv(name); v && *v) return std::string(name) + "=" + v;
  }
  return "";
}

std::vector<std::int64_t> shard_points(std::int64_t total, const Shard& shard) {
  std::vector<std::int64_t> out;
  if (shard.count < 1 || shard.index < 0) return out;
  // (i + count cannot pass 2^63: the loop stops before adding a count past what is left.)
  for (std::int64_t i = shard.index; i < total; i = total - i > shard.count ? i + shard.count : total) out.push_back(i);
  return out;
}

void run_points(const std::vector<std::int64_t>& todo, int threads, const std::function<void(std::int64_t)>& run_one,
                const std::function<void(std::size_t)>& after_batch) {
  const int n_threads = threads > 0 ? threads : tbb::info::default_concurrency();
  tbb::task_arena arena(n_threads);
  const std::size_t batch = static_cast<std::size_t>(n_threads) * 8;
  for (std::size_t start = 0; start < todo.size(); start += batch) {
    const std::size_t end = std::min(todo.size(), start + batch);
    arena.execute([&] { tbb::parallel_for(start, end, [&](std::size_t k) { run_one(todo[k]); }); });
    after_batch(end);
  }
}

}  // namespace dlcarbon
