#pragma once
// Operator graphs: a model design becomes a DAG with one node per operator, its shapes,
// FLOPs and bytes moved, for one microbatch. The graph knows nothing of hardware.
//
//   GraphShape shape{.batch = 8, .dtype_bytes = 2};
//   OpGraph g = build_graph(design, shape);
//   g.parameters();        // trainable parameters
//   g.forward_flops();     // one forward pass of the microbatch
//   for (int id : g.topological_order()) { const Op& op = g.op(id); ... }

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dlcarbon/design.hpp"

namespace dlcarbon::graph {

// What kind of kernel an op is, which decides how hardware runs it.
enum class OpKind {
  matmul,          // dense GEMM: weights x activations
  batched_matmul,  // activation x activation (attention scores and context)
  conv2d,          // convolution, costed as an implicit GEMM
  elementwise,     // activation functions, residual adds, dropout
  softmax,
  norm,            // layer norm, RMS norm, batch norm
  embedding,       // table lookup
  pool,
  router,          // MoE gating (small GEMM + top-k)
};

const char* to_string(OpKind kind);
bool is_gemm(OpKind kind);  // matmul, batched_matmul, conv2d

struct Op {
  std::string name;  // "decoder.3.attn.qkv"
  OpKind kind = OpKind::elementwise;
  int layer = -1;    // block index for pipeline stages (-1: embeddings and head)
  // GEMM view: `count` independent products C[m x n] = A[m x k] x B[k x n].
  std::int64_t m = 0, n = 0, k = 0, count = 1;
  double flops = 0;        // forward FLOPs (a multiply-add counts 2)
  double bytes = 0;        // forward bytes read + written, at dtype_bytes per element
  double params = 0;       // trainable parameters owned by the op
  // Of `params`, those every rank of a tensor-parallel group holds whole: a learned position table
  // and token types beside a vocabulary-parallel table (Megatron-LM's position and tokentype
  // embeddings are plain nn.Embedding). A norm's (tensor_split false) are whole without this.
  double replicated_params = 0;
  double saved_bytes = 0;  // activations kept for the backward pass
  // The input this op needs for its backward but leaves to the op before it, which keeps the same
  // tensor (a ResNet block's first convolution and the residual's ReLU before it): kept again only
  // where the two ops run on different pipeline devices, the tensor sent between them.
  double shared_input_bytes = 0;
  bool expert = false;     // belongs to a mixture-of-experts FFN (sharded by expert parallelism)
  // A weight product with a bias (y = xW + b): the forward adds it in the GEMM's epilogue; the
  // backward reduces the output's gradient over its m rows for the bias's gradient, a pass of its own.
  bool bias = false;
  // Its bias is added by the kernel after it (NVIDIA's BERT: a TorchScript bias + GELU, bias +
  // tanh for the pooler), not by a pass of its own when nothing is fused (since session 47).
  bool bias_in_activation = false;
  double backward_factor = 2;  // backward FLOPs and bytes / forward (input and weight gradients)
  // Where the backward's bytes and kernels are not the factor's (an op run as TensorFlow 1.x's
  // graph runs it, whose registered gradient is fewer kernels than its forward: dropout's five
  // forward, two backward): its bytes / the forward's (< 0: backward_factor) and its kernels (0:
  // twice the forward's). Since session 48.
  double backward_bytes_factor = -1;
  int backward_kernels = 0;
  // `bytes` over the bytes of the tensors the op reads and writes, where a chain of kernels reads
  // them more than once (OpGraph::scale_bytes): what serving's memory check divides out.
  double traffic_factor = 1;
  // Split over a tensor-parallel group (GEMM columns, attention heads, the FFN's width); false
  // for the ops on the full d_model width (norms, residual adds, their dropout), which every rank
  // of the group repeats unless sequence parallelism splits them along the sequence.
  bool tensor_split = true;
  // Causal attention counts only the lower triangle of the score matrix (Kaplan et al. 2020), as
  // FlashAttention computes it; an unfused kernel computes and moves the whole matrix. The work of
  // the whole matrix where it differs (0: the same as flops and bytes). A fused attention op sets
  // full_flops too (what a whole-matrix count says, for Megatron-LM's MFU), never full_bytes; it
  // executes its causal flops because executed_flops() takes full_flops only below Fusion::attention.
  double full_flops = 0, full_bytes = 0;
  // One fused attention kernel (FlashAttention): its rate is the measured rate of that kernel
  // generation on the device where the catalog gives one (docs/hardware-model.md).
  bool fused_attention = false;
  // Works on the attention score matrix (the products with it and the elementwise passes over
  // it): what selective recomputation recomputes (Korthikanti et al. 2022). `score_saved_bytes`:
  // the part of `saved_bytes` that is the score matrix (dropped by selective recomputation; Q, K
  // and V, the inputs of the recomputation, stay saved).
  bool score_matrix = false;
  double score_saved_bytes = 0;
  // Kernels the op launches forward (the backward twice as many, or backward_kernels): more than
  // one where an eager framework runs a norm, the rotary embedding or a gated activation as a chain
  // of its tensor operations (GraphShape::eager), or TensorFlow 1.x an op as several
  // (GraphShape::tensorflow1).
  int kernels = 1;
  // Work of the implementation, not of the model (the one-hot product of a TPU's embedding,
  // which a lookup does for free): executed and costed, left out of the model FLOPs of MFU.
  bool implementation = false;
  // The share of its FLOPs that is the model's (the rest: an expert's padded capacity slots,
  // which einsum dispatch computes and a gather would not): MFU counts that share.
  double model_share = 1;
  // A further use of weights another op owns (a recurrence's later steps): its weight gradient is
  // added into the others' in a pass of its own, as TensorFlow 1.x sums a variable's per-use
  // gradients (AddN): these bytes (two reads and a write of the weights), backward only.
  double gradient_sum_bytes = 0;
  // Elements of the dropout mask the op draws over a tensor on the full d_model width (the
  // residual branches' dropout, fused into the add or a kernel of its own; 0: none): a code that
  // syncs its random numbers across the tensor group all-reduces them (Parallelism::dropout_masks).
  double dropout_elements = 0;
  // Set on a layer's last op where what the next layer reads is more than this op's output: a
  // recurrence's last step, whose layer output is every step's (the sequence), and both
  // directions' where separate directions feed their own next layers (0: the op's own output).
  // What a pipeline stage sends and full recomputation keeps a layer (elements).
  double layer_output_elements = 0;
  // An expert product's: the rows its input had before the dispatch, the device's tokens (its own
  // rows are the slots routed to it): 8-bit dispatch casts those, once a token (since session 49).
  double dispatched_rows = 0;
};

// How much of the graph a framework fuses (docs/hardware-model.md, "Operator fusion"):
//   none         every elementwise step is its own kernel: attention scale, mask, softmax and
//                dropout each read and write the score matrix; residual dropout apart from the add
//                (the scenarios' `tensorflow1` is this level with TensorFlow 1.x's own kernels,
//                GraphShape::tensorflow1);
//   softmax      scale, mask and softmax are one kernel and the attention's dropout a kernel of its
//                own over the scores; dropout joins the residual add (Megatron-LM's fused
//                scale-mask-softmax and bias-dropout-add, its attention dropout a torch op);
//   elementwise  scale, mask, softmax and dropout are one kernel, dropout joins the residual add
//                (the default; what the builders emitted before fusion was an option);
//   attention    additionally, attention is one kernel (FlashAttention, Dao et al. 2022): scores
//                and probabilities never reach memory, and the backward pass recomputes them.
//                `attention` is FlashAttention-2's generation; `flash1`, `flash2` and `flash3` name
//                the generation (its measured rate, the device's `efficiency.attention`).
enum class Fusion { none, softmax, elementwise, attention };
// What a kernel executes under a fusion level: the whole score matrix unless attention is fused.
inline double executed_flops(const Op& op, Fusion f) {
  return f != Fusion::attention && op.full_flops > 0 ? op.full_flops : op.flops;
}
inline double executed_bytes(const Op& op, Fusion f) {
  return f != Fusion::attention && op.full_bytes > 0 ? op.full_bytes : op.bytes;
}
// "none", "tensorflow1" (none), "softmax", "elementwise", "attention", "flash1", "flash2", "flash3"
// (as in scenarios); anything else is elementwise.
Fusion fusion_of(const std::string& name);
// Whether a fusion level names TensorFlow 1.x's kernels (GraphShape::tensorflow1).
inline bool tensorflow1_kernels(const std::string& name) { return name == "tensorflow1"; }
// Whether a fusion level names fairseq's kernels (GraphShape::fairseq; since session 49).
inline bool fairseq_kernels(const std::string& name) { return name == "fairseq"; }
// The FlashAttention generation a fusion level runs: "flash1", "flash2" (also for "attention")
// or "flash3"; empty when attention is not fused.
std::string attention_kernel(const std::string& fusion);

struct GraphShape {
  std::int64_t batch = 1;       // sequences (or images) in the microbatch
  std::int64_t dtype_bytes = 2; // activations and weights in compute precision
  bool causal_skip = true;      // causal attention computes half the score matrix (Kaplan et al. 2020)
  Fusion fusion = Fusion::elementwise;
  bool training = true;         // dropout runs only in training
  // Eager PyTorch outside the attention kernel (docs/hardware-model.md, "Eager kernels"): RMSNorm,
  // the rotary embedding and a gated activation run as chains of tensor operations, each reading
  // and writing the whole tensor, the first two in float32, instead of one pass each.
  bool eager = false;
  // TensorFlow 1.x's graph without XLA (fusion: tensorflow1; docs/hardware-model.md, "TensorFlow
  // 1.x kernels"): the elementwise work of fusion `none` as its ops run, one kernel an op, with
  // the kernels of their registered gradients: dropout as five ops, the softmax as Eigen's four
  // passes, the heads split and merged by transposes. Only with Fusion::none.
  bool tensorflow1 = false;
  // fairseq's PyTorch of 2019 (fusion: fairseq; docs/hardware-model.md, "fairseq's kernels"): the
  // elementwise work of fusion `none`, but the queries scaled before their product (`q *=
  // self.scaling`), not the scores, the attention softmax in fp32 and cast back (utils.softmax's
  // dtype=float32, then .type_as), and the GELU in fp32 between two casts. Only with Fusion::none.
  bool fairseq = false;
  // GPT-NeoX's layer code of 2022-2023, Pythia's (eager: neox; docs/hardware-model.md, "GPT-NeoX's
  // kernels"; since session 51): beside the attention kernel and the fused bias + GELU, the copies
  // and adds its PyTorch runs as kernels of their own: the query-key-value product's bias added
  // apart (and its gradient assembled from the three heads' by a concatenation), the partial
  // rotary embedding's slices and rejoin, FlashAttention's packing of Q, K and V, the context's
  // permute to contiguous, and the residual branches' unfused bias adds. With `eager`.
  bool neox = false;
  // GLM-130B's LargeScale, a Megatron-DeepSpeed fork (eager: largescale; docs/hardware-model.md,
  // "LargeScale's kernels"; since session 51): the query-key-value product's bias added apart and its
  // gradient assembled by a concatenation, the query divided by the norm factor and the key by 1.0
  // in kernels of their own before the scores, the context made contiguous, the feed-forward's up
  // projection's bias added apart, and DeepNorm's residual scaling (TransformerDesign::deepnorm) a
  // multiply of its own. Not with neox.
  bool largescale = false;
  // With neox or largescale, full recomputation and Parallelism::partition_activations: DeepSpeed's activation checkpointing with
  // partition_activations clones each layer's input forward and gathers it again backward
  // (zeros, the part copied in, an all-gather over the tensor group, its copy back).
  bool neox_partition = false;
  // The training loss over the logits (TrainingJob::cross_entropy; docs/hardware-model.md, "The
  // loss's kernels"): one fused pass, Megatron-LM's vocab_parallel_cross_entropy over
  // output.float(), or PyTorch's F.cross_entropy over logits.float(). Since session 48.
  enum class CrossEntropy { fused, megatron, pytorch };
  CrossEntropy cross_entropy = CrossEntropy::fused;
  // Expert parallelism: the number of devices (each with its own microbatch) whose tokens are
  // dispatched to the experts together, min(data, experts) in training, 1 on one device. The
  // expert ops are the share of one device: experts / group experts, each with the slots routed
  // to it from the whole group (at least one), so an expert's capacity is rounded over the group.
  std::int64_t expert_group = 1;
  // Convolutions' activations channels-last (NHWC): PyTorch trains batch norm there with cuDNN's
  // persistent kernels (CUDNN_BATCHNORM_SPATIAL_PERSISTENT), which keep the input on chip between the
  // statistics and the normalisation.
  bool channels_last = false;
  // Serving's prefill: the output head and its softmax run on each sequence's last position only,
  // the one that yields the next token (vLLM's LogitsProcessor selects those rows before the head;
  // Hugging Face's generate passes logits_to_keep = 1). The final norm still runs on every position.
  bool last_position_logits = false;
  // Context parallelism (training, decoder-only): the device's share of each sequence, seq_len /
  // context positions, whose attention reads the keys and values of all seq_len (gathered).
  std::int64_t context = 1;
  // The tensor-parallel degree, where an op's bytes depend on it beyond the split the cost applies
  // (neox_partition's checkpoint: a rank keeps 1 / tensor of the layer's input). Since session 51.
  std::int64_t tensor = 1;
};

class OpGraph {
 public:
  OpGraph();
  ~OpGraph();
  OpGraph(OpGraph&&) noexcept;
  OpGraph& operator=(OpGraph&&) noexcept;
  OpGraph(const OpGraph&) = delete;
  OpGraph& operator=(const OpGraph&) = delete;

  // Adds an op that consumes the outputs of `inputs`; returns its id.
  int add(Op op, const std::vector<int>& inputs);
  // Records the whole-matrix work of an unfused causal attention op (Op::full_flops, full_bytes; a
  // fused op sets its full_flops where it is built)
  // and the whole matrix it keeps for the backward pass.
  void set_full_work(int id, double flops, double bytes, double saved_bytes) {
    Op& op = ops_.at(static_cast<std::size_t>(id));
    op.full_flops = flops;
    op.full_bytes = bytes;
    op.saved_bytes = saved_bytes;
  }
  // The backward's own bytes (a multiple of the forward's) and kernels (Op::backward_bytes_factor).
  void set_backward_work(int id, double bytes_factor, int kernels) {
    Op& op = ops_.at(static_cast<std::size_t>(id));
    op.backward_bytes_factor = bytes_factor;
    op.backward_kernels = kernels;
  }
  // A chain of `kernels` kernels moving `factor` times the op's bytes (its whole-matrix bytes
  // too, where it has them).
  void scale_bytes(int id, double factor, int kernels) {
    Op& op = ops_.at(static_cast<std::size_t>(id));
    op.bytes *= factor;
    op.full_bytes *= factor;
    op.traffic_factor *= factor;
    op.kernels = kernels;
  }
  // An eager framework's chain of kernels in place of one pass (GraphShape::eager).
  void set_chain(int id, double bytes, int kernels, double saved_bytes) {
    Op& op = ops_.at(static_cast<std::size_t>(id));
    op.bytes = bytes;
    op.kernels = kernels;
    op.saved_bytes = saved_bytes;
  }
  // What an op keeps for its backward pass, where that is not its output (a residual add keeps
  // nothing; a product whose input another op already keeps adds nothing), and what of that is the
  // score matrix (by default at most what it kept of it before).
  void set_saved(int id, double saved_bytes, double score_saved_bytes = -1) {
    Op& op = ops_.at(static_cast<std::size_t>(id));
    op.saved_bytes = saved_bytes;
    op.score_saved_bytes = score_saved_bytes >= 0 ? score_saved_bytes : std::min(op.score_saved_bytes, saved_bytes);
  }
  // The backward's work as a multiple of the forward's (2 for a GEMM: input and weight gradients).
  void set_backward_factor(int id, double factor) { ops_.at(static_cast<std::size_t>(id)).backward_factor = factor; }
  void set_model_share(int id, double share) { ops_.at(static_cast<std::size_t>(id)).model_share = share; }
  void set_bias_in_activation(int id) { ops_.at(static_cast<std::size_t>(id)).bias_in_activation = true; }
  void set_dropout_elements(int id, double elements) { ops_.at(static_cast<std::size_t>(id)).dropout_elements = elements; }
  void set_replicated_params(int id, double params) { ops_.at(static_cast<std::size_t>(id)).replicated_params = params; }
  void set_gradient_sum(int id, double bytes) { ops_.at(static_cast<std::size_t>(id)).gradient_sum_bytes = bytes; }
  void set_dispatched_rows(int id, double rows) { ops_.at(static_cast<std::size_t>(id)).dispatched_rows = rows; }
  void set_layer_output(int id, double elements) { ops_.at(static_cast<std::size_t>(id)).layer_output_elements = elements; }
  void set_shared_input(int id, double bytes) { ops_.at(static_cast<std::size_t>(id)).shared_input_bytes = bytes; }
  // An elementwise pass over the score matrix: all it saves is score matrix.
  void mark_score_matrix(int id) {
    Op& op = ops_.at(static_cast<std::size_t>(id));
    op.score_matrix = true;
    op.score_saved_bytes = op.saved_bytes;
  }
  const Op& op(int id) const { return ops_.at(static_cast<std::size_t>(id)); }
  const std::vector<Op>& ops() const { return ops_; }
  std::size_t size() const { return ops_.size(); }
  std::vector<int> inputs_of(int id) const;
  std::vector<int> topological_order() const;  // throws std::logic_error on a cycle

  double parameters() const;
  double forward_flops() const;
  // The model's own: without the ops marked `implementation` (the FLOPs that MFU counts).
  double model_forward_flops() const;
  // The same with causal attention counted over the whole score matrix (Op::full_flops), as
  // Megatron-LM's MFU formula counts it (Korthikanti et al. 2022).
  double forward_flops_full_attention() const;
  double forward_bytes() const;
  double saved_bytes() const;
  int layers() const;  // number of distinct layer indices >= 0

 private:
  struct Topology;  // Boost.Graph adjacency list, kept out of this header
  std::vector<Op> ops_;
  std::unique_ptr<Topology> topology_;
};

// Builds the forward graph of one microbatch. Throws std::invalid_argument for a design
// that cannot be built (a zero width, heads that do not divide d_model, ...).
OpGraph build_graph(const ModelDesign& design, const GraphShape& shape);

// Why a design at a microbatch is too large for the builders to cost (a tensor of more than 2^56
// elements, more than 100,000 layers: no machine holds it, and its sizes would overflow), or "".
// build_graph throws std::invalid_argument with this reason.
std::string size_limit(const ModelDesign& design, std::int64_t microbatch);

// The sliding window a decoder layer (from 0) attends within, in positions; 0: the whole context
// (no window, or one of the `global_every` layers).
std::int64_t attention_window(const TransformerDesign& design, std::int64_t layer);

// Trainable parameters of a design (independent of the shape).
double count_parameters(const ModelDesign& design);

// Tokens (or samples) one sequence contributes, for per-token figures.
std::int64_t tokens_per_sample(const ModelDesign& design);

}  // namespace dlcarbon::graph
