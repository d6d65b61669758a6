// The training step's second phase (step_model.hpp): every op of the graph, one microbatch on the
// pipeline device that runs it, forward and backward on the roofline (backward = 2x the forward
// work; recomputation adds one more forward), each GEMM split over the tensor-parallel group; the
// tensor-, context- and sequence-parallel collectives each op brings; the parameters each device
// holds and the activations it keeps; and the ops table's rows.

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "op_efficiency.hpp"
#include "step_model.hpp"

namespace dlcarbon::cost_detail {

void StepModel::cost_ops() {
  has_input_table.assign(devices, 0);
  has_output_table.assign(devices, 0);
  double last_output = 0, encoder_output = 0;
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
    // Ops on the full d_model width are repeated on every rank of the tensor group, unless
    // sequence parallelism splits them along the sequence (Korthikanti et al. 2022).
    const double split = op.tensor_split || p.sequence_parallel ? tp : 1.0;
    // The share of the op's work on a rank: 1 / split, but where the key/value heads are replicated
    // (kv_replicated: prepare_ops, step_layout.cpp) the products that make them (the fused qkv, a cross-attention's kv), the rotary
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
    // sequence parallelism, as the backward's reduction above.)
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
    // Where it runs and how it splits, for what it holds, keeps and sends (the functions below).
    const OpPlace r{.index = op_index,
                    .in_layer = in_layer,
                    .owner = owner,
                    .chunk_owner = chunk_owner,
                    .forward_tail = forward_tail,
                    .split = split,
                    .work_split = work_split,
                    .kv_bytes = kv_bytes,
                    .kv_kept_bytes = kv_kept_bytes,
                    .eight_bit_op = eight_bit_op,
                    .gemm = gemm,
                    .row_parallel_output = row_parallel_output,
                    .row_parallel_shape = row_parallel_shape,
                    .row_parallel = row_parallel,
                    .ffn_activation = ffn_activation,
                    .swiglu = swiglu,
                    .stack_end = stack_end,
                    .recomputed = recomputed,
                    .dgrad_s = dgrad_s,
                    .wgrad_s = wgrad_s};
    hold_parameters(op, r);
    const double e_f = hardware::kernel_energy(od, op_precision, flops + red_f.flops + bias_f.flops,
                                               bytes + cast_fwd_bytes + red_f.bytes + bias_f.bytes, f_s, gemm);
    const double e_b = hardware::kernel_energy(
        od, op_precision, bf * flops + bias_bwd_flops + red_b.flops,
        bwd_bytes + cast_bwd_bytes + bias_bwd_bytes + op.gradient_sum_bytes / split + red_b.bytes, b_s, gemm);
    busy_energy += energy_share * (e_f + e_b + (recompute > 0 ? e_f : 0));
    average_busy_s += energy_share * (f_s + b_s + recompute);
    keep_activations(op, r);
    tensor_collectives(op, r);
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
}

// The parameters an op's device holds for it, and the vocabulary tables it copies.
void StepModel::hold_parameters(const graph::Op& op, const OpPlace& r) {
  // (Parameters are divided by t in StepModel::dense_on: a replicated key/value projection's weights count whole
  // on every rank.) Every rank of the tensor group holds whole what the group does not split: a
  // norm's scale and shift, a learned position table and token types, and a row-parallel
  // product's bias, added after the all-reduce (Megatron-LM's RowParallelLinear; since session
  // 46, a review: they had been divided by t too).
  double held_params = r.work_split != r.split ? op.params * tp / r.work_split : op.params;
  if (!op.expert && tp > 1) {
    if (!op.tensor_split) held_params = op.params * tp;
    held_params += op.replicated_params * (tp - 1);
    if (r.row_parallel && op.bias) held_params += static_cast<double>(op.count * op.n) * (tp - 1);
  }
  (op.expert ? dev_expert : dev_dense)[r.owner] += held_params;
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
        has[r.owner] = 1;
      } else if (!has[r.owner]) {
        has[r.owner] = 1;
        dev_dense[r.owner] += vocab_table;
        (lookup || tied ? input_copies : output_copies) += 1;
      }
    }
  }
}

// What an op keeps for its backward, on its device and in its chunk.
void StepModel::keep_activations(const graph::Op& op, const OpPlace& r) {
  // A column-parallel product (the attention's input projections, the feed-forward's up and
  // gate, experts split over the tensor group, the output head) keeps its input for the weight
  // gradient, and without sequence parallelism that input is whole on every rank of the tensor
  // group: the 4 sbh of Korthikanti et al. 2022's sbh (10 + 24 / t) a layer that do not shrink
  // with t (Sec. 4.1: the QKV's and the first linear's inputs). Sequence parallelism keeps the
  // input's sequence shard and gathers it again in the backward. (Since session 34; before, it
  // shrank with t too.)
  const bool whole_input = op.kind == graph::OpKind::matmul && op.tensor_split && !r.row_parallel_shape &&
                           !p.sequence_parallel && (!op.expert || p.expert_tensor != 1);
  const double saved_split = whole_input ? 1.0 : r.split;
  if (!r.in_layer) {
    // A fused dropout riding on a split op (the embeddings' after their all-reduce) keeps its
    // full-width mask, a byte an element, whole on every rank of the tensor group but under
    // sequence parallelism (a review of session 43: it had been split with the op's own).
    const double mask = op.tensor_split ? std::min(op.saved_bytes, op.dropout_elements) : 0.0;
    const double kept_other = (op.saved_bytes - mask) / saved_split + mask / (p.sequence_parallel ? tp : 1.0);
    dev_saved_other[r.owner] += kept_other;
    if (previous_layer < last_main_layer) {
      dev_saved_lead[r.owner] += kept_other;
      chunk_lead[r.chunk_owner] += kept_other;
    }
  } else if (!(p.recompute_elementwise && !r.gemm && !r.ffn_activation) && !(p.recompute_latent && op.kind == graph::OpKind::norm)) {
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
    const double kept = r.eight_bit_op ? 0.5 : 1.0;
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
    if (p.recompute_latent && r.swiglu && eight_bit) keep = 0.5;
    if ((p.recompute_latent || p.recompute_elementwise) && op.kind == graph::OpKind::matmul && ends_with(op.name, ".down") &&
        op.name.find(".ffn") != std::string::npos) {
      saved = 0;
    }
    // Recomputed from its inputs, the gate and up halves (one tensor ungated), which it keeps:
    // not the eager chain's third tensor.
    if (p.recompute_elementwise && r.ffn_activation) saved = std::min(saved, (gated_ffn ? 2.0 : 1.0) * bytes_per_value * static_cast<double>(op.m));
    double kept_bytes = keep * saved / saved_split;
    // An input the op before keeps (a ResNet block's first convolution's), kept again where the
    // two lie on different pipeline devices: the first layer of a stage after the first
    // (since session 43, a review: it had been counted on neither side's receiving device).
    if (op.shared_input_bytes > 0) {
      const std::size_t pos = position_of(op.layer);
      if (pos > 0 && device_of_layer[pos] != device_of_layer[pos - 1]) kept_bytes += keep * op.shared_input_bytes / saved_split;
    }
    // A fused attention keeps the key/value heads it read, whole ones where they are replicated.
    if (r.kv_bytes > 0) kept_bytes += keep * r.kv_kept_bytes * (kv_rank / kv_heads - 1 / tp);
    dev_saved[r.owner] += kept_bytes;
    if (r.stack_end) dev_stack_end[r.owner] += kept_bytes;
    chunk_saved[r.chunk_owner] += kept_bytes;
  }
}

// The collectives an op brings over the tensor and context groups (exposed in its device's slot),
// and the forward's share of them.
void StepModel::tensor_collectives(const graph::Op& op, const OpPlace& r) {
  // (A collective of the forward pass: its share of dev_tp, and after the device's last gather.)
  const auto forward_collective = [&](double s) {
    dev_tpf[r.owner] += s;
    if (r.forward_tail) dev_tail_f[r.owner] += s;
  };
  // Experts run whole on each rank of the tensor group (expert_tensor: 1) need no collective: each
  // rank computes its own sequence shard's slots, and the all-to-all (step_schedule.cpp) carries them.
  const bool experts_split = !op.expert || p.expert_tensor != 1;
  if (r.row_parallel_output && c.tensor > 1 && experts_split) {
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
      dev_tp[r.owner] += (p.recompute ? 2 : 1) * rs + comm::collective_s(comm::Collective::all_gather, out_bytes, tp_group);
      forward_collective(rs);
    } else {
      dev_tp[r.owner] += (p.recompute ? 3 : 2) * one + (two_inputs ? one : 0.0);
      forward_collective(one);
    }
  }
  // A decoder layer's cross-attention projects the encoder's output, which every rank holds
  // whole: its column-parallel key/value product all-reduces that input's gradient in the
  // backward (Megatron-LM's ColumnParallelLinear, Mesh TensorFlow's einsum over the split heads),
  // one a decoder layer (since session 46, a review: not charged); under sequence parallelism, as
  // every product reading a sequence-split tensor, below.
  if (r.in_layer && c.tensor > 1 && !p.sequence_parallel && op.kind == graph::OpKind::matmul && op.tensor_split &&
      ends_with(op.name, ".kv") && op.name.find(".cross") != std::string::npos) {  // (the Evolved Transformer's .cross1 and .cross2 too)
    const double in_bytes = static_cast<double>(op.m * op.count * op.k) * bytes_per_value;
    dev_tp[r.owner] += comm::collective_s(comm::Collective::all_reduce, in_bytes, tp_group);
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
  if (c.tensor > 1 && p.sequence_parallel && op.kind == graph::OpKind::matmul && op.tensor_split && !r.row_parallel_shape &&
      !latent_down) {
    std::vector<int> inputs = g.inputs_of(r.index);
    while (!inputs.empty() && g.op(inputs.front()).tensor_split && g.op(inputs.front()).kind == graph::OpKind::elementwise) {
      inputs = g.inputs_of(inputs.front());
    }
    const bool split_input = !inputs.empty() && !g.op(inputs.front()).tensor_split;
    const double in_bytes = static_cast<double>(op.m * op.count * op.k) * bytes_per_value;
    const bool dispatched = op.expert && p.expert_tensor != 1 && ends_with(op.name, ".experts.up");
    if (dispatched) {
      const double ag = comm::collective_s(comm::Collective::all_gather, in_bytes, tp_group);
      dev_tp[r.owner] += (p.recompute ? 2 : 1) * ag + comm::collective_s(comm::Collective::reduce_scatter, in_bytes, tp_group);
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
        backward = hidden(ag, r.dgrad_s) + hidden(rs, r.wgrad_s);
      }
      const bool rerun = r.in_layer && (p.recompute || (p.recompute_latent && (ends_with(op.name, ".q_b") || ends_with(op.name, ".kv_b"))));
      dev_tp[r.owner] += (rerun ? 2 : 1) * ag + backward;
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
    dev_tp[r.owner] += (r.recomputed ? 2 : 1) * mask_s;
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
    const double gathers = (r.recomputed ? 2 : 1) + (op.fused_attention ? 1 : 0);
    const double kv_s = gathers * comm::collective_s(comm::Collective::all_gather, gathered, cp_group) +
                        comm::collective_s(comm::Collective::reduce_scatter, gathered, cp_group);
    dev_tp[r.owner] += kv_s;  // exposed in the slot as the tensor group's; reported apart (context_comm_s)
    dev_cp[r.owner] += kv_s;
    forward_collective(comm::collective_s(comm::Collective::all_gather, gathered, cp_group));
  }
  if (c.tensor > 1 && !r.in_layer && transformer) {
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
      dev_tp[r.owner] += forward + (p.sequence_parallel ? collective(comm::Collective::all_gather, out) : 0.0);
      forward_collective(forward);
    } else if (op.kind == graph::OpKind::matmul && (ends_with(op.name, "lm_head") || op.name == "mlm.logits")) {
      // (Under sequence parallelism the head gathers its input as every column-parallel product
      // reading a sequence-split tensor does, above: forward, again backward, and its input
      // gradient reduce-scattered.)
      const double input = tokens_bytes * static_cast<double>(op.k);
      if (!p.sequence_parallel) dev_tp[r.owner] += collective(comm::Collective::all_reduce, input);
      const double loss = 3 * collective(comm::Collective::all_reduce, 4.0 * static_cast<double>(op.m));
      dev_tp[r.owner] += loss;
      forward_collective(loss);
    }
  }
}

}  // namespace dlcarbon::cost_detail
