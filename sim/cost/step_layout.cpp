// The training step's first phase (step_model.hpp): the ranks and their groups, the model's graph
// at the job's microbatch and precision, and the pipeline's partition of its layers; and the
// network helpers the later phases use (group_of, the torus's wraparound links).

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "step_model.hpp"

namespace dlcarbon::cost_detail {
namespace {

// How much slower compute runs while a collective overlaps it on a GPU (step_reduction.cpp,
// "Hidden communication is not free").
constexpr double kOverlapSlowdown = 0.189;

// Whether the job's torus slice closes its rings with wraparound links on every axis. A TPU v2/v3
// pod's 2-D torus does so on the whole pod: a smaller slice is a 2-D mesh without them
// (tensorflow/lingvo, lingvo/core/gshard_utils.py, GetNonPod2dMesh: "Returns a 2D device mesh on
// slices smaller than a pod", whose outer axis "doesn't have wrap link, either"); one that spans the
// pod's whole length along an axis holds that axis's closing links (group_of, below). A TPU v4
// slice of whole 4 x 4 x 4 cubes has them, a smaller one is a 3-D mesh (Google Cloud TPU v4
// documentation, "3D mesh and 3D torus"). Since session 33.
bool torus_wraps(const TrainingJob& job) {
  if (job.accelerators >= job.hardware.node_accelerators) return true;  // the whole pod
  if (job.hardware.node_topology == "torus-3d") return job.accelerators >= 64 && job.accelerators % 64 == 0;
  return false;
}

}  // namespace

// Whether no axis of the job's slice closes: a mesh, whose middle is crossed by half the links of
// a torus's. A 2-D slice whose longest side spans the pod keeps that axis's closing links
// (group_of, below).
bool torus_mesh(const TrainingJob& job) {
  if (torus_wraps(job)) return false;
  if (job.hardware.node_topology != "torus-2d") return true;
  const double node = static_cast<double>(std::max<std::int64_t>(1, job.hardware.node_accelerators));
  const double pod_side = std::round(std::sqrt(node));
  const double chips = std::min(node, static_cast<double>(job.accelerators));
  return std::min(pod_side, std::exp2(std::ceil(std::log2(chips) / 2 - 1e-9))) < pod_side;
}

// A group of `ranks` whose members lie `stride` ranks apart in the job's numbering, as Megatron-LM
// and DeepSpeed number them (tensor innermost, then data, pipeline outermost: a tensor group is
// neighbours, a data-parallel group's members are `tensor` ranks apart): the nodes it spans, and
// its ring's bus bandwidth. Groups are taken to line up with node boundaries (the stride divides
// the node size, or is a multiple of it). Inside one node that is NVLink; across nodes it is the
// network of the group's ranks in a node: NCCL runs one ring channel per NIC and each channel
// enters and leaves every node once, so a node's traffic is spread over the NICs of its k ranks
// (NCCL's busBw = nChannels x the channel's network bandwidth, tuning.cc), k x `inter` (the
// network per accelerator), at most NVLink's; k is the fewest ranks any node holds (NCCL uses as
// many channels on every node).
comm::Group group_of(const TrainingJob& job, std::int64_t ranks, std::int64_t stride, double intra, double inter) {
  comm::Group g;
  g.ranks = ranks;
  g.nccl = job.hardware.kind == "gpu";
  const std::int64_t node = std::max<std::int64_t>(1, job.hardware.node_accelerators);
  const std::int64_t per_node = std::clamp<std::int64_t>(node / std::max<std::int64_t>(1, stride), 1, std::max<std::int64_t>(1, ranks));
  g.nodes = (ranks + per_node - 1) / per_node;
  const std::int64_t fewest = std::clamp<std::int64_t>(ranks - (g.nodes - 1) * per_node, 1, per_node);
  g.fullest = per_node;
  g.emptiest = fewest;
  g.bandwidth = g.nodes > 1 ? std::min(intra, static_cast<double>(fewest) * inter) : intra;
  // On a torus (TPU pods) a chip's bandwidth is its links along every axis, but a ring can use only
  // the links among its own members: a group that fits along one axis of the pod (k chips a side)
  // uses that axis's two links, one that fits in a plane of a 3-D torus four, as XLA lays a mesh
  // axis of that size along a physical axis (a 12-way model axis on a 12 x 16 x 16 slice, a 16-way
  // one on a 16 x 32 slice). A group that is the whole job spans every axis of its slice. The axis
  // is the job's slice's longest (2^ceil(log2(n) / axes) chips), at most the pod's.
  const int axes = job.hardware.node_topology == "torus-3d" ? 3 : (job.hardware.node_topology == "torus-2d" ? 2 : 0);
  if (axes > 0 && g.nodes == 1 && ranks > 1) {
    // The job's slice: its longest side a power of two (TPU slices are 4 x 8, 16 x 32, 4 x 4 x 8 ...),
    // at most the pod's.
    const double chips = static_cast<double>(std::min(node, job.accelerators));
    const double pod_side = std::round(std::pow(static_cast<double>(node), 1.0 / axes));
    const double side = std::min(pod_side, std::exp2(std::ceil(std::log2(chips) / axes - 1e-9)));
    const double r = static_cast<double>(ranks);
    int spanned = axes;
    if (ranks < job.accelerators) {
      spanned = r <= side ? 1 : (axes == 3 && r <= side * side ? 2 : axes);
      g.bandwidth *= static_cast<double>(spanned) / axes;
    }
    // Without wraparound links a ring along an axis is a line: each link carries it once each way,
    // where a torus runs two rings, one each way, on the same links: half the bandwidth (Austin et
    // al. 2025, jax-ml/scaling-book tpus.md: a slice without wraparounds "typically doubles the
    // time of most communication"; lingvo orders a non-pod slice's devices for it, "Where there is
    // no wrap-around links along one edge", ZigzagOrderOnDeviceMesh). On a 2-D slice an axis as
    // long as the pod's holds the pod's closing links [inferred: the pod is cabled as one torus];
    // a one-axis group lies along the shorter axis where it fits (T5's 16-way model axis on the
    // 16 of a 16 x 32 slice, its 32-way batch axis along the 32), and a group over both axes has
    // the mean of the two.
    const auto wrap = [&](double length) { return length >= pod_side ? 1.0 : 0.5; };
    if (axes == 3) {
      if (!torus_wraps(job)) g.bandwidth *= 0.5;
    } else {
      const double shorter = std::max(1.0, std::round(chips / side));
      // A one-axis group closes its ring only if it spans the axis whole: a shorter one is a line.
      const double axis = r <= shorter ? shorter : side;
      g.bandwidth *= spanned == 1 ? (r >= axis ? wrap(axis) : 0.5) : (wrap(side) + wrap(shorter)) / 2;
    }
  }
  return g;
}

std::size_t StepModel::position_of(int layer) const {
  return static_cast<std::size_t>(std::lower_bound(layer_ids.begin(), layer_ids.end(), layer) - layer_ids.begin());
}

bool StepModel::layout() {
  if (!place_ranks() || !build_step_graph() || !partition_layers()) return false;
  prepare_ops();
  return true;
}

// The device model, and the ranks: data x tensor x pipeline x context, ZeRO's shards, the
// microbatches a data rank runs a step.
bool StepModel::place_ranks() {
  p = job.parallelism.value_or(Parallelism{});
  dev = hardware::make_device_model(job.hardware).at_precision(job.precision);
  n = job.accelerators;
  if (dev.memory_bandwidth <= 0) {
    // Every op moves bytes: without the memory's bandwidth the step has no time.
    c.fits = false;
    c.reason = "hardware " + job.hardware.id + " has no memory_bandwidth in the catalog: a step cannot be costed without it";
    return false;
  }
  c.tensor = p.tensor;
  c.pipeline = p.pipeline;
  // Context parallelism: cp ranks share each sequence (and the weights).
  cp = std::max<std::int64_t>(1, p.context);
  // Without forming data x tensor x pipeline, which may pass 2^63 (each is at most 2^53).
  const bool model_parallel_fits =
      static_cast<double>(c.tensor) * static_cast<double>(c.pipeline) * static_cast<double>(cp) <= static_cast<double>(n);
  const std::int64_t model_parallel = model_parallel_fits ? c.tensor * c.pipeline * cp : 1;
  c.data = p.data > 0 ? p.data : (model_parallel_fits ? n / model_parallel : 0);
  if (!model_parallel_fits || n % model_parallel != 0 || n / model_parallel != c.data) {
    c.fits = false;
    c.reason = "accelerators (" + std::to_string(n) + ") is not data x tensor x pipeline" + (cp > 1 ? " x context (" : " (") +
               std::to_string(c.data) + " x " + std::to_string(c.tensor) + " x " + std::to_string(c.pipeline) +
               (cp > 1 ? " x " + std::to_string(cp) : "") + ")";
    return false;
  }
  // The ranks that hold the same weights, whose gradients are reduced together: data x context.
  replicas = c.data * cp;
  // ZeRO shards over all of them, or over hybrid sharding's groups of them.
  shard = p.zero_stage == 3 && p.shard_group > 0 ? p.shard_group : replicas;
  if (replicas % shard != 0) {
    c.fits = false;
    c.reason = "shard_group (" + std::to_string(shard) + ") does not divide the data-parallel size (" +
               std::to_string(replicas) + (cp > 1 ? ", data x context" : "") + ")";
    return false;
  }
  const double per_replica = static_cast<double>(p.global_batch) / static_cast<double>(c.data * p.microbatch);
  c.microbatches = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(per_replica - 1e-9)));

  return true;
}

// The model's graph at the job's microbatch and precision, its parameters and tokens a step.
bool StepModel::build_step_graph() {
  // Values are stored at the compute precision, except that 8-bit training runs only its GEMMs in
  // 8 bits: activations, weights as gathered, gradients and the other kernels stay at 16 bits, as
  // Transformer Engine's FP8 recipes and DeepSeek-V3 (arXiv:2412.19437, Sec. 3.3) train (the casts
  // into 8 bits are charged with each product, step_ops.cpp).
  eight_bit = job.precision == "fp8" || job.precision == "int8";
  // (What `recompute: elementwise` keeps of a feed-forward's activation: its input, both halves gated.)
  const auto* transformer_design = std::get_if<TransformerDesign>(&job.design);
  gated_ffn = transformer_design && transformer_design->gated_ffn;
  parallel_two_norms = transformer_design && transformer_design->parallel_block && transformer_design->parallel_norms > 1;
  // Latent attention's widths, for what `recompute: latent` keeps: the output (v wide) and, where
  // no query latent is recomputed from, the queries (qk wide).
  if (const auto* t = std::get_if<TransformerDesign>(&job.design); t && t->kv_lora_rank > 0) {
    latent_design = true;
    q_recomputed = t->q_lora_rank > 0;
    const double hd = static_cast<double>(t->head_dim > 0 ? t->head_dim : t->d_model / std::max<std::int64_t>(1, t->heads));
    v_width = t->v_head_dim > 0 ? static_cast<double>(t->v_head_dim) : hd;
    qk_width = hd + static_cast<double>(t->rope_head_dim);
  }
  bytes_per_value = eight_bit ? 2.0 : hardware::bytes_per_value(job.precision);
  dev16 = eight_bit ? hardware::make_device_model(job.hardware).at_precision(sixteen) : dev;
  // Expert parallelism: the experts spread over G data ranks (parallelism.expert, else
  // min(data, experts)), each holding
  // experts / G of them (with more data ranks than experts, each expert is replicated on data / G
  // ranks); the tokens of the G ranks' microbatches are dispatched together.
  std::int64_t experts = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) experts = t->experts;
  expert_group = experts > 0 ? (p.expert > 0 ? p.expert : std::min(c.data, experts)) : 1;
  if (experts > 0 && (experts % expert_group != 0 || c.data % expert_group != 0)) {
    c.fits = false;
    c.reason = "the experts (" + std::to_string(experts) + "), the expert-parallel group (" +
               std::to_string(expert_group) + ") and the data-parallel size (" + std::to_string(c.data) +
               ") do not divide one another";
    return false;
  }
  graph::GraphShape shape{p.microbatch, static_cast<std::int64_t>(bytes_per_value), true, graph::fusion_of(job.fusion), true,
                          job.eager};
  shape.tensorflow1 = graph::tensorflow1_kernels(job.fusion);
  shape.fairseq = graph::fairseq_kernels(job.fusion);
  shape.neox = job.neox;
  shape.largescale = job.largescale;
  shape.neox_partition = (job.neox || job.largescale) && p.recompute && p.partition_activations;
  shape.tensor = p.tensor;
  shape.cross_entropy = job.cross_entropy == "megatron"  ? graph::GraphShape::CrossEntropy::megatron
                        : job.cross_entropy == "pytorch" ? graph::GraphShape::CrossEntropy::pytorch
                                                         : graph::GraphShape::CrossEntropy::fused;
  shape.expert_group = expert_group;
  shape.channels_last = job.layout == "nhwc";
  shape.context = cp;
  if (std::string why = graph::size_limit(job.design, p.microbatch); !why.empty()) {
    // No machine holds it (a tensor of more than 2^56 elements), and its sizes would overflow.
    c.fits = false;
    c.reason = std::move(why);
    return false;
  }
  g = graph::build_graph(job.design, shape);
  eg = static_cast<double>(expert_group);
  c.parameters = g.parameters();
  for (const auto& op : g.ops()) {
    if (op.expert) expert_params += op.params;
    if (op.kind == graph::OpKind::embedding) embedding_params = std::max(embedding_params, op.params);
    if (op.layer < 0 && !op.expert) outside_params += op.params;
  }
  // A token runs top_k of a mixture's routed experts (their ops hold all of them); the rest whole.
  c.active_parameters = c.parameters;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design); t && t->experts > 0) {
    c.active_parameters -= expert_params * (1 - static_cast<double>(t->top_k) / static_cast<double>(t->experts));
  }
  const double seq_tokens = static_cast<double>(graph::tokens_per_sample(job.design));
  // Padding: the step computes global_batch x seq_len positions, of which (1 - padding) are tokens.
  filled = 1 - p.padding;
  c.tokens_per_step = static_cast<double>(p.global_batch) * seq_tokens * filled;
  c.steps = job.tokens ? *job.tokens / c.tokens_per_step : 0;

  return true;
}

// The communication groups, and the pipeline's partition of the layers into chunks and devices.
bool StepModel::partition_layers() {
  tp = static_cast<double>(c.tensor);
  pp = static_cast<double>(c.pipeline);
  layers = std::max(1, g.layers());
  // Every pipeline stage holds at least one layer (an interleaved schedule's first and last chunks
  // may hold only the embedding and the head, as Llama 3's do: Dubey et al. 2024, Sec. 3.3.2).
  if (c.pipeline > layers && p.stage_layers.empty()) {
    c.fits = false;
    c.reason = "pipeline (" + std::to_string(c.pipeline) + ") is more stages than the model's " + std::to_string(layers) +
               " layer(s): every stage needs a layer";
    return false;
  }
  const hardware::NodeLinks links = hardware::node_links(job.hardware);
  intra = links.intra;
  inter = links.inter;
  tp_group = group_of(job, c.tensor, 1, intra, inter);
  // (Ranks: tensor innermost, then context, then data: the data x context ranks that hold the same
  // weights lie `tensor` apart.)
  dp_group = group_of(job, replicas, c.tensor, intra, inter);
  cp_group = group_of(job, cp, c.tensor, intra, inter);
  // Hybrid sharding: the ZeRO-3 collectives run in groups of `shard` ranks, and one all-reduce of
  // each group's gradient shard runs across the data / shard groups.
  shard_group = group_of(job, shard, c.tensor, intra, inter);
  replica_group = group_of(job, replicas / shard, c.tensor * shard, intra, inter);

  fusion = graph::fusion_of(job.fusion);
  // Interleaved 1F1B: v chunks of layers on each device (below; where p v > L some are empty).
  v = static_cast<double>(std::max<std::int64_t>(1, p.virtual_stages));
  // The pipeline partition: the layers of each of the p v chunks (chunk j on device j mod p), as
  // given or spread evenly with the first L mod (p v) chunks one layer more (DeepSpeed's
  // partition_uniform). The ops before the first layer (embeddings) run on device 0, those after
  // the last (head, loss) on device p - 1, those between two layers (an encoder-decoder's decoder
  // embedding) on the device of the layer before them.
  chunks = c.pipeline * static_cast<std::int64_t>(v);
  chunk_layers = p.stage_layers;
  if (!chunk_layers.empty() && static_cast<std::int64_t>(chunk_layers.size()) != chunks) {
    c.fits = false;
    c.reason = "parallelism.stage_layers has " + std::to_string(chunk_layers.size()) + " chunks; pipeline x virtual_stages is " +
               std::to_string(chunks);
    return false;
  }
  if (chunk_layers.empty()) {
    chunk_layers.assign(static_cast<std::size_t>(chunks), layers / chunks);
    for (std::int64_t j = 0; j < layers % chunks; ++j) ++chunk_layers[static_cast<std::size_t>(j)];
  }
  // A graph's layers in order: their indices need not start at 0 or run without gaps (a graph file
  // numbers them as it likes).
  for (const auto& op : g.ops()) {
    if (op.layer >= 0) layer_ids.push_back(op.layer);
  }
  std::sort(layer_ids.begin(), layer_ids.end());
  layer_ids.erase(std::unique(layer_ids.begin(), layer_ids.end()), layer_ids.end());
  device_layers.assign(static_cast<std::size_t>(c.pipeline), 0.0);
  for (std::int64_t j = 0; j < chunks; ++j) {
    chunk_of_layer.insert(chunk_of_layer.end(), static_cast<std::size_t>(chunk_layers[static_cast<std::size_t>(j)]),
                          static_cast<std::size_t>(j));
    device_layers[static_cast<std::size_t>(j % c.pipeline)] += static_cast<double>(chunk_layers[static_cast<std::size_t>(j)]);
    device_of_layer.insert(device_of_layer.end(), static_cast<std::size_t>(chunk_layers[static_cast<std::size_t>(j)]),
                           static_cast<int>(j % c.pipeline));
  }
  if (device_of_layer.size() < std::max<std::size_t>(1, layer_ids.size()) ||
      (!p.stage_layers.empty() && static_cast<int>(device_of_layer.size()) != layers)) {
    c.fits = false;
    c.reason = "parallelism.stage_layers holds " + std::to_string(device_of_layer.size()) + " layers; the model's graph has " +
               std::to_string(layers);
    return false;
  }
  // The main stack's last layer: the ops after it (final norm, head, loss; multi-token prediction's
  // embedding and heads) run on the last device, where the multi-token prediction layers, the
  // partition's last layers, also run (Megatron-Core's layouts put them in the last chunk).
  std::int64_t mtp_layers = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) mtp_layers = t->mtp_depth;
  last_main_layer = static_cast<int>(layer_ids.size()) - 1 - static_cast<int>(mtp_layers);
  return true;
}

// What cost_ops() reads and sums: each device's and chunk's sums of a microbatch, the key/value heads
// a rank holds, the vocabulary table, the contention share of hidden communication.
void StepModel::prepare_ops() {
  // The per-microbatch work of each device: its layers' (each layer's own: a dense layer before the
  // experts, a multi-token prediction layer or a decoder layer with cross-attention is not an
  // encoder layer) and its other ops'; the step runs at the pace of the busiest device (step_schedule.cpp).
  // Energy is that of the average device, 1 / p of everything.
  devices = static_cast<std::size_t>(c.pipeline);
  // (DualPipe: two stages a device, on_device.)
  paired = p.dualpipe && devices > 1;
  dev_f.assign(devices, 0.0);
  dev_b.assign(devices, 0.0);
  dev_tp.assign(devices, 0.0);
  dev_moe.assign(devices, 0.0);
  // Each device's shared-expert kernels, by the all-to-all transfer each runs beside under
  // `shared_expert_overlap` (step_schedule.cpp): the first product and activation forward (the dispatch), the
  // second product forward (the combine), then backward the second's (the combine's gradient) and
  // the first's (the dispatch's), and the forward's again where recomputed.
  dev_shared.assign(devices, std::array<double, shared_windows>{});
  // The share of hidden communication time that contention adds on a GPU (kOverlapSlowdown, above;
  // "Hidden communication is not free", step_reduction.cpp).
  overlap_share = job.hardware.kind == "gpu" ? kOverlapSlowdown / (1 + kOverlapSlowdown) : 0;
  dev_cp.assign(devices, 0.0);  // the context group's share of dev_tp
  // The forward pass's share of dev_tp (the rest runs in the backward, recomputation's collectives
  // too): the compute a data-parallel collective can hide behind is each pass's whole time, its
  // tensor-group collectives included (session 49, a review).
  dev_tpf.assign(devices, 0.0);
  dev_tail_f.assign(devices, 0.0);  // the forward from the last layer on (dev_f's share)
  // The weight-gradient products' share of dev_b (zero-bubble schedules' W; since session 49, a
  // review: taken as half the backward).
  dev_w.assign(devices, 0.0);
  // Each chunk's share of its device's work (a microbatch's forward and all of it) and what it
  // keeps: for the interleaved schedule run op by op where the chunks are uneven (step_schedule.cpp).
  chunk_count = static_cast<std::size_t>(chunks);
  chunk_f.assign(chunk_count, 0.0);
  chunk_work.assign(chunk_count, 0.0);
  chunk_saved.assign(chunk_count, 0.0);
  dev_saved.assign(devices, 0.0);  // activations kept, a microbatch
  dev_saved_other.assign(devices, 0.0);
  // The part of dev_saved_other of the ops before a stack (the embeddings), a device's and a chunk's.
  dev_saved_lead.assign(devices, 0.0);
  chunk_lead.assign(chunk_count, 0.0);
  // The stacks' final norms' part of dev_saved: what full recomputation keeps of them (they run once).
  dev_stack_end.assign(devices, 0.0);
  dev_dense.assign(devices, 0.0);  // parameters of the ops it runs
  dev_expert.assign(devices, 0.0);
  transformer = std::holds_alternative<TransformerDesign>(job.design);
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) {
    vocab_table = static_cast<double>(t->vocab * t->d_model);
    tied = t->tied_embeddings;
  }
  // Fewer key/value heads than tensor-parallel ranks (multi-query attention, or grouped-query with
  // G < t): a head cannot be split, so each rank holds and computes one whole key/value head, the
  // group's G heads replicated t / G times (the MQA of BigCode's Megatron-LM, a key_value layer that
  // is not split; Megatron-Core requires G to divide t; Shazeer 2019's multi-query heads are shared,
  // not sharded). Since session 37 (a review; before, each rank was charged G / t of a head:
  // StarCoder's qkv was 12 % light at tensor 4). `kv_rank`: a rank's key/value heads.
  if (const auto* t = std::get_if<TransformerDesign>(&job.design); t && t->kv_lora_rank == 0 && t->heads > 0) {
    q_heads = static_cast<double>(t->heads);
    kv_heads = static_cast<double>(t->kv_heads > 0 ? t->kv_heads : t->heads);
    kv_rank = kv_heads < tp ? 1.0 : kv_heads / tp;
  }
  kv_replicated = kv_heads > 0 && kv_heads < tp;
  // What enters each layer (a microbatch, bytes): the output of the op before its first, the
  // previous layer's or the embedding's; in an encoder-decoder's decoder also the encoder's output,
  // which its cross-attention reads (a CNN's feature maps change size block by block). What a
  // pipeline stage sends on and what full recomputation keeps a layer (since session 33; before,
  // the decoder embedding's size for every layer, an image's for a CNN).
  layer_input.assign(layer_ids.size(), 0.0);
  layer_encoder.assign(layer_ids.size(), 0.0);  // the encoder's output in it
  // A parallel block with one norm projects its output once for both branches (PaLM; step_ops.cpp).
  const auto* sp_design = std::get_if<TransformerDesign>(&job.design);
  one_fused_input = sp_design != nullptr && sp_design->parallel_block && sp_design->parallel_norms <= 1;
}

}  // namespace dlcarbon::cost_detail
