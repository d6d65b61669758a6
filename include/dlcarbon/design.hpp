#pragma once
// Model designs: the architecture a user knows, as plain data. sim/scenario fills these
// from YAML (`models[].design`); sim/graph turns them into operator graphs.

#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace dlcarbon {

// GPT / LLaMA (decoder), BERT (encoder), T5 (encoder-decoder), and their mixture-of-experts forms.
struct TransformerDesign {
  enum class Arch { decoder, encoder, encoder_decoder };
  enum class Position { learned, rotary, relative, none };
  Arch arch = Arch::decoder;
  std::int64_t encoder_layers = 0;  // encoder or encoder-decoder
  std::int64_t decoder_layers = 0;  // decoder or encoder-decoder
  std::int64_t d_model = 0;
  std::int64_t heads = 0;
  std::int64_t kv_heads = 0;  // grouped-query attention; = heads when not given
  std::int64_t head_dim = 0;  // = d_model / heads when not given (T5-11B: 128 with 128 heads)
  std::int64_t d_ff = 0;
  bool gated_ffn = false;     // SwiGLU/GEGLU: three FFN matrices instead of two
  // Parallel block (GPT-J, PaLM, Falcon): attention and feed-forward read one norm of the layer's
  // input and their outputs are summed into one residual add; under tensor parallelism the sum is
  // all-reduced once a layer instead of once a sub-block (decoder only, dense).
  bool parallel_block = false;
  // A parallel block's norms: 1 (GPT-J, PaLM, Falcon-7B: both branches read one norm of the input)
  // or 2 (GPT-NeoX's use_parallel_residual, Pythia, Falcon-40B/180B's new_decoder_architecture:
  // attention and feed-forward each read a norm of their own).
  std::int64_t parallel_norms = 1;
  // DeepNorm (Wang et al. 2022, DeepNet; GLM-130B): post-LN layers whose residual is scaled by a
  // constant alpha before the add, x_{l+1} = LN(alpha x_l + G(x_l)) (decoder only). Costed only
  // where a code runs the scaling as a kernel of its own (TrainingJob `eager: largescale`); a fused
  // residual add folds it (since session 51).
  bool deepnorm = false;
  // Sliding-window attention (decoder only): a query attends to the `sliding_window` latest
  // positions, its own included (Mistral 7B v0.1: 4,096 on every layer), except on every
  // `global_every`-th layer, which attends to the whole context (Gemma 2: 2, Gemma 3: 6, the
  // layers i with (i + 1) % global_every == 0, as Hugging Face's Gemma codes count them).
  // 0: no window.
  std::int64_t sliding_window = 0;
  std::int64_t global_every = 0;
  // The share of each head's channels the rotary embedding turns (GPT-NeoX's rotary_pct: 0.25 in
  // Pythia; 1 for LLaMA); position: rotary only.
  double rotary_fraction = 1;
  // Rows of a learned position table (BERT's max_position_embeddings, 512, whatever the phase's
  // sequence length); 0: seq_len.
  std::int64_t max_positions = 0;
  std::int64_t vocab = 0;
  // An encoder-decoder's decoder vocabulary where it has its own (GShard's M4: 64,000 source,
  // 32,000 target tokens): the decoder's table and the head's rows; 0: the shared `vocab`.
  std::int64_t target_vocab = 0;
  std::int64_t seq_len = 0;          // encoder input (or decoder-only context)
  std::int64_t target_seq_len = 0;   // decoder side of an encoder-decoder; = seq_len when not given
  bool tied_embeddings = true;       // output projection shares the input embedding
  Position position = Position::learned;
  bool rms_norm = false;  // RMSNorm (one vector) instead of LayerNorm (two)
  bool biases = true;     // linear layers carry biases (GPT, BERT) or not (LLaMA, T5)
  std::int64_t type_vocab = 0;  // BERT token types
  bool pooler = false;          // BERT pooler
  // Vision Transformer (Dosovitskiy et al. 2021; builder `vit`, an encoder): an image of
  // image x image pixels and `channels` channels cut into (image / patch)^2 patches, each embedded by
  // one product, a class token before them (seq_len = patches + 1, derived), learned positions, the
  // encoder's layers, a final norm and a classifier of `classes` on the class token. 0: not a ViT.
  std::int64_t image = 0;
  std::int64_t patch = 0;
  std::int64_t image_channels = 3;
  std::int64_t classes = 0;
  // Tokens a training sample counts for: a sequence's, or one for an image (a ViT's count is images).
  std::int64_t tokens_per_sample() const { return image > 0 ? 1 : seq_len; }
  // BERT's masked-LM head over the masked positions only (15 %, gathered first, as Google's BERT
  // and fairseq's RoBERTa since late 2019 run it) or over every position, the unmasked ones
  // ignored by the loss (NVIDIA's PyTorch BERT and Hugging Face's BertForPreTraining, 2019-2020).
  bool mlm_all_positions = false;
  // Mixture of experts: every `moe_every`-th FFN has `experts` experts, `top_k` per token.
  std::int64_t experts = 0;
  std::int64_t top_k = 1;
  std::int64_t moe_every = 1;
  double capacity_factor = 1.0;
  // Fine-grained experts (DeepSeekMoE, Dai et al. 2024; DeepSeek-V3): each expert's hidden width
  // (0: d_ff), `shared_experts` experts of that width that every token of an MoE layer runs
  // besides its top_k routed ones, and `dense_layers` leading layers with a dense FFN of d_ff
  // before the MoE layers begin (moe_every counts from there).
  std::int64_t expert_d_ff = 0;
  std::int64_t shared_experts = 0;
  std::int64_t dense_layers = 0;
  // Node-limited routing (DeepSeek-V3, arXiv:2412.19437, Sec. 2.1.2 and 3.2.2): a token's routed
  // experts lie on at most this many nodes; it crosses the network once a node and is forwarded
  // to the experts' GPUs inside the node. 0: no limit, every slot travels on its own.
  std::int64_t route_nodes = 0;
  // Device-limited routing (DeepSeek-V2, arXiv:2405.04434, Sec. 2.2.2): a token's routed experts
  // lie on at most this many devices of the expert-parallel group; it is sent once to each. 0: no
  // limit. Not with route_nodes.
  std::int64_t route_devices = 0;
  // How tokens reach their experts: by index (a gather, no FLOPs: GPU codes), or by one-hot
  // einsums over groups of `group_size` tokens (GShard, Mesh TensorFlow: dispatch "GSEC,GSM->EGCM"
  // and combine "GSEC,GECM->GSM", 2 G S E C M FLOPs each; C = top_k x capacity_factor x S / E).
  bool einsum_dispatch = false;
  std::int64_t group_size = 0;  // tokens a dispatch group; 0: a microbatch's tokens on a device
  // The fewest slots an expert has in a group (einsum dispatch): Mesh TensorFlow's
  // moe_min_expert_capacity (MoE1D's default 4). 1: at least one slot, whatever the capacity.
  std::int64_t min_capacity = 1;
  double dropout = 0;  // attention and residual dropout rate in training (0: no dropout kernels)
  // The attention probabilities' own rate where the code sets one apart (tensor2tensor's 2017
  // transformer_base: attention_dropout 0.0 beside a residual dropout of 0.1); < 0: `dropout`'s.
  double attention_dropout = -1;
  // The products an activation follows (a feed-forward's up projection, BERT's pooler and masked-LM
  // transform) add their bias in the activation's kernel (NVIDIA's PyTorch BERT: bias_gelu and
  // bias_tanh, TorchScript), not in a pass of their own under `fusion: none` (since session 47).
  bool bias_in_activation = false;
  // Non-causal attention adds a mask to its scores (BERT's and tensor2tensor's padding mask); a
  // ViT's (torchvision's) adds none (since session 47).
  bool padding_mask = true;
  // The cell of each layer: the Transformer's, or the Evolved Transformer's (So et al. 2019, as
  // tensor2tensor implements it: gated linear unit, convolution branches, attention and FFN; each
  // cell about twice as deep as a Transformer layer). Not with experts.
  bool evolved = false;
  // The token embedding as a product of the one-hot ids with the table (BERT's and other
  // TensorFlow codes on TPUs, `use_one_hot_embeddings`): 2 x tokens x vocab x d_model FLOPs a
  // stack forward and the weight gradient backward, where a lookup (a gather) costs none.
  bool one_hot_embedding = false;
  // Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434, Sec. 2.1; DeepSeek-V3): when
  // kv_lora_rank > 0 keys and values come from a compressed latent of that width (a down
  // projection, an RMSNorm, an up projection to the heads), queries from one of q_lora_rank (0:
  // a plain projection), and each head's query and key carry head_dim channels without position
  // plus rope_head_dim rotary ones (the rotary key is one for all heads); values have v_head_dim
  // (0: head_dim). Training runs the up projections explicitly (no weight absorption).
  // Multi-token prediction modules (DeepSeek-V3, Sec. 2.2; decoder only): each predicts one more
  // token ahead with a 2 d -> d projection, one layer of the model's kind and the shared head.
  std::int64_t mtp_depth = 0;
  std::int64_t q_lora_rank = 0;
  std::int64_t kv_lora_rank = 0;
  std::int64_t rope_head_dim = 0;
  std::int64_t v_head_dim = 0;
};

// ResNet: stem, four stages of (bottleneck) blocks, global pool, classifier.
struct ResNetDesign {
  std::vector<std::int64_t> blocks{3, 4, 6, 3};
  bool bottleneck = true;
  std::int64_t image = 224;
  std::int64_t channels = 3;
  std::int64_t width = 64;  // channels after the stem
  std::int64_t classes = 1000;
};

// A character CNN that makes each token's input vector (Kim et al. 2016, as ELMo's biLM uses it):
// characters embedded, 1-D convolutions of several widths over the token's characters, max-pooled
// over positions, highway layers, and a projection to the LSTM's input width.
struct CharCnnDesign {
  std::int64_t chars = 0;      // character vocabulary
  std::int64_t embedding = 0;  // character embedding width
  std::int64_t max_chars = 0;  // characters per token (padded)
  std::vector<std::pair<std::int64_t, std::int64_t>> filters;  // (width, count) of each convolution
  std::int64_t highway = 0;    // highway layers over the concatenated filters
  std::int64_t width() const {
    std::int64_t w = 0;
    for (const auto& f : filters) w += f.second;
    return w;
  }
};

// Stacked LSTM language model (ELMo / GNMT style).
struct LstmDesign {
  std::int64_t layers = 1;
  std::int64_t input = 0;       // input width (embedding size)
  std::int64_t hidden = 0;      // cell width
  std::int64_t projection = 0;  // projected output width (ELMo), 0 = none
  std::int64_t vocab = 0;       // softmax over the vocabulary, 0 = none
  std::int64_t seq_len = 0;
  bool bidirectional = false;
  // Bidirectional only: the two directions are separate language models (ELMo's biLM): each
  // stacks its layers on its own input and has its own softmax (weights shared), instead of each
  // layer reading both directions of the layer below.
  bool separate_directions = false;
  // Token inputs from a character CNN instead of a lookup table (filters empty: a lookup).
  CharCnnDesign char_cnn;
};

struct MlpDesign {
  std::vector<std::int64_t> widths;  // input, hidden..., output
  // The input takes a gradient (an MLP on another module's output, DLRM's top MLP): its first
  // product computes an input gradient too. False: it reads data (features), whose gradient no one
  // needs, and the first product computes its weight gradient alone.
  bool input_gradient = false;
};

// An operator graph read from a file (docs/graph-file-format.md): one sample's ops.
struct FileOp {
  std::string name;
  std::string kind;  // matmul, batched_matmul, conv2d, elementwise, softmax, norm, embedding, pool, router
  int layer = -1;
  std::int64_t m = 0, n = 0, k = 0, count = 1;  // GEMM view per sample (m grows with the batch)
  double elements = 0;                          // non-GEMM ops: output elements per sample
  double flops_per_element = 1;
  double params = 0;
  std::vector<std::string> inputs;
  double input = 0;  // conv2d: the feature map read per sample (0: the unfolded m x k)
};

struct FileGraphDesign {
  std::string path;  // as resolved, for messages
  std::vector<FileOp> ops;
  std::int64_t tokens_per_sample = 1;
};

using ModelDesign =
    std::variant<std::monostate, TransformerDesign, ResNetDesign, LstmDesign, MlpDesign, FileGraphDesign>;

}  // namespace dlcarbon
