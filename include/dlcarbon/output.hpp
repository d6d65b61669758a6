#pragma once
// The run record and its HDF5 file (docs/output-format.md). Only sim/output includes HDF5.
//
//   RunRecord r;
//   r.tables.push_back(Table{"summary/training", {...columns...}});
//   write_run("out.h5", r);          // written to a temporary name, renamed when complete
//   RunRecord back = read_run("out.h5");

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace dlcarbon {

inline constexpr std::int64_t kFormatVersion = 1;

struct Column {
  std::string name;
  std::string units;  // "J", "W", "s", "kgCO2e", "1"; "" for text
  std::variant<std::vector<double>, std::vector<std::int64_t>, std::vector<std::string>> values;
  std::size_t size() const;
};

struct Table {
  std::string path;  // e.g. "summary/training"
  std::vector<Column> columns;
  std::size_t rows() const { return columns.empty() ? 0 : columns.front().size(); }
  const Column* find(const std::string& name) const;
};

struct RunRecord {
  std::int64_t format_version = kFormatVersion;
  std::string dlcarbon_version, git_sha, created, scenario_name;
  std::int64_t seed = 0;
  std::string scenario_given, scenario_resolved;
  std::vector<Table> tables;
};

class OutputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes the record to `path` through `temporary_output(path)` and a rename; on any failure the
// temporary file is removed and OutputError is thrown.
void write_run(const std::filesystem::path& path, const RunRecord& record);

// The temporary file beside `path` that write_run writes first: `path.tmp-<pid>`, or, where that
// name would pass the 255 bytes a file name may have, `.dlcarbon-<pid>.tmp` in the same folder.
std::filesystem::path temporary_output(const std::filesystem::path& path);

// The file an output path names: itself, or where its symbolic links lead, followed link by link
// (a link to a file not yet written included). Empty when the chain loops or passes 40 links.
std::filesystem::path output_target(const std::filesystem::path& path);

// Reads a file written by write_run (all tables: groups with a `columns` attribute).
RunRecord read_run(const std::filesystem::path& path);
// The root's `scenario_name` alone (a cheap look at what wrote a file); "" where the file is not a
// dlcarbon HDF5 file or cannot be read.
std::string read_scenario_name(const std::filesystem::path& path);

}  // namespace dlcarbon
