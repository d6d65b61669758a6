#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "commands.hpp"

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
}  // namespace

TEST_CASE("help and version") {
  auto r = run({"--version"});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("dlcarbon 0.1.0 (", 0) == 0);
  r = run({"--help"});
  CHECK(r.code == 0);
  CHECK(r.out.find("usage: dlcarbon <command>") != std::string::npos);
  for (const char* command : {"run", "validate", "inspect"}) {
    r = run({command, "--help"});
    CHECK(r.code == 0);
    CHECK(r.out.find(std::string("usage: dlcarbon ") + command) != std::string::npos);
  }
  CHECK(run({}).code == 2);
  r = run({"frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.err == "dlcarbon: unknown command \"frobnicate\"; expected one of: run, validate, inspect, calibrate (see dlcarbon --help)\n");
  r = run({"run", "--frobnicate"});
  CHECK(r.code == 2);
  CHECK(r.err.rfind("dlcarbon: unrecognised option '--frobnicate'", 0) == 0);
}

TEST_CASE("run writes the summary; inspect prints it") {
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
  CHECK(std::get<std::vector<double>>(t->find("facility_energy")->values)[0] == doctest::Approx(48 * 3.6e6));
  CHECK(std::get<std::vector<double>>(t->find("co2e_location")->values)[0] == doctest::Approx(24));
  // market: 48 kWh x 0.1 kg/kWh = 4.8 kg.
  CHECK(std::get<std::vector<double>>(t->find("co2e_market")->values)[0] == doctest::Approx(4.8));
  CHECK(rec.scenario_name == "base-run");
  CHECK(rec.seed == 7);

  r = run({"inspect", out.string()});
  CHECK(r.code == 0);
  CHECK(r.out.find("facility_energy") != std::string::npos);
  CHECK(r.out.find("/summary/training (1 rows)") != std::string::npos);
  fs::remove(out);
}

TEST_CASE("an output folder that does not exist is bad input, and nothing is written") {
  const fs::path out = temp_dir() / "missing-dir" / "x.h5";
  auto r = run({"run", (kData / "scenarios/good_base.yaml").string(), "--data-dir", (kData / "catalog").string(),
                "-o", out.string()});
  CHECK(r.code == 2);
  CHECK(r.err.find("does not exist") != std::string::npos);
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
  CHECK(r.out.find("3 rows from 1 scenarios; 3 within 1%") != std::string::npos);
  r = run({"validate", "--dir", (kData / "published_fail").string(), "--data-dir", (kData / "catalog").string()});
  CHECK(r.code == 1);
  CHECK(r.out.find("FAIL") != std::string::npos);
  // 28.8 kWh against 30.0 (+/- 0.05): -4 % raw; beyond print (1.2 - 0.05) / 30 = 3.83 %.
  CHECK(r.out.find("-4.00%") != std::string::npos);
  CHECK(r.out.find("+3.83%") != std::string::npos);
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
  CHECK(steps == doctest::Approx(1e9 / (64.0 * 128)));
  const double step = std::get<std::vector<double>>(summary->find("step_time")->values)[0];
  CHECK(std::get<std::vector<double>>(summary->find("duration")->values)[0] == doctest::Approx(steps * step));
  CHECK(ops->rows() > 20);
  CHECK(ops->find("bound") != nullptr);
  fs::remove(out);
}

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
  fs::remove_all(dir);
}
