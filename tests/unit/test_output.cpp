#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "dlcarbon/output.hpp"

namespace fs = std::filesystem;
using namespace dlcarbon;

namespace {
RunRecord sample() {
  RunRecord r;
  r.dlcarbon_version = "0.1.0";
  r.git_sha = "abc";
  r.created = "2026-11-26T18:00:00Z";
  r.scenario_name = "s";
  r.seed = 42;
  r.scenario_given = "schema_version: 1\n# é ü\n";
  r.scenario_resolved = "resolved: true\n";
  r.tables.push_back(Table{"summary/training",
                           {Column{"job", "", std::vector<std::string>{"a", "b"}},
                            Column{"accelerators", "1", std::vector<std::int64_t>{8, 16}},
                            Column{"energy", "J", std::vector<double>{1.5, std::numeric_limits<double>::quiet_NaN()}}}});
  r.tables.push_back(Table{"empty/table", {Column{"x", "s", std::vector<double>{}}}});
  return r;
}
// One folder per test case: ctest runs the cases of this file in parallel processes.
fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("dlcarbon_test_output_" + name);
  fs::create_directories(d);
  return d;
}
}  // namespace

TEST_CASE("a run record round-trips through HDF5") {
  const fs::path file = temp_dir("roundtrip") / "roundtrip.h5";
  write_run(file, sample());
  const RunRecord r = read_run(file);
  CHECK(r.format_version == kFormatVersion);
  CHECK(r.git_sha == "abc");
  CHECK(r.seed == 42);
  CHECK(r.scenario_given == "schema_version: 1\n# é ü\n");
  CHECK(r.scenario_resolved == "resolved: true\n");
  REQUIRE(r.tables.size() == 2);
  const Table* t = nullptr;
  for (const auto& x : r.tables) {
    if (x.path == "summary/training") t = &x;
  }
  REQUIRE(t != nullptr);
  REQUIRE(t->columns.size() == 3);
  CHECK(t->columns[0].name == "job");  // order kept from the `columns` attribute
  CHECK(std::get<std::vector<std::string>>(t->columns[0].values) == std::vector<std::string>{"a", "b"});
  CHECK(std::get<std::vector<std::int64_t>>(t->find("accelerators")->values)[1] == 16);
  CHECK(t->find("energy")->units == "J");
  CHECK(std::isnan(std::get<std::vector<double>>(t->find("energy")->values)[1]));
  fs::remove(file);
}

TEST_CASE("no temporary file is left, and a failed write leaves nothing") {
  const fs::path dir = temp_dir("failed_write");
  write_run(dir / "ok.h5", sample());
  for (const auto& e : fs::directory_iterator(dir)) {
    CHECK(e.path().string().find(".tmp-") == std::string::npos);
  }
  RunRecord bad = sample();
  bad.tables[0].columns[1].values = std::vector<std::int64_t>{1};  // shorter than the others
  CHECK_THROWS_AS(write_run(dir / "bad.h5", bad), OutputError);
  CHECK_FALSE(fs::exists(dir / "bad.h5"));
  for (const auto& e : fs::directory_iterator(dir)) {
    CHECK(e.path().filename().string().rfind("bad.h5", 0) != 0);
  }
  CHECK_THROWS_AS(write_run(dir / "no-such-dir" / "x.h5", sample()), OutputError);
  fs::remove_all(dir);
}

TEST_CASE("a replaced file keeps its permissions") {
  // Since session 42: the new file took the umask's (a results file shared with a group lost it).
  const fs::path dir = temp_dir("permissions");
  write_run(dir / "r.h5", sample());
  const auto shared = fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write |
                      fs::perms::others_read;
  fs::permissions(dir / "r.h5", shared, fs::perm_options::replace);
  write_run(dir / "r.h5", sample());
  CHECK(fs::status(dir / "r.h5").permissions() == shared);
  CHECK(read_run(dir / "r.h5").scenario_name == "s");
  fs::remove_all(dir);
}

TEST_CASE("reading something that is not a dlcarbon file fails clearly") {
  const fs::path file = temp_dir("not_hdf5") / "not.h5";
  std::ofstream(file) << "hello";
  CHECK_THROWS_WITH_AS(read_run(file), (file.string() + ": not an HDF5 file").c_str(), OutputError);
  fs::remove(file);
}

TEST_CASE("a file of another format version is refused, not read as this one") {
  // Since session 44 (a review): version 2 was read and shown as if it were 1.
  const fs::path file = temp_dir("format_version") / "v2.h5";
  RunRecord r = sample();
  r.format_version = kFormatVersion + 1;
  write_run(file, r);
  CHECK_THROWS_WITH_AS(read_run(file),
                       (file.string() + ": format_version 2; this dlcarbon reads version 1").c_str(), OutputError);
  fs::remove(file);
}
