#pragma once
// The training step's working state, shared by its phases (docs/hardware-model.md, "Training
// step"; docs/architecture.md). Internal to sim/cost: cost_training_step (training_step.cpp) makes
// one StepModel for a job and runs its phases in order, each in a file of its own:
//
//   layout()            step_layout.cpp     the ranks, the graph, the pipeline partition, the groups,
//                                           what cost_ops() reads and sums
//   cost_ops()          step_ops.cpp        every op of a microbatch on its device: kernels,
//                                           tensor-group collectives, what it holds and keeps
//   run_schedule()      step_schedule.cpp   stage sends, the all-to-all, how the parameters lie over
//                                           the ranks (held_on) and the gradients' precision and
//                                           buckets, the gradient passes and their rows, the busiest
//                                           device, the pipeline's schedule and bubble
//   reduce_and_update() step_reduction.cpp  data-parallel collectives and their overlap, the
//                                           optimizer, the device that ends the step
//   memory(), power()   step_memory.cpp     the memory check; model FLOPs, MFU, power and energy
//
// Each phase reads what the earlier ones set, under the heading of the phase that sets it below;
// a few are added to later (busy_energy and average_busy_s by the gradient passes, c.stages' rows
// by the schedule, the reduction and the memory check). Where layout() finds that the job cannot
// run it sets c.fits and c.reason and returns false, and no other phase runs; the memory check
// sets them too, after which power() still fills the step's figures, as before. The members keep
// the names the single function that preceded this split gave its locals (session 55), so the
// comments and docs that name them still hold; each phase runs once.

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dlcarbon/collectives.hpp"
#include "dlcarbon/graph.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/training_cost.hpp"
#include "pipeline_schedule.hpp"

namespace dlcarbon::cost_detail {

inline bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A group of `ranks` whose members lie `stride` ranks apart in the job's numbering (tensor
// innermost, then context and data, pipeline outermost): the nodes it spans and its ring's bus
// bandwidth, NVLink inside a node (`intra`), the network (`inter` a rank) across (step_layout.cpp).
comm::Group group_of(const TrainingJob& job, std::int64_t ranks, std::int64_t stride, double intra,
                     double inter);
// Whether no axis of the job's torus slice closes with wraparound links (step_layout.cpp).
bool torus_mesh(const TrainingJob& job);
// Optimizer state kept, bytes a parameter (step_reduction.cpp).
double optimizer_state_bytes(const std::string& optimizer);

// One op of a microbatch where it runs (step_ops.cpp): its device and chunk, how its work splits
// over the tensor group, and what its costing decided that the parameters it holds, the
// activations it keeps and its collectives follow.
struct OpPlace {
  int index = 0;  // in the graph
  bool in_layer = false;
  std::size_t owner = 0, chunk_owner = 0;  // its pipeline device and chunk
  bool forward_tail = false;               // runs after its device's last ZeRO-3 gather
  double split = 1;                        // the tensor group's split of its full-width work
  double work_split = 1;                   // of its work, replicated key/value heads counted whole
  double kv_bytes = 0, kv_kept_bytes = 0;  // a fused attention's key and value reads, and what it keeps
  bool eight_bit_op = false, gemm = false;
  bool row_parallel_output = false, row_parallel_shape = false, row_parallel = false;
  bool ffn_activation = false, swiglu = false, stack_end = false, recomputed = false;
  double dgrad_s = 0, wgrad_s = 0;  // its backward's input- and weight-gradient products
};

// A step's data-parallel collectives (step_reduction.cpp): their time on the busiest device, and
// the compute the passes could hide them behind.
struct DataParallelComm {
  double dp = 0;               // every one of them, a step, seconds
  double forward_dp = 0;       // the parameter gathers the forward passes need
  double window = 0;           // the backward passes' time (their tensor-group collectives included)
  double forward_window = 0;   // the forward passes' time the gathers can hide behind
  double exposed_floor = 0;    // what runs after the last backward whatever the overlap (the last bucket)
  double forward_floor = 0;    // what runs before the first forward (the first gathers)
  double embedding_floor = 0;  // device 0's last bucket, the embedding's (ZeRO 0-1)
};

// A memory-bound pass over a device's gradients in every backward (step_schedule.cpp): the
// accumulation of the microbatches' gradients, ZeRO-2's and -3's flat-gradient copy.
struct GradientPass {
  const char* name;
  double share;            // of the microbatches
  double bytes_per_param;  // read and written
  double flops_per_param;
  bool sharded;  // over the sharding group (ZeRO-2 and -3's accumulation) or whole
};

struct StepModel {
  explicit StepModel(const TrainingJob& j) : job(j) {}

  // The phases, in order; layout() returns false where the job cannot run (c.reason says why).
  bool layout();
  // layout()'s parts, in order (each false where the job cannot run).
  bool place_ranks();
  bool build_step_graph();
  bool partition_layers();
  void prepare_ops();
  void cost_ops();
  // cost_ops()'s parts for one op: the parameters it holds, what it keeps, its collectives.
  void hold_parameters(const graph::Op& op, const OpPlace& r);
  void keep_activations(const graph::Op& op, const OpPlace& r);
  void tensor_collectives(const graph::Op& op, const OpPlace& r);
  void run_schedule();
  // run_schedule()'s parts, in order.
  void stage_sends();
  void expert_all_to_all();
  void parameter_shares();
  void gradient_passes();
  void pick_busiest();
  void run_uneven_chunks();
  void gradient_pass_rows();
  void pipeline_bubble();
  void reduce_and_update();
  // reduce_and_update()'s parts: the collectives of the ZeRO stage and the experts' copies, and
  // what of them the passes do not hide (c.data_comm_s) and the contention of what they do.
  DataParallelComm data_parallel_collectives() const;
  void expose(const DataParallelComm& q);
  void memory();
  void power();

  // --- derived by several phases ------------------------------------------------------------
  // A device's share of a per-stage quantity: its stage's, or under DualPipe the average of its two.
  double on_device(const std::vector<double>& v, std::size_t d) const;
  // The dense parameters device d holds (split over the tensor group), its experts' (over the
  // expert and tensor groups), and all it holds, sharded over the ZeRO group or whole.
  double dense_on(std::size_t d) const;
  double expert_on(std::size_t d) const;
  double held_on(std::size_t d, bool sharded) const;
  // The busiest device's (held_on).
  double held_per_device(bool sharded) const { return held_on(busiest_device, sharded); }
  // A gradient pass over `params` parameters (step_schedule.cpp).
  hardware::KernelTime pass_time(const GradientPass& pass, double params) const;
  // The collectives of `bytes` in buckets of `bucket` (step_reduction.cpp).
  double bucketed(double bytes, double bucket) const;
  // A layer's position in the graph's order of layers.
  std::size_t position_of(int layer) const;

  const TrainingJob& job;
  StepCost c;

  // --- layout() -------------------------------------------------------------------------------
  Parallelism p;
  hardware::DeviceModel dev;    // at the job's precision
  hardware::DeviceModel dev16;  // at 16 bits, for an 8-bit job's other kernels (else dev)
  std::int64_t n = 0;           // accelerators
  std::int64_t cp = 1;          // context-parallel ranks
  std::int64_t replicas = 1;    // data x context: the ranks that hold the same weights
  std::int64_t shard = 1;       // ZeRO's sharding group
  bool eight_bit = false;
  bool latent_design = false, q_recomputed = false;  // latent attention, a query latent recomputed
  bool gated_ffn = false, parallel_two_norms = false;
  double v_width = 0, qk_width = 0;  // latent attention's value and query/key widths
  double bytes_per_value = 0;        // of activations, weights as gathered, 16-bit gradients
  inline static const std::string sixteen{"bf16"};  // the precision of an 8-bit job's other kernels
  std::int64_t expert_group = 1;
  graph::OpGraph g;
  double eg = 1;  // expert_group
  double expert_params = 0;
  double embedding_params = 0;  // the largest embedding table (its gradient is the backward's last)
  double outside_params = 0;    // outside the layers: the embeddings, an untied head
  double filled = 1;            // 1 - padding
  double tp = 1, pp = 1;
  int layers = 1;
  double intra = 0, inter = 0;  // NVLink's and the network's bandwidth a rank
  comm::Group tp_group, dp_group, cp_group, shard_group, replica_group;
  graph::Fusion fusion{};
  double v = 1;             // interleaved chunks a device
  std::int64_t chunks = 1;  // pipeline x v
  std::vector<std::int64_t> chunk_layers;
  std::vector<int> layer_ids;               // the graph's layers in order
  std::vector<double> device_layers;        // layers a pipeline device holds
  std::vector<int> device_of_layer;         // by layer position
  std::vector<std::size_t> chunk_of_layer;  // by layer position
  int last_main_layer = 0;
  std::size_t devices = 1;  // pipeline devices
  std::size_t chunk_count = 1;
  double overlap_share = 0;  // the share of hidden communication time that contention adds on a GPU
  bool transformer = false, tied = false;
  double vocab_table = 0;
  double kv_heads = 0, q_heads = 0, kv_rank = 0;  // a rank's key/value heads: kv_rank
  bool kv_replicated = false, one_fused_input = false;
  bool paired = false;  // DualPipe over more than one device: two stages a device (on_device)

  // --- cost_ops(): a microbatch's work on each pipeline device (and chunk) ---------------------
  // The ops in graph order: the position of the last layer seen, the vocabulary tables each device
  // holds, and the (input, layer) pairs whose sequence-parallel gather is charged (a parallel
  // block with one norm projects it once, its branches' inputs fused: PaLM).
  int previous_layer = -1;
  std::vector<char> has_input_table, has_output_table;
  std::set<std::pair<int, int>> sp_gathered;
  double busy_energy = 0, average_busy_s = 0;  // the average device's, a microbatch
  double moe_bytes = 0;
  int moe_layers = 0;
  std::vector<double> dev_f, dev_b, dev_tp, dev_moe;
  // Each device's shared-expert kernels, by the all-to-all transfer each runs beside.
  enum { fc1_fwd, fc2_fwd, fc2_bwd, fc1_bwd, fc1_again, fc2_again, shared_windows };
  std::vector<std::array<double, shared_windows>> dev_shared;
  std::vector<double> dev_cp;      // the context group's share of dev_tp
  std::vector<double> dev_tpf;     // the forward pass's share of dev_tp
  std::vector<double> dev_tail_f;  // the forward from the last layer on (dev_f's share)
  std::vector<double> dev_w;       // the weight-gradient products' share of dev_b
  std::vector<double> chunk_f, chunk_work, chunk_saved, chunk_lead;
  std::vector<double> dev_saved, dev_saved_other, dev_saved_lead, dev_stack_end;  // activations kept
  std::vector<double> dev_dense, dev_expert;       // parameters of the ops each device runs
  double input_copies = 0, output_copies = 0;      // copies of each vocabulary table on devices that lack it
  std::vector<double> layer_input, layer_encoder;  // what enters each layer; the encoder's output in it

  // --- run_schedule() ---------------------------------------------------------------------------
  std::vector<double> dev_inputs;    // the inputs of each device's layers, summed
  std::vector<double> chunk_inputs;  // each chunk's
  std::vector<double> dev_pp;      // each device's stage sends, a microbatch
  std::vector<double> dev_a2a;     // each device's exposed all-to-all, a microbatch
  std::vector<GradientPass> passes;
  std::vector<double> dev_acc;  // each device's gradient passes, a backward
  std::vector<double> dev_a2a_contention;
  // The busiest device's, a microbatch: forward, backward, tensor-group collectives (the forward's
  // share), the context group's share.
  double fwd_s = 0, bwd_s = 0, tp_comm = 0, tp_forward = 0, cp_comm = 0;
  double pp_comm = 0, moe_comm = 0;  // the busiest device's stage sends and all-to-all, a microbatch
  std::int64_t expert_stride = 1;
  double et = 1, expert_copies = 1, expert_shard = 1, core_copies = 1;
  double grad_value_bytes = 0, grad_bucket = 0, param_bucket = 0;
  double busiest_share = 0;
  std::size_t busiest_device = 0;
  PipelineRun schedule;  // interleaved with uneven chunks, run op by op
  double dense_per_device = 0, expert_per_device = 0;
  double mb = 1, slot = 0;
  double overlapped = 0;  // DualPipe: the all-to-all and stage sends hidden under compute, a slot

  // --- reduce_and_update() -----------------------------------------------------------------------
  double state_bytes = 0, traffic_bytes = 0;  // the optimizer's, a parameter
};

}  // namespace dlcarbon::cost_detail
