#include "design.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "dlcarbon/text.hpp"

namespace dlcarbon::detail {
namespace {

std::int64_t positive(const MapView& m, const std::string& key) { return read_positive_int(m.at(key)); }

// A count that may be zero.
std::int64_t read_count(const Value& v) {
  const std::int64_t n = read_int(v);
  if (n < 0) v.expected("an integer >= 0");
  return n;
}

std::int64_t optional_positive(const MapView& m, const std::string& key, std::int64_t fallback) {
  return m.has(key) ? read_positive_int(m.at(key)) : fallback;
}

std::vector<std::int64_t> positive_list(const Value& v) {
  if (!v.node.IsSequence() || v.node.size() == 0) v.expected("a list of positive integers");
  std::vector<std::int64_t> out;
  for (std::size_t i = 0; i < v.node.size(); ++i) {
    out.push_back(read_positive_int(v.child(v.node[i], "[" + std::to_string(i) + "]")));
  }
  return out;
}

CharCnnDesign read_char_cnn(const Value& v) {
  if (!v.node.IsMap()) v.expected("a map with chars, embedding, max_chars, filters and highway");
  const MapView m(v, {"chars", "embedding", "max_chars", "filters", "highway"});
  for (const char* k : {"chars", "embedding", "max_chars", "filters"}) m.require(k);
  CharCnnDesign d;
  d.chars = positive(m, "chars");
  d.embedding = positive(m, "embedding");
  d.max_chars = positive(m, "max_chars");
  d.highway = m.has("highway") ? read_count(m.at("highway")) : 0;
  const Value f = m.at("filters");
  if (!f.node.IsSequence() || f.node.size() == 0) f.expected("a list of [width, count] pairs, e.g. [[1, 32], [2, 64]]");
  for (std::size_t i = 0; i < f.node.size(); ++i) {
    const Value one = f.child(f.node[i], "[" + std::to_string(i) + "]");
    const auto pair = positive_list(one);
    if (pair.size() != 2) one.expected("a [width, count] pair of positive integers");
    if (pair[0] > d.max_chars) {
      one.child(one.node[0], "[0]").expected("a filter width <= max_chars (" + std::to_string(d.max_chars) + ")");
    }
    for (const auto& [width, count] : d.filters) {
      if (width == pair[0]) one.child(one.node[0], "[0]").expected("a filter width not listed before (one convolution a width)");
    }
    d.filters.emplace_back(pair[0], pair[1]);
  }
  return d;
}

TransformerDesign read_transformer(const MapView& m, const std::string& builder) {
  TransformerDesign d;
  if (builder == "decoder") {
    d.arch = TransformerDesign::Arch::decoder;
    m.require("layers");
    d.decoder_layers = positive(m, "layers");
  } else if (builder == "encoder") {
    d.arch = TransformerDesign::Arch::encoder;
    m.require("layers");
    d.encoder_layers = positive(m, "layers");
    d.position = TransformerDesign::Position::learned;
  } else {
    d.arch = TransformerDesign::Arch::encoder_decoder;
    m.require("encoder_layers");
    m.require("decoder_layers");
    d.encoder_layers = positive(m, "encoder_layers");
    d.decoder_layers = positive(m, "decoder_layers");
  }
  for (const char* k : {"d_model", "heads", "d_ff", "vocab", "seq_len"}) m.require(k);
  d.d_model = positive(m, "d_model");
  d.heads = positive(m, "heads");
  d.kv_heads = optional_positive(m, "kv_heads", d.heads);
  d.head_dim = optional_positive(m, "head_dim", 0);
  if (d.head_dim == 0 && d.d_model % d.heads != 0) m.at("heads").expected("a number of heads that divides d_model (or give head_dim)");
  if (d.heads % d.kv_heads != 0) m.at("kv_heads").expected("a divisor of heads");
  d.d_ff = positive(m, "d_ff");
  d.vocab = positive(m, "vocab");
  if (m.has("pad_vocab")) {
    // The code rounds its embedding table and output layer up to a multiple of this (NVIDIA's
    // BERT: 8, Megatron-LM: 128 x the tensor-parallel degree), and computes the padded rows.
    const auto multiple = positive(m, "pad_vocab");
    if (multiple > (std::int64_t{1} << 20)) m.at("pad_vocab").expected("a multiple of at most 1,048,576 (e.g. 8 or 128)");
    d.vocab = (d.vocab + multiple - 1) / multiple * multiple;
  }
  d.seq_len = positive(m, "seq_len");
  d.target_seq_len = optional_positive(m, "target_seq_len", 0);
  d.target_vocab = optional_positive(m, "target_vocab", 0);
  if (m.has("pad_vocab") && d.target_vocab > 0) {
    const auto multiple = positive(m, "pad_vocab");
    d.target_vocab = (d.target_vocab + multiple - 1) / multiple * multiple;
  }
  if (m.has("gated_ffn")) d.gated_ffn = read_bool(m.at("gated_ffn"));
  if (m.has("parallel_block")) d.parallel_block = read_bool(m.at("parallel_block"));
  if (m.has("parallel_norms")) {
    if (!d.parallel_block) m.at("parallel_norms").fail("needs parallel_block: true (the norms of a parallel block's two branches)");
    d.parallel_norms = positive(m, "parallel_norms");
    if (d.parallel_norms > 2) m.at("parallel_norms").expected("1 or 2 (one norm for both branches, or one each)");
  }
  if (m.has("deepnorm")) d.deepnorm = read_bool(m.at("deepnorm"));
  if (m.has("rotary_fraction")) {
    d.rotary_fraction = read_number_in(m.at("rotary_fraction"), 0, 1, false, "a share of the head's channels in (0, 1] (e.g. 0.25)");
  }
  if (m.has("sliding_window")) d.sliding_window = positive(m, "sliding_window");
  if (m.has("global_every")) {
    if (!m.has("sliding_window")) m.at("global_every").fail("needs sliding_window (the layers between the global ones attend to a window)");
    d.global_every = positive(m, "global_every");
  }
  if (m.has("tied_embeddings")) d.tied_embeddings = read_bool(m.at("tied_embeddings"));
  if (m.has("position")) {
    // `sinusoidal` (Vaswani et al. 2017's fixed timing signal) has no parameters and its add is the
    // embedding op's, as with `none`.
    const std::string p = read_choice(m.at("position"), {"learned", "rotary", "relative", "sinusoidal", "none"});
    d.position = p == "learned"    ? TransformerDesign::Position::learned
                 : p == "rotary"   ? TransformerDesign::Position::rotary
                 : p == "relative" ? TransformerDesign::Position::relative
                                   : TransformerDesign::Position::none;
  }
  if (m.has("max_positions")) {
    if (d.position != TransformerDesign::Position::learned) {
      m.at("max_positions").fail("sizes a learned position table; needs position: learned (an encoder's default)");
    }
    d.max_positions = positive(m, "max_positions");
    const std::int64_t longest = std::max(d.seq_len, d.target_seq_len);
    if (d.max_positions < longest) {
      m.at("max_positions").expected("at least the sequence length (" + std::to_string(longest) + "): a table row a position");
    }
  }
  if (m.has("rotary_fraction") && d.position != TransformerDesign::Position::rotary) {
    m.at("rotary_fraction").fail("needs position: rotary (the share of the channels it turns)");
  }
  // Latent attention's rotary channels are rope_head_dim, a head's own (since session 39, a review:
  // the share was accepted and had no effect).
  if (m.has("rotary_fraction") && m.has("kv_lora_rank")) {
    m.at("rotary_fraction").fail("latent attention turns rope_head_dim channels of each head; drop rotary_fraction");
  }
  if (d.position == TransformerDesign::Position::rotary && !m.has("kv_lora_rank")) {
    // RoPE turns pairs of channels: a head's rotated channels (GPT-NeoX floors head width x
    // rotary_pct) must be a whole, even number (since session 36, from a review; latent attention's
    // are rope_head_dim, checked below).
    const std::int64_t width = d.head_dim > 0 ? d.head_dim : d.d_model / d.heads;
    const auto turned = static_cast<std::int64_t>(std::floor(static_cast<double>(width) * d.rotary_fraction + 1e-9));
    if (turned < 2 || turned % 2 != 0) {
      m.at(m.has("rotary_fraction") ? "rotary_fraction" : (m.has("head_dim") ? "head_dim" : "position"))
          .fail("position: rotary turns pairs of channels, but a head's rotated channels (" + std::to_string(turned) +
                " of its " + std::to_string(width) + ") are not an even number of 2 or more");
    }
  }
  if (m.has("norm")) d.rms_norm = read_choice(m.at("norm"), {"layernorm", "rmsnorm"}) == "rmsnorm";
  if (m.has("biases")) d.biases = read_bool(m.at("biases"));
  if (m.has("dropout")) {
    d.dropout = read_number_in(m.at("dropout"), 0, 1, true, "a dropout rate in [0, 1)");
    if (d.dropout >= 1) m.at("dropout").expected("a dropout rate in [0, 1)");
  }
  if (m.has("bias_activation")) d.bias_in_activation = read_choice(m.at("bias_activation"), {"separate", "fused"}) == "fused";
  if (m.has("attention_dropout")) {
    d.attention_dropout = read_number_in(m.at("attention_dropout"), 0, 1, true, "a dropout rate in [0, 1)");
    if (d.attention_dropout >= 1) m.at("attention_dropout").expected("a dropout rate in [0, 1)");
  }
  if (m.has("cell")) d.evolved = read_choice(m.at("cell"), {"transformer", "evolved"}) == "evolved";
  if (m.has("embedding")) d.one_hot_embedding = read_choice(m.at("embedding"), {"lookup", "one_hot"}) == "one_hot";
  if (m.has("type_vocab")) d.type_vocab = positive(m, "type_vocab");
  if (m.has("pooler")) d.pooler = read_bool(m.at("pooler"));
  if (m.has("mlm_positions")) d.mlm_all_positions = read_choice(m.at("mlm_positions"), {"masked", "all"}) == "all";
  if (m.has("experts")) {
    d.experts = positive(m, "experts");
    d.top_k = optional_positive(m, "top_k", 1);
    if (d.top_k > d.experts) m.at("top_k").expected("at most the number of experts");
    d.moe_every = optional_positive(m, "moe_every", 1);
    if (m.has("capacity_factor")) {
      d.capacity_factor = read_number_in(m.at("capacity_factor"), 0, 100, false, "a capacity factor in (0, 100] (e.g. 1.25)");
    }
    if (m.has("dispatch")) d.einsum_dispatch = read_choice(m.at("dispatch"), {"gather", "einsum"}) == "einsum";
    if (m.has("group_size")) {
      if (!d.einsum_dispatch) m.at("group_size").fail("needs dispatch: einsum (a gather has no groups)");
      d.group_size = positive(m, "group_size");
    }
    if (m.has("min_capacity")) {
      if (!d.einsum_dispatch) m.at("min_capacity").fail("needs dispatch: einsum (a gather pads no expert to a capacity)");
      d.min_capacity = positive(m, "min_capacity");
    }
    d.expert_d_ff = optional_positive(m, "expert_d_ff", 0);
    if (m.has("shared_experts")) d.shared_experts = read_count(m.at("shared_experts"));
    d.route_nodes = optional_positive(m, "route_nodes", 0);
    d.route_devices = optional_positive(m, "route_devices", 0);
    if (d.route_nodes > 0 && d.route_devices > 0) {
      m.at("route_devices").fail("node-limited and device-limited routing exclude each other; give route_nodes or route_devices");
    }
    if (m.has("dense_layers")) {
      d.dense_layers = read_count(m.at("dense_layers"));
      // Every stack needs an MoE layer after its dense ones (moe_every counts from there).
      std::int64_t layers = std::max(d.decoder_layers, d.encoder_layers);
      if (d.decoder_layers > 0 && d.encoder_layers > 0) layers = std::min(d.decoder_layers, d.encoder_layers);
      if (layers - d.dense_layers < d.moe_every) {
        m.at("dense_layers").expected("at most " + std::to_string(std::max<std::int64_t>(0, layers - d.moe_every)) +
                                      " dense layers, so that a stack of " + std::to_string(layers) +
                                      " layers keeps an MoE layer (moe_every " + std::to_string(d.moe_every) + ")");
      }
    } else if (m.has("moe_every")) {
      // An MoE layer every k layers needs k layers at least (since session 34; before, a stack
      // shorter than moe_every was costed as the dense model).
      std::int64_t layers = std::max(d.decoder_layers, d.encoder_layers);
      if (d.decoder_layers > 0 && d.encoder_layers > 0) layers = std::min(d.decoder_layers, d.encoder_layers);
      if (layers > 0 && d.moe_every > layers) {
        m.at("moe_every").expected("at most the stack's " + std::to_string(layers) + " layers, so that it has an MoE layer");
      }
    }
  } else {
    for (const char* k : {"top_k", "moe_every", "capacity_factor", "dispatch", "group_size", "min_capacity", "expert_d_ff", "shared_experts",
                          "dense_layers", "route_nodes", "route_devices"}) {
      if (m.has(k)) m.at(k).fail("needs experts");
    }
  }
  if (m.has("mtp_depth")) d.mtp_depth = read_count(m.at("mtp_depth"));
  if (m.has("kv_lora_rank")) {
    d.kv_lora_rank = positive(m, "kv_lora_rank");
    if (m.has("kv_heads") && d.kv_heads != d.heads) {
      m.at("kv_heads").fail("latent attention (kv_lora_rank) has no key/value head groups; drop kv_heads");
    }
    d.q_lora_rank = optional_positive(m, "q_lora_rank", 0);
    if (m.has("rope_head_dim")) d.rope_head_dim = read_count(m.at("rope_head_dim"));
    d.v_head_dim = optional_positive(m, "v_head_dim", 0);
    if (d.rope_head_dim % 2 != 0) m.at("rope_head_dim").expected("an even number of rotary channels (RoPE turns pairs)");
    const bool rotary = d.position == TransformerDesign::Position::rotary;
    if (d.rope_head_dim > 0 && !rotary) {
      m.at("rope_head_dim").fail("rotary channels need position: rotary (latent attention carries its positions in them)");
    }
    if (rotary && d.rope_head_dim == 0) {
      m.at("kv_lora_rank").fail("latent attention with position: rotary needs rope_head_dim > 0 (its rotary channels); "
                                "or give position: none");
    }
  } else {
    for (const char* k : {"q_lora_rank", "rope_head_dim", "v_head_dim"}) {
      if (m.has(k)) m.at(k).fail("needs kv_lora_rank (latent attention)");
    }
  }
  if (d.mtp_depth > 0 && (d.evolved || d.parallel_block)) {
    m.at("mtp_depth").fail("multi-token prediction is built for the standard decoder layer; drop the cell or parallel_block");
  }
  if (d.evolved && d.kv_lora_rank > 0) m.at("cell").fail("the evolved cell has no latent-attention variant; drop kv_lora_rank or the cell");
  if (d.evolved && d.experts > 0) m.at("cell").fail("the evolved cell has no mixture-of-experts variant; drop experts or the cell");
  if (d.evolved && d.arch == TransformerDesign::Arch::encoder) m.at("cell").fail("the evolved cell is for decoders and encoder-decoders");
  if (d.evolved && d.gated_ffn) m.at("cell").fail("the evolved cell has its own FFN; drop gated_ffn or the cell");
  if (d.parallel_block && d.experts > 0) {
    m.at("parallel_block").fail("a parallel block is built for a dense feed-forward; drop experts or parallel_block");
  }
  if (d.evolved && d.sliding_window > 0) m.at("sliding_window").fail("the evolved cell's attention has no window; drop sliding_window or the cell");
  if (d.parallel_block && d.evolved) m.at("parallel_block").fail("the evolved cell has its own structure; drop the cell or parallel_block");
  return d;
}

// A count of a graph file (elements, a convolution's input, parameters): whole, in the count
// nouns it may name (none: a bare number), e.g. "1.2M" or "25.6M params".
double read_whole_count(const Value& v, bool zero_ok, const std::string& what,
                        std::initializer_list<std::string_view> nouns) {
  const double x = zero_ok ? read_non_negative(v, units::Kind::count) : read_positive(v, units::Kind::count);
  check_count_noun(v, units::Kind::count, nouns);
  if (std::floor(x) != x || x > 9.007199254740992e15) v.expected(what);
  return x;
}

FileGraphDesign read_graph_file(const Value& path_value, std::deque<std::string>& files) {
  const std::string rel = read_text(path_value);
  const std::filesystem::path base = std::filesystem::path(path_value.file ? *path_value.file : "").parent_path();
  const std::filesystem::path path = base / rel;
  std::string text;
  const YAML::Node root = read_yaml_file(path, path.lexically_normal().generic_string(), text,
                                         path_value.location(), path_value.path);
  files.push_back(path.lexically_normal().generic_string());
  const Value top{root, &files.back(), ""};
  const MapView doc(top, {"schema_version", "graph"});
  doc.require("schema_version");
  if (!doc.at("schema_version").node.IsScalar() || doc.at("schema_version").node.Scalar() != "1") {
    doc.at("schema_version").expected("1 (the only schema version so far)");
  }
  doc.require("graph");
  const MapView g(doc.at("graph"), {"name", "tokens_per_sample", "ops"});
  g.require("ops");
  FileGraphDesign d;
  d.path = files.back();
  if (g.has("name")) read_text(g.at("name"));
  if (g.has("tokens_per_sample")) d.tokens_per_sample = read_positive_int(g.at("tokens_per_sample"));
  const Value ops = g.at("ops");
  if (!ops.node.IsSequence() || ops.node.size() == 0) ops.expected("a list of ops");
  // The names so far, looked up by hash (since session 42, a review: a linear search made loading
  // quadratic, 2 s for 20,000 ops).
  std::unordered_set<std::string> names;
  for (std::size_t i = 0; i < ops.node.size(); ++i) {
    const Value item = ops.child(ops.node[i], "[" + std::to_string(i) + "]");
    const MapView m(item, {"name", "kind", "layer", "m", "n", "k", "count", "elements", "flops_per_element",
                           "params", "inputs", "input"});
    m.require("name");
    m.require("kind");
    FileOp op;
    op.name = read_id(m.at("name"));
    if (names.count(op.name)) m.at("name").fail("duplicate op name " + text::quoted(op.name));
    op.kind = read_choice(m.at("kind"), {"matmul", "batched_matmul", "conv2d", "elementwise", "softmax", "norm",
                                         "embedding", "pool", "router"});
    const bool gemm = op.kind == "matmul" || op.kind == "batched_matmul" || op.kind == "conv2d" || op.kind == "router";
    if (m.has("layer")) {
      const double layer = read_number_in(m.at("layer"), -1, 1e6, true, "a layer index from -1 to 1,000,000");
      if (layer != std::floor(layer)) m.at("layer").expected("a whole layer index >= -1");
      op.layer = static_cast<int>(layer);
    }
    // Keys of the other kind of op are said, not ignored (since session 34).
    for (const char* k : gemm ? std::vector<const char*>{"elements", "flops_per_element"} : std::vector<const char*>{"m", "n", "k", "count"}) {
      if (m.has(k)) m.at(k).fail(std::string(k) + (gemm ? " is for elementwise, softmax, norm, embedding and pool ops; a " + op.kind + " has m, n, k"
                                                        : " is for GEMM kinds (matmul, batched_matmul, conv2d, router); a " + op.kind + " has elements"));
    }
    if (m.has("input") && op.kind != "conv2d") m.at("input").fail("input is for conv2d ops (the feature map an implicit GEMM reads)");
    if (gemm) {
      for (const char* k : {"m", "n", "k"}) m.require(k);
      op.m = read_positive_int(m.at("m"));
      op.n = read_positive_int(m.at("n"));
      op.k = read_positive_int(m.at("k"));
      if (m.has("count")) op.count = read_positive_int(m.at("count"));
      // A convolution's input: the feature map it reads (per sample), which an implicit GEMM reads
      // once, not the unfolded m x k (the default, an upper bound: kernel height x width times it
      // at stride 1).
      if (m.has("input")) op.input = read_whole_count(m.at("input"), false, "a whole number of elements >= 1", {});
    } else {
      m.require("elements");
      op.elements = read_whole_count(m.at("elements"), false, "a whole number of elements >= 1", {});
      if (m.has("flops_per_element")) {
        op.flops_per_element = read_number_in(m.at("flops_per_element"), 0, 1e6, true, "a number of FLOPs from 0 to 1,000,000 an element");
      }
    }
    if (m.has("params")) op.params = read_whole_count(m.at("params"), true, "a whole number of parameters >= 0", {"param"});
    if (m.has("inputs")) {
      const Value in = m.at("inputs");
      if (!in.node.IsSequence()) in.expected("a list of earlier op names");
      for (std::size_t j = 0; j < in.node.size(); ++j) {
        const Value one = in.child(in.node[j], "[" + std::to_string(j) + "]");
        const std::string name = read_id(one);
        if (!names.count(name)) {
          one.fail("unknown op " + text::quoted(name) + " (inputs must name earlier ops)");
        }
        if (std::find(op.inputs.begin(), op.inputs.end(), name) != op.inputs.end()) {
          one.fail(text::quoted(name) + " is named twice in inputs (an op reads each input once)");
        }
        op.inputs.push_back(name);
      }
    }
    names.insert(op.name);
    d.ops.push_back(std::move(op));
  }
  return d;
}

}  // namespace

ModelDesign read_design(const Value& v, std::deque<std::string>& files) {
  if (!v.node.IsMap()) v.expected("a map with a builder and its hyperparameters");
  const YAML::Node builder_node = v.node["builder"];
  if (!builder_node.IsDefined()) v.fail("missing required key \"builder\"");
  const std::string builder = read_choice(v.child(builder_node, "builder"),
                                          {"decoder", "encoder", "encoder-decoder", "vit", "resnet", "lstm", "mlp", "file"});
  if (builder == "file") {
    const MapView m(v, {"builder", "path"});
    m.require("path");
    return read_graph_file(m.at("path"), files);
  }
  if (builder == "decoder" || builder == "encoder" || builder == "encoder-decoder") {
    std::vector<std::string> keys{"builder", "d_model", "heads", "kv_heads", "head_dim", "d_ff", "gated_ffn",
                                  "vocab", "pad_vocab", "seq_len", "tied_embeddings", "position", "norm", "biases",
                                  "experts", "top_k", "moe_every", "capacity_factor", "dispatch", "group_size", "min_capacity", "dropout", "attention_dropout", "bias_activation", "cell",
                                  "embedding", "max_positions"};
    if (builder == "encoder-decoder") {
      keys.insert(keys.end(), {"encoder_layers", "decoder_layers", "target_seq_len", "target_vocab"});
    } else {
      keys.push_back("layers");
    }
    if (builder == "decoder") {
      keys.insert(keys.end(), {"parallel_block", "parallel_norms", "deepnorm", "rotary_fraction", "q_lora_rank", "kv_lora_rank", "rope_head_dim", "v_head_dim", "mtp_depth",
                               "sliding_window", "global_every"});
    }
    keys.insert(keys.end(), {"expert_d_ff", "shared_experts", "dense_layers", "route_nodes", "route_devices"});
    if (builder == "encoder") keys.insert(keys.end(), {"type_vocab", "pooler", "mlm_positions"});
    return read_transformer(MapView(v, keys), builder);
  }
  if (builder == "vit") {
    // Vision Transformer (Dosovitskiy et al. 2021): an encoder over an image's patches and a class
    // token, classified from the class token (torchvision's VisionTransformer; since session 36).
    const MapView m(v, {"builder", "layers", "d_model", "heads", "d_ff", "image", "patch", "channels", "classes", "dropout",
                        "attention_dropout", "norm", "biases", "gated_ffn"});
    for (const char* k : {"layers", "d_model", "heads", "d_ff", "patch"}) m.require(k);
    TransformerDesign d;
    d.arch = TransformerDesign::Arch::encoder;
    d.encoder_layers = positive(m, "layers");
    d.d_model = positive(m, "d_model");
    d.heads = positive(m, "heads");
    if (d.d_model % d.heads != 0) m.at("heads").expected("a number of heads that divides d_model");
    d.kv_heads = d.heads;
    d.d_ff = positive(m, "d_ff");
    d.image = optional_positive(m, "image", 224);
    // Pixels a side and channels within 2^20, so that a patch's patch^2 x channels values stay
    // within 64 bits (the size limit then refuses what no machine holds).
    if (d.image > (std::int64_t{1} << 20)) m.at("image").expected("at most 1,048,576 pixels a side");
    d.patch = positive(m, "patch");
    if (d.patch > d.image || d.image % d.patch != 0) {
      m.at("patch").expected("a patch size that divides the image (" + std::to_string(d.image) + " pixels a side)");
    }
    d.image_channels = optional_positive(m, "channels", 3);
    if (d.image_channels > (std::int64_t{1} << 20)) m.at("channels").expected("at most 1,048,576 channels");
    d.classes = optional_positive(m, "classes", 1000);
    const std::int64_t side = d.image / d.patch;
    if (side > 1000000) m.at("patch").expected("at most 10^6 patches a side");
    d.seq_len = side * side + 1;  // the patches and the class token
    d.max_positions = d.seq_len;
    d.position = TransformerDesign::Position::learned;
    d.tied_embeddings = false;
    if (m.has("gated_ffn")) d.gated_ffn = read_bool(m.at("gated_ffn"));
    if (m.has("norm")) d.rms_norm = read_choice(m.at("norm"), {"layernorm", "rmsnorm"}) == "rmsnorm";
    if (m.has("biases")) d.biases = read_bool(m.at("biases"));
    if (m.has("dropout")) {
      d.dropout = read_number_in(m.at("dropout"), 0, 1, true, "a dropout rate in [0, 1)");
      if (d.dropout >= 1) m.at("dropout").expected("a dropout rate in [0, 1)");
    }
    // torchvision's VisionTransformer drops its attention weights at attention_dropout, 0.0 by
    // default, apart from `dropout` (since session 47, a review: the attention was charged a dropout
    // at the residual rate that could not be turned off).
    d.attention_dropout = 0;
    d.padding_mask = false;
    if (m.has("attention_dropout")) {
      d.attention_dropout = read_number_in(m.at("attention_dropout"), 0, 1, true, "a dropout rate in [0, 1)");
      if (d.attention_dropout >= 1) m.at("attention_dropout").expected("a dropout rate in [0, 1)");
    }
    return d;
  }
  if (builder == "resnet") {
    const MapView m(v, {"builder", "blocks", "bottleneck", "image", "channels", "width", "classes"});
    ResNetDesign d;
    if (m.has("blocks")) d.blocks = positive_list(m.at("blocks"));
    if (m.has("bottleneck")) d.bottleneck = read_bool(m.at("bottleneck"));
    d.image = optional_positive(m, "image", d.image);
    d.channels = optional_positive(m, "channels", d.channels);
    d.width = optional_positive(m, "width", d.width);
    d.classes = optional_positive(m, "classes", d.classes);
    return d;
  }
  if (builder == "lstm") {
    const MapView m(v, {"builder", "layers", "input", "hidden", "projection", "vocab", "seq_len", "bidirectional",
                        "separate_directions", "char_cnn"});
    for (const char* k : {"layers", "input", "hidden", "seq_len"}) m.require(k);
    LstmDesign d;
    d.layers = positive(m, "layers");
    d.input = positive(m, "input");
    d.hidden = positive(m, "hidden");
    d.projection = optional_positive(m, "projection", 0);
    d.vocab = optional_positive(m, "vocab", 0);
    d.seq_len = positive(m, "seq_len");
    if (m.has("bidirectional")) d.bidirectional = read_bool(m.at("bidirectional"));
    if (m.has("separate_directions")) {
      d.separate_directions = read_bool(m.at("separate_directions"));
      if (d.separate_directions && !d.bidirectional) {
        m.at("separate_directions").expected("false unless bidirectional is true (one direction has nothing to separate)");
      }
    }
    if (m.has("char_cnn")) d.char_cnn = read_char_cnn(m.at("char_cnn"));
    return d;
  }
  const MapView m(v, {"builder", "widths", "input_gradient"});
  m.require("widths");
  MlpDesign d;
  d.widths = positive_list(m.at("widths"));
  if (d.widths.size() < 2) m.at("widths").expected("at least two widths (input and output)");
  if (m.has("input_gradient")) d.input_gradient = read_bool(m.at("input_gradient"));
  return d;
}

}  // namespace dlcarbon::detail
