// The training step's fourth phase (step_model.hpp): the data-parallel collectives (ZeRO 0-3,
// hybrid sharding, the experts' copies) and what of them the passes hide, a shared vocabulary
// table's reduction, the optimizer, and the device that ends the step.

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "step_model.hpp"

namespace dlcarbon::cost_detail {

// Optimizer state kept (bytes per parameter) and moved per step, mixed precision with fp32 master
// weights: Adam keeps master, m, v (12 B) and moves ~28 B; Adafactor keeps the master and
// factored second moments (~4 B) and moves ~16 B; SGD with momentum 8 B and 20 B; Adagrad
// (TensorFlow's AdagradOptimizer, bilm-tf's) the same as SGD with momentum: the master and one
// accumulator of squared gradients, and an update that reads the weight, the gradient and the
// accumulator and writes the weight and the accumulator (since session 47).
double optimizer_state_bytes(const std::string& optimizer) {
  return optimizer == "adam" ? 12 : (optimizer == "adafactor" ? 4 : 8);
}

namespace {

// Besides the update itself, each step's optimizer phase reads the gradients once for their norm
// (clipping by global norm: BERT's optimization.py, Megatron-LM's clip_grad, GPT-3 and LLaMA at
// 1.0; Adafactor's update clipping), copies the fp32 master weights back to the compute-precision
// weights under mixed precision (read 4, write p: Megatron-LM's _copy_main_params_to_model_params),
// and under fp16's loss scaling unscales the gradients and checks them for overflow (read and
// write p: _unscale_main_grads_and_check_for_nan). p: bytes of the compute precision; g: of the
// gradients (`gradient_precision`: Megatron-LM's fp32 under bf16 reads them at 4 B). Where the
// clipping scales every gradient whatever the norm (`gradient_clipping: always`: TensorFlow's
// clip_by_global_norm, PyTorch's clip_grad_norm_), a pass more reads and writes them (2g; since
// session 49, a review).
double optimizer_traffic_bytes(const std::string& optimizer, double p, bool loss_scaling, double g, bool clip_always) {
  const double update = optimizer == "adam" ? 28 : (optimizer == "adafactor" ? 16 : 20);
  const double norm = g;  // the gradients at their own precision (g bytes)
  const double master_copy = p < 4 ? 4 + p : 0;
  const double unscale = loss_scaling ? 2 * g : 0;
  const double clip = clip_always ? 2 * g : 0;
  return update + norm + master_copy + unscale + clip;
}

}  // namespace

// Collectives for `bytes` in buckets of `bucket`. Megatron-Core buckets only a device's first
// interleaved chunk, each later chunk's gradients one collective (get_model's
// disable_bucketing=(model_chunk_idx > 0)): v - 1 more, the chunks taken as equal.
// Without overlap it makes one bucket of each chunk's (`if not overlap_grad_reduce: bucket_size =
// None`, in the DDP that wraps each chunk).
// (Its later pipeline stages reduce unbucketed too, pp_rank > 0: their reductions, inside the
// drain's slack, are taken as the busiest device's, scaled.)
double StepModel::bucketed(double bytes, double bucket) const {
  if (p.megatron_buckets && !p.overlap_communication) return v;  // each chunk's own DDP, one bucket
  return p.megatron_buckets && v > 1 ? (v - 1) + std::ceil(bytes / v / bucket) : std::ceil(bytes / bucket);
}

DataParallelComm StepModel::data_parallel_collectives() const {
  DataParallelComm q;
  // (dense_per_device and grad_value_bytes: step_schedule.cpp, with the accumulation pass.)
  const double grad_bytes = dense_per_device * grad_value_bytes;
  const double param_bytes = dense_per_device * bytes_per_value;
  // Gradients, m microbatches a step (a ring all-reduce is a reduce-scatter and an all-gather,
  // each half of its time):
  //   ZeRO 0-1: accumulated locally, all-reduced once a step in 25 MB buckets (ZeRO-1:
  //             reduce-scatter, then the updated parameters all-gathered), hidden behind the last
  //             microbatch's backward (ZeRO-1's gather behind the next step's first forward);
  //   ZeRO-2:   gradients are sharded, so reduce-scattered after every microbatch's backward,
  //             behind m backwards, and the updated parameters all-gathered once, behind the next
  //             step's first forward;
  //   ZeRO-3:   parameters gathered before every microbatch's forward and backward, gradients
  //             reduce-scattered after each backward: 3m halves, each gather prefetched behind
  //             the layers before it. The forward's gathers can hide only behind the forward, and
  //             the backward's gathers and reductions only behind the backward: a gradient exists
  //             only once its layer's backward has run, and the next forward needs the step's
  //             reduced gradients. Each pass exposes what its compute cannot cover.
  //             Hybrid sharding (shard_group): these run within groups of `shard` ranks, and after
  //             each reduce-scatter the group's gradient shard (1 / shard of the gradients) is
  //             all-reduced across the data / shard groups (PyTorch HYBRID_SHARD, layer by layer
  //             behind the backward, every microbatch as its reduce-scatter).
  // ZeRO-2 and -3 communicate layer by layer (one collective per layer on this stage, and one for
  // the embeddings and head), ZeRO 0-1 in gradient buckets; each collective pays its start-up.
  const double m = static_cast<double>(c.microbatches);
  const double units = busiest_share * static_cast<double>(layers) + 1;
  using comm::Collective;
  // A pass's time, its tensor-group collectives included: a data-parallel collective on its own
  // stream runs beside them as beside the kernels (NCCL's kernels for another communicator, over
  // the network where the data ranks sit in other nodes), as the drain's slack below counts the
  // backward (since session 49, a review: the compute alone, which left LLaMA 65B's backward's six
  // sequence-parallel collectives a layer out of the window).
  const double bwd_pass = bwd_s + std::max(0.0, tp_comm - tp_forward), fwd_pass = fwd_s + tp_forward;
  q.window = bwd_pass;
  // ZeRO-2 and -3 reduce and gather unit by unit (a layer and the rest): a first gather has no
  // compute before it to hide behind (the first unit's parameters are needed first), and a last
  // reduce-scatter none after it (since session 35, from a review; before, both could be hidden
  // whole: about 0.3 % of a 1.3B step on two nodes); ZeRO-3's each microbatch, ZeRO-2's gather
  // once a step and its reduce-scatter each microbatch (below).
  // The unit gathered first and reduced last is the root one (FSDP's), which holds the embedding
  // table on the device that runs it: at least that table's share, else the average unit.
  // (Without a pipeline the root holds all that lies outside the layers, an untied head too: FSDP's
  // auto-wrapping wraps each layer and leaves the rest to the root; since session 49, a review.)
  const bool runs_embeddings = busiest_device == 0 || (p.dualpipe && busiest_device == devices - 1);
  const double root_params = runs_embeddings ? (devices == 1 ? outside_params : embedding_params) / tp : 0.0;
  const double first_gather_bytes = std::min(param_bytes, std::max(param_bytes / units, root_params * bytes_per_value));
  const double last_reduce_bytes = std::min(grad_bytes, std::max(grad_bytes / units, root_params * grad_value_bytes));
  if (p.zero_stage == 2) {
    // The updated parameters are gathered after the optimizer: behind the next step's first
    // forward at best (as ZeRO-3's forward gathers), not behind a backward.
    const double gather = comm::collectives_s(Collective::all_gather, param_bytes, units, dp_group);
    q.dp = m * comm::collectives_s(Collective::reduce_scatter, grad_bytes, units, dp_group) + gather;
    q.forward_dp = gather;
    q.forward_window = fwd_pass;
    q.window = m * bwd_pass;
    q.forward_floor = comm::collective_s(Collective::all_gather, first_gather_bytes, dp_group);
    // Each microbatch's backward ends waiting on its last reduce-scatter (DeepSpeed's ZeRO-2
    // epilogue, FSDP's post-backward callback; since session 46, a review: once a step).
    q.exposed_floor = m * comm::collective_s(Collective::reduce_scatter, last_reduce_bytes, dp_group);
  } else if (p.zero_stage == 3) {
    const double gather = m * comm::collectives_s(Collective::all_gather, param_bytes, units, shard_group);
    // The backward gathers every unit again but the root, which FSDP keeps gathered from its forward
    // to its backward (FSDP's and FairScale's reshard_after_forward, False for the root unit: "its
    // parameters would typically be immediately all-gathered for backward"; since session 46, a
    // review: all of them, about 1 % of LLaMA 7B's step).
    // (The root unit is the one gathered first, at least the embedding table: the rest re-gathered.)
    const double regather = m * comm::collectives_s(Collective::all_gather, std::max(0.0, param_bytes - first_gather_bytes), units - 1, shard_group);
    double reduce = m * comm::collectives_s(Collective::reduce_scatter, grad_bytes, units, shard_group);
    if (shard < replicas) {
      reduce += m * comm::collectives_s(Collective::all_reduce, grad_bytes / static_cast<double>(shard), units, replica_group);
    }
    q.dp = gather + regather + reduce;
    q.forward_dp = gather;
    // The last layer's forward and the head's run after the last gather: they hide nothing (since
    // session 49, a review; where the gathers bound the forward, about 1 % of LLaMA 7B's step).
    q.forward_window = m * std::max(0.0, fwd_pass - on_device(dev_tail_f, busiest_device));
    q.window = m * bwd_pass;
    // Every microbatch gathers the root unit again before its forward (FSDP frees it after the
    // backward; DeepSpeed's ZeRO-3 releases it) and waits on its last reduce-scatter after its
    // backward (FSDP's _post_backward_final_callback): both exposed once a microbatch (since
    // session 46, a review: once a step). So are the first layer's gather, issued behind the
    // root's with only the embedding lookup between them, and its reduce-scatter, with only the
    // embedding's backward after it (since session 49, a review: one unit at each end).
    const double unit_bytes = units > 1 ? std::max(0.0, param_bytes - first_gather_bytes) / (units - 1) : 0.0;
    const double unit_grad_bytes = units > 1 ? std::max(0.0, grad_bytes - last_reduce_bytes) / (units - 1) : 0.0;
    const auto reduced = [&](double bytes) {
      return bytes <= 0 ? 0.0
                        : comm::collective_s(Collective::reduce_scatter, bytes, shard_group) +
                              (shard < replicas ? comm::collective_s(Collective::all_reduce, bytes / static_cast<double>(shard), replica_group) : 0.0);
    };
    q.forward_floor = m * (comm::collective_s(Collective::all_gather, first_gather_bytes, shard_group) +
                         (unit_bytes > 0 ? comm::collective_s(Collective::all_gather, unit_bytes, shard_group) : 0.0));
    q.exposed_floor = m * (reduced(last_reduce_bytes) + reduced(unit_grad_bytes));
  } else {
    q.dp = comm::collectives_s(Collective::all_reduce, grad_bytes, bucketed(grad_bytes, grad_bucket), dp_group);
    const bool whole = p.gradient_reduction == "all_reduce";
    if (p.zero_stage == 1) {
      // ZeRO-1 reduce-scatters the gradients and, after the optimizer, all-gathers the updated
      // parameters, each at its own precision: the halves of an all-reduce in volume, but each on
      // NCCL's ring alone (tuning.cc runs reduce-scatter and all-gather on no tree; since session
      // 30, before half an all-reduce, which may take the tree). The gather runs behind the next
      // step's first forward at best, as ZeRO-2's. DeepSpeed's BF16_Optimizer under its pipeline
      // engine all-reduces the whole gradient instead (`gradient_reduction: all_reduce`).
      const double gather = comm::collectives_s(Collective::all_gather, param_bytes,
                                                bucketed(param_bytes, param_bucket), dp_group);
      if (!whole) {
        q.dp = comm::collectives_s(Collective::reduce_scatter, grad_bytes, bucketed(grad_bytes, grad_bucket), dp_group);
      }
      q.dp += gather;
      q.forward_dp = gather;
      q.forward_window = fwd_pass;
      // DeepSpeed's BF16_Optimizer gathers the updated parameters inside its step() (step ->
      // update_lp_params -> all_gather_dp_groups, deepspeed/runtime/bf16_optimizer.py): the next
      // forward starts when the gather ends, exposed whole (since session 35, from a review).
      if (whole) q.forward_floor = gather;
    }
    // The last bucket can overlap nothing: its all-reduce starts when the backward pass ends. It
    // holds the gradients produced last, the input embedding's (a table larger than a bucket is a
    // bucket of its own, as in PyTorch DDP), split over the tensor group as Megatron-LM splits it.
    // (Only on the device that runs the embeddings: another's last gradients are its first layer's.)
    // (Interleaved, at most the first chunk's gradients, the chunks taken as equal: a later chunk's
    // reduce behind the backwards after them; since session 49, a review.)
    const double last = std::min(grad_bytes / v, std::max(grad_bucket, runs_embeddings ? embedding_params / tp * grad_value_bytes : 0.0));
    // (Under ZeRO-1 only its reduce-scatter.)
    const Collective last_kind = p.zero_stage == 1 && !whole ? Collective::reduce_scatter : Collective::all_reduce;
    q.exposed_floor = comm::collective_s(last_kind, last, dp_group);
    // Device 0's own last bucket, the embedding's, for the device that ends the step (below).
    const double grad_bytes_0 = dense_on(0) * grad_value_bytes;
    q.embedding_floor = comm::collective_s(
        last_kind, std::min(grad_bytes_0 / v, std::max(grad_bucket, embedding_params / tp * grad_value_bytes)), dp_group);
  }
  if (expert_params > 0 && expert_copies > 1) {
    // Each expert is replicated on data / G ranks, and on the tensor ranks too where they hold
    // whole experts (expert_tensor x G ranks apart, Megatron-Core's expert data-parallel group):
    // its gradients are reduced among them, in buckets (ZeRO 0-1) or layer by layer (2-3), behind
    // the backward like the rest. ZeRO shards the experts'
    // state over these copies (expert_shard, step_schedule.cpp), so it moves them as it moves the dense
    // parameters (since session 33; before, one all-reduce whatever the stage): ZeRO-1
    // reduce-scatters the gradients and gathers the updated weights once a step, ZeRO-2 each
    // microbatch's reduce-scatter, ZeRO-3 also gathers the weights forward and backward.
    const double expert_grad_bytes = expert_per_device * grad_value_bytes;
    const double expert_param_bytes = expert_per_device * bytes_per_value;
    const comm::Group expert_replicas = group_of(job, static_cast<std::int64_t>(expert_copies + 0.5), expert_stride * expert_group, intra, inter);
    const double buckets = bucketed(expert_grad_bytes, grad_bucket);
    const double gather_buckets = bucketed(expert_param_bytes, param_bucket);
    if (p.zero_stage == 0 || (p.zero_stage == 1 && p.gradient_reduction == "all_reduce")) {
      q.dp += comm::collectives_s(Collective::all_reduce, expert_grad_bytes, buckets, expert_replicas);
    }
    // The gathers run behind the forward pass, as the dense parameters' (above).
    if (p.zero_stage == 1) {
      if (p.gradient_reduction != "all_reduce") q.dp += comm::collectives_s(Collective::reduce_scatter, expert_grad_bytes, buckets, expert_replicas);
      const double gather = comm::collectives_s(Collective::all_gather, expert_param_bytes, gather_buckets, expert_replicas);
      q.dp += gather;
      q.forward_dp += gather;
    }
    if (p.zero_stage == 2) {
      const double gather = comm::collectives_s(Collective::all_gather, expert_param_bytes, units, expert_replicas);
      q.dp += m * comm::collectives_s(Collective::reduce_scatter, expert_grad_bytes, units, expert_replicas) + gather;
      q.forward_dp += gather;
    }
    if (p.zero_stage == 3) {
      const double gather = m * comm::collectives_s(Collective::all_gather, expert_param_bytes, units, expert_replicas);
      q.dp += m * comm::collectives_s(Collective::reduce_scatter, expert_grad_bytes, units, expert_replicas) + 2 * gather;
      q.forward_dp += gather;
    }
  }
  return q;
}

void StepModel::expose(const DataParallelComm& q) {
  // Hidden communication is not free on GPUs: NCCL's kernels take SMs and memory bandwidth from
  // the compute they overlap, which Lee et al. 2025 (arXiv:2507.03114) measured 18.9 % slower on
  // average (A100, H100, MI250, MI210; GPT and LLaMA training; 40 % at most). While a hidden
  // collective runs, compute advances at 1 / (1 + s), so the step grows by dp s / (1 + s), or by
  // what is exposed once the compute, slowed, no longer covers the communication.
  // Each pass is costed on its own: its exposed share, then the contention of what it hides.
  if (p.overlap_communication) {
    // The first gathers (ZeRO 2-3: forward_floor) run before any compute, exposed; the rest of the
    // forward's gathers under the forward's compute.
    const double head = std::min(q.forward_dp, q.forward_floor), forward_rest = q.forward_dp - head;
    double forward_rest_exposed = std::max(0.0, forward_rest - q.forward_window);
    // The last bucket runs after the backward, exposed and hiding nothing; the rest of the
    // backward's communication runs under the backward's compute.
    const double backward_dp = q.dp - q.forward_dp;
    const double tail = std::min(backward_dp, q.exposed_floor), rest = backward_dp - tail;
    double rest_exposed = std::max(0.0, rest - q.window);
    // Interleaved chunks (ZeRO 0-1) reduce and gather chunk by chunk, each behind the passes of the
    // chunks that run after it (cost_detail::chunked_reduce_exposed; since session 49, a review:
    // the whole device's behind one microbatch's backward, whatever v).
    if (v > 1 && p.zero_stage <= 1) {
      const auto pl = static_cast<std::int64_t>(c.pipeline), device_chunks = static_cast<std::int64_t>(v);
      rest_exposed = std::max(0.0, cost_detail::chunked_reduce_exposed(backward_dp, q.exposed_floor, q.window / v, pl, device_chunks) - tail);
      if (head == 0) forward_rest_exposed = cost_detail::chunked_gather_exposed(forward_rest, q.forward_window / v, pl, device_chunks);
    }
    const double forward_exposed = head + forward_rest_exposed;
    c.data_comm_s = forward_exposed + tail + rest_exposed;
    c.contention_s = std::max(0.0, forward_rest * overlap_share - forward_rest_exposed) + std::max(0.0, rest * overlap_share - rest_exposed);
  } else {
    c.data_comm_s = q.dp;
  }
}

void StepModel::reduce_and_update() {
  using comm::Collective;
  const DataParallelComm q = data_parallel_collectives();
  expose(q);
  // --- the shared tables' reduction, the optimizer, the device that ends the step ---------------
  // A vocabulary table held on two stages (a tied head's copy on the last, as Megatron-LM places
  // it) has its gradients summed between them once a step, after the data-parallel reduction and
  // before the optimizer (finalize_model_grads: _allreduce_word_embedding_grads), exposed: an
  // all-reduce of the table's share of the tensor group over the stages that hold it, first and
  // last (tensor x data x (p - 1) ranks apart: in one node only where the whole job is).
  double table_comm = 0;
  for (const double copies : {input_copies, output_copies}) {
    if (copies <= 0) continue;
    const auto holders = static_cast<std::int64_t>(copies) + 1;
    const bool one_node = c.tensor * replicas * c.pipeline <= job.hardware.node_accelerators;
    const auto stride = one_node ? std::int64_t{1}
                                 : static_cast<std::int64_t>(c.tensor * replicas) * std::max<std::int64_t>(1, static_cast<std::int64_t>(devices) - 1);
    table_comm += comm::collective_s(Collective::all_reduce, vocab_table / tp * grad_value_bytes,
                                     group_of(job, holders, stride, intra, inter));
  }
  c.data_comm_s += table_comm;
  // DualPipe's hidden all-to-all and sends slow the compute they run under in the same way (DeepSeek-V3
  // gives them 20 of the H800's 132 SMs, 15 %, Sec. 3.2.2).
  c.contention_s += mb * overlapped * overlap_share;
  // And the shared experts beside the all-to-all (`shared_expert_overlap`, step_schedule.cpp), the busiest
  // device's.
  c.contention_s += mb * dev_a2a_contention[busiest_device];
  state_bytes = optimizer_state_bytes(p.optimizer);
  traffic_bytes =
      optimizer_traffic_bytes(p.optimizer, bytes_per_value, job.precision == "fp16", grad_value_bytes, p.gradient_clipping == "always");
  const double opt_params = held_per_device(p.zero_stage >= 1);
  const auto opt = hardware::kernel_time(dev, "fp32", 12 * opt_params, traffic_bytes * opt_params, false);
  // DeepSpeed 0.3's stage-1 optimizer (`gradient_reduction: stage1_copies`; zero/stage1.py, GPT-NeoX's
  // DeeperSpeed), over every gradient a device holds, not its shard alone: the flattening copy into
  // per-rank sub-partitions (g in, g out), their in-place division (g, g) and c10d's flattening of the
  // list for the reduce-scatter (g, g); in step() the overflow check's `x.float().sum()` and the
  // norm's `p.grad.data.float().norm()` (each g in, 4 out, 4 in); the parameters' all-gather copied
  // back from c10d's flat buffer (p, p): 8g + 16 + 2p bytes a parameter (the per-tensor kernels'
  // launches and host synchronisations left out). Since session 51.
  const bool stage1_copies = p.zero_stage == 1 && p.gradient_reduction == "stage1_copies";
  const auto stage1_bytes = [&](double held) { return stage1_copies ? (8 * grad_value_bytes + 16 + 2 * bytes_per_value) * held : 0.0; };
  const auto stage1_s = [&](double held) {
    return stage1_copies ? hardware::kernel_time(dev, "fp32", 0, stage1_bytes(held), false).seconds : 0.0;
  };
  c.optimizer_s = opt.seconds + stage1_s(held_per_device(false));
  c.ops.push_back({"optimizer." + p.optimizer, "elementwise", "opt", 12 * opt_params, traffic_bytes * opt_params, opt.seconds,
                   hardware::kernel_energy(dev, "fp32", 12 * opt_params, traffic_bytes * opt_params, opt.seconds, false),
                   opt.memory_bound ? "memory" : "compute"});
  if (stage1_copies) {
    const double held = held_per_device(false), s = stage1_s(held);
    c.ops.push_back({"optimizer.stage1_copies", "elementwise", "opt", 0, stage1_bytes(held), s,
                     hardware::kernel_energy(dev, "fp32", 0, stage1_bytes(held), s, false), "memory"});
  }
  if (c.tensor_comm_s > 0) c.ops.push_back({"tensor.allreduce", "communication", "comm", 0, 0, c.tensor_comm_s, 0, "communication"});
  if (c.context_comm_s > 0) c.ops.push_back({"context.kv_gather", "communication", "comm", 0, 0, c.context_comm_s, 0, "communication"});
  if (pp_comm > 0) c.ops.push_back({"pipeline.p2p", "communication", "comm", 0, 0, c.pipeline_comm_s, 0, "communication"});
  if (moe_comm > 0) c.ops.push_back({"experts.all_to_all", "communication", "comm", 0, 0, c.expert_comm_s, 0, "communication"});
  if (q.dp > 0) c.ops.push_back({"data.allreduce", "communication", "comm", 0, 0, c.data_comm_s - table_comm, 0, "communication"});
  if (table_comm > 0) c.ops.push_back({"embedding.allreduce", "communication", "comm", 0, 0, table_comm, 0, "communication"});
  if (c.contention_s > 0) c.ops.push_back({"data.overlap", "communication", "comm", 0, 0, c.contention_s, 0, "communication"});

  // The step ends when the last device has reduced its gradients and updated its parameters. The
  // figures above are the busiest device's. Under 1F1B and its interleaved form device 0 runs the
  // pipeline's last backward; device d ends its schedule the last backward chunks of devices
  // 0 .. d-1 earlier (1 / v of each one's backward), then reduces and updates what it holds: its
  // exposed reduction, scaled from the busiest device's by the parameters it holds [assumed: in
  // proportion; start-ups and the window that hides them aside], and its update, costed on its own
  // parameters. Zero-bubble and
  // DualPipe schedules end their devices together (slack 0; DualPipe's two stages a device are
  // its average). The tied table's all-reduce between first and last stage follows either way.
  if (devices > 1 && !p.dualpipe) {
    const double held_busiest = held_on(busiest_device, false);
    const double reduce = c.data_comm_s - table_comm;
    double slack = 0, worst = -1, worst_reduce = reduce, worst_opt = c.optimizer_s;
    double worst_params = opt_params;  // the parameters the ending device updates
    for (std::size_t d = 0; d < devices && held_busiest > 0; ++d) {
      // Uneven chunks: how much earlier than the schedule's end device d ends, from the schedule
      // run op by op.
      if (schedule.ok) slack = schedule.makespan_s - schedule.device_end_s[d];
      const double r = held_on(d, false) / held_busiest;
      // Overlapped, device 0's last bucket (the embedding's gradient) is exposed whatever its share.
      const double own_reduce = d == 0 && p.overlap_communication ? std::max(reduce * r, q.embedding_floor) : reduce * r;
      // Its update costed on its own parameters (since session 42, a review: the busiest device's
      // time scaled by r, launch included, made a 2M-parameter head's SGD 1 ms where it takes 41 us).
      const double own_params = held_on(d, p.zero_stage >= 1);
      const double own_opt = hardware::kernel_time(dev, "fp32", 12 * own_params, traffic_bytes * own_params, false).seconds +
                             stage1_s(held_on(d, false));
      const double tail = std::max(0.0, own_reduce + own_opt - slack);
      c.stages[d].tail_s = tail;
      if (tail > worst) {
        worst = tail;
        worst_params = own_params;
        // The slack is taken from the reduction first: it runs while device 0 still computes.
        worst_reduce = std::max(0.0, own_reduce - slack);
        worst_opt = tail - worst_reduce;
      }
      // The drain reaches device d + 1 after device d's last backward: its first chunk's (chunk d,
      // the share of its layers that chunk holds; all of them under plain 1F1B), with the
      // backward's share of its slot's communication, as the bubble counts the drain (since session
      // 46, a review: its compute alone).
      const double layers_d = c.stages[d].layers;
      const double first_chunk = layers_d > 0 ? static_cast<double>(chunk_layers[d]) / layers_d : 1.0 / v;
      const StageCostRow& st = c.stages[d];
      const double compute = st.forward_s + st.backward_s;
      const double backward_slot = compute > 0 ? st.backward_s + std::max(0.0, st.slot_s - compute) * st.backward_s / compute : 0.0;
      if (!p.zero_bubble) slack += backward_slot * first_chunk;
    }
    c.data_comm_s = worst_reduce + table_comm;
    c.optimizer_s = worst_opt;
    // The ops table's rows follow the device that ends the step.
    for (auto& row : c.ops) {
      if (row.op == "data.allreduce") row.time_s = worst_reduce;
      if (row.op == "optimizer." + p.optimizer) {
        // (Its work too: that device's update.)
        const auto ending = hardware::kernel_time(dev, "fp32", 12 * worst_params, traffic_bytes * worst_params, false);
        row.flops = 12 * worst_params;
        row.bytes = traffic_bytes * worst_params;
        row.energy_j = hardware::kernel_energy(dev, "fp32", row.flops, row.bytes, ending.seconds, false);
        row.time_s = worst_opt;
      }
    }
  }
  c.step_s = mb * slot + c.bubble_s + c.data_comm_s + c.contention_s + c.optimizer_s;
}

}  // namespace dlcarbon::cost_detail
