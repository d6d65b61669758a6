#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ostream>

#include "commands.hpp"
#include "dlcarbon/text.hpp"
#include "options.hpp"

namespace dlcarbon::cli {

int command_inspect(const std::vector<std::string>& args, Streams io) {
  const std::string usage =
      "usage: dlcarbon inspect FILE.h5 [--scenario]\n"
      "Prints the attributes and tables of a dlcarbon output file.";
  po::options_description visible("options");
  visible.add_options()("scenario", "also print the scenario as given and as resolved");
  po::options_description hidden;
  hidden.add_options()("file", po::value<std::string>(), "");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (auto code = parse_options(args, usage, visible, positional, hidden, vm, io)) return *code;
  if (!vm.count("file")) {
    io.err << "dlcarbon inspect: missing the file\n" << usage << "\n";
    return kBadInput;
  }
  const std::string path = vm["file"].as<std::string>();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    const auto st = std::filesystem::status(path, ec);
    const char* why = !std::filesystem::exists(st)        ? "no such file"
                      : std::filesystem::is_directory(st) ? "it is a directory"
                                                           : "it is not a regular file (a device, FIFO or socket)";
    io.err << path << ": cannot read the file: " << why << "\n";
    return kBadInput;
  }
  // A file it may not read is said so (since session 44, a review: "not an HDF5 file").
  if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
    std::fclose(f);
  } else {
    io.err << path << ": cannot read the file: " << std::strerror(errno) << "\n";
    return kBadInput;
  }
  RunRecord r;
  try {
    r = read_run_guarded(path);
  } catch (const OutputError& e) {
    io.err << path << ": not a dlcarbon output file (" << e.what() << ")\n";
    return kBadInput;
  }
  io.out << path << "\n"
         << "  format_version   " << r.format_version << "\n"
         << "  dlcarbon_version " << text::printable(r.dlcarbon_version) << "\n"
         << "  git_sha          " << text::printable(r.git_sha) << "\n"
         << "  created          " << text::printable(r.created) << "\n"
         << "  scenario_name    " << text::printable(r.scenario_name) << "\n"
         << "  seed             " << r.seed << "\n";
  if (vm.count("scenario")) {
    // Line by line, each printable: a file's text may hold terminal escapes (a review, session 44).
    const auto lines = [&](const std::string& text) {
      std::size_t at = 0;
      while (at < text.size()) {
        const std::size_t end = std::min(text.find('\n', at), text.size());
        io.out << text::printable(text.substr(at, end - at)) << "\n";
        at = end + 1;
      }
    };
    io.out << "\n/scenario/given:\n";
    lines(r.scenario_given);
    io.out << "\n/scenario/resolved:\n";
    lines(r.scenario_resolved);
  }
  for (const auto& t : r.tables) {
    io.out << "\n/" << text::printable(t.path) << " (" << t.rows() << " rows)\n";
    // One line per row, one "name = value units" per column: tables are narrow, columns many.
    for (std::size_t row = 0; row < t.rows(); ++row) {
      io.out << "  [" << row << "]\n";
      for (const auto& c : t.columns) {
        io.out << "    " << text::printable(c.name) << std::string(c.name.size() < 24 ? 24 - c.name.size() : 1, ' ');
        std::visit(
            [&](const auto& v) {
              using T = typename std::decay_t<decltype(v)>::value_type;
              if constexpr (std::is_same_v<T, double>) {
                io.out << format_number(v[row], 8);
              } else if constexpr (std::is_same_v<T, std::string>) {
                io.out << text::printable(v[row]);  // a file's text may hold escapes (a review, session 44)
              } else {
                io.out << v[row];
              }
            },
            c.values);
        if (!c.units.empty() && c.units != "1") io.out << " " << text::printable(c.units);
        io.out << "\n";
      }
    }
  }
  return kOk;
}

}  // namespace dlcarbon::cli
