#include "resolved.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <cstdio>

namespace dlcarbon::detail {
namespace {

void emit_region(YAML::Emitter& out, const GridRegion& r) {
  out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << r.id << YAML::Key << "name" << YAML::Value
      << r.name << YAML::Key << "intensity_kg_per_j" << YAML::Value << r.intensity_kg_per_j << YAML::Key
      << "year" << YAML::Value << r.year << YAML::Key << "annual_change" << YAML::Value << r.annual_change;
  if (r.trace) {
    // The trace by name, basis and size, and an FNV-1a digest of its rows (its values are data, not
    // settings; the digest tells an edited file from the one a sweep's points ran with).
    std::uint64_t h = 1469598103934665603ULL;
    const auto fold = [&](const void* p, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) {
        h ^= static_cast<const unsigned char*>(p)[i];
        h *= 1099511628211ULL;
      }
    };
    fold(r.trace->time_unix_s.data(), r.trace->time_unix_s.size() * sizeof(std::int64_t));
    fold(r.trace->kg_per_j.data(), r.trace->kg_per_j.size() * sizeof(double));
    char digest[20];
    std::snprintf(digest, sizeof digest, "%016llx", static_cast<unsigned long long>(h));
    out << YAML::Key << "trace" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "file" << YAML::Value
        << r.trace->file << YAML::Key << "basis" << YAML::Value << r.trace->basis << YAML::Key << "rows" << YAML::Value
        << r.trace->time_unix_s.size() << YAML::Key << "period_s" << YAML::Value << r.trace->period_s << YAML::Key
        << "digest" << YAML::Value << digest << YAML::EndMap;
  }
  out << YAML::Key << "source" << YAML::Value << r.source << YAML::EndMap;
}

void emit_hardware(YAML::Emitter& out, const Hardware& h) {
  out << YAML::BeginMap;
  out << YAML::Key << "id" << YAML::Value << h.id << YAML::Key << "name" << YAML::Value << h.name;
  out << YAML::Key << "kind" << YAML::Value << h.kind << YAML::Key << "count_unit" << YAML::Value << h.count_unit;
  out << YAML::Key << "peak_flop_per_s" << YAML::Value << YAML::BeginMap;
  for (const auto& [dtype, rate] : h.peak_flop_per_s) out << YAML::Key << dtype << YAML::Value << rate;
  out << YAML::EndMap;
  if (h.vector_peak_flop_per_s) out << YAML::Key << "vector_peak_flop_per_s" << YAML::Value << *h.vector_peak_flop_per_s;
  if (h.memory_bytes) out << YAML::Key << "memory_bytes" << YAML::Value << *h.memory_bytes;
  if (h.memory_bandwidth_bytes_per_s) {
    out << YAML::Key << "memory_bandwidth_bytes_per_s" << YAML::Value << *h.memory_bandwidth_bytes_per_s;
  }
  out << YAML::Key << "tdp_w" << YAML::Value << h.tdp_w;
  if (h.idle_power_w) out << YAML::Key << "idle_power_w" << YAML::Value << *h.idle_power_w;
  if (h.max_power_w) out << YAML::Key << "max_power_w" << YAML::Value << *h.max_power_w;
  if (h.energy_roofline) {
    out << YAML::Key << "energy_roofline" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "e_flop_j"
        << YAML::Value << h.energy_roofline->e_flop_j << YAML::Key << "e_byte_j" << YAML::Value << h.energy_roofline->e_byte_j
        << YAML::Key << "static_w" << YAML::Value << h.energy_roofline->static_w << YAML::EndMap;
  }
  out << YAML::Key << "host_overhead_w" << YAML::Value << h.host_overhead_w;
  if (h.embodied_kg) out << YAML::Key << "embodied_kg" << YAML::Value << *h.embodied_kg;
  // What the step model reads besides the peaks: the measured ceilings, the GEMM shape terms, the
  // units operands are tiled and padded to, and the node.
  out << YAML::Key << "efficiency" << YAML::Value << YAML::BeginMap;
  if (h.gemm_efficiency) out << YAML::Key << "gemm" << YAML::Value << *h.gemm_efficiency;
  if (h.memory_efficiency) out << YAML::Key << "memory" << YAML::Value << *h.memory_efficiency;
  if (h.elementwise_efficiency) out << YAML::Key << "elementwise" << YAML::Value << *h.elementwise_efficiency;
  if (h.kernel_launch_s) out << YAML::Key << "launch_s" << YAML::Value << *h.kernel_launch_s;
  out << YAML::Key << "gemm_shape" << YAML::Value << YAML::Flow << YAML::BeginSeq << h.gemm_shape[0] << h.gemm_shape[1]
      << h.gemm_shape[2] << YAML::EndSeq;
  for (const auto& [layout, e] : h.conv_efficiency) out << YAML::Key << ("conv_" + layout) << YAML::Value << e;
  for (const auto& [generation, e] : h.attention_efficiency) out << YAML::Key << ("attention_" + generation) << YAML::Value << e;
  for (const auto& [dtype, g] : h.gemm_by_precision) {
    out << YAML::Key << ("gemm_" + dtype) << YAML::Value << YAML::Flow << YAML::BeginSeq << g.efficiency << g.shape[0]
        << g.shape[1] << g.shape[2] << YAML::EndSeq;
  }
  out << YAML::EndMap;
  out << YAML::Key << "compute_units" << YAML::Value << h.compute_units << YAML::Key << "matrix_unit" << YAML::Value
      << h.matrix_unit << YAML::Key << "separate_cores" << YAML::Value << h.separate_cores;
  out << YAML::Key << "node" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "accelerators" << YAML::Value
      << h.node_accelerators;
  if (h.intra_node_bandwidth) out << YAML::Key << "intra_bytes_per_s" << YAML::Value << *h.intra_node_bandwidth;
  if (h.inter_node_bandwidth) out << YAML::Key << "inter_bytes_per_s" << YAML::Value << *h.inter_node_bandwidth;
  out << YAML::Key << "topology" << YAML::Value << h.node_topology << YAML::EndMap;
  out << YAML::Key << "source" << YAML::Value << h.source;
  out << YAML::EndMap;
}

const char* basis_name(PowerBasis b) {
  switch (b) {
    case PowerBasis::per_accelerator: return "per_accelerator_w";
    case PowerBasis::system: return "system_w";
    case PowerBasis::utilisation: return "utilisation";
  }
  return "";
}

}  // namespace

std::string emit_resolved(const Scenario& s) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << YAML::BeginMap;
  out << YAML::Key << "schema_version" << YAML::Value << kSchemaVersion;
  out << YAML::Key << "scenario" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << s.info.name << YAML::Key << "start" << YAML::Value
      << s.info.start << YAML::Key << "horizon_s" << YAML::Value << s.info.horizon_s << YAML::Key << "seed"
      << YAML::Value << s.info.seed << YAML::Key << "resolution" << YAML::Value << s.info.resolution << YAML::EndMap;
  out << YAML::Key << "models" << YAML::Value << YAML::BeginSeq;
  for (const auto& m : s.models) {
    out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << m.id;
    if (m.params) out << YAML::Key << "params" << YAML::Value << *m.params;
    if (!m.design_yaml.empty()) out << YAML::Key << "design" << YAML::Value << YAML::Load(m.design_yaml);
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "training" << YAML::Value << YAML::BeginSeq;
  for (const auto& j : s.training) {
    out << YAML::BeginMap;
    out << YAML::Key << "id" << YAML::Value << j.id;
    if (!j.model_id.empty()) out << YAML::Key << "model" << YAML::Value << j.model_id;
    out << YAML::Key << "hardware" << YAML::Value;
    emit_hardware(out, j.hardware);
    out << YAML::Key << "accelerators" << YAML::Value << j.accelerators;
    out << YAML::Key << "duration_s" << YAML::Value << j.duration_s;
    out << YAML::Key << "power" << YAML::Value << YAML::BeginMap << YAML::Key << basis_name(j.power.basis)
        << YAML::Value << j.power.value << YAML::EndMap;
    out << YAML::Key << "datacenter" << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "id" << YAML::Value << j.datacenter.id << YAML::Key << "pue" << YAML::Value
        << j.datacenter.pue;
    if (j.datacenter.market_intensity_kg_per_j) {
      out << YAML::Key << "market_intensity_kg_per_j" << YAML::Value << *j.datacenter.market_intensity_kg_per_j;
    }
    out << YAML::Key << "source" << YAML::Value << j.datacenter.source;
    out << YAML::Key << "region" << YAML::Value;
    emit_region(out, j.datacenter.region);
    out << YAML::EndMap;
    if (j.tokens) out << YAML::Key << "tokens" << YAML::Value << *j.tokens;
    if (j.flops) out << YAML::Key << "flops" << YAML::Value << *j.flops;
    out << YAML::Key << "mode" << YAML::Value << (j.duration_given ? "accounting" : "first-principles");
    if (j.start_unix_s) out << YAML::Key << "start_unix_s" << YAML::Value << *j.start_unix_s;
    if (!j.stage_of.empty()) out << YAML::Key << "stage_of" << YAML::Value << j.stage_of;
    if (j.repeat_count > 1) {
      out << YAML::Key << "repeat" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "times" << YAML::Value
          << j.repeat_count << YAML::Key << "every_s" << YAML::Value << j.repeat_every_s << YAML::EndMap;
    }
    if (j.parallelism) {
      const Parallelism& p = *j.parallelism;
      out << YAML::Key << "precision" << YAML::Value << j.precision << YAML::Key << "layout" << YAML::Value << j.layout;
      // `data` as derived where the scenario leaves it out (since session 42, a review: written 0).
      const std::int64_t model_parallel = std::max<std::int64_t>(1, p.tensor * p.pipeline * p.context);
      const std::int64_t data = p.data > 0 ? p.data : j.accelerators / model_parallel;
      out << YAML::Key << "parallelism" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "data"
          << YAML::Value << data << YAML::Key << "tensor" << YAML::Value << p.tensor << YAML::Key << "pipeline"
          << YAML::Value << p.pipeline << YAML::Key << "context" << YAML::Value << p.context << YAML::Key << "microbatch" << YAML::Value << p.microbatch << YAML::Key
          << "global_batch" << YAML::Value << p.global_batch << YAML::Key << "zero_stage" << YAML::Value << p.zero_stage
          << YAML::Key << "recompute" << YAML::Value
          << (p.recompute_latent ? "latent"
                                 : (p.recompute_selective ? "selective"
                                                          : (p.recompute_elementwise ? "elementwise" : (p.recompute ? "full" : "none"))))
          << YAML::Key << "optimizer" << YAML::Value << p.optimizer << YAML::Key << "overlap_communication"
          << YAML::Value << p.overlap_communication << YAML::Key << "shared_expert_overlap" << YAML::Value
          << p.shared_expert_overlap << YAML::Key << "partition_activations" << YAML::Value << p.partition_activations
          << YAML::Key << "sequence_parallel" << YAML::Value
          << p.sequence_parallel;
      if (p.sequence_parallel) out << YAML::Key << "sequence_parallel_backward" << YAML::Value << p.sequence_parallel_backward;
      out << YAML::Key << "virtual_stages" << YAML::Value << p.virtual_stages << YAML::Key
          << "padding" << YAML::Value << p.padding << YAML::Key << "shard_group" << YAML::Value << p.shard_group
          << YAML::Key << "expert" << YAML::Value << p.expert << YAML::Key << "expert_tensor" << YAML::Value
          << p.expert_tensor << YAML::Key << "gradient_precision" << YAML::Value
          << (p.gradient_precision.empty() ? j.precision : p.gradient_precision) << YAML::Key << "gradient_accumulation"
          << YAML::Value << p.gradient_accumulation << YAML::Key << "pipeline_p2p" << YAML::Value << p.pipeline_p2p
          << YAML::Key << "gradient_reduction" << YAML::Value
          << p.gradient_reduction << YAML::Key << "gradient_clipping" << YAML::Value << p.gradient_clipping << YAML::Key
          << "dropout_masks" << YAML::Value << p.dropout_masks;
      // Megatron-Core's rule, or the bucket's size (PyTorch DDP's 25 MB by default), as the scenario
      // writes it; ZeRO-2 and -3 have none.
      if (p.zero_stage < 2) {
        char size[64];
        std::snprintf(size, sizeof size, "%.17g B", p.gradient_bucket_bytes > 0 ? p.gradient_bucket_bytes : 25e6);
        out << YAML::Key << "gradient_bucket" << YAML::Value << (p.megatron_buckets ? std::string("megatron") : std::string(size));
      }
      out << YAML::Key << "pipeline_schedule" << YAML::Value
          << (p.dualpipe ? "dualpipe" : (p.zero_bubble ? "zb1p" : "1f1b"));
      if (p.batch_rampup) {
        out << YAML::Key << "batch_rampup" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "start"
            << YAML::Value << p.batch_rampup->start << YAML::Key << "increment" << YAML::Value << p.batch_rampup->increment
            << YAML::Key << "samples" << YAML::Value << p.batch_rampup->samples << YAML::EndMap;
      }
      if (!p.stage_layers.empty()) {
        out << YAML::Key << "stage_layers" << YAML::Value << YAML::Flow << YAML::BeginSeq;
        for (const std::int64_t n : p.stage_layers) out << n;
        out << YAML::EndSeq;
      }
      out << YAML::EndMap;
      const JobOverheads& o = j.overheads;
      out << YAML::Key << "overheads" << YAML::Value << YAML::Flow << YAML::BeginMap;
      if (o.checkpoint_interval_s) out << YAML::Key << "checkpoint_interval_s" << YAML::Value << *o.checkpoint_interval_s;
      if (o.checkpoint_bandwidth_bytes_per_s) {
        out << YAML::Key << "checkpoint_bandwidth_bytes_per_s" << YAML::Value << *o.checkpoint_bandwidth_bytes_per_s;
      }
      if (o.mtbf_s) out << YAML::Key << "mtbf_s" << YAML::Value << *o.mtbf_s;
      out << YAML::Key << "restart_s" << YAML::Value << o.restart_s << YAML::Key << "evaluation" << YAML::Value
          << o.evaluation_fraction << YAML::Key << "downtime_s" << YAML::Value << o.downtime_s << YAML::Key << "runs" << YAML::Value << o.runs << YAML::EndMap;
      out << YAML::Key << "fusion" << YAML::Value << j.fusion << YAML::Key << "eager" << YAML::Value;
      if (j.neox) {
        out << "neox";
      } else if (j.largescale) {
        out << "largescale";
      } else {
        out << j.eager;
      }
      out << YAML::Key << "cross_entropy" << YAML::Value << j.cross_entropy << YAML::Key << "expert_dispatch" << YAML::Value
          << j.expert_dispatch;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "inference" << YAML::Value << YAML::BeginSeq;
  for (const auto& j : s.inference) {
    out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << j.id << YAML::Key << "model" << YAML::Value
        << j.model_id << YAML::Key << "hardware" << YAML::Value;
    emit_hardware(out, j.hardware);
    out << YAML::Key << "datacenter" << YAML::Value << YAML::BeginMap << YAML::Key << "id" << YAML::Value
        << j.datacenter.id << YAML::Key << "pue" << YAML::Value << j.datacenter.pue << YAML::Key << "region"
        << YAML::Value;
    emit_region(out, j.datacenter.region);
    out << YAML::EndMap;
    out << YAML::Key << "batch" << YAML::Value << j.batch << YAML::Key << "precision" << YAML::Value << j.precision
        << YAML::Key << "layout" << YAML::Value << j.layout << YAML::Key << "input_layout" << YAML::Value
        << (j.input_layout.empty() ? j.layout : j.input_layout) << YAML::Key << "inferences" << YAML::Value
        << j.inferences << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "deployments" << YAML::Value << YAML::BeginSeq;
  for (const auto& d : s.deployments) {
    out << YAML::BeginMap << YAML::Key << "id" << YAML::Value << d.id << YAML::Key << "model" << YAML::Value << d.model_id
        << YAML::Key << "kind" << YAML::Value << (d.kind == Deployment::Kind::edge ? "edge" : "cloud") << YAML::Key
        << "start_unix_s" << YAML::Value << d.start_unix_s << YAML::Key << "end_unix_s" << YAML::Value << d.end_unix_s
        << YAML::Key << "step_s" << YAML::Value << d.step_s;
    auto growth = [&](const char* key, const Growth& g) {
      static const char* forms[] = {"constant", "exponential", "logistic", "piecewise", "trace"};
      out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "form" << YAML::Value
          << forms[static_cast<int>(g.form)] << YAML::Key << "initial" << YAML::Value << g.initial << YAML::Key
          << "rate_per_year" << YAML::Value << g.rate_per_year << YAML::Key << "capacity" << YAML::Value << g.capacity
          << YAML::Key << "start_unix_s" << YAML::Value << g.start_unix_s;
      if (!g.values.empty()) {
        out << YAML::Key << "time_unix_s" << YAML::Value << YAML::Flow << g.time_unix_s << YAML::Key << "values"
            << YAML::Value << YAML::Flow << g.values;
      }
      out << YAML::EndMap;
    };
    growth("demand_per_s", d.demand);
    if (d.replicas) growth("replicas", *d.replicas);
    if (d.devices) growth("devices", *d.devices);
    out << YAML::Key << "headroom" << YAML::Value << d.headroom << YAML::Key << "accelerators_per_replica" << YAML::Value
        << d.accelerators_per_replica << YAML::Key << "batch" << YAML::Value << d.batch << YAML::Key << "precision"
        << YAML::Value << d.precision << YAML::Key << "tokens_in" << YAML::Value << d.tokens_in << YAML::Key
        << "tokens_out" << YAML::Value << d.tokens_out << YAML::Key << "useful_fraction" << YAML::Value
        << d.useful_fraction << YAML::Key << "charging_efficiency" << YAML::Value << d.charging_efficiency;
    out << YAML::Key << "profile" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "diurnal" << YAML::Value
        << YAML::Flow << d.diurnal << YAML::Key << "weekly" << YAML::Value << YAML::Flow << d.weekly << YAML::EndMap;
    out << YAML::Key << "hardware_mix" << YAML::Value << YAML::BeginSeq;
    for (const auto& m : d.mix) {
      out << YAML::BeginMap << YAML::Key << "from_unix_s" << YAML::Value << m.from_unix_s << YAML::Key << "shares"
          << YAML::Value << YAML::BeginMap;
      for (std::size_t i = 0; i < m.hardware.size(); ++i) out << YAML::Key << m.hardware[i].id << YAML::Value << m.shares[i];
      out << YAML::EndMap << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::Key << "regions" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : d.regions) {
      out << YAML::BeginMap << YAML::Key << "site" << YAML::Value << r.datacenter.id << YAML::Key << "share" << YAML::Value
          << r.share << YAML::Key << "utc_offset_s" << YAML::Value << r.utc_offset_s << YAML::Key << "pue" << YAML::Value
          << (r.is_datacenter ? r.datacenter.pue : 1.0) << YAML::Key << "region" << YAML::Value;
      emit_region(out, r.datacenter.region);
      out << YAML::EndMap;
    }
    out << YAML::EndSeq << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace dlcarbon::detail
