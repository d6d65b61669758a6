#include "dlcarbon/engine.hpp"

#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace dlcarbon::engine {

namespace {
constexpr std::size_t kMinBuckets = 1024;
// Target events per bucket when the calendar is planned: small for few pending events (a small
// heap), larger for many (fewer buckets, so the calendar's headers stay in cache).
double per_bucket(double n) { return std::clamp(n / 8192, 64.0, 1024.0); }
}  // namespace

EventQueue::EventQueue() : buckets_(kMinBuckets) {}

void EventQueue::heap_push(const Event& e) {
  if (hole_) {
    hole_ = false;
    sift_down_from_root(e);
    return;
  }
  std::size_t i = heap_.size();
  heap_.push_back(e);
  while (i > 0) {
    const std::size_t parent = (i - 1) / 4;
    if (!before(e, heap_[parent])) break;
    heap_[i] = heap_[parent];
    i = parent;
  }
  heap_[i] = e;
}

void EventQueue::sift_down_from_root(const Event& e) {
  const std::size_t n = heap_.size();
  std::size_t i = 0;
  for (;;) {
    const std::size_t first = 4 * i + 1;
    if (first >= n) break;
    std::size_t best = first;
    const std::size_t end = std::min(first + 4, n);
    for (std::size_t c = first + 1; c < end; ++c) {
      if (before(heap_[c], heap_[best])) best = c;
    }
    if (!before(heap_[best], e)) break;
    heap_[i] = heap_[best];
    i = best;
  }
  heap_[i] = e;
}

// A pop leaves a hole at the root; the next push fills it with one sift-down (the common
// pop-then-push of a simulation costs one sift instead of two); anything else closes it first.
void EventQueue::close_hole() {
  if (!hole_) return;
  hole_ = false;
  const Event last = heap_.back();
  heap_.pop_back();
  if (!heap_.empty()) sift_down_from_root(last);
}

void EventQueue::push(const Event& e) {
  ++size_;
  if (e.time < heap_end_) {
    heap_push(e);
    return;
  }
  const double offset = (e.time - heap_end_) / width_;
  const std::size_t nb = buckets_.size();
  if (offset < static_cast<double>(nb - 1)) {
    buckets_[(head_ + static_cast<std::size_t>(offset)) & (nb - 1)].push_back(e);
  } else {
    overflow_.push_back(e);
    overflow_min_ = std::min(overflow_min_, e.time);
  }
}

// Overflow events that the sliding calendar now covers go back into its buckets (else a later,
// nearer event could be popped before them).
void EventQueue::redistribute_overflow() {
  std::vector<Event> pending;
  pending.swap(overflow_);
  overflow_min_ = std::numeric_limits<double>::infinity();
  size_ -= pending.size();
  for (const auto& e : pending) push(e);
}

void EventQueue::rebuild() {
  // A new calendar for the events in overflow_: the bucket width is chosen from a sample so that
  // the middle 90 % of the events spread over ~kPerBucket per bucket.
  std::vector<double> sample;
  const std::size_t stride = std::max<std::size_t>(1, overflow_.size() / 1024);
  for (std::size_t i = 0; i < overflow_.size(); i += stride) sample.push_back(overflow_[i].time);
  std::sort(sample.begin(), sample.end());
  const double lo = sample.front();
  const double p05 = sample[sample.size() / 20], p95 = sample[sample.size() * 19 / 20];
  const double n = static_cast<double>(overflow_.size());
  // Enough buckets (a power of two) for the planned occupancy over twice the bulk's span.
  std::size_t nb = kMinBuckets;
  per_bucket_ = per_bucket(n);
  while (nb < (std::size_t{1} << 22) && static_cast<double>(nb) < 2.5 * n / per_bucket_) nb *= 2;
  if (nb != buckets_.size()) buckets_.assign(nb, {});
  width_ = (p95 - p05) / std::max(1.0, 0.9 * n / per_bucket_);
  if (!(width_ > 0)) width_ = std::max(1e-9, (sample.back() - lo) / static_cast<double>(nb));
  if (!(width_ > 0)) width_ = 1;
  heap_end_ = lo;
  head_ = 0;
  redistribute_overflow();
}

void EventQueue::resize() {
  // Everything back into overflow_, then a new calendar.
  close_hole();
  for (const auto& e : heap_) overflow_.push_back(e);
  heap_.clear();
  for (auto& bucket : buckets_) {
    overflow_.insert(overflow_.end(), bucket.begin(), bucket.end());
    bucket.clear();
  }
  if (!overflow_.empty()) rebuild();
}

void EventQueue::advance() {
  close_hole();
  while (heap_.empty()) {
    bool any = false;
    std::size_t skipped = 0;
    const std::size_t nb = buckets_.size();
    for (std::size_t step = 0; step < nb; ++step) {
      if (overflow_min_ < heap_end_ + width_ * static_cast<double>(nb - 1)) redistribute_overflow();
      auto& bucket = buckets_[head_];
      head_ = (head_ + 1) & (nb - 1);
      heap_end_ += width_;
      if (!bucket.empty()) {
        const std::size_t loaded = bucket.size();
        for (const auto& e : bucket) heap_push(e);
        bucket.clear();
        any = true;
        // Buckets far fuller or emptier than planned: the spread changed, so re-plan.
        // (At most once per size_/4 pops: a re-plan costs O(size_), and events tied in time can
        // keep a bucket full whatever its width.)
        if (size_ > 4096 && pops_since_resize_ > size_ / 4 &&
            (static_cast<double>(loaded) > 16 * per_bucket_ || skipped > nb / 4)) {
          pops_since_resize_ = 0;
          resize();
        }
        break;
      }
      ++skipped;
    }
    if (!any) {
      // A whole lap found nothing: the events lie beyond it, in overflow_ or in buckets that
      // overflow events reached late in the lap. Re-plan the calendar on all of them (since session
      // 44, a review: the lap returned with an empty heap, and a re-base on the overflow alone read
      // the buckets' events against the wrong base, out of order).
      if (size_ == 0) throw std::logic_error("EventQueue: top or pop of an empty queue");
      resize();
    }
  }
}

const Event& EventQueue::top() {
  close_hole();
  if (heap_.empty()) advance();
  return heap_.front();
}

Event EventQueue::pop() {
  close_hole();
  if (heap_.empty()) advance();
  --size_;
  ++pops_since_resize_;
  hole_ = true;
  return heap_.front();
}

// --- RunningIntegral ----------------------------------------------------------------------

void RunningIntegral::set_rate(double t, double rate) {
  total_ += rate_ * (t - last_);
  last_ = t;
  rate_ = rate;
}

// --- Context ------------------------------------------------------------------------------

void Context::schedule(double time, std::uint32_t target, std::uint32_t kind, std::uint64_t payload) {
  if (time < now_) throw std::logic_error("engine: an event was scheduled in the past");
  // An event at no time (NaN, infinity) would never leave the calendar's overflow (since session
  // 44, a review: the queue looped for ever).
  if (!std::isfinite(time)) throw std::logic_error("engine: an event was scheduled at a time that is not a finite number");
  const Event e{time, make_order(partition_, seq_++), target, kind, payload};
  if (target == partition_) {
    local_.push_back(e);
  } else {
    if (target >= outbox_.size()) throw std::out_of_range("engine: no such partition");
    outbox_[target].push_back(e);
  }
}

// --- Engine -------------------------------------------------------------------------------

struct Engine::Impl {
  struct Partition {
    EventQueue queue;
    std::vector<Event> local;   // scheduled for itself while handling
    std::vector<std::vector<Event>> outbox;  // per target partition, delivered after the window
    double next = std::numeric_limits<double>::infinity();
    std::uint64_t seq = 0;
    std::uint64_t events = 0;
  };
  std::vector<Partition> parts;
  double lookahead;
  std::uint64_t external_seq = 0;
};

Engine::Engine(std::uint32_t partitions, double lookahead) : impl_(std::make_unique<Impl>()) {
  if (partitions == 0) throw std::invalid_argument("engine: at least one partition");
  if (!(lookahead > 0)) throw std::invalid_argument("engine: the lookahead must be > 0");
  impl_->parts.resize(partitions);
  for (auto& p : impl_->parts) p.outbox.resize(partitions);
  impl_->lookahead = lookahead;
}

Engine::~Engine() = default;

std::uint32_t Engine::partitions() const { return static_cast<std::uint32_t>(impl_->parts.size()); }

void Engine::schedule(const Event& e) {
  if (e.target >= impl_->parts.size()) throw std::out_of_range("engine: no such partition");
  if (!std::isfinite(e.time)) throw std::logic_error("engine: an event was scheduled at a time that is not a finite number");
  Event x = e;
  x.order = make_order(e.target, impl_->external_seq++);
  impl_->parts[e.target].queue.push(x);
}

std::size_t Engine::pending() const {
  std::size_t n = 0;
  for (const auto& p : impl_->parts) n += p.queue.size();
  return n;
}

RunStats Engine::run_until(double until, const Handler& handler, int threads) {
  RunStats stats;
  auto& parts = impl_->parts;
  const double L = impl_->lookahead;
  std::unique_ptr<oneapi::tbb::global_control> limit;
  // Only for a parallel run: the limit is process-wide, and a serial run (one point of a
  // parallel sweep) must not throttle the threads around it.
  if (threads > 1) {
    limit = std::make_unique<oneapi::tbb::global_control>(oneapi::tbb::global_control::max_allowed_parallelism,
                                                          static_cast<std::size_t>(threads));
  }
  auto for_each_partition = [&](auto&& f) {
    if (threads == 1 || parts.size() == 1) {
      for (std::size_t i = 0; i < parts.size(); ++i) f(i);
    } else {
      oneapi::tbb::parallel_for(std::size_t{0}, parts.size(), f);
    }
  };
  for (auto& p : parts) p.next = p.queue.empty() ? std::numeric_limits<double>::infinity() : p.queue.top().time;
  for (;;) {
    double next = std::numeric_limits<double>::infinity();
    for (const auto& p : parts) next = std::min(next, p.next);
    if (!(next < until)) break;
    // Every event before window_end is safe: nothing from another partition can arrive earlier.
    const double window_end = std::min(until, next + L);
    ++stats.windows;
    for_each_partition([&](std::size_t i) {
      auto& p = parts[i];
      while (!p.queue.empty() && p.queue.top().time < window_end) {
        const Event e = p.queue.pop();
        Context ctx(static_cast<std::uint32_t>(i), e.time, p.local, p.outbox, p.seq);
        handler(e, ctx);
        ++p.events;
        for (const auto& l : p.local) p.queue.push(l);
        p.local.clear();
      }
    });
    // Deliver cross-partition events, each target pulling from every source in parallel; the
    // queue orders them by (time, order), so neither delivery order nor threads matter.
    std::atomic<bool> violated{false};
    for_each_partition([&](std::size_t t) {
      auto& target = parts[t];
      for (auto& source : parts) {
        auto& box = source.outbox[t];
        for (const auto& e : box) {
          if (e.time < window_end) violated.store(true, std::memory_order_relaxed);
          target.queue.push(e);
        }
        box.clear();
      }
      target.next = target.queue.empty() ? std::numeric_limits<double>::infinity() : target.queue.top().time;
    });
    if (violated) throw std::logic_error("engine: a cross-partition event inside the lookahead");
  }
  for (auto& p : parts) {
    stats.events += p.events;
    p.events = 0;
  }
  return stats;
}

RunStats run_sequential(EventQueue& queue, double until, const std::function<void(const Event&, EventQueue&)>& handler) {
  RunStats s;
  while (!queue.empty() && queue.top().time < until) {
    const Event e = queue.pop();
    handler(e, queue);
    ++s.events;
  }
  return s;
}

}  // namespace dlcarbon::engine
