#pragma once
// Scenario: the validated, resolved description of what to simulate, in SI units.
// Built only by `load_scenario` (sim/scenario, the only room that reads YAML); every
// other room takes these plain structs.
//
//   dlcarbon::LoadOptions options{.data_dir = "data"};
//   dlcarbon::Scenario s = dlcarbon::load_scenario("scenarios/quickstart.yaml", options);
//   for (const auto& job : s.training) { ... job.hardware.tdp_w ... }

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dlcarbon/design.hpp"
#include "dlcarbon/error.hpp"

namespace dlcarbon {

inline constexpr int kSchemaVersion = 1;

// A measured intensity trace: value[i] holds from time[i] to time[i + 1] (the last one for
// `period_s`, the rows' smallest gap). Outside its span the trace repeats every calendar year from its
// first row (365 or 366 days: a year, within half a row), or every span where it is longer or
// shorter (lifecycle::trace_period_s).
struct IntensityTrace {
  std::string file;                 // as named, for the output
  std::string basis;                // direct or lca
  std::vector<std::int64_t> time_unix_s;
  std::vector<double> kg_per_j;
  std::int64_t period_s = 3600;
};

struct GridRegion {
  std::string id, name, zone;
  double intensity_kg_per_j = 0;  // location-based annual average
  int year = 0;
  std::string basis, source, notes;
  std::shared_ptr<const IntensityTrace> trace;  // hourly or daily values, where given
  double annual_change = 0;  // trajectory: relative change per year after `year` (-0.05 = -5 %/year)
  // Overridden inline where it is named (`{id: r1, intensity: ...}`): an edge deployment's site of
  // such a region is named "<id>#2", ..., the region as defined keeping its id (as Datacenter's).
  bool inline_override = false;
};

struct Datacenter {
  std::string id, name;
  GridRegion region;
  double pue = 1;
  std::optional<double> market_intensity_kg_per_j;  // after PPAs / 24/7 CFE, where given
  std::string source, notes;
  // Overridden inline by the job or deployment that names it (`{id: dc, pue: 1.2}`): the lifecycle
  // names such a site "<id>#2", ..., the data centre as defined keeping its id.
  bool inline_override = false;
};

struct Hardware {
  std::string id, name;
  std::string kind;        // gpu, tpu, cpu, soc, npu
  std::string count_unit;  // chip, core, board, package, socket, device
  std::map<std::string, double> peak_flop_per_s;  // dtype -> dense peak
  // Rate of non-matrix work (elementwise, norms, softmax, reductions, the optimizer) where it runs
  // on units of its own that the dtype peaks do not describe (a TPU's vector unit). Unset: the
  // fp32 peak (a GPU's CUDA cores), else the job's dtype peak.
  std::optional<double> vector_peak_flop_per_s;
  std::optional<double> memory_bytes;
  std::optional<double> memory_bandwidth_bytes_per_s;
  double tdp_w = 0;
  std::optional<double> idle_power_w;
  // Without idle_power, the static power a device draws busy or idle, as a share of its TDP
  // (unsourced; docs/hardware-model.md, the energy terms).
  static constexpr double kDefaultStaticShare = 0.30;
  std::optional<double> max_power_w;  // the most it draws under load, measured (default: the TDP)
  // A measured energy roofline (`energy_roofline:` block: dlcarbon-calibrate-gpu writes one), else
  // the datasheet model of make_device_model: J per 16-bit FLOP, J per byte from memory, W while busy.
  struct EnergyRoofline {
    double e_flop_j = 0, e_byte_j = 0, static_w = 0;
    std::string source;
  };
  std::optional<EnergyRoofline> energy_roofline;
  double host_overhead_w = 0;  // host share of the node per accelerator
  std::optional<double> embodied_kg;
  std::optional<double> lifetime_s;  // service life for amortising embodied carbon
  std::string embodied_basis, process_node, source, notes;
  // Roofline ceilings where measured or published (`efficiency:` block); datasheet defaults otherwise.
  std::optional<double> gemm_efficiency, memory_efficiency, kernel_launch_s;
  // The fraction of bandwidth the frameworks' own memory-bound kernels reach (norms, softmax,
  // dropout, activations, adds, the optimizer), where measured apart from streaming (default:
  // memory_efficiency, which memory-bound GEMMs such as decoding's weight streams keep).
  std::optional<double> elementwise_efficiency;
  std::map<std::string, double> conv_efficiency;  // layout (nchw, nhwc) -> fraction of peak reached by convolutions
  // A 16- or 8-bit product whose rows are not a multiple of 16 bytes, as a fraction of the aligned
  // one's rate (GPUs; `efficiency.misaligned`; default: hardware::kMisalignedGemm).
  std::optional<double> misaligned_gemm;
  // FlashAttention generation (flash1, flash2, flash3) -> fraction of the peak (at the job's
  // precision) its kernels reach over their two products' FLOPs
  std::map<std::string, double> attention_efficiency;
  std::array<double, 3> gemm_shape{0, 0, 0};      // m0, n0, k0: GEMM efficiency / (1 + m0/m + n0/n + k0/k)
  // A GEMM ceiling and shape measured at one precision apart from the headline pair above
  // (`efficiency: {precision: {fp32: {gemm, gemm_shape}}}`): a V100's CUDA-core SGEMM and its
  // tensor-core HGEMM reach different fractions of their peaks and lose different amounts at small k.
  struct GemmCeiling {
    double efficiency = 0;
    std::array<double, 3> shape{0, 0, 0};
  };
  std::map<std::string, GemmCeiling> gemm_by_precision;
  std::int64_t compute_units = 0;  // SMs (GPUs) that GEMM tiles are spread over; 0: not modelled
  std::int64_t matrix_unit = 0;    // side of a systolic matrix unit (TPU MXU: 128) that GEMM operands are padded to; 0: none
  // Cores of a chip with memory of their own, each a device of its own (TPU v2 and v3: 2); where a
  // job is not tensor-parallel, each holds and updates its own copy of the chip's parameters.
  std::int64_t separate_cores = 1;
  std::string efficiency_source;
  // The node this accelerator is sold in (`node:` block).
  std::int64_t node_accelerators = 8;
  std::optional<double> intra_node_bandwidth;  // B/s per accelerator, one direction (NVLink, ICI)
  std::optional<double> inter_node_bandwidth;  // B/s per accelerator (InfiniBand, Ethernet, ICI)
  // How the accelerators are wired: `switched` (full bisection: fat tree, NVSwitch) or a torus
  // (TPU pods), where an all-to-all is limited by the bisection, not by each chip's links.
  std::string node_topology = "switched";
  std::string node_source;
};

struct Model {
  std::string id, name;
  std::optional<double> params;  // as published (the design gives the counted value)
  ModelDesign design;            // std::monostate when the scenario gives none
  std::string design_yaml;       // the design as given (after extends and overrides), for the resolved scenario
  std::string layout = "nchw";   // activation layout of convolutions: nchw or nhwc
  std::string source;
};

enum class PowerBasis {
  per_accelerator,  // measured average per accelerator, host share included
  system,           // measured draw of the whole job
  utilisation,      // TDP x utilisation + host overhead
};

struct TrainingPower {
  PowerBasis basis = PowerBasis::per_accelerator;
  double value = 0;  // W, or the utilisation (0..1]
};

// A figure as printed in a publication: the value and half a unit of its last digit.
struct PrintedFigure {
  double value = 0;
  double resolution = 0;
};

// A published measurement of the training step (`published: {step: ...}`), which
// `validate --mode first-principles` compares with the step model alone, apart from the run-level
// unknowns (restarts, evaluation, idle time) that a published footprint also holds.
struct PublishedStep {
  std::optional<PrintedFigure> mfu;                    // model FLOPs utilisation (3 x forward)
  bool mfu_full_attention = false;  // the MFU counts causal attention's whole score matrix (Megatron-LM)
  std::optional<PrintedFigure> tokens_per_s;           // per accelerator
  std::optional<PrintedFigure> step_s;                 // one optimizer step
  // The forward and backward of one layer of the model, timed alone (a kernel benchmark of a
  // layer): compared with the mean over the graph's blocks (layer index >= 0) of their fwd and
  // bwd ops.
  std::optional<PrintedFigure> layer_s;
  std::string source;                                  // where the footprint's source is not the step's
};

struct PublishedFigures {
  std::string source, notes;
  std::optional<PrintedFigure> energy_j;
  bool energy_includes_pue = true;  // energy_scope: facility (true) or it (false)
  std::optional<PrintedFigure> co2e_location_kg;
  std::optional<PrintedFigure> co2e_market_kg;
  std::optional<PublishedStep> step;
  // Accelerator-hours a source printed for a first-principles job that publishes no footprint
  // (`published.accelerator_hours`, in seconds): the reference of `validate --mode first-principles`.
  std::optional<PrintedFigure> accelerator_time_s;
  bool has_footprint() const { return energy_j || co2e_location_kg || co2e_market_kg; }
};

// How a job is spread over its accelerators (first-principles mode).
struct Parallelism {
  std::int64_t data = 0;      // 0: derived as accelerators / (tensor x context x pipeline)
  std::int64_t tensor = 1;
  std::int64_t pipeline = 1;
  // Context parallelism (Megatron-LM's --context-parallel-size; Llama 3's CP, Dubey et al. 2024,
  // Sec. 3.3.2): each sequence's positions split over this many ranks (two chunks each, balanced
  // for causal attention), which gather the keys and values of the whole sequence for their
  // attention and share the weights, so that gradients are reduced (and ZeRO shards) over
  // data x context ranks. Decoder-only dense transformers. Ranks: tensor innermost, then context,
  // then data, pipeline outermost (Megatron-LM's order).
  std::int64_t context = 1;
  std::int64_t microbatch = 1;    // sequences per microbatch
  std::int64_t global_batch = 0;  // sequences per optimizer step
  int zero_stage = 0;
  std::string optimizer = "adam";  // adam, adafactor, sgd: optimizer state bytes and traffic
  bool recompute = false;            // full: every layer's forward pass again in the backward
  // Selective (Korthikanti et al. 2022): only the attention ops on the score matrix are recomputed,
  // and only their activations are dropped. `recompute: selective`; exclusive with `recompute`.
  bool recompute_selective = false;
  // Elementwise (`recompute: elementwise`, LLaMA's hand-written backward, Touvron et al. 2023a,
  // Sec. 2.4: "we save the activations that are expensive to compute, such as the outputs of
  // linear layers"): the layers' non-GEMM ops (norms, activations, rotary, residual adds) run
  // again in the backward and their outputs are not kept. Exclusive with the other modes.
  bool recompute_elementwise = false;
  // Latent (`recompute: latent`, DeepSeek-V3's scheme, arXiv:2412.19437, Sec. 3.2.3: "We
  // recompute all RMSNorm operations and MLA up-projections during back-propagation", and Sec.
  // 3.3.3: "we cache the inputs of the SwiGLU operator and recompute its output"): the norms, the
  // latent attention's up-projections (q_b, kv_b), the rotary pass on their outputs and the
  // feed-forward activations run again in the backward; the norms keep nothing, attention keeps
  // its output and the latents, not its queries, keys and values, and the down projections'
  // inputs are recomputed (the activation keeps its input, in 8 bits under 8-bit training).
  // Exclusive with the other modes.
  bool recompute_latent = false;
  bool overlap_communication = true;
  // A mixture of experts' all-to-all runs beside its shared experts (DeepSeek-V2, Sec. 3.2.3: "we
  // overlap the computation of shared experts with the expert parallel all-to-all communication";
  // Megatron-Core's --moe-shared-expert-overlap): each transfer (the dispatch, the combine, their
  // gradients, the recomputed pair) is hidden behind its own piece of the shared experts (the
  // first product and activation, or the second product, in that pass), the rest exposed; the
  // piece's compute, slowed while they overlap, is the step's overlap contention. Needs shared
  // experts and an expert-parallel group of more than one rank, and not DualPipe, which hides the
  // all-to-all behind the paired chunk already. Since session 50.
  bool shared_expert_overlap = false;
  // DeepSpeed's activation checkpointing with partition_activations, as GPT-NeoX runs it (with
  // `eager: neox` and full recomputation only): each layer's checkpointed input cloned forward and
  // rebuilt backward (graph::GraphShape::neox_partition). Since session 51.
  bool partition_activations = false;
  // Megatron's sequence parallelism (Korthikanti et al. 2022): the ops that tensor parallelism
  // does not split (norms, residual adds, dropout of the d_model-wide outputs) are split along the
  // sequence instead of repeated on every rank of the tensor group. Off by default, as in Megatron-LM.
  bool sequence_parallel = false;
  // Sequence parallelism keeps a column-parallel product's input as its sequence shard, so its
  // backward all-gathers that input again for the weight gradient, and reduce-scatters the input
  // gradient (Korthikanti et al. 2022, Sec. 4.2.2): "exposed" (default), the two run between the
  // kernels; "overlapped", Megatron-LM's (tensor_parallel/layers.py, since 2022): the gather runs
  // under the input-gradient product, the reduce-scatter under the weight-gradient one. Since
  // session 48; before, neither was charged (docs/hardware-model.md, "Sequence parallelism's
  // backward").
  std::string sequence_parallel_backward = "exposed";
  // Interleaved 1F1B (Narayanan et al. 2021): each device holds this many chunks of layers, which
  // divides the pipeline bubble by it and multiplies the stage-to-stage sends. 1: plain 1F1B.
  std::int64_t virtual_stages = 1;
  // The pipeline partition: how many layers each of the pipeline x virtual_stages chunks holds, in
  // order (chunk j on device j mod pipeline); the first chunk also holds the embeddings, the last
  // the head. Empty: the layers spread evenly, the first L mod (p v) chunks one layer more
  // (DeepSpeed's partition_uniform). BLOOM's and GLM-130B's runs gave the chunks with the
  // embedding and the head a layer fewer.
  std::vector<std::int64_t> stage_layers;
  // A batch-size ramp-up (Megatron-LM's --rampup-batch-size start increment samples): the global
  // batch starts at `start` sequences and grows by `increment` (0: data x microbatch) after each
  // equal share of the first `samples` sequences, up to global_batch. Its smaller steps cost more a
  // sequence (a pipeline's fill and drain, the gradient reduction and the optimizer over fewer
  // microbatches): charged as a job overhead, "batch ramp-up".
  struct BatchRampup {
    std::int64_t start = 0;
    std::int64_t increment = 0;
    double samples = 0;
  };
  std::optional<BatchRampup> batch_rampup;
  // The share of the positions a step computes that are padding, not tokens: batching by length
  // (tensor2tensor, fairseq) pads every sequence of a batch to the longest one, so a step of
  // global_batch x seq_len positions trains (1 - padding) of that many tokens. 0: packed or
  // fixed-length sequences. The padded positions are computed (and timed and charged) but count
  // neither as tokens trained nor as model FLOPs (MFU).
  double padding = 0;
  // Hybrid sharding (PyTorch FSDP's HYBRID_SHARD, DeepSpeed's MiCS; zero_stage 3 only): the
  // parameters, gradients and optimizer state are sharded over groups of this many data-parallel
  // ranks (tensor ranks apart, so a node's worth when it is the node size) and replicated across
  // the groups, whose gradient shards are all-reduced once a step. 0: one group, all data ranks.
  std::int64_t shard_group = 0;
  // The precision gradients are accumulated and reduced in across the data-parallel group: empty
  // for the compute precision; "fp32" as Megatron-LM does for bf16 by default
  // (accumulate_allreduce_grads_in_fp32). Parameter gathers stay at the compute precision.
  std::string gradient_precision;
  // How microbatches' weight gradients are summed into the step's (m > 1 microbatches a step):
  // "separate", an elementwise kernel after each backward but the first (PyTorch's autograd,
  // DeepSpeed, TensorFlow's accumulators; the default), or "fused", inside the weight-gradient
  // GEMM (Megatron-LM's gradient_accumulation_fusion, on by default there since 2022), or "cast",
  // every microbatch's gradients (the first's too) cast to the accumulator's precision in a pass of
  // their own and then added (DeepSpeed's BF16_Optimizer: hp_grad.add_(lp.grad.to(fp32))). TPUs fuse it.
  std::string gradient_accumulation = "separate";
  // How a pipeline stage exchanges with its neighbours a microbatch: "exchange" (Megatron-LM's
  // batched send and receive at once over a full-duplex link, one transfer time a boundary) or
  // "blocking" (DeepSpeed's PipelineEngine: SendActivation, RecvActivation, SendGrad and RecvGrad
  // each a blocking transfer of its own, two a boundary).
  std::string pipeline_p2p = "exchange";
  // How ZeRO-1 reduces the step's gradients: "reduce_scatter" (the default: each rank receives its
  // shard, updates it and all-gathers the parameters) or "all_reduce" (every rank receives the whole
  // gradient, then updates its shard and all-gathers: DeepSpeed's BF16_Optimizer under its pipeline
  // engine, `_bf16_reduce_grads` -> buffered_allreduce_fallback, as BLOOM ran) or "stage1_copies"
  // (a reduce-scatter as DeepSpeed 0.3's zero/stage1.py runs it, GPT-NeoX's DeeperSpeed: every
  // gradient flattened into per-rank sub-partitions and divided before it, and its fp16 step's
  // overflow check and norm over every gradient through float32 copies; since session 51).
  std::string gradient_reduction = "reduce_scatter";
  // How clipping by the global norm scales the gradients once a step: "conditional" (only when the
  // norm exceeds the limit, Megatron-LM's `if clip_coeff < 1.0`: the norm's read alone, charged to
  // every job) or "always" (TensorFlow's clip_by_global_norm, `identity(v * scale)`, and PyTorch's
  // clip_grad_norm_ multiply every gradient: a pass reading and writing them). Since session 49.
  std::string gradient_clipping = "conditional";
  // The gradients a data-parallel collective carries at once as the backward produces them (ZeRO
  // 0-1; ZeRO-2 and -3 reduce unit by unit): 0, PyTorch DDP's 25 MB buckets (bucket_cap_mb), the
  // default; a size in bytes; or, with `megatron_buckets`, Megatron-Core's default, max(4e7,
  // 1e6 x data x context) parameters at the gradient precision (DistributedDataParallel's
  // bucket_size), one bucket where nothing is overlapped. Each bucket pays its collective's
  // start-up; the last is exposed after the backward.
  double gradient_bucket_bytes = 0;
  bool megatron_buckets = false;
  // How the ranks of a tensor group agree on the dropout masks of the tensors they all hold whole
  // (the residual stream): "seeded" (the default: each draws the same mask from a shared seed, as
  // Megatron-LM's model-parallel RNG tracker does; no communication) or "allreduce" (Mesh
  // TensorFlow on TPUs: SimdMeshImpl.random draws on every core, zeroes all but the first of each
  // group of identical slices and all-reduces the random tensor over the group, once a dropout).
  std::string dropout_masks = "seeded";
  // Expert parallelism: the number of data-parallel ranks a mixture of experts spreads its experts
  // over (each holds experts / expert of them; the experts are replicated on data / expert such
  // groups, which all-reduce their gradients). 0: min(data, experts).
  std::int64_t expert = 0;
  // The experts' tensor-parallel degree (Megatron-Core's expert_tensor_parallel_size): 0, the
  // tensor size (each expert split over the tensor group like a dense FFN, its output reduced over
  // the group), or 1 (each rank of a tensor group runs whole experts on its own sequence shard;
  // the experts' outputs need no tensor-parallel collective).
  std::int64_t expert_tensor = 0;
  // DualPipe (DeepSeek-V3, arXiv:2412.19437, Sec. 3.2.1; deepseek-ai/DualPipe): a bidirectional
  // pipeline that pairs one microbatch's forward chunk with another's backward chunk and runs each
  // one's all-to-all and stage-to-stage sends under the other's compute; its bubble is
  // (p/2 - 1)(F&B + B - 3W) against 1F1B's (p - 1)(F + B), and each device holds two stages'
  // weights. Needs an even pipeline of 2 or more stages and no interleaving.
  bool dualpipe = false;
  // Zero-bubble 1F1B (ZB1P, Qi et al. 2023, arXiv:2401.10241): the weight-gradient halves of the
  // backward fill the fill and drain, a bubble of (p - 1)(F + B - 2W) against 1F1B's
  // (p - 1)(F + B); communication as 1F1B's. Needs pipeline > 1 and no interleaving.
  bool zero_bubble = false;
};

// What a job spends besides productive steps (first-principles mode).
struct JobOverheads {
  std::optional<double> checkpoint_interval_s;       // time between checkpoints
  std::optional<double> checkpoint_bandwidth_bytes_per_s;  // aggregate write bandwidth to storage
  std::optional<double> mtbf_s;                      // mean time between failures of ONE accelerator
  double restart_s = 0;                              // time to restart after a failure
  double evaluation_fraction = 0;                    // evaluation compute / training compute
  double downtime_s = 0;                             // wall time held but not training (hangs, maintenance)
  std::int64_t runs = 1;                             // repeated runs: trials, architecture search
};

struct TrainingJob {
  std::string id;
  std::string model_id;  // empty when the job names no model
  Hardware hardware;     // resolved, overrides applied
  Datacenter datacenter; // resolved, with its region
  std::int64_t accelerators = 0;
  double duration_s = 0;  // wall time (derived from accelerator_hours when that is given)
  TrainingPower power;
  std::optional<double> tokens;
  std::optional<double> flops;
  // First-principles inputs: the model's design comes from the model entry.
  std::optional<Parallelism> parallelism;
  std::string precision = "bf16";  // compute dtype
  std::string fusion = "elementwise";  // operator fusion: none, elementwise, attention, flash1-3 (graph.hpp)
  // Whether a scenario file gave `fusion` (run's note on unfused attention where it did not; since
  // session 54).
  bool fusion_given = false;
  // Eager PyTorch outside attention: RMSNorm, rotary and gated activations as chains of kernels
  // (graph::GraphShape::eager). `eager: neox` (neox true, eager true): GPT-NeoX's layer code of
  // 2022-2023, Pythia's (graph::GraphShape::neox; since session 51).
  bool eager = false;
  bool neox = false;
  // `eager: largescale` (largescale true, eager false): GLM-130B's LargeScale, a Megatron-DeepSpeed
  // fork (graph::GraphShape::largescale; since session 51).
  bool largescale = false;
  // The training loss's kernels over the logits (graph::GraphShape::cross_entropy): "fused" (one
  // pass), "megatron" (Megatron-LM's vocab_parallel_cross_entropy over output.float()), "pytorch"
  // (F.cross_entropy over logits.float()). Since session 48.
  std::string cross_entropy = "fused";
  // The precision a mixture of experts dispatches its tokens at (docs/hardware-model.md, "Expert
  // dispatch"): "compute" (the job's, 16 bits under fp8: Megatron-Core and Transformer Engine cast
  // inside the grouped product) or "fp8" (DeepSeek-V3's: quantized once a token before the
  // dispatch, combined in 16 bits; fp8 jobs only). Since session 49.
  std::string expert_dispatch = "compute";
  ModelDesign design;              // copied from the model, std::monostate when none
  std::string layout = "nchw";     // copied from the model
  JobOverheads overheads;
  bool duration_given = true;      // false: duration is predicted (first-principles mode)
  std::optional<PublishedFigures> published;
  std::optional<std::int64_t> start_unix_s;  // when the job starts (default: the scenario's start)
  // Retraining cadence: the job runs `repeat_count` times in all, every `repeat_every_s`.
  std::int64_t repeat_count = 1;
  // The lifecycle's name of its n-th run (from 1): the id, or "<id>-<n>" for a repeated job.
  std::string run_id(std::int64_t n) const { return repeat_count > 1 ? id + "-" + std::to_string(n) : id; }
  double repeat_every_s = 0;
  // A stage of another job of the same scenario (its id): a run trained in stages (BERT's
  // sequence-length schedule, a long-context stage) is one published row, and
  // `validate --mode first-principles` adds each stage's prediction to that job's
  // (docs/scenario-format.md). Empty: the job stands alone.
  std::string stage_of;
  SourceLocation origin;  // where the job is defined
};

// Inference on one kind of accelerator: the forward graph at a batch size, for a number of
// inferences (docs/hardware-model.md, "Inference").
struct InferenceJob {
  std::string id;
  std::string model_id;
  ModelDesign design;
  Hardware hardware;
  Datacenter datacenter;
  std::int64_t batch = 1;
  std::string precision = "fp32";
  std::string layout = "nchw";        // the layout the kernels run in (default: the model's)
  std::string input_layout;           // the layout requests arrive in; a reorder per batch when it differs
  std::string fusion = "elementwise"; // operator fusion: none, elementwise, attention, flash1-3
  double inferences = 0;              // how many, in total
  std::int64_t start_unix_s = 0;      // when it runs (the scenario's start): its grid's trace and trajectory
  // Set by serving's prefill (sim/lifecycle/plan.cpp), not by scenarios: the head runs on each
  // sequence's last position only (graph::GraphShape::last_position_logits).
  bool last_position_logits = false;
  // Set by serving's decode of an encoder-decoder, not by scenarios: only the ops whose names hold
  // `only_ops_named` are costed (empty: all), and of those not the ones whose names end with
  // `except_ops_ending` (the decoder's cross-attention at one token, less its key/value projection).
  std::string only_ops_named, except_ops_ending;
  SourceLocation origin;
};

// A quantity that changes over time (replicas, devices, demand; docs/lifecycle.md). Exponential
// and logistic are continuous; piecewise and trace are step functions (value[i] from time[i]).
struct Growth {
  enum class Form { constant, exponential, logistic, piecewise, trace };
  Form form = Form::constant;
  double initial = 0;            // value at `start_unix_s`
  double rate_per_year = 0;      // exponential: 0.4 = +40 %/year; logistic: the intrinsic rate r (1/year)
  double capacity = 0;           // logistic: the limit
  std::int64_t start_unix_s = 0;
  std::vector<std::int64_t> time_unix_s;  // piecewise, trace
  std::vector<double> values;
  std::string file;  // trace: as named (lifecycle::growth_at evaluates it)
};

// Share of a deployment's demand and replicas in one data centre (cloud) or users' grid (edge).
struct DeploymentRegion {
  Datacenter datacenter;   // edge: a datacenter entry is not needed; `region` is wrapped with PUE 1
  double share = 1;
  double utc_offset_s = 0; // local time of the demand profile
  bool is_datacenter = false;  // named a datacenter (cloud), not a region (edge)
};

// Hardware mix from a date on: shares sum to 1.
struct MixStep {
  std::int64_t from_unix_s = 0;
  std::vector<Hardware> hardware;
  std::vector<double> shares;
  // Where each hardware of the step is given, and its key path ("deployments[0].hardware_mix[1].
  // shares.nvidia-gtx-1080"), for a message about that hardware.
  std::vector<SourceLocation> at;
  std::vector<std::string> keys;
};

// A model in service for years: replicas (or devices) that grow, demand with daily and weekly
// rhythm, a hardware mix that is refreshed, in several regions (docs/lifecycle.md).
struct Deployment {
  enum class Kind { cloud, edge };
  std::string id;
  std::string model_id;
  ModelDesign design;
  Kind kind = Kind::cloud;
  std::int64_t start_unix_s = 0, end_unix_s = 0;
  double step_s = 365.0 * 86400 / 12;  // how often N(t) and demand are re-evaluated (default: a month)
  // Cloud: provisioned replicas (absent: autoscaled to the peak demand of each step x (1 + headroom)).
  std::optional<Growth> replicas;
  double headroom = 0.2;
  std::int64_t accelerators_per_replica = 1;
  // Demand: requests per second, global (cloud); edge: inferences per device per second.
  Growth demand;
  std::vector<double> diurnal = std::vector<double>(24, 1.0);  // relative, mean 1 (normalised on load)
  std::vector<double> weekly = std::vector<double>(7, 1.0);    // Monday first
  std::int64_t batch = 1;
  std::string precision = "fp16";
  std::string layout = "nchw";
  std::string fusion = "elementwise";
  // LLM serving: tokens in (prefill) and out (decode) per request; 0: one forward pass per request.
  double tokens_in = 0, tokens_out = 0;
  std::vector<DeploymentRegion> regions;
  std::vector<MixStep> mix;
  // The deployment whose entry gave `hardware` or `hardware_mix`: another's where it was copied
  // through `from:` (messages name the deployment that fails beside the key it inherits).
  std::string mix_owner;
  // Edge: devices N(t) and charging losses.
  std::optional<Growth> devices;
  double charging_efficiency = 0.85;
  double useful_fraction = 1;
  std::optional<double> lifetime_s;  // hardware lifetime for embodied carbon (default: the hardware's, else 4 years)
  SourceLocation origin;
};

struct ScenarioInfo {
  std::string name;
  std::string start;        // ISO date as given, e.g. "2020-05-01"
  std::int64_t start_unix_s = 0;
  double horizon_s = 0;
  std::uint64_t seed = 0;
  std::string resolution = "month";  // time-series bins: hour, day, month, year
  bool resolution_given = false;
  SourceLocation resolution_at;      // where it was given (for the time series' size check)
};


struct Scenario {
  std::filesystem::path path;
  ScenarioInfo info;
  std::vector<Model> models;  // models the scenario defines (catalog models are not listed)
  std::vector<TrainingJob> training;
  std::vector<InferenceJob> inference;
  std::vector<Deployment> deployments;
  std::string given_text;     // the scenario file byte for byte
  std::string resolved_yaml;  // after extends, catalogs and overrides, in SI units
  // A digest (FNV-1a, hex) of the text of every YAML file read: the catalogs, the scenario and its
  // `extends` chain. With the intensity traces it uses, what a sweep's resume and merge compare.
  std::string inputs_digest;
};

// One value a sweep sets in a scenario (docs/sweep.md), applied after the scenario and its
// `extends` chain as if a last file updated that key:
//   {"training.gpt3.accelerators", "2048", {"sweep.yaml", 12, 15}}
//   {"training.gpt3.parallelism.pipeline", "8", ...}   (the rest of parallelism is kept)
//   {"datacenters.dc.pue", "1.3", ...}, {"scenario.horizon", "\"5 years\"", ...}
struct Override {
  std::string key;         // section.id.key[.key ...], or scenario.key
  std::string value_yaml;  // the value as YAML text
  SourceLocation at;       // where the sweep gives the value: errors in the value point here
  SourceLocation key_at = {};  // where it names the key (errors in the key); `at` when not set
};

struct LoadOptions {
  std::filesystem::path data_dir;  // catalogs: every *.yaml below it (empty: no catalogs)
  std::vector<Override> overrides = {};
};

// Reads, merges (`extends`), resolves and checks a scenario. Throws InputError with
// "file:line:col: key.path: expected X, got Y" for any problem.
Scenario load_scenario(const std::filesystem::path& file, const LoadOptions& options);

// Every file the scenario room has opened in this process (scenarios, `extends`, catalogs, graph
// files, CSV traces, sweep files), so that a command can refuse to write its output over one.
std::vector<std::filesystem::path> files_read();

// A digest (hex) of the files a YAML text's entries name (`trace`/`file`/`path` keys, relative to
// `folder`), with their text: what a sweep's fingerprint folds for the files its swept values name.
std::string named_files_digest(const std::string& yaml_text, const std::filesystem::path& folder);

// One hardware entry of the catalogs, resolved (`from` chain included), as a scenario naming it
// would see it. Throws InputError for an unknown id or a bad catalog.
Hardware load_catalog_hardware(const std::string& id, const LoadOptions& options);

// Where the catalogs define hardware `id` ("file:line"), or "" where they do not. Throws
// InputError for a bad catalog.
std::string catalog_hardware_place(const std::string& id, const LoadOptions& options);

// Whether `file` would be read as a catalog file of `data_dir` (a .yaml below it, in no hidden folder).
bool lies_in_catalog(const std::filesystem::path& file, const std::filesystem::path& data_dir);

// A hardware entry file about to be written at `destination` (`text`: where it is now), read with
// the catalogs as it will be: as a catalog file where `destination` lies in the data directory
// (replacing the file there), else as a scenario's layer. Throws InputError, naming `destination`,
// where the entry (or the catalog with it) would be refused.
Hardware check_hardware_entry(const std::string& id, const std::filesystem::path& text,
                              const std::filesystem::path& destination, const LoadOptions& options);

}  // namespace dlcarbon
