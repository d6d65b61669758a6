// Scenario -> lifecycle plan: sites, the serving cost of each deployment on each hardware of its
// mix (from the cost room), and training runs with their retraining (docs/lifecycle.md).

#include <algorithm>
#include <map>
#include <cmath>
#include <stdexcept>

#include "dlcarbon/error.hpp"
#include "dlcarbon/text.hpp"

#include "dlcarbon/accounting.hpp"
#include "dlcarbon/collectives.hpp"
#include "dlcarbon/graph.hpp"
#include "dlcarbon/inference_cost.hpp"
#include "dlcarbon/lifecycle_plan.hpp"
#include "dlcarbon/roofline.hpp"

namespace dlcarbon::lifecycle {
namespace {

constexpr double kDefaultLifetime = 4 * 365 * 86400.0;

bool same_site(const Site& a, const Site& b) {
  const GridRegion &x = a.region, &y = b.region;
  return a.edge == b.edge && a.pue == b.pue && a.market_kg_per_j == b.market_kg_per_j && x.id == y.id &&
         x.intensity_kg_per_j == y.intensity_kg_per_j && x.year == y.year && x.annual_change == y.annual_change &&
         x.trace == y.trace;
}

// The site a job or cohort draws from. Sites are one per distinct content: a job or deployment that
// overrides its data centre inline (its PUE, region or market intensity) under a catalog id keeps
// its own figures, as a site of its own (named by name_sites).
std::size_t site_of(std::vector<Site>& sites, Site s) {
  for (std::size_t i = 0; i < sites.size(); ++i) {
    if (sites[i].id == s.id && same_site(sites[i], s)) {
      sites[i].inline_override = sites[i].inline_override && s.inline_override;
      return i;
    }
  }
  sites.push_back(std::move(s));
  return sites.size() - 1;
}

// Sites that share an id are named "<id>", "<id>#2", "<id>#3", ...: the data centre as defined
// keeps its id and the inline overrides take the numbers, in the order they are met (since session
// 35, from a review; before, the first met kept the id, an override where a deployment came first).
void name_sites(std::vector<Site>& sites) {
  std::map<std::string, std::vector<std::size_t>> by_id;
  for (std::size_t i = 0; i < sites.size(); ++i) by_id[sites[i].id].push_back(i);
  for (auto& [id, members] : by_id) {
    if (members.size() < 2) continue;
    std::stable_partition(members.begin(), members.end(), [&](std::size_t i) { return !sites[i].inline_override; });
    for (std::size_t k = 1; k < members.size(); ++k) sites[members[k]].id = id + "#" + std::to_string(k + 1);
  }
}

Site cloud_site(const Datacenter& dc) {
  return Site{dc.id, false, dc.region, dc.pue, dc.market_intensity_kg_per_j, dc.inline_override};
}

}  // namespace

ServiceCost serving_cost(const Deployment& d, const Hardware& hw) {
  ServiceCost k;
  k.hardware_id = hw.id;
  // The GEMM ceiling measured at the deployment's precision, as the inference cost's (since session
  // 38, a review: the decode's attention over the cache took the headline one).
  const hardware::DeviceModel dev = hardware::make_device_model(hw).at_precision(d.precision);
  InferenceJob job;
  job.id = d.id;
  job.model_id = d.model_id;
  job.design = d.design;
  job.hardware = hw;
  job.batch = d.batch;
  job.precision = d.precision;
  job.layout = d.layout;
  job.fusion = d.fusion;
  job.inferences = 1;
  double batch_s = 0, batch_j = 0;
  double weights = 0, activations = 0, cache = 0;  // bytes a replica holds (memory check, below)
  // A cloud replica of `per` accelerators runs tensor-parallel (Megatron-style, as vLLM and
  // TensorRT-LLM shard a model): each rank does 1 / per of a batch's FLOPs and bytes, but launches
  // every kernel, and the ranks all-reduce each row-parallel product's output (a layer's attention
  // output and feed-forward down projection) over the node's links, NCCL's cost as in training
  // (sim/cost/collectives.cpp). Every rank draws its static power for the replica's time; the
  // FLOPs' and bytes' energy is the batch's. (Since session 45, a review: a replica of k served k
  // times one device's throughput at k times its power, its launches and the cache it replicates
  // divided by k, no collectives; a 70B model on 8 H100s at batch 1: 6.7 ms a decode step where
  // its launches alone are 5.2 ms.)
  const double per = d.kind == Deployment::Kind::cloud ? static_cast<double>(d.accelerators_per_replica) : 1.0;
  comm::Group ranks;
  {
    const auto k = static_cast<std::int64_t>(per);
    const std::int64_t node = std::max<std::int64_t>(1, hw.node_accelerators);
    const hardware::NodeLinks links = hardware::node_links(hw);
    const double intra = links.intra, inter = links.inter;
    ranks.ranks = k;
    ranks.nccl = hw.kind == "gpu";
    ranks.nodes = (k + node - 1) / node;
    ranks.fullest = std::min(k, node);
    ranks.emptiest = std::clamp<std::int64_t>(k - (ranks.nodes - 1) * node, 1, node);
    ranks.bandwidth = ranks.nodes > 1 ? std::min(intra, static_cast<double>(ranks.emptiest) * inter) : intra;
  }
  struct OnReplica {
    double seconds = 0, joules = 0;
  };
  // A model that is not a transformer has no tensor-parallel layout here: its replica is `per`
  // devices each serving its own batches (a batch every t / per), as every replica was before.
  const bool tensor_parallel = std::holds_alternative<TransformerDesign>(d.design);
  const auto on_replica = [&](const InferenceResult& r) {
    if (per <= 1) return OnReplica{r.batch_time_s, r.device_energy_per_batch_j};
    if (!tensor_parallel) return OnReplica{r.batch_time_s / per, r.device_energy_per_batch_j};
    const double launches = r.launches * dev.launch_s;
    // The full-width ops (norms, residual adds) run whole on every rank, as in training
    // (Op::tensor_split; since session 45, a review: 14 % of a 70B prefill's bytes).
    const double split = std::max(0.0, r.batch_time_s - launches - r.unsplit_s);
    const double comm =
        r.tensor_allreduces > 0 ? comm::collectives_s(comm::Collective::all_reduce, r.tensor_allreduce_bytes, r.tensor_allreduces, ranks) : 0.0;
    const double t = split / per + r.unsplit_s + launches + comm;
    return OnReplica{t, r.device_energy_per_batch_j + (per - 1) * r.unsplit_dynamic_j + dev.static_w * (per * t - r.batch_time_s)};
  };
  // LLM serving holds at most one of: the prefill's largest op beside the prompt's cache, or the
  // decode step's beside the cache at the requests' full length (since session 34; before, the
  // prefill's activations and the full cache together, which never coexist).
  double decode_activations = 0, prompt_cache = 0;
  bool windowed = false;  // a layer's sliding window holds fewer positions than the requests
  double cache_ways = 1;                              // the most ranks the cache splits over
  const auto* t = std::get_if<TransformerDesign>(&d.design);
  if (t && d.tokens_in > 0) {
    // LLM serving: prefill of tokens_in, then tokens_out decode steps of one token each, every
    // step reading the weights and the KV cache of the sequences in the batch (static batching).
    // A learned position table keeps the model's rows whatever the prompt's length.
    // An encoder-decoder (T5, BART, a translation model; since session 41, a review: it had been
    // costed as one teacher-forced pass, about 100 times too fast for generation) reads the prompt
    // with its encoder, and its decoder generates from one start token: the prefill is the encoder
    // over tokens_in and the decoder's first step, whose cross-attention projects the encoder's
    // output into keys and values once (a second cache, tokens_in a decoder layer).
    const bool enc_dec = t->arch == TransformerDesign::Arch::encoder_decoder;
    TransformerDesign prefill = *t;
    prefill.seq_len = static_cast<std::int64_t>(d.tokens_in);
    prefill.max_positions = std::max(t->max_positions, t->seq_len);
    if (enc_dec) prefill.target_seq_len = 1;
    job.design = prefill;
    // The prefill's head runs on each sequence's last position, the one that yields the first
    // output token (since session 33; before, on every prompt position).
    job.last_position_logits = true;
    const InferenceResult p = cost_inference(job);
    job.last_position_logits = false;
    weights = p.weight_bytes;
    activations = p.activation_bytes;
    TransformerDesign decode = prefill;
    decode.seq_len = 1;
    if (enc_dec) {
      // A decode step runs the decoder alone on one token: costed as the decoder-only model of the
      // same stack (its table and head, the target vocabulary where it has one), and below, its
      // cross-attention sub-block at the token and its reading of the cross cache.
      decode.arch = TransformerDesign::Arch::decoder;
      decode.encoder_layers = 0;
      decode.vocab = t->target_vocab > 0 ? t->target_vocab : t->vocab;
      decode.target_vocab = 0;
      decode.target_seq_len = 0;
    }
    job.design = decode;
    InferenceResult s = cost_inference(job);
    const double p_bytes = hardware::bytes_per_value(d.precision);
    const std::int64_t layers = t->decoder_layers + (enc_dec ? 0 : t->encoder_layers);
    const std::int64_t kv = t->kv_heads > 0 ? t->kv_heads : t->heads;
    const std::int64_t hd = t->head_dim > 0 ? t->head_dim : t->d_model / std::max<std::int64_t>(1, t->heads);
    const std::int64_t heads = t->heads;
    if (enc_dec) {
      // Each decoder layer's cross-attention sub-block at the step's one token, as the model's own
      // graph has it: its norm, query projection, score, softmax and context kernels, output
      // projection and residual add (the encoder-decoder at one target token, its ops named
      // `.cross`), but the key/value projection, whose output the cross cache holds; the scores'
      // and context's work over the cache's tokens_in positions is costed with the cache below.
      // (Since session 45, a review: the query and output projections alone, a T5-base step 25 %
      // short of its norm, residual and attention kernels.)
      InferenceJob cross = job;
      TransformerDesign one = prefill;
      one.seq_len = 1;
      cross.design = one;
      cross.only_ops_named = ".cross";
      cross.except_ops_ending = ".kv";
      const InferenceResult x = cost_inference(cross);
      s.batch_time_s += x.batch_time_s;
      s.device_energy_per_batch_j += x.device_energy_per_batch_j;
      s.launches += x.launches;
      s.unsplit_s += x.unsplit_s;
      s.unsplit_dynamic_j += x.unsplit_dynamic_j;
      s.tensor_allreduces += x.tensor_allreduces;
      s.tensor_allreduce_bytes += x.tensor_allreduce_bytes;
    }
    // The decoder's own positions: an LLM's prompt and output; an encoder-decoder's start token and
    // output (its prompt is the encoder's, in the cross cache).
    const double own_in = enc_dec ? 1.0 : d.tokens_in;
    const double context = own_in + d.tokens_out / 2;  // mean context over the decode
    // Positions summed over the layers: a layer with a sliding window of W holds and reads at most
    // W of them (Mistral's rolling buffer cache; since session 36), the others all. `read`: the
    // mean over the decode's contexts, own_in .. own_in + tokens_out (as `context`).
    const double lo = own_in, hi = own_in + d.tokens_out;
    const double held_tokens = own_in + std::max(0.0, d.tokens_out - 1);
    double read = 0, held = 0, prompt_held = 0;
    for (std::int64_t i = 0; i < layers; ++i) {
      const double w = static_cast<double>(graph::attention_window(*t, i));
      if (w <= 0) {
        read += context;
        held += held_tokens;
        prompt_held += own_in;
        continue;
      }
      // The mean of min(c, W) for contexts c spread evenly over [lo, hi].
      read += w >= hi ? context : (w <= lo || hi <= lo ? std::min(w, lo) : ((w * w - lo * lo) / 2 + (hi - w) * w) / (hi - lo));
      held += std::min(w, held_tokens);
      windowed = windowed || w < held_tokens;
      prompt_held += std::min(w, lo);
    }
    if (enc_dec) {
      // The cross cache: the encoder's tokens_in positions a decoder layer, held from the prefill on
      // and read whole by every decode step, as a self-attention cache of that length is.
      const double cross = static_cast<double>(layers) * d.tokens_in;
      read += cross;
      held += cross;
      prompt_held += cross;
    }
    // In floating point: batch x layers x width can pass 2^63 within the builders' limits.
    const double batch_f = static_cast<double>(d.batch);
    const double batch_read = batch_f * read;
    // Cached bytes a token and layer: a key and a value for every KV head.
    double token_bytes = 2 * static_cast<double>(kv) * static_cast<double>(hd) * p_bytes;
    double kv_flops = batch_read * 4 * static_cast<double>(heads) * static_cast<double>(hd);
    if (t->kv_lora_rank > 0) {
      // Latent attention caches the compressed latent and the shared rotary key, kv_lora_rank +
      // rope_head_dim values a token and layer, and decodes with the up-projections absorbed into
      // the query and output (DeepSeek-V2, arXiv:2405.04434, Sec. 2.1.2): every head scores the
      // latent and the rotary key (2 (c + r) FLOPs a cached token) and sums the latents (2 c).
      const double c_kv = static_cast<double>(t->kv_lora_rank), r = static_cast<double>(t->rope_head_dim);
      token_bytes = (c_kv + r) * p_bytes;
      kv_flops = batch_read * static_cast<double>(heads) * (2 * (c_kv + r) + 2 * c_kv);
    }
    if (t->evolved) {
      // An Evolved Transformer decoder cell attends twice to its own tokens (the 16-head attention
      // beside the cross-attention, then the cell's own): a second cache of keys and values d_model
      // wide, scored by its heads as the first (since session 34; before, one cache a layer).
      const double w = static_cast<double>(t->d_model);
      token_bytes += 2 * w * p_bytes;
      kv_flops += batch_read * 4 * w;
    }
    const double kv_bytes = batch_read * token_bytes;
    // The cache at the last decode step holds every token of every request but the last output
    // token, which is not fed back.
    cache = batch_f * token_bytes * held;
    prompt_cache = batch_f * token_bytes * prompt_held;
    decode_activations = s.activation_bytes;
    // Tensor-parallel ranks split the cache by KV head: with fewer KV heads than ranks each is
    // replicated (grouped-query attention), and a latent cache is on every rank whole.
    cache_ways = t->kv_lora_rank > 0 ? 1.0 : static_cast<double>(std::max<std::int64_t>(1, kv));
    // The cache is streamed as a weight matrix is (a decode attention kernel reading long contiguous
    // blocks), at the streaming rate, not the rate of the frameworks' elementwise kernels; its
    // products (the queries' scores against the cached keys, the weighted sum of the values) are
    // matrix products on the matrix units, as FlashDecoding, FlashInfer and FlashMLA run them, at
    // the job's precision. With several query heads to a cached head (grouped-query, multi-query and
    // latent attention) they are compute-heavy enough for the rate to matter: before session 34 they
    // ran at the fp32 vector rate, which made a DeepSeek-V3 decode step's attention 39 times its
    // memory time on an H200.
    // On a tensor-parallel replica each rank scores its query heads against the cache it holds: the
    // cache splits over at most as many ranks as there are KV heads (cache_ways, below), and each
    // rank reads its share whole, so a replicated cache is read on every rank that holds it.
    const double cache_split = std::min(per, cache_ways);
    const auto kt = hardware::kernel_time(dev, d.precision, kv_flops / per, kv_bytes / cache_split, true);
    const double kj = hardware::kernel_energy(dev, d.precision, kv_flops, kv_bytes * per / cache_split, per * kt.seconds);
    // The prefill's forward pass yields the first output token: tokens_out - 1 decode steps follow
    // (since session 30; before, tokens_out), over contexts tokens_in + 1 .. tokens_in + tokens_out - 1,
    // whose mean is the `context` above.
    const double steps = std::max(0.0, d.tokens_out - 1);
    const OnReplica pr = on_replica(p), st = on_replica(s);
    batch_s = pr.seconds + steps * (st.seconds + kt.seconds);
    k.prefill_s = pr.seconds;
    k.decode_s = batch_s - pr.seconds;
    batch_j = pr.joules + steps * (st.joules + kj);
  } else {
    const InferenceResult r = cost_inference(job);
    const OnReplica on = on_replica(r);
    batch_s = on.seconds;
    batch_j = on.joules;
    weights = r.weight_bytes;
    activations = r.activation_bytes;
  }
  k.batch_s = batch_s;
  // What a device holds: a tensor-parallel rank 1/k of the weights and activations; a device of a
  // replica that is not tensor-parallel serves its own batches with all of them (since session 45,
  // a review: it had been given 1/k too, so a model no device could hold ran on k of them).
  const double shard = tensor_parallel ? per : 1.0;
  const double ways = std::min(per, cache_ways);
  double held_activations = activations, held_cache = cache;
  // Positions cached a request (a decoder layer's): an encoder-decoder's cross cache (tokens_in)
  // beside its own (the start token and the output fed back).
  const bool enc_dec = t && t->arch == TransformerDesign::Arch::encoder_decoder;
  double cache_tokens = enc_dec ? d.tokens_in + std::max(1.0, d.tokens_out) : d.tokens_in + std::max(0.0, d.tokens_out - 1);
  if (cache > 0) {
    // The larger of the prefill's moment (its largest op, the prompt's cache) and the last decode
    // step's (its largest op, the whole cache).
    const double at_prefill = activations / shard + prompt_cache / ways;
    const double at_decode = decode_activations / shard + cache / ways;
    if (at_prefill > at_decode) {
      held_cache = prompt_cache;
      cache_tokens = enc_dec ? d.tokens_in + 1 : d.tokens_in;
    } else {
      held_activations = decode_activations;
    }
  }
  const double cache_per = held_cache / ways;
  k.memory_bytes = (weights + held_activations) / shard + cache_per;
  if (hw.memory_bytes && *hw.memory_bytes > 0 && k.memory_bytes > *hw.memory_bytes) {
    k.fits = false;
    k.memory_text = "does not fit: a batch of " + std::to_string(d.batch) + " needs " + text::byte_size(k.memory_bytes) +
                    " per accelerator (weights " + text::byte_size(weights / shard) + ", activations of the largest op " +
                    text::byte_size(held_activations / shard) +
                    (cache > 0 ? ", KV cache at " + std::to_string(static_cast<long long>(cache_tokens)) + " tokens a request" +
                                     (windowed && t
                                          ? " (at most " + std::to_string(t->sliding_window) + " in a windowed layer)"
                                          : std::string()) +
                                     " " + text::byte_size(cache_per)
                               : std::string()) +
                    (per > 1 ? ", over the replica's " + std::to_string(d.accelerators_per_replica) + " accelerators" : std::string()) +
                    "), " + text::more_than(k.memory_bytes, hw.id, *hw.memory_bytes);
  }
  const double host = d.kind == Deployment::Kind::cloud ? dev.host_w : 0.0;
  // A replica of `per` accelerators: its batch's energy over its batch time (above), and the hosts.
  k.busy_w = batch_j / batch_s + per * host;
  k.idle_w = d.kind == Deployment::Kind::cloud ? per * (dev.idle_w + host) : 0.0;
  k.requests_per_s = static_cast<double>(d.batch) / batch_s;
  k.embodied_kg = per * hw.embodied_kg.value_or(0);
  k.lifetime_s = d.lifetime_s ? *d.lifetime_s : hw.lifetime_s.value_or(kDefaultLifetime);
  return k;
}

ServiceCost serving_cost_or_input_error(const Deployment& d, const Hardware& hw) {
  try {
    return serving_cost(d, hw);
  } catch (const std::invalid_argument& e) {
    // A design the hardware cannot run (a dtype it lacks, a shape that cannot be built).
    throw InputError(format_input_error(d.origin, "deployments." + d.id, "cannot cost on " + hw.id + ": " + e.what()));
  }
}

LifecyclePlan plan_lifecycle(const Scenario& s, const std::vector<TrainingFootprint>& footprints) {
  LifecyclePlan plan;
  plan.start = static_cast<double>(s.info.start_unix_s);
  plan.end = plan.start + s.info.horizon_s;
  plan.resolution = parse_resolution(s.info.resolution);
  for (const auto& d : s.deployments) {
    DeploymentPlan p;
    p.id = d.id;
    p.model = d.model_id;
    p.kind = d.kind;
    p.start = static_cast<double>(d.start_unix_s);
    p.end = static_cast<double>(d.end_unix_s);
    p.step_s = d.step_s;
    p.replicas = d.replicas;
    p.headroom = d.headroom;
    p.demand = d.demand;
    p.devices = d.devices;
    p.diurnal = d.diurnal;
    p.weekly = d.weekly;
    p.charging_efficiency = d.kind == Deployment::Kind::edge ? d.charging_efficiency : 1.0;
    p.useful_fraction = d.useful_fraction;
    for (const auto& m : d.mix) {
      MixPlan mp;
      mp.from = static_cast<double>(m.from_unix_s);
      mp.shares = m.shares;
      for (std::size_t k = 0; k < m.hardware.size(); ++k) {
        mp.costs.push_back(serving_cost_or_input_error(d, m.hardware[k]));
        // Hardware at a share of 0 serves nothing: whether it could hold the model does not matter.
        if (!mp.costs.back().fits && m.shares[k] > 0) p.runs = false;
      }
      p.mix.push_back(std::move(mp));
    }
    const std::size_t di = plan.deployments.size();
    const bool runs = p.runs;
    plan.deployments.push_back(std::move(p));
    // A deployment that cannot run serves nothing and draws nothing: no cohorts, no sites (since
    // session 34; before, it was simulated as if it fitted).
    if (!runs) continue;
    for (const auto& r : d.regions) {
      const GridRegion& users = r.datacenter.region;
      Site site = d.kind == Deployment::Kind::cloud ? cloud_site(r.datacenter)
                                                    : Site{users.id, true, users, 1.0, std::nullopt, users.inline_override};
      plan.cohorts.push_back({di, site_of(plan.sites, site), r.share, r.utc_offset_s});
    }
  }
  for (std::size_t i = 0; i < s.training.size() && i < footprints.size(); ++i) {
    const TrainingJob& job = s.training[i];
    const TrainingFootprint& f = footprints[i];
    if (!(f.duration_s > 0)) continue;
    const std::size_t site = site_of(plan.sites, cloud_site(job.datacenter));
    const double lifetime = job.hardware.lifetime_s.value_or(kDefaultLifetime);
    for (std::int64_t r = 0; r < std::max<std::int64_t>(1, job.repeat_count); ++r) {
      TrainingRun run;
      run.id = job.run_id(r + 1);
      run.model = job.model_id.empty() ? job.id : job.model_id;
      run.hardware_id = job.hardware.id;
      run.site = site;
      run.start = static_cast<double>(job.start_unix_s.value_or(s.info.start_unix_s)) + static_cast<double>(r) * job.repeat_every_s;
      run.duration_s = f.duration_s;
      run.it_w = f.it_energy_j / f.duration_s;
      run.embodied_kg_per_s = static_cast<double>(job.accelerators) * job.hardware.embodied_kg.value_or(0) / lifetime;
      plan.training.push_back(std::move(run));
    }
  }
  name_sites(plan.sites);
  return plan;
}

}  // namespace dlcarbon::lifecycle
