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

// The data-parallel collectives of a device's v interleaved chunks, each run when its chunk is
// ready, on one stream, one after another (Megatron-Core's overlap_grad_reduce and
// overlap_param_gather, a chunk's gradients reduced at its last backward; PyTorch's pipelining
// synchronises each stage's the same way). Times are a microbatch's pass through one chunk
// (`chunk_s`: the device's pass / v) and each chunk's collective (the whole / v, chunks taken as
// equal); p stages. With v = 1 both give the non-interleaved rule: what the pass cannot cover.
//
// Backward: the last group of p microbatches runs chunk v-1's backwards first and chunk 0's last
// (Megatron-LM's get_model_chunk_id), so chunk c >= 1 is reduced from c p chunk-backwards before
// the pass ends; chunk 0, bucketed, under its own last backward; its last bucket (`floor`) after
// it. Returns the time the reductions run past the last backward.
double chunked_reduce_exposed(double reduce_s, double floor_s, double chunk_s, std::int64_t p, std::int64_t v);
// Forward: chunk 0's gather, bucketed, under its own first forward; chunk 1's from the step's
// start; chunk c >= 2's from chunk c-1's first forward (Megatron-LM's param_sync_func, one chunk
// ahead), each needed at chunk c's first forward, c p chunk-forwards in; what the forward waits.
double chunked_gather_exposed(double gather_s, double chunk_s, std::int64_t p, std::int64_t v);

}  // namespace dlcarbon::cost_detail
