#pragma once
// Megatron-LM's interleaved 1F1B schedule run op by op (docs/hardware-model.md, "Pipeline"): where
// a device's chunks differ in time (a `stage_layers` with empty or unequal chunks), the closed form
// of the fill and drain, (p - 1) / v of a device's slot, does not hold. Internal to sim/cost.

#include <cstdint>
#include <vector>

namespace dlcarbon::cost_detail {

struct PipelineRun {
  bool ok = false;                             // false: the order waited on itself (not expected)
  double makespan_s = 0;                       // the first forward's start to the last backward's end
  std::vector<double> device_end_s;            // each device's last backward's end
  std::vector<std::vector<double>> peak_held;  // [set][device]: the most of a set's `held` in flight at once
};

// p devices, v chunks each (chunk j on device j mod p, Megatron-LM's virtual pipeline), m
// microbatches a step. forward_s[j] and backward_s[j]: a microbatch's time in chunk j (its share of
// the device's slot, communication included); held[set][j]: what a forward of chunk j keeps until
// that microbatch's backward of it. Each device runs Megatron-LM's order (below) and starts an op
// when its input is ready: a forward when the previous chunk's forward of that microbatch has
// ended, a backward when the next chunk's backward has (the last chunk's: its own forward).
// Only what the order keeps in flight (PipelineRun::peak_held), without the times.
std::vector<std::vector<double>> interleaved_peak_held(std::int64_t p, std::int64_t v, std::int64_t m,
                                                       const std::vector<std::vector<double>>& held);

PipelineRun simulate_interleaved(std::int64_t p, std::int64_t v, std::int64_t m, const std::vector<double>& forward_s,
                                 const std::vector<double>& backward_s, const std::vector<std::vector<double>>& held);

}  // namespace dlcarbon::cost_detail
