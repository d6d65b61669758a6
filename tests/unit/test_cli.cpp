#include <doctest/doctest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "approx.hpp"

using dlcarbon::test::approx;

#include <algorithm>
#include <cstdio>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <cmath>
#include <iterator>
#include <map>
#include <set>
#include <regex>
#include <sstream>

#include <unistd.h>

#include "commands.hpp"
#include "dlcarbon/graph.hpp"

namespace fs = std::filesystem;
using namespace dlcarbon;

namespace {
const fs::path kData = DLCARBON_TEST_DATA_DIR;

struct Result {
  int code;
  std::string out, err;
};

Result run(std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = cli::main(args, {out, err});
  return {code, out.str(), err.str()};
}

fs::path temp_dir() {
  const fs::path d = fs::temp_directory_path() / ("dlcarbon_test_cli_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}
// An empty folder `name` under temp_dir() (whatever an earlier run left there is removed).
fs::path fresh_dir(const std::string& name) {
  const fs::path d = temp_dir() / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
// `dlcarbon run` of a shipped scenario (a path under the source tree) with the shipped catalogs,
// writing `out`.
Result run_shipped(const std::string& scenario, const fs::path& out) {
  const fs::path source = DLCARBON_SOURCE_DIR;
  return run({"run", (source / scenario).string(), "--data-dir", (source / "data").string(), "-o", out.string()});
}
// The whole of a text file.
std::string file_text(const fs::path& file) {
  std::ifstream in(file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
}  // namespace

TEST_CASE("help and version") {
  auto r = run({"--version"});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("dlcarbon 0.1.0 (", 0) == 0);
  r = run({"--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("usage: dlcarbon <command>") != std::string::npos);
  // Nothing after them (since session 35: `--version foo` was exit 0).
  r = run({"--version", "foo"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--version takes no arguments, got \"foo\"") != std::string::npos);
  // `help CMD` is `CMD --help`.
  r = run({"help", "run"});
  CHECK(r.code == 0);
  CHECK(r.out.find("usage: dlcarbon run") != std::string::npos);
  // `help help` and `help --version` give the usage (since session 44, a review: exit 2).
  for (const char* what : {"help", "--help", "--version"}) {
    r = run({"help", what});
    CHECK(r.code == 0);
    CHECK(r.out.find("usage: dlcarbon <command>") != std::string::npos);
  }
  for (const char* command : {"run", "validate", "inspect", "sweep", "merge"}) {
    r = run({command, "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find(std::string("usage: dlcarbon ") + command) != std::string::npos);
  }
  CHECK(run({}).code == 2);
  r = run({"frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.err == "dlcarbon: unknown command \"frobnicate\"; expected one of: run, sweep, merge, validate, inspect, calibrate (see dlcarbon --help)\n");
  r = run({"run", "--frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.err.rfind("dlcarbon: unrecognised option '--frobnicate'", 0) == 0);
}

TEST_CASE("run writes the summary, inspect prints it") {
  const fs::path out = temp_dir() / "base.h5";
  auto r = run({"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir", (kData / "catalog").string(),
                "-o", out.string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  // 8 x 10 h x 400 W = 32 kWh IT; x 1.5 = 48 kWh = 0.048 MWh; x 0.5 kg/kWh = 24 kg = 0.024 t.
  CHECK(r.out == "dlcarbon: base-run: 1 training job(s), 0.048 MWh facility energy, 0.024 tCO2e (location-based) -> " +
                     out.string() + "\n");
  const RunRecord rec = read_run(out);
  const Table* t = nullptr;
  for (const auto& x : rec.tables) {
    if (x.path == "summary/training") t = &x;
  }
  REQUIRE(t != nullptr);
  CHECK(std::get<std::vector<double>>(t->find("facility_energy")->values)[0] == approx(48 * 3.6e6));
  CHECK(std::get<std::vector<double>>(t->find("co2e_location")->values)[0] == approx(24));
  // market: 48 kWh x 0.1 kg/kWh = 4.8 kg.
  CHECK(std::get<std::vector<double>>(t->find("co2e_market")->values)[0] == approx(4.8));
  // No design: the model's published `params: "110e6 params"`, and no count of the active ones.
  CHECK(std::get<std::vector<double>>(t->find("parameters")->values)[0] == 110e6);
  CHECK(std::isnan(std::get<std::vector<double>>(t->find("active_parameters")->values)[0]));
  CHECK(rec.scenario_name == "base-run");
  CHECK(rec.seed == 7);

  r = run({"inspect", out.string()});
  CHECK(r.code == 0);
  CHECK(r.out.find("facility_energy") != std::string::npos);
  CHECK(r.out.find("/summary/training (1 rows)") != std::string::npos);
  fs::remove(out);
  // Overheads named on a job whose duration is given are in that duration: the same figures, and
  // a note that says so (since session 42, a review: they were dropped without a word).
  const fs::path dir = fresh_dir("accounting-overheads");
  std::ofstream(dir / "s.yaml") << "schema_version: 1\nextends: " << (kData / "scenarios/good_base.yaml").string()
                                << "\ntraining:\n  - {id: pretrain, overheads: {runs: 3}}\n";
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("0.048 MWh facility energy") != std::string::npos);
  CHECK(r.out.find("note: pretrain: its duration is given, so its overheads are taken to be in it") != std::string::npos);
  // A parallelism on it is said too: it applies where its hours are predicted (since session 47, a
  // review: it was dropped without a word).
  std::ofstream(dir / "p.yaml") << "schema_version: 1\nextends: " << (kData / "scenarios/good_base.yaml").string()
                                << "\ntraining:\n  - {id: pretrain, overheads: {runs: 3}, parallelism: {global_batch: 8}}\n";
  r = run({"run", (dir / "p.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "p.h5").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("0.048 MWh facility energy") != std::string::npos);
  CHECK(r.out.find("note: pretrain: its duration is given, so its parallelism is used only where its hours are predicted "
                   "(validate --mode first-principles)") != std::string::npos);
  // So is a loss's kernels (since session 48).
  std::ofstream(dir / "c.yaml") << "schema_version: 1\nextends: " << (kData / "scenarios/good_base.yaml").string()
                                << "\ntraining:\n  - {id: pretrain, cross_entropy: megatron}\n";
  r = run({"run", (dir / "c.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "c.h5").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("0.048 MWh facility energy") != std::string::npos);
  CHECK(r.out.find("note: pretrain: its duration is given, so its cross_entropy is used only where its hours are predicted") !=
        std::string::npos);
}

TEST_CASE("a job whose model has no design says that its overheads and parallelism are not used") {
  // (Since session 47, a review.) Its hours are never predicted, so neither ever applies; the
  // figures are the duration's: 2 x 400 W x 10 h = 8 kWh, x test-dc's PUE of 1.5 = 12 kWh.
  const fs::path dir = fresh_dir("accounting-designed");
  std::ofstream(dir / "s.yaml")
      << "schema_version: 1\nscenario: {name: d, start: 2023-01-01}\nmodels:\n"
         "  - {id: lm, params: \"1e9 params\"}\n"
         "training:\n  - {id: j, model: lm, hardware: test-gpu, accelerators: 2, duration: \"10 h\", power: {per_accelerator: "
         "\"400 W\"}, datacenter: test-dc, overheads: {runs: 2}, parallelism: {global_batch: 8}}\n";
  auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("note: j: its duration is given, so its overheads, parallelism are not used: it has no model design to "
                   "predict its hours from") != std::string::npos);
  CHECK(r.out.find("taken to be in it") == std::string::npos);
  CHECK(r.out.find("0.012 MWh facility energy") != std::string::npos);
}

TEST_CASE("an output folder that does not exist is bad input, and nothing is written") {
  const fs::path out = temp_dir() / "missing-dir" / "x.h5";
  auto r = run({"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir", (kData / "catalog").string(),
                "-o", out.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("does not exist") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
  // A folder path past the system's length says so, not "does not exist" (since session 44).
  std::string deep = temp_dir().string();
  for (int i = 0; i < 21; ++i) deep += "/" + std::string(200, 'a');
  r = run({"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", deep + "/x.h5"});
  CHECK(r.code == 2);
  CHECK(r.err.find(std::strerror(ENAMETOOLONG)) != std::string::npos);
  CHECK(r.err.find("does not exist") == std::string::npos);
  // An output that is a folder: bad input too (before, the final rename failed: exit 1).
  for (const char* command : {"run", "sweep"}) {
    const fs::path file = std::string(command) == "run" ? kData / "scenarios/good_base.yaml" : kData / "sweeps/grid.sweep.yaml";
    r = run({command, file.string(), "--data-dir", (kData / "catalog").string(), "-o", temp_dir().string()});
    CHECK(r.code == 2);
    CHECK(r.err == "--output: cannot write \"" + temp_dir().string() + "\": it is a directory (name a file in it)\n");
  }
  r = run({"merge", "-o", temp_dir().string(), (kData / "sweeps/grid.sweep.yaml").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("it is a directory") != std::string::npos);
  // The good scenario run to `out` (more options after it).
  const auto run_to = [&](const fs::path& out, std::vector<std::string> more = {}) {
    std::vector<std::string> args = {"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir",
                                     (kData / "catalog").string(), "-o", out.string()};
    args.insert(args.end(), more.begin(), more.end());
    return run(args);
  };
  // An empty name (before: an internal failure, exit 1) and a FIFO (before: replaced by the file).
  r = run_to("");
  CHECK(r.code == 2);
  CHECK(r.err == "--output: an empty file name (name the HDF5 file to write)\n");
  const fs::path fifo = temp_dir() / ("fifo-" + std::to_string(::getpid()));
  fs::remove(fifo);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  r = run_to(fifo);
  CHECK(r.code == 2);
  CHECK(r.err.find("it exists and is not a regular file") != std::string::npos);
  CHECK(fs::is_fifo(fifo));
  // merge reading a FIFO or a folder: refused at once (since session 39; a FIFO held the reader
  // until its guard gave up after 120 s).
  r = run({"merge", "-o", (temp_dir() / ("m-" + std::to_string(::getpid()) + ".h5")).string(), fifo.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find(": not a dlcarbon sweep file (not a regular file: a device, FIFO or socket)") != std::string::npos);
  r = run({"merge", "-o", (temp_dir() / ("m-" + std::to_string(::getpid()) + ".h5")).string(), temp_dir().string()});
  CHECK(r.code == 2);
  CHECK(r.err.find(": not a dlcarbon sweep file (a directory)") != std::string::npos);
  fs::remove(fifo);
  // A link to a file is written through: the link stays, the file it names is the output.
  const fs::path target = temp_dir() / "link-target.h5", link = temp_dir() / "link.h5";
  fs::remove(link);
  std::ofstream(target) << "old";
  fs::create_symlink(target, link);
  r = run_to(link, {"--quiet"});
  CHECK(r.code == 0);
  CHECK(fs::is_symlink(link));
  CHECK(read_run(target).tables.size() > 0);
  fs::remove(link);
  fs::remove(target);
  // Links that loop are bad input, found before anything runs, and stay links.
  const fs::path loop_a = temp_dir() / "loop-a.h5", loop_b = temp_dir() / "loop-b.h5";
  fs::remove(loop_a);
  fs::remove(loop_b);
  fs::create_symlink(loop_b, loop_a);
  fs::create_symlink(loop_a, loop_b);
  r = run_to(loop_a);
  CHECK(r.code == 2);
  CHECK(r.err.find("its symbolic links loop") != std::string::npos);
  CHECK(fs::is_symlink(loop_a));
  fs::remove(loop_a);
  fs::remove(loop_b);
}


TEST_CASE("a negative or huge thread count and a data directory that is a file are bad input") {
  const fs::path out = temp_dir() / "threads.h5";
  for (const char* command : {"run", "sweep"}) {
    const fs::path file = std::string(command) == "run" ? kData / "scenarios/good_base.yaml" : kData / "sweeps/grid.sweep.yaml";
    // Ten million threads had crashed inside TBB's arena (since session 43, a review: at most 1,024).
    for (const char* threads : {"-1", "1025", "10000000"}) {
      auto r = run({command, file.string(), "--data-dir", (kData / "catalog").string(), "--threads", threads, "-o", out.string()});
      CHECK(r.code == 2);
      CHECK(r.err == std::string("--threads: expected 0 (all cores) or a count from 1 to 1024, got ") + threads + "\n");
      CHECK_FALSE(fs::exists(out));
    }
  }
  auto r = run({"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir",
                (kData / "scenarios/good_base.yaml").string(), "-o", out.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("the data directory is not a directory") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
}
TEST_CASE("inspect refuses what is not an output file") {
  auto r = run({"inspect", (temp_dir() / "nothing.h5").string()});
  CHECK(r.code == 2);
  r = run({"inspect", (kData / "scenarios/good_base.yaml").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("not a dlcarbon output file") != std::string::npos);
}

TEST_CASE("validate passes within tolerance and fails outside it") {
  auto r = run({"validate", "--dir", (kData / "published_ok").string(), "--data-dir", (kData / "catalog").string()});
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  // Market: 2.88 kg simulated against "2.9" printed (+/- 0.05): -0.69 % raw, 0 beyond print.
  CHECK(r.out.find("3 rows from 1 scenarios (1 read); 3 within 1%") != std::string::npos);
  // The same folder twice, by two names: its rows once (since session 38; before, 6 rows from 2).
  r = run({"validate", "--dir", (kData / "published_ok").string(), "--dir", (kData / "published_ok/.").string(), "--data-dir",
           (kData / "catalog").string()});
  CHECK(r.code == 0);
  CHECK(r.out.find("3 rows from 1 scenarios (1 read); 3 within 1%") != std::string::npos);
  {
    // Two folders holding files of the same name: two scenarios (a review of session 46).
    const fs::path two = fresh_dir("same-stem");
    fs::create_directories(two / "a");
    fs::create_directories(two / "b");
    for (const auto& e : fs::directory_iterator(kData / "published_ok")) {
      fs::copy_file(e.path(), two / "a" / e.path().filename());
      fs::copy_file(e.path(), two / "b" / e.path().filename());
    }
    const auto t = run({"validate", "--dir", (two / "a").string(), "--dir", (two / "b").string(), "--data-dir", (kData / "catalog").string()});
    CHECK(t.out.find("6 rows from 2 scenarios (2 read)") != std::string::npos);
  }
  r = run({"validate", "--dir", (kData / "published_fail").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 1);
  CHECK(r.out.find("FAIL") != std::string::npos);
  // 28.8 kWh against 30.0 (+/- 0.05): -4 % raw; beyond print -(1.2 - 0.05) / 30 = -3.83 %, below the
  // printed range as the raw error is (since session 46, a review: "+3.83%").
  CHECK(r.out.find("-4.00%") != std::string::npos);
  CHECK(r.out.find("-3.83%") != std::string::npos);
  // An empty --dir is said as one, a missing folder quoted (since session 47, a review).
  r = run({"validate", "--dir", "", "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err == "dlcarbon validate: --dir: an empty path is not a directory\n");
  r = run({"validate", "--dir", (kData / "no such folder").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--dir: \"") != std::string::npos);
  CHECK(r.err.find("no such folder\" is not a directory") != std::string::npos);
}

TEST_CASE("first-principles run: predicted duration, MFU and a per-op table") {
  const fs::path out = temp_dir() / "fp.h5";
  auto r = run({"run", (kData / "scenarios/first_principles.yaml").string(), "--data-dir",
                (kData / "catalog").string(), "-o", out.string(), "--quiet"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const RunRecord rec = read_run(out);
  const Table* summary = nullptr;
  const Table* ops = nullptr;
  for (const auto& t : rec.tables) {
    if (t.path == "summary/training") summary = &t;
    if (t.path == "training/pretrain/ops") ops = &t;
  }
  REQUIRE(summary != nullptr);
  REQUIRE(ops != nullptr);
  CHECK(std::get<std::vector<std::string>>(summary->find("mode")->values)[0] == "first-principles");
  CHECK(std::get<std::vector<std::string>>(summary->find("status")->values)[0] == "ok");
  const double mfu = std::get<std::vector<double>>(summary->find("mfu")->values)[0];
  CHECK(mfu > 0);
  CHECK(mfu < 1);
  // duration = steps x step time; 1e9 tokens / (64 x 128) = 122,070.3 steps.
  const double steps = std::get<std::vector<double>>(summary->find("steps")->values)[0];
  CHECK(steps == approx(1e9 / (64.0 * 128)));
  const double step = std::get<std::vector<double>>(summary->find("step_time")->values)[0];
  CHECK(std::get<std::vector<double>>(summary->find("duration")->values)[0] == approx(steps * step));
  // The design's parameters, by hand: a layer 3 x (256^2 + 256) + (256^2 + 256) + (256 x 1024 +
  // 1024) + (1024 x 256 + 256) + 2 x 512 = 789,760, four of them 3,159,040; the tied table
  // 1000 x 256 = 256,000, 128 learned positions 32,768, the final norm 512: 3,448,320, all active.
  CHECK(std::get<std::vector<double>>(summary->find("parameters")->values)[0] == 3448320.0);
  CHECK(std::get<std::vector<double>>(summary->find("active_parameters")->values)[0] == 3448320.0);
  CHECK(ops->rows() > 20);
  CHECK(ops->find("bound") != nullptr);
  // Each op row carries its block: the ops of decoder layer i are block i (the final norm goes
  // with the last block, where a pipeline places it); embeddings, head, optimizer and
  // communication are -1.
  REQUIRE(ops->find("layer") != nullptr);
  const auto& layer = std::get<std::vector<std::int64_t>>(ops->find("layer")->values);
  const auto& names = std::get<std::vector<std::string>>(ops->find("op")->values);
  std::set<std::int64_t> blocks;
  for (std::size_t i = 0; i < layer.size(); ++i) {
    if (layer[i] >= 0) blocks.insert(layer[i]);
    for (int l = 0; l < 4; ++l) {
      if (names[i].rfind("decoder." + std::to_string(l) + ".", 0) == 0) CHECK(layer[i] == l);
    }
    if (names[i] == "decoder.final_norm") CHECK(layer[i] == 3);
    if (names[i] == "lm_head" || names[i] == "decoder.embedding" || names[i].rfind("optimizer.", 0) == 0) {
      CHECK(layer[i] == -1);
    }
  }
  CHECK(blocks == std::set<std::int64_t>{0, 1, 2, 3});
  // Where the step goes: its components add up to the step time, each with its share; a job of 4
  // data and 2 tensor ranks communicates, has no pipeline and so no bubble.
  const Table* parts = nullptr;
  for (const auto& t : rec.tables) {
    if (t.path == "training/pretrain/step") parts = &t;
  }
  REQUIRE(parts != nullptr);
  const auto& component = std::get<std::vector<std::string>>(parts->find("component")->values);
  const auto& part_time = std::get<std::vector<double>>(parts->find("time")->values);
  const auto& share = std::get<std::vector<double>>(parts->find("share")->values);
  REQUIRE(component.size() == 9);
  double total = 0, total_share = 0;
  for (std::size_t i = 0; i < component.size(); ++i) {
    total += part_time[i];
    total_share += share[i];
    CHECK(part_time[i] >= 0);
    if (component[i] == "compute") CHECK(share[i] > 0.5);
    if (component[i] == "pipeline bubble") CHECK(part_time[i] == 0);
    if (component[i] == "tensor communication") CHECK(part_time[i] > 0);
  }
  CHECK(total == approx(step));
  CHECK(total_share == approx(1.0));
  // The pipeline's devices: one without a pipeline, holding all 4 layers, the busiest; its slot
  // is a microbatch's compute and exposed tensor-parallel communication.
  const Table* stages = nullptr;
  for (const auto& t : rec.tables) {
    if (t.path == "training/pretrain/stages") stages = &t;
  }
  REQUIRE(stages != nullptr);
  const auto& stage_layers = std::get<std::vector<double>>(stages->find("layers")->values);
  const auto& slot = std::get<std::vector<double>>(stages->find("slot")->values);
  const auto& fwd = std::get<std::vector<double>>(stages->find("forward")->values);
  const auto& bwd = std::get<std::vector<double>>(stages->find("backward")->values);
  const auto& tcomm = std::get<std::vector<double>>(stages->find("tensor_communication")->values);
  const auto& ccomm = std::get<std::vector<double>>(stages->find("context_communication")->values);
  const auto& busiest = std::get<std::vector<std::int64_t>>(stages->find("busiest")->values);
  REQUIRE(stage_layers.size() == 1);
  CHECK(stage_layers[0] == 4);
  CHECK(busiest[0] == 1);
  CHECK(tcomm[0] > 0);
  CHECK(ccomm[0] == 0);  // no context parallelism
  CHECK(slot[0] == approx(fwd[0] + bwd[0] + tcomm[0] + ccomm[0]));
  CHECK(std::get<std::vector<double>>(stages->find("activations")->values)[0] > 0);
  // Without --quiet, the run prints the prediction of each first-principles job.
  r = run({"run", (kData / "scenarios/first_principles.yaml").string(), "--data-dir", (kData / "catalog").string(),
           "-o", out.string()});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("  pretrain: step ") != std::string::npos);
  CHECK(r.out.find(" steps, ") != std::string::npos);
  CHECK(r.out.find("accelerator-hours; step: compute ") != std::string::npos);
  // And below it where a step's kernel energy goes (since session 53): the largest (kind, phase)
  // group of the per-op table first, each row's energy times the times it runs a step on the
  // average device, `per_step`: 64 sequences over 4 data ranks in microbatches of 8 are 2
  // microbatches a step, no pipeline, so 2 for the forward and backward rows, 1 for the update and
  // the communication.
  {
    const auto& kind = std::get<std::vector<std::string>>(ops->find("kind")->values);
    const auto& phase = std::get<std::vector<std::string>>(ops->find("phase")->values);
    const auto& energy = std::get<std::vector<double>>(ops->find("energy")->values);
    REQUIRE(ops->find("per_step") != nullptr);
    const auto& per_step = std::get<std::vector<double>>(ops->find("per_step")->values);
    std::map<std::string, double> groups;
    double all = 0;
    for (std::size_t i = 0; i < energy.size(); ++i) {
      CHECK(per_step[i] == (phase[i] == "fwd" || phase[i] == "bwd" ? 2.0 : 1.0));
      groups[kind[i] + " " + phase[i]] += energy[i] * per_step[i];
      all += energy[i] * per_step[i];
    }
    const auto top = std::max_element(groups.begin(), groups.end(),
                                      [](const auto& a, const auto& b) { return a.second < b.second; });
    REQUIRE(all > 0);
    char expected[96];
    std::snprintf(expected, sizeof expected, "(the average device): %s %.0f %%, ", top->first.c_str(), 100 * top->second / all);
    INFO(r.out);
    CHECK(r.out.find("\n    kernel energy a step (the average device): ") != std::string::npos);
    CHECK(r.out.find(expected) != std::string::npos);
  }
  fs::remove(out);
}

TEST_CASE("calibrate --quick writes an entry that a scenario can name") {
  const fs::path dir = temp_dir() / "calibrated";
  fs::remove_all(dir);
  fs::create_directories(dir / "data");
  fs::copy_file(kData / "catalog/test-catalog.yaml", dir / "data/test-catalog.yaml");
  auto r = run({"calibrate", "--quick", "--seconds", "1", "--tdp", "8.8 W", "--id", "this-cpu", "--out",
                (dir / "data/hardware/measured").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("held-out kernels: ") != std::string::npos);
  CHECK(r.out.find("noise floor (same shapes, pass A vs pass B") != std::string::npos);
  CHECK(fs::exists(dir / "data/hardware/measured/this-cpu.h5"));
  // The entry records the command that wrote it (since session 47, a review: a quick entry read
  // like a full one).
  {
    const std::string entry = file_text(dir / "data/hardware/measured/this-cpu.yaml");
    CHECK(entry.find("\n# Command: dlcarbon calibrate --quick --seconds 1 --tdp 8.8 W --id this-cpu --out ") != std::string::npos);
  }
  // The raw file records the machine it measured, and a refit describes that machine, not the one
  // refitting (since session 35): a copy whose record names another CPU is refitted under that name.
  {
    RunRecord raw = read_run(dir / "data/hardware/measured/this-cpu.h5");
    bool recorded = false;
    for (auto& t : raw.tables) {
      if (t.path != "calibration/machine") continue;
      for (auto& c : t.columns) {
        if (c.name == "cpu") std::get<std::vector<std::string>>(c.values).at(0) = "Recorded CPU 9000";
      }
      recorded = true;
    }
    REQUIRE(recorded);
    fs::create_directories(dir / "elsewhere");
    write_run(dir / "elsewhere" / "other-cpu.h5", raw);
    const auto refit = run({"calibrate", "--refit", (dir / "elsewhere" / "other-cpu.h5").string()});
    INFO(refit.out, refit.err);
    REQUIRE(refit.code == 0);
    CHECK(refit.out.find("records no machine") == std::string::npos);
    std::ifstream entry(dir / "elsewhere" / "other-cpu.yaml");
    const std::string text((std::istreambuf_iterator<char>(entry)), std::istreambuf_iterator<char>());
    CHECK(text.find("name: \"Recorded CPU 9000 (") != std::string::npos);
    // (And the measured run's --tdp, recorded too: since session 42.)
    CHECK(text.find("    tdp: \"8.8 W\"\n") != std::string::npos);
    // A last cache level that holds every calibration STREAM set (1 TiB here) makes the fitted
    // bandwidth a cache rate, said in a comment; one that holds none (1 KiB), not (since session
    // 47, a review).
    for (const std::string levels : {"1099511627776", "1024"}) {
      RunRecord cached = raw;
      for (auto& t : cached.tables) {
        if (t.path != "calibration/machine") continue;
        for (auto& c : t.columns) {
          if (c.name == "cache_levels") std::get<std::vector<std::string>>(c.values).at(0) = levels;
        }
      }
      const fs::path folder = dir / ("levels-" + levels);
      fs::create_directories(folder);
      write_run(folder / "cached-cpu.h5", cached);
      const auto c = run({"calibrate", "--refit", (folder / "cached-cpu.h5").string()});
      INFO(levels, c.out, c.err);
      REQUIRE(c.code == 0);
      std::ifstream e(folder / "cached-cpu.yaml");
      const std::string y((std::istreambuf_iterator<char>(e)), std::istreambuf_iterator<char>());
      CHECK((y.find("fits in the last cache level: a cache rate, not main memory's") != std::string::npos) == (levels != "1024"));
    }
  }
  // A first-principles job on the measured CPU.
  std::ofstream(dir / "s.yaml") << "schema_version: 1\nscenario: {name: on-this-cpu}\nmodels:\n"
                                   "  - id: m\n    design: {builder: mlp, widths: [256, 256, 10]}\n"
                                   "training:\n  - id: t\n    model: m\n    hardware: this-cpu\n"
                                   "    accelerators: 1\n    precision: fp32\n    tokens: \"1e6 tokens\"\n"
                                   "    parallelism: {global_batch: 64}\n    datacenter: test-dc\n";
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (dir / "data").string(), "-o", (dir / "out.h5").string(),
           "--quiet"});
  INFO(r.err);
  CHECK(r.code == 0);
  // Bad options are refused before anything is measured, and nothing is written (since session 35:
  // an id with a path wrote outside --out, an empty one ".yaml", a zero --tdp took the default, an
  // unknown --from went into the entry, --out naming a file failed after measuring).
  const fs::path out = dir / "bad";
  fs::create_directories(out);
  fs::create_directories(out / "taken.h5");
  const std::vector<std::pair<std::vector<std::string>, std::string>> bad = {
      {{"--id", "../escaped"}, "--id: expected an id"},
      {{"--id", ""}, "--id: expected an id"},
      {{"--tdp", "0 W"}, "--tdp: expected a power greater than 0"},
      {{"--tdp", "-8 W"}, "--tdp: expected a power greater than 0"},
      {{"--from", "nope"}, "--from: unknown hardware \"nope\""},
      // Since session 42: a GPU's datasheet entry under a CPU's measured rates.
      {{"--from", "test-gpu"}, "--from: test-gpu is a gpu, not a CPU"},
      // Since session 36: "-1" had wrapped to 4294967295.
      {{"--seed", "-1"}, "--seed: expected a whole number from 0 to 4294967295"},
      // Since session 37: a folder named like the entry was reported written (and like the raw file,
      // failed after the entry was written).
      {{"--id", "taken"}, "cannot write"},
  };
  for (const auto& [extra, message] : bad) {
    std::vector<std::string> args = {"calibrate", "--quick", "--seconds", "1", "--data-dir", (dir / "data").string(), "--out", out.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto b = run(args);
    INFO(b.err);
    CHECK(b.code == 2);
    CHECK(b.err.find(message) != std::string::npos);
    CHECK(b.out.find("held-out kernels") == std::string::npos);
  }
  // An empty --out had written into the working folder (since session 36).
  const auto e = run({"calibrate", "--quick", "--seconds", "1", "--data-dir", (dir / "data").string(), "--out", ""});
  CHECK(e.code == 2);
  CHECK(e.err.find("--out: expected a folder, got an empty name") != std::string::npos);
  std::ofstream(dir / "file") << "x";
  const auto f = run({"calibrate", "--quick", "--seconds", "1", "--out", (dir / "file").string()});
  CHECK(f.code == 2);
  CHECK(f.err.find("--out: ") != std::string::npos);
  // Since session 37: inf and 1e300 overflowed the round count into the fewest rounds.
  for (const char* seconds : {"inf", "1e300", "0"}) {
    const auto g = run({"calibrate", "--quick", "--seconds", seconds, "--data-dir", (dir / "data").string(), "--out", out.string()});
    CHECK(g.code == 2);
    CHECK(g.err.find("--seconds: expected a number of seconds greater than 0 and at most 604800") != std::string::npos);
  }
  CHECK(std::distance(fs::directory_iterator(out), fs::directory_iterator()) == 1);  // taken.h5 alone
  CHECK_FALSE(fs::exists(out / "taken.yaml"));
  CHECK_FALSE(fs::exists(dir / "escaped.yaml"));
  fs::remove_all(dir);
}

namespace {
const Table& table_of(const RunRecord& r, const std::string& path) {
  for (const auto& t : r.tables) {
    if (t.path == path) return t;
  }
  FAIL("no table " << path);
  static const Table none;
  return none;
}
template <class T>
const std::vector<T>& col(const RunRecord& r, const std::string& path, const std::string& name) {
  const Column* c = table_of(r, path).find(name);
  REQUIRE(c != nullptr);
  return std::get<std::vector<T>>(c->values);
}
Result sweep(const fs::path& file, const fs::path& out, std::vector<std::string> more = {}) {
  std::vector<std::string> args = {"sweep", file.string(), "--data-dir", (kData / "catalog").string(), "-o", out.string()};
  args.insert(args.end(), more.begin(), more.end());
  return run(args);
}
// Every table of two sweep files, cell for cell (NaN equal to NaN).
void check_same_tables(const RunRecord& a, const RunRecord& b) {
  for (const auto& t : a.tables) {
    if (t.path == "sweep/info") continue;
    const Table& u = table_of(b, t.path);
    REQUIRE(t.columns.size() == u.columns.size());
    for (std::size_t i = 0; i < t.columns.size(); ++i) {
      INFO(t.path << " " << t.columns[i].name);
      if (const auto* x = std::get_if<std::vector<double>>(&t.columns[i].values)) {
        const auto& y = std::get<std::vector<double>>(u.columns[i].values);
        REQUIRE(x->size() == y.size());
        for (std::size_t k = 0; k < x->size(); ++k) CHECK(((*x)[k] == y[k] || (std::isnan((*x)[k]) && std::isnan(y[k]))));
      } else {
        CHECK(t.columns[i].values == u.columns[i].values);
      }
    }
  }
}
}  // namespace

TEST_CASE("a model that does not fit: the reason in the output, a message, exit 2") {
  const fs::path out = temp_dir() / "too-big.h5";
  auto r = run({"run", (kData / "scenarios/does_not_fit.yaml").string(), "--data-dir",
                (kData / "catalog").string(), "-o", out.string(), "--quiet"});
  CHECK(r.code == 2);
  CHECK(r.err.find("does_not_fit.yaml:8:5: training.pretrain: does not fit: needs ") != std::string::npos);
  REQUIRE(fs::exists(out));
  const RunRecord rec = read_run(out);
  for (const auto& t : rec.tables) {
    if (t.path != "summary/training") continue;
    CHECK(std::get<std::vector<std::string>>(t.find("status")->values)[0].rfind("does not fit", 0) == 0);
  }
  // Nothing ran: no duration, energy, carbon or step (NaN, not a free job), and totals unknown; the
  // memory it needs stays.
  for (const char* name : {"duration", "it_energy", "facility_energy", "co2e_location", "step_time", "mfu", "steps"}) {
    INFO(name);
    CHECK(std::isnan(col<double>(rec, "summary/training", name)[0]));
  }
  CHECK(col<double>(rec, "summary/training", "memory_per_accelerator")[0] > 0);
  CHECK(std::isnan(col<double>(rec, "summary/totals", "facility_energy")[0]));
  fs::remove(out);
  // A job stopped before its memory is sized (more pipeline stages than layers) has no known need:
  // NaN, not 0 B (since session 41, from a review).
  const fs::path dir = fresh_dir("stages");
  std::ofstream(dir / "s.yaml") << "schema_version: 1\nscenario: {name: s}\nmodels:\n"
                                   "  - {id: m, design: {builder: decoder, layers: 1, d_model: 64, heads: 2, d_ff: 256, vocab: 100, seq_len: 32}}\n"
                                   "training:\n  - {id: t, model: m, hardware: test-gpu, accelerators: 2, precision: fp16, "
                                   "tokens: \"1e6 tokens\", parallelism: {pipeline: 2, global_batch: 4}, datacenter: test-dc}\n";
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "s.h5").string(), "--quiet"});
  CHECK(r.code == 2);
  const RunRecord stopped = read_run(dir / "s.h5");
  CHECK(std::get<std::vector<std::string>>(table_of(stopped, "summary/training").find("status")->values)[0] != "ok");
  CHECK(std::isnan(col<double>(stopped, "summary/training", "memory_per_accelerator")[0]));
  fs::remove_all(dir);
}


TEST_CASE("sweep: one row per point, a point that does not fit is a result, exit 0") {
  const fs::path out = temp_dir() / "grid.h5";
  fs::remove(out);
  auto r = sweep(kData / "sweeps/grid.sweep.yaml", out, {"--threads", "2"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("6 of 6 points, 6 run, 0 kept from the file, 2 cannot run") != std::string::npos);
  // The clear message for each point that cannot run (on stderr; the sweep still exits 0).
  CHECK(r.err.find("dlcarbon: sweep point 4: models.small-lm.design.d_model=16384, training.pretrain.datacenter=test-dc: "
                   "cannot run: pretrain: does not fit: needs ") != std::string::npos);
  const RunRecord rec = read_run(out);
  CHECK(col<std::int64_t>(rec, "sweep/points", "point") == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(col<double>(rec, "sweep/points", "models.small-lm.design.d_model") == std::vector<double>{256, 256, 512, 512, 16384, 16384});
  const auto& status = col<std::string>(rec, "sweep/points", "status");
  CHECK(status == std::vector<std::string>{"ok", "ok", "ok", "ok", "cannot run", "cannot run"});
  CHECK(col<std::string>(rec, "sweep/points", "reason")[4].rfind("pretrain: does not fit: needs ", 0) == 0);
  const auto& energy = col<double>(rec, "sweep/points", "facility_energy");
  const auto& co2e = col<double>(rec, "sweep/points", "co2e_location");
  CHECK(std::isnan(energy[4]));
  // Same job, other grid: the same energy; CO2e in the ratio of the intensities (20 / 500 g/kWh).
  CHECK(energy[1] == energy[0]);
  CHECK(co2e[1] == approx(co2e[0] * 0.04).epsilon(1e-12));
  // A wider model costs more.
  CHECK(energy[2] > energy[0]);
  // Point 0 is the base scenario itself: the same figures as `dlcarbon run`.
  const fs::path single = temp_dir() / "single.h5";
  REQUIRE(run({"run", (kData / "scenarios/first_principles.yaml").string(), "--data-dir", (kData / "catalog").string(),
               "-o", single.string(), "--quiet"}).code == 0);
  CHECK(col<double>(read_run(single), "summary/totals", "facility_energy")[0] == energy[0]);
  // Per-job rows, with the point they belong to.
  CHECK(col<std::int64_t>(rec, "sweep/training", "point") == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
  CHECK(col<std::string>(rec, "sweep/training", "region")[1] == "clean-region");
  CHECK(col<std::int64_t>(rec, "sweep/info", "complete")[0] == 1);

  // Threads do not change a bit.
  const fs::path one = temp_dir() / "grid1.h5";
  REQUIRE(sweep(kData / "sweeps/grid.sweep.yaml", one, {"--threads", "1", "--fresh"}).code == 0);
  check_same_tables(rec, read_run(one));
  fs::remove(one);
  fs::remove(single);
}

TEST_CASE("sweep: shards merge into the whole sweep, a rerun resumes, an edited sweep is refused") {
  const fs::path dir = fresh_dir("shards");
  const fs::path lhs = kData / "sweeps/lhs.sweep.yaml";
  REQUIRE(sweep(lhs, dir / "whole.h5").code == 0);
  for (const char* s : {"0/3", "1/3", "2/3"}) {
    const auto r = sweep(lhs, dir / "part.h5", {"--shard", s, "--quiet"});
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  CHECK(col<std::int64_t>(read_run(dir / "part.shard-1-of-3.h5"), "sweep/points", "point") == std::vector<std::int64_t>{1, 4, 7});
  auto r = run({"merge", "-o", (dir / "merged.h5").string(), (dir / "part.shard-0-of-3.h5").string(),
                (dir / "part.shard-1-of-3.h5").string(), (dir / "part.shard-2-of-3.h5").string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("8 of 8 points -> ") != std::string::npos);
  const RunRecord whole = read_run(dir / "whole.h5");
  check_same_tables(whole, read_run(dir / "merged.h5"));

  // --gather: shard 0, once done, merges every complete shard file into the whole file (here the
  // other shards are already done; tests/analysis runs the shards as concurrent processes).
  REQUIRE(sweep(lhs, dir / "g.h5", {"--shard", "1/2", "-q"}).code == 0);
  r = sweep(lhs, dir / "g.h5", {"--shard", "0/2", "--gather"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("gathered 2 shards, 8 of 8 points -> ") != std::string::npos);
  check_same_tables(whole, read_run(dir / "g.h5"));

  // A shard given twice is refused, and nothing is written.
  r = run({"merge", "-o", (dir / "twice.h5").string(), (dir / "part.shard-0-of-3.h5").string(),
           (dir / "part.shard-0-of-3.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("point 0 is also in") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "twice.h5"));

  // A shard whose tables have other columns (as one written before session 36 has no `parameters`
  // in sweep/training) is bad input naming it, not an internal failure at the merge.
  {
    RunRecord old = read_run(dir / "part.shard-1-of-3.h5");
    bool dropped = false;
    for (auto& t : old.tables) {
      if (t.path != "sweep/training") continue;
      const auto it = std::find_if(t.columns.begin(), t.columns.end(), [](const Column& c) { return c.name == "parameters"; });
      REQUIRE(it != t.columns.end());
      t.columns.erase(it);
      dropped = true;
    }
    REQUIRE(dropped);
    write_run(dir / "old.shard-1-of-3.h5", old);
    r = run({"merge", "-o", (dir / "mixed.h5").string(), (dir / "part.shard-0-of-3.h5").string(),
             (dir / "old.shard-1-of-3.h5").string()});
    CHECK(r.code == 2);
    CHECK(r.err.find("old.shard-1-of-3.h5: its sweep/training table has other columns than ") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "mixed.h5"));
    // Resuming such a file is bad input too, the file left as it was, before the other points run
    // (since session 37; before, an internal failure when the file was written, after every point).
    RunRecord partial = old;
    for (auto& t : partial.tables) {
      if (t.path != "sweep/info") continue;
      for (auto& c : t.columns) {
        if (c.name == "shard") std::get<std::vector<std::int64_t>>(c.values)[0] = 0;
        if (c.name == "shards") std::get<std::vector<std::int64_t>>(c.values)[0] = 1;
      }
    }
    write_run(dir / "old-whole.h5", partial);
    const auto size = fs::file_size(dir / "old-whole.h5");
    r = sweep(lhs, dir / "old-whole.h5", {"--threads", "1"});
    CHECK(r.code == 2);
    CHECK(r.err.find("old-whole.h5: its sweep/training table has other columns than this build writes") != std::string::npos);
    CHECK(fs::file_size(dir / "old-whole.h5") == size);
    // --fresh starts it over.
    r = sweep(lhs, dir / "old-whole.h5", {"--fresh", "-q"});
    CHECK(r.code == 0);
    check_same_tables(whole, read_run(dir / "old-whole.h5"));
  }

  // A merged file that would replace one of its shards is refused, the shard left as it was (since
  // session 35; before, it overwrote its own input).
  const auto shard_size = fs::file_size(dir / "part.shard-0-of-3.h5");
  r = run({"merge", "-o", (dir / "part.shard-0-of-3.h5").string(), (dir / "part.shard-0-of-3.h5").string(),
           (dir / "part.shard-1-of-3.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("it is one of the shard files merged") != std::string::npos);
  CHECK(fs::file_size(dir / "part.shard-0-of-3.h5") == shard_size);

  // A sweep whose output names its base scenario is refused, with or without --fresh (since
  // session 35; --fresh overwrote the scenario).
  fs::copy_file(kData / "scenarios/first_principles.yaml", dir / "base.yaml");
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: s, scenario: base.yaml}\n"
                                         "parameters:\n  - {key: models.small-lm.design.d_model, values: [256, 512]}\n";
  const std::string base_name = "base.yaml";
  const auto base_size = fs::file_size(dir / base_name);
  for (const bool fresh : {false, true}) {
    std::vector<std::string> extra{"-q"};
    if (fresh) extra.push_back("--fresh");
    r = sweep(dir / "s.sweep.yaml", dir / base_name, extra);
    CHECK(r.code == 2);
    // (Since session 43 refused as a name ending .yaml, before the inputs are read.)
    CHECK(r.err.find("base.yaml\": the output is an HDF5 file, and a name ending .yaml") != std::string::npos);
    CHECK(fs::file_size(dir / base_name) == base_size);
  }
  // So is one that names a trace only a swept value reads (since session 37, a review: the check
  // ran before the points were loaded, and --fresh overwrote the trace).
  {
    const std::string trace = "datetime_utc,gco2_per_kwh_direct,gco2_per_kwh_lca\n2023-01-01 00:00:00,100,110\n2023-01-01 01:00:00,200,210\n";
    std::ofstream(dir / "tr.csv") << trace;
    std::ofstream(dir / "t.sweep.yaml") << "schema_version: 1\nsweep: {name: t, scenario: base.yaml}\n"
                                           "parameters:\n  - {key: regions.test-region.trace, values: [{file: tr.csv}]}\n";
    r = run({"sweep", (dir / "t.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
             (dir / "tr.csv").string(), "--fresh", "-q"});
    CHECK(r.code == 2);
    CHECK(r.err.find("tr.csv\": it is one of the inputs") != std::string::npos);
    std::ifstream in(dir / "tr.csv");
    CHECK(std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>()) == trace);
  }

  // Resume: a file with shard 0's points only (as a killed sweep leaves it) gets the rest.
  REQUIRE(run({"merge", "-o", (dir / "resumed.h5").string(), (dir / "part.shard-0-of-3.h5").string(), "-q"}).code == 0);
  CHECK(col<std::int64_t>(read_run(dir / "resumed.h5"), "sweep/info", "complete")[0] == 0);
  r = sweep(lhs, dir / "resumed.h5");
  REQUIRE(r.code == 0);
  CHECK(r.out.find("8 of 8 points, 5 run, 3 kept from the file") != std::string::npos);
  check_same_tables(whole, read_run(dir / "resumed.h5"));
  CHECK(col<std::int64_t>(read_run(dir / "resumed.h5"), "sweep/info", "complete")[0] == 1);

  // An edited sweep does not resume from another sweep's file.
  fs::copy_file(lhs, dir / "edited.yaml");
  fs::copy_file(kData / "scenarios/first_principles.yaml", dir / "first_principles.yaml");
  {
    std::string text = file_text(dir / "edited.yaml");
    text.replace(text.find("seed: 11"), 8, "seed: 12");
    text.replace(text.find("../scenarios/first_principles.yaml"), 34, "first_principles.yaml");
    std::ofstream(dir / "edited.yaml") << text;
  }
  const auto before = fs::last_write_time(dir / "whole.h5");
  r = sweep(dir / "edited.yaml", dir / "whole.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("whole.h5: holds another sweep") != std::string::npos);
  CHECK(fs::last_write_time(dir / "whole.h5") == before);
  CHECK(sweep(dir / "edited.yaml", dir / "whole.h5", {"--fresh", "-q"}).code == 0);
  // So does an edited catalog entry that the scenario uses (the fingerprint covers the resolved
  // scenario, catalogs included).
  fs::create_directories(dir / "catalog");
  {
    std::string text = file_text(kData / "catalog/test-catalog.yaml");
    std::ofstream(dir / "catalog/test-catalog.yaml") << text;
    const auto at = text.find("pue: 1.5");
    REQUIRE(at != std::string::npos);
    r = run({"sweep", (dir / "edited.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "cat.h5").string(), "-q"});
    REQUIRE(r.code == 0);
    std::ofstream(dir / "catalog/test-catalog.yaml") << text.replace(at, 8, "pue: 1.6");
  }
  r = run({"sweep", (dir / "edited.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "cat.h5").string(), "-q"});
  CHECK(r.code == 2);
  CHECK(r.err.find("cat.h5: holds another sweep") != std::string::npos);
  // Since session 31 also: an entry the scenario does not use (a swept value may name it), a
  // trace file in the data directory, and a setting the resolved scenario had left out (a job's
  // start). Each refuses the resume.
  const auto sweep_in = [&](const char* out) {
    return run({"sweep", (dir / "edited.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o",
                (dir / out).string(), "-q"});
  };
  const auto edit = [](const fs::path& file, const std::string& from, const std::string& to) {
    std::string text = file_text(file);
    const auto at = text.find(from);
    REQUIRE(at != std::string::npos);
    std::ofstream(file) << text.replace(at, from.size(), to);
  };
  REQUIRE(sweep_in("unused.h5").code == 0);
  edit(dir / "catalog/test-catalog.yaml", "intensity: \"20 gCO2e/kWh\"", "intensity: \"21 gCO2e/kWh\"");
  r = sweep_in("unused.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("unused.h5: holds another sweep") != std::string::npos);
  REQUIRE(sweep_in("trace.h5").code == 0);
  std::ofstream(dir / "catalog/trace.csv") << "datetime_utc,gco2_per_kwh_direct\n2023-01-01 00:00:00,100\n";
  r = sweep_in("trace.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("trace.h5: holds another sweep") != std::string::npos);
  // A trace in a folder the data directory links to counts too.
  fs::create_directories(dir / "ext");
  std::ofstream(dir / "ext/t.csv") << "datetime_utc,gco2_per_kwh_direct\n2023-01-01 00:00:00,100\n";
  fs::create_directory_symlink(dir / "ext", dir / "catalog/hourly");
  REQUIRE(sweep_in("linked.h5").code == 0);
  std::ofstream(dir / "ext/t.csv", std::ios::app) << "2023-01-01 01:00:00,200\n";
  r = sweep_in("linked.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("linked.h5: holds another sweep") != std::string::npos);
  REQUIRE(sweep_in("start.h5").code == 0);
  edit(dir / "first_principles.yaml", "    datacenter: test-dc\n", "    datacenter: test-dc\n    start: 2025-06-01\n");
  r = sweep_in("start.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("start.h5: holds another sweep") != std::string::npos);
  // Since session 39: a trace outside the data directory that an entry of the scenario names,
  // unused by the base (a swept value may reach it), and one that a swept value names.
  std::ofstream(dir / "side.csv") << "datetime_utc,gco2_per_kwh_direct\n2023-01-01 00:00:00,100\n2023-01-01 01:00:00,100\n";
  std::ofstream(dir / "first_principles.yaml", std::ios::app)
      << "regions:\n  - {id: side, name: Side, intensity: \"100 g/kWh\", year: 2023, source: made up, trace: {file: side.csv, basis: direct}}\n";
  r = sweep_in("side.h5");
  INFO(r.err);
  REQUIRE(r.code == 0);
  std::ofstream(dir / "side.csv", std::ios::app) << "2023-01-01 02:00:00,200\n";
  r = sweep_in("side.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("side.h5: holds another sweep") != std::string::npos);
  // A trace that a swept value names: resumed while it is unchanged, refused once it is edited.
  const auto refused_after_trace_edit = [&](const std::string& name, const std::string& parameter) {
    const fs::path csv = dir / (name + ".csv"), yaml = dir / (name + ".sweep.yaml"), out = dir / (name + ".h5");
    std::ofstream(csv) << "datetime_utc,gco2_per_kwh_direct\n2023-01-01 00:00:00,100\n2023-01-01 01:00:00,100\n";
    std::ofstream(yaml) << "schema_version: 1\nsweep: {name: t, scenario: first_principles.yaml}\nparameters:\n  - " << parameter
                        << "\n";
    const auto sweep_it = [&] {
      return run({"sweep", yaml.string(), "--data-dir", (dir / "catalog").string(), "-o", out.string(), "-q"});
    };
    auto res = sweep_it();
    INFO(res.err);
    REQUIRE(res.code == 0);
    CHECK(sweep_it().code == 0);  // unchanged: resumed
    std::ofstream(csv, std::ios::app) << "2023-01-01 02:00:00,200\n";
    res = sweep_it();
    CHECK(res.code == 2);
    CHECK(res.err.find(name + ".h5: holds another sweep") != std::string::npos);
  };
  refused_after_trace_edit("swept", "{key: regions.test-region.trace, values: [{file: swept.csv}]}");
  // Since session 41: a file named by a key that ends in `file` (the value a bare name).
  refused_after_trace_edit("keyed", "{key: regions.side.trace.file, values: [keyed.csv]}");
  // Since session 41: files a catalog's entries name that the data directory's CSV files do not
  // cover (a graph file, a trace outside the directory), whether the base uses the entry or not.
  fs::copy_file(kData / "graphs/tiny.yaml", dir / "tiny.graph.yaml");  // the catalog reads every YAML file in its folder
  std::ofstream(dir / "outside.csv") << "datetime_utc,gco2_per_kwh_direct\n2023-01-01 00:00:00,100\n2023-01-01 01:00:00,100\n";
  std::ofstream(dir / "catalog/extra.yaml")
      << "schema_version: 1\nmodels:\n  - {id: tiny-cat, design: {builder: file, path: ../tiny.graph.yaml}}\n"
         "regions:\n  - {id: outside, name: Outside, intensity: \"100 g/kWh\", year: 2023, source: made up, "
         "trace: {file: ../outside.csv, basis: direct}}\n";
  r = sweep_in("cat-files.h5");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(sweep_in("cat-files.h5").code == 0);  // unchanged: resumed
  std::ofstream(dir / "tiny.graph.yaml", std::ios::app) << "# edited\n";
  r = sweep_in("cat-files.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("cat-files.h5: holds another sweep") != std::string::npos);
  REQUIRE(sweep_in("cat-trace.h5").code == 0);
  std::ofstream(dir / "outside.csv", std::ios::app) << "2023-01-01 02:00:00,200\n";
  r = sweep_in("cat-trace.h5");
  CHECK(r.code == 2);
  CHECK(r.err.find("cat-trace.h5: holds another sweep") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("sweep over a lifecycle scenario: a row per deployment and point") {
  const fs::path dir = fresh_dir("cctv");
  const fs::path source = DLCARBON_SOURCE_DIR;
  std::ofstream(dir / "cctv.sweep.yaml") << "schema_version: 1\n"
                                            "sweep: {name: cctv, scenario: "
                                         << (source / "scenarios/lifecycle/carpark-cctv.yaml").string()
                                         << "}\nparameters:\n  - {key: deployments.cctv.useful_fraction, values: [0.25, 1.0]}\n";
  const auto r = run({"sweep", (dir / "cctv.sweep.yaml").string(), "-o", (dir / "out.h5").string(), "--quiet"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const RunRecord rec = read_run(dir / "out.h5");
  CHECK(col<std::int64_t>(rec, "sweep/points", "lifecycle") == std::vector<std::int64_t>{1, 1});
  CHECK(col<std::int64_t>(rec, "sweep/deployments", "point") == std::vector<std::int64_t>{0, 1});
  // The same cameras and energy; a quarter of the inferences useful: four times the carbon per
  // useful inference.
  const auto& energy = col<double>(rec, "sweep/points", "facility_energy");
  CHECK(energy[0] == energy[1]);
  const auto& per_useful = col<double>(rec, "sweep/deployments", "co2e_per_useful_inference");
  CHECK(per_useful[0] == approx(4 * per_useful[1]).epsilon(1e-9));
  fs::remove_all(dir);
}

TEST_CASE("sweep and run over a lifecycle: the inference jobs count, and market CO2e is given") {
  // A deployment (the lifecycle) and a one-off inference job the lifecycle does not place in time;
  // before session 31 the points' totals were the lifecycle's alone and market-based CO2e NaN.
  const fs::path dir = fresh_dir("life_inference");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: li, start: 2025-01-01, horizon: "30 days", resolution: month}
models:
  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}
deployments:
  - id: svc
    model: mlp
    start: 2025-01-01
    duration: "30 days"
    hardware_mix: [{from: 2025-01-01, shares: {test-gpu: 1}}]
    replicas: {initial: 2}
    demand: {initial: "1e6 requests/day"}
    batch: 8
    regions: [{datacenter: test-dc, share: 1}]
inference:
  - {id: batch-job, model: mlp, hardware: test-gpu, datacenter: test-dc, batch: 8, precision: fp32, inferences: "1e9"}
)";
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: li, scenario: s.yaml}\nparameters:\n"
                                         "  - {key: inference.batch-job.inferences, values: [1e9, 1e10]}\n";
  const auto r = run({"sweep", (dir / "s.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                      (dir / "out.h5").string(), "--quiet"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const RunRecord rec = read_run(dir / "out.h5");
  const auto& energy = col<double>(rec, "sweep/points", "facility_energy");
  const auto& job = col<double>(rec, "sweep/inference", "facility_energy");
  REQUIRE(energy.size() == 2);
  REQUIRE(job.size() == 2);
  CHECK(job[1] == approx(10 * job[0]));
  // The same lifecycle in both points; the difference is the inference job's.
  CHECK(energy[1] - energy[0] == approx(job[1] - job[0]));
  CHECK(energy[0] > job[0]);
  for (const double m : col<double>(rec, "sweep/points", "co2e_market")) CHECK(std::isfinite(m));
  // A plain run prints the same total as point 0 (in MWh, 5 significant digits).
  const auto one = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                        (dir / "one.h5").string()});
  REQUIRE(one.code == 0);
  CHECK(one.out.find("1 inference job(s)") != std::string::npos);
  const auto events = one.out.find(" events, ");
  REQUIRE(events != std::string::npos);
  const double printed_mwh = std::stod(one.out.substr(events + 9));
  CHECK(printed_mwh == approx(energy[0] / 3.6e9).epsilon(1e-4));
  fs::remove_all(dir);
}

namespace {
// Runs dir/s.sweep.yaml (two points): the first runs, the second cannot, with a reason that starts
// with `reason`, NaN totals and exit 0.
void second_point_cannot_run(const fs::path& dir, const std::string& reason) {
  const auto r = run({"sweep", (dir / "s.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                      (dir / "out.h5").string(), "--quiet"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const RunRecord sw = read_run(dir / "out.h5");
  CHECK(col<std::string>(sw, "sweep/points", "status") == std::vector<std::string>{"ok", "cannot run"});
  CHECK(col<std::string>(sw, "sweep/points", "reason")[1].rfind(reason, 0) == 0);
  CHECK(std::isnan(col<double>(sw, "sweep/points", "facility_energy")[1]));
  CHECK(std::isfinite(col<double>(sw, "sweep/points", "facility_energy")[0]));
}
}  // namespace

TEST_CASE("an inference job that does not fit: the reason in the output, exit 2 for a run, a result for a sweep point") {
  // A decoder of 24 layers, d 4,096 (4.96e9 parameters with the 32,000 x 4,096 table: 9.9 GB in
  // fp16) fits the 16 GB test GPU; at d 8,192 (19.6e9 parameters, 39.2 GB) it does not.
  const fs::path dir = fresh_dir("inference_fit");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: inf-fit}
models:
  - {id: lm, design: {builder: decoder, layers: 24, d_model: 4096, heads: 32, d_ff: 16384, vocab: 32000, seq_len: 512}}
inference:
  - {id: score, model: lm, hardware: test-gpu, datacenter: test-dc, batch: 1, precision: fp16, inferences: "1e6"}
)";
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: f, scenario: s.yaml}\nparameters:\n"
                                         "  - {key: models.lm.design.d_model, values: [4096, 8192]}\n";
  const auto ok = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                       (dir / "ok.h5").string(), "--quiet"});
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  const RunRecord fits = read_run(dir / "ok.h5");
  CHECK(col<std::string>(fits, "summary/inference", "status")[0] == "ok");
  // The weights in fp16 (2 B a parameter: at least the layers' 24 x 12 x 4096^2 and the table) and
  // the largest op's tensors: the attention scores of 32 heads x 512^2, read and written in fp16
  // (64 MiB), at least.
  CHECK(col<double>(fits, "summary/inference", "memory_per_accelerator")[0] >
        2 * (24 * 12 * 4096.0 * 4096 + 32000 * 4096.0) + 2 * 2 * 32 * 512.0 * 512);
  std::ofstream(dir / "big.yaml") << R"(schema_version: 1
scenario: {name: inf-big}
models:
  - {id: lm, design: {builder: decoder, layers: 24, d_model: 8192, heads: 64, d_ff: 32768, vocab: 32000, seq_len: 512}}
inference:
  - {id: score, model: lm, hardware: test-gpu, datacenter: test-dc, batch: 1, precision: fp16, inferences: "1e6"}
)";
  const auto big = run({"run", (dir / "big.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                        (dir / "big.h5").string(), "--quiet"});
  CHECK(big.code == 2);
  CHECK(big.err.find("big.yaml:6:5: inference.score: does not fit: needs ") != std::string::npos);
  CHECK(big.err.find(" more than the 16.0 GB test-gpu has") != std::string::npos);
  REQUIRE(fs::exists(dir / "big.h5"));
  const RunRecord rec = read_run(dir / "big.h5");
  CHECK(col<std::string>(rec, "summary/inference", "status")[0].rfind("does not fit: needs ", 0) == 0);
  for (const char* name : {"batch_time", "it_energy", "facility_energy", "co2e_location", "accelerator_time"}) {
    INFO(name);
    CHECK(std::isnan(col<double>(rec, "summary/inference", name)[0]));
  }
  CHECK(std::isnan(col<double>(rec, "summary/totals", "facility_energy")[0]));
  // In a sweep the point is a result with its reason; the sweep exits 0.
  second_point_cannot_run(dir, "score: does not fit: needs ");
  fs::remove_all(dir);
}

TEST_CASE("a deployment no replica can hold: the reason, exit 2 for a run, a result for a sweep point") {
  // 24 layers, d 8,192 (19.6e9 parameters: 39.2 GB in fp16) against the test GPU's 16 GB; at d 1,024
  // it fits. The run writes its file, says why and exits 2; a sweep point is `cannot run`.
  const fs::path dir = fresh_dir("deployment_fit");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: dep-fit, start: 2025-01-01, horizon: "30 days"}
models:
  - {id: m, design: {builder: decoder, layers: 24, d_model: 8192, heads: 64, d_ff: 32768, vocab: 32000, seq_len: 2048, position: rotary}}
deployments:
  - id: serve
    model: m
    start: 2025-01-01
    duration: "30 days"
    hardware: test-gpu
    demand: "1e6 requests/day"
    request: {tokens_in: 512, tokens_out: 128}
    regions: [{datacenter: test-dc, share: 1}]
)";
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: d, scenario: s.yaml}\nparameters:\n"
                                         "  - {key: models.m.design.d_model, values: [1024, 8192]}\n";
  const auto one = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                        (dir / "one.h5").string(), "--quiet"});
  CHECK(one.code == 2);
  // At the hardware that cannot hold it (since session 38; before, at the deployment's id).
  CHECK(one.err.find("s.yaml:10:15: deployments[0].hardware: does not fit: a batch of 1 needs ") != std::string::npos);
  CHECK(one.err.find("(weights 39.2 GB, ") != std::string::npos);
  {
    // In a hardware mix, hardware at a share of 0 need not hold the model; a step that cannot is
    // named by its share (since session 38: a share of 0 stopped the deployment, at its id).
    std::string text = file_text(dir / "s.yaml");
    const auto with_mix = [&](const std::string& mix) {
      std::string t = text;
      t.replace(t.find("    hardware: test-gpu\n"), 23, "    hardware_mix:\n" + mix);
      t.replace(t.find("models:"), 7, "hardware:\n  - {id: big-gpu, from: test-gpu, memory: \"100 GB\"}\nmodels:");
      std::ofstream(dir / "mix.yaml") << t;
      return run({"run", (dir / "mix.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "mix.h5").string(),
                  "--quiet"});
    };
    const auto zero = with_mix("      - {shares: {big-gpu: 1, test-gpu: 0}}\n");
    CHECK(zero.code == 0);
    CHECK(zero.err.empty());
    const auto later = with_mix("      - {shares: {big-gpu: 1}}\n      - {from: 2025-01-15, shares: {big-gpu: 0.5, test-gpu: 0.5}}\n");
    CHECK(later.code == 2);
    CHECK(later.err.find("mix.yaml:14:61: deployments[0].hardware_mix[1].shares.test-gpu: does not fit") != std::string::npos);
  }
  {
    // A deployment that inherits the hardware (`from:`) and a model too large for it is named
    // beside the key it inherits (since session 46, a review: only the parent's key, which fits).
    std::string text = file_text(dir / "s.yaml");
    text.replace(text.find("d_model: 8192, heads: 64"), 24, "d_model: 1024, heads: 64");
    text.replace(text.find("models:\n"), 8,
                 "models:\n  - {id: big, design: {builder: decoder, layers: 24, d_model: 8192, heads: 64, d_ff: 32768, "
                 "vocab: 32000, seq_len: 2048, position: rotary}}\n");
    text += "  - {id: serve-big, from: serve, model: big}\n";
    std::ofstream(dir / "inherit.yaml") << text;
    const auto inherited = run({"run", (dir / "inherit.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                                (dir / "inherit.h5").string(), "--quiet"});
    CHECK(inherited.code == 2);
    CHECK(inherited.err.find(":11:15: deployments[0].hardware (inherited by serve-big): does not fit") != std::string::npos);
    CHECK(inherited.err.find("(weights 39.2 GB, ") != std::string::npos);
    // A file that extends it and gives its own deployment's hardware: that key is its own, whatever
    // its index in the merged list (a review of session 46).
    std::ofstream(dir / "child.yaml") << "schema_version: 1\nextends: inherit.yaml\ndeployments:\n"
                                         "  - {id: own, from: serve, model: big, hardware: test-gpu}\n";
    const auto child = run({"run", (dir / "child.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                            (dir / "child.h5").string(), "--quiet"});
    INFO(child.err);
    CHECK(child.code == 2);
    CHECK(child.err.find("child.yaml:4:50: deployments[0].hardware: does not fit") != std::string::npos);
    CHECK(child.err.find("(inherited by own)") == std::string::npos);
    // A file that only updates the parent's demand: serve-big still inherits its hardware.
    std::ofstream(dir / "update.yaml") << "schema_version: 1\nextends: inherit.yaml\ndeployments:\n"
                                          "  - {id: serve, demand: \"2e6 requests/day\"}\n";
    const auto update = run({"run", (dir / "update.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                             (dir / "update.h5").string(), "--quiet"});
    INFO(update.err);
    CHECK(update.err.find("deployments[0].hardware (inherited by serve-big): does not fit") != std::string::npos);
  }
  CHECK(one.err.find("KV cache at 639 tokens a request ") != std::string::npos);
  REQUIRE(fs::exists(dir / "one.h5"));
  // Not simulated (since session 34): no rows in the series or the totals, and NaN figures in
  // its summary row, as a training job's that does not fit.
  const RunRecord rec = read_run(dir / "one.h5");
  CHECK(col<std::string>(rec, "lifecycle/deployments", "deployment") == std::vector<std::string>{"serve"});
  for (const char* name : {"requests", "energy", "co2e_location", "co2e_per_inference", "peak_replicas", "mean_utilisation"}) {
    INFO(name);
    CHECK(std::isnan(col<double>(rec, "lifecycle/deployments", name)[0]));
  }
  CHECK(col<double>(rec, "lifecycle/totals", "energy").empty());
  CHECK(col<double>(rec, "lifecycle/timeseries", "energy").empty());
  CHECK(col<double>(rec, "lifecycle/serving", "memory_per_accelerator")[0] > 16e9);
  // (The point's reason names the key of the hardware that cannot hold it, as the run does: each
  // step of a mix apart; since session 42.)
  second_point_cannot_run(dir, "serve (deployments[0].hardware): does not fit: a batch of 1 needs ");
  // The sweep's deployments table agrees with its points: the point that cannot run has NaN.
  const RunRecord sw = read_run(dir / "out.h5");
  const auto energy = col<double>(sw, "sweep/deployments", "energy");
  REQUIRE(energy.size() == 2);
  CHECK(std::isfinite(energy[0]));
  CHECK(std::isnan(energy[1]));
  fs::remove_all(dir);
}

TEST_CASE("said, not silent: an inference precision the hardware lacks, a deployment outside the horizon") {
  const fs::path dir = fresh_dir("notes");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: notes, start: 2025-01-01, horizon: "1 year"}
models:
  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}
deployments:
  - {id: later, model: mlp, start: 2040-01-01, duration: "1 year", hardware: test-gpu, demand: "10 requests/s", regions: [{datacenter: test-dc}]}
  - {id: across, model: mlp, start: 2025-06-01, duration: "1 year", hardware: test-gpu, demand: "10 requests/s", regions: [{datacenter: test-dc}]}
inference:
  - {id: eight, model: mlp, hardware: test-gpu, datacenter: test-dc, precision: fp8, inferences: "1e6"}
)";
  const auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("note: eight: test-gpu lists no fp8 peak") != std::string::npos);
  CHECK(r.out.find("note: deployment later lies wholly outside the horizon") != std::string::npos);
  CHECK(r.out.find("note: deployment across runs partly outside the horizon") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("said, not silent: FlashAttention-1 given heads wider than its kernels") {
  // Heads of 256 (d_model 512, 2 heads): FlashAttention-1 runs none wider than 128; 64-wide heads
  // (d_model 256, 4 heads) say nothing.
  const fs::path dir = fresh_dir("flash1_note");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: notes, start: 2025-01-01, horizon: "1 year"}
models:
  - {id: wide, design: {builder: decoder, layers: 1, d_model: 512, heads: 2, d_ff: 1024, vocab: 100, seq_len: 32}}
  - {id: narrow, design: {builder: decoder, layers: 1, d_model: 256, heads: 4, d_ff: 1024, vocab: 100, seq_len: 32}}
training:
  - {id: wide-job, model: wide, hardware: test-gpu, accelerators: 1, tokens: "1e6 tokens", fusion: flash1, datacenter: test-dc, parallelism: {global_batch: 8}}
  - {id: narrow-job, model: narrow, hardware: test-gpu, accelerators: 1, tokens: "1e6 tokens", fusion: flash1, datacenter: test-dc, parallelism: {global_batch: 8}}
)";
  const auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("note: wide-job: FlashAttention-1 runs heads of at most 128 channels and these are 256 wide") != std::string::npos);
  CHECK(r.out.find("note: narrow-job: FlashAttention") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("sweep: an inference batch too large to cost is bad input, found before any point runs") {
  const fs::path dir = fresh_dir("too-large");
  const fs::path source = DLCARBON_SOURCE_DIR;
  std::ofstream(dir / "batch.sweep.yaml") << "schema_version: 1\n"
                                             "sweep: {name: batch, scenario: "
                                          << (source / "scenarios/hidden-costs/resnet50-layouts.yaml").string()
                                          << "}\nparameters:\n  - {key: inference.cpu-nchw.batch, values: [1, 4503599627370496]}\n";
  const auto r = run({"sweep", (dir / "batch.sweep.yaml").string(), "-o", (dir / "out.h5").string(), "--quiet"});
  CHECK(r.code == 2);
  CHECK(r.err.find(": inference.cpu-nchw: too large to cost: at a batch of 4503599627370496 a tensor holds ") != std::string::npos);
  CHECK(r.err.find("(in sweep point 1: inference.cpu-nchw.batch=4503599627370496)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "out.h5"));
  fs::remove_all(dir);
}

TEST_CASE("calibrate --refit of a GPU run's CSV gives back the committed entry, without a GPU") {
  const fs::path dir = temp_dir() / "gpu-refit";
  fs::remove_all(dir);
  const fs::path csv = fs::path(DLCARBON_SOURCE_DIR) / "data/hardware/measured/nvidia-h200-measured.csv";
  // The CSV records its datasheet entry (nvidia-h200-sxm), read from the shipped catalog.
  auto r = run({"calibrate", "--refit", csv.string(), "--out", dir.string(), "--data-dir",
                (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("held-out energy") != std::string::npos);
  const auto text = [](const fs::path& file) {
    return file_text(file);
  };
  // The committed entry is this fit of the committed CSV.
  CHECK(text(dir / "nvidia-h200-measured.yaml") ==
        text(fs::path(DLCARBON_SOURCE_DIR) / "data/hardware/measured/nvidia-h200-measured.yaml"));
  // Under another id, the entry still names the raw file it was fitted from (since session 42, a
  // review: it named "renamed.csv", which does not exist).
  r = run({"calibrate", "--refit", csv.string(), "--out", dir.string(), "--id", "renamed", "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  REQUIRE(r.code == 0);
  CHECK(text(dir / "renamed.yaml").find("raw data nvidia-h200-measured.csv\"") != std::string::npos);
  CHECK(text(dir / "renamed.yaml").find("renamed.csv") == std::string::npos);
  // A GPU's entry does not replace a measured CPU's of the same id, written by calibrate too (since
  // session 43, a review).
  {
    std::ofstream cpu(dir / "cpu-like.yaml");
    cpu << "# Written by `dlcarbon calibrate` (test) on 2026-12-06.\nschema_version: 1\n";
  }
  r = run({"calibrate", "--refit", csv.string(), "--out", dir.string(), "--id", "cpu-like", "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("it is a measured CPU's entry, and this run's is a GPU's") != std::string::npos);
  CHECK(text(dir / "cpu-like.yaml").rfind("# Written by", 0) == 0);
  // A CSV that is not one: exit 2 and the line.
  fs::create_directories(dir);
  std::ofstream(dir / "bad.csv") << "# device: X; l2_bytes: 1\nkernel,time\n";
  r = run({"calibrate", "--refit", (dir / "bad.csv").string(), "--out", dir.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("bad.csv:2: expected the header") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "bad.yaml"));
  // A cell that is no number names its column and value (since session 41, a review: "stod").
  {
    std::ifstream in(csv);
    std::ofstream bad(dir / "cell.csv");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (n == 6) line = line.substr(0, line.rfind(',')) + ",abc";
      bad << line << "\n";
    }
  }
  r = run({"calibrate", "--refit", (dir / "cell.csv").string(), "--out", dir.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("cell.csv:6: column 10 (energy_j): expected a finite number, got \"abc\"") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "cell.yaml"));
  // A kernel row with no energy (0 J) or no pass time: exit 2 at its line (since session 35: a 0 J
  // row made the energy fit NaN and wrote "-nan pJ", exit 0). The committed CSV with CRLF line ends
  // reads as it is.
  {
    std::ifstream in(csv);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line)) lines.push_back(line);
    REQUIRE(lines.size() > 3);
    std::ofstream crlf(dir / "crlf.csv");
    for (const auto& l : lines) crlf << l << "\r\n";
    crlf.close();
    r = run({"calibrate", "--refit", (dir / "crlf.csv").string(), "--out", (dir / "crlf").string(), "--data-dir",
             (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
    CHECK(r.code == 0);
    std::string zero = lines[2];
    zero = zero.substr(0, zero.rfind(',') + 1) + "0";
    std::ofstream bad_energy(dir / "zero.csv");
    for (std::size_t i = 0; i < lines.size(); ++i) bad_energy << (i == 2 ? zero : lines[i]) << "\n";
    bad_energy.close();
    r = run({"calibrate", "--refit", (dir / "zero.csv").string(), "--out", dir.string(), "--data-dir",
             (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
    CHECK(r.code == 2);
    CHECK(r.err.find("zero.csv:3: energy_j must be a positive number") != std::string::npos);
    CHECK_FALSE(fs::exists(dir / "zero.yaml"));
  }
  // The committed CSV with its device line's `from` replaced (`from` empty: none).
  const auto with_from = [&](const std::string& name, const std::string& from) {
    std::ifstream in(csv);
    std::ofstream out(dir / name);
    std::string line;
    std::getline(in, line);
    out << line.substr(0, line.find("; from:")) << (from.empty() ? "" : "; from: " + from) << "\n" << in.rdbuf();
  };
  // A CSV that records no datasheet entry needs --from, and --from a GPU of the catalog.
  with_from("anon.csv", "");
  r = run({"calibrate", "--refit", (dir / "anon.csv").string(), "--out", dir.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("records no datasheet entry; name the GPU's with --from") != std::string::npos);
  r = run({"calibrate", "--refit", (dir / "anon.csv").string(), "--out", dir.string(), "--from", "google-tpu-v3", "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("google-tpu-v3 is a tpu, not a GPU") != std::string::npos);
  r = run({"calibrate", "--refit", (dir / "anon.csv").string(), "--out", dir.string(), "--from", "no-such-gpu", "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("no-such-gpu") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "anon.yaml"));
  // An unknown id the CSV records: named at the CSV's first line.
  with_from("typo.csv", "nvidia-h200-sx");
  r = run({"calibrate", "--refit", (dir / "typo.csv").string(), "--out", dir.string(), "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("typo.csv:1: from: unknown hardware") != std::string::npos);
  CHECK(r.err.find("<input>") == std::string::npos);
  // Since session 36, each exit 2 with nothing written: the CSV cut to its device line and header
  // (no GEMM rate, no bandwidth: the entry it wrote was one the catalog refuses); the H200's run
  // refitted --from an A100 (bf16 at 2.8 times its peak; every fraction had been clamped to 1);
  // --tdp, which a GPU entry inherits from its datasheet entry.
  {
    std::ifstream in(csv);
    std::string device, header;
    std::getline(in, device);
    std::getline(in, header);
    std::ofstream(dir / "cut.csv") << device << "\n" << header << "\n";
  }
  r = run({"calibrate", "--refit", (dir / "cut.csv").string(), "--out", (dir / "cut").string(), "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("the samples fit no bf16 or fp16 GEMM rate and no copy bandwidth") != std::string::npos);
  // The file is named (since session 47, a review).
  CHECK(r.err.find("--refit: " + (dir / "cut.csv").string() + ": the samples fit no") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "cut"));
  r = run({"calibrate", "--refit", csv.string(), "--out", (dir / "wrong").string(), "--from", "nvidia-a100-sxm4-80gb",
           "--data-dir", (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("the run is not of that part") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "wrong"));
  // Its fp32 products ten times as fast (7 times the datasheet's fp32 peak): refused before the entry
  // is opened (the review's finding: a refusal at the fp32 line left the entry cut there).
  {
    std::ifstream in(csv);
    std::ofstream out(dir / "fast32.csv");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("\"matmul f32 ", 0) == 0) {
        std::vector<std::string> cells;
        std::stringstream split(line);
        for (std::string cell; std::getline(split, cell, ',');) cells.push_back(cell);
        REQUIRE(cells.size() == 10);
        for (std::size_t c = 5; c <= 8; ++c) cells[c] = std::to_string(std::stod(cells[c]) / 10);
        line = cells[0];
        for (std::size_t c = 1; c < cells.size(); ++c) line += "," + cells[c];
      }
      out << line << "\n";
    }
  }
  r = run({"calibrate", "--refit", (dir / "fast32.csv").string(), "--out", (dir / "fast32").string(), "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("matmul/f32 measured at") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "fast32"));
  r = run({"calibrate", "--refit", csv.string(), "--out", (dir / "tdp").string(), "--tdp", "5 W", "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--tdp: a GPU run's entry takes its tdp from the datasheet entry") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "tdp"));
  // A raw file that is missing, or a folder: named as such (it said "not an HDF5 file").
  r = run({"calibrate", "--refit", (dir / "missing.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("missing.h5: no such file") != std::string::npos);
  r = run({"calibrate", "--refit", dir.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find(": not a regular file") != std::string::npos);
  // An output folder that cannot be made: exit 2, not a crash.
  std::ofstream(dir / "a-file") << "x";
  r = run({"calibrate", "--refit", csv.string(), "--out", (dir / "a-file/sub").string(), "--data-dir",
           (fs::path(DLCARBON_SOURCE_DIR) / "data").string()});
  CHECK(r.code == 2);
  fs::remove_all(dir);
}

TEST_CASE("calibrate replaces only a file it wrote, and writes no id the catalog cannot find") {
  // Since session 41, from a review: `--id datacenters --out <data dir>` replaced the data centre
  // catalog, and an id starting with a dot was written where the catalog never looks.
  const fs::path dir = fresh_dir("calibrate_guard");
  const fs::path source = DLCARBON_SOURCE_DIR;
  fs::copy(source / "data", dir / "data", fs::copy_options::recursive);
  const std::string raw = (source / "data/hardware/measured/cpu-amd-epyc-2t.h5").string();
  const auto text_of = [](const fs::path& p) {
    return file_text(p);
  };
  const std::string catalog = text_of(dir / "data/datacenters.yaml");
  auto r = run({"calibrate", "--refit", raw, "--id", "datacenters", "--out", (dir / "data").string(), "--data-dir",
                (dir / "data").string()});
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("\": it is there and was not written by dlcarbon calibrate") != std::string::npos);
  CHECK(text_of(dir / "data/datacenters.yaml") == catalog);
  r = run({"calibrate", "--refit", raw, "--id", ".5", "--out", (dir / "out").string(), "--data-dir", (dir / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("not starting with '.'") != std::string::npos);
  CHECK(!fs::exists(dir / "out/.5.yaml"));
  // A folder that cannot be made is said before anything is measured or fitted, exit 2 (it had
  // failed after measuring, exit 1).
  std::ofstream(dir / "afile") << "x\n";
  r = run({"calibrate", "--refit", raw, "--id", "c", "--out", (dir / "afile/sub").string(), "--data-dir", (dir / "data").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--out: cannot write in") != std::string::npos);
  CHECK((r.out + r.err).find("refitting") == std::string::npos);
  // Raw samples that cannot be written leave no entry naming them (the entry had been moved into
  // place first).
  fs::create_directories(dir / "out");
  fs::create_symlink(dir / "no-such-dir/raw.h5", dir / "out/hx.h5");
  r = run({"calibrate", "--refit", raw, "--id", "hx", "--out", (dir / "out").string(), "--data-dir", (dir / "data").string()});
  CHECK(r.code == 1);
  CHECK(r.err.find("cannot write") != std::string::npos);
  CHECK(!fs::exists(dir / "out/hx.yaml"));
  CHECK(!fs::exists(dir / "out/hx.yaml.tmp"));
  // An entry calibrate wrote is replaced by the next run.
  for (int i = 0; i < 2; ++i) {
    r = run({"calibrate", "--refit", raw, "--id", "c", "--out", (dir / "out").string(), "--data-dir", (dir / "data").string()});
    INFO(r.err);
    CHECK(r.code == 0);
  }
  // A refit's entry and raw file keep the measurement's time, not the refit's (since session 41).
  const std::string created = read_run(source / "data/hardware/measured/cpu-amd-epyc-2t.h5").created;
  REQUIRE(created.size() >= 10);
  CHECK(text_of(dir / "out/c.yaml").find("source: \"dlcarbon calibrate on " + created.substr(0, 10)) != std::string::npos);
  CHECK(read_run(dir / "out/c.h5").created == created);
  fs::remove_all(dir);
}

TEST_CASE("calibrate --refit reads its own samples and those of files written before 2026-12-02") {
  const fs::path dir = temp_dir() / "refit";
  fs::remove_all(dir);
  auto r = run({"calibrate", "--quick", "--seconds", "1", "--tdp", "8.8 W", "--id", "c", "--out", (dir / "first").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  const RunRecord raw = read_run(dir / "first/c.h5");
  const auto& names = col<std::string>(raw, "calibration/kernels", "kernel");
  const auto& rows = col<std::int64_t>(raw, "calibration/samples", "kernel_row");
  const auto& passes = col<std::int64_t>(raw, "calibration/samples", "pass");
  const auto& times = col<double>(raw, "calibration/samples", "time");
  REQUIRE(rows.size() == times.size());
  CHECK(*std::max_element(rows.begin(), rows.end()) == static_cast<std::int64_t>(names.size()) - 1);
  CHECK(std::count(passes.begin(), passes.end(), 0) > 0);
  CHECK(std::count(passes.begin(), passes.end(), 1) > 0);
  // The same samples in the earlier form: the kernel's label and "a"/"b".
  RunRecord old = raw;
  std::vector<std::string> labels, letters;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    labels.push_back(names[static_cast<std::size_t>(rows[i])]);
    letters.push_back(passes[i] == 0 ? "a" : "b");
  }
  for (auto& t : old.tables) {
    if (t.path == "calibration/samples") t.columns = {Column{"kernel", "", labels}, Column{"pass", "", letters}, Column{"time", "s", times}};
  }
  fs::create_directories(dir / "earlier");
  write_run(dir / "earlier/c.h5", old);  // a refit takes its id from the file name
  // An entry without the lines that carry the date (the comment at the top and `source:`) and the
  // command that wrote it (since session 47).
  const auto entry_of = [](const fs::path& file) {
    std::ifstream in(file);
    std::string line, text;
    while (std::getline(in, line)) {
      if (line.find(" on 20") == std::string::npos && line.find("calibrate on 20") == std::string::npos &&
          line.rfind("# Command: dlcarbon calibrate", 0) != 0) {
        text += line + "\n";
      }
    }
    return text;
  };
  const auto refit = [&](const fs::path& from, const std::string& to) {
    auto q = run({"calibrate", "--refit", from.string(), "--tdp", "8.8 W", "--out", (dir / to).string()});
    INFO(q.out, q.err);
    REQUIRE(q.code == 0);
    return entry_of(dir / to / "c.yaml");
  };
  // Both forms give the entry the measuring run wrote.
  const std::string measured = entry_of(dir / "first/c.yaml");
  const std::string a = refit(dir / "first/c.h5", "new"), b = refit(dir / "earlier/c.h5", "old");
  CHECK(a.find("gemm") != std::string::npos);
  CHECK(a == measured);
  CHECK(b == measured);
  // Samples from which the fit cannot tell a rate (every f32 matmul and convolution takes the same
  // time: all of it fixed cost, an infinite asymptotic rate) still give an entry that loads: the
  // peak is then the best FLOPs / time measured. The committed full run's samples, made flat (a
  // quick run's few shapes do not always leave the fit degenerate).
  RunRecord flat = read_run(fs::path(DLCARBON_SOURCE_DIR) / "data/hardware/measured/cpu-amd-epyc-2t.h5");
  {
    const auto& full_names = col<std::string>(flat, "calibration/kernels", "kernel");
    const auto full_rows = col<std::int64_t>(flat, "calibration/samples", "kernel_row");
    for (auto& t : flat.tables) {
      if (t.path != "calibration/samples") continue;
      auto& tv = std::get<std::vector<double>>(t.columns[2].values);  // kernel_row, pass, time
      for (std::size_t i = 0; i < tv.size(); ++i) {
        const std::string& name = full_names[static_cast<std::size_t>(full_rows[i])];
        if (name.rfind("matmul f32", 0) == 0 || name.rfind("conv f32", 0) == 0) tv[i] = 1e-4;
      }
    }
  }
  fs::create_directories(dir / "flat");
  write_run(dir / "flat/c.h5", flat);
  r = run({"calibrate", "--refit", (dir / "flat/c.h5").string(), "--out", (dir / "flat-entry/data/hardware/measured").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  {
    const std::string entry = file_text(dir / "flat-entry/data/hardware/measured/c.yaml");
    const auto source = entry.find("      source: ");
    REQUIRE(source != std::string::npos);
    const std::string line = entry.substr(source, entry.find('\n', source) - source);
    CHECK(line.find("matmul/f32") != std::string::npos);
    CHECK(line.find("the best FLOPs / time measured") != std::string::npos);
  }
  fs::copy_file(kData / "catalog/test-catalog.yaml", dir / "flat-entry/data/test-catalog.yaml");
  std::ofstream(dir / "flat-entry/s.yaml") << "schema_version: 1\nscenario: {name: flat}\nmodels:\n"
                                              "  - id: m\n    design: {builder: mlp, widths: [256, 256, 10]}\n"
                                              "training:\n  - id: t\n    model: m\n    hardware: c\n"
                                              "    accelerators: 1\n    precision: fp32\n    tokens: \"1e6 tokens\"\n"
                                              "    parallelism: {global_batch: 64}\n    datacenter: test-dc\n";
  r = run({"run", (dir / "flat-entry/s.yaml").string(), "--data-dir", (dir / "flat-entry/data").string(), "-o",
           (dir / "flat-entry/out.h5").string(), "--quiet"});
  INFO(r.err);
  CHECK(r.code == 0);
  // A sample that names a kernel row the file does not have is bad input.
  RunRecord broken = raw;
  for (auto& t : broken.tables) {
    if (t.path != "calibration/samples") continue;
    auto& kr = std::get<std::vector<std::int64_t>>(t.columns[0].values);
    kr[0] = static_cast<std::int64_t>(names.size());
  }
  write_run(dir / "broken.h5", broken);
  r = run({"calibrate", "--refit", (dir / "broken.h5").string(), "--out", (dir / "b").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("names kernel row") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "b/c.yaml"));
  // A pass other than 0 or 1, a time that is not a positive number: bad input, nothing written.
  const auto broken_sample = [&](std::size_t column, double value) {
    RunRecord f = raw;
    for (auto& t : f.tables) {
      if (t.path != "calibration/samples") continue;
      if (column == 1) std::get<std::vector<std::int64_t>>(t.columns[1].values)[3] = static_cast<std::int64_t>(value);
      else std::get<std::vector<double>>(t.columns[2].values)[3] = value;
    }
    write_run(dir / "broken.h5", f);
    return run({"calibrate", "--refit", (dir / "broken.h5").string(), "--out", (dir / "b").string()});
  };
  r = broken_sample(1, 2);
  CHECK(r.code == 2);
  CHECK(r.err.find("row 3 has pass 2, not 0 (A) or 1 (B)") != std::string::npos);
  r = broken_sample(2, -1e-6);
  CHECK(r.code == 2);
  CHECK(r.err.find("row 3 has time -1e-06") != std::string::npos);
  r = broken_sample(2, std::nan(""));
  CHECK(r.code == 2);
  CHECK_FALSE(fs::exists(dir / "b/c.yaml"));
  // A file that is not HDF5 at all.
  std::ofstream(dir / "text.h5") << "not hdf5\n";
  r = run({"calibrate", "--refit", (dir / "text.h5").string(), "--out", (dir / "b").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("not a raw calibration file") != std::string::npos);
  // Refitted where it lies (no --out), a raw file is left as it is; the entry beside it is new.
  const auto before = fs::file_size(dir / "first/c.h5");
  std::ifstream original(dir / "first/c.h5", std::ios::binary);
  const std::string bytes_before((std::istreambuf_iterator<char>(original)), std::istreambuf_iterator<char>());
  original.close();
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--tdp", "8.8 W"});
  INFO(r.out, r.err);
  CHECK(r.code == 0);
  CHECK(r.out.find("its raw samples stay in") != std::string::npos);
  CHECK(fs::file_size(dir / "first/c.h5") == before);
  std::ifstream after(dir / "first/c.h5", std::ios::binary);
  CHECK(std::string((std::istreambuf_iterator<char>(after)), std::istreambuf_iterator<char>()) == bytes_before);
  // An entry the catalog would refuse is not written (since session 38): a --tdp below the idle
  // power of the --from entry, or an id the catalog defines elsewhere, written into the catalog.
  fs::create_directories(dir / "cat/hardware/measured");
  {
    std::ofstream cat(dir / "cat/hardware/cpus.yaml");
    cat << "schema_version: 1\nhardware:\n  - id: idle-cpu\n    name: a CPU with an idle power\n    kind: cpu\n"
           "    count_unit: socket\n    peak: {fp32: \"1 TFLOP/s\"}\n    memory_bandwidth: \"100 GB/s\"\n"
           "    tdp: \"200 W\"\n    idle_power: \"50 W\"\n    source: a test\n";
  }
  const std::string cat = (dir / "cat").string(), into = (dir / "cat/hardware/measured").string();
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--data-dir", cat, "--out", into, "--id", "new-cpu",
           "--from", "idle-cpu", "--tdp", "10 W"});
  CHECK(r.code == 2);
  // (Since session 43 found before measuring or fitting, from the --from entry.)
  CHECK(r.err == "dlcarbon calibrate: --tdp: 10 W is below idle-cpu's idle power (50 W), which the entry inherits: give a "
                 "larger --tdp, or another --from\n");
  CHECK(fs::is_empty(dir / "cat/hardware/measured"));
  // Without --tdp a measuring run with --from is refused before it measures: the entry would take
  // the whole part's tdp for the threads measured (since session 43, a review: 280 W for 2 threads).
  r = run({"calibrate", "--quick", "--data-dir", cat, "--out", (dir / "never").string(), "--id", "never", "--from", "idle-cpu"});
  CHECK(r.code == 2);
  CHECK(r.err == "dlcarbon calibrate: --from: give the measured threads' power with --tdp (the entry would take idle-cpu's "
                 "tdp, 200 W, the whole part's)\n");
  CHECK_FALSE(fs::exists(dir / "never/never.h5"));
  // Nor does a refit replace an HDF5 file calibrate did not write (a run's output), or take a
  // data directory that is not one (since session 43, a review).
  fs::create_directories(dir / "results");
  REQUIRE(run({"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
               (dir / "results/results.h5").string()})
              .code == 0);
  const auto results_size = fs::file_size(dir / "results/results.h5");
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--out", (dir / "results").string(), "--id", "results"});
  CHECK(r.code == 2);
  CHECK(r.err.find("results.h5\": it is there and is not a calibration's raw file") != std::string::npos);
  CHECK(fs::file_size(dir / "results/results.h5") == results_size);
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--out", (dir / "results").string(), "--data-dir",
           (dir / "typo").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--data-dir: ") != std::string::npos);
  CHECK(r.err.find("typo\" does not exist") != std::string::npos);
  // A raw file that records no machine (written before 2026-12-05) is not refitted with this
  // machine's caches and name (since session 43, a review).
  RunRecord anonymous = raw;
  anonymous.tables.erase(std::remove_if(anonymous.tables.begin(), anonymous.tables.end(),
                                        [](const Table& t) { return t.path == "calibration/machine"; }),
                         anonymous.tables.end());
  fs::create_directories(dir / "anonymous");
  write_run(dir / "anonymous/a.h5", anonymous);
  r = run({"calibrate", "--refit", (dir / "anonymous/a.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("records no machine (a raw file written before 2026-12-05)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "anonymous/a.yaml"));
  // Measured here, --this-machine says so; it takes a raw .h5 only.
  r = run({"calibrate", "--refit", (dir / "anonymous/a.h5").string(), "--this-machine", "--tdp", "8.8 W"});
  CHECK(r.code == 0);
  CHECK(r.out.find("records no machine: taking this machine's caches and name (--this-machine)") != std::string::npos);
  CHECK(fs::exists(dir / "anonymous/a.yaml"));
  // A machine table that is there but damaged is said to be, with or without --this-machine (since
  // session 45, a review: it was "records no machine", and --this-machine took this machine's
  // caches); so is a creation time that is not one, and a NaN sample is named as NaN.
  const auto edited = [&](const std::string& name, const std::function<void(RunRecord&)>& edit) {
    RunRecord e = raw;
    edit(e);
    fs::create_directories(dir / "edited");
    write_run(dir / "edited" / (name + ".h5"), e);
    return (dir / "edited" / (name + ".h5")).string();
  };
  const auto set_machine = [](RunRecord& e, const std::string& column, const Column& value) {
    for (auto& t : e.tables) {
      if (t.path != "calibration/machine") continue;
      for (auto& c : t.columns) {
        if (c.name == column) c = value;
      }
    }
  };
  const std::vector<std::pair<std::string, std::string>> damaged{
      {edited("threads", [&](RunRecord& e) { set_machine(e, "threads", Column{"threads", "1", std::vector<std::int64_t>{0}}); }),
       "calibration/machine records 0 threads: the file was edited or damaged"},
      {edited("levels", [&](RunRecord& e) { set_machine(e, "cache_levels", Column{"cache_levels", "B", std::vector<std::string>{"abc;-1"}}); }),
       "calibration/machine's cache_levels \"abc;-1\" holds \"abc\", not a size in bytes"},
      {edited("tdp", [&](RunRecord& e) { set_machine(e, "tdp", Column{"tdp", "W", std::vector<double>{-5}}); }),
       "calibration/machine records a tdp of -5 W"},
      {edited("ways", [&](RunRecord& e) { set_machine(e, "l1_ways", Column{"l1_ways", "1", std::vector<std::int64_t>{-2}}); }),
       "calibration/machine records a negative L1 geometry"},
      {edited("created", [&](RunRecord& e) { e.created = "garbage"; }),
       "records its creation as \"garbage\", not an ISO 8601 time"},
      {edited("nan", [&](RunRecord& e) {
         for (auto& t : e.tables) {
           if (t.path == "calibration/samples") std::get<std::vector<double>>(t.columns[2].values)[3] = std::nan("");
         }
       }),
       "calibration/samples row 3 has time NaN: every time must be a positive number of seconds"}};
  for (const auto& [file, message] : damaged) {
    for (const bool here : {false, true}) {
      std::vector<std::string> args{"calibrate", "--refit", file, "--tdp", "8.8 W"};
      if (here) args.push_back("--this-machine");
      r = run(args);
      INFO(file, " ", here, " ", r.err);
      CHECK(r.code == 2);
      CHECK(r.err.find(message) != std::string::npos);
      CHECK_FALSE(fs::exists(fs::path(file).replace_extension(".yaml")));
    }
  }
  r = run({"calibrate", "--quick", "--this-machine"});
  CHECK(r.code == 2);
  CHECK(r.err == "dlcarbon calibrate: --this-machine: only with --refit of a raw .h5 file\n");
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--data-dir", cat, "--out", into, "--id", "idle-cpu"});
  CHECK(r.code == 2);
  CHECK(r.err.find("the catalog already defines hardware \"idle-cpu\"") != std::string::npos);
  CHECK(fs::is_empty(dir / "cat/hardware/measured"));
  // Outside the catalog the same id is an entry a scenario may extend to redefine it: read over the
  // catalog's (its idle power of 50 W kept, so the tdp must be above it).
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--data-dir", cat, "--out", (dir / "outside").string(),
           "--id", "idle-cpu", "--tdp", "60 W"});
  CHECK(r.code == 0);
  CHECK(fs::exists(dir / "outside/idle-cpu.yaml"));
  // A --tdp the entry can hold is written into the catalog, and the catalog reads it.
  r = run({"calibrate", "--refit", (dir / "first/c.h5").string(), "--data-dir", cat, "--out", into, "--id", "new-cpu",
           "--from", "idle-cpu", "--tdp", "60 W"});
  CHECK(r.code == 0);
  CHECK(load_catalog_hardware("new-cpu", LoadOptions{dir / "cat"}).tdp_w == doctest::Approx(60));
  // The measured run's --tdp and --from, recorded in its raw file, hold in a refit that does not
  // give them again (since session 42, a review: the refit wrote the assumed 4.4 W a thread and no
  // `from`); given, they win; a recorded --from the catalog does not hold is named.
  {
    RunRecord raw = read_run(dir / "first/c.h5");
    bool recorded = false;
    for (auto& t : raw.tables) {
      if (t.path != "calibration/machine") continue;
      for (auto& c : t.columns) {
        if (c.name == "tdp") std::get<std::vector<double>>(c.values).at(0) = 70;
        if (c.name == "from") std::get<std::vector<std::string>>(c.values).at(0) = "idle-cpu";
      }
      recorded = t.find("tdp") && t.find("from");
    }
    REQUIRE(recorded);
    fs::create_directories(dir / "options");
    write_run(dir / "options/opt-cpu.h5", raw);
    r = run({"calibrate", "--refit", (dir / "options/opt-cpu.h5").string(), "--data-dir", cat});
    INFO(r.out, r.err);
    REQUIRE(r.code == 0);
    const std::string text = file_text(dir / "options/opt-cpu.yaml");
    CHECK(text.find("    from: idle-cpu\n") != std::string::npos);
    CHECK(text.find("    tdp: \"70 W\"\n") != std::string::npos);
    r = run({"calibrate", "--refit", (dir / "options/opt-cpu.h5").string(), "--data-dir", cat, "--tdp", "80 W", "--id", "given"});
    REQUIRE(r.code == 0);
    std::ifstream given(dir / "options/given.yaml");
    CHECK(std::string((std::istreambuf_iterator<char>(given)), std::istreambuf_iterator<char>()).find("    tdp: \"80 W\"\n") !=
          std::string::npos);
    r = run({"calibrate", "--refit", (dir / "options/opt-cpu.h5").string(), "--id", "elsewhere"});  // the shipped catalog
    CHECK(r.code == 2);
    CHECK(r.err.find("records --from idle-cpu: unknown hardware") != std::string::npos);
  }
  fs::remove_all(dir);
}

namespace {
// The summary of `run` on tests/data/scenarios/first_principles.yaml, whose job the validation
// fixtures (published_hours, published_step) repeat.
RunRecord first_principles_record(const std::string& name) {
  const fs::path out = temp_dir() / name;
  const auto r = run({"run", (kData / "scenarios/first_principles.yaml").string(), "--data-dir",
                      (kData / "catalog").string(), "-o", out.string(), "--quiet"});
  REQUIRE(r.code == 0);
  RunRecord rec = read_run(out);
  fs::remove(out);
  return rec;
}

// The last line of `validate`'s output that starts with `prefix` (a row, named by its scenario).
std::string validate_row(const std::string& out, const std::string& prefix) {
  std::istringstream lines(out);
  std::string row;
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind(prefix, 0) == 0) row = l;
  }
  REQUIRE_FALSE(row.empty());
  return row;
}
}  // namespace

TEST_CASE("validate --mode first-principles: accelerator-hours printed without a footprint are the row's reference") {
  // The job of tests/data/published_hours is first_principles.yaml's: its accelerator-hours come from `run`.
  const RunRecord rec = first_principles_record("fp-hours.h5");
  const double hours = col<double>(rec, "summary/training", "accelerator_time")[0] / 3600;
  auto r = run({"validate", "--mode", "first-principles", "--dir", (kData / "published_hours").string(), "--data-dir",
           (kData / "catalog").string()});
  INFO(r.out, r.err);
  CHECK(r.out.find("1 rows with a design, tokens and parallelism") != std::string::npos);
  // The row: published 100 h; error = predicted / 100 - 1, printed with two decimals.
  std::istringstream cells(validate_row(r.out, "hours"));
  std::string name, published, predicted, error, baseline;
  cells >> name >> published >> predicted >> error >> baseline;
  CHECK(std::stod(published) == approx(100));
  CHECK(std::stod(predicted) == approx(hours).epsilon(1e-3));
  CHECK(std::stod(error) / 100 == approx(hours / 100 - 1).epsilon(1e-3));
  // The baseline is 6 N D over the fp16 peak (100 TFLOP/s) at 0.3, N the model's parameters and D
  // its 1e9 tokens (since session 46, a review: the model's own FLOPs, attention included).
  const double params = col<double>(rec, "summary/training", "parameters")[0];
  CHECK(std::stod(baseline) == approx(6 * params * 1e9 / (100e12 * 0.3) / 3600).epsilon(1e-3));
  // One run is one target row however many rows publish it (since session 46, a review: Vaswani et
  // al.'s Transformer (big) run, three rows, sat on the median): the same job in two files.
  {
    const fs::path dir = fresh_dir("same-run-twice");
    fs::copy_file(kData / "published_hours/hours.yaml", dir / "a.yaml");
    fs::copy_file(kData / "published_hours/hours.yaml", dir / "b.yaml");
    const auto t = run({"validate", "--mode", "first-principles", "--dir", dir.string(), "--data-dir", (kData / "catalog").string()});
    INFO(t.out, t.err);
    CHECK(t.out.find("2 rows with a design, tokens and parallelism") != std::string::npos);
    CHECK(t.out.find("1 distinct runs (a run that several rows publish counted once; the targets)") != std::string::npos);
    // A run that cannot be costed, twice: one run too.
    std::string text = file_text(kData / "published_hours/hours.yaml");
    text.replace(text.find("d_model: 256"), 12, "d_model: 65536");
    const fs::path big = fresh_dir("same-big-run-twice");
    std::ofstream(big / "a.yaml") << text;
    std::ofstream(big / "b.yaml") << text;
    const auto u = run({"validate", "--mode", "first-principles", "--dir", big.string(), "--data-dir", (kData / "catalog").string()});
    INFO(u.out, u.err);
    CHECK(u.out.find("does not fit") != std::string::npos);
    CHECK(u.out.find("1 distinct runs") != std::string::npos);
    // Exit 1 says which target failed (since session 47, a review: it said nothing): the run that
    // cannot be costed is outside the band and is the median.
    CHECK(u.code == 1);
    CHECK(u.err == "dlcarbon validate: first-principles targets not met (exit 1): every distinct run within +/-25 % does not "
                   "(1 of 1 outside); median |error| <= 15 % does not (- (rows not costed))\n");
  }
  // A published figure next to nothing: the error in powers of ten, and beyond a double as such
  // (since session 45, a review: "+inf%", and a 1e305 % error in 306 digits).
  {
    const fs::path dir = fresh_dir("tiny-published");
    std::string text = file_text(kData / "published_hours/hours.yaml");
    const auto at = text.find("accelerator_hours: \"100 h\"");
    REQUIRE(at != std::string::npos);
    std::ofstream(dir / "tiny.yaml") << text.substr(0, at) << "accelerator_hours: \"1e-300 h\"}\n";
    std::ofstream(dir / "zero.yaml") << text.substr(0, at) << "accelerator_hours: \"5e-324 h\"}\n";
    const auto t = run({"validate", "--mode", "first-principles", "--dir", dir.string(), "--data-dir", (kData / "catalog").string()});
    INFO(t.out, t.err);
    CHECK(t.out.find(">+1e300%") != std::string::npos);
    CHECK(t.out.find("e+30") != std::string::npos);
    CHECK(t.out.find("inf%") == std::string::npos);
    for (std::istringstream lines(t.out); std::getline(lines, name);) CHECK(name.size() < 400);
  }
  // Accounting mode has no footprint to compare: bad input, said before any table (since session
  // 44; before, an empty table and "0 rows", then the same exit 2).
  r = run({"validate", "--dir", (kData / "published_hours").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("no published figures found") != std::string::npos);
}

TEST_CASE("validate --mode first-principles: a job that publishes its energy but no hours, energy only") {
  // tests/data/published_energy: 10 kWh published (facility, the default scope), no duration or
  // accelerator-hours.
  const fs::path out = temp_dir() / "fp-energy.h5";
  auto r = run({"run", (kData / "published_energy/energy.yaml").string(), "--data-dir", (kData / "catalog").string(),
                "-o", out.string(), "--quiet"});
  REQUIRE(r.code == 0);
  const double facility_j = col<double>(read_run(out), "summary/training", "facility_energy")[0];
  r = run({"validate", "--mode", "first-principles", "--dir", (kData / "published_energy").string(), "--data-dir",
           (kData / "catalog").string()});
  INFO(r.out, r.err);
  // No hours to compare: 0 rows in the statistics, the energy compared on its own line.
  CHECK(r.out.find("0 rows with a design, tokens and parallelism") != std::string::npos);
  const std::string row = validate_row(r.out, "energy");
  CHECK(row.find("footprint only (no published hours)") != std::string::npos);
  char expected[32];
  std::snprintf(expected, sizeof expected, "%+.2f%%", 100 * (facility_j / 3.6e7 - 1));
  CHECK(row.find(expected) != std::string::npos);
  // The accounting mode, which re-runs a published duration, has nothing to compare, and says
  // which footprint it leaves to first-principles mode (since session 44, a review: it had been
  // silent, and beside accounted rows the figure went unmentioned).
  r = run({"validate", "--dir", (kData / "published_energy").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("no published figures found") != std::string::npos);
  CHECK(r.err.find("1 published footprint of jobs without a duration not compared here (--mode first-principles predicts them): energy/job") !=
        std::string::npos);
  // Beside a job it accounts, the table's last line names it.
  const fs::path both = fresh_dir("validate-both");
  fs::copy_file(kData / "published_energy/energy.yaml", both / "energy.yaml");
  fs::copy_file(kData / "published_ok/capped.yaml", both / "capped.yaml");
  r = run({"validate", "--dir", both.string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 0);
  CHECK(r.out.find("not compared here (--mode first-principles predicts them): energy/job\n") != std::string::npos);
  fs::remove(out);
}

TEST_CASE("validate --mode first-principles: every published footprint figure is compared, and bad input prints no table") {
  // Since session 42 (a review): a CO2e beside a published energy, or a market-based one, was never
  // compared; a scenario of only a market-based CO2e printed a row and then said no row was found.
  const fs::path dir = fresh_dir("validate-co2e");
  std::string text = file_text(kData / "published_energy/energy.yaml");
  const std::string published = "published: {source: \"a test\", energy: \"10 kWh\"}";
  REQUIRE(text.find(published) != std::string::npos);
  const auto with = [&](const std::string& figures) {
    std::string t = text;
    return t.replace(t.find(published), published.size(), "published: {source: \"a test\", " + figures + "}");
  };
  fs::create_directories(dir / "both");
  std::ofstream(dir / "both/s.yaml") << with("energy: \"10 kWh\", co2e_location: \"2 kg\", co2e_market: \"1 kg\"");
  const fs::path out = dir / "run.h5";
  auto r = run({"run", (dir / "both/s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", out.string(), "--quiet"});
  REQUIRE(r.code == 0);
  const RunRecord rec = read_run(out);
  const double location = col<double>(rec, "summary/training", "co2e_location")[0];
  const double market = col<double>(rec, "summary/training", "co2e_market")[0];
  r = run({"validate", "--mode", "first-principles", "--dir", (dir / "both").string(), "--data-dir", (kData / "catalog").string()});
  INFO(r.out, r.err);
  CHECK(r.code == 1);  // no hours: the targets are not evaluated
  CHECK(r.out.find("1 more compare their footprint only") != std::string::npos);
  CHECK(r.out.find("the targets are not evaluated") != std::string::npos);
  char expected[64];
  std::snprintf(expected, sizeof expected, "CO2e (location) error %+.2f%%", 100 * (location / 2 - 1));
  CHECK(r.out.find(expected) != std::string::npos);
  std::snprintf(expected, sizeof expected, "CO2e (market) error %+.2f%%", 100 * (market / 1 - 1));
  CHECK(r.out.find(expected) != std::string::npos);
  // Only a market-based CO2e: in the energy column, said so; not "no rows found".
  fs::create_directories(dir / "market");
  std::ofstream(dir / "market/s.yaml") << with("co2e_market: \"1 kg\"");
  r = run({"validate", "--mode", "first-principles", "--dir", (dir / "market").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 1);
  CHECK(r.err.find("no published first-principles rows") == std::string::npos);
  std::snprintf(expected, sizeof expected, "%+.2f%%", 100 * (market / 1 - 1));
  CHECK(validate_row(r.out, "s").find(expected) != std::string::npos);
  CHECK(r.out.find("energy column: CO2e (market) (no published energy)") != std::string::npos);
  // A bad scenario after a good one: exit 2 and nothing of the table on stdout.
  fs::create_directories(dir / "mixed");
  std::ofstream(dir / "mixed/a.yaml") << with("energy: \"10 kWh\"");
  std::ofstream(dir / "mixed/b.yaml") << "schema_version: 1\nbogus: 1\n";
  r = run({"validate", "--mode", "first-principles", "--dir", (dir / "mixed").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("b.yaml:2:1: bogus: unknown key") != std::string::npos);
  CHECK(r.out.empty());
  // --tolerance is accounting mode's: given to first-principles mode it would be ignored.
  r = run({"validate", "--mode", "first-principles", "--tolerance", "5", "--dir", (dir / "both").string(), "--data-dir",
           (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--tolerance is for --mode accounting") != std::string::npos);
}

TEST_CASE("validate --mode first-principles: a run trained in stages is one row, the sum of its stages") {
  const fs::path out = temp_dir() / "fp-stages.h5";
  auto r = run({"run", (kData / "published_stages/stages.yaml").string(), "--data-dir", (kData / "catalog").string(),
                "-o", out.string(), "--quiet"});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  const RunRecord rec = read_run(out);
  fs::remove(out);
  const auto hours = col<double>(rec, "summary/training", "accelerator_time");
  REQUIRE(hours.size() == 2);
  CHECK(hours[1] > 0);
  const double sum = (hours[0] + hours[1]) / 3600;
  r = run({"validate", "--mode", "first-principles", "--dir", (kData / "published_stages").string(), "--data-dir",
           (kData / "catalog").string()});
  INFO(r.out, r.err);
  CHECK(r.out.find("1 rows with a design, tokens and parallelism") != std::string::npos);
  CHECK(r.out.find("2 stages") != std::string::npos);
  std::istringstream cells(validate_row(r.out, "stages"));
  std::string name, published, predicted;
  cells >> name >> published >> predicted;
  CHECK(std::stod(predicted) == approx(sum).epsilon(1e-3));
  // The published CO2e beside the hours: compared with both stages' (no published energy, so in the
  // energy column, said so); accounting mode has no duration to account it from and names it.
  const auto co2e = col<double>(rec, "summary/training", "co2e_location");
  std::string cell;
  for (int i = 0; i < 7; ++i) cells >> cell;  // the error, baseline, its error, the MFUs, FLOPs/pub., error at them
  cells >> cell;
  CHECK(std::stod(cell) / 100 == approx((co2e[0] + co2e[1]) / 0.25 - 1).epsilon(1e-3));
  CHECK(r.out.find("energy column: CO2e (location) (no published energy)") != std::string::npos);
  r = run({"validate", "--dir", (kData / "published_stages").string(), "--data-dir", (kData / "catalog").string()});
  INFO(r.out, r.err);
  CHECK(r.code == 2);
  CHECK(r.err.find("1 published footprint of jobs without a duration not compared here (--mode first-principles "
                   "predicts them): stages/first") != std::string::npos);
}

TEST_CASE("run notes a design whose counted parameters are more than 1 % from its model's published params") {
  const fs::path dir = fresh_dir("params-note");
  const std::string base = file_text(kData / "scenarios/first_principles.yaml");
  const auto with_params = [&](const std::string& params) {
    std::string s = base;
    const std::string id = "  - id: small-lm\n";
    s.replace(s.find(id), id.size(), id + "    params: \"" + params + "\"\n");
    std::ofstream(dir / "p.yaml") << s;
    return run({"run", (dir / "p.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "p.h5").string()});
  };
  // By hand: 4 x (12 x 256^2 + 13 x 256) + 2 x 256 + 1,000 x 256 + 128 x 256 = 3,448,320 parameters
  // (learned positions, biases, tied embeddings: the decoder's defaults).
  auto r = with_params("3.0e6 params");
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("  note: pretrain: its design counts 3.448e+06 parameters, +14.94 % from model small-lm's published params (3e+06)\n") !=
        std::string::npos);
  r = with_params("3.41e6 params");  // +1.12 %: said
  CHECK(r.out.find("+1.12 % from model small-lm's published params") != std::string::npos);
  r = with_params("3.42e6 params");  // +0.8 %: within 1 %, not said
  CHECK(r.code == 0);
  CHECK(r.out.find("its design counts") == std::string::npos);
  fs::remove_all(dir);
}

// llm-foundry's A100 40 GB table, every row (scenarios/tables/llm-foundry-a100-40gb.yaml): the step
// model against 78 measured configurations of one code, 125M to 70B parameters, 512 to 32,768
// tokens, 8 to 128 GPUs. At session 52: 66 within +/-10 %, median |error| 5.36 %; the bounds leave
// room for small changes of the model, not for losing the table (docs/validation.fp.md).
TEST_CASE("the step model holds across every row of llm-foundry's A100 40 GB table") {
  const fs::path source = DLCARBON_SOURCE_DIR;
  const fs::path dir = fresh_dir("foundry-table");
  const auto ran = run_shipped("scenarios/tables/llm-foundry-a100-40gb.yaml", dir / "t.h5");
  INFO(ran.err);
  REQUIRE(ran.code == 0);
  // Every design counts the table's NumParams within 1 % (no note), and exactly where checked.
  CHECK(ran.out.find("its design counts") == std::string::npos);
  const RunRecord rec = read_run(dir / "t.h5");
  const auto& models = col<std::string>(rec, "summary/training", "model");
  const auto& params = col<double>(rec, "summary/training", "parameters");
  REQUIRE(models.size() == 78);
  for (std::size_t i = 0; i < models.size(); ++i) {
    if (models[i] == "mpt-7b-2048") CHECK(params[i] == 6658859008.0);
    if (models[i] == "mpt-70b-2048") CHECK(params[i] == 64862437376.0);
    if (models[i] == "mpt-125m-32768") CHECK(params[i] == 148904448.0);
  }
  const auto v = run({"validate", "--mode", "first-principles", "--dir", (source / "scenarios/tables").string(), "--data-dir",
                      (source / "data").string()});
  INFO(v.out);
  CHECK(v.code == 1);  // step figures only: the hours' targets are not evaluated
  const std::string tag = "78 published step figures; ";  // a file added to scenarios/tables changes the count
  const auto at = v.out.find(tag);
  REQUIRE(at != std::string::npos);
  std::istringstream summary(v.out.substr(at + tag.size()));
  int within = 0;
  std::string word;
  summary >> within;
  double median = 0;
  while (summary >> word && word != "|step-time") {
  }
  summary >> word >> median;  // "error|" then the percentage
  CHECK(within >= 60);
  CHECK(median > 0);
  CHECK(median <= 7.0);
  fs::remove_all(dir);
}

// The issue's first-principles targets on the shipped published runs (docs/validation.fp.md): the
// median over the distinct runs at most 15 %, every run within +/-25 % (not met: 34 of 43 at session
// 56, the 9 outside each documented); and the step model against the published step measurements
// (40 of 69 within +/-10 %, median 8.96 % at session 56). A change to the cost model that loses a
// run from the band, raises the median past the target or loses step figures fails here: such a
// change is made knowingly, with these bounds and the doc updated together.
TEST_CASE("first-principles validation of the shipped published runs holds its measured figures") {
  const fs::path source = DLCARBON_SOURCE_DIR;
  // (Without --dir: scenarios/published and, in this mode, scenarios/anchors, as README runs it.)
  const auto v = run({"validate", "--mode", "first-principles", "--data-dir", (source / "data").string()});
  INFO(v.out, v.err);
  REQUIRE((v.code == 0 || v.code == 1));
  CHECK(v.err.rfind("dlcarbon validate: first-principles targets ", 0) == 0);
  // "37 distinct runs (...the targets): 29 within +/-25 %; median |error| 11.1% (6ND baseline 25.3%)"
  std::smatch runs;
  REQUIRE(std::regex_search(v.out, runs, std::regex(R"((\d+) distinct runs \([^)]*\): (\d+) within \+/-25 %; median \|error\| ([0-9.]+)%)")));
  const int distinct = std::stoi(runs[1]), within = std::stoi(runs[2]);
  const double median = std::stod(runs[3]);
  CHECK(distinct == 43);  // a run added to scenarios/published changes the count
  CHECK(within >= 34);
  CHECK(median > 0);
  CHECK(median <= 15.0);
  CHECK((v.code == 0) == (within == distinct));
  // "69 published step figures; 40 within +/-10 %; median |step-time error| 8.96%"
  std::smatch steps;
  REQUIRE(std::regex_search(v.out, steps,
                            std::regex(R"((\d+) published step figures; (\d+) within \+/-10 %; median \|step-time error\| ([0-9.]+)%)")));
  CHECK(std::stoi(steps[1]) == 69);
  CHECK(std::stoi(steps[2]) >= 40);
  CHECK(std::stod(steps[3]) <= 10.0);
}

// A batch ramp-up's smaller batches take more optimizer steps than the tokens at the full batch:
// `run` prints them beside the full batch's count (since session 56). BloombergGPT's ramp: 1,024
// sequences a step for 7,372,800 sequences (7,200 steps), then 2,048: 7,200 - 7,372,800 / 2,048 =
// 3,600 steps more than its tokens at 2,048 a step, by hand.
TEST_CASE("run prints the steps a batch ramp-up adds") {
  const fs::path source = DLCARBON_SOURCE_DIR;
  const fs::path dir = fresh_dir("ramp-steps");
  const auto r = run({"run", (source / "scenarios/published/wu2023-bloomberggpt.yaml").string(), "--data-dir",
                      (source / "data").string(), "-o", (dir / "out.h5").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find(" steps (and 3600 more in the batch ramp-up), ") != std::string::npos);
  // A job without a ramp says nothing of one.
  const auto plain = run({"run", (source / "scenarios/published/tii2023-falcon-7b.yaml").string(), "--data-dir",
                          (source / "data").string(), "-o", (dir / "plain.h5").string()});
  REQUIRE(plain.code == 0);
  CHECK(plain.out.find(" steps, ") != std::string::npos);
  CHECK(plain.out.find("batch ramp-up") == std::string::npos);
  fs::remove_all(dir);
}

// 6 N D counts each weight once a token; a convolutional network's image runs its weights at every
// position, so for a ResNet the baseline is "n/a" and left out of the baseline's medians, which say
// over how many rows they run (since session 56). ResNet-50 at 224 x 224: 8.2 GFLOP forward an image
// against 6 x 25.6 M = 0.15 GFLOP of "6 N" for the whole step, which read as a -99 % baseline.
TEST_CASE("validate gives no 6ND baseline for a convolutional network") {
  const fs::path source = DLCARBON_SOURCE_DIR;
  const fs::path dir = fresh_dir("cnn-baseline");
  std::ofstream(dir / "resnet.yaml") << R"(schema_version: 1
scenario: {name: resnet-hours}
models:
  - {id: r, name: ResNet-50, design: {builder: resnet}}
training:
  - id: train
    model: r
    hardware: nvidia-a100-sxm4-80gb
    accelerators: 8
    tokens: "115305030 tokens"
    precision: tf32
    parallelism: {data: 8, microbatch: 256, global_batch: 2048, optimizer: sgd}
    datacenter: strubell2019-average-dc
    published: {source: "a test", accelerator_hours: "40 h"}
)";
  fs::copy_file(source / "scenarios/published/tii2023-falcon-7b.yaml", dir / "tii2023-falcon-7b.yaml");
  const auto v = run({"validate", "--mode", "first-principles", "--dir", dir.string(), "--data-dir", (source / "data").string()});
  INFO(v.out, v.err);
  REQUIRE((v.code == 0 || v.code == 1));
  std::istringstream lines(v.out);
  std::string line, resnet, falcon;
  while (std::getline(lines, line)) {
    if (line.rfind("resnet ", 0) == 0) resnet = line;  // (rows are labelled by the file's stem)
    if (line.rfind("tii2023-falcon-7b", 0) == 0) falcon = line;
  }
  REQUIRE(!resnet.empty());
  REQUIRE(!falcon.empty());
  CHECK(resnet.find(" n/a ") != std::string::npos);
  CHECK(falcon.find(" n/a ") == std::string::npos);
  // The baseline's median is the Falcon row's alone (+43.29 %), said over one row.
  CHECK(v.out.find("(6ND baseline 43.3% over the 1 row it applies to)") != std::string::npos);
  CHECK(v.out.find("(6ND baseline 43.3% over the 1 run it applies to)") != std::string::npos);
  // A ResNet alone: no median to give.
  fs::remove(dir / "tii2023-falcon-7b.yaml");
  const auto alone = run({"validate", "--mode", "first-principles", "--dir", dir.string(), "--data-dir", (source / "data").string()});
  CHECK(alone.out.find("(6ND baseline n/a: no row whose design it describes)") != std::string::npos);
  CHECK(alone.out.find("(6ND baseline n/a: no run whose design it describes)") != std::string::npos);
  // A transformer row that cannot be costed has no baseline either, but not for its design: nothing
  // is said of the rows the baseline applies to.
  fs::remove(dir / "resnet.yaml");
  fs::copy_file(source / "scenarios/published/tii2023-falcon-7b.yaml", dir / "tii2023-falcon-7b.yaml");
  std::string unfit = file_text(source / "scenarios/published/tii2023-falcon-7b.yaml");
  const std::string one = "microbatch: 1,";
  REQUIRE(unfit.find(one) != std::string::npos);
  unfit.replace(unfit.find(one), one.size(), "microbatch: 12,");
  std::ofstream(dir / "unfit.yaml") << unfit;
  const auto mixed = run({"validate", "--mode", "first-principles", "--dir", dir.string(), "--data-dir", (source / "data").string()});
  INFO(mixed.out);
  CHECK(mixed.out.find("does not fit") != std::string::npos);
  CHECK(mixed.out.find("it applies to") == std::string::npos);
  fs::remove_all(dir);
}

// Hardware without a `node:` block takes an unsourced default network; a first-principles job on more
// than one device says so, with the figures (since session 56). The TPU v2 entry gives none: 600 GB/s
// of memory, so 60 GB/s inside a node of 8 and 6 GB/s between, by hand.
TEST_CASE("run says when a job's hardware gives no network") {
  const fs::path source = DLCARBON_SOURCE_DIR;
  const fs::path dir = fresh_dir("no-node");
  const auto r = run({"run", (source / "scenarios/published/strubell2019-bert-base-tpu.yaml").string(), "--data-dir",
                      (source / "data").string(), "-o", (dir / "out.h5").string()});
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("  note: pretrain: google-tpu-v2 has no `node:` block (its links); its collectives are costed on "
                   "nodes of 8 at 60 GB/s a device inside and 6 GB/s between") != std::string::npos);
  // An entry with its node says nothing of it.
  const auto given = run({"run", (source / "scenarios/published/tii2023-falcon-7b.yaml").string(), "--data-dir",
                          (source / "data").string(), "-o", (dir / "given.h5").string()});
  REQUIRE(given.code == 0);
  CHECK(given.out.find("has no `node:` block") == std::string::npos);
  // A cloud deployment whose replica spans 8 devices of such hardware says so too: the MI300X entry,
  // 5.3 TB/s of memory, 530 GB/s inside and 53 between, by hand.
  std::string text = file_text(source / "scenarios/lifecycle/assistant-llm.yaml");
  const std::string h100 = "{from: 2025-01-01, shares: {nvidia-h100-sxm5: 1}}";
  REQUIRE(text.find(h100) != std::string::npos);
  text.replace(text.find(h100), h100.size(), "{from: 2025-01-01, shares: {amd-mi300x: 1}}");
  std::ofstream(dir / "mi300x.yaml") << text;
  const auto served = run({"run", (dir / "mi300x.yaml").string(), "--data-dir", (source / "data").string(), "-o",
                           (dir / "mi300x.h5").string()});
  INFO(served.out, served.err);
  REQUIRE(served.code == 0);
  CHECK(served.out.find("  note: assistant-serving: amd-mi300x has no `node:` block (its links); its collectives are costed "
                        "on nodes of 8 at 530 GB/s a device inside and 53 GB/s between") != std::string::npos);
  fs::remove_all(dir);
}

// A transformer on a GPU that runs FlashAttention, its `fusion` not given, runs its attention
// unfused by default; `run` says how much shorter the step would be with FlashAttention-2, from the
// two steps as costed, and says nothing where the scenario names its fusion (since session 54).
TEST_CASE("run notes what FlashAttention-2 would change where a GPU job's fusion is not given") {
  const fs::path source = DLCARBON_SOURCE_DIR;
  const fs::path dir = fresh_dir("unfused-note");
  std::string text = file_text(source / "scenarios/published/huggingface2025-smollm3-3b.yaml");
  const std::string given = "    fusion: flash2\n";
  REQUIRE(text.find(given) != std::string::npos);
  const auto write_run = [&](const std::string& name, const std::string& scenario) {
    std::ofstream(dir / (name + ".yaml")) << scenario;
    return run({"run", (dir / (name + ".yaml")).string(), "--data-dir", (source / "data").string(), "-o",
                (dir / (name + ".h5")).string()});
  };
  const auto flash = write_run("flash", text);
  REQUIRE(flash.code == 0);
  CHECK(flash.out.find("`fusion` is not given") == std::string::npos);
  std::string unset = text;
  unset.erase(unset.find(given), given.size());
  const auto unfused = write_run("unfused", unset);
  INFO(unfused.out, unfused.err);
  REQUIRE(unfused.code == 0);
  const double step_flash = col<double>(read_run(dir / "flash.h5"), "summary/training", "step_time")[0];
  const double step_unfused = col<double>(read_run(dir / "unfused.h5"), "summary/training", "step_time")[0];
  REQUIRE(step_unfused > step_flash);
  char shorter[16];
  std::snprintf(shorter, sizeof shorter, "%.0f %%", 100 * (1 - step_flash / step_unfused));
  CHECK(unfused.out.find("note: pretrain: `fusion` is not given, so its attention runs unfused (elementwise, the score matrix "
                         "written and read); with FlashAttention-2 (`fusion: flash2`), as most codes since 2022 run it on "
                         "nvidia-h100-sxm5, its step would be " + std::string(shorter) + " shorter") != std::string::npos);
  // Given, the unfused kernels are the scenario's choice: no note.
  std::string elementwise = text;
  elementwise.replace(elementwise.find(given), given.size(), "    fusion: elementwise\n");
  const auto chosen = write_run("chosen", elementwise);
  REQUIRE(chosen.code == 0);
  CHECK(chosen.out.find("`fusion` is not given") == std::string::npos);
  // Five sequences a GPU do not fit unfused (the score matrices kept for the backward) but fit with
  // FlashAttention-2: the single run's message says so, exit 2; given, the reason alone.
  const std::string layout = "microbatch: 3, global_batch: 576";
  REQUIRE(unset.find(layout) != std::string::npos);
  std::string five = unset;
  five.replace(five.find(layout), layout.size(), "microbatch: 5, global_batch: 960");
  const auto unfit = write_run("unfit", five);
  CHECK(unfit.code == 2);
  CHECK(unfit.err.find("training.pretrain: does not fit: ") != std::string::npos);
  CHECK(unfit.err.find("; `fusion` is not given, so its attention runs unfused (elementwise, the score matrix written and read); "
                       "with FlashAttention-2 (`fusion: flash2`) it would fit\n") != std::string::npos);
  std::string five_chosen = elementwise;
  five_chosen.replace(five_chosen.find(layout), layout.size(), "microbatch: 5, global_batch: 960");
  const auto unfit_chosen = write_run("unfit-chosen", five_chosen);
  CHECK(unfit_chosen.code == 2);
  CHECK(unfit_chosen.err.find("does not fit: ") != std::string::npos);
  CHECK(unfit_chosen.err.find("`fusion` is not given") == std::string::npos);
  // FlashAttention runs 16-bit attention: the same job in fp32 (one sequence a GPU, which fits)
  // gets no note, where in bf16 it does.
  std::string one = unset;
  one.replace(one.find(layout), layout.size(), "microbatch: 1, global_batch: 192");
  const auto one_bf16 = write_run("one-bf16", one);
  REQUIRE(one_bf16.code == 0);
  CHECK(one_bf16.out.find("`fusion` is not given") != std::string::npos);
  REQUIRE(one.find("    precision: bf16\n") != std::string::npos);
  one.replace(one.find("    precision: bf16\n"), 20, "    precision: fp32\n");
  const auto one_fp32 = write_run("one-fp32", one);
  INFO(one_fp32.err);
  REQUIRE(one_fp32.code == 0);
  CHECK(one_fp32.out.find("`fusion` is not given") == std::string::npos);
  fs::remove_all(dir);
}

// Device memory is the total a program sees (since session 53: torch's 81,251 MiB for an A100 80 GB,
// where the catalog had read "80 GB" as 8e10 B). torchtitan ran Llama 2 13B on 64 of them with
// 2 sequences of 4,096 a GPU and no checkpointing, at 61 % MFU; the model's estimate of what it
// holds lies between the two readings, so the row fits only with the driver's capacity.
TEST_CASE("device capacities are what a program sees: torchtitan's Llama 2 13B without checkpointing fits an A100 80 GB") {
  const fs::path dir = fresh_dir("torchtitan");
  const auto ran = run_shipped("scenarios/anchors/a100-80gb-torchtitan.yaml", dir / "t.h5");
  INFO(ran.out, ran.err);
  REQUIRE(ran.code == 0);
  const RunRecord rec = read_run(dir / "t.h5");
  const auto& jobs = col<std::string>(rec, "summary/training", "job");
  const auto& status = col<std::string>(rec, "summary/training", "status");
  const auto& memory = col<double>(rec, "summary/training", "memory_per_accelerator");
  REQUIRE(jobs.size() == 3);
  REQUIRE(jobs[0] == "llama2-13b");
  CHECK(status[0] == "ok");
  CHECK(memory[0] > 8e10);
  CHECK(memory[0] < 81251.0 * 1048576.0);
  // Its step within 10 % of the measured 2,162 tokens a second a GPU (-3.1 % at session 53).
  const double step = col<double>(rec, "summary/training", "step_time")[0];
  const double tokens_per_s = 2.0 * 4096 / step;
  CHECK(std::abs(tokens_per_s / 2162.0 - 1) < 0.10);
  fs::remove_all(dir);
}

TEST_CASE("validate --mode first-principles compares published step measurements with the step model") {
  // The anchor's jobs are first_principles.yaml's job: its step time and MFU come from `run`.
  const RunRecord rec = first_principles_record("fp-step.h5");
  const double step = col<double>(rec, "summary/training", "step_time")[0];
  const double mfu = col<double>(rec, "summary/training", "mfu")[0];
  auto r = run({"validate", "--mode", "first-principles", "--dir", (kData / "published_step").string(), "--data-dir",
           (kData / "catalog").string()});
  INFO(r.out, r.err);
  // No footprint: no accelerator-hours row, so the targets cannot be said to hold (exit 1), said
  // on stderr (since session 47, a review).
  CHECK(r.code == 1);
  CHECK(r.err == "dlcarbon validate: first-principles targets not evaluated (exit 1): no published accelerator-hours in "
                 "the folders given\n");
  CHECK(r.out.find("0 rows with a design, tokens and parallelism") != std::string::npos);
  CHECK(r.out.find("6 published step figures (1 not costed: the job does not fit, or has no layer to time") !=
        std::string::npos);
  CHECK(r.out.find("- (the model has no layers to time)") != std::string::npos);
  auto line_of = [&](const std::string& job, const std::string& figure) {
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);) {
      if (l.find(" " + job + " ") != std::string::npos && l.find(figure) != std::string::npos) return l;
    }
    return std::string();
  };
  auto last_percent = [](const std::string& l) { return std::stod(l.substr(l.rfind(' ') + 1)) / 100; };
  // Errors as a step time: a model that is too fast reads negative.
  // step time: simulated / published - 1, against "1 s".
  CHECK(last_percent(line_of("timed", "step time")) == approx(step / 1.0 - 1).epsilon(1e-3));
  // throughput: published / simulated - 1; 64 sequences of 128 tokens a step over 8 devices.
  const double tokens_per_s = 64.0 * 128 / step / 8;
  CHECK(last_percent(line_of("timed", "tokens/s")) == approx(1000 / tokens_per_s - 1).epsilon(1e-3));
  CHECK(last_percent(line_of("timed", "MFU ")) == approx(0.5 / mfu - 1).epsilon(1e-3));
  // layer time: the mean over the 4 decoder layers of their forward and backward ops, one
  // microbatch (the per-op table's rows named decoder.<i>.*), simulated / published - 1.
  const auto& ops = col<std::string>(rec, "training/pretrain/ops", "op");
  const auto& phases = col<std::string>(rec, "training/pretrain/ops", "phase");
  const auto& times = col<double>(rec, "training/pretrain/ops", "time");
  double layers_s = 0;
  int counted = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].rfind("decoder.", 0) != 0 || !std::isdigit(static_cast<unsigned char>(ops[i][8]))) continue;
    if (phases[i] != "fwd" && phases[i] != "bwd") continue;
    layers_s += times[i];
    ++counted;
  }
  CHECK(counted > 8);
  const double layer_s = layers_s / 4;
  CHECK(layer_s > 0);
  CHECK(last_percent(line_of("timed", "layer time")) == approx(layer_s / 0.010 - 1).epsilon(1e-3));
  // Counted as Megatron-LM counts (the whole score matrix), the same step has a larger MFU.
  // The factor is the graph's forward FLOPs with the whole score matrix over its causal count.
  dlcarbon::TransformerDesign d;
  d.arch = dlcarbon::TransformerDesign::Arch::decoder;
  d.decoder_layers = 4;
  d.d_model = 256;
  d.heads = 4;
  d.d_ff = 1024;
  d.vocab = 1000;
  d.seq_len = 128;
  const auto g = dlcarbon::graph::build_graph(d, dlcarbon::graph::GraphShape{8, 2, true});
  const double ratio = g.forward_flops_full_attention() / g.forward_flops();
  CHECK(ratio > 1.01);
  const std::string full = line_of("megatron-counted", "MFU (full attn.)");
  REQUIRE(!full.empty());
  CHECK(last_percent(full) == approx(0.5 / (mfu * ratio) - 1).epsilon(1e-3));
  // Accounting mode: a job with only a step figure has nothing to compare: bad input, exit 2 (since
  // session 36; before, 1, the code of a comparison that fails). An empty folder too.
  r = run({"validate", "--dir", (kData / "published_step").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("no published figures found") != std::string::npos);
  const fs::path empty = fresh_dir("validate-empty");
  r = run({"validate", "--dir", empty.string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("no published figures found") != std::string::npos);
  // First-principles mode too (since session 37; it was 1).
  r = run({"validate", "--mode", "first-principles", "--dir", empty.string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("no published first-principles rows or step figures found") != std::string::npos);
  // A folder whose published jobs all lack what the mode needs: said before any table, each job with
  // where it is defined and what it lacks (since session 53: the message had named neither, and the
  // table's header and an empty summary went to stdout first).
  const fs::path lacking = fresh_dir("validate-lacking");
  std::ofstream(lacking / "s.yaml") << "schema_version: 1\nscenario: {name: lacking}\n"
                                       "models:\n  - {id: m, design: {builder: mlp, widths: [8, 8]}}\n"
                                       "training:\n  - id: job\n    model: m\n    hardware: test-gpu\n"
                                       "    accelerators: 1\n    duration: \"1 h\"\n    precision: fp32\n    datacenter: test-dc\n"
                                       "    power: {per_accelerator: \"100 W\"}\n    published: {source: a test, energy: \"0.1 kWh\"}\n";
  r = run({"validate", "--mode", "first-principles", "--dir", lacking.string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 2);
  CHECK(r.out.empty());
  CHECK(r.err.find("s.yaml:6:5: training.job: a published job without tokens, parallelism") != std::string::npos);
}

TEST_CASE("a FIFO named as a scenario or a trace is bad input, not a read without end") {
  // Since session 34: a named pipe (or /dev/zero) was read until memory ran out.
  const fs::path dir = fresh_dir("fifo");
  REQUIRE(::mkfifo((dir / "pipe.yaml").c_str(), 0600) == 0);
  REQUIRE(::mkfifo((dir / "pipe.csv").c_str(), 0600) == 0);
  const auto r = run({"run", (dir / "pipe.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("pipe.yaml: cannot read the file: it is not a regular file (a device, FIFO or socket)") != std::string::npos);
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: d, start: 2025-01-01, horizon: "1 year"}
models:
  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}
deployments:
  - {id: svc, model: mlp, start: 2025-01-01, duration: "1 year", hardware: test-gpu, replicas: {file: pipe.csv}, demand: "10 requests/s", regions: [{datacenter: test-dc}]}
)";
  const auto t = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(t.code == 2);
  CHECK(t.err.find("s.yaml:6:") != std::string::npos);
  CHECK(t.err.find("deployments[0].replicas.file: cannot read ") != std::string::npos);
  CHECK(t.err.find("it is not a regular file (a device, FIFO or socket)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o.h5"));
  fs::remove_all(dir);
}

TEST_CASE("catalog and scenario folders: FIFOs said, linked folders followed, an HDF5 file never named .yaml") {
  // Since session 43, from a review: a FIFO named .yaml in the data directory or in a validate
  // folder was skipped unsaid, a linked hardware/ folder gave "none defined", and `run -o
  // data/new.yaml` wrote HDF5 into the catalog, which every later command then refused.
  const fs::path dir = fresh_dir("catalog_kinds");
  const fs::path data = dir / "data";
  fs::create_directories(data);
  fs::copy(kData / "catalog", dir / "elsewhere", fs::copy_options::recursive);
  fs::create_directory_symlink(dir / "elsewhere", data / "linked");
  const std::string scenario = (kData / "scenarios/good_base.yaml").string();
  // Links back up are walked once (a review of session 43: two `-> .` links walked exponentially,
  // to the kernel's limit of 40 links), and a folder named x.yaml is a folder.
  fs::create_directory_symlink(".", dir / "elsewhere" / "a");
  fs::create_directory_symlink(".", dir / "elsewhere" / "b");
  fs::create_directory_symlink("..", data / "up");
  fs::create_directories(data / "v2.yaml");
  auto r = run({"run", scenario, "--data-dir", data.string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(fs::exists(dir / "o.h5"));
  REQUIRE(::mkfifo((data / "pipe.yaml").c_str(), 0600) == 0);
  r = run({"run", scenario, "--data-dir", data.string(), "-o", (dir / "p.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("pipe.yaml: a catalog file must be a regular file") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "p.h5"));
  fs::remove(data / "pipe.yaml");
  r = run({"run", scenario, "--data-dir", data.string(), "-o", (data / "new.yaml").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("new.yaml\": the output is an HDF5 file, and a name ending .yaml would be read as YAML") != std::string::npos);
  CHECK_FALSE(fs::exists(data / "new.yaml"));
  // validate: a FIFO and a broken link named .yaml are bad input; a hidden lock link is no scenario.
  const fs::path scenarios = dir / "scenarios";
  fs::create_directories(scenarios);
  fs::create_symlink(dir / "nowhere", scenarios / ".#lock.yaml");
  r = run({"validate", "--dir", scenarios.string(), "--data-dir", data.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("no published figures found") != std::string::npos);
  fs::create_symlink(dir / "nowhere", scenarios / "broken.yaml");
  r = run({"validate", "--dir", scenarios.string(), "--data-dir", data.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("broken.yaml: cannot read this scenario: ") != std::string::npos);
  fs::remove(scenarios / "broken.yaml");
  REQUIRE(::mkfifo((scenarios / "pipe.yaml").c_str(), 0600) == 0);
  r = run({"validate", "--dir", scenarios.string(), "--data-dir", data.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("pipe.yaml: a scenario must be a regular file") != std::string::npos);
  CHECK(r.out.empty());
  fs::remove_all(dir);
}

TEST_CASE("an inference job's CO2e follows its region's trajectory at the scenario's dates") {
  // Since session 43, from a review: an inference job took its region's annual value. Ten years
  // after the region's 2023 (0.5 kg/kWh at -10 %/year), in 2033: 0.5 x 0.9^10 kg/kWh.
  const fs::path dir = fresh_dir("inference_dates");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: inference-dates, start: 2033-06-01}
regions:
  - {id: test-region, trajectory: "-10 %/year"}
models:
  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}
inference:
  - {id: serve, model: mlp, hardware: test-gpu, datacenter: test-dc, batch: 8, precision: fp16, inferences: 1000}
)";
  const auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  REQUIRE(r.code == 0);
  const RunRecord rec = read_run(dir / "o.h5");
  const double energy = col<double>(rec, "summary/inference", "facility_energy").at(0);
  CHECK(energy > 0);
  CHECK(col<double>(rec, "summary/inference", "co2e_location").at(0) == approx(energy * 0.5 * std::pow(0.9, 10) / 3.6e6));
  fs::remove_all(dir);
}

TEST_CASE("without -o, a bad default output name says it is the default") {
  // Since session 43, from a review: `run self.h5` of a scenario named `self` refused "--output",
  // an option not given.
  const fs::path dir = fresh_dir("default_out");
  std::ofstream(dir / "self.h5") << "schema_version: 1\nscenario: {name: self}\n"
                                    "training: [{id: job, hardware: test-gpu, accelerators: 8, duration: \"10 h\", "
                                    "power: {per_accelerator: \"400 W\"}, datacenter: test-dc}]\n";
  const fs::path before = fs::current_path();
  fs::current_path(dir);
  const auto r = run({"run", "self.h5", "--data-dir", (kData / "catalog").string()});
  fs::current_path(before);
  CHECK(r.code == 2);
  CHECK(r.err.rfind("the default output (the scenario's name and .h5; no -o given): cannot write \"self.h5\": it is one of the inputs", 0) == 0);
  fs::remove_all(dir);
}

TEST_CASE("a chain of extends or of from entries longer than 256 is bad input, not a stack overflow") {
  // Since session 43, from a review: 4,000 files each extending the next, or 7,000 entries each
  // built from the next, crashed with the stack exhausted.
  const fs::path dir = fresh_dir("chains");
  fs::copy_file(kData / "scenarios/good_base.yaml", dir / "e0.yaml");
  for (int i = 1; i <= 300; ++i) {
    std::ofstream(dir / ("e" + std::to_string(i) + ".yaml")) << "schema_version: 1\nextends: e" << i - 1 << ".yaml\n";
  }
  auto r = run({"run", (dir / "e300.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("extends: a chain of extends longer than 256 files") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o.h5"));
  r = run({"run", (dir / "e200.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 0);
  std::ofstream chain(dir / "from.yaml");
  chain << "schema_version: 1\nextends: e0.yaml\nhardware:\n";
  for (int i = 300; i >= 1; --i) chain << "  - {id: h" << i << ", from: h" << i - 1 << "}\n";
  chain << "  - {id: h0, from: test-gpu}\n";
  chain.close();
  r = run({"run", (dir / "from.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "f.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("from: a chain of entries built with from (and the entries they refer to) longer than 256") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "f.h5"));
  // The same chain written the other way round, each entry after the one it is built from, is as
  // long (since session 47, a review: it was accepted, never recursing deeper than one entry):
  // h255 is the 257th entry of its chain (h255 back to h0, and test-gpu), 256 are not too many.
  for (const int n : {300, 254}) {
    std::ofstream forward(dir / "forward.yaml");
    forward << "schema_version: 1\nextends: e0.yaml\nhardware:\n  - {id: h0, from: test-gpu}\n";
    for (int i = 1; i <= n; ++i) forward << "  - {id: h" << i << ", from: h" << i - 1 << "}\n";
    forward.close();
    r = run({"run", (dir / "forward.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "f.h5").string()});
    INFO(n, r.err);
    CHECK(r.code == (n == 300 ? 2 : 0));
    if (n == 300) {
      CHECK(r.err.find("forward.yaml:259:22: hardware[255].from: ") != std::string::npos);
      CHECK(r.err.find("from: a chain of entries built with from (and the entries they refer to) longer than 256") != std::string::npos);
      CHECK_FALSE(fs::exists(dir / "f.h5"));
    }
  }
  // A loop is said as the entries make it.
  std::ofstream(dir / "loop.yaml") << "schema_version: 1\nextends: e0.yaml\nhardware:\n  - {id: a, from: b}\n  - {id: b, from: a}\n"
                                      "training: [{id: job, hardware: a, accelerators: 8, duration: \"10 h\", "
                                      "power: {per_accelerator: \"400 W\"}, datacenter: test-dc}]\n";
  r = run({"run", (dir / "loop.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "f.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("circular reference: hardware \"a\" -> \"b\" -> \"a\"") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("run -o naming one of its inputs is bad input, and the input is left as it was") {
  // Since session 34: `run s.yaml -o s.yaml` replaced the scenario with the HDF5 file.
  const fs::path dir = fresh_dir("self");
  const std::string text = "schema_version: 1\nscenario: {name: self}\n"
                           "training: [{id: job, hardware: test-gpu, accelerators: 8, duration: \"10 h\", "
                           "power: {per_accelerator: \"400 W\"}, datacenter: test-dc}]\n";
  std::ofstream(dir / "s.yaml") << text;
  const auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "s.yaml").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--output: cannot write ") != std::string::npos);
  CHECK(r.err.find("s.yaml\": it is one of the inputs (") != std::string::npos);
  const std::string after = file_text(dir / "s.yaml");
  CHECK(after == text);
  // A catalog file too.
  const auto c = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                      (kData / "catalog" / "test-catalog.yaml").string()});
  CHECK(c.code == 2);
  CHECK(c.err.find("test-catalog.yaml\": it is one of the inputs (") != std::string::npos);
  // A file that cannot be created (a name longer than the file system takes) is bad input, said
  // before the simulation (since session 35; before, an internal failure, exit 1, at the end).
  const auto l = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                      (dir / (std::string(300, 'a') + ".h5")).string()});
  CHECK(l.code == 2);
  CHECK(l.err.find("--output: cannot write ") != std::string::npos);
  CHECK(l.err.find("File name too long") != std::string::npos);
  // A name the file system takes, with no room for ".tmp-<pid>" after it, is written through a
  // shorter temporary name (since session 40, a review; before, refused as too long).
  const fs::path longest = dir / (std::string(252, 'a') + ".h5");
  const auto w = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", longest.string(), "-q"});
  CHECK(w.code == 0);
  CHECK(fs::exists(longest));
  std::size_t left = 0;
  for (const auto& e : fs::directory_iterator(dir)) left += e.path().filename().string().find("tmp") != std::string::npos;
  CHECK(left == 0);
  fs::remove_all(dir);
}

TEST_CASE("inspect on damaged files: a clear error or the file, never a crash") {
  // Since session 35: a damaged global heap or object header made libhdf5 itself crash (a
  // segmentation fault in H5HG_read) or loop; the file is now read once in a child process first.
  const fs::path dir = fresh_dir("damaged");
  REQUIRE(run({"run", (kData / "scenarios/first_principles.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
               (dir / "g.h5").string(), "-q"}).code == 0);
  std::ifstream in(dir / "g.h5", std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The first object of the global heap (the variable-length strings), its size set to 2^56 and
  // more: libhdf5 reads past its buffer.
  const auto heap = original.find("GCOL");
  REQUIRE(heap != std::string::npos);
  std::string damaged = original;
  for (std::size_t k = 25; k < 32; ++k) damaged[heap + k] = static_cast<char>(0xff);
  std::ofstream(dir / "d.h5", std::ios::binary | std::ios::trunc) << damaged;
  // (Such a file may also send libhdf5 round a loop: a short limit for the test.)
  ::setenv("DLCARBON_READ_CHECK_S", "5", 1);
  auto r = run({"inspect", (dir / "d.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("d.h5: damaged HDF5 file: reading it ") != std::string::npos);
  // A few single-byte changes anywhere: the file, or an error naming it.
  std::uint64_t state = 12345;
  const auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  for (int i = 0; i < 30; ++i) {
    damaged = original;
    damaged[next() % damaged.size()] = static_cast<char>(next() % 256);
    std::ofstream(dir / "d.h5", std::ios::binary | std::ios::trunc) << damaged;
    r = run({"inspect", (dir / "d.h5").string()});
    CHECK((r.code == 0 || r.code == 2));
    if (r.code == 2) CHECK(r.err.find("d.h5") != std::string::npos);
  }
  ::unsetenv("DLCARBON_READ_CHECK_S");
  fs::remove_all(dir);
}

TEST_CASE("options that would be ignored or run nonsense are bad input") {
  // Since session 35: each was accepted with exit 0.
  // An empty --data-dir (an unset shell variable) ran without any catalog.
  auto r = run({"run", (kData / "scenarios/first_principles.yaml").string(), "--data-dir", "", "-o", (temp_dir() / "e.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--data-dir: an empty directory name") != std::string::npos);
  // --gather without --shard did nothing.
  r = run({"sweep", (kData / "sweeps/grid.sweep.yaml").string(), "--gather", "--data-dir", (kData / "catalog").string(), "-o",
           (temp_dir() / "g.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("--gather needs --shard") != std::string::npos);
  CHECK_FALSE(fs::exists(temp_dir() / "g.h5"));
  // An infinite tolerance passed every row.
  r = run({"validate", "--tolerance", "inf"});
  CHECK(r.code == 2);
  CHECK(r.err.find("--tolerance: expected a finite number >= 0") != std::string::npos);
}

TEST_CASE("a catalog id defined in two files, and a catalog link that leads nowhere, are bad input") {
  // Since session 35: the same id in two catalog files was merged, the later file name winning; a
  // link in a loop was an internal failure (exit 1), a dangling one skipped.
  const fs::path dir = fresh_dir("catalog_dup");
  fs::create_directories(dir / "catalog");
  fs::copy_file(kData / "catalog" / "test-catalog.yaml", dir / "catalog" / "test-catalog.yaml");
  std::ofstream(dir / "catalog" / "aa.yaml") << "schema_version: 1\nhardware:\n  - {id: test-gpu, kind: gpu, tdp: \"300 W\", "
                                               "peak: {fp16: \"100 TFLOP/s\"}, source: duplicate}\n";
  const std::string text = "schema_version: 1\nscenario: {name: dup}\n"
                           "training: [{id: job, hardware: test-gpu, accelerators: 8, duration: \"10 h\", "
                           "power: {per_accelerator: \"400 W\"}, datacenter: test-dc}]\n";
  std::ofstream(dir / "s.yaml") << text;
  auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("duplicate id \"test-gpu\" in the catalog (first at ") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o.h5"));
  fs::remove(dir / "catalog" / "aa.yaml");
  fs::create_symlink(dir / "catalog" / "nowhere.yaml", dir / "catalog" / "dangling.yaml");
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("dangling.yaml: cannot read this catalog file: ") != std::string::npos);
  fs::remove(dir / "catalog" / "dangling.yaml");
  fs::create_symlink(dir / "catalog" / "loop.yaml", dir / "catalog" / "loop.yaml");
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("loop.yaml: cannot read this catalog file: ") != std::string::npos);
  fs::remove(dir / "catalog" / "loop.yaml");
  // A .yml file would be skipped, its entries unknown: said (since session 47, a review).
  std::ofstream(dir / "catalog" / "h3.yml") << "schema_version: 1\nhardware:\n  - {id: hw2, kind: gpu, tdp: \"5 kg\"}\n";
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("h3.yml: catalog files end in .yaml; this .yml file would not be read (rename it)") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o.h5"));
  fs::remove(dir / "catalog" / "h3.yml");
  // A hidden file (an editor's lock link ".#name.yaml", dangling by design) is not catalog.
  fs::create_symlink("user@host.123", dir / "catalog" / ".#test-catalog.yaml");
  // Nor is a hidden folder (a notebook's checkpoints holding a copy of a catalog file).
  fs::create_directories(dir / "catalog" / ".ipynb_checkpoints");
  fs::copy_file(dir / "catalog" / "test-catalog.yaml", dir / "catalog" / ".ipynb_checkpoints" / "test-catalog-checkpoint.yaml");
  r = run({"run", (dir / "s.yaml").string(), "--data-dir", (dir / "catalog").string(), "-o", (dir / "o.h5").string(), "-q"});
  INFO(r.err);
  CHECK(r.code == 0);
  fs::remove_all(dir);
}

TEST_CASE("results beyond what a double holds: bad input for a run, a point that cannot run in a sweep") {
  // Since session 34: a fleet of 1e300 replicas was written as inf with exit 0.
  const fs::path dir = fresh_dir("beyond");
  std::ofstream(dir / "s.yaml") << R"(schema_version: 1
scenario: {name: d, start: 2025-01-01, horizon: "1 year"}
models:
  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}
deployments:
  - {id: svc, model: mlp, start: 2025-01-01, duration: "1 year", hardware: test-gpu, replicas: 1e300, demand: "10 requests/s", regions: [{datacenter: test-dc}]}
)";
  const auto r = run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "o.h5").string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("s.yaml:6:5: deployments.svc: its lifecycle energy or CO2e is beyond what can be represented") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o.h5"));
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: b, scenario: s.yaml}\nparameters:\n"
                                         "  - {key: deployments.svc.replicas, values: [2, 1e300]}\n";
  const auto sw = run({"sweep", (dir / "s.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                       (dir / "sw.h5").string(), "--quiet"});
  INFO(sw.err);
  REQUIRE(sw.code == 0);
  const RunRecord rec = read_run(dir / "sw.h5");
  CHECK(col<std::string>(rec, "sweep/points", "status") == std::vector<std::string>{"ok", "cannot run"});
  CHECK(col<std::string>(rec, "sweep/points", "reason")[1].rfind("svc: its lifecycle energy or CO2e is beyond", 0) == 0);
  CHECK(std::isnan(col<double>(rec, "sweep/points", "facility_energy")[1]));
  const auto energy = col<double>(rec, "sweep/deployments", "energy");
  REQUIRE(energy.size() == 2);
  CHECK(std::isfinite(energy[0]));
  CHECK(std::isnan(energy[1]));  // unknown, not inf
  // A training job whose energy is finite but past 1e300: its row says why and holds no figures,
  // as the point does (since session 44, a review: status ok, 5.9e301 J).
  fs::copy_file(kData / "scenarios/first_principles.yaml", dir / "t.yaml");
  // (An inference job of the same id, whose row is another's: it keeps its figures.)
  std::ofstream(dir / "t.yaml", std::ios::app)
      << "inference:\n  - {id: pretrain, model: small-lm, hardware: test-gpu, batch: 8, inferences: 1e6, datacenter: test-dc}\n";
  std::ofstream(dir / "t.sweep.yaml") << "schema_version: 1\nsweep: {name: t, scenario: t.yaml}\nparameters:\n"
                                         "  - {key: training.pretrain.tokens, values: [\"1e9 tokens\", \"1e308 tokens\"]}\n";
  const auto st = run({"sweep", (dir / "t.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                       (dir / "st.h5").string(), "--quiet"});
  INFO(st.err);
  REQUIRE(st.code == 0);
  const RunRecord trec = read_run(dir / "st.h5");
  CHECK(col<std::string>(trec, "sweep/points", "status") == std::vector<std::string>{"ok", "cannot run"});
  const auto status = col<std::string>(trec, "sweep/training", "status");
  REQUIRE(status.size() == 2);
  CHECK(status[0] == "ok");
  CHECK(status[1].find("beyond what can be represented") != std::string::npos);
  CHECK(std::isnan(col<double>(trec, "sweep/training", "facility_energy")[1]));
  CHECK(std::isfinite(col<double>(trec, "sweep/training", "facility_energy")[0]));
  CHECK(col<double>(trec, "sweep/training", "pue")[1] == approx(1.5));  // an input, kept
  CHECK(col<std::string>(trec, "sweep/inference", "status") == std::vector<std::string>{"ok", "ok"});
  CHECK(std::isfinite(col<double>(trec, "sweep/inference", "it_energy")[1]));
  fs::remove_all(dir);
}

TEST_CASE("a sweep point whose time series would not fit memory stops the sweep before anything runs") {
  // Since session 42 (a review): the size check ran only once a point ran, past the sweep's
  // up-front checks; it is now one of them, the point named.
  const fs::path dir = fresh_dir("series-size-sweep");
  std::ofstream(dir / "s.yaml") << "schema_version: 1\nscenario: {name: s, start: 2025-01-01, horizon: \"1000 years\"}\n"
                                   "models:\n  - {id: mlp, design: {builder: mlp, widths: [64, 256, 10]}}\n"
                                   "deployments:\n  - {id: svc, model: mlp, start: 2025-01-01, duration: \"1000 years\", "
                                   "hardware: test-gpu, replicas: 2, demand: \"10 requests/s\", regions: [{datacenter: test-dc}]}\n";
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: d, scenario: s.yaml}\nparameters:\n"
                                         "  - {key: scenario.resolution, values: [year, hour]}\n";
  const auto r = run({"sweep", (dir / "s.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
                      (dir / "out.h5").string(), "--quiet"});
  CHECK(r.code == 2);
  CHECK(r.err.find("scenario.resolution: the time series would hold up to 2.63e+07 rows") != std::string::npos);
  CHECK(r.err.find("(in sweep point 1") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "out.h5"));
}

TEST_CASE("the series bound counts each inline override of a data centre as a site of its own") {
  // Six jobs of one model on inline copies of test-dc (each its own PUE), hourly over 100 years:
  // 876,602 bins x 6 sites x 2 phases = 1.05e7 rows, past the 1e7 bound, which the plan finds; the
  // up-front check now finds it too (since session 44, a review: it counted one site by the shared
  // id, 1.75e6, and a sweep stopped mid-run with a half-written file).
  const fs::path dir = fresh_dir("series-inline-sites");
  std::string text = "schema_version: 1\nscenario: {name: sites, start: 2023-01-01, horizon: \"100 years\", resolution: hour}\n"
                     "models:\n  - {id: m, params: \"1e9 params\"}\ntraining:\n";
  for (int i = 0; i < 6; ++i) {
    text += "  - {id: j" + std::to_string(i) + ", model: m, hardware: test-gpu, accelerators: 2, duration: \"1 day\", power: {system: \"1 kW\"}, "
            "datacenter: {id: test-dc, pue: 1." + std::to_string(i + 1) + "}}\n";
  }
  std::ofstream(dir / "s.yaml") << text;
  const auto s = load_scenario(dir / "s.yaml", LoadOptions{kData / "catalog"});
  CHECK_THROWS_WITH_AS(cli::check_costable(s), doctest::Contains("the time series would hold up to 1.05e+07 rows"), InputError);
  // One copy fewer stays inside: 876,602 x 5 x 2 = 8.8e6.
  const std::string six = text;
  text.erase(text.rfind("  - {id: j5"));
  std::ofstream(dir / "s.yaml") << text;
  CHECK_NOTHROW(cli::check_costable(load_scenario(dir / "s.yaml", LoadOptions{kData / "catalog"})));
  // Copies with the same figures are one site, as the plan makes them (a review of session 44: the
  // first version of this check counted every copy apart and refused such scenarios).
  std::string same = six;
  for (int i = 1; i < 6; ++i) {
    const std::string pue = "pue: 1." + std::to_string(i + 1) + "}";
    same.replace(same.find(pue), pue.size(), "pue: 1.1}");
  }
  std::ofstream(dir / "s.yaml") << same;
  CHECK_NOTHROW(cli::check_costable(load_scenario(dir / "s.yaml", LoadOptions{kData / "catalog"})));
  // Jobs without a model are each their own, as the plan names them: six on one site are 12 series.
  std::string modelless = same;
  for (int i = 0; i < 6; ++i) modelless.replace(modelless.find(", model: m,"), 11, ",");
  std::ofstream(dir / "s.yaml") << modelless;
  CHECK_THROWS_AS(cli::check_costable(load_scenario(dir / "s.yaml", LoadOptions{kData / "catalog"})), InputError);
}

TEST_CASE("another user's output in a sticky folder is refused before the run, not at its end") {
  // /tmp's kind of folder (mode 1777): a file that root owns cannot be replaced by another user's
  // rename. Said as bad input up front (since session 44, a review: exit 1 after the simulation).
  // Needs root, to make the file and to run as another user (uid 65534).
  if (::geteuid() != 0) {
    MESSAGE("skipped: needs root");
    return;
  }
  const fs::path dir = fresh_dir("sticky-output");
  fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit);
  std::ofstream(dir / "root.h5") << "old";
  const fs::path scenario = kData / "published_ok/capped.yaml";
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::alarm(60);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(99);
    std::ostringstream out, err;
    const int code = cli::main({"run", scenario.string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "root.h5").string(), "--quiet"},
                               {out, err});
    ::_exit(code == 2 && err.str().find("cannot replace") != std::string::npos ? 0 : 10 + code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const std::string kept = file_text(dir / "root.h5");
  CHECK(kept == "old");
}

TEST_CASE("inspect shows a file's text printable, the scenario's too") {
  // A comment holding a terminal escape (ESC [ 31 m) runs; inspect --scenario shows it escaped,
  // line by line (since session 44, a review: it went to the terminal as it was).
  const fs::path dir = fresh_dir("inspect-escape");
  const std::string text = file_text(kData / "published_ok/capped.yaml");
  std::ofstream(dir / "s.yaml") << "# red: \x1b[31mRED\x1b[0m\n" << text;
  REQUIRE(run({"run", (dir / "s.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "s.h5").string(), "--quiet"}).code == 0);
  const auto r = run({"inspect", (dir / "s.h5").string(), "--scenario"});
  CHECK(r.code == 0);
  CHECK(r.out.find('\x1b') == std::string::npos);
  CHECK(r.out.find("# red: \\x1b[31mRED\\x1b[0m\n") != std::string::npos);
  CHECK(r.out.find("scenario: {name: capped}\n") != std::string::npos);
}

TEST_CASE("a grid's range with steps keeps its range in sweep/parameters") {
  // PUE from 1.1 to 1.5 in 3 steps: the values 1.1 | 1.3 | 1.5 and the range [1.1, 1.5] beside
  // them (since session 44, a review: NaN); listed values keep NaN.
  const fs::path dir = fresh_dir("sweep-stepped");
  fs::copy_file(kData / "scenarios/first_principles.yaml", dir / "base.yaml");
  std::ofstream(dir / "s.sweep.yaml") << "schema_version: 1\nsweep: {name: stepped, scenario: base.yaml}\nparameters:\n"
                                         "  - {key: datacenters.test-dc.pue, range: [1.1, 1.5], steps: 3}\n"
                                         "  - {key: models.small-lm.design.d_model, values: [256]}\n";
  const auto r = run({"sweep", (dir / "s.sweep.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o", (dir / "s.h5").string(),
                      "--quiet", "--threads", "1"});
  REQUIRE(r.code == 0);
  const auto file = read_run(dir / "s.h5");
  const auto low = col<double>(file, "sweep/parameters", "range_low");
  const auto high = col<double>(file, "sweep/parameters", "range_high");
  CHECK(low[0] == approx(1.1));
  CHECK(high[0] == approx(1.5));
  CHECK(col<std::string>(file, "sweep/parameters", "values")[0] == "1.1 | 1.3 | 1.5");
  CHECK(std::isnan(low[1]));
  CHECK(std::isnan(high[1]));
}

TEST_CASE("calibrate --refit of a run's output says it holds no samples, before anything of its machine") {
  // Since session 44 (a review): "records no machine", or under --this-machine a line taking this
  // machine's caches, had come first.
  const fs::path dir = fresh_dir("refit-run-output");
  REQUIRE(run({"run", (kData / "published_ok/capped.yaml").string(), "--data-dir", (kData / "catalog").string(), "-o",
               (dir / "run.h5").string(), "--quiet"})
              .code == 0);
  for (const bool here : {false, true}) {
    std::vector<std::string> args{"calibrate", "--refit", (dir / "run.h5").string(), "--out", (dir / "out").string()};
    if (here) args.push_back("--this-machine");
    const auto r = run(args);
    CHECK(r.code == 2);
    CHECK(r.err.find("holds no calibration/samples table") != std::string::npos);
    CHECK(r.out.find("caches") == std::string::npos);
    CHECK_FALSE(fs::exists(dir / "out"));
  }
}

TEST_CASE("sweep: integer steps that coincide are run once, and said") {
  // Since session 45 (a review): 5 steps over the integers from 1 to 2 are 1, 1, 2, 2, 2: two points,
  // which the sweep ran without a word.
  const fs::path dir = fresh_dir("integer-steps");
  {
    std::ofstream f(dir / "s.sweep.yaml");
    f << "schema_version: 1\nsweep: {name: steps, scenario: \"" << (kData / "scenarios/first_principles.yaml").generic_string()
      << "\"}\nparameters:\n  - {key: training.pretrain.parallelism.microbatch, range: [1, 2], steps: 5, integer: true}\n";
  }
  const auto r = sweep(dir / "s.sweep.yaml", dir / "s.h5");
  INFO(r.out, r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("dlcarbon: sweep steps: training.pretrain.parallelism.microbatch: 5 steps over the integers from 1 to 2 give 2 distinct values\n") !=
        std::string::npos);
  CHECK(r.out.find(": 2 of 2 points") != std::string::npos);
}
