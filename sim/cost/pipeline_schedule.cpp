#include "pipeline_schedule.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace dlcarbon::cost_detail {

namespace {
struct Step {
  std::int64_t microbatch;
  std::int64_t chunk;  // global: c p + d
  bool forward;
};

std::vector<std::vector<Step>> megatron_order(std::int64_t p, std::int64_t v, std::int64_t m) {
  // Megatron-LM's order (megatron/core/pipeline_parallel/schedules.py, the interleaved schedule):
  // the microbatches in groups of p (the last group what is left), each group through chunk 0, then
  // chunk 1, ... of the device; backwards the same table with the chunks reversed. Device d runs
  // 2 (p - d - 1) + (v - 1) p forwards to warm up (at most all of them; Megatron-LM before 2024 ran
  // every device all warm-up where m = p, its current order does not, nor the closed form's
  // activations in flight; since session 42, a review), then one forward and one backward in
  // turn, then the backwards left. (m a multiple of p, as Megatron-LM requires and the loader
  // checks; another m runs this order too, which may wait on itself: then `ok` is false.)
  std::vector<std::pair<std::int64_t, std::int64_t>> table;  // (microbatch, device chunk)
  table.reserve(static_cast<std::size_t>(m * v));
  for (std::int64_t first = 0; first < m; first += p) {
    const std::int64_t size = std::min(p, m - first);
    for (std::int64_t c = 0; c < v; ++c) {
      for (std::int64_t i = first; i < first + size; ++i) table.emplace_back(i, c);
    }
  }
  const std::int64_t total = m * v;
  std::vector<std::vector<Step>> order(static_cast<std::size_t>(p));
  for (std::int64_t d = 0; d < p; ++d) {
    const std::int64_t warmup = std::min(total, 2 * (p - d - 1) + (v - 1) * p);
    const auto fwd = [&](std::int64_t k) {
      const auto& [i, c] = table[static_cast<std::size_t>(k)];
      return Step{i, c * p + d, true};
    };
    const auto bwd = [&](std::int64_t k) {
      const auto& [i, c] = table[static_cast<std::size_t>(k)];
      return Step{i, (v - 1 - c) * p + d, false};
    };
    auto& o = order[static_cast<std::size_t>(d)];
    o.reserve(static_cast<std::size_t>(2 * total));
    for (std::int64_t k = 0; k < warmup; ++k) o.push_back(fwd(k));
    for (std::int64_t k = 0; k < total - warmup; ++k) {
      o.push_back(fwd(k + warmup));
      o.push_back(bwd(k));
    }
    for (std::int64_t k = total - warmup; k < total; ++k) o.push_back(bwd(k));
  }
  return order;
}

// The most of each set's `held` a device has in flight at once in `order` ([set][device]; empty
// where a set is not one value a chunk).
std::vector<std::vector<double>> peak_of(std::int64_t p, std::int64_t chunks, const std::vector<std::vector<Step>>& order,
                                         const std::vector<std::vector<double>>& held) {
  std::vector<std::vector<double>> peak_held(held.size(), std::vector<double>(static_cast<std::size_t>(p), 0.0));
  for (std::size_t s = 0; s < held.size(); ++s) {
    if (static_cast<std::int64_t>(held[s].size()) != chunks) return {};
    for (std::int64_t d = 0; d < p; ++d) {
      double now = 0, peak = 0;
      for (const Step& st : order[static_cast<std::size_t>(d)]) {
        now += (st.forward ? 1 : -1) * held[s][static_cast<std::size_t>(st.chunk)];
        peak = std::max(peak, now);
      }
      peak_held[s][static_cast<std::size_t>(d)] = peak;
    }
  }
  return peak_held;
}
}  // namespace

std::vector<std::vector<double>> interleaved_peak_held(std::int64_t p, std::int64_t v, std::int64_t m,
                                                       const std::vector<std::vector<double>>& held) {
  if (p < 1 || v < 1 || m < 1) return {};
  return peak_of(p, p * v, megatron_order(p, v, m), held);
}

PipelineRun simulate_interleaved(std::int64_t p, std::int64_t v, std::int64_t m, const std::vector<double>& forward_s,
                                 const std::vector<double>& backward_s, const std::vector<std::vector<double>>& held) {
  PipelineRun run;
  const std::int64_t chunks = p * v;
  if (p < 1 || v < 1 || m < 1 || static_cast<std::int64_t>(forward_s.size()) != chunks ||
      static_cast<std::int64_t>(backward_s.size()) != chunks) {
    return run;
  }
  const std::int64_t total = m * v;
  const std::vector<std::vector<Step>> order = megatron_order(p, v, m);

  // What each device keeps in flight: its order alone decides it.
  run.peak_held = peak_of(p, chunks, order, held);
  if (run.peak_held.size() != held.size()) return run;

  // The times: each device takes its next op once that op's input is ready, in rounds over the
  // devices until none can go on.
  constexpr double kNotYet = -1;
  std::vector<double> fwd_end(static_cast<std::size_t>(chunks * m), kNotYet), bwd_end(static_cast<std::size_t>(chunks * m), kNotYet);
  const auto at = [m](std::int64_t chunk, std::int64_t microbatch) { return static_cast<std::size_t>(chunk * m + microbatch); };
  std::vector<std::size_t> next(static_cast<std::size_t>(p), 0);
  std::vector<double> free_at(static_cast<std::size_t>(p), 0.0);
  std::size_t left = static_cast<std::size_t>(2 * total * p);
  for (bool moved = true; moved && left > 0;) {
    moved = false;
    for (std::int64_t d = 0; d < p; ++d) {
      const auto& o = order[static_cast<std::size_t>(d)];
      auto& k = next[static_cast<std::size_t>(d)];
      auto& t = free_at[static_cast<std::size_t>(d)];
      while (k < o.size()) {
        const Step& st = o[k];
        double ready = 0;
        if (st.forward) {
          if (st.chunk > 0) ready = fwd_end[at(st.chunk - 1, st.microbatch)];
        } else {
          ready = st.chunk + 1 < chunks ? bwd_end[at(st.chunk + 1, st.microbatch)] : fwd_end[at(st.chunk, st.microbatch)];
        }
        if (ready == kNotYet) break;
        const double start = std::max(t, ready);
        const auto j = static_cast<std::size_t>(st.chunk);
        t = start + (st.forward ? forward_s[j] : backward_s[j]);
        (st.forward ? fwd_end : bwd_end)[at(st.chunk, st.microbatch)] = t;
        ++k;
        --left;
        moved = true;
      }
    }
  }
  if (left > 0) return run;
  run.device_end_s = free_at;
  run.makespan_s = *std::max_element(free_at.begin(), free_at.end());
  run.ok = true;
  return run;
}

}  // namespace dlcarbon::cost_detail

namespace dlcarbon::cost_detail {

double chunked_reduce_exposed(double reduce_s, double floor_s, double chunk_s, std::int64_t p, std::int64_t v) {
  const double r = reduce_s / static_cast<double>(v);
  double free_at = -1e300;  // the stream's, relative to the last backward's end
  for (std::int64_t c = v - 1; c >= 1; --c) {
    free_at = std::max(free_at, -static_cast<double>(c * p) * chunk_s) + r;
  }
  const double end = std::max(free_at, -chunk_s) + r;
  return std::max({0.0, end, std::min(reduce_s, floor_s)});
}

double chunked_gather_exposed(double gather_s, double chunk_s, std::int64_t p, std::int64_t v) {
  const double g = gather_s / static_cast<double>(v);
  // Chunk 0: its buckets gathered ahead of its layers, the forward waiting past its own time.
  double delay = std::max(0.0, g - chunk_s);
  double free_at = g;
  for (std::int64_t c = 1; c < v; ++c) {
    const double launch = c == 1 ? 0.0 : static_cast<double>((c - 1) * p) * chunk_s + delay;
    free_at = std::max(free_at, launch) + g;
    const double needed = static_cast<double>(c * p) * chunk_s + delay;
    delay += std::max(0.0, free_at - needed);
  }
  return delay;
}

}  // namespace dlcarbon::cost_detail
