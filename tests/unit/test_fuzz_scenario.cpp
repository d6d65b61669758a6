// Mutation fuzzing of the scenario loader: valid scenarios with random bytes flipped, lines
// dropped, duplicated or truncated must load or fail with InputError; nothing else may escape
// (and under ASan/UBSan, nothing may touch memory it should not). Fixed seeds.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
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
    } catch (const std::exception& e) {
      FAIL_CHECK("escaped: " << e.what() << "\n--- input ---\n" << text);
    }
  }
  MESSAGE(loaded << " mutants loaded (" << simulated << " simulated), " << rejected << " rejected");
  CHECK(simulated >= 3);
  CHECK(rejected > 100);
  fs::remove_all(dir);
}
