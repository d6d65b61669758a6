#pragma once
// Option parsing shared by the subcommands (Boost.Program_options stays inside sim/cli).

#include <boost/program_options.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "commands.hpp"
#include "dlcarbon/error.hpp"

namespace dlcarbon::cli {

namespace po = boost::program_options;

// Parses `args` for one subcommand. Returns an exit code when parsing ends the command
// (--help printed, or a bad option reported), nothing when the command should go on.
inline std::optional<int> parse_options(const std::vector<std::string>& args, const std::string& usage,
                                        po::options_description& visible,
                                        const po::positional_options_description& positional,
                                        po::options_description& hidden, po::variables_map& vm,
                                        Streams io) {
  visible.add_options()("help,h", "show this help");
  po::options_description all;
  all.add(visible).add(hidden);
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help")) {
      io.out << usage << "\n" << visible << "\n";
      return kOk;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    io.err << "dlcarbon: " << e.what() << "\n" << usage << "\n";
    return kBadInput;
  }
  return std::nullopt;
}

// The --threads option of run and sweep: 0 (all cores) or a positive count up to kMaxThreads; else
// bad input (since session 43, a review: ten million threads crashed inside TBB's arena; more
// machines are MPI's or Slurm's, docs/sweep.md).
inline constexpr int kMaxThreads = 1024;
inline int threads_option(const po::variables_map& vm) {
  const int threads = vm["threads"].as<int>();
  if (threads < 0 || threads > kMaxThreads) {
    throw InputError("--threads: expected 0 (all cores) or a count from 1 to " + std::to_string(kMaxThreads) + ", got " +
                     std::to_string(threads));
  }
  return threads;
}

}  // namespace dlcarbon::cli
