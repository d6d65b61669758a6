#include "trace.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <mutex>
#include <sstream>

#include "dlcarbon/text.hpp"

namespace dlcarbon::detail {
namespace {

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) out.push_back(cell);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

// A CSV file that a scenario names: opened relative to the naming file; its errors give the
// CSV's own line and column with the key path of the naming value.
class CsvFile {
 public:
  CsvFile(const Value& named_by, const std::string& name, const std::string& key_path) : key_path_(key_path) {
    const std::filesystem::path base = std::filesystem::path(named_by.file ? *named_by.file : "").parent_path();
    const std::filesystem::path path = base / name;
    shown_ = path.lexically_normal().generic_string();
    // A directory reads as an empty file, a device or FIFO without end: neither is a CSV file
    // (since session 34).
    std::error_code ec;
    if (const auto st = std::filesystem::status(path, ec); !ec && std::filesystem::exists(st) && !std::filesystem::is_regular_file(st)) {
      named_by.fail("cannot read " + text::quoted(shown_) + ": " +
                    (std::filesystem::is_directory(st) ? "it is a directory" : "it is not a regular file (a device, FIFO or socket)"));
    }
    in_.open(path);
    if (!in_) named_by.fail("cannot read " + text::quoted(shown_) + ": " + std::strerror(errno));
    detail::note_file_read(path);
  }
  // The next non-empty line, without its line end; false at the end of the file.
  bool next(std::string& line) {
    while (std::getline(in_, line)) {
      ++number_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      // A UTF-8 byte order mark, as spreadsheets save CSV: not part of the header (since session
      // 39; before, the header's first name did not match).
      if (number_ == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
      if (!line.empty() || number_ == 1) return true;
    }
    return false;
  }
  int line_number() const { return number_; }
  [[noreturn]] void fail(int column, const std::string& what) const {
    throw InputError(format_input_error({shown_, std::max(1, number_), column}, key_path_, what));
  }

 private:
  std::ifstream in_;
  std::string shown_, key_path_;
  int number_ = 0;
};

// 1-based column where cell `c` starts.
int column_of(const std::vector<std::string>& cells, int c) {
  int col = 1;
  for (int i = 0; i < c && i < static_cast<int>(cells.size()); ++i) col += static_cast<int>(cells[static_cast<std::size_t>(i)].size()) + 1;
  return col;
}

}  // namespace

namespace {

// Traces already read in this process (a sweep loads its scenario once per point, and a trace
// of a year of hours is most of the loading time), by what the scenario names, the file's
// path, size and modification time. Only traces that read without error are kept.
struct TraceCache {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const IntensityTrace>> by_key;
};

TraceCache& trace_cache() {
  static TraceCache cache;
  return cache;
}

std::string trace_key(const Value& file_value, const std::string& named, const std::string& basis) {
  const std::filesystem::path base = std::filesystem::path(file_value.file ? *file_value.file : "").parent_path();
  std::error_code ec;
  const std::filesystem::path path = std::filesystem::absolute(base / named, ec);
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return "";
  const auto mtime = std::filesystem::last_write_time(path, ec);
  if (ec) return "";
  return named + "\n" + basis + "\n" + path.lexically_normal().string() + "\n" + std::to_string(size) + "\n" +
         std::to_string(mtime.time_since_epoch().count());
}

}  // namespace

// A decimal number as a CSV writes it: digits, one point, an exponent; not strtod's hexadecimal
// ("0x10"), "inf" or "nan" (since session 35; before, "0x10" was read as 16).
// Its value, spaces around it aside; none where the cell is not such a number.
static std::optional<double> plain_decimal(const std::string& cell) {
  const auto first = cell.find_first_not_of(" \t"), last = cell.find_last_not_of(" \t");
  if (first == std::string::npos) return std::nullopt;
  const std::string s = cell.substr(first, last - first + 1);
  if (s.find_first_not_of("0123456789.eE+-") != std::string::npos || s.find_first_of("0123456789") == std::string::npos) {
    return std::nullopt;
  }
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

std::shared_ptr<const IntensityTrace> read_trace(const Value& v) {
  const MapView m(v, {"file", "basis"});
  m.require("file");
  auto trace = std::make_shared<IntensityTrace>();
  const Value file_value = m.at("file");
  trace->file = read_text(file_value);
  trace->basis = m.has("basis") ? read_choice(m.at("basis"), {"direct", "lca"}) : "direct";
  const std::string key = trace_key(file_value, trace->file, trace->basis);
  if (!key.empty()) {
    std::lock_guard<std::mutex> lock(trace_cache().mutex);
    if (const auto it = trace_cache().by_key.find(key); it != trace_cache().by_key.end()) return it->second;
  }
  CsvFile csv(file_value, trace->file, v.path);
  std::string line;
  if (!csv.next(line)) csv.fail(1, "expected a header line, got an empty file");
  const auto header = split(line);
  int time_col = -1, value_col = -1;
  const std::string wanted = "gco2_per_kwh_" + trace->basis;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "datetime_utc" || header[i] == "date_utc") time_col = static_cast<int>(i);
    if (header[i] == wanted) value_col = static_cast<int>(i);
  }
  if (time_col < 0 || value_col < 0) {
    csv.fail(1, "expected a header with datetime_utc (or date_utc) and " + wanted + ", got " + text::quoted(line));
  }
  // A column this reads named twice: which one holds the times or values is not known (since
  // session 35; before, the last was read). Columns it does not read may repeat.
  for (std::size_t i = 0; i < header.size(); ++i) {
    const bool read = header[i] == wanted || header[i] == "datetime_utc" || header[i] == "date_utc";
    for (std::size_t j = i + 1; read && j < header.size(); ++j) {
      if (header[i] == header[j]) {
        csv.fail(1, "the header names column " + text::quoted(header[i]) + " twice (columns " + std::to_string(i + 1) + " and " +
                        std::to_string(j + 1) + ")");
      }
    }
  }
  // Both time columns: which one holds the times is not known (since session 38; before, the later
  // was read).
  {
    const auto dt = std::find(header.begin(), header.end(), "datetime_utc"), d = std::find(header.begin(), header.end(), "date_utc");
    if (dt != header.end() && d != header.end()) {
      csv.fail(1, "the header names both datetime_utc (column " + std::to_string(dt - header.begin() + 1) + ") and date_utc (column " +
                      std::to_string(d - header.begin() + 1) + "): keep one time column");
    }
  }
  std::vector<long long> row_times;  // every row's time, a blank value's too (the rows' interval)
  while (csv.next(line)) {
    const auto cells = split(line);
    // (A row longer than the header, since session 34, too: its cells would be misread.)
    // (A row shorter than the header, since session 35, too: a missing cell shifts the others.)
    if (cells.size() != header.size()) {
      csv.fail(1, "expected " + std::to_string(header.size()) + " columns, got " + std::to_string(cells.size()));
    }
    long long t = 0;
    const std::string& ts = cells[static_cast<std::size_t>(time_col)];
    if (!text::parse_utc_time(ts, t)) csv.fail(column_of(cells, time_col), "expected a UTC time (YYYY-MM-DD[ HH:MM:SS]), got " + text::quoted(ts));
    const std::string& vs = cells[static_cast<std::size_t>(value_col)];
    // Against every row before it, a blank value's too (since session 35; before, only the rows
    // with values: a blank row could repeat or precede the one before it).
    if (!row_times.empty() && t <= row_times.back()) {
      csv.fail(column_of(cells, time_col), "expected times in increasing order, got " + text::quoted(ts));
    }
    row_times.push_back(t);
    // A missing value: the previous one holds until the next row that has one; the first row with
    // a time has none before it (since session 34; before, "at least two rows of data").
    if (vs.empty() && trace->time_unix_s.empty()) {
      csv.fail(column_of(cells, value_col), "expected a value in the first row (a blank value repeats the one before it, and there is none)");
    }
    if (vs.empty()) continue;
    const auto parsed = plain_decimal(vs);
    const double g = parsed.value_or(-1);
    if (!parsed || !(g >= 0) || g > 1e5) {
      csv.fail(column_of(cells, value_col), "expected gCO2e/kWh from 0 to 100,000, got " + text::quoted(vs));
    }
    trace->time_unix_s.push_back(t);
    trace->kg_per_j.push_back(g * 1e-3 / 3.6e6);
  }
  // Blank values at the end hold the last value to the last row, which bounds the span the trace
  // covers (and repeats over): the held value is written at that row's time (since session 35;
  // before, the span ended at the last row with a value, and a trace ending in blanks repeated
  // that many rows early).
  if (!row_times.empty() && !trace->time_unix_s.empty() && row_times.back() > trace->time_unix_s.back()) {
    trace->time_unix_s.push_back(row_times.back());
    trace->kg_per_j.push_back(trace->kg_per_j.back());
  }
  if (trace->time_unix_s.size() < 2) csv.fail(1, "expected at least two rows of data");
  // The rows' interval: the most common gap between rows, blank values' rows included (the
  // smaller on a tie). Before session 31 the first gap, which a blank second value doubled; one
  // stray row does not set it either.
  std::map<long long, std::size_t> gaps;
  for (std::size_t i = 1; i < row_times.size(); ++i) ++gaps[row_times[i] - row_times[i - 1]];
  std::size_t most = 0;
  for (const auto& [gap, count] : gaps) {
    if (count > most) {
      most = count;
      trace->period_s = gap;
    }
  }
  if (!key.empty()) {
    std::lock_guard<std::mutex> lock(trace_cache().mutex);
    trace_cache().by_key.emplace(key, trace);
  }
  return trace;
}

}  // namespace dlcarbon::detail

namespace dlcarbon::detail {

// A growth trace: CSV with a header "time,value"; value[i] holds from time[i].
void read_growth_trace(const Value& file_value, Growth& g) {
  g.file = read_text(file_value);
  CsvFile csv(file_value, g.file, file_value.path);
  std::string line;
  if (!csv.next(line)) csv.fail(1, "expected a header line \"time,value\", got an empty file");
  if (split(line) != std::vector<std::string>{"time", "value"}) {
    csv.fail(1, "expected the header \"time,value\", got " + text::quoted(line));
  }
  while (csv.next(line)) {
    const auto cells = split(line);
    if (cells.size() != 2) csv.fail(1, "expected 2 columns, got " + std::to_string(cells.size()));
    long long t = 0;
    if (!text::parse_utc_time(cells[0], t)) {
      csv.fail(1, "expected a UTC time (YYYY-MM-DD[ HH:MM:SS]), got " + text::quoted(cells[0]));
    }
    const auto parsed = plain_decimal(cells[1]);
    const double x = parsed.value_or(-1);
    if (!parsed || !(x >= 0) || !std::isfinite(x)) {
      // (A number past a double's range says so, as a scenario's does; since session 47, a review.)
      csv.fail(column_of(cells, 1), "expected a number >= 0, got " + text::quoted(cells[1]) +
                                        (parsed && std::isinf(x) ? " (number out of range)" : ""));
    }
    if (!g.time_unix_s.empty() && t <= g.time_unix_s.back()) {
      csv.fail(1, "expected times in increasing order, got " + text::quoted(cells[0]));
    }
    g.time_unix_s.push_back(t);
    g.values.push_back(x);
  }
  if (g.values.empty()) csv.fail(1, "expected at least one row of data");
  g.form = Growth::Form::trace;
}

}  // namespace dlcarbon::detail
