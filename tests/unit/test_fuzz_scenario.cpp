// Mutation fuzzing of the scenario loader: valid scenarios with random bytes flipped, lines
// dropped, duplicated or truncated must load or fail with InputError; nothing else may escape
// (and under ASan/UBSan, nothing may touch memory it should not). Fixed seeds.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "dlcarbon/lifecycle_plan.hpp"
#include "dlcarbon/scenario.hpp"
#include "mutate.hpp"

namespace fs = std::filesystem;

namespace {
std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("mutated scenarios load or fail with InputError, never anything else") {
  const fs::path data = DLCARBON_TEST_DATA_DIR;
  const fs::path dir = fs::temp_directory_path() / "dlcarbon_fuzz";
  fs::create_directories(dir);
  const std::vector<fs::path> seeds = {data / "scenarios/good_base.yaml", data / "scenarios/first_principles.yaml",
                                       fs::path(DLCARBON_SOURCE_DIR) / "scenarios/quickstart.yaml",
                                       data / "scenarios/deployments.yaml"};
  std::mt19937_64 rng(20261126);
  int loaded = 0, rejected = 0, simulated = 0;
  for (int i = 0; i < 800; ++i) {
    const std::string text = dlcarbon::test::mutate(read(seeds[static_cast<std::size_t>(i) % seeds.size()]), rng);
    const fs::path file = dir / "mutant.yaml";
    std::ofstream(file, std::ios::binary) << text;
    try {
      const auto scenario = dlcarbon::load_scenario(file, dlcarbon::LoadOptions{data / "catalog"});
      ++loaded;
      // A mutant that loads and has deployments must also plan and simulate (accounting-mode
      // training footprints are not needed for deployments: none are passed).
      if (!scenario.deployments.empty()) {
        const auto plan = dlcarbon::lifecycle::plan_lifecycle(scenario, {});
        const auto r = dlcarbon::lifecycle::simulate_lifecycle(plan, 1);
        for (const auto& row : r.series) CHECK(std::isfinite(row.co2e_location_kg));
        ++simulated;
      }
    } catch (const dlcarbon::InputError& e) {
      ++rejected;
      const std::string msg = e.what();
      CHECK_MESSAGE(msg.find("mutant.yaml") != std::string::npos, msg);  // names the file
      CHECK_MESSAGE(msg.find('\n') == std::string::npos, msg);           // one line
      CHECK_MESSAGE(std::regex_search(msg, std::regex("mutant\\.yaml:[0-9]+:[0-9]+: ")), msg);  // and where
    } catch (const std::exception& e) {
      FAIL_CHECK("escaped: " << e.what() << "\n--- input ---\n" << text);
    }
  }
  MESSAGE(loaded << " mutants loaded (" << simulated << " simulated), " << rejected << " rejected");
  CHECK(simulated >= 3);
  CHECK(rejected > 100);
  fs::remove_all(dir);
}

TEST_CASE("every value of a scenario replaced by a wrong one fails at that value's line and column") {
  // Byte-level mutants rarely hit a value with a well-formed wrong one; this replaces each scalar
  // value of the seeds in turn (a "key: value" pair, in block or flow style) with values of the
  // wrong kind or range. A value whose check built a new YAML node lost its place this way
  // (utc_offset, 2026-12-03).
  const fs::path data = DLCARBON_TEST_DATA_DIR;
  const fs::path dir = fs::temp_directory_path() / "dlcarbon_fuzz_values";
  fs::create_directories(dir);
  const std::vector<fs::path> seeds = {data / "scenarios/deployments.yaml", data / "scenarios/first_principles.yaml",
                                       data / "scenarios/good_base.yaml"};
  const std::vector<std::string> wrong = {"nan", "-1", "abc", "1e400", "{a: 1}", "[1, 2]", "\"\"", "99999999999999999999"};
  const std::regex pair("([A-Za-z_][A-Za-z0-9_]*): ?([^,{}\\[\\]\\n#\"]+|\"[^\"\\n]*\")");
  const std::regex where("mutant\\.yaml:[0-9]+:[0-9]+: ");
  int tried = 0, rejected = 0;
  for (const auto& seed : seeds) {
    const std::string text = read(seed);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pair); it != std::sregex_iterator(); ++it) {
      const auto& m = *it;
      const auto line_start = text.rfind('\n', static_cast<std::size_t>(m.position(0)));
      if (text.find('#', line_start == std::string::npos ? 0 : line_start) < static_cast<std::size_t>(m.position(0))) continue;
      if (m.str(1) == "schema_version") continue;
      for (const auto& w : wrong) {
        const std::string mutant = text.substr(0, static_cast<std::size_t>(m.position(2))) + w +
                                   text.substr(static_cast<std::size_t>(m.position(2) + m.length(2)));
        const fs::path file = dir / "mutant.yaml";
        std::ofstream(file, std::ios::binary) << mutant;
        ++tried;
        try {
          (void)dlcarbon::load_scenario(file, dlcarbon::LoadOptions{data / "catalog"});
        } catch (const dlcarbon::InputError& e) {
          ++rejected;
          const std::string msg = e.what();
          CHECK_MESSAGE(std::regex_search(msg, where), seed.filename().string() << ", " << m.str(1) << ": " << w << " -> " << msg);
          CHECK_MESSAGE(msg.find('\n') == std::string::npos, msg);
        } catch (const std::exception& e) {
          FAIL_CHECK("escaped: " << e.what() << " (" << seed.filename().string() << ", " << m.str(1) << ": " << w << ")");
        }
      }
    }
  }
  MESSAGE(tried << " values tried, " << rejected << " rejected");
  CHECK(tried > 300);
  CHECK(rejected > tried / 2);
  fs::remove_all(dir);
}
