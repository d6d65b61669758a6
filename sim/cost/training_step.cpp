// One training step from first principles (docs/hardware-model.md, "Training step").
//
// Per device and microbatch, every op of the graph runs forward and backward on the roofline
// (backward = 2x the forward work; recomputation adds one more forward). Layers are partitioned
// over pipeline stages (parallelism.stage_layers, else evenly) and each GEMM is split over the
// tensor-parallel group. A step is the schedule (1F1B: m slots of the busiest device plus the
// other devices' fill and drain; interleaved, zero-bubble, DualPipe), plus what communication is
// not hidden, plus the optimizer, of the device that ends last. Collectives are costed by NCCL's
// model on GPUs (collectives.cpp).

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dlcarbon/collectives.hpp"
#include "dlcarbon/graph.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/text.hpp"
#include "op_efficiency.hpp"
#include "pipeline_schedule.hpp"
#include "dlcarbon/training_cost.hpp"

namespace dlcarbon {
namespace {

// Gradients of data parallelism without ZeRO-3 sharding go out in buckets as the backward pass
// produces them: PyTorch DDP's default bucket (bucket_cap_mb = 25).
constexpr double kGradientBucketBytes = 25e6;

// How much slower compute runs while a collective overlaps it on a GPU (below).
constexpr double kOverlapSlowdown = 0.189;

// Optimizer state kept (bytes per parameter) and moved per step, mixed precision with fp32 master
// weights: Adam keeps master, m, v (12 B) and moves ~28 B; Adafactor keeps the master and
// factored second moments (~4 B) and moves ~16 B; SGD with momentum 8 B and 20 B; Adagrad
// (TensorFlow's AdagradOptimizer, bilm-tf's) the same as SGD with momentum: the master and one
// accumulator of squared gradients, and an update that reads the weight, the gradient and the
// accumulator and writes the weight and the accumulator (since session 47).
double optimizer_state_bytes(const std::string& optimizer) {
  return optimizer == "adam" ? 12 : (optimizer == "adafactor" ? 4 : 8);
}
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

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

StepCost cost_training_step(const TrainingJob& job) {
  StepCost c;
  const Parallelism p = job.parallelism.value_or(Parallelism{});
  const hardware::DeviceModel dev = hardware::make_device_model(job.hardware).at_precision(job.precision);
  const std::int64_t n = job.accelerators;
  if (dev.memory_bandwidth <= 0) {
    // Every op moves bytes: without the memory's bandwidth the step has no time.
    c.fits = false;
    c.reason = "hardware " + job.hardware.id + " has no memory_bandwidth in the catalog: a step cannot be costed without it";
    return c;
  }
  c.tensor = p.tensor;
  c.pipeline = p.pipeline;
  // Context parallelism: cp ranks share each sequence (and the weights).
  const std::int64_t cp = std::max<std::int64_t>(1, p.context);
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
    return c;
  }
  // The ranks that hold the same weights, whose gradients are reduced together: data x context.
  const std::int64_t replicas = c.data * cp;
  // ZeRO shards over all of them, or over hybrid sharding's groups of them.
  const std::int64_t shard = p.zero_stage == 3 && p.shard_group > 0 ? p.shard_group : replicas;
  if (replicas % shard != 0) {
    c.fits = false;
    c.reason = "shard_group (" + std::to_string(shard) + ") does not divide the data-parallel size (" +
               std::to_string(replicas) + (cp > 1 ? ", data x context" : "") + ")";
    return c;
  }
  const double per_replica = static_cast<double>(p.global_batch) / static_cast<double>(c.data * p.microbatch);
  c.microbatches = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(per_replica - 1e-9)));

  // Values are stored at the compute precision, except that 8-bit training runs only its GEMMs in
  // 8 bits: activations, weights as gathered, gradients and the other kernels stay at 16 bits, as
  // Transformer Engine's FP8 recipes and DeepSeek-V3 (arXiv:2412.19437, Sec. 3.3) train (the casts
  // into 8 bits are charged with each product, below).
  const bool eight_bit = job.precision == "fp8" || job.precision == "int8";
  // Latent attention's widths, for what `recompute: latent` keeps: the output (v wide) and, where
  // no query latent is recomputed from, the queries (qk wide).
  bool latent_design = false, q_recomputed = false;
  // (What `recompute: elementwise` keeps of a feed-forward's activation: its input, both halves gated.)
  const auto* transformer_design = std::get_if<TransformerDesign>(&job.design);
  const bool gated_ffn = transformer_design && transformer_design->gated_ffn;
  const bool parallel_two_norms = transformer_design && transformer_design->parallel_block && transformer_design->parallel_norms > 1;
  double v_width = 0, qk_width = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design); t && t->kv_lora_rank > 0) {
    latent_design = true;
    q_recomputed = t->q_lora_rank > 0;
    const double hd = static_cast<double>(t->head_dim > 0 ? t->head_dim : t->d_model / std::max<std::int64_t>(1, t->heads));
    v_width = t->v_head_dim > 0 ? static_cast<double>(t->v_head_dim) : hd;
    qk_width = hd + static_cast<double>(t->rope_head_dim);
  }
  const double bytes_per_value = eight_bit ? 2.0 : hardware::bytes_per_value(job.precision);
  const std::string sixteen = "bf16";
  const hardware::DeviceModel dev16 = eight_bit ? hardware::make_device_model(job.hardware).at_precision(sixteen) : dev;
  // Expert parallelism: the experts spread over G data ranks (parallelism.expert, else
  // min(data, experts)), each holding
  // experts / G of them (with more data ranks than experts, each expert is replicated on data / G
  // ranks); the tokens of the G ranks' microbatches are dispatched together.
  std::int64_t experts = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) experts = t->experts;
  const std::int64_t expert_group = experts > 0 ? (p.expert > 0 ? p.expert : std::min(c.data, experts)) : 1;
  if (experts > 0 && (experts % expert_group != 0 || c.data % expert_group != 0)) {
    c.fits = false;
    c.reason = "the experts (" + std::to_string(experts) + "), the expert-parallel group (" +
               std::to_string(expert_group) + ") and the data-parallel size (" + std::to_string(c.data) +
               ") do not divide one another";
    return c;
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
    return c;
  }
  const graph::OpGraph g = graph::build_graph(job.design, shape);
  const double eg = static_cast<double>(expert_group);
  c.parameters = g.parameters();
  double expert_params = 0;
  double embedding_params = 0;  // the largest embedding table (its gradient is the backward's last)
  double outside_params = 0;    // outside the layers: the embeddings, an untied head
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
  const double filled = 1 - p.padding;
  c.tokens_per_step = static_cast<double>(p.global_batch) * seq_tokens * filled;
  c.steps = job.tokens ? *job.tokens / c.tokens_per_step : 0;

  const double tp = static_cast<double>(c.tensor), pp = static_cast<double>(c.pipeline);
  const int layers = std::max(1, g.layers());
  // Every pipeline stage holds at least one layer (an interleaved schedule's first and last chunks
  // may hold only the embedding and the head, as Llama 3's do: Dubey et al. 2024, Sec. 3.3.2).
  if (c.pipeline > layers && p.stage_layers.empty()) {
    c.fits = false;
    c.reason = "pipeline (" + std::to_string(c.pipeline) + ") is more stages than the model's " + std::to_string(layers) +
               " layer(s): every stage needs a layer";
    return c;
  }
  const double intra = job.hardware.intra_node_bandwidth.value_or(dev.memory_bandwidth / 10);
  const double inter = job.hardware.inter_node_bandwidth.value_or(intra / 10);
  const comm::Group tp_group = group_of(job, c.tensor, 1, intra, inter);
  // (Ranks: tensor innermost, then context, then data: the data x context ranks that hold the same
  // weights lie `tensor` apart.)
  const comm::Group dp_group = group_of(job, replicas, c.tensor, intra, inter);
  const comm::Group cp_group = group_of(job, cp, c.tensor, intra, inter);
  // Hybrid sharding: the ZeRO-3 collectives run in groups of `shard` ranks, and one all-reduce of
  // each group's gradient shard runs across the data / shard groups.
  const comm::Group shard_group = group_of(job, shard, c.tensor, intra, inter);
  const comm::Group replica_group = group_of(job, replicas / shard, c.tensor * shard, intra, inter);

  // --- one microbatch on each pipeline device, and the busiest ------------------------------
  double fwd_s = 0, bwd_s = 0, busy_energy = 0, average_busy_s = 0, tp_comm = 0, tp_forward = 0, moe_bytes = 0;
  double cp_comm = 0;  // the busiest device's context-group share of tp_comm
  int moe_layers = 0;
  const graph::Fusion fusion = graph::fusion_of(job.fusion);
  // Interleaved 1F1B: v chunks of layers on each device (below; where p v > L some are empty).
  const double v = static_cast<double>(std::max<std::int64_t>(1, p.virtual_stages));
  // The pipeline partition: the layers of each of the p v chunks (chunk j on device j mod p), as
  // given or spread evenly with the first L mod (p v) chunks one layer more (DeepSpeed's
  // partition_uniform). The ops before the first layer (embeddings) run on device 0, those after
  // the last (head, loss) on device p - 1, those between two layers (an encoder-decoder's decoder
  // embedding) on the device of the layer before them.
  const std::int64_t chunks = c.pipeline * static_cast<std::int64_t>(v);
  std::vector<std::int64_t> chunk_layers = p.stage_layers;
  if (!chunk_layers.empty() && static_cast<std::int64_t>(chunk_layers.size()) != chunks) {
    c.fits = false;
    c.reason = "parallelism.stage_layers has " + std::to_string(chunk_layers.size()) + " chunks; pipeline x virtual_stages is " +
               std::to_string(chunks);
    return c;
  }
  if (chunk_layers.empty()) {
    chunk_layers.assign(static_cast<std::size_t>(chunks), layers / chunks);
    for (std::int64_t j = 0; j < layers % chunks; ++j) ++chunk_layers[static_cast<std::size_t>(j)];
  }
  // A graph's layers in order: their indices need not start at 0 or run without gaps (a graph file
  // numbers them as it likes).
  std::vector<int> layer_ids;
  for (const auto& op : g.ops()) {
    if (op.layer >= 0) layer_ids.push_back(op.layer);
  }
  std::sort(layer_ids.begin(), layer_ids.end());
  layer_ids.erase(std::unique(layer_ids.begin(), layer_ids.end()), layer_ids.end());
  const auto position_of = [&](int layer) {
    return static_cast<std::size_t>(std::lower_bound(layer_ids.begin(), layer_ids.end(), layer) - layer_ids.begin());
  };
  std::vector<double> device_layers(static_cast<std::size_t>(c.pipeline), 0.0);
  std::vector<int> device_of_layer;
  std::vector<std::size_t> chunk_of_layer;  // the chunk of each layer position (device: chunk mod p)
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
    return c;
  }
  // The main stack's last layer: the ops after it (final norm, head, loss; multi-token prediction's
  // embedding and heads) run on the last device, where the multi-token prediction layers, the
  // partition's last layers, also run (Megatron-Core's layouts put them in the last chunk).
  std::int64_t mtp_layers = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) mtp_layers = t->mtp_depth;
  const int last_main_layer = static_cast<int>(layer_ids.size()) - 1 - static_cast<int>(mtp_layers);
  // The per-microbatch work of each device: its layers' (each layer's own: a dense layer before the
  // experts, a multi-token prediction layer or a decoder layer with cross-attention is not an
  // encoder layer) and its other ops'; the step runs at the pace of the busiest device (below).
  // Energy is that of the average device, 1 / p of everything.
  const std::size_t devices = static_cast<std::size_t>(c.pipeline);
  std::vector<double> dev_f(devices, 0.0), dev_b(devices, 0.0), dev_tp(devices, 0.0), dev_moe(devices, 0.0);
  // Each device's shared-expert kernels, by the all-to-all transfer each runs beside under
  // `shared_expert_overlap` (below): the first product and activation forward (the dispatch), the
  // second product forward (the combine), then backward the second's (the combine's gradient) and
  // the first's (the dispatch's), and the forward's again where recomputed.
  enum { fc1_fwd, fc2_fwd, fc2_bwd, fc1_bwd, fc1_again, fc2_again, shared_windows };
  std::vector<std::array<double, shared_windows>> dev_shared(devices, std::array<double, shared_windows>{});
  // The share of hidden communication time that contention adds on a GPU (kOverlapSlowdown, above;
  // "Hidden communication is not free", below).
  const double overlap_share = job.hardware.kind == "gpu" ? kOverlapSlowdown / (1 + kOverlapSlowdown) : 0;
  std::vector<double> dev_cp(devices, 0.0);  // the context group's share of dev_tp
  // The forward pass's share of dev_tp (the rest runs in the backward, recomputation's collectives
  // too): the compute a data-parallel collective can hide behind is each pass's whole time, its
  // tensor-group collectives included (session 49, a review).
  std::vector<double> dev_tpf(devices, 0.0);
  std::vector<double> dev_tail_f(devices, 0.0);  // the forward from the last layer on (dev_f's share)
  // The weight-gradient products' share of dev_b (zero-bubble schedules' W; since session 49, a
  // review: taken as half the backward).
  std::vector<double> dev_w(devices, 0.0);
  // Each chunk's share of its device's work (a microbatch's forward and all of it) and what it
  // keeps: for the interleaved schedule run op by op where the chunks are uneven (below).
  const std::size_t chunk_count = static_cast<std::size_t>(chunks);
  std::vector<double> chunk_f(chunk_count, 0.0), chunk_work(chunk_count, 0.0), chunk_saved(chunk_count, 0.0),
      chunk_inputs(chunk_count, 0.0);
  std::vector<double> dev_saved(devices, 0.0), dev_saved_other(devices, 0.0);  // activations kept, a microbatch
  // The part of dev_saved_other of the ops before a stack (the embeddings), a device's and a chunk's.
  std::vector<double> dev_saved_lead(devices, 0.0), chunk_lead(chunk_count, 0.0);
  // The stacks' final norms' part of dev_saved: what full recomputation keeps of them (they run once).
  std::vector<double> dev_stack_end(devices, 0.0);
  std::vector<double> dev_dense(devices, 0.0), dev_expert(devices, 0.0);          // parameters of the ops it runs
  std::vector<char> has_input_table(devices, 0), has_output_table(devices, 0);     // vocabulary tables it holds
  double vocab_table = 0;
  double input_copies = 0, output_copies = 0;  // copies of each vocabulary table on devices that lack it (below)
  bool tied = false;
  const bool transformer = std::holds_alternative<TransformerDesign>(job.design);
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
  double kv_heads = 0, q_heads = 0, kv_rank = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design); t && t->kv_lora_rank == 0 && t->heads > 0) {
    q_heads = static_cast<double>(t->heads);
    kv_heads = static_cast<double>(t->kv_heads > 0 ? t->kv_heads : t->heads);
    kv_rank = kv_heads < tp ? 1.0 : kv_heads / tp;
  }
  const bool kv_replicated = kv_heads > 0 && kv_heads < tp;
  int previous_layer = -1;  // the position of the last layer seen, in graph order
  // What enters each layer (a microbatch, bytes): the output of the op before its first, the
  // previous layer's or the embedding's; in an encoder-decoder's decoder also the encoder's output,
  // which its cross-attention reads (a CNN's feature maps change size block by block). What a
  // pipeline stage sends on and what full recomputation keeps a layer (since session 33; before,
  // the decoder embedding's size for every layer, an image's for a CNN).
  std::vector<double> layer_input(layer_ids.size(), 0.0);
  std::vector<double> layer_encoder(layer_ids.size(), 0.0);  // the encoder's output in it
  double last_output = 0, encoder_output = 0;
  // The (input, layer) pairs whose sequence-parallel gather is charged: a parallel block with one
  // norm projects it once (its branches' inputs fused, PaLM).
  std::set<std::pair<int, int>> sp_gathered;
  const auto* sp_design = std::get_if<TransformerDesign>(&job.design);
  const bool one_fused_input = sp_design != nullptr && sp_design->parallel_block && sp_design->parallel_norms <= 1;
  // Each device's last layer (its highest position): ZeRO-3 gathers it last, and its forward (and on
  // the last device what follows the layers) runs after that gather.
  std::vector<std::size_t> device_last_position(devices, 0);
  for (std::size_t pos = 0; pos < device_of_layer.size(); ++pos) {
    const auto d = static_cast<std::size_t>(device_of_layer[pos]);
    if (d < devices) device_last_position[d] = std::max(device_last_position[d], pos);
  }
  for (const auto& op : g.ops()) {
    const int op_index = static_cast<int>(&op - g.ops().data());
    const bool in_layer = op.layer >= 0;
    if (in_layer) {
      const std::size_t pos = position_of(op.layer);
      if (static_cast<int>(pos) != previous_layer && layer_input[pos] == 0) {
        const bool reads_encoder = encoder_output > 0 && op.name.rfind("decoder.", 0) == 0;
        layer_input[pos] = last_output + (reads_encoder ? encoder_output : 0);
        layer_encoder[pos] = reads_encoder ? encoder_output : 0;
      }
      previous_layer = static_cast<int>(pos);
    }
    const double output = bytes_per_value * (op.layer_output_elements > 0 ? op.layer_output_elements
                                             : op.n > 0                     ? static_cast<double>(op.m) * static_cast<double>(op.n) * static_cast<double>(op.count)
                                                                            : static_cast<double>(op.m));
    if (op.name == "encoder.final_norm") encoder_output = output;
    const std::size_t owner = in_layer                            ? static_cast<std::size_t>(device_of_layer[position_of(op.layer)])
                              : previous_layer >= last_main_layer ? devices - 1
                              : previous_layer < 0                 ? 0
                                                                   : static_cast<std::size_t>(device_of_layer[static_cast<std::size_t>(previous_layer)]);
    // (Its chunk likewise: the embeddings' the first, the head's the last.)
    const std::size_t chunk_owner = in_layer                            ? chunk_of_layer[position_of(op.layer)]
                                    : previous_layer >= last_main_layer ? chunk_count - 1
                                    : previous_layer < 0                 ? 0
                                                                         : chunk_of_layer[static_cast<std::size_t>(previous_layer)];
    const double energy_share = 1.0 / pp;
    // After its device's last gather: that device's last layer, and what follows the layers (head,
    // loss) on the last device (the embedding lookups come first).
    const bool forward_tail = in_layer ? position_of(op.layer) == device_last_position[owner]
                                       : op.kind != graph::OpKind::embedding && previous_layer >= 0;
    const auto forward_collective = [&](double s) {
      dev_tpf[owner] += s;
      if (forward_tail) dev_tail_f[owner] += s;
    };
    // Ops on the full d_model width are repeated on every rank of the tensor group, unless
    // sequence parallelism splits them along the sequence (Korthikanti et al. 2022).
    const double split = op.tensor_split || p.sequence_parallel ? tp : 1.0;
    // The share of the op's work on a rank: 1 / split, but where the key/value heads are replicated
    // (above) the products that make them (the fused qkv, a cross-attention's kv), the rotary
    // embedding that turns them and the attention that reads them hold kv_rank whole heads.
    double work_split = split;
    double kv_bytes = 0;  // a fused attention's key and value reads, all of the group's heads
    if (kv_replicated && in_layer && op.tensor_split) {
      // (TensorFlow 1.x's transposes of Q, K and V move the heads the product makes: a
      // self-attention's exactly; a cross-attention's keys over their own positions, taken as the
      // queries'.)
      if ((op.kind == graph::OpKind::matmul && ends_with(op.name, ".qkv")) || ends_with(op.name, ".split_heads")) {
        work_split = (q_heads + 2 * kv_heads) / (q_heads / tp + 2 * kv_rank);
      } else if (op.kind == graph::OpKind::matmul && ends_with(op.name, ".kv")) {
        work_split = kv_heads / kv_rank;
      } else if (ends_with(op.name, ".rotary") && op.name.find(".attn") != std::string::npos) {
        work_split = (q_heads + kv_heads) / (q_heads / tp + kv_rank);
      } else if (op.fused_attention) {
        kv_bytes = bytes_per_value * static_cast<double>(p.microbatch) * kv_heads * static_cast<double>(op.k) *
                   2 * static_cast<double>(op.n);
      }
    }
    // (What it keeps: its own positions' keys and values under context parallelism, 1 / cp.)
    const double kv_kept_bytes = op.fused_attention && cp > 1 ? kv_bytes / static_cast<double>(cp) : kv_bytes;
    const double flops = graph::executed_flops(op, fusion) / work_split;
    double bytes = graph::executed_bytes(op, fusion) / work_split;
    if (kv_bytes > 0) bytes += kv_bytes * (kv_rank / kv_heads - 1 / tp);
    if (op.expert) {
      // Expert parallelism: the graph's expert ops are already this device's share (its experts'
      // weights and the slots routed to them), split over the tensor group. Whole experts on every
      // rank of the group (expert_tensor: 1) read their weights whole; the slots are the rank's own.
      const double weights = bytes_per_value * static_cast<double>(op.count) * static_cast<double>(op.k) * static_cast<double>(op.n);
      bytes = p.expert_tensor == 1 ? weights + (op.bytes - weights) / tp : op.bytes / tp;
    }
    // 8-bit training runs the layers' weight products in 8 bits; attention, the router, the
    // embeddings and the output head stay at 16 bits (DeepSeek-V3, Sec. 3.3.1: "the embedding
    // module, the output head, MoE gating modules, normalization operators, and attention
    // operators" keep their original precision).
    const bool eight_bit_op = eight_bit && in_layer && op.kind == graph::OpKind::matmul;
    const std::string& op_precision = eight_bit && !eight_bit_op ? sixteen : job.precision;
    const hardware::DeviceModel& od = eight_bit && !eight_bit_op ? dev16 : dev;
    const bool gemm = graph::is_gemm(op.kind) || op.kind == graph::OpKind::router;
    // The products one device runs: tensor parallelism splits the columns of weight GEMMs and
    // the heads of attention; expert parallelism spreads the experts over the data ranks.
    // Megatron-LM splits a column-parallel GEMM's n and a row-parallel one's k (the attention
    // output and the FFN's down projection, whose outputs are all-reduced below).
    const bool heads_split = op.kind == graph::OpKind::batched_matmul;
    const bool row_parallel_output =
        in_layer && op.kind == graph::OpKind::matmul && (ends_with(op.name, ".out") || ends_with(op.name, ".down"));
    // A parallel block's attention output (`.attn.o`) is row-parallel too: its partial sums join the
    // feed-forward's before the layer's one all-reduce at `.ffn.down` (since session 43, a review: its
    // shape, kept input and bias rows had been a column-parallel product's).
    const bool row_parallel_shape =
        row_parallel_output || (in_layer && op.kind == graph::OpKind::matmul && ends_with(op.name, ".attn.o"));
    // (An expert's down projection split over the tensor group, expert_tensor = tensor, is split by
    // rows as a dense one, Megatron-Core's; since session 46, a review: costed by columns, reading
    // a whole input it does not hold. Whole experts, expert_tensor 1, are not split.)
    const bool row_parallel = row_parallel_shape && (!op.expert || p.expert_tensor != 1);
    // Whole experts on each rank of a tensor group (expert_tensor 1) run the rank's own share of the
    // slots through whole weights: m / t rows, n whole (the FLOPs are the same as by columns; the
    // shapes, bytes and casts are not; since session 49, reviews).
    const bool whole_experts = op.expert && p.expert_tensor == 1 && tp > 1;
    const double dev_n = heads_split || row_parallel || whole_experts ? static_cast<double>(op.n)
                                                                      : static_cast<double>(op.n) / (op.tensor_split ? work_split : tp);
    const double dev_k = row_parallel ? static_cast<double>(op.k) / tp : static_cast<double>(op.k);
    // An expert op is already the device's products: its E / G experts, each over the slots routed
    // to it from the G ranks of its expert-parallel group.
    const double dev_m = whole_experts ? static_cast<double>(op.m) / tp : static_cast<double>(op.m);
    // What a rank's product moves: its own operands and output, not 1 / t of the whole product's.
    // A column-parallel product reads the whole input (m x k) and a row-parallel one writes the
    // whole partial output (m x n) on every rank of the group (since session 43, a review: the
    // bytes had been the whole product's over t, which under-counted the qkv product's by about a
    // third on LLaMA-65B's tensor 8 and turned some small products' memory time compute-bound).
    // (Experts split over the group too, expert_tensor = tensor: each rank reads its slots' whole
    // input; since session 43, the same review.)
    if (op.kind == graph::OpKind::matmul && op.tensor_split && (!op.expert || p.expert_tensor != 1) && !op.implementation &&
        tp > 1 && !eight_bit_op) {
      const double cnt = static_cast<double>(op.count);
      const double whole = cnt * (static_cast<double>(op.m) * static_cast<double>(op.k) +
                                  static_cast<double>(op.k) * static_cast<double>(op.n) +
                                  static_cast<double>(op.m) * static_cast<double>(op.n));
      if (whole > 0) bytes = graph::executed_bytes(op, fusion) * cnt * (dev_m * dev_k + dev_k * dev_n + dev_m * dev_n) / whole;
    }
    if (eight_bit_op) {
      // The product reads its two operands in 8 bits and writes its output in 16.
      const double cnt = static_cast<double>(op.count);
      bytes = cnt * (dev_m * dev_k + dev_k * dev_n) + 2 * cnt * dev_m * dev_n;
    }
    const double dev_count = static_cast<double>(op.count) / (heads_split ? tp : 1.0);
    const double eta = cost_detail::op_efficiency(od, op, job.layout, job.fusion, dev_n, dev_count, dev_k, dev_m);
    const auto f = hardware::kernel_time(od, op_precision, flops, bytes, gemm, eta);
    const double bf = op.backward_factor;
    // The backward's bytes: bf times the forward's, or an op's own multiple (a TensorFlow 1.x
    // dropout's gradient: two of its forward's five kernels).
    const double bwd_bytes = (op.backward_bytes_factor >= 0 ? op.backward_bytes_factor : bf) * bytes;
    auto b = hardware::kernel_time(od, op_precision, bf * flops, bwd_bytes, gemm, eta);
    // A product's backward is two products of its forward's FLOPs and bytes, each with its own
    // shape: the input gradient dA = dC B^T (m x k, reducing over n) and the weight (or second
    // operand's) gradient dB = A^T dC (k x n, reducing over m).
    const bool two_products = (op.kind == graph::OpKind::matmul || op.kind == graph::OpKind::batched_matmul) &&
                              !op.fused_attention && bf == 2;
    // A product whose first operand takes no gradient (the data a first layer reads, a dispatch
    // mask) computes only the second operand's, k x n reducing over m (since session 46, a review:
    // costed at the forward's shape, 32 % short for a 16 x 8192 x 1024 product on an A100).
    const bool second_operand_only = (op.kind == graph::OpKind::matmul || op.kind == graph::OpKind::batched_matmul) &&
                                     !op.fused_attention && bf == 1;
    // A product split along its reduction (fewer tiles than SMs) sums its partial results in a pass
    // of its own (cost_detail::split_k_reduction), the forward's and each backward product's.
    const cost_detail::Reduction red_f =
        gemm ? cost_detail::split_k_reduction(od, op, op_precision, dev_m, dev_n, dev_k, dev_count) : cost_detail::Reduction{};
    cost_detail::Reduction red_b;
    // The input- and weight-gradient products' times (a sequence-parallel gather and reduce-scatter
    // run under them in Megatron-LM, below).
    double dgrad_s = 0, wgrad_s = 0, weight_product_s = 0;
    if (two_products) {
      const double dm = dev_m;
      const auto red_in = cost_detail::split_k_reduction(od, op, op_precision, dm, dev_k, dev_n, dev_count);
      const auto red_w = cost_detail::split_k_reduction(od, op, op_precision, dev_k, dev_n, dm, dev_count);
      red_b = {red_in.seconds + red_w.seconds, red_in.flops + red_w.flops, red_in.bytes + red_w.bytes};
      const double aligned = cost_detail::alignment(od, op, dev_n, dev_k);
      const auto input_grad = hardware::kernel_time(
          od, op_precision, flops, bytes, true, aligned * cost_detail::gemm_efficiency_at(od, op, job.layout, dm, dev_k, dev_n, dev_count));
      const auto weight_grad = hardware::kernel_time(
          od, op_precision, flops, bytes, true, aligned * cost_detail::gemm_efficiency_at(od, op, job.layout, dev_k, dev_n, dm, dev_count));
      b.seconds = input_grad.seconds + weight_grad.seconds - od.launch_s;  // one launch of the two is counted below
      dgrad_s = input_grad.seconds;
      wgrad_s = weight_grad.seconds;
      weight_product_s = wgrad_s + red_w.seconds;
    } else if (second_operand_only) {
      red_b = cost_detail::split_k_reduction(od, op, op_precision, dev_k, dev_n, dev_m, dev_count);
      b = hardware::kernel_time(od, op_precision, flops, bytes, true,
                                cost_detail::alignment(od, op, dev_n, dev_k) *
                                    cost_detail::gemm_efficiency_at(od, op, job.layout, dev_k, dev_n, dev_m, dev_count));
      weight_product_s = b.seconds + red_b.seconds;
    }
    // Full recomputation runs every layer's forward again; selective only the attention ops on the
    // score matrix (fused attention already recomputes them in its backward kernel).
    const bool ffn_activation =
        in_layer && op.kind == graph::OpKind::elementwise && ends_with(op.name, ".act") && op.name.find(".ffn") != std::string::npos;
    const bool swiglu = p.recompute_latent && ffn_activation;
    const bool latent_recomputed =
        p.recompute_latent && in_layer &&
        (op.kind == graph::OpKind::norm || ends_with(op.name, ".q_b") || ends_with(op.name, ".kv_b") ||
         (ends_with(op.name, ".rotary") && op.name.find(".attn") != std::string::npos) || swiglu);
    // Full recomputation checkpoints the blocks: the stack's final norm, after the last block, runs
    // once (Megatron-LM's checkpointed forward wraps the transformer layers only).
    const bool stack_end = op.name == "decoder.final_norm" || op.name == "encoder.final_norm";
    // (DeepSpeed's partitioned checkpoint of a layer's input, GPT-NeoX's, runs once: the checkpointed
    // forward clones it, the recomputation starts from the gathered copy.)
    const bool checkpoint = ends_with(op.name, ".checkpoint");
    const bool recomputed = in_layer && !checkpoint && ((p.recompute && !stack_end) || (p.recompute_selective && op.score_matrix) ||
                                         (p.recompute_elementwise && !gemm) || latent_recomputed);
    // An op launches `kernels` kernels forward and twice as many backward (input and weight
    // gradients); kernel_time counted one of each.
    const double kernels = static_cast<double>(op.kernels);
    // An 8-bit product's operands are cast in passes of their own: forward, its input is read in
    // 16 bits and written in 8 (DeepSeek-V3, Sec. 3.5.2: "read 128 BF16 activation values ... from
    // HBM for quantization, and the quantized FP8 values are then written back to HBM, only to be
    // read again for MMA"); backward, the output's gradient is cast the same way, and the weight
    // gradient's operands, the kept 8-bit input and that gradient, are "read out, dequantized,
    // transposed, re-quantized ... and stored" (read and write 1 B each). The weights' casts, once
    // a step, are left out.
    double cast_fwd_bytes = 0, cast_bwd_bytes = 0, cast_f = 0, cast_b = 0;
    if (eight_bit_op) {
      const double a = dev_m * dev_k * static_cast<double>(op.count), out = dev_m * dev_n * static_cast<double>(op.count);
      // An expert product whose tokens were quantized before an 8-bit dispatch casts them once a
      // token, not once a slot (DeepSeek-V3, Sec. 3.3.3: "we quantize the activation before MoE
      // up-projections into FP8 and then apply dispatch components"; since session 49, a review).
      const double cast_rows = job.expert_dispatch == "fp8" && op.dispatched_rows > 0 ? op.dispatched_rows / (p.sequence_parallel ? tp : 1.0) : dev_m * static_cast<double>(op.count);
      cast_fwd_bytes = 3 * cast_rows * dev_k;
      cast_bwd_bytes = 3 * out + 2 * a + 2 * out;
      cast_f = hardware::kernel_time(dev16, sixteen, 0, cast_fwd_bytes, false).seconds;
      cast_b = hardware::kernel_time(dev16, sixteen, 0, cast_bwd_bytes, false).seconds + dev16.launch_s;
    }
    // A bias's gradient is the output's gradient summed over its rows, a reduction kernel of its own
    // that reads that gradient once (PyTorch's addmm and linear backward, Megatron-LM's linear layers,
    // TensorFlow's BiasAddGrad); on a TPU, XLA fuses it into the fusion that produces the gradient.
    // Gradients are 16-bit under fp8. A row-parallel layer adds its bias after the all-reduce, on
    // every rank of the tensor group, or on its sequence shard under sequence parallelism.
    double bias_bwd_flops = 0, bias_bwd_bytes = 0, bias_b = 0;
    if (op.bias && job.hardware.kind != "tpu") {
      const double rows = row_parallel && p.sequence_parallel ? dev_m / tp : dev_m;
      const double cnt = static_cast<double>(op.count);
      bias_bwd_flops = cnt * rows * dev_n;
      bias_bwd_bytes = bytes_per_value * cnt * dev_n * (rows + 1);
      bias_b = hardware::kernel_time(eight_bit_op ? dev16 : od, eight_bit_op ? sixteen : op_precision, bias_bwd_flops,
                                     bias_bwd_bytes, false)
                   .seconds;
    }
    // (A row-parallel product adds its bias after the all-reduce, on its sequence shard under
    // sequence parallelism, as the backward's reduction below.)
    // (GPT-NeoX's and LargeScale's bias adds are their own glue ops, `eager: neox` or `largescale`:
    // none here, whatever the fusion.)
    const cost_detail::Reduction bias_f = cost_detail::unfused_bias_add(
        eight_bit_op ? dev16 : od, op, eight_bit_op ? sixteen : op_precision,
        job.neox || job.largescale ? graph::Fusion::elementwise : fusion,
        job.hardware.kind == "tpu",
        row_parallel && p.sequence_parallel ? dev_m / tp : dev_m, dev_n, bytes_per_value);
    const double f_s = f.seconds + (kernels - 1) * od.launch_s + cast_f + red_f.seconds + bias_f.seconds;
    // A further use of shared weights sums its weight gradient into theirs: a memory-bound pass.
    double sum_b = 0;
    if (op.gradient_sum_bytes > 0) sum_b = hardware::kernel_time(od, op_precision, 0, op.gradient_sum_bytes / split, false).seconds;
    // An op with no backward (the images a network reads) launches nothing for it.
    // (A product or convolution that computes only its second operand's gradient launches one
    // product a kernel.)
    const bool one_backward_product = second_operand_only || (op.kind == graph::OpKind::conv2d && bf == 1);
    const double backward_kernels =
        op.backward_kernels > 0 ? static_cast<double>(op.backward_kernels) : one_backward_product ? kernels : 2 * kernels;
    const double b_s = bf == 0 ? 0.0 : b.seconds + (backward_kernels - 1) * od.launch_s + cast_b + bias_b + sum_b + red_b.seconds;
    const double recompute = recomputed ? f_s : 0;
    dev_f[owner] += f_s;
    dev_b[owner] += b_s + recompute;
    // The shared experts' kernels (not the add of their output to the combined one, which waits
    // for the combine): the windows the all-to-all may run under (`shared_expert_overlap`). A
    // zero-bubble schedule defers the weight-gradient work to a pass of its own, beside no
    // all-to-all: its backward window is the input gradient's.
    if (in_layer && op.name.find(".shared.") != std::string::npos && !ends_with(op.name, ".shared.add")) {
      const bool second = ends_with(op.name, ".shared.down");
      const double deferred = p.zero_bubble && op.kind == graph::OpKind::matmul ? weight_product_s + bias_b + sum_b : 0.0;
      auto& w = dev_shared[owner];
      w[second ? fc2_fwd : fc1_fwd] += f_s;
      w[second ? fc2_bwd : fc1_bwd] += std::max(0.0, b_s - deferred);
      w[second ? fc2_again : fc1_again] += recompute;
    }
    // W: a weight product's weight-gradient product (its weights shared or not: a tied head's
    // gradient is computed into the table), the bias's gradient and a shared weight's summed
    // gradient; a convolution's half of its backward (all of it where its input takes none); a
    // lookup table's whole backward (not a data input's, which passes a gradient on; since session
    // 49, reviews).
    if (op.kind == graph::OpKind::matmul) {
      dev_w[owner] += weight_product_s + bias_b + sum_b;
    } else if (op.kind == graph::OpKind::conv2d) {
      dev_w[owner] += (bf == 1 ? 1.0 : 0.5) * b_s;
    } else if (op.kind == graph::OpKind::embedding && op.params > 0) {
      dev_w[owner] += b_s;
    }
    if (forward_tail) dev_tail_f[owner] += f_s;
    chunk_f[chunk_owner] += f_s;
    chunk_work[chunk_owner] += f_s + b_s + recompute;
    // (Parameters are divided by t below: a replicated key/value projection's weights count whole
    // on every rank.) Every rank of the tensor group holds whole what the group does not split: a
    // norm's scale and shift, a learned position table and token types, and a row-parallel
    // product's bias, added after the all-reduce (Megatron-LM's RowParallelLinear; since session
    // 46, a review: they had been divided by t too).
    double held_params = work_split != split ? op.params * tp / work_split : op.params;
    if (!op.expert && tp > 1) {
      if (!op.tensor_split) held_params = op.params * tp;
      held_params += op.replicated_params * (tp - 1);
      if (row_parallel && op.bias) held_params += static_cast<double>(op.count * op.n) * (tp - 1);
    }
    (op.expert ? dev_expert : dev_dense)[owner] += held_params;
    // A lookup or a head that shares a vocabulary table (params 0) on a device that does not hold
    // that table keeps a copy of it (Megatron-LM's shared word embeddings on the last stage; a
    // multi-token prediction module's input embedding there). DualPipe pairs the first and the last
    // stage on one device: no copy.
    if (vocab_table > 0 && devices > 1 && !p.dualpipe) {
      const bool lookup = op.kind == graph::OpKind::embedding && ends_with(op.name, "embedding");
      const bool head = op.kind == graph::OpKind::matmul && (ends_with(op.name, "lm_head") || op.name == "mlm.logits");
      if (lookup || head) {
        // Input table: the lookups', and a tied head's; output table: an untied head's.
        std::vector<char>& has = lookup || tied ? has_input_table : has_output_table;
        if (op.params >= vocab_table) {
          has[owner] = 1;
        } else if (!has[owner]) {
          has[owner] = 1;
          dev_dense[owner] += vocab_table;
          (lookup || tied ? input_copies : output_copies) += 1;
        }
      }
    }
    const double e_f = hardware::kernel_energy(od, op_precision, flops + red_f.flops + bias_f.flops,
                                               bytes + cast_fwd_bytes + red_f.bytes + bias_f.bytes, f_s, gemm);
    const double e_b = hardware::kernel_energy(
        od, op_precision, bf * flops + bias_bwd_flops + red_b.flops,
        bwd_bytes + cast_bwd_bytes + bias_bwd_bytes + op.gradient_sum_bytes / split + red_b.bytes, b_s, gemm);
    busy_energy += energy_share * (e_f + e_b + (recompute > 0 ? e_f : 0));
    average_busy_s += energy_share * (f_s + b_s + recompute);
    // A column-parallel product (the attention's input projections, the feed-forward's up and
    // gate, experts split over the tensor group, the output head) keeps its input for the weight
    // gradient, and without sequence parallelism that input is whole on every rank of the tensor
    // group: the 4 sbh of Korthikanti et al. 2022's sbh (10 + 24 / t) a layer that do not shrink
    // with t (Sec. 4.1: the QKV's and the first linear's inputs). Sequence parallelism keeps the
    // input's sequence shard and gathers it again in the backward. (Since session 34; before, it
    // shrank with t too.)
    const bool whole_input = op.kind == graph::OpKind::matmul && op.tensor_split && !row_parallel_shape &&
                             !p.sequence_parallel && (!op.expert || p.expert_tensor != 1);
    const double saved_split = whole_input ? 1.0 : split;
    if (!in_layer) {
      // A fused dropout riding on a split op (the embeddings' after their all-reduce) keeps its
      // full-width mask, a byte an element, whole on every rank of the tensor group but under
      // sequence parallelism (a review of session 43: it had been split with the op's own).
      const double mask = op.tensor_split ? std::min(op.saved_bytes, op.dropout_elements) : 0.0;
      const double kept_other = (op.saved_bytes - mask) / saved_split + mask / (p.sequence_parallel ? tp : 1.0);
      dev_saved_other[owner] += kept_other;
      if (previous_layer < last_main_layer) {
        dev_saved_lead[owner] += kept_other;
        chunk_lead[chunk_owner] += kept_other;
      }
    } else if (!(p.recompute_elementwise && !gemm && !ffn_activation) && !(p.recompute_latent && op.kind == graph::OpKind::norm)) {
      // (recomputed elementwise ops and norms keep nothing; under `recompute: elementwise` a
      // feed-forward's activation keeps its inputs and the down projection nothing, LLaMA's "outputs
      // of linear layers": since session 46, a review: the activation's output had been kept, from
      // which a gated unit's backward cannot be run. Unfused attention under it keeps the scores
      // product's output, from which the softmax and dropout are rerun, and not the probabilities:
      // the context product's kept first input stands for it, the same b x heads x s x s values at
      // the same precision, so the bytes are those of the right tensor on the same device; a review
      // of session 47 asked)
      // An 8-bit product keeps its input for the weight gradient as the 8-bit cast it ran on
      // (Transformer Engine; DeepSeek-V3, Sec. 3.3.1: "activations to be stored in FP8").
      const double kept = eight_bit_op ? 0.5 : 1.0;
      double saved = op.saved_bytes - (p.recompute_selective ? op.score_saved_bytes : 0);
      // With the up-projections recomputed, fused attention keeps its output (count x q x width)
      // and row statistics; the queries, keys and values come back from the latents, which the
      // up-projections keep as their inputs.
      if (p.recompute_latent && op.fused_attention && latent_design) {
        const double c_q = static_cast<double>(op.count * op.m);
        saved = bytes_per_value * c_q * (v_width + (q_recomputed ? 0.0 : qk_width)) + 4 * c_q;
      }
      // The feed-forward activation's output is recomputed from its input, which it keeps (in 8
      // bits when the products run in 8 bits: "stored in FP8", Sec. 3.3.3), so the down projection
      // keeps nothing.
      double keep = kept;
      if (p.recompute_latent && swiglu && eight_bit) keep = 0.5;
      if ((p.recompute_latent || p.recompute_elementwise) && op.kind == graph::OpKind::matmul && ends_with(op.name, ".down") &&
          op.name.find(".ffn") != std::string::npos) {
        saved = 0;
      }
      // Recomputed from its inputs, the gate and up halves (one tensor ungated), which it keeps:
      // not the eager chain's third tensor.
      if (p.recompute_elementwise && ffn_activation) saved = std::min(saved, (gated_ffn ? 2.0 : 1.0) * bytes_per_value * static_cast<double>(op.m));
      double kept_bytes = keep * saved / saved_split;
      // An input the op before keeps (a ResNet block's first convolution's), kept again where the
      // two lie on different pipeline devices: the first layer of a stage after the first
      // (since session 43, a review: it had been counted on neither side's receiving device).
      if (op.shared_input_bytes > 0) {
        const std::size_t pos = position_of(op.layer);
        if (pos > 0 && device_of_layer[pos] != device_of_layer[pos - 1]) kept_bytes += keep * op.shared_input_bytes / saved_split;
      }
      // A fused attention keeps the key/value heads it read, whole ones where they are replicated.
      if (kv_bytes > 0) kept_bytes += keep * kv_kept_bytes * (kv_rank / kv_heads - 1 / tp);
      dev_saved[owner] += kept_bytes;
      if (stack_end) dev_stack_end[owner] += kept_bytes;
      chunk_saved[chunk_owner] += kept_bytes;
    }
    // Experts run whole on each rank of the tensor group (expert_tensor: 1) need no collective: each
    // rank computes its own sequence shard's slots, and the all-to-all below carries them.
    const bool experts_split = !op.expert || p.expert_tensor != 1;
    if (row_parallel_output && c.tensor > 1 && experts_split) {
      // Row-parallel outputs are all-reduced once forward and once backward (Megatron), and once
      // more where recomputation runs the forward pass again. Sequence parallelism turns each
      // all-reduce into a reduce-scatter and an all-gather: the same volume, two start-ups. An
      // expert op's output is every slot of the device's `count` experts.
      const double out_bytes = static_cast<double>(op.m * op.count * op.n) * bytes_per_value;
      const double one = p.sequence_parallel
                             ? comm::collective_s(comm::Collective::reduce_scatter, out_bytes, tp_group) +
                                   comm::collective_s(comm::Collective::all_gather, out_bytes, tp_group)
                             : comm::collective_s(comm::Collective::all_reduce, out_bytes, tp_group);
      // A parallel block whose branches read two norms' outputs (Falcon's ln_attn and ln_mlp) has
      // two column-parallel inputs, each of whose gradients its backward all-reduces (Megatron-LM's
      // ColumnParallelLinear); one norm's output, which both branches project, is one input
      // (PaLM: "the MLP and Attention input matrix multiplications can be fused"): one (since
      // session 46, a review: one for both).
      const bool two_inputs = parallel_two_norms && ends_with(op.name, ".ffn.down");
      if (p.sequence_parallel) {
        // Sequence parallelism: this output is reduce-scattered into the sequence shards forward
        // (again where recomputation reruns it), and its gradient all-gathered backward. The
        // gathers of the next products' inputs are charged where those products are, below
        // (since session 48; before, here, as the forward's reduce-scatter and gather twice).
        const double rs = comm::collective_s(comm::Collective::reduce_scatter, out_bytes, tp_group);
        dev_tp[owner] += (p.recompute ? 2 : 1) * rs + comm::collective_s(comm::Collective::all_gather, out_bytes, tp_group);
        forward_collective(rs);
      } else {
        dev_tp[owner] += (p.recompute ? 3 : 2) * one + (two_inputs ? one : 0.0);
        forward_collective(one);
      }
    }
    // A decoder layer's cross-attention projects the encoder's output, which every rank holds
    // whole: its column-parallel key/value product all-reduces that input's gradient in the
    // backward (Megatron-LM's ColumnParallelLinear, Mesh TensorFlow's einsum over the split heads),
    // one a decoder layer (since session 46, a review: not charged); under sequence parallelism, as
    // every product reading a sequence-split tensor, below.
    if (in_layer && c.tensor > 1 && !p.sequence_parallel && op.kind == graph::OpKind::matmul && op.tensor_split &&
        ends_with(op.name, ".kv") && op.name.find(".cross") != std::string::npos) {  // (the Evolved Transformer's .cross1 and .cross2 too)
      const double in_bytes = static_cast<double>(op.m * op.count * op.k) * bytes_per_value;
      dev_tp[owner] += comm::collective_s(comm::Collective::all_reduce, in_bytes, tp_group);
    }
    // Sequence parallelism: a column-parallel product whose input is a full-width tensor (a norm's
    // output, the encoder's), which the ranks hold as sequence shards, all-gathers it forward (again
    // where recomputation reruns the layer), and, keeping only its shard, gathers it again in the
    // backward for the weight gradient and reduce-scatters its input gradient (Korthikanti et al.
    // 2022, Sec. 4.2.2; Megatron-LM's LinearWithGradAccumulationAndAsyncCommunication). Products
    // reading one tensor (a parallel block's attention and feed-forward, one norm) gather it once.
    // `overlapped` (Megatron-LM: async_op, CUDA_DEVICE_MAX_CONNECTIONS=1): the second gather runs
    // under the input-gradient product and the reduce-scatter under the weight-gradient one, each
    // exposed only past it and slowing what it hides as data-parallel overlap does. Since session
    // 48 (before, the second gather was not charged; a review placed the pair here, under the
    // consumer's own products). Experts split over the tensor group read the dispatcher's gathered
    // tokens (Megatron-Core's explicit_expert_comm): gathered forward, reduce-scattered backward,
    // no second gather.
    // Latent attention's down projections run duplicated on the shard (Megatron-Core's
    // linear_q_down_proj and linear_kv_down_proj, parallel_mode 'duplicated'): no gather; the
    // latents are gathered at the up projections, again where `recompute: latent` reruns them. A
    // product reached through split elementwise passes (an Evolved Transformer's padding mask and
    // depthwise convolutions) reads the full-width tensor before them. Each product gathers its
    // own input (Megatron-LM's ColumnParallelLinear), but a parallel block's branches reading one
    // norm, one fused input projection (PaLM), once (a review of session 48).
    const bool latent_down = ends_with(op.name, ".q_a") || ends_with(op.name, ".kv_a");
    if (c.tensor > 1 && p.sequence_parallel && op.kind == graph::OpKind::matmul && op.tensor_split && !row_parallel_shape &&
        !latent_down) {
      std::vector<int> inputs = g.inputs_of(op_index);
      while (!inputs.empty() && g.op(inputs.front()).tensor_split && g.op(inputs.front()).kind == graph::OpKind::elementwise) {
        inputs = g.inputs_of(inputs.front());
      }
      const bool split_input = !inputs.empty() && !g.op(inputs.front()).tensor_split;
      const double in_bytes = static_cast<double>(op.m * op.count * op.k) * bytes_per_value;
      const bool dispatched = op.expert && p.expert_tensor != 1 && ends_with(op.name, ".experts.up");
      if (dispatched) {
        const double ag = comm::collective_s(comm::Collective::all_gather, in_bytes, tp_group);
        dev_tp[owner] += (p.recompute ? 2 : 1) * ag + comm::collective_s(comm::Collective::reduce_scatter, in_bytes, tp_group);
        forward_collective(ag);
      } else if (split_input && !op.expert &&
                 (!one_fused_input || sp_gathered.insert({inputs.front(), op.layer}).second)) {
        const double ag = comm::collective_s(comm::Collective::all_gather, in_bytes, tp_group);
        const double rs = comm::collective_s(comm::Collective::reduce_scatter, in_bytes, tp_group);
        double backward = ag + rs;
        if (p.sequence_parallel_backward == "overlapped") {
          const auto hidden = [&](double comm_s, double window) {
            return std::max(0.0, comm_s - window) + std::min(comm_s, window) * overlap_share;
          };
          backward = hidden(ag, dgrad_s) + hidden(rs, wgrad_s);
        }
        const bool rerun = in_layer && (p.recompute || (p.recompute_latent && (ends_with(op.name, ".q_b") || ends_with(op.name, ".kv_b"))));
        dev_tp[owner] += (rerun ? 2 : 1) * ag + backward;
        forward_collective(ag);
      }
    }
    // (Any op with a full-width dropout: the embeddings' too, whose output every rank holds whole
    // after its all-reduce; since session 43, before which only unsplit ops drew one.)
    if (op.dropout_elements > 0 && c.tensor > 1 && !p.sequence_parallel && p.dropout_masks == "allreduce") {
      // Mesh TensorFlow's dropout on a tensor every rank of the tensor group holds whole: the random
      // tensor (the activation's dtype) drawn on every core, zeroed on all but the first and
      // all-reduced over the group (SimdMeshImpl.random), forward only (the backward multiplies by
      // the mask it kept), again where recomputation runs the forward. Split along the sequence
      // (sequence parallelism) the ranks hold different slices and draw their own.
      // The mask is drawn for batch x d_model and shared by a sequence's positions: Mesh
      // TensorFlow's LayerStack._dropout passes noise_shape = batch dims + [model_dim]
      // (mesh_tensorflow/transformer/transformer.py), so the random tensor is the tokens' over the
      // stack's sequence length (since session 46, a review: tokens x d_model, 6 % of T5's step).
      double positions = 1;
      if (const auto* t = std::get_if<TransformerDesign>(&job.design)) {
        const bool decoder_side = t->arch == TransformerDesign::Arch::encoder_decoder && op.name.rfind("decoder.", 0) == 0;
        positions = static_cast<double>(std::max<std::int64_t>(1, decoder_side && t->target_seq_len > 0 ? t->target_seq_len : t->seq_len));
      }
      const double mask_s = comm::collective_s(comm::Collective::all_reduce, op.dropout_elements / positions * bytes_per_value, tp_group);
      dev_tp[owner] += (recomputed ? 2 : 1) * mask_s;
      forward_collective(mask_s);
    }
    if (cp > 1 && (op.fused_attention || ends_with(op.name, ".scores"))) {
      // Context parallelism as Llama 3 runs it (Dubey et al. 2024, Sec. 3.3.2: "all-gather based
      // ... we first all-gather the K and V tensors, and then compute attention output for the
      // local Q tensor chunk"), as Transformer Engine implements it (AttnFuncWithCPAndKVAllGather,
      // cp_comm_type "all_gather"): the keys and values of the whole sequence, the rank's key/value
      // heads, gathered over the context group before each attention forward (again where
      // recomputation runs it) and again before its backward, the rank keeping only its own
      // positions' (since session 40, a review; before, the gathered ones were kept and the
      // backward did not gather), their gradients reduce-scattered back after the backward.
      // (An unfused attention keeps what it gathered: its backward gathers nothing.)
      // Exposed, as the tensor group's collectives are (Llama 3 found the all-gather's latency
      // small beside long-context attention; Megatron-LM's ring overlaps its sends).
      const auto* t = std::get_if<TransformerDesign>(&job.design);
      const double hd = static_cast<double>(t->head_dim > 0 ? t->head_dim : t->d_model / std::max<std::int64_t>(1, t->heads));
      const double gathered = static_cast<double>(p.microbatch) * static_cast<double>(t->seq_len) * 2 * kv_rank * hd * bytes_per_value;
      const double gathers = (recomputed ? 2 : 1) + (op.fused_attention ? 1 : 0);
      const double kv_s = gathers * comm::collective_s(comm::Collective::all_gather, gathered, cp_group) +
                          comm::collective_s(comm::Collective::reduce_scatter, gathered, cp_group);
      dev_tp[owner] += kv_s;  // exposed in the slot as the tensor group's; reported apart (context_comm_s)
      dev_cp[owner] += kv_s;
      forward_collective(comm::collective_s(comm::Collective::all_gather, gathered, cp_group));
    }
    if (c.tensor > 1 && !in_layer && transformer) {
      // Outside the layers, Megatron-LM's vocabulary-parallel embedding sums its ranks' lookups
      // (VocabParallelEmbedding: an all-reduce of its output forward; a reduce-scatter into the
      // sequence-parallel region), the output layer's input gradient is summed over the group
      // backward (copy_to_tensor_model_parallel_region; with sequence parallelism the head gathers
      // its input as the layers' column-parallel products do, above), and the vocabulary-parallel cross entropy
      // all-reduces three values a token (the maximum, the target logit, the sum of exponentials,
      // fp32). Once a microbatch each: recomputation repeats the layers only.
      const auto collective = [&](comm::Collective k, double bytes) { return comm::collective_s(k, bytes, tp_group); };
      const double tokens_bytes = static_cast<double>(op.m) * bytes_per_value;
      if (op.kind == graph::OpKind::embedding && ends_with(op.name, "embedding")) {
        // (Under sequence parallelism its backward all-gathers the gradient back.)
        const double out = tokens_bytes * static_cast<double>(op.n);
        const double forward = collective(p.sequence_parallel ? comm::Collective::reduce_scatter : comm::Collective::all_reduce, out);
        dev_tp[owner] += forward + (p.sequence_parallel ? collective(comm::Collective::all_gather, out) : 0.0);
        forward_collective(forward);
      } else if (op.kind == graph::OpKind::matmul && (ends_with(op.name, "lm_head") || op.name == "mlm.logits")) {
        // (Under sequence parallelism the head gathers its input as every column-parallel product
        // reading a sequence-split tensor does, above: forward, again backward, and its input
        // gradient reduce-scattered.)
        const double input = tokens_bytes * static_cast<double>(op.k);
        if (!p.sequence_parallel) dev_tp[owner] += collective(comm::Collective::all_reduce, input);
        const double loss = 3 * collective(comm::Collective::all_reduce, 4.0 * static_cast<double>(op.m));
        dev_tp[owner] += loss;
        forward_collective(loss);
      }
    }
    if (op.expert && ends_with(op.name, ".experts.up")) {
      ++moe_layers;
      moe_bytes += static_cast<double>(op.m * op.count * op.k) * bytes_per_value;  // routed tokens x d_model
      dev_moe[owner] += static_cast<double>(op.m * op.count * op.k) * bytes_per_value;
    }
    last_output = output;
    c.ops.push_back({op.name, graph::to_string(op.kind), "fwd", flops + red_f.flops + bias_f.flops,
                     bytes + cast_fwd_bytes + red_f.bytes + bias_f.bytes, f_s, e_f, f.memory_bound ? "memory" : "compute",
                     op.layer});
    // The backward row holds the forward that recomputation runs again before it: its time, and
    // (since session 37, from a review; before, only its time) its FLOPs, bytes and energy.
    const double re_flops = recompute > 0 ? flops + red_f.flops + bias_f.flops : 0.0;
    const double re_bytes = recompute > 0 ? bytes + cast_fwd_bytes + red_f.bytes + bias_f.bytes : 0.0;
    c.ops.push_back({op.name, graph::to_string(op.kind), "bwd", bf * flops + bias_bwd_flops + red_b.flops + re_flops,
                     bwd_bytes + cast_bwd_bytes + bias_bwd_bytes + op.gradient_sum_bytes / split + red_b.bytes + re_bytes,
                     b_s + recompute, e_b + (recompute > 0 ? e_f : 0.0),
                     b.memory_bound ? "memory" : "compute", op.layer});
  }
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
  std::vector<double> dev_inputs(devices, 0.0);  // the inputs of each device's layers, summed
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
  std::vector<double> dev_pp(devices, 0.0);
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
  double pp_comm = 0;  // the busiest device's (below)
  // MoE: dispatch and combine all-to-all, forward and backward, over the expert-parallel group.
  // Megatron-Core numbers the experts' ranks as it numbers the dense ones, with the experts' own
  // tensor degree (its expert RankGenerator: tp = expert_tensor_parallel_size, order tp-cp-ep-dp-pp):
  // an expert-parallel group's ranks are expert_tensor apart, consecutive where the experts run
  // whole on each rank, and the ranks holding copies of an expert expert_tensor x G apart (since
  // session 34; before, `tensor` and, for one copy a data rank, 1).
  const std::int64_t expert_stride = p.expert_tensor == 1 ? 1 : c.tensor;
  const comm::Group ep_group = group_of(job, expert_group, expert_stride, intra, inter);
  // On a torus an all-to-all crosses the bisection: half of every chip's data goes to the other
  // half over 2 k links (2-D, k x k chips) or 2 k^2 links (3-D, k^3): k/2 (2-D) or 3k/4 (3-D)
  // times longer than each chip injecting its data over its own 4 or 6 links.
  double bisection = 1;
  if (job.hardware.node_topology == "torus-2d") bisection = std::max(1.0, std::sqrt(eg) / 2);
  if (job.hardware.node_topology == "torus-3d") bisection = std::max(1.0, 0.75 * std::cbrt(eg));
  // A mesh (a slice without wraparound links, above) has half the links across its middle.
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
  // transfers, as the tensor-parallel all-reduces above go from 2 to 3 a layer.
  const double a2a_transfers = p.recompute ? 6 : 4;
  // (Here for all the model's expert layers; the busiest device's share is taken below.)
  const bool fp8_dispatch = eight_bit && job.expert_dispatch == "fp8";
  const double a2a_bytes = a2a_transfers * (moe_bytes / tp) * (fp8_dispatch ? 0.75 : 1.0);
  double moe_comm = moe_layers > 0 && expert_group > 1 ? spread_s(a2a_bytes) : 0;
  std::int64_t top_k = 1, route_nodes = 0, route_devices = 0;
  if (const auto* t = std::get_if<TransformerDesign>(&job.design)) {
    top_k = t->top_k;
    route_nodes = t->route_nodes;
    route_devices = t->route_devices;
  }
  if (moe_comm > 0 && route_devices > 0) {
    // Device-limited routing: a token is sent once to each device its top_k experts lie on, at
    // most route_devices of the group (less its own), not once a slot.
    const double copies = std::min({static_cast<double>(route_devices), static_cast<double>(top_k), eg});
    moe_comm = spread_s(a2a_bytes / static_cast<double>(top_k) * copies);
  }
  if (moe_comm > 0 && route_nodes > 0 && ep_group.nodes > 1) {
    // Node-limited routing: a token crosses the network once for each node its top_k experts lie
    // on (at most route_nodes of the group's nodes, less its own), and is forwarded to the
    // experts' GPUs over NVLink; the two overlap (DeepSeek-V3, Sec. 3.2.2).
    const double nodes = static_cast<double>(ep_group.nodes);
    const double copies = std::min({static_cast<double>(route_nodes), static_cast<double>(top_k), nodes}) * (nodes - 1) / nodes;
    const double node_size = most;  // the group's ranks on its fullest node
    const double network_s = a2a_bytes / static_cast<double>(top_k) * copies / inter;
    const double forward_s = a2a_bytes * (node_size - 1) / node_size / intra;
    moe_comm = std::max(network_s, forward_s);
  }
  // The busiest device: its layers' and its other ops' work, and the all-to-all of its expert
  // layers. Under DualPipe a device holds stages i and p - 1 - i (v = 1) and runs each for half the
  // microbatches: half of each's work a microbatch.
  const auto moe_of = [&](std::size_t d) { return moe_bytes > 0 ? moe_comm * dev_moe[d] / moe_bytes : 0.0; };
  const double layers_d = static_cast<double>(layers);
  // A device's share of a per-stage quantity: its stage's, or under DualPipe the average of its two.
  const bool paired = p.dualpipe && devices > 1;
  const auto on_device = [&](const std::vector<double>& v, std::size_t d) {
    return paired ? 0.5 * (v[d] + v[devices - 1 - d]) : v[d];
  };
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
  // Experts are sharded over the expert-parallel group: each device holds 1 / G of them, whose
  // gradients are all-reduced only among the data / G ranks that hold the same experts (below).
  // Each device holds the parameters of the ops it runs (its layers', and the embeddings' on the
  // first, the head's on the last), split over the tensor group; experts over the expert group too;
  // and the copies of shared vocabulary tables (above; their gradients are all-reduced below).
  // Under DualPipe a device holds two
  // stages: their average here, doubled where the weights and gradients are counted (below).
  const auto dense_on = [&](std::size_t d) { return on_device(dev_dense, d) / tp; };
  // Whole experts on every rank of a tensor group (expert_tensor: 1) are G experts' groups laid
  // over the tensor x data ranks (Megatron-Core: expert parallel x expert data parallel = tensor x
  // data when the experts' tensor degree is 1): each rank holds E / G experts whole, and the
  // tensor ranks hold copies of one another's (since session 33; before, half of them at tensor 2).
  const double et = p.expert_tensor == 1 ? 1.0 : tp;
  const double expert_copies = (tp / et) * (static_cast<double>(c.data) / eg);  // ranks holding each expert
  const auto expert_on = [&](std::size_t d) { return on_device(dev_expert, d) / (et * eg); };
  // ZeRO shards a parameter's gradients and states over the ranks that hold a copy of it: the data
  // group (or a hybrid-sharding group) for the dense parameters, only the data / G ranks that hold
  // the same experts for the experts' (Megatron-Core's expert data-parallel group).
  const double expert_shard = std::max(1.0, (tp / et) * static_cast<double>(shard) / eg);
  // A chip whose cores have memory of their own (TPU v2, v3) holds a copy of its dense parameters
  // on each core, their gradients and optimizer state too, and updates each, where the job is not
  // tensor-parallel (the cores are data-parallel replicas: TPUEstimator's, Mesh TensorFlow's
  // batch dimension). Under tensor parallelism the two cores may as well hold two shards: one copy
  // [assumed]. Experts are spread over the cores as over the chips: no copy.
  const double core_copies =
      c.tensor == 1 && job.hardware.separate_cores > 1 ? static_cast<double>(job.hardware.separate_cores) : 1.0;
  const auto held_on = [&](std::size_t d, bool sharded) {
    return core_copies * dense_on(d) / (sharded ? static_cast<double>(shard) : 1.0) +
           expert_on(d) / (sharded ? expert_shard : 1.0);
  };
  // Gradients are accumulated and reduced at their own precision (fp32 under Megatron-LM's bf16
  // default), the parameters gathered at the compute precision.
  const double grad_value_bytes =
      p.gradient_precision.empty() ? bytes_per_value : hardware::bytes_per_value(p.gradient_precision);
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
  // A bucket of the data-parallel reduction (ZeRO 0-1), gradients and gathered parameters: PyTorch
  // DDP's 25 MB by default, the scenario's size, or Megatron-Core's max(4e7, 1e6 x data x context)
  // parameters, at the gradient precision and, for the parameters gathered, the compute precision
  // (since session 44, from a review: 25 MB for every code had charged a 405B model's 128-rank
  // reduction 512 start-ups a device).
  const double megatron_bucket = std::max(4e7, 1e6 * static_cast<double>(c.data * cp));
  const double grad_bucket = p.megatron_buckets ? megatron_bucket * grad_value_bytes
                             : p.gradient_bucket_bytes > 0 ? p.gradient_bucket_bytes
                                                           : kGradientBucketBytes;
  const double param_bucket = p.megatron_buckets ? megatron_bucket * bytes_per_value : grad_bucket;
  // Collectives for `bytes` in buckets of `bucket`. Megatron-Core buckets only a device's first
  // interleaved chunk, each later chunk's gradients one collective (get_model's
  // disable_bucketing=(model_chunk_idx > 0)): v - 1 more, the chunks taken as equal.
  // Without overlap it makes one bucket of each chunk's (`if not overlap_grad_reduce: bucket_size =
  // None`, in the DDP that wraps each chunk).
  // (Its later pipeline stages reduce unbucketed too, pp_rank > 0: their reductions, inside the
  // drain's slack, are taken as the busiest device's, scaled.)
  const auto bucketed = [&](double bytes, double bucket) {
    if (p.megatron_buckets && !p.overlap_communication) return v;  // each chunk's own DDP, one bucket
    return p.megatron_buckets && v > 1 ? (v - 1) + std::ceil(bytes / v / bucket) : std::ceil(bytes / bucket);
  };
  // Memory-bound passes over a device's gradients in every backward (a share of the microbatches):
  // the accumulation above, and ZeRO-2's and -3's flat gradient. PyTorch's FSDP (and FairScale's)
  // holds a unit's parameters as views of one flat parameter, so autograd builds the flat gradient
  // from the views' by a copy of all of them (SplitWithSizesBackward: a cat, read and write at the
  // compute precision, on the compute stream; FairScale PR #1184: "triggered every microbatch per
  // FSDP module"), and DeepSpeed's ZeRO-2 and -3 copy each gradient into their reduction bucket
  // (the ipg buffer); every microbatch, since both reduce every microbatch. Not on a TPU (XLA
  // reduce-scatters the gradient it computes) nor with fused accumulation, whose weight-gradient
  // GEMM writes into the flat buffer (Megatron-Core's main_grad). Since session 49, a review.
  struct GradientPass {
    const char* name;
    double share;            // of the microbatches
    double bytes_per_param;  // read and written
    double flops_per_param;
    bool sharded;  // over the sharding group (ZeRO-2 and -3's accumulation) or whole
  };
  std::vector<GradientPass> passes;
  if (accumulate) passes.push_back({"gradients.accumulate", acc_share, acc_bytes_per_value, 1, p.zero_stage >= 2});
  if (p.zero_stage >= 2 && job.hardware.kind != "tpu" && p.gradient_accumulation != "fused") {
    passes.push_back({"gradients.flatten", 1, 2 * bytes_per_value, 0, false});
  }
  const auto pass_time = [&](const GradientPass& g, double params) {
    return hardware::kernel_time(dev16, "fp32", g.flops_per_param * params, g.bytes_per_param * params, false);
  };
  std::vector<double> dev_acc(devices, 0.0);  // each device's gradient passes, a backward
  for (const auto& g : passes)
    for (std::size_t d = 0; d < devices; ++d) dev_acc[d] += g.share * pass_time(g, held_on(d, g.sharded)).seconds;
  std::vector<double> dev_a2a(devices, 0.0), dev_a2a_contention(devices, 0.0);
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
    // below), reported as overlap contention. (Every expert layer of a device is alike, so the
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
  double busiest = -1, busiest_share = 0, busiest_moe = 0;
  std::size_t busiest_device = 0;
  for (std::size_t d = 0; d < devices; ++d) {
    const double f = on_device(dev_f, d), b = on_device(dev_b, d) + dev_acc[d], t_comm = on_device(dev_tp, d), a2a = on_device(dev_a2a, d);
    const double pp_d = on_device(dev_pp, d);
    // The slot as the schedule runs it: DualPipe hides the all-to-all and the stage sends under the
    // paired chunk's compute (below).
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
  cost_detail::PipelineRun schedule;
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
  // The busiest device's, which the step describes (its accumulation pass, collectives, optimizer).
  const double dense_per_device = dense_on(busiest_device), expert_per_device = expert_on(busiest_device);
  const auto held_per_device = [&](bool sharded) { return held_on(busiest_device, sharded); };
  for (const auto& g : passes) {
    // (Already in bwd_s and in each device's row of the stages table, above.)
    // The average device's pass, for the energy.
    double average_held = 0;
    for (std::size_t d = 0; d < devices; ++d) average_held += held_on(d, g.sharded) / static_cast<double>(devices);
    const auto average = pass_time(g, average_held);
    busy_energy += g.share * hardware::kernel_energy(dev16, "fp32", g.flops_per_param * average_held, g.bytes_per_param * average_held,
                                                     average.seconds, false);
    average_busy_s += g.share * average.seconds;
    // The ops table's row: every device's pass, as its other rows hold every device's ops (since
    // session 42, a review: the busiest device's alone, so a pipeline's backward rows fell short
    // of its stages'). Without a pipeline, the one device's.
    double all_held = 0, all_s = 0, all_e = 0;
    for (std::size_t d = 0; d < devices; ++d) {
      const double h = held_on(d, g.sharded);
      const auto k = pass_time(g, h);
      all_held += h;
      all_s += k.seconds;
      all_e += hardware::kernel_energy(dev16, "fp32", g.flops_per_param * h, g.bytes_per_param * h, k.seconds, false);
    }
    c.ops.push_back({g.name, "elementwise", "bwd", g.share * g.flops_per_param * all_held, g.share * all_held * g.bytes_per_param,
                     g.share * all_s, g.share * all_e, "memory"});
  }
  const double mb = static_cast<double>(c.microbatches);
  double slot = fwd_s + bwd_s + tp_comm + pp_comm + moe_comm;
  double overlapped = 0;  // DualPipe: the all-to-all and stage sends hidden under compute, a slot
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

  // --- gradients and optimizer ------------------------------------------------------------
  // (held_per_device and grad_value_bytes: above, with the accumulation pass.)
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
  double dp = 0;
  // A pass's time, its tensor-group collectives included: a data-parallel collective on its own
  // stream runs beside them as beside the kernels (NCCL's kernels for another communicator, over
  // the network where the data ranks sit in other nodes), as the drain's slack below counts the
  // backward (since session 49, a review: the compute alone, which left LLaMA 65B's backward's six
  // sequence-parallel collectives a layer out of the window).
  const double bwd_pass = bwd_s + std::max(0.0, tp_comm - tp_forward), fwd_pass = fwd_s + tp_forward;
  double window = bwd_pass;
  double exposed_floor = 0;
  double embedding_floor = 0;  // device 0's exposed last bucket (ZeRO 0-1), where it is not the busiest
  double forward_dp = 0, forward_window = 0;  // ZeRO-3's forward gathers and the compute they can hide behind
  // ZeRO-2 and -3 reduce and gather unit by unit (a layer and the rest): a first gather has no
  // compute before it to hide behind (the first unit's parameters are needed first), and a last
  // reduce-scatter none after it (since session 35, from a review; before, both could be hidden
  // whole: about 0.3 % of a 1.3B step on two nodes); ZeRO-3's each microbatch, ZeRO-2's gather
  // once a step and its reduce-scatter each microbatch (below).
  double forward_floor = 0;
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
    dp = m * comm::collectives_s(Collective::reduce_scatter, grad_bytes, units, dp_group) + gather;
    forward_dp = gather;
    forward_window = fwd_pass;
    window = m * bwd_pass;
    forward_floor = comm::collective_s(Collective::all_gather, first_gather_bytes, dp_group);
    // Each microbatch's backward ends waiting on its last reduce-scatter (DeepSpeed's ZeRO-2
    // epilogue, FSDP's post-backward callback; since session 46, a review: once a step).
    exposed_floor = m * comm::collective_s(Collective::reduce_scatter, last_reduce_bytes, dp_group);
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
    dp = gather + regather + reduce;
    forward_dp = gather;
    // The last layer's forward and the head's run after the last gather: they hide nothing (since
    // session 49, a review; where the gathers bound the forward, about 1 % of LLaMA 7B's step).
    forward_window = m * std::max(0.0, fwd_pass - on_device(dev_tail_f, busiest_device));
    window = m * bwd_pass;
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
    forward_floor = m * (comm::collective_s(Collective::all_gather, first_gather_bytes, shard_group) +
                         (unit_bytes > 0 ? comm::collective_s(Collective::all_gather, unit_bytes, shard_group) : 0.0));
    exposed_floor = m * (reduced(last_reduce_bytes) + reduced(unit_grad_bytes));
  } else {
    dp = comm::collectives_s(Collective::all_reduce, grad_bytes, bucketed(grad_bytes, grad_bucket), dp_group);
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
        dp = comm::collectives_s(Collective::reduce_scatter, grad_bytes, bucketed(grad_bytes, grad_bucket), dp_group);
      }
      dp += gather;
      forward_dp = gather;
      forward_window = fwd_pass;
      // DeepSpeed's BF16_Optimizer gathers the updated parameters inside its step() (step ->
      // update_lp_params -> all_gather_dp_groups, deepspeed/runtime/bf16_optimizer.py): the next
      // forward starts when the gather ends, exposed whole (since session 35, from a review).
      if (whole) forward_floor = gather;
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
    exposed_floor = comm::collective_s(last_kind, last, dp_group);
    // Device 0's own last bucket, the embedding's, for the device that ends the step (below).
    const double grad_bytes_0 = dense_on(0) * grad_value_bytes;
    embedding_floor = comm::collective_s(
        last_kind, std::min(grad_bytes_0 / v, std::max(grad_bucket, embedding_params / tp * grad_value_bytes)), dp_group);
  }
  if (expert_params > 0 && expert_copies > 1) {
    // Each expert is replicated on data / G ranks, and on the tensor ranks too where they hold
    // whole experts (expert_tensor x G ranks apart, Megatron-Core's expert data-parallel group):
    // its gradients are reduced among them, in buckets (ZeRO 0-1) or layer by layer (2-3), behind
    // the backward like the rest. ZeRO shards the experts'
    // state over these copies (expert_shard, above), so it moves them as it moves the dense
    // parameters (since session 33; before, one all-reduce whatever the stage): ZeRO-1
    // reduce-scatters the gradients and gathers the updated weights once a step, ZeRO-2 each
    // microbatch's reduce-scatter, ZeRO-3 also gathers the weights forward and backward.
    const double expert_grad_bytes = expert_per_device * grad_value_bytes;
    const double expert_param_bytes = expert_per_device * bytes_per_value;
    const comm::Group replicas = group_of(job, static_cast<std::int64_t>(expert_copies + 0.5), expert_stride * expert_group, intra, inter);
    const double buckets = bucketed(expert_grad_bytes, grad_bucket);
    const double gather_buckets = bucketed(expert_param_bytes, param_bucket);
    if (p.zero_stage == 0 || (p.zero_stage == 1 && p.gradient_reduction == "all_reduce")) {
      dp += comm::collectives_s(Collective::all_reduce, expert_grad_bytes, buckets, replicas);
    }
    // The gathers run behind the forward pass, as the dense parameters' (above).
    if (p.zero_stage == 1) {
      if (p.gradient_reduction != "all_reduce") dp += comm::collectives_s(Collective::reduce_scatter, expert_grad_bytes, buckets, replicas);
      const double gather = comm::collectives_s(Collective::all_gather, expert_param_bytes, gather_buckets, replicas);
      dp += gather;
      forward_dp += gather;
    }
    if (p.zero_stage == 2) {
      const double gather = comm::collectives_s(Collective::all_gather, expert_param_bytes, units, replicas);
      dp += m * comm::collectives_s(Collective::reduce_scatter, expert_grad_bytes, units, replicas) + gather;
      forward_dp += gather;
    }
    if (p.zero_stage == 3) {
      const double gather = m * comm::collectives_s(Collective::all_gather, expert_param_bytes, units, replicas);
      dp += m * comm::collectives_s(Collective::reduce_scatter, expert_grad_bytes, units, replicas) + 2 * gather;
      forward_dp += gather;
    }
  }
  // Hidden communication is not free on GPUs: NCCL's kernels take SMs and memory bandwidth from
  // the compute they overlap, which Lee et al. 2025 (arXiv:2507.03114) measured 18.9 % slower on
  // average (A100, H100, MI250, MI210; GPT and LLaMA training; 40 % at most). While a hidden
  // collective runs, compute advances at 1 / (1 + s), so the step grows by dp s / (1 + s), or by
  // what is exposed once the compute, slowed, no longer covers the communication.
  // Each pass is costed on its own: its exposed share, then the contention of what it hides.
  if (p.overlap_communication) {
    // The first gathers (ZeRO 2-3: forward_floor) run before any compute, exposed; the rest of the
    // forward's gathers under the forward's compute.
    const double head = std::min(forward_dp, forward_floor), forward_rest = forward_dp - head;
    double forward_rest_exposed = std::max(0.0, forward_rest - forward_window);
    // The last bucket runs after the backward, exposed and hiding nothing; the rest of the
    // backward's communication runs under the backward's compute.
    const double backward_dp = dp - forward_dp;
    const double tail = std::min(backward_dp, exposed_floor), rest = backward_dp - tail;
    double rest_exposed = std::max(0.0, rest - window);
    // Interleaved chunks (ZeRO 0-1) reduce and gather chunk by chunk, each behind the passes of the
    // chunks that run after it (cost_detail::chunked_reduce_exposed; since session 49, a review:
    // the whole device's behind one microbatch's backward, whatever v).
    if (v > 1 && p.zero_stage <= 1) {
      const auto pl = static_cast<std::int64_t>(c.pipeline), chunks = static_cast<std::int64_t>(v);
      rest_exposed = std::max(0.0, cost_detail::chunked_reduce_exposed(backward_dp, exposed_floor, window / v, pl, chunks) - tail);
      if (head == 0) forward_rest_exposed = cost_detail::chunked_gather_exposed(forward_rest, forward_window / v, pl, chunks);
    }
    const double forward_exposed = head + forward_rest_exposed;
    c.data_comm_s = forward_exposed + tail + rest_exposed;
    c.contention_s = std::max(0.0, forward_rest * overlap_share - forward_rest_exposed) + std::max(0.0, rest * overlap_share - rest_exposed);
  } else {
    c.data_comm_s = dp;
  }
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
  // And the shared experts beside the all-to-all (`shared_expert_overlap`, above), the busiest
  // device's.
  c.contention_s += mb * dev_a2a_contention[busiest_device];
  const double state_bytes = optimizer_state_bytes(p.optimizer);
  const double traffic_bytes =
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
  if (c.ops.empty()) return c;
  if (c.tensor_comm_s > 0) c.ops.push_back({"tensor.allreduce", "communication", "comm", 0, 0, c.tensor_comm_s, 0, "communication"});
  if (c.context_comm_s > 0) c.ops.push_back({"context.kv_gather", "communication", "comm", 0, 0, c.context_comm_s, 0, "communication"});
  if (pp_comm > 0) c.ops.push_back({"pipeline.p2p", "communication", "comm", 0, 0, c.pipeline_comm_s, 0, "communication"});
  if (moe_comm > 0) c.ops.push_back({"experts.all_to_all", "communication", "comm", 0, 0, c.expert_comm_s, 0, "communication"});
  if (dp > 0) c.ops.push_back({"data.allreduce", "communication", "comm", 0, 0, c.data_comm_s - table_comm, 0, "communication"});
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
      const double own_reduce = d == 0 && p.overlap_communication ? std::max(reduce * r, embedding_floor) : reduce * r;
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

  // --- memory -------------------------------------------------------------------------------
  // Bytes per parameter: weights at the compute precision, gradients at theirs; the optimizer
  // state includes an fp32 master copy only when the weights are narrower than fp32.
  // Each is held by the parameters it is sharded over (held_per_device above).
  // DualPipe keeps one more microbatch in flight and two stages' weights on each device; both
  // copies hold gradients until they are summed once a step (that exchange between the two ranks
  // holding a stage is not charged).
  const double in_flight = static_cast<double>(std::min(c.microbatches, c.pipeline + (p.dualpipe ? 1 : 0)));
  const double copies = p.dualpipe ? 2.0 : 1.0;
  // Sharded stages also hold what a unit (a layer, or the root unit with an embedding table) needs
  // whole while it runs (since session 38, from a review; before, only the shards were counted, which
  // let a ZeRO-3 job pass with less than two layers' room to spare): ZeRO-3 gathers the running
  // unit's parameters and prefetches the next one's (PyTorch FSDP's default backward prefetch,
  // DeepSpeed's prefetch bucket), and ZeRO-2 and -3 hold the running unit's gradient whole until its
  // reduce-scatter.
  const auto unit_on = [&](std::size_t d) {
    const double table = (d == 0 || d == devices - 1) ? core_copies * embedding_params / tp : 0.0;
    return std::max(held_on(d, false) / (on_device(device_layers, d) + 1), std::min(held_on(d, false), table));
  };
  const auto states_on = [&](std::size_t d) {
    // (Over one rank nothing is sharded, so nothing is gathered or held twice; since session 44, a
    // review: a ZeRO-3 job on one data rank had been charged its running units again.)
    const double working =
        shard > 1 ? (p.zero_stage >= 3 ? 2 * bytes_per_value : 0.0) + (p.zero_stage >= 2 ? grad_value_bytes : 0.0) : 0.0;
    return copies * bytes_per_value * held_on(d, p.zero_stage >= 3) + copies * grad_value_bytes * held_on(d, p.zero_stage >= 2) +
           (bytes_per_value >= 4 ? std::max(0.0, state_bytes - 4) : state_bytes) * held_on(d, p.zero_stage >= 1) +
           working * unit_on(d);
  };
  // Each device keeps its own layers' activations for the microbatches it has in flight and its own
  // other ops' (the embeddings' on the first, for each microbatch in flight, below; the head's and
  // the loss's on the last, once); with
  // full recomputation only each layer's input, and the stack's final norm on the last device.
  // In flight: 1F1B (and zero-bubble 1F1B) device d runs p - d forwards before its first backward;
  // interleaved, Megatron-LM's schedule runs 2 (p - d - 1) + (v - 1) p warm-up chunks and one more,
  // each of its layers / v (Narayanan et al. 2021: interleaving raises the first stage's
  // activations by about 1 + 1 / v; until session 28 every device was charged the first stage's
  // p microbatches, interleaved or not); at most the step's m microbatches. Under DualPipe a device
  // holds two stages: their average for the microbatches in flight, both stages' other ops.
  // The ops before a stack (the embeddings on the first device, an encoder-decoder's decoder
  // embeddings where the decoder starts) keep what they keep for each microbatch their chunk has in
  // flight, as the layers do; the head's and the loss's backward follows their forward at once
  // (Korthikanti et al. 2022, Sec. 4.3: the first stage holds p microbatches' embedding dropout
  // masks; since session 46, a review: kept once). Interleaved, from Megatron-LM's order (its
  // in-flight counts repeat after the first groups of p microbatches: 4 p run).
  std::vector<double> lead_held;
  if (v > 1 && !paired && devices > 1) {
    const auto peak = cost_detail::interleaved_peak_held(c.pipeline, static_cast<std::int64_t>(v),
                                                         std::min<std::int64_t>(c.microbatches, 4 * c.pipeline), {chunk_lead});
    if (!peak.empty()) lead_held = peak.front();
  }
  double activations = 0, model_states = 0;  // of the device that needs the most
  for (std::size_t d = 0; d < devices; ++d) {
    // The device's microbatches in flight, in whole-device units (a chunk is 1 / v of it).
    double flight = in_flight;
    if (!paired) {
      const double m_all = static_cast<double>(c.microbatches), rank = static_cast<double>(d);
      flight = v > 1 ? std::min(m_all * v, 2 * (pp - rank - 1) + (v - 1) * pp + 1) / v : std::min(m_all, pp - rank);
    }
    const double lead = (paired ? 2.0 : 1.0) * on_device(dev_saved_lead, d);
    const double lead_in_flight = !lead_held.empty() ? lead_held[d] : lead * flight;
    const double other = (paired ? 2.0 : 1.0) * on_device(dev_saved_other, d) - lead + lead_in_flight;  // both stages' under DualPipe
    // Uneven chunks: the most the device's chunks in flight keep at once, from the schedule's order.
    double held = (schedule.ok ? schedule.peak_held[0][d] : on_device(dev_saved, d) * flight) + other;
    if (p.recompute) {
      const double inputs = on_device(device_layers, d);
      const double sp = p.sequence_parallel ? tp : 1.0;
      const double stack_end = on_device(dev_stack_end, d);
      // (The final norm's for each microbatch in flight on plain 1F1B: an encoder's may sit on a
      // middle stage. Interleaved or paired, the last chunk's backward follows its forward at
      // once: one, as for a decoder's on the last stage; a review of session 43.)
      const double norm_flight = v > 1 || paired ? 1.0 : flight;
      held = (schedule.ok ? schedule.peak_held[1][d] : on_device(dev_inputs, d) * flight) / sp +
             (paired ? 2.0 : 1.0) * stack_end * norm_flight + other;
      // While a layer's backward runs, its forward has been run again and its activations are
      // held: one layer's, one microbatch (the device's layers taken as equal; since session 30),
      // less its input, the checkpoint counted above; the final norm, kept above, is not a layer's
      // (since session 43, a review: it had been averaged into the layers' too).
      const double input = inputs > 0 ? on_device(dev_inputs, d) / inputs / sp : 0.0;
      if (inputs > 0) held += std::max(0.0, (on_device(dev_saved, d) - stack_end) / inputs - input);
    }
    c.stages[d].activation_bytes = held;
    if (states_on(d) + held > c.memory_per_device_bytes) {
      c.memory_per_device_bytes = states_on(d) + held;
      model_states = states_on(d);
      activations = held;
    }
  }
  if (dev.memory_bytes > 0 && c.memory_per_device_bytes > dev.memory_bytes) {
    c.fits = false;
    c.reason = "does not fit: needs " + text::byte_size(c.memory_per_device_bytes) + " per device (weights, gradients and optimizer " +
               text::byte_size(model_states) + ", activations " + text::byte_size(activations) + "), " +
               text::more_than(c.memory_per_device_bytes, job.hardware.id, dev.memory_bytes);
  }

  // --- FLOPs, MFU, power ---------------------------------------------------------------------
  const double model_forward = g.model_forward_flops();
  // (Under context parallelism a device's graph is 1 / cp of each sequence.)
  c.model_flops_per_step = 3 * model_forward * static_cast<double>(c.microbatches * c.data * cp) * filled;
  c.full_attention_flops_ratio = model_forward > 0 ? g.forward_flops_full_attention() / model_forward : 1;
  c.mfu = c.model_flops_per_step / (c.step_s * static_cast<double>(n) * dev.peak(job.precision));
  // The average device: busy for its share of the work, waiting (bubbles, exposed communication,
  // the pace of the busiest stage) at static power for the rest of the step.
  // (The average device's optimizer: the parameters over all the devices.)
  double average_opt_params = 0;
  for (std::size_t d = 0; d < devices; ++d) average_opt_params += held_on(d, p.zero_stage >= 1) / static_cast<double>(devices);
  const auto average_opt = hardware::kernel_time(dev, "fp32", 12 * average_opt_params, traffic_bytes * average_opt_params, false);
  const double busy_s = static_cast<double>(c.microbatches) * average_busy_s + average_opt.seconds;
  const double opt_energy = hardware::kernel_energy(dev, "fp32", 12 * average_opt_params, traffic_bytes * average_opt_params,
                                                    average_opt.seconds, false);
  const double device_energy = static_cast<double>(c.microbatches) * busy_energy + opt_energy +
                               dev.static_w * std::max(0.0, c.step_s - busy_s);
  c.device_power_w = device_energy / c.step_s;
  c.power_per_accelerator_w = c.device_power_w + dev.host_w;
  c.energy_per_step_j = device_energy * static_cast<double>(n);
  return c;
}

double runs_per_step(const StepCost& c, const OpCostRow& row) {
  if (row.phase != "fwd" && row.phase != "bwd") return 1.0;
  return static_cast<double>(c.microbatches) / static_cast<double>(std::max<std::int64_t>(1, c.pipeline));
}

std::vector<StepComponent> step_components(const StepCost& c) {
  if (!c.fits) return {};
  return {{"compute", c.compute_s},
          {"tensor communication", c.tensor_comm_s},
          {"context communication", c.context_comm_s},
          {"pipeline communication", c.pipeline_comm_s},
          {"expert all-to-all", c.expert_comm_s},
          {"pipeline bubble", c.bubble_s},
          {"data-parallel communication (exposed)", c.data_comm_s},
          {"overlap contention", c.contention_s},
          {"optimizer", c.optimizer_s}};
}

}  // namespace dlcarbon

namespace dlcarbon {

namespace {

// The time to write one checkpoint (weights and optimizer state over the checkpoint bandwidth; 0
// without one).
double checkpoint_write_s(const TrainingJob& job, const StepCost& c) {
  const JobOverheads& o = job.overheads;
  if (!o.checkpoint_interval_s || !o.checkpoint_bandwidth_bytes_per_s) return 0;
  const double state = optimizer_state_bytes(job.parallelism ? job.parallelism->optimizer : "adam");
  // Weights at the compute precision and the optimizer's state, whose fp32 master copy an fp32
  // job does not keep apart (as the memory check counts it; since session 44, a review: 2 B
  // more a parameter whatever the precision).
  // (8-bit jobs keep 16-bit weights, as the memory check counts them.)
  const double weight_bytes = std::max(2.0, hardware::bytes_per_value(job.precision));
  const double size = c.parameters * (weight_bytes + (weight_bytes >= 4 ? std::max(0.0, state - 4) : state));
  return size / *o.checkpoint_bandwidth_bytes_per_s;
}

std::vector<OverheadRow> job_overheads(const TrainingJob& job, const StepCost& c) {
  const JobOverheads& o = job.overheads;
  const double n = static_cast<double>(job.accelerators);
  const hardware::DeviceModel dev = hardware::make_device_model(job.hardware);
  const double busy_w = c.power_per_accelerator_w * n;       // training draw, all accelerators
  const double waiting_w = (dev.static_w + dev.host_w) * n;  // powered, waiting on storage or restart
  std::vector<OverheadRow> rows;
  const double t0 = c.steps * c.step_s;
  rows.push_back({"training", t0, t0 * busy_w});
  double ramp_s = 0;      // the batch ramp-up's extra time (below)
  double ramp_steps = 0;  // and the steps its smaller batches add
  if (job.parallelism && job.parallelism->batch_rampup && c.data > 0) {
    // The ramp's sequences, already in t0 at the full batch's time a sequence, cost what their
    // smaller steps do: the extra over t0, sum over the ramp's batches b of (its sequences) x
    // (step(b) / b - step(B) / B). Each batch is costed as a step of its own (at most 24 of them,
    // spread over the ramp; the rest interpolated between their neighbours in 1 / b, in which a
    // step's fixed parts, the pipeline's fill and drain, the reductions and the optimizer, are
    // linear).
    const auto& ramp = *job.parallelism->batch_rampup;
    const double B = static_cast<double>(job.parallelism->global_batch);
    const double inc = static_cast<double>(ramp.increment > 0 ? ramp.increment : c.data * job.parallelism->microbatch);
    const auto count = std::max<std::int64_t>(1, std::llround((B - static_cast<double>(ramp.start)) / inc));
    const double per_batch = ramp.samples / static_cast<double>(count);
    // Time and energy a sequence (all accelerators, host share included, as the training row).
    const auto energy_of = [&](const StepCost& s) { return s.power_per_accelerator_w * s.step_s * n; };
    const std::pair<double, double> full{c.step_s / B, energy_of(c) / B};
    const auto per_sequence = [&](std::int64_t j) {
      TrainingJob smaller = job;
      smaller.parallelism->global_batch = ramp.start + static_cast<std::int64_t>(static_cast<double>(j) * inc);
      smaller.parallelism->batch_rampup.reset();
      const StepCost s = cost_training_step(smaller);
      const double b = static_cast<double>(smaller.parallelism->global_batch);
      return s.fits ? std::pair<double, double>{s.step_s / b, energy_of(s) / b} : full;
    };
    const std::int64_t points = std::min<std::int64_t>(count, 24);
    std::vector<std::int64_t> at;
    std::vector<std::pair<double, double>> f;
    for (std::int64_t k = 0; k < points; ++k) {
      const double share = points == 1 ? 0.0 : static_cast<double>(k) / static_cast<double>(points - 1);
      at.push_back(std::llround(share * static_cast<double>(count - 1)));
      f.push_back(per_sequence(at.back()));
    }
    double extra_energy = 0;
    for (std::int64_t j = 0, k = 0; j < count; ++j) {
      while (k + 1 < points && at[static_cast<std::size_t>(k + 1)] <= j) ++k;
      auto value = f[static_cast<std::size_t>(k)];
      if (k + 1 < points && at[static_cast<std::size_t>(k)] < j) {
        const auto inverse = [&](std::int64_t i) { return 1 / (static_cast<double>(ramp.start) + static_cast<double>(i) * inc); };
        const double a = inverse(at[static_cast<std::size_t>(k)]), b = inverse(at[static_cast<std::size_t>(k + 1)]);
        const double w = (inverse(j) - a) / (b - a);
        value.first += (f[static_cast<std::size_t>(k + 1)].first - value.first) * w;
        value.second += (f[static_cast<std::size_t>(k + 1)].second - value.second) * w;
      }
      ramp_s += per_batch * std::max(0.0, value.first - full.first);
      ramp_steps += per_batch * std::max(0.0, 1 / (static_cast<double>(ramp.start) + static_cast<double>(j) * inc) - 1 / B);
      extra_energy += per_batch * std::max(0.0, value.second - full.second);
    }
    rows.push_back({"batch ramp-up", ramp_s, extra_energy});
  }
  double ckpt_s = 0, interval = 0;
  const double write_s = checkpoint_write_s(job, c);
  if (o.checkpoint_interval_s) {
    interval = *o.checkpoint_interval_s;
    // One checkpoint an interval of training, at most one a step: a checkpoint is saved between
    // steps (since session 46, a review: an interval shorter than a step charged more checkpoints
    // than steps).
    const double checkpoints = std::min(std::floor((t0 + ramp_s) / interval), std::floor(c.steps + ramp_steps));
    ckpt_s = checkpoints * write_s;
    rows.push_back({"checkpointing", ckpt_s, ckpt_s * waiting_w});
  }
  const double eval_s = o.evaluation_fraction * t0;
  if (eval_s > 0) rows.push_back({"evaluation", eval_s, eval_s * busy_w});
  if (o.mtbf_s) {
    const double span = t0 + ramp_s + ckpt_s + eval_s;
    const double failures = n / *o.mtbf_s * span;
    // A failure loses the work since the last checkpoint: half an interval and a checkpoint's write
    // on average (Young 1974, Daly 2006: a failure falls anywhere in the cycle of work and write;
    // since session 46, a review: the interval alone), or half the run where the run is shorter
    // than that (since session 44, a review: a 30-day interval on a one-day run lost 214 % of it).
    // (A checkpoint at most once a step: an interval shorter than a step is the step.)
    const double lost = failures * std::min(std::max(interval, c.step_s) + write_s, span) / 2;
    const double restarts = failures * o.restart_s;
    rows.push_back({"lost work", lost, lost * busy_w});
    rows.push_back({"restarts", restarts, restarts * waiting_w});
  }
  // Downtime the run's log reports apart from failures (hangs, maintenance): held, not training.
  if (o.downtime_s > 0) rows.push_back({"downtime", o.downtime_s, o.downtime_s * waiting_w});
  if (o.runs > 1) {
    double time = 0, energy = 0;
    for (const auto& row : rows) {
      time += row.time_s;
      energy += row.energy_j;
    }
    const double extra = static_cast<double>(o.runs - 1);
    rows.push_back({"repeated runs", extra * time, extra * energy});
  }
  return rows;
}

}  // namespace

TrainingResult simulate_training(const TrainingJob& job) {
  TrainingResult r;
  if (job.duration_given) {
    r.mode = "accounting";
    r.footprint = account_training(job);
    return r;
  }
  r.mode = "first-principles";
  StepCost c = cost_training_step(job);
  r.ok = c.fits;
  r.reason = c.reason;
  TrainingJob predicted = job;
  if (c.fits) r.overheads = job_overheads(job, c);
  // First order (Young/Daly) holds while failures are rare beside the work a failure loses and a
  // restart; where the job fails once or more in that time on average (an interval, or the run
  // where it is shorter, and a restart), a run may never finish: it cannot run, and says why (since
  // session 44, a review: a failure a minute gave a 25-year run).
  const JobOverheads& o = job.overheads;
  if (c.fits && o.mtbf_s && o.checkpoint_interval_s) {
    double span = 0;  // the run without failures: training, ramp-up, checkpoints, evaluation
    for (const auto& row : r.overheads) {
      if (row.item == "training" || row.item == "batch ramp-up" || row.item == "checkpointing" || row.item == "evaluation") span += row.time_s;
    }
    const double system_mtbf = *o.mtbf_s / static_cast<double>(job.accelerators);
    const double exposed = std::min(std::max(*o.checkpoint_interval_s, c.step_s) + checkpoint_write_s(job, c), span) + o.restart_s;
    if (system_mtbf <= exposed) {
      char why[320];
      std::snprintf(why, sizeof why,
                    "fails every %.3g s on average (mtbf / accelerators), not longer than a checkpoint interval and its "
                    "write (or the run, where shorter) and a restart (%.3g s): the first-order failure model does not hold and the run may never finish",
                    system_mtbf, exposed);
      c.fits = false;
      c.reason = why;
      r.ok = false;
      r.reason = why;
      r.overheads.clear();
    }
  }
  if (c.fits) {
    double time = 0, energy = 0;
    for (const auto& row : r.overheads) {
      time += row.time_s;
      energy += row.energy_j;
    }
    predicted.duration_s = time;
    predicted.power = {PowerBasis::per_accelerator, time > 0 ? energy / (time * static_cast<double>(job.accelerators)) : 0};
  } else {
    predicted.duration_s = 0;
    predicted.power = {PowerBasis::per_accelerator, 0};
  }
  r.footprint = account_training(predicted);
  r.step = std::move(c);
  return r;
}

}  // namespace dlcarbon
