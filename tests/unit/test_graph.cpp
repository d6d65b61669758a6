#include <doctest/doctest.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include <algorithm>
#include <cmath>

#include "dlcarbon/graph.hpp"

using namespace dlcarbon;
using graph::build_graph;
using graph::count_parameters;
using graph::GraphShape;
using graph::Fusion;
using dlcarbon::LstmDesign;
using dlcarbon::ResNetDesign;
using graph::OpKind;

namespace {
// The op of a graph by name (the test fails where there is none).
const graph::Op& named(const graph::OpGraph& g, const std::string& name) {
  const auto it = std::find_if(g.ops().begin(), g.ops().end(), [&](const graph::Op& o) { return o.name == name; });
  REQUIRE(it != g.ops().end());
  return *it;
}
// An op run as a framework's kernels: its forward bytes and kernels, its backward's.
void check_kernels(const graph::Op& op, double bytes, int kernels, double backward_bytes, int backward_kernels) {
  CAPTURE(op.name);
  CHECK(op.bytes == approx(bytes));
  CHECK(op.kernels == kernels);
  CHECK(op.backward_bytes_factor * op.bytes == approx(backward_bytes));
  CHECK(op.backward_kernels == backward_kernels);
}
TransformerDesign gpt3() {
  // Brown et al. 2020, Table 2.1: 96 layers, d 12288, 96 heads, d_ff 4 d, context 2048, BPE 50257.
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = 96;
  d.d_model = 12288;
  d.heads = 96;
  d.d_ff = 49152;
  d.vocab = 50257;
  d.seq_len = 2048;
  return d;
}
// A small GPT-style decoder: d 256, 4 heads, d_ff 1024, vocabulary 1000, 128 positions.
// One decoder layer small enough to count bytes by hand: d_model 8, 2 heads of 4, FFN 16,
// vocabulary 10, 4 positions.
TransformerDesign one_layer_decoder() {
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = 1;
  d.d_model = 8;
  d.heads = 2;
  d.d_ff = 16;
  d.vocab = 10;
  d.seq_len = 4;
  return d;
}
TransformerDesign small_gpt(std::int64_t layers = 2) {
  TransformerDesign d = gpt3();
  d.decoder_layers = layers;
  d.d_model = 256;
  d.heads = 4;
  d.d_ff = 1024;
  d.vocab = 1000;
  d.seq_len = 128;
  return d;
}
TransformerDesign llama(std::int64_t layers, std::int64_t d_model, std::int64_t heads, std::int64_t d_ff) {
  // Touvron et al. 2023a, Table 2: pre-RMSNorm, SwiGLU, rotary, no biases, untied, vocab 32000.
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = layers;
  d.d_model = d_model;
  d.heads = heads;
  d.d_ff = d_ff;
  d.gated_ffn = true;
  d.vocab = 32000;
  d.seq_len = 2048;
  d.tied_embeddings = false;
  d.position = TransformerDesign::Position::rotary;
  d.rms_norm = true;
  d.biases = false;
  return d;
}
TransformerDesign bert(std::int64_t layers, std::int64_t d_model, std::int64_t heads) {
  // Devlin et al. 2019: WordPiece 30522, 512 positions, 2 token types, GELU FFN 4 d, pooler.
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::encoder;
  d.encoder_layers = layers;
  d.d_model = d_model;
  d.heads = heads;
  d.d_ff = 4 * d_model;
  d.vocab = 30522;
  d.seq_len = 512;
  d.type_vocab = 2;
  d.pooler = true;
  return d;
}
// |x - published| beyond half a unit of the published figure's last printed digit, relative.
double beyond_print(double x, double published, double half_unit) {
  return std::max(0.0, std::abs(x - published) - half_unit) / published;
}
}  // namespace

TEST_CASE("parameter counts of published designs") {
  // GPT-3: 12 L d^2 + 13 L d (layers) + V d + n_ctx d + 2 d = 174,604,259,328 (175B published).
  const double gpt = count_parameters(gpt3());
  CHECK(gpt == 174604259328.0);
  CHECK(std::abs(gpt / 175e9 - 1) < 0.01);
  // LLaMA-7B: 32 x (4 d^2 + 3 d d_ff + 2 d) + 2 V d + d = 6,738,415,616 (6.7B published).
  const double l7 = count_parameters(llama(32, 4096, 32, 11008));
  CHECK(l7 == 6738415616.0);
  CHECK(std::abs(l7 / 6.7e9 - 1) < 0.01);
  // LLaMA-65B: 80 layers, d 8192, 64 heads, d_ff 22016: 65,285,660,672 (65.2B published).
  const double l65 = count_parameters(llama(80, 8192, 64, 22016));
  CHECK(l65 == 65285660672.0);
  CHECK(std::abs(l65 / 65.2e9 - 1) < 0.01);
  // BERT-base: 110,104,890 with the MLM head (transform, norm, output bias); 110M published.
  const double bb = count_parameters(bert(12, 768, 12));
  CHECK(bb == 110104890.0);
  CHECK(std::abs(bb / 110e6 - 1) < 0.01);
  // BERT-large: 336,224,058; the paper prints "340M" (2 significant digits, +/- 5M):
  // -1.1 % raw, within 1 % of the printed interval.
  const double bl = count_parameters(bert(24, 1024, 16));
  CHECK(bl == 336224058.0);
  CHECK(beyond_print(bl, 340e6, 5e6) < 0.01);
  // An untied masked-LM decoder has a table of its own and keeps its output bias (BERT's
  // output_bias, fairseq's RobertaLMHead.bias): BERT-base + 30,522 x 768 = 110,104,890 +
  // 23,440,896 = 133,545,786.
  TransformerDesign untied = bert(12, 768, 12);
  untied.tied_embeddings = false;
  CHECK(count_parameters(untied) == 133545786.0);
}

TEST_CASE("T5-11B: 128 heads of 128 with d_model 1024") {
  // Raffel et al. 2020: 24+24 layers, d 1024, d_ff 65536, 128 heads x d_kv 128, vocab 32128,
  // no biases, scale-only layer norm, relative position buckets (32 per head per stack).
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = d.decoder_layers = 24;
  d.d_model = 1024;
  d.heads = 128;
  d.head_dim = 128;
  d.d_ff = 65536;
  d.vocab = 32128;
  d.seq_len = 512;
  d.target_seq_len = 114;
  d.position = TransformerDesign::Position::relative;
  d.rms_norm = true;
  d.biases = false;
  // Encoder: 24 x (4 x 1024 x 16384 + 2 x 1024 x 65536 + 2 x 1024) = 4,831,887,360
  // Decoder: 24 x (8 x 1024 x 16384 + 2 x 1024 x 65536 + 3 x 1024) = 6,442,524,672
  // + shared embedding 32128 x 1024 + 2 final norms + 2 x 32 x 128 relative = 11,307,321,344.
  const double p = count_parameters(d);
  CHECK(p == 11307321344.0);
  // Published "11 billion" (+/- 0.5e9 printed): +2.8 % raw, 0 beyond the printed interval.
  CHECK(beyond_print(p, 11e9, 0.5e9) == 0);
}

TEST_CASE("forward FLOPs with causal attention counted over the whole score matrix (Megatron-LM's MFU)") {
  const TransformerDesign d = small_gpt(4);
  // Per layer and sequence, the upper half of the matrix that causal kernels skip: QK^T and PV,
  // 2 x 4 heads x 128 x 128 x 64 / 2 = 4,194,304 each, and the softmax's 5 FLOPs a score over
  // 4 x 128 x 128 / 2 = 32,768 scores = 163,840: 8,552,448 a layer, 34,209,792 for 4 layers.
  for (const auto fusion : {graph::Fusion::elementwise, graph::Fusion::attention}) {
    const auto g = build_graph(d, GraphShape{3, 2, true, fusion});
    INFO(static_cast<int>(fusion));
    CHECK(g.forward_flops_full_attention() - g.forward_flops() == approx(3 * 34209792.0));
  }
  // Unfused, the scale and the mask are kernels of their own, 1 FLOP a score each: + 4 x 2 x 32,768.
  const auto eager = build_graph(d, GraphShape{3, 2, true, graph::Fusion::none});
  CHECK(eager.forward_flops_full_attention() - eager.forward_flops() == approx(3 * (34209792.0 + 262144)));
  // Without causal skipping there is nothing to add.
  const auto whole = build_graph(d, GraphShape{3, 2, false});
  CHECK(whole.forward_flops_full_attention() == whole.forward_flops());
}

TEST_CASE("decoder forward FLOPs per token = 2N + 2 n_layer n_ctx d_model (Kaplan et al. 2020)") {
  for (const auto& d : {gpt3(), llama(32, 4096, 32, 11008)}) {
    const auto g = build_graph(d, GraphShape{2, 2, true});
    const double tokens = 2.0 * static_cast<double>(d.seq_len);
    const double per_token = g.forward_flops() / tokens;
    // N: the parameters a token is multiplied by: all but the input lookup tables (token and
    // position embeddings). Kaplan's N also leaves out the de-embedding (2 d V per token),
    // which the graph counts: +0.35 % for GPT-3, +1.9 % / 2 for LLaMA-7B's untied head.
    double n = g.parameters();
    for (const auto& op : g.ops()) {
      if (op.kind == OpKind::embedding) n -= op.params;
    }
    const double kaplan = 2 * n + 2.0 * static_cast<double>(d.decoder_layers * d.seq_len * d.d_model);
    INFO(per_token, kaplan);
    CHECK(std::abs(per_token / kaplan - 1) < 0.01);
  }
}

TEST_CASE("8-bit inference folds ResNet's batch norms into the convolutions and fuses their ReLUs") {
  // As integer quantization flows do (TensorFlow Lite's converter, fused activations): no batch
  // norm or ReLU pass, the same convolution FLOPs, each batch norm's shift a bias of the
  // convolution (53 norms' scales gone: 25,557,032 less the 26,560 channels' scales).
  const ResNetDesign r;
  GraphShape fp16{1, 2, true};
  fp16.training = false;
  GraphShape int8 = fp16;
  int8.dtype_bytes = 1;
  const auto a = build_graph(r, fp16), q = build_graph(r, int8);
  const auto count = [](const graph::OpGraph& g, const std::string& part) {
    return std::count_if(g.ops().begin(), g.ops().end(), [&](const graph::Op& op) { return op.name.find(part) != std::string::npos; });
  };
  CHECK(count(a, ".bn") == 53);
  CHECK(count(q, ".bn") == 0);
  CHECK(count(a, "relu") == 33);
  CHECK(count(q, "relu") == 0);
  double conv_a = 0, conv_q = 0;
  for (const auto& op : a.ops()) conv_a += op.kind == OpKind::conv2d ? op.flops : 0;
  for (const auto& op : q.ops()) conv_q += op.kind == OpKind::conv2d ? op.flops : 0;
  CHECK(conv_q == approx(conv_a));
  CHECK(a.parameters() - q.parameters() == approx(26560));
  // Training, or inference at 16 bits, keeps them.
  CHECK(count(build_graph(r, GraphShape{1, 1, true}), ".bn") == 53);
}

TEST_CASE("an encoder's inference runs the stack and pooler, not the masked-LM head") {
  // The pretraining task's head (transform, norm, vocabulary product, loss) is not what a BERT
  // serves for its features or a classifier (since session 46, a review).
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::encoder;
  d.encoder_layers = 2;
  d.d_model = 64;
  d.heads = 4;
  d.d_ff = 256;
  d.vocab = 100;
  d.seq_len = 32;
  d.pooler = true;
  GraphShape serve{2, 2, true};
  serve.training = false;
  const auto g = build_graph(d, serve);
  for (const auto& op : g.ops()) CHECK(op.name.rfind("mlm.", 0) != 0);
  CHECK(std::any_of(g.ops().begin(), g.ops().end(), [](const graph::Op& op) { return op.name == "pooler"; }));
  const auto t = build_graph(d, GraphShape{2, 2, true});
  CHECK(std::any_of(t.ops().begin(), t.ops().end(), [](const graph::Op& op) { return op.name == "mlm.logits"; }));
}

TEST_CASE("ResNet-50: 25.6 M parameters, 4.1 GMAC = 8.2 GFLOP per 224x224 image") {
  const ResNetDesign r;  // defaults: [3,4,6,3] bottleneck, 224, width 64, 1000 classes
  const auto g = build_graph(r, GraphShape{1, 4, true});
  // torchvision resnet50: 25,557,032 parameters (conv, BN scale/shift, fc with bias).
  CHECK(g.parameters() == 25557032.0);
  double gemm_flops = 0;
  for (const auto& op : g.ops()) {
    if (graph::is_gemm(op.kind)) gemm_flops += op.flops;
  }
  // Convolutions and fc: 4.09e9 multiply-adds = 8.18e9 FLOP.
  CHECK(gemm_flops == approx(8.18e9).epsilon(0.01));
  CHECK(g.forward_flops() == approx(8.2e9).epsilon(0.02));
  // torchvision's Bottleneck as eager PyTorch runs it (`fusion: none`): relu(bn1(conv1)),
  // relu(bn2(conv2)), bn3(conv3), the add and its ReLU; in place, the block's ReLUs keep nothing the
  // next convolution does not keep already. The images take no gradient: the stem convolution's
  // backward is its weight gradient alone.
  GraphShape eager_shape{1, 4, true};
  eager_shape.fusion = graph::Fusion::none;
  const auto eager = build_graph(r, eager_shape);
  int relus = 0;
  double relu_bytes = 0;
  for (const auto& op : eager.ops()) {
    if (op.name.find(".relu") != std::string::npos) {
      relu_bytes += op.bytes;
      if (op.name.rfind("stage", 0) != 0) continue;
      ++relus;
      CHECK(op.saved_bytes == 0);
    }
  }
  CHECK(relus == 2 * (3 + 4 + 6 + 3));
  // Under a fusion of elementwise chains (the default, XLA's) a training ReLU rides on its batch
  // norm's pass (since session 56): no ReLU op, and nothing else differs, by the bytes moved.
  const auto bytes_of = [](const graph::OpGraph& graph) {
    double sum = 0;
    for (const auto& op : graph.ops()) sum += op.bytes;
    return sum;
  };
  CHECK(std::none_of(g.ops().begin(), g.ops().end(), [](const graph::Op& op) { return op.name.find(".relu") != std::string::npos; }));
  CHECK(eager.ops().size() == g.ops().size() + 2 * (3 + 4 + 6 + 3) + 1);  // and the stem's
  CHECK(bytes_of(eager) == approx(bytes_of(g) + relu_bytes));
  // And the same activations kept: the stem's ReLU kept the max pool's input, which its norm keeps
  // when fused (the blocks' ReLUs kept nothing).
  const auto kept = [](const graph::OpGraph& graph) {
    double sum = 0;
    for (const auto& op : graph.ops()) sum += op.saved_bytes;
    return sum;
  };
  CHECK(kept(eager) == approx(kept(g)));
  CHECK(named(g, "stem.conv").backward_factor == 1);
  CHECK(named(g, "input").backward_factor == 0);
}

TEST_CASE("ViT-B/16 and ViT-L/16: torchvision's parameter counts, B/16's 17.56 GMAC at 224x224, and Dosovitskiy et al.'s pre-training exaFLOPs") {
  // ViT-B/16: 12 layers, d 768, 12 heads, d_ff 3072, 196 patches of 16 x 16 x 3 and a class token
  // (197 tokens). A layer 4 (d^2 + d) + 2 d d_ff + d_ff + d + 2 x 2 d = 7,087,872, twelve
  // 85,054,464; the patch embedding 768 x 768 + 768 = 590,592; 197 positions and the class token
  // 198 x 768 = 152,064; the final norm 1,536; the classifier 768 x 1,000 + 1,000 = 769,000:
  // 86,567,656, torchvision's vit_b_16.
  TransformerDesign b;
  b.arch = TransformerDesign::Arch::encoder;
  b.encoder_layers = 12;
  b.d_model = 768;
  b.heads = 12;
  b.kv_heads = 12;
  b.d_ff = 3072;
  b.image = 224;
  b.patch = 16;
  b.classes = 1000;
  b.seq_len = 197;
  b.max_positions = 197;
  b.tied_embeddings = false;
  const auto g = build_graph(b, GraphShape{1, 2, true});
  CHECK(g.parameters() == 86567656.0);
  // Forward products: per layer 197 x (4 d^2 + 2 d d_ff) + 2 x 197^2 x d multiply-adds =
  // 1,394,343,936 + 59,610,624, twelve 17,447,454,720; the patches 196 x 768 x 768 = 115,605,504;
  // the classifier 768,000: 17,563,828,224 (fvcore's 17.56 G for vit_b_16), 2 FLOPs each.
  double gemm_flops = 0;
  for (const auto& op : g.ops()) {
    if (graph::is_gemm(op.kind)) gemm_flops += op.flops;
  }
  CHECK(gemm_flops == 2 * 17563828224.0);
  // The pixels take no gradient.
  CHECK(named(g, "patch_embedding").backward_factor == 1);
  // ViT-L/16: 24 layers of 12,596,224, the patches 787,456, positions and token 202,752, the norm
  // 2,048, the classifier 1,025,000: 304,326,632, torchvision's vit_l_16.
  TransformerDesign l = b;
  l.encoder_layers = 24;
  l.d_model = 1024;
  l.heads = 16;
  l.kv_heads = 16;
  l.d_ff = 4096;
  CHECK(count_parameters(l) == 304326632.0);
  // A training sample is an image.
  CHECK(graph::tokens_per_sample(l) == 1);
  // Pre-training compute of Dosovitskiy et al. 2021, Table 6 (exaFLOPs, JFT-300M: 303M images,
  // 224 x 224; the classifier over its "18k classes" [assumed 18,000]): ViT-L/16 783 at 7 epochs
  // and 1,567 at 14; ViT-H/14 (32 layers, d 1,280, 16 heads, d_ff 5,120, 256 patches of 14 x 14)
  // 4,262 at 14. Three times the forward products an image (2 FLOPs a multiply-add): L/16's
  // 61,572,120,576 and H/14's 167,316,869,120 multiply-adds give 783.6, 1,567.1 and 4,258.6.
  const auto training_exaflops = [](TransformerDesign v, double epochs) {
    v.classes = 18000;
    double forward = 0;
    const auto graph = build_graph(v, GraphShape{1, 2, true});
    for (const auto& op : graph.ops()) {
      if (graph::is_gemm(op.kind)) forward += op.flops;
    }
    return 3 * forward * 303e6 * epochs / 1e18;
  };
  CHECK(training_exaflops(l, 7) == approx(783).epsilon(0.005));
  CHECK(training_exaflops(l, 14) == approx(1567).epsilon(0.005));
  TransformerDesign h = l;
  h.encoder_layers = 32;
  h.d_model = 1280;
  h.heads = 16;
  h.kv_heads = 16;
  h.d_ff = 5120;
  h.patch = 14;
  h.seq_len = 257;
  h.max_positions = 257;
  CHECK(training_exaflops(h, 14) == approx(4262).epsilon(0.005));
}

TEST_CASE("batch norm in training reads its input twice and its backward makes five passes, by hand") {
  // The stem's batch norm on one 224 x 224 image: 112 x 112 x 64 = 802,816 elements in fp16, 128
  // scale and shift values. Training: statistics, then normalisation, 2 reads and 1 write,
  // 2 x (3 x 802,816 + 128) = 4,817,152 B, and a backward of 5 passes (5/3 of the forward).
  // Inference, with the running statistics: 2 x (2 x 802,816 + 128) = 3,211,520 B.
  const ResNetDesign r;
  const auto bn = [](const graph::OpGraph& g) {
    for (const auto& op : g.ops()) {
      if (op.name == "stem.conv.bn") return op;
    }
    return graph::Op{};
  };
  const auto train = bn(build_graph(r, GraphShape{1, 2, true}));
  CHECK(train.bytes == 4817152.0);
  CHECK(train.backward_factor == approx(5.0 / 3.0));
  const auto infer = bn(build_graph(r, GraphShape{1, 2, true, graph::Fusion::elementwise, false}));
  CHECK(infer.bytes == 3211520.0);
  // Channels-last training (cuDNN's persistent kernels): one read and one write forward,
  // 2 x (2 x 802,816 + 128) = 3,211,520 B, and a backward of 3 passes (3/2 of the forward).
  GraphShape nhwc{1, 2, true};
  nhwc.channels_last = true;
  const auto persistent = bn(build_graph(r, nhwc));
  CHECK(persistent.bytes == 3211520.0);
  CHECK(persistent.backward_factor == approx(1.5));
}

TEST_CASE("a hand-computed small graph: a 2-layer MLP") {
  // widths 4 -> 8 -> 2, batch 3, fp32: dense.0 2x3x4x8 = 192 FLOP, bytes 4 x (12 + 32 + 24) = 272;
  // act 24 elements; dense.1 2x3x8x2 = 96 FLOP, bytes 4 x (24 + 16 + 6) = 184.
  MlpDesign m;
  m.widths = {4, 8, 2};
  const auto g = build_graph(m, GraphShape{3, 4, true});
  REQUIRE(g.size() == 4);  // input, dense.0, act.0, dense.1
  CHECK(g.op(1).flops == 192);
  CHECK(g.op(1).bytes == 272);
  CHECK(g.op(1).params == 4 * 8 + 8);
  CHECK(g.op(3).flops == 96);
  CHECK(g.op(3).bytes == 184);
  CHECK(g.parameters() == 40 + 18);
  const auto order = g.topological_order();
  CHECK(order == std::vector<int>{0, 1, 2, 3});
  CHECK(g.inputs_of(3) == std::vector<int>{2});
}

TEST_CASE("mixture of experts: parameters grow with experts, FLOPs with top_k") {
  const TransformerDesign dense = small_gpt();
  TransformerDesign moe = dense;
  moe.experts = 8;
  moe.top_k = 1;
  moe.moe_every = 1;
  const double ffn = 2.0 * 256 * 1024 + 1024 + 256;  // one expert's weights and biases
  // 8 experts replace 1 FFN in each of 2 layers: +7 FFNs per layer, + a 256 x 8 router each.
  CHECK(count_parameters(moe) - count_parameters(dense) == approx(2 * (7 * ffn + 256 * 8)));
  // top-1 with capacity factor 1: the same expert FLOPs as the dense FFN (plus the router).
  const auto gd = build_graph(dense, GraphShape{4, 2, true});
  const auto gm = build_graph(moe, GraphShape{4, 2, true});
  CHECK(gm.forward_flops() == approx(gd.forward_flops() + 2 * 2.0 * 512 * 256 * 8).epsilon(1e-9));
}

TEST_CASE("DeepSeek-V3: latent attention, fine-grained and shared experts, 671B parameters") {
  // config.json of deepseek-ai/DeepSeek-V3: 61 layers, d 7168, 128 heads; MLA with q_lora_rank
  // 1536, kv_lora_rank 512, qk_nope_head_dim 128, qk_rope_head_dim 64, v_head_dim 128; the first 3
  // layers dense (intermediate 18432), then 256 routed experts (top 8) and 1 shared expert of 2048;
  // vocabulary 129,280, untied; SwiGLU, RMSNorm, no biases.
  TransformerDesign d = llama(61, 7168, 128, 18432);
  d.vocab = 129280;
  d.seq_len = 4096;
  d.head_dim = 128;
  d.q_lora_rank = 1536;
  d.kv_lora_rank = 512;
  d.rope_head_dim = 64;
  d.v_head_dim = 128;
  d.experts = 256;
  d.top_k = 8;
  d.expert_d_ff = 2048;
  d.shared_experts = 1;
  d.dense_layers = 3;
  // By hand: attention 7168 x 1536 + 1536 + 1536 x 128 x 192 + 7168 x 576 + 512 + 512 x 128 x 256
  //   + 128 x 128 x 7168 = 187,107,328 a layer; norms 2 x 7168;
  //   dense FFN 3 x 7168 x 18432 = 396,361,728; MoE FFN (256 + 1) x 3 x 7168 x 2048 + 7168 x 256
  //   = 11,320,164,352; embeddings 2 x 129,280 x 7168; the final norm 7168: 671,026,404,352.
  const double attention = 187107328.0, norms = 2 * 7168.0;
  const double expected = 61 * (attention + norms) + 3 * 396361728.0 + 58 * 11320164352.0 + 2 * 129280.0 * 7168 + 7168;
  CHECK(expected == 671026404352.0);
  const double total = count_parameters(d);
  CHECK(total == approx(expected).epsilon(1e-12));
  // "671B total parameters" (the main model, without the 14B multi-token prediction module).
  CHECK(std::abs(total / 671e9 - 1) < 0.01);
  // DeepSeek-V2 (arXiv:2405.04434, Sec. 3.1.2): 60 layers, d 5120, the same latent attention, the
  // first FFN dense (12,288), then 2 shared and 160 routed experts of 1,536, top 6; vocabulary
  // 102,400: "236B total parameters".
  TransformerDesign v2 = d;
  v2.decoder_layers = 60;
  v2.d_model = 5120;
  v2.d_ff = 12288;
  v2.vocab = 102400;
  v2.experts = 160;
  v2.top_k = 6;
  v2.expert_d_ff = 1536;
  v2.shared_experts = 2;
  v2.dense_layers = 1;
  CHECK(std::abs(count_parameters(v2) / 236e9 - 1) < 0.01);
  // One multi-token prediction module: the 2 d -> d projection (2 x 7168 x 7168), one MoE layer
  // with latent attention (187,107,328 + 11,320,164,352), its two norms, the two input norms and its
  // final norm (5 x 7168); the embedding and head are shared: 11,610,067,968 more. (The released
  // checkpoint stores "14B of the Multi-Token Prediction (MTP) Module weights", the shared
  // embedding and head copied in: 11.61B + 2 x 129,280 x 7168 = 13.46B.)
  TransformerDesign mtp = d;
  mtp.mtp_depth = 1;
  CHECK(count_parameters(mtp) - total == approx(11610067968.0).epsilon(1e-12));
  const auto g = build_graph(mtp, GraphShape{1, 2, true});
  CHECK(named(g, "mtp.0.proj").flops == approx(2.0 * 4096 * 2 * 7168 * 7168));
  CHECK(named(g, "mtp.0.lm_head").params == 0);
  // The module's first norm reads what the main model's final norm keeps (4,096 positions x 7168 x
  // 2 B): it keeps nothing more, and again only on another pipeline device (since session 44).
  CHECK(named(g, "mtp.0.hidden_norm").saved_bytes == 0);
  CHECK(named(g, "mtp.0.hidden_norm").shared_input_bytes == 4096.0 * 7168 * 2);
  CHECK(named(g, "decoder.final_norm").saved_bytes == 4096.0 * 7168 * 2);
  // Inference discards the modules (DeepSeek-V3, Sec. 2.2): the graph holds the main model's
  // parameters alone, and no op of a module.
  GraphShape serving{1, 2, true};
  serving.training = false;
  const auto inference = build_graph(mtp, serving);
  CHECK(inference.parameters() == approx(total).epsilon(1e-12));
  CHECK(std::none_of(inference.ops().begin(), inference.ops().end(), [](const graph::Op& o) { return o.name.rfind("mtp.", 0) == 0; }));
}

TEST_CASE("serving's prefill: the head and its softmax on each sequence's last position, the final norm on all") {
  // 2 sequences of 1,000 tokens, d 2048, vocabulary 1,000, fp16: the head is a product of 2 rows,
  // 2 x 2 x 2048 x 1000 FLOPs, reading 2 x 2048 inputs, the 2048 x 1000 table and writing 2 x 1000
  // logits; the softmax passes over 2 x 1000 logits; the final norm over all 2,000 positions.
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = 1;
  d.d_model = 2048;
  d.heads = 16;
  d.d_ff = 4096;
  d.vocab = 1000;
  d.seq_len = 1000;
  d.position = TransformerDesign::Position::rotary;
  GraphShape all{2, 2, true};
  all.training = false;
  GraphShape last = all;
  last.last_position_logits = true;
  const auto ga = build_graph(d, all), gl = build_graph(d, last);
  CHECK(named(gl, "lm_head").m == 2);
  CHECK(named(gl, "lm_head").flops == approx(2.0 * 2 * 2048 * 1000));
  CHECK(named(gl, "lm_head").bytes == approx(2.0 * (2 * 2048 + 2048 * 1000 + 2 * 1000)));
  CHECK(named(ga, "lm_head").m == 2000);
  CHECK(named(gl, "loss").bytes == approx(named(ga, "loss").bytes / 1000));
  CHECK(named(gl, "decoder.final_norm").bytes == named(ga, "decoder.final_norm").bytes);
  CHECK(gl.parameters() == ga.parameters());
}

TEST_CASE("latent attention and shared experts by hand on a small decoder") {
  // One layer: d 64, 4 heads of 16 (no-position) + 8 rotary channels, values of 16, q_lora 32,
  // kv_lora 24; experts 4 of width 32 (top 1), 1 shared expert; 32 tokens, no biases.
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = 1;
  d.d_model = 64;
  d.heads = 4;
  d.head_dim = 16;
  d.d_ff = 256;
  d.vocab = 100;
  d.seq_len = 32;
  d.biases = false;
  d.rms_norm = true;
  d.position = TransformerDesign::Position::rotary;
  d.q_lora_rank = 32;
  d.kv_lora_rank = 24;
  d.rope_head_dim = 8;
  d.experts = 4;
  d.expert_d_ff = 32;
  d.shared_experts = 1;
  const auto g = build_graph(d, GraphShape{1, 2, true, Fusion::attention});
  // Projections: q_a 64 -> 32, q_b 32 -> 4 x 24, kv_a 64 -> 24 + 8, kv_b 24 -> 4 x (16 + 16).
  CHECK(named(g, "decoder.0.attn.q_a").flops == 2.0 * 32 * 64 * 32);
  CHECK(named(g, "decoder.0.attn.q_b").flops == 2.0 * 32 * 32 * 96);
  CHECK(named(g, "decoder.0.attn.kv_a").flops == 2.0 * 32 * 64 * 32);
  CHECK(named(g, "decoder.0.attn.kv_b").flops == 2.0 * 32 * 24 * 128);
  CHECK(named(g, "decoder.0.attn.out").flops == 2.0 * 32 * 64 * 64);
  // The latent norms are RMSNorms over 32 and 24 channels (one weight vector each).
  CHECK(named(g, "decoder.0.attn.q_norm").params == 32);
  CHECK(named(g, "decoder.0.attn.kv_norm").params == 24);
  // Rotary: the 4 heads' 8 query channels and the one shared key, 32 tokens, read and written.
  CHECK(named(g, "decoder.0.attn.rotary").bytes == 2.0 * 2 * 32 * 5 * 8);
  // Fused attention, causal half: QK^T over 24 channels and PV over 16, 4 heads, 32 x 32:
  // 2 x 4 x 32 x 32 x (24 + 16) x 0.5 + 5 x 4 x 32 x 32 x 0.5.
  CHECK(named(g, "decoder.0.attn.attention").flops == approx(2.0 * 4 * 32 * 32 * 40 * 0.5 + 5.0 * 4 * 32 * 32 * 0.5));
  // The shared expert runs all 32 tokens through 64 -> 32 -> 64; its output is added to the
  // routed experts' (read two, write one).
  CHECK(named(g, "decoder.0.ffn.shared.up").flops == 2.0 * 32 * 64 * 32);
  CHECK(named(g, "decoder.0.ffn.shared.down").flops == 2.0 * 32 * 32 * 64);
  CHECK(named(g, "decoder.0.ffn.shared.add").bytes == 2.0 * 3 * 32 * 64);
  // Parameters: attention 64 x 32 + 32 + 32 x 96 + 64 x 32 + 24 + 24 x 128 + 64 x 64 = 14,392;
  // norms 2 x 64; FFN (4 + 1) x 2 x 64 x 32 + 64 x 4 = 20,736; embeddings 100 x 64 (tied); final
  // norm 64.
  CHECK(count_parameters(d) == 14392.0 + 128 + 20736 + 6400 + 64);
}

TEST_CASE("dense leading layers: moe_every counts from the first MoE layer") {
  TransformerDesign d = small_gpt(5);
  d.experts = 4;
  d.dense_layers = 1;
  d.moe_every = 2;
  const auto g = build_graph(d, GraphShape{1, 2, true});
  // Layers 0 (dense), 1 (dense: the first of each pair), 2 (MoE), 3 (dense), 4 (MoE).
  auto has = [&](const std::string& name) {
    return std::any_of(g.ops().begin(), g.ops().end(), [&](const graph::Op& o) { return o.name == name; });
  };
  CHECK(has("decoder.0.ffn.up"));
  CHECK(has("decoder.1.ffn.up"));
  CHECK(has("decoder.2.ffn.experts.up"));
  CHECK(has("decoder.3.ffn.up"));
  CHECK(has("decoder.4.ffn.experts.up"));
  CHECK_FALSE(has("decoder.0.ffn.experts.up"));
}

TEST_CASE("mixture of experts: a gathering dispatch runs only the experts its tokens reach, by hand") {
  // 8 experts, top-2, d 256, d_ff 1024 (GPT-3's GELU FFN with biases). One token picks 2 distinct
  // experts: 8 x (1 - (1 - 2/8)^1) = 2 run, one slot each, and only their weights are read:
  // up 2 x [1 x 256] x [256 x 1024], 2 x 2 x 256 x 1024 = 1,048,576 FLOPs.
  TransformerDesign moe = small_gpt(1);
  moe.experts = 8;
  moe.top_k = 2;
  moe.seq_len = 1;
  const auto one = build_graph(moe, GraphShape{1, 2, true});
  const auto up = [](const graph::OpGraph& g) {
    for (const auto& op : g.ops()) {
      if (op.name == "decoder.0.ffn.experts.up") return op;
    }
    return graph::Op{};
  };
  CHECK(up(one).count == 2);
  CHECK(up(one).m == 1);
  CHECK(up(one).flops == 2.0 * 2 * 256 * 1024);
  CHECK(up(one).bytes == approx(2.0 * 2 * (256 + 256 * 1024 + 1024)));
  // 4 tokens, 8 picks: 8 x (1 - 0.75^4) = 5.47, 5 experts, 8 slots over 5: 2 each (rounded).
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).count == 5);
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).m == 2);
  // Many tokens reach every expert: 512 tokens x 2 / 8 = 128 slots each.
  moe.seq_len = 128;
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).count == 8);
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).m == 128);
  // The parameters are the 8 experts' whatever runs.
  CHECK(up(one).params == 8 * (256.0 * 1024 + 1024));
  // In training the 512 tokens are copied into their 1,024 slots before the products and back
  // after them, each scaled by its weight (Megatron-Core's permute and unpermute; since session
  // 49): p (512 + 1,024) x 256 bytes each, one kernel, no FLOPs; the permute's gradient the same
  // bytes, the unpermute's (the weights' gradient reads the slots' outputs again) p (2 x 1,024 +
  // 512) x 256 in two kernels. Neither keeps anything. The up product records the 512 tokens it
  // dispatched (an 8-bit dispatch casts those). Serving gathers inside the product: no copies.
  const auto g = build_graph(moe, GraphShape{4, 2, true});
  const double rows_bytes = 2.0 * (512 + 1024) * 256;
  for (const char* name : {"decoder.0.ffn.experts.permute", "decoder.0.ffn.experts.unpermute"}) {
    CAPTURE(name);
    CHECK(named(g, name).bytes == approx(rows_bytes));
    CHECK(named(g, name).flops == 0);
    CHECK(named(g, name).kernels == 1);
    CHECK(named(g, name).saved_bytes == 0);
  }
  CHECK(named(g, "decoder.0.ffn.experts.permute").backward_factor == 1);
  const auto& unpermute = named(g, "decoder.0.ffn.experts.unpermute");
  CHECK(unpermute.backward_bytes_factor * unpermute.bytes == approx(2.0 * (2 * 1024 + 512) * 256));
  CHECK(unpermute.backward_kernels == 2);
  CHECK(up(g).dispatched_rows == 512);
  GraphShape serving{4, 2, true};
  serving.training = false;
  const auto served = build_graph(moe, serving);
  for (const auto& op : served.ops()) CHECK(op.name.find("permute") == std::string::npos);
}

TEST_CASE("mixture of experts: one-hot einsum dispatch and combine, by hand") {
  // 2 layers of d 256, 8 experts top-2, capacity factor 1, 4 sequences of 128 = 512 tokens in
  // groups of 128: 4 groups, C = 2 x 1 x 128 / 8 = 32 slots an expert, E C = 256 slots a group.
  // Dispatch [E C x S] x [S x M] and combine [S x E C] x [E C x M], each per group:
  //   2 x 256 x 128 x 256 = 16,777,216 FLOPs, x 4 groups = 67,108,864; no parameters.
  TransformerDesign moe = small_gpt();
  moe.experts = 8;
  moe.top_k = 2;
  TransformerDesign einsum = moe;
  einsum.einsum_dispatch = true;
  einsum.group_size = 128;
  const auto gather = build_graph(moe, GraphShape{4, 2, true});
  const auto g = build_graph(einsum, GraphShape{4, 2, true});
  CHECK(g.parameters() == gather.parameters());
  int seen = 0;
  for (const auto& op : g.ops()) {
    if (op.name == "decoder.0.ffn.dispatch" || op.name == "decoder.0.ffn.combine") {
      ++seen;
      CHECK(op.flops == 67108864.0);
      CHECK(op.count == 4);
      CHECK(op.params == 0);
    }
  }
  CHECK(seen == 2);
  CHECK(g.forward_flops() == approx(gather.forward_flops() + 2 * 2 * 67108864.0).epsilon(1e-12));
}

TEST_CASE("one-hot embedding: a GEMM over the vocabulary, implementation work, not model FLOPs") {
  // small_gpt: 4 sequences of 128 = 512 tokens, vocab 1000, d 256. The one-hot product:
  // 2 x 512 x 1000 x 256 = 262,144,000 FLOPs forward, the table's gradient backward (1x).
  const TransformerDesign lookup = small_gpt();
  TransformerDesign one_hot = lookup;
  one_hot.one_hot_embedding = true;
  const auto gl = build_graph(lookup, GraphShape{4, 2, true});
  const auto g = build_graph(one_hot, GraphShape{4, 2, true});
  CHECK(g.parameters() == gl.parameters());  // the embedding op keeps the table
  CHECK(g.forward_flops() - gl.forward_flops() == approx(262144000.0));
  CHECK(g.model_forward_flops() == approx(gl.forward_flops()));
  int seen = 0;
  for (const auto& op : g.ops()) {
    if (op.name != "decoder.embedding.one_hot") continue;
    ++seen;
    CHECK(op.backward_factor == 1);
    CHECK(op.implementation);
    CHECK(op.params == 0);
  }
  CHECK(seen == 1);
}

TEST_CASE("BERT's embedding norm and masked-LM head (bias and loss over the masked logits), by hand") {
  // BERT base, one sequence of 512 in fp32: (512 x 15 + 50) / 100 = 77 masked positions, so
  // 77 x 30,522 = 2,350,194 logits. The tied decoder's bias reads and writes them (and its 30,522
  // biases): 4 x (2 x 2,350,194 + 30,522) = 18,923,640 B; the loss (softmax and cross-entropy)
  // 4 FLOPs an element, 4 x 2 x 2,350,194 = 18,801,552 B. The embedding LayerNorm: 512 x 768
  // read and written with its 1,536 parameters, 4 x (2 x 393,216 + 1,536) = 3,151,872 B.
  const auto g = build_graph(bert(12, 768, 12), GraphShape{1, 4, true});
  int seen = 0;
  for (const auto& op : g.ops()) {
    if (op.name == "mlm.bias") {
      ++seen;
      CHECK(op.bytes == 18923640.0);
      CHECK(op.flops == 2350194.0);
      CHECK(op.params == 30522.0);
      CHECK(op.saved_bytes == 0);  // a bias add's backward needs no tensor (since session 43, a review)
    } else if (op.name == "mlm.loss") {
      ++seen;
      CHECK(op.kind == OpKind::softmax);
      CHECK(op.flops == 4 * 2350194.0);
      CHECK(op.bytes == 18801552.0);
    } else if (op.name == "encoder.embedding.norm") {
      ++seen;
      CHECK(op.params == 1536.0);
      CHECK(op.bytes == 3151872.0);
    }
  }
  CHECK(seen == 3);
}

TEST_CASE("a masked-LM head over every position (mlm_positions: all), by hand") {
  // BERT base, one sequence of 512 in fp32, the head over all 512 positions: the decoder
  // 2 x 512 x 768 x 30,522 = 24,003,477,504 FLOPs forward (77 positions: 3,609,897,984), and the
  // loss 4 FLOPs over 512 x 30,522 = 15,627,264 logits, 4 x 2 x 15,627,264 = 125,018,112 B.
  TransformerDesign all = bert(12, 768, 12);
  all.mlm_all_positions = true;
  const auto g = build_graph(all, GraphShape{1, 4, true});
  const auto gm = build_graph(bert(12, 768, 12), GraphShape{1, 4, true});
  CHECK(named(g, "mlm.logits").flops == 24003477504.0);
  CHECK(named(gm, "mlm.logits").flops == 3609897984.0);
  CHECK(named(g, "mlm.loss").flops == 4 * 15627264.0);
  CHECK(named(g, "mlm.loss").bytes == 125018112.0);
  CHECK(g.parameters() == gm.parameters());  // where the head runs moves no parameter
  // The unmasked positions' work trains nothing: the model FLOPs (MFU's) are the masked head's,
  // 77 of 512 positions, while the executed FLOPs hold all 512 (since session 44).
  CHECK(named(g, "mlm.logits").model_share == approx(77.0 / 512));
  CHECK(g.model_forward_flops() == approx(gm.model_forward_flops()));
  CHECK(g.forward_flops() - gm.forward_flops() > 24003477504.0 - 3609897984.0);
}

TEST_CASE("designs that cannot be built are rejected") {
  TransformerDesign d = gpt3();
  d.heads = 7;  // does not divide 12288
  CHECK_THROWS_AS(build_graph(d, GraphShape{}), std::invalid_argument);
  CHECK_THROWS_AS(build_graph(ModelDesign{}, GraphShape{}), std::invalid_argument);
}

TEST_CASE("a graph from a file: per-sample ops scaled by the batch") {
  FileGraphDesign d;
  d.ops.push_back(FileOp{"fc", "matmul", 0, 1, 10, 100, 1, 0, 1, 1010, {}});
  d.ops.push_back(FileOp{"softmax", "softmax", 0, 0, 0, 0, 1, 10, 5, 0, {"fc"}});
  const auto g = build_graph(d, GraphShape{100, 4, true});
  REQUIRE(g.size() == 2);
  // fc at batch 100: m = 100, k = 100, n = 10: 2 x 100 x 100 x 10 = 200,000 FLOP;
  // bytes 4 x (100x100 inputs + 100x10 weights + 100x10 outputs) = 48,000.
  CHECK(g.op(0).flops == 200000);
  CHECK(g.op(0).bytes == 48000);
  // softmax: 10 x 100 elements x 5 FLOP = 5,000; bytes 4 x 1000 x (1 input + 1 output) = 8,000.
  CHECK(g.op(1).flops == 5000);
  CHECK(g.op(1).bytes == 8000);
  CHECK(g.inputs_of(1) == std::vector<int>{0});
  CHECK(g.parameters() == 1010);
}

TEST_CASE("a graph file's ops read each input at its own size, by hand") {
  // Since session 43, from a review. Batch 1, fp32: ids (100 values) -> a lookup of 6,400 values
  // (it reads the rows it gathers: 4 x (6,400 + 6,400) = 51,200 B, not its ids' size); a map of 64
  // values -> a pool of 16 (reads the map: 4 x (64 + 16) = 320 B, not 2 x 16); a product of two
  // activations keeps both operands (4 x (2 x 3 + 3 x 4) = 72 B).
  FileGraphDesign d;
  d.ops.push_back(FileOp{"ids", "elementwise", -1, 0, 0, 0, 1, 100, 0, 0, {}});
  d.ops.push_back(FileOp{"emb", "embedding", -1, 0, 0, 0, 1, 6400, 0, 0, {"ids"}});
  d.ops.push_back(FileOp{"map", "elementwise", 0, 0, 0, 0, 1, 64, 1, 0, {"emb"}});
  d.ops.push_back(FileOp{"pool", "pool", 0, 0, 0, 0, 1, 16, 4, 0, {"map"}});
  d.ops.push_back(FileOp{"bmm", "batched_matmul", 0, 2, 4, 3, 1, 0, 1, 0, {"pool"}});
  const auto g = build_graph(d, GraphShape{1, 4, true});
  CHECK(g.op(1).bytes == 51200);
  CHECK(g.op(3).bytes == 320);
  CHECK(g.op(4).saved_bytes == 72);
}

TEST_CASE("sliding-window attention: the band of the causal score matrix, by hand") {
  // Two decoder layers, d_model 8, 2 heads of 4, seq 4, a window of 2 on every other layer
  // (global_every 2: layer 0 windowed, layer 1 global, as Gemma 2). The band counts
  // W n - W^2 / 2 = 8 - 2 = 6 of the 16 pairs a head (0.375; causal alone 0.5, 8 pairs), so the
  // scores product does 2 x 2 heads x 4 x 4 x 4 x 0.375 = 96 FLOPs on layer 0 and 128 on layer 1,
  // and an unfused kernel still computes the whole matrix, 256. FlashAttention skips what the band
  // leaves out: (2 x 2 x 4 x 4 x (4 + 4) + 5 x 2 x 4 x 4) x 0.375 = 672 x 0.375 = 252, and 336.
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = 2;
  d.d_model = 8;
  d.heads = 2;
  d.d_ff = 16;
  d.vocab = 10;
  d.seq_len = 4;
  d.sliding_window = 2;
  d.global_every = 2;
  CHECK(dlcarbon::graph::attention_window(d, 0) == 2);
  CHECK(dlcarbon::graph::attention_window(d, 1) == 0);
  const auto elem = build_graph(d, GraphShape{1, 2, true, Fusion::elementwise, true});
  CHECK(named(elem, "decoder.0.attn.scores").flops == 96);
  CHECK(named(elem, "decoder.1.attn.scores").flops == 128);
  CHECK(dlcarbon::graph::executed_flops(named(elem, "decoder.0.attn.scores"), Fusion::elementwise) == 256);
  const auto flash = build_graph(d, GraphShape{1, 2, true, Fusion::attention, true});
  CHECK(named(flash, "decoder.0.attn.attention").flops == 252);
  CHECK(named(flash, "decoder.1.attn.attention").flops == 336);
  // A window as long as the sequence is no window; parameters never move.
  TransformerDesign wide = d;
  wide.sliding_window = 4;
  CHECK(named(build_graph(wide, GraphShape{1, 2, true, Fusion::elementwise, true}), "decoder.0.attn.scores").flops == 128);
  TransformerDesign plain = d;
  plain.sliding_window = 0;
  plain.global_every = 0;
  CHECK(count_parameters(d) == count_parameters(plain));
}

TEST_CASE("operator fusion: the bytes of attention by hand, for none, elementwise and attention") {
  // One decoder layer, d_model 8, 2 heads of 4, seq 4, batch 1, 2-byte values, dropout 0.1.
  // Causal: half the 2 x 4 x 4 = 32 scores are computed, 16 score elements.
  TransformerDesign d = one_layer_decoder();
  d.dropout = 0.1;
  auto op_bytes = [](const dlcarbon::graph::OpGraph& g, const std::string& name) {
    for (const auto& op : g.ops()) {
      if (op.name == name) return op.bytes;
    }
    return -1.0;
  };
  const auto none = build_graph(d, GraphShape{1, 2, true, Fusion::none, true});
  const auto elem = build_graph(d, GraphShape{1, 2, true, Fusion::elementwise, true});
  const auto flash = build_graph(d, GraphShape{1, 2, true, Fusion::attention, true});
  const auto infer = build_graph(d, GraphShape{1, 2, true, Fusion::none, false});
  // Elementwise: one kernel reads and writes the 16 scores: 2 B x 16 x 2 = 64 B;
  // scores GEMM: 2 B x 2 x (4x4 + 4x4 + 4x4 x 0.5) = 160 B; context the same.
  CHECK(op_bytes(elem, "decoder.0.attn.softmax") == 64);
  CHECK(op_bytes(elem, "decoder.0.attn.scores") == 160);
  CHECK(op_bytes(elem, "decoder.0.attn.context") == 160);
  CHECK(op_bytes(elem, "decoder.0.attn.dropout") == -1);
  // None: scale, mask, softmax and dropout each read and write the scores (64 B each), and the
  // attention and FFN outputs get their own dropout kernels (2 B x 4 tokens x 8 x 2 = 128 B).
  for (const char* k : {"scale", "mask", "softmax", "dropout"}) CHECK(op_bytes(none, std::string("decoder.0.attn.") + k) == 64);
  CHECK(op_bytes(none, "decoder.0.attn.out_dropout") == 128);
  CHECK(op_bytes(none, "decoder.0.ffn.dropout") == 128);
  // Softmax (Megatron-LM's kernels): scale, mask and softmax one kernel (64 B), the attention's
  // dropout another (64 B); the output dropouts join the residual adds.
  const auto softmax = build_graph(d, GraphShape{1, 2, true, Fusion::softmax, true});
  CHECK(op_bytes(softmax, "decoder.0.attn.softmax") == 64);
  CHECK(op_bytes(softmax, "decoder.0.attn.dropout") == 64);
  CHECK(op_bytes(softmax, "decoder.0.attn.scale") == -1);
  CHECK(op_bytes(softmax, "decoder.0.attn.out_dropout") == -1);
  // The probabilities' dropout at a rate of its own (tensor2tensor's 2017 attention_dropout 0.0
  // beside a residual dropout of 0.1; since session 47): none over the scores, the output dropouts
  // as before, and the context keeps the softmax's output, not a dropped copy (V alone added:
  // 2 B x 2 heads x 4 x 4 = 64 B fewer kept than with the dropout's output).
  d.attention_dropout = 0;
  const auto no_attn = build_graph(d, GraphShape{1, 2, true, Fusion::none, true});
  CHECK(op_bytes(no_attn, "decoder.0.attn.dropout") == -1);
  CHECK(op_bytes(no_attn, "decoder.0.attn.softmax") == 64);
  CHECK(op_bytes(no_attn, "decoder.0.attn.out_dropout") == 128);
  CHECK(op_bytes(no_attn, "decoder.0.ffn.dropout") == 128);
  CHECK(named(none, "decoder.0.attn.context").saved_bytes - named(no_attn, "decoder.0.attn.context").saved_bytes == 64);
  CHECK(none.parameters() == no_attn.parameters());
  d.attention_dropout = -1;
  // Inference has no dropout kernels.
  CHECK(op_bytes(infer, "decoder.0.attn.dropout") == -1);
  // A non-causal attention without a padding mask (a ViT's, torchvision's; since session 47):
  // no mask kernel over its scores, the scale and softmax as before.
  {
    TransformerDesign v = d;
    v.arch = TransformerDesign::Arch::encoder;
    v.encoder_layers = 1;
    v.decoder_layers = 0;
    const auto masked = build_graph(v, GraphShape{1, 2, true, Fusion::none, true});
    v.padding_mask = false;
    const auto unmasked = build_graph(v, GraphShape{1, 2, true, Fusion::none, true});
    CHECK(op_bytes(masked, "encoder.0.attn.mask") > 0);
    CHECK(op_bytes(unmasked, "encoder.0.attn.mask") == -1);
    CHECK(op_bytes(unmasked, "encoder.0.attn.scale") == op_bytes(masked, "encoder.0.attn.scale"));
    CHECK(op_bytes(unmasked, "encoder.0.attn.softmax") == op_bytes(masked, "encoder.0.attn.softmax"));
  }
  CHECK(op_bytes(infer, "decoder.0.attn.scale") == 64);
  // Attention fused: only Q, K, V and O move: 2 B x 2 heads x (2 x 4 x 4 + 2 x 4 x 4) = 256 B,
  // against 160 + 64 + 160 = 384 B for scores, softmax and context; the backward recomputes.
  CHECK(op_bytes(flash, "decoder.0.attn.attention") == 256);
  CHECK(op_bytes(flash, "decoder.0.attn.scores") == -1);
  for (const auto& op : flash.ops()) {
    if (op.name == "decoder.0.attn.attention") CHECK(op.backward_factor == 2.5);
  }
  CHECK(none.forward_bytes() > elem.forward_bytes());
  CHECK(elem.forward_bytes() > flash.forward_bytes());
  // Fusion moves bytes, not the parameters.
  CHECK(none.parameters() == elem.parameters());
  CHECK(flash.parameters() == elem.parameters());
  // Grouped-query attention, one key and value head for the two query heads: the fused kernel
  // moves Q and O a query head and K and V once: 2 B x (2 x (4x4 + 4x4) + 1 x (4x4 + 4x4)) = 192 B.
  TransformerDesign gqa = d;
  gqa.kv_heads = 1;
  CHECK(op_bytes(build_graph(gqa, GraphShape{1, 2, true, Fusion::attention, true}), "decoder.0.attn.attention") == 192);
  // An encoder's scores take the padding mask, not a causal one: unfused, it is a pass of its own
  // over the whole 2 x 4 x 4 matrix, 2 B x 32 x 2 = 128 B (tensor2tensor's `logits += bias`, BERT's
  // `+ attention_mask`); fused, the softmax kernel applies it.
  TransformerDesign enc = d;
  enc.arch = TransformerDesign::Arch::encoder;
  enc.decoder_layers = 0;
  enc.encoder_layers = 1;
  CHECK(op_bytes(build_graph(enc, GraphShape{1, 2, true, Fusion::none, true}), "encoder.0.attn.mask") == 128);
  CHECK(op_bytes(build_graph(enc, GraphShape{1, 2, true, Fusion::elementwise, true}), "encoder.0.attn.mask") == -1);
}

TEST_CASE("TensorFlow 1.x's kernels (fusion: tensorflow1), by hand on one decoder layer") {
  // The layer of the test above: d_model 8, 2 heads of 4, seq 4, batch 1, dropout 0.1, 4-byte
  // values (fp32, as the tensor2tensor runs). Causal: 16 of the 32 scores counted, the unfused
  // kernels moving the whole 32.
  TransformerDesign d = one_layer_decoder();
  d.dropout = 0.1;
  GraphShape shape{1, 4, true, Fusion::none, true};
  const auto none = build_graph(d, shape);
  shape.tensorflow1 = true;
  const auto tf1 = build_graph(d, shape);
  // tf.nn.dropout's five ops over the 4 x 8 = 32 outputs of the attention's projection:
  // random_uniform writes 4 B, + keep_prob, floor and / keep_prob read and write 4 B, * the binary
  // tensor reads 8 and writes 4: 40 B an element, 1,280 B in 5 kernels (none: 2 x 4 x 32 = 256 B in
  // one). Its gradient: * the binary tensor (12 B) and / keep_prob (8 B): 640 B in 2 kernels, half
  // the forward's; it keeps the fp32 binary tensor, 128 B (none: PyTorch's one-byte mask, 32 B).
  const auto& drop = named(tf1, "decoder.0.attn.out_dropout");
  CHECK(named(none, "decoder.0.attn.out_dropout").bytes == 256);
  CHECK(drop.bytes == 1280);
  CHECK(drop.kernels == 5);
  CHECK(drop.backward_bytes_factor * drop.bytes == 640);
  CHECK(drop.backward_kernels == 2);
  CHECK(drop.saved_bytes == 128);
  CHECK(named(none, "decoder.0.attn.out_dropout").saved_bytes == 32);
  // The probabilities' dropout over the whole 2 x 4 x 4 matrix: 40 B x 32 = 1,280 B.
  const auto& pdrop = named(tf1, "decoder.0.attn.dropout");
  CHECK(pdrop.full_bytes == 1280);
  CHECK(pdrop.saved_bytes == 128);
  // Eigen's softmax: max (4 B), shifted exp (8), sum (4), scaling (8): 24 B a score, 768 B over
  // the whole 32 in 4 kernels (none: 256 B in one); _SoftmaxGrad's multiply (12), sum (4),
  // subtract (8), multiply (12): 36 B a score, 1,152 B in 4 kernels.
  const auto& sm = named(tf1, "decoder.0.attn.softmax");
  CHECK(named(none, "decoder.0.attn.softmax").full_bytes == 256);
  CHECK(sm.full_bytes == 768);
  CHECK(sm.kernels == 4);
  CHECK(sm.backward_bytes_factor * sm.full_bytes == 1152);
  CHECK(sm.backward_kernels == 4);
  // The mask's add has no backward kernel (its gradient passes through, the constant's is pruned);
  // the scaling's is one multiply of the forward's bytes.
  CHECK(named(tf1, "decoder.0.attn.mask").backward_factor == 0);
  CHECK(named(none, "decoder.0.attn.mask").backward_factor == 2);
  const auto& scale = named(tf1, "decoder.0.attn.scale");
  CHECK(scale.backward_factor == 1);
  CHECK(scale.backward_kernels == 1);
  // split_heads: Q, K and V (4 positions x 2 heads x 4 each) transposed, read and written once:
  // 3 x 32 x 8 B = 768 B in 3 kernels, the same backward; combine_heads the context's 32: 256 B.
  const auto& split = named(tf1, "decoder.0.attn.split_heads");
  CHECK(split.bytes == 768);
  CHECK(split.flops == 0);
  CHECK(split.kernels == 3);
  CHECK(split.backward_bytes_factor == 1);
  CHECK(split.backward_kernels == 3);
  CHECK(split.saved_bytes == 0);
  CHECK(named(tf1, "decoder.0.attn.merge_heads").bytes == 256);
  CHECK(named(tf1, "decoder.0.attn.merge_heads").kernels == 1);
  CHECK(none.ops().size() + 2 == tf1.ops().size());
  // A residual add (x + y: 3 x 4 x 32 = 384 B) backward: the block input's two gradients summed in
  // one AddN, 384 B and one kernel (none: the default, twice the bytes in two kernels).
  const auto& res = named(tf1, "decoder.0.attn.residual");
  CHECK(res.bytes == 384);
  CHECK(res.backward_factor == 1);
  CHECK(res.backward_kernels == 1);
  CHECK(named(none, "decoder.0.attn.residual").backward_factor == 2);
  // An Evolved Transformer's adds too (a review): its decoder's top add (x + self + cross, 4 x 4 B
  // a value forward) sums x's two gradients and those of the norm that feeds both attentions (2 x
  // 3 x 4 B); its convolution branches' add sums the gradients of the d_model-wide norm they fork
  // from, a half of its 2 d_model-wide output.
  {
    TransformerDesign et;
    et.arch = TransformerDesign::Arch::encoder_decoder;
    et.evolved = true;
    et.encoder_layers = 1;
    et.decoder_layers = 1;
    et.d_model = 16;
    et.heads = 2;
    et.d_ff = 64;
    et.vocab = 10;
    et.seq_len = 4;
    et.dropout = 0.1;
    GraphShape s{1, 4, true, Fusion::none, true};
    s.tensorflow1 = true;
    const auto g = build_graph(et, s);
    const auto& top = named(g, "decoder.0.top.residual");
    CHECK(top.backward_factor == 1);
    CHECK(top.backward_kernels == 1);
    CHECK(top.backward_bytes_factor * top.bytes == approx(2 * 3 * 4 * 4 * 16.0));
    const auto& add = named(g, "decoder.0.conv.add");
    CHECK(add.backward_bytes_factor * add.bytes == approx(3 * 4 * 4 * 16.0));
    CHECK(add.backward_kernels == 1);
  }
  // The products, the norms and the parameters are the same.
  CHECK(named(tf1, "decoder.0.attn.scores").bytes == named(none, "decoder.0.attn.scores").bytes);
  CHECK(named(tf1, "decoder.0.attn.norm").bytes == named(none, "decoder.0.attn.norm").bytes);
  CHECK(tf1.parameters() == none.parameters());
  CHECK(tf1.forward_flops() == none.forward_flops());
  // Only with fusion none: under another fusion level the flag changes nothing.
  GraphShape fused{1, 4, true, Fusion::elementwise, true};
  const auto elem = build_graph(d, fused);
  fused.tensorflow1 = true;
  CHECK(build_graph(d, fused).forward_bytes() == elem.forward_bytes());
  CHECK(graph::fusion_of("tensorflow1") == Fusion::none);
  CHECK(graph::tensorflow1_kernels("tensorflow1"));
  CHECK_FALSE(graph::tensorflow1_kernels("none"));
}

TEST_CASE("fairseq's kernels (fusion: fairseq), by hand on one decoder layer") {
  // d_model 8, 2 heads of 4, FFN 16 (GELU), 4 positions, one sequence, fp16 (p = 2). fairseq scales
  // the 4 x 8 = 32 query values (2p each: 128 B), not the 32 scores; its softmax is F.softmax in
  // fp32 and a cast back: (2p + 8) x 32 = 384 B in 2 kernels, backward (2p + 12) x 32 = 512 B in 2,
  // the fp32 probabilities kept (4 x 32 = 128 B, against none's 64); its GELU casts to fp32 and
  // back: (2p + 16) x 4 x 16 = 1,280 B in 3 kernels, backward (2p + 20) x 64 = 1,536 B in 3, the
  // fp32 input kept (256 B). Since session 49.
  TransformerDesign d = one_layer_decoder();
  GraphShape shape{1, 2, true, Fusion::none, true};
  const auto none = build_graph(d, shape);
  shape.fairseq = true;
  const auto fs = build_graph(d, shape);
  CHECK(named(fs, "decoder.0.attn.scale").bytes == approx(128.0));
  CHECK(named(fs, "decoder.0.attn.scale").m == 32);
  CHECK(named(none, "decoder.0.attn.scale").score_matrix);
  CHECK_FALSE(named(fs, "decoder.0.attn.scale").score_matrix);
  const auto& softmax = named(fs, "decoder.0.attn.softmax");
  CHECK(graph::executed_bytes(softmax, Fusion::none) == approx(384.0));
  CHECK(softmax.kernels == 2);
  CHECK(softmax.backward_bytes_factor * graph::executed_bytes(softmax, Fusion::none) == approx(512.0));
  CHECK(softmax.backward_kernels == 2);
  CHECK(softmax.saved_bytes == approx(2 * named(none, "decoder.0.attn.softmax").saved_bytes));
  check_kernels(named(fs, "decoder.0.ffn.act"), 1280, 3, 1536, 3);
  // Without a dropout on the scores, PV keeps the cast-back probabilities (p bytes a score) beside
  // the softmax's fp32 copy: not the one tensor `none`'s softmax and PV share.
  CHECK(named(fs, "decoder.0.attn.context").saved_bytes - named(none, "decoder.0.attn.context").saved_bytes == approx(2.0 * 32));
  CHECK(named(fs, "decoder.0.ffn.act").saved_bytes == approx(256.0));
  // Not fused: fairseq's level is `none`'s. In fp32 its casts return the tensor itself: the softmax
  // and the GELU as none's (the queries still scaled).
  CHECK(graph::fusion_of("fairseq") == Fusion::none);
  GraphShape fp32{1, 4, true, Fusion::none, true};
  const auto none32 = build_graph(d, fp32);
  fp32.fairseq = true;
  const auto fs32 = build_graph(d, fp32);
  for (const char* name : {"decoder.0.attn.softmax", "decoder.0.ffn.act"}) {
    CAPTURE(name);
    CHECK(named(fs32, name).bytes == approx(named(none32, name).bytes));
    CHECK(named(fs32, name).kernels == named(none32, name).kernels);
  }
}

TEST_CASE("the training loss's kernels: one pass, Megatron-LM's or PyTorch's cross-entropy over fp32 logits, by hand") {
  // A one-layer decoder, vocabulary 100, 4 positions, one sequence: 400 logits.
  TransformerDesign d = one_layer_decoder();
  d.vocab = 100;
  const auto loss = [&](std::int64_t bytes, GraphShape::CrossEntropy ce, bool training = true) {
    GraphShape s{1, bytes, true, Fusion::elementwise, training};
    s.cross_entropy = ce;
    return named(build_graph(d, s), "loss");
  };
  using CE = GraphShape::CrossEntropy;
  // Fused: one pass, the logits read and written at 2 B: 1,600 B, one kernel, twice that backward.
  const auto fused = loss(2, CE::fused);
  CHECK(fused.bytes == 1600);
  CHECK(fused.kernels == 1);
  CHECK(fused.backward_bytes_factor < 0);
  // Megatron-LM, bf16 logits: the cast (2 + 4), max (4), - max (8), exp (8), sum (4), / sum (8):
  // 38 B a logit, 15,200 B in 6 kernels; backward, * the gradient (8) and the cast back (6):
  // 14 B, 5,600 B in 2.
  const auto megatron = loss(2, CE::megatron);
  CHECK(megatron.bytes == approx(15200.0));
  CHECK(megatron.kernels == 6);
  CHECK(megatron.backward_bytes_factor * megatron.bytes == approx(5600.0));
  CHECK(megatron.backward_kernels == 2);
  // In fp32 there is no cast: 32 B in 5 kernels, 8 B in one.
  const auto megatron32 = loss(4, CE::megatron);
  CHECK(megatron32.bytes == approx(12800.0));
  CHECK(megatron32.kernels == 5);
  CHECK(megatron32.backward_bytes_factor * megatron32.bytes == approx(3200.0));
  CHECK(megatron32.backward_kernels == 1);
  // PyTorch: the cast (6) and log_softmax (8): 14 B, 5,600 B in 2 kernels; backward, nll_loss's
  // zeroed gradient (4) and scatter, log_softmax's backward (12), the cast back (6): 22 B, 8,800 B
  // in 4.
  const auto pytorch = loss(2, CE::pytorch);
  CHECK(pytorch.bytes == approx(5600.0));
  CHECK(pytorch.kernels == 2);
  CHECK(pytorch.backward_bytes_factor * pytorch.bytes == approx(8800.0));
  CHECK(pytorch.backward_kernels == 4);
  // Each keeps the fp32 softmax (4 B a logit); serving's sampler softmax is one pass whatever the key.
  CHECK(megatron.saved_bytes == 1600);
  CHECK(pytorch.saved_bytes == 1600);
  CHECK(loss(2, CE::megatron, false).bytes == 1600);
  CHECK(loss(2, CE::megatron, false).kernels == 1);
  // TensorFlow 1.x (fusion: tensorflow1, fp32, the tensor2tensor rows): the smoothed one-hot targets
  // (4) and softmax_cross_entropy_with_logits' five Eigen passes (44): 48 B a logit, 19,200 B in 7
  // kernels; backward, _BroadcastMul into its backprop (8): 3,200 B in one (since session 49).
  GraphShape tf1{1, 4, true, Fusion::none, true};
  tf1.tensorflow1 = true;
  const auto tf1_graph = build_graph(d, tf1);
  check_kernels(named(tf1_graph, "loss"), 19200, 7, 3200, 1);
}

TEST_CASE("an LSTM: parameters by hand, and a recurrence that runs step by step") {
  // 1 layer, input 4, hidden 8, projection 2, vocabulary 10, 3 steps, one direction, batch 5:
  //   embedding 10 x 4 = 40; input gates 4 x 32 + 32 = 160; recurrent gates 2 x 32 = 64;
  //   projection 8 x 2 = 16; softmax 2 x 10 + 10 = 30; total 310 (the recurrent and projection
  //   weights belong to the first step only).
  LstmDesign d;
  d.layers = 1;
  d.input = 4;
  d.hidden = 8;
  d.projection = 2;
  d.vocab = 10;
  d.seq_len = 3;
  const auto g = build_graph(d, GraphShape{5, 4, true});
  CHECK(g.parameters() == 310);
  int recurrent = 0;
  for (const auto& op : g.ops()) {
    if (op.name.find("recurrent_gates") != std::string::npos) {
      ++recurrent;
      CHECK(op.m == 5);  // one step: the batch's rows, not batch x steps
      CHECK(op.flops == 2.0 * 5 * 2 * 32);
    }
  }
  CHECK(recurrent == 3);
  // The same FLOPs as one GEMM over all 15 rows would have: 3 x 640 = 1,920 for the recurrence.
  double rec_flops = 0;
  for (const auto& op : g.ops()) {
    if (op.name.find("recurrent_gates") != std::string::npos) rec_flops += op.flops;
  }
  CHECK(rec_flops == 2.0 * 15 * 2 * 32);
}

TEST_CASE("a bidirectional LSTM's layer concatenates both directions whole, by hand") {
  // Two layers, input 8, hidden 8, projection 4, 3 steps, batch 2, fp32: each direction's output is
  // 6 tokens x 4 values; the concat writes 6 x 8 values and reads as many, 384 B, and keeps nothing
  // (since session 43, a review: it had been half that size, which halved the next stage's sends).
  LstmDesign d;
  d.layers = 2;
  d.input = 8;
  d.hidden = 8;
  d.projection = 4;
  d.vocab = 10;
  d.seq_len = 3;
  d.bidirectional = true;
  const auto g = build_graph(d, GraphShape{2, 4, true});
  int found = 0;
  for (const auto& op : g.ops()) {
    if (op.name.find(".backward.concat") == std::string::npos) continue;
    ++found;
    CHECK(op.m == 48);
    CHECK(op.bytes == 384);
    CHECK(op.saved_bytes == 0);
  }
  CHECK(found == 2);
}

TEST_CASE("a ResNet keeps each block's input once, by hand") {
  // Since session 43, from a review: the residual's output (kept by the in-place ReLU after the
  // add) had been kept again by the next block's first convolution and its downsample, and the
  // average pool's output by the classifier too. Two basic blocks, 16 x 16 images, width 4: the
  // first convolution of the second block and its downsample keep nothing; the average pool
  // nothing.
  const ResNetDesign d{{1, 1}, false, 16, 3, 4, 10};  // blocks, bottleneck, image, channels, width, classes
  const auto g = build_graph(d, GraphShape{2, 4, true});
  for (const auto& op : g.ops()) {
    if (op.name == "stage2.0.conv1" || op.name == "stage2.0.downsample" || op.name == "avgpool") CHECK(op.saved_bytes == 0);
    if (op.name == "stage1.0.conv1") CHECK(op.saved_bytes > 0);  // reads the max pool's output, which keeps its indices
  }
}

TEST_CASE("a biLM with a character CNN: parameters and FLOPs by hand, separate directions") {
  // Character CNN: 10 characters embedded in 2, 5 characters a token, filters (1 x 3) and (2 x 4)
  // (7 wide), one highway layer, projected to the LSTM input of 4:
  //   embedding 10 x 2 = 20; conv1 1 x 2 x 3 + 3 = 9; conv2 2 x 2 x 4 + 4 = 20;
  //   highway 2 x (7 x 7 + 7) = 112; projection 7 x 4 + 4 = 32: 193.
  // Two LSTM layers a direction, hidden 8, projection 2: layer 0 input gates 4 x 32 + 32 = 160,
  //   layer 1 (reads its own direction's 2-wide output) 2 x 32 + 32 = 96; recurrent 2 x 32 = 64
  //   and projection 8 x 2 = 16 a layer: (160 + 80) + (96 + 80) = 416 a direction, 832.
  // Softmax 2 x 10 + 10 = 30, shared by the directions. Total 193 + 832 + 30 = 1,055.
  LstmDesign d;
  d.layers = 2;
  d.input = 4;
  d.hidden = 8;
  d.projection = 2;
  d.vocab = 10;
  d.seq_len = 3;
  d.bidirectional = true;
  d.separate_directions = true;
  d.char_cnn.chars = 10;
  d.char_cnn.embedding = 2;
  d.char_cnn.max_chars = 5;
  d.char_cnn.filters = {{1, 3}, {2, 4}};
  d.char_cnn.highway = 1;
  const auto g = build_graph(d, GraphShape{5, 4, true});  // 5 sequences of 3: 15 tokens
  CHECK(g.parameters() == 1055);
  int convs = 0, softmaxes = 0;
  for (const auto& op : g.ops()) {
    if (op.name.find(".conv2") != std::string::npos && op.kind == OpKind::conv2d) {
      ++convs;
      // 4 positions x (K = 2 x 2) x 4 filters x 2 FLOPs = 128 a token, x 15 tokens.
      CHECK(op.flops == 1920.0);
      CHECK(op.m == 15 * 4);
      CHECK(op.k == 4);
    }
    if (op.name == "lstm.1.forward.input_gates" || op.name == "lstm.1.backward.input_gates") CHECK(op.k == 2);
    if (op.name.find("softmax") != std::string::npos) {
      ++softmaxes;
      CHECK(op.flops == 2.0 * 15 * 2 * 10);
    }
  }
  CHECK(convs == 2);      // the CNN runs once a direction (the backward model reads reversed tokens)
  CHECK(softmaxes == 2);  // one softmax a direction

  // Unfused (TensorFlow 1.x's LSTMCell under static_rnn): one GEMM a step over [input, previous
  // output], K = 4 + 2 at layer 0; the same parameters (the input and recurrent kernels are one).
  GraphShape unfused{5, 4, true};
  unfused.fusion = Fusion::none;
  const auto gu = build_graph(d, unfused);
  CHECK(gu.parameters() == 1055);
  int steps = 0;
  for (const auto& op : gu.ops()) {
    if (op.name.rfind("lstm.0.forward.step", 0) == 0 && op.name.find(".gates") != std::string::npos) {
      ++steps;
      CHECK(op.m == 5);
      CHECK(op.k == 6);
    }
    CHECK(op.name.find("input_gates") == std::string::npos);
  }
  CHECK(steps == 3);
  // TensorFlow 1.x's convolutions on NHWC run cuDNN in NCHW (since session 49): the width-2 one's
  // input (15 tokens x 5 characters x 2, I = 150) and output (O = 15 x 4 positions x 4 filters =
  // 240) transposed forward, 2 x 4 B x (150 + 240) = 3,120 B in 2 kernels; backward the output's
  // gradient in each backprop kernel and the input twice, 4 x 4 x 240 + 4 x 4 x 150 = 6,240 B in
  // 6; the width-1 one runs cuBLAS: none. Each max pool's cuDNN gradient transposes the
  // convolution's output and the input gradient: 4 x 4 B x O more in 4 kernels more (O 240 and,
  // for the width-1 filters, 15 x 5 x 3 = 225).
  unfused.tensorflow1 = true;
  const auto gt = build_graph(d, unfused);
  const auto& layout = named(gt, "char_cnn.conv2.layout");
  check_kernels(layout, 3120, 2, 6240, 6);
  CHECK(layout.saved_bytes == 0);
  for (const auto& op : gt.ops()) CHECK(op.name.find("conv1.layout") == std::string::npos);
  for (const auto& [pool, outputs] : {std::pair{"char_cnn.conv1.pool", 225.0}, std::pair{"char_cnn.conv2.pool", 240.0}}) {
    CAPTURE(pool);
    const auto& tf1_pool = named(gt, pool);
    const auto& plain_pool = named(gu, pool);
    CHECK(tf1_pool.bytes == approx(plain_pool.bytes));
    CHECK(tf1_pool.backward_bytes_factor * tf1_pool.bytes == approx(2 * plain_pool.bytes + 16 * outputs));
    CHECK(tf1_pool.backward_kernels == 6);
  }

  // Without separate directions each layer, and the softmax, read both directions: K = 2 x 2.
  LstmDesign joint = d;
  joint.separate_directions = false;
  const auto gj = build_graph(joint, GraphShape{5, 4, true});
  for (const auto& op : gj.ops()) {
    if (op.name == "softmax" || op.name == "lstm.1.forward.input_gates") CHECK(op.k == 4);
  }

  // ELMo as bilm-tf trains it: 93.6 M parameters without the softmax (allennlp.org/elmo).
  LstmDesign elmo;
  elmo.layers = 2;
  elmo.input = 512;
  elmo.hidden = 4096;
  elmo.projection = 512;
  elmo.vocab = 8192;
  elmo.seq_len = 20;
  elmo.bidirectional = true;
  elmo.separate_directions = true;
  elmo.char_cnn = {261, 16, 50, {{1, 32}, {2, 32}, {3, 64}, {4, 128}, {5, 256}, {6, 512}, {7, 1024}}, 2};
  const double softmax = 512.0 * 8192 + 8192;
  CHECK(build_graph(elmo, GraphShape{1, 4, true}).parameters() - softmax == approx(93.6e6).epsilon(0.01));
}

TEST_CASE("LSTM cells: one fused kernel, or TensorFlow 1.x's 12 after the gates' own bias add") {
  // Batch 4, hidden 8 (E = 32 cells), input 2, no projection, fp32 (4 bytes):
  //   fused: 11 E x 4 = 1,408 bytes, 1 kernel; unfused: (32 E + 2 x 4 x (2 + 8)) x 4 = 4,416, 12
  //   (the gate matrix's bias_add, 8 E, is the gates product's unfused bias add since session 47:
  //   40 E and 13 kernels here before).
  LstmDesign d;
  d.layers = 1;
  d.input = 2;
  d.hidden = 8;
  d.seq_len = 1;
  for (const bool fused : {true, false}) {
    GraphShape shape{4, 4, true};
    shape.fusion = fused ? Fusion::elementwise : Fusion::none;
    const auto g = build_graph(d, shape);
    bool seen = false;
    for (const auto& op : g.ops()) {
      if (op.name != "lstm.0.forward.step0.cell") continue;
      seen = true;
      CHECK(op.bytes == (fused ? 1408.0 : 4416.0));
      CHECK(op.kernels == (fused ? 1 : 12));
    }
    CHECK(seen);
  }
  // Unrolled (TensorFlow 1.x's static_rnn), each step after the first adds its weight gradient
  // into the sum of the others' (AddN): two reads and a write of the 4 x 8 gate weights over
  // [input 2, previous output 8] and their bias, (2 + 8 + 1) x 32 x 4 B x 3 = 4,224 B. The first
  // step owns the weights; a fused LSTM sums inside its kernels.
  d.seq_len = 3;
  GraphShape shape{4, 4, true};
  shape.fusion = Fusion::none;
  const auto unrolled = build_graph(d, shape);
  CHECK(named(unrolled, "lstm.0.forward.step0.gates").gradient_sum_bytes == 0);
  CHECK(named(unrolled, "lstm.0.forward.step1.gates").gradient_sum_bytes == 4224);
  CHECK(named(unrolled, "lstm.0.forward.step2.gates").gradient_sum_bytes == 4224);
  shape.fusion = Fusion::elementwise;
  const auto fused = build_graph(d, shape);
  for (const auto& op : fused.ops()) CHECK(op.gradient_sum_bytes == 0);
}

namespace {
// One encoder and one decoder Evolved Transformer cell, d 64, 4 heads, d_ff 256, vocabulary 100,
// 32 positions.
TransformerDesign small_evolved() {
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = d.decoder_layers = 1;
  d.d_model = 64;
  d.heads = 4;
  d.d_ff = 256;
  d.vocab = 100;
  d.seq_len = 32;
  d.evolved = true;
  return d;
}
}  // namespace

TEST_CASE("Evolved Transformer cells: parameters by hand, and Meena's 2.6B") {
  // One encoder and one decoder cell, d 64, 4 heads, d_ff 256, vocabulary 100, 32 positions,
  // biases on the dense layers but not on attention (tensor2tensor's evolved_transformer.py),
  // LayerNorm, tied embeddings:
  //   encoder: GLU norm 128 + 2 x (64 x 64 + 64) = 8,448; conv norm 128 + dense 64 -> 256 16,640
  //     + 3x1 conv 192 -> 32 6,176 + norm over 256 512 + depthwise 9 x 256 2,304 + pointwise
  //     256 -> 32 8,224 = 33,984; attention norm 128 + 4 x 64 x 64 = 16,512; dense 128 + 16,640
  //     + 16,448 = 33,216: 92,160 in all;
  //   decoder: one norm 128 for the 16-head self-attention and the first attention to the encoder
  //     (2 x 16,384), two more attentions with their norms 2 x 16,512: 65,920; conv norm 128 +
  //     depthwise 11 x 64 704 + pointwise 64 -> 128 8,320 + depthwise 7 x 64 448 + pointwise
  //     64 -> 32 2,080 + norm over 128 256 + depthwise 7 x 128 896 + pointwise 128 -> 64 8,256 =
  //     21,088; dense with its inner norm over 256: 128 + 16,640 + 512 + 16,448 = 33,728:
  //     120,736 in all;
  //   embedding 100 x 64 + 32 positions x 64 = 8,448, the decoder's own 32 positions x 64 = 2,048
  //   (since session 35; before, the decoder's table was not counted: 221,600), two final norms 256:
  //   223,648.
  TransformerDesign d = small_evolved();
  CHECK(count_parameters(d) == 223648.0);
  // A cell costs more than a Transformer layer of the same width: more FLOPs per token.
  TransformerDesign plain = d;
  plain.evolved = false;
  const GraphShape shape{1, 2, true, Fusion::elementwise, true};
  CHECK(build_graph(d, shape).forward_flops() > 1.5 * build_graph(plain, shape).forward_flops());
  // Meena (Adiwardana et al. 2020): 1 encoder and 13 decoder cells, d 2560, 32 heads, FFN 4 d,
  // 8K vocabulary, tied: 2.6B published.
  TransformerDesign meena = d;
  meena.encoder_layers = 1;
  meena.decoder_layers = 13;
  meena.d_model = 2560;
  meena.heads = 32;
  meena.d_ff = 10240;
  meena.vocab = 8000;
  meena.seq_len = 128;
  const double p = count_parameters(meena);
  MESSAGE("Meena parameters: " << p);
  // Encoder cell 141,066,240, decoder cell 186,937,600 (the sums above at d 2560, d_ff 10240),
  // embedding 8000 x 2560 + 128 x 2560 a stack (learned positions, the design's default), two
  // final norms: 2,592,400,640, -0.3 % of 2.6B (2,592,072,960 before session 35, which did not
  // count the decoder's position table).
  CHECK(p == 2592400640.0);
  CHECK(std::abs(p / 2.6e9 - 1) < 0.01);
}

TEST_CASE("Evolved Transformer cells keep each tensor once") {
  // The cells above, two sequences of 32, 2 B, elementwise fusion, no dropout. Since session 44
  // (a review): masks keep their per-position mask only, adds nothing; the 3x1 convolution reads
  // and keeps its input once (an implicit GEMM), which the dense branch beside it keeps; the first
  // attention to the encoder leaves its normed input to the wide self-attention, the second its
  // keys' and values' source to the first; the decoder's 7x1 depthwise leaves its input to the
  // 11x1 one beside it.
  TransformerDesign d = small_evolved();
  const auto g = build_graph(d, GraphShape{2, 2, true, Fusion::elementwise, true});
  const double unit = 2 * 32 * 64 * 2.0;  // b s d p
  for (const char* name : {"encoder.0.conv.mask", "encoder.0.conv.add", "encoder.0.conv.mask2", "encoder.0.conv.right_3x1",
                           "decoder.0.conv.add", "decoder.0.cross1.q", "decoder.0.conv.right_7x1.depthwise", "decoder.0.cross2.kv"}) {
    INFO(name);
    CHECK(named(g, name).saved_bytes == 0);
    CHECK(named(g, name).shared_input_bytes == 0);
  }
  // The 3x1 convolution: its input once (64 positions x 64), its 192 x 32 weights, its output
  // 64 x 32: (4,096 + 6,144 + 2,048) x 2 B.
  CHECK(named(g, "encoder.0.conv.right_3x1").bytes == (4096 + 6144 + 2048) * 2.0);
  // What the first attention to the encoder keeps of it, and the dense branch of its input.
  CHECK(named(g, "decoder.0.cross1.kv").saved_bytes == unit);
  CHECK(named(g, "encoder.0.conv.left").saved_bytes == unit);
}

TEST_CASE("a gated FFN's activation reads both halves of the up projection") {
  // LLaMA-style layer, d 64, d_ff 256, 2 sequences of 32 at 2 bytes: the SwiGLU kernel reads
  // gate and up (2 x 64 tokens x 256) and writes 64 x 256: 3 x 16,384 x 2 B = 98,304 B.
  TransformerDesign d = llama(1, 64, 4, 256);
  d.seq_len = 32;
  d.vocab = 100;
  const auto g = build_graph(d, GraphShape{2, 2, true, Fusion::elementwise, true});
  const auto it = std::find_if(g.ops().begin(), g.ops().end(), [](const graph::Op& op) { return op.name == "decoder.0.ffn.act"; });
  REQUIRE(it != g.ops().end());
  CHECK(it->bytes == 98304.0);
  CHECK(it->flops == 9.0 * 64 * 256);
}

TEST_CASE("eager kernels: RMSNorm, rotary and SwiGLU as chains of PyTorch ops, by hand") {
  // LLaMA-style layer, d 64 (4 heads of 16), d_ff 256, 2 sequences of 32 = 64 tokens, 2 bytes.
  TransformerDesign d = llama(1, 64, 4, 256);
  d.seq_len = 32;
  d.vocab = 100;
  const auto fused = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true});
  const auto eager = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true, true});
  const auto op = [](const graph::OpGraph& g, const std::string& name) { return named(g, name); };
  // RMSNorm over 64 x 64 = 4,096 elements: fused, read and write at 2 B plus the 64 weights:
  // 4,096 x 4 + 128 = 16,512 B. Eager: float() 2 + 4, pow 4 + 4, mean 4, x * rsqrt 4 + 4,
  // type_as 4 + 2, * weight 2 + 2 = 36 B an element: 147,456 + 128 = 147,584 B in 8 kernels
  // (with + eps and rsqrt); autograd keeps the float32 copy and the normalised output, 6 B each.
  CHECK(op(fused, "decoder.0.attn.norm").bytes == 16512.0);
  CHECK(op(eager, "decoder.0.attn.norm").bytes == 147584.0);
  CHECK(op(eager, "decoder.0.attn.norm").kernels == 8);
  CHECK(op(eager, "decoder.0.attn.norm").saved_bytes == 4096.0 * 6);
  CHECK(op(eager, "decoder.0.attn.norm").flops == op(fused, "decoder.0.attn.norm").flops);
  // Rotary over Q and K: 64 tokens x (4 + 4) heads x 16 = 8,192 elements; fused 4 B each (32,768);
  // eager float() 2 + 4, rotate 4 + 4, cast back 4 + 2 = 20 B each: 163,840 B in 6 kernels.
  CHECK(op(fused, "decoder.0.attn.rotary").bytes == 32768.0);
  CHECK(op(eager, "decoder.0.attn.rotary").bytes == 163840.0);
  CHECK(op(eager, "decoder.0.attn.rotary").kernels == 6);
  // SwiGLU over 64 x 256 = 16,384 elements: fused 3 x 2 B (98,304); eager silu 2 + 2, then
  // * up 4 + 2 = 10 B each: 163,840 B in 2 kernels; autograd keeps gate, silu(gate) and up.
  CHECK(op(eager, "decoder.0.ffn.act").bytes == 163840.0);
  CHECK(op(eager, "decoder.0.ffn.act").kernels == 2);
  CHECK(op(eager, "decoder.0.ffn.act").saved_bytes == 16384.0 * 6);
  // GEMMs, attention and the FLOPs are untouched; LayerNorm has a native kernel and stays one pass.
  CHECK(eager.forward_flops() == fused.forward_flops());
  CHECK(op(eager, "decoder.0.attn.qkv").bytes == op(fused, "decoder.0.attn.qkv").bytes);
  CHECK(op(eager, "decoder.0.attn.attention").bytes == op(fused, "decoder.0.attn.attention").bytes);
  d.rms_norm = false;
  const auto ln_fused = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true});
  const auto ln_eager = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true, true});
  CHECK(op(ln_eager, "decoder.0.attn.norm").bytes == op(ln_fused, "decoder.0.attn.norm").bytes);
  CHECK(op(ln_eager, "decoder.0.attn.norm").kernels == 1);
}

TEST_CASE("GPT-NeoX's kernels (eager: neox): the copies and adds around Pythia's layer, by hand") {
  // Pythia's layer in small: d 64 (4 heads of 16), d_ff 256, biases, a quarter of each head's
  // channels rotated (4 of 16), two norms in parallel; 2 sequences of 32 = 64 tokens, 2 bytes,
  // FlashAttention.
  TransformerDesign d = llama(1, 64, 4, 256);
  d.seq_len = 32;
  d.vocab = 100;
  d.gated_ffn = false;
  d.rms_norm = false;
  d.biases = true;
  d.rotary_fraction = 0.25;
  d.parallel_block = true;
  d.parallel_norms = 2;
  GraphShape shape{2, 2, true, Fusion::attention, true, true};
  const auto plain = build_graph(d, shape);
  shape.neox = true;
  const auto neox = build_graph(d, shape);
  shape.neox_partition = true;
  const auto partitioned = build_graph(d, shape);
  const auto op = [](const graph::OpGraph& g, const std::string& name) { return named(g, name); };
  // The qkv product's bias added apart: its output, 64 x 192 = 12,288 values, read and written
  // (49,152 B, a kernel); backward the three heads' gradients concatenated, the same again.
  check_kernels(op(neox, "decoder.0.attn.qkv_glue"), 49152, 1, 49152, 1);
  // The partial rotary's rejoin: Q and K, 64 x 8 heads x 16 = 8,192 values, read from two parts
  // and written (32,768 B in 2 kernels); backward two slices' whole-size gradients (zeros 2, a part
  // copied 4 x its share, their sum 6: 14 B a value, 114,688 B, 3.5 times) in 10 kernels.
  check_kernels(op(neox, "decoder.0.attn.rotary_rejoin"), 32768, 2, 114688, 10);
  // FlashAttention's packing: Q, K and V copied by their transposing reshapes and concatenated:
  // 12,288 values, 8 B each (98,304 B) in 4 kernels; no backward (the gradients are views).
  const auto& pack = op(neox, "decoder.0.attn.flash_pack");
  CHECK(pack.bytes == 98304.0);
  CHECK(pack.kernels == 4);
  CHECK(pack.backward_factor == 0.0);
  // The context made contiguous: 64 x 64 = 4,096 values read and written (16,384 B), and again
  // backward.
  check_kernels(op(neox, "decoder.0.attn.out_permute"), 16384, 1, 16384, 1);
  // The parallel residual's adds beside the one the model charges (x + attention + feed-forward, 4
  // values an element): the two biases and the branches' sum, 6 more (49,152 B, 3 kernels), on
  // the full width; no backward.
  const auto& adds = op(neox, "decoder.0.bias_adds");
  CHECK(adds.bytes == 49152.0);
  CHECK(adds.kernels == 3);
  CHECK_FALSE(adds.tensor_split);
  CHECK(adds.backward_factor == 0.0);
  // None keeps anything, and the model FLOPs are the plain graph's.
  for (const auto* name : {"decoder.0.attn.qkv_glue", "decoder.0.attn.rotary_rejoin", "decoder.0.attn.flash_pack",
                           "decoder.0.attn.out_permute", "decoder.0.bias_adds"}) {
    CHECK(op(neox, name).saved_bytes == 0.0);
  }
  CHECK(neox.forward_flops() == plain.forward_flops());
  CHECK(neox.ops().size() == plain.ops().size() + 5);
  // The output projection keeps the permuted copy it reads (4,096 x 2 B), which the fused attention
  // does not.
  CHECK(op(plain, "decoder.0.attn.o").saved_bytes == 0.0);
  CHECK(op(neox, "decoder.0.attn.o").saved_bytes == 8192.0);
  // With DeepSpeed's partitioned checkpoints: the layer's input cloned (4,096 values, 16,384 B),
  // rebuilt backward in 4 kernels (zeros 2, copy 4, gather 4, copy back 4: 14 B a value).
  check_kernels(op(partitioned, "decoder.0.checkpoint"), 16384, 1, 57344, 4);
  CHECK_FALSE(op(partitioned, "decoder.0.checkpoint").tensor_split);
  CHECK_FALSE(std::any_of(neox.ops().begin(), neox.ops().end(), [](const graph::Op& o) { return o.name == "decoder.0.checkpoint"; }));
  // Full rotary: no slices, no rejoin. Without biases: neither the qkv bias nor the branch biases;
  // the sum of the branches stays (2 values an element, one kernel).
  d.rotary_fraction = 1;
  d.biases = false;
  shape.neox_partition = false;
  const auto bare = build_graph(d, shape);
  CHECK_FALSE(std::any_of(bare.ops().begin(), bare.ops().end(), [](const graph::Op& o) {
    return o.name == "decoder.0.attn.rotary_rejoin" || o.name == "decoder.0.attn.qkv_glue";
  }));
  CHECK(op(bare, "decoder.0.bias_adds").bytes == 16384.0);
  CHECK(op(bare, "decoder.0.bias_adds").kernels == 1);
  // A sequential layer with biases: each branch's bias added apart (bias_dropout_add unfused), 4 B
  // a value of the full width.
  d.parallel_block = false;
  d.biases = true;
  const auto sequential = build_graph(d, shape);
  CHECK(op(sequential, "decoder.0.attn.bias_add").bytes == 16384.0);
  CHECK(op(sequential, "decoder.0.ffn.bias_add").bytes == 16384.0);
  CHECK(op(sequential, "decoder.0.ffn.bias_add").backward_factor == 0.0);
}

TEST_CASE("LargeScale's kernels (eager: largescale): GLM-130B's divides, copies, bias add and DeepNorm scaling, by hand") {
  // GLM-130B's layer in small: d 64 (4 heads of 16), a GeGLU of 256, biases, DeepNorm; 2 sequences
  // of 32 = 64 tokens, 2 bytes, the fused softmax (Megatron's).
  TransformerDesign d = llama(1, 64, 4, 256);
  d.seq_len = 32;
  d.vocab = 100;
  d.rms_norm = false;
  d.biases = true;
  d.deepnorm = true;
  GraphShape shape{2, 2, true, Fusion::softmax, true, false};
  const auto plain = build_graph(d, shape);
  shape.largescale = true;
  const auto ls = build_graph(d, shape);
  const auto op = [](const graph::OpGraph& g, const std::string& name) { return named(g, name); };
  // The qkv product's bias (its output, 64 x 12 heads x 16 = 12,288 values) and the divides of Q and
  // K (8,192 values): 2 B each read and written, (12,288 + 8,192) x 4 = 81,920 B in 3 kernels; backward
  // the split's concatenation (12,288 x 4) and the divides' gradients (8,192 x 4), the same bytes.
  check_kernels(op(ls, "decoder.0.attn.qkv_glue"), 81920, 3, 81920, 3);
  // The context made contiguous (4,096 values, 16,384 B); its gradient's view needs no copy.
  const auto& permute = op(ls, "decoder.0.attn.out_permute");
  CHECK(permute.bytes == 16384.0);
  CHECK(permute.backward_factor == 0.0);
  // The up projection's bias added apart: 64 x 512 (both GeGLU halves) = 32,768 values, 131,072 B.
  const auto& up_bias = op(ls, "decoder.0.ffn.up_bias");
  CHECK(up_bias.bytes == 131072.0);
  CHECK(up_bias.backward_factor == 0.0);
  // DeepNorm's residual * alpha before each add: 4,096 values of the full width, 16,384 B, the same
  // backward.
  for (const auto* name : {"decoder.0.attn.alpha", "decoder.0.ffn.alpha"}) {
    check_kernels(op(ls, name), 16384, 1, 16384, 1);
    CHECK_FALSE(op(ls, name).tensor_split);
    CHECK(op(ls, name).saved_bytes == 0.0);
  }
  CHECK(ls.forward_flops() == plain.forward_flops());
  CHECK(ls.ops().size() == plain.ops().size() + 5);
  // Without DeepNorm no scaling; without biases the qkv glue holds the divides alone (32,768 B
  // forward, 81,920 backward) and there is no up-projection add.
  d.deepnorm = false;
  d.biases = false;
  const auto bare = build_graph(d, shape);
  CHECK_FALSE(std::any_of(bare.ops().begin(), bare.ops().end(), [](const graph::Op& o) {
    return o.name == "decoder.0.attn.alpha" || o.name == "decoder.0.ffn.up_bias";
  }));
  CHECK(op(bare, "decoder.0.attn.qkv_glue").bytes == 32768.0);
  CHECK(op(bare, "decoder.0.attn.qkv_glue").backward_bytes_factor * op(bare, "decoder.0.attn.qkv_glue").bytes == approx(81920.0));
  // DeepSpeed's partitioned checkpoints, as under neox; at 4 tensor ranks the clone is the rank's
  // quarter (4,096 B) and the rebuild zeros the whole (2), copies the part in (1) and gathers and
  // copies back the whole (8): 11 B a value, 45,056 B.
  shape.neox_partition = true;
  CHECK(op(build_graph(d, shape), "decoder.0.checkpoint").bytes == 16384.0);
  shape.tensor = 4;
  const auto& quarter = op(build_graph(d, shape), "decoder.0.checkpoint");
  CHECK(quarter.bytes == 4096.0);
  CHECK(quarter.backward_bytes_factor * quarter.bytes == approx(45056.0));
}

TEST_CASE("what a layer keeps for its backward pass, tensor by tensor as autograd keeps it") {
  // GPT layer (LayerNorm, GELU, no dropout), d 256 (4 heads of 64), d_ff 1024, 2 sequences of 128
  // = 256 tokens, 2 bytes, fused attention. Autograd keeps: each LayerNorm's input (256 x 256 x 2
  // = 131,072 B), each GEMM's input (the qkv and up GEMMs: the norms' outputs, 131,072 B each;
  // down: the GELU's output, 256 x 1024 x 2 = 524,288 B), the GELU's input (524,288 B), and the
  // attention's Q, K, V and output (4 x 131,072 B) with its row statistics (4 B x 8 rows of 128).
  // The output projection's input is the attention's output, kept once; the residual adds keep
  // nothing. Before session 18 the two adds (2 x 131,072 B) and the projection's input (131,072 B)
  // were counted too: 32 against 38 bytes a token and width unit, 19 % too much.
  TransformerDesign d = small_gpt(1);
  d.dropout = 0;
  const auto g = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true});
  double layer = 0;
  for (const auto& op : g.ops()) {
    if (op.name.rfind("decoder.0.", 0) == 0) layer += op.saved_bytes;
  }
  const double td = 256.0 * 256 * 2, tf = 256.0 * 1024 * 2;
  CHECK(layer == approx(2 * td + 2 * td + 2 * tf + 4 * td + 4.0 * 8 * 128));
  CHECK(named(g, "decoder.0.attn.out").saved_bytes == 0);
  CHECK(named(g, "decoder.0.attn.residual").saved_bytes == 0);
  CHECK(named(g, "decoder.0.ffn.residual").saved_bytes == 0);
  // With dropout fused into the residual add, the add keeps the mask: one byte an element.
  d.dropout = 0.1;
  const auto dropped = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true});
  CHECK(named(dropped, "decoder.0.ffn.residual").saved_bytes == 256.0 * 256);
  // A fused gated activation (SwiGLU) keeps its input, the gate and up halves: 2 x 256 x 1024 x 2 B.
  d.gated_ffn = true;
  const auto gated = build_graph(d, GraphShape{2, 2, true, Fusion::attention, true});
  CHECK(named(gated, "decoder.0.ffn.act").saved_bytes == 2 * tf);
  // Unfused attention without dropout: the softmax keeps its output, the probabilities (2 x 4 heads
  // x 128 x 128 x 2 B, all of the causal matrix: the kernels compute it whole) and PV keeps only V
  // (2 x 4 x 128 x 64 x 2 B), not the probabilities a second time; with dropout between them PV
  // keeps the dropped probabilities, another tensor.
  d.dropout = 0;
  d.gated_ffn = false;
  const auto unfused = build_graph(d, GraphShape{2, 2, true, Fusion::elementwise, true});
  CHECK(named(unfused, "decoder.0.attn.softmax").saved_bytes == 2.0 * 4 * 128 * 128 * 2);
  CHECK(named(unfused, "decoder.0.attn.context").saved_bytes == 2.0 * 4 * 128 * 64 * 2);
  d.dropout = 0.1;
  const auto unfused_dropped = build_graph(d, GraphShape{2, 2, true, Fusion::elementwise, true});
  CHECK(named(unfused_dropped, "decoder.0.attn.context").saved_bytes == 2.0 * 4 * (128 * 128 + 128 * 64) * 2);
}

TEST_CASE("a parallel block: one norm and one residual add a layer, the same GEMMs") {
  // GPT-J / PaLM: y = x + attn(norm(x)) + ffn(norm(x)). Against the sequential layer of the same
  // design, by hand (LayerNorm: 2 d parameters, 8 FLOPs a value; 2 sequences of 128 at 2 bytes):
  // one LayerNorm fewer a layer (2 x 256 parameters, 256 tokens x 256 x 8 FLOPs) and one residual
  // add fewer; the sum reads three tensors and writes one (4 x 256 x 256 x 2 B = 524,288 B).
  TransformerDesign seq = small_gpt(2);
  TransformerDesign par = seq;
  par.parallel_block = true;
  CHECK(count_parameters(par) == count_parameters(seq) - 2 * (2 * 256));
  const GraphShape shape{2, 2, true, Fusion::elementwise, true};
  const auto gs = build_graph(seq, shape);
  const auto gp = build_graph(par, shape);
  double gemm_s = 0, gemm_p = 0;
  for (const auto& op : gs.ops()) gemm_s += graph::is_gemm(op.kind) ? op.flops : 0;
  for (const auto& op : gp.ops()) gemm_p += graph::is_gemm(op.kind) ? op.flops : 0;
  CHECK(gemm_p == approx(gemm_s));
  // Sequential: two adds of 1 FLOP a value; parallel: one of 2 (three operands), the same FLOPs.
  const double norm_flops = 2.0 * 128 * 256 * 8;
  CHECK(gp.forward_flops() == approx(gs.forward_flops() - 2 * norm_flops));
  const auto& ops = gp.ops();
  const auto sum = std::find_if(ops.begin(), ops.end(), [](const graph::Op& op) { return op.name == "decoder.0.residual"; });
  REQUIRE(sum != ops.end());
  CHECK(sum->bytes == 524288.0);
  const auto names = [&](const std::string& n) {
    return std::count_if(ops.begin(), ops.end(), [&](const graph::Op& op) { return op.name == n; });
  };
  CHECK(names("decoder.0.norm") == 1);
  CHECK(names("decoder.0.attn.norm") == 0);
  CHECK(names("decoder.0.attn.o") == 1);   // the branch's projection, not a block's `.out`
  CHECK(names("decoder.0.ffn.down") == 1);
}

TEST_CASE("a design too large to cost: refused by its sizes before any integer overflows") {
  // GPT-3 at a microbatch of 1 (and 1,000) is within every limit.
  CHECK(graph::size_limit(gpt3(), 1).empty());
  CHECK(graph::size_limit(gpt3(), 1000).empty());
  // 2^56 elements a tensor: 2048 positions x the 50,257-wide logits at 2^30 sequences is over.
  CHECK(graph::size_limit(gpt3(), std::int64_t{1} << 30).rfind("too large to cost: at a batch of 1073741824 a tensor holds ", 0) == 0);
  // A 10^15-token context: its score matrices, whatever the microbatch.
  TransformerDesign d = small_gpt();
  d.seq_len = 1000000000000000;
  CHECK(graph::size_limit(d, 1).find("a tensor holds 4e+30 elements") != std::string::npos);
  // A weight matrix d_model x d_ff past 2^56 (2^31 x 2^31 x 2 here), at any microbatch.
  d = small_gpt();
  d.d_model = d.d_ff = std::int64_t{1} << 31;
  d.seq_len = 1;
  CHECK(graph::size_limit(d, 1).rfind("too large to cost: an op's weights hold ", 0) == 0);
  // More than 100,000 layers: a graph of millions of ops, refused (it would take minutes to build).
  d = small_gpt(100001);
  CHECK(graph::size_limit(d, 1) == "too large to cost: 100001 layers (the builder's limit is 100,000)");
  CHECK(graph::size_limit(small_gpt(100000), 1).empty());
  // A graph file's layers: its ops' distinct layer indices (since session 42, a review: none were
  // counted, and a file of 110,000 layers was costed).
  FileGraphDesign file;
  for (int i = 0; i <= 100000; ++i) file.ops.push_back(FileOp{"op" + std::to_string(i), "elementwise", i / 2 * 2 == i ? i : i - 1, 0, 0, 0, 1, 10, 1, 0, {}, 0});
  CHECK(graph::size_limit(file, 1).empty());  // 50,001 distinct indices (0, 2, ..., 100,000)
  for (int i = 0; i <= 100000; ++i) file.ops[static_cast<std::size_t>(i)].layer = i;
  CHECK(graph::size_limit(file, 1) == "too large to cost: 100001 layers (the builder's limit is 100,000)");
  file.ops.back().layer = -1;  // outside the layers
  CHECK(graph::size_limit(file, 1).empty());
  // build_graph throws with the same reason.
  CHECK_THROWS_WITH_AS(graph::build_graph(d, graph::GraphShape{1, 2, true}), "too large to cost: 100001 layers (the builder's limit is 100,000)",
                       std::invalid_argument);
  // A ViT's classifier of 10^15 classes (d_model x classes past 2^56) and a patch of 2^20 x 2^20
  // pixels of 2^17 channels (2^57 values, the parser's largest sizes): refused, not costed as a job
  // that does not fit (since session 36, from a review).
  TransformerDesign vit = small_gpt();
  vit.arch = TransformerDesign::Arch::encoder;
  vit.encoder_layers = 1;
  vit.decoder_layers = 0;
  vit.image = 224;
  vit.patch = 16;
  vit.classes = 1000;
  vit.seq_len = 197;
  CHECK(graph::size_limit(vit, 64).empty());
  // The position add keeps nothing: the first norm keeps its output (since session 44, a review).
  CHECK(named(build_graph(vit, GraphShape{1, 2, true}), "embedding.position").saved_bytes == 0);
  vit.classes = 1000000000000000;
  CHECK(graph::size_limit(vit, 1).rfind("too large to cost: an op's weights hold ", 0) == 0);
  vit.classes = 1000;
  vit.image = vit.patch = std::int64_t{1} << 20;
  vit.image_channels = std::int64_t{1} << 17;
  vit.seq_len = 2;
  CHECK(graph::size_limit(vit, 1).rfind("too large to cost: ", 0) == 0);
  // The other builders: an MLP's widths, a ResNet's image, a file graph's rows.
  CHECK(graph::size_limit(MlpDesign{{1000, 1000}}, 1000).empty());
  CHECK(graph::size_limit(MlpDesign{{std::int64_t{1} << 29, std::int64_t{1} << 29}}, 1).rfind("too large to cost: an op's weights hold ", 0) == 0);
  ResNetDesign r;
  CHECK(graph::size_limit(r, 256).empty());
  r.image = std::int64_t{1} << 27;
  CHECK(graph::size_limit(r, 1).rfind("too large to cost: at a batch of 1 a tensor holds ", 0) == 0);
  // A ResNet of 40 stages: its width doubles each stage while the image stays one pixel.
  r = ResNetDesign{};
  r.image = 1;
  r.width = std::int64_t{1} << 21;
  r.blocks.assign(40, 1);
  CHECK(graph::size_limit(r, 1).rfind("too large to cost: an op's weights hold ", 0) == 0);
  // Every size a design names counts: experts x their width, shared experts, token types.
  d = small_gpt();
  d.experts = std::int64_t{1} << 40;
  d.expert_d_ff = std::int64_t{1} << 24;
  d.einsum_dispatch = true;
  CHECK_FALSE(graph::size_limit(d, 1).empty());
  d = small_gpt();
  d.experts = 1;
  d.shared_experts = std::int64_t{1} << 53;
  CHECK_FALSE(graph::size_limit(d, 1).empty());
  d = bert(1, 1024, 1);
  d.type_vocab = std::int64_t{1} << 53;
  CHECK(graph::size_limit(d, 1).rfind("too large to cost: an op's weights hold ", 0) == 0);
  // An LSTM costed a time step at a time: at most 10^6 cell steps.
  LstmDesign l;
  l.input = l.hidden = 1;
  l.seq_len = std::int64_t{1} << 40;
  CHECK(graph::size_limit(l, 1) == "too large to cost: 1099511627776 LSTM cell steps (the builder's limit is 1,000,000: layers x directions x seq_len)");
  l.seq_len = 20;
  l.char_cnn.chars = std::int64_t{1} << 53;
  l.char_cnn.embedding = 1024;
  l.char_cnn.max_chars = 1;
  l.char_cnn.filters = {{1, 1}};
  CHECK(graph::size_limit(l, 1).rfind("too large to cost: an op's weights hold ", 0) == 0);
  FileGraphDesign f;
  f.ops.push_back(FileOp{"x", "matmul", 0, std::int64_t{1} << 40, 1024, 1024, 1, 0, 1, 0, {}});
  CHECK(graph::size_limit(f, 1).empty());
  CHECK_FALSE(graph::size_limit(f, 1 << 20).empty());
}

TEST_CASE("einsum dispatch: every expert computes its capacity's slots, padded ones too, at least min_capacity") {
  // small_gpt with 8 experts top-1, 4 sequences of 128 = 512 tokens in groups of 16: 32 groups,
  // C = floor(1 x 1 x 16 / 8) = 2 slots an expert a group; each expert (one device: G = 1) runs
  // C x 32 groups = 64 slots, the 512 routed tokens' share, no padding.
  TransformerDesign moe = small_gpt();
  moe.experts = 8;
  moe.einsum_dispatch = true;
  moe.group_size = 16;
  const auto up = [](const graph::OpGraph& g) {
    for (const auto& op : g.ops()) {
      if (op.name == "decoder.0.ffn.experts.up") return op;
    }
    FAIL("no experts.up op");
    return graph::Op{};
  };
  auto e = up(build_graph(moe, GraphShape{4, 2, true}));
  CHECK(e.count == 8);
  CHECK(e.m == 64);
  CHECK(e.model_share == 1);
  // Groups of 4: C = floor(4 / 8) = 0, raised to one slot (the least any code can run): 8 slots a
  // group for its 4 tokens, each expert 128 slots, twice the routed 64: half of it padding, costed
  // and left out of the model FLOPs.
  moe.group_size = 4;
  auto g = build_graph(moe, GraphShape{4, 2, true});
  e = up(g);
  CHECK(e.m == 128);
  CHECK(e.model_share == approx(0.5));
  CHECK(e.flops == 8 * 2.0 * 128 * 256 * 1024);
  // Mesh TensorFlow's default minimum, 4 slots (at most the group's 4 tokens): 512 slots an expert.
  moe.min_capacity = 4;
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).m == 512);
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).model_share == approx(0.125));
  moe.min_capacity = 9;  // more than a group holds: moe.py applies the minimum after the cap, 9
  CHECK(up(build_graph(moe, GraphShape{4, 2, true})).m == 9 * 128);
  // The model FLOPs are the routed tokens' whatever the padding.
  moe.min_capacity = 1;
  moe.group_size = 16;
  const double routed = build_graph(moe, GraphShape{4, 2, true}).model_forward_flops();
  moe.group_size = 4;
  const auto padded = build_graph(moe, GraphShape{4, 2, true});
  // (Dispatch and combine are the implementation's work, not model FLOPs, whatever the group:
  // the whole graph's model FLOPs are the same at groups of 16 and of 4.)
  CHECK(padded.model_forward_flops() == approx(routed));
  double experts_model = 0, experts_routed = 0;
  for (const auto& op : padded.ops()) {
    if (op.name.find(".experts.") != std::string::npos) experts_model += op.flops * op.model_share;
  }
  moe.group_size = 16;
  const auto unpadded = build_graph(moe, GraphShape{4, 2, true});
  for (const auto& op : unpadded.ops()) {
    if (op.name.find(".experts.") != std::string::npos) experts_routed += op.flops;
  }
  CHECK(experts_model == approx(experts_routed));
  CHECK(routed > 0);
}

// small_gpt (d 256, vocabulary 1000, 128-token sequences) as an encoder-decoder of 2 + 2 layers.
TransformerDesign small_encoder_decoder(TransformerDesign::Position position) {
  TransformerDesign d = small_gpt();
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = 2;
  d.decoder_layers = 2;
  d.position = position;
  return d;
}

TEST_CASE("the encoder's output is kept once for the decoder layers' cross-attention, by hand") {
  // Two decoder layers read the encoder's output (2 sequences of 128 x 256 values, 2 B: 131,072 B):
  // the first layer's key/value projection keeps it, the second's leaves it to the first and
  // keeps it again only on another pipeline device (since session 44, a review: every layer kept it).
  const TransformerDesign d = small_encoder_decoder(TransformerDesign::Position::relative);
  const auto g = build_graph(d, GraphShape{2, 2, true});
  const graph::Op& first = named(g, "decoder.0.cross.kv");
  const graph::Op& second = named(g, "decoder.1.cross.kv");
  CHECK(first.saved_bytes == 2 * 128 * 256 * 2.0);
  CHECK(first.shared_input_bytes == 0);
  CHECK(second.saved_bytes == 0);
  CHECK(second.shared_input_bytes == 2 * 128 * 256 * 2.0);
}

TEST_CASE("an untied encoder-decoder has two vocabulary tables: the stacks' shared input and the head") {
  // T5 v1.1 and mT5: the encoder and the decoder read one `shared` table; untied, the output layer
  // has its own. Untied adds one vocab x d_model table, not two.
  TransformerDesign d = small_encoder_decoder(TransformerDesign::Position::relative);
  const double tied = graph::count_parameters(d);
  d.tied_embeddings = false;
  CHECK(graph::count_parameters(d) - tied == approx(1000.0 * 256));
}

TEST_CASE("position tables: each stack of an encoder-decoder has its own, by hand") {
  // small_gpt as an encoder-decoder (d 256, 4 heads, 128-token sequences, 64-token targets).
  TransformerDesign d = small_gpt();
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = 2;
  d.decoder_layers = 2;
  d.target_seq_len = 64;
  d.position = TransformerDesign::Position::none;
  const double none = graph::count_parameters(d);
  // Learned (BART's): a 128-row table for the encoder and a 64-row one for the decoder.
  d.position = TransformerDesign::Position::learned;
  CHECK(graph::count_parameters(d) - none == approx((128.0 + 64) * 256));
  // Relative (T5's): 32 buckets a head in each stack.
  d.position = TransformerDesign::Position::relative;
  CHECK(graph::count_parameters(d) - none == approx(2 * 32.0 * 4));
  // A decoder alone with relative biases has its one table.
  TransformerDesign g = small_gpt();
  g.position = TransformerDesign::Position::none;
  const double g_none = graph::count_parameters(g);
  g.position = TransformerDesign::Position::relative;
  CHECK(graph::count_parameters(g) - g_none == approx(32.0 * 4));
}

TEST_CASE("an encoder-decoder with a target vocabulary of its own, by hand") {
  // small_gpt (d 256, vocabulary 1000, 128-token sequences) as an encoder-decoder of 2 + 2 layers,
  // no position tables; the decoder's vocabulary 600 (GShard's M4: 64,000 source, 32,000 target).
  TransformerDesign d = small_encoder_decoder(TransformerDesign::Position::none);
  const double shared = graph::count_parameters(d);
  const auto g_shared = build_graph(d, GraphShape{2, 2, true});
  d.target_vocab = 600;
  // Tied: one more table, 600 x 256, read by the decoder and its head.
  CHECK(graph::count_parameters(d) - shared == approx(600.0 * 256));
  const auto g = build_graph(d, GraphShape{2, 2, true});
  // The head projects 2 x 128 tokens over 600 rows, not 1000: 2 x 256 x 256 x 400 FLOPs fewer,
  // and its loss 256 x 400 x 4.
  CHECK(g_shared.forward_flops() - g.forward_flops() == approx(2.0 * 256 * 256 * 400 + 256.0 * 400 * 4));
  // Untied: the head has its own 600 x 256 table besides.
  d.tied_embeddings = false;
  CHECK(graph::count_parameters(d) - shared == approx(2 * 600.0 * 256));
}

TEST_CASE("GPT-NeoX's parallel residual: two norms, and the rotary embedding on a share of the channels") {
  // small_gpt (4 sequences of 128 = 512 tokens, d 256, 4 heads of 64) as a parallel block.
  TransformerDesign d = small_gpt(1);
  d.parallel_block = true;
  d.position = TransformerDesign::Position::rotary;
  const auto g1 = build_graph(d, GraphShape{4, 2, true});
  d.parallel_norms = 2;
  const auto g2 = build_graph(d, GraphShape{4, 2, true});
  // One more LayerNorm a layer: 512 x 256 values, 8 FLOPs each, 2 x 256 parameters.
  CHECK(g2.forward_flops() - g1.forward_flops() == approx(512.0 * 256 * 8));
  CHECK(g2.parameters() - g1.parameters() == approx(2.0 * 256));
  const auto rotary = [](const graph::OpGraph& g) {
    for (const auto& op : g.ops()) {
      if (op.name == "decoder.0.attn.rotary") return op.flops;
    }
    FAIL("no rotary op");
    return 0.0;
  };
  // Pythia's rotary_pct 0.25: a quarter of the (4 + 4) x 64 channels of each of the 512 tokens.
  const double full = rotary(g2);
  CHECK(full == approx(512.0 * 8 * 64 * 3));
  d.rotary_fraction = 0.25;
  CHECK(rotary(build_graph(d, GraphShape{4, 2, true})) == approx(full / 4));
}

TEST_CASE("a learned position table has max_positions rows, whatever the phase's sequence length") {
  // BERT large at 128 tokens keeps its 512-row table: (512 - 128) x 1024 = 393,216 parameters more
  // than a table sized by the sequence.
  TransformerDesign d = bert(24, 1024, 16);
  d.seq_len = 128;
  const double by_sequence = graph::count_parameters(d);
  d.max_positions = 512;
  CHECK(graph::count_parameters(d) - by_sequence == approx(384.0 * 1024));
  d.seq_len = 512;
  CHECK(graph::count_parameters(d) == approx(graph::count_parameters(bert(24, 1024, 16))));
}

TEST_CASE("a tensor two ops read is kept once: parallel blocks, shared experts, latent attention") {
  // Since session 34 (before, each reader counted it). One layer of small_gpt (d 256, 128 tokens),
  // fp16: a tensor of the width is 128 x 256 x 2 = 65,536 B.
  const double tensor = 128.0 * 256 * 2;
  const auto saved = [](const TransformerDesign& d) {
    return graph::build_graph(d, graph::GraphShape{1, 2, true}).saved_bytes();
  };
  TransformerDesign seq = small_gpt(1);
  TransformerDesign par = seq;
  par.parallel_block = true;
  // Sequential: two norms keep x and x + attention, the QKV and up projections their normed
  // inputs. Parallel, one norm: the norm keeps x, the QKV keeps its output, which the up
  // projection reads too: two tensors fewer. Two norms: the second reads the x the first keeps,
  // the up projection keeps its own normed input: one fewer.
  CHECK(saved(seq) - saved(par) == approx(2 * tensor));
  par.parallel_norms = 2;
  CHECK(saved(seq) - saved(par) == approx(tensor));
  // Shared experts read the normed input the router keeps, and their sum with the routed experts'
  // output keeps nothing: one shared expert adds its own activation and down projection's input
  // only, as a dense feed-forward of its width beside the router would.
  TransformerDesign moe = small_gpt(1);
  moe.experts = 4;
  TransformerDesign shared = moe;
  shared.shared_experts = 1;
  const auto g = graph::build_graph(shared, graph::GraphShape{1, 2, true});
  double up = -1, add = -1;
  for (const auto& op : g.ops()) {
    if (op.name == "decoder.0.ffn.shared.up") up = op.saved_bytes;
    if (op.name == "decoder.0.ffn.shared.add") add = op.saved_bytes;
  }
  CHECK(up == 0);
  CHECK(add == 0);
  // Latent attention: the key/value down projection reads the normed input the query's projection
  // keeps.
  TransformerDesign mla = small_gpt(1);
  mla.kv_lora_rank = 32;
  mla.rope_head_dim = 8;
  const auto gm = graph::build_graph(mla, graph::GraphShape{1, 2, true});
  CHECK(named(gm, "decoder.0.attn.kv_a").saved_bytes == 0);
  CHECK(named(gm, "decoder.0.attn.q").saved_bytes == approx(tensor));
}

TEST_CASE("a graph file's convolution reads its feature map once, and a lookup its rows, not its table") {
  // Since session 34 (a review). ResNet-50's 3x3 convolution of 64 channels at 56 x 56: m = 3,136
  // output positions, k = 576 (64 x 3 x 3), n = 64, input 200,704 values (56 x 56 x 64). In fp16 at
  // batch 1: 2 x (200,704 + 36,864 + 200,704) = 876,544 B, as the ResNet builder's
  // `stage1.0.conv2`; without `input`, the unfolded m x k: 2 x (1,806,336 + 36,864 + 200,704).
  FileGraphDesign d;
  FileOp conv{"conv", "conv2d", 0, 3136, 64, 576, 1, 0, 1, 36864, {}};
  conv.input = 200704;
  d.ops.push_back(conv);
  // An embedding lookup of 2,048 tokens x 128 from a 50,000 x 128 table: reads and writes
  // 262,144 values, 2 x 2 x 262,144 B, not the 6.4M-value table.
  d.ops.push_back(FileOp{"embed", "embedding", -1, 0, 0, 0, 1, 262144, 0, 6.4e6, {}});
  const auto g = build_graph(d, GraphShape{1, 2, true});
  CHECK(g.op(0).bytes == approx(876544.0));
  CHECK(g.op(0).saved_bytes == approx(2 * 200704.0));
  CHECK(g.op(1).bytes == approx(4 * 262144.0));
  CHECK(g.parameters() == approx(36864 + 6.4e6));
  d.ops[0].input = 0;
  CHECK(build_graph(d, GraphShape{1, 2, true}).op(0).bytes == approx(2.0 * (3136.0 * 576 + 36864 + 200704)));
}

// One layer of d 64, 2 heads, d_ff 128, with `experts` experts (top_k each) over seq_len tokens.
TransformerDesign small_moe(std::int64_t seq_len, std::int64_t experts, std::int64_t top_k) {
  TransformerDesign moe = small_gpt(1);
  moe.d_model = 64;
  moe.heads = 2;
  moe.d_ff = 128;
  moe.seq_len = seq_len;
  moe.experts = experts;
  moe.top_k = top_k;
  return moe;
}

TEST_CASE("a gathered mixture of experts: the whole slots that round its routed tokens are not model FLOPs") {
  // Since session 34 (a review). 150 tokens, top-1 of 64 experts, on one device (expert group 1):
  // about 58 experts receive tokens (64 (1 - (63/64)^150) = 57.6, rounded), each 150 / 58 = 2.6 ->
  // 3 whole slots: 174 slots run for the 150 routed. The products cost 174 slots' work; the model's
  // FLOPs are the 150 routed tokens'.
  const TransformerDesign moe = small_moe(150, 64, 1);
  const auto g = build_graph(moe, GraphShape{1, 2, true});
  const graph::Op& up = named(g, "decoder.0.ffn.experts.up");
  CHECK(up.count * up.m == 58 * 3);
  CHECK(up.flops == approx(2.0 * 174 * 64 * 128));
  CHECK(up.flops * up.model_share == approx(2.0 * 150 * 64 * 128));
}

TEST_CASE("a gathered mixture of experts rounds each expert's slots up: every routed token computed") {
  // Since session 39 (a review; rounded to the nearest before). 3 tokens, top-2 of 8 experts: 6
  // routed slots; 8 (1 - (6/8)^3) = 4.6 -> 5 experts reached, 6 / 5 = 1.2 -> 2 slots each: 10 run,
  // the model's FLOPs the 6 routed (1 slot each, 5 slots, had dropped one).
  const TransformerDesign moe = small_moe(3, 8, 2);
  const auto g = build_graph(moe, GraphShape{1, 2, true});
  const graph::Op& up = named(g, "decoder.0.ffn.experts.up");
  CHECK(up.count == 5);
  CHECK(up.m == 2);
  CHECK(up.flops * up.model_share == approx(2.0 * 6 * 64 * 128));
}

TEST_CASE("a target vocabulary as large as the source's is still a table of its own") {
  // Since session 39 (a review: equal sizes were read as the one shared table).
  TransformerDesign d = small_encoder_decoder(TransformerDesign::Position::none);
  const double shared = graph::count_parameters(d);
  d.target_vocab = d.vocab;
  CHECK(graph::count_parameters(d) - shared == approx(1000.0 * 256));
}

TEST_CASE("the rotary embedding turns whole channels: a head's share floored") {
  // Since session 39 (a review). 64-channel heads at 0.26 turn 16 channels (GPT-NeoX's
  // int(64 x 0.26)), as at 0.25, not 16.64.
  TransformerDesign d = small_gpt(1);
  d.position = TransformerDesign::Position::rotary;
  d.rotary_fraction = 0.25;
  const double quarter = named(build_graph(d, GraphShape{4, 2, true}), "decoder.0.attn.rotary").flops;
  d.rotary_fraction = 0.26;
  const auto g = build_graph(d, GraphShape{4, 2, true});
  const graph::Op& r = named(g, "decoder.0.attn.rotary");
  CHECK(r.flops == approx(quarter));
  CHECK(r.flops == approx(512.0 * 8 * 16 * 3));
}

TEST_CASE("ResNet pools move what they read and write, by hand") {
  // Since session 39 (a review). ResNet-50 at 224, one image, 2-byte values. The stem's max pool
  // reads 112 x 112 x 64 and writes 56 x 56 x 64: 2 x (802,816 + 200,704) = 2,007,040 B. The
  // global average pool reads 7 x 7 x 2048 and writes 2,048: 2 x (100,352 + 2,048) = 204,800 B,
  // one addition an input value.
  const auto g = build_graph(ResNetDesign{}, GraphShape{1, 2, true});
  CHECK(named(g, "stem.maxpool").bytes == approx(2007040));
  const graph::Op& avg = named(g, "avgpool");
  CHECK(avg.bytes == approx(204800));
  CHECK(avg.flops == approx(100352));
}

TEST_CASE("a decoder's embeddings are dropped out as an encoder's are") {
  // Since session 39 (a review: only encoders had the pass). small_gpt, 4 sequences of 128, d 256,
  // dropout 0.1, nothing fused: one pass over 131,072 values, 2 FLOPs each; none at dropout 0 or in
  // inference.
  TransformerDesign d = small_gpt(1);
  GraphShape shape{4, 2, true, Fusion::none};
  const auto has = [](const graph::OpGraph& g, const std::string& name) {
    return std::any_of(g.ops().begin(), g.ops().end(), [&](const graph::Op& o) { return o.name == name; });
  };
  CHECK_FALSE(has(build_graph(d, shape), "decoder.embedding.dropout"));
  d.dropout = 0.1;
  const auto g = build_graph(d, shape);
  CHECK(named(g, "decoder.embedding.dropout").flops == approx(2.0 * 4 * 128 * 256));
  shape.training = false;
  CHECK_FALSE(has(build_graph(d, shape), "decoder.embedding.dropout"));
  // An encoder-decoder's encoder too.
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = 1;
  shape.training = true;
  CHECK(named(build_graph(d, shape), "encoder.embedding.dropout").flops == approx(2.0 * 4 * 128 * 256));
}

TEST_CASE("a tensor several ops would keep is kept once, and the data takes no gradient") {
  // Since session 45 (a review). A graph file, fp16, 2 samples: a norm over 1024 values a sample,
  // read by separate q, k and v products (1 x 1024 x 1024 each): the norm keeps its output
  // (2 x 1024 x 2 B = 4,096 B) and the three products keep nothing more, as one fused qkv product
  // would; a product of a later layer reading it keeps it again only on another pipeline device.
  FileGraphDesign f;
  f.ops.push_back(FileOp{"x", "embedding", -1, 0, 0, 0, 1, 1024, 0, 0, {}});
  f.ops.push_back(FileOp{"norm", "norm", 0, 0, 0, 0, 1, 1024, 8, 2048, {"x"}});
  for (const char* p : {"q", "k", "v"}) f.ops.push_back(FileOp{p, "matmul", 0, 1, 1024, 1024, 1, 0, 1, 1048576, {"norm"}});
  f.ops.push_back(FileOp{"later", "matmul", 1, 1, 1024, 1024, 1, 0, 1, 1048576, {"norm"}});
  // A grouped convolution: 4 groups of [16 x 9] x [9 x 4] over a 160-value map read once.
  f.ops.push_back(FileOp{"grouped", "conv2d", 1, 16, 4, 9, 4, 0, 1, 144, {}, 160});
  const auto g = build_graph(f, GraphShape{2, 2, true});
  CHECK(named(g, "norm").saved_bytes == approx(4096));
  for (const char* p : {"q", "k", "v"}) {
    CHECK(named(g, p).saved_bytes == 0);
    CHECK(named(g, p).backward_factor == 2);
  }
  CHECK(named(g, "later").saved_bytes == 0);
  CHECK(named(g, "later").shared_input_bytes == approx(4096));
  // The data: no FLOPs' worth of gradient; the convolution on it computes its weight gradient alone,
  // and moves its map once: 2 B x (2 x 160 + 4 x (9 x 4 + 2 x 16 x 4)) = 2 x (320 + 656) = 1,952 B
  // (4 x 320 for the map before).
  CHECK(named(g, "x").backward_factor == 0);
  const graph::Op& conv = named(g, "grouped");
  CHECK(conv.backward_factor == 1);
  CHECK(conv.bytes == approx(1952));
  CHECK(conv.saved_bytes == approx(640));
}

TEST_CASE("the builders' inputs: no positions added, no gradient for data, tensors kept once") {
  // Since session 45 (a review). An MLP on data: the input adds no FLOPs and has no backward, the
  // first product computes its weight gradient alone; the ReLU keeps its output, which the next
  // product reads (kept again only on another pipeline device). With input_gradient the first
  // product's backward is two products.
  const auto mlp = build_graph(MlpDesign{{100, 200, 10}}, GraphShape{8, 2, true});
  CHECK(named(mlp, "input").flops == 0);
  CHECK(named(mlp, "input").backward_factor == 0);
  CHECK(named(mlp, "dense.0").backward_factor == 1);
  CHECK(named(mlp, "act.0").saved_bytes == approx(8 * 200 * 2));
  CHECK(named(mlp, "dense.1").saved_bytes == 0);
  CHECK(named(mlp, "dense.1").shared_input_bytes == approx(8 * 200 * 2));
  const auto upstream = build_graph(MlpDesign{{100, 200, 10}, true}, GraphShape{8, 2, true});
  CHECK(named(upstream, "dense.0").backward_factor == 2);
  CHECK(named(upstream, "input").flops == 0);
  // A bidirectional LSTM on features: both directions' input gates read one tensor, kept once.
  LstmDesign l;
  l.input = 16;
  l.hidden = 8;
  l.seq_len = 4;
  l.bidirectional = true;
  const auto lstm = build_graph(l, GraphShape{2, 2, true});
  CHECK(named(lstm, "input").backward_factor == 0);
  CHECK(named(lstm, "lstm.0.forward.input_gates").saved_bytes == approx(2 * 4 * 16 * 2));
  CHECK(named(lstm, "lstm.0.backward.input_gates").saved_bytes == 0);
  CHECK(named(lstm, "lstm.0.forward.input_gates").backward_factor == 1);
  // ResNet's head is layer -1, as a transformer's.
  const auto resnet = build_graph(ResNetDesign{}, GraphShape{1, 2, true});
  CHECK(named(resnet, "avgpool").layer == -1);
  CHECK(named(resnet, "fc").layer == -1);
  CHECK(named(resnet, "input").flops == 0);
}
