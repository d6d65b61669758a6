#include "trace.hpp"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
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

}  // namespace

std::shared_ptr<const IntensityTrace> read_trace(const Value& v) {
  const MapView m(v, {"file", "basis"});
  m.require("file");
  auto trace = std::make_shared<IntensityTrace>();
  const Value file_value = m.at("file");
  trace->file = read_text(file_value);
  trace->basis = m.has("basis") ? read_choice(m.at("basis"), {"direct", "lca"}) : "direct";
  const std::filesystem::path base = std::filesystem::path(v.file ? *v.file : "").parent_path();
  const std::filesystem::path path = base / trace->file;
  const std::string shown_path = path.lexically_normal().generic_string();
  std::ifstream in(path);
  if (!in) file_value.fail("cannot read " + text::quoted(shown_path) + ": " + std::strerror(errno));
  auto fail_at = [&](int line, int column, const std::string& what) {
    throw InputError(format_input_error({shown_path, line, column}, v.path, what));
  };
  std::string line;
  if (!std::getline(in, line)) fail_at(1, 1, "expected a header line, got an empty file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split(line);
  int time_col = -1, value_col = -1;
  const std::string wanted = "gco2_per_kwh_" + trace->basis;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == "datetime_utc" || header[i] == "date_utc") time_col = static_cast<int>(i);
    if (header[i] == wanted) value_col = static_cast<int>(i);
  }
  if (time_col < 0 || value_col < 0) {
    fail_at(1, 1, "expected a header with datetime_utc (or date_utc) and " + wanted + ", got " + text::quoted(line));
  }
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto cells = split(line);
    auto column_of = [&](int c) {
      int col = 1;
      for (int i = 0; i < c && i < static_cast<int>(cells.size()); ++i) col += static_cast<int>(cells[static_cast<std::size_t>(i)].size()) + 1;
      return col;
    };
    if (static_cast<int>(cells.size()) <= std::max(time_col, value_col)) {
      fail_at(number, 1, "expected " + std::to_string(header.size()) + " columns, got " + std::to_string(cells.size()));
    }
    long long t = 0;
    const std::string& ts = cells[static_cast<std::size_t>(time_col)];
    if (!text::parse_utc_time(ts, t)) fail_at(number, column_of(time_col), "expected a UTC time (YYYY-MM-DD[ HH:MM:SS]), got " + text::quoted(ts));
    const std::string& vs = cells[static_cast<std::size_t>(value_col)];
    // A missing value: the previous one holds until the next row that has one.
    if (vs.empty()) {
      if (!trace->time_unix_s.empty() && t <= trace->time_unix_s.back()) {
        fail_at(number, column_of(time_col), "expected times in increasing order, got " + text::quoted(ts));
      }
      continue;
    }
    char* end = nullptr;
    const double g = std::strtod(vs.c_str(), &end);
    if (vs.empty() || end != vs.c_str() + vs.size() || !(g >= 0) || g > 1e5) {
      fail_at(number, column_of(value_col), "expected gCO2e/kWh >= 0, got " + text::quoted(vs));
    }
    if (!trace->time_unix_s.empty() && t <= trace->time_unix_s.back()) {
      fail_at(number, column_of(time_col), "expected times in increasing order, got " + text::quoted(ts));
    }
    trace->time_unix_s.push_back(t);
    trace->kg_per_j.push_back(g * 1e-3 / 3.6e6);
  }
  if (trace->time_unix_s.size() < 2) fail_at(number, 1, "expected at least two rows of data");
  trace->period_s = trace->time_unix_s[1] - trace->time_unix_s[0];
  return trace;
}

}  // namespace dlcarbon::detail

namespace dlcarbon::detail {

// A growth trace: CSV with a header "time,value"; value[i] holds from time[i].
void read_growth_trace(const Value& file_value, Growth& g) {
  g.file = read_text(file_value);
  const std::filesystem::path base = std::filesystem::path(file_value.file ? *file_value.file : "").parent_path();
  const std::filesystem::path path = base / g.file;
  const std::string shown = path.lexically_normal().generic_string();
  std::ifstream in(path);
  if (!in) file_value.fail("cannot read " + text::quoted(shown) + ": " + std::strerror(errno));
  auto fail_at = [&](int line, int column, const std::string& what) {
    throw InputError(format_input_error({shown, line, column}, file_value.path, what));
  };
  std::string line;
  if (!std::getline(in, line)) fail_at(1, 1, "expected a header line \"time,value\", got an empty file");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (split(line) != std::vector<std::string>{"time", "value"}) {
    fail_at(1, 1, "expected the header \"time,value\", got " + text::quoted(line));
  }
  int number = 1;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto cells = split(line);
    if (cells.size() != 2) fail_at(number, 1, "expected 2 columns, got " + std::to_string(cells.size()));
    long long t = 0;
    if (!text::parse_utc_time(cells[0], t)) {
      fail_at(number, 1, "expected a UTC time (YYYY-MM-DD[ HH:MM:SS]), got " + text::quoted(cells[0]));
    }
    char* end = nullptr;
    const double x = std::strtod(cells[1].c_str(), &end);
    if (cells[1].empty() || end != cells[1].c_str() + cells[1].size() || !(x >= 0) || !std::isfinite(x)) {
      fail_at(number, static_cast<int>(cells[0].size()) + 2, "expected a number >= 0, got " + text::quoted(cells[1]));
    }
    if (!g.time_unix_s.empty() && t <= g.time_unix_s.back()) {
      fail_at(number, 1, "expected times in increasing order, got " + text::quoted(cells[0]));
    }
    g.time_unix_s.push_back(t);
    g.values.push_back(x);
  }
  if (g.values.empty()) fail_at(number, 1, "expected at least one row of data");
  g.form = Growth::Form::trace;
}

}  // namespace dlcarbon::detail
