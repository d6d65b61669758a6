#pragma once
// The event kernel (DESIGN.md, Engine): partitions own their events and state; power is
// piecewise constant between events and integrated exactly; partitions run in parallel (oneTBB)
// in conservative time windows; results leave through observers. Knows nothing of YAML or HDF5.
//
//   Engine e(partitions, lookahead);
//   e.schedule({t, target, kind, payload});
//   e.run_until(horizon, handler, threads);   // bit-identical results for any thread count

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

namespace dlcarbon::engine {

// An event: what happens, to which partition, when (32 bytes). The order of events is total and
// does not depend on threads: (time, order), where order = source partition << 40 | sequence
// number within that source.
struct Event {
  double time = 0;
  std::uint64_t order = 0;
  std::uint32_t target = 0;  // partition that handles it
  std::uint32_t kind = 0;
  std::uint64_t payload = 0;
  std::uint32_t source() const { return static_cast<std::uint32_t>(order >> 40); }
};

inline std::uint64_t make_order(std::uint32_t source, std::uint64_t seq) {
  return (static_cast<std::uint64_t>(source) << 40) | (seq & ((std::uint64_t{1} << 40) - 1));
}

inline bool before(const Event& a, const Event& b) {
  return a.time < b.time || (a.time == b.time && a.order < b.order);
}

// The pending-event set of one partition: a calendar of time buckets (appended to in O(1)) in
// front of a small 4-ary heap that holds only the current bucket. Pops come in `before` order.
// The bucket width adapts to the events' spread whenever the calendar is rebuilt.
class EventQueue {
 public:
  EventQueue();
  void push(const Event& e);
  const Event& top();  // precondition: !empty()
  Event pop();         // precondition: !empty()
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  void reserve(std::size_t n) { heap_.reserve(std::min<std::size_t>(n, 1 << 16)); }

 private:
  void heap_push(const Event& e);
  void sift_down_from_root(const Event& e);
  void close_hole();
  void advance();   // makes the heap hold the earliest non-empty bucket
  void rebuild();   // re-bases the calendar on the overflow events
  void resize();    // re-plans the calendar for all pending events
  void redistribute_overflow();
  std::vector<Event> heap_;
  std::vector<std::vector<Event>> buckets_;
  std::vector<Event> overflow_;
  double overflow_min_ = 1e308;
  double width_ = 1, heap_end_ = 0;  // the heap holds [.., heap_end_)
  double per_bucket_ = 64;
  std::size_t head_ = 0;                        // bucket index of heap_end_
  std::size_t size_ = 0;
  bool hole_ = false;  // the root was popped and not yet refilled
  std::size_t pops_since_resize_ = std::size_t{1} << 62;  // the first re-plan may come at once
};

// The exact integral of a piecewise-constant rate (power in W -> energy in J, or power x
// intensity -> kgCO2e): changing the rate closes the segment so far.
class RunningIntegral {
 public:
  explicit RunningIntegral(double start_time = 0) : last_(start_time) {}
  void set_rate(double t, double rate);
  double rate() const { return rate_; }
  double value(double t) const { return total_ + rate_ * (t - last_); }

 private:
  double rate_ = 0, last_ = 0, total_ = 0;
};

// What a handler can do while it handles an event of its partition.
class Context {
 public:
  Context(std::uint32_t partition, double now, std::vector<Event>& local, std::vector<std::vector<Event>>& outbox,
          std::uint64_t& seq)
      : partition_(partition), now_(now), local_(local), outbox_(outbox), seq_(seq) {}
  std::uint32_t partition() const { return partition_; }
  double now() const { return now_; }
  // Schedules an event at `time` >= now for `target`. Events for other partitions must be at
  // least the engine's lookahead in the future (conservative synchronisation).
  void schedule(double time, std::uint32_t target, std::uint32_t kind, std::uint64_t payload = 0);

 private:
  std::uint32_t partition_;
  double now_;
  std::vector<Event>& local_;
  std::vector<std::vector<Event>>& outbox_;  // one per target partition
  std::uint64_t& seq_;
};

using Handler = std::function<void(const Event&, Context&)>;

struct RunStats {
  std::uint64_t events = 0;
  std::uint64_t windows = 0;
};

class Engine {
 public:
  // `lookahead` > 0: the minimum delay of any cross-partition event.
  Engine(std::uint32_t partitions, double lookahead);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  std::uint32_t partitions() const;
  // Schedules an initial event (from outside any partition: source = target).
  void schedule(const Event& e);
  std::size_t pending() const;
  // Processes every event with time < `until`, window by window; partitions of a window run in
  // parallel on up to `threads` threads (0: all). `handler` is called from several threads at
  // once, but never twice at once for the same partition.
  RunStats run_until(double until, const Handler& handler, int threads = 1);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Sequential kernel for one partition, without windows: the fastest path when nothing needs
// to run in parallel (and the reference for the parallel one).
RunStats run_sequential(EventQueue& queue, double until, const std::function<void(const Event&, EventQueue&)>& handler);

}  // namespace dlcarbon::engine
