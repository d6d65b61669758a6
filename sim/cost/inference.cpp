#include <algorithm>
#include <cmath>
#include <set>
#include <string>

#include "dlcarbon/graph.hpp"
#include "dlcarbon/inference_cost.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/text.hpp"
#include "op_efficiency.hpp"

namespace dlcarbon {

InferenceResult cost_inference(const InferenceJob& job) {
  InferenceResult r;
  const hardware::DeviceModel dev = hardware::make_device_model(job.hardware).at_precision(job.precision);
  const double p = hardware::bytes_per_value(job.precision);
  const graph::Fusion fusion = graph::fusion_of(job.fusion);
  graph::GraphShape shape{job.batch, static_cast<std::int64_t>(p), true, fusion, false};
  shape.tensorflow1 = graph::tensorflow1_kernels(job.fusion);
  shape.fairseq = graph::fairseq_kernels(job.fusion);
  shape.last_position_logits = job.last_position_logits;
  const graph::OpGraph g = graph::build_graph(job.design, shape);
  double energy = 0;
  double input_elements = 0;
  std::set<int> expert_layers;  // layers whose experts' combined output is counted
  double last_output_bytes = 0;   // the last row-parallel output's (a layer's tokens x d_model)
  r.weight_bytes = g.parameters() * p;
  for (const auto& op : g.ops()) {
    if (!job.only_ops_named.empty()) {
      const auto& e = job.except_ops_ending;
      const bool excluded = !e.empty() && op.name.size() >= e.size() && op.name.compare(op.name.size() - e.size(), e.size(), e) == 0;
      if (op.name.find(job.only_ops_named) == std::string::npos || excluded) continue;
    }
    // What the op moves as it runs (an unfused score matrix whole, as frameworks allocate it), less
    // its weights: a weight product's k x n (owned or a tied table, counted once above; a one-hot
    // product's table too, its one-hot operand never built), any other op's own parameters.
    // (A chain of kernels that re-reads its tensors, TensorFlow 1.x's softmax, holds them once.)
    const double moved = graph::executed_bytes(op, fusion) / op.traffic_factor;
    const double tensors = op.kind == graph::OpKind::matmul || op.kind == graph::OpKind::router
                               ? moved - p * static_cast<double>(op.count) * static_cast<double>(op.k) * static_cast<double>(op.n)
                               : moved - op.params * p;
    r.activation_bytes = std::max(r.activation_bytes, tensors);
    const bool gemm = graph::is_gemm(op.kind) || op.kind == graph::OpKind::router;
    const double eta = cost_detail::op_efficiency(dev, op, job.layout, job.fusion, static_cast<double>(op.n),
                                                  static_cast<double>(op.count));
    const double flops = graph::executed_flops(op, fusion), bytes = graph::executed_bytes(op, fusion);
    const auto t = hardware::kernel_time(dev, job.precision, flops, bytes, gemm, eta);
    // A product split along its reduction sums its partial results in a pass of its own.
    const auto red = gemm ? cost_detail::split_k_reduction(dev, op, job.precision, static_cast<double>(op.m),
                                                           static_cast<double>(op.n), static_cast<double>(op.k),
                                                           static_cast<double>(op.count))
                          : cost_detail::Reduction{};
    const cost_detail::Reduction bias = cost_detail::unfused_bias_add(
        dev, op, job.precision, fusion, job.hardware.kind == "tpu", static_cast<double>(op.m), static_cast<double>(op.n), p);
    const double seconds = t.seconds + static_cast<double>(op.kernels - 1) * dev.launch_s + red.seconds + bias.seconds;
    r.launches += static_cast<double>(op.kernels) + (red.seconds > 0 ? 1.0 : 0.0) + (bias.seconds > 0 ? 1.0 : 0.0);
    // A row-parallel product's output (its partial sums on each rank of a tensor-parallel replica):
    // the layer's attention output and feed-forward down projection (`.out`, `.down`, a parallel
    // block's at `.ffn.down` only), once a layer for a mixture's experts, whose outputs are combined
    // before it.
    const auto ends = [&](const char* s) {
      const std::size_t n = std::char_traits<char>::length(s);
      return op.name.size() >= n && op.name.compare(op.name.size() - n, n, s) == 0;
    };
    const bool row_parallel = op.layer >= 0 && op.kind == graph::OpKind::matmul && (ends(".out") || ends(".down"));
    if (!op.tensor_split) {
      r.unsplit_s += std::max(0.0, seconds - static_cast<double>(op.kernels) * dev.launch_s);
      r.unsplit_dynamic_j += std::max(0.0, hardware::kernel_energy(dev, job.precision, flops, bytes, seconds, gemm) - dev.static_w * seconds);
    } else if (bias.seconds > 0 && row_parallel) {
      // A row-parallel product adds its bias after the all-reduce, to the whole output on every
      // rank of a tensor-parallel replica (since session 47, a review: split with the product).
      // (Its launch is counted with the others, whole on every rank.)
      r.unsplit_s += std::max(0.0, bias.seconds - dev.launch_s);
      r.unsplit_dynamic_j += std::max(0.0, hardware::kernel_energy(dev, job.precision, bias.flops, bias.bytes, bias.seconds, false) -
                                               dev.static_w * bias.seconds);
    }
    if (row_parallel) {
      // (The experts' combined output is as wide as the layer's tokens, which its attention output
      // holds: that one's bytes.)
      // A mixture's shared experts add into the routed experts' output before the layer's one
      // all-reduce (vLLM's and SGLang's DeepSeek and Qwen MoE layers; since session 45, a review:
      // counted apart, 58 all-reduces too many in a DeepSeek-V3 decode step).
      const bool moe_output = op.expert || ends(".shared.down");
      const bool counted = moe_output && !expert_layers.insert(op.layer).second;
      const double bytes = moe_output ? last_output_bytes : p * static_cast<double>(op.m) * static_cast<double>(op.n);
      if (!moe_output) last_output_bytes = bytes;
      if (!counted) {
        r.tensor_allreduces += 1;
        r.tensor_allreduce_bytes += bytes;
      }
    }
    r.batch_time_s += seconds;
    energy += hardware::kernel_energy(dev, job.precision, flops + red.flops + bias.flops, bytes + red.bytes + bias.bytes, seconds, gemm);
    // The image batch a layout reorder moves: the builders' input op (ResNet, ViT), or, in a graph
    // file, which has none, the feature map its first convolution reads (its `input`, or the unfolded
    // m x k where that is not given, an upper bound; since session 41, a review: the reorder had
    // moved nothing there, its time a kernel launch).
    if (input_elements == 0 && op.kind == graph::OpKind::embedding) {
      input_elements = static_cast<double>(op.m) * static_cast<double>(std::max<std::int64_t>(1, op.n));
    } else if (input_elements == 0 && op.kind == graph::OpKind::conv2d) {
      input_elements = op.saved_bytes / p;
    }
  }
  if (!job.input_layout.empty() && job.input_layout != job.layout) {
    // Reading the batch in one layout and writing it in the other.
    const double bytes = 2 * input_elements * p;
    const auto t = hardware::kernel_time(dev, job.precision, 0, bytes, false);
    r.reorder_time_s = t.seconds;
    r.batch_time_s += t.seconds;
    energy += hardware::kernel_energy(dev, job.precision, 0, bytes, t.seconds);
  }
  if (dev.memory_bytes > 0 && r.weight_bytes + r.activation_bytes > dev.memory_bytes) {
    r.ok = false;
    r.reason = "does not fit: needs " + text::byte_size(r.weight_bytes + r.activation_bytes) + " per device (weights " +
               text::byte_size(r.weight_bytes) + ", activations of the largest op " + text::byte_size(r.activation_bytes) +
               "), " + text::more_than(r.weight_bytes + r.activation_bytes, job.hardware.id, dev.memory_bytes);
  }
  r.device_energy_per_batch_j = energy;
  const double batch = static_cast<double>(job.batch);
  r.it_energy_per_inference_j = (energy + dev.host_w * r.batch_time_s) / batch;
  r.facility_energy_per_inference_j = r.it_energy_per_inference_j * job.datacenter.pue;
  // The job runs whole batches, the last one full whatever it holds (since session 38, a review: one
  // inference at a batch of 1,024 had been charged 1 / 1,024 of the batch); the figures per
  // inference are those of a full batch.
  const double batches = std::ceil(job.inferences / batch);
  r.accelerator_time_s = r.batch_time_s * batches;
  r.it_energy_j = r.it_energy_per_inference_j * batch * batches;
  r.facility_energy_j = r.facility_energy_per_inference_j * batch * batches;
  r.co2e_location_kg = r.facility_energy_j * job.datacenter.region.intensity_kg_per_j;
  if (job.datacenter.market_intensity_kg_per_j) r.co2e_market_kg = r.facility_energy_j * *job.datacenter.market_intensity_kg_per_j;
  return r;
}

}  // namespace dlcarbon
