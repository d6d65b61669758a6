// Model designs -> forward operator graphs of one microbatch.
//
// Counting conventions (docs/hardware-model.md, "Operator graphs"): a multiply-add is 2 FLOPs; bytes are what an op reads
// and writes once (inputs, weights, outputs) at the compute precision; causal attention
// computes half of the score matrix, so a decoder's forward FLOPs per token are
// 2N + 2 n_layer n_ctx d_attn (Kaplan et al. 2020, Table 1).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dlcarbon/graph.hpp"

namespace dlcarbon::graph {
namespace {

using I = std::int64_t;

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

// Appends ops to a graph with the bookkeeping of one microbatch.
class Emitter {
 public:
  Emitter(OpGraph& g, const GraphShape& shape)
      : fusion(shape.fusion), training(shape.training), eager(shape.eager),
        tensorflow1(shape.tensorflow1 && shape.fusion == Fusion::none), fairseq(shape.fairseq && shape.fusion == Fusion::none),
        neox(shape.neox), largescale(shape.largescale && !shape.neox),
        neox_partition((shape.neox || shape.largescale) && shape.neox_partition),
        tensor(std::max<I>(1, shape.tensor)),
        cross_entropy(shape.cross_entropy),
        channels_last(shape.channels_last),
        expert_group(std::max<I>(1, shape.expert_group)),
        g_(g), p_(static_cast<double>(shape.dtype_bytes)) {}

  // y[m x n] = x[m x k] W[k x n] (+ b): weights owned unless `shared` (tied embeddings).
  int matmul(const std::string& name, int layer, int in, I m, I k, I n, bool bias, bool shared = false,
             OpKind kind = OpKind::matmul, bool expert = false, I count = 1, double weight_params = -1) {
    Op op = gemm(name, layer, m, k, n, kind, count);
    const double c = static_cast<double>(count);
    const double md = static_cast<double>(m), kd = static_cast<double>(k), nd = static_cast<double>(n);
    op.params = shared ? 0 : (weight_params >= 0 ? weight_params : c * (kd * nd + (bias ? nd : 0)));
    op.saved_bytes = p_ * c * md * kd;  // the input, for the weight gradient
    op.expert = expert;
    op.bias = bias;
    return g_.add(op, in >= 0 ? std::vector<int>{in} : std::vector<int>{});
  }

  // Activation x activation products (attention). `fraction` < 1 for causal skipping.
  // `fraction` of a causal score matrix counted: the output of QK^T (scores), or the first input
  // of PV (`probabilities_in`).
  int batched(const std::string& name, int layer, const std::vector<int>& in, I count, I m, I k, I n,
              double fraction, bool probabilities_in = false) {
    Op op = gemm(name, layer, m, k, n, OpKind::batched_matmul, count);
    const double c = static_cast<double>(count);
    const double md = static_cast<double>(m), kd = static_cast<double>(k), nd = static_cast<double>(n);
    op.flops = 2 * c * md * kd * nd * fraction;
    op.bytes = p_ * c * (md * kd * (probabilities_in ? fraction : 1) + kd * nd + md * nd * (probabilities_in ? 1 : fraction));
    op.saved_bytes = p_ * c * (md * kd + kd * nd);
    op.score_matrix = true;
    if (probabilities_in) op.score_saved_bytes = p_ * c * md * kd;  // PV saves the probabilities and V
    if (fraction < 1) {
      op.full_flops = 2 * c * md * kd * nd;
      op.full_bytes = p_ * c * (md * kd + kd * nd + md * nd);
    }
    return g_.add(op, in);
  }

  // An elementwise pass over causal attention scores: `fraction` of the whole matrix counted.
  int scores(const std::string& name, int layer, int in, double whole, double fraction, double flops_per_element,
             OpKind kind = OpKind::elementwise) {
    const int id = elementwise(name, layer, {in}, whole * fraction, flops_per_element, kind);
    if (fraction < 1) g_.set_full_work(id, whole * flops_per_element, p_ * whole * 2, p_ * whole);
    g_.mark_score_matrix(id);
    return id;
  }

  // `reads`: tensors of `elements` read (default: one per input op), e.g. 2 for a gated
  // activation that reads both halves of its input.
  int elementwise(const std::string& name, int layer, const std::vector<int>& in, double elements,
                  double flops_per_element, OpKind kind = OpKind::elementwise, double params = 0,
                  bool tensor_split = true, double reads = 0) {
    Op op;
    op.name = name;
    op.kind = kind;
    op.layer = layer;
    op.tensor_split = tensor_split;
    op.m = static_cast<I>(elements);
    op.flops = elements * flops_per_element;
    const double inputs = reads > 0 ? reads : static_cast<double>(std::max<std::size_t>(1, in.size()));
    op.bytes = p_ * (elements * (inputs + 1) + params);
    op.params = params;
    op.saved_bytes = p_ * elements;
    return g_.add(op, in);
  }

  int norm(const std::string& name, int layer, int in, I tokens, I width, bool rms) {
    // LayerNorm: mean, variance, normalise, scale, shift ~ 8 FLOPs per element; RMSNorm ~ 5.
    const double elements = static_cast<double>(tokens) * static_cast<double>(width);
    const int id = elementwise(name, layer, {in}, elements, rms ? 5 : 8, OpKind::norm,
                               static_cast<double>(width) * (rms ? 1 : 2), false);
    if (eager && rms) {
      // No fused RMSNorm kernel in the PyTorch these codes ran: x.float() (p in, 4 out), pow(2)
      // (4, 4), mean (4), + eps and rsqrt (per row), x * rsqrt (4, 4), type_as (4, p), * weight
      // (p, p): 28 + 4p bytes an element in 8 kernels (HF transformers, Meta's reference and IBM's
      // fms write it so). Autograd keeps the float32 copy and the normalised output: 4 + p an
      // element. LayerNorm has a native kernel: one pass, as fused.
      chain(id, elements * (28 + 4 * p_) + static_cast<double>(width) * p_, 8, elements * (4 + p_));
    }
    return id;
  }

  // An eager op's bytes and kernels, in place of one fused pass.
  void chain(int id, double bytes, int kernels, double saved_bytes) { g_.set_chain(id, bytes, kernels, saved_bytes); }
  void backward_factor(int id, double factor) { g_.set_backward_factor(id, factor); }
  void model_share(int id, double share) { g_.set_model_share(id, share); }
  void bias_in_activation(int id) { g_.set_bias_in_activation(id); }
  // A dropout keeps its mask for the backward, one byte an element (PyTorch's bool mask; the op after
  // it keeps the dropped output as its own input). Since session 34; before, the output's p bytes.
  // On a score matrix the unfused kernels run whole (set_full_work), the mask too: `elements` whole.
  // TensorFlow 1.x (tensorflow1): tf.nn.dropout is five ops, random_uniform (writes p bytes an
  // element), + keep_prob (p, p), floor (p, p), x / keep_prob (p, p) and * the binary tensor (2p,
  // p): 10p bytes in five kernels; its gradient, the multiply's and the divide's (3p + 2p) in two;
  // it keeps the binary tensor, p bytes an element (since session 48).
  int dropout_mask(int id, double elements) {
    const Op& op = g_.op(id);
    const double kept = tensorflow1 ? p_ * elements : elements;
    g_.set_saved(id, kept, op.score_matrix ? kept : -1);
    if (tensorflow1) framework_kernels(id, 5, 5, 0.5, 2);
    return id;
  }
  // A dropout over the full d_model width (see Op::dropout_elements).
  int wide_dropout(int id, double elements) {
    g_.set_dropout_elements(id, elements);
    return id;
  }
  void gradient_sum(int id, double bytes) { g_.set_gradient_sum(id, bytes); }
  // The rows an expert product's input had before the dispatch (the device's tokens): where 8-bit
  // dispatch quantizes them before sending (Op::dispatched_rows).
  void dispatched_rows(int id, double rows) { g_.set_dispatched_rows(id, rows); }
  void replicated_params(int id, double params) { g_.set_replicated_params(id, params); }
  // A cross-entropy over `elements` logits: computed in fp32 whatever the logits' precision
  // (Megatron-LM's vocab_parallel_cross_entropy(output.float()), fairseq's and Hugging Face's
  // .float() before the log-softmax), its fp32 softmax kept for the backward: 4 B an element (the
  // 4 sbv of Korthikanti et al. 2022; since session 46, a review: p). Its time stays one pass.
  // (In inference the same pass over the logits is the sampler's softmax.)
  // In training, `cross_entropy` (GraphShape) sets its kernels (docs/hardware-model.md, "The loss's
  // kernels"; since session 48). Megatron-LM's vocab_parallel_cross_entropy over output.float():
  // the cast (p in, 4 out; none in fp32), max (4), - max (4, 4), exp in place (4, 4), sum (4),
  // / sum in place (4, 4); backward, * the loss's gradient in place (4, 4) and the cast back (4,
  // p). PyTorch's F.cross_entropy over logits.float(): the cast, log_softmax (4, 4); backward,
  // nll_loss's zeroed gradient (4) and its scatter, log_softmax's backward (4, 4, 4), the cast back.
  int loss(const std::string& name, int in, double elements) {
    const int id = elementwise(name, -1, {in}, elements, 4, OpKind::softmax);
    saved(id, std::max(p_, 4.0) * elements);
    if (training && cross_entropy != GraphShape::CrossEntropy::fused) {
      const bool cast = p_ < 4;
      const double cast_bytes = cast ? p_ + 4 : 0;
      const bool megatron = cross_entropy == GraphShape::CrossEntropy::megatron;
      const double forward = cast_bytes + (megatron ? 32 : 8);
      const double backward = cast_bytes + (megatron ? 8 : 16);
      const int kernels = (cast ? 1 : 0) + (megatron ? 5 : 1);
      const int backward_kernels = (cast ? 1 : 0) + (megatron ? 1 : 3);
      framework_kernels(id, forward / (2 * p_), kernels, backward / forward, backward_kernels);
    } else if (training && tensorflow1) {
      // TensorFlow 1.x: the targets one-hot (tensor2tensor's smoothing_cross_entropy: the smoothed
      // soft targets, p written) and softmax_cross_entropy_with_logits, whose XentEigenImpl makes
      // five Eigen passes in the logits' dtype: the max (p), logits - max (p, p), the sum of exps
      // (p), the loss's product with the labels, evaluated then summed (2p, p; p), and the backprop
      // exp(.) / sum - labels (2p, p): 12p in 7 kernels; its gradient, _BroadcastMul of the loss's
      // gradient into that backprop (p, p), one kernel (since session 49, a review: one fused pass).
      framework_kernels(id, 12 * p_ / (2 * p_), 7, 2.0 / 12.0, 1);
    }
    return id;
  }
  void layer_output(int id, double elements) { g_.set_layer_output(id, elements); }
  // The data a model reads (images, feature vectors): no FLOPs and no gradient (since session 45, a
  // review: an MLP's and a feature LSTM's input had a backward pass of their own).
  int data_input(const std::string& name, I rows, I width) {
    const int id = embedding(name, rows, width, 0, false);
    backward_factor(id, 0);
    return id;
  }
  // An op keeping `bytes` of `source` (its input) for its backward where another op keeps the same
  // tensor already (one storage, as autograd saves it): nothing more in its own layer, and in a
  // later layer only where the two lie on different pipeline devices (shares_input). The first
  // keeper of a tensor registers it.
  void keep_input_once(int id, int source, int layer, double bytes) {
    const int keeper = keeper_of(source, layer);
    if (keeper == 1) shares_input(id, bytes);
    if (keeper == 2) input_kept_nearby(id, bytes);
  }
  void saved(int id, double bytes, double score_bytes = -1) { g_.set_saved(id, bytes, score_bytes); }
  double op_saved(int id) const { return g_.op(id).saved_bytes; }
  double op_score_saved(int id) const { return g_.op(id).score_saved_bytes; }
  // A residual add keeps nothing for its backward pass (the gradient passes through); fused with
  // the dropout of its branch it keeps that dropout's mask, one byte an element.
  int residual(const std::string& name, int layer, const std::vector<int>& in, double elements, bool fused_dropout) {
    const int id = elementwise(name, layer, in, elements, fused_dropout ? static_cast<double>(in.size()) + 1 : static_cast<double>(in.size()) - 1,
                               OpKind::elementwise, 0, false);
    saved(id, fused_dropout ? elements : 0);
    if (fused_dropout) wide_dropout(id, elements);
    if (!fused_dropout) tf1_add(id, in.size());
    return id;
  }

  // FlashAttention: QK^T, softmax and PV in one kernel; only Q, K, V and the output move. Queries
  // and keys are `qk_dim` wide a head, values and the output `v_dim` (equal but under latent
  // attention); the op's n is their mean, the width a tile sees. `count` query heads (times the
  // batch) share `kv_count` key and value heads (fewer under grouped-query attention): the kernel
  // reads and autograd keeps each key and value head once. `kv_kept` (0: kv_len) is the positions
  // of keys and values it keeps for the backward: under context parallelism its own, q_len, the
  // whole sequence's being gathered again in the backward (Transformer Engine's all-gather CP).
  int fused_attention(const std::string& name, int layer, const std::vector<int>& in, I count, I kv_count, I q_len,
                      I kv_len, I qk_dim, I v_dim, double fraction, I kv_kept = 0) {
    Op op;
    op.name = name;
    op.kind = OpKind::batched_matmul;
    op.layer = layer;
    op.m = q_len;
    op.n = (qk_dim + v_dim) / 2;
    op.k = kv_len;
    op.count = count;
    const double c = static_cast<double>(count), ckv = static_cast<double>(kv_count), q = static_cast<double>(q_len),
                 kv = static_cast<double>(kv_len), dqk = static_cast<double>(qk_dim), dv = static_cast<double>(v_dim);
    op.flops = 2 * (c * q * kv * (dqk + dv)) * fraction + 5 * c * q * kv * fraction;
    op.bytes = p_ * (c * q * (dqk + dv) + ckv * kv * (dqk + dv));
    const double kept = kv_kept > 0 ? static_cast<double>(kv_kept) : kv;
    op.saved_bytes = p_ * (c * q * (dqk + dv) + ckv * kept * (dqk + dv)) + 4 * c * q;  // Q, K, V, O and the row statistics
    op.backward_factor = 2.5;  // the backward recomputes the scores and probabilities (Dao 2023)
    op.fused_attention = true;
    if (fraction < 1) op.full_flops = op.flops / fraction;  // what a whole-matrix count would say
    return g_.add(op, in);
  }

  int embedding(const std::string& name, I tokens, I width, double params, bool adds_positions = true) {
    Op op;
    op.name = name;
    op.kind = OpKind::embedding;
    op.m = tokens;
    op.n = width;
    const double e = static_cast<double>(tokens) * static_cast<double>(width);
    // Adding position (and type) embeddings; a lookup or data input without positions (an MLP's,
    // a CNN's or an LSTM's input, characters) adds nothing (since session 45, a review).
    op.flops = adds_positions ? e : 0;
    op.bytes = p_ * 2 * e;
    op.params = params;
    return g_.add(op, {});
  }

  // The token embedding as one-hot ids x the table (TensorFlow on TPUs): a GEMM of tokens x vocab
  // by vocab x width whose table the embedding op owns. Backward: the table's gradient only (the
  // ids have none). The one-hot operand is not moved: XLA builds it inside the product from the
  // ids (an iota compare fused into the dot's operand) [assumed], so the bytes are the table, the
  // ids and the output, and the ids are what is saved.
  int one_hot_embedding(const std::string& name, int in, I tokens, I vocab, I width) {
    Op op = gemm(name, -1, tokens, vocab, width, OpKind::matmul, 1);
    const double md = static_cast<double>(tokens), kd = static_cast<double>(vocab), nd = static_cast<double>(width);
    op.bytes = p_ * (kd * nd + md * nd) + 4 * md;
    op.saved_bytes = 4 * md;
    op.backward_factor = 1;
    op.implementation = true;
    return g_.add(op, {in});
  }

  double dtype_bytes() const { return p_; }

  // `count` products C[m x n] = A[m x k] x B[k x n]: their FLOPs and the bytes of A, B and C.
  Op gemm(const std::string& name, int layer, I m, I k, I n, OpKind kind, I count) const {
    Op op;
    op.name = name;
    op.kind = kind;
    op.layer = layer;
    op.m = m;
    op.n = n;
    op.k = k;
    op.count = count;
    const double c = static_cast<double>(count);
    const double md = static_cast<double>(m), kd = static_cast<double>(k), nd = static_cast<double>(n);
    op.flops = 2 * c * md * kd * nd;
    op.bytes = p_ * c * (md * kd + kd * nd + md * nd);
    return op;
  }
  const Op& g_op(int id) const { return g_.op(id); }
  // An input an earlier op keeps already (the encoder's output, which every decoder layer's
  // cross-attention reads): this op keeps `bytes` less, and again only on another pipeline device.
  void shares_input(int id, double bytes) {
    g_.set_saved(id, std::max(0.0, g_.op(id).saved_bytes - bytes));
    g_.set_shared_input(id, bytes);
  }
  // Who keeps `source` already, for an op of `layer` that reads it: 0 nobody (this op keeps it), 1
  // an op of an earlier layer (kept again only on another pipeline device), 2 an op of this layer.
  int keeper_of(int source, int layer) {
    const auto [it, first] = keepers_.emplace(source, layer);
    if (first) return 0;
    const bool same = it->second == layer;
    it->second = layer;
    return same ? 2 : 1;
  }
  // An op whose input another op of its layer keeps (the same tensor read twice): it keeps
  // `bytes` less.
  void input_kept_nearby(int id, double bytes) { g_.set_saved(id, std::max(0.0, g_.op(id).saved_bytes - bytes)); }

  // A framework's own kernels for an op (TensorFlow 1.x's, GraphShape::tensorflow1; a loss's,
  // GraphShape::cross_entropy): `factor` times its bytes in `kernels` kernels forward, its gradient
  // `backward_bytes` times the forward's bytes in `backward_kernels` (0 kernels: no backward, as an
  // add to a constant).
  void framework_kernels(int id, double factor, int kernels, double backward_bytes, int backward_kernels) {
    g_.scale_bytes(id, factor, kernels);
    if (backward_kernels == 0) {
      g_.set_backward_factor(id, 0);
    } else {
      g_.set_backward_work(id, backward_bytes, backward_kernels);
    }
  }

  // TensorFlow 1.x (tensorflow1): an add's gradient passes to each input unchanged; the sum of the
  // two gradients of the tensor that forked into it (a block's input, read by the residual and its
  // branch), one AddN kernel of 3p an element, is charged here. `inputs`: the add's; `fork_share`:
  // the forked tensor's elements over the add's (an Evolved Transformer's branches widen their
  // input).
  void tf1_add(int id, std::size_t inputs, double fork_share = 1) {
    if (!tensorflow1) return;
    g_.set_backward_factor(id, 1);
    framework_kernels(id, 1, 1, 3.0 * fork_share / static_cast<double>(inputs + 1), 1);
  }

  // GPT-NeoX's glue (GraphShape::neox): a copy or add over `elements` at the compute precision that
  // the fused forms leave out, `fwd` bytes an element forward in `kernels` kernels and `bwd` bytes
  // an element backward in `bwd_kernels` (0: no backward: views and adds pass the gradient on). It
  // keeps nothing for the backward.
  int glue(const std::string& name, int layer, int in, double elements, double fwd, int kernels, double bwd, int bwd_kernels,
           bool tensor_split = true, double flops_per_element = 0) {
    const int id = elementwise(name, layer, {in}, elements, flops_per_element, OpKind::elementwise, 0, tensor_split, 1);
    saved(id, 0);
    framework_kernels(id, fwd / (2 * p_), kernels, bwd / fwd, bwd_kernels);
    return id;
  }

  Fusion fusion;
  bool training;
  bool eager;
  bool tensorflow1;
  bool fairseq;
  bool neox;
  bool largescale;
  bool neox_partition;
  I tensor;
  GraphShape::CrossEntropy cross_entropy;
  bool channels_last;
  I expert_group;

 private:
  OpGraph& g_;
  double p_;
  std::map<int, int> keepers_;  // a tensor read by several ops -> the layer of its latest keeper
};

struct Attention {
  I heads, kv_heads, head_dim;
};

// The share of an n x n causal score matrix counted: half (Kaplan et al. 2020's convention, the
// diagonal's half-row left out), or with a sliding window of W < n positions the band below the
// diagonal, W n - W^2 / 2 of n^2 pairs by the same convention (equal to a half at W = n).
double causal_fraction(I n, I window) {
  if (window <= 0 || window >= n) return 0.5;
  const double w = static_cast<double>(window), nd = static_cast<double>(n);
  return w / nd - w * w / (2 * nd * nd);
}

// Attention from the normed input `ln` to the output projection `out_name` (with its dropout
// when nothing is fused); returns that op.
int attention_core(Emitter& e, const TransformerDesign& d, const std::string& prefix, const std::string& out_name,
                   int layer, int ln, int kv_source, I batch, I q_len, I kv_len, bool causal, bool causal_skip, I window = 0,
                   bool input_kept = false) {
  const Attention a{d.heads, d.kv_heads > 0 ? d.kv_heads : d.heads, d.head_dim > 0 ? d.head_dim : d.d_model / d.heads};
  const I tq = batch * q_len, tkv = batch * kv_len;
  // A head's query and key width, and its value width (they differ under latent attention).
  I qk_dim = a.head_dim, v_dim = a.head_dim;
  int q, kv;
  const bool latent = d.kv_lora_rank > 0 && kv_source < 0;
  if (latent) {
    // Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434, Sec. 2.1): queries through a
    // latent of q_lora_rank (RMSNorm between the projections) or one projection; keys and values
    // up-projected from a normed latent of kv_lora_rank, beside one rotary key of rope_head_dim
    // for all heads; each head's query and key have head_dim + rope_head_dim channels.
    const I dr = d.rope_head_dim;
    v_dim = d.v_head_dim > 0 ? d.v_head_dim : a.head_dim;
    qk_dim = a.head_dim + dr;
    if (d.q_lora_rank > 0) {
      q = e.matmul(prefix + ".q_a", layer, ln, tq, d.d_model, d.q_lora_rank, d.biases);
      q = e.norm(prefix + ".q_norm", layer, q, tq, d.q_lora_rank, true);
      q = e.matmul(prefix + ".q_b", layer, q, tq, d.q_lora_rank, a.heads * qk_dim, d.biases);
    } else {
      q = e.matmul(prefix + ".q", layer, ln, tq, d.d_model, a.heads * qk_dim, d.biases);
    }
    kv = e.matmul(prefix + ".kv_a", layer, ln, tq, d.d_model, d.kv_lora_rank + dr, d.biases);
    e.saved(kv, 0);  // its input is the normed x the query's projection keeps (since session 34)
    kv = e.norm(prefix + ".kv_norm", layer, kv, tq, d.kv_lora_rank, true);
    kv = e.matmul(prefix + ".kv_b", layer, kv, tq, d.kv_lora_rank, a.heads * (a.head_dim + v_dim), d.biases);
    if (dr > 0) {
      // The heads' rotary query channels and the one shared rotary key: one read and one write.
      q = e.elementwise(prefix + ".rotary", layer, {q, kv}, static_cast<double>(tq * (a.heads + 1) * dr), 3,
                        OpKind::elementwise, 0, true, 1);
      e.saved(q, 0);
      kv = q;
    }
  } else if (kv_source < 0) {
    q = e.matmul(prefix + ".qkv", layer, ln, tq, d.d_model, (a.heads + 2 * a.kv_heads) * a.head_dim, d.biases);
    // GPT-NeoX: the product is F.linear with its bias (ColumnParallelLinear without skip_bias_add),
    // the add a pass of its own over the output (2p an element); backward, the three heads' gradients,
    // views of one tensor split along its last dimension, are assembled by a concatenation (autograd's
    // split backward: 2p an element again). Without biases there is no add, and the op, which carries
    // the concatenation as its backward, is left out with it (a lower bound; no shipped row).
    if (e.neox && d.biases) {
      const double elements = static_cast<double>(tq * (a.heads + 2 * a.kv_heads) * a.head_dim);
      q = e.glue(prefix + ".qkv_glue", layer, q, elements, 2 * e.dtype_bytes(), 1, 2 * e.dtype_bytes(), 1);
    }
    // LargeScale (GLM-130B): the same bias add (Megatron's ColumnParallelLinear, PyTorch 1.11) and
    // split gradient, and before the scores `query_layer.transpose(0, 1) / self.norm_factor` and
    // `key_layer... / (pb_relax_alpha if apply_pb_relax else 1.0)`: two divides, each reading and
    // writing its tensor (2p an element of Q and of K), and their gradients the same again. Counted
    // over Q, K and V: (2p (Q K V) + 2p (Q K)) forward, the same backward.
    if (e.largescale) {
      const double qkv = static_cast<double>(tq * (a.heads + 2 * a.kv_heads) * a.head_dim);
      const double qk = static_cast<double>(tq * (a.heads + a.kv_heads) * a.head_dim);
      const double per = 2 * e.dtype_bytes() * ((d.biases ? qkv : 0) + qk) / qkv;
      const double bwd = 2 * e.dtype_bytes() * (qkv + qk) / qkv;
      q = e.glue(prefix + ".qkv_glue", layer, q, qkv, per, d.biases ? 3 : 2, bwd, 3);
    }
    kv = q;
  } else {
    q = e.matmul(prefix + ".q", layer, ln, tq, d.d_model, a.heads * a.head_dim, d.biases);
    kv = e.matmul(prefix + ".kv", layer, kv_source, tkv, d.d_model, 2 * a.kv_heads * a.head_dim, d.biases);
    // The encoder's output, kept once for every decoder layer that reads it (since session 44, a
    // review: each layer's cross-attention had kept it again).
    const double enc_bytes = e.dtype_bytes() * static_cast<double>(tkv * d.d_model);
    const int keeper = e.keeper_of(kv_source, layer);
    if (keeper == 1) e.shares_input(kv, enc_bytes);
    if (keeper == 2) e.input_kept_nearby(kv, enc_bytes);  // the evolved cell's second attention to it
    // (Its query's input kept by another op of the layer: the evolved cell's first attention to the
    // encoder reads the normed input its wide self-attention keeps.)
    if (input_kept) e.input_kept_nearby(q, e.dtype_bytes() * static_cast<double>(tq * d.d_model));
  }
  if (d.position == TransformerDesign::Position::rotary && kv_source < 0 && !latent) {
    // A head's rotated channels, floored as GPT-NeoX's rotary_ndims = int(head_size x rotary_pct)
    // (the reader checks they are whole and even; since session 39, a review: the unfloored share).
    const double turned = std::floor(static_cast<double>(a.head_dim) * d.rotary_fraction + 1e-9);
    const double rotated = static_cast<double>(tq * (a.heads + a.kv_heads)) * turned;
    q = e.elementwise(prefix + ".rotary", layer, {q}, rotated, 3);
    // Autograd keeps only the cosines and sines (a sequence's worth, not an activation): the
    // rotated Q and K are kept by the attention that consumes them.
    e.saved(q, 0);
    // Eager: upcast to float32 (p in, 4 out), rotate (4, 4), cast back (4, p): 16 + 2p bytes an
    // element of Q and K in 3 kernels each (Meta's reference code; IBM's fms rotates through a
    // larger float32 temporary, so this is its lower bound).
    // (GPT-NeoX's rotary is its TorchScript apply_rotary_pos_emb, fused: one pass, as costed.)
    if (e.eager && !e.neox) e.chain(q, rotated * (16 + 2 * e.dtype_bytes()), 6, 0);
    // GPT-NeoX's partial rotary: the rotated channels are sliced off Q and K and joined back to the
    // rest by torch.cat (reads both parts, writes the whole: 2p an element of Q and K, a kernel
    // each). Backward, each of the two slices of Q (and of K) returns a whole-size gradient, zeros
    // with its part copied in (p + 2p x its share), and autograd adds the two (3p): 7p an element
    // in 5 kernels each.
    if (e.neox && turned < static_cast<double>(a.head_dim)) {
      const double elements = static_cast<double>(tq * (a.heads + a.kv_heads) * a.head_dim);
      q = e.glue(prefix + ".rotary_rejoin", layer, q, elements, 2 * e.dtype_bytes(), 2, 7 * e.dtype_bytes(), 10);
    }
    kv = q;
  }
  const double fraction = causal && causal_skip ? causal_fraction(kv_len, window) : 1.0;
  const bool dropout = e.training && d.dropout > 0;
  // The probabilities' dropout, at its own rate where the design gives one (since session 47).
  const bool dropout_scores = e.training && (d.attention_dropout >= 0 ? d.attention_dropout : d.dropout) > 0;
  int ctx;
  if (e.fusion == Fusion::attention) {
    // GPT-NeoX's flash path: Q, K and V transposed to [b, s, heads, width] by reshapes that copy
    // (2p an element each) and packed into one [b s, 3, heads, width] tensor by torch.concat (2p):
    // 4p an element of the three in 4 kernels; backward the gradients are views of the packed one.
    if (e.neox && kv_source < 0 && !latent) {
      const double elements = static_cast<double>(tq * (a.heads + 2 * a.kv_heads) * a.head_dim);
      q = e.glue(prefix + ".flash_pack", layer, q, elements, 4 * e.dtype_bytes(), 4, 0, 0);
      kv = q;
    }
    // (A self-attention whose keys run past its queries is a context-parallel rank's: it keeps its
    // own positions' keys and values.)
    ctx = e.fused_attention(prefix + ".attention", layer, {q, kv}, batch * a.heads, batch * (latent ? a.heads : a.kv_heads),
                            q_len, kv_len, qk_dim, v_dim, fraction, kv_source < 0 && kv_len > q_len ? q_len : 0);
  } else {
    // TensorFlow 1.x's attention codes (tensor2tensor's split_heads and combine_heads, Google
    // BERT's transpose_for_scores) transpose the queries, keys and values to [batch, heads,
    // positions, width] for tf.matmul, and the context back: a kernel each, each read and written
    // once, the same again for the gradients (since session 48).
    int heads_in = q;
    if (e.tensorflow1) {
      const double moved = static_cast<double>(tq * a.heads * qk_dim + tkv * a.kv_heads * (qk_dim + v_dim));
      heads_in = e.elementwise(prefix + ".split_heads", layer, kv == q ? std::vector<int>{q} : std::vector<int>{q, kv}, moved, 0,
                               OpKind::elementwise, 0, true, 1);
      e.saved(heads_in, 0);
      e.framework_kernels(heads_in, 1, 3, 1, 3);
      kv = heads_in;
    }
    // fairseq scales the queries as they come out of their projection (`q *= self.scaling`), one
    // pass over them, not over the scores (since session 49).
    if (e.fairseq) {
      heads_in = e.elementwise(prefix + ".scale", layer, {q}, static_cast<double>(tq * a.heads * qk_dim), 1);
      e.saved(heads_in, 0);
    }
    const int scores = e.batched(prefix + ".scores", layer, {heads_in, kv}, batch * a.heads, q_len, qk_dim, kv_len, fraction);
    const double whole = static_cast<double>(batch * a.heads * q_len * kv_len);
    int probs = scores;
    if (e.fusion == Fusion::none) {
      // Unfused: scaling, masking, softmax and dropout each read and write the scores. The mask is
      // added to every score matrix: the causal one, or the padding mask that BERT's codes (Google's
      // modeling.py `attention_scores += adder`, Hugging Face's and NVIDIA's `+ attention_mask`) and
      // tensor2tensor (`logits += bias`) add to encoder and cross attention.
      // Neither the scaling nor the mask keeps anything for its backward (a constant factor, an add).
      if (!e.fairseq) {
        probs = e.scores(prefix + ".scale", layer, probs, whole, fraction, 1);
        e.saved(probs, 0);
      }
      // TensorFlow 1.x: the scaling's gradient is one multiply (2p an element, one kernel).
      if (e.tensorflow1) {
        e.backward_factor(probs, 1);
        e.framework_kernels(probs, 1, 1, 1, 1);
      }
      // (A ViT's attention, torchvision's, adds no mask: nothing to pad, nothing causal.)
      if (causal || d.padding_mask) {
        probs = e.scores(prefix + ".mask", layer, probs, whole, fraction, 1);
        e.saved(probs, 0);
        // TensorFlow 1.x: an add's gradient passes through; the mask's own is pruned (a constant).
        if (e.tensorflow1) e.framework_kernels(probs, 1, 1, 0, 0);
      }
      probs = e.scores(prefix + ".softmax", layer, probs, whole, fraction, 5, OpKind::softmax);
      // TensorFlow 1.x's GPU softmax is Eigen's (SoftmaxEigenImpl): a max over each row (p), the
      // shifted exp (p, p), a sum (p), the scaling (p, p): 6p bytes in four kernels; its gradient
      // (_SoftmaxGrad): grad x softmax (2p, p), a row sum (p), grad - sum (p, p), x softmax (2p, p):
      // 9p in four.
      if (e.tensorflow1) e.framework_kernels(probs, 3, 4, 1.5, 4);
      // fairseq: utils.softmax(x, dim=-1) is F.softmax(x, dtype=torch.float32) (p in, 4 out), then
      // .type_as back (4, p): 2p + 8 bytes an element in 2 kernels; backward, the cast's gradient
      // (p, 4) and the softmax's in fp32 (4 + 4 in, p out): 2p + 12 in 2; autograd keeps the fp32
      // probabilities, 4 B an element (since session 49). In fp32 there is nothing to cast: as none.
      if (e.fairseq && e.dtype_bytes() < 4) {
        const double pb = e.dtype_bytes();
        e.framework_kernels(probs, (2 * pb + 8) / (2 * pb), 2, (2 * pb + 12) / (2 * pb + 8), 2);
        e.saved(probs, e.op_saved(probs) * 4 / pb, e.op_score_saved(probs) * 4 / pb);
      }
      if (dropout_scores) probs = e.dropout_mask(e.scores(prefix + ".dropout", layer, probs, whole, fraction, 2), whole);
    } else if (e.fusion == Fusion::softmax) {
      // Scale, mask and softmax in one kernel; the attention's dropout reads and writes the
      // probabilities in a kernel of its own (Megatron-LM's CoreAttention: the fused
      // scale_mask_softmax, then attention_dropout).
      probs = e.scores(prefix + ".softmax", layer, scores, whole, fraction, 5, OpKind::softmax);
      if (dropout_scores) probs = e.dropout_mask(e.scores(prefix + ".dropout", layer, probs, whole, fraction, 2), whole);
    } else {
      probs = e.scores(prefix + ".softmax", layer, scores, whole, fraction, 5 + (dropout_scores ? 2 : 0), OpKind::softmax);
      // Its dropout, in the same kernel, keeps its one-byte mask beside the softmax's output, as
      // every dropout does (since session 35, from a review; before, a layer kept a s^2 b bytes
      // fewer, one a score).
      if (dropout_scores) e.saved(probs, e.op_saved(probs) + whole, e.op_score_saved(probs) + whole);
    }
    ctx = e.batched(prefix + ".context", layer, {probs, kv}, batch * a.heads, q_len, kv_len, v_dim, fraction, true);
    // Without a dropout between them, the probabilities PV keeps are the softmax's output, which the
    // softmax keeps already: PV adds only V.
    // (fairseq's fp32 softmax keeps its own output; PV keeps the cast-back copy: both kept.)
    if (!dropout_scores && !(e.fairseq && e.dtype_bytes() < 4)) e.saved(ctx, e.op_saved(ctx) - e.op_score_saved(ctx), 0);
    if (e.tensorflow1) {
      ctx = e.elementwise(prefix + ".merge_heads", layer, {ctx}, static_cast<double>(tq * a.heads * v_dim), 0);
      e.saved(ctx, 0);
      e.framework_kernels(ctx, 1, 1, 1, 1);
    }
  }
  // GPT-NeoX: the context, [b, heads, s, width] as the attention returns it, is permuted to
  // [s, b, heads, width] and made contiguous (2p an element); backward, its gradient is reshaped
  // through a view that cannot alias it (2p again).
  // (Without FlashAttention the context comes from a bmm as Megatron's, whose gradient's view
  // merges batch and heads: no copy backward, as under largescale below.)
  if (e.neox) {
    const bool flash = e.fusion == Fusion::attention;
    ctx = e.glue(prefix + ".out_permute", layer, ctx, static_cast<double>(tq * a.heads * v_dim), 2 * e.dtype_bytes(), 1,
                 flash ? 2 * e.dtype_bytes() : 0, flash ? 1 : 0);
  }
  // LargeScale (Megatron's CoreAttention): `context_layer.permute(2, 0, 1, 3).contiguous()` (2p an
  // element); its gradient's view back to [b heads, s, width] merges the batch and the heads, whose
  // strides allow it: no copy backward.
  if (e.largescale && kv_source < 0 && !latent) {
    ctx = e.glue(prefix + ".out_permute", layer, ctx, static_cast<double>(tq * a.heads * v_dim), 2 * e.dtype_bytes(), 1, 0, 0);
  }
  int out = e.matmul(out_name, layer, ctx, tq, a.heads * v_dim, d.d_model, d.biases);
  // Its input is the fused attention's output, which that op already keeps.
  // (GPT-NeoX's product reads the permuted copy, which it keeps.)
  if (e.fusion == Fusion::attention && !e.neox && !e.largescale) e.saved(out, 0);
  if (dropout && e.fusion == Fusion::none) {
    out = e.dropout_mask(e.wide_dropout(e.elementwise(prefix + ".out_dropout", layer, {out}, static_cast<double>(tq * d.d_model), 2, OpKind::elementwise, 0, false),
                                        static_cast<double>(tq * d.d_model)),
                         static_cast<double>(tq * d.d_model));
  }
  return out;
}

// An embedding's dropout: fused, it rides on the op before it (a BERT's norm, a ViT's position add),
// which keeps its mask (for dropout_masks, session 31), one byte an element beside what it keeps
// already (since session 43, a review: the mask had not been counted); unfused, a kernel of its own.
int embedding_dropout(Emitter& e, const std::string& name, int x, double elements) {
  if (e.fusion != Fusion::none) {
    e.wide_dropout(x, elements);
    e.saved(x, e.op_saved(x) + elements);
    return x;
  }
  return e.dropout_mask(e.wide_dropout(e.elementwise(name, -1, {x}, elements, 2, OpKind::elementwise, 0, false), elements), elements);
}

// Self- or cross-attention block; returns the op after the residual add.
int attention(Emitter& e, const TransformerDesign& d, const std::string& prefix, int layer, int x, int kv_source,
              I batch, I q_len, I kv_len, bool causal, bool causal_skip, I window = 0) {
  const I tq = batch * q_len;
  const int ln = e.norm(prefix + ".norm", layer, x, tq, d.d_model, d.rms_norm);
  int out = attention_core(e, d, prefix, prefix + ".out", layer, ln, kv_source, batch, q_len, kv_len, causal, causal_skip,
                           window);
  // GPT-NeoX's bias_dropout_add unfused: the output's bias added in a pass of its own (2p an element).
  if (e.neox && d.biases) out = e.glue(prefix + ".bias_add", layer, out, static_cast<double>(tq * d.d_model), 2 * e.dtype_bytes(), 1, 0, 0, false);
  // LargeScale's DeepNorm: `residual * self.deepnorm_coeff.alpha` before the add, a multiply of its
  // own (2p an element, the same backward).
  if (e.largescale && d.deepnorm) x = e.glue(prefix + ".alpha", layer, x, static_cast<double>(tq * d.d_model), 2 * e.dtype_bytes(), 1, 2 * e.dtype_bytes(), 1, false);
  const bool dropout = e.training && d.dropout > 0;
  return e.residual(prefix + ".residual", layer, {x, out}, static_cast<double>(tq * d.d_model), dropout && e.fusion != Fusion::none);
}

// Residual add closing a sub-block, with its dropout (a kernel of its own when nothing is fused).
int close_block(Emitter& e, const TransformerDesign& d, const std::string& name, int layer, int x, int y, I tokens) {
  // GPT-NeoX's bias_dropout_add unfused: the output's bias added in a pass of its own (2p an element).
  if (e.neox && d.biases) y = e.glue(name + ".bias_add", layer, y, static_cast<double>(tokens * d.d_model), 2 * e.dtype_bytes(), 1, 0, 0, false);
  // LargeScale's DeepNorm scaling of the residual (as in `attention`).
  if (e.largescale && d.deepnorm) x = e.glue(name + ".alpha", layer, x, static_cast<double>(tokens * d.d_model), 2 * e.dtype_bytes(), 1, 2 * e.dtype_bytes(), 1, false);
  const bool dropout = e.training && d.dropout > 0;
  if (dropout && e.fusion == Fusion::none) {
    y = e.dropout_mask(e.wide_dropout(e.elementwise(name + ".dropout", layer, {y}, static_cast<double>(tokens * d.d_model), 2, OpKind::elementwise, 0, false),
                                      static_cast<double>(tokens * d.d_model)),
                       static_cast<double>(tokens * d.d_model));
  }
  return e.residual(name + ".residual", layer, {x, y}, static_cast<double>(tokens * d.d_model), dropout && e.fusion != Fusion::none);
}

// The feed-forward activation over `elements` of the up projection's output `up`: GELU/ReLU, or a
// gated unit that reads both halves. A fused gated activation keeps its input, the gate and up
// halves: 2p an element. Eager: act(gate) (p, p), then * up (2p, p): 5p bytes an element in 2
// kernels; autograd keeps the gate, its activation and up: 3p an element.
int ffn_activation(Emitter& e, const TransformerDesign& d, const std::string& name, int layer, int up, double elements) {
  const int act = e.elementwise(name, layer, {up}, elements, d.gated_ffn ? 9 : 8, OpKind::elementwise, 0, true,
                                d.gated_ffn ? 2 : 1);
  if (d.gated_ffn) e.saved(act, 2 * e.dtype_bytes() * elements);
  if (e.eager && d.gated_ffn) e.chain(act, elements * 5 * e.dtype_bytes(), 2, elements * 3 * e.dtype_bytes());
  if (e.fairseq && !d.gated_ffn) {
    // fairseq's gelu: F.gelu(x.float()).type_as(x): the cast (p, 4), the GELU (4, 4), the cast back
    // (4, p), 2p + 16 bytes an element in 3 kernels, the fp32 input kept (4 B); backward the casts'
    // gradients and the GELU's in fp32 (p + 4, 12, 4 + p): 2p + 20 in 3 (since session 49; the erf
    // formula of fairseq's gelu before PyTorch 1.2 ran more kernels: a lower bound for it). In
    // fp32, .float() and .type_as return the tensor itself: as none.
    const double pb = e.dtype_bytes();
    if (pb < 4) {
      e.chain(act, elements * (2 * pb + 16), 3, elements * 4);
      e.framework_kernels(act, 1, 3, (2 * pb + 20) / (2 * pb + 16), 3);
    }
  }
  return act;
}

// A dense feed-forward of hidden width `width` from the normed input `in`: `name`.up, `name`.act and
// `name`.down; returns the down projection.
// `input_kept`: another op keeps `in` already (the attention's projection in a parallel block, the
// router beside shared experts), so the up projection adds nothing for its weight gradient: autograd
// holds one tensor once (since session 34; before, counted twice).
int dense_ffn(Emitter& e, const TransformerDesign& d, const std::string& name, int layer, int in, I tokens, I width,
              bool input_kept = false) {
  int up = e.matmul(name + ".up", layer, in, tokens, d.d_model, d.gated_ffn ? 2 * width : width, d.biases);
  if (d.bias_in_activation) e.bias_in_activation(up);
  // LargeScale (GLM-130B's `--no-bias-gelu-fusion`): `self.activation_func(intermediate_parallel +
  // bias_parallel)`, the up projection's bias added in a pass of its own (2p an element); its
  // gradient passes on (the bias's own reduction is the product's).
  if (e.largescale && d.biases) {
    up = e.glue(name + ".up_bias", layer, up, static_cast<double>(tokens * (d.gated_ffn ? 2 * width : width)), 2 * e.dtype_bytes(), 1, 0, 0);
  }
  if (input_kept) e.saved(up, 0);
  const int act = ffn_activation(e, d, name + ".act", layer, up, static_cast<double>(tokens * width));
  return e.matmul(name + ".down", layer, act, tokens, width, d.d_model, d.biases);
}

int feed_forward(Emitter& e, const TransformerDesign& d, const std::string& prefix, int layer, int x, I tokens,
                 bool moe) {
  const int ln = e.norm(prefix + ".norm", layer, x, tokens, d.d_model, d.rms_norm);
  int down;
  if (!moe) {
    down = dense_ffn(e, d, prefix, layer, ln, tokens, d.d_ff);
  } else {
    // Each token goes to top_k experts; capacity_factor pads every expert's buffer.
    const I E = d.experts;
    const I fe = d.expert_d_ff > 0 ? d.expert_d_ff : d.d_ff;  // an expert's hidden width
    const I e_up = d.gated_ffn ? 2 * fe : fe;
    const int route = e.matmul(prefix + ".router", layer, ln, tokens, d.d_model, E, false, false, OpKind::router);
    const double routed = static_cast<double>(tokens) * static_cast<double>(d.top_k) * d.capacity_factor;
    // Expert parallelism over G devices: this device holds E / G experts, and each receives the
    // slots routed to it from the G devices' microbatches (at least one).
    const I G = std::min(e.expert_group, E);
    require(E % G == 0, "the experts (" + std::to_string(E) + ") must be a multiple of the expert-parallel group (" +
                            std::to_string(G) + ")");
    // One-hot einsum dispatch computes every local expert's buffer; gathering dispatch (by index)
    // runs only the experts that receive tokens: of E, the group's tokens x G picks of top_k
    // distinct experts each reach E (1 - (1 - top_k / E)^(tokens x G)) on average under uniform
    // routing, 1 / G of them here (a decoded token with top-2 of 8 experts: 2, not 8).
    I local = E / G;
    if (!d.einsum_dispatch) {
      const double picks = static_cast<double>(tokens) * static_cast<double>(G);
      const double hit = 1 - std::pow(1 - static_cast<double>(d.top_k) / static_cast<double>(E), picks);
      local = std::clamp<I>(static_cast<I>(static_cast<double>(local) * hit + 0.5), 1, local);
    }
    // This device's experts receive its share of the group's slots, `routed` (E / G of E experts
    // take routed x G x (1 / G) of them), spread over those that run (at least one slot each),
    // rounded up: every routed slot is computed (since session 39, a review; rounded to the nearest
    // before, which dropped up to a third of a small batch's slots, a decode step's).
    I per_expert = std::max<I>(1, static_cast<I>(std::ceil(routed / static_cast<double>(local) - 1e-9)));
    const double up_params = static_cast<double>(E) * (static_cast<double>(d.d_model * e_up) + (d.biases ? static_cast<double>(e_up) : 0));
    const double down_params = static_cast<double>(E) * (static_cast<double>(fe * d.d_model) + (d.biases ? static_cast<double>(d.d_model) : 0));
    // One-hot einsum dispatch: per group of S tokens, dispatch [E C x S] x [S x M] and combine
    // [S x E C] x [E C x M], E C = top_k x capacity_factor x S slots (at least one an expert).
    I groups = 0, group = 0, slots = 0;
    int into_experts = route;
    if (d.einsum_dispatch) {
      group = d.group_size > 0 ? std::min(d.group_size, tokens) : tokens;
      groups = (tokens + group - 1) / group;
      // Each expert's capacity in a group: top_k x capacity_factor x S / E slots (GShard's 2N / E
      // for top-2), whole and at most the group (Mesh TensorFlow's moe.py: min(S, int(S cf / E))),
      // then at least min_capacity (its moe_min_expert_capacity, applied after the cap). Every
      // expert computes all its slots, filled or padded: the expert GEMMs run the group's E C
      // slots from each of the G devices' groups, C x groups x G an expert here.
      const double c = static_cast<double>(d.top_k) * d.capacity_factor * static_cast<double>(group) / static_cast<double>(E);
      const I capacity = std::max(d.min_capacity, std::min(group, static_cast<I>(std::floor(c + 1e-9))));
      slots = E * capacity;
      per_expert = capacity * groups * G;
      into_experts = e.matmul(prefix + ".dispatch", layer, route, slots, group, d.d_model, false, false,
                              OpKind::batched_matmul, false, groups, 0);
      // The one-hot mask has no gradient: the backward is the tokens' gradient alone. The dispatch
      // and the combine are the implementation's work (a gather does it for free), as the one-hot
      // embedding is: costed, not MFU's model FLOPs (since session 30).
      e.backward_factor(into_experts, 1);
      e.model_share(into_experts, 0);
    }
    // Gathering dispatch in training: the received tokens are copied into the experts' contiguous
    // slots before the grouped products and the products' rows copied back, each scaled by its
    // routing weight, after them (Megatron-Core's permute and unpermute(..., probs) around the
    // grouped GEMM, DeepGEMM's contiguous layout; since session 49, a review: taken as free): each
    // reads the device's tokens and writes its slots or the reverse, p (tokens + slots) d bytes,
    // and so do their gradients (the combine's reads the slots' outputs again for the weights'
    // gradient). What that gradient reads is not counted as kept: Megatron-Core's unpermute keeps
    // the slots' outputs for it, a code that folds the weights into the down projection's input
    // (which that projection keeps) nothing more [assumed: the second]. A serving kernel (vLLM's
    // fused_moe) gathers its rows inside the product: not there.
    const double slot_rows = static_cast<double>(per_expert * local), token_rows = static_cast<double>(tokens);
    const double dm = static_cast<double>(d.d_model);
    const bool permuted = e.training && !d.einsum_dispatch;
    if (permuted) {
      into_experts = e.elementwise(prefix + ".experts.permute", layer, {into_experts}, slot_rows * dm, 0, OpKind::elementwise, 0, true, 1);
      e.chain(into_experts, e.dtype_bytes() * dm * (token_rows + slot_rows), 1, 0);
      e.backward_factor(into_experts, 1);
    }
    const int up = e.matmul(prefix + ".experts.up", layer, into_experts, per_expert, d.d_model, e_up, d.biases, false,
                            OpKind::matmul, true, local, up_params);
    e.dispatched_rows(up, token_rows);
    const int act = ffn_activation(e, d, prefix + ".experts.act", layer, up, static_cast<double>(per_expert * local * fe));
    down = e.matmul(prefix + ".experts.down", layer, act, per_expert, fe, d.d_model, d.biases, false,
                    OpKind::matmul, true, local, down_params);
    const int expert_down = down;
    if (permuted) {
      // (Its multiply-adds by the routing weights, two FLOPs a slot's value, are left out: a
      // memory-bound copy, as the dispatch is the implementation's.)
      down = e.elementwise(prefix + ".experts.unpermute", layer, {down}, slot_rows * dm, 0, OpKind::elementwise, 0, true, 1);
      e.chain(down, e.dtype_bytes() * dm * (token_rows + slot_rows), 1, 0);
      e.framework_kernels(down, 1, 1, (2 * slot_rows + token_rows) / (slot_rows + token_rows), 2);
    }
    // The slots beyond the tokens' top_k choices are padding: costed, not the model's FLOPs, the
    // capacity factor's headroom too (since session 42, a review: tokens x top_k x capacity_factor
    // had counted as the model's, so MFU grew with the padding), and under a gather, where the
    // whole slots an expert runs round its share of them (since session 34).
    const double chosen = static_cast<double>(tokens) * static_cast<double>(d.top_k);
    const double share = std::min(1.0, chosen / (static_cast<double>(per_expert) * static_cast<double>(local)));
    for (const int id : {up, act, expert_down}) e.model_share(id, share);
    if (d.einsum_dispatch) {
      down = e.matmul(prefix + ".combine", layer, down, group, slots, d.d_model, false, false, OpKind::batched_matmul, false,
                      groups, 0);
      e.model_share(down, 0);
    }
    if (d.shared_experts > 0) {
      // Shared experts run every token, as one dense FFN of shared_experts x fe (held whole on every
      // device, like the dense layers), summed with the routed experts' output.
      const int sdown = dense_ffn(e, d, prefix + ".shared", layer, ln, tokens, d.shared_experts * fe, true);
      down = e.elementwise(prefix + ".shared.add", layer, {down, sdown}, static_cast<double>(tokens * d.d_model), 1,
                           OpKind::elementwise, 0, false);
      e.saved(down, 0);  // an add keeps nothing for its backward
      e.tf1_add(down, 2);
    }
  }
  return close_block(e, d, prefix, layer, x, down, tokens);
}

// A parallel decoder layer (GPT-J, PaLM Sec. 2, Falcon): y = x + attention(norm(x)) + ffn(norm(x)),
// one norm and one residual add for both branches. The attention's output projection is named
// `.attn.o`, not `.out`: the branches' partial sums are added before the layer's one tensor-parallel
// all-reduce, which closes the layer at `.ffn.down`.
int parallel_layer(Emitter& e, const TransformerDesign& d, const std::string& p, int layer, int x, I batch, I seq,
                   I kv_len, bool causal_skip, I window) {
  const I tokens = batch * seq;
  const int ln = e.norm(p + ".norm", layer, x, tokens, d.d_model, d.rms_norm);
  int attn = attention_core(e, d, p + ".attn", p + ".attn.o", layer, ln, -1, batch, seq, kv_len, true, causal_skip, window);
  // Two norms (GPT-NeoX, Falcon-40B/180B): the feed-forward reads a norm of its own.
  // With one norm the feed-forward's up projection reads the input the attention's projection keeps;
  // with two, the second norm reads the x the first keeps: each tensor kept once (since session 34).
  const int ffn_in = d.parallel_norms > 1 ? e.norm(p + ".ffn_norm", layer, x, tokens, d.d_model, d.rms_norm) : ln;
  if (d.parallel_norms > 1) e.saved(ffn_in, 0);
  int down = dense_ffn(e, d, p + ".ffn", layer, ffn_in, tokens, d.d_ff, d.parallel_norms <= 1);
  const bool dropout = e.training && d.dropout > 0;
  const double width = static_cast<double>(tokens * d.d_model);
  if (dropout && e.fusion == Fusion::none) {
    down = e.dropout_mask(e.wide_dropout(e.elementwise(p + ".ffn.dropout", layer, {down}, width, 2, OpKind::elementwise, 0, false), width), width);
  }
  // GPT-NeoX's gpt_j_residual (bias_dropout_fusion off by default, a dropout of 0 no kernel): attention
  // + its bias, feed-forward + its bias, their sum, then x + the sum: 10p an element in 4 kernels
  // where the add below costs 4p; the 6p more in 3 kernels (2p without biases, in 1). Backward the
  // adds pass the gradient on.
  if (e.neox) {
    attn = e.glue(p + ".bias_adds", layer, attn, width, (d.biases ? 6 : 2) * e.dtype_bytes(), d.biases ? 3 : 1, 0, 0, false);
  }
  // LargeScale's DeepNorm scaling of the residual, once for the block.
  if (e.largescale && d.deepnorm) x = e.glue(p + ".alpha", layer, x, width, 2 * e.dtype_bytes(), 1, 2 * e.dtype_bytes(), 1, false);
  // x + attention + feed-forward: three reads, one write; fused, with the two branches' dropouts
  // (GPT-NeoX's pair of bias_dropout_fn calls, as unfused above): two masks kept (session 31).
  const bool fused = dropout && e.fusion != Fusion::none;
  const int id = e.residual(p + ".residual", layer, {x, attn, down}, width, fused);
  if (fused) {
    e.saved(id, 2 * width);
    e.wide_dropout(id, 2 * width);
  }
  return id;
}

// --- Evolved Transformer cells ---------------------------------------------------------
// So et al. 2019 (arXiv:1901.11117), as the authors' tensor2tensor implements them
// (models/evolved_transformer.py): each sub-block is pre-normed and closed by a residual add;
// widths are multiples of d_model (the FFN's is d_ff). Separable convolutions are a depthwise
// pass (taps multiply-adds a channel, a memory-bound kernel) and a pointwise GEMM; a k-tap
// convolution is a GEMM over k x the input width. The matmul that closes a sub-block is named
// `.out` (tensor parallelism all-reduces it, as Megatron does each sub-block's output).

// A branch's activation (and its dropout when nothing is fused) over `width` channels.
int activate(Emitter& e, const TransformerDesign& d, const std::string& name, int layer, int y, I tokens, I width,
             double flops) {
  y = e.elementwise(name + ".act", layer, {y}, static_cast<double>(tokens * width), flops);
  if (e.training && d.dropout > 0 && e.fusion == Fusion::none) {
    y = e.dropout_mask(e.elementwise(name + ".dropout", layer, {y}, static_cast<double>(tokens * width), 2), static_cast<double>(tokens * width));
  }
  return y;
}

// A norm inside a branch, over a width that tensor parallelism splits.
int inner_norm(Emitter& e, const TransformerDesign& d, const std::string& name, int layer, int x, I tokens, I width) {
  const double elements = static_cast<double>(tokens * width);
  return e.elementwise(name, layer, {x}, elements, d.rms_norm ? 5 : 8, OpKind::norm,
                       static_cast<double>(width) * (d.rms_norm ? 1 : 2), true);
}

// Separable convolution `name`: `taps` per channel over `in_width` (`name`.depthwise), then the
// pointwise GEMM in_width -> out_width (`pointwise`).
int separable(Emitter& e, const TransformerDesign& d, const std::string& name, const std::string& pointwise, int layer,
              int x, I tokens, I in_width, I out_width, I taps, bool input_kept = false) {
  const int dw = e.elementwise(name + ".depthwise", layer, {x}, static_cast<double>(tokens * in_width),
                               2.0 * static_cast<double>(taps), OpKind::elementwise, static_cast<double>(taps * in_width), true);
  if (input_kept) e.saved(dw, 0);  // its input kept by another op of the layer
  return e.matmul(pointwise, layer, dw, tokens, in_width, out_width, d.biases);
}

// The cells' dense block: d -> d_ff, activation (ReLU in the encoder, swish in the decoder, whose
// block also norms over d_ff), d_ff -> d.
int evolved_dense(Emitter& e, const TransformerDesign& d, const std::string& p, int layer, int x, I t, double act_flops,
                  bool hidden_norm) {
  int h = e.norm(p + ".norm", layer, x, t, d.d_model, d.rms_norm);
  h = e.matmul(p + ".up", layer, h, t, d.d_model, d.d_ff, d.biases);
  h = activate(e, d, p + ".hidden", layer, h, t, d.d_ff, act_flops);
  if (hidden_norm) h = inner_norm(e, d, p + ".norm2", layer, h, t, d.d_ff);
  h = e.matmul(p + ".down", layer, h, t, d.d_ff, d.d_model, d.biases);
  return close_block(e, d, p, layer, x, h, t);
}

// tensor2tensor's attention projections carry no biases, whatever the cell's dense layers do.
TransformerDesign evolved_attention(const TransformerDesign& d) {
  TransformerDesign a = d;
  a.biases = false;
  return a;
}

int evolved_encoder_cell(Emitter& e, const TransformerDesign& d, const std::string& p, int layer, int x, I b, I s,
                         bool causal_skip) {
  const I t = b * s, w = d.d_model;
  // Gated linear unit: values x sigmoid(gates), both d -> d.
  int n = e.norm(p + ".glu.norm", layer, x, t, w, d.rms_norm);
  const int gates = e.matmul(p + ".glu.gates", layer, n, t, w, w, d.biases);
  const int values = e.matmul(p + ".glu.out", layer, n, t, w, w, d.biases);
  const int glu = e.elementwise(p + ".glu.gate", layer, {gates, values}, static_cast<double>(t * w), 5);
  x = close_block(e, d, p + ".glu", layer, x, glu, t);
  // Convolution branches: dense d -> 4d (ReLU) beside a 3x1 convolution d -> d/2 (ReLU), added,
  // normed over 4d, then a separable 9x1 convolution 4d -> d/2. The padding is masked out first.
  n = e.norm(p + ".conv.norm", layer, x, t, w, d.rms_norm);
  // (Since session 44, from a review, what autograd keeps, each tensor once: the masks keep only
  // their per-position mask, the add nothing, and the 3x1 convolution reads and keeps its input
  // once, as an implicit GEMM does, which the dense branch keeps already; an encoder layer had kept
  // 52.5 units of b s d where a hand count gives 40.5.)
  n = e.elementwise(p + ".conv.mask", layer, {n}, static_cast<double>(t * w), 1, OpKind::elementwise, 0, true, 2);
  e.saved(n, 0);
  int left = e.matmul(p + ".conv.left", layer, n, t, w, 4 * w, d.biases);
  left = activate(e, d, p + ".conv.left", layer, left, t, 4 * w, 1);
  int right = e.matmul(p + ".conv.right_3x1", layer, n, t, 3 * w, w / 2, d.biases);
  e.chain(right, e.g_op(right).bytes - e.dtype_bytes() * static_cast<double>(t * 2 * w), 1, 0);
  right = activate(e, d, p + ".conv.right_3x1", layer, right, t, w / 2, 1);
  int sum = e.elementwise(p + ".conv.add", layer, {left, right}, static_cast<double>(t * 4 * w), 1);
  e.saved(sum, 0);
  e.tf1_add(sum, 2, 0.25);  // the branches fork from the d_model-wide norm
  sum = inner_norm(e, d, p + ".conv.norm2", layer, sum, t, 4 * w);
  sum = e.elementwise(p + ".conv.mask2", layer, {sum}, static_cast<double>(t * 4 * w), 1, OpKind::elementwise, 0, true, 2);
  e.saved(sum, 0);
  const int conv = separable(e, d, p + ".conv.sep_9x1", p + ".conv.out", layer, sum, t, 4 * w, w / 2, 9);
  x = close_block(e, d, p + ".conv", layer, x, conv, t);
  // Self-attention, then the dense block with ReLU.
  x = attention(e, evolved_attention(d), p + ".attn", layer, x, -1, b, s, s, false, causal_skip);
  return evolved_dense(e, d, p + ".ffn", layer, x, t, 1, false);
}

int evolved_decoder_cell(Emitter& e, const TransformerDesign& d, const std::string& p, int layer, int x, int enc_out, I b,
                         I s_dec, I s_enc, bool causal_skip) {
  const I t = b * s_dec, w = d.d_model;
  const TransformerDesign att = evolved_attention(d);
  // Self-attention with twice the heads (at most 16, at least the design's: tensor2tensor's
  // _capped_double_heads) beside the first attention to the encoder, both from one normed input;
  // their outputs and the residual are summed (under tensor parallelism the two partial outputs
  // add before one all-reduce, so only the first projection is named `.out`). The key and value
  // channels stay d_model: the heads are narrower.
  TransformerDesign wide = att;
  const I doubled = std::max<I>(std::min<I>(2 * d.heads, 16), d.heads);
  if (d.d_model % doubled == 0) {
    wide.heads = doubled;
    wide.kv_heads = doubled;
    wide.head_dim = 0;
  }
  const int n0 = e.norm(p + ".top.norm", layer, x, t, w, d.rms_norm);
  const int self16 = attention_core(e, wide, p + ".attn16", p + ".attn16.out", layer, n0, -1, b, s_dec, s_dec, true, causal_skip);
  if (enc_out >= 0) {
    const int cross = attention_core(e, att, p + ".cross1", p + ".cross1.proj", layer, n0, enc_out, b, s_dec, s_enc, false, causal_skip,
                                     0, true);
    const bool dropout = e.training && d.dropout > 0;
    x = e.elementwise(p + ".top.residual", layer, {x, self16, cross}, static_cast<double>(t * w),
                      dropout && e.fusion != Fusion::none ? 5 : 2, OpKind::elementwise, 0, false);
    // As every residual add: nothing kept but the fused dropouts' masks (one byte an element each).
    e.saved(x, dropout && e.fusion != Fusion::none ? 2.0 * static_cast<double>(t * w) : 0);
    e.tf1_add(x, 3, 2);  // x's fork and the norm's: n0 feeds both attentions
    if (dropout && e.fusion != Fusion::none) e.wide_dropout(x, 2.0 * static_cast<double>(t * w));
  } else {
    x = close_block(e, d, p + ".top", layer, x, self16, t);
  }
  // Convolution branches (causal): separable 11x1 d -> 2d (ReLU) beside separable 7x1 d -> d/2,
  // added, normed over 2d, then separable 7x1 2d -> d.
  const int n = e.norm(p + ".conv.norm", layer, x, t, w, d.rms_norm);
  int left = separable(e, d, p + ".conv.left_11x1", p + ".conv.left_11x1.pointwise", layer, n, t, w, 2 * w, 11);
  left = activate(e, d, p + ".conv.left_11x1", layer, left, t, 2 * w, 1);
  int right = separable(e, d, p + ".conv.right_7x1", p + ".conv.right_7x1.pointwise", layer, n, t, w, w / 2, 7, true);
  if (e.training && d.dropout > 0 && e.fusion == Fusion::none) {
    right = e.dropout_mask(e.elementwise(p + ".conv.right_7x1.dropout", layer, {right}, static_cast<double>(t * (w / 2)), 2),
                           static_cast<double>(t * (w / 2)));
  }
  int sum = e.elementwise(p + ".conv.add", layer, {left, right}, static_cast<double>(t * 2 * w), 1);
  e.saved(sum, 0);  // an add keeps nothing (since session 44)
  e.tf1_add(sum, 2, 0.5);  // the branches fork from the d_model-wide norm
  sum = inner_norm(e, d, p + ".conv.norm2", layer, sum, t, 2 * w);
  const int conv = separable(e, d, p + ".conv.sep_7x1", p + ".conv.out", layer, sum, t, 2 * w, w, 7);
  x = close_block(e, d, p + ".conv", layer, x, conv, t);
  // Self-attention, the second attention to the encoder, and the dense block with swish.
  x = attention(e, att, p + ".attn", layer, x, -1, b, s_dec, s_dec, true, causal_skip);
  if (enc_out >= 0) x = attention(e, att, p + ".cross2", layer, x, enc_out, b, s_dec, s_enc, false, causal_skip);
  return evolved_dense(e, d, p + ".ffn", layer, x, t, 5, true);
}

bool moe_layer(const TransformerDesign& d, I index) {
  if (d.experts == 0 || index < d.dense_layers) return false;
  return ((index - d.dense_layers) % d.moe_every) == d.moe_every - 1;
}

void build_transformer(OpGraph& g, const TransformerDesign& d, const GraphShape& shape) {
  require(d.d_model > 0 && d.heads > 0 && d.d_ff > 0 && (d.vocab > 0 || d.image > 0) && d.seq_len > 0,
          "a transformer needs d_model, heads, d_ff, vocab (or an image) and seq_len > 0");
  require(d.image == 0 || (d.arch == TransformerDesign::Arch::encoder && d.patch > 0 && d.image % d.patch == 0 &&
                           d.seq_len == (d.image / d.patch) * (d.image / d.patch) + 1 && d.classes > 0),
          "a vision transformer is an encoder over (image / patch)^2 patches and a class token, with classes");
  require(d.head_dim > 0 || d.d_model % d.heads == 0, "heads must divide d_model unless head_dim is given");
  const I kv = d.kv_heads > 0 ? d.kv_heads : d.heads;
  require(d.heads % kv == 0, "kv_heads must divide heads");
  require(d.experts == 0 || (d.top_k >= 1 && d.top_k <= d.experts && d.moe_every >= 1 && d.capacity_factor > 0),
          "mixture of experts needs 1 <= top_k <= experts, moe_every >= 1, capacity_factor > 0");
  require(!d.evolved || (d.experts == 0 && !d.gated_ffn && d.arch != TransformerDesign::Arch::encoder),
          "the evolved cell is for dense, ungated decoders and encoder-decoders");
  require(!d.parallel_block || (d.arch == TransformerDesign::Arch::decoder && d.experts == 0 && !d.evolved),
          "a parallel block is for dense decoders");
  const bool enc = d.arch != TransformerDesign::Arch::decoder;
  const bool dec = d.arch != TransformerDesign::Arch::encoder;
  require(!enc || d.encoder_layers > 0, "an encoder needs encoder_layers > 0");
  require(!dec || d.decoder_layers > 0, "a decoder needs decoder_layers > 0");
  Emitter e(g, shape);
  const I b = shape.batch;
  const I s_enc = d.seq_len;
  const I s_dec = d.arch == TransformerDesign::Arch::encoder_decoder && d.target_seq_len > 0 ? d.target_seq_len : d.seq_len;
  const double vocab_params = static_cast<double>(d.vocab * d.d_model);
  // The decoder's vocabulary: an encoder-decoder's own target vocabulary where it has one (its
  // table read by the decoder and, tied, by the head), else the one table of the model.
  const I out_vocab = d.arch == TransformerDesign::Arch::encoder_decoder && d.target_vocab > 0 ? d.target_vocab : d.vocab;
  const bool learned = d.position == TransformerDesign::Position::learned;
  // Relative position biases (T5): 32 buckets per head, one table per stack.
  const double relative = d.position == TransformerDesign::Position::relative ? 32.0 * static_cast<double>(d.heads) : 0;
  int layer = 0;

  int enc_out = -1;
  if (enc && d.image > 0) {
    // ViT (Dosovitskiy et al. 2021; torchvision's VisionTransformer): each patch of P x P x C
    // pixels embedded by one product (the stride-P convolution, which reads each pixel once), the
    // class token and the learned positions added (an elementwise pass holding (s + 1) d
    // parameters: s position rows and the token), the encoder's layers with a norm before each
    // sub-block, a final norm over every token, and the classifier on the class token.
    const I patches = s_enc - 1;
    // The images, as a ResNet reads them (the batch an inference reorders between layouts).
    const int input = e.data_input("input", b * d.image * d.image, d.image_channels);
    int x = e.matmul("patch_embedding", -1, input, b * patches, d.patch * d.patch * d.image_channels, d.d_model, true);
    e.backward_factor(x, 1);  // the pixels take no gradient: the weight gradient alone, as a ResNet's stem
    x = e.elementwise("embedding.position", -1, {x}, static_cast<double>(b * s_enc * d.d_model), 1, OpKind::elementwise,
                      static_cast<double>((s_enc + 1) * d.d_model));
    e.saved(x, 0);  // an add keeps nothing; the first norm keeps its output (since session 44)
    if (e.training && d.dropout > 0) x = embedding_dropout(e, "embedding.dropout", x, static_cast<double>(b * s_enc * d.d_model));
    for (I i = 0; i < d.encoder_layers; ++i, ++layer) {
      const std::string p = "encoder." + std::to_string(i);
      x = attention(e, d, p + ".attn", layer, x, -1, b, s_enc, s_enc, false, shape.causal_skip);
      x = feed_forward(e, d, p + ".ffn", layer, x, b * s_enc, false);
    }
    const int n = e.norm("encoder.final_norm", layer - 1, x, b * s_enc, d.d_model, d.rms_norm);
    const int logits = e.matmul("head", -1, n, b, d.d_model, d.classes, true);
    e.loss("loss", logits, static_cast<double>(b * d.classes));
    return;
  }
  if (enc) {
    const double positions = (learned ? static_cast<double>(std::max(s_enc, d.max_positions) * d.d_model) : 0) +
                             static_cast<double>(d.type_vocab * d.d_model);
    int x = e.embedding("encoder.embedding", b * s_enc, d.d_model, vocab_params + positions + relative);
    e.replicated_params(x, positions);
    if (d.one_hot_embedding) x = e.one_hot_embedding("encoder.embedding.one_hot", x, b * s_enc, d.vocab, d.d_model);
    if (d.arch == TransformerDesign::Arch::encoder) {
      // BERT and RoBERTa normalise the summed embeddings (with their dropout) before layer 0.
      x = e.norm("encoder.embedding.norm", -1, x, b * s_enc, d.d_model, d.rms_norm);
      if (e.training && d.dropout > 0) x = embedding_dropout(e, "encoder.embedding.dropout", x, static_cast<double>(b * s_enc * d.d_model));
    } else if (e.training && d.dropout > 0) {
      // An encoder-decoder's stacks drop out their embeddings too (T5's `self.dropout(inputs_embeds)`,
      // tensor2tensor's layer_prepostprocess_dropout on the inputs; since session 39, a review).
      x = embedding_dropout(e, "encoder.embedding.dropout", x, static_cast<double>(b * s_enc * d.d_model));
    }
    for (I i = 0; i < d.encoder_layers; ++i, ++layer) {
      const std::string p = "encoder." + std::to_string(i);
      if (d.evolved) {
        x = evolved_encoder_cell(e, d, p, layer, x, b, s_enc, shape.causal_skip);
        continue;
      }
      x = attention(e, d, p + ".attn", layer, x, -1, b, s_enc, s_enc, false, shape.causal_skip);
      x = feed_forward(e, d, p + ".ffn", layer, x, b * s_enc, moe_layer(d, i));
    }
    if (d.arch == TransformerDesign::Arch::encoder_decoder) {
      enc_out = e.norm("encoder.final_norm", layer - 1, x, b * s_enc, d.d_model, d.rms_norm);
    } else {
      // BERT: pooler and masked-LM head (transform, norm, tied decoder with bias) over the
      // 15 % masked positions, or over every position where the code projects them all and the
      // loss ignores the unmasked (`mlm_positions: all`).
      if (d.pooler) {
        const int pooler = e.matmul("pooler", -1, x, b, d.d_model, d.d_model, true);
        if (d.bias_in_activation) e.bias_in_activation(pooler);
      }
      // Inference runs the encoder for its features (and pooler): the masked-LM head is the
      // pretraining task's (since session 46, a review: serving ran it over 15 % of the positions
      // and its loss, 7-10 % of a BERT-base request).
      if (!e.training) return;
      const I trained = std::max<I>(1, (b * s_enc * 15 + 50) / 100);
      const I masked = d.mlm_all_positions ? b * s_enc : trained;
      const double masked_logits = static_cast<double>(masked * d.vocab);
      const int transform = e.matmul("mlm.transform", -1, x, masked, d.d_model, d.d_model, true);
      if (d.bias_in_activation) e.bias_in_activation(transform);
      const int act = e.elementwise("mlm.act", -1, {transform}, static_cast<double>(masked * d.d_model), 8);
      const int n = e.norm("mlm.norm", -1, act, masked, d.d_model, d.rms_norm);
      const int product = e.matmul("mlm.logits", -1, n, masked, d.d_model, d.vocab, false, d.tied_embeddings);
      int logits = product;
      // The decoder's output bias, tied or not (BERT's `output_bias`, Hugging Face's
      // BertLMPredictionHead.bias, fairseq's RobertaLMHead.bias): a pass over the masked
      // positions' logits. Before session 36 an untied head had none.
      logits = e.elementwise("mlm.bias", -1, {logits}, masked_logits, 1, OpKind::elementwise, static_cast<double>(d.vocab));
      e.saved(logits, 0);  // a bias add needs no tensor for its backward (since session 43, a review)
      const int loss = e.loss("mlm.loss", logits, masked_logits);
      // Over every position, the head's work on the unmasked ones trains nothing: MFU counts the
      // masked positions' share, as it counts an expert's filled slots (since session 44, from a
      // review of session 43; before, all of it).
      if (d.mlm_all_positions) {
        for (const int id : {transform, act, n, product, logits, loss}) e.model_share(id, static_cast<double>(trained) / static_cast<double>(masked));
      }
      return;
    }
  }
  // Decoder stack (decoder-only, or the decoder of an encoder-decoder). Under context parallelism
  // (decoder-only) the device holds s / context of each sequence's positions, whose queries attend
  // to the keys and values of the whole sequence, gathered: the balanced chunks' causal share is
  // the whole matrix's over the ranks, half of (s / context) x s.
  const I s_all = s_dec;
  const I s_loc = enc ? s_dec : s_dec / std::max<I>(1, shape.context);
  int x;
  const double positions = learned ? static_cast<double>(std::max(s_dec, d.max_positions) * d.d_model) : 0;
  if (enc) {
    // The decoder reads the encoder's table (one vocabulary: T5's `shared` embedding, tied or not);
    // an untied model's head has a table of its own (T5 v1.1, mT5): two tables, not three.
    // Its positions are its own: a learned table (BART's, mBART's) or a relative bias table of
    // the decoder stack (T5's, one a stack). A target vocabulary of its own is its table.
    x = e.embedding("decoder.embedding", b * s_loc, d.d_model,
                    relative + positions +
                        (d.arch == TransformerDesign::Arch::encoder_decoder && d.target_vocab > 0
                             ? static_cast<double>(out_vocab * d.d_model)
                             : 0));  // (a target_vocab is a table of its own, also at the source's size; since session 39)
  } else {
    x = e.embedding("decoder.embedding", b * s_loc, d.d_model,
                    vocab_params + positions + relative);
  }
  e.replicated_params(x, positions);
  if (d.one_hot_embedding) x = e.one_hot_embedding("decoder.embedding.one_hot", x, b * s_loc, out_vocab, d.d_model);
  // The embeddings' dropout (GPT-2's embd_pdrop, Megatron-LM's embedding_dropout, T5's decoder; since
  // session 39, a review: only encoders had it).
  if (e.training && d.dropout > 0) x = embedding_dropout(e, "decoder.embedding.dropout", x, static_cast<double>(b * s_loc * d.d_model));
  for (I i = 0; i < d.decoder_layers; ++i, ++layer) {
    const std::string p = "decoder." + std::to_string(i);
    // DeepSpeed's checkpointing with partition_activations (GPT-NeoX, LargeScale): each layer's input
    // is cloned forward, the rank's 1 / t of it (its contiguous narrow copied: 2p / t an element of
    // the width), and rebuilt backward: zeros over the whole (p), the part copied in (2p / t), an
    // all-gather over the tensor group into c10d's flat buffer (2p; at one rank a copy, across ranks
    // its traffic, whose network time is left out) and its copy back (2p): (5 + 2 / t) p in 4
    // kernels, 7p at one rank. Once a layer and microbatch: recomputation starts from the rebuilt input.
    if (e.neox_partition) {
      const double t = static_cast<double>(e.tensor);
      x = e.glue(p + ".checkpoint", layer, x, static_cast<double>(b * s_loc * d.d_model), 2 * e.dtype_bytes() / t, 1,
                 (5 + 2 / t) * e.dtype_bytes(), 4, false);
    }
    if (d.evolved) {
      x = evolved_decoder_cell(e, d, p, layer, x, enc_out, b, s_dec, s_enc, shape.causal_skip);
      continue;
    }
    if (d.parallel_block) {
      x = parallel_layer(e, d, p, layer, x, b, s_loc, s_all, shape.causal_skip, attention_window(d, i));
      continue;
    }
    x = attention(e, d, p + ".attn", layer, x, -1, b, s_loc, s_all, true, shape.causal_skip, attention_window(d, i));
    if (enc_out >= 0) x = attention(e, d, p + ".cross", layer, x, enc_out, b, s_dec, s_enc, false, shape.causal_skip);
    x = feed_forward(e, d, p + ".ffn", layer, x, b * s_loc, moe_layer(d, i));
  }
  const int n = e.norm("decoder.final_norm", layer - 1, x, b * s_loc, d.d_model, d.rms_norm);
  const I head_rows = shape.last_position_logits ? b : b * s_loc;
  const int logits = e.matmul("lm_head", -1, n, head_rows, d.d_model, out_vocab, false, d.tied_embeddings);
  // In training the loss; in inference the softmax that samples the next token.
  e.loss("loss", logits, static_cast<double>(head_rows * out_vocab));
  // Multi-token prediction (DeepSeek-V3, arXiv:2412.19437, Sec. 2.2): module k normalises the
  // previous depth's hidden state and the embeddings of the tokens k ahead (the shared table, a
  // lookup), projects their concatenation 2 d -> d, runs one more layer of the model's kind, and
  // predicts through the shared output head; its loss is added to the model's. Inference discards
  // the modules ("During inference, we can directly discard the MTP modules", ibid.).
  if (!e.training) return;
  const I t = b * s_loc;
  int hidden = x;
  for (I k = 0; k < d.mtp_depth; ++k, ++layer) {
    const std::string p = "mtp." + std::to_string(k);
    const int emb = e.embedding(p + ".embedding", t, d.d_model, 0);
    const int hidden_norm = e.norm(p + ".hidden_norm", layer, hidden, t, d.d_model, d.rms_norm);
    // Its input is the tensor the final norm before it keeps (the main model's, or the previous
    // module's): kept again only on another pipeline device (since session 44, a review).
    if (!(e.eager && d.rms_norm)) e.shares_input(hidden_norm, e.dtype_bytes() * static_cast<double>(t * d.d_model));
    e.norm(p + ".embedding_norm", layer, emb, t, d.d_model, d.rms_norm);
    int y = e.matmul(p + ".proj", layer, hidden_norm, t, 2 * d.d_model, d.d_model, false);
    y = attention(e, d, p + ".attn", layer, y, -1, b, s_loc, s_all, true, shape.causal_skip);
    y = feed_forward(e, d, p + ".ffn", layer, y, t, moe_layer(d, d.decoder_layers + k));
    hidden = y;
    const int mn = e.norm(p + ".final_norm", layer, y, t, d.d_model, d.rms_norm);
    const int ml = e.matmul(p + ".lm_head", -1, mn, t, d.d_model, d.vocab, false, true);
    e.loss(p + ".loss", ml, static_cast<double>(t * d.vocab));
  }
}

// --- ResNet ------------------------------------------------------------------------------

struct Feature {
  int op;
  I hw;  // height = width
  I c;
};

// `data_gradient`: false for a convolution over the network's input, whose gradient nobody needs
// (PyTorch computes only the weight gradient there): a backward of one product, not two.
// `keeps_input`: false where another op keeps the same tensor already (autograd saves one storage
// once, however many ops read it).
// `shares_input`: with keeps_input false, the op before keeps it (shared_input_bytes); else another
// op of the same block does.
// 8-bit inference: batch norm folded into the convolution and its ReLU fused into the kernel (an
// 8-bit convolution's requantization clamps to the activation's range: TensorFlow Lite's
// fused_activation_function, QNN's and TensorRT's conv + ReLU).
bool folded_8bit(const Emitter& e) { return !e.training && e.dtype_bytes() == 1; }

// A ReLU after a batch norm in training, under a fusion that merges elementwise chains (XLA on TPUs
// and GPUs, a compiler): the normalisation's pass writes the activated value and its backward applies
// the ReLU's mask, recomputed from what it reads anyway, so the ReLU has no pass of its own. Under `fusion:
// none` or `eager: true` (eager PyTorch: cuDNN's batch norm, then an in-place ReLU kernel) it is a
// pass forward and one backward, as before session 56. The stem's ReLU kept the max pool's input; the
// norm keeps it in its place. (Inference keeps its pass, as before; 8-bit inference folds it.)
bool relu_in_norm(const Emitter& e) { return e.training && e.fusion != Fusion::none && !e.eager; }

Feature conv(Emitter& e, OpGraph& g, const std::string& name, int layer, Feature in, I out_c, I kernel, I stride,
             I batch, double p, bool data_gradient = true, bool keeps_input = true, bool shares_input = false) {
  const I pad = kernel / 2;
  const I out_hw = (in.hw + 2 * pad - kernel) / stride + 1;
  Op op;
  op.name = name;
  op.kind = OpKind::conv2d;
  op.layer = layer;
  op.m = batch * out_hw * out_hw;
  op.n = out_c;
  op.k = in.c * kernel * kernel;
  const double md = static_cast<double>(op.m), nd = static_cast<double>(op.n), kd = static_cast<double>(op.k);
  op.flops = 2 * md * nd * kd;
  op.bytes = p * (static_cast<double>(batch * in.hw * in.hw * in.c) + kd * nd + md * nd);
  op.params = kd * nd;
  op.saved_bytes = keeps_input ? p * static_cast<double>(batch * in.hw * in.hw * in.c) : 0.0;
  if (!keeps_input && shares_input) op.shared_input_bytes = p * static_cast<double>(batch * in.hw * in.hw * in.c);
  if (!data_gradient) op.backward_factor = 1;
  // (Folded, the batch norm's shift becomes the convolution's bias, n values; below.)
  if (folded_8bit(e)) op.params += nd;
  const int id = g.add(op, {in.op});
  // Batch norm (scale and shift are trainable). In training its statistics are over the batch
  // and the image (N x H x W a channel), more than a kernel keeps on chip: the forward reads its
  // input twice (the statistics, then the normalisation) and writes once; the backward reads the
  // input and the output's gradient twice (the sums for the scale's and shift's gradients, then
  // the input's) and writes once: 5 passes, 5/3 of the forward's. Channels-last, cuDNN's persistent
  // kernels keep the input on chip across the two phases: the forward reads it once and the
  // backward reads the input and the gradient once, 2 and 3 passes. Inference uses the running
  // statistics: one read, one write.
  const double elements = md * nd;
  // 8-bit inference folds the batch norm into the convolution's weights and bias, as integer
  // quantization flows do before quantizing (TensorFlow Lite's converter, PyTorch's
  // fuse_modules): no pass of its own (since session 46, a review: 32 % of a phone's ResNet-50).
  if (folded_8bit(e)) return {id, out_hw, out_c};
  const bool persistent = e.training && e.channels_last;
  const int bn = e.elementwise(name + ".bn", layer, {id}, elements, 4, OpKind::norm, 2 * nd, true, e.training && !persistent ? 2 : 1);
  if (e.training) e.backward_factor(bn, persistent ? 1.5 : 5.0 / 3.0);
  return {bn, out_hw, out_c};
}

void build_resnet(OpGraph& g, const ResNetDesign& d, const GraphShape& shape) {
  require(d.image > 0 && d.channels > 0 && d.width > 0 && d.classes > 0 && !d.blocks.empty(),
          "a ResNet needs image, channels, width, classes > 0 and a list of blocks");
  Emitter e(g, shape);
  const double p = static_cast<double>(shape.dtype_bytes);
  const I b = shape.batch;
  const int input = e.data_input("input", b * d.image * d.image, d.channels);  // the images take no gradient
  Feature x{input, d.image, d.channels};
  x = conv(e, g, "stem.conv", 0, x, d.width, 7, 2, b, p, false);
  const double stem_elements = static_cast<double>(b * x.hw * x.hw * x.c);
  if (relu_in_norm(e)) {
    // The max pool's backward needs the activated map, which the ReLU kept: the norm keeps it now.
    e.saved(x.op, e.op_saved(x.op) + p * stem_elements);
  } else if (!folded_8bit(e)) {
    x.op = e.elementwise("stem.relu", 0, {x.op}, stem_elements, 1);
  }
  const I pooled = (x.hw + 2 - 3) / 2 + 1;
  // It reads the whole map (hw^2 of the input for pooled^2 outputs) and writes the pooled one (since
  // session 39, a review; before, as many elements read as written: 2.5 times too few bytes).
  const double pool_reads = static_cast<double>(x.hw * x.hw) / static_cast<double>(pooled * pooled);
  x = {e.elementwise("stem.maxpool", 0, {x.op}, static_cast<double>(b * pooled * pooled * x.c), 9, OpKind::pool, 0, true, pool_reads),
       pooled, x.c};
  const I expansion = d.bottleneck ? 4 : 1;
  int layer = 1;
  I width = d.width;
  for (std::size_t stage = 0; stage < d.blocks.size(); ++stage, width *= 2) {
    for (I block = 0; block < d.blocks[stage]; ++block, ++layer) {
      const std::string name = "stage" + std::to_string(stage + 1) + "." + std::to_string(block);
      const I stride = (block == 0 && stage > 0) ? 2 : 1;
      Feature y = x;
      // Each convolution but the block's last is followed by a ReLU of its own (torchvision's
      // Bottleneck and BasicBlock: relu(bn1(conv1)), relu(bn2(conv2)); the last one's ReLU follows
      // the residual add, below).
      const auto relu = [&](Feature f, const std::string& n) {
        if (folded_8bit(e) || relu_in_norm(e)) return f;  // fused into the convolution, or the norm's pass
        f.op = e.elementwise(n, layer, {f.op}, static_cast<double>(b * f.hw * f.hw * f.c), 1);
        e.saved(f.op, 0);  // in place: its output is the next convolution's input, which that keeps
        return f;
      };
      // The block's input is kept once (since session 43, a review: 25 % of ResNet-50's
      // activations had been counted twice or three times): after the first block it is the
      // residual's output, which the in-place ReLU after the add keeps for its backward, so the
      // block's first convolution keeps nothing more; its downsample reads what that convolution
      // (or the residual) keeps already.
      const bool input_kept = block > 0 || stage > 0;
      if (d.bottleneck) {
        y = relu(conv(e, g, name + ".conv1", layer, y, width, 1, 1, b, p, true, !input_kept, input_kept), name + ".relu1");
        y = relu(conv(e, g, name + ".conv2", layer, y, width, 3, stride, b, p), name + ".relu2");  // stride on the 3x3 (ResNet v1.5)
        y = conv(e, g, name + ".conv3", layer, y, width * expansion, 1, 1, b, p);
      } else {
        y = relu(conv(e, g, name + ".conv1", layer, y, width, 3, stride, b, p, true, !input_kept, input_kept), name + ".relu1");
        y = conv(e, g, name + ".conv2", layer, y, width, 3, 1, b, p);
      }
      Feature shortcut = x;
      if (block == 0 && (stride != 1 || x.c != width * expansion)) {
        shortcut = conv(e, g, name + ".downsample", layer, x, width * expansion, 1, stride, b, p, true, false);
      }
      const double elements = static_cast<double>(b * y.hw * y.hw * y.c);
      const int add = g.add(Op{name + ".residual", OpKind::elementwise, layer, static_cast<I>(elements), 0, 0, 1,
                               2 * elements, 4 * p * elements, 0, p * elements, false},
                            {y.op, shortcut.op});
      x = {add, y.hw, y.c};
    }
  }
  // The global average: hw^2 additions into each of b x c outputs, the map read once (since session
  // 39, a review; before, the map written back whole as if an elementwise pass).
  const double area = static_cast<double>(x.hw * x.hw);
  // The head is layer -1, as a transformer's (docs/output-format.md; since session 45, a review: it
  // was a layer of its own, which pipeline stages and `layer_time` counted as a block).
  const int pool = e.elementwise("avgpool", -1, {x.op}, static_cast<double>(b * x.c), area, OpKind::pool, 0, true, area);
  e.saved(pool, 0);  // its backward spreads the gradient evenly, needing no tensor; fc keeps its output
  e.matmul("fc", -1, pool, b, x.c, d.classes, true);
}

// --- LSTM and MLP ------------------------------------------------------------------------

// A character CNN over each token's characters, ELMo's token encoder as bilm-tf builds it: the
// characters embedded; per filter width w, a 1-D convolution over the max_chars - w + 1 positions
// (a GEMM of K = w x embedding), max-pooled over the positions and activated; the filters
// concatenated; highway layers (a transform and a carry GEMM, combined elementwise); and a
// projection to the LSTM's input width. `shared`: the weights belong to an earlier application.
int char_cnn(Emitter& e, OpGraph& g, const std::string& p, const CharCnnDesign& c, I tokens, I out_width, bool shared) {
  const double pb = e.dtype_bytes();
  const double t = static_cast<double>(tokens);
  const int chars =
      e.embedding(p + ".chars", tokens * c.max_chars, c.embedding, shared ? 0 : static_cast<double>(c.chars * c.embedding), false);
  std::vector<int> pooled;
  for (const auto& [w, count] : c.filters) {
    const std::string name = p + ".conv" + std::to_string(w);
    const I positions = c.max_chars - w + 1;
    Op op;
    op.name = name;
    op.kind = OpKind::conv2d;
    op.m = tokens * positions;
    op.n = count;
    op.k = w * c.embedding;
    const double md = static_cast<double>(op.m), nd = static_cast<double>(op.n), kd = static_cast<double>(op.k);
    const double input = t * static_cast<double>(c.max_chars * c.embedding);
    op.flops = 2 * md * nd * kd;
    op.bytes = pb * (input + kd * nd + md * nd);  // the characters read once (implicit GEMM), not w times
    op.params = shared ? 0 : kd * nd + nd;
    // conv2d(...) + b: a bias, whose gradient the backward reduces and whose add an unfused code
    // runs as a kernel of its own (since session 47, a review: neither was charged).
    op.bias = true;
    op.saved_bytes = pb * input;
    int conv = g.add(op, {chars});
    const double outputs = md * nd;
    if (e.tensorflow1 && w >= 2) {
      // TensorFlow 1.x's GPU convolution on NHWC data (bilm-tf's layout; the job's `layout` key
      // is a ResNet's) runs cuDNN in NCHW: the input transposed to NCHW and the output back
      // (conv_ops.cc: "Convert the output tensor back from NCHW to NHWC"), 2p (I + O) forward;
      // backward, each of the two backprop kernels transposes the output's gradient again
      // (conv_grad_input_ops.cc, conv_grad_filter_ops.cc), the filter's its input, and the input
      // gradient goes back to NHWC: 4p O + 4p I in 6 kernels with the filters' transforms (since
      // session 49, reviews; the width-1 product runs cuBLAS, no transposes).
      conv = e.elementwise(name + ".layout", -1, {conv}, outputs, 0, OpKind::elementwise, 0, true, 1);
      e.chain(conv, 2 * pb * (input + outputs), 2, 0);
      e.framework_kernels(conv, 1, 2, (4 * outputs + 4 * input) / (2 * (input + outputs)), 6);
    }
    // Max over the positions (reads them all, writes one), then the activation.
    const double out = t * static_cast<double>(count);
    const int pool = e.elementwise(name + ".pool", -1, {conv}, out, static_cast<double>(positions), OpKind::pool, 0, true,
                                   static_cast<double>(positions));
    // Its backward routes the gradient to each maximum: it keeps the convolution's output.
    e.chain(pool, e.g_op(pool).bytes, 1, pb * md * nd);
    // TensorFlow 1.x's max-pool gradient on a GPU is cuDNN's (DnnPoolingGradOp, whatever the
    // convolution before it ran): the convolution's output transposed to NCHW and the input
    // gradient back, 4p O more backward in 4 kernels more (its pooled tensors' are small).
    if (e.tensorflow1) {
      const Op& pooled_op = e.g_op(pool);
      e.framework_kernels(pool, 1, 1, (2 * pooled_op.bytes + 4 * pb * outputs) / pooled_op.bytes, 2 + 4);
    }
    pooled.push_back(e.elementwise(name + ".act", -1, {pool}, out, 1));
  }
  const I width = c.width();
  int x = e.elementwise(p + ".concat", -1, pooled, t * static_cast<double>(width), 0, OpKind::elementwise, 0, true, 1);
  for (I h = 0; h < c.highway; ++h) {
    const std::string name = p + ".highway" + std::to_string(h);
    const int transform = e.matmul(name + ".transform", -1, x, tokens, width, width, true, shared);
    const int carry = e.matmul(name + ".carry", -1, x, tokens, width, width, true, shared);
    // sigmoid(carry), relu(transform), carry x transform + (1 - carry) x input.
    x = e.elementwise(name + ".combine", -1, {transform, carry, x}, t * static_cast<double>(width), 6);
  }
  if (width != out_width) x = e.matmul(p + ".projection", -1, x, tokens, width, out_width, true, shared);
  return x;
}

// One step's cell: the gate nonlinearities and the state update, over E = batch x hidden.
// Fused (one kernel, as cuDNN or TensorFlow's LSTMBlockCell): reads both halves of the four gates
// (8 E) and the previous cell state (E), writes the cell state and the output (2 E); keeps the
// gates, the cell state and its tanh for the backward (7 E, LSTMBlockCell's outputs).
// Unfused (fusion: none, TensorFlow 1.x's LSTMCell, one kernel an op, after the step's own GEMM):
// concat of the step's input and previous output, split of the 4 E gate matrix (8 E), then f +
// forget_bias, sigmoid x 3, tanh x 2, 3 products and a sum over E (24 E): 12 kernels, 32 E + the
// concat; it keeps each op's inputs (~10 E). The gate matrix's bias_add (8 E) is the gates
// product's own unfused bias add (cost_detail::unfused_bias_add; in this chain, 13 kernels and
// 40 E, until session 47). The optional clippings (ELMo's cell_clip, proj_clip: 2 kernels
// each) are not counted.
int lstm_cell(Emitter& e, const std::string& name, int layer, const std::vector<int>& in, I batch, I hidden, I input,
              I output) {
  const double cells = static_cast<double>(batch * hidden);
  const double p = e.dtype_bytes();
  const int id = e.elementwise(name, layer, in, cells, 12, OpKind::elementwise, 0, true, 10);
  if (e.fusion == Fusion::none) {
    const double concat = 2 * static_cast<double>(batch * (input + output));
    e.chain(id, p * (32 * cells + concat), 12, p * 10 * cells);
  } else {
    e.chain(id, p * 11 * cells, 1, p * 7 * cells);
  }
  return id;
}

void build_lstm(OpGraph& g, const LstmDesign& d, const GraphShape& shape) {
  require(d.layers > 0 && d.input > 0 && d.hidden > 0 && d.seq_len > 0, "an LSTM needs layers, input, hidden, seq_len > 0");
  Emitter e(g, shape);
  const I t = shape.batch * d.seq_len;
  const I directions = d.bidirectional ? 2 : 1;
  const bool separate = d.bidirectional && d.separate_directions;
  const I out_width = d.projection > 0 ? d.projection : d.hidden;
  // Token inputs: a lookup, or the character CNN (bilm-tf runs it once per direction, on the
  // reversed tokens for the backward model, with one set of weights).
  std::vector<int> x(static_cast<std::size_t>(directions));
  const bool cnn = !d.char_cnn.filters.empty();
  for (I dir = 0; dir < directions; ++dir) {
    if (dir > 0 && !(cnn && separate)) {
      x[static_cast<std::size_t>(dir)] = x[0];
      continue;
    }
    x[static_cast<std::size_t>(dir)] =
        cnn ? char_cnn(e, g, dir ? "char_cnn.backward" : "char_cnn", d.char_cnn, t, d.input, dir > 0)
        : d.vocab > 0 ? e.embedding("input", t, d.input, static_cast<double>(d.vocab * d.input), false)
                      : e.data_input("input", t, d.input);
  }
  // Separate directions' character CNNs: the first layer reads both.
  if (cnn && separate) e.layer_output(x.back(), static_cast<double>(directions * t * d.input));
  I width = d.input;
  for (I l = 0; l < d.layers; ++l) {
    std::vector<int> outputs;
    for (I dir = 0; dir < directions; ++dir) {
      const std::string p = "lstm." + std::to_string(l) + (dir ? ".backward" : ".forward");
      // Fused (cuDNN, LSTMBlockFusedCell): the input side of the gates is one GEMM over all time
      // steps; the recurrence is not: step s needs the output of step s - 1, so its GEMM (batch
      // rows), cell and projection run once per step, each a kernel of its own, re-reading the
      // weights (owned by the first step). Unfused (fusion: none, TensorFlow 1.x's LSTMCell under
      // static_rnn): one GEMM a step over [input, previous output], K = width + out_width.
      const bool per_step = e.fusion == Fusion::none;
      const int x_in = x[static_cast<std::size_t>(dir)];
      const int gates_in = per_step ? -1 : e.matmul(p + ".input_gates", static_cast<int>(l), x_in, t, width, 4 * d.hidden, true);
      if (gates_in >= 0) {
        // Both directions' input gates read one tensor, kept once (since session 45, a review); the
        // first layer's features, without a lookup or a character CNN, take no gradient.
        e.keep_input_once(gates_in, x_in, static_cast<int>(l), e.dtype_bytes() * static_cast<double>(t * width));
        if (l == 0 && !cnn && d.vocab == 0) e.backward_factor(gates_in, 1);
      }
      int h = per_step ? x_in : gates_in;
      for (I step = 0; step < d.seq_len; ++step) {
        const std::string ps = p + ".step" + std::to_string(step);
        const bool first = step == 0;
        const int rec = per_step ? e.matmul(ps + ".gates", static_cast<int>(l), h, shape.batch, width + out_width, 4 * d.hidden, true, !first)
                                 : e.matmul(ps + ".recurrent_gates", static_cast<int>(l), h, shape.batch, out_width, 4 * d.hidden, false, !first);
        // Unrolled in TensorFlow 1.x's graph, each step's weight gradient is added into the sum
        // of the others' (AddN over the variable's uses); fused kernels sum inside.
        const double value_bytes = e.dtype_bytes();
        if (per_step && !first) e.gradient_sum(rec, 3 * value_bytes * static_cast<double>((width + out_width + 1) * 4 * d.hidden));
        h = lstm_cell(e, ps + ".cell", static_cast<int>(l), per_step ? std::vector<int>{rec} : std::vector<int>{rec, gates_in},
                      shape.batch, d.hidden, width, out_width);
        if (d.projection > 0) {
          h = e.matmul(ps + ".projection", static_cast<int>(l), h, shape.batch, d.hidden, d.projection, false, !first);
          if (per_step && !first) e.gradient_sum(h, 3 * value_bytes * static_cast<double>(d.hidden * d.projection));
        }
      }
      outputs.push_back(h);
    }
    // What the next layer reads is every step's output, not the last step's alone (since session
    // 44, from a review of session 43: a pipeline stage's sends and full recomputation's layer
    // checkpoints had been one step's); separate directions' next layers read both. A bidirectional
    // layer's concat, below, is both directions whole already.
    if (separate || directions == 1) e.layer_output(outputs.back(), static_cast<double>(directions * t * out_width));
    if (separate) {
      // Each direction's next layer reads its own output.
      for (I dir = 0; dir < directions; ++dir) x[static_cast<std::size_t>(dir)] = outputs[static_cast<std::size_t>(dir)];
      width = out_width;
    } else {
      int merged = outputs[0];
      for (I dir = 1; dir < directions; ++dir) {
        // Both directions' outputs side by side: t x out_width x 2 values written, as many read, nothing
        // kept (since session 43, a review: it had been half that, which halved the next stage's sends).
        merged = e.elementwise("lstm." + std::to_string(l) + ".backward.concat", static_cast<int>(l), {merged, outputs[static_cast<std::size_t>(dir)]},
                               static_cast<double>(t * out_width * (dir + 1)), 0, OpKind::elementwise, 0, true, 1);
        e.saved(merged, 0);
      }
      for (auto& xi : x) xi = merged;
      width = out_width * directions;
    }
  }
  if (d.vocab > 0) {
    // One softmax over the top layer; separate directions each predict their own next token with
    // one set of softmax weights.
    const I heads = separate ? directions : 1;
    for (I dir = 0; dir < heads; ++dir) {
      const std::string p = dir ? "backward." : "";
      const int logits = e.matmul(p + "softmax", -1, x[static_cast<std::size_t>(dir)], t, width, d.vocab, true, dir > 0);
      e.loss(p + "loss", logits, static_cast<double>(t * d.vocab));
    }
  }
}

void build_mlp(OpGraph& g, const MlpDesign& d, const GraphShape& shape) {
  require(d.widths.size() >= 2, "an MLP needs at least an input and an output width");
  for (const I w : d.widths) require(w > 0, "MLP widths must be > 0");
  Emitter e(g, shape);
  // Features take no gradient: the first product computes its weight gradient alone, as a ResNet's
  // stem (since session 45, a review; `input_gradient: true` for an input that takes one, another
  // module's output). Each activation's output, which its ReLU keeps, is the next product's input,
  // one tensor kept once.
  int x = d.input_gradient ? e.embedding("input", shape.batch, d.widths.front(), 0, false)
                           : e.data_input("input", shape.batch, d.widths.front());
  for (std::size_t i = 1; i < d.widths.size(); ++i) {
    const int layer = static_cast<int>(i - 1);
    const int in = x;
    x = e.matmul("dense." + std::to_string(i - 1), layer, in, shape.batch, d.widths[i - 1], d.widths[i], true);
    if (i == 1 && !d.input_gradient) e.backward_factor(x, 1);
    if (i > 1) e.keep_input_once(x, in, layer, e.dtype_bytes() * static_cast<double>(shape.batch * d.widths[i - 1]));
    if (i + 1 < d.widths.size()) {
      x = e.elementwise("act." + std::to_string(i - 1), layer, {x}, static_cast<double>(shape.batch * d.widths[i]), 1);
      e.keep_input_once(x, x, layer, 0);  // (registers its output as kept)
    }
  }
}

// --- a graph from a file -------------------------------------------------------------------

OpKind kind_of(const std::string& k) {
  static const std::pair<const char*, OpKind> kinds[] = {
      {"matmul", OpKind::matmul},   {"batched_matmul", OpKind::batched_matmul}, {"conv2d", OpKind::conv2d},
      {"elementwise", OpKind::elementwise}, {"softmax", OpKind::softmax},       {"norm", OpKind::norm},
      {"embedding", OpKind::embedding},     {"pool", OpKind::pool},             {"router", OpKind::router}};
  for (const auto& [name, kind] : kinds) {
    if (k == name) return kind;
  }
  throw std::invalid_argument("unknown op kind " + k);
}

void build_file(OpGraph& g, const FileGraphDesign& d, const GraphShape& shape) {
  require(!d.ops.empty(), "the graph file has no ops");
  const double p = static_cast<double>(shape.dtype_bytes);
  const double b = static_cast<double>(shape.batch);
  std::map<std::string, int> ids;
  // Which op's output is kept already, and by an op of which layer (one storage, as autograd saves
  // it: a norm's output read by separate q, k and v products is kept once; since session 45, a
  // review: once a reader).
  std::map<int, int> kept_by_layer;
  const auto output_elements = [&](int id) {
    const Op& src = g.op(id);
    return is_gemm(src.kind) || src.kind == OpKind::router
               ? static_cast<double>(src.m) * static_cast<double>(src.n) * static_cast<double>(src.count)
               : static_cast<double>(src.m);
  };
  for (const auto& f : d.ops) {
    Op op;
    op.name = f.name;
    op.kind = kind_of(f.kind);
    op.layer = f.layer;
    op.params = f.params;
    std::vector<int> inputs;
    for (const auto& in : f.inputs) {
      const auto it = ids.find(in);
      require(it != ids.end(), "op " + f.name + ": input " + in + " is not an earlier op");
      inputs.push_back(it->second);
    }
    if (is_gemm(op.kind) || op.kind == OpKind::router) {
      // m grows with the batch; weights (k x n) do not, unless activation x activation.
      op.m = static_cast<std::int64_t>(static_cast<double>(f.m) * b);
      op.n = f.n;
      op.k = f.k;
      op.count = f.count;
      const double c = static_cast<double>(f.count), md = static_cast<double>(op.m);
      const double kd = static_cast<double>(f.k), nd = static_cast<double>(f.n);
      op.flops = 2 * c * md * kd * nd;
      const double weights = op.kind == OpKind::batched_matmul ? kd * nd * b : kd * nd;
      // A convolution given its feature map reads that once (implicit GEMM), as the ResNet builder's
      // do (since session 34; the unfolded m x k stays the default, an upper bound). The map is
      // the op's whole input, read once whatever its `count` (a grouped convolution's groups each
      // read their channels of it; since session 45, a review: it was read `count` times).
      const double input = op.kind == OpKind::conv2d && f.input > 0 ? f.input * b : c * md * kd;
      op.bytes = p * (input + c * (weights + md * nd));
      // A product of two activations keeps both (since session 43, a review: the second was left
      // out, as the builders' attention products keep it).
      op.saved_bytes = p * (input + (op.kind == OpKind::batched_matmul ? c * weights : 0.0));
      if (inputs.empty()) {
        // It reads the data, which takes no gradient: the weight gradient alone (since session 45).
        op.backward_factor = op.kind == OpKind::batched_matmul ? 0 : 1;
      } else if (std::abs(output_elements(inputs.front()) - input) <= 1e-9 * input) {
        // Its input is the first input's output: kept once (above).
        const auto [it, first] = kept_by_layer.emplace(inputs.front(), f.layer);
        if (!first) {
          op.saved_bytes = std::max(0.0, op.saved_bytes - p * input);
          if (it->second != f.layer) op.shared_input_bytes = p * input;
          it->second = f.layer;
        }
      }
    } else {
      const double e = f.elements * b;
      op.m = static_cast<std::int64_t>(e);
      op.flops = e * f.flops_per_element;
      // A lookup reads the rows it gathers, not its table (since session 34; before, the table's
      // params on every pass, as a norm's scale and shift are read).
      const double table = op.kind == OpKind::embedding ? 0.0 : f.params;
      // Each input read whole, as large as its op's output (since session 43, a review: every input
      // had been taken as large as this op's output, so a pool reading a 4 times larger map moved
      // too few bytes, as the ResNet builder's did before session 39); an op without inputs reads
      // as many values as it writes.
      double reads = inputs.empty() || op.kind == OpKind::embedding ? e : 0.0;  // a lookup reads the rows it gathers
      for (const int in : op.kind == OpKind::embedding ? std::vector<int>{} : inputs) {
        const Op& src = g.op(in);
        reads += is_gemm(src.kind) || src.kind == OpKind::router
                     ? static_cast<double>(src.m) * static_cast<double>(src.n) * static_cast<double>(src.count)
                     : static_cast<double>(src.m);
      }
      op.bytes = p * (reads + e + table);
      op.saved_bytes = p * e;
      // The data (an op without inputs and without parameters) takes no gradient (since session 45).
      if (inputs.empty() && f.params <= 0) op.backward_factor = 0;
    }
    const int id = g.add(op, inputs);
    ids[f.name] = id;
    if (!is_gemm(op.kind) && op.kind != OpKind::router && op.saved_bytes > 0) kept_by_layer.emplace(id, f.layer);
  }
}

}  // namespace

namespace {

// The builders form a microbatch's tensor sizes and layer indices in 64-bit integers (and ints):
// a design whose largest tensor or layer count is beyond these limits cannot be built, and no
// machine could hold it. Each size below is computed in floating point, so it cannot overflow.
constexpr double kMaxTensorElements = 72057594037927936.0;  // 2^56: 2^60 bytes at 16 bits
constexpr double kMaxLayers = 100000;
constexpr double kMaxLstmSteps = 1000000;

double widest(std::initializer_list<double> widths) { return std::max(widths); }

std::string g3(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

// A transformer's largest microbatch tensor (`elements`), layers, and largest weight op (returned).
double transformer_limit(const TransformerDesign& d, double batch, double& elements, double& layers) {
  const auto f = [](std::int64_t x) { return static_cast<double>(x); };
  const double tokens = batch * f(std::max(d.seq_len, d.target_seq_len));
  const double dm = f(d.d_model), heads = f(d.heads), kv = f(d.kv_heads), mult = d.gated_ffn ? 2 : 1;
  const double hd = d.head_dim > 0 ? f(d.head_dim) : dm / std::max(1.0, heads);
  const double qk = hd + f(d.rope_head_dim) + f(std::max(d.v_head_dim, d.head_dim));
  const double projections = (heads + 2 * kv + 1) * qk + f(d.kv_lora_rank) + f(d.q_lora_rank);
  const double E = f(d.experts), fe = f(d.expert_d_ff > 0 ? d.expert_d_ff : d.d_ff) * mult;
  const double routed = f(d.top_k) * d.capacity_factor;  // expert slots a token
  const double shared = f(d.shared_experts) * fe;
  const double group = d.group_size > 0 ? std::min(f(d.group_size), tokens) : tokens;
  // A token's widest row in any op: the feed-forward, its routed slots, the logits, attention's
  // projections and (unfused) score rows, the Evolved Transformer's 4 d_model branches.
  const double patch_row = f(d.patch) * f(d.patch) * f(d.image_channels);  // a ViT's patch, 0 elsewhere
  const double row = widest({4 * dm, f(d.d_ff) * mult, routed * std::max(fe, dm), shared, f(d.vocab), f(d.target_vocab), f(d.type_vocab),
                             projections, heads * f(std::max(d.seq_len, d.target_seq_len)), E, patch_row, f(d.classes)});
  // Einsum dispatch: every expert runs its capacity of slots in every group, padded or not.
  const double capacity = std::max(f(d.min_capacity), std::min(group, routed * group / std::max(1.0, E)));
  const double groups = std::ceil(tokens / std::max(1.0, group));
  elements = widest({tokens * row, E * std::max(fe, dm),  // every local expert runs at least one slot
                     d.einsum_dispatch ? (E + routed * group) * tokens : 0.0,  // one-hot dispatch masks
                     d.einsum_dispatch ? E * capacity * groups * std::max(fe, dm) : 0.0});
  layers = f(d.encoder_layers) + f(d.decoder_layers) + f(d.mtp_depth);
  return widest({dm * widest({f(d.d_ff) * mult, shared, f(d.vocab), f(d.target_vocab), f(d.type_vocab), projections, patch_row,
                              f(d.classes)}),
                 E * dm * fe});
}

}  // namespace

std::string size_limit(const ModelDesign& design, std::int64_t microbatch) {
  const double b = static_cast<double>(microbatch);
  const auto f = [](std::int64_t x) { return static_cast<double>(x); };
  double elements = 0, layers = 0, weights = 0;
  std::string layer_limit = "100,000";
  double max_layers = kMaxLayers;
  if (const auto* t = std::get_if<TransformerDesign>(&design)) {
    weights = transformer_limit(*t, b, elements, layers);
  } else if (const auto* r = std::get_if<ResNetDesign>(&design)) {
    // Stage by stage as build_resnet runs them: the stem at image / 2, the stages from image / 4,
    // halving (rounded up) from the second, each with twice the width of the one before (ResNet v1.5).
    const double expansion = r->bottleneck ? 4 : 1;
    double hw = std::ceil(f(r->image) / 2), width = f(r->width), in = width;
    elements = b * hw * hw * std::max(f(r->width), f(r->channels));
    weights = f(r->width) * f(r->channels) * 49;
    hw = std::ceil(hw / 2);
    for (std::size_t stage = 0; stage < r->blocks.size(); ++stage, width *= 2) {
      if (stage > 0) hw = std::ceil(hw / 2);
      const double out = width * expansion;
      elements = widest({elements, b * hw * hw * out});
      weights = widest({weights, width * width * 9, in * out, width * out});
      layers += f(r->blocks[stage]);
      in = out;
      if (!(elements <= kMaxTensorElements && weights <= kMaxTensorElements)) break;  // and no loop to infinity
    }
    elements = widest({elements, b * f(r->classes)});
    weights = widest({weights, in * f(r->classes)});
  } else if (const auto* l = std::get_if<LstmDesign>(&design)) {
    const auto& c = l->char_cnn;
    double filters = 0;
    for (const auto& [width, count] : c.filters) filters += f(count);
    const double tokens = b * f(l->seq_len);
    const double gates = 4 * f(std::max({l->hidden, l->input, l->projection}));
    elements = tokens * widest({gates, f(l->vocab), f(c.max_chars) * std::max(f(c.embedding), filters)});
    weights = widest({gates * f(std::max({l->hidden, l->input, l->projection})) * 2, f(l->vocab) * f(std::max(l->projection, l->hidden)),
                      f(c.chars) * f(c.embedding), filters * filters * 2, filters * f(l->input)});
    // Unfused, each layer runs a cell op a time step: layers x directions x steps ops.
    layers = f(l->layers) * (l->bidirectional ? 2 : 1) * f(l->seq_len) + f(c.highway);
    max_layers = kMaxLstmSteps;
    layer_limit = "1,000,000: layers x directions x seq_len";
  } else if (const auto* m = std::get_if<MlpDesign>(&design)) {
    for (std::size_t i = 0; i < m->widths.size(); ++i) {
      elements = std::max(elements, b * f(m->widths[i]));
      if (i > 0) weights = std::max(weights, f(m->widths[i - 1]) * f(m->widths[i]));
    }
    layers = f(static_cast<std::int64_t>(m->widths.size()));
  } else if (const auto* g = std::get_if<FileGraphDesign>(&design)) {
    std::vector<int> indices;
    for (const auto& op : g->ops) {
      const double c = f(op.count), rows = f(op.m) * b;
      elements = widest({elements, b * op.elements, c * rows * f(std::max(op.n, op.k))});
      weights = widest({weights, c * f(op.n) * f(op.k) * (op.kind == "batched_matmul" ? b : 1)});
      if (op.layer >= 0) indices.push_back(op.layer);
    }
    // Its layers: the distinct layer indices of its ops (since session 42, a review: a file of
    // 110,000 layers was costed, 29 s and 1.1 GB, past the limit every builder has).
    std::sort(indices.begin(), indices.end());
    layers = f(static_cast<std::int64_t>(std::unique(indices.begin(), indices.end()) - indices.begin()));
  }
  if (!(weights <= kMaxTensorElements)) {
    return "too large to cost: an op's weights hold " + g3(weights) + " elements (the builder's limit is 2^56 elements a tensor)";
  }
  if (!(elements <= kMaxTensorElements)) {
    return "too large to cost: at a batch of " + std::to_string(microbatch) + " a tensor holds " + g3(elements) +
           " elements (the builder's limit is 2^56 elements a tensor)";
  }
  // A count of layers in whole digits where it has them ("100001 layers", not "1e+05").
  const std::string layers_text = layers < 1e15 ? std::to_string(static_cast<long long>(layers)) : g3(layers);
  if (!(layers <= max_layers)) return "too large to cost: " + layers_text + " " + (max_layers == kMaxLayers ? "layers" : "LSTM cell steps") +
                                     " (the builder's limit is " + layer_limit + ")";
  return "";
}

OpGraph build_graph(const ModelDesign& design, const GraphShape& shape) {
  require(shape.batch > 0 && shape.dtype_bytes > 0, "the microbatch and dtype size must be > 0");
  if (const std::string why = size_limit(design, shape.batch); !why.empty()) throw std::invalid_argument(why);
  OpGraph g;
  if (const auto* t = std::get_if<TransformerDesign>(&design)) build_transformer(g, *t, shape);
  else if (const auto* r = std::get_if<ResNetDesign>(&design)) build_resnet(g, *r, shape);
  else if (const auto* l = std::get_if<LstmDesign>(&design)) build_lstm(g, *l, shape);
  else if (const auto* m = std::get_if<MlpDesign>(&design)) build_mlp(g, *m, shape);
  else if (const auto* f = std::get_if<FileGraphDesign>(&design)) build_file(g, *f, shape);
  else throw std::invalid_argument("the model has no design");
  return g;
}

std::int64_t attention_window(const TransformerDesign& d, std::int64_t layer) {
  if (d.sliding_window <= 0) return 0;
  if (d.global_every > 0 && (layer + 1) % d.global_every == 0) return 0;
  return d.sliding_window;
}

double count_parameters(const ModelDesign& design) { return build_graph(design, GraphShape{1, 2, true}).parameters(); }

std::int64_t tokens_per_sample(const ModelDesign& design) {
  // Training tokens are counted on the input side (T5: 2^11 sequences x 512 tokens per step).
  if (const auto* t = std::get_if<TransformerDesign>(&design)) return t->tokens_per_sample();
  if (const auto* l = std::get_if<LstmDesign>(&design)) return l->seq_len;
  if (const auto* f = std::get_if<FileGraphDesign>(&design)) return f->tokens_per_sample;
  return 1;
}

}  // namespace dlcarbon::graph
