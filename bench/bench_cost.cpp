// Speed of first-principles costing (docs/performance.md):
//   - one training step of the 96-layer GPT-3 graph (build the graph, cost every op, comm, memory);
//   - every first-principles reference row of scenarios/published (load, build, cost).
#include <benchmark/benchmark.h>

#include <filesystem>

#include "dlcarbon/graph.hpp"
#include "dlcarbon/scenario.hpp"
#include "dlcarbon/training_cost.hpp"

namespace fs = std::filesystem;
using namespace dlcarbon;

namespace {

TrainingJob gpt3_job() {
  TransformerDesign d;
  d.arch = TransformerDesign::Arch::decoder;
  d.decoder_layers = 96;
  d.d_model = 12288;
  d.heads = 96;
  d.d_ff = 49152;
  d.vocab = 50257;
  d.seq_len = 2048;
  TrainingJob job;
  job.id = "gpt3";
  job.design = d;
  job.accelerators = 10000;
  job.precision = "fp16";
  job.tokens = 300e9;
  job.duration_given = false;
  Parallelism p;
  p.tensor = 8;
  p.pipeline = 25;
  p.data = 50;
  p.global_batch = 1600;
  p.recompute = true;
  job.parallelism = p;
  job.hardware.id = "v100-like";
  job.hardware.peak_flop_per_s = {{"fp16", 125e12}, {"fp32", 15.7e12}};
  job.hardware.memory_bandwidth_bytes_per_s = 900e9;
  job.hardware.memory_bytes = 32e9;
  job.hardware.tdp_w = 300;
  job.hardware.intra_node_bandwidth = 150e9;
  job.hardware.inter_node_bandwidth = 6.25e9;
  return job;
}

void BM_Gpt3BuildGraph(benchmark::State& state) {
  const TrainingJob job = gpt3_job();
  for (auto _ : state) {
    auto g = graph::build_graph(job.design, graph::GraphShape{1, 2, true});
    benchmark::DoNotOptimize(g.forward_flops());
  }
}
BENCHMARK(BM_Gpt3BuildGraph)->Unit(benchmark::kMillisecond);

void BM_Gpt3TrainingStep(benchmark::State& state) {
  const TrainingJob job = gpt3_job();
  for (auto _ : state) {
    StepCost c = cost_training_step(job);
    benchmark::DoNotOptimize(c.step_s);
  }
}
BENCHMARK(BM_Gpt3TrainingStep)->Unit(benchmark::kMillisecond);

void BM_AllReferenceRows(benchmark::State& state) {
  const fs::path source = DLCARBON_SOURCE_DIR;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(source / "scenarios/published")) files.push_back(e.path());
  const LoadOptions load{source / "data"};
  int rows = 0;
  for (auto _ : state) {
    rows = 0;
    for (const auto& f : files) {
      const Scenario s = load_scenario(f, load);
      for (auto job : s.training) {
        if (!job.parallelism || !job.tokens) continue;
        job.duration_given = false;
        const TrainingResult r = simulate_training(job);
        benchmark::DoNotOptimize(r.footprint.facility_energy_j);
        ++rows;
      }
    }
  }
  state.counters["rows"] = rows;
  state.counters["scenarios"] = static_cast<double>(files.size());
}
BENCHMARK(BM_AllReferenceRows)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
