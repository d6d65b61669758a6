#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

#include "dlcarbon/engine.hpp"

using namespace dlcarbon::engine;

TEST_CASE("the event queue pops in (time, order) order, with pushes in between") {
  for (const std::size_t n : {std::size_t{10}, std::size_t{5000}, std::size_t{200000}}) {
    std::mt19937_64 rng(42);
    std::exponential_distribution<double> delay(1.0);
    EventQueue q;
    std::vector<Event> popped;
    std::uint64_t seq = 0;
    for (std::size_t i = 0; i < n; ++i) {
      // Some exact ties in time, told apart by order.
      const double t = (i % 7 == 0) ? 1.0 : delay(rng);
      q.push(Event{t, seq++, 0, 0, i});
    }
    double now = 0;
    for (std::size_t i = 0; i < 3 * n; ++i) {
      const Event e = q.pop();
      CHECK(e.time >= now);
      now = e.time;
      popped.push_back(e);
      if (i < 2 * n) q.push(Event{now + delay(rng) + 0.1, seq++, 0, 0, i});
      if (q.empty()) break;
    }
    CHECK(std::is_sorted(popped.begin(), popped.end(), [](const Event& a, const Event& b) { return before(a, b); }));
    CHECK(popped.size() == 3 * n);
  }
}

TEST_CASE("the event queue: events beyond the calendar's first lap come out, in order") {
  // A fresh calendar covers [0, 1,023) in unit buckets: an event at 1,500 goes to the overflow and
  // comes back into a bucket late in the first lap, one at 5,000 stays there (since session 44, a
  // review: the first popped from an empty heap, the second came out before the first).
  {
    EventQueue q;
    q.push(Event{1500, 0, 0, 0, 0});
    CHECK(q.pop().time == 1500);
    CHECK(q.empty());
  }
  {
    EventQueue q;
    q.push(Event{1500, 0, 0, 0, 0});
    q.push(Event{5000, 1, 0, 0, 1});
    CHECK(q.pop().time == 1500);
    CHECK(q.pop().time == 5000);
  }
  // Sparse events far apart, pushed and popped in turns: always in order.
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> far(0, 1e7);
  EventQueue q;
  std::vector<double> pending;
  std::uint64_t seq = 0;
  double now = 0;
  for (int i = 0; i < 2000; ++i) {
    const double t = now + far(rng) * (i % 3 == 0 ? 1e-4 : 1.0);
    q.push(Event{t, seq++, 0, 0, 0});
    pending.push_back(t);
    if (i % 2 == 1) {
      const auto earliest = std::min_element(pending.begin(), pending.end());
      const Event e = q.pop();
      CHECK(e.time == *earliest);
      pending.erase(earliest);
      now = e.time;
    }
  }
  while (!q.empty()) {
    const auto earliest = std::min_element(pending.begin(), pending.end());
    CHECK(q.pop().time == *earliest);
    pending.erase(earliest);
  }
}

TEST_CASE("running integrals are exact for piecewise-constant rates") {
  // 100 W for 10 s, 50 W for 20 s, off for 5 s, 10 W after: 1000 + 1000 + 0 + 10 x (t - 35) J.
  RunningIntegral energy(0);
  energy.set_rate(0, 100);
  energy.set_rate(10, 50);
  CHECK(energy.value(20) == 1500);
  energy.set_rate(30, 0);
  energy.set_rate(35, 10);
  CHECK(energy.value(35) == 2000);
  CHECK(energy.value(45) == 2100);
  CHECK(energy.rate() == 10);
}

namespace {
// A PHOLD-like model on 16 partitions; returns every partition's log of (time, order) handled.
std::vector<std::vector<std::pair<double, std::uint64_t>>> phold(int threads) {
  constexpr std::uint32_t P = 16;
  Engine eng(P, 0.1);
  std::mt19937_64 init(7);
  std::exponential_distribution<double> d(1.0);
  for (int i = 0; i < 2000; ++i) eng.schedule(Event{d(init), 0, static_cast<std::uint32_t>(init() % P), 0, 0});
  std::vector<std::mt19937_64> rngs;
  for (std::uint32_t p = 0; p < P; ++p) rngs.emplace_back(100 + p);
  std::vector<std::vector<std::pair<double, std::uint64_t>>> log(P);
  const auto stats = eng.run_until(50, [&](const Event& e, Context& ctx) {
    auto& r = rngs[ctx.partition()];
    std::exponential_distribution<double> delay(1.0);
    log[ctx.partition()].emplace_back(e.time, e.order);
    ctx.schedule(e.time + delay(r) + 0.1, static_cast<std::uint32_t>(r() % P), 0);
  }, threads);
  CHECK(stats.events > 50000);
  return log;
}
}  // namespace

TEST_CASE("bit-identical results for 1 and 2 threads") {
  const auto one = phold(1);
  const auto two = phold(2);
  CHECK(one == two);
}

TEST_CASE("the engine refuses events in the past and cross-partition events inside the lookahead") {
  Engine eng(2, 1.0);
  eng.schedule(Event{0.5, 0, 0, 0, 0});
  CHECK_THROWS_AS(eng.run_until(10, [](const Event& e, Context& ctx) { ctx.schedule(e.time - 1, 0, 0); }), std::logic_error);
  Engine eng2(2, 1.0);
  eng2.schedule(Event{0.5, 0, 0, 0, 0});
  CHECK_THROWS_AS(eng2.run_until(10, [](const Event& e, Context& ctx) { ctx.schedule(e.time + 0.1, 1, 0); }),
                  std::logic_error);
  // An event at no time (NaN or infinity) is refused, not left looping in the calendar (since
  // session 44, a review).
  for (const double never : {std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
    Engine eng3(1, 1.0);
    CHECK_THROWS_AS(eng3.schedule(Event{never, 0, 0, 0, 0}), std::logic_error);
    eng3.schedule(Event{0.5, 0, 0, 0, 0});
    CHECK_THROWS_AS(eng3.run_until(10, [never](const Event&, Context& ctx) { ctx.schedule(never, 0, 0); }), std::logic_error);
  }
  CHECK_THROWS_AS(Engine(0, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(Engine(2, 0.0), std::invalid_argument);
}
