#include <doctest/doctest.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>

#include "dlcarbon/sweep.hpp"
#include "mutate.hpp"

namespace fs = std::filesystem;
using namespace dlcarbon;

namespace {
const fs::path kData = DLCARBON_TEST_DATA_DIR;

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("dlcarbon_test_sweep_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

// Writes a sweep file beside a copy of the first-principles test scenario.
fs::path sweep_file(const std::string& name, const std::string& body) {
  const fs::path dir = temp_dir();
  const fs::path scenario = dir / "first_principles.yaml";
  if (!fs::exists(scenario)) fs::copy_file(kData / "scenarios/first_principles.yaml", scenario);
  const fs::path p = dir / name;
  std::ofstream(p) << "schema_version: 1\nsweep: {name: t, scenario: first_principles.yaml" << body;
  return p;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

LoadOptions with(std::vector<Override> o) { return LoadOptions{kData / "catalog", std::move(o)}; }
}  // namespace

TEST_CASE("a grid runs every combination, the last parameter fastest") {
  const SweepSpec spec = load_sweep_spec(kData / "sweeps/grid.sweep.yaml");
  CHECK(spec.name == "test-grid");
  CHECK(spec.method == SweepMethod::grid);
  REQUIRE(spec.parameters.size() == 2);
  CHECK(sweep_size(spec) == 6);
  const auto points = expand_sweep(spec);
  REQUIRE(points.size() == 6);
  const std::vector<std::string> widths = {"256", "256", "512", "512", "16384", "16384"};
  for (std::size_t i = 0; i < points.size(); ++i) {
    CHECK(points[i].index == static_cast<std::int64_t>(i));
    CHECK(points[i].shown[0] == widths[i]);
    CHECK(points[i].numeric[0] == std::stod(widths[i]));
    CHECK(points[i].shown[1] == (i % 2 ? "{id: test-dc, region: clean-region}" : "test-dc"));
    CHECK(std::isnan(points[i].numeric[1]));
  }
  // A value's errors point at the value in the sweep file (line 8, the list of widths).
  CHECK(points[4].overrides[0].at.line == 8);
  CHECK(points[4].overrides[0].key_at.line == 7);
}

TEST_CASE("a sweep reached through a linked folder finds a scenario named with ..") {
  // real/deep/s.sweep.yaml says `scenario: ../base.yaml` (real/base.yaml); lnk links to real/deep.
  // Read as lnk/s.sweep.yaml, the file system's lnk/.. is real/, not the folder lnk is in (since
  // session 44, a review: the path was cut as text to base.yaml beside lnk, and not found).
  const fs::path dir = temp_dir() / "linked";
  fs::remove_all(dir);
  fs::create_directories(dir / "real/deep");
  fs::copy_file(kData / "scenarios/first_principles.yaml", dir / "real/base.yaml");
  std::ofstream(dir / "real/deep/s.sweep.yaml") << "schema_version: 1\nsweep: {name: t, scenario: ../base.yaml}\n"
                                                   "parameters:\n  - {key: datacenters.test-dc.pue, values: [1.1]}\n";
  fs::create_directory_symlink(dir / "real/deep", dir / "lnk");
  const SweepSpec spec = load_sweep_spec(dir / "lnk/s.sweep.yaml");
  CHECK(fs::equivalent(spec.scenario, dir / "real/base.yaml"));
  // Without a link the path is written tidily, as before.
  CHECK(load_sweep_spec(dir / "real/deep/s.sweep.yaml").scenario == (dir / "real/base.yaml").lexically_normal());
  fs::remove_all(dir);
}

TEST_CASE("a range with steps in a grid: linear, log, integers") {
  const auto p = sweep_file("steps.yaml", R"(}
parameters:
  - {key: datacenters.test-dc.pue, range: [1.1, 1.5], steps: 5}
  - {key: training.pretrain.accelerators, range: [2, 64], steps: 6, scale: log, integer: true}
  - {key: scenario.horizon, range: [1, 2], steps: 2, unit: years}
)");
  const SweepSpec spec = load_sweep_spec(p);
  CHECK(spec.parameters[0].values_numeric == std::vector<double>{1.1, 1.2000000000000002, 1.3, 1.4, 1.5});
  // 2 x 2^(5k/5): 2, 4, 8, 16, 32, 64
  CHECK(spec.parameters[1].values_numeric == std::vector<double>{2, 4, 8, 16, 32, 64});
  CHECK(spec.parameters[2].values_yaml == std::vector<std::string>{"\"1 years\"", "\"2 years\""});
  CHECK(sweep_size(spec) == 5 * 6 * 2);
  // A unit is part of the value as written, a '"' or '\\' in it too (since session 38: the value,
  // built as YAML text, ended at the '"').
  const auto q = sweep_file("quoted-unit.yaml", R"(}
parameters:
  - {key: scenario.horizon, range: [1, 2], steps: 2, unit: 'years"\x'}
)");
  CHECK(load_sweep_spec(q).parameters[0].values_yaml == std::vector<std::string>{"\"1 years\\\"\\\\x\"", "\"2 years\\\"\\\\x\""});
  // A log grid's steps are its round values, not an ulp off them (exp(log(4)) is
  // 4.0000000000000009), integer or not (since session 46, a review: an integer key refused "4",
  // and "10 days" ran as 10.000000000000002 days).
  const auto l = sweep_file("log.yaml", R"(}
parameters:
  - {key: training.pretrain.accelerators, range: [1, 1024], steps: 11, scale: log}
  - {key: scenario.horizon, range: [1, 100], steps: 3, scale: log, unit: days}
)");
  const SweepSpec log_spec = load_sweep_spec(l);
  CHECK(log_spec.parameters[0].values_numeric == std::vector<double>{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024});
  CHECK(log_spec.parameters[1].values_yaml == std::vector<std::string>{"\"1 days\"", "\"10 days\"", "\"100 days\""});
}

TEST_CASE("a Latin hypercube puts exactly one sample in each stratum of every parameter") {
  const auto p = sweep_file("lhs.yaml", R"(, method: latin-hypercube, samples: 50, seed: 4}
parameters:
  - {key: datacenters.test-dc.pue, range: [1.0, 2.0]}
  - {key: training.pretrain.tokens, range: [1e6, 1e10], scale: log}
  - {key: training.pretrain.accelerators, range: [1, 50], integer: true}
  - {key: training.pretrain.parallelism.microbatch, values: [1, 2, 4, 8, 16]}
)");
  const SweepSpec spec = load_sweep_spec(p);
  const auto points = expand_sweep(spec);
  REQUIRE(points.size() == 50);
  std::set<int> pue_strata, token_strata, counts;
  std::vector<int> per_value(5, 0);
  for (const auto& pt : points) {
    pue_strata.insert(static_cast<int>(std::floor((pt.numeric[0] - 1.0) * 50)));
    token_strata.insert(static_cast<int>(std::floor((std::log10(pt.numeric[1]) - 6) / 4 * 50)));
    counts.insert(static_cast<int>(pt.numeric[2]));
    CHECK(pt.numeric[2] == std::floor(pt.numeric[2]));
    per_value[static_cast<std::size_t>(std::log2(pt.numeric[3]))]++;
  }
  CHECK(pue_strata.size() == 50);
  CHECK(*pue_strata.begin() == 0);
  CHECK(*pue_strata.rbegin() == 49);
  CHECK(token_strata.size() == 50);
  CHECK(counts.size() == 50);  // 50 strata over the 50 integers 1..50: each once
  CHECK(per_value == std::vector<int>{10, 10, 10, 10, 10});
  // Deterministic in the seed, and the seed matters.
  const auto again = expand_sweep(spec);
  CHECK(again[17].overrides[0].value_yaml == points[17].overrides[0].value_yaml);
  SweepSpec other = spec;
  other.seed = 5;
  CHECK(expand_sweep(other)[17].overrides[0].value_yaml != points[17].overrides[0].value_yaml);
}

TEST_CASE("Monte Carlo draws stay in their ranges and do not depend on the sample count") {
  const auto p = sweep_file("mc.yaml", R"(, method: monte-carlo, samples: 2000, seed: 9}
parameters:
  - {key: datacenters.test-dc.pue, range: [1.2, 1.4]}
  - {key: training.pretrain.accelerators, range: [4, 4096], integer: true, scale: log}
)");
  SweepSpec spec = load_sweep_spec(p);
  const auto points = expand_sweep(spec);
  double sum = 0;
  int low = 0;
  for (const auto& pt : points) {
    CHECK(pt.numeric[0] >= 1.2);
    CHECK(pt.numeric[0] < 1.4);
    CHECK(pt.numeric[1] >= 4);
    CHECK(pt.numeric[1] <= 4096);
    sum += pt.numeric[0];
    if (pt.numeric[1] < 128) ++low;  // log-uniform: half the log range lies below 128
  }
  CHECK(sum / 2000 == approx(1.3).epsilon(0.01));
  CHECK(low == approx(1000).epsilon(0.08));
  spec.samples = 10;
  const auto fewer = expand_sweep(spec);
  for (std::size_t i = 0; i < fewer.size(); ++i) CHECK(fewer[i].overrides[1].value_yaml == points[i].overrides[1].value_yaml);
}

TEST_CASE("shards split the points round robin, disjoint and complete") {
  std::vector<std::int64_t> all;
  for (std::int64_t s = 0; s < 3; ++s) {
    const auto mine = shard_points(10, Shard{s, 3});
    all.insert(all.end(), mine.begin(), mine.end());
  }
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> expected(10);
  for (std::int64_t i = 0; i < 10; ++i) expected[static_cast<std::size_t>(i)] = i;
  CHECK(all == expected);
  CHECK(shard_points(10, Shard{1, 3}) == std::vector<std::int64_t>{1, 4, 7});
  CHECK(parse_shard("3/10").index == 3);
  CHECK(parse_shard("3/10").count == 10);
  for (const char* bad : {"10/10", "3", "a/b", "-1/4", "1/0", ""}) {
    CHECK(error_of([&] { parse_shard(bad); }).find("--shard: expected I/N") == 0);
  }
  ::setenv("SLURM_ARRAY_TASK_ID", "5", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "4", 1);
  ::setenv("SLURM_ARRAY_TASK_MIN", "3", 1);
  const Shard s = parse_shard("auto");
  CHECK(s.index == 2);
  CHECK(s.count == 4);
  // A one-rank PMI or mpirun inside the array task shards nothing: the task is the shard (since
  // session 44, a review: it took shard 0 of 1, and every task ran the whole sweep).
  ::setenv("PMI_RANK", "0", 1);
  ::setenv("PMI_SIZE", "1", 1);
  ::setenv("OMPI_COMM_WORLD_RANK", "0", 1);
  ::setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
  CHECK(parse_shard("auto").index == 2);
  CHECK(parse_shard("auto").count == 4);
  for (const char* v : {"PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}) ::unsetenv(v);
  ::setenv("SLURM_ARRAY_TASK_STEP", "10", 1);  // --array=3-33:10, task 23: the third
  ::setenv("SLURM_ARRAY_TASK_ID", "23", 1);
  CHECK(parse_shard("auto").index == 2);
  ::unsetenv("SLURM_ARRAY_TASK_ID");
  // A count without its shard is a broken launch, bad input (since session 35; before, the whole
  // sweep); with neither, the whole sweep. A variable set but empty is bad too.
  CHECK(error_of([] { parse_shard("auto"); }) ==
        "--shard auto: SLURM_ARRAY_TASK_COUNT is set but SLURM_ARRAY_TASK_ID is not: the environment names a shard "
        "without the count (or the count without the shard)");
  ::unsetenv("SLURM_ARRAY_TASK_COUNT");
  CHECK(parse_shard("auto").count == 1);
  ::setenv("PMI_RANK", "", 1);
  ::setenv("PMI_SIZE", "", 1);
  CHECK(error_of([] { parse_shard("auto"); }).find("PMI_RANK=\"\" is not a whole number") != std::string::npos);
  ::unsetenv("PMI_RANK");
  ::unsetenv("PMI_SIZE");
  // A batch script's own SLURM_PROCID / SLURM_NTASKS (no job step) is not a shard.
  ::setenv("SLURM_PROCID", "0", 1);
  ::setenv("SLURM_NTASKS", "4", 1);
  CHECK(parse_shard("auto").count == 1);
  ::setenv("SLURM_STEP_ID", "0", 1);
  CHECK(parse_shard("auto").count == 4);
  // A set variable that is not a whole number up to 10^9 is bad input naming it (since session 34:
  // a count past 2^63 saturated and crashed the sweep; text or a sign fell back to the whole sweep).
  ::setenv("SLURM_NTASKS", "-1", 1);
  CHECK(error_of([] { parse_shard("auto"); }) ==
        "--shard auto: the environment variable SLURM_NTASKS=\"-1\" is not a whole number from 0 to 10^9");
  for (const char* v : {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_ID"}) ::unsetenv(v);
  ::setenv("SLURM_ARRAY_TASK_ID", "1", 1);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "99999999999999999999", 1);
  CHECK(error_of([] { parse_shard("auto"); }).find("SLURM_ARRAY_TASK_COUNT=\"99999999999999999999\" is not a whole number") !=
        std::string::npos);
  ::setenv("SLURM_ARRAY_TASK_COUNT", "2", 1);
  ::setenv("SLURM_ARRAY_TASK_ID", "x", 1);
  CHECK(error_of([] { parse_shard("auto"); }).find("SLURM_ARRAY_TASK_ID=\"x\"") != std::string::npos);
  // A shard count near 2^63 takes one point, no overflow.
  CHECK(shard_points(10, Shard{3, std::int64_t{1} << 62}) == std::vector<std::int64_t>{3});
  for (const char* v : {"SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_STEP", "SLURM_PROCID",
                        "SLURM_NTASKS", "SLURM_STEP_ID"}) {
    ::unsetenv(v);
  }
}

TEST_CASE("run_points runs each point once on any thread count and stops at an error") {
  std::vector<std::int64_t> todo;
  for (std::int64_t i = 0; i < 100; ++i) todo.push_back(i * 3);
  for (const int threads : {1, 2}) {
    std::vector<std::atomic<int>> hits(300);
    std::size_t last_done = 0;
    run_points(todo, threads, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; },
               [&](std::size_t n) { CHECK(n > last_done); last_done = n; });
    CHECK(last_done == 100);
    for (std::size_t i = 0; i < 300; ++i) CHECK(hits[i] == (i % 3 == 0 ? 1 : 0));
  }
  CHECK_THROWS_AS(run_points(todo, 2, [](std::int64_t i) { if (i == 30) throw InputError("bad"); },
                             [](std::size_t) {}),
                  InputError);
}

TEST_CASE("overrides update a key as a last file would, nested keys keep their siblings") {
  const fs::path s = kData / "scenarios/first_principles.yaml";
  const Scenario base = load_scenario(s, with({}));
  const Scenario o = load_scenario(s, with({{"training.pretrain.parallelism.tensor", "4", {"sw.yaml", 3, 7}},
                                            {"training.pretrain.parallelism.data", "2", {"sw.yaml", 4, 7}},
                                            {"datacenters.test-dc.pue", "1.25", {"sw.yaml", 5, 7}},
                                            {"models.small-lm.design.layers", "6", {"sw.yaml", 6, 7}},
                                            {"scenario.horizon", "\"2 years\"", {"sw.yaml", 7, 7}}}));
  REQUIRE(o.training.size() == 1);
  const auto& p = *o.training[0].parallelism;
  CHECK(p.tensor == 4);
  CHECK(p.data == 2);
  CHECK(p.microbatch == base.training[0].parallelism->microbatch);
  CHECK(p.global_batch == 64);
  CHECK(o.training[0].datacenter.pue == 1.25);
  CHECK(base.training[0].datacenter.pue == 1.5);
  CHECK(std::get<TransformerDesign>(o.training[0].design).decoder_layers == 6);
  CHECK(std::get<TransformerDesign>(o.training[0].design).d_model == 256);
  CHECK(o.info.horizon_s == approx(2 * 365.25 * 86400).epsilon(0.01));
  CHECK(o.resolved_yaml != base.resolved_yaml);
  // A design override alone changes the resolved scenario (and so the sweep's fingerprint): the
  // designs are part of it.
  const Scenario layers_only = load_scenario(s, with({{"models.small-lm.design.layers", "6", {"sw.yaml", 6, 7}}}));
  CHECK(layers_only.resolved_yaml != base.resolved_yaml);
  CHECK(layers_only.resolved_yaml.find("layers: 6") != std::string::npos);
}

TEST_CASE("a pipeline partition from a sweep: in the resolved scenario, and checked against the model") {
  const fs::path s = kData / "scenarios/first_principles.yaml";
  const Scenario o = load_scenario(s, with({{"training.pretrain.parallelism.pipeline", "2", {"sw.yaml", 3, 7}},
                                            {"training.pretrain.parallelism.data", "2", {"sw.yaml", 4, 7}},
                                            {"training.pretrain.parallelism.stage_layers", "[3, 1]", {"sw.yaml", 5, 7}}}));
  CHECK(o.training[0].parallelism->stage_layers == std::vector<std::int64_t>{3, 1});
  CHECK(o.resolved_yaml.find("stage_layers: [3, 1]") != std::string::npos);
  // Five layers for a four-layer model: named at the sweep's line.
  const std::string e = error_of([&] {
    load_scenario(s, with({{"training.pretrain.parallelism.pipeline", "2", {"sw.yaml", 3, 7}},
                           {"training.pretrain.parallelism.data", "2", {"sw.yaml", 4, 7}},
                           {"training.pretrain.parallelism.stage_layers", "[3, 2]", {"sw.yaml", 5, 7}}}));
  });
  CHECK(e.find("sw.yaml:5:7") != std::string::npos);
  CHECK(e.find("stage_layers: holds 5 layers; the model has 4") != std::string::npos);
  // The short form: the first and the last chunk's layers, the rest spread evenly between them,
  // the earlier chunks one more (4 chunks of 2 devices x 2: 0, then 3 over two chunks, then 1).
  const Scenario ends = load_scenario(s, with({{"training.pretrain.parallelism.pipeline", "2", {"sw.yaml", 3, 7}},
                                               {"training.pretrain.parallelism.data", "2", {"sw.yaml", 4, 7}},
                                               {"training.pretrain.parallelism.virtual_stages", "2", {"sw.yaml", 5, 7}},
                                               {"training.pretrain.parallelism.stage_layers", "{first: 0, last: 1}", {"sw.yaml", 6, 7}}}));
  CHECK(ends.training[0].parallelism->stage_layers == std::vector<std::int64_t>{0, 2, 1, 1});
}

TEST_CASE("an override's errors name the sweep file, line, column and key") {
  const fs::path s = kData / "scenarios/first_principles.yaml";
  const SourceLocation at{"sw.yaml", 9, 13}, key_at{"sw.yaml", 8, 10};
  auto err = [&](const std::string& key, const std::string& value) {
    return error_of([&] { load_scenario(s, with({{key, value, at, key_at}})); });
  };
  CHECK(err("training.pretrain.accelerators", "ten") ==
        "sw.yaml:9:13: training.pretrain.accelerators: expected a positive integer, got \"ten\" (not a number)");
  CHECK(err("training.pretrain.parallelism.tensor", "0").rfind("sw.yaml:9:13: training.pretrain.parallelism.tensor: expected a positive integer", 0) == 0);
  CHECK(err("training.pretrain.acelerators", "1").rfind(
            "sw.yaml:8:10: training.pretrain.acelerators: unknown key \"acelerators\" for training entries; did you mean \"accelerators\"?", 0) == 0);
  CHECK(err("training.pretrian.accelerators", "1") ==
        "sw.yaml:8:10: training.pretrian.accelerators: no entry \"pretrian\" in training; did you mean \"pretrain\"? (known: pretrain)");
  CHECK(err("trainin.pretrain.accelerators", "1").rfind("sw.yaml:8:10: trainin.pretrain.accelerators: unknown section \"trainin\"; did you mean \"training\"?", 0) == 0);
  CHECK(err("training.pretrain", "1") == "sw.yaml:8:10: training.pretrain: expected training.<id>.<key>");
  CHECK(err("training.pretrain.model.layers", "1") ==
        "sw.yaml:8:10: training.pretrain.model.layers: cannot set a key inside training.pretrain.model: it is \"small-lm\", "
        "not a map (sweep the whole training.pretrain.model instead)");
  CHECK(err("scenario.horizn", "1").rfind("sw.yaml:8:10: scenario.horizn: unknown key \"horizn\" in scenario; did you mean \"horizon\"?", 0) == 0);
  CHECK(err("datacenters.test-dc.pue", "[1").rfind("sw.yaml:9:13: datacenters.test-dc.pue: the value is not YAML", 0) == 0);
  CHECK(err("datacenters.test-dc.pue", "0.5") == "sw.yaml:9:13: datacenters.test-dc.pue: expected a PUE from 1 to 10 (e.g. 1.58), got \"0.5\"");
  // A key inside a map value, and a key below a swept map: at the value's place in the sweep file.
  CHECK(err("training.pretrain.datacenter", "{id: test-dc, peu: 0.9}").rfind("sw.yaml:9:13: ", 0) == 0);
  CHECK(err("training.pretrain.datacenter", "{id: test-dc, peu: 0.9}").find("did you mean \"pue\"?") != std::string::npos);
  CHECK(err("training.pretrain.parallelism.pipline", "2").rfind("sw.yaml:9:13: ", 0) == 0);
  CHECK(err("training.pretrain.parallelism.pipline", "2").find("did you mean \"pipeline\"?") != std::string::npos);
}

TEST_CASE("a nested key of an entry that copies another (from:) keeps the rest of the copied map") {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "from.yaml") << R"(schema_version: 1
scenario: {name: from}
models:
  - id: small-lm
    design: {builder: decoder, layers: 4, d_model: 256, heads: 4, d_ff: 1024, vocab: 1000, seq_len: 128}
training:
  - id: first
    model: small-lm
    hardware: test-gpu
    accelerators: 8
    precision: fp16
    tokens: "1e9 tokens"
    parallelism: {data: 4, tensor: 2, microbatch: 8, global_batch: 64}
    datacenter: test-dc
  - id: second
    from: first
    tokens: "2e9 tokens"
)";
  const Scenario s = load_scenario(dir / "from.yaml", with({{"training.second.parallelism.tensor", "4", {"sw.yaml", 4, 12}},
                                                             {"training.second.parallelism.data", "2", {"sw.yaml", 5, 12}}}));
  REQUIRE(s.training.size() == 2);
  CHECK(s.training[1].parallelism->tensor == 4);
  CHECK(s.training[1].parallelism->global_batch == 64);  // from `first`, through `from:`
  CHECK(s.training[1].parallelism->microbatch == 8);
  CHECK(s.training[0].parallelism->tensor == 2);  // the entry it copies is not changed
}

TEST_CASE("sweep files: what is wrong, where") {
  auto err = [&](const std::string& body) {
    return error_of([&] { load_sweep_spec(sweep_file("bad.yaml", body)); });
  };
  const std::string f = (temp_dir() / "bad.yaml").lexically_normal().generic_string();
  CHECK(err("}\nparameters:\n  - {key: datacenters.test-dc.pue, range: [1, 2]}\n") ==
        f + ":4:43: parameters[0].range: a grid needs values, or a range with steps (or use method latin-hypercube or monte-carlo)");
  CHECK(err("}\nparameters:\n  - {key: datacenters.test-dc.pue, values: [1], range: [1, 2]}\n") ==
        f + ":4:5: parameters[0]: give either values or range, not both");
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [1]}\n  - {key: a.b.c.d, values: [2]}\n") ==
        f + ":5:11: parameters[1].key: key \"a.b.c.d\" overlaps \"a.b.c\" (line 4): sweep one or the other");
  // A value's inline reference sets a key of the copy it makes that another key sweeps (session 41).
  CHECK(err("}\nparameters:\n  - {key: training.a.datacenter, values: [test-dc, {id: test-dc, pue: 1.3}]}\n"
            "  - {key: datacenters.test-dc.pue, values: [1.1, 1.2]}\n") ==
        f + ":4:52: parameters[0].values[1]: this value sets \"datacenters.test-dc.pue\" in the copy its reference makes, "
            "which overlaps key \"datacenters.test-dc.pue\" (line 5): the copy would keep the value's figure whatever that "
            "key's column says; sweep one or the other");
  // Through a nested reference, and the other way round (the key first, a key under the value's).
  CHECK(err("}\nparameters:\n  - {key: regions.clean-region.intensity.value, values: [1]}\n"
            "  - {key: training.a.datacenter, values: [{id: test-dc, region: {id: clean-region, intensity: 2}}]}\n")
            .find(":5:43: parameters[1].values[0]: this value sets \"regions.clean-region.intensity\" in the copy its "
                  "reference makes, which overlaps key \"regions.clean-region.intensity.value\" (line 4)") != std::string::npos);
  // A value that changes another key of the copy is not an overlap; nor is a map that is not a reference.
  CHECK(err("}\nparameters:\n  - {key: training.a.datacenter, values: [{id: test-dc, region: clean-region}]}\n"
            "  - {key: datacenters.test-dc.pue, values: [1.1, 1.2]}\n  - {key: training.a.parallelism, values: [{id: x}]}\n"
            "  - {key: x.id, values: [1]}\n") == "");
  // The same value twice (as text, or as a number; session 41).
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [1, 2, 1.0]}\n") ==
        f + ":4:33: parameters[0].values[2]: the value 1.0 is given twice (first at line 4, column 27): its points would run twice");
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [us, eu, us]}\n").find("the value us is given twice") != std::string::npos);
  // Thousands separators as a scenario reads them (since session 46, a review: 2048 and "2,048" ran
  // as two points).
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [2048, \"2,048\"]}\n").find("is given twice") != std::string::npos);
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [1, \"1 day\", \"1 days\"]}\n") == "");
  // Maps and lists by content, numbers in them as numbers (since session 42, a review).
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [{utilisation: 0.5}, {utilisation: 0.50}]}\n")
            .find("the value {utilisation: 0.50} is given twice") != std::string::npos);
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [{a: 1, b: x}, {b: x, a: 1.0}]}\n").find("is given twice") != std::string::npos);
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [[1, 2], [1, 2.0]]}\n").find("is given twice") != std::string::npos);
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [{utilisation: 0.5}, {utilisation: 0.6}, [1, 2], [2, 1]]}\n") == "");
  CHECK(err(", method: monte-carlo, samples: 3}\nparameters:\n  - {key: a.b.c, values: [us, us, eu]}\n") == "");  // a weight
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: [1]}\n  - {key: a.b.c, values: [2]}\n") ==
        f + ":5:11: parameters[1].key: duplicate key \"a.b.c\" (first at line 4)");
  CHECK(err(", method: monte-carlo}\nparameters:\n  - {key: a.b.c, values: [1]}\n") ==
        f + ":2:8: sweep: missing required key \"samples\"");
  CHECK(err(", method: grid, samples: 3}\nparameters:\n  - {key: a.b.c, values: [1]}\n").find(
            "sweep.samples: samples is for latin-hypercube and monte-carlo") != std::string::npos);
  CHECK(err(", method: lhs}\nparameters:\n  - {key: a.b.c, values: [1]}\n").find("sweep.method: expected one of") !=
        std::string::npos);
  CHECK(err("}\nparameters:\n  - {key: a.b.c, values: []}\n") ==
        f + ":4:26: parameters[0].values: expected a non-empty list of values, got an empty list");
  CHECK(err(", method: monte-carlo, samples: 4}\nparameters:\n  - {key: a.b.c, range: [2, 1]}\n") ==
        f + ":4:29: parameters[0].range[1]: expected a number above the low end 2, got \"1\"");
  CHECK(err(", method: monte-carlo, samples: 4}\nparameters:\n  - {key: a.b.c, range: [0, 1], scale: log}\n") ==
        f + ":4:26: parameters[0].range[0]: expected a number > 0 (scale: log), got \"0\"");
  CHECK(err("}\nparameters:\n  - {key: a.b.c, range: [1, 1e9], steps: 100000}\n  - {key: a.b.d, range: [1, 1e9], steps: 100000}\n")
            .find("the grid has 10000000000 points, more than 1000000 ") != std::string::npos);
}

TEST_CASE("mutated sweep files load and expand, or fail with InputError naming a file, never anything else") {
  const fs::path dir = temp_dir() / "fuzz";
  fs::create_directories(dir);
  fs::copy_file(kData / "scenarios/first_principles.yaml", dir / "first_principles.yaml", fs::copy_options::overwrite_existing);
  std::vector<std::string> seeds;
  for (const char* name : {"sweeps/grid.sweep.yaml", "sweeps/lhs.sweep.yaml"}) {
    std::ifstream in(kData / name, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto at = text.find("../scenarios/first_principles.yaml");
    REQUIRE(at != std::string::npos);
    seeds.push_back(text.replace(at, 34, "first_principles.yaml"));
  }
  std::mt19937_64 rng(20261202);
  int expanded = 0, rejected = 0, points_loaded = 0;
  for (int i = 0; i < 600; ++i) {
    const std::string text = dlcarbon::test::mutate(seeds[static_cast<std::size_t>(i) % seeds.size()], rng);
    const fs::path file = dir / "mutant.yaml";
    std::ofstream(file, std::ios::binary) << text;
    try {
      const SweepSpec spec = load_sweep_spec(file);
      if (sweep_size(spec) > 5000) continue;  // a mutated sample count: valid, too long to expand here
      const auto points = expand_sweep(spec);
      ++expanded;
      for (std::size_t p = 0; p < points.size() && p < 3; ++p) {
        try {
          (void)load_scenario(spec.scenario, with(points[p].overrides));
          ++points_loaded;
        } catch (const InputError& e) {
          const std::string msg = e.what();
          CHECK_MESSAGE(msg.find('\n') == std::string::npos, msg);
          CHECK_MESSAGE((msg.find("mutant.yaml") != std::string::npos || msg.find("first_principles.yaml") != std::string::npos), msg);
        }
      }
    } catch (const InputError& e) {
      ++rejected;
      const std::string msg = e.what();
      CHECK_MESSAGE(msg.find("mutant.yaml") != std::string::npos, msg);
      CHECK_MESSAGE(msg.find('\n') == std::string::npos, msg);
    } catch (const std::exception& e) {
      FAIL_CHECK("escaped: " << e.what() << "\n--- input ---\n" << text);
    }
  }
  MESSAGE(expanded << " mutants expanded (" << points_loaded << " points loaded), " << rejected << " rejected");
  CHECK(expanded > 50);
  CHECK(rejected > 50);
  fs::remove_all(dir);
}

TEST_CASE("an id with dots: the longest run of parts that names an entry is the id") {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "dotted.yaml") << R"(schema_version: 1
scenario: {name: dotted}
datacenters:
  - {id: dc.eu, region: test-region, pue: 1.2, source: made up}
  - {id: dc, region: test-region, pue: 1.4, source: made up}
training:
  - id: job
    hardware: test-gpu
    accelerators: 2
    duration: "1 day"
    power: {per_accelerator: "200 W"}
    datacenter: dc.eu
)";
  const Scenario s = load_scenario(dir / "dotted.yaml", with({{"datacenters.dc.eu.pue", "1.3", {"sw.yaml", 4, 12}}}));
  CHECK(s.training[0].datacenter.pue == 1.3);
  const Scenario t = load_scenario(dir / "dotted.yaml", with({{"datacenters.dc.pue", "1.5", {"sw.yaml", 4, 12}},
                                                               {"training.job.datacenter", "dc", {"sw.yaml", 5, 12}}}));
  CHECK(t.training[0].datacenter.pue == 1.5);
}
