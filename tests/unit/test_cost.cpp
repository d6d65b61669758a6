#include <doctest/doctest.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <utility>

#include "dlcarbon/collectives.hpp"
#include "dlcarbon/graph.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/text.hpp"
#include "dlcarbon/training_cost.hpp"
#include "op_efficiency.hpp"
#include "pipeline_schedule.hpp"

using namespace dlcarbon;

namespace {
// A made-up device with round numbers: 100 TFLOP/s fp16, 10 TFLOP/s fp32, 1 TB/s, half of
// each ceiling reached, no launch cost, idle 50 W, TDP 300 W, 16 GB.
Hardware made_up() {
  Hardware h;
  h.id = "made-up";
  h.peak_flop_per_s = {{"fp16", 1e14}, {"fp32", 1e13}};
  h.memory_bandwidth_bytes_per_s = 1e12;
  h.memory_bytes = 16e9;
  h.tdp_w = 300;
  h.idle_power_w = 50;
  h.gemm_efficiency = 0.5;
  h.memory_efficiency = 0.5;
  h.kernel_launch_s = 0;
  h.efficiency_source = "test";
  h.node_accelerators = 8;
  h.intra_node_bandwidth = 1e11;
  h.inter_node_bandwidth = 1e10;
  return h;
}

// A decoder small enough to check by hand: d_model 64, 4 heads of 16, FFN 256, vocabulary 100,
// 32-token sequences.
TransformerDesign small_decoder(std::int64_t layers) {
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = layers;
  d.d_model = 64;
  d.heads = 4;
  d.d_ff = 256;
  d.vocab = 100;
  d.seq_len = 32;
  return d;
}

// A small ViT: 16 patches of 8 x 8 x 3 pixels and a class token, the small decoder's widths.
TransformerDesign small_vit(std::int64_t layers) {
  TransformerDesign vit = small_decoder(layers);
  vit.arch = TransformerDesign::Arch::encoder;
  vit.encoder_layers = layers;
  vit.decoder_layers = 0;
  vit.image = 32;
  vit.patch = 8;
  vit.classes = 10;
  vit.seq_len = 17;
  vit.max_positions = 17;
  vit.tied_embeddings = false;
  return vit;
}

// The per-op row of a step's table: op `name` in `phase` (the test fails where there is none).
const OpCostRow& op_row(const StepCost& c, const std::string& name, const std::string& phase) {
  const auto it = std::find_if(c.ops.begin(), c.ops.end(), [&](const OpCostRow& r) { return r.op == name && r.phase == phase; });
  REQUIRE(it != c.ops.end());
  return *it;
}

TrainingJob mlp_job() {
  TrainingJob job;
  job.id = "j";
  job.hardware = made_up();
  job.accelerators = 1;
  job.precision = "fp16";
  // (Its input takes a gradient, as another module's output would: every product's backward is two
  // products, which the hand figures below are built on.)
  job.design = MlpDesign{{1000, 1000}, true};
  Parallelism p;
  p.microbatch = 1000;
  p.global_batch = 1000;
  job.parallelism = p;
  job.tokens = 1e6;  // 1000 steps of 1000 samples
  job.duration_given = false;
  job.datacenter.pue = 1;
  return job;
}

// bf16 on mlp_job's device, at its fp16 peak.
void in_bf16(TrainingJob& job) {
  job.precision = "bf16";
  job.hardware.peak_flop_per_s["bf16"] = job.hardware.peak_flop_per_s.at("fp16");
}

// A transformer on mlp_job's device, `sequences` a step in one microbatch.
TrainingJob transformer_job(const TransformerDesign& d, std::int64_t sequences) {
  TrainingJob job = mlp_job();
  job.design = d;
  job.parallelism->microbatch = sequences;
  job.parallelism->global_batch = sequences;
  return job;
}

// A small MoE decoder (d_model 64, 32-token sequences, top-1) on 64 devices, data and expert
// parallel, one sequence a device.
TrainingJob moe_job(std::int64_t layers, std::int64_t experts) {
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(layers);
  d.experts = experts;
  job.design = d;
  job.accelerators = 64;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 64;
  return job;
}

// Two accelerators, one pipeline stage each, `microbatch` sequences a microbatch, `global_batch` a step.
void on_two_stages(TrainingJob& job, std::int64_t microbatch, std::int64_t global_batch) {
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  job.parallelism->microbatch = microbatch;
  job.parallelism->global_batch = global_batch;
}

// `design` on mlp_job's device, one sequence a step, with full activation recomputation.
TrainingJob recomputed_one_sequence(const ModelDesign& design) {
  TrainingJob job = mlp_job();
  job.design = design;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.parallelism->recompute = true;
  return job;
}

// The 4-layer MLP (1000 wide) on 4 pipeline stages x 2 data ranks: 8 microbatches of 125.
TrainingJob pipelined_mlp_job() {
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{1000, 1000, 1000, 1000, 1000}, true};  // 4 layers, one per stage
  job.accelerators = 8;
  job.parallelism->pipeline = 4;
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 2000;  // data 2 x 8 microbatches of 125
  return job;
}

// A microbatch's forward and backward seconds on the busiest of p stages, from the costed ops: each
// stage's layers (spread evenly, the first L mod p stages one more, layer indices in graph order),
// the ops before the first layer on the first stage, the others on the stage of the layer before
// them, and the gradient accumulation pass on the busiest. Under
// DualPipe (`paired`) device i runs stages i and p - 1 - i, each for half the microbatches.
std::pair<double, double> stage_times(const StepCost& c, int p = 4, bool paired = false) {
  std::vector<int> ids;
  for (const auto& r : c.ops) {
    if (r.layer >= 0 && std::find(ids.begin(), ids.end(), r.layer) == ids.end()) ids.push_back(r.layer);
  }
  const int L = static_cast<int>(ids.size());
  std::vector<int> stage_of;
  for (int j = 0; j < p; ++j) stage_of.insert(stage_of.end(), static_cast<std::size_t>(L / p + (j < L % p ? 1 : 0)), j);
  std::vector<double> f(static_cast<std::size_t>(p), 0.0), b(static_cast<std::size_t>(p), 0.0);
  int previous = -1;      // the stage of the last layer op seen
  double accumulate = 0;  // the gradient accumulation pass: every device's, charged to the busiest
  for (const auto& r : c.ops) {
    if (r.op == "gradients.accumulate") {
      accumulate += r.time_s;
      continue;
    }
    int d = 0;
    if (r.layer >= 0) {
      d = previous = stage_of[static_cast<std::size_t>(std::find(ids.begin(), ids.end(), r.layer) - ids.begin())];
    } else {
      d = previous < 0 ? 0 : (r.layer == -1 && previous == stage_of.back() ? p - 1 : previous);
    }
    if (r.phase == "fwd") f[static_cast<std::size_t>(d)] += r.time_s;
    if (r.phase == "bwd") b[static_cast<std::size_t>(d)] += r.time_s;
  }
  std::pair<double, double> busiest{0, 0};
  for (int d = 0; d < p; ++d) {
    const int e = paired ? p - 1 - d : d;
    const double k = paired ? 0.5 : 1.0;
    const std::pair<double, double> t{k * (f[static_cast<std::size_t>(d)] + (paired ? f[static_cast<std::size_t>(e)] : 0.0)),
                                      k * (b[static_cast<std::size_t>(d)] + (paired ? b[static_cast<std::size_t>(e)] : 0.0))};
    if (t.first + t.second > busiest.first + busiest.second) busiest = t;
  }
  busiest.second += accumulate;
  return busiest;
}
// The fill and drain of 1F1B: the slots of the devices other than the busiest (a microbatch's
// forward and backward passing through them), divided by the chunks a device.
double other_slots(const StepCost& c) {
  double others = 0;
  for (const auto& row : c.stages) others += row.busiest ? 0.0 : row.slot_s;
  return others;
}
}  // namespace

TEST_CASE("roofline time: compute-bound GEMM, memory-bound elementwise") {
  const auto d = hardware::make_device_model(made_up());
  // GEMM 1e12 FLOP, 1e9 B: compute 1e12 / (1e14 x 0.5) = 0.02 s; memory 1e9 / (1e12 x 0.5) = 0.002 s.
  const auto g = hardware::kernel_time(d, "fp16", 1e12, 1e9, true);
  CHECK(g.seconds == approx(0.02));
  CHECK_FALSE(g.memory_bound);
  // Elementwise 1e9 FLOP on the fp32 vector rate: 1e9 / 5e12 = 2e-4 s; 1e10 B: 0.02 s.
  const auto e = hardware::kernel_time(d, "fp16", 1e9, 1e10, false);
  CHECK(e.seconds == approx(0.02));
  CHECK(e.memory_bound);
  // bf16 falls back to the fp16 rate; a dtype with nothing near it is an error.
  CHECK(d.peak("bf16") == 1e14);
  CHECK(d.peak("tf32") == 1e13);
  CHECK_THROWS_WITH_AS(d.peak("fp64"), "hardware made-up has no peak rate for fp64", std::invalid_argument);
  // A part that lists only an 8-bit rate (a phone's NPU) says nothing of its float rates.
  Hardware npu = made_up();
  npu.peak_flop_per_s = {{"int8", 1e13}};
  const auto n = hardware::make_device_model(npu);
  CHECK(n.peak("int8") == 1e13);
  CHECK_THROWS_AS(n.peak("fp16"), std::invalid_argument);
  CHECK_THROWS_AS(n.peak("fp32"), std::invalid_argument);
}

TEST_CASE("non-matrix work runs at the vector rate where the catalog gives one (a TPU's VPU)") {
  Hardware h = made_up();
  h.peak_flop_per_s = {{"bf16", 1e14}, {"fp32", 1e14}};  // a TPU: fp32 matmuls at the MXU rate
  const auto without = hardware::make_device_model(h);
  // Elementwise 1e10 FLOP and 1e9 B: at the fp32 (here the MXU) rate 1e10 / 5e13 = 2e-4 s; the
  // bytes take 1e9 / 5e11 = 2e-3 s, so it is memory-bound.
  const auto a = hardware::kernel_time(without, "bf16", 1e10, 1e9, false);
  CHECK(a.seconds == approx(2e-3));
  CHECK(a.memory_bound);
  h.vector_peak_flop_per_s = 2e12;
  const auto with = hardware::make_device_model(h);
  // At the vector rate: 1e10 / (2e12 x 0.5) = 0.01 s, compute-bound.
  const auto b = hardware::kernel_time(with, "bf16", 1e10, 1e9, false);
  CHECK(b.seconds == approx(0.01));
  CHECK_FALSE(b.memory_bound);
  // GEMMs keep the matrix rate: 1e12 / (1e14 x 0.5) = 0.02 s.
  CHECK(hardware::kernel_time(with, "bf16", 1e12, 1e9, true).seconds == approx(0.02));
}

TEST_CASE("tile and wave quantisation of GEMMs on a GPU with 80 SMs, by hand") {
  auto h = made_up();
  h.compute_units = 80;
  const auto d = hardware::make_device_model(h);
  // m = 128, n = 1280, k = 256 (too short to split): 128x128 tiles give 1 x 10 = 10 tiles on 80 SMs
  // (10/80 = 0.125); 128x64 tiles 20 (0.25); 64x64 tiles 2 x 20 = 40 (0.5), no padding; 256x128 pads
  // m to 256 (0.5 x 10/80). The best: 0.5.
  CHECK(hardware::gemm_shape_factor(d, 128, 1280, 256) == approx(0.5));
  // With k = 4096 the reduction splits (split-K, at least 256 of K a split): the 10 128x128 tiles
  // 8 ways, 80 slices, one full wave: 1 (since session 34; before, 0.5 whatever k). With k = 1024 at
  // most 4 ways: 64x64's 40 tiles 2 ways (80 slices) -> 1 again; with k = 512, 128x128's 10 tiles 2
  // ways (20), 128x64's 20 2 ways (40), 64x64's 40 2 ways (80): 1.
  CHECK(hardware::gemm_shape_factor(d, 128, 1280, 4096) == approx(1.0));
  CHECK(hardware::gemm_shape_factor(d, 128, 1280, 512) == approx(1.0));
  // 10 tiles of 128 x 128 and k = 768: 3 ways, 30 slices (0.375); 64x64: 40 tiles, 2 ways (80 SMs
  // allow 2): 80 -> 1.
  CHECK(hardware::gemm_shape_factor(d, 128, 1280, 768) == approx(1.0));
  // One 128x128 tile (m = n = 128) and k = 1024: 4 ways, 4 of 80 SMs; 64x64: 4 tiles x 4 = 16 of 80.
  CHECK(hardware::gemm_shape_factor(d, 128, 128, 1024) == approx(16.0 / 80.0));
  // Eight such products at once (a batched GEMM): 64x64 gives 320 tiles = 4 full waves -> 1.
  CHECK(hardware::gemm_shape_factor(d, 128, 1280, 4096, 8) == approx(1.0));
  // 8192 x 8192: 64x64 tiles, 16,384 of them in 205 waves of 80 -> 16,384 / 16,400.
  CHECK(hardware::gemm_shape_factor(d, 8192, 8192, 8192) == approx(16384.0 / 16400.0));
  // m = 100, n = 100: one 128x128 tile covers 10,000 of 16,384 cells and 1 of 80 SMs; 64x64 tiles:
  // 4 tiles, 10,000 of 16,384 cells, 4 of 80 SMs -> 0.6104 x 0.05.
  CHECK(hardware::gemm_shape_factor(d, 100, 100, 64) == approx(10000.0 / 16384.0 * 4.0 / 80.0));
  // Without compute units (and uncalibrated), shape does not matter.
  CHECK(hardware::gemm_shape_factor(hardware::make_device_model(made_up()), 100, 100, 64) == 1);
}

TEST_CASE("a TPU's 128 x 128 matrix unit pads the reduction and the larger output dimension to 128, by hand") {
  auto h = made_up();
  h.matrix_unit = 128;
  const auto d = hardware::make_device_model(h);
  // Attention scores with 64-wide heads: S[512 x 512] = Q[512 x 64] K^T, the reduction over 64
  // fills half the unit: 64 / 128.
  CHECK(hardware::gemm_shape_factor(d, 512, 512, 64) == approx(0.5));
  // The context P[512 x 512] V[512 x 64]: the unit holds the 512-wide side, the 64 columns stream
  // through in chunks of 8 rows: no padding.
  CHECK(hardware::gemm_shape_factor(d, 512, 64, 512) == approx(1.0));
  // m = 100, n = 200, k = 300: k to 384, the larger output (200) to 256, the smaller (100) to 104.
  CHECK(hardware::gemm_shape_factor(d, 100, 200, 300) == approx(300.0 / 384 * 200.0 / 256 * 100.0 / 104));
  // Whichever of m and n is larger is held: the same product transposed costs the same.
  CHECK(hardware::gemm_shape_factor(d, 200, 100, 300) == approx(hardware::gemm_shape_factor(d, 100, 200, 300)));
}

TEST_CASE("expert parallelism: each device runs its experts on the slots of every rank, by hand") {
  // A one-layer MoE decoder, 64 experts, top-1, 32 tokens a microbatch on each of 64 devices:
  // half a slot an expert a microbatch. Each device holds one expert and, after the all-to-all,
  // runs the slots routed to it from all 64 ranks: 32 x 64 / 64 = 32, one product
  // [32 x 64] x [64 x 256] (rounding each rank's half slot up to one would have charged 64). On 80
  // SMs: 64x64 tiles pad m = 32 to 64 (0.5) and make 4 tiles on 80 SMs (0.05): 0.025 of the
  // ceiling (with 64 products of 1 x 256 it would be 1/64 x 0.05).
  TrainingJob job = moe_job(1, 64);
  job.hardware.compute_units = 80;
  const StepCost c = cost_training_step(job);
  const auto up = std::find_if(c.ops.begin(), c.ops.end(),
                               [](const OpCostRow& r) { return r.op == "decoder.0.ffn.experts.up" && r.phase == "fwd"; });
  REQUIRE(up != c.ops.end());
  // 2 x 32 slots x 64 x 256 = 1,048,576 FLOPs at 1e14 x 0.5 x 0.025 = 1.25e12 FLOP/s; the bytes
  // (one expert's weights, 32 slots in and out: 53,248 B at 5e11 B/s) take far less.
  CHECK(up->flops == approx(2.0 * 32 * 64 * 256));
  CHECK(up->time_s == approx(2.0 * 32 * 64 * 256 / 1.25e12));
  CHECK(up->bytes == approx(2.0 * (32 * 64 + 64 * 256 + 32 * 256)));
  // With 8 experts on the same 64 devices, each device still holds one expert (replicated on 8
  // devices, not an eighth of one), and those 8 all-reduce its gradients: more gradient traffic
  // than with 64 experts, whose gradients no other device shares.
  job.parallelism->overlap_communication = false;
  const StepCost sixty_four = cost_training_step(job);
  job.design = moe_job(1, 8).design;
  const StepCost eight = cost_training_step(job);
  REQUIRE(eight.fits);
  // (The same but for the router, 64 x 56 weights fewer: an eighth of an expert a device would
  // have left out about half of the 64-expert job's memory.)
  CHECK(eight.memory_per_device_bytes < sixty_four.memory_per_device_bytes);
  CHECK(eight.memory_per_device_bytes > 0.9 * sixty_four.memory_per_device_bytes);
  CHECK(eight.data_comm_s > 1.5 * sixty_four.data_comm_s);
}

TEST_CASE("a mixture of experts' parameters: all of them, and those a token runs") {
  // One layer, d 64, d_ff 256, 64 experts, top-1, biases: an expert 64 x 256 + 256 + 256 x 64 + 64 =
  // 33,088, all 64 of them 2,117,632; the rest: attention 4 x (64 x 64 + 64) = 16,640, the router
  // 64 x 64 = 4,096 (no bias), two norms 256, the table 100 x 64 = 6,400 (tied to the head), 32
  // learned positions 2,048 and the final norm 128: 29,568. Total 2,147,200; a token runs one
  // expert: 29,568 + 33,088 = 62,656. Spread over 64 devices, the counts stay the model's.
  const StepCost c = cost_training_step(moe_job(1, 64));
  REQUIRE(c.fits);
  CHECK(c.parameters == 2147200.0);
  CHECK(c.active_parameters == 62656.0);
  // Top-2 of 8: 29,568 - 56 x 64 (a router of 8 columns) + 2 x 33,088 = 92,160.
  TrainingJob top2 = moe_job(1, 8);
  std::get<TransformerDesign>(top2.design).top_k = 2;
  const StepCost c2 = cost_training_step(top2);
  CHECK(c2.parameters == 29568.0 - 56 * 64 + 8 * 33088.0);
  CHECK(c2.active_parameters == 92160.0);
  // A dense model runs them all.
  TrainingJob dense = moe_job(1, 0);
  const StepCost d = cost_training_step(dense);
  CHECK(d.active_parameters == d.parameters);
}

TEST_CASE("ZeRO shards the experts' optimizer state only over the ranks that hold the same experts") {
  // 64 experts on 64 data ranks: each expert lives on one rank, so ZeRO-1 can split none of its
  // state; the dense parameters' 12 B (fp32 master, m, v) are split 64 ways. ZeRO-1 saves
  // 12 x dense x 63 / 64 against no sharding. With 8 experts (replicated on 8 ranks each), the
  // experts' state is split over those 8 as well.
  TrainingJob job = moe_job(1, 64);
  const auto expert_params = [](const TrainingJob& j) {
    const auto g = graph::build_graph(std::get<TransformerDesign>(j.design), graph::GraphShape{1, 2, true});
    double e = 0;
    for (const auto& op : g.ops()) e += op.expert ? op.params : 0;
    return e;
  };
  const StepCost plain = cost_training_step(job);
  job.parallelism->zero_stage = 1;
  const StepCost zero1 = cost_training_step(job);
  REQUIRE(zero1.fits);
  const double e64 = expert_params(job);
  CHECK(plain.memory_per_device_bytes - zero1.memory_per_device_bytes == approx(12 * (plain.parameters - e64) * 63 / 64));
  job.design = moe_job(1, 8).design;
  job.parallelism->zero_stage = 0;
  const StepCost plain8 = cost_training_step(job);
  job.parallelism->zero_stage = 1;
  const double e8 = expert_params(job);
  // Each rank holds one of the 8 experts (e8 / 8), its state split over the 8 ranks holding it.
  CHECK(plain8.memory_per_device_bytes - cost_training_step(job).memory_per_device_bytes ==
        approx(12 * ((plain8.parameters - e8) * 63 / 64 + e8 / 8 * 7 / 8)));
}

TEST_CASE("an expert-parallel degree below the data ranks: more experts a device, replicated groups") {
  // 64 experts on 64 devices, as above, but spread over groups of 16 ranks (parallelism.expert):
  // each device holds 4 experts and receives the same 32 slots (its group's 16 x 32 tokens over
  // its 64 / 16 = 4 experts' share), 8 an expert, in 4 products; each expert is replicated on the
  // 4 groups, which all-reduce its gradients.
  TrainingJob job = moe_job(1, 64);
  job.parallelism->overlap_communication = false;
  const StepCost whole = cost_training_step(job);
  job.parallelism->expert = 16;
  const StepCost grouped = cost_training_step(job);
  REQUIRE(grouped.fits);
  const auto up = std::find_if(grouped.ops.begin(), grouped.ops.end(),
                               [](const OpCostRow& r) { return r.op == "decoder.0.ffn.experts.up" && r.phase == "fwd"; });
  REQUIRE(up != grouped.ops.end());
  CHECK(up->flops == approx(2.0 * 32 * 64 * 256));
  CHECK(up->bytes == approx(2.0 * 4 * (8 * 64 + 64 * 256 + 8 * 256)));
  // Four experts' weights a device instead of one; their gradients now travel.
  CHECK(grouped.memory_per_device_bytes > whole.memory_per_device_bytes);
  CHECK(grouped.data_comm_s > whole.data_comm_s);
  // The all-to-all runs over 16 ranks on 2 nodes of 8 instead of 64 on 8: a rank's shares for the
  // other node's ranks, 8 / 16 of its slots, leave through its network link (1e10 B/s) while the
  // 7 / 16 for its node's ranks cross NVLink (1e11) at the same time; over 64 ranks 56 / 64 leave
  // (since session 35; before, every share but its own went over the network, 15 / 16 and 63 / 64).
  CHECK(grouped.expert_comm_s == approx(whole.expert_comm_s * (8.0 / 16) / (56.0 / 64)));
}

TEST_CASE("an all-to-all over a group that fills its last node partly, by hand") {
  // 12 experts on 12 devices, nodes of 8: 8 ranks on one node, 4 on the other. A rank on the
  // 4-rank node sends 8 / 12 of its slots through its network link (1e10 B/s); a rank on the full
  // node 7 / 12 over NVLink (1e11): the network paces it. On one node of 16 all 11 / 12 go over
  // NVLink: (8 / 12 / 1e10) / (11 / 12 / 1e11) = 80 / 11 times as long (the mean of 6 ranks a node
  // would have given 60 / 11; review of session 35).
  TrainingJob job = moe_job(1, 12);
  job.accelerators = 12;
  job.parallelism->global_batch = 12;
  const StepCost split = cost_training_step(job);
  REQUIRE(split.expert_comm_s > 0);
  job.hardware.node_accelerators = 16;
  const StepCost one_node = cost_training_step(job);
  CHECK(split.expert_comm_s == approx(80.0 / 11 * one_node.expert_comm_s));
}

TEST_CASE("node-limited routing and 8-bit dispatch shrink the all-to-all, by hand") {
  // 64 experts, top-8, on 64 devices (8 nodes of 8): without a limit the slots for the other
  // nodes' ranks, 56 / 64 of a token's 8, leave through the rank's network link (those for its own
  // node's 7 ranks cross NVLink meanwhile, 10x faster; since session 35, before 63 / 64 over the
  // network); limited to 4 nodes, the token crosses the network once a node (4 x 7 / 8 = 3.5
  // copies, against 8 x 56 / 64 = 7) and is forwarded over NVLink, which at 10x the network's
  // bandwidth takes less (7 / 8 of the slots at 1e11 against 3.5 / 8 at 1e10).
  TrainingJob job = moe_job(1, 64);
  auto d = std::get<TransformerDesign>(job.design);
  d.top_k = 8;
  job.design = d;
  const StepCost free_routing = cost_training_step(job);
  d.route_nodes = 4;
  job.design = d;
  const StepCost limited = cost_training_step(job);
  REQUIRE(limited.fits);
  REQUIRE(free_routing.expert_comm_s > 0);
  CHECK(limited.expert_comm_s == approx(free_routing.expert_comm_s * (3.5 / 8) / (56.0 / 64)));
  // 8-bit products: Megatron-Core dispatches at 16 bits (`expert_dispatch: compute`, the default:
  // the same bytes); DeepSeek-V3's 8-bit dispatch (`fp8`) sends the dispatch and its gradient in 8
  // bits, the combine and its gradient in 16: 3 / 4 of the bytes (since session 49; before, every
  // 8-bit job's).
  job.precision = "fp8";
  CHECK(cost_training_step(job).expert_comm_s == approx(limited.expert_comm_s));
  job.expert_dispatch = "fp8";
  const StepCost eight = cost_training_step(job);
  CHECK(eight.expert_comm_s == approx(0.75 * limited.expert_comm_s));
  job.expert_dispatch = "compute";
  // Full recomputation runs the forward's dispatch and combine again: 6 transfers, not 4.
  job.precision = "bf16";
  job.parallelism->recompute = true;
  CHECK(cost_training_step(job).expert_comm_s == approx(1.5 * limited.expert_comm_s));
}

TEST_CASE("shared experts hide the all-to-all under their products, by hand") {
  // moe_job with a shared expert, one microbatch a step on one pipeline device. Each of the four
  // transfers (a quarter of the all-to-all: dispatch, combine, the combine's gradient, the
  // dispatch's) runs beside one piece of the shared expert (its rows in the ops table; not the
  // add of its output): the dispatch beside the first product and activation forward, the combine
  // beside the second product forward, backward the combine's gradient beside the second
  // product's and the dispatch's beside the first's. What exceeds its piece is exposed; the piece's
  // compute ends max(0, transfer x s / (1 + s) - exposed) later, s = 0.189, reported as overlap
  // contention. Three networks: every transfer longer than its piece, every one shorter, and one
  // between.
  TrainingJob job = moe_job(1, 64);
  auto d = std::get<TransformerDesign>(job.design);
  d.shared_experts = 1;
  job.design = d;
  job.hardware.kind = "gpu";  // (the made-up device has no kind: no contention on it)
  const double share = 0.189 / 1.189;
  const auto time_of = [](const StepCost& c, const std::string& op, const std::string& phase) { return op_row(c, op, phase).time_s; };
  for (const double inter : {1e9, 1e12, 1.5e10}) {
    job.hardware.inter_node_bandwidth = inter;
    job.hardware.intra_node_bandwidth = 10 * inter;
    job.parallelism->shared_expert_overlap = false;
    const StepCost exposed = cost_training_step(job);
    const std::string s = "decoder.0.ffn.shared.";
    const double windows[4] = {time_of(exposed, s + "up", "fwd") + time_of(exposed, s + "act", "fwd"), time_of(exposed, s + "down", "fwd"),
                               time_of(exposed, s + "down", "bwd"), time_of(exposed, s + "up", "bwd") + time_of(exposed, s + "act", "bwd")};
    const double transfer = exposed.expert_comm_s / 4;
    REQUIRE(transfer > 0);
    INFO("inter ", inter, " transfer ", transfer, " windows ", windows[0], " ", windows[1], " ", windows[2], " ", windows[3]);
    const double longest = *std::max_element(windows, windows + 4), shortest = *std::min_element(windows, windows + 4);
    if (inter == 1e9) REQUIRE(transfer > longest);
    if (inter == 1e12) REQUIRE(transfer < shortest);
    if (inter == 1.5e10) REQUIRE((transfer > shortest && transfer < longest));
    double left = 0, contention = 0;
    for (const double w : windows) {
      const double l = std::max(0.0, transfer - w);
      left += l;
      contention += std::max(0.0, transfer * share - l);
    }
    job.parallelism->shared_expert_overlap = true;
    const StepCost overlapped = cost_training_step(job);
    CHECK(overlapped.expert_comm_s == approx(left).scale(exposed.expert_comm_s));
    CHECK(overlapped.contention_s - exposed.contention_s == approx(contention).scale(exposed.expert_comm_s));
    CHECK(overlapped.step_s == approx(exposed.step_s - exposed.expert_comm_s + left + contention));
  }
  // A device that is not a GPU (a TPU's collectives run on their own engines) slows nothing.
  job.hardware.kind = "tpu";
  job.parallelism->shared_expert_overlap = false;
  const StepCost tpu_exposed = cost_training_step(job);
  REQUIRE(tpu_exposed.expert_comm_s > 0);
  job.parallelism->shared_expert_overlap = true;
  const StepCost tpu = cost_training_step(job);
  CHECK(tpu.step_s == approx(tpu_exposed.step_s - tpu_exposed.expert_comm_s + tpu.expert_comm_s));
  CHECK(tpu.contention_s == approx(tpu_exposed.contention_s));
}

TEST_CASE("an 8-bit dispatch, two microbatches and full recomputation: unequal transfers beside their pieces, by hand") {
  // The same job in 8 bits with DeepSeek-V3's dispatch (`expert_dispatch: fp8`: the transfers to
  // the experts, the dispatch and the combine's gradient, carry half the bytes of the others),
  // two microbatches a step and full recomputation (the forward's pair again: six transfers, 4.5
  // units of the all-to-all a microbatch). The backward rows of the ops table hold the recomputed
  // forward too, so a piece's backward window is its backward row less its forward row.
  TrainingJob job = moe_job(1, 64);
  auto d = std::get<TransformerDesign>(job.design);
  d.shared_experts = 1;
  job.design = d;
  job.hardware.kind = "gpu";
  job.precision = "fp8";
  job.hardware.peak_flop_per_s["fp8"] = job.hardware.peak_flop_per_s.at("fp16");
  job.expert_dispatch = "fp8";
  job.parallelism->global_batch = 128;  // 2 microbatches a data rank
  job.parallelism->recompute = true;
  job.hardware.inter_node_bandwidth = 1.5e10;
  job.hardware.intra_node_bandwidth = 1.5e11;
  const double share = 0.189 / 1.189, microbatches = 2;
  job.parallelism->shared_expert_overlap = false;
  const StepCost exposed = cost_training_step(job);
  REQUIRE(exposed.fits);
  const auto t = [&](const std::string& op, const std::string& phase) { return op_row(exposed, "decoder.0.ffn.shared." + op, phase).time_s; };
  const double fc1_f = t("up", "fwd") + t("act", "fwd"), fc2_f = t("down", "fwd");
  const double fc1_b = t("up", "bwd") + t("act", "bwd") - fc1_f, fc2_b = t("down", "bwd") - fc2_f;
  const double unit = exposed.expert_comm_s / microbatches / 4.5;
  // (dispatch, combine, the combine's gradient, the dispatch's, the dispatch and combine again)
  const std::pair<double, double> pairs[6] = {{0.5 * unit, fc1_f}, {unit, fc2_f}, {0.5 * unit, fc2_b}, {unit, fc1_b}, {0.5 * unit, fc1_f}, {unit, fc2_f}};
  double left = 0, contention = 0;
  int longer = 0;
  for (const auto& [transfer, window] : pairs) {
    const double l = std::max(0.0, transfer - window);
    longer += l > 0 ? 1 : 0;
    left += l;
    contention += std::max(0.0, transfer * share - l);
  }
  INFO("unit ", unit, " windows ", fc1_f, " ", fc2_f, " ", fc2_b, " ", fc1_b);
  REQUIRE((longer > 0 && longer < 6));  // some transfers outlast their pieces, some do not
  job.parallelism->shared_expert_overlap = true;
  const StepCost overlapped = cost_training_step(job);
  CHECK(overlapped.expert_comm_s == approx(microbatches * left));
  CHECK(overlapped.contention_s - exposed.contention_s == approx(microbatches * contention));
}

TEST_CASE("under a zero-bubble schedule the shared experts' weight gradients hide no all-to-all") {
  // ZB1P defers the weight-gradient products to a pass beside no all-to-all: the backward pieces
  // are the input gradients', so more of the all-to-all stays exposed than under 1F1B, whose
  // backward runs both; without the overlap the schedule does not change it.
  TrainingJob job = moe_job(2, 32);
  auto d = std::get<TransformerDesign>(job.design);
  d.shared_experts = 1;
  job.design = d;
  job.accelerators = 64;
  job.parallelism->pipeline = 2;
  job.parallelism->global_batch = 128;  // 4 microbatches a data rank of 32
  job.hardware.kind = "gpu";
  job.hardware.inter_node_bandwidth = 1e9;  // every transfer longer than its piece
  job.hardware.intra_node_bandwidth = 1e10;
  const auto a2a = [&](const std::string& schedule, bool overlap) {
    job.parallelism->zero_bubble = schedule == "zb1p";
    job.parallelism->shared_expert_overlap = overlap;
    const StepCost c = cost_training_step(job);
    REQUIRE(c.fits);
    return c.expert_comm_s;
  };
  CHECK(a2a("zb1p", false) == approx(a2a("1f1b", false)));
  CHECK(a2a("zb1p", true) > a2a("1f1b", true) * 1.01);
  CHECK(a2a("1f1b", true) < a2a("1f1b", false));
}

TEST_CASE("DeepSeek-V3's recomputation: norms, latent up-projections and the activation run again") {
  // A one-layer decoder with latent attention and a gated FFN on one device.
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.gated_ffn = true;
  d.rms_norm = true;
  d.biases = false;
  d.position = TransformerDesign::Position::rotary;
  d.head_dim = 16;
  d.q_lora_rank = 32;
  d.kv_lora_rank = 24;
  d.rope_head_dim = 8;
  job.design = d;
  job.fusion = "attention";
  job.parallelism->microbatch = 4;
  job.parallelism->global_batch = 4;
  const StepCost none = cost_training_step(job);
  job.parallelism->recompute_latent = true;
  const StepCost latent = cost_training_step(job);
  REQUIRE(latent.fits);
  // The backward grows by exactly the forward time of the recomputed ops.
  double again = 0;
  for (const auto& r : none.ops) {
    if (r.phase != "fwd" || r.layer < 0) continue;
    const bool up = r.op.size() > 4 && (r.op.substr(r.op.size() - 4) == ".q_b" || r.op.substr(r.op.size() - 5) == ".kv_b");
    if (r.kind == "norm" || up || r.op == "decoder.0.attn.rotary" || r.op == "decoder.0.ffn.act") again += r.time_s;
  }
  REQUIRE(again > 0);
  CHECK(latent.compute_s == approx(none.compute_s + again));
  // What is no longer kept, by hand (fp16, 128 tokens, 16 = 4 sequences x 4 heads of 32 x 32):
  // - the five norms' inputs (the attention's and the FFN's over 64, the latents' over 32 and 24,
  //   the final norm's over 64): 2 x 128 x 248 = 63,488 B;
  // - attention's Q, K and V (queries and keys 24 wide, values 16), its output kept:
  //   2 x 16 x (32 x 24 + 32 x 24 + 32 x 16) = 65,536 B;
  // - the down projection's input, recomputed by the activation: 2 x 128 x 256 = 65,536 B.
  CHECK(none.memory_per_device_bytes - latent.memory_per_device_bytes == approx(63488.0 + 65536 + 65536));
}

// Each device's weight-gradient time under a pipeline of the MLP (one layer a stage, layer ids in
// order, microbatches of 125 rows): its products' backward less the bias's gradient, halved (on
// mlp_job's device the input- and weight-gradient products of a layer take the same time: equal
// FLOPs and bytes at one ceiling), and the bias's gradient, 2 B x n x (125 + 1) at 0.5 x 1e12 B/s
// for an output n wide (`widths`).
std::vector<double> mlp_weight_gradients(const StepCost& c, const std::vector<double>& widths) {
  std::vector<int> ids;
  for (const auto& r : c.ops) {
    if (r.layer >= 0 && std::find(ids.begin(), ids.end(), r.layer) == ids.end()) ids.push_back(r.layer);
  }
  std::vector<double> w(widths.size(), 0.0);
  for (const auto& r : c.ops) {
    if (r.kind != "matmul" || r.phase != "bwd" || r.layer < 0) continue;
    const auto d = static_cast<std::size_t>(std::find(ids.begin(), ids.end(), r.layer) - ids.begin());
    const double bias = 2 * widths.at(d) * 126 / 5e11;
    w[d] += 0.5 * (r.time_s - bias) + bias;
  }
  return w;
}

TEST_CASE("zero-bubble 1F1B: the fill and drain hold only forward slots, by hand") {
  // The 4-layer MLP on 4 stages x 2 data ranks, 8 microbatches: (p - 1)(F + B - 2W), B the whole
  // backward and W its weight-gradient products and passes over the gradients (since session 49,
  // a review: W = B / 2, 3 F), plus the stage sends of those slots (the same share of a slot's
  // sends); as for 1F1B, each of the three other devices' own, lighter than the busiest's (it reads
  // the input; since session 34, before 3 of the busiest's).
  TrainingJob job = pipelined_mlp_job();
  job.parallelism->zero_bubble = true;
  job.parallelism->gradient_accumulation = "fused";  // (the accumulation pass, W's too: its own test)
  const StepCost zb = cost_training_step(job);
  REQUIRE(zb.fits);
  const auto [f, b] = stage_times(zb);
  const double sends = zb.pipeline_comm_s / 8;  // a microbatch's, the first device's
  REQUIRE(zb.stages.size() == 4);
  REQUIRE(zb.stages[0].busiest);
  const std::vector<double> w = mlp_weight_gradients(zb, {1000, 1000, 1000, 1000});
  double others = 0;
  for (std::size_t d = 1; d < 4; ++d) {
    // (A middle device exchanges with two neighbours, an end device with one: since session 46.)
    const double fd = zb.stages[d].forward_s, bd = zb.stages[d].backward_s, sends_d = (d == 3 ? 1 : 2) * sends;
    const double idle = fd + bd - 2 * w[d];
    REQUIRE(idle > 0);
    others += idle + sends_d * idle / (fd + bd);
  }
  CHECK(zb.bubble_s == approx(others));
  // With its accumulation pass after each backward (`separate`), W holds it too: each device's
  // share of the pass's row (equal layers), the idle time no less than none.
  job.parallelism->gradient_accumulation = "separate";
  const StepCost acc = cost_training_step(job);
  double pass = 0;
  for (const auto& r : acc.ops) pass += r.op == "gradients.accumulate" ? r.time_s : 0.0;
  REQUIRE(pass > 0);
  const std::vector<double> wa = mlp_weight_gradients(acc, {1000, 1000, 1000, 1000});
  const double sends_a = acc.pipeline_comm_s / 8;
  double others_a = 0;
  for (std::size_t d = 1; d < 4; ++d) {
    const double fd = acc.stages[d].forward_s, bd = acc.stages[d].backward_s, sends_d = (d == 3 ? 1 : 2) * sends_a;
    const double idle = std::max(0.0, fd + bd - 2 * (wa[d] + pass / 4));
    others_a += idle + sends_d * idle / (fd + bd);
  }
  CHECK(acc.bubble_s == approx(others_a));
  // The MLP's backward holds its activations' gradients beside the products: more than the forward
  // is idle.
  CHECK(zb.bubble_s > 3 * 0.75 * (f + sends * f / (f + b)));
  CHECK(zb.bubble_s < 3 * (f + b));
  double total = 0;
  for (const auto& part : step_components(zb)) total += part.time_s;
  CHECK(total == approx(zb.step_s));
}

TEST_CASE("device-limited routing: a token travels once to each of at most M devices, by hand") {
  // 8 experts, top-4, on the 8 devices of one node: 4 x 7 / 8 slots leave a rank; limited to 2
  // devices, 2 x 7 / 8 copies.
  TrainingJob job = moe_job(1, 8);
  job.accelerators = 8;
  job.parallelism->global_batch = 8;
  auto d = std::get<TransformerDesign>(job.design);
  d.top_k = 4;
  job.design = d;
  const StepCost free_routing = cost_training_step(job);
  d.route_devices = 2;
  job.design = d;
  const StepCost limited = cost_training_step(job);
  REQUIRE(free_routing.expert_comm_s > 0);
  CHECK(limited.expert_comm_s == approx(0.5 * free_routing.expert_comm_s));
}

TEST_CASE("DualPipe: the stage sends hidden under the paired chunk, a shorter bubble, two stages' weights") {
  // The 4-layer MLP on 4 stages x 2 data ranks, 8 microbatches, as for 1F1B below, on a GPU (hidden
  // collectives slow the compute under them only there).
  TrainingJob job = pipelined_mlp_job();
  job.hardware.kind = "gpu";
  job.parallelism->gradient_accumulation = "fused";  // (the accumulation pass: its own test below)
  // A wider last layer, so that the device pairing the first and the last stage is the busiest
  // (with four equal layers the two pairs tie).
  job.design = MlpDesign{{1000, 1000, 1000, 1000, 2000}, true};
  const StepCost plain = cost_training_step(job);
  job.parallelism->dualpipe = true;
  const StepCost dual = cost_training_step(job);
  REQUIRE(dual.fits);
  const auto [f, b] = stage_times(dual, 4, true);
  CHECK(dual.compute_s == approx(8 * (f + b)));
  // (p/2 - 1)(F&B + B - 3W) = 1 x (F + 2B - 3W), W the weight-gradient products (fused
  // accumulation: no pass), the busiest device's pair of stages 0 and 3 averaged (since session 49,
  // a review: W = B / 2, F + B / 2), against 1F1B's 3 slots.
  const std::vector<double> w = mlp_weight_gradients(dual, {1000, 1000, 1000, 2000});
  const double w_pair = 0.5 * (w[0] + w[3]);
  REQUIRE(w_pair > 0);
  REQUIRE(w_pair < 0.5 * b);  // the activations' gradients are B's too
  CHECK(dual.bubble_s == approx(f + 2 * b - 3 * w_pair));
  CHECK(plain.bubble_s == approx(other_slots(plain)));
  // The sends (far shorter than a slot's compute) are hidden, and slow that compute by
  // s / (1 + s) of their time (0.189 / 1.189).
  REQUIRE(plain.pipeline_comm_s > 0);
  CHECK(dual.pipeline_comm_s == 0);
  CHECK(dual.contention_s == approx(plain.pipeline_comm_s * 0.189 / 1.189));
  double total = 0;
  for (const auto& part : step_components(dual)) total += part.time_s;
  CHECK(total == approx(dual.step_s));
  // Two stages' weights a device (fp16: 2 B a parameter more) and one more microbatch in flight, with
  // four equal stages (with unequal ones, a device pairing a small stage with a large one may need
  // less than the large one's device under 1F1B: the optimizer state is the two stages' average).
  job.design = MlpDesign{{1000, 1000, 1000, 1000, 1000}, true};
  const StepCost equal_dual = cost_training_step(job);
  job.parallelism->dualpipe = false;
  const StepCost equal_plain = cost_training_step(job);
  CHECK(equal_dual.memory_per_device_bytes > equal_plain.memory_per_device_bytes + 2 * equal_dual.parameters / 4 * 0.99);
}

TEST_CASE("a GEMM ceiling and shape measured at one precision, by hand") {
  Hardware h = made_up();  // peaks fp16 1e14, fp32 1e13; headline GEMM ceiling 0.5
  h.gemm_shape = {0, 0, 100};
  h.gemm_by_precision["fp32"] = Hardware::GemmCeiling{0.9, {0, 0, 50}};
  const auto base = hardware::make_device_model(h);
  // At fp16 (and bf16, which has no entry of its own) the headline pair: 0.5 / (1 + 100 / 400) = 0.4.
  for (const char* dtype : {"fp16", "bf16"}) {
    const auto d = base.at_precision(dtype);
    CHECK(d.gemm_efficiency == approx(0.5));
    CHECK(hardware::gemm_shape_factor(d, 1024, 1024, 400) == approx(0.8));
  }
  // At fp32, and tf32 through it: 0.9 / (1 + 50 / 400) = 0.8, so a GEMM of 1e12 FLOP (1e9 B, far
  // from memory-bound) takes 1e12 / (1e13 x 0.8) = 0.125 s; at the headline it would take 0.25 s.
  for (const char* dtype : {"fp32", "tf32"}) {
    const auto d = base.at_precision(dtype);
    const double eta = d.gemm_efficiency * hardware::gemm_shape_factor(d, 1024, 1024, 400);
    CHECK(eta == approx(0.8));
    CHECK(hardware::kernel_time(d, dtype, 1e12, 1e9, true, eta).seconds == approx(0.125));
  }
  // A GEMM at its precision's own ceiling draws what one at the headline's does, the power limit:
  // the energy an fp32 FLOP scales by 0.5 / 0.9 besides the peaks' ratio (since session 44, a
  // review; before, it was the headline's, and fp32 at 0.9 of its peak drew the whole dynamic range
  // 1.8 times over, capped). At half that rate it draws static power and half the dynamic range,
  // whatever precision the job runs at (an fp16 job's fp32 kernels too).
  const double flops = 1e12, at_ceiling = flops / (0.9 * 1e13);
  for (const char* job : {"fp32", "fp16"}) {
    const auto d = base.at_precision(job);
    CHECK(hardware::kernel_energy(d, "fp32", flops, 0, at_ceiling) / at_ceiling == approx(d.power_limit_w));
    CHECK(hardware::kernel_energy(d, "fp32", flops, 0, 2 * at_ceiling) / (2 * at_ceiling) ==
          approx(d.static_w + 0.5 * (d.power_limit_w - d.static_w)));
  }
  // A kernel that is not a product (an fp32 optimizer's, on the vector units) takes the peaks'
  // ratio alone: no GEMM ceiling sets its rate.
  const double slow = 10 * at_ceiling;
  CHECK(hardware::kernel_energy(base, "fp32", flops, 0, slow, false) == approx(flops * base.e_flop_j * 10 + base.static_w * slow));
  CHECK(hardware::kernel_energy(base, "fp32", flops, 0, slow) == approx(flops * base.e_flop_j * 10 * 0.5 / 0.9 + base.static_w * slow));
  // An fp16 GEMM at the headline ceiling, 0.5 of 1e14, draws the limit as before.
  const double at_headline = flops / (0.5 * 1e14);
  CHECK(hardware::kernel_energy(base, "fp16", flops, 0, 2 * at_headline) / (2 * at_headline) ==
        approx(base.static_w + 0.5 * (base.power_limit_w - base.static_w)));
  // A training step at fp32 sees the fp32 ceiling: the one-layer MLP's GEMMs run faster with it.
  auto job = mlp_job();
  job.precision = "fp32";
  const double headline = cost_training_step(job).step_s;
  job.hardware.gemm_by_precision["fp32"] = Hardware::GemmCeiling{1.0, {0, 0, 0}};
  CHECK(cost_training_step(job).step_s < headline);
}

TEST_CASE("a precision run at another's rate takes that one's measured ceiling, and fp32 is not an int8 rate") {
  // Since session 43, from a review. A P100-like part: fp16 and fp32 listed, the headline ceiling
  // measured in fp32 (0.9), fp16's apart (0.4). bf16, run at the fp16 rate, takes fp16's ceiling,
  // and so does int8 (through bf16 to fp16): not the headline's 0.9.
  Hardware h = made_up();  // peaks fp16 1e14, fp32 1e13
  h.gemm_efficiency = 0.9;
  h.gemm_by_precision["fp16"] = Hardware::GemmCeiling{0.4, {0, 0, 0}};
  const auto base = hardware::make_device_model(h);
  CHECK(base.rate_precision("bf16") == "fp16");
  CHECK(base.rate_precision("int8") == "fp16");
  for (const char* dtype : {"fp16", "bf16", "int8"}) CHECK(base.at_precision(dtype).gemm_efficiency == approx(0.4));
  CHECK(base.at_precision("fp32").gemm_efficiency == approx(0.9));
  // A part listing only int8 (a phone's NPU) has no float rate to emulate fp32 with: none, where
  // a quarter of its int8 rate had been taken; a quarter of a 16-bit rate stays (TPUs).
  Hardware npu = made_up();
  npu.peak_flop_per_s = {{"int8", 4.5e13}};
  CHECK_THROWS_AS(static_cast<void>(hardware::make_device_model(npu).peak("fp32")), std::invalid_argument);
  npu.peak_flop_per_s = {{"bf16", 4e13}};
  CHECK(hardware::make_device_model(npu).peak("fp32") == approx(1e13));
}

TEST_CASE("GPU products whose rows are not a multiple of 16 bytes leave the tensor cores, by hand") {
  Hardware h = made_up();
  h.kind = "gpu";
  const auto fp16 = hardware::make_device_model(h).at_precision("fp16");
  CHECK(fp16.alignment_elements == 8);
  CHECK(hardware::alignment_factor(fp16, 8192, 4096) == 1);
  CHECK(hardware::alignment_factor(fp16, 50257, 768) == hardware::kMisalignedGemm);  // GPT-2's vocabulary
  CHECK(hardware::alignment_factor(fp16, 768, 700) == hardware::kMisalignedGemm);
  CHECK(hardware::alignment_factor(fp16, 50264.0 / 8, 768) == hardware::kMisalignedGemm);  // 6,283 a tensor rank
  CHECK(hardware::alignment_factor(hardware::make_device_model(h).at_precision("fp8"), 8200, 768) == hardware::kMisalignedGemm);
  CHECK(hardware::alignment_factor(hardware::make_device_model(h).at_precision("fp32"), 50257, 768) == 1);  // not covered
  // A GPU without matrix units for 16 bits (the P100's half2: twice its fp32 rate) keeps its rate,
  // unless its entry says otherwise.
  Hardware pascal = h;
  pascal.peak_flop_per_s = {{"fp16", 2e13}, {"fp32", 1e13}};
  CHECK(hardware::alignment_factor(hardware::make_device_model(pascal).at_precision("fp16"), 50257, 768) == 1);
  pascal.misaligned_gemm = 0.5;
  CHECK(hardware::alignment_factor(hardware::make_device_model(pascal).at_precision("fp16"), 50257, 768) == 0.5);
  h.misaligned_gemm = 0.5;  // a measured entry's own figure
  CHECK(hardware::alignment_factor(hardware::make_device_model(h).at_precision("bf16"), 100, 64) == 0.5);
  h.kind = "tpu";  // the compiler pads to the matrix unit instead
  CHECK(hardware::alignment_factor(hardware::make_device_model(h).at_precision("bf16"), 100, 64) == 1);

  // A decoder's output layer, [256 x 512] x [512 x vocab] (8 sequences of 32, d_model 512), on a
  // GPU: at 100 it runs at 0.30 of the ceiling, 2 x 256 x 512 x 100 FLOPs at 1e14 x 0.5 x 0.3 =
  // 1.75 us, compute-bound; at 104 aligned, 0.55 us of FLOPs under 0.83 us of bytes. Its backward's
  // two products likewise: 3.5 us against 1.7.
  TrainingJob job = mlp_job();
  job.hardware.kind = "gpu";
  TransformerDesign d = small_decoder(1);
  d.d_model = 512;
  d.heads = 8;
  d.d_ff = 2048;
  job.design = d;
  job.parallelism->microbatch = 8;
  job.parallelism->global_batch = 8;
  const auto head = [](const StepCost& c, const std::string& phase) {
    const auto it = std::find_if(c.ops.begin(), c.ops.end(), [&](const OpCostRow& r) { return r.op == "lm_head" && r.phase == phase; });
    REQUIRE(it != c.ops.end());
    return *it;
  };
  const StepCost misaligned = cost_training_step(job);
  const auto f100 = head(misaligned, "fwd");
  CHECK(f100.time_s == approx(2.0 * 256 * 512 * 100 / (1e14 * 0.5 * 0.3)));
  CHECK(f100.bytes / 5e11 < f100.time_s);
  d.vocab = 104;
  job.design = d;
  const StepCost aligned = cost_training_step(job);
  const auto f104 = head(aligned, "fwd");
  CHECK(f104.time_s == approx(std::max(2.0 * 256 * 512 * 104 / (1e14 * 0.5), f104.bytes / 5e11)));
  CHECK(head(misaligned, "bwd").time_s > 2 * head(aligned, "bwd").time_s);
  // Attention's products are left alone whatever the sequence length (kernels and caches pad it):
  // at 1,023 positions, one head of 512, the scores (8 x 1023 x 512 x 1023 x 2 = 8.6 GFLOP,
  // compute-bound: 172 us against 67 us of bytes) take the same time as on a device without the rule.
  d.seq_len = 1023;
  d.heads = 1;
  d.vocab = 104;
  job.design = d;
  job.parallelism->microbatch = 8;
  const StepCost odd = cost_training_step(job);
  const auto scores = std::find_if(odd.ops.begin(), odd.ops.end(), [](const OpCostRow& r) {
    return r.op.find("scores") != std::string::npos && r.phase == "fwd";
  });
  REQUIRE(scores != odd.ops.end());
  Hardware tpu_like = job.hardware;
  tpu_like.kind = "tpu";
  job.hardware = tpu_like;
  const StepCost no_rule = cost_training_step(job);
  const auto same = std::find_if(no_rule.ops.begin(), no_rule.ops.end(), [&](const OpCostRow& r) { return r.op == scores->op && r.phase == "fwd"; });
  REQUIRE(same != no_rule.ops.end());
  CHECK(scores->time_s == approx(same->time_s));
  CHECK(scores->time_s == approx(8.0 * 1023 * 512 * 1023 * 2 / (1e14 * 0.5)));
}

TEST_CASE("energy roofline from the datasheet model") {
  const auto d = hardware::make_device_model(made_up());
  // Static = idle 50 W, dynamic range 250 W. A GEMM at the achievable rate (eta_c 0.5 x 1e14) draws
  // the TDP: e_flop = 250 / 5e13 = 5e-12 J. A stream at the achievable bandwidth (0.5 x 1e12) draws
  // half the dynamic range: e_byte = 0.5 x 250 / 5e11 = 2.5e-10 J.
  CHECK(d.e_flop_j == approx(5e-12));
  CHECK(d.e_byte_j == approx(2.5e-10));
  // A stream of 1e9 B at 5e11 B/s (2 ms): 1e9 x 2.5e-10 + 50 W x 0.002 s = 0.25 + 0.1 = 0.35 J (175 W).
  CHECK(hardware::kernel_energy(d, "fp16", 0, 1e9, 0.002) == approx(0.35));
  // The GEMM above at the achievable rate (1e12 FLOP in 0.02 s): 1e12 x 5e-12 + 1e9 x 2.5e-10 = 5.25 J
  // of dynamic energy exceeds the 250 W x 0.02 s = 5 J the power limit allows: 5 + 50 x 0.02 = 6 J,
  // the TDP for 20 ms.
  CHECK(hardware::kernel_energy(d, "fp16", 1e12, 1e9, 0.02) == approx(6.0));
  // Flat out at peak compute and bandwidth for 1 s: capped at the TDP.
  CHECK(hardware::kernel_energy(d, "fp16", 1e14, 1e12, 1.0) == approx(300));
  // Half the achievable GEMM rate for 1 s: 2.5e13 x 5e-12 + 50 = 175 J (half the dynamic range).
  CHECK(hardware::kernel_energy(d, "fp16", 2.5e13, 0, 1.0) == approx(175));
  // A measured maximum of 200 W is the power limit instead of the TDP: e_flop = 150 / 5e13 = 3e-12 J,
  // and flat out for 1 s draws 200 J.
  Hardware capped = made_up();
  capped.max_power_w = 200;
  const auto c = hardware::make_device_model(capped);
  CHECK(c.e_flop_j == approx(3e-12));
  CHECK(hardware::kernel_energy(c, "fp16", 1e14, 1e12, 1.0) == approx(200));
  // A kernel that is not a product runs on the vector units (fp32's 1e13 here) whatever its
  // precision: 1e11 FLOP in 1 s is 1e11 x 5e-12 x (1e14 / 1e13) + 50 = 55 J at fp16 as at fp32
  // (since session 46, a review: at fp16 it had been charged the matrix units' 0.5 J a 1e11).
  CHECK(hardware::kernel_energy(d, "fp16", 1e11, 0, 1.0, false) == approx(55));
  CHECK(hardware::kernel_energy(d, "fp32", 1e11, 0, 1.0, false) == approx(55));
}

TEST_CASE("a product whose first operand takes no gradient computes only the second's, at its own shape") {
  // A one-row-block graph file product of 16 x 8192 x 1024 reading the data (no input gradient):
  // its backward is the weight gradient alone, 8192 x 1024 reducing over 16, a product of the
  // forward's FLOPs at that shape's efficiency, not the forward's (since session 46, a review).
  TrainingJob job = mlp_job();
  FileGraphDesign g;
  g.ops.push_back(FileOp{"w", "matmul", 0, 16, 8192, 1024, 1, 0, 1, 8192.0 * 1024, {}});
  job.design = g;
  job.hardware.compute_units = 108;
  job.hardware.kernel_launch_s = 5e-6;  // one launch, not a pair's (since session 46, a review)
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const hardware::DeviceModel dev = hardware::make_device_model(job.hardware).at_precision("fp16");
  const auto graph_of = graph::build_graph(g, graph::GraphShape{1, 2, true});
  const graph::Op& op = graph_of.ops().front();
  REQUIRE(op.name == "w");
  REQUIRE(op.backward_factor == 1);
  const double flops = op.flops, bytes = op.bytes;
  REQUIRE(flops == approx(2.0 * 16 * 8192 * 1024));
  const double eta = cost_detail::gemm_efficiency_at(dev, op, job.layout, 1024, 8192, 16, 1) * cost_detail::alignment(dev, op, 8192, 1024);
  const auto red = cost_detail::split_k_reduction(dev, op, "fp16", 1024, 8192, 16, 1);
  const double expected = hardware::kernel_time(dev, "fp16", flops, bytes, true, eta).seconds + red.seconds;
  const auto bwd = std::find_if(c.ops.begin(), c.ops.end(), [](const OpCostRow& r) { return r.op == "w" && r.phase == "bwd"; });
  REQUIRE(bwd != c.ops.end());
  CHECK(bwd->time_s == approx(expected));
  const auto fwd = std::find_if(c.ops.begin(), c.ops.end(), [](const OpCostRow& r) { return r.op == "w" && r.phase == "fwd"; });
  REQUIRE(fwd != c.ops.end());
  CHECK(bwd->time_s != approx(fwd->time_s));
  // A convolution reading the data likewise launches one kernel for its weight gradient: without
  // SMs to tile over, its backward is its forward's work and time, no second launch.
  FileGraphDesign conv;
  conv.ops.push_back(FileOp{"c", "conv2d", 0, 100, 64, 576, 1, 0, 1, 36864, {}});
  job.design = conv;
  job.hardware.compute_units = 0;
  const StepCost cc = cost_training_step(job);
  REQUIRE(cc.fits);
  double conv_f = 0, conv_b = 0;
  for (const auto& r : cc.ops) {
    if (r.op == "c") (r.phase == "fwd" ? conv_f : conv_b) = r.time_s;
  }
  REQUIRE(conv_f > 0);
  CHECK(conv_b == approx(conv_f));
}

TEST_CASE("a measured energy roofline replaces the datasheet model, and the power limit still caps it") {
  Hardware h = made_up();
  h.energy_roofline = Hardware::EnergyRoofline{1e-12, 100e-12, 80, "made-up calibration"};
  const auto d = hardware::make_device_model(h);
  CHECK(d.e_flop_j == 1e-12);
  CHECK(d.e_byte_j == 100e-12);
  CHECK(d.static_w == 80);
  CHECK(d.energy_source == "measured energy roofline: made-up calibration");
  // 1e12 FLOP and 1e9 B in 0.02 s: 1 + 0.1 + 80 x 0.02 = 2.7 J.
  CHECK(hardware::kernel_energy(d, "fp16", 1e12, 1e9, 0.02) == approx(2.7));
  // fp32 at a tenth of the 16-bit peak (1e13 against 1e14) costs ten times more a FLOP: over 0.1 s,
  // 10 + 80 x 0.1 = 18 J (100 W of dynamic power, under the limit). In 0.02 s those 10 J would be
  // 500 W: capped at TDP - static = 220 W, 4.4 + 1.6 = 6 J. (Until session 31 this case expected
  // 11.6 J, uncapped; its name held a ';', which ctest's test discovery cut, so it ran no test case
  // and never failed.)
  CHECK(hardware::kernel_energy(d, "fp32", 1e12, 0, 0.1) == approx(18));
  CHECK(hardware::kernel_energy(d, "fp32", 1e12, 0, 0.02) == approx(6));
  // Flat out for 1 s: 100 + 100 J of dynamic energy, capped at TDP - static = 220 W -> 300 J.
  CHECK(hardware::kernel_energy(d, "fp16", 1e14, 2e12, 1.0) == approx(300));
}

TEST_CASE("a training step of a one-layer MLP, by hand") {
  const StepCost c = cost_training_step(mlp_job());
  REQUIRE(c.fits);
  // input (1e6 elements, 4e6 B): memory-bound, 4e6 / 5e11 = 8e-6 s forward, 1.6e-5 backward.
  // dense.0: 2 x 1000^3 = 2e9 FLOP, 6e6 B: 2e9 / 5e13 = 4e-5 s forward, 8e-5 backward, and the
  // bias's gradient: the 1e6-element output gradient read and 1000 values written, 2.002e6 B /
  // 5e11 = 4.004e-6 s. One microbatch: 4.8e-5 + 9.6e-5 + 4.004e-6 = 1.48004e-4 s.
  CHECK(c.compute_s == approx(1.48004e-4));
  // Adam on 1,001,000 parameters in fp16: the update's 28 B, the gradient norm's read (2), the
  // master weights copied back to fp16 (4 + 2) and the loss scale's unscale and overflow check
  // (2 + 2): 40 B each = 4.004e7 B / 5e11 = 8.008e-5 s (memory-bound).
  CHECK(c.optimizer_s == approx(8.008e-5));
  CHECK(c.step_s == approx(1.48004e-4 + 8.008e-5));
  // MFU = 3 x 2e9 / (2.28084e-4 s x 1e14) = 0.263061 (the input adds no FLOPs: it has no
  // positions to add; 3 x (2e9 + 1e6) before session 45).
  CHECK(c.mfu == approx(0.263061).epsilon(1e-4));
  CHECK(c.steps == approx(1000));
  CHECK(c.bubble_fraction == 0);
  CHECK(c.data_comm_s == 0);
  CHECK(c.ops.size() == 2 * 2 + 1);  // two ops x fwd/bwd, plus the optimizer
  // Energy, by hand on the datasheet model (e_flop 5e-12 J, e_byte 2.5e-10 J, static 50 W, at most
  // 250 W above it; "energy roofline from the datasheet model", below), one kernel_energy a row:
  //   input fwd: 4e6 B x 2.5e-10 = 1e-3 J (under 250 W x 8e-6 s = 2e-3), + 50 W x 8e-6 s: 1.4e-3 J;
  //   input bwd: 8e6 B: 2e-3 J (under 4e-3), + 50 x 1.6e-5: 2.8e-3 J;
  //   dense.0 fwd: 2e9 x 5e-12 + 6e6 x 2.5e-10 = 1.15e-2 J, over 250 x 4e-5 = 1e-2: capped, + 2e-3: 1.2e-2 J;
  //   dense.0 bwd (both products and the bias's gradient, 8.4004e-5 s): over 4e9 FLOP alone, 2e-2 J,
  //   so at the cap 250 x 8.4004e-5 = 2.1001e-2, + 4.2002e-3: 2.52012e-2 J;
  //   the update: 1.2012e7 FLOP on the vector units (fp32, a tenth of the 16-bit peak: 10 x e_flop)
  //   6.006e-4 J + 4.004e7 B x 2.5e-10 = 1.001e-2 J (under 250 x 8.008e-5 = 2.002e-2), + 4.004e-3:
  //   1.46146e-2 J.
  // 5.60158e-2 J a step, no idle time (the step is all kernels): 5.60158e-2 / 2.28084e-4 s = 245.592 W,
  // and no host power on this device.
  CHECK(c.energy_per_step_j == approx(5.60158e-2));
  CHECK(c.device_power_w == approx(5.60158e-2 / 2.28084e-4));
  CHECK(c.power_per_accelerator_w == approx(c.device_power_w));
  // A host share of 100 W an accelerator is drawn beside the device: 345.592 W an accelerator, and
  // the step's device energy does not change (the host is the job's, per accelerator-hour).
  TrainingJob hosted = mlp_job();
  hosted.hardware.host_overhead_w = 100;
  const StepCost h = cost_training_step(hosted);
  CHECK(h.power_per_accelerator_w == approx(5.60158e-2 / 2.28084e-4 + 100));
  CHECK(h.energy_per_step_j == approx(5.60158e-2));
  // On data (the default, `input_gradient: false`): the input has no backward and dense.0 computes
  // its weight gradient alone, 4e-5 s: 8e-6 + 4e-5 + 4e-5 + 4.004e-6 = 9.2004e-5 s (since session
  // 45, a review: 1.48004e-4 s).
  TrainingJob data = mlp_job();
  data.design = MlpDesign{{1000, 1000}};
  const StepCost d = cost_training_step(data);
  CHECK(d.compute_s == approx(9.2004e-5));
  for (const auto& r : d.ops) {
    if (r.op == "input" && r.phase == "bwd") CHECK(r.time_s == 0);
  }
}

TEST_CASE("a GEMM's backward is two products, each with its own shape") {
  // One dense layer 1000 -> 4000 on 1000 samples: C[1000 x 4000] = A[1000 x 1000] W[1000 x 4000],
  // 8e9 FLOPs a product, on a device whose GEMMs pay k0 = 100 per reduction step (efficiency
  // 0.5 / (1 + 100 / K)). Forward, K = 1000: 8e9 x 1.1 / 5e13 = 1.76e-4 s. Input gradient
  // dA = dC W^T reduces over n = 4000: 8e9 x 1.025 / 5e13 = 1.64e-4 s; weight gradient
  // dW = A^T dC over m = 1000: 1.76e-4 s; the bias's gradient reads the 4e6-element output
  // gradient and writes 4000 values: 8.008e6 B / 5e11 = 1.6016e-5 s. The input op: 4e6 B, 8e-6 s
  // forward, 1.6e-5 backward.
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{1000, 4000}, true};
  job.hardware.gemm_shape = {0, 0, 100};
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.compute_s == approx(2.4e-5 + 1.76e-4 + 1.64e-4 + 1.76e-4 + 1.6016e-5));
}

TEST_CASE("gradient accumulation: a pass after every microbatch's backward but the first, unless fused") {
  // The one-layer MLP (1,001,000 parameters, 1.48004e-4 s a microbatch, by hand above), three
  // microbatches of 1000 a step on one device. Each of the two later backwards adds its fp16
  // gradient into the step's: the new gradient read (2 B), the accumulator read and written
  // (2 + 2 B): 6.006e6 B at 5e11 B/s = 1.2012e-5 s.
  TrainingJob job = mlp_job();
  job.parallelism->global_batch = 3000;
  job.tokens = 3e6;
  const StepCost separate = cost_training_step(job);
  REQUIRE(separate.fits);
  REQUIRE(separate.microbatches == 3);
  CHECK(separate.compute_s == approx(3 * 1.48004e-4 + 2 * 1.2012e-5));
  // Accumulated in fp32: 2 + 4 + 4 B a parameter, 1.001e7 B = 2.002e-5 s a pass.
  job.parallelism->gradient_precision = "fp32";
  CHECK(cost_training_step(job).compute_s == approx(3 * 1.48004e-4 + 2 * 2.002e-5));
  // Summed inside the weight-gradient GEMM (Megatron-LM), or by XLA's fusion on a TPU: no pass.
  job.parallelism->gradient_precision.clear();
  job.parallelism->gradient_accumulation = "fused";
  CHECK(cost_training_step(job).compute_s == approx(3 * 1.48004e-4));
  job.parallelism->gradient_accumulation = "separate";
  job.hardware.kind = "tpu";  // (where XLA fuses the bias's gradient too: 1.44e-4 s a microbatch)
  CHECK(cost_training_step(job).compute_s == approx(3 * 1.44e-4));
  // DeepSpeed's BF16_Optimizer (`cast`, since session 47): every microbatch's gradient, the first's
  // too, cast to fp32 in a pass of its own and added: 2 + 4 (the cast) + 4 + 4 + 4 (the add) = 18 B
  // a parameter, 1.8018e7 B = 3.6036e-5 s, three times a step. At the compute precision there is no
  // cast: 6 B, 1.2012e-5 s, still three times.
  job.hardware.kind = "gpu";
  job.parallelism->gradient_accumulation = "cast";
  job.parallelism->gradient_precision = "fp32";
  CHECK(cost_training_step(job).compute_s == approx(3 * 1.48004e-4 + 3 * 3.6036e-5));
  job.parallelism->gradient_precision.clear();
  CHECK(cost_training_step(job).compute_s == approx(3 * 1.48004e-4 + 3 * 1.2012e-5));
  job.parallelism->global_batch = 1000;
  CHECK(cost_training_step(job).compute_s == approx(1.48004e-4 + 1.2012e-5));
  job.parallelism->gradient_accumulation = "separate";
  // One microbatch a step has nothing to accumulate.
  CHECK(cost_training_step(job).compute_s == approx(1.48004e-4));
  // The op table holds the pass as a backward row: its average a microbatch, 2/3 of one pass.
  bool found = false;
  for (const auto& r : separate.ops) {
    if (r.op != "gradients.accumulate") continue;
    found = true;
    CHECK(r.phase == "bwd");
    CHECK(r.bytes == approx(2.0 / 3 * 6.006e6));
    CHECK(r.time_s == approx(2.0 / 3 * 1.2012e-5));
  }
  CHECK(found);
}

TEST_CASE("the optimizer's passes by precision: norm, master copy, loss scaling") {
  // Adam on 1,001,000 parameters at 5e11 B/s. fp32: the update's 28 B and the norm's 4 B (no
  // master copy, no loss scale): 32 B = 6.4064e-5 s. bf16: 28 + 2 + (4 + 2) = 36 B = 7.2072e-5 s.
  TrainingJob job = mlp_job();
  job.precision = "fp32";
  CHECK(cost_training_step(job).optimizer_s == approx(6.4064e-5));
  job.precision = "bf16";
  CHECK(cost_training_step(job).optimizer_s == approx(7.2072e-5));
}

TEST_CASE("fp8 training: the GEMMs at the 8-bit rate, everything else stored at 16 bits, by hand") {
  // The one-layer MLP on a device with 100 TFLOP/s bf16 and 200 fp8. bf16: the input op moves
  // 4e6 B (8e-6 s forward, 1.6e-5 backward), dense.0 2e9 FLOP at 5e13 (4e-5, 8e-5): 1.44e-4 s.
  // fp8: the same input op (its values stay 16-bit), dense.0 at 1e14 (2e-5, 4e-5), and its casts:
  // forward the 1e6-element input read in 16 bits and written in 8 (3e6 B, 6e-6 s); backward the
  // output's gradient cast (3e6 B) and the input and gradient transposed in 8 bits (2e6 + 2e6 B):
  // 7e6 B, 1.4e-5 s. 2.4e-5 + 6e-5 + 2e-5 = 1.04e-4 s. Both add the bias's gradient, a 16-bit
  // reduction of the output's gradient (2.002e6 B, 4.004e-6 s): 1.48004e-4 and 1.08004e-4 s.
  TrainingJob job = mlp_job();
  job.hardware.peak_flop_per_s = {{"bf16", 1e14}, {"fp8", 2e14}};
  job.precision = "bf16";
  const StepCost b = cost_training_step(job);
  job.precision = "fp8";
  const StepCost f = cost_training_step(job);
  REQUIRE(b.fits);
  REQUIRE(f.fits);
  CHECK(b.compute_s == approx(1.48004e-4));
  CHECK(f.compute_s == approx(1.08004e-4));
  // Memory, the optimizer's passes and the gradients are those of bf16 training, except that the
  // product keeps its input for the weight gradient as its 8-bit cast: 1000 x 1000 x 1 B fewer.
  CHECK(f.memory_per_device_bytes == approx(b.memory_per_device_bytes - 1e6));
  CHECK(f.optimizer_s == approx(b.optimizer_s));
}

TEST_CASE("the 1F1B bubble and data-parallel communication") {
  const TrainingJob job = pipelined_mlp_job();
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.data == 2);
  CHECK(c.microbatches == 8);
  CHECK(c.pipeline_comm_s > 0);
  // The fill and drain: the first microbatch's forward and the last one's backward through the
  // three other devices, a slot of each (compute and the stage sends). Their stages are a little
  // lighter than the busiest's (which reads the input; the last layer has no activation), so the
  // bubble is a little less than 3 of the busiest's slots, (p - 1) / (m + p - 1) = 3 / 11 of the
  // step; the step's components add up to the step.
  REQUIRE(c.stages.size() == 4);
  CHECK(c.bubble_s == approx(other_slots(c)));
  CHECK(c.bubble_s < 3.0 / 8 * (c.compute_s + c.pipeline_comm_s));
  CHECK(c.bubble_s > 0.8 * 3.0 / 8 * (c.compute_s + c.pipeline_comm_s));
  CHECK(c.bubble_fraction < 3.0 / 11);
  double total = 0;
  for (const auto& part : step_components(c)) total += part.time_s;
  CHECK(total == approx(c.step_s));
}

TEST_CASE("data-parallel gradients: one all-reduce a step, ZeRO-2 and ZeRO-3 every microbatch") {
  TrainingJob job = mlp_job();
  job.accelerators = 16;  // data 16 spans two nodes of 8: the network
  // A ring across nodes spreads a node's traffic over the NICs of its ranks in that node: 8 ranks
  // a node at 1.25e9 B/s each give a bus bandwidth of 1e10 B/s (NCCL's nChannels x NIC).
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 4000;  // 16 replicas x 2 microbatches of 125
  job.parallelism->overlap_communication = false;
  // 1,001,000 fp16 gradients = 2.002e6 B, one 25 MB bucket; ring: 2 x 15/16 x 2.002e6 / 1e10 + 20 us
  // = 3.95375e-4 s.
  StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.microbatches == 2);
  CHECK(c.data_comm_s == approx(3.95375e-4));
  // ZeRO-2 and -3 communicate layer by layer: one collective for the MLP's layer and one for
  // what lies outside the layers, each with its 20 us start-up (not a GPU: no NCCL model).
  // ZeRO-2: sharded gradients are reduce-scattered after each microbatch, the parameters
  // all-gathered once: (2 + 1) halves of 3.75375e-4 s of bandwidth and 3 x 2 start-ups =
  // 5.630625e-4 + 1.2e-4 = 6.830625e-4 s.
  job.parallelism->zero_stage = 2;
  c = cost_training_step(job);
  CHECK(c.data_comm_s == approx(6.830625e-4));
  // ZeRO-3: gather both units before each microbatch's forward and the layer's again before its
  // backward (the root unit stays gathered from the forward: FSDP's reshard_after_forward is False
  // for the root; since session 46, a review: both), reduce-scatter both after each backward: 5
  // collectives a microbatch, each 9.384375e-5 s of bandwidth and a 20 us start-up: 10 x
  // 1.1384375e-4 = 1.1384375e-3 s (12 of them before session 46).
  job.parallelism->zero_stage = 3;
  c = cost_training_step(job);
  CHECK(c.data_comm_s == approx(1.1384375e-3));
  // Overlapped, each pass's collectives hide behind that pass's compute, but each microbatch's
  // first two gathers (the root unit's and the first layer's, with only an embedding lookup
  // between them) and its last two reduce-scatters (the first layer's and the root's, with only
  // the embedding's backward between them) run exposed (since session 49, a review: one at each
  // end): here both units', 8 of the 10 collectives; the layer's re-gather before each backward
  // (2) hides behind the backward, dp / 10 each.
  job.parallelism->overlap_communication = true;
  c = cost_training_step(job);
  CHECK(c.compute_s > 0);
  const double backward = static_cast<double>(c.microbatches) * c.stages.at(0).backward_s;
  CHECK(c.data_comm_s == approx(8 * 1.1384375e-4 + std::max(0.0, 2 * 1.1384375e-4 - backward)));
  CHECK(c.data_comm_s > 0);
  // Not a GPU: no overlap slowdown (it was measured on GPUs only).
  CHECK(c.contention_s == 0);
  // On GPUs each collective takes NCCL's fastest protocol. The 16 ranks span 2 nodes of 8; one
  // collective moves half the gradients (1.001e6 B): 15/16 x 1.001e6 / 1e10 = 9.384375e-5 s of
  // bandwidth. LL128: 14 + 14 x 1.9 + 1 x 4.0 = 44.6 us + 9.384375e-5 / 0.92 = 1.466041e-4 s
  // (Simple: 70 + 93.8 us; LL: 23.3 + 375.4 us). ZeRO-3, not overlapped: 2 microbatches x 5
  // collectives (2 gathers forward, 1 backward, 2 reduce-scatters).
  job.hardware.kind = "gpu";
  job.parallelism->overlap_communication = false;
  c = cost_training_step(job);
  const double zero3_s = 10 * (44.6e-6 + 15.0 / 16 * 1.001e6 / 1e10 / 0.92);
  // ZeRO-3 on a group: 2 microbatches x (3 gathers + 2 reduce-scatters) of 1.001e6 B.
  const auto zero3_gathers = [](const comm::Group& g) {
    return 2 * (3 * comm::collective_s(comm::Collective::all_gather, 1.001e6, g) +
                2 * comm::collective_s(comm::Collective::reduce_scatter, 1.001e6, g));
  };
  CHECK(zero3_gathers(comm::Group{16, 2, 1e10, true}) == approx(zero3_s));
  CHECK(c.data_comm_s == approx(zero3_s));
  CHECK(c.contention_s == 0);
  // Overlapped on a GPU, the hidden collectives slow the compute under them by 18.9 % (Lee et al.
  // 2025): while they run, compute advances at 1 / 1.189, so the step grows by dp x 0.189 / 1.189
  // unless more than that is exposed anyway. (GEMMs at 0.005 of peak, so that the compute
  // covers the collectives.)
  job.hardware.gemm_efficiency = 0.005;
  job.parallelism->overlap_communication = true;
  c = cost_training_step(job);
  CHECK(c.compute_s > zero3_s);
  // Pass by pass (since session 35): the 10 collectives take t1 = dp / 10 each; each
  // microbatch's forward gathers both units before its compute can start (4 t1 in all), and its
  // backward reduce-scatters both after its compute (4 t1), both units being at an end of the
  // pass (FSDP re-gathers its root unit before every microbatch and waits on its reduce-scatters
  // after every backward; once a step before session 46, one unit at each end before session 49);
  // the layer's re-gather (2 t1) hides behind the backward. Exposed: 8 t1 + max(0, 2 t1 - bwd);
  // the slowdown k = 0.189 / 1.189 of what the backward hides, less what it exposes. (Before
  // session 35 the first gather and the last reduce-scatter could hide too: exposed
  // max(0, dp - compute).)
  const auto overlapped = [](const StepCost& s, double t1) {
    double bwd = 0;
    for (const auto& r : s.ops) {
      if (r.bound == "communication") continue;
      bwd += r.phase == "bwd" ? r.time_s : 0;
    }
    bwd *= static_cast<double>(s.microbatches);
    const double k = 0.189 / 1.189, b = std::max(0.0, 2 * t1 - bwd);
    return std::pair{8 * t1 + b, std::max(0.0, 2 * t1 * k - b)};
  };
  CHECK(c.data_comm_s == approx(overlapped(c, zero3_s / 10).first));
  CHECK(c.contention_s == approx(overlapped(c, zero3_s / 10).second));
  CHECK(c.data_comm_s == approx(8 * zero3_s / 10));  // the compute covers the rest
  CHECK(c.contention_s > 0);
  const StepCost hidden = c;
  // With the network 100 x faster the gathers hide: only the slowdown is left, dp x 0.189 / 1.189.
  job.hardware.inter_node_bandwidth = 1.25e11;
  job.hardware.intra_node_bandwidth = 1e13;
  c = cost_training_step(job);
  const double fast_s = zero3_gathers(comm::Group{16, 2, 1e12, true});
  CHECK(fast_s < c.compute_s);
  CHECK(c.data_comm_s == approx(8 * fast_s / 10));  // each microbatch's first gathers and last reduce-scatters
  CHECK(c.contention_s == approx((fast_s - 8 * fast_s / 10) * 0.189 / 1.189));
  CHECK(c.step_s < hidden.step_s);
  // The slowdown has its own op row.
  const auto row = std::find_if(c.ops.begin(), c.ops.end(), [](const OpCostRow& r) { return r.op == "data.overlap"; });
  REQUIRE(row != c.ops.end());
  CHECK(row->time_s == approx(c.contention_s));
  // Between the regimes: a backward a little shorter than the re-gathers it hides, so part is
  // exposed and the slowed compute adds the rest, 2 t1 x 0.189 / 1.189 in all.
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.hardware.intra_node_bandwidth = 1e11;
  job.hardware.gemm_efficiency = 0.5;
  c = cost_training_step(job);
  for (int i = 0; i < 8; ++i) {  // GEMMs slowed until the compute is 0.285 x dp: a backward of 0.95 x 2 t1
    job.hardware.gemm_efficiency = *job.hardware.gemm_efficiency * c.compute_s / (0.285 * zero3_s);
    c = cost_training_step(job);
  }
  const double backward_s = static_cast<double>(c.microbatches) * c.stages.at(0).backward_s;
  REQUIRE(backward_s < 2 * zero3_s / 10);
  REQUIRE(2 * zero3_s / 10 < 1.189 * backward_s);
  CHECK(c.data_comm_s == approx(overlapped(c, zero3_s / 10).first));
  CHECK(c.contention_s == approx(overlapped(c, zero3_s / 10).second));
  CHECK(c.data_comm_s > 8 * zero3_s / 10);
  CHECK(c.contention_s > 0);
  job.hardware.gemm_efficiency = 0.005;
  // A slower network exposes part of the gathers: the step grows by what is exposed, or by the
  // slowdown, whichever is more.
  job.hardware.inter_node_bandwidth = 1.25e8;
  job.hardware.intra_node_bandwidth = 1e11;
  c = cost_training_step(job);
  CHECK(c.data_comm_s > 0);
  const double slow_s = zero3_gathers(comm::Group{16, 2, 1e9, true});
  CHECK(c.data_comm_s == approx(overlapped(c, slow_s / 10).first));
  CHECK(c.contention_s == approx(overlapped(c, slow_s / 10).second));
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.hardware.gemm_efficiency = 0.5;
  job.parallelism->overlap_communication = false;
  // Megatron's numbering puts data-parallel ranks `tensor` apart: with tensor 2 and data 8 on
  // nodes of 8, a data-parallel group has 4 ranks in each of 2 nodes and crosses the network
  // (4 ranks a node, 4 x 1.25e9 = 5e9 B/s); with tensor 1 and data 8 it stays in one node
  // (NVLink, 1e11 B/s). ZeRO 0-1,
  // one 25 MB bucket: 2.002e6 B / 2 of gradients a rank (tensor 2) over the network.
  // Each layout: the accelerators and sequences a step (2 microbatches of 125 a replica).
  const auto layout = [&job](std::int64_t accelerators, std::int64_t global_batch) {
    job.accelerators = accelerators;
    job.parallelism->global_batch = global_batch;
    const StepCost s = cost_training_step(job);
    REQUIRE(s.fits);
    return s;
  };
  job.parallelism->tensor = 2;
  job.parallelism->zero_stage = 0;
  c = layout(16, 2000);  // 8 replicas
  CHECK(c.data == 8);
  CHECK(c.data_comm_s == approx(comm::collective_s(comm::Collective::all_reduce, 1.001e6, comm::Group{8, 2, 5e9, true})));
  job.parallelism->tensor = 1;
  c = layout(8, 2000);
  CHECK(c.data == 8);
  CHECK(c.data_comm_s == approx(comm::collective_s(comm::Collective::all_reduce, 2.002e6, comm::Group{8, 1, 1e11, true})));
  // 12 ranks on nodes of 8 hold 8 and 4: NCCL runs as many channels on every node, so the ring
  // has the 4 NICs of the smaller node, 4 x 1.25e9 = 5e9 B/s.
  c = layout(12, 3000);  // 12 replicas
  CHECK(c.data == 12);
  CHECK(c.data_comm_s == approx(comm::collective_s(comm::Collective::all_reduce, 2.002e6, comm::Group{12, 2, 5e9, true})));
  // With 2 pipeline stages as well (16 GPUs; two layers, one a stage, since a stage needs a
  // layer), each stage's data-parallel group is still 8 neighbours in one node: ranks are
  // `tensor` apart, not tensor x pipeline. A stage's gradients: 1,001,000 fp16 = 2.002e6 B.
  job.design = MlpDesign{{1000, 1000, 1000}, true};
  job.parallelism->pipeline = 2;
  c = layout(16, 2000);
  CHECK(c.data == 8);
  CHECK(c.data_comm_s == approx(comm::collective_s(comm::Collective::all_reduce, 2.002e6, comm::Group{8, 1, 1e11, true})));
  // More stages than layers cannot run.
  job.design = MlpDesign{{1000, 1000}, true};
  const StepCost empty_stage = cost_training_step(job);
  CHECK_FALSE(empty_stage.fits);
  CHECK(empty_stage.reason == "pipeline (2) is more stages than the model's 1 layer(s): every stage needs a layer");
}

TEST_CASE("gradients reduced in fp32 under fp16 compute, parameters gathered in fp16, by hand") {
  // The job of the test above: 1,001,000 parameters on 16 replicas over two nodes (bus bandwidth
  // 1e10 B/s, 20 us start-up), fp16, not overlapped. Gradients in fp32 (Megatron-LM's default for
  // bf16) are 4.004e6 B: the all-reduce takes 2 x 15/16 x 4.004e6 / 1e10 + 20 us = 7.7075e-4 s
  // (3.95375e-4 s at fp16), and the gradient buffers hold 2 bytes a parameter more.
  TrainingJob job = mlp_job();
  job.accelerators = 16;
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 4000;
  job.parallelism->overlap_communication = false;
  const StepCost fp16 = cost_training_step(job);
  job.parallelism->gradient_precision = "fp32";
  const StepCost fp32 = cost_training_step(job);
  REQUIRE(fp32.fits);
  CHECK(fp16.data_comm_s == approx(3.95375e-4));
  CHECK(fp32.data_comm_s == approx(7.7075e-4));
  CHECK(fp32.memory_per_device_bytes - fp16.memory_per_device_bytes == approx(2 * 1.001e6));
  // ZeRO-1 reduce-scatters the fp32 gradients and all-gathers the fp16 parameters: half of each
  // all-reduce's volume, each with a start-up of its own (NCCL runs them as rings, not as halves
  // of an all-reduce): (7.7075e-4 - 20 us + 3.95375e-4 - 20 us) / 2 + 2 x 20 us = 6.030625e-4 s.
  job.parallelism->zero_stage = 1;
  CHECK(cost_training_step(job).data_comm_s == approx(6.030625e-4));
}

TEST_CASE("ZeRO-2 overlapped exposes its one gather's first unit and each microbatch's last reduce-scatter") {
  // The MLP on 16 GPUs over two nodes, 2 microbatches, ZeRO-2: per unit (the layer and the rest,
  // 1.001e6 B each) a gather once a step and a reduce-scatter each microbatch. With the compute
  // covering the rest, the step's first gather and each microbatch's last reduce-scatter stay
  // exposed: t_ag + 2 t_rs (since session 46, a review: one reduce-scatter a step).
  TrainingJob job = mlp_job();
  job.accelerators = 16;
  job.hardware.kind = "gpu";
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.hardware.gemm_efficiency = 0.005;
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 4000;
  job.parallelism->zero_stage = 2;
  const comm::Group g{16, 2, 1e10, true};
  const double t_ag = comm::collective_s(comm::Collective::all_gather, 1.001e6, g);
  const double t_rs = comm::collective_s(comm::Collective::reduce_scatter, 1.001e6, g);
  job.parallelism->overlap_communication = false;
  CHECK(cost_training_step(job).data_comm_s == approx(2 * t_ag + 4 * t_rs));
  job.parallelism->overlap_communication = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.compute_s > 2 * t_ag + 4 * t_rs);
  CHECK(c.data_comm_s == approx(t_ag + 2 * t_rs));
}

TEST_CASE("ZeRO-3 overlapped pass by pass: the forward's gathers hide only behind the forward") {
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{1000, 1000, 1000, 1000, 1000}, true};  // four layers: five units with the rest
  job.accelerators = 16;
  job.hardware.kind = "gpu";
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 4000;  // 16 replicas x 2 microbatches
  job.parallelism->zero_stage = 3;
  job.parallelism->recompute = true;  // the backward repeats the forward: it holds 3/4 of the compute
  job.parallelism->overlap_communication = false;
  // Not overlapped: 2 microbatches x (5 units' gathers before the forward, 4 again in the backward,
  // the root unit staying gathered, and 5 reduce-scatters), each of the same size and so of the
  // same time, t1 = dp / 28: the forward's are 10 t1.
  const double dp = cost_training_step(job).data_comm_s, t1 = dp / 28;
  job.parallelism->overlap_communication = true;
  StepCost c = cost_training_step(job);
  for (int i = 0; i < 8; ++i) {  // GEMMs slowed until the step's compute is 0.8 x dp
    job.hardware.gemm_efficiency = *job.hardware.gemm_efficiency * c.compute_s / (0.8 * dp);
    c = cost_training_step(job);
  }
  const auto pass_s = [&c](const std::string& phase) {
    double s = 0;
    for (const auto& r : c.ops) s += r.phase == phase ? r.time_s : 0;
    return s * static_cast<double>(c.microbatches);
  };
  const double fwd = pass_s("fwd"), bwd = pass_s("bwd");
  REQUIRE(c.compute_s == approx(fwd + bwd));
  // Each microbatch's first two gathers run before its compute and its last two reduce-scatters
  // after its backward (since session 35 one, once a step; since session 46 once a microbatch;
  // since session 49 two, the root's and the first layer's): exposed 4 t1 + 4 t1, and of the rest
  // the forward (a quarter of the compute, 5.6 t1) cannot hide its remaining gathers (6 t1), the
  // less since its last layer's forward runs after the last gather and hides nothing (since
  // session 49): 6 t1 - (fwd - last). The backward (16.8 t1) hides the rest of its 18 t1, 14 t1.
  // (Were the passes pooled, the step's compute, 22.4 t1, would hide all of 20 t1.)
  double last = 0;
  for (const auto& r : c.ops) last += r.phase == "fwd" && r.layer == 3 ? r.time_s : 0;
  last *= static_cast<double>(c.microbatches);
  REQUIRE(last == approx(fwd / 4).epsilon(0.02));  // four equal layers
  REQUIRE(20 * t1 < c.compute_s);
  REQUIRE(6 * t1 > fwd);
  REQUIRE(14 * t1 < bwd);
  const double forward_exposed = 6 * t1 - (fwd - last);
  CHECK(c.data_comm_s == approx(4 * t1 + forward_exposed + 4 * t1));
  // The slowdown (Lee et al. 2025) pass by pass: what each pass hides, x 0.189 / 1.189, less what
  // it already exposes.
  const double k = 0.189 / 1.189;
  CHECK(c.contention_s == approx(std::max(0.0, 6 * t1 * k - forward_exposed) + 14 * t1 * k));
}

TEST_CASE("data parallelism overlapped: the last gradient bucket's all-reduce is exposed") {
  TrainingJob job = mlp_job();
  job.accelerators = 16;
  job.hardware.inter_node_bandwidth = 1.25e9;  // bus bandwidth 1e10 B/s across the two nodes
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 4000;
  // One layer of 1,001,000 fp16 gradients (2.002e6 B) is one bucket, ready when the backward pass
  // ends: its whole all-reduce is exposed, 2 x 15/16 x 2.002e6 / 1e10 + 20 us = 3.95375e-4 s.
  StepCost c = cost_training_step(job);
  CHECK(c.data_comm_s == approx(3.95375e-4));
  // Four layers of 3000 x 3000 (36,012,000 parameters, 7.2024e7 B) are three 25 MB buckets; with
  // the compute slow enough to hide the rest, the last bucket is left: 2 x 15/16 x 2.5e7 / 1e10
  // + 20 us = 4.7075e-3 s.
  job.design = MlpDesign{{3000, 3000, 3000, 3000, 3000}, true};
  job.hardware.gemm_efficiency = 0.001;
  c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.compute_s > 0.1);
  CHECK(c.data_comm_s == approx(4.7075e-3));
}

TEST_CASE("memory per device: weights and gradients at the compute precision, a master copy only below fp32") {
  // Two data-parallel replicas, ZeRO-1 (optimizer state sharded), Adam.
  TrainingJob job = mlp_job();
  job.accelerators = 2;
  job.parallelism->global_batch = 2000;
  const StepCost z0 = cost_training_step(job);  // fp16, no sharding: 2 + 2 + 12 B a parameter
  const double p = z0.parameters;
  const double act16 = z0.memory_per_device_bytes - 16 * p;
  CHECK(act16 > 0);
  job.parallelism->zero_stage = 1;
  CHECK(cost_training_step(job).memory_per_device_bytes == approx(p * (2 + 2 + 12.0 / 2) + act16));
  // fp32: 4 + 4 B, and Adam's m and v (8 B) without a master copy; activations twice as wide.
  job.precision = "fp32";
  CHECK(cost_training_step(job).memory_per_device_bytes == approx(p * (4 + 4 + 8.0 / 2) + 2 * act16));
}

TEST_CASE("ZeRO-2 and -3 hold the running unit's gradient whole, ZeRO-3 its parameters and the next unit's too") {
  // The small decoder, 2 layers, on 2 data-parallel ranks, fp16, Adam (12 B of state a parameter).
  // The units are its 2 layers and the root one (embeddings, final norm, head): P / 3 each on
  // average, above the 6,400-parameter embedding table.
  TrainingJob job = mlp_job();
  job.design = small_decoder(2);
  job.accelerators = 2;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 2;
  job.parallelism->zero_stage = 1;
  const StepCost z1 = cost_training_step(job);
  const double p = z1.parameters;
  const double unit = p / 3;
  REQUIRE(unit > 6400);
  const double act = z1.memory_per_device_bytes - p * (2 + 2 + 12.0 / 2);
  CHECK(act > 0);
  job.parallelism->zero_stage = 2;  // gradients sharded; the running unit's whole until reduced
  CHECK(cost_training_step(job).memory_per_device_bytes == approx(p * (2 + 2.0 / 2 + 12.0 / 2) + 2 * unit + act));
  job.parallelism->zero_stage = 3;  // weights sharded; the running and the prefetched unit gathered
  CHECK(cost_training_step(job).memory_per_device_bytes == approx(p * (2.0 / 2 + 2.0 / 2 + 12.0 / 2) + (2 * 2 + 2) * unit + act));
  // Over one data rank nothing is sharded and nothing gathered: ZeRO-3 holds what ZeRO-1 does
  // (since session 44, a review: the running and prefetched units had been charged again).
  job.accelerators = 1;
  job.parallelism->global_batch = 1;
  const double one_rank = cost_training_step(job).memory_per_device_bytes;
  job.parallelism->zero_stage = 1;
  CHECK(one_rank == approx(cost_training_step(job).memory_per_device_bytes));
}

TEST_CASE("a model that does not fit is a result with a reason") {
  TrainingJob job = mlp_job();
  job.hardware.memory_bytes = 1e6;
  const StepCost c = cost_training_step(job);
  CHECK_FALSE(c.fits);
  CHECK(c.reason.rfind("does not fit: needs ", 0) == 0);
  CHECK(c.reason.find(text::byte_size(c.memory_per_device_bytes - 1e6) + " more than the 1.0 MB made-up has") != std::string::npos);
  // Just past the memory, the message says by how much, not "needs 80.0 GB ... has 80.0 GB"
  // (a review of session 46).
  job.hardware.memory_bytes = c.memory_per_device_bytes - 40960;
  CHECK(cost_training_step(job).reason.find("), 41.0 kB more than the ") != std::string::npos);
  job.hardware.memory_bytes = c.memory_per_device_bytes;
  CHECK(cost_training_step(job).fits);
  job.hardware.memory_bytes = 1e6;
  // A GPU's reason ends there; a TPU's says that XLA rematerializes to fit and which key costs the
  // most that can take, unless the job already recomputes every layer (since session 55).
  const std::string tail = "; on a TPU, XLA rematerializes activations to fit where it can: parallelism.recompute: full costs the most that can take";
  CHECK(c.reason.find("XLA") == std::string::npos);
  {
    TrainingJob tpu = job;
    tpu.hardware.kind = "tpu";
    const std::string why = cost_training_step(tpu).reason;
    CHECK(why.size() > tail.size());
    CHECK(why.compare(why.size() - tail.size(), tail.size(), tail) == 0);
    tpu.parallelism->recompute = true;
    CHECK(cost_training_step(tpu).reason.find("XLA") == std::string::npos);
  }
  const TrainingResult r = simulate_training(job);
  CHECK_FALSE(r.ok);
  CHECK(r.footprint.facility_energy_j == 0);

  job = mlp_job();
  job.accelerators = 6;
  job.parallelism->tensor = 4;
  const StepCost bad = cost_training_step(job);
  CHECK_FALSE(bad.fits);
  CHECK(bad.reason == "accelerators (6) is not data x tensor x pipeline (1 x 4 x 1)");
}

TEST_CASE("first-principles results feed the accounting arithmetic") {
  TrainingJob job = mlp_job();
  const TrainingResult r = simulate_training(job);
  REQUIRE(r.ok);
  CHECK(r.mode == "first-principles");
  // 1000 steps x 2.28084e-4 s.
  CHECK(r.footprint.duration_s == approx(0.228084));
  CHECK(r.footprint.power_per_accelerator_w == approx(r.step->power_per_accelerator_w));
  CHECK(r.footprint.it_energy_j == approx(0.228084 * r.step->power_per_accelerator_w));
}

TEST_CASE("a batch-size ramp-up costs its smaller steps' extra time a sequence, by hand") {
  // The MLP on one device, 4 microbatches of 1,000 a step (gradients accumulated inside the
  // products: no pass of their own), so a step is m x slot + the optimizer. Ramp: 1,000, 2,000 and
  // 3,000 sequences a step for 1,000 sequences each, then 4,000. A sequence costs slot / 1000 +
  // opt / b, so the ramp's extra over the full batch's rate is
  // 1000 x opt x (1/1000 + 1/2000 + 1/3000 - 3/4000) = 1.0833 opt.
  TrainingJob job = mlp_job();
  job.parallelism->global_batch = 4000;
  job.parallelism->gradient_accumulation = "fused";
  job.tokens = 4e6;
  const TrainingResult plain = simulate_training(job);
  REQUIRE(plain.ok);
  const double opt = plain.step->optimizer_s;
  REQUIRE(opt > 0);
  job.parallelism->batch_rampup = Parallelism::BatchRampup{1000, 1000, 3000};
  const TrainingResult ramped = simulate_training(job);
  const auto row = std::find_if(ramped.overheads.begin(), ramped.overheads.end(),
                                [](const OverheadRow& o) { return o.item == "batch ramp-up"; });
  REQUIRE(row != ramped.overheads.end());
  CHECK(row->time_s == approx(1000 * opt * (1.0 / 1000 + 1.0 / 2000 + 1.0 / 3000 - 3.0 / 4000)));
  // Its steps: the ramp's 3,000 sequences are 1 + 1/2 + 1/3 steps at 1,000, 2,000 and 3,000 a step
  // where the full batch's count has 3/4: 11/6 - 3/4 = 13/12 more optimizer steps.
  CHECK(row->steps == approx(13.0 / 12));
  CHECK(plain.overheads.size() == 1);
  CHECK(plain.overheads[0].steps == 0);
  // Its energy: what those steps draw (each batch's power x step time, a sequence's share), not
  // the full batch's power over the extra time.
  double energy = 0;
  const auto per_sequence_j = [&](std::int64_t b) {
    TrainingJob at = job;
    at.parallelism->global_batch = b;
    at.parallelism->batch_rampup.reset();
    const StepCost s = cost_training_step(at);
    return s.power_per_accelerator_w * s.step_s * static_cast<double>(job.accelerators) / static_cast<double>(b);
  };
  for (const std::int64_t b : {1000, 2000, 3000}) energy += 1000 * (per_sequence_j(b) - per_sequence_j(4000));
  CHECK(row->energy_j == approx(energy));
  // The same with the increment left to data x microbatch (1,000 here).
  job.parallelism->batch_rampup = Parallelism::BatchRampup{1000, 0, 3000};
  const TrainingResult derived = simulate_training(job);
  const auto again = std::find_if(derived.overheads.begin(), derived.overheads.end(),
                                  [](const OverheadRow& o) { return o.item == "batch ramp-up"; });
  REQUIRE(again != derived.overheads.end());
  CHECK(again->time_s == approx(row->time_s));
  // A long ramp (4,000 to 100,000 in 96 steps of 1,000): 24 of its batches are costed, the rest
  // interpolated in 1 / b, in which a sequence's cost is affine here: the sum exactly.
  job.parallelism->global_batch = 100000;
  job.parallelism->batch_rampup = Parallelism::BatchRampup{4000, 1000, 96000};
  const TrainingResult lng = simulate_training(job);
  const double opt_long = lng.step->optimizer_s;
  double exact = 0;
  for (int b = 4000; b < 100000; b += 1000) exact += 1000 * opt_long * (1.0 / b - 1.0 / 100000);
  const auto long_row = std::find_if(lng.overheads.begin(), lng.overheads.end(),
                                     [](const OverheadRow& o) { return o.item == "batch ramp-up"; });
  REQUIRE(long_row != lng.overheads.end());
  CHECK(long_row->time_s == approx(exact).epsilon(1e-9));
}

TEST_CASE("job overheads: checkpoints, failures, evaluation, repeated runs") {
  TrainingJob job = mlp_job();
  const TrainingResult base = simulate_training(job);
  REQUIRE(base.ok);
  const double t0 = base.step->steps * base.step->step_s;  // 0.200056 s
  REQUIRE(base.overheads.size() == 1);
  CHECK(base.overheads[0].time_s == approx(t0));

  job.overheads.checkpoint_interval_s = 0.05;
  job.overheads.checkpoint_bandwidth_bytes_per_s = 1e9;
  job.overheads.mtbf_s = 10;  // one accelerator: 0.1 failures per second of run
  job.overheads.restart_s = 0.01;
  job.overheads.evaluation_fraction = 0.1;
  job.overheads.runs = 3;
  const TrainingResult r = simulate_training(job);
  REQUIRE(r.overheads.size() == 6);
  // 4 checkpoints (floor(0.200056 / 0.05)) of 1,001,000 params x (2 + 12) B = 14.014 MB at 1 GB/s.
  const double ckpt = 4 * 1001000.0 * 14 / 1e9;
  CHECK(r.overheads[1].item == "checkpointing");
  CHECK(r.overheads[1].time_s == approx(ckpt));
  CHECK(r.overheads[2].item == "evaluation");
  CHECK(r.overheads[2].time_s == approx(0.1 * t0));
  // Failures: 1 / 10 s x (t0 + ckpt + eval); each loses half an interval and a checkpoint's write,
  // (0.05 + 0.014014) / 2 = 0.032007 s of work (Young/Daly; half the interval alone before session
  // 46), and 0.01 s of restart.
  const double failures = (t0 + ckpt + 0.1 * t0) / 10;
  CHECK(r.overheads[3].item == "lost work");
  CHECK(r.overheads[3].time_s == approx(failures * (0.05 + 1001000.0 * 14 / 1e9) / 2));
  CHECK(r.overheads[4].time_s == approx(failures * 0.01));
  // Two more runs of everything.
  const double one_run = t0 + ckpt + 0.1 * t0 + failures * (0.032007 + 0.01);
  CHECK(r.overheads[5].item == "repeated runs");
  CHECK(r.overheads[5].time_s == approx(2 * one_run));
  CHECK(r.footprint.duration_s == approx(3 * one_run));
  // Checkpoints and restarts draw static + host power (50 W here), not training power.
  CHECK(r.overheads[1].energy_j == approx(ckpt * 50));

  // Logged downtime (hangs, maintenance): held at static + host power, once a run, before repeats.
  job.overheads.downtime_s = 0.3;
  const TrainingResult d = simulate_training(job);
  REQUIRE(d.overheads.size() == 7);
  CHECK(d.overheads[5].item == "downtime");
  CHECK(d.overheads[5].time_s == approx(0.3));
  CHECK(d.overheads[5].energy_j == approx(0.3 * 50));
  CHECK(d.overheads[6].time_s == approx(2 * (one_run + 0.3)));
  CHECK(d.footprint.duration_s == approx(3 * (one_run + 0.3)));

  // Since session 44 (a review): an fp32 job's checkpoint holds 4 B weights and Adam's 8 B of
  // moments, its weights being the master copy (12 B, not 14); a checkpoint interval longer than
  // the run loses half the run a failure, not half the interval; a job that fails once or more in
  // an interval and a restart cannot run, and says why.
  job.overheads.downtime_s = 0;
  job.overheads.runs = 1;
  TrainingJob fp32 = job;
  fp32.precision = "fp32";
  const TrainingResult f32 = simulate_training(fp32);
  REQUIRE(f32.ok);
  const double t32 = f32.step->steps * f32.step->step_s;
  CHECK(f32.overheads[1].time_s == approx(std::floor(t32 / 0.05) * 1001000.0 * 12 / 1e9));
  // An 8-bit job keeps 16-bit weights (as its memory check counts them): 14 B, not 13.
  TrainingJob fp8 = job;
  fp8.precision = "fp8";
  fp8.hardware.peak_flop_per_s["fp8"] = 2e14;
  const TrainingResult f8 = simulate_training(fp8);
  REQUIRE(f8.ok);
  const double t8 = f8.step->steps * f8.step->step_s;
  CHECK(f8.overheads[1].time_s == approx(std::floor(t8 / 0.05) * 1001000.0 * 14 / 1e9));
  job.overheads.checkpoint_interval_s = 5;  // 25 times the run, and half the 10 s MTBF
  job.overheads.restart_s = 0;
  const TrainingResult long_interval = simulate_training(job);
  REQUIRE(long_interval.ok);
  const double span = t0 + 0.1 * t0;  // no checkpoint is written
  CHECK(long_interval.overheads[3].item == "lost work");
  CHECK(long_interval.overheads[3].time_s == approx(span / 10 * span / 2));
  job.overheads.checkpoint_interval_s = 9.5;
  job.overheads.restart_s = 0.5;  // a failure every 10 s on a run of 0.2 s: rare beside the run, it runs
  CHECK(simulate_training(job).ok);
  job.overheads.mtbf_s = 0.06;  // a failure every 0.06 s, each losing 0.05 s of a checkpoint interval and a 0.01 s restart
  job.overheads.checkpoint_interval_s = 0.05;
  job.overheads.restart_s = 0.01;
  const TrainingResult never = simulate_training(job);
  CHECK_FALSE(never.ok);
  CHECK(never.reason.find("fails every 0.06 s on average (mtbf / accelerators), not longer than a checkpoint interval and its write (or the "
                          "run, where shorter) and a restart (0.074 s)") !=
        std::string::npos);
  CHECK(never.overheads.empty());
  CHECK_FALSE(never.footprint.facility_energy_j > 0);
  // Since session 46 (a review): the checkpoint's write is exposed to failures too, so a failure
  // every 0.07 s, beyond the interval and the restart (0.06 s) but not their sum with the 0.014 s
  // write, cannot run; and an interval shorter than a step writes one checkpoint a step, not one an
  // interval (a 1 us interval had charged 200,000 checkpoints to a run of 1,000 steps).
  job.overheads.mtbf_s = 0.07;
  CHECK_FALSE(simulate_training(job).ok);
  job.overheads.mtbf_s = 10;
  job.overheads.checkpoint_interval_s = 1e-6;
  const TrainingResult every_step = simulate_training(job);
  REQUIRE(every_step.ok);
  CHECK(every_step.step->steps == approx(1000));
  CHECK(every_step.overheads[1].time_s == approx(1000 * 1001000.0 * 14 / 1e9));
  // ... and a failure loses half a step and a write, not half the 1 us interval.
  const double span_1us = every_step.overheads[0].time_s + every_step.overheads[1].time_s + every_step.overheads[2].time_s;
  CHECK(every_step.overheads[3].item == "lost work");
  CHECK(every_step.overheads[3].time_s == approx(span_1us / 10 * (every_step.step->step_s + 1001000.0 * 14 / 1e9) / 2));
}

#include "dlcarbon/inference_cost.hpp"

namespace {
InferenceJob conv_inference(const std::string& layout) {
  InferenceJob job;
  job.id = "i";
  job.hardware = made_up();
  job.hardware.conv_efficiency = {{"nchw", 0.25}, {"nhwc", 0.5}};
  FileGraphDesign d;
  d.ops.push_back(FileOp{"input", "embedding", -1, 0, 0, 0, 1, 300, 0, 0, {}});
  d.ops.push_back(FileOp{"conv", "conv2d", 0, 100, 64, 576, 1, 0, 1, 36864, {"input"}});
  job.design = d;
  job.batch = 10;
  job.precision = "fp32";
  job.layout = layout;
  job.inferences = 1000;
  job.datacenter.pue = 1.5;
  job.datacenter.region.intensity_kg_per_j = 0.5 / 3.6e6;
  return job;
}
}  // namespace

TEST_CASE("inference: the layout changes convolution time through calibrated efficiencies") {
  // conv at batch 10: 2 x 1000 x 64 x 576 = 73,728,000 FLOP at 1e13 fp32 x 0.25 (nchw) = 2.94912e-5 s,
  // x 0.5 (nhwc) = 1.47456e-5 s; the input (3000 values, 24,000 B) 4.8e-8 s.
  const InferenceResult nchw = cost_inference(conv_inference("nchw"));
  const InferenceResult nhwc = cost_inference(conv_inference("nhwc"));
  CHECK(nchw.batch_time_s == approx(2.94912e-5 + 4.8e-8));
  CHECK(nhwc.batch_time_s == approx(1.47456e-5 + 4.8e-8));
  // A calibrated layout's efficiency is the rate over the measured convolutions, their shapes'
  // losses in it: the products' shape terms do not apply again (since session 46, a review: the
  // measured CPU's m0 of 44 had slowed its convolutions a second time); without a calibrated
  // layout a convolution takes the GEMM ceiling with them: 0.5 / (1 + 44 / 1000) here.
  InferenceJob shaped = conv_inference("nchw");
  shaped.hardware.gemm_shape = {44, 0, 0};
  CHECK(cost_inference(shaped).batch_time_s == approx(2.94912e-5 + 4.8e-8));
  shaped.hardware.conv_efficiency.clear();
  CHECK(cost_inference(shaped).batch_time_s == approx(73728000.0 / (1e13 * 0.5 / (1 + 44.0 / 1000)) + 4.8e-8));
  // Energy of the nchw batch: conv 73,728,000 x 5e-11 (fp32 = 10 x the fp16 e_flop) + 2,707,456 B
  // x 2.5e-10 = 4.36326e-3 J dynamic (under the 250 W x 2.94912e-5 s = 7.3728e-3 J limit) + 50 W x
  // 2.94912e-5 s = 5.83782e-3 J; input 24,000 x 2.5e-10 + 50 x 4.8e-8 = 8.4e-6 J.
  CHECK(nchw.device_energy_per_batch_j == approx(5.83782e-3 + 8.4e-6).epsilon(1e-4));
  CHECK(nchw.it_energy_per_inference_j == approx((5.83782e-3 + 8.4e-6) / 10).epsilon(1e-4));
  CHECK(nchw.facility_energy_per_inference_j == approx(1.5 * nchw.it_energy_per_inference_j));
  CHECK(nchw.facility_energy_j == approx(1000 * nchw.facility_energy_per_inference_j));
  CHECK(nhwc.it_energy_per_inference_j < nchw.it_energy_per_inference_j);
  CHECK(nchw.accelerator_time_s == approx(100 * nchw.batch_time_s));
  // Whole batches: 1,005 inferences at a batch of 10 run 101 batches, one inference 1 (since session
  // 38; before, 100.5 and a tenth of one).
  InferenceJob odd = conv_inference("nchw");
  odd.inferences = 1005;
  const InferenceResult o = cost_inference(odd);
  CHECK(o.accelerator_time_s == approx(101 * nchw.batch_time_s));
  CHECK(o.facility_energy_j == approx(1010 * nchw.facility_energy_per_inference_j));
  odd.inferences = 1;
  CHECK(cost_inference(odd).it_energy_j == approx(10 * nchw.it_energy_per_inference_j));
  // Requests in nchw for nhwc kernels: one reorder of the batch input, read + write 2 x 12,000 B.
  InferenceJob reorder = conv_inference("nhwc");
  reorder.input_layout = "nchw";
  const InferenceResult r = cost_inference(reorder);
  CHECK(r.reorder_time_s == approx(24000 / 5e11));
  CHECK(r.batch_time_s == approx(nhwc.batch_time_s + 24000 / 5e11));
  // A ViT's images are reordered as a ResNet's (since session 36, from a review; before, nothing
  // moved): 10 images of 32 x 32 x 3 in fp32, read and written, 2 x 122,880 B at 5e11 B/s.
  InferenceJob images = conv_inference("nhwc");
  images.design = small_vit(1);
  images.input_layout = "nchw";
  CHECK(cost_inference(images).reorder_time_s == approx(2 * 10 * 32 * 32 * 3 * 4.0 / 5e11));
  // A graph file with no input op: the feature map its first convolution reads, 10 x 300 fp32
  // values given as its `input`, read and written (since session 41, from a review; before, nothing
  // moved); without `input`, the unfolded 100 x 576 a sample, the upper bound the op reads.
  InferenceJob file_conv = conv_inference("nhwc");
  auto& ops = std::get<FileGraphDesign>(file_conv.design).ops;
  ops.erase(ops.begin());
  ops[0].inputs.clear();
  ops[0].input = 300;
  file_conv.input_layout = "nchw";
  CHECK(cost_inference(file_conv).reorder_time_s == approx(2 * 10 * 300 * 4.0 / 5e11));
  ops[0].input = 0;
  CHECK(cost_inference(file_conv).reorder_time_s == approx(2 * 10 * 100 * 576 * 4.0 / 5e11));
}

TEST_CASE("a pipeline boundary crosses the network only where a node ends, by hand") {
  // 4 stages x data 2, one microbatch of 125 x 1000 fp16 values (250,000 B) across each boundary.
  // Stage d's ranks are 2d and 2d + 1 (pipeline outermost). On nodes of 8 every boundary is inside
  // a node; on nodes of 4 the boundary between stages 1 and 2 crosses the network (1e10 B/s
  // against 1e11): stage 1 sends its activations over it, stage 2 its gradients, each 250,000 x
  // (1 / 1e10 - 1 / 1e11) = 2.25e-5 s longer a microbatch; stages 0 and 3 do not change (before
  // session 35 every boundary took the first one's link: nothing changed).
  TrainingJob job = pipelined_mlp_job();
  job.parallelism->overlap_communication = false;
  const StepCost one_node = cost_training_step(job);
  job.hardware.node_accelerators = 4;
  const StepCost two_nodes = cost_training_step(job);
  REQUIRE(one_node.stages.size() == 4);
  REQUIRE(two_nodes.stages.size() == 4);
  const double longer = 250000 * (1 / 1e10 - 1 / 1e11);
  for (std::size_t d = 0; d < 4; ++d) {
    CHECK(two_nodes.stages[d].slot_s - one_node.stages[d].slot_s == approx(d == 1 || d == 2 ? longer : 0.0).epsilon(1e-9));
  }
  // Interleaved (2 chunks a device, 8 layers): on nodes of 4 the boundary between devices 1 and 2
  // crosses the network, and so does the wrap-around from device 3 (ranks 6-7) to device 0 (ranks
  // 0-1), over which v - 1 = 1 chunk a microbatch sends (the last chunk's output goes to the loss,
  // the first chunk's input comes from the data): devices 1 and 2 send 2 chunks' activations or
  // gradients over their crossing boundary, 2 x 2.25e-5 s a microbatch longer, devices 0 and 3
  // one, 2.25e-5 s (reviews of session 35: before, the end devices counted their inner boundary
  // twice and did not change; then their two chunks' sends over the wrap-around).
  {
    TrainingJob inter = pipelined_mlp_job();
    inter.design = MlpDesign{{1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000}, true};
    inter.parallelism->virtual_stages = 2;
    inter.parallelism->overlap_communication = false;
    const StepCost near = cost_training_step(inter);
    inter.hardware.node_accelerators = 4;
    const StepCost far = cost_training_step(inter);
    REQUIRE(far.stages.size() == 4);
    for (std::size_t d = 0; d < 4; ++d) {
      CHECK(far.stages[d].slot_s - near.stages[d].slot_s == approx((d == 1 || d == 2 ? 2 : 1) * longer).epsilon(1e-9));
    }
  }
  // Tensor x data of a node or more: every boundary crosses (nodes of 2): the middle devices
  // exchange over two, the end devices over one (since session 46, a review: Megatron-LM's first
  // device receives no gradient and the last sends no activations; before, both ends counted two).
  job.hardware.node_accelerators = 2;
  const StepCost small = cost_training_step(job);
  for (std::size_t d = 0; d < 4; ++d) {
    CHECK(small.stages[d].slot_s - one_node.stages[d].slot_s == approx((d == 1 || d == 2 ? 2 : 1) * longer).epsilon(1e-9));
  }
}

TEST_CASE("a split-K product sums its partial results in a pass of its own, by hand") {
  auto h = made_up();
  h.compute_units = 80;
  const auto d = hardware::make_device_model(h);
  // The split that gemm_shape_factor's tile takes: m = n = 128, k = 1024 -> 64x64 tiles, 4 of them
  // 4 ways (16 of 80 SMs, 0.2; 128x128's one tile 4 ways only 0.05). 128 x 1280 x 4096: 128x128
  // (10 tiles 8 ways), 128x64 (20 x 4) and 64x64 (40 x 2) all fill the 80 SMs; the fewest splits
  // win: 2. k = 256 is too short to split: 1. Without SMs nothing is split.
  CHECK(hardware::gemm_split_k(d, 128, 128, 1024) == 4);
  CHECK(hardware::gemm_split_k(d, 128, 1280, 4096) == 2);
  CHECK(hardware::gemm_split_k(d, 128, 1280, 256) == 1);
  CHECK(hardware::gemm_split_k(hardware::make_device_model(made_up()), 128, 128, 1024) == 1);
  // One row (batch-1 decoding) is a matrix-vector product: not padded to a tile's 64 rows, not
  // split (since session 45, a review: it was charged 64 rows' compute). Two rows pad: 2/64 of a
  // 64x64 tile, 1280 / 64 = 20 tiles split 4 ways on 80 SMs.
  CHECK(hardware::gemm_split_k(d, 1, 1280, 4096) == 1);
  CHECK(hardware::gemm_shape_factor(d, 1, 1280, 4096, 1) == 1);
  CHECK(hardware::gemm_shape_factor(d, 1280, 1, 4096, 1) == 1);
  CHECK(hardware::gemm_shape_factor(d, 2, 1280, 4096, 1) == approx(2.0 / 64));
  CHECK(hardware::gemm_split_k(d, 2, 1280, 4096) == 4);
  // One 1024 -> 128 product at batch 128 in fp16: 2 x 128 x 128 x 1024 = 33,554,432 FLOP at 1e14 x
  // 0.5 x 0.2 = 3.3554432e-6 s (its 557,056 B take 1.114112e-6 s); the reduction reads and writes
  // 4 x 128 x 128 fp32 partials, 8 x 4 x 16,384 = 524,288 B at 1e12 x 0.5 = 1.048576e-6 s (its
  // 3 x 16,384 additions 9.8e-9 s). Without SMs the product is memory-bound, 1.114112e-6 s.
  InferenceJob job;
  job.id = "i";
  job.hardware = h;
  FileGraphDesign g;
  g.ops.push_back(FileOp{"input", "embedding", -1, 0, 0, 0, 1, 1024, 0, 0, {}});
  g.ops.push_back(FileOp{"proj", "matmul", 0, 1, 128, 1024, 1, 0, 1, 131072, {"input"}});
  job.design = g;
  job.batch = 128;
  job.precision = "fp16";
  job.inferences = 128;
  job.datacenter.pue = 1;
  const InferenceResult with = cost_inference(job);
  job.hardware = made_up();
  const InferenceResult without = cost_inference(job);
  CHECK(with.batch_time_s - without.batch_time_s == approx(3.3554432e-6 + 1.048576e-6 - 1.114112e-6));
  // Training the same product (an MLP 1024 -> 128, 128 samples): the forward's reduction is charged
  // in its row; the backward's two products reduce over 128 (input gradient: n = 128) and over the
  // 128 samples (weight gradient): too short to split, nothing added.
  TrainingJob t = mlp_job();
  t.design = MlpDesign{{1024, 128}, true};
  t.parallelism->microbatch = 128;
  t.parallelism->global_batch = 128;
  t.hardware = h;
  const StepCost split = cost_training_step(t);
  t.hardware = made_up();
  const StepCost whole = cost_training_step(t);
  REQUIRE(split.ops.size() == whole.ops.size());
  int products = 0;
  for (std::size_t i = 0; i < split.ops.size(); ++i) {
    if (split.ops[i].kind != "matmul") continue;
    ++products;
    CHECK(split.ops[i].bytes - whole.ops[i].bytes == approx(split.ops[i].phase == "fwd" ? 524288.0 : 0.0));
    if (split.ops[i].phase == "fwd") CHECK(split.ops[i].time_s == approx(3.3554432e-6 + 1.048576e-6));
  }
  CHECK(products == 2);
}

TEST_CASE("an all-to-all on a 2-D torus is limited by the bisection") {
  // A small MoE decoder on 64 devices (data and expert parallel). On a switched network the
  // all-to-all takes the injection time; on an 8 x 8 torus, half of every chip's data crosses a
  // cut of 2 x 8 links: 8/2 = 4 times longer. On a 4,096-chip 3-D torus the 64 experts still make
  // expert-parallel groups of 64 chips, a 4^3 cube each: 0.75 x 4 = 3 (the factor is the group's,
  // not the whole torus's 0.75 x 16 = 12).
  TrainingJob job = moe_job(2, 64);
  job.hardware.node_accelerators = 64;
  const StepCost switched = cost_training_step(job);
  REQUIRE(switched.expert_comm_s > 0);
  job.hardware.node_topology = "torus-2d";
  CHECK(cost_training_step(job).expert_comm_s == approx(4 * switched.expert_comm_s));
  job.accelerators = 4096;
  job.parallelism->global_batch = 4096;
  job.hardware.node_accelerators = 4096;
  job.hardware.node_topology = "switched";
  const StepCost big = cost_training_step(job);
  job.hardware.node_topology = "torus-3d";
  CHECK(cost_training_step(job).expert_comm_s == approx(3 * big.expert_comm_s));
  // 16 chips of the 8 x 8 pod: a 4 x 4 slice without wraparound links, whose middle is crossed by
  // 4 links, not a torus's 8: the bisection's 4/2 = 2, twice over.
  TrainingJob slice = moe_job(2, 16);
  slice.accelerators = 16;
  slice.parallelism->global_batch = 16;
  slice.hardware.node_accelerators = 64;
  const StepCost flat = cost_training_step(slice);
  REQUIRE(flat.expert_comm_s > 0);
  slice.hardware.node_topology = "torus-2d";
  CHECK(cost_training_step(slice).expert_comm_s == approx(2 * 2 * flat.expert_comm_s));
  // 32 chips, a 4 x 8 slice whose 8 spans the pod and keeps its closing links: not a mesh, the
  // bisection's sqrt(32) / 2 alone.
  TrainingJob half = moe_job(2, 32);
  half.accelerators = 32;
  half.parallelism->global_batch = 32;
  half.hardware.node_accelerators = 64;
  const StepCost half_flat = cost_training_step(half);
  half.hardware.node_topology = "torus-2d";
  CHECK(cost_training_step(half).expert_comm_s == approx(std::sqrt(32.0) / 2 * half_flat.expert_comm_s));
}

TEST_CASE("experts held on several ranks move under ZeRO as the dense parameters do") {
  // The small two-layer MoE decoder (4 experts, top-1) on 4 data ranks in one 8-GPU node at
  // 1e11 B/s, one sequence each, nothing overlapped. With expert parallelism over all 4 ranks each
  // expert is on one rank: nothing to reduce. Over 2 (`expert: 2`) each is on 2 ranks, which hold
  // 2 experts of 2 x 33,088 parameters a layer (64 x 256 + 256 x 64 weights, 256 + 64 biases):
  // 132,352 parameters, 264,704 B in fp16. ZeRO-3 shards them over the pair: per layer (2, and
  // one unit for the embeddings and head: 3 collectives a pass) a reduce-scatter of the gradients
  // and two gathers of the weights, on a ring of 2 with a 20 us start-up.
  TrainingJob job = moe_job(2, 4);
  job.accelerators = 4;
  job.parallelism->global_batch = 4;
  job.parallelism->zero_stage = 3;
  job.parallelism->overlap_communication = false;
  const StepCost one_copy = cost_training_step(job);
  REQUIRE(one_copy.fits);
  job.parallelism->expert = 2;
  const StepCost two_copies = cost_training_step(job);
  REQUIRE(two_copies.fits);
  const comm::Group pair{2, 1, 1e11, false};
  const double expected = comm::collectives_s(comm::Collective::reduce_scatter, 264704, 3, pair) +
                          2 * comm::collectives_s(comm::Collective::all_gather, 264704, 3, pair);
  CHECK(two_copies.data_comm_s - one_copy.data_comm_s == approx(expected));
  // ZeRO-0: one all-reduce of the gradients a step, in one bucket.
  job.parallelism->zero_stage = 0;
  const StepCost plain = cost_training_step(job);
  job.parallelism->expert = 4;
  CHECK(plain.data_comm_s - cost_training_step(job).data_comm_s ==
        approx(comm::collectives_s(comm::Collective::all_reduce, 264704, 1, pair)));
}

TEST_CASE("what crosses a pipeline stage is a layer's input: an encoder-decoder's decoder also carries the encoder's output") {
  // A 2 + 2 layer encoder-decoder (d 64, 32 source and 8 target tokens, fp16), one sequence a
  // microbatch, on 2 pipeline stages in one node at 1e11 B/s: the encoder's layers take 32 x 64
  // values, the decoder's 8 x 64 and the encoder's output, 32 x 64: (8 + 32) x 64 x 2 B = 5,120 B,
  // the largest, which each microbatch sends forward as its gradient comes back, at once over the
  // full-duplex link (Megatron-LM's send_forward_recv_backward): 5,120 / 1e11 s (twice that before
  // session 46; before session 33, the decoder embedding's 1,024 B for every layer).
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(2);
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = 2;
  d.decoder_layers = 2;
  d.target_seq_len = 8;
  job.design = d;
  on_two_stages(job, 1, 4);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  // The busiest stage's sends over its 4 microbatches.
  CHECK(c.pipeline_comm_s == approx(4 * 5120 / 1e11));
}

namespace {
// A 2-layer LSTM (input 16, hidden 32, projection 24) over 10 steps.
LstmDesign small_lstm() {
  LstmDesign d;
  d.layers = 2;
  d.input = 16;
  d.hidden = 32;
  d.projection = 24;
  d.seq_len = 10;
  return d;
}
}  // namespace

TEST_CASE("an LSTM's pipeline stages send the whole sequence a layer reads, not its last step") {
  // A 2-layer LSTM (input 16, hidden 32, projection 24) over 10 steps, one sequence a microbatch,
  // fp16, on 2 pipeline stages in one node at 1e11 B/s, 4 microbatches. Layer 1 reads layer 0's
  // 10 steps of 24 values (240 values x 2 B = 480 B); with separate directions, both directions'
  // (960 B); a bidirectional layer's concat holds both as well. Each microbatch sends it forward
  // as its gradient comes back, one exchange an end device (since session 46: two before; before
  // session 44, one step's 48 B).
  TrainingJob job = mlp_job();
  LstmDesign d = small_lstm();
  job.design = d;
  on_two_stages(job, 1, 4);
  const StepCost one = cost_training_step(job);
  REQUIRE(one.fits);
  CHECK(one.pipeline_comm_s == approx(4 * 480 / 1e11));
  d.bidirectional = true;
  job.design = d;
  const StepCost both = cost_training_step(job);
  REQUIRE(both.fits);
  CHECK(both.pipeline_comm_s == approx(4 * 960 / 1e11));
  d.separate_directions = true;
  job.design = d;
  const StepCost separate = cost_training_step(job);
  REQUIRE(separate.fits);
  CHECK(separate.pipeline_comm_s == approx(4 * 960 / 1e11));
}

TEST_CASE("full recomputation keeps an LSTM layer's whole input sequence") {
  // The same one-direction LSTM on one device, one sequence, full recomputation: it keeps each
  // layer's input (the lookup's 10 x 16 values, then layer 0's 10 x 24), the ops outside the
  // layers' own, and, while a layer's backward runs, a layer's recomputed activations (the two
  // layers' average, the model taking a device's layers as equal) less its input (before session 44, layer 1's checkpoint was one step's 24 values).
  LstmDesign d = small_lstm();
  TrainingJob job = recomputed_one_sequence(d);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto g = graph::build_graph(d, graph::GraphShape{1, 2});  // one sequence, 2-byte values
  double outside = 0;
  std::vector<double> layer(2, 0.0);
  for (const auto& op : g.ops()) (op.layer < 0 ? outside : layer.at(static_cast<std::size_t>(op.layer))) += op.saved_bytes;
  const double in0 = 10 * 16 * 2.0, in1 = 10 * 24 * 2.0;
  CHECK(c.stages.at(0).activation_bytes == approx(in0 + in1 + outside + (layer[0] + layer[1] - in0 - in1) / 2));
}

TEST_CASE("a ring on a torus uses the links among its members: one axis, a plane, or the whole slice") {
  // 64 chips of a 4 x 4 x 4 torus (the pod): a tensor group of 4 fits along one axis (2 of the 6
  // links a chip: a third of its bandwidth), a data-parallel group of 16 in a plane (4 of 6), the
  // whole job spans every axis. The same groups on a switched network at a third and two thirds of
  // the bandwidth cost the same.
  TrainingJob job = mlp_job();
  job.design = small_decoder(2);
  job.accelerators = 64;
  job.hardware.node_accelerators = 64;
  job.parallelism->tensor = 4;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 16;
  job.parallelism->overlap_communication = false;  // the data-parallel collectives whole
  job.hardware.node_topology = "torus-3d";
  const StepCost torus = cost_training_step(job);
  REQUIRE(torus.fits);
  REQUIRE(torus.tensor_comm_s > 0);
  REQUIRE(torus.data_comm_s > 0);
  job.hardware.node_topology = "switched";
  job.hardware.intra_node_bandwidth = 1e11 / 3;
  CHECK(cost_training_step(job).tensor_comm_s == approx(torus.tensor_comm_s));
  job.hardware.intra_node_bandwidth = 2e11 / 3;
  CHECK(cost_training_step(job).data_comm_s == approx(torus.data_comm_s));
  // The whole job in one data-parallel group: every link, as on the switched network.
  job.parallelism->tensor = 1;
  job.parallelism->global_batch = 64;
  job.hardware.intra_node_bandwidth = 1e11;
  const StepCost switched = cost_training_step(job);
  job.hardware.node_topology = "torus-3d";
  CHECK(cost_training_step(job).data_comm_s == approx(switched.data_comm_s));
  // The same 64 chips as a slice of a 4,096-chip pod (16 a side): the slice is still 4 x 4 x 4, so
  // the groups are laid on it as above (the pod's side would have put the data group on one axis).
  job.parallelism->tensor = 4;
  job.parallelism->global_batch = 16;
  job.hardware.node_topology = "torus-3d";
  job.hardware.node_accelerators = 4096;
  const StepCost in_pod = cost_training_step(job);
  CHECK(in_pod.tensor_comm_s == approx(torus.tensor_comm_s));
  CHECK(in_pod.data_comm_s == approx(torus.data_comm_s));
  job.hardware.node_accelerators = 64;
  // On a 2-D torus of 8 x 8, a group of 8 along one axis closes its ring with the axis's
  // wraparound: the axis's two links, half the bandwidth. A group of 4 is a line along it (since
  // session 33; before, it had the axis's two links too): half of that.
  job.parallelism->tensor = 8;
  job.parallelism->global_batch = 8;
  job.hardware.node_topology = "torus-2d";
  const StepCost axis = cost_training_step(job);
  job.hardware.node_topology = "switched";
  job.hardware.intra_node_bandwidth = 0.5e11;
  CHECK(cost_training_step(job).tensor_comm_s == approx(axis.tensor_comm_s));
  job.parallelism->tensor = 4;
  job.parallelism->global_batch = 16;
  job.hardware.node_topology = "torus-2d";
  job.hardware.intra_node_bandwidth = 1e11;
  const StepCost flat = cost_training_step(job);
  job.hardware.node_topology = "switched";
  job.hardware.intra_node_bandwidth = 0.25e11;
  CHECK(cost_training_step(job).tensor_comm_s == approx(flat.tensor_comm_s));
}

TEST_CASE("a torus slice smaller than the pod has no wraparound links: a ring along an open axis at half the bandwidth") {
  // A 2-D pod of 8 x 8 chips at 1e11 B/s a chip. A 16-chip job is a 4 x 4 slice without wraparound
  // links (lingvo's GetNonPod2dMesh): its data-parallel group over the whole slice runs at half the
  // bandwidth, as a switched network at 0.5e11 B/s. A 32-chip job is a 4 x 8 slice whose long axis
  // spans the pod and keeps its closing links: a tensor group of 4 along the open 4 axis has half
  // of the axis's half (0.25e11), a data group of 8 along the closed 8 axis the axis's half
  // (0.5e11), a group over the whole slice the mean of the axes' (0.75e11). A 3-D slice of 32 chips
  // (not whole 4 x 4 x 4 cubes) is a mesh: its whole-slice group at half.
  TrainingJob job = mlp_job();
  job.design = small_decoder(2);
  job.hardware.node_accelerators = 64;
  job.parallelism->microbatch = 1;
  job.parallelism->overlap_communication = false;  // the data-parallel collectives whole
  const auto same_as_switched = [&](double bandwidth, bool tensor) {
    const StepCost torus = cost_training_step(job);
    REQUIRE(torus.fits);
    const std::string topology = job.hardware.node_topology;
    const auto intra = job.hardware.intra_node_bandwidth;
    job.hardware.node_topology = "switched";
    job.hardware.intra_node_bandwidth = bandwidth;
    const StepCost flat = cost_training_step(job);
    job.hardware.node_topology = topology;
    job.hardware.intra_node_bandwidth = intra;
    REQUIRE((tensor ? torus.tensor_comm_s : torus.data_comm_s) > 0);
    CHECK((tensor ? flat.tensor_comm_s : flat.data_comm_s) == approx(tensor ? torus.tensor_comm_s : torus.data_comm_s));
  };
  job.hardware.intra_node_bandwidth = 1e11;
  job.hardware.node_topology = "torus-2d";
  job.accelerators = 16;
  job.parallelism->tensor = 1;
  job.parallelism->global_batch = 16;
  same_as_switched(0.5e11, false);
  job.accelerators = 32;
  job.parallelism->global_batch = 32;
  same_as_switched(0.75e11, false);
  job.parallelism->tensor = 4;
  job.parallelism->global_batch = 8;
  same_as_switched(0.25e11, true);
  same_as_switched(0.5e11, false);
  // The whole pod closes every ring: the whole-pod group at the chip's bandwidth.
  job.accelerators = 64;
  job.parallelism->tensor = 1;
  job.parallelism->global_batch = 64;
  same_as_switched(1e11, false);
  job.hardware.node_topology = "torus-3d";
  job.hardware.node_accelerators = 4096;
  job.accelerators = 32;
  job.parallelism->global_batch = 32;
  same_as_switched(0.5e11, false);
  job.accelerators = 64;
  job.parallelism->global_batch = 64;
  same_as_switched(1e11, false);
  // A 3-D pod of 32 chips, whole: its rings close.
  job.hardware.node_accelerators = 32;
  job.accelerators = 32;
  job.parallelism->global_batch = 32;
  same_as_switched(1e11, false);
}

namespace {
// A one-layer decoder, d_model 64, 32 tokens, fp16, RMSNorm, on 2 devices in one tensor group.
// The one-layer decoder's tensor-parallel collectives outside its layer (32 tokens, d_model 64,
// fp16, a pair at 1e11 B/s and 20 us a start-up): the vocabulary-parallel embedding's output
// all-reduced forward and the head's input gradient backward (4,096 B each, 2.004096e-5 s), and
// the cross entropy's three all-reduces of 32 fp32 values.
constexpr double kOutsideLayers = 2 * 2.004096e-5 + 3 * (128 / 1e11 + 20e-6);

// `edit` changes the design further (experts, dropout, ...).
TrainingJob tensor_pair_job(bool parallel_block, const std::function<void(TransformerDesign&)>& edit = {}) {
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.rms_norm = true;
  d.parallel_block = parallel_block;
  if (edit) edit(d);
  job.design = d;
  job.accelerators = 2;
  job.parallelism->tensor = 2;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  return job;
}
}  // namespace

TEST_CASE("full recomputation keeps the final norm once, not also in the layers' average, by hand") {
  // Two decoder layers (d 256, 4 heads, FFN 1,024, vocabulary 1,024), 8 sequences of 128 in bf16,
  // full recomputation, one device: U = 1,024 tokens x 256 x 2 B = 524,288 B. It keeps each layer's
  // input (2 U), the final norm's input (U), the head's input and the loss's (9 U: U and the fp32
  // softmax of 1,024 x 1,024 logits, 4 MB = 8 U) and, while a layer's backward runs, that layer's
  // recomputed activations less its input (17 U): 29 U = 15,204,352 B, the review's count by hand
  // (since session 43; before, the final norm was also averaged into the layers': U / 2 more;
  // 25 U before session 46 kept the softmax in bf16).
  TransformerDesign d = small_decoder(2);
  d.d_model = 256;
  d.d_ff = 1024;
  d.vocab = 1024;
  d.seq_len = 128;
  TrainingJob job = transformer_job(d, 8);
  in_bf16(job);
  job.parallelism->recompute = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.stages.at(0).activation_bytes == approx(15204352.0));
}

TEST_CASE("the first pipeline device keeps the embeddings' tensors for each microbatch in flight, by hand") {
  // BERT-like encoder (8 layers, d 1,024, 16 heads, FFN 4,096, 512 positions, dropout 0.1, bf16,
  // Megatron-LM's fused softmax) on 4 pipeline devices, 8 microbatches of one sequence. Device 0
  // runs 4 forwards before its first backward and keeps, for each: its 2 layers' 34 sbh + 5 a s^2 b
  // (Korthikanti et al. 2022) = 38,797,312 B each, and the embeddings' norm input (2 sbh B) and
  // dropout mask (sbh) = 1,572,864 B: 4 x (2 x 38,797,312 + 1,572,864) = 316,669,952 B, the
  // review's count by hand (since session 46; before, the embeddings' once: 311,951,360).
  TransformerDesign d = small_decoder(0);
  d.arch = TransformerDesign::Arch::encoder;
  d.encoder_layers = 8;
  d.d_model = 1024;
  d.heads = 16;
  d.d_ff = 4096;
  d.vocab = 30528;
  d.seq_len = 512;
  d.dropout = 0.1;
  TrainingJob job = transformer_job(d, 1);
  in_bf16(job);
  job.fusion = "softmax";
  job.accelerators = 4;
  job.parallelism->pipeline = 4;
  job.parallelism->global_batch = 8;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.stages.at(0).activation_bytes == approx(316669952.0));
  // The last device's head and loss run their backward at once: one microbatch's, as before.
  CHECK(c.stages.at(3).activation_bytes < c.stages.at(2).activation_bytes);
}

TEST_CASE("every tensor rank holds norms, learned positions and row-parallel biases whole, by hand") {
  // A decoder of 4 layers (d 1,024, 16 heads, FFN 4,096, vocabulary 32,000, 1,024 learned
  // positions, biases) on a tensor pair, bf16 with Adam: 16 B a parameter held. Of its P =
  // 84,203,520 parameters, R = 1,024 x 1,024 positions + the final norm's 2,048 + 4 layers x (two
  // norms' 2 x 2,048 + the attention output's and the FFN down projection's biases, 2 x 1,024) =
  // 1,075,200 are on both ranks whole: 16 (P - R) / 2 + 16 R = 682,229,760 B, the review's count by
  // hand (since session 46; before, 16 P / 2 = 673,628,160).
  TransformerDesign d = small_decoder(4);
  d.d_model = 1024;
  d.heads = 16;
  d.d_ff = 4096;
  d.vocab = 32000;
  d.seq_len = 1024;
  d.dropout = 0.1;
  TrainingJob job = transformer_job(d, 1);
  in_bf16(job);
  job.accelerators = 2;
  job.parallelism->tensor = 2;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(graph::build_graph(d, graph::GraphShape{1, 2, true}).parameters() == approx(84203520.0));
  CHECK(c.memory_per_device_bytes - c.stages.at(0).activation_bytes == approx(682229760.0));
}

TEST_CASE("recompute: elementwise keeps a gated activation's inputs, not its output, by hand") {
  // One LLaMA-style layer (d 1,024, 16 heads, SwiGLU FFN 2,816, rotary, RMSNorm, no biases,
  // FlashAttention-2, bf16, 1,024 tokens): the layer keeps the qkv's input (2 sbh B), the attention's
  // q, k and v (6 sbh) and output (2 sbh) and its statistics (4 B x 16 heads x 1,024), the FFN up
  // projection's input (2 sbh) and the gate and up halves the activation is recomputed from
  // (2 x 2 x 1,024 x 2,816 B); the down projection's input is recomputed: 24,182,784 B a layer, the
  // review's count by hand (since session 46; before, the activation's output, 18,415,616 B, from
  // which a gated unit's backward cannot run). Measured as two layers less one.
  const auto layer_bytes = [](std::int64_t layers) {
    TransformerDesign d = small_decoder(layers);
    d.d_model = 1024;
    d.heads = 16;
    d.d_ff = 2816;
    d.gated_ffn = true;
    d.vocab = 32000;
    d.seq_len = 1024;
    d.position = TransformerDesign::Position::rotary;
    d.rms_norm = true;
    d.biases = false;
    d.tied_embeddings = false;
    TrainingJob job = transformer_job(d, 1);
    in_bf16(job);
    job.fusion = "flash2";
    job.parallelism->recompute_elementwise = true;
    return cost_training_step(job).stages.at(0).activation_bytes;
  };
  CHECK(layer_bytes(2) - layer_bytes(1) == approx(24182784.0));
}

TEST_CASE("a ResNet block's input shared with the residual before it is kept again across a pipeline stage") {
  // Two basic blocks (16 x 16 images, width 4) on 2 pipeline stages, fp16, 2 images a microbatch.
  // Within a device the second block's first convolution leaves its input to the residual's ReLU
  // before it; across the stage boundary the receiving device keeps the tensor it was sent as
  // well: device 1 keeps its own ops' tensors plus 2 x 4 x 4 x 4 values x 2 B = 256 B (since
  // session 43, a review: counted on neither side's device 1).
  TrainingJob job = mlp_job();
  const ResNetDesign d{{1, 1}, false, 16, 3, 4, 10};  // blocks, bottleneck, image, channels, width, classes
  job.design = d;
  on_two_stages(job, 2, 4);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto g = graph::build_graph(d, graph::GraphShape{2, 2, true});
  double own = 0, shared = 0;
  for (const auto& op : g.ops()) {
    // The second block, the pool and the classifier (the head, layer -1 since session 45).
    if (op.layer >= 2 || op.name == "avgpool" || op.name == "fc") own += op.saved_bytes;
    if (op.name == "stage2.0.conv1") shared = op.shared_input_bytes;
  }
  CHECK(shared == 2 * 4 * 4 * 4 * 2.0);
  CHECK(c.stages.at(1).activation_bytes == approx(own + shared));
}

TEST_CASE("dropout masks are kept wherever a dropout runs, fused or not") {
  // One decoder layer with dropout, 8 sequences of 32: unfused, each dropout is a kernel keeping
  // its mask (a byte an element); fused into the op before it (the embedding's) or into the
  // residual add, that op keeps it. The same masks, the same bytes: `none` and `softmax` (whose
  // attention dropout is a kernel of its own either way) keep the same activations (since session
  // 43, a review: the fused embedding dropout's mask, 8 x 32 x 64 B, had not been counted).
  TransformerDesign d = small_decoder(1);
  d.dropout = 0.1;
  TrainingJob job = transformer_job(d, 8);
  job.fusion = "none";
  const StepCost none = cost_training_step(job);
  job.fusion = "softmax";
  const StepCost fused = cost_training_step(job);
  REQUIRE(none.fits);
  REQUIRE(fused.fits);
  CHECK(fused.stages.at(0).activation_bytes == approx(none.stages.at(0).activation_bytes));
  // On a tensor pair too: the embeddings' mask is whole on both ranks (their output is, after the
  // all-reduce), not split with the vocabulary-parallel table (a review of session 43).
  job.accelerators = 2;
  job.parallelism->tensor = 2;
  const StepCost fused_pair = cost_training_step(job);
  job.fusion = "none";
  const StepCost none_pair = cost_training_step(job);
  CHECK(fused_pair.stages.at(0).activation_bytes == approx(none_pair.stages.at(0).activation_bytes));
}

TEST_CASE("a tensor-parallel product moves its own rank's operands, by hand") {
  // The one-layer decoder (32 tokens, d_model 64, FFN 256) on a tensor pair, fp16 (since session 43,
  // a review: a rank's bytes had been the whole product's over 2). Column-parallel products read the
  // whole input and write their n / 2 columns; row-parallel ones read their k / 2 and write the whole
  // partial output, all-reduced after.
  const TrainingJob job = tensor_pair_job(false);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto forward_bytes = [&](const std::string& name) {
    for (const auto& op : c.ops) {
      if (op.op == name && op.phase == "fwd") return op.bytes;
    }
    return -1.0;
  };
  // qkv: 32 x 64 in, 64 x 96 weights, 32 x 96 out: 2 x 11,264 = 22,528 B (20,480 before).
  CHECK(forward_bytes("decoder.0.attn.qkv") == approx(22528));
  // out: 32 x 32 in, 32 x 64 weights, 32 x 64 out: 2 x 5,120 = 10,240 B (8,192 before).
  CHECK(forward_bytes("decoder.0.attn.out") == approx(10240));
  // up: 32 x 64, 64 x 128, 32 x 128; down: 32 x 128, 128 x 64, 32 x 64: 2 x 14,336 = 28,672 B each.
  CHECK(forward_bytes("decoder.0.ffn.up") == approx(28672));
  CHECK(forward_bytes("decoder.0.ffn.down") == approx(28672));
}

TEST_CASE("a bias's gradient is a reduction of the output's gradient, by hand") {
  // The one-layer decoder (32 tokens, d_model 64, biases) on a tensor pair, fp16. The backward of a
  // biased product moves twice its forward's bytes plus the bias's gradient: the device's output
  // gradient read (m x n values) and n values written, 2 B each.
  TrainingJob job = tensor_pair_job(false);
  const auto extra = [](const StepCost& c, const std::string& name) {
    double f = -1, b = -1;
    for (const auto& op : c.ops) {
      if (op.op == name && op.phase == "fwd") f = op.bytes;
      if (op.op == name && op.phase == "bwd") b = op.bytes;
    }
    REQUIRE(f > 0);
    return b - 2 * f;
  };
  StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  // Column-parallel QKV: 192 / 2 = 96 columns a rank: 2 x 96 x (32 + 1) = 6,336 B.
  CHECK(extra(c, "decoder.0.attn.qkv") == approx(6336));
  // Row-parallel output: the bias is added after the all-reduce, on all 64 columns of every rank:
  // 2 x 64 x 33 = 4,224 B; under sequence parallelism on the rank's 16 tokens: 2 x 64 x 17 = 2,176 B.
  CHECK(extra(c, "decoder.0.attn.out") == approx(4224));
  job.parallelism->sequence_parallel = true;
  CHECK(extra(cost_training_step(job), "decoder.0.attn.out") == approx(2176));
  // Without biases, or on a TPU (XLA fuses the reduction into the gradient's producer): nothing.
  job.parallelism->sequence_parallel = false;
  job.hardware.kind = "tpu";
  CHECK(extra(cost_training_step(job), "decoder.0.attn.qkv") == 0);
  job.hardware.kind = "gpu";
  auto d = std::get<TransformerDesign>(job.design);
  d.biases = false;
  job.design = d;
  CHECK(extra(cost_training_step(job), "decoder.0.attn.qkv") == 0);
  // An expert's down projection split over the tensor group is row-parallel as the dense one is
  // (Megatron-Core; since session 46, a review: it had kept n / t columns, reading a whole input it
  // does not hold): its bias's gradient covers its 64 columns over its 32 routed rows, 2 x 64 x 33 =
  // 4,224 B, and under sequence parallelism the rank's 16 rows, 2,176 B.
  TrainingJob moe = moe_job(1, 4);
  moe.parallelism->tensor = 2;
  moe.parallelism->global_batch = 32;
  const StepCost plain_moe = cost_training_step(moe);
  REQUIRE(plain_moe.fits);
  moe.parallelism->sequence_parallel = true;
  const StepCost sp_moe = cost_training_step(moe);
  REQUIRE(sp_moe.fits);
  CHECK(extra(plain_moe, "decoder.0.ffn.experts.down") == approx(4224));
  CHECK(extra(sp_moe, "decoder.0.ffn.experts.down") == approx(2176));
  // Each rank's expert product moves its own operands (since session 43, a review): the up
  // projection of its one expert reads its m routed slots whole (m x 64), its 64 x 128 weights,
  // and writes m x 128; m from the op's FLOPs, 2 x m x 64 x 128.
  int found = 0;
  for (const auto& op : plain_moe.ops) {
    if (op.op != "decoder.0.ffn.experts.up" || op.phase != "fwd") continue;
    const double m = op.flops / (2 * 64 * 128);
    CHECK(op.bytes == approx(2 * (m * 64 + 64 * 128 + m * 128)));
    ++found;
  }
  CHECK(found == 1);
}

TEST_CASE("tensor parallelism repeats the full-width ops unless sequence parallelism splits them") {
  TrainingJob job = tensor_pair_job(false);
  const auto fwd = [](const StepCost& c, const std::string& name) {
    for (const auto& op : c.ops) {
      if (op.op == name && op.phase == "fwd") return op;
    }
    FAIL("no op " << name);
    return c.ops.front();
  };
  // By hand: the attention's RMSNorm reads and writes 32 x 64 values and its 64 weights, 2 B each:
  // 2 x (2 x 2,048 + 64) = 8,320 B, 5 FLOPs a value = 10,240 FLOPs; the residual add reads two
  // and writes one: 3 x 2,048 x 2 = 12,288 B. Every rank of the group repeats them in full.
  StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(fwd(c, "decoder.0.attn.norm").bytes == approx(8320));
  CHECK(fwd(c, "decoder.0.attn.norm").flops == approx(10240));
  CHECK(fwd(c, "decoder.0.attn.residual").bytes == approx(12288));
  // The column-parallel QKV product is split: 2 x 32 x 64 x 192 / 2 FLOPs.
  CHECK(fwd(c, "decoder.0.attn.qkv").flops == approx(2.0 * 32 * 64 * 192 / 2));
  // The attention's and the FFN's outputs (32 x 64 x 2 B = 4,096 B) are all-reduced forward and
  // backward: 4 x (2 x 1/2 x 4,096 B / 1e11 B/s + 20 us) = 8.016384e-5 s. Outside the layer the
  // vocabulary-parallel embedding's output (4,096 B) forward and the head's input gradient (4,096 B)
  // backward, 2 x 2.004096e-5 s, and the cross entropy's three all-reduces of 32 fp32 values,
  // 3 x (128 B / 1e11 B/s + 20 us).
  const double outside = kOutsideLayers;
  CHECK(c.tensor_comm_s == approx(8.016384e-5 + outside));
  // Sequence parallelism splits them along the sequence, and each all-reduce becomes a
  // reduce-scatter and an all-gather: the same bytes, two start-ups (each 1/2 x 4,096 B / 1e11 B/s
  // + 20 us = 2.002048e-5 s). The two row-parallel outputs are reduce-scattered forward and their
  // gradients gathered backward (2 each); the three column-parallel products reading a
  // sequence-split norm (QKV, the FFN's up, the head) gather it forward and, keeping only its
  // shard, again backward, and reduce-scatter their input gradients (3 each; Korthikanti et al.
  // 2022, Sec. 4.2.2; since session 48, before which the second gather was not charged and the
  // head's was counted twice): 13 collectives, as Megatron-LM runs them. The embedding's output is
  // reduce-scattered forward and gathered backward (2).
  const double one = 4096 / 2.0 / 1e11 + 20e-6;
  const double outside_sp = 2 * one + 3 * (128 / 1e11 + 20e-6);
  job.parallelism->sequence_parallel = true;
  c = cost_training_step(job);
  CHECK(fwd(c, "decoder.0.attn.norm").bytes == approx(8320 / 2));
  CHECK(fwd(c, "decoder.0.attn.residual").bytes == approx(12288 / 2));
  CHECK(c.tensor_comm_s == approx(13 * one + outside_sp));
  // Megatron-LM's backward (sequence_parallel_backward: overlapped) runs each product's second
  // gather under its input-gradient GEMM and its reduce-scatter under its weight-gradient GEMM: what
  // they hide is at most those products' backward time (on a GPU it slows them by 0.189 / 1.189 of
  // it; the made-up device is not one).
  job.parallelism->sequence_parallel_backward = "overlapped";
  const StepCost over = cost_training_step(job);
  double backward_s = 0;
  for (const char* name : {"decoder.0.attn.qkv", "decoder.0.ffn.up", "lm_head"}) backward_s += op_row(over, name, "bwd").time_s;
  const double hidden = c.tensor_comm_s - over.tensor_comm_s;
  CHECK(hidden > 0);
  CHECK(hidden <= backward_s * (1 + 1e-12));
  CHECK(over.tensor_comm_s >= 7 * one + outside_sp);
  job.parallelism->sequence_parallel_backward = "exposed";
  // Recomputation runs the layers' forward pass, and its communication, again: the two outputs'
  // reduce-scatters and the two layer products' gathers, 17 where there were 13 (not the
  // embedding's, the head's or the loss's).
  job.parallelism->recompute = true;
  CHECK(cost_training_step(job).tensor_comm_s == approx(17 * one + outside_sp));
}

TEST_CASE("a chip whose cores have memory of their own updates a copy of its parameters on each") {
  // TPU v2 and v3: two cores a chip, each a device with its own memory. Data parallel, each core
  // holds and updates its own copy: the optimizer moves twice the bytes a chip, at the chip's
  // bandwidth, and the parameters, gradients and states take twice the memory. Tensor-parallel
  // cores may hold two shards instead: one copy.
  TrainingJob job = tensor_pair_job(false);
  job.hardware.kind = "tpu";
  job.parallelism->tensor = 1;
  job.parallelism->data = 2;
  job.parallelism->global_batch = 2;
  const StepCost one = cost_training_step(job);
  job.hardware.separate_cores = 2;
  const StepCost two = cost_training_step(job);
  REQUIRE(two.fits);
  CHECK(two.optimizer_s == approx(2 * one.optimizer_s));
  CHECK(two.memory_per_device_bytes > one.memory_per_device_bytes);
  CHECK(two.compute_s == approx(one.compute_s));
  job.parallelism->tensor = 2;
  job.parallelism->data = 1;
  job.parallelism->global_batch = 1;
  const StepCost split = cost_training_step(job);
  job.hardware.separate_cores = 1;
  CHECK(split.optimizer_s == approx(cost_training_step(job).optimizer_s));
  // Hardware without a memory bandwidth cannot be costed: a reason, not an infinite step.
  job.hardware.memory_bandwidth_bytes_per_s.reset();
  const StepCost none = cost_training_step(job);
  CHECK_FALSE(none.fits);
  CHECK(none.reason.find("no memory_bandwidth") != std::string::npos);
}

TEST_CASE("an unrolled recurrence sums its steps' weight gradients in passes of their own") {
  // A one-layer LSTM (input 2, hidden 8) over 3 steps, batch 4, fp32, unfused (TensorFlow 1.x):
  // steps 1 and 2 add their gate weights' gradient into the sum, (2 + 8 + 1) x 32 values x 4 B,
  // read twice and written once: 4,224 B more in their backward than step 0's, and that time.
  TrainingJob job = mlp_job();
  LstmDesign d;
  d.layers = 1;
  d.input = 2;
  d.hidden = 8;
  d.seq_len = 3;
  job.design = d;
  job.precision = "fp32";
  job.fusion = "none";
  job.parallelism->microbatch = 4;
  job.parallelism->global_batch = 4;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto bwd = [&](const std::string& name) {
    for (const auto& r : c.ops) {
      if (r.op == name && r.phase == "bwd") return r;
    }
    FAIL("no op " << name);
    return c.ops.front();
  };
  CHECK(bwd("lstm.0.forward.step1.gates").bytes - bwd("lstm.0.forward.step0.gates").bytes == approx(4224));
  CHECK(bwd("lstm.0.forward.step2.gates").time_s > bwd("lstm.0.forward.step0.gates").time_s);
}

TEST_CASE("the last gradient bucket is exposed after the backward and hides nothing") {
  // Data parallelism without ZeRO on 8 GPUs: four 2000 x 2000 layers, 16M fp16 gradients (32 MB),
  // two buckets of at most 25 MB. Overlapped behind a long backward, the last bucket's all-reduce
  // starts when the backward ends: exposed in full, it slows nothing; the rest runs under the
  // backward and slows it by its time x 0.189 / 1.189 (Lee et al. 2025). Before session 27 the
  // last bucket's time counted against that slowdown.
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{2000, 2000, 2000, 2000, 2000}, true};
  job.hardware.kind = "gpu";
  job.hardware.gemm_efficiency = 0.005;  // a backward far longer than the all-reduce
  job.accelerators = 8;
  job.parallelism->global_batch = 8000;
  job.parallelism->overlap_communication = false;
  const StepCost serial = cost_training_step(job);
  job.parallelism->overlap_communication = true;
  const StepCost overlapped = cost_training_step(job);
  REQUIRE(overlapped.fits);
  const double all = serial.data_comm_s, last = overlapped.data_comm_s;
  REQUIRE(last > 0);
  REQUIRE(last < all);
  CHECK(overlapped.contention_s == approx((all - last) * 0.189 / 1.189));
  // ZeRO-1 reduce-scatters the gradients behind the backward and gathers the updated parameters
  // after the optimizer, behind the next step's first forward: what is left exposed is the last
  // bucket's reduce-scatter (NCCL's ring over the node's 8 GPUs).
  const comm::Group node{8, 1, 1e11, true};
  CHECK(last == approx(comm::collective_s(comm::Collective::all_reduce, 25e6, node)));
  job.parallelism->zero_stage = 1;
  const StepCost zero1 = cost_training_step(job);
  CHECK(zero1.data_comm_s == approx(comm::collective_s(comm::Collective::reduce_scatter, 25e6, node)));
}

TEST_CASE("the gradient bucket: PyTorch DDP's 25 MB, a given size, or Megatron-Core's rule") {
  // The job above, nothing overlapped: its 32 MB of fp16 gradients (16,008,000 values with the
  // biases) all-reduced over the node's 8 GPUs in 2 buckets of 25 MB by default, 4 of 10 MB, or
  // under Megatron-Core's rule one bucket of all (without overlap it makes no buckets; with it,
  // max(4e7, 1e6 x 8) parameters x 2 B = 80 MB). Interleaved over 2 pipeline stages x 2 chunks and
  // overlapped, Megatron-Core buckets a device's first chunk alone and reduces the second whole:
  // 1 + ceil(half / 80 MB) collectives, one more start-up than a plain 25 MB bucket's one.
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{2000, 2000, 2000, 2000, 2000}, true};
  job.hardware.kind = "gpu";
  job.accelerators = 8;
  job.parallelism->global_batch = 8000;
  job.parallelism->overlap_communication = false;
  const comm::Group node{8, 1, 1e11, true};
  const double grads = 2 * 16008000.0;
  const auto all_reduce = [&](double n) { return comm::collectives_s(comm::Collective::all_reduce, grads, n, node); };
  CHECK(cost_training_step(job).data_comm_s == approx(all_reduce(2)));
  job.parallelism->gradient_bucket_bytes = 10e6;
  CHECK(cost_training_step(job).data_comm_s == approx(all_reduce(4)));
  job.parallelism->gradient_bucket_bytes = 0;
  job.parallelism->megatron_buckets = true;
  CHECK(cost_training_step(job).data_comm_s == approx(all_reduce(1)));
  job.design = MlpDesign{{8000, 8000}, true};  // 64M parameters, 128 MB: still one collective without overlap
  CHECK(cost_training_step(job).data_comm_s == approx(comm::collectives_s(comm::Collective::all_reduce, 2 * 64008000.0, 1, node)));
  job.parallelism->overlap_communication = true;
  // 2 stages x 2 chunks a device, data 4: a device holds half the layers, 16 MB of gradients, which
  // a plain 25 MB bucket reduces in one collective and Megatron-Core's in two (the second chunk's own).
  job.design = MlpDesign{{2000, 2000, 2000, 2000, 2000}, true};
  job.parallelism->pipeline = 2;
  job.parallelism->virtual_stages = 2;
  job.parallelism->microbatch = 500;
  job.parallelism->global_batch = 8000;
  const StepCost interleaved = cost_training_step(job);
  REQUIRE(interleaved.fits);
  job.parallelism->megatron_buckets = false;
  const StepCost plain = cost_training_step(job);
  // (What is hidden slows the compute it runs under: exposed plus contention grows by the start-up.)
  CHECK(interleaved.data_comm_s + interleaved.contention_s > plain.data_comm_s + plain.contention_s);
  // Without overlap each chunk's DDP reduces its gradients in one collective: 2 here, where one
  // bucket larger than all of them makes 1.
  job.parallelism->overlap_communication = false;
  job.parallelism->gradient_bucket_bytes = 1e9;
  const double one = cost_training_step(job).data_comm_s;
  job.parallelism->gradient_bucket_bytes = 0;
  job.parallelism->megatron_buckets = true;
  CHECK(cost_training_step(job).data_comm_s > one);
}

TEST_CASE("experts under tensor parallelism: split over the group and reduced, or whole on each rank") {
  // The layer of the test above with two experts (top-1) in place of the FFN, on one data rank: the
  // device holds both, 16 slots each. Split over the tensor group (the default, expert_tensor = 2),
  // the experts' output, 2 experts x 16 slots x 64 x 2 B = 4,096 B as the dense FFN's, is
  // all-reduced forward and backward like the attention's: 8.016384e-5 s as above. Whole experts on
  // each rank (expert_tensor: 1, Megatron-Core's expert_tensor_parallel_size) need no collective:
  // the attention's two, 4.008192e-5 s.
  TrainingJob job = tensor_pair_job(false, [](TransformerDesign& d) { d.experts = 2; });
  const StepCost split = cost_training_step(job);
  REQUIRE(split.fits);
  const auto down = std::find_if(split.ops.begin(), split.ops.end(), [](const OpCostRow& r) {
    return r.op == "decoder.0.ffn.experts.down" && r.phase == "fwd";
  });
  REQUIRE(down != split.ops.end());
  // (And outside the layers the embedding's, the head's and the loss's, as in the test above.)
  const double outside = kOutsideLayers;
  CHECK(split.tensor_comm_s == approx(8.016384e-5 + outside));
  job.parallelism->expert_tensor = 1;
  const StepCost whole = cost_training_step(job);
  CHECK(whole.tensor_comm_s == approx(4.008192e-5 + outside));
  // Whole experts: each rank holds both (not half of each), and the two ranks hold copies whose
  // gradients they all-reduce once a step, after the backward here (overlap off): 2 experts x
  // (64 x 256 + 256 x 64 weights + 256 + 64 biases) = 66,176 parameters, 132,352 B in fp16, over
  // the pair.
  CHECK(split.data_comm_s == 0);
  job.parallelism->overlap_communication = false;
  const comm::Group pair{2, 1, 1e11, false};  // a ring with a 20 us start-up (not a GPU)
  CHECK(cost_training_step(job).data_comm_s == approx(comm::collective_s(comm::Collective::all_reduce, 132352, pair)));
  // Its memory: the experts' weights, gradients and Adam's states (2 + 2 + 12 B a parameter in fp16
  // with fp32 master weights and moments) twice over against the split layout's: 66,176 x 16 / 2 B
  // more; less the split experts' input, whole on both ranks without sequence parallelism (the up
  // projection's 2 experts x 16 slots x 64 x 2 B = 4,096 B, not half of it; since session 34),
  // which each whole-expert rank keeps only for its own slots: 2,048 B.
  CHECK(whole.memory_per_device_bytes - split.memory_per_device_bytes == approx(66176.0 * 16 / 2 - 2048));
}

TEST_CASE("activations under tensor parallelism: a column-parallel product keeps its whole input, unless the sequence is split") {
  // Korthikanti et al. 2022, Sec. 4.1: a layer keeps sbh (10 + 24 / t) bytes; the 10 do not shrink
  // with t: the norms' inputs, the dropout masks, and the inputs of the QKV and first feed-forward
  // products, which every rank of the tensor group holds whole. With sequence parallelism all of it
  // is split (sbh (34 / t)). The one-layer decoder on a tensor pair, one sequence: the graph's
  // saved bytes, those of ops on the full width (norms, residual adds) and of column-parallel
  // products' inputs (the qkv, the up projection, the head) kept whole, the rest halved.
  TrainingJob job = tensor_pair_job(false);
  const auto g = graph::build_graph(std::get<TransformerDesign>(job.design), graph::GraphShape{1, 2, true});
  double whole = 0, split = 0, column = 0;
  for (const auto& op : g.ops()) {
    const auto ends = [&op](const std::string& tail) {
      return op.name.size() >= tail.size() && op.name.compare(op.name.size() - tail.size(), tail.size(), tail) == 0;
    };
    const bool row = ends(".out") || ends(".down");
    const bool col = op.kind == graph::OpKind::matmul && op.tensor_split && !row;
    (!op.tensor_split || col ? whole : split) += op.saved_bytes;
    column += col ? op.saved_bytes : 0;
  }
  REQUIRE(column > 0);
  const StepCost pair = cost_training_step(job);
  REQUIRE(pair.fits);
  job.parallelism->sequence_parallel = true;
  const StepCost sp = cost_training_step(job);
  REQUIRE(sp.fits);
  job.accelerators = 1;
  job.parallelism->tensor = 1;
  job.parallelism->sequence_parallel = false;
  const StepCost one = cost_training_step(job);
  REQUIRE(one.fits);
  const double act1 = one.stages.at(0).activation_bytes;
  CHECK(act1 == approx(whole + split));
  CHECK(pair.stages.at(0).activation_bytes == approx(whole + split / 2));
  CHECK(sp.stages.at(0).activation_bytes == approx((whole + split) / 2));
}

TEST_CASE("whole experts on each rank: the expert-parallel group is consecutive ranks, as Megatron-Core numbers them") {
  // A one-layer MoE decoder with 8 experts on 16 devices, tensor 2 x data 8, expert parallel over
  // 8. Megatron-Core's expert ranks are numbered with the experts' own tensor degree (its expert
  // RankGenerator takes tp = expert_tensor_parallel_size): with whole experts on each rank
  // (expert_tensor: 1) a group is 8 consecutive ranks, one node of 8, and its all-to-all runs on
  // NVLink-class links, as fast as on a node of 16. Split over the tensor pair, the group's ranks
  // are 2 apart: 4 on each of two nodes, a rank's shares for the other node's 4 (4 / 8 of its
  // slots) over the network at 1e10 B/s, against 7 / 8 over NVLink at 1e11 on one node: 40 / 7
  // times as long (since session 35; before, all 7 / 8 over the network, 10 times). Before session
  // 34 both took the stride of 2.
  TrainingJob job = moe_job(1, 8);
  job.accelerators = 16;
  job.parallelism->tensor = 2;
  job.parallelism->expert = 8;
  job.parallelism->global_batch = 8;
  job.parallelism->expert_tensor = 1;
  const StepCost whole = cost_training_step(job);
  REQUIRE(whole.fits);
  REQUIRE(whole.expert_comm_s > 0);
  job.hardware.node_accelerators = 16;
  const StepCost one_node = cost_training_step(job);
  CHECK(whole.expert_comm_s == approx(one_node.expert_comm_s));
  job.parallelism->expert_tensor = 2;
  const StepCost split_big = cost_training_step(job);
  job.hardware.node_accelerators = 8;
  const StepCost split = cost_training_step(job);
  CHECK(split.expert_comm_s == approx((4.0 / 8 / 1e10) / (7.0 / 8 / 1e11) * split_big.expert_comm_s));
}

TEST_CASE("a parallel block is all-reduced once a layer under tensor parallelism") {
  // The layer of the test above as a parallel block (GPT-J, PaLM): the attention's and the FFN's
  // partial outputs are summed before one all-reduce, forward and backward: 2 x (2 x 1/2 x
  // 4,096 B / 1e11 B/s + 20 us) = 4.008192e-5 s, half the sequential layer's.
  // (Outside the layer the embedding's, the head's and the loss's, as above.)
  const StepCost c = cost_training_step(tensor_pair_job(true));
  REQUIRE(c.fits);
  CHECK(c.tensor_comm_s == approx(4.008192e-5 + kOutsideLayers));
  // Read through two norms (Falcon's ln_attn and ln_mlp), the branches' inputs are two tensors,
  // and the backward all-reduces each one's gradient: 3 x 2.004096e-5 s (since session 46, a
  // review; PaLM's one norm feeds one fused input projection).
  const StepCost two_norms = cost_training_step(tensor_pair_job(true, [](TransformerDesign& d) { d.parallel_norms = 2; }));
  CHECK(two_norms.tensor_comm_s == approx(3 * 2.004096e-5 + kOutsideLayers));
  // Under sequence parallelism (since session 48, a review): the block's one output is
  // reduce-scattered forward and gathered backward (2 collectives of 2.002048e-5 s); one norm's
  // output, which both branches project, is gathered once forward and once again backward with
  // one reduce-scatter of its gradient (3); two norms' outputs each so (6); the head gathers its
  // input the same way (3) and the embedding reduce-scatters and gathers (2), with the loss's
  // three all-reduces of 32 fp32 values.
  const double one = 4096 / 2.0 / 1e11 + 20e-6, loss = 3 * (128 / 1e11 + 20e-6);
  const auto sp = [](TrainingJob j) {
    j.parallelism->sequence_parallel = true;
    return cost_training_step(j).tensor_comm_s;
  };
  CHECK(sp(tensor_pair_job(true)) == approx((2 + 3 + 3 + 2) * one + loss));
  CHECK(sp(tensor_pair_job(true, [](TransformerDesign& d) { d.parallel_norms = 2; })) == approx((2 + 6 + 3 + 2) * one + loss));
  // Latent attention (a review of session 48): the down projections run duplicated on the shard
  // (Megatron-Core's linear_q_down_proj, linear_kv_down_proj) and gather nothing; the up
  // projections gather the normed latents, 32 x 32 x 2 B = 2,048 B and 32 x 16 x 2 B = 1,024 B,
  // three collectives each; the sequential layer's outputs, the FFN's up and the head as above.
  const auto coll = [](double bytes) { return bytes / 2 / 1e11 + 20e-6; };
  const double latent = sp(tensor_pair_job(false, [](TransformerDesign& d) {
    d.q_lora_rank = 32;
    d.kv_lora_rank = 16;
    d.rope_head_dim = 8;
  }));
  CHECK(latent == approx((2 + 2 + 3 + 2 + 3) * one + 3 * coll(2048) + 3 * coll(1024) + loss));
  // Its attention output `.attn.o` is row-parallel (its k / 2 columns a rank, its partial sums added
  // before the all-reduce): it keeps its input's half, as `.attn.out` does, not the whole (since
  // session 43, a review). Two such layers (d 512, 8 heads, FFN 2,048, vocabulary 1,024, 8
  // sequences of 128, bf16) on a tensor pair keep 22 U, U = 1,024 tokens x 512 x 2 B, counted by
  // hand by the review (one more before session 43: each layer's `.attn.o` kept U whole instead of
  // U / 2; one less before session 46, whose loss keeps its softmax in fp32: 1,024 x 512 logits a
  // rank x 4 B = 2 U).
  TrainingJob job = tensor_pair_job(true, [](TransformerDesign& d) {
    d.decoder_layers = 2;
    d.d_model = 512;
    d.heads = 8;
    d.d_ff = 2048;
    d.vocab = 1024;
    d.seq_len = 128;
    d.rms_norm = false;
  });
  in_bf16(job);
  job.parallelism->microbatch = 8;
  job.parallelism->global_batch = 8;
  const StepCost two = cost_training_step(job);
  REQUIRE(two.fits);
  CHECK(two.stages.at(0).activation_bytes == approx(22 * 1048576.0));
}

TEST_CASE("a decoder layer's cross-attention all-reduces the encoder output's gradient, by hand") {
  // An encoder-decoder (d 64, 32 source and 8 target tokens, fp16, one sequence) on a tensor pair
  // at 1e11 B/s, 20 us a collective's start-up: a second decoder layer adds its three row-parallel
  // outputs (self-attention, cross-attention, feed-forward: 8 x 64 x 2 B = 1,024 B each, forward and
  // backward) and its cross-attention key/value product's input gradient, the encoder's output
  // (32 x 64 x 2 B = 4,096 B), backward: 6 x (1,024 / 1e11 + 20 us) + 4,096 / 1e11 + 20 us (since
  // session 46, a review: the last was not charged).
  const auto comm_s = [](std::int64_t decoder_layers) {
    return cost_training_step(tensor_pair_job(false, [decoder_layers](TransformerDesign& d) {
             d.arch = TransformerDesign::Arch::encoder_decoder;
             d.encoder_layers = 1;
             d.decoder_layers = decoder_layers;
             d.target_seq_len = 8;
           }))
        .tensor_comm_s;
  };
  CHECK(comm_s(2) - comm_s(1) == approx(6 * (1024 / 1e11 + 20e-6) + 4096 / 1e11 + 20e-6));
  // The Evolved Transformer's decoder cell attends to the encoder twice (`.cross1`, `.cross2`): two
  // such all-reduces a layer. What depends on the source length in a decoder layer is those alone:
  // the second layer's collectives at 64 source tokens less at 32 are 2 x 32 x 64 x 2 B / 1e11.
  const auto evolved_s = [](std::int64_t decoder_layers, std::int64_t source) {
    return cost_training_step(tensor_pair_job(false, [decoder_layers, source](TransformerDesign& d) {
             d.arch = TransformerDesign::Arch::encoder_decoder;
             d.evolved = true;
             d.encoder_layers = 1;
             d.decoder_layers = decoder_layers;
             d.seq_len = source;
             d.target_seq_len = 8;
           }))
        .tensor_comm_s;
  };
  const double layer_at_64 = evolved_s(2, 64) - evolved_s(1, 64), layer_at_32 = evolved_s(2, 32) - evolved_s(1, 32);
  CHECK(layer_at_64 - layer_at_32 == approx(2 * 32 * 64 * 2 / 1e11));
}

TEST_CASE("Mesh TensorFlow's dropout masks are all-reduced over the tensor group, by hand") {
  // The one-layer decoder on a tensor pair with dropout: its embeddings (after their all-reduce)
  // and its two residual branches each draw a 32 x 64 mask over the full width. Seeded ranks
  // (Megatron) draw the same mask apart: nothing.
  TrainingJob job = tensor_pair_job(false, [](TransformerDesign& d) { d.dropout = 0.1; });
  const StepCost seeded = cost_training_step(job);
  REQUIRE(seeded.fits);
  CHECK(seeded.tensor_comm_s == approx(8.016384e-5 + kOutsideLayers));
  // Mesh TensorFlow all-reduces each random tensor (2 B values) forward, one sequence's mask of
  // d_model values shared by its 32 positions (LayerStack._dropout's noise_shape, batch x d_model;
  // since session 46, a review: 32 x 64): 3 x (2 x 1/2 x 128 B / 1e11 B/s + 20 us) = 6.000384e-5 s
  // more (the embeddings' since session 43, a review: a split op's dropout had drawn none).
  job.parallelism->dropout_masks = "allreduce";
  const StepCost synced = cost_training_step(job);
  CHECK(synced.tensor_comm_s - seeded.tensor_comm_s == approx(6.000384e-5));
  // Again where recomputation runs the layer's forward a second time (the embeddings run once):
  // 5 of them.
  job.parallelism->recompute = true;
  const StepCost recomputed = cost_training_step(job);
  job.parallelism->dropout_masks = "seeded";
  CHECK(recomputed.tensor_comm_s - cost_training_step(job).tensor_comm_s == approx(5 * 2.000128e-5));
  // Split along the sequence, each rank holds its own slice and draws its own mask.
  job.parallelism->recompute = false;
  job.parallelism->sequence_parallel = true;
  const double sp_seeded = cost_training_step(job).tensor_comm_s;
  job.parallelism->dropout_masks = "allreduce";
  CHECK(cost_training_step(job).tensor_comm_s == approx(sp_seeded));
}

TEST_CASE("the busiest pipeline stage holds ceil(layers / stages) whole layers") {
  // Five 1000 x 1000 layers: each product 1.2e-4 s forward and backward for 1000 samples and its
  // bias's gradient 4.004e-6 s (the one-layer MLP by hand above), four activations after the first
  // four at 2.4e-5 s each (1e6 elements, memory-bound like the input), and the input op (2.4e-5 s),
  // which is on no layer and runs on the first stage. Per layer on average: (5 x 1.24004e-4 + 4 x
  // 2.4e-5) / 5 = 1.43204e-4 s; a layer with its activation 1.48004e-4 s.
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{1000, 1000, 1000, 1000, 1000, 1000}, true};
  StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.compute_s == approx(2.4e-5 + 5 * 1.43204e-4));
  // Two stages: the first 3 layers (each with its activation) and the input on the first, not 2.5
  // layers; two microbatches of 1000 (their gradients summed in the weight-gradient GEMM here: the
  // separate pass has its own test).
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  job.parallelism->global_batch = 2000;
  job.parallelism->gradient_accumulation = "fused";
  c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.microbatches == 2);
  CHECK(c.compute_s == approx(2 * (2.4e-5 + 3 * 1.48004e-4)));
  // The fill and drain: the second device's slot, its layers 3 and 4 (the last without an
  // activation), 1.48004e-4 + 1.24004e-4 s, and its stage sends.
  REQUIRE(c.stages.size() == 2);
  CHECK(c.stages[1].forward_s + c.stages[1].backward_s == approx(1.48004e-4 + 1.24004e-4));
  CHECK(c.bubble_s == approx(c.stages[1].slot_s));
  CHECK(c.bubble_s == approx(1.48004e-4 + 1.24004e-4 + c.pipeline_comm_s / 2));
  // Interleaved with 4 chunks a device, more chunks (8) than layers (5): chunks 5-7 are empty, and
  // the first device holds chunks 0, 2 and 4 (layers 0, 2 and 4, the last without an activation),
  // not 4 chunks of one.
  job.parallelism->virtual_stages = 4;
  CHECK(cost_training_step(job).compute_s == approx(2 * (2.4e-5 + 2 * 1.48004e-4 + 1.24004e-4)));
  job.parallelism->virtual_stages = 1;
  // Energy is the work's, not the busiest stage's: with no static power, two stages spend what
  // one device spends on the same two microbatches (each device does half of the work).
  job.hardware.idle_power_w = 0;
  const double staged = cost_training_step(job).energy_per_step_j;
  job.accelerators = 1;
  job.parallelism->pipeline = 1;
  const StepCost one = cost_training_step(job);
  REQUIRE(one.microbatches == 2);
  CHECK(staged == approx(one.energy_per_step_j));
}

TEST_CASE("the pipeline partition: the embeddings on the first device, the head on the last, never both") {
  // A 4-layer decoder on 2 stages, one sequence a microbatch, two microbatches. From the costed ops
  // (each op's forward and backward as the model ran them): the layers' work L, the embedding's E
  // (before the first layer) and the final norm's, head's and loss's H (after the last).
  TrainingJob job = mlp_job();
  job.design = small_decoder(4);
  on_two_stages(job, 1, 2);
  job.parallelism->gradient_accumulation = "fused";
  StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  REQUIRE(c.microbatches == 2);
  std::vector<double> layer(4, 0.0);  // each layer's (the last holds the final norm)
  double E = 0, H = 0;
  bool seen_layer = false;
  for (const auto& r : c.ops) {
    if (r.phase != "fwd" && r.phase != "bwd") continue;
    if (r.layer >= 0) {
      seen_layer = true;
      layer.at(static_cast<std::size_t>(r.layer)) += r.time_s;
    } else {
      (seen_layer ? H : E) += r.time_s;
    }
  }
  REQUIRE(E > 0);
  REQUIRE(H > E);  // the head's product and the loss outweigh the embedding's lookup
  const double l0 = layer[0], l1 = layer[1], l2 = layer[2], l3 = layer[3];
  REQUIRE(l3 > l0);
  // Two layers on each device: the last device's two layers and the head are the busiest.
  CHECK(c.compute_s == approx(2 * (l2 + l3 + H)));
  // Three layers and the embedding on the first device, one and the head on the last.
  job.parallelism->stage_layers = {3, 1};
  c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(c.compute_s == approx(2 * std::max(l0 + l1 + l2 + E, l3 + H)));
  // One and the embedding on the first, three and the head on the last.
  job.parallelism->stage_layers = {1, 3};
  CHECK(cost_training_step(job).compute_s == approx(2 * (l1 + l2 + l3 + H)));
  // One stage holds both.
  job.parallelism->stage_layers.clear();
  job.accelerators = 1;
  job.parallelism->pipeline = 1;
  CHECK(cost_training_step(job).compute_s == approx(2 * (l0 + l1 + l2 + l3 + E + H)));
  // Interleaved, 2 chunks a device: chunks 0 and 2 (the embedding's) on device 0, 1 and 3 (the
  // head's) on device 1. Chunk 3 empty: device 1 runs layer 1 and the head.
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  job.parallelism->virtual_stages = 2;
  job.parallelism->stage_layers = {1, 1, 2, 0};
  const StepCost interleaved = cost_training_step(job);
  CHECK(interleaved.compute_s == approx(2 * std::max(l0 + l2 + l3 + E, l1 + H)));
  // The stages table: device 0 holds 3 layers, device 1 one; the busiest's slot is a microbatch's
  // compute (and its sends).
  REQUIRE(interleaved.stages.size() == 2);
  CHECK(interleaved.stages[0].layers == 3);
  CHECK(interleaved.stages[1].layers == 1);
  CHECK(interleaved.stages[0].forward_s + interleaved.stages[0].backward_s == approx(l0 + l2 + l3 + E));
  CHECK(interleaved.stages[1].forward_s + interleaved.stages[1].backward_s == approx(l1 + H));
  CHECK(interleaved.stages[0].busiest + interleaved.stages[1].busiest == 1);
  for (const auto& row : interleaved.stages) {
    if (row.busiest) CHECK(row.slot_s == approx(interleaved.compute_s / 2 + interleaved.pipeline_comm_s / 2));
  }
}

TEST_CASE("each pipeline device holds its own ops' parameters, and a tied table's copy on the last") {
  // A 2-layer decoder whose tied 100,000 x 64 table (6.4M parameters) outweighs its layers (about
  // 50K each), on 2 data ranks. On one stage a device holds the table once; on two stages the first
  // holds it for the embedding and the last a copy for the head (Megatron-LM's shared word
  // embeddings): each needs about what one device needed, not half of it, and reduces as many
  // gradients.
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(2);
  d.vocab = 100000;
  job.design = d;
  job.accelerators = 2;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 2;
  job.parallelism->overlap_communication = false;  // data_comm_s is then all of it
  const StepCost one = cost_training_step(job);
  REQUIRE(one.fits);
  job.accelerators = 4;
  job.parallelism->pipeline = 2;
  const StepCost two = cost_training_step(job);
  REQUIRE(two.fits);
  REQUIRE(two.data == 2);
  CHECK(two.memory_per_device_bytes > 0.95 * one.memory_per_device_bytes);
  CHECK(two.memory_per_device_bytes < one.memory_per_device_bytes);
  CHECK(two.data_comm_s > 0.95 * one.data_comm_s);
  // Untied, the head's own 6.4M on the last device: the same.
  d.tied_embeddings = false;
  job.design = d;
  const StepCost untied = cost_training_step(job);
  CHECK(untied.memory_per_device_bytes == approx(two.memory_per_device_bytes).epsilon(0.02));
  // The last device (the head's) is the busiest: it reduces a table's gradients, tied or not.
  REQUIRE(two.stages.at(1).busiest);
  // Tied, the two copies' gradients are then summed between the stages, after the data-parallel
  // reduction: an all-reduce of 6.4M fp16 values (12.8 MB) between two ranks 2 apart, in one node
  // of 8 (1e11 B/s, no NCCL: the fixed start-up), 12.8e6 / 1e11 + 20 us = 148 us, exposed.
  const auto row = [](const StepCost& c, const std::string& op) {
    const auto it = std::find_if(c.ops.begin(), c.ops.end(), [&](const OpCostRow& r) { return r.op == op; });
    return it == c.ops.end() ? 0.0 : it->time_s;
  };
  const double table = comm::collective_s(comm::Collective::all_reduce, 100000.0 * 64 * 2, comm::Group{2, 1, 1e11, false});
  CHECK(table == approx(12.8e6 / 1e11 + comm::kFixedLatencyS));
  CHECK(row(two, "embedding.allreduce") == approx(table));
  CHECK(row(untied, "embedding.allreduce") == 0);
  CHECK(two.data_comm_s == approx(untied.data_comm_s + table).epsilon(0.02));
  CHECK(row(one, "embedding.allreduce") == 0);  // one stage: one table, no copy
  // Four stages of one layer on 2 data ranks: 8 ranks, all in one node of 8, so the first and
  // the last stage (6 ranks apart) sum their copies over NVLink-class links, not the network.
  TransformerDesign four = small_decoder(4);
  four.vocab = 100000;
  job.design = four;
  job.accelerators = 8;
  job.parallelism->pipeline = 4;
  job.parallelism->global_batch = 8;
  const StepCost deep = cost_training_step(job);
  REQUIRE(deep.fits);
  CHECK(row(deep, "embedding.allreduce") == approx(table));
}

TEST_CASE("the busiest pipeline device is chosen with its gradient accumulation pass") {
  // A 2-layer decoder on 2 stages whose first device holds a learned position table of 200,000 x
  // 64 (12.8M parameters) beside its layer: little work a microbatch (a lookup), but every backward
  // after the first adds 12.8M gradients into the step's (fp16: 6 B a parameter, 76.8 MB at 5e11
  // B/s, 1.536e-4 s), far more than either device's layer (d_model 64, 32 tokens: microseconds).
  // So the first device paces the step, the second's slot is the fill and drain. Before session 34
  // the busiest was chosen without the pass: the head's device, with the first device's larger
  // slot left out of the step.
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(2);
  d.position = TransformerDesign::Position::learned;
  d.max_positions = 200000;
  job.design = d;
  on_two_stages(job, 1, 8);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  REQUIRE(c.microbatches == 8);
  REQUIRE(c.stages.size() == 2);
  CHECK(c.stages[0].busiest);
  CHECK_FALSE(c.stages[1].busiest);
  // The first device's backward holds 7/8 of the pass: at least 1.344e-4 s.
  CHECK(c.stages[0].backward_s > 7.0 / 8 * 1.536e-4);
  CHECK(c.stages[0].slot_s > c.stages[1].slot_s);
  // The step is the busiest device's 8 slots and the other's fill and drain.
  CHECK(c.compute_s == approx(8 * (c.stages[0].forward_s + c.stages[0].backward_s)));
  CHECK(c.bubble_s == approx(c.stages[1].slot_s));
}

TEST_CASE("activations in flight: p - d microbatches on 1F1B's device d, more on an interleaved first device") {
  // The 4-layer MLP on 4 stages, 8 microbatches: devices 1 and 2 hold one identical layer each,
  // for 3 and 2 microbatches.
  TrainingJob job = pipelined_mlp_job();
  const StepCost plain = cost_training_step(job);
  REQUIRE(plain.fits);
  REQUIRE(plain.stages.size() == 4);
  CHECK(plain.stages[1].activation_bytes == approx(1.5 * plain.stages[2].activation_bytes));
  // A 4-layer decoder on 2 stages: device 0 holds layers 0 and 1 (plain) or 0 and 2 (interleaved,
  // 2 chunks a device), alike, S bytes a microbatch, and the embedding's E once. Plain: 2 S + E with
  // 8 microbatches, S + E with 1; interleaved: 2 (p - 1) + (v - 1) p + 1 = 5 chunks of half the
  // device, 2.5 S + E.
  job = mlp_job();
  job.design = small_decoder(4);
  on_two_stages(job, 1, 8);
  const double two_s_e = cost_training_step(job).stages.at(0).activation_bytes;
  job.parallelism->virtual_stages = 2;
  const double five_halves_s_e = cost_training_step(job).stages.at(0).activation_bytes;
  job.parallelism->virtual_stages = 1;
  job.parallelism->global_batch = 1;
  const double s_e = cost_training_step(job).stages.at(0).activation_bytes;
  CHECK(five_halves_s_e - two_s_e == approx(0.5 * (two_s_e - s_e)));
}

TEST_CASE("every layout of every builder costs to finite figures or says why it cannot run") {
  // A sweep over designs (decoder, MoE decoder with dense layers and multi-token prediction, encoder,
  // encoder-decoder, ViT, MLP, ResNet, LSTM) x pipeline 1-4 x chunks 1-2 x tensor 1-2 x the schedules x
  // recomputation: each either fits with a finite, positive step, one stages row a device and one
  // busiest, or does not fit and gives its reason. (Run under the sanitizers in CI: no index leaves
  // its vector.)
  std::vector<ModelDesign> designs;
  designs.push_back(small_decoder(4));
  TransformerDesign moe = small_decoder(5);
  moe.experts = 4;
  moe.top_k = 2;
  moe.dense_layers = 1;
  moe.mtp_depth = 1;
  moe.tied_embeddings = false;
  designs.push_back(moe);
  TransformerDesign enc = small_decoder(3);
  enc.arch = TransformerDesign::Arch::encoder;
  enc.encoder_layers = 3;
  enc.decoder_layers = 0;
  designs.push_back(enc);
  TransformerDesign encdec = small_decoder(2);
  encdec.arch = TransformerDesign::Arch::encoder_decoder;
  encdec.encoder_layers = 2;
  designs.push_back(encdec);
  designs.push_back(small_vit(3));
  designs.push_back(MlpDesign{{64, 64, 64, 64}, true});
  ResNetDesign resnet;
  resnet.blocks = {1, 1, 1, 1};
  resnet.image = 32;
  designs.push_back(resnet);
  LstmDesign lstm;
  lstm.layers = 2;
  lstm.input = 32;
  lstm.hidden = 64;
  lstm.vocab = 100;
  lstm.seq_len = 8;
  designs.push_back(lstm);
  int fits = 0, cases = 0;
  for (const auto& design : designs) {
    for (int pipeline = 1; pipeline <= 4; ++pipeline) {
      for (int chunks = 1; chunks <= 2; ++chunks) {
        for (int tensor = 1; tensor <= 2; ++tensor) {
          for (int schedule = 0; schedule < 3; ++schedule) {
            for (int recompute = 0; recompute < 2; ++recompute) {
              if (chunks > 1 && (pipeline < 2 || schedule > 0)) continue;  // the loader refuses these
              if (schedule == 1 && pipeline < 2) continue;
              if (schedule == 2 && pipeline % 2 != 0) continue;
              TrainingJob job = mlp_job();
              job.design = design;
              job.accelerators = 2 * pipeline * tensor;
              job.parallelism->tensor = tensor;
              job.parallelism->pipeline = pipeline;
              job.parallelism->virtual_stages = chunks;
              job.parallelism->zero_bubble = schedule == 1;
              job.parallelism->dualpipe = schedule == 2;
              job.parallelism->recompute = recompute == 1;
              job.parallelism->microbatch = 1;
              job.parallelism->global_batch = 2 * 2 * pipeline;  // 2 data ranks, 2 p microbatches each
              ++cases;
              const StepCost c = cost_training_step(job);
              if (!c.fits) {
                CHECK_MESSAGE(!c.reason.empty(), "a layout that does not fit says why");
                continue;
              }
              ++fits;
              CHECK(std::isfinite(c.step_s));
              CHECK(c.step_s > 0);
              CHECK(std::isfinite(c.memory_per_device_bytes));
              CHECK(std::isfinite(c.energy_per_step_j));
              REQUIRE(c.stages.size() == static_cast<std::size_t>(pipeline));
              int busiest = 0;
              for (const auto& row : c.stages) busiest += row.busiest ? 1 : 0;
              CHECK(busiest == 1);
            }
          }
        }
      }
    }
  }
  CHECK(fits > cases / 2);
}

TEST_CASE("a graph file's layers partitioned in their order, whatever their indices") {
  // Three products numbered 3, 7 and 9 (no layer 0, gaps) behind an input op: on two stages, the
  // first holds layers 3 and 7 and the input, the second layer 9.
  TrainingJob job = mlp_job();
  FileGraphDesign d;
  d.ops.push_back(FileOp{"input", "embedding", -1, 0, 0, 0, 1, 1e6, 0, 0, {}});
  d.ops.push_back(FileOp{"a", "matmul", 3, 1000, 1000, 1000, 1, 0, 1, 1e6, {"input"}});
  d.ops.push_back(FileOp{"b", "matmul", 7, 1000, 1000, 1000, 1, 0, 1, 1e6, {"a"}});
  d.ops.push_back(FileOp{"c", "matmul", 9, 1000, 1000, 1000, 1, 0, 1, 1e6, {"b"}});
  job.design = d;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 2;
  job.parallelism->gradient_accumulation = "fused";
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  std::map<std::string, double> t;
  for (const auto& r : c.ops) {
    if (r.phase == "fwd" || r.phase == "bwd") t[r.op] += r.time_s;
  }
  REQUIRE(t.size() == 4);
  CHECK(c.compute_s == approx(2 * (t["input"] + t["a"] + t["b"])));
  // The same graph on one device.
  job.accelerators = 1;
  job.parallelism->pipeline = 1;
  CHECK(cost_training_step(job).compute_s == approx(2 * (t["input"] + t["a"] + t["b"] + t["c"])));
}

TEST_CASE("pipeline stages of unequal layers: a dense layer before the experts has no all-to-all") {
  // Two layers, the first dense, the second a mixture of 8 experts, on 64 data ranks: on one stage
  // the step's all-to-all is the MoE layer's; on two stages the second device runs that layer (and
  // the head) and the first none, so a microbatch's all-to-all is the same, where the average
  // layer's share (before session 28) would have charged half of it.
  TrainingJob job = moe_job(2, 8);
  auto d = std::get<TransformerDesign>(job.design);
  d.dense_layers = 1;
  job.design = d;
  const StepCost one = cost_training_step(job);
  REQUIRE(one.fits);
  REQUIRE(one.expert_comm_s > 0);
  job.accelerators = 128;
  job.parallelism->pipeline = 2;
  const StepCost two = cost_training_step(job);
  REQUIRE(two.fits);
  REQUIRE(two.microbatches == one.microbatches);
  CHECK(two.expert_comm_s == approx(one.expert_comm_s));
  // Its compute: the second device's layer and the head, never the embedding too.
  double moe_layer = 0, head = 0;
  for (const auto& r : two.ops) {
    if (r.phase != "fwd" && r.phase != "bwd") continue;
    if (r.layer == 1) moe_layer += r.time_s;
    if (r.layer < 0 && r.op != "decoder.embedding" && r.op != "gradients.accumulate") head += r.time_s;
  }
  CHECK(two.compute_s == approx(static_cast<double>(two.microbatches) * (moe_layer + head)));
}

TEST_CASE("unfused causal attention computes the whole score matrix, FlashAttention the lower half") {
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  job.design = d;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.fusion = "elementwise";
  const auto fwd = [](const StepCost& c, const std::string& name) {
    for (const auto& op : c.ops) {
      if (op.op == name && op.phase == "fwd") return op;
    }
    FAIL("no op " << name);
    return c.ops.front();
  };
  // By hand: 4 heads of 32 x 32 scores from 16-wide heads: QK^T is 2 x 4 x 32 x 16 x 32 = 131,072
  // FLOPs over the whole matrix; the graph counts the causal half (Kaplan et al. 2020), the
  // unfused kernel does all of it. The fused softmax reads and writes 4 x 32 x 32 fp16 scores:
  // 16,384 B.
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(fwd(c, "decoder.0.attn.scores").flops == approx(131072));
  CHECK(fwd(c, "decoder.0.attn.softmax").bytes == approx(16384));
  const graph::OpGraph g = graph::build_graph(d, graph::GraphShape{1, 2, true, graph::Fusion::elementwise, true});
  const auto scores = std::find_if(g.ops().begin(), g.ops().end(), [](const graph::Op& op) { return op.name == "decoder.0.attn.scores"; });
  REQUIRE(scores != g.ops().end());
  CHECK(scores->flops == approx(65536));
  // Unfused (`none`): scale, mask, softmax each over the whole matrix: 4 x 32 x 32 x 2 x 2 B.
  job.fusion = "none";
  const StepCost unfused = cost_training_step(job);
  for (const char* name : {"decoder.0.attn.scale", "decoder.0.attn.mask", "decoder.0.attn.softmax"}) {
    CHECK(fwd(unfused, name).bytes == approx(16384));
  }
  // FlashAttention: one op, scores and probabilities over the lower half only:
  // 2 x (2 x 4 x 32 x 32 x 16) / 2 + 5 x 4 x 32 x 32 / 2 = 131,072 + 10,240.
  job.fusion = "attention";
  CHECK(fwd(cost_training_step(job), "decoder.0.attn.attention").flops == approx(131072 + 10240));
}

TEST_CASE("elementwise recomputation repeats the layers' non-GEMM ops and keeps only the GEMMs' activations") {
  TrainingJob job = mlp_job();
  job.design = small_decoder(1);
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.fusion = "attention";
  const StepCost plain = cost_training_step(job);
  job.parallelism->recompute_elementwise = true;
  const StepCost cheap = cost_training_step(job);
  // The extra backward time is the forward time of the one layer's norms, activation and residual
  // adds (everything in the layer but its GEMMs and the fused attention) and of the final norm on
  // the last layer's stage; the embedding and head are outside the layers and not repeated.
  double elementwise_fwd = 0;
  std::size_t ops = 0;
  for (const auto& op : plain.ops) {
    if (op.phase != "fwd" || (op.op.rfind("decoder.0.", 0) != 0 && op.op != "decoder.final_norm")) continue;
    if (op.kind == "matmul" || op.kind == "batched_matmul") continue;
    elementwise_fwd += op.time_s;
    ++ops;
  }
  REQUIRE(ops == 6);
  CHECK(cheap.compute_s - plain.compute_s == approx(elementwise_fwd));
  // Memory: what the layer's non-GEMM ops keep is dropped: the three LayerNorms (the final one
  // sits on the last layer's stage) and the GELU, each 32 tokens x its width in fp16 (the residual
  // adds keep nothing): (3 x 64 + 256) x 32 x 2 B = 28,672 B.
  CHECK(plain.memory_per_device_bytes - cheap.memory_per_device_bytes == approx(28672));
  CHECK(cheap.mfu < plain.mfu);  // the same model FLOPs in a longer step
}

TEST_CASE("fewer key/value heads than tensor ranks: each rank holds and computes whole key/value heads") {
  // Multi-query attention (1 key/value head) on a tensor group of 4: d 64, 4 query heads of 16
  // channels, 32 tokens. A rank's fused qkv product has its query head's 16 columns and the one
  // key/value head's 2 x 16, replicated on every rank (BigCode's Megatron-LM): 2 x 32 x 64 x 48 =
  // 196,608 FLOPs, where 1 / 4 of the whole (4 + 2) x 16 = 96 columns would be 24 (98,304). Its
  // weights, 64 x 48 = 3,072 a rank, count in the memory of every rank (not checked here).
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.kv_heads = 1;
  job.design = d;
  job.accelerators = 4;
  job.parallelism->tensor = 4;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.fusion = "attention";
  const StepCost c = cost_training_step(job);
  const auto row = [&](const std::string& op) {
    const auto it = std::find_if(c.ops.begin(), c.ops.end(), [&](const OpCostRow& r) { return r.op == op && r.phase == "fwd"; });
    REQUIRE(it != c.ops.end());
    return *it;
  };
  CHECK(row("decoder.0.attn.qkv").flops == approx(2.0 * 32 * 64 * 48));
  // The rotary embedding is not in this design (learned positions); the fused attention reads the
  // rank's query head (32 x 16 in, 32 x 16 out) and the whole key/value head (2 x 32 x 16) at 2 B:
  // 4,096 B, where a quarter of the head would be 3,072.
  CHECK(row("decoder.0.attn.attention").bytes == approx(2.0 * (32 * 32 + 2 * 32 * 16)));
  // With as many key/value heads as ranks nothing changes: a quarter of the (4 + 2 x 4) x 16 columns.
  d.kv_heads = 4;
  job.design = d;
  const StepCost g = cost_training_step(job);
  const auto it = std::find_if(g.ops.begin(), g.ops.end(), [](const OpCostRow& r) { return r.op == "decoder.0.attn.qkv" && r.phase == "fwd"; });
  REQUIRE(it != g.ops.end());
  CHECK(it->flops == approx(2.0 * 32 * 64 * 48));  // 12 x 16 / 4 = 48 columns either way
}

TEST_CASE("the ops table's backward rows hold the recomputed forward's FLOPs, bytes and energy") {
  // Full recomputation runs each layer op's forward again before its backward: the bwd row of a
  // layer op is the plain job's bwd row plus its own fwd row, in time, FLOPs, bytes and energy; ops
  // outside the layers (embedding, head) are not recomputed. Before session 37 only the time moved,
  // so 13 % of a review's step energy was in no row.
  TrainingJob job = mlp_job();
  job.design = small_decoder(2);
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.fusion = "attention";
  const StepCost plain = cost_training_step(job);
  job.parallelism->recompute = true;
  const StepCost full = cost_training_step(job);
  const auto row = [](const StepCost& c, const std::string& op, const std::string& phase) {
    const auto it = std::find_if(c.ops.begin(), c.ops.end(), [&](const OpCostRow& r) { return r.op == op && r.phase == phase; });
    REQUIRE(it != c.ops.end());
    return *it;
  };
  for (const char* op : {"decoder.0.attn.qkv", "decoder.1.ffn.up", "decoder.1.attn.attention"}) {
    INFO(op);
    const OpCostRow f = row(plain, op, "fwd"), b = row(plain, op, "bwd"), r = row(full, op, "bwd");
    CHECK(r.flops == approx(b.flops + f.flops));
    CHECK(r.bytes == approx(b.bytes + f.bytes));
    CHECK(r.time_s == approx(b.time_s + f.time_s));
    CHECK(r.energy_j == approx(b.energy_j + f.energy_j));
  }
  const OpCostRow head = row(full, "lm_head", "bwd"), head_plain = row(plain, "lm_head", "bwd");
  CHECK(head.flops == approx(head_plain.flops));
  CHECK(head.energy_j == approx(head_plain.energy_j));
}

TEST_CASE("a GPT layer keeps Korthikanti et al.'s 34 sbh + 5 as^2 b bytes of activations") {
  // Korthikanti et al. 2022, Sec. 4.1 (no tensor parallelism, 16-bit, dropout with one-byte masks,
  // the score matrix unfused as Megatron-LM runs it): a layer keeps s b h (34 + 5 a s / h) bytes.
  // d 1024, 8 heads, 1,024 tokens, one sequence: the layer's own, as the difference between two
  // layers and one.
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.d_model = 1024;
  d.heads = 8;
  d.d_ff = 4096;
  d.seq_len = 1024;
  d.dropout = 0.1;
  job.design = d;
  job.fusion = "softmax";
  job.hardware.memory_bytes = 1e12;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  const StepCost one = cost_training_step(job);
  d.decoder_layers = 2;
  job.design = d;
  const StepCost two = cost_training_step(job);
  REQUIRE(one.fits);
  REQUIRE(two.fits);
  const double s = 1024, b = 1, h = 1024, a = 8;
  CHECK(two.stages.at(0).activation_bytes - one.stages.at(0).activation_bytes == approx(s * b * h * 34 + 5 * a * s * s * b));
  // The score matrices' share, 5 a s^2 b (softmax output 2, dropout mask 1, dropped probabilities
  // 2 bytes a score), whichever kernels run them: doubling the heads at the same width adds
  // 5 x 8 s^2 b with the softmax fused alone and with the dropout in its kernel (elementwise fusion;
  // before session 35 that path kept no mask, 4 x 8 s^2 b).
  for (const char* fusion : {"softmax", "elementwise"}) {
    job.fusion = fusion;
    d.heads = 8;
    job.design = d;
    const double eight = cost_training_step(job).stages.at(0).activation_bytes;
    d.heads = 16;
    job.design = d;
    const double sixteen = cost_training_step(job).stages.at(0).activation_bytes;
    CHECK(sixteen - eight == approx(2 * 5 * 8 * s * s * b));  // two layers
  }
}

TEST_CASE("selective recomputation repeats only the ops on the score matrix (Korthikanti et al. 2022)") {
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.dropout = 0.1;
  job.design = d;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.fusion = "none";
  const StepCost plain = cost_training_step(job);
  job.parallelism->recompute_selective = true;
  const StepCost selective = cost_training_step(job);
  job.parallelism->recompute_selective = false;
  job.parallelism->recompute = true;
  const StepCost full = cost_training_step(job);
  job.parallelism->recompute = false;
  // The extra backward time is the forward time of QK^T, scale, mask, softmax, dropout and PV
  // (the unfused score-matrix ops of the one layer).
  double score_fwd = 0, layer_fwd = 0;
  for (const auto& op : plain.ops) {
    if (op.phase != "fwd" || op.op.rfind("decoder.0.", 0) != 0) continue;
    layer_fwd += op.time_s;
    for (const char* name : {"decoder.0.attn.scores", "decoder.0.attn.scale", "decoder.0.attn.mask", "decoder.0.attn.softmax",
                             "decoder.0.attn.dropout", "decoder.0.attn.context"}) {
      if (op.op == name) score_fwd += op.time_s;
    }
  }
  REQUIRE(score_fwd > 0);
  CHECK(selective.compute_s - plain.compute_s == approx(score_fwd));
  CHECK(full.compute_s - plain.compute_s == approx(layer_fwd));
  // Memory: the score-matrix activations are dropped, Q, K and V (the recomputation's inputs) kept:
  // the softmax saves 4 heads x 32 x 32 fp16 scores, PV its probabilities (the same size), the
  // dropout its one-byte mask (since session 34; before, its 2-byte output): 2 x 8,192 + 4,096 B;
  // the scaling and the mask keep nothing (a constant factor, an add). QK^T's q and k and PV's v
  // stay.
  CHECK(plain.memory_per_device_bytes - selective.memory_per_device_bytes == approx(2.0 * 4 * 32 * 32 * 2 + 4 * 32 * 32));
  // Full recomputation keeps each layer's input, and while a layer's backward runs, that layer's
  // activations, recomputed: with one layer nothing is saved at the peak (not below selective's);
  // with eight, seven layers' activations are.
  CHECK(full.memory_per_device_bytes >= selective.memory_per_device_bytes);
  {
    TrainingJob deep = job;
    TransformerDesign d8 = d;
    d8.decoder_layers = 8;
    deep.design = d8;
    deep.parallelism->recompute_selective = true;
    const double selective8 = cost_training_step(deep).memory_per_device_bytes;
    deep.parallelism->recompute_selective = false;
    deep.parallelism->recompute = true;
    CHECK(cost_training_step(deep).memory_per_device_bytes < selective8);
  }
  // With FlashAttention there is no score matrix to recompute: nothing changes.
  job.fusion = "attention";
  const StepCost flash = cost_training_step(job);
  job.parallelism->recompute_selective = true;
  CHECK(cost_training_step(job).compute_s == approx(flash.compute_s));
  CHECK(cost_training_step(job).memory_per_device_bytes == approx(flash.memory_per_device_bytes));
  // Under tensor parallelism selective recomputation repeats no forward all-reduce; full does.
  job.fusion = "none";
  job.accelerators = 2;
  job.parallelism->tensor = 2;
  const StepCost tp_selective = cost_training_step(job);
  job.parallelism->recompute_selective = false;
  const StepCost tp_plain = cost_training_step(job);
  job.parallelism->recompute = true;
  const StepCost tp_full = cost_training_step(job);
  REQUIRE(tp_plain.tensor_comm_s > 0);
  CHECK(tp_selective.tensor_comm_s == approx(tp_plain.tensor_comm_s));
  // (Full recomputation repeats the layers' collectives, not those outside them: the embedding's,
  // the head's and the loss's, as in "tensor parallelism repeats the full-width ops" above.)
  const double outside = kOutsideLayers;
  CHECK(tp_full.tensor_comm_s - tp_plain.tensor_comm_s == approx(0.5 * (tp_plain.tensor_comm_s - outside)));
}

TEST_CASE("interleaved 1F1B divides the pipeline bubble by the chunks per device") {
  // Four equal layers on two stages, two microbatches: plain 1F1B is the busiest device's 2 slots
  // and the other's 1 (bubble about 1/3); with two chunks a device (layers 1 and 3 on one, 2 and 4
  // on the other) the fill and drain take half the other's slot (bubble about 0.5 / 2.5 = 0.2), and
  // each device exchanges a microbatch 2 v - 1 = 3 times (v = 2 over the boundary between them, 1
  // over the wrap-around), not once (since session 46; before, 2 v against 2). (Four products of a graph file, equal
  // chunks: since session 43 chunks of unequal work, an MLP's last layer without its activation,
  // run through the schedule op by op, the test below.)
  // (The first product reads an input that takes a gradient, a one-value op outside the layers,
  // so that its backward is two products as the others'; a product reading the data computes its
  // weight gradient alone, since session 45.)
  TrainingJob job = mlp_job();
  FileGraphDesign equal_layers;
  equal_layers.ops.push_back(FileOp{"x", "elementwise", -1, 0, 0, 0, 1, 1, 0, 1, {}});
  for (int i = 0; i < 4; ++i) {
    equal_layers.ops.push_back(FileOp{"fc" + std::to_string(i), "matmul", i, 1, 1000, 1000, 1, 0, 1, 1e6,
                                      std::vector<std::string>{i == 0 ? std::string("x") : "fc" + std::to_string(i - 1)}});
  }
  job.design = equal_layers;
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  job.parallelism->global_batch = 2000;
  const StepCost plain = cost_training_step(job);
  REQUIRE(plain.fits);
  CHECK(plain.bubble_s == approx(other_slots(plain)));
  CHECK(plain.bubble_fraction == approx(1.0 / 3).epsilon(0.1));
  job.parallelism->virtual_stages = 2;
  const StepCost interleaved = cost_training_step(job);
  CHECK(interleaved.bubble_s == approx(other_slots(interleaved) / 2));
  CHECK(interleaved.bubble_fraction == approx(0.2).epsilon(0.1));
  // The compute: the busiest device's two microbatches (its chunks hold layers 0 and 2 instead of
  // plain 1F1B's 0 and 1), as plain 1F1B's.
  for (const auto& row : interleaved.stages) {
    if (row.busiest) CHECK(interleaved.compute_s == approx(2 * (row.forward_s + row.backward_s)));
  }
  CHECK(interleaved.compute_s == approx(plain.compute_s));
  CHECK(interleaved.pipeline_comm_s == approx(3 * plain.pipeline_comm_s));
  // Step: the busiest device's 2 slots, the others' half a slot, the optimizer (no data
  // parallelism).
  double busiest_slot = 0;
  for (const auto& row : interleaved.stages) busiest_slot += row.busiest ? row.slot_s : 0.0;
  CHECK(interleaved.step_s - interleaved.optimizer_s == approx(2 * busiest_slot + other_slots(interleaved) / 2));
}

TEST_CASE("padding: the same step trains fewer tokens, so more steps and a lower MFU") {
  // A quarter of the positions padding: every step computes the same positions in the same time,
  // but trains 3/4 of the tokens, so the job takes 4/3 as many steps; MFU counts the tokens' FLOPs.
  TrainingJob job = mlp_job();
  const StepCost packed = cost_training_step(job);
  job.parallelism->padding = 0.25;
  const StepCost padded = cost_training_step(job);
  REQUIRE(packed.fits);
  REQUIRE(padded.fits);
  CHECK(padded.step_s == approx(packed.step_s));
  CHECK(padded.energy_per_step_j == approx(packed.energy_per_step_j));
  CHECK(padded.tokens_per_step == approx(750));
  CHECK(padded.steps == approx(1e6 / 750));
  CHECK(padded.steps == approx(packed.steps * 4 / 3));
  CHECK(padded.mfu == approx(0.75 * packed.mfu));
  CHECK(padded.model_flops_per_step == approx(0.75 * packed.model_flops_per_step));
  // The job: 4/3 the time and energy of the packed one.
  const TrainingResult a = simulate_training(job);
  job.parallelism->padding = 0;
  const TrainingResult b = simulate_training(job);
  CHECK(a.footprint.duration_s == approx(b.footprint.duration_s * 4 / 3));
  CHECK(a.footprint.it_energy_j == approx(b.footprint.it_energy_j * 4 / 3));
}

TEST_CASE("ZeRO-3's backward re-gathers all but the root unit, which holds at least the embedding table") {
  // Two small layers and a 100,000-token table (6.4M of the 6.5M parameters) on 16 ranks: the root
  // unit, gathered first, is the table (larger than the average of the 3 units); the backward
  // gathers the rest again, the two layers, not two average units (a review of session 46).
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(2);
  d.vocab = 100000;
  job.design = d;
  job.accelerators = 16;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 16;
  job.parallelism->zero_stage = 3;
  job.parallelism->overlap_communication = false;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  double table = 0;
  const graph::OpGraph g = graph::build_graph(d, graph::GraphShape{1, 2, true});  // (kept alive while its ops are read)
  for (const auto& op : g.ops()) {
    if (op.kind == graph::OpKind::embedding) table = std::max(table, op.params);
  }
  const double bytes = c.parameters * 2, units = 3;
  REQUIRE(table * 2 > bytes / units);
  const comm::Group both{16, 2, 8e10, false};
  using comm::Collective;
  CHECK(c.data_comm_s == approx(comm::collectives_s(Collective::all_gather, bytes, units, both) +
                                comm::collectives_s(Collective::all_gather, bytes - table * 2, units - 1, both) +
                                comm::collectives_s(Collective::reduce_scatter, bytes, units, both)));
}

TEST_CASE("hybrid sharding: ZeRO-3 inside groups of 8, one all-reduce of the shards across them") {
  // 16 data ranks on two nodes of 8. Fully sharded, the parameter gathers and gradient
  // reduce-scatters span both nodes (8 ranks a node on the network: 8 x 10 GB/s); hybrid, they run
  // in a node (100 GB/s) and one all-reduce of each rank's 1/8 gradient shard crosses the nodes
  // (2 ranks, one a node: 10 GB/s). Memory: the model states are divided by 8 instead of 16.
  TrainingJob job = mlp_job();
  job.design = small_decoder(2);
  job.accelerators = 16;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 16;
  job.parallelism->zero_stage = 3;
  job.parallelism->overlap_communication = false;  // data_comm_s is then all of it
  const StepCost full = cost_training_step(job);
  job.parallelism->shard_group = 8;
  const StepCost hybrid = cost_training_step(job);
  REQUIRE(full.fits);
  REQUIRE(hybrid.fits);
  const double grad_bytes = full.parameters * 2;  // fp16
  const double units = 2 + 1;                    // one collective a layer, one for embeddings and head
  const comm::Group intra{8, 1, 1e11, false};
  const comm::Group across{2, 2, 1e10, false};
  const comm::Group both{16, 2, 8e10, false};
  using comm::Collective;
  // (The backward gathers all but the root unit again: units - 1 of them, since session 46.)
  const double regather = grad_bytes * (units - 1) / units;
  const double expect_full = comm::collectives_s(Collective::all_gather, grad_bytes, units, both) +
                             comm::collectives_s(Collective::all_gather, regather, units - 1, both) +
                             comm::collectives_s(Collective::reduce_scatter, grad_bytes, units, both);
  const double expect_hybrid = comm::collectives_s(Collective::all_gather, grad_bytes, units, intra) +
                               comm::collectives_s(Collective::all_gather, regather, units - 1, intra) +
                               comm::collectives_s(Collective::reduce_scatter, grad_bytes, units, intra) +
                               comm::collectives_s(Collective::all_reduce, grad_bytes / 8, units, across);
  CHECK(full.data_comm_s == approx(expect_full));
  CHECK(hybrid.data_comm_s == approx(expect_hybrid));
  CHECK(hybrid.compute_s == approx(full.compute_s));
  // Memory: (weights + gradients + Adam state) / shard, activations unchanged.
  const double states_full = full.parameters * (2 + 2 + 12) / 16;
  const double states_hybrid = full.parameters * (2 + 2 + 12) / 8;
  CHECK(hybrid.memory_per_device_bytes - full.memory_per_device_bytes == approx(states_hybrid - states_full));
  // A group that does not divide the data ranks is a result with a reason.
  job.parallelism->shard_group = 5;
  const StepCost odd = cost_training_step(job);
  CHECK_FALSE(odd.fits);
  CHECK(odd.reason.find("shard_group (5)") != std::string::npos);
}

TEST_CASE("eager kernels: each kernel of a chain pays its launch, forward once and backward twice") {
  // The made-up device with a 10 us launch: an op of k kernels takes k launches forward and 2k
  // backward. Everything else about the eager step is the graph's bytes (test_graph.cpp).
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.gated_ffn = true;
  d.rms_norm = true;
  d.position = TransformerDesign::Position::rotary;
  d.biases = false;
  job.design = d;
  job.fusion = "attention";
  job.parallelism->microbatch = 2;
  job.parallelism->global_batch = 2;
  job.hardware.kernel_launch_s = 10e-6;
  job.eager = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto dev = hardware::make_device_model(job.hardware);
  const auto g = graph::build_graph(d, graph::GraphShape{2, 2, true, graph::Fusion::attention, true, true});
  for (const auto& op : g.ops()) {
    if (op.name != "decoder.0.attn.norm") continue;
    REQUIRE(op.kernels == 8);
    const auto f = hardware::kernel_time(dev, "fp16", op.flops, op.bytes, false);
    const auto b = hardware::kernel_time(dev, "fp16", 2 * op.flops, 2 * op.bytes, false);
    const auto row = [&](const char* phase) {
      return *std::find_if(c.ops.begin(), c.ops.end(), [&](const OpCostRow& r) { return r.op == op.name && r.phase == phase; });
    };
    CHECK(row("fwd").time_s == approx(f.seconds + 7 * 10e-6));
    CHECK(row("bwd").time_s == approx(b.seconds + 15 * 10e-6));
  }
  // The eager step is longer than the fused one by more than the launches alone.
  job.eager = false;
  const StepCost fused = cost_training_step(job);
  CHECK(c.step_s > fused.step_s);
}

TEST_CASE("GPT-NeoX's kernels: copies forward, backward and again under recomputation, the partitioned checkpoint once, by hand") {
  // The small decoder (d_model 64, 4 heads of 16, 32 positions) as Pythia's layer: biases, a quarter
  // of the channels rotated, two norms in parallel; 2 sequences, fp16, FlashAttention, full
  // recomputation, a 10 us launch. Byte counts are the graph's (test_graph.cpp).
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.position = TransformerDesign::Position::rotary;
  d.rotary_fraction = 0.25;
  d.parallel_block = true;
  d.parallel_norms = 2;
  job.design = d;
  job.precision = "fp16";
  job.fusion = "attention";
  job.parallelism->microbatch = 2;
  job.parallelism->global_batch = 2;
  job.parallelism->recompute = true;
  job.hardware.kernel_launch_s = 10e-6;
  const StepCost plain = cost_training_step(job);
  job.eager = true;
  job.neox = true;
  // Without partition_activations (GPT-NeoX-20B's configuration) no checkpoint op.
  const StepCost whole = cost_training_step(job);
  CHECK(std::none_of(whole.ops.begin(), whole.ops.end(), [](const OpCostRow& r) { return r.op == "decoder.0.checkpoint"; }));
  job.parallelism->partition_activations = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto dev = hardware::make_device_model(job.hardware);
  const double rate = 1e12 * dev.elementwise_efficiency;
  const auto row = [&](const std::string& op, const char* phase) { return op_row(c, op, phase); };
  // The qkv bias: 49,152 B a kernel forward; backward the heads' concatenation (49,152 B) after the
  // forward run again.
  const double bias_f = 49152.0 / rate + 10e-6;
  CHECK(row("decoder.0.attn.qkv_glue", "fwd").time_s == approx(bias_f));
  CHECK(row("decoder.0.attn.qkv_glue", "bwd").time_s == approx(bias_f + 49152.0 / rate + 10e-6));
  // The packing has no backward of its own: only its recomputation (98,304 B in 4 kernels).
  const double pack_f = 98304.0 / rate + 4 * 10e-6;
  CHECK(row("decoder.0.attn.flash_pack", "fwd").time_s == approx(pack_f));
  CHECK(row("decoder.0.attn.flash_pack", "bwd").time_s == approx(pack_f));
  // The rejoin: 32,768 B in 2 kernels; backward 114,688 B in 10, and the forward again.
  const double rejoin_f = 32768.0 / rate + 2 * 10e-6;
  CHECK(row("decoder.0.attn.rotary_rejoin", "bwd").time_s == approx(rejoin_f + 114688.0 / rate + 10 * 10e-6));
  // The checkpoint's clone (16,384 B) runs once; backward the rebuild, 57,344 B in 4 kernels, and
  // no recomputation of the clone.
  CHECK(row("decoder.0.checkpoint", "fwd").time_s == approx(16384.0 / rate + 10e-6));
  CHECK(row("decoder.0.checkpoint", "bwd").time_s == approx(57344.0 / rate + 4 * 10e-6));
  // The step grows by at least these rows (the glue ops' sum over fwd and bwd), and no other op's
  // time moves.
  double glue = 0;
  for (const auto& r : c.ops) {
    if (r.op.find("_glue") != std::string::npos || r.op.find("rotary_rejoin") != std::string::npos ||
        r.op.find("flash_pack") != std::string::npos || r.op.find("out_permute") != std::string::npos ||
        r.op.find("bias_adds") != std::string::npos || r.op.find(".checkpoint") != std::string::npos) {
      glue += r.time_s;
    }
  }
  CHECK(glue > 0);
  CHECK(c.step_s - plain.step_s == approx(glue).epsilon(1e-9));
  CHECK(op_row(c, "decoder.0.attn.qkv", "bwd").time_s == approx(op_row(plain, "decoder.0.attn.qkv", "bwd").time_s));
  // Unfused kernels elsewhere do not add the products' biases a second time: the glue holds
  // GPT-NeoX's bias adds (under `fusion: none` alone, the qkv product adds its own).
  job.fusion = "none";
  const StepCost unfused = cost_training_step(job);
  REQUIRE(unfused.fits);
  CHECK(op_row(unfused, "decoder.0.attn.qkv", "fwd").bytes == approx(op_row(c, "decoder.0.attn.qkv", "fwd").bytes));
  job.neox = false;
  job.eager = false;
  CHECK(op_row(cost_training_step(job), "decoder.0.attn.qkv", "fwd").bytes > op_row(c, "decoder.0.attn.qkv", "fwd").bytes);
}

TEST_CASE("LargeScale's kernels: GLM-130B's glue forward, backward and again under recomputation, by hand") {
  // The small decoder as GLM-130B's layer: biases, DeepNorm, a GeGLU; 2 sequences, fp16, the fused
  // softmax, full recomputation, a 10 us launch. Byte counts are the graph's (test_graph.cpp).
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.gated_ffn = true;
  d.deepnorm = true;
  job.design = d;
  job.precision = "fp16";
  job.fusion = "softmax";
  job.parallelism->microbatch = 2;
  job.parallelism->global_batch = 2;
  job.parallelism->recompute = true;
  job.hardware.kernel_launch_s = 10e-6;
  const StepCost plain = cost_training_step(job);
  job.largescale = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto dev = hardware::make_device_model(job.hardware);
  const double rate = 1e12 * dev.elementwise_efficiency;
  // DeepNorm's multiply (4,096 values, 16,384 B a kernel): forward; backward its gradient and the
  // forward again.
  const double alpha_f = 16384.0 / rate + 10e-6;
  CHECK(op_row(c, "decoder.0.attn.alpha", "fwd").time_s == approx(alpha_f));
  CHECK(op_row(c, "decoder.0.attn.alpha", "bwd").time_s == approx(2 * alpha_f));
  // The context's copy has no backward of its own: only its recomputation.
  CHECK(op_row(c, "decoder.0.attn.out_permute", "bwd").time_s == approx(op_row(c, "decoder.0.attn.out_permute", "fwd").time_s));
  // The step grows by exactly the glue rows; no other op's time moves.
  double glue = 0;
  for (const auto& r : c.ops) {
    if (r.op.find("qkv_glue") != std::string::npos || r.op.find("out_permute") != std::string::npos ||
        r.op.find("up_bias") != std::string::npos || r.op.find(".alpha") != std::string::npos) {
      glue += r.time_s;
    }
  }
  CHECK(glue > 0);
  CHECK(c.step_s - plain.step_s == approx(glue).epsilon(1e-9));
  // Under `fusion: none` the products add no bias of their own beside the glue's.
  job.fusion = "none";
  const StepCost unfused = cost_training_step(job);
  job.largescale = false;
  CHECK(op_row(cost_training_step(job), "decoder.0.attn.qkv", "fwd").bytes > op_row(unfused, "decoder.0.attn.qkv", "fwd").bytes);
}

TEST_CASE("TensorFlow 1.x's kernels: a dropout's five forward and two backward, transposes, a mask without a backward, by hand") {
  // The small decoder (d_model 64, 4 heads of 16, 32 positions), 2 sequences, fp32, dropout 0.1,
  // a 10 us launch. The attention's output dropout runs over 2 x 32 x 64 = 4,096 values.
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.dropout = 0.1;
  job.design = d;
  job.precision = "fp32";
  job.fusion = "tensorflow1";
  job.parallelism->microbatch = 2;
  job.parallelism->global_batch = 2;
  job.hardware.kernel_launch_s = 10e-6;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto dev = hardware::make_device_model(job.hardware);
  const double rate = 1e12 * dev.elementwise_efficiency;  // the device's bandwidth for these kernels
  const auto row = [&](const std::string& op, const char* phase) { return op_row(c, op, phase); };
  // Forward: 40 B a value (random_uniform 4, + keep_prob 8, floor 8, / keep_prob 8, * mask 12) =
  // 163,840 B in 5 kernels; backward: * mask (12) and / keep_prob (8) = 81,920 B in 2.
  CHECK(row("decoder.0.attn.out_dropout", "fwd").bytes == approx(163840.0));
  CHECK(row("decoder.0.attn.out_dropout", "fwd").time_s == approx(163840.0 / rate + 5 * 10e-6));
  CHECK(row("decoder.0.attn.out_dropout", "bwd").bytes == approx(81920.0));
  CHECK(row("decoder.0.attn.out_dropout", "bwd").time_s == approx(81920.0 / rate + 2 * 10e-6));
  // The heads' transposes: Q, K and V, 3 x 4,096 values read and written, 98,304 B in 3 kernels
  // each way.
  CHECK(row("decoder.0.attn.split_heads", "fwd").time_s == approx(98304.0 / rate + 3 * 10e-6));
  CHECK(row("decoder.0.attn.split_heads", "bwd").time_s == approx(98304.0 / rate + 3 * 10e-6));
  // The mask's add: forward a pass over the whole 2 x 4 x 32 x 32 scores (8,192 x 8 B); backward
  // nothing.
  CHECK(row("decoder.0.attn.mask", "fwd").time_s == approx(65536.0 / rate + 10e-6));
  CHECK(row("decoder.0.attn.mask", "bwd").time_s == 0);
  CHECK(row("decoder.0.attn.mask", "bwd").bytes == 0);
  // The same job with fusion none: one dropout kernel of 8 B a value forward, two of 16 B backward.
  job.fusion = "none";
  const StepCost none = cost_training_step(job);
  const auto none_row = [&](const char* phase) { return op_row(none, "decoder.0.attn.out_dropout", phase); };
  CHECK(none_row("fwd").time_s == approx(32768.0 / rate + 10e-6));
  CHECK(none_row("bwd").time_s == approx(65536.0 / rate + 2 * 10e-6));
  CHECK(c.step_s > none.step_s);
}

TEST_CASE("TensorFlow 1.x's kernels: serving holds the softmax's tensors once, and replicated key heads are transposed whole") {
  // (Since session 48, a review.) Serving's memory check takes the largest op's tensors: Eigen's
  // softmax moves its score matrix three times over (6p an element in 4 kernels) but holds its
  // input and output once, as under fusion none: a decoder of 512 positions, 8 heads, fp32, whose
  // largest op is the score matrix (8 x 512 x 512 x 2 x 4 B = 16,777,216 B).
  InferenceJob serve;
  serve.id = "s";
  serve.hardware = made_up();
  TransformerDesign d = small_decoder(1);
  d.heads = 8;
  d.seq_len = 512;
  serve.design = d;
  serve.batch = 1;
  serve.precision = "fp32";
  serve.inferences = 1;
  serve.fusion = "none";
  const InferenceResult none = cost_inference(serve);
  serve.fusion = "tensorflow1";
  const InferenceResult tf1 = cost_inference(serve);
  CHECK(none.activation_bytes == approx(16777216.0));
  CHECK(tf1.activation_bytes == approx(none.activation_bytes));
  CHECK(tf1.batch_time_s > none.batch_time_s);
  // Training, 8 query heads of 8 and one key/value head over a tensor group of 2: each rank holds
  // the key/value head whole, so its transposes move its 4 query heads and the whole key and value
  // head: (4 + 2) x 8 x 32 positions = 1,536 values, 6,144 B at 2 B read and written (split with
  // the query heads, 5,120 B).
  TrainingJob job = mlp_job();
  TransformerDesign g = small_decoder(1);
  g.heads = 8;
  g.kv_heads = 1;
  job.design = g;
  job.fusion = "tensorflow1";
  job.accelerators = 2;
  job.parallelism->tensor = 2;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  CHECK(op_row(c, "decoder.0.attn.split_heads", "fwd").bytes == approx(6144.0));
}

TEST_CASE("a fused attention kernel runs at the measured rate of its FlashAttention generation") {
  TrainingJob job = mlp_job();
  TransformerDesign d = small_decoder(1);
  d.seq_len = 1024;
  job.design = d;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 1;
  job.hardware.attention_efficiency = {{"flash1", 0.25}, {"flash2", 0.4}};
  const auto attention = [&job](const std::string& fusion, const std::string& phase) {
    job.fusion = fusion;
    const StepCost c = cost_training_step(job);
    REQUIRE(c.fits);
    for (const auto& op : c.ops) {
      if (op.op == "decoder.0.attn.attention" && op.phase == phase) return op;
    }
    FAIL("no fused attention op for " << fusion);
    return c.ops.front();
  };
  // By hand: 4 heads of 1024 x 1024 causal scores from 16-wide heads: the two products
  // 2 x (2 x 4 x 1024 x 1024 x 16) / 2 = 134,217,728 FLOPs, and the softmax's 5 a score,
  // 5 x 4 x 1024 x 1024 / 2 = 10,485,760; Q, K, V, O: 2 B x 4 x 4 x 1024 x 16 = 524,288 B, 1.05 us
  // at 0.5 x 1 TB/s. Compute-bound: the measured rate is over the products' FLOPs, flash1 at
  // 0.25 x 100 TFLOP/s, `attention` (= flash2) at 0.4; flash3 (not in the entry) runs at the GEMM
  // ceiling, 0.5, over all the op's FLOPs. The backward pass is 2.5 times the work.
  // FlashAttention-1 runs a 16-wide head in its 32-wide kernel (d <= 32): half its rate.
  const double products = 134217728.0, flops = products + 10485760.0;
  const auto f1 = attention("flash1", "fwd");
  CHECK(f1.flops == approx(flops));
  CHECK(f1.bytes == approx(524288));
  CHECK(f1.time_s == approx(products / (2.5e13 * 16 / 32)));
  CHECK(f1.bound == "compute");
  CHECK(attention("flash1", "bwd").time_s == approx(2.5 * products / (2.5e13 * 16 / 32)));
  CHECK(attention("attention", "fwd").time_s == approx(products / 4e13));
  CHECK(attention("flash2", "fwd").time_s == approx(products / 4e13));
  CHECK(attention("flash3", "fwd").time_s == approx(flops / 5e13));
  // Heads of 80 (d_model 320) run in FlashAttention-1's 128-wide kernel (64 < d <= 128), at 80/128
  // of its rate, products 5 times the 16-wide ones'; a 64-wide head (d_model 256) fills its kernel.
  // FlashAttention-2 has no such rule here.
  d.d_model = 320;
  job.design = d;
  CHECK(attention("flash1", "fwd").time_s == approx(5 * products / (2.5e13 * 80 / 128)));
  CHECK(attention("flash2", "fwd").time_s == approx(5 * products / 4e13));
  d.d_model = 256;
  job.design = d;
  CHECK(attention("flash1", "fwd").time_s == approx(4 * products / 2.5e13));
  d.d_model = 64;
  job.design = d;
  // Unfused attention has no such op; its products run at the GEMM ceiling.
  job.fusion = "elementwise";
  const StepCost unfused = cost_training_step(job);
  CHECK(std::none_of(unfused.ops.begin(), unfused.ops.end(), [](const auto& op) { return op.op == "decoder.0.attn.attention"; }));
}

TEST_CASE("collectives: NCCL's ring and tree latencies and bandwidths, by hand") {
  using comm::Collective;
  // Not a GPU: a ring with a fixed start-up. 1 GB all-reduced over 4 ranks at 10 GB/s:
  // 2 x 3/4 x 0.1 s + 20 us.
  CHECK(comm::collective_s(Collective::all_reduce, 1e9, comm::Group{4, 1, 1e10, false}) == approx(0.15 + 20e-6));
  // One NVLink node of 8 GPUs at 150 GB/s, 50 MB all-reduced: ring Simple, 8.4 us + 14 hops x
  // 3.4 us = 56 us, plus 2 x 7/8 x 50 MB / 150 GB/s = 583.3 us (LL128: 40.6 + 634.1 us; LL: 15 +
  // 2,333 us; a tree inside the node, LL128: 31.5 + 1,035 us).
  CHECK(comm::collective_s(Collective::all_reduce, 50e6, comm::Group{8, 1, 150e9, true}) ==
        approx(56e-6 + 14.0 / 8 * 50e6 / 150e9));
  // 512 GPUs on 64 nodes at 25 GB/s, one layer's 404 MB all-gathered: 511 steps, 63 across
  // nodes. Simple: 8.4 + 448 x 3.4 + 63 x 14 = 2,413.6 us + 511/512 x 16.16 ms = 18.542 ms;
  // LL128: 1,117.2 us + 16.128 / 0.92 ms = 18.648 ms.
  const comm::Group cluster{512, 64, 25e9, true};
  CHECK(comm::collective_s(Collective::all_gather, 404e6, cluster) ==
        approx((8.4 + 448 * 3.4 + 63 * 14) * 1e-6 + 511.0 / 512 * 404e6 / 25e9));
  // A reduce-scatter costs the same as an all-gather; 32 of them over the same bytes pay 32 start-ups.
  CHECK(comm::collective_s(Collective::reduce_scatter, 404e6, cluster) ==
        approx(comm::collective_s(Collective::all_gather, 404e6, cluster)));
  CHECK(comm::collectives_s(Collective::all_gather, 32 * 404e6, 32, cluster) ==
        approx(32 * comm::collective_s(Collective::all_gather, 404e6, cluster)));
  // 1 MB all-reduced over the same 512 GPUs: the tree (LL128) wins, 14 + 2 x (7 x 1.25 + 6 x 8.5)
  // = 133.5 us + 1 MB / (0.5 x 25 GB/s x 0.92 x 120/128 x 0.6) = 154.6 us (0.6: NCCL's tree
  // correction at 2^13 x 64 B), where the ring would pay 1,022 steps (Simple: over 6 ms).
  CHECK(comm::collective_s(Collective::all_reduce, 1e6, cluster) ==
        approx(133.5e-6 + 1e6 / (0.5 * 25e9 * 0.92 * 120 / 128 * 0.6)));
  // 1 GB all-reduced over 16 GPUs on 2 nodes: the ring (Simple) wins. 30 steps, 2 x 2 of them
  // across nodes: (8.4 + 26 x 3.4 + 4 x 14) x 1.4 (NCCL's ring plateau) = 213.9 us, plus
  // 30/16 x 1 GB / 25 GB/s = 75 ms (LL128: 79.4 us + 81.5 ms; tree Simple: 448 us + 87.0 ms).
  CHECK(comm::collective_s(Collective::all_reduce, 1e9, comm::Group{16, 2, 25e9, true}) ==
        approx((8.4 + 26 * 3.4 + 4 * 14) * 1.4e-6 + 30.0 / 16 * 1e9 / 25e9));
  // 8 MB the same way: still the tree (LL128), at NCCL's correction for 2^16 x 64 B, 0.8:
  // 133.5 us + 8 MB / (0.5 x 25 GB/s x 0.92 x 120/128 x 0.8) = 927.5 us (ring LL128: 2.9 ms).
  CHECK(comm::collective_s(Collective::all_reduce, 8e6, cluster) ==
        approx(133.5e-6 + 8e6 / (0.5 * 25e9 * 0.92 * 120 / 128 * 0.8)));
  // 16 KB all-gathered over 16 GPUs on 2 nodes: LL wins, its hops inside a node raised to the
  // host's 1 us of posting a network operation: 6.6 + 14 x 1.0 + 1 x 2.7 = 23.3 us, plus
  // 15/16 x 16 KB / (25 GB/s / 4) = 2.4 us (LL128: 45.3 us, Simple: 70.6 us).
  CHECK(comm::collective_s(Collective::all_gather, 16e3, comm::Group{16, 2, 25e9, true}) ==
        approx(23.3e-6 + 15.0 / 16 * 16e3 / (25e9 * 0.25)));
  // Nothing to do for one rank or no bytes.
  CHECK(comm::collective_s(Collective::all_reduce, 1e9, comm::Group{1, 1, 1e10, true}) == 0);
  CHECK(comm::collective_s(Collective::all_gather, 0, cluster) == 0);
}

TEST_CASE("a design too large to cost is a result with its reason, not an overflow") {
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{std::int64_t{1} << 29, std::int64_t{1} << 29}};
  const StepCost c = cost_training_step(job);
  CHECK_FALSE(c.fits);
  CHECK(c.reason == "too large to cost: an op's weights hold 2.88e+17 elements (the builder's limit is 2^56 elements a tensor)");
  const TrainingResult r = simulate_training(job);
  CHECK_FALSE(r.ok);
  CHECK(r.reason == c.reason);
  // data x tensor x pipeline whose product is past 2^63: compared in floating point.
  job = mlp_job();
  job.accelerators = 4;
  job.parallelism->data = std::int64_t{1} << 40;
  job.parallelism->tensor = std::int64_t{1} << 30;
  const StepCost bad = cost_training_step(job);
  CHECK_FALSE(bad.fits);
  CHECK(bad.reason == "accelerators (4) is not data x tensor x pipeline (1099511627776 x 1073741824 x 1)");
}

TEST_CASE("ZeRO-1 gradient reduction: reduce-scatter, or DeepSpeed's bf16 all-reduce of the whole gradient") {
  // The MLP on 8 data ranks, ZeRO-1, nothing overlapped: exposed data-parallel time is the
  // gradients' reduction plus the parameters' gather.
  TrainingJob job = mlp_job();
  job.accelerators = 8;
  job.parallelism->global_batch = 8000;
  job.parallelism->zero_stage = 1;
  job.parallelism->overlap_communication = false;
  const StepCost scatter = cost_training_step(job);
  job.parallelism->gradient_reduction = "all_reduce";
  const StepCost whole = cost_training_step(job);
  REQUIRE(scatter.fits);
  // fp16 gradients and parameters, 1.001e6 of each, over the node's 8 ranks (a made-up part, not
  // a GPU: rings with a fixed start-up each): the reduce-scatter and the gather, or the all-reduce
  // and the gather.
  const comm::Group node{8, 1, 1e11, false};
  const double rs = comm::collective_s(comm::Collective::reduce_scatter, 2.002e6, node);
  const double ag = comm::collective_s(comm::Collective::all_gather, 2.002e6, node);
  const double ar = comm::collective_s(comm::Collective::all_reduce, 2.002e6, node);
  CHECK(scatter.data_comm_s == approx(rs + ag));
  CHECK(whole.data_comm_s == approx(ar + ag));
  CHECK(whole.step_s - scatter.step_s == approx(whole.data_comm_s - scatter.data_comm_s));
  // Overlapped, with compute enough to hide everything: ZeRO-1's gather hides behind the next
  // forward and its one bucket's reduction is the exposed last one (the reduce-scatter); DeepSpeed's
  // BF16_Optimizer gathers inside its step() (update_lp_params -> all_gather_dp_groups), so the
  // next forward waits for it: its gather is exposed beside the all-reduce (since session 35).
  job.parallelism->overlap_communication = true;
  job.hardware.gemm_efficiency = 0.001;
  job.parallelism->gradient_reduction = "reduce_scatter";
  const StepCost hidden = cost_training_step(job);
  job.parallelism->gradient_reduction = "all_reduce";
  const StepCost step_gather = cost_training_step(job);
  REQUIRE(hidden.compute_s > 10 * (ar + ag));
  CHECK(hidden.data_comm_s == approx(rs));
  CHECK(step_gather.data_comm_s == approx(ar + ag));
}

TEST_CASE("ZeRO-1 as DeepSpeed 0.3's stage1.py runs it: copies over every gradient, not the shard alone, by hand") {
  // The MLP (1.001e6 parameters, fp16) on 8 data ranks, ZeRO-1: the reduce-scatter's flattening
  // copy, division and c10d flattening (3 x 4 B), the overflow check and the norm through float32
  // (2 x (2 + 4 + 4) B) and the gather's copy back (4 B): 36 B a parameter the device holds, a
  // memory-bound pass at the made-up device's framework rate, added to the optimizer; communication
  // unchanged.
  TrainingJob job = mlp_job();
  job.accelerators = 8;
  job.precision = "fp16";
  job.parallelism->global_batch = 8000;
  job.parallelism->zero_stage = 1;
  job.parallelism->overlap_communication = false;
  const StepCost scatter = cost_training_step(job);
  job.parallelism->gradient_reduction = "stage1_copies";
  const StepCost copies = cost_training_step(job);
  REQUIRE(copies.fits);
  const auto dev = hardware::make_device_model(job.hardware);
  const auto pass = hardware::kernel_time(dev, "fp32", 0, 36 * 1.001e6, false);
  CHECK(op_row(copies, "optimizer.stage1_copies", "opt").bytes == approx(36 * 1.001e6));
  CHECK(copies.optimizer_s - scatter.optimizer_s == approx(pass.seconds));
  CHECK(copies.data_comm_s == approx(scatter.data_comm_s));
  CHECK(copies.step_s - scatter.step_s == approx(pass.seconds));
}

TEST_CASE("the step ends when the last device has reduced and updated: device 0 ends the schedule") {
  // 4 layers on 2 stages x 4 data ranks, the last layer 4 times wider: device 1 holds 5e6
  // parameters and device 0 2e6; device 1 is the busiest (its slot paces the schedule), but it
  // ends its schedule device 0's last backward earlier. Nothing overlapped.
  TrainingJob job = mlp_job();
  job.design = MlpDesign{{1000, 1000, 1000, 1000, 4000}, true};
  job.accelerators = 8;
  job.parallelism->pipeline = 2;
  job.parallelism->microbatch = 125;
  job.parallelism->global_batch = 2000;
  job.parallelism->overlap_communication = false;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  REQUIRE(c.stages.size() == 2);
  CHECK(c.stages[1].busiest);
  // Device 0's tail is its own reduction and update, 2 / 5 of device 1's (by the parameters each
  // holds, 2,002,000 against 5,005,000 with biases); device 1's is its own less device 0's last
  // backward, with the backward's share of its slot's sends (as the bubble counts the drain; since
  // session 46, its compute alone).
  // Device 0's slot holds its exchange with device 1, one a microbatch: 125 x 1,000 fp16 values
  // over NVLink (both stages' 4 ranks in one node), 250,000 / 1e11 s.
  const StageCostRow& s0 = c.stages[0];
  REQUIRE(s0.slot_s - s0.forward_s - s0.backward_s == approx(250000 / 1e11));
  const double drain0 = s0.backward_s + 250000 / 1e11 * s0.backward_s / (s0.forward_s + s0.backward_s);
  const double tail1 = c.stages[1].tail_s + drain0;
  CHECK(c.stages[0].tail_s == approx(tail1 * 2002000.0 / 5005000.0));
  CHECK(c.data_comm_s + c.optimizer_s == approx(std::max(c.stages[0].tail_s, c.stages[1].tail_s)));
  double total = 0;
  for (const auto& part : step_components(c)) total += part.time_s;
  CHECK(total == approx(c.step_s));
  // Mirrored (the wide layer first), device 0 is the busiest and the last: its whole tail counts.
  job.design = MlpDesign{{4000, 1000, 1000, 1000, 1000}, true};
  const StepCost m = cost_training_step(job);
  CHECK(m.stages[0].busiest);
  CHECK(m.data_comm_s + m.optimizer_s == approx(m.stages[0].tail_s));
  CHECK(m.stages[1].tail_s < m.stages[0].tail_s);
}

TEST_CASE("context parallelism: half a sequence a rank, the whole sequence's keys and values gathered, by hand") {
  // The two-layer small decoder (32 tokens, 4 heads of 16), fp16, two sequences a step, one a
  // microbatch: on one device, and on a context pair (each rank 16 positions of each sequence).
  TrainingJob one = mlp_job();
  one.design = small_decoder(2);
  one.parallelism->microbatch = 1;
  one.parallelism->global_batch = 2;
  one.parallelism->overlap_communication = false;
  TrainingJob pair = one;
  pair.accelerators = 2;
  pair.parallelism->context = 2;
  const StepCost a = cost_training_step(one), b = cost_training_step(pair);
  REQUIRE(a.fits);
  REQUIRE(b.fits);
  CHECK(b.data == 1);
  CHECK(b.microbatches == 2);
  const auto fwd = [](const StepCost& c, const std::string& name) {
    for (const auto& op : c.ops) {
      if (op.op == name && op.phase == "fwd") return op.flops;
    }
    FAIL("no op " << name);
    return 0.0;
  };
  // A token's ops: half the tokens. The feed-forward's up projection: 2 x 32 x 64 x 256 = 1,048,576
  // FLOPs on one device, 524,288 on a rank of the pair.
  CHECK(fwd(a, "decoder.0.ffn.up") == approx(1048576));
  CHECK(fwd(b, "decoder.0.ffn.up") == approx(524288));
  // The scores, which an unfused kernel computes whole: 4 heads x 32 x 32 x 16 x 2 FLOPs = 131,072;
  // a rank's 16 queries against all 32 keys: 65,536 (half of each counted as model FLOPs, its two
  // balanced chunks' causal share).
  CHECK(fwd(a, "decoder.0.attn.scores") == approx(131072));
  CHECK(fwd(b, "decoder.0.attn.scores") == approx(65536));
  // The same model FLOPs a step: the pair trains the same tokens.
  CHECK(b.model_flops_per_step == approx(a.model_flops_per_step));
  CHECK(b.tokens_per_step == approx(a.tokens_per_step));
  // Each attention gathers the sequence's keys and values, 32 x 2 x 64 values of 2 B = 8,192 B,
  // forward and reduce-scatters their gradients backward: 2 microbatches x 2 layers, the step's
  // context communication (its own component and op row since session 40). No tensor group:
  // nothing in the tensor communication.
  const comm::Group g{2, 1, 1e11, false, 2, 2};  // the made-up device is no GPU: a ring with a fixed start-up
  const double kv = 2 * 2 * (comm::collective_s(comm::Collective::all_gather, 8192, g) +
                             comm::collective_s(comm::Collective::reduce_scatter, 8192, g));
  CHECK(a.tensor_comm_s == 0);
  CHECK(a.context_comm_s == 0);
  CHECK(b.tensor_comm_s == 0);
  CHECK(b.context_comm_s == approx(kv));
  double kv_row = 0;
  for (const auto& op : b.ops) {
    if (op.op == "context.kv_gather") kv_row += op.time_s;
    CHECK(op.op != "tensor.allreduce");
  }
  CHECK(kv_row == approx(kv));
  REQUIRE(b.stages.size() == 1);
  CHECK(b.stages[0].context_comm_s == approx(kv / 2));  // a microbatch's
  CHECK(b.stages[0].tensor_comm_s == 0);
  // The components still add up to the step.
  double parts = 0;
  for (const auto& part : step_components(b)) parts += part.time_s;
  CHECK(parts == approx(b.step_s));
  // A fused attention keeps only its own 16 positions' keys and values and gathers the sequence's
  // again before its backward (Transformer Engine's all-gather CP, since session 40): three
  // collectives a layer and microbatch, and 16 x 2 x 64 values of 2 B = 4,096 B a layer less kept
  // than if it kept the gathered ones.
  TrainingJob fused_one = one, fused_pair = pair;
  fused_one.fusion = fused_pair.fusion = "attention";
  fused_pair.accelerators = 2;
  const StepCost fa = cost_training_step(fused_one), fb = cost_training_step(fused_pair);
  REQUIRE(fa.fits);
  REQUIRE(fb.fits);
  CHECK(fb.context_comm_s == approx(2 * 2 * (2 * comm::collective_s(comm::Collective::all_gather, 8192, g) +
                                             comm::collective_s(comm::Collective::reduce_scatter, 8192, g))));
  double kept_one = 0, kept_pair = 0;
  for (const auto& row : fa.stages) kept_one += row.activation_bytes;
  for (const auto& row : fb.stages) kept_pair += row.activation_bytes;
  // Everything a token keeps halves with its tokens; the keys and values kept halve too (the
  // gathered whole would have kept them at the one device's size: 4,096 B a layer more).
  CHECK(kept_pair == approx(kept_one / 2));
  // The pair holds the same weights: their gradients are all-reduced over it, as over a data pair.
  TrainingJob data_pair = one;
  data_pair.accelerators = 2;
  data_pair.parallelism->global_batch = 4;  // two sequences a data rank, as the context pair's
  const StepCost d = cost_training_step(data_pair);
  REQUIRE(d.fits);
  CHECK(a.data_comm_s == 0);
  CHECK(b.data_comm_s > 0);
  CHECK(b.data_comm_s == approx(d.data_comm_s));
  // Accelerators that are not data x tensor x pipeline x context: a result with the reason.
  pair.accelerators = 3;
  const StepCost bad = cost_training_step(pair);
  CHECK_FALSE(bad.fits);
  CHECK(bad.reason.find("is not data x tensor x pipeline x context") != std::string::npos);
}

TEST_CASE("the interleaved schedule run op by op, by hand") {
  using dlcarbon::cost_detail::simulate_interleaved;
  // Equal chunks (p 4, v 2, 8 microbatches; forward 1 s, backward 2 s a chunk): Narayanan et al.
  // 2021's m v (f + b) of work and a fill and drain of (p - 1) (f + b); in flight on device d,
  // 2 (p - d - 1) + (v - 1) p warm-up chunks and one more.
  auto run = simulate_interleaved(4, 2, 8, std::vector<double>(8, 1.0), std::vector<double>(8, 2.0),
                                  {std::vector<double>(8, 1.0)});
  REQUIRE(run.ok);
  CHECK(run.makespan_s == approx(8 * 2 * 3 + 3 * 3));
  CHECK(run.peak_held.at(0) == std::vector<double>{11, 9, 7, 5});
  CHECK(run.device_end_s.at(0) == approx(run.makespan_s));  // device 0 runs the last backward
  // A device's layers all in its first chunk (p 2, v 2, chunks 2 and 3 empty; m = p: device 0 all
  // warm-up, 2 (p - 1) + (v - 1) p = 4 forwards, device 1 2 of its 4):
  // the plain 1F1B's (m + p - 1) (f + b) = 9 s, by hand (device 0: F0 0-1, F1 1-2; device 1: F0
  // 1-2, F1 2-3, B0 3-5, B1 5-7; device 0: B0 5-7, B1 7-9), not the closed form's
  // m (f + b) + (p - 1) (f + b) / v = 7.5 s.
  run = simulate_interleaved(2, 2, 2, {1, 1, 0, 0}, {2, 2, 0, 0}, {{1, 1, 1, 1}});
  REQUIRE(run.ok);
  CHECK(run.makespan_s == approx(9));
  CHECK(run.device_end_s == std::vector<double>{9, 7});
  // Device 0: both microbatches of both chunks; device 1: its chunk 1's two and one of chunk 3's.
  // (Megatron-LM before 2024 ran every device all warm-up where m = p, 4 on device 1 too; its current
  // order does not, and the closed form's activations follow it: since session 42, a review.)
  CHECK(run.peak_held.at(0) == std::vector<double>{4, 3});
  // m not a multiple of p (the loader refuses it under interleaving, as Megatron-LM does): this
  // order waits on itself, and says so (a review's case: p 4, v 3, m 5).
  CHECK_FALSE(simulate_interleaved(4, 3, 5, std::vector<double>(12, 1.0), std::vector<double>(12, 2.0), {}).ok);
  // Inputs that do not describe the chunks: no run.
  CHECK_FALSE(simulate_interleaved(2, 2, 2, {1, 1}, {2, 2}, {}).ok);
  // Uneven chunks in steady state repeat group after group: the makespan grows by the same amount
  // from 16 to 32 and from 32 to 48 groups of p (what the step extends linearly past 32 groups), by
  // more than the busiest device's 16 p slots here (the order's waits between unequal chunks),
  // and the activations in flight have converged.
  const std::vector<double> f{0.9, 0.2, 0.5, 0.1, 0.3, 0.8, 0.2, 0.6}, b{1.9, 0.5, 1.1, 0.2, 0.7, 1.6, 0.5, 1.3};
  const auto m16 = simulate_interleaved(4, 2, 64, f, b, {{1, 2, 3, 4, 5, 6, 7, 8}});
  const auto m32 = simulate_interleaved(4, 2, 128, f, b, {{1, 2, 3, 4, 5, 6, 7, 8}});
  const auto m48 = simulate_interleaved(4, 2, 192, f, b, {{1, 2, 3, 4, 5, 6, 7, 8}});
  REQUIRE((m16.ok && m32.ok && m48.ok));
  CHECK(m48.makespan_s - m32.makespan_s == approx(m32.makespan_s - m16.makespan_s).epsilon(1e-9));
  CHECK(m32.peak_held == m48.peak_held);
  double busiest = 0;
  for (int d = 0; d < 4; ++d) busiest = std::max(busiest, f[d] + b[d] + f[d + 4] + b[d + 4]);
  CHECK(m32.makespan_s - m16.makespan_s >= 64 * busiest - 1e-9);
}

TEST_CASE("interleaved 1F1B with uneven chunks: the fill, the drain and the activations of the schedule run op by op") {
  // A 4-layer decoder on 2 stages, 8 microbatches. Each device's layers all in its first chunk
  // ({2, 2, 0, 0}, v 2): device 0 keeps 4 microbatches of its layers in flight (chunk 0's of the
  // first two groups before its first chunk-0 backward), twice plain 1F1B's 2, where the closed
  // form of equal chunks gave 2.5 (since session 42, a review: [12, 12, 0, ..., 0] on two devices
  // and v 8 had been charged 1 / 8 of a slot of fill and drain).
  TrainingJob job = mlp_job();
  job.design = small_decoder(4);
  on_two_stages(job, 1, 8);
  job.parallelism->stage_layers = {2, 2};
  const StepCost plain = cost_training_step(job);
  REQUIRE(plain.fits);
  const double two_s_e = plain.stages.at(0).activation_bytes;
  job.parallelism->global_batch = 1;
  const double s_e = cost_training_step(job).stages.at(0).activation_bytes;
  job.parallelism->global_batch = 8;
  job.parallelism->virtual_stages = 2;
  job.parallelism->stage_layers = {2, 2, 0, 0};
  const StepCost uneven = cost_training_step(job);
  REQUIRE(uneven.fits);
  CHECK(uneven.stages.at(0).activation_bytes - two_s_e == approx(2 * (two_s_e - s_e)));
  // Its fill and drain: more than the closed form's (the other device's slot / v), at most the
  // other device's whole slot and the sends of the empty chunks.
  double others = 0;
  for (const auto& row : uneven.stages) others += row.busiest ? 0.0 : row.slot_s;
  // Its fill and drain: not the closed form's (the other device's slot / v), nor even plain
  // 1F1B's (its whole slot): Megatron-LM's order runs each group's chunk-0 forwards before the
  // backwards that wait on the other device, which idles both (3.5 slots here; an independent
  // script of the same order agrees: 17.58 us of 58.77). The step is slower than without the
  // empty chunks.
  CHECK(uneven.bubble_s > 3 * others);
  CHECK(uneven.bubble_s < 4 * others);
  CHECK(uneven.step_s > plain.step_s);
  // Equal layer counts whose chunks still differ in work (the embeddings on the first, the head
  // and loss on the last) run through the schedule too (since session 43; before, only unequal
  // layer counts did, and the closed form's other slot / v left the heavier chunks' share out):
  // a fill and drain above the closed form's, below plain 1F1B's whole slot. Chunks of equal work
  // keep the closed form (the test above).
  job.parallelism->stage_layers = {1, 1, 1, 1};
  const StepCost equal = cost_training_step(job);
  REQUIRE(equal.fits);
  double equal_others = 0;
  for (const auto& row : equal.stages) equal_others += row.busiest ? 0.0 : row.slot_s;
  CHECK(equal.bubble_s > 1.05 * equal_others / 2);
  CHECK(equal.bubble_s < equal_others);
}

TEST_CASE("a pipeline device's update is costed on its own parameters, not scaled from the busiest's") {
  // A convolution (9,408 parameters, most of the compute) on device 0 and a 2,049,000-parameter
  // classifier on device 1, with a 5 us launch. Device 1's update (about 45 us) runs while device
  // 0 still runs the last backward of its convolution, so device 0 ends the step. Scaled from device
  // 0's update (launch included, 218 times) device 1's had been about 1 ms and ended the step; no
  // device can take longer to update part of the parameters than one device takes to update all
  // of them (since session 42, a review).
  TrainingJob job = mlp_job();
  job.hardware.kernel_launch_s = 5e-6;
  FileGraphDesign g;
  g.ops.push_back(FileOp{"conv1", "conv2d", 0, 12544, 64, 147, 1, 0, 1, 9408, {}, 150528});
  g.ops.push_back(FileOp{"relu1", "elementwise", 0, 0, 0, 0, 1, 802816, 1, 0, {"conv1"}, 0});
  g.ops.push_back(FileOp{"fc", "matmul", 1, 1, 1000, 2048, 1, 0, 1, 2049000, {"relu1"}, 0});
  job.design = g;
  job.parallelism->optimizer = "sgd";
  job.parallelism->microbatch = 8;
  job.parallelism->global_batch = 64;
  const auto optimizer_row = [](const StepCost& c) {
    for (const auto& r : c.ops) {
      if (r.phase == "opt") return r;
    }
    return OpCostRow{};
  };
  const StepCost one = cost_training_step(job);
  REQUIRE(one.fits);
  const OpCostRow all = optimizer_row(one);
  REQUIRE(all.time_s > 5e-6);
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  const StepCost two = cost_training_step(job);
  REQUIRE(two.fits);
  REQUIRE(two.stages.size() == 2);
  CHECK(two.stages[0].busiest);
  CHECK(two.stages[1].tail_s <= all.time_s);
  CHECK(two.stages[1].tail_s < two.stages[0].tail_s);
  const OpCostRow ending = optimizer_row(two);
  CHECK(ending.flops == approx(12.0 * 9408));  // device 0's update, the one that ends the step
  CHECK(ending.time_s <= all.time_s);
  CHECK(two.optimizer_s == approx(ending.time_s));
}

TEST_CASE("under a pipeline the ops table's forward and backward rows sum to the stages', the accumulation pass included") {
  // The ops table holds every device's ops; its gradient accumulation row every device's pass
  // (since session 42, a review: the busiest device's alone, so the backward rows fell short of the
  // stages' by the other devices' passes).
  TrainingJob job = mlp_job();
  job.design = small_decoder(4);
  on_two_stages(job, 1, 4);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  REQUIRE(c.microbatches == 4);
  double ops_f = 0, ops_b = 0, stages_f = 0, stages_b = 0;
  bool accumulates = false;
  for (const auto& r : c.ops) {
    if (r.phase == "fwd") ops_f += r.time_s;
    if (r.phase == "bwd") ops_b += r.time_s;
    accumulates = accumulates || r.op == "gradients.accumulate";
  }
  for (const auto& s : c.stages) {
    stages_f += s.forward_s;
    stages_b += s.backward_s;
  }
  REQUIRE(accumulates);
  CHECK(ops_f == approx(stages_f).epsilon(1e-9));
  CHECK(ops_b == approx(stages_b).epsilon(1e-9));
}

TEST_CASE("a capacity factor's padding is executed work, not model FLOPs: MFU's FLOPs do not grow with it") {
  // Since session 42 (a review): tokens x top_k x capacity_factor had counted as the model's, so
  // at capacity 2 MFU counted twice the experts' FLOPs a token. The model runs top_k experts a
  // token whatever the padding; the padded slots still cost time.
  TrainingJob job = moe_job(2, 64);
  auto design = std::get<TransformerDesign>(job.design);
  design.capacity_factor = 1.0;
  job.design = design;
  const StepCost one = cost_training_step(job);
  design.capacity_factor = 2.0;
  job.design = design;
  const StepCost two = cost_training_step(job);
  REQUIRE(one.fits);
  REQUIRE(two.fits);
  CHECK(two.model_flops_per_step == approx(one.model_flops_per_step).epsilon(1e-12));
  CHECK(two.compute_s > one.compute_s);
  CHECK(two.mfu < one.mfu);
}

TEST_CASE("full recomputation keeps the encoder's output once for the decoder layers that read it") {
  // Two encoder and three decoder layers (d 64, 32 positions each side), one sequence, fp16, one
  // device, full recomputation: it keeps each layer's input, the encoder's output once beside the
  // decoder layers' own (E = 32 x 64 x 2 B = 4,096 B; before session 44, once a decoder layer:
  // 3 E), both final norms, the head's and the loss's, and, while a layer's backward runs, a
  // layer's recomputed activations less its input (the layers' average).
  TransformerDesign d = small_decoder(3);
  d.arch = TransformerDesign::Arch::encoder_decoder;
  d.encoder_layers = 2;
  TrainingJob job = recomputed_one_sequence(d);
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const auto g = graph::build_graph(d, graph::GraphShape{1, 2});
  const double e = 32 * 64 * 2.0;
  const double inputs = 5 * e + e;  // five layers' hidden inputs of E each, and the encoder's output once
  double layers = 0, ends = 0, other = 0;
  for (const auto& op : g.ops()) {
    if (op.layer < 0) {
      other += op.saved_bytes;
    } else {
      layers += op.saved_bytes;
      if (op.name == "encoder.final_norm" || op.name == "decoder.final_norm") ends += op.saved_bytes;
    }
  }
  CHECK(c.stages.at(0).activation_bytes == approx(inputs + ends + other + std::max(0.0, (layers - ends) / 5 - inputs / 5)));
}

TEST_CASE("Adagrad keeps and moves what SGD with momentum does: one state tensor besides the master") {
  // mlp_job in fp16: 1,001,000 parameters. The update moves 20 B a parameter (read the weight, the
  // gradient and the accumulator, write the weight and the accumulator, 4 B each), the norm reads
  // the fp16 gradients (2 B), the master copy reads 4 and writes 2, and fp16's loss scaling reads and
  // writes the gradients (4 B): 32 B a parameter. State: the master and the accumulator, 8 B, where
  // Adam keeps 12 B.
  TrainingJob job = mlp_job();
  job.parallelism->optimizer = "adagrad";
  const StepCost adagrad = cost_training_step(job);
  job.parallelism->optimizer = "sgd";
  const StepCost sgd = cost_training_step(job);
  job.parallelism->optimizer = "adam";
  const StepCost adam = cost_training_step(job);
  const auto optimizer_row = [](const StepCost& c) {
    for (const auto& r : c.ops) {
      if (r.phase == "opt") return r;
    }
    return OpCostRow{};
  };
  const double params = 1000.0 * 1000 + 1000;
  CHECK(optimizer_row(adagrad).op == "optimizer.adagrad");
  CHECK(optimizer_row(adagrad).bytes == approx(32 * params));
  CHECK(optimizer_row(adagrad).bytes == approx(optimizer_row(sgd).bytes));
  CHECK(optimizer_row(adam).bytes == approx(40 * params));
  CHECK(adagrad.optimizer_s == approx(sgd.optimizer_s));
  CHECK(adagrad.memory_per_device_bytes == approx(sgd.memory_per_device_bytes));
  CHECK(adam.memory_per_device_bytes - adagrad.memory_per_device_bytes == approx(4 * params));
}

TEST_CASE("an unfused product adds its bias in a kernel of its own, forward") {
  // mlp_job: one 1000 x 1000 x 1000 product with a bias, fp16, on a device of 1e12 B/s at 0.5.
  // Under `fusion: none` (TensorFlow 1.x's BiasAdd, PyTorch 1.x's `output += bias`) the forward
  // also reads the 1000 x 1000 output and the 1,000 biases and writes the output: 2 x (2 x 1e6 +
  // 1e3) = 4,002,000 B and 1e6 FLOPs, memory-bound at 5e11 B/s: 8.004 us more. Fused, the epilogue
  // adds it. The backward is the same either way (its bias reduction is charged in both). On a
  // TPU, XLA fuses it (since session 47).
  TrainingJob job = mlp_job();
  const auto forward_row = [](const StepCost& c) {
    for (const auto& r : c.ops) {
      if (r.phase == "fwd" && r.kind == "matmul") return r;
    }
    return OpCostRow{};
  };
  const auto backward_row = [](const StepCost& c) {
    for (const auto& r : c.ops) {
      if (r.phase == "bwd" && r.kind == "matmul") return r;
    }
    return OpCostRow{};
  };
  job.fusion = "elementwise";
  const StepCost fused = cost_training_step(job);
  job.fusion = "none";
  const StepCost unfused = cost_training_step(job);
  CHECK(forward_row(unfused).bytes - forward_row(fused).bytes == approx(4002000.0));
  CHECK(forward_row(unfused).flops - forward_row(fused).flops == approx(1e6));
  CHECK(forward_row(unfused).time_s - forward_row(fused).time_s == approx(8.004e-6));
  CHECK(backward_row(unfused).bytes == approx(backward_row(fused).bytes));
  job.hardware.kind = "tpu";
  const StepCost tpu = cost_training_step(job);
  CHECK(forward_row(tpu).bytes == approx(forward_row(fused).bytes));
  // A product whose bias the activation after it adds (NVIDIA's BERT: bias + GELU in one
  // TorchScript kernel; `bias_activation: fused`): small_decoder's feed-forward up projection, 32
  // tokens x 256 wide in fp16, loses its pass, 2 x (2 x 32 x 256 + 256) = 33,280 B; the attention's
  // products keep theirs.
  TransformerDesign d = small_decoder(1);
  TrainingJob t = transformer_job(d, 1);
  t.fusion = "none";
  const auto row = [](const StepCost& c, const std::string& name) {
    for (const auto& r : c.ops) {
      if (r.phase == "fwd" && r.op == name) return r;
    }
    return OpCostRow{};
  };
  const StepCost separate = cost_training_step(t);
  d.bias_in_activation = true;
  t.design = d;
  const StepCost in_act = cost_training_step(t);
  CHECK(row(separate, "decoder.0.ffn.up").bytes - row(in_act, "decoder.0.ffn.up").bytes == approx(33280.0));
  CHECK(row(separate, "decoder.0.attn.out").bytes == approx(row(in_act, "decoder.0.attn.out").bytes));
}

TEST_CASE("DeepSpeed's blocking pipeline sends take twice a batched exchange's time") {
  // (Since session 47, a review.) Megatron-LM sends and receives over a boundary at once (one
  // transfer time over a full-duplex link); DeepSpeed's PipelineEngine runs SendActivation,
  // RecvActivation, SendGrad and RecvGrad as blocking transfers, one after the other: twice the time
  // on every device. pipelined_mlp_job's four devices: with exchanges the busiest is device 0 (it
  // reads the input), with one boundary, 2e-5 s of sends a step; a middle device has two, 4e-5 s.
  // Blocking, a middle device's 8e-5 s make it the busiest: four times the exchanges' figure.
  TrainingJob job = pipelined_mlp_job();
  const StepCost exchange = cost_training_step(job);
  job.parallelism->pipeline_p2p = "blocking";
  const StepCost blocking = cost_training_step(job);
  REQUIRE(exchange.fits);
  REQUIRE(blocking.fits);
  REQUIRE(exchange.stages.size() == 4);
  REQUIRE(blocking.stages.size() == 4);
  CHECK(exchange.stages[0].busiest);
  CHECK_FALSE(blocking.stages[0].busiest);
  CHECK(exchange.pipeline_comm_s == approx(2e-5));
  CHECK(blocking.pipeline_comm_s == approx(4 * exchange.pipeline_comm_s));
  // Each device's slot grows by its own sends: device 0 by 2e-5 / 8 a microbatch, a middle one by
  // twice that.
  CHECK(blocking.stages[0].slot_s - exchange.stages[0].slot_s == approx(2e-5 / 8));
  CHECK(blocking.stages[1].slot_s - exchange.stages[1].slot_s == approx(4e-5 / 8));
  CHECK(blocking.step_s > exchange.step_s);
}

TEST_CASE("serving: an unfused row-parallel bias add runs whole on every tensor rank") {
  // (Since session 47, a review.) small_decoder(1) served at batch 1 in fp16 on made_up (launches
  // free): under `fusion: none` the attention's output and the feed-forward's down projection, 32
  // tokens x 64, add their biases after the all-reduce, 2 x (2 x 32 x 64 + 64) = 8,320 B each at
  // 5e11 B/s, 1.664e-8 s, whole on every rank; a column-parallel product's add splits with it.
  InferenceJob job;
  job.id = "i";
  job.hardware = made_up();
  job.design = small_decoder(1);
  job.batch = 1;
  job.precision = "fp16";
  job.inferences = 1;
  job.datacenter.pue = 1;
  job.fusion = "elementwise";
  const InferenceResult fused = cost_inference(job);
  job.fusion = "none";
  const InferenceResult unfused = cost_inference(job);
  CHECK(unfused.unsplit_s - fused.unsplit_s == approx(2 * 1.664e-8));
  CHECK(unfused.batch_time_s > fused.batch_time_s);
}

TEST_CASE("a data-parallel reduction hides behind the backward's tensor-group collectives too, by hand") {
  // A tensor pair in each of two nodes (data 2 across them, over a slow network), gradients in
  // 4 kB buckets: the reduction runs on its own stream beside the backward's kernels and its
  // tensor-group collectives, so what it exposes is the reduction less the backward's whole time
  // (since session 49, a review: the compute alone).
  TrainingJob job = tensor_pair_job(false);
  job.hardware.node_accelerators = 2;
  job.hardware.inter_node_bandwidth = 5e7;
  job.accelerators = 4;
  job.parallelism->global_batch = 2;
  job.parallelism->gradient_bucket_bytes = 4000;
  job.parallelism->overlap_communication = false;
  const StepCost serial = cost_training_step(job);
  REQUIRE(serial.fits);
  const double reduce = serial.data_comm_s;
  job.parallelism->overlap_communication = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.stages.size() == 1);
  // The backward's collectives (kOutsideLayers' figures): the gradients of the two row-parallel
  // outputs and the head's input gradient, three all-reduces of 4,096 B at 2.004096e-5 s; the
  // forward's other three (two outputs and the embedding's) and the loss's three are the forward's.
  const double backward_tp = 3 * 2.004096e-5;
  CHECK(c.tensor_comm_s == approx(6 * 2.004096e-5 + 3 * (128 / 1e11 + 20e-6)));
  const double window = c.stages.at(0).backward_s + backward_tp;
  REQUIRE(reduce > window + 1e-4);  // more than the backward hides, more than the last bucket
  CHECK(c.data_comm_s == approx(reduce - window));
  CHECK(c.contention_s == 0);  // not a GPU
}

TEST_CASE("interleaved chunks reduce and gather their gradients and parameters chunk by chunk, by hand") {
  using dlcarbon::cost_detail::chunked_gather_exposed;
  using dlcarbon::cost_detail::chunked_reduce_exposed;
  // p 2 stages, v 4 chunks a device, a chunk's backward 1 s, the device's reduction 8 s (2 s a
  // chunk), its last bucket 0.5 s. The last group runs chunk 3's two backwards first, chunk 0's
  // last: chunk 3 is ready 6 s before the end (reduced -6..-4), chunk 2 at -4 (-4..-2), chunk 1 at
  // -2 (-2..0), chunk 0, bucketed under its own last backward from -1, after chunk 1's: 0..2 s.
  CHECK(chunked_reduce_exposed(8, 0.5, 1, 2, 4) == approx(2));
  // Non-interleaved (v 1), the same device: its 4 s backward hides 4 of the 8 s.
  CHECK(chunked_reduce_exposed(8, 0.5, 4, 2, 1) == approx(4));
  // Long chunks hide all but the last bucket.
  CHECK(chunked_reduce_exposed(8, 0.5, 10, 2, 4) == approx(0.5));
  // Forward, a chunk's forward 1 s and 2 s of gathering a chunk: chunk 0's gather ends 1 s after
  // its forward could start (delay 1); chunk 1's, queued behind it, ends at 4 s where the forward
  // reaches it at 2 + 1 (delay 2); chunk 2's, launched at chunk 1's first forward (2 + 2 = 4 s),
  // ends at 6 = 4 + 2 where needed; chunk 3's the same: 2 s in all. Non-interleaved: 8 - 4 = 4 s.
  CHECK(chunked_gather_exposed(8, 1, 2, 4) == approx(2));
  CHECK(chunked_gather_exposed(8, 4, 2, 1) == approx(4));
  CHECK(chunked_gather_exposed(8, 10, 2, 4) == approx(0));
}

TEST_CASE("ZeRO-2 and -3 copy each microbatch's gradients into the flat buffer, by hand") {
  // The MLP's 1,001,000 fp16 parameters on 2 data ranks, 2 microbatches a step, ZeRO-3: FSDP's
  // flat gradient is a copy of every parameter's (read 2 B, write 2 B) on the compute stream each
  // microbatch: 4.004e6 B at 0.5 x 1e12 B/s = 8.008e-6 s, a row of its own and in the backward;
  // the accumulation pass (into the sharded gradient) is a row apart.
  TrainingJob job = mlp_job();
  job.accelerators = 2;
  job.parallelism->global_batch = 4000;
  job.parallelism->zero_stage = 3;
  const auto flatten = [](const StepCost& s) {
    const auto it = std::find_if(s.ops.begin(), s.ops.end(), [](const OpCostRow& r) { return r.op == "gradients.flatten"; });
    return it == s.ops.end() ? nullptr : &*it;
  };
  StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  REQUIRE(c.microbatches == 2);
  const OpCostRow* row = flatten(c);
  REQUIRE(row != nullptr);
  CHECK(row->phase == "bwd");
  CHECK(row->bytes == approx(4.004e6));
  CHECK(row->time_s == approx(8.008e-6));
  const StepCost with_copy = c;
  // Megatron-Core's fused accumulation writes the weight gradient into the flat buffer: no copy,
  // and the backward is that much shorter.
  job.parallelism->gradient_accumulation = "fused";
  c = cost_training_step(job);
  CHECK(flatten(c) == nullptr);
  CHECK(with_copy.stages.at(0).backward_s - c.stages.at(0).backward_s == approx(8.008e-6 + op_row(with_copy, "gradients.accumulate", "bwd").time_s));
  // ZeRO-1 keeps whole gradients a step (reduced once): no copy each microbatch; nor a TPU's XLA.
  job.parallelism->gradient_accumulation = "separate";
  job.parallelism->zero_stage = 1;
  CHECK(flatten(cost_training_step(job)) == nullptr);
  job.parallelism->zero_stage = 2;
  CHECK(flatten(cost_training_step(job)) != nullptr);
  job.hardware.kind = "tpu";
  CHECK(flatten(cost_training_step(job)) == nullptr);
}

TEST_CASE("ZeRO-3's root unit holds all that lies outside the layers, an untied head too") {
  // One decoder layer (d 64, vocabulary 1,000, untied) on 16 ranks over two nodes (a bus of 1e10
  // B/s): the root unit is the larger of the average unit and what it holds, here the embedding
  // and the head, 2 x 64,000 parameters (256,000 B in fp16), more than the layer's unit; before
  // session 49 only the larger table (128,000 B) counted, and the average unit was taken.
  TransformerDesign d = small_decoder(1);
  d.vocab = 1000;
  d.tied_embeddings = false;
  d.position = TransformerDesign::Position::rotary;  // no table of positions
  TrainingJob job = transformer_job(d, 8);
  job.accelerators = 16;
  job.hardware.inter_node_bandwidth = 1.25e9;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 16;
  job.parallelism->zero_stage = 3;
  job.parallelism->overlap_communication = false;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.fits);
  const comm::Group g{16, 2, 1e10, false};
  using comm::Collective;
  // Not overlapped, one microbatch: the root's gather (256,000 B) and the layer unit's (the rest),
  // the layer's again in the backward, and both reduce-scatters.
  const double layer_bytes = 2 * c.parameters - 256000;
  REQUIRE(layer_bytes > 0);
  REQUIRE(layer_bytes < 256000);
  CHECK(c.data_comm_s == approx(comm::collective_s(Collective::all_gather, 256000, g) + 2 * comm::collective_s(Collective::all_gather, layer_bytes, g) +
                                comm::collective_s(Collective::reduce_scatter, 256000, g) + comm::collective_s(Collective::reduce_scatter, layer_bytes, g)));
}

TEST_CASE("an interleaved device reduces its chunks' gradients behind the backwards after them, end to end") {
  // An 8-layer MLP on 2 stages x 4 chunks (one layer each) x 4 data ranks, 4 microbatches of 125;
  // ZeRO-0 over the network in 2 MB buckets. Not overlapped, the all-reduce of the device's
  // gradients, R; overlapped, what cost_detail::chunked_reduce_exposed leaves of it after the
  // busiest device's backward: chunk c >= 1's reduced behind the c p chunk-backwards after its
  // last, chunk 0's (bucketed) behind its own last, its last bucket after it (since session 49, a
  // review; before, R less one microbatch's backward).
  TrainingJob job = pipelined_mlp_job();
  job.design = MlpDesign{std::vector<std::int64_t>(9, 1000), true};
  job.parallelism->pipeline = 2;
  job.parallelism->virtual_stages = 4;
  job.hardware.node_accelerators = 1;
  job.hardware.inter_node_bandwidth = 1e11;
  job.parallelism->gradient_bucket_bytes = 2e6;
  job.parallelism->overlap_communication = false;
  const StepCost serial = cost_training_step(job);
  REQUIRE(serial.fits);
  REQUIRE(serial.microbatches == 4);
  job.parallelism->overlap_communication = true;
  const StepCost c = cost_training_step(job);
  REQUIRE(c.stages.size() == 2);
  REQUIRE(c.stages[0].busiest);
  const double chunk_backward = c.stages[0].backward_s / 4;
  const comm::Group data{4, 4, 1e11, false};
  const double last_bucket = comm::collective_s(comm::Collective::all_reduce, 2e6, data);
  const double expected = dlcarbon::cost_detail::chunked_reduce_exposed(serial.data_comm_s, last_bucket, chunk_backward, 2, 4);
  REQUIRE(expected < serial.data_comm_s - c.stages[0].backward_s);  // more hidden than behind one backward
  CHECK(c.data_comm_s == approx(expected));
}

TEST_CASE("an 8-bit dispatch casts the experts' input once a token, not once a slot, by hand") {
  // The one-layer MoE decoder (d 64, 64 experts, top-2) on 64 devices, one 32-token sequence each,
  // in fp8: its routed tokens' up projection reads 64 slots of the group's 2 x 32 x 64 / 64 a
  // device. Cast in the product (Megatron-Core, `compute`), every slot's input is read in 16 bits
  // and written in 8, 3 B a value; quantized before an 8-bit dispatch (DeepSeek-V3, `fp8`), each
  // of the device's 32 tokens once: 3 x (64 - 32) x 64 B fewer forward.
  TrainingJob job = moe_job(1, 64);
  auto d = std::get<TransformerDesign>(job.design);
  d.top_k = 2;
  job.design = d;
  job.hardware.peak_flop_per_s = {{"bf16", 1e14}, {"fp8", 2e14}};
  job.precision = "fp8";
  // The up product's forward rows, cast in the product and before the dispatch.
  const auto up_rows = [](TrainingJob at) {
    at.expert_dispatch = "compute";
    const StepCost in_product = cost_training_step(at);
    at.expert_dispatch = "fp8";
    const StepCost before_dispatch = cost_training_step(at);
    REQUIRE(in_product.fits);
    return std::pair{op_row(in_product, "decoder.0.ffn.experts.up", "fwd"), op_row(before_dispatch, "decoder.0.ffn.experts.up", "fwd")};
  };
  const auto [a, b] = up_rows(job);
  CHECK(a.bytes - b.bytes == approx(3.0 * (64 - 32) * 64));
  CHECK(b.time_s < a.time_s);
  // On tensor pairs with whole experts on each rank (expert_tensor 1) and the sequence split, each
  // rank runs half the device's 64 slots and holds half its 32 tokens: 3 x (32 - 16) x 64 B (a
  // review of session 49: the product's had cast every slot on each rank).
  job.accelerators = 128;
  job.parallelism->tensor = 2;
  job.parallelism->expert_tensor = 1;
  job.parallelism->sequence_parallel = true;
  const auto [pair_a, pair_b] = up_rows(job);
  CHECK(pair_a.bytes - pair_b.bytes == approx(3.0 * (32 - 16) * 64));
}

TEST_CASE("zero-bubble schedules' W: every weight gradient, a tied head's and a convolution's too") {
  // A tied head computes its weight gradient into the shared table: W holds it as an untied one's
  // (a review of session 49: W had skipped ops without parameters of their own), so the two
  // zero-bubble fills are the same where nothing else differs.
  TransformerDesign d = small_decoder(4);
  TrainingJob job = transformer_job(d, 4);
  job.accelerators = 2;
  job.parallelism->pipeline = 2;
  job.parallelism->microbatch = 1;
  job.parallelism->global_batch = 4;
  job.parallelism->zero_bubble = true;
  job.parallelism->gradient_accumulation = "fused";
  d.tied_embeddings = true;
  job.design = d;
  const StepCost tied = cost_training_step(job);
  d.tied_embeddings = false;
  job.design = d;
  const StepCost untied = cost_training_step(job);
  REQUIRE(tied.fits);
  REQUIRE(untied.fits);
  REQUIRE(tied.stages.at(1).backward_s == approx(untied.stages.at(1).backward_s));
  CHECK(tied.bubble_s == approx(untied.bubble_s));
  // DualPipe's (p/2 - 1)(F + 2B - 3W) is none, not less, where W is most of the backward.
  job.parallelism->zero_bubble = false;
  job.parallelism->dualpipe = true;
  job.accelerators = 4;
  job.parallelism->pipeline = 4;
  job.parallelism->global_batch = 8;
  job.parallelism->gradient_accumulation = "separate";
  job.parallelism->gradient_precision = "fp32";
  const StepCost dual = cost_training_step(job);
  REQUIRE(dual.fits);
  CHECK(dual.bubble_s >= 0);
  // A ResNet's convolutions compute their weight gradients too: its zero-bubble fill is well under
  // 1F1B's, what its batch norms' and activations' backward leave (a review of session 49: W had
  // held none of them, and the two were within 1 %).
  TrainingJob resnet = mlp_job();
  resnet.design = ResNetDesign{};
  resnet.accelerators = 4;
  resnet.parallelism->pipeline = 4;
  resnet.parallelism->microbatch = 8;
  resnet.parallelism->global_batch = 64;
  resnet.parallelism->gradient_accumulation = "fused";
  const StepCost plain = cost_training_step(resnet);
  resnet.parallelism->zero_bubble = true;
  const StepCost zb = cost_training_step(resnet);
  REQUIRE(plain.fits);
  REQUIRE(zb.fits);
  CHECK(zb.bubble_s < 0.8 * plain.bubble_s);
}

TEST_CASE("clipping that always scales the gradients reads and writes them once more a step, by hand") {
  // The MLP's 1,001,000 fp16 parameters with Adam: the update 28 B a parameter, the norm's read 2,
  // the master copy back to fp16 4 + 2, fp16's unscale 2 x 2: 40 B. TensorFlow's
  // clip_by_global_norm and PyTorch's clip_grad_norm_ multiply every gradient by the clip factor
  // (`always`): 2 x 2 B more, 44 B (since session 49, a review of Google's BERT on TPUs).
  TrainingJob job = mlp_job();
  const StepCost conditional = cost_training_step(job);
  job.parallelism->gradient_clipping = "always";
  const StepCost always = cost_training_step(job);
  REQUIRE(conditional.fits);
  CHECK(op_row(conditional, "optimizer.adam", "opt").bytes == approx(40 * 1001000.0));
  CHECK(op_row(always, "optimizer.adam", "opt").bytes == approx(44 * 1001000.0));
  CHECK(always.optimizer_s > conditional.optimizer_s);
}
