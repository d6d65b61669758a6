#pragma once
// First-principles training cost: operator graph x device roofline x parallelism -> step time,
// MFU, power and energy, with a per-operator breakdown. (DESIGN.md, Physics: Training.)
//
//   StepCost c = cost_training_step(job);       // job.design, job.parallelism, job.hardware
//   if (!c.fits) std::cout << c.reason;         // a result with a reason, not a crash
//   double days = c.steps * c.step_s / 86400;

#include <string>
#include <vector>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon {

struct OpCostRow {
  std::string op, kind, phase;  // phase: fwd, bwd, opt, comm
  double flops = 0, bytes = 0, time_s = 0, energy_j = 0;
  std::string bound;  // compute, memory, communication, launch
  int layer = -1;     // the graph op's block index (-1: embeddings, head, optimizer, communication)
};

// One pipeline device's load a microbatch (docs/output-format.md, `/training/<job>/stages`): the
// layers it holds (the sum of its chunks'; under DualPipe the average of its two stages'), its
// forward and backward (with recomputation) seconds, its layers' exposed tensor-parallel
// collectives and all-to-all, its slot as the schedule runs it, the activations it keeps, and its
// tail: how long after the pipeline's last backward it has reduced its gradients and updated its
// parameters (the step's exposed reduction and update are the largest tail; 1F1B and interleaved).
struct StageCostRow {
  int device = 0;
  double layers = 0;
  double forward_s = 0, backward_s = 0, tensor_comm_s = 0, expert_comm_s = 0, slot_s = 0;
  double activation_bytes = 0;
  double tail_s = 0;
  bool busiest = false;
  double context_comm_s = 0;  // its exposed context-parallel key/value gathers and reduce-scatters
};

struct StepCost {
  bool fits = true;
  std::string reason;  // why it does not fit, when it does not
  std::int64_t data = 1, tensor = 1, pipeline = 1, microbatches = 1;
  double parameters = 0;            // the model's trainable parameters (every expert)
  double active_parameters = 0;     // those a token runs: top_k of a mixture's routed experts
  double tokens_per_step = 0;
  double steps = 0;                 // optimizer steps for the job's tokens
  double step_s = 0;
  double compute_s = 0;             // per step, one device, busy computing
  double tensor_comm_s = 0;         // exposed tensor-parallel all-reduces per step
  double context_comm_s = 0;        // exposed context-parallel key/value gathers and reduce-scatters per step
  double pipeline_comm_s = 0;
  double data_comm_s = 0;           // exposed gradient all-reduce per step
  double contention_s = 0;          // compute slowed by the hidden data-parallel collectives (GPUs)
  double expert_comm_s = 0;         // MoE all-to-all per step
  double optimizer_s = 0;
  double bubble_fraction = 0;       // (p - 1) / (m + p - 1)
  double bubble_s = 0;              // per step: the pipeline's fill and drain slots, idle
  double model_flops_per_step = 0;  // 3 x forward FLOPs of the global batch x (1 - padding) (no recompute)
  double mfu = 0;                   // model FLOPs / (step time x devices x peak)
  double full_attention_flops_ratio = 1;  // forward FLOPs with causal attention's whole matrix / as counted
  double memory_per_device_bytes = 0;
  double energy_per_step_j = 0;     // all devices, device energy only
  double device_power_w = 0;        // average per accelerator, device only
  double power_per_accelerator_w = 0;  // with the host share
  std::vector<OpCostRow> ops;       // one microbatch on one device, plus per-step comm and optimizer
  std::vector<StageCostRow> stages;  // one row a pipeline device (one row without a pipeline)
};

// Where one step's time goes: compute, tensor, pipeline and expert communication, the pipeline
// bubble, exposed data-parallel communication, contention of the hidden collectives, optimizer.
// The components add up to step_s (docs/output-format.md, `/training/<job>/step`).
struct StepComponent {
  std::string component;
  double time_s = 0;
};
std::vector<StepComponent> step_components(const StepCost& c);

// How many times one op row's kernels run in a step on the average device (docs/output-format.md,
// `per_step` of `/training/<job>/ops`): a forward or backward row is one microbatch on the device
// of its stage, so microbatches / pipeline devices; the update and the communication rows are the
// step's already, 1. An op row's energy times this, summed, is the average device's kernel energy
// a step (since session 53).
double runs_per_step(const StepCost& c, const OpCostRow& row);

StepCost cost_training_step(const TrainingJob& job);

}  // namespace dlcarbon

#include <optional>

#include "dlcarbon/accounting.hpp"

namespace dlcarbon {

// Time and energy of a job beyond its productive steps, one row each (Young/Daly first order):
//   checkpoints  n = T0 / interval writes of params x (2 + optimizer state) bytes at the write bandwidth
//   failures     N = (accelerators / MTBF) x T, each losing interval / 2 of work plus the restart
//   evaluation   fraction x T0 at training power
//   runs         everything x runs (hyperparameter trials, architecture search)
struct OverheadRow {
  std::string item;  // training, batch ramp-up, checkpointing, lost work, restarts, evaluation, repeated runs
  double time_s = 0;    // wall time
  double energy_j = 0;  // all accelerators, host share included, before PUE
  double steps = 0;     // the batch ramp-up's row: the optimizer steps its smaller batches add to
                        // StepCost::steps, the tokens at the full batch (0 on the other rows)
};

// A training job, whichever mode it is in: accounting (duration and power given) or
// first-principles (duration and power predicted by cost_training_step).
struct TrainingResult {
  std::string mode;  // "accounting" or "first-principles"
  bool ok = true;
  std::string reason;  // why the job cannot run (does not fit), when !ok
  TrainingFootprint footprint;
  std::optional<StepCost> step;
  std::vector<OverheadRow> overheads;  // first-principles mode: productive training first
};

TrainingResult simulate_training(const TrainingJob& job);

}  // namespace dlcarbon
