// Scenario loading: the entries of `training:` and `inference:` (docs/scenario-format.md), built
// by the loader's builder (load_builder.hpp, load.cpp) piece by piece.

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "design.hpp"
#include "load_builder.hpp"
#include "resolved.hpp"
#include "trace.hpp"

namespace dlcarbon::load_detail {
namespace {

// --- training jobs ---------------------------------------------------------------------

void apply_power(const Value& v, TrainingPower& p) {
  const MapView m(v, {"per_accelerator", "system", "utilisation"});
  const auto keys = m.keys();
  if (keys.size() != 1) {
    v.expected("exactly one of per_accelerator, system, utilisation",
               keys.empty() ? "none given" : std::to_string(keys.size()) + " given");
  }
  if (m.has("per_accelerator")) {
    p = {PowerBasis::per_accelerator, detail::read_positive(m.at("per_accelerator"), Kind::power)};
  } else if (m.has("system")) {
    p = {PowerBasis::system, detail::read_positive(m.at("system"), Kind::power)};
  } else {
    p = {PowerBasis::utilisation,
         detail::read_number_in(m.at("utilisation"), 0, 1, false, "a utilisation in (0, 1] (e.g. 0.8)")};
  }
}

// Why the roofline has no rate for `precision` on `hw` ("" where it has one), with the fallbacks
// hardware::DeviceModel::peak takes: a 16- or 8-bit precision the other 16-bit one or fp32; fp32 and
// tf32 a quarter of a 16-bit rate, not of an 8-bit one (since session 43, a review: fp32 on a phone's
// int8-only NPU ran at a quarter of its int8 rate; since session 41: bf16 on hardware that lists only
// an int8 rate was an internal failure, exit 1).
std::string without_rate(const Hardware& hw, const std::string& precision) {
  const auto& r = hw.peak_flop_per_s;
  if (r.count(precision)) return "";
  if (r.count("bf16") || r.count("fp16") || r.count("fp32")) return "";
  if (r.empty()) return hw.id + " lists no peak rate";
  std::string listed;
  for (const auto& [dtype, rate] : r) listed += (listed.empty() ? "" : ", ") + dtype;
  return hw.id + " lists no 16-bit or fp32 peak rate to cost " + precision + " on" +
         (listed.empty() ? "" : " (only " + listed + ")") + "; choose a precision it lists, or other hardware";
}

// What a training layout must satisfy whatever the job's mode: the data-parallel ranks run whole
// microbatches, shards and experts divide their groups, the schedule's needs.
void check_layout(const TrainingJob& j, const Value& last, const std::optional<Value>& stage_layers_at = std::nullopt) {
  // A hybrid sharding group must divide the data-parallel size, also where that is derived.
  const Parallelism& p = *j.parallelism;
  // Products below are formed in 64-bit integers: bound their factors first (each is at most 2^53).
  const bool cp = p.context > 1;
  if (static_cast<double>(p.tensor) * static_cast<double>(p.pipeline) * static_cast<double>(p.context) >
      static_cast<double>(j.accelerators)) {
    last.fail(std::string("parallelism: tensor x pipeline") + (cp ? " x context (" : " (") + std::to_string(p.tensor) + " x " +
              std::to_string(p.pipeline) + (cp ? " x " + std::to_string(p.context) : "") + ") exceeds the accelerators (" +
              std::to_string(j.accelerators) + ")");
  }
  const std::int64_t model_parallel = std::max<std::int64_t>(1, p.tensor * p.pipeline * p.context);
  // The ranks fill the accelerators: data x tensor x pipeline x context of them (since session 42, a
  // review: a mismatch was found only when costing, and written as a job that cannot run).
  const std::string layout = std::string("tensor x pipeline") + (cp ? " x context (" : " (") + std::to_string(p.tensor) + " x " +
                             std::to_string(p.pipeline) + (cp ? " x " + std::to_string(p.context) : "") + ")";
  if (p.data > 0 && static_cast<double>(p.data) * static_cast<double>(model_parallel) != static_cast<double>(j.accelerators)) {
    last.fail("parallelism.data (" + std::to_string(p.data) + ") x " + layout + " is not the accelerators (" +
              std::to_string(j.accelerators) + "); leave data out to derive it");
  }
  if (p.data == 0 && j.accelerators % model_parallel != 0) {
    last.fail("parallelism: the accelerators (" + std::to_string(j.accelerators) + ") are not a multiple of " + layout);
  }
  // ZeRO shards over the ranks that hold the same weights: data x context.
  if (p.shard_group > 0 && p.data == 0 && j.accelerators % model_parallel == 0 &&
      (j.accelerators / model_parallel * p.context) % p.shard_group != 0) {
    last.fail("parallelism.shard_group (" + std::to_string(p.shard_group) +
              (cp ? ") must divide the data x context ranks (" : ") must divide the data-parallel size (accelerators / (tensor x pipeline) = ") +
              std::to_string(j.accelerators / model_parallel * p.context) + ")");
  }
  // (A model with no design is never costed: its layout is a record, as `tensor`'s is; since
  // session 40, a review: an accounting job with Llama 3's long-context layout was refused.)
  if (cp && !std::holds_alternative<std::monostate>(j.design)) {
    // Context parallelism is costed for dense decoder-only transformers: their causal attention's
    // chunks balanced over the ranks (Megatron-LM's and Llama 3's two chunks a rank, the sequence
    // cut in 2 x context). Experts, latent attention, the evolved cell and encoders are not
    // modelled with it: refused, not costed as if they split freely.
    const auto* t = std::get_if<TransformerDesign>(&j.design);
    if (!t || t->arch != TransformerDesign::Arch::decoder || t->image > 0) {
      last.fail("parallelism.context (" + std::to_string(p.context) + ") needs a decoder-only transformer (builder: decoder): "
                "context parallelism splits a causal sequence's positions over ranks");
    }
    if (t->experts > 0 || t->kv_lora_rank > 0 || t->evolved) {
      last.fail("parallelism.context (" + std::to_string(p.context) + ") is modelled for dense decoders with multi-head, "
                "grouped-query or multi-query attention; the model has " +
                (t->experts > 0 ? std::string("experts") : t->kv_lora_rank > 0 ? std::string("latent attention") : std::string("the evolved cell")));
    }
    if (t->seq_len % (2 * p.context) != 0) {
      last.fail("parallelism.context (" + std::to_string(p.context) + "): seq_len (" + std::to_string(t->seq_len) +
                ") must be a multiple of 2 x context (" + std::to_string(2 * p.context) +
                "): each rank holds two equal chunks of every sequence");
    }
  }
  // Each data-parallel rank runs whole microbatches: the global batch is a whole number of
  // them on every rank (as Megatron-LM and DeepSpeed require).
  const std::int64_t data =
      p.data > 0 ? p.data : (j.accelerators % model_parallel == 0 ? j.accelerators / model_parallel : 0);
  if (data > 0 && static_cast<double>(data) * static_cast<double>(p.microbatch) > static_cast<double>(p.global_batch)) {
    last.fail("parallelism.global_batch (" + std::to_string(p.global_batch) + ") is less than data x microbatch (" +
              std::to_string(data) + " x " + std::to_string(p.microbatch) +
              "): each data-parallel rank runs at least one whole microbatch");
  }
  if (data > 0 && p.global_batch % (data * p.microbatch) != 0) {
    last.fail("parallelism.global_batch (" + std::to_string(p.global_batch) +
              ") is not a multiple of data x microbatch (" + std::to_string(data) + " x " +
              std::to_string(p.microbatch) + " = " + std::to_string(data * p.microbatch) +
              "): each data-parallel rank runs whole microbatches");
  }
  if (p.batch_rampup && data > 0) {
    // Every batch of the ramp is whole microbatches on every rank, as the global batch is.
    const std::int64_t unit = data * p.microbatch;
    const auto& r = *p.batch_rampup;
    const std::int64_t step = r.increment > 0 ? r.increment : unit;
    // Each batch size of the ramp is a step of the overheads' sum: at most 10^6 of them.
    if (static_cast<double>(p.global_batch - r.start) / static_cast<double>(step) > 1e6) {
      last.fail("parallelism.batch_rampup: " + std::to_string((p.global_batch - r.start) / step) +
                " batch sizes from start to global_batch; at most 1,000,000 (a larger increment)");
    }
    if (r.start % unit != 0 || step % unit != 0) {
      last.fail("parallelism.batch_rampup: start (" + std::to_string(r.start) + ") and increment (" + std::to_string(step) +
                ") must be multiples of data x microbatch (" + std::to_string(unit) + "): each rank runs whole microbatches");
    }
    if (p.dualpipe && ((r.start / unit) % 2 != 0 || (step / unit) % 2 != 0 || r.start / unit < 2 * p.pipeline)) {
      last.fail("parallelism.batch_rampup: under dualpipe every batch of the ramp needs an even number of microbatches a "
                "data rank, at least twice the pipeline's " + std::to_string(p.pipeline) + " stages (start " +
                std::to_string(r.start) + " and increment " + std::to_string(step) + " over data x microbatch " +
                std::to_string(unit) + ")");
    }
    // Interleaved 1F1B and zb1p need as many microbatches a data rank as stages in every batch of
    // the ramp too, as for the global batch below (since session 42, a review: the ramp's smaller
    // batches were costed in the regime the checks below refuse).
    if ((p.virtual_stages > 1 || p.zero_bubble) && r.start / unit < p.pipeline) {
      last.fail(std::string("parallelism.batch_rampup: under ") + (p.zero_bubble ? "zb1p" : "interleaved 1F1B (virtual_stages)") +
                " every batch of the ramp needs at least as many microbatches a data rank as the pipeline's " +
                std::to_string(p.pipeline) + " stages; start " + std::to_string(r.start) + " over data x microbatch " +
                std::to_string(unit) + " is " + std::to_string(r.start / unit));
    }
    if (p.virtual_stages > 1 && ((r.start / unit) % p.pipeline != 0 || (step / unit) % p.pipeline != 0)) {
      last.fail("parallelism.batch_rampup: under interleaved 1F1B (virtual_stages) every batch of the ramp needs a multiple of the "
                "pipeline's " + std::to_string(p.pipeline) + " stages in microbatches a data rank; start " + std::to_string(r.start) +
                " and increment " + std::to_string(step) + (r.increment > 0 ? "" : " (the default, data x microbatch: give one)") +
                " over data x microbatch " + std::to_string(unit));
    }
    // The ramp's sequences are the job's first: no more than it trains.
    std::int64_t sample_tokens = 1;
    if (const auto* t = std::get_if<TransformerDesign>(&j.design)) sample_tokens = t->tokens_per_sample();
    if (const auto* l = std::get_if<LstmDesign>(&j.design)) sample_tokens = l->seq_len;
    if (const auto* f = std::get_if<FileGraphDesign>(&j.design)) sample_tokens = f->tokens_per_sample;  // as graph::tokens_per_sample
    if (j.tokens && r.samples * static_cast<double>(sample_tokens) * (1 - p.padding) > *j.tokens) {
      last.fail("parallelism.batch_rampup: samples (" + std::to_string(static_cast<std::int64_t>(r.samples)) +
                " sequences) exceed the job's tokens (" +
                std::to_string(std::llround(*j.tokens / (static_cast<double>(sample_tokens) * (1 - p.padding)))) +
                " sequences of " + std::to_string(sample_tokens) + " tokens)");
    }
    if ((p.global_batch - r.start) % step != 0) {
      last.fail("parallelism.batch_rampup: global_batch - start (" + std::to_string(p.global_batch - r.start) +
                ") is not a multiple of the increment (" + std::to_string(step) + ")");
    }
  }
  // Tensor parallelism is costed as Megatron-LM's split of a transformer's layers (attention by
  // heads, the feed-forward's two GEMMs, and their all-reduces). Nothing splits a CNN's, LSTM's,
  // MLP's or graph file's ops with the collectives that would go with it: refused, not costed as a
  // free speed-up (since session 34; before, their compute was divided by `tensor` with no
  // communication).
  if (p.tensor > 1 && !std::holds_alternative<TransformerDesign>(j.design) && !std::holds_alternative<std::monostate>(j.design)) {
    const char* kind = std::holds_alternative<ResNetDesign>(j.design)  ? "a ResNet"
                       : std::holds_alternative<LstmDesign>(j.design) ? "an LSTM"
                       : std::holds_alternative<MlpDesign>(j.design)  ? "an MLP"
                                                                       : "a graph file";
    last.fail("parallelism.tensor (" + std::to_string(p.tensor) + ") needs a transformer design: tensor parallelism is " +
              "costed as Megatron-LM's split of attention heads and feed-forward layers, and the model is " + kind +
              " (use data or pipeline parallelism)");
  }
  if (const auto* t = std::get_if<TransformerDesign>(&j.design)) {
    // Megatron-LM splits attention by heads over the tensor group, and expert parallelism
    // places E / data experts on a rank (or one expert on data / E ranks).
    if (t->heads > 0 && t->heads % p.tensor != 0) {
      last.fail("parallelism.tensor (" + std::to_string(p.tensor) + ") must divide the model's heads (" +
                std::to_string(t->heads) + "): tensor parallelism splits attention by heads");
    }
    // A decoder vocabulary of its own is a second table: where a pipeline places it, and the
    // copies of a tied table between stages, are modelled for one vocabulary only (since session 35).
    if (t->target_vocab > 0 && p.pipeline > 1) {
      last.fail("parallelism.pipeline (" + std::to_string(p.pipeline) + ") with a model's target_vocab is not modelled: " +
                "the stages' vocabulary tables are placed for one vocabulary (use data, tensor or expert parallelism)");
    }
    if (p.expert > 0 && t->experts == 0) {
      last.fail("parallelism.expert (" + std::to_string(p.expert) + ") needs a model with experts");
    }
    // (Since session 34; before, accepted with no effect.)
    if (p.expert_tensor > 0 && t->experts == 0) {
      last.fail("parallelism.expert_tensor (" + std::to_string(p.expert_tensor) + ") needs a model with experts");
    }
    if (p.expert > 0 && t->experts > 0) {
      if (t->experts % p.expert != 0) {
        last.fail("parallelism.expert (" + std::to_string(p.expert) + ") must divide the model's experts (" +
                  std::to_string(t->experts) + "): each rank of the group holds experts / expert of them");
      }
      if (data > 0 && data % p.expert != 0) {
        last.fail("parallelism.expert (" + std::to_string(p.expert) + ") must divide the data-parallel size (" +
                  std::to_string(data) + ")");
      }
    } else if (t->experts > 0 && data > 0 && t->experts % data != 0 && data % t->experts != 0) {
      last.fail("the model's experts (" + std::to_string(t->experts) + ") and the data-parallel size (" +
                std::to_string(data) + ") must divide one another: expert parallelism places experts / data "
                "experts on each rank, or each expert on data / experts ranks");
    }
  }
  if (p.recompute_latent) {
    const auto* t = std::get_if<TransformerDesign>(&j.design);
    if (!t || t->kv_lora_rank == 0) {
      last.fail("parallelism.recompute: latent recomputes latent attention's up-projections; the model has no "
                "kv_lora_rank (use elementwise, selective or full)");
    }
  }
  if ((j.precision == "fp8" || j.precision == "int8") && std::holds_alternative<ResNetDesign>(j.design)) {
    last.fail("precision " + j.precision + " trains the matrix products in 8 bits; convolutions are not "
              "modelled in 8 bits (use bf16 or fp16 for a ResNet)");
  }
  if (p.dualpipe && data > 0) {
    // DualPipe feeds microbatches from both ends: an even number, at least two a stage.
    const std::int64_t per_rank = p.global_batch / std::max<std::int64_t>(1, data * p.microbatch);
    if (per_rank % 2 != 0 || per_rank < 2 * p.pipeline) {
      last.fail("parallelism.pipeline_schedule dualpipe needs an even number of microbatches a data rank, at "
                "least twice the pipeline's " + std::to_string(p.pipeline) + " stages; global_batch / (data x "
                "microbatch) = " + std::to_string(per_rank));
    }
  }
  if (p.virtual_stages > 1 && p.pipeline < 2) {
    last.fail("parallelism.virtual_stages (" + std::to_string(p.virtual_stages) +
              ") needs pipeline > 1: an interleaved schedule splits each pipeline stage into chunks");
  }
  if (p.virtual_stages > 1 && data > 0) {
    // Interleaved 1F1B runs the microbatches in groups of one a stage: Megatron-LM refuses fewer
    // than the stages (since session 34; before, accepted) and a number they do not divide (before
    // 2024 outright; since, with its default group of p microbatches, a last group smaller than p:
    // `0 < m % N < p`, "dependency bubbles"; since session 42, a review: such an order deadlocked
    // in the schedule run op by op).
    const std::int64_t per_rank = p.global_batch / std::max<std::int64_t>(1, data * p.microbatch);
    if (per_rank < p.pipeline) {
      last.fail("parallelism.virtual_stages (" + std::to_string(p.virtual_stages) + ") needs at least as many microbatches a data rank as " +
                "the pipeline's " + std::to_string(p.pipeline) + " stages; global_batch / (data x microbatch) = " + std::to_string(per_rank));
    }
    if (per_rank % p.pipeline != 0) {
      last.fail("parallelism.virtual_stages (" + std::to_string(p.virtual_stages) + ") needs a multiple of the pipeline's " +
                std::to_string(p.pipeline) + " stages in microbatches a data rank, as Megatron-LM's interleaved schedule does; "
                "global_batch / (data x microbatch) = " + std::to_string(per_rank));
    }
  }
  if (p.zero_bubble && data > 0) {
    // Zero-bubble 1F1B fills its bubble with the weight-gradient halves of later microbatches: its
    // (p - 1) F holds with at least one microbatch a stage; with fewer, a microbatch's chain through
    // the stages is longer than that charges (since session 41, a review: 29 % short at one).
    const std::int64_t per_rank = p.global_batch / std::max<std::int64_t>(1, data * p.microbatch);
    if (per_rank < p.pipeline) {
      last.fail("parallelism.pipeline_schedule zb1p needs at least as many microbatches a data rank as the pipeline's " +
                std::to_string(p.pipeline) + " stages; global_batch / (data x microbatch) = " + std::to_string(per_rank) +
                " (use 1f1b)");
    }
  }
  if (!p.stage_layers.empty()) {
    const Value& at = stage_layers_at ? *stage_layers_at : last;
    const auto* t = std::get_if<TransformerDesign>(&j.design);
    if (!t) at.fail("partitions a transformer's layers; the model has no transformer design");
    std::int64_t sum = 0;
    for (const std::int64_t n : p.stage_layers) sum += n;
    // A multi-token prediction module is a layer of the partition (Megatron-Core's layouts).
    const std::int64_t layers = t->encoder_layers + t->decoder_layers + t->mtp_depth;
    if (sum != layers) {
      at.fail("holds " + std::to_string(sum) + " layers; the model has " + std::to_string(layers) +
                (t->mtp_depth > 0 ? " (its multi-token prediction layers included)" : ""));
    }
    // Every device runs a layer, or the embeddings (the first) or the head (the last).
    for (std::int64_t d = 1; d + 1 < p.pipeline; ++d) {
      std::int64_t held = 0;
      for (std::size_t c = static_cast<std::size_t>(d); c < p.stage_layers.size(); c += static_cast<std::size_t>(p.pipeline)) {
        held += p.stage_layers[c];
      }
      if (held == 0) at.fail("leaves pipeline device " + std::to_string(d) + " without a layer");
    }
  }
}

Parallelism read_parallelism(const Value& v) {
  const MapView m(v, {"data", "tensor", "pipeline", "context", "microbatch", "global_batch", "zero_stage", "recompute",
                      "overlap_communication", "optimizer", "sequence_parallel", "sequence_parallel_backward", "virtual_stages", "padding",
                      "shard_group", "gradient_precision", "gradient_accumulation", "pipeline_p2p", "gradient_reduction", "gradient_clipping", "dropout_masks", "expert", "expert_tensor",
                      "pipeline_schedule", "stage_layers", "batch_rampup", "gradient_bucket", "shared_expert_overlap",
                      "partition_activations"});
  m.require("global_batch");
  Parallelism p;
  if (m.has("data")) p.data = detail::read_positive_int(m.at("data"));
  if (m.has("tensor")) p.tensor = detail::read_positive_int(m.at("tensor"));
  if (m.has("pipeline")) p.pipeline = detail::read_positive_int(m.at("pipeline"));
  if (m.has("context")) p.context = detail::read_positive_int(m.at("context"));
  if (m.has("microbatch")) p.microbatch = detail::read_positive_int(m.at("microbatch"));
  p.global_batch = detail::read_positive_int(m.at("global_batch"));
  if (m.has("zero_stage")) p.zero_stage = std::stoi(detail::read_choice(m.at("zero_stage"), {"0", "1", "2", "3"}));
  if (m.has("optimizer")) p.optimizer = detail::read_choice(m.at("optimizer"), {"adam", "adafactor", "sgd", "adagrad"});
  if (m.has("recompute")) {
    const Value r = m.at("recompute");
    const std::string mode = r.node.IsScalar() ? r.node.Scalar() : std::string();
    if (mode == "selective") {
      p.recompute_selective = true;
    } else if (mode == "elementwise") {
      p.recompute_elementwise = true;
    } else if (mode == "latent") {
      p.recompute_latent = true;
    } else if (mode == "full") {
      p.recompute = true;
    } else if (mode == "none") {
      p.recompute = false;
    } else if (mode == "true" || mode == "yes" || mode == "false" || mode == "no") {
      p.recompute = detail::read_bool(r);
    } else {
      r.expected("true, false, full, none, selective, elementwise or latent");
    }
  }
  if (m.has("batch_rampup")) {
    const MapView r(m.at("batch_rampup"), {"start", "increment", "samples"});
    r.require("start");
    r.require("samples");
    Parallelism::BatchRampup ramp;
    ramp.start = detail::read_positive_int(r.at("start"));
    if (r.has("increment")) ramp.increment = detail::read_positive_int(r.at("increment"));
    ramp.samples = static_cast<double>(detail::read_positive_int(r.at("samples")));  // sequences, as Megatron-LM counts them
    if (ramp.start >= p.global_batch) {
      r.at("start").fail("a ramp-up starts below global_batch (" + std::to_string(p.global_batch) + ")");
    }
    if (ramp.increment > 0 && (p.global_batch - ramp.start) % ramp.increment != 0) {
      r.at("increment").fail("global_batch - start (" + std::to_string(p.global_batch - ramp.start) +
                             ") is not a multiple of the increment (" + std::to_string(ramp.increment) + ")");
    }
    p.batch_rampup = ramp;
  }
  if (m.has("overlap_communication")) p.overlap_communication = detail::read_bool(m.at("overlap_communication"));
  if (m.has("shared_expert_overlap")) p.shared_expert_overlap = detail::read_bool(m.at("shared_expert_overlap"));
  if (m.has("partition_activations")) p.partition_activations = detail::read_bool(m.at("partition_activations"));
  if (m.has("sequence_parallel")) p.sequence_parallel = detail::read_bool(m.at("sequence_parallel"));
  if (m.has("sequence_parallel_backward")) {
    p.sequence_parallel_backward = detail::read_choice(m.at("sequence_parallel_backward"), {"exposed", "overlapped"});
    if (!p.sequence_parallel) {
      m.at("sequence_parallel_backward").fail("needs sequence_parallel: true (it says how a sequence-parallel backward runs its collectives)");
    }
  }
  if (m.has("virtual_stages")) p.virtual_stages = detail::read_positive_int(m.at("virtual_stages"));
  // The layout's counts are multiplied in 64-bit integers and its chunks are listed one by one:
  // bounded far above any run (Llama 3.1's 128 chunks) and far below overflow.
  if (static_cast<double>(p.pipeline) * static_cast<double>(p.virtual_stages) > kMaxPipelineChunks) {
    m.at(m.has("virtual_stages") ? "virtual_stages" : "pipeline")
        .fail("pipeline x virtual_stages (" + std::to_string(p.pipeline) + " x " + std::to_string(p.virtual_stages) +
              ") is more than " + std::to_string(static_cast<std::int64_t>(kMaxPipelineChunks)) + " pipeline chunks");
  }
  if (p.microbatch > p.global_batch) {
    m.at("microbatch").fail("exceeds global_batch (" + std::to_string(p.global_batch) + "): a step runs whole microbatches");
  }
  if (m.has("padding")) {
    const char* what = "a share of the batch's positions that are padding, in [0, 1) (e.g. 0.24)";
    p.padding = detail::read_number_in(m.at("padding"), 0, 1, true, what);
    if (!(p.padding < 1)) m.at("padding").expected(what);
  }
  if (m.has("pipeline_schedule")) {
    const std::string schedule = detail::read_choice(m.at("pipeline_schedule"), {"1f1b", "zb1p", "dualpipe"});
    p.dualpipe = schedule == "dualpipe";
    p.zero_bubble = schedule == "zb1p";
    if (p.zero_bubble && p.pipeline < 2) {
      m.at("pipeline_schedule").fail("zb1p needs a pipeline of 2 or more stages (pipeline: " + std::to_string(p.pipeline) + ")");
    }

    if (p.dualpipe && (p.pipeline < 2 || p.pipeline % 2 != 0)) {
      m.at("pipeline_schedule").fail("dualpipe needs an even pipeline of 2 or more stages (pipeline: " +
                                     std::to_string(p.pipeline) + "): it runs microbatches from both ends");
    }
    if ((p.dualpipe || p.zero_bubble) && p.virtual_stages > 1) {
      m.at("pipeline_schedule").fail(schedule + " has its own schedule; drop virtual_stages (interleaved 1F1B)");
    }
  }
  if (m.has("stage_layers") && !m.at("stage_layers").node.IsMap()) {
    const Value list = m.at("stage_layers");
    const std::int64_t chunks = p.pipeline * p.virtual_stages;
    const std::string what = "a list of " + std::to_string(chunks) + " layer counts, one a pipeline chunk (pipeline x virtual_stages = " +
                             std::to_string(p.pipeline) + " x " + std::to_string(p.virtual_stages) + "), or {first: n, last: n}";
    if (!list.node.IsSequence() || static_cast<std::int64_t>(list.node.size()) != chunks) {
      list.expected(what, list.node.IsSequence() ? std::to_string(list.node.size()) + " of them" : "");
    }
    if (p.dualpipe) list.fail("dualpipe places two stages on each device; stage_layers is for 1f1b, interleaved or zb1p schedules");
    for (std::size_t i = 0; i < list.node.size(); ++i) {
      const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
      const std::int64_t n = detail::read_int(item);
      if (n < 0 || n > kMaxStageLayers) item.expected("a whole number of layers from 0 to 100,000");
      p.stage_layers.push_back(n);
    }
  }
  if (m.has("expert")) {
    p.expert = detail::read_positive_int(m.at("expert"));
    if (p.data > 0 && p.data % p.expert != 0) {
      m.at("expert").fail("must divide the data-parallel size (" + std::to_string(p.data) +
                          "): the experts spread over groups of this many data ranks");
    }
  }
  if (m.has("expert_tensor")) {
    p.expert_tensor = detail::read_positive_int(m.at("expert_tensor"));
    if (p.expert_tensor != 1 && p.expert_tensor != p.tensor) {
      m.at("expert_tensor").fail("must be 1 (whole experts on each rank of a tensor group) or the tensor-parallel size (" +
                                 std::to_string(p.tensor) + ": each expert split over the tensor group)");
    }
  }
  if (m.has("gradient_precision")) p.gradient_precision = detail::read_choice(m.at("gradient_precision"), {"fp32", "bf16", "fp16"});
  if (m.has("gradient_accumulation")) {
    p.gradient_accumulation = detail::read_choice(m.at("gradient_accumulation"), {"separate", "fused", "cast"});
  }
  if (m.has("pipeline_p2p")) p.pipeline_p2p = detail::read_choice(m.at("pipeline_p2p"), {"exchange", "blocking"});
  if (m.has("gradient_clipping")) p.gradient_clipping = detail::read_choice(m.at("gradient_clipping"), {"conditional", "always"});
  if (m.has("gradient_reduction")) {
    p.gradient_reduction = detail::read_choice(m.at("gradient_reduction"), {"reduce_scatter", "all_reduce", "stage1_copies"});
    if (p.zero_stage != 1) {
      m.at("gradient_reduction").fail("chooses how ZeRO-1 reduces the gradients; needs zero_stage: 1 (without ZeRO they are "
                                      "all-reduced, with ZeRO-2 and -3 reduce-scattered)");
    }
  }
  if (m.has("dropout_masks")) p.dropout_masks = detail::read_choice(m.at("dropout_masks"), {"seeded", "allreduce"});
  if (m.has("gradient_bucket")) {
    const Value b = m.at("gradient_bucket");
    if (b.node.IsScalar() && b.node.Scalar() == "megatron") {
      p.megatron_buckets = true;
    } else {
      try {
        p.gradient_bucket_bytes = detail::read_positive(b, Kind::bytes);
      } catch (const InputError&) {
        b.expected("a size in bytes (e.g. \"25 MB\") or `megatron` (Megatron-Core's default bucket)");
      }
    }
    if (p.zero_stage >= 2) {
      b.fail("sizes the buckets of the gradient reduction under ZeRO 0-1; ZeRO-2 and -3 reduce the gradients unit by unit");
    }
  }
  if (m.has("shard_group")) {
    p.shard_group = detail::read_positive_int(m.at("shard_group"));
    if (p.zero_stage != 3) {
      m.at("shard_group").fail("needs zero_stage: 3 (hybrid sharding shards the parameters within each group of "
                               "data-parallel ranks and replicates them across the groups)");
    }
    // (Over the ranks that hold the same weights, data x context, as the cost model shards; since
    // session 46, a review: `data` alone where it was given.)
    const std::int64_t cp = std::max<std::int64_t>(1, p.context);
    if (p.data > 0 && (p.data * cp) % p.shard_group != 0) {
      m.at("shard_group").fail(cp > 1 ? "must divide the data x context ranks (" + std::to_string(p.data * cp) + ")"
                                      : "must divide the data-parallel size (" + std::to_string(p.data) + ")");
    }
  }
  if (p.pipeline_p2p == "blocking" && (p.pipeline < 2 || p.virtual_stages > 1 || p.dualpipe || p.zero_bubble)) {
    m.at("pipeline_p2p").fail("blocking (DeepSpeed's pipeline engine) needs pipeline > 1 and the plain 1F1B schedule "
                              "(not virtual_stages > 1, zb1p or dualpipe)");
  }
  return p;
}

JobOverheads read_overheads(const Value& v) {
  const MapView m(v, {"checkpoint_interval", "checkpoint_bandwidth", "mtbf", "restart", "evaluation", "downtime", "runs"});
  JobOverheads o;
  if (m.has("checkpoint_interval")) o.checkpoint_interval_s = detail::read_positive(m.at("checkpoint_interval"), Kind::time);
  if (m.has("checkpoint_bandwidth")) {
    o.checkpoint_bandwidth_bytes_per_s = detail::read_positive(m.at("checkpoint_bandwidth"), Kind::bandwidth);
  }
  if (m.has("mtbf")) o.mtbf_s = detail::read_positive(m.at("mtbf"), Kind::time);
  if (m.has("restart")) o.restart_s = detail::read_non_negative(m.at("restart"), Kind::time);
  if (m.has("evaluation")) {
    o.evaluation_fraction = detail::read_number_in(m.at("evaluation"), 0, 10, true, "a share of training compute from 0 to 10 (e.g. 0.02)");
  }
  if (m.has("downtime")) {
    o.downtime_s = detail::read_non_negative(m.at("downtime"), Kind::time);
    if (o.downtime_s > kMaxSpanS) m.at("downtime").expected("a downtime of at most 1,000 years");
  }
  if (m.has("runs")) o.runs = detail::read_positive_int(m.at("runs"));
  if (o.checkpoint_bandwidth_bytes_per_s && !o.checkpoint_interval_s) {
    m.at("checkpoint_bandwidth").fail("needs checkpoint_interval");
  }
  if (o.mtbf_s && !o.checkpoint_interval_s) m.at("mtbf").fail("needs checkpoint_interval (work since the last checkpoint is lost)");
  // (A restart follows a failure: without an mtbf it would be silently ignored; since session 46.)
  if (m.has("restart") && !o.mtbf_s) m.at("restart").fail("needs mtbf (a restart follows a failure)");
  return o;
}

PrintedFigure printed(const Value& v, Kind kind) {
  const units::Quantity q = detail::read_quantity(v, kind);
  if (!(q.value > 0)) v.expected(units::describe(kind, "greater than 0"));
  return {q.value, q.resolution};
}

PublishedStep read_published_step(const Value& v) {
  const MapView m(v, {"mfu", "mfu_attention", "throughput", "step_time", "layer_time", "source"});
  PublishedStep s;
  if (m.has("source")) s.source = detail::read_text(m.at("source"));
  if (m.has("mfu")) {
    const units::Quantity q = detail::read_quantity(m.at("mfu"), Kind::ratio);
    if (!(q.value > 0 && q.value <= 1)) m.at("mfu").expected("a fraction of peak in (0, 1] (e.g. 0.41)");
    s.mfu = PrintedFigure{q.value, q.resolution};
  }
  if (m.has("mfu_attention")) {
    if (!m.has("mfu")) m.at("mfu_attention").fail("says how an mfu counts attention; give mfu too");
    s.mfu_full_attention = detail::read_choice(m.at("mfu_attention"), {"causal", "full"}) == "full";
  }
  if (m.has("throughput")) {
    // Tokens a second per accelerator: the rate is compared with the step's tokens, so another
    // count noun ("images/s") is refused rather than read as tokens.
    const Value& t = m.at("throughput");
    if (t.node.IsScalar() && t.node.Scalar().find("token") == std::string::npos) {
      t.expected("tokens a second per accelerator (e.g. \"380 tokens/s\")");
    }
    s.tokens_per_s = printed(t, Kind::frequency);
  }
  if (m.has("step_time")) s.step_s = printed(m.at("step_time"), Kind::time);
  if (m.has("layer_time")) s.layer_s = printed(m.at("layer_time"), Kind::time);
  if (!s.mfu && !s.tokens_per_s && !s.step_s && !s.layer_s) {
    v.fail("missing a step figure: give mfu, throughput (tokens/s per accelerator), step_time or layer_time");
  }
  return s;
}

void apply_published(const Value& v, PublishedFigures& f) {
  const MapView m(v, {"source", "energy", "energy_scope", "co2e_location", "co2e_market", "step", "accelerator_hours",
                      "notes"});
  m.require("source");
  f.source = detail::read_text(m.at("source"));
  if (m.has("energy")) f.energy_j = printed(m.at("energy"), Kind::energy);
  if (m.has("energy_scope")) {
    f.energy_includes_pue = detail::read_choice(m.at("energy_scope"), {"facility", "it"}) == "facility";
    // The scope of a published energy: without one it would scope nothing (since session 36).
    if (!m.has("energy")) m.at("energy_scope").fail("scopes a published energy; give energy, or drop energy_scope");
  }
  if (m.has("co2e_location")) f.co2e_location_kg = printed(m.at("co2e_location"), Kind::co2e);
  if (m.has("co2e_market")) f.co2e_market_kg = printed(m.at("co2e_market"), Kind::co2e);
  if (m.has("step")) f.step = read_published_step(m.at("step"));
  // Beside a footprint too (since session 50): a first-principles job (the job's check below
  // refuses them beside a duration) that publishes a run's hours and its CO2e, as Meta's card for
  // Llama 3.1 does for a run costed in stages, has both compared by `validate --mode
  // first-principles`; before, the footprint was refused with them.
  if (m.has("accelerator_hours")) f.accelerator_time_s = printed(m.at("accelerator_hours"), Kind::time);
  if (m.has("notes")) f.notes = detail::read_text(m.at("notes"));
  if (!f.has_footprint() && !f.step && !f.accelerator_time_s) {
    v.fail("missing a figure to compare: give energy, co2e_location, co2e_market, step or accelerator_hours");
  }
}

}  // namespace

const EntityKind<JobDraft>& Builder::training_kind() {
  static const EntityKind<JobDraft> kind{
      "training", "training job",
      {"id", "from", "name", "model", "hardware", "accelerators", "duration", "accelerator_hours",
       "power", "datacenter", "tokens", "flops", "precision", "fusion", "eager", "cross_entropy", "expert_dispatch", "parallelism", "overheads", "start",
       "repeat", "stage_of", "published", "notes"},
      {"hardware", "accelerators", "datacenter"},
      [](Builder& b, const MapView& m, JobDraft& d) {
        TrainingJob& j = d.job;
        if (m.has("id")) j.id = detail::read_id(m.at("id"));
        if (m.has("name")) detail::read_text(m.at("name"));
        if (m.has("model")) {
          const Model& model = b.model(m.at("model"));
          j.model_id = model.id;
          j.design = model.design;
          j.layout = model.layout;
        }
        if (m.has("precision")) {
          j.precision = detail::read_choice(m.at("precision"), kPrecisions);
        }
        if (m.has("parallelism")) {
          j.parallelism = read_parallelism(m.at("parallelism"));
          // A parallelism given again (extends) replaces the earlier one, its partition too.
          d.stage_layers.reset();
          d.stage_ends.reset();
          d.shared_expert_overlap_at.reset();
          d.partition_activations_at.reset();
          const Value pv = m.at("parallelism");
          if (pv.node.IsMap() && pv.node["partition_activations"] && j.parallelism->partition_activations) {
            d.partition_activations_at = pv.child(pv.node["partition_activations"], "partition_activations");
          }
          if (pv.node.IsMap() && pv.node["shared_expert_overlap"] && j.parallelism->shared_expert_overlap) {
            d.shared_expert_overlap_at = pv.child(pv.node["shared_expert_overlap"], "shared_expert_overlap");
          }
          if (pv.node.IsMap() && pv.node["stage_layers"]) {
            d.stage_layers = pv.child(pv.node["stage_layers"], "stage_layers");
            if (d.stage_layers->node.IsMap()) {
              // The short form: the first and the last chunk's layers (Megatron-Core's
              // decoder_first_pipeline_num_layers and decoder_last_pipeline_num_layers, by chunk).
              const MapView ends(*d.stage_layers, {"first", "last"});
              ends.require("first");
              ends.require("last");
              const std::int64_t first = detail::read_int(ends.at("first")), last_n = detail::read_int(ends.at("last"));
              if (first < 0 || first > kMaxStageLayers) ends.at("first").expected("a whole number of layers from 0 to 100,000");
              if (last_n < 0 || last_n > kMaxStageLayers) ends.at("last").expected("a whole number of layers from 0 to 100,000");
              if (j.parallelism->dualpipe) {
                d.stage_layers->fail("dualpipe places two stages on each device; stage_layers is for 1f1b, interleaved or zb1p schedules");
              }
              if (j.parallelism->pipeline * j.parallelism->virtual_stages < 2) {
                d.stage_layers->fail("needs pipeline x virtual_stages of 2 or more: a first and a last chunk");
              }
              d.stage_ends = std::make_pair(first, last_n);
            }
          }
        }
        if (m.has("fusion")) {
          j.fusion = detail::read_choice(m.at("fusion"), kFusions);
          j.fusion_given = true;
          d.fusion_at = m.at("fusion");
        }
        if (m.has("eager")) {
          // true, false, neox (GPT-NeoX's layer code) or largescale (GLM-130B's; since session 51).
          const Value& v = m.at("eager");
          j.neox = v.node.IsScalar() && v.node.Scalar() == "neox";
          j.largescale = v.node.IsScalar() && v.node.Scalar() == "largescale";
          if (!j.neox && !j.largescale &&
              !(v.node.IsScalar() && (v.node.Scalar() == "true" || v.node.Scalar() == "yes" || v.node.Scalar() == "false" ||
                                      v.node.Scalar() == "no"))) {
            v.expected("true, false, neox or largescale");
          }
          j.eager = j.neox || (!j.largescale && detail::read_bool(v));
          d.eager_at = v;
        }
        if (m.has("cross_entropy")) {
          j.cross_entropy = detail::read_choice(m.at("cross_entropy"), {"fused", "megatron", "pytorch"});
          d.cross_entropy_at = m.at("cross_entropy");
        }
        if (m.has("expert_dispatch")) {
          j.expert_dispatch = detail::read_choice(m.at("expert_dispatch"), {"compute", "fp8"});
          d.expert_dispatch_at = m.at("expert_dispatch");
        }
        if (m.has("overheads")) j.overheads = read_overheads(m.at("overheads"));
        if (m.has("start")) {
          std::string text_date;
          j.start_unix_s = detail::read_date(m.at("start"), text_date);
        }
        if (m.has("repeat")) {
          // Retraining cadence: {every: "3 months", times: 20} (times counts the first run too).
          const MapView r(m.at("repeat"), {"every", "times"});
          r.require("every");
          r.require("times");
          j.repeat_every_s = detail::read_positive(r.at("every"), Kind::time);
          j.repeat_count = detail::read_positive_int(r.at("times"));
          // Each run is an event of the lifecycle: a run an hour for 10 years is 87,600.
          if (j.repeat_count > 100000) r.at("times").expected("at most 100,000 runs");
        }
        if (m.has("hardware")) j.hardware = b.hardware_ref(m.at("hardware"));
        if (m.has("accelerators")) j.accelerators = detail::read_positive_int(m.at("accelerators"));
        if (m.has("duration") && m.has("accelerator_hours")) {
          m.at("accelerator_hours").fail("give either duration or accelerator_hours, not both");
        }
        if (m.has("duration")) {
          d.duration_s = detail::read_positive(m.at("duration"), Kind::time);
          d.accelerator_time_s.reset();
        }
        if (m.has("accelerator_hours")) {
          d.accelerator_time_s = detail::read_positive(m.at("accelerator_hours"), Kind::time);
          d.duration_s.reset();
        }
        if (m.has("power")) {
          apply_power(m.at("power"), j.power);
          d.power_given = true;
          d.power_at = m.at("power");
        }
        if (m.has("datacenter")) j.datacenter = b.datacenter_ref(m.at("datacenter"));
        if (m.has("tokens")) {
          j.tokens = detail::read_positive(m.at("tokens"), Kind::count);
          // Tokens, or an image model's samples (since session 35; "1e9 params" was taken as tokens).
          detail::check_count_noun(m.at("tokens"), Kind::count, {"token", "sample", "image"});
          // At least one (since session 45, a review: "0.5 tokens" had been a run of 2.4e-7 steps); a
          // fraction above one stays, as a sweep's continuous range over tokens gives it.
          if (*j.tokens < 1) m.at("tokens").expected("tokens (or samples) >= 1");
          d.tokens_at = m.at("tokens");
        }
        if (m.has("flops")) j.flops = detail::read_positive(m.at("flops"), Kind::work);
        if (m.has("published")) {
          PublishedFigures f;
          apply_published(m.at("published"), f);
          j.published = f;
          d.published_at = m.at("published");
        }
        if (m.has("stage_of")) {
          j.stage_of = detail::read_id(m.at("stage_of"));
          d.stage_of = m.at("stage_of");
        }
        if (m.has("notes")) detail::read_text(m.at("notes"));
        j.origin = m.self().location();
      },
      [](JobDraft& d, const Value& last) {
        TrainingJob& j = d.job;
        // Checked here, once every file the entry extends is read.
        if (j.published && j.published->accelerator_time_s && (d.duration_s || d.accelerator_time_s)) {
          d.published_at->fail("published accelerator_hours are the reference of a first-principles job: drop "
                               "the job's duration (or accelerator_hours) and power, or publish its energy or CO2e in "
                               "place of published.accelerator_hours (compared over the job's duration)");
        }
        // Samples or images are tokens only where a sample is one token (an image model): a
        // decoder's "1e9 samples" had been costed as 1e9 tokens, seq_len times too few (since
        // session 36, from a review).
        if (d.tokens_at && d.tokens_at->node.IsScalar()) {
          const std::string noun = detail::read_quantity(*d.tokens_at, Kind::count).noun;
          std::int64_t per = 1;
          if (const auto* t = std::get_if<TransformerDesign>(&j.design)) per = t->tokens_per_sample();
          if (const auto* l = std::get_if<LstmDesign>(&j.design)) per = l->seq_len;
          if (const auto* f = std::get_if<FileGraphDesign>(&j.design)) per = f->tokens_per_sample;
          if ((noun == "sample" || noun == "image") && per > 1) {
            d.tokens_at->fail("counts " + noun + "s, and a sample of job " + text::quoted(j.id) + "'s model " +
                              text::quoted(j.model_id) + " is " + std::to_string(per) + " tokens: give the tokens (" +
                              std::to_string(per) + " a sample)");
          }
        }
        // A loss's kernels need a loss over logits: the transformer and LSTM builders cost one; a
        // ResNet's, an MLP's or a graph file's graph has none (since session 48, a review: the key
        // had no effect, unsaid).
        const auto* lstm = std::get_if<LstmDesign>(&j.design);
        if (d.cross_entropy_at && j.cross_entropy != "fused" &&
            (std::holds_alternative<ResNetDesign>(j.design) || std::holds_alternative<MlpDesign>(j.design) ||
             std::holds_alternative<FileGraphDesign>(j.design) || (lstm != nullptr && lstm->vocab == 0))) {
          d.cross_entropy_at->fail("the loss's kernels apply to a loss over logits, and job " + text::quoted(j.id) + "'s model " +
                                   text::quoted(j.model_id) + " builds none (" +
                                   (std::holds_alternative<ResNetDesign>(j.design) ? "a ResNet"
                                    : std::holds_alternative<MlpDesign>(j.design)  ? "an MLP"
                                    : lstm != nullptr                               ? "an LSTM without a vocabulary"
                                                                                   : "a graph file") +
                                   "): drop cross_entropy");
        }
        // The dispatch's precision applies to a mixture of experts' all-to-all, and 8 bits to an 8-bit
        // job (since session 49).
        if (d.expert_dispatch_at) {
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          // (`compute`, the default, applies to any model: a job copied with `from:` may change it.)
          if (j.expert_dispatch == "fp8" && (t == nullptr || t->experts == 0)) {
            d.expert_dispatch_at->fail("fp8 dispatches a mixture of experts' tokens in 8 bits, and job " + text::quoted(j.id) +
                                       "'s model " + text::quoted(j.model_id) + " has no experts: drop expert_dispatch");
          }
          if (j.expert_dispatch == "fp8" && j.precision != "fp8") {
            d.expert_dispatch_at->fail("fp8 dispatches the tokens an 8-bit job quantizes for its experts' products, and job " +
                                       text::quoted(j.id) + " computes in " + j.precision + ": drop expert_dispatch, or give precision: fp8");
          }
        }
        // The shared experts' products are what the all-to-all runs under; DualPipe hides it behind
        // the paired chunk instead (since session 50).
        if (d.shared_expert_overlap_at && j.parallelism) {
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          if (t == nullptr || t->experts == 0 || t->shared_experts == 0) {
            d.shared_expert_overlap_at->fail("hides a mixture of experts' all-to-all behind its shared experts, and job " + text::quoted(j.id) +
                                      "'s model " + text::quoted(j.model_id) + " has " +
                                      (t == nullptr || t->experts == 0 ? "no experts" : "no shared experts") +
                                      ": drop shared_expert_overlap");
          }
          if (j.parallelism->dualpipe) {
            d.shared_expert_overlap_at->fail("job " + text::quoted(j.id) +
                                             " runs dualpipe, which already runs the all-to-all under the paired chunk's compute: "
                                             "drop shared_expert_overlap");
          }
          // (The experts' group as the cost model takes it: `expert`, or min(data, experts).)
          const Parallelism& pl = *j.parallelism;
          const std::int64_t ranks = std::max<std::int64_t>(1, pl.tensor * pl.pipeline * std::max<std::int64_t>(1, pl.context));
          const std::int64_t data = pl.data > 0 ? pl.data : std::max<std::int64_t>(1, j.accelerators / ranks);
          if ((pl.expert > 0 ? pl.expert : std::min(data, t->experts)) == 1) {
            d.shared_expert_overlap_at->fail("hides the experts' all-to-all, and job " + text::quoted(j.id) +
                                      " holds every expert on each rank (an expert-parallel group of 1): there is none; drop "
                                      "shared_expert_overlap");
          }
        }
        // A TPU runs TensorFlow (and PyTorch/XLA) through XLA, which fuses what these keys itemise:
        // TensorFlow 1.x's GPU kernels, a GPU code's loss passes, eager PyTorch's chains (since
        // session 48, a review: accepted and costed). Eager PyTorch is not TensorFlow 1.x.
        const bool tpu = j.hardware.kind == "tpu";
        if (d.fusion_at) check_fusion_on(*d.fusion_at, j.fusion, j.hardware);
        if (d.cross_entropy_at && j.cross_entropy != "fused" && tpu) {
          d.cross_entropy_at->fail(j.cross_entropy + " names a GPU code's loss kernels, and " + j.hardware.id +
                                   " is a TPU, whose loss XLA compiles: drop cross_entropy");
        }
        if (j.neox || j.largescale) {
          // GPT-NeoX's and LargeScale's layer code is a dense decoder's (since session 51).
          const std::string code = j.neox ? "neox names GPT-NeoX's" : "largescale names GLM-130B's LargeScale's";
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          if (t == nullptr || t->arch != TransformerDesign::Arch::decoder || t->patch > 0 || t->experts > 0 ||
              t->kv_lora_rank > 0 || t->evolved) {
            d.eager_at->fail(code + " dense decoder layer, and job " + text::quoted(j.id) + "'s model " +
                             (t == nullptr ? std::string("has no transformer design")
                              : t->arch != TransformerDesign::Arch::decoder || t->patch > 0 ? std::string("is not a decoder")
                              : t->experts > 0 ? std::string("has experts")
                              : t->kv_lora_rank > 0 ? std::string("has latent attention")
                                                    : std::string("is an evolved transformer")) +
                             ": give eager true or false");
          }
          if (j.hardware.kind == "tpu") {
            d.eager_at->fail(code + " CUDA kernels and DeepSpeed's copies, and " + j.hardware.id +
                             " is a TPU, whose XLA compiles its own: give eager true or false");
          }
          // Their attention: GPT-NeoX's FlashAttention or fused softmax; LargeScale's fused softmax
          // (Megatron's, no flash path). LargeScale's Megatron-DeepSpeed of 2022 has no sequence
          // parallelism, and its layer is sequential, post-LN LayerNorm.
          const bool flash = j.fusion == "attention" || j.fusion == "flash1" || j.fusion == "flash2" || j.fusion == "flash3";
          const bool attention_ok = j.neox ? (j.fusion == "softmax" || flash) : j.fusion == "softmax";
          if (!attention_ok) {
            const std::string want = j.neox ? "GPT-NeoX's attention is FlashAttention or its fused softmax: give fusion flash1, flash2, attention or softmax"
                                            : "LargeScale's attention is Megatron's fused softmax: give fusion softmax";
            if (d.fusion_at) {
              d.fusion_at->fail("is " + j.fusion + ", and " + want);
            } else {
              d.eager_at->fail(std::string(j.neox ? "is neox" : "is largescale") + " with the default fusion, elementwise, and " + want);
            }
          }
          if (j.largescale && t != nullptr && (t->rms_norm || t->parallel_block)) {
            d.eager_at->fail(std::string("largescale names GLM-130B's LargeScale's sequential LayerNorm layer, and job ") + text::quoted(j.id) +
                             "'s model " + (t->rms_norm ? "uses RMSNorm" : "has a parallel block") + ": give eager true or false");
          }
          if (j.largescale && j.parallelism && j.parallelism->sequence_parallel) {
            d.eager_at->fail("largescale names GLM-130B's LargeScale, whose Megatron-DeepSpeed of 2022 has no sequence parallelism, and job " +
                             text::quoted(j.id) + " says sequence_parallel: give eager true or false");
          }
        }
        if (d.partition_activations_at && j.parallelism && (!(j.neox || j.largescale) || !j.parallelism->recompute)) {
          d.partition_activations_at->fail(std::string("is DeepSpeed's partitioned activation checkpointing as GPT-NeoX and LargeScale run it, and job ") +
                                           text::quoted(j.id) +
                                           (!(j.neox || j.largescale) ? " does not say eager: neox (or largescale)" : " does not recompute every layer (recompute: true)") +
                                           ": drop partition_activations");
        }
        if (j.eager && j.fusion == "tensorflow1") {
          (d.eager_at ? *d.eager_at : d.fusion_at ? *d.fusion_at : last)
              .fail("eager (PyTorch's chains of kernels) and fusion: tensorflow1 (TensorFlow 1.x's graph) are two frameworks: "
                    "give one");
        }
        // A published market-based figure is compared with the data centre's market intensity
        // (since session 34: `run` accepted it and `validate` refused it at the job's line).
        if (j.published && j.published->co2e_market_kg && !j.datacenter.market_intensity_kg_per_j && d.published_at) {
          d.published_at->fail("co2e_market is compared with the data centre's market-based figure, and " + j.datacenter.id +
                               " has no market_intensity: give it one, or drop co2e_market");
        }
        if (d.stage_ends && j.parallelism) {
          // {first, last}: the chunks between them share the rest evenly, the earlier ones one layer
          // more where it does not divide (DeepSpeed's partition_uniform).
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          if (!t) d.stage_layers->fail("partitions a transformer's layers; the model has no transformer design");
          const std::int64_t layers = t->encoder_layers + t->decoder_layers + t->mtp_depth;
          const std::int64_t chunks = j.parallelism->pipeline * j.parallelism->virtual_stages;
          const std::int64_t rest = layers - d.stage_ends->first - d.stage_ends->second;
          if (rest < 0 || (chunks == 2 && rest != 0)) {
            d.stage_layers->fail("first (" + std::to_string(d.stage_ends->first) + ") and last (" +
                                 std::to_string(d.stage_ends->second) + ") leave " + std::to_string(rest) +
                                 " layers for the " + std::to_string(chunks - 2) + " chunks between them; the model has " +
                                 std::to_string(layers));
          }
          std::vector<std::int64_t> split(static_cast<std::size_t>(chunks), 0);
          split.front() = d.stage_ends->first;
          split.back() = d.stage_ends->second;
          for (std::int64_t c = 1; c + 1 < chunks; ++c) {
            split[static_cast<std::size_t>(c)] = rest / (chunks - 2) + (c - 1 < rest % (chunks - 2) ? 1 : 0);
          }
          j.parallelism->stage_layers = split;
        }
        // A layout is checked wherever it is given: a job with a published duration is costed from it
        // too (`dlcarbon validate --mode first-principles`).
        if (j.parallelism) check_layout(j, last, d.stage_layers);
        if (!d.duration_s && !d.accelerator_time_s) {
          // First-principles mode: the duration is predicted from the design.
          const bool ready = j.tokens && j.parallelism && !std::holds_alternative<std::monostate>(j.design);
          if (!ready) {
            last.fail("missing required key \"duration\" (or \"accelerator_hours\"; or, to predict it, "
                      "tokens, parallelism and a model with a design)");
          }
          // A footprint needs the duration it was measured over; a step figure does not.
          // 8-bit training needs 8-bit matrix units; costing it at another rate with its casts would be
          // slower than the 16-bit run it stands for (since session 31; before, a silent fallback).
          if ((j.precision == "fp8" || j.precision == "int8") && !j.hardware.peak_flop_per_s.count(j.precision)) {
            last.fail("precision " + j.precision + ": " + j.hardware.id + " lists no " + j.precision +
                      " peak, so it cannot train in " + j.precision + "; choose bf16 or fp16, or hardware with an " +
                      j.precision + " peak");
          }
          if (const std::string why = without_rate(j.hardware, j.precision); !why.empty()) {
            last.fail("precision " + j.precision + ": " + why);
          }
          // Its power comes from the step model: a given one would be ignored (since session 36, from
          // a review; `validate --mode first-principles` drops a published job's duration and power
          // after reading it, so the published scenarios keep both).
          if (d.power_at) {
            d.power_at->fail("a first-principles job (no duration) predicts its power from its steps; drop power, or give "
                             "the duration (or accelerator_hours) the power was measured over");
          }
          // A published footprint without a duration (session 31; before, bad input): `validate
          // --mode first-principles` compares its energy with the prediction; the accounting mode,
          // which re-runs a published duration, leaves it out.
          j.duration_given = false;
          j.duration_s = 0;
          return;
        }
        if (!d.power_given) last.fail("missing required key \"power\"");
        j.duration_s = d.duration_s ? *d.duration_s : *d.accelerator_time_s / static_cast<double>(j.accelerators);
      }};
  return kind;
}

const EntityKind<InferenceDraft>& inference_kind_table() {
  static const EntityKind<InferenceDraft> kind{
      "inference", "inference job",
      {"id", "from", "name", "model", "hardware", "datacenter", "batch", "precision", "layout", "input_layout",
       "fusion", "inferences", "notes"},
      {"model", "hardware", "datacenter", "inferences"},
      [](Builder& b, const MapView& m, InferenceDraft& d) {
        InferenceJob& j = d.job;
        if (m.has("id")) j.id = detail::read_id(m.at("id"));
        if (m.has("name")) detail::read_text(m.at("name"));
        if (m.has("model")) take_costed_model(b, m, j, d);
        if (m.has("hardware")) j.hardware = b.hardware_ref(m.at("hardware"));
        if (m.has("datacenter")) j.datacenter = b.datacenter_ref(m.at("datacenter"));
        if (m.has("batch")) j.batch = detail::read_positive_int(m.at("batch"));
        if (m.has("precision")) {
          j.precision = detail::read_choice(m.at("precision"), kPrecisions);
        }
        if (m.has("layout")) {
          j.layout = detail::read_choice(m.at("layout"), {"nchw", "nhwc"});
          d.layout_given = true;
          d.layout_at = m.at("layout");
        }
        if (m.has("input_layout")) {
          j.input_layout = detail::read_choice(m.at("input_layout"), {"nchw", "nhwc"});
          d.input_layout_at = m.at("input_layout");
        }
        if (m.has("fusion")) {
          j.fusion = detail::read_choice(m.at("fusion"), kFusions);
          d.fusion_at = m.at("fusion");
        }
        if (m.has("inferences")) {
          j.inferences = detail::read_positive(m.at("inferences"), Kind::count);
          detail::check_count_noun(m.at("inferences"), Kind::count, {"request", "image", "sample"});
          // Whole inferences (since session 38, a review: "0.001" and "1.5" were costed).
          if (std::floor(j.inferences) != j.inferences) m.at("inferences").expected("a whole number of inferences >= 1");
        }
        if (m.has("notes")) detail::read_text(m.at("notes"));
        j.origin = m.self().location();
      },
      [](InferenceDraft& d, const Value& last) {
        if (const std::string why = without_rate(d.job.hardware, d.job.precision); !why.empty()) {
          last.fail("precision " + d.job.precision + ": " + why);
        }
        if (d.fusion_at) check_fusion_on(*d.fusion_at, d.job.fusion, d.job.hardware);
        // A layout is an image batch's: tokens and feature vectors have none to reorder (since
        // session 33; before, a decoder's token ids were "reordered", ~0.6 % of its energy).
        const InferenceJob& j = d.job;
        if (d.layout_at) check_layout_key(*d.layout_at, j.design, j.model_id);
        if (!d.input_layout_at || std::holds_alternative<std::monostate>(j.design)) return;
        const auto* f = std::get_if<FileGraphDesign>(&j.design);
        const auto* vit = std::get_if<TransformerDesign>(&j.design);
        const bool images = std::holds_alternative<ResNetDesign>(j.design) || (vit && vit->image > 0) ||
                            (f && std::any_of(f->ops.begin(), f->ops.end(), [](const FileOp& o) { return o.kind == "conv2d"; }));
        if (!images) {
          d.input_layout_at->fail("input_layout is the layout of an image batch (a ResNet, a ViT, or a graph file with convolutions); model " +
                                  text::quoted(j.model_id) + " has no images to reorder");
        }
      }};
  return kind;
}

}  // namespace dlcarbon::load_detail
