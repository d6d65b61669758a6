#pragma once
// The dlcarbon command line: the only room that wires scenario -> cost -> output.

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace boost::program_options {
class variables_map;
}  // namespace boost::program_options

#include "dlcarbon/accounting.hpp"
#include "dlcarbon/lifecycle.hpp"
#include "dlcarbon/output.hpp"
#include "dlcarbon/scenario.hpp"
#include "dlcarbon/inference_cost.hpp"
#include "dlcarbon/training_cost.hpp"
#include "dlcarbon/units.hpp"

namespace dlcarbon::cli {

// Exit codes (docs/cli.md).
inline constexpr int kOk = 0;
inline constexpr int kFailure = 1;    // internal failure, or `validate` found rows out of tolerance
inline constexpr int kBadInput = 2;   // bad scenario, bad option: message names file, line, column, key

struct Streams {
  std::ostream& out;
  std::ostream& err;
};

int main(const std::vector<std::string>& args, Streams io);

int command_run(const std::vector<std::string>& args, Streams io);
int command_validate(const std::vector<std::string>& args, Streams io);
int command_inspect(const std::vector<std::string>& args, Streams io);
int command_calibrate(const std::vector<std::string>& args, Streams io);
int command_sweep(const std::vector<std::string>& args, Streams io);
int command_merge(const std::vector<std::string>& args, Streams io);

// Shared by the subcommands.
std::filesystem::path default_data_dir();
// --data-dir if given (not empty: bad input), else default_data_dir().
std::filesystem::path data_dir_option(const boost::program_options::variables_map& vm);
std::filesystem::path default_scenario_dir();
RunRecord make_run_record(const Scenario& scenario, const std::vector<TrainingResult>& results,
                          const std::vector<InferenceResult>& inference);
// Simulates the lifecycle and adds its tables (lifecycle/serving, timeseries, totals,
// deployments) to the record, through the writer's observer.
struct LifecycleTotals {
  std::uint64_t events = 0;
  // All phases, embodied included; market-based where a site has a market figure, else its
  // location-based value.
  double energy_j = 0, co2e_location_kg = 0, co2e_market_kg = 0;
  std::size_t runs_cut = 0;  // training runs wholly or partly outside the horizon
};
LifecycleTotals add_lifecycle(RunRecord& record, const lifecycle::LifecyclePlan& plan, int threads);
// Everything `run` computes for a scenario: the record to write, the results, and the
// messages of jobs that cannot run (does not fit in memory).
struct ScenarioOutcome {
  RunRecord record;
  std::vector<TrainingResult> training;
  std::vector<InferenceResult> inference;
  std::optional<LifecycleTotals> life;
  std::vector<std::string> failures;
  // Deployments that cannot run ("<id>: does not fit ..."), for a sweep point's reason.
  std::vector<std::string> cannot_serve;
  // Results beyond what a double holds (inf or NaN where a number was due: a growth, a fleet, a
  // grid trajectory or an inference count past 1e300), each "<file:line:col>: <key>: <why>" for a
  // run (bad input, nothing written) and "<id>: <why>" for a sweep point's reason (cannot run).
  std::vector<std::string> beyond, beyond_reasons;
  std::vector<std::string> beyond_keys;  // each reason's entity, "training.<id>" and the like
};
// InputError for an inference job or deployment that cannot be costed at all (a batch too large to
// size, hardware without a memory bandwidth, a request longer than a learned position table).
void check_costable(const Scenario& scenario);
ScenarioOutcome simulate_scenario(const Scenario& scenario, int threads);
// -o: InputError unless the file can be written there (its folder exists, it is not a folder).
void check_output_path(const std::filesystem::path& out);

// read_run, after reading the file once in a child process: a file damaged so that libhdf5 itself
// crashes (a segmentation fault in its heap code) or never finishes is an InputError naming it,
// not a crash of dlcarbon (since session 35). Other problems are read_run's OutputErrors.
RunRecord read_run_guarded(const std::filesystem::path& path);
std::string utc_now_iso8601();
std::string format_number(double value, int significant = 6);

}  // namespace dlcarbon::cli
