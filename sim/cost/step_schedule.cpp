// The training step's third phase (step_model.hpp): the pipeline's stage sends, the experts'
// all-to-all, the passes over each device's gradients in every backward, the busiest device, and
// the schedule (1F1B, interleaved, zero-bubble, DualPipe) with its bubble; and the shares of the
// parameters each device holds, which the later phases read.

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "step_model.hpp"

namespace dlcarbon::cost_detail {
namespace {

// Gradients of data parallelism without ZeRO-3 sharding go out in buckets as the backward pass
// produces them: PyTorch DDP's default bucket (bucket_cap_mb = 25).
constexpr double kGradientBucketBytes = 25e6;

}  // namespace

// A device's share of a per-stage quantity: its stage's, or under DualPipe the average of its two.
double StepModel::on_device(const std::vector<double>& values, std::size_t d) const {
  return paired ? 0.5 * (values[d] + values[devices - 1 - d]) : values[d];
}

// Each device holds the parameters of the ops it runs (its layers', and the embeddings' on the
// first, the head's on the last), split over the tensor group, and the copies of shared
// vocabulary tables (step_ops.cpp; their gradients are all-reduced in step_reduction.cpp).
// Experts are sharded over the expert-parallel group too: each device holds 1 / G of them, whose
// gradients are all-reduced only among the data / G ranks that hold the same experts
// (step_reduction.cpp). Under DualPipe a device holds two stages: their average here, doubled
// where the weights and gradients are counted (step_memory.cpp).
double StepModel::dense_on(std::size_t d) const { return on_device(dev_dense, d) / tp; }

double StepModel::expert_on(std::size_t d) const { return on_device(dev_expert, d) / (et * eg); }

double StepModel::held_on(std::size_t d, bool sharded) const {
  return core_copies * dense_on(d) / (sharded ? static_cast<double>(shard) : 1.0) +
         expert_on(d) / (sharded ? expert_shard : 1.0);
}

hardware::KernelTime StepModel::pass_time(const GradientPass& pass, double params) const {
  return hardware::kernel_time(dev16, "fp32", pass.flops_per_param * params, pass.bytes_per_param * params, false);
}

void StepModel::run_schedule() {
  stage_sends();
  expert_all_to_all();
  parameter_shares();
  gradient_passes();
  pick_busiest();
  run_uneven_chunks();
  gradient_pass_rows();
  pipeline_bubble();
}

// The pipeline's stage sends a microbatch, each device's (dev_pp), and what its layers receive.
void StepModel::stage_sends() {
  // Pipeline: each microbatch crosses a stage boundary forward and backward.
  // Each tensor rank sends 1/t of the boundary (Megatron's scatter-gather, Narayanan et al. 2021);
  // interleaved, a microbatch crosses v times as many stage boundaries.
  // Adjacent stages are tensor x data ranks apart (pipeline outermost): a boundary crosses the
  // network where any rank of a device and its peer on the next lie on different nodes, always
  // when tensor x data is a node or more, else at the boundaries a node ends at (since session 35,
  // from a review; before, every boundary took the first one's link).
  const std::int64_t node_size = std::max<std::int64_t>(1, job.hardware.node_accelerators);
  const std::int64_t stride = c.tensor * replicas;
  const auto crosses = [&](std::int64_t a, std::int64_t b) {  // devices a and b of the pipeline
    if (stride >= node_size) return true;
    for (std::int64_t r = a * stride; r < (a + 1) * stride; ++r) {
      if (r / node_size != (r + (b - a) * stride) / node_size) return true;
    }
    return false;
  };
  // What crosses a stage boundary: a layer's input, the largest of them (a decoder's are all one
  // size).
  const double boundary_bytes = layer_input.empty() ? 0.0 : *std::max_element(layer_input.begin(), layer_input.end());
  dev_inputs.assign(devices, 0.0);  // the inputs of each device's layers, summed
  chunk_inputs.assign(chunk_count, 0.0);
  std::vector<char> encoder_kept(chunk_count, 0);
  for (std::size_t pos = 0; pos < layer_input.size() && pos < device_of_layer.size(); ++pos) {
    // The encoder's output a decoder layer reads is one tensor for the layers of a chunk, received
    // with the chunk's input: a checkpoint of each layer holds it once, not once a layer (since
    // session 44, a review: full recomputation had kept it for every decoder layer).
    const std::size_t chunk = chunk_of_layer[pos];
    const double kept = layer_input[pos] - (encoder_kept[chunk] ? layer_encoder[pos] : 0.0);
    if (layer_encoder[pos] > 0) encoder_kept[chunk] = 1;
    dev_inputs[static_cast<std::size_t>(device_of_layer[pos])] += kept;
    chunk_inputs[chunk_of_layer[pos]] += kept;
  }
  // Each device exchanges with each neighbour once a microbatch and chunk (Megatron-LM's batched
  // send_forward_recv_backward and send_backward_recv_forward, each a send and a receive at once
  // over a full-duplex link): over the boundary after it and the one before it. An end device has
  // one such boundary (the first device's send_backward_recv_forward and the last's
  // send_forward_recv_backward do nothing; since session 46, a review: counted twice); interleaved,
  // v - 1 of its chunks also exchange over the wrap-around between the last device and the first
  // (the last chunk's output goes to the loss, the first chunk's input comes from the data), and v
  // over its inner boundary.
  dev_pp.assign(devices, 0.0);
  if (c.pipeline > 1) {
    const std::int64_t last = static_cast<std::int64_t>(devices) - 1;
    const auto link = [&](std::int64_t a, std::int64_t b) { return crosses(a, b) ? inter : intra; };
    for (std::int64_t d = 0; d <= last; ++d) {
      double sends_s = 0;  // a microbatch's sends, seconds per byte
      if (d > 0 && d < last) {
        sends_s = v / link(d, d + 1) + v / link(d, d - 1);
      } else {
        const std::int64_t inner = d == 0 ? 1 : last - 1, wrap = d == 0 ? last : 0;
        sends_s = v / link(d, inner) + (v > 1 ? (v - 1) / link(d, wrap) : 0.0);
      }
      // DeepSpeed's blocking sends and receives: each of a boundary's two transfers in turn (since
      // session 47, a review; p2p.send: "Doesn't support async_op true").
      const double transfers = p.pipeline_p2p == "blocking" ? 2.0 : 1.0;
      dev_pp[static_cast<std::size_t>(d)] = transfers * (boundary_bytes / tp) * sends_s;
    }
  }
}

// The experts' dispatch and combine, each device's share (dev_a2a), and what of it the shared
// experts hide.
void StepModel::expert_all_to_all() {
  // MoE: dispatch and combine all-to-all, forward and backward, over the expert-parallel group.
  // Megatron-Core numbers the experts' ranks as it numbers the dense ones, with the experts' own
  // tensor degree (its expert RankGenerator: tp = expert_tensor_parallel_size, order tp-cp-ep-dp-pp):
  // an expert-parallel group's ranks are expert_tensor apart, consecutive where the experts run
  // whole on each rank, and the ranks holding copies of an expert expert_tensor x G apart (since
  // session 34; before, `tensor` and, for one copy a data rank, 1).
  expert_stride = p.expert_tensor == 1 ? 1 : c.tensor;
  const comm::Group ep_group = group_of(job, expert_group, expert_stride, intra, inter);
  // On a torus an all-to-all crosses the bisection: half of every chip's data goes to the other
  // half over 2 k links (2-D, k x k chips) or 2 k^2 links (3-D, k^3): k/2 (2-D) or 3k/4 (3-D)
  // times longer than each chip injecting its data over its own 4 or 6 links.
  double bisection = 1;
  if (job.hardware.node_topology == "torus-2d") bisection = std::max(1.0, std::sqrt(eg) / 2);
  if (job.hardware.node_topology == "torus-3d") bisection = std::max(1.0, 0.75 * std::cbrt(eg));
  // A mesh (a slice without wraparound links: torus_mesh, step_layout.cpp) has half the links across its middle.
  if (bisection > 1 && torus_mesh(job)) bisection *= 2;
  // An all-to-all's rank sends each other rank of the group its share: on a switched network the
  // shares for ranks on other nodes through its own network link (unlike a ring, which spreads a
  // node's traffic over all its ranks' NICs), those for its node's ranks over NVLink at the same
  // time; the slower of the two paces it (since session 35, from a review; before, every share
  // went through the network once the group spanned nodes: 1.875 times the time of a 16-rank
  // group on two nodes of 8). A torus carries all of it over its links (the bisection above).
  const double a2a_link = ep_group.nodes > 1 ? inter : intra;
  const bool switched = bisection == 1 && job.hardware.node_topology.rfind("torus", 0) != 0;
  // The group's ranks a node, as group_of places them: full nodes of `most` and the last one the
  // rest, `fewest` (12 ranks on nodes of 8: 8 and 4).
  const double most = static_cast<double>(ep_group.fullest), fewest = static_cast<double>(ep_group.emptiest);
  // Seconds to send `bytes` spread evenly over the group's ranks (the rank's own share stays): the
  // rank on the fullest node the longest over NVLink, the one on the emptiest over the network.
  const auto spread_s = [&](double bytes) {
    if (!switched || ep_group.nodes <= 1) return bytes * (eg - 1) / eg / a2a_link * bisection;
    return std::max(bytes * (eg - fewest) / eg / inter, bytes * (most - 1) / eg / intra);
  };
  // DeepSeek-V3's 8-bit training (`expert_dispatch: fp8`) dispatches tokens to the experts, and the
  // gradients back to them, in 8 bits (the up projection's and the down projection's gradient
  // product take 8-bit inputs anyway), and combines in 16 (Sec. 3.3.3): 3 of the 4 transfers' 8
  // bytes, at 2 bytes a value. Megatron-Core dispatches at 16 bits and casts inside the grouped
  // product (moe/fused_a2a.py; since session 49, a review: every 8-bit job dispatched in 8).
  // Full recomputation runs the forward pass, its dispatch and combine included, a second time: 6
  // transfers, as the tensor-parallel all-reduces of step_ops.cpp go from 2 to 3 a layer.
  const double a2a_transfers = p.recompute ? 6 : 4;
  // (Here for all the model's expert layers; the busiest device's share is taken in pick_busiest.)
  const bool fp8_dispatch = eight_bit && job.expert_dispatch == "fp8";
  const double a2a_bytes = a2a_transfers * (moe_bytes / tp) * (fp8_dispatch ? 0.75 : 1.0);
  // (The whole model's; pick_busiest keeps the busiest device's share as moe_comm.)
  double all_to_all_s = moe_layers > 0 && expert_group > 1 ? spread_s(a2a_bytes) : 0;
  std::int64_t top_k = 1, route_nodes = 0, route_devices = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) {
    top_k = t->top_k;
    route_nodes = t->route_nodes;
    route_devices = t->route_devices;
  }
  if (all_to_all_s > 0 && route_devices > 0) {
    // Device-limited routing: a token is sent once to each device its top_k experts lie on, at
    // most route_devices of the group (less its own), not once a slot.
    const double copies = std::min({static_cast<double>(route_devices), static_cast<double>(top_k), eg});
    all_to_all_s = spread_s(a2a_bytes / static_cast<double>(top_k) * copies);
  }
  if (all_to_all_s > 0 && route_nodes > 0 && ep_group.nodes > 1) {
    // Node-limited routing: a token crosses the network once for each node its top_k experts lie
    // on (at most route_nodes of the group's nodes, less its own), and is forwarded to the
    // experts' GPUs over NVLink; the two overlap (DeepSeek-V3, Sec. 3.2.2).
    const double nodes = static_cast<double>(ep_group.nodes);
    const double copies = std::min({static_cast<double>(route_nodes), static_cast<double>(top_k), nodes}) * (nodes - 1) / nodes;
    const double node_size = most;  // the group's ranks on its fullest node
    const double network_s = a2a_bytes / static_cast<double>(top_k) * copies / inter;
    const double forward_s = a2a_bytes * (node_size - 1) / node_size / intra;
    all_to_all_s = std::max(network_s, forward_s);
  }
  // Each device's all-to-all: its expert layers' share.
  const auto moe_of = [&](std::size_t d) { return moe_bytes > 0 ? all_to_all_s * dev_moe[d] / moe_bytes : 0.0; };
  dev_a2a.assign(devices, 0.0);
  dev_a2a_contention.assign(devices, 0.0);
  for (std::size_t d = 0; d < devices; ++d) dev_a2a[d] = moe_of(d);
  if (p.shared_expert_overlap) {
    // The all-to-all runs beside the shared experts of the same layer (DeepSeek-V2, Sec. 3.2.3), as
    // Megatron-Core's --moe-shared-expert-overlap runs them on a stream of their own
    // (moe/shared_experts.py, token_dispatcher.py): the first product and activation beside the
    // dispatch, the second product beside the combine, and backward (its order moved ahead) the
    // second's beside the combine's gradient and the first's beside the dispatch's; recomputation
    // repeats the forward pair. Each transfer is hidden up to its window; what exceeds it is
    // exposed, and the window's compute, slowed by the contention while they overlap, ends
    // max(0, transfer x s / (1 + s) - exposed) later (the data-parallel overlap's exact form,
    // step_reduction.cpp), reported as overlap contention. (Every expert layer of a device is alike, so the
    // device's sums stand for each layer's.) Each transfer carries the same bytes but under an
    // 8-bit dispatch, whose transfers to the experts (the dispatch, the combine's gradient) carry
    // half (above).
    const double to_experts = fp8_dispatch ? 0.5 : 1.0;
    const double again = p.recompute ? 1.0 : 0.0;  // full recomputation's second forward pair
    const double units = (2 + again) * (to_experts + 1);
    for (std::size_t d = 0; d < devices; ++d) {
      const double unit = dev_a2a[d] / units;
      const auto& w = dev_shared[d];
      const std::array<std::pair<double, double>, shared_windows> pairs{{{to_experts * unit, w[fc1_fwd]},
                                                                          {unit, w[fc2_fwd]},
                                                                          {to_experts * unit, w[fc2_bwd]},
                                                                          {unit, w[fc1_bwd]},
                                                                          {again * to_experts * unit, w[fc1_again]},
                                                                          {again * unit, w[fc2_again]}}};
      double exposed = 0, contention = 0;
      for (const auto& [transfer, window] : pairs) {
        const double left = std::max(0.0, transfer - window);
        exposed += left;
        contention += std::max(0.0, transfer * overlap_share - left);
      }
      dev_a2a[d] = exposed;
      dev_a2a_contention[d] = contention;
    }
  }
}

// How the parameters lie over the ranks (held_on's shares) and the gradients' precision and buckets.
void StepModel::parameter_shares() {
  // Whole experts on every rank of a tensor group (expert_tensor: 1) are G experts' groups laid
  // over the tensor x data ranks (Megatron-Core: expert parallel x expert data parallel = tensor x
  // data when the experts' tensor degree is 1): each rank holds E / G experts whole, and the
  // tensor ranks hold copies of one another's (since session 33; before, half of them at tensor 2).
  et = p.expert_tensor == 1 ? 1.0 : tp;
  expert_copies = (tp / et) * (static_cast<double>(c.data) / eg);  // ranks holding each expert
  // ZeRO shards a parameter's gradients and states over the ranks that hold a copy of it: the data
  // group (or a hybrid-sharding group) for the dense parameters, only the data / G ranks that hold
  // the same experts for the experts' (Megatron-Core's expert data-parallel group).
  expert_shard = std::max(1.0, (tp / et) * static_cast<double>(shard) / eg);
  // A chip whose cores have memory of their own (TPU v2, v3) holds a copy of its dense parameters
  // on each core, their gradients and optimizer state too, and updates each, where the job is not
  // tensor-parallel (the cores are data-parallel replicas: TPUEstimator's, Mesh TensorFlow's
  // batch dimension). Under tensor parallelism the two cores may as well hold two shards: one copy
  // [assumed]. Experts are spread over the cores as over the chips: no copy.
  core_copies =
      c.tensor == 1 && job.hardware.separate_cores > 1 ? static_cast<double>(job.hardware.separate_cores) : 1.0;
  // Gradients are accumulated and reduced at their own precision (fp32 under Megatron-LM's bf16
  // default), the parameters gathered at the compute precision.
  grad_value_bytes =
      p.gradient_precision.empty() ? bytes_per_value : hardware::bytes_per_value(p.gradient_precision);
  // A bucket of the data-parallel reduction (ZeRO 0-1), gradients and gathered parameters: PyTorch
  // DDP's 25 MB by default, the scenario's size, or Megatron-Core's max(4e7, 1e6 x data x context)
  // parameters, at the gradient precision and, for the parameters gathered, the compute precision
  // (since session 44, from a review: 25 MB for every code had charged a 405B model's 128-rank
  // reduction 512 start-ups a device).
  const double megatron_bucket = std::max(4e7, 1e6 * static_cast<double>(c.data * cp));
  grad_bucket = p.megatron_buckets ? megatron_bucket * grad_value_bytes
                             : p.gradient_bucket_bytes > 0 ? p.gradient_bucket_bytes
                                                           : kGradientBucketBytes;
  param_bucket = p.megatron_buckets ? megatron_bucket * bytes_per_value : grad_bucket;
}

// The passes over each device's gradients in every backward (dev_acc).
void StepModel::gradient_passes() {
  // Gradient accumulation: with m microbatches a step, every backward after the first adds its
  // weight gradients into the step's, on every stage. PyTorch's autograd (AccumulateGrad's in-place
  // add), DeepSpeed's pipeline engine and bf16 optimizer, and TensorFlow's accumulators run it as a
  // kernel of its own: the new gradient read at the compute precision, the accumulator read and
  // written at the gradients' (docs/hardware-model.md, "Gradient accumulation"). Megatron-LM's
  // gradient_accumulation_fusion accumulates inside the weight-gradient GEMM (`fused`: cuBLAS's
  // beta = 1 reads the accumulator in a compute-bound product, not charged), and on a TPU XLA
  // fuses the add into the fusion that produces the gradient. Sharded gradients (ZeRO-2 and -3)
  // accumulate their reduced shard. Charged to each backward as its average, (m - 1) / m passes,
  // on each device its own parameters' pass, before the busiest device is chosen (since session 34;
  // before, the busiest was chosen on its layers alone and the pass added to it afterwards).
  // `cast` (DeepSpeed's BF16_Optimizer, update_hp_grads after every backward: hp_grad.add_(
  // lp.grad.to(fp32))): every microbatch's gradient, the first's too (into the zeroed buffer), is
  // cast in a pass of its own (read p, write g) and the copy added (read g, read and write the
  // accumulator): p + 4 g a parameter where the precisions differ (since session 47, a review).
  const bool cast_add = p.gradient_accumulation == "cast" && job.hardware.kind != "tpu";
  const bool accumulate = cast_add || (c.microbatches > 1 && p.gradient_accumulation == "separate" && job.hardware.kind != "tpu");
  const double acc_share =
      cast_add ? 1.0 : accumulate ? (static_cast<double>(c.microbatches) - 1) / static_cast<double>(c.microbatches) : 0.0;
  const double acc_bytes_per_value =
      bytes_per_value + 2 * grad_value_bytes + (cast_add && grad_value_bytes != bytes_per_value ? 2 * grad_value_bytes : 0.0);
  // Memory-bound passes over a device's gradients in every backward (a share of the microbatches):
  // the accumulation above, and ZeRO-2's and -3's flat gradient. PyTorch's FSDP (and FairScale's)
  // holds a unit's parameters as views of one flat parameter, so autograd builds the flat gradient
  // from the views' by a copy of all of them (SplitWithSizesBackward: a cat, read and write at the
  // compute precision, on the compute stream; FairScale PR #1184: "triggered every microbatch per
  // FSDP module"), and DeepSpeed's ZeRO-2 and -3 copy each gradient into their reduction bucket
  // (the ipg buffer); every microbatch, since both reduce every microbatch. Not on a TPU (XLA
  // reduce-scatters the gradient it computes) nor with fused accumulation, whose weight-gradient
  // GEMM writes into the flat buffer (Megatron-Core's main_grad). Since session 49, a review.
  if (accumulate) passes.push_back({"gradients.accumulate", acc_share, acc_bytes_per_value, 1, p.zero_stage >= 2});
  if (p.zero_stage >= 2 && job.hardware.kind != "tpu" && p.gradient_accumulation != "fused") {
    passes.push_back({"gradients.flatten", 1, 2 * bytes_per_value, 0, false});
  }
  dev_acc.assign(devices, 0.0);  // each device's gradient passes, a backward
  for (const auto& pass : passes)
    for (std::size_t d = 0; d < devices; ++d) dev_acc[d] += pass.share * pass_time(pass, held_on(d, pass.sharded)).seconds;
}

// The busiest device, whose slot paces the step, and each device's row of the stages table.
void StepModel::pick_busiest() {
  // The busiest device: its layers' and its other ops' work, and the all-to-all of its expert
  // layers. Under DualPipe a device holds stages i and p - 1 - i (v = 1) and runs each for half the
  // microbatches: half of each's work a microbatch.
  const double layers_d = static_cast<double>(layers);
  double busiest = -1, busiest_moe = 0;
  for (std::size_t d = 0; d < devices; ++d) {
    const double f = on_device(dev_f, d), b = on_device(dev_b, d) + dev_acc[d], t_comm = on_device(dev_tp, d), a2a = on_device(dev_a2a, d);
    const double pp_d = on_device(dev_pp, d);
    // The slot as the schedule runs it: DualPipe hides the all-to-all and the stage sends under the
    // paired chunk's compute (pipeline_bubble).
    const double slot_d = p.dualpipe ? f + b + t_comm + std::max(0.0, pp_d + a2a - (f + b)) : f + b + t_comm + a2a + pp_d;
    const double c_comm = on_device(dev_cp, d);
    c.stages.push_back({static_cast<int>(d), on_device(device_layers, d), f, b, t_comm - c_comm, a2a, slot_d, 0, false});
    c.stages.back().context_comm_s = c_comm;
    if (slot_d > busiest) {
      busiest = slot_d;
      busiest_device = d;
      fwd_s = f;
      bwd_s = b;
      tp_comm = t_comm;
      tp_forward = on_device(dev_tpf, d);
      cp_comm = c_comm;
      busiest_moe = a2a;
      pp_comm = pp_d;
      busiest_share = on_device(device_layers, d) / layers_d;
    }
  }
  moe_comm = busiest_moe;
  c.stages[busiest_device].busiest = true;
  // The busiest device's parameters, which the step describes (its collectives, its optimizer).
  dense_per_device = dense_on(busiest_device);
  expert_per_device = expert_on(busiest_device);
}

// Interleaved chunks of uneven work: the schedule run op by op.
void StepModel::run_uneven_chunks() {
  // Interleaved 1F1B with chunks of unequal layers (Llama 3.1's empty first and last chunks, or a
  // device's layers in one chunk): the schedule run op by op (cost_detail::simulate_interleaved),
  // each chunk taking its share of its device's slot by its compute, forward and backward split
  // as its own (since session 42; before, costed as equal chunks, which under-counts the fill and
  // drain and the activations in flight where the chunks differ much). Equal chunks keep the
  // closed form, (p - 1) / v of a slot (Narayanan et al. 2021), which the simulation reproduces.
  const bool uneven_chunks = v > 1 && !p.dualpipe && !p.zero_bubble && devices > 1 &&
                             (std::any_of(chunk_layers.begin(), chunk_layers.end(),
                                          [&](std::int64_t l) { return l != chunk_layers.front(); }) ||
                              std::any_of(chunk_work.begin(), chunk_work.end(), [&](double w) {
                                return std::abs(w - chunk_work.front()) > 1e-6 * std::max(w, chunk_work.front());
                              }));
  if (uneven_chunks) {
    std::vector<double> chunk_fwd_s(chunk_count, 0.0), chunk_bwd_s(chunk_count, 0.0);
    for (std::size_t j = 0; j < chunk_count; ++j) {
      const std::size_t d = j % devices;
      double device_work = 0;
      for (std::size_t i = d; i < chunk_count; i += devices) device_work += chunk_work[i];
      const double share = device_work > 0 ? chunk_work[j] / device_work : 1 / v;
      // Every chunk sends a microbatch's activations on and its gradients back, empty or not
      // (since session 42, a review: spread by compute, an empty chunk's sends were free): 1 / v
      // of the device's sends, half in its forward; the rest of the slot by compute.
      const double sends = on_device(dev_pp, d);
      const double chunk_work_s = std::max(0.0, c.stages[d].slot_s - sends) * share;
      const double forward_part = chunk_work[j] > 0 ? chunk_f[j] / chunk_work[j] : 0.5;
      chunk_fwd_s[j] = chunk_work_s * forward_part + 0.5 * sends / v;
      chunk_bwd_s[j] = chunk_work_s * (1 - forward_part) + 0.5 * sends / v;
    }
    // Many microbatches (more than 32 groups of p): the schedule is run for 16 and 32 groups and
    // extended linearly from its steady state, which repeats exactly group after group (an
    // independent script checked it: the makespan's growth a group is the same from 16 to 32 to
    // 48 groups), and the activations in flight have converged (since session 42, a review: the
    // order takes memory in proportion to m, 3 GB at a million microbatches).
    const std::int64_t groups = 16, run_m = groups * c.pipeline;
    if (c.microbatches > 2 * run_m) {
      const auto first = cost_detail::simulate_interleaved(c.pipeline, static_cast<std::int64_t>(v), run_m, chunk_fwd_s,
                                                           chunk_bwd_s, {chunk_saved, chunk_inputs});
      schedule = cost_detail::simulate_interleaved(c.pipeline, static_cast<std::int64_t>(v), 2 * run_m, chunk_fwd_s, chunk_bwd_s,
                                                   {chunk_saved, chunk_inputs});
      if (first.ok && schedule.ok) {
        const double periods = static_cast<double>(c.microbatches - 2 * run_m) / static_cast<double>(run_m);
        schedule.makespan_s += periods * (schedule.makespan_s - first.makespan_s);
        for (std::size_t d = 0; d < schedule.device_end_s.size(); ++d) {
          schedule.device_end_s[d] += periods * (schedule.device_end_s[d] - first.device_end_s[d]);
        }
      } else {
        schedule.ok = false;
      }
    } else {
      schedule = cost_detail::simulate_interleaved(c.pipeline, static_cast<std::int64_t>(v), c.microbatches, chunk_fwd_s,
                                                   chunk_bwd_s, {chunk_saved, chunk_inputs});
    }
  }
}

// The gradient passes' energy and their rows of the ops table.
void StepModel::gradient_pass_rows() {
  for (const auto& pass : passes) {
    // (Already in bwd_s and in each device's row of the stages table: pick_busiest.)
    // The average device's pass, for the energy.
    double average_held = 0;
    for (std::size_t d = 0; d < devices; ++d) average_held += held_on(d, pass.sharded) / static_cast<double>(devices);
    const auto average = pass_time(pass, average_held);
    busy_energy += pass.share * hardware::kernel_energy(dev16, "fp32", pass.flops_per_param * average_held, pass.bytes_per_param * average_held,
                                                     average.seconds, false);
    average_busy_s += pass.share * average.seconds;
    // The ops table's row: every device's pass, as its other rows hold every device's ops (since
    // session 42, a review: the busiest device's alone, so a pipeline's backward rows fell short
    // of its stages'). Without a pipeline, the one device's.
    double all_held = 0, all_s = 0, all_e = 0;
    for (std::size_t d = 0; d < devices; ++d) {
      const double h = held_on(d, pass.sharded);
      const auto k = pass_time(pass, h);
      all_held += h;
      all_s += k.seconds;
      all_e += hardware::kernel_energy(dev16, "fp32", pass.flops_per_param * h, pass.bytes_per_param * h, k.seconds, false);
    }
    c.ops.push_back({pass.name, "elementwise", "bwd", pass.share * pass.flops_per_param * all_held, pass.share * all_held * pass.bytes_per_param,
                     pass.share * all_s, pass.share * all_e, "memory"});
  }
}

// The step's slots and its bubble, by schedule.
void StepModel::pipeline_bubble() {
  mb = static_cast<double>(c.microbatches);
  slot = fwd_s + bwd_s + tp_comm + pp_comm + moe_comm;
  if (p.dualpipe) {
    // DualPipe runs a microbatch's all-to-all and stage sends under the compute of the chunk it
    // is paired with; only what that compute cannot cover is exposed.
    const double comm = pp_comm + moe_comm;
    const double exposed = std::max(0.0, comm - (fwd_s + bwd_s));
    overlapped = comm - exposed;
    slot = fwd_s + bwd_s + tp_comm + exposed;
    c.pipeline_comm_s = comm > 0 ? mb * exposed * pp_comm / comm : 0;
    c.expert_comm_s = comm > 0 ? mb * exposed * moe_comm / comm : 0;
    // (p/2 - 1)(F&B + B - 3W): a paired chunk F&B takes F + B, and W is the backward's
    // weight-gradient products and passes over the gradients (since session 49, a review: taken as
    // B / 2, where attention, norms, elementwise kernels and recomputation have no W).
    const double w = std::min(bwd_s, on_device(dev_w, busiest_device) + dev_acc[busiest_device]);
    c.bubble_s = (pp / 2 - 1) * std::max(0.0, fwd_s + 2 * bwd_s - 3 * w) * (1 + tp_comm / std::max(fwd_s + bwd_s, 1e-30));
  } else if (p.zero_bubble) {
    // ZB1P: (p - 1)(F + B - 2W), W the backward's weight-gradient products and passes over the
    // gradients (W = B / 2 and a bubble of (p - 1) F until session 49, a review), and the stage sends
    // and tensor all-reduces of those slots in the same share; as for 1F1B, the other devices' own
    // F + B - 2W each (a lighter stage fills faster; since session 34, before p - 1 of the
    // busiest's).
    c.bubble_s = 0;
    for (const auto& row : c.stages) {
      if (row.busiest) continue;
      const auto d = static_cast<std::size_t>(row.device);
      const double w = std::min(row.backward_s, on_device(dev_w, d) + dev_acc[d]);
      const double idle = std::max(0.0, row.forward_s + row.backward_s - 2 * w);
      c.bubble_s += idle + (row.tensor_comm_s + row.context_comm_s + on_device(dev_pp, d) + row.expert_comm_s) * idle /
                               std::max(row.forward_s + row.backward_s, 1e-30);
    }
    c.pipeline_comm_s = mb * pp_comm;
    c.expert_comm_s = mb * moe_comm;
  } else {
    // 1F1B: m microbatch slots of the busiest device plus the fill and drain, in which the first
    // microbatch's forward and the last one's backward pass through the other devices: their slots
    // (p - 1 of the busiest's where the stages are equal; a lighter stage drains faster), of which
    // interleaving with v chunks leaves 1 / v (Narayanan et al. 2021, Sec. 2.2.2).
    double others = 0;
    for (const auto& row : c.stages) others += row.busiest ? 0.0 : row.slot_s;
    c.bubble_s = others / v;
    // Uneven chunks: what the schedule run op by op takes beyond the busiest device's slots.
    if (schedule.ok) c.bubble_s = std::max(0.0, schedule.makespan_s - mb * slot);
    c.pipeline_comm_s = mb * pp_comm;
    c.expert_comm_s = mb * moe_comm;
  }
  c.bubble_fraction = c.bubble_s / (mb * slot + c.bubble_s);
  c.compute_s = mb * (fwd_s + bwd_s);
  c.tensor_comm_s = mb * (tp_comm - cp_comm);
  c.context_comm_s = mb * cp_comm;
}

}  // namespace dlcarbon::cost_detail
