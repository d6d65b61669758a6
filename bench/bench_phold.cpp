// PHOLD (Fujimoto 1990) on the event kernel: N logical processes, M events in flight; each event
// schedules one new event at now + exponential(1) + 0.1 for a uniformly random process.
// Prints events per second, side by side in one run (docs/performance.md):
//   - a bare std::priority_queue loop (the baseline the issue quotes),
//   - dlcarbon's EventQueue (4-ary heap) in the sequential kernel,
//   - the partitioned engine with 1 and with 2 threads (bit-identical results, checked).
//
// usage: bench_phold [events_per_point]

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <queue>
#include <vector>

#include "dlcarbon/engine.hpp"

using namespace dlcarbon::engine;

namespace {

// splitmix64: small, fast, good enough for a benchmark's random targets and delays.
struct Rng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double delay() { return -std::log(1.0 - uniform()) + 0.1; }
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Item {
  double time;
  std::uint32_t lp;
  bool operator>(const Item& o) const { return time > o.time; }
};

double bench_std(std::size_t pending, std::uint32_t lps, std::uint64_t events) {
  Rng rng{1};
  std::vector<Item> init;
  init.reserve(pending);
  for (std::size_t i = 0; i < pending; ++i) init.push_back({rng.delay(), static_cast<std::uint32_t>(rng.next() % lps)});
  std::priority_queue<Item, std::vector<Item>, std::greater<>> q(std::greater<>{}, std::move(init));
  const auto t0 = std::chrono::steady_clock::now();
  for (std::uint64_t n = 0; n < events; ++n) {
    const Item e = q.top();
    q.pop();
    q.push({e.time + rng.delay(), static_cast<std::uint32_t>(rng.next() % lps)});
  }
  return static_cast<double>(events) / seconds_since(t0);
}

double bench_queue(std::size_t pending, std::uint32_t lps, std::uint64_t events) {
  Rng rng{1};
  EventQueue q;
  q.reserve(pending + 1);
  std::uint64_t seq = 0;
  for (std::size_t i = 0; i < pending; ++i) q.push(Event{rng.delay(), seq++, static_cast<std::uint32_t>(rng.next() % lps), 0, 0});
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t n = 0;
  while (n < events) {
    const Event e = q.pop();
    q.push(Event{e.time + rng.delay(), seq++, static_cast<std::uint32_t>(rng.next() % lps), 0, 0});
    ++n;
  }
  return static_cast<double>(events) / seconds_since(t0);
}

// The partitioned engine: LPs spread over 64 partitions, each with its own random stream.
double bench_engine(std::size_t pending, std::uint32_t lps, double horizon, int threads, std::uint64_t& events,
                    double& checksum) {
  constexpr std::uint32_t P = 64;
  Engine eng(P, 0.1);
  Rng init{1};
  for (std::size_t i = 0; i < pending; ++i) {
    const auto lp = static_cast<std::uint32_t>(init.next() % lps);
    eng.schedule(Event{init.delay(), 0, lp % P, 0, lp});
  }
  std::vector<Rng> rngs;
  for (std::uint32_t p = 0; p < P; ++p) rngs.push_back(Rng{1000 + p});
  std::vector<double> sums(P, 0.0);
  const auto t0 = std::chrono::steady_clock::now();
  const RunStats s = eng.run_until(horizon, [&](const Event& e, Context& ctx) {
    Rng& r = rngs[ctx.partition()];
    const auto lp = static_cast<std::uint32_t>(r.next() % lps);
    sums[ctx.partition()] += e.time;
    ctx.schedule(e.time + r.delay(), lp % P, 0, lp);
  }, threads);
  const double secs = seconds_since(t0);
  events = s.events;
  checksum = 0;
  for (const double x : sums) checksum += x;  // fixed order: identical for identical runs
  return static_cast<double>(s.events) / secs;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t events = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 20000000ULL;
  std::printf("PHOLD, %llu events per point (events/s, millions)\n", static_cast<unsigned long long>(events));
  std::printf("%12s %16s %16s\n", "pending", "std::pq", "EventQueue");
  for (const std::size_t pending : {std::size_t{1000}, std::size_t{10000}, std::size_t{10000000}}) {
    const std::uint32_t lps = 1000;
    std::printf("%12zu %16.2f %16.2f\n", pending, bench_std(pending, lps, events) / 1e6,
                bench_queue(pending, lps, events) / 1e6);
  }
  // Parallel engine: a horizon that gives about `events` events with 1e6 pending
  // (each event lives 1.1 on average, so 1e6 pending make ~0.91e6 events per time unit).
  const std::size_t pending = 1000000;
  const double horizon = static_cast<double>(events) / (static_cast<double>(pending) / 1.1);
  std::uint64_t e1 = 0, e2 = 0;
  double c1 = 0, c2 = 0;
  const double r1 = bench_engine(pending, 100000, horizon, 1, e1, c1);
  const double r2 = bench_engine(pending, 100000, horizon, 2, e2, c2);
  std::printf("\nengine, 64 partitions, 1e6 pending, lookahead 0.1: 1 thread %.2f M/s, 2 threads %.2f M/s; "
              "speed-up %.2f (parallel efficiency %.0f %%); events %llu / %llu; identical: %s\n",
              r1 / 1e6, r2 / 1e6, r2 / r1, 50 * r2 / r1, static_cast<unsigned long long>(e1),
              static_cast<unsigned long long>(e2), (e1 == e2 && c1 == c2) ? "yes" : "NO");
  return (e1 == e2 && c1 == c2) ? 0 : 1;
}
