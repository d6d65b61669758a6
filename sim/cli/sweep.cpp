// `dlcarbon sweep` and `dlcarbon merge` (docs/sweep.md): many points of one scenario, in
// parallel, sharded across processes, resumable, merged into one file.

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <ostream>
#include <set>
#include <thread>

#include "build_info.hpp"
#include "commands.hpp"
#include "dlcarbon/sweep.hpp"
#include "dlcarbon/text.hpp"
#include "options.hpp"

namespace fs = std::filesystem;

namespace dlcarbon::cli {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
const std::vector<std::string> kPointTables = {"sweep/points", "sweep/training", "sweep/inference", "sweep/deployments"};

// --- tables of rows ----------------------------------------------------------------------

template <class T>
Column one(const std::string& name, const std::string& units, T value) {
  return Column{name, units, std::vector<T>{value}};
}

// `t` with a first column `point` holding `point` on every row.
Table with_point(const std::string& path, const Table& t, std::int64_t point) {
  Table out{path, {Column{"point", "1", std::vector<std::int64_t>(t.rows(), point)}}};
  for (const auto& c : t.columns) out.columns.push_back(c);
  return out;
}

void append_rows(Table& into, const Table& from) {
  if (into.columns.empty()) {
    into.columns = from.columns;
    return;
  }
  if (into.columns.size() != from.columns.size()) throw OutputError(into.path + ": rows with different columns");
  for (std::size_t i = 0; i < into.columns.size(); ++i) {
    auto& to = into.columns[i];
    const auto& src = from.columns[i];
    if (to.name != src.name || to.values.index() != src.values.index()) {
      throw OutputError(into.path + ": column " + src.name + " differs between points");
    }
    std::visit(
        [&](auto& values) {
          const auto& more = std::get<std::decay_t<decltype(values)>>(src.values);
          values.insert(values.end(), more.begin(), more.end());
        },
        to.values);
  }
}

Table take_rows(const Table& t, const std::vector<std::size_t>& rows) {
  Table out{t.path, {}};
  for (const auto& c : t.columns) {
    Column d{c.name, c.units, {}};
    std::visit(
        [&](const auto& values) {
          std::decay_t<decltype(values)> picked;
          for (const auto r : rows) picked.push_back(values[r]);
          d.values = std::move(picked);
        },
        c.values);
    out.columns.push_back(std::move(d));
  }
  return out;
}

// --- one point ---------------------------------------------------------------------------

// The rows a finished point contributes to each of kPointTables.
using PointRows = std::map<std::string, Table>;

bool numeric_parameter(const SweepParameter& p) {
  if (p.ranged) return true;
  for (const double x : p.values_numeric) {
    if (std::isnan(x)) return false;
  }
  return true;
}

PointRows point_rows(const SweepSpec& spec, const SweepPoint& point, const ScenarioOutcome& o) {
  PointRows rows;
  Table points{"sweep/points", {Column{"point", "1", std::vector<std::int64_t>{point.index}}}};
  for (std::size_t j = 0; j < spec.parameters.size(); ++j) {
    const auto& p = spec.parameters[j];
    if (numeric_parameter(p)) {
      points.columns.push_back(one(p.key, p.unit.empty() ? "1" : p.unit, point.numeric[j]));
    } else {
      points.columns.push_back(one(p.key, "", point.shown[j]));
    }
  }
  std::string reason;
  // The jobs that cannot run, named as their summary table names them.
  const auto add_reason = [&](const std::string& table, std::size_t i, const std::string& why) {
    const Column* job = nullptr;
    for (const auto& t : o.record.tables) {
      if (t.path == table) job = t.find("job");
    }
    const std::string id = job ? std::get<std::vector<std::string>>(job->values).at(i) : std::to_string(i);
    reason += (reason.empty() ? "" : "; ") + id + ": " + why;
  };
  for (std::size_t i = 0; i < o.training.size(); ++i) {
    if (!o.training[i].ok) add_reason("summary/training", i, o.training[i].reason);
  }
  for (std::size_t i = 0; i < o.inference.size(); ++i) {
    if (!o.inference[i].ok) add_reason("summary/inference", i, o.inference[i].reason);
  }
  for (const auto& why : o.cannot_serve) reason += (reason.empty() ? "" : "; ") + why;
  for (const auto& why : o.beyond_reasons) reason += (reason.empty() ? "" : "; ") + why;
  double facility = 0, it = 0, loc = 0, mkt = 0, accel = 0;
  bool market = true;
  for (const auto& r : o.training) {
    facility += r.footprint.facility_energy_j;
    it += r.footprint.it_energy_j;
    loc += r.footprint.co2e_location_kg;
    accel += r.footprint.accelerator_time_s;
    market = market && r.footprint.co2e_market_kg.has_value();
    mkt += r.footprint.co2e_market_kg.value_or(0);
  }
  for (const auto& r : o.inference) {
    facility += r.facility_energy_j;
    it += r.it_energy_j;
    loc += r.co2e_location_kg;
    accel += r.accelerator_time_s;
    market = market && r.co2e_market_kg.has_value();
    mkt += r.co2e_market_kg.value_or(0);
  }
  if (o.life) {
    // The lifecycle holds the training runs (their part inside the horizon), serving, idle and
    // embodied carbon; the one-off inference jobs, which it does not bin (each is placed on its grid on its own),
    // are added whole.
    // Its market-based figure falls back to location-based where a site has no market figure.
    facility = o.life->energy_j;
    loc = o.life->co2e_location_kg;
    mkt = o.life->co2e_market_kg;
    market = true;
    for (const auto& r : o.inference) {
      facility += r.facility_energy_j;
      loc += r.co2e_location_kg;
      mkt += r.co2e_market_kg.value_or(r.co2e_location_kg);
    }
    // Neither the IT energy nor the accelerator-time of the lifecycle's runs (repeats, the horizon's
    // cut) is summed by it: NaN rather than one whole run a job (before session 31).
    it = kNaN;
    accel = kNaN;
  }
  if (!reason.empty()) facility = it = loc = mkt = accel = kNaN;  // no totals for a point that cannot run
  points.columns.push_back(one("status", "", std::string(reason.empty() ? "ok" : "cannot run")));
  points.columns.push_back(one("reason", "", reason));
  points.columns.push_back(one("facility_energy", "J", facility));
  points.columns.push_back(one("it_energy", "J", it));
  points.columns.push_back(one("co2e_location", "kgCO2e", loc));
  points.columns.push_back(one("co2e_market", "kgCO2e", market ? mkt : kNaN));
  points.columns.push_back(one("accelerator_time", "s", accel));
  points.columns.push_back(one("lifecycle", "1", std::int64_t{o.life ? 1 : 0}));
  rows["sweep/points"] = std::move(points);
  // (Tables without rows are left out: a resumed file, rebuilt from rows, would not have them.)
  for (const auto& t : o.record.tables) {
    if (t.rows() == 0) continue;
    if (t.path == "summary/training") rows["sweep/training"] = with_point("sweep/training", t, point.index);
    if (t.path == "summary/inference") rows["sweep/inference"] = with_point("sweep/inference", t, point.index);
    if (t.path == "lifecycle/deployments") rows["sweep/deployments"] = with_point("sweep/deployments", t, point.index);
  }
  // A point whose results are beyond what a double holds cannot run: its infinities are unknowns
  // (NaN) in the copied tables too, as its totals are (since session 34).
  // The entity a reason names ("id: why") is a row that cannot run: its status says why and its
  // figures are unknowns, finite or not (since session 44, a review: a job's row kept status ok and
  // figures past 1e300 where the point said it could not run).
  if (!o.beyond_reasons.empty()) {
    for (const auto& [name, section] : {std::pair<const char*, const char*>{"sweep/training", "training."},
                                        {"sweep/inference", "inference."}, {"sweep/deployments", "deployments."}}) {
      auto it = rows.find(name);
      if (it == rows.end()) continue;
      Table& t = it->second;
      const std::vector<std::string>* ids = nullptr;
      std::vector<std::string>* status = nullptr;
      for (auto& c : t.columns) {
        if (c.name == "job" || c.name == "deployment") ids = std::get_if<std::vector<std::string>>(&c.values);
        if (c.name == "status") status = std::get_if<std::vector<std::string>>(&c.values);
      }
      for (std::size_t row = 0; row < t.rows(); ++row) {
        // (Ids are unique within a section only: a reason is the row's where its key is the row's.)
        std::string why;
        for (std::size_t k = 0; k < o.beyond_reasons.size() && k < o.beyond_keys.size(); ++k) {
          if (ids && row < ids->size() && o.beyond_keys[k] == section + (*ids)[row]) {
            why = o.beyond_reasons[k].substr((*ids)[row].size() + 2);
          }
        }
        for (auto& c : t.columns) {
          if (auto* v = std::get_if<std::vector<double>>(&c.values); v && row < v->size()) {
            // (What a row that cannot run leaves unknown, as tables.cpp writes one: its step, time,
            // power, energy and carbon; its inputs, intensities and memory stay.)
            bool outcome = false;
            for (const char* part : {"energy", "co2e", "time", "duration", "power", "steps", "mfu"}) {
              outcome = outcome || c.name.find(part) != std::string::npos;
            }
            double& x = (*v)[row];
            if (std::isinf(x) || (!why.empty() && outcome)) x = kNaN;
          }
        }
        if (!why.empty() && status && row < status->size()) (*status)[row] = why;
      }
    }
  }
  return rows;
}

// --- the file ----------------------------------------------------------------------------

std::string this_build() { return std::string(build_info::version()) + " (" + build_info::git_sha() + ")"; }

// FNV-1a over the sweep file, the base scenario as resolved (the catalog entries it uses, its
// designs, its traces' rows), the text of every YAML file the loader read (the catalogs whole, so
// that an entry a swept value names is covered too, the scenario and its `extends` chain), and
// every CSV file under the data directory (the traces a swept value may name), and the files that
// the scenario files' entries and the swept values name (traces, growth series, graph files; since
// session 39): an edit to any of them makes another sweep. Since session 31 (before, the resolved scenario alone, which left
// out traces, trajectories, starts, profiles and the entries only swept values reach).
std::string fingerprint(const SweepSpec& spec, const Scenario& base, const fs::path& data_dir) {
  std::uint64_t h = 1469598103934665603ULL;
  const auto fold = [&](const std::string& s) {
    for (const unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;
    h *= 1099511628211ULL;
  };
  fold(spec.given_text);
  // The build: another build's points may hold other figures (since session 41, a review; before,
  // a rebuilt dlcarbon resumed a file whose points the old model had costed).
  fold(this_build());
  // The files swept values name (a trace beside the sweep file; since session 39), and those the
  // values of a key that ends in one of the naming keys name (`regions.X.trace.file: [a.csv]`,
  // `models.m.design.path`; since session 41, a review: an edit of such a file kept stale points).
  const fs::path sweep_folder = fs::path(spec.display).parent_path();
  fold(named_files_digest(spec.given_text, sweep_folder));
  std::string named;
  for (const auto& p : spec.parameters) {
    const std::string last = p.key.substr(p.key.rfind('.') + 1);
    if (last != "trace" && last != "file" && last != "path") continue;
    for (const auto& v : p.values_yaml) named += "- {" + last + ": " + v + "}\n";
  }
  fold(named_files_digest(named, sweep_folder));
  fold(base.resolved_yaml);
  fold(base.inputs_digest);
  // The traces (CSV; not the outputs a user may keep beside the catalogs), through linked folders
  // too, depth first in name order (so the walk, and which name a folder reached twice is folded
  // under, do not depend on the order the file system lists entries in); each real folder once,
  // so a link cycle ends; a folder that cannot be listed is left out (the loader, which runs
  // first, refuses one that holds the catalog's files: since session 43).
  std::set<fs::path> seen;
  std::vector<fs::path> folders{data_dir};
  std::vector<char> buffer(1 << 16);
  while (!folders.empty()) {
    const fs::path folder = folders.back();
    folders.pop_back();
    std::error_code ec;
    const fs::path real = fs::canonical(folder, ec);
    if (ec || !seen.insert(real).second) continue;
    std::vector<fs::path> entries;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) entries.push_back(it->path());
    std::sort(entries.begin(), entries.end());
    std::vector<fs::path> subfolders;
    for (const auto& entry : entries) {
      if (fs::is_directory(entry, ec)) {
        subfolders.push_back(entry);
      } else if (fs::is_regular_file(entry, ec) && entry.extension() == ".csv") {
        fold(entry.lexically_relative(data_dir).generic_string());
        std::ifstream in(entry, std::ios::binary);  // streamed: a trace may be large
        while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
          for (std::streamsize i = 0; i < in.gcount(); ++i) {
            h ^= static_cast<unsigned char>(buffer[static_cast<std::size_t>(i)]);
            h *= 1099511628211ULL;
          }
        }
        h ^= 0xff;
        h *= 1099511628211ULL;
      }
    }
    folders.insert(folders.end(), subfolders.rbegin(), subfolders.rend());  // the first name next
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

const char* method_name(SweepMethod m) {
  return m == SweepMethod::grid ? "grid" : m == SweepMethod::latin_hypercube ? "latin-hypercube" : "monte-carlo";
}

struct SweepFile {
  std::string name, method, fingerprint, sweep_text, scenario_text;
  std::string launch;  // the mpirun/srun/Slurm job that wrote it ("" outside one): --gather checks it
  std::string build;   // the dlcarbon that wrote it: "version (commit)"
  std::int64_t seed = 0, total = 0, shard_index = 0, shard_count = 1;
  Table parameters{"sweep/parameters", {}};
  std::map<std::int64_t, PointRows> done;  // by point index
};

RunRecord to_record(const SweepFile& f, std::int64_t in_shard) {
  RunRecord r;
  r.dlcarbon_version = build_info::version();
  r.git_sha = build_info::git_sha();
  r.created = utc_now_iso8601();
  r.scenario_name = f.name;
  r.seed = f.seed;
  r.scenario_given = f.sweep_text;
  r.scenario_resolved = f.scenario_text;
  const auto n_done = static_cast<std::int64_t>(f.done.size());
  r.tables.push_back(Table{"sweep/info",
                           {one("name", "", f.name), one("method", "", f.method), one("seed", "1", f.seed),
                            one("points", "1", f.total), one("shard", "1", f.shard_index),
                            one("shards", "1", f.shard_count), one("points_in_shard", "1", in_shard),
                            one("points_done", "1", n_done),
                            one("complete", "1", std::int64_t{n_done == in_shard ? 1 : 0}),
                            one("fingerprint", "", f.fingerprint), one("launch", "", f.launch)}});
  r.tables.push_back(f.parameters);
  for (const auto& path : kPointTables) {
    Table t{path, {}};
    for (const auto& [index, rows] : f.done) {
      if (const auto it = rows.find(path); it != rows.end()) append_rows(t, it->second);
    }
    if (!t.columns.empty()) r.tables.push_back(std::move(t));
  }
  return r;
}

template <class T>
T cell(const Table& t, const std::string& column, std::size_t row, const std::string& file) {
  const Column* c = t.find(column);
  if (!c || !std::holds_alternative<std::vector<T>>(c->values) || std::get<std::vector<T>>(c->values).size() <= row) {
    throw InputError(file + ": not a dlcarbon sweep file (" + t.path + " has no column " + column + ")");
  }
  return std::get<std::vector<T>>(c->values)[row];
}

// Reads a file written by `sweep` or `merge`; InputError when it is not one.
SweepFile read_sweep_file(const fs::path& path) {
  const std::string shown = text::printable(path.generic_string());
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(shown + ": no such file");  // (was "not an HDF5 file"; session 35)
  // A directory, FIFO or device is no sweep file: said at once (since session 39; before, a FIFO
  // held the reader until its guard gave up after 120 s).
  if (!fs::is_regular_file(path, ec)) {
    throw InputError(shown + ": not a dlcarbon sweep file (" +
                     (fs::is_directory(path, ec) ? "a directory" : "not a regular file: a device, FIFO or socket") + ")");
  }
  RunRecord r;
  try {
    r = read_run_guarded(path);
  } catch (const std::exception& e) {
    throw InputError(shown + ": cannot read it as a dlcarbon sweep file: " + e.what());
  }
  const Table* info = nullptr;
  SweepFile f;
  for (const auto& t : r.tables) {
    if (t.path == "sweep/info") info = &t;
    if (t.path == "sweep/parameters") f.parameters = t;
  }
  if (!info || info->rows() != 1) throw InputError(shown + ": not a dlcarbon sweep file (no sweep/info table)");
  f.name = cell<std::string>(*info, "name", 0, shown);
  f.method = cell<std::string>(*info, "method", 0, shown);
  f.seed = cell<std::int64_t>(*info, "seed", 0, shown);
  f.total = cell<std::int64_t>(*info, "points", 0, shown);
  f.shard_index = cell<std::int64_t>(*info, "shard", 0, shown);
  f.shard_count = cell<std::int64_t>(*info, "shards", 0, shown);
  f.fingerprint = cell<std::string>(*info, "fingerprint", 0, shown);
  if (info->find("launch")) f.launch = cell<std::string>(*info, "launch", 0, shown);
  f.sweep_text = r.scenario_given;
  f.scenario_text = r.scenario_resolved;
  f.build = r.dlcarbon_version + " (" + r.git_sha + ")";
  for (const auto& t : r.tables) {
    if (std::find(kPointTables.begin(), kPointTables.end(), t.path) == kPointTables.end()) continue;
    std::map<std::int64_t, std::vector<std::size_t>> by_point;
    for (std::size_t row = 0; row < t.rows(); ++row) by_point[cell<std::int64_t>(t, "point", row, shown)].push_back(row);
    for (const auto& [point, rows] : by_point) f.done[point][t.path] = take_rows(t, rows);
  }
  if (f.total < 0 || f.shard_count < 1 || f.shard_index < 0 || f.shard_index >= f.shard_count) {
    throw InputError(shown + ": sweep/info's points, shard and shards are not a sweep's (" + std::to_string(f.total) + ", " +
                     std::to_string(f.shard_index) + ", " + std::to_string(f.shard_count) + ")");
  }
  for (const auto& [point, rows] : f.done) {
    if (!rows.count("sweep/points")) {
      throw InputError(shown + ": point " + std::to_string(point) + " has rows but no sweep/points row");
    }
    // Shards take points round robin: a point outside the sweep or of another shard is a damaged
    // or edited file (since session 37, a review: a resume indexed past the sweep's points).
    if (point < 0 || point >= f.total || point % f.shard_count != f.shard_index) {
      throw InputError(shown + ": point " + std::to_string(point) + " is not one of shard " + std::to_string(f.shard_index) +
                       " of " + std::to_string(f.shard_count) + " of a sweep of " + std::to_string(f.total) +
                       " points (a damaged or edited file?)");
    }
  }
  return f;
}

Table parameters_table(const SweepSpec& spec) {
  std::vector<std::string> key, values, scale, unit;
  std::vector<double> lo, hi;
  std::vector<std::int64_t> integer, numeric;
  for (const auto& p : spec.parameters) {
    key.push_back(p.key);
    numeric.push_back(numeric_parameter(p) ? 1 : 0);
    values.push_back(p.ranged ? "" : text::join(p.values_shown, " | "));
    // (A grid's range with steps keeps its range beside the values it became; since session 44, a
    // review: NaN.)
    lo.push_back(p.ranged || p.stepped ? p.lo : kNaN);
    hi.push_back(p.ranged || p.stepped ? p.hi : kNaN);
    scale.push_back(p.log_scale ? "log" : "linear");
    integer.push_back(p.integer ? 1 : 0);
    unit.push_back(p.unit);
  }
  return Table{"sweep/parameters",
               {Column{"key", "", key}, Column{"values", "", values}, Column{"range_low", "", lo},
                Column{"range_high", "", hi}, Column{"scale", "", scale}, Column{"integer", "1", integer},
                Column{"unit", "", unit}, Column{"numeric", "1", numeric}}};
}

fs::path shard_output(fs::path out, const Shard& shard) {
  if (shard.count == 1) return out;
  const std::string stem = out.stem().string(), ext = out.extension().string();
  return out.replace_filename(stem + ".shard-" + std::to_string(shard.index) + "-of-" + std::to_string(shard.count) + ext);
}

std::string describe(const SweepPoint& p, const SweepSpec& spec) {
  std::vector<std::string> kv;
  for (std::size_t j = 0; j < spec.parameters.size(); ++j) kv.push_back(spec.parameters[j].key + "=" + p.shown[j]);
  return "sweep point " + std::to_string(p.index) + ": " + text::join(kv, ", ");
}

// Each table's columns, by the first point that had the table, to tell the files of two versions
// of dlcarbon apart (a point without a table, such as one whose jobs have no rows there, is not a
// difference). Returns a message naming the first table whose columns differ, or "".
std::string other_columns(std::map<std::string, std::string>& seen, const PointRows& rows) {
  for (const auto& [path, table] : rows) {
    std::string names;
    for (const auto& c : table.columns) names += c.name + ",";
    const auto [it, inserted] = seen.emplace(path, names);
    if (!inserted && it->second != names) return "its " + path + " table has other columns";
  }
  return "";
}

// The shard files of one sweep, joined; InputError for files of other sweeps, a point twice, or
// shards whose tables have other columns (written by another version).
SweepFile merge_files(const std::vector<std::string>& names) {
  SweepFile merged;
  std::map<std::int64_t, std::string> from;
  std::string first;
  std::map<std::string, std::string> columns;
  for (const auto& name : names) {
    SweepFile f = read_sweep_file(name);
    if (first.empty()) {
      merged.name = f.name;
      merged.method = f.method;
      merged.seed = f.seed;
      merged.total = f.total;
      merged.fingerprint = f.fingerprint;
      merged.build = f.build;
      merged.sweep_text = f.sweep_text;
      merged.scenario_text = f.scenario_text;
      merged.parameters = f.parameters;
      first = name;
    } else if (f.fingerprint != merged.fingerprint || f.total != merged.total) {
      if (f.build != merged.build) {
        throw InputError(name + ": written by another build of dlcarbon (" + f.build + ") than " + first + " (" +
                         merged.build + "); run every shard with one build");
      }
      throw InputError(name + ": a shard of another sweep (" + f.name + ") or of an edited sweep or scenario; " +
                       "expected shards of " + merged.name + " like " + first);
    }
    for (auto& [point, rows] : f.done) {
      // Since session 36 (a review's finding: the new summary columns made a shard of the previous
      // build an internal failure at the merge); per table since session 37.
      if (const std::string why = other_columns(columns, rows); !why.empty()) {
        throw InputError(name + ": " + why + " than " + first +
                         "'s (written by another version of dlcarbon?); run every shard with one build");
      }
      if (const auto it = from.find(point); it != from.end()) {
        throw InputError(name + ": point " + std::to_string(point) + " is also in " + it->second +
                         " (give each shard once)");
      }
      from[point] = name;
      merged.done[point] = std::move(rows);
    }
  }
  return merged;
}

// Whether a shard file is there, finished (a checkpoint of a running shard is not) and, inside
// an mpirun/srun/Slurm job, written by this job (not a file left by an earlier one).
// Why a sweep file cannot be resumed as `ours` (its shard), or "".
std::string not_resumable(const fs::path& path, const SweepFile& f, const SweepFile& ours) {
  if (f.fingerprint == ours.fingerprint && f.shard_index == ours.shard_index && f.shard_count == ours.shard_count &&
      f.total == ours.total) {
    return "";
  }
  if (f.build != this_build()) {
    return path.generic_string() + ": written by another build of dlcarbon (" + f.build + "; this is " + this_build() +
           "), whose points may hold other figures";
  }
  return path.generic_string() + ": holds another sweep (" + f.name + ", shard " + std::to_string(f.shard_index) + "/" +
         std::to_string(f.shard_count) + ") or an edited sweep or scenario";
}

// And of this sweep: its fingerprint, points and shards (since session 42, a review: outside a
// launcher any complete file was taken, so a gather re-run with --fresh after an edit merged, or
// refused, the other shards' old files instead of waiting for their new ones).
bool shard_complete(const fs::path& path, const std::string& launch, const SweepFile& expected) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return false;
  try {
    if (!not_resumable(path, read_sweep_file(path), expected).empty()) return false;
    for (const auto& t : read_run_guarded(path).tables) {
      if (t.path != "sweep/info") continue;
      const Column* c = t.find("complete");
      const Column* l = t.find("launch");
      const bool done = c && std::holds_alternative<std::vector<std::int64_t>>(c->values) &&
                        std::get<std::vector<std::int64_t>>(c->values).at(0) == 1;
      const bool ours = launch.empty() || (l && std::holds_alternative<std::vector<std::string>>(l->values) &&
                                           std::get<std::vector<std::string>>(l->values).at(0) == launch);
      return done && ours;
    }
  } catch (const std::exception&) {
  }
  return false;
}

}  // namespace

int command_sweep(const std::vector<std::string>& args, Streams io) {
  const std::string usage =
      "usage: dlcarbon sweep SWEEP.yaml [-o OUT.h5] [--shard I/N|auto [--gather]] [--threads N] [--fresh] [--data-dir DIR] [--quiet]\n"
      "Runs every point of a sweep (docs/sweep.md) and writes one HDF5 file with a row per point.";
  po::options_description visible("options");
  visible.add_options()("output,o", po::value<std::string>(), "output file (default: <sweep name>.h5)")(
      "shard", po::value<std::string>()->default_value("0/1"),
      "run only shard I of N (0-based; writes OUT.shard-I-of-N.h5; then `dlcarbon merge`), or auto from mpirun/srun/Slurm arrays")(
      "threads", po::value<int>()->default_value(0), "points run in parallel on this many threads (0: all cores)")(
      "fresh", "start over even if the output file holds finished points of this sweep")(
      "gather", "with --shard: shard 0, once done, waits for the other shards' files and merges them into OUT.h5 "
      "(mpirun or srun on a shared file system)")(
      "data-dir", po::value<std::string>(), "catalog directory (default: $DLCARBON_DATA_DIR or the source tree's data/)")(
      "quiet,q", "print nothing but errors");
  po::options_description hidden;
  hidden.add_options()("sweep", po::value<std::string>(), "");
  po::positional_options_description positional;
  positional.add("sweep", 1);
  po::variables_map vm;
  if (auto code = parse_options(args, usage, visible, positional, hidden, vm, io)) return *code;
  if (!vm.count("sweep")) {
    io.err << "dlcarbon sweep: missing the sweep file\n" << usage << "\n";
    return kBadInput;
  }
  const int threads = threads_option(vm);
  // --gather merges the shards of a sharded launch; alone it would do nothing (since session 35;
  // before, ignored).
  if (vm.count("gather") && vm["shard"].defaulted()) {
    io.err << "dlcarbon sweep: --gather needs --shard (I/N or auto): it merges the shards' files\n" << usage << "\n";
    return kBadInput;
  }
  const Shard shard = parse_shard(vm["shard"].as<std::string>());
  const auto started = std::chrono::steady_clock::now();

  const SweepSpec spec = load_sweep_spec(vm["sweep"].as<std::string>());
  const std::vector<SweepPoint> points = expand_sweep(spec);
  const fs::path data_dir = data_dir_option(vm);
  const fs::path whole = vm.count("output") ? fs::path(vm["output"].as<std::string>()) : fs::path(spec.name + ".h5");
  const fs::path out = shard_output(whole, shard);
  check_output_path(out);
  const bool gather = vm.count("gather") && shard.count > 1 && shard.index == 0;
  if (gather) check_output_path(whole);

  // The base scenario alone must load: its errors are reported as they are, not per point.
  LoadOptions base_options{data_dir, {}};
  const Scenario base = load_scenario(spec.scenario, base_options);
  // Again now that the sweep's inputs are known (the base scenario, its catalog, traces and graph
  // files): the output must not replace one of them (since session 35; before, `-o base.yaml
  // --fresh` overwrote the base scenario).
  check_output_path(out);
  if (gather) check_output_path(whole);

  SweepFile file;
  file.name = spec.name;
  file.method = method_name(spec.method);
  file.seed = static_cast<std::int64_t>(spec.seed);
  file.total = static_cast<std::int64_t>(points.size());
  file.shard_index = shard.index;
  file.shard_count = shard.count;
  file.sweep_text = spec.given_text;
  file.scenario_text = base.given_text;
  file.fingerprint = fingerprint(spec, base, data_dir);
  file.launch = launch_token();
  file.parameters = parameters_table(spec);

  const std::vector<std::int64_t> mine = shard_points(file.total, shard);
  // Every point's scenario is loaded and checked before anything runs or is written: a bad
  // value is bad input (exit 2, nothing written), whichever point it is in. A shard checks its own
  // points (docs/sweep.md), and a gathering shard 0 all of them.
  {
    std::mutex m;
    std::int64_t first_bad = -1;
    std::string message;
    // Shard 0 of a gathering job checks every point: a bad value in another shard stops that
    // shard before it writes anything, and shard 0 would wait for it forever.
    const std::vector<std::int64_t> to_check = gather ? shard_points(file.total, Shard{}) : mine;
    run_points(to_check, threads, [&](std::int64_t i) {
      const SweepPoint& p = points[static_cast<std::size_t>(i)];
      try {
        LoadOptions o{data_dir, p.overrides};
        check_costable(load_scenario(spec.scenario, o));
      } catch (const InputError& e) {
        std::lock_guard<std::mutex> lock(m);
        if (first_bad < 0 || i < first_bad) {
          first_bad = i;
          message = std::string(e.what()) + " (in " + describe(p, spec) + ")";
        }
      }
    }, [](std::size_t) {});
    if (first_bad >= 0) throw InputError(message);
  }
  // Once more with the files only the points read (a trace a swept value names; since session 37,
  // a review: `--fresh -o` of such a trace overwrote it).
  check_output_path(out);
  if (gather) check_output_path(whole);

  std::error_code ec;
  std::size_t resumed = 0;
  if (!vm.count("fresh") && fs::exists(out, ec)) {
    SweepFile before = read_sweep_file(out);
    if (const std::string why = not_resumable(out, before, file); !why.empty()) {
      throw InputError(why + "; use --fresh to overwrite it, or another -o");
    }
    file.done = std::move(before.done);
    resumed = file.done.size();
  }
  // Shard 0 of a gathering launch waits for the others' files. A shard that will refuse its old file
  // (another sweep's, or none it can read) writes none, and the wait would never end: the test it
  // will make is made here first (since session 41, a review; before, shard 0 waited forever).
  if (gather && !vm.count("fresh")) {
    for (std::int64_t i = 1; i < shard.count; ++i) {
      const fs::path other = shard_output(whole, Shard{i, shard.count});
      if (!fs::exists(other, ec)) continue;
      std::string why;
      try {
        SweepFile theirs = file;
        theirs.shard_index = i;
        why = not_resumable(other, read_sweep_file(other), theirs);
      } catch (const InputError& e) {
        why = e.what();
      }
      if (!why.empty()) {
        throw InputError(why + ": shard " + std::to_string(i) + " will refuse it, and this gather would wait for it " +
                         "forever; use --fresh (every shard), or remove it");
      }
    }
  }
  std::vector<std::int64_t> todo;
  for (const auto i : mine) {
    if (!file.done.count(i)) todo.push_back(i);
  }
  const std::size_t to_run = todo.size();
  const auto run_point = [&](std::int64_t i) {
    const SweepPoint& p = points[static_cast<std::size_t>(i)];
    LoadOptions o{data_dir, p.overrides};
    const Scenario s = load_scenario(spec.scenario, o);
    return point_rows(spec, p, simulate_scenario(s, 1));
  };
  // A file written by another build of dlcarbon (other table columns) cannot be continued: the
  // first new point is run alone and compared with the kept ones before the others run (since
  // session 37; before, an internal failure when the file was written, after every point ran).
  if (resumed > 0 && !todo.empty()) {
    std::map<std::string, std::string> columns;
    for (const auto& [i, rows] : file.done) other_columns(columns, rows);
    PointRows rows = run_point(todo.front());
    if (const std::string why = other_columns(columns, rows); !why.empty()) {
      throw InputError(out.generic_string() + ": " + why + " than this build writes (written by another version " +
                       "of dlcarbon?); use --fresh to start it over, or another -o");
    }
    file.done[todo.front()] = std::move(rows);
    todo.erase(todo.begin());
  }

  const bool tty = !vm.count("quiet") && isatty(STDERR_FILENO);
  std::mutex m;
  auto last_write = std::chrono::steady_clock::now();
  const auto in_shard = static_cast<std::int64_t>(mine.size());
  run_points(todo, threads, [&](std::int64_t i) {
    PointRows rows = run_point(i);
    std::lock_guard<std::mutex> lock(m);
    file.done[i] = std::move(rows);
  }, [&](std::size_t n) {
    // A checkpoint every 30 s: a killed sweep keeps what it finished (a rerun resumes).
    const auto now = std::chrono::steady_clock::now();
    if (n < todo.size() && std::chrono::duration<double>(now - last_write).count() >= 30) {
      write_run(out, to_record(file, in_shard));
      last_write = now;
    }
    if (tty) io.err << "\r  " << n << "/" << todo.size() << " points" << std::flush;
  });
  if (tty && !todo.empty()) io.err << "\r";
  write_run(out, to_record(file, in_shard));

  if (!vm.count("quiet")) {
    // Integer steps that coincide are run once: said, with the values they gave (since session 45,
    // a review: 5 steps over [1, 2] ran 2 points without a word).
    for (const auto& p : spec.parameters) {
      if (!p.stepped || static_cast<std::int64_t>(p.values_numeric.size()) >= p.steps) continue;
      io.out << "dlcarbon: sweep " << spec.name << ": " << p.key << ": " << p.steps << " steps over the integers from "
             << format_number(p.lo, 17) << " to " << format_number(p.hi, 17) << " give " << p.values_numeric.size()
             << " distinct values\n";
    }
    // The points that cannot run, each with its reason (the first few; all are in the file).
    std::int64_t cannot = 0;
    for (const auto& [i, rows] : file.done) {
      const Table& row = rows.at("sweep/points");
      if (cell<std::string>(row, "status", 0, out.generic_string()) == "ok") continue;
      if (++cannot <= 5) {
        io.err << "dlcarbon: " << describe(points[static_cast<std::size_t>(i)], spec) << ": cannot run: "
               << cell<std::string>(row, "reason", 0, out.generic_string()) << "\n";
      }
    }
    if (cannot > 5) io.err << "dlcarbon: ... and " << cannot - 5 << " more points that cannot run\n";
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    io.out << "dlcarbon: sweep " << spec.name << ": " << file.done.size() << " of " << file.total << " points"
           << (shard.count > 1 ? " (shard " + std::to_string(shard.index) + " of " + std::to_string(shard.count) + ")" : "")
           << ", " << to_run << " run, " << resumed << " kept from the file, " << cannot
           << " cannot run (reason in sweep/points), " << format_number(seconds, 3) << " s -> " << out.string() << "\n";
  }
  if (gather) {
    // Shard 0 gathers: once every shard's file is complete, merge them into the whole file.
    std::vector<std::string> names;
    for (std::int64_t i = 0; i < shard.count; ++i) names.push_back(shard_output(whole, Shard{i, shard.count}).string());
    auto last_note = std::chrono::steady_clock::now() - std::chrono::hours(1);
    for (;;) {
      std::vector<std::string> waiting;
      for (const auto& n : names) {
        SweepFile theirs = file;
        theirs.shard_index = static_cast<std::int64_t>(&n - names.data());
        if (!shard_complete(n, file.launch, theirs)) waiting.push_back(n);
      }
      if (waiting.empty()) break;
      if (!vm.count("quiet") && std::chrono::steady_clock::now() - last_note > std::chrono::minutes(1)) {
        // A complete file of another sweep or build is waited past (its shard may be rewriting it);
        // the note says so, so that a shard run with another build or data is found (since session 42).
        std::string why;
        try {
          SweepFile theirs = file;
          theirs.shard_index = static_cast<std::int64_t>(std::find(names.begin(), names.end(), waiting.front()) - names.begin());
          std::error_code exists_ec;
          if (fs::exists(waiting.front(), exists_ec)) why = not_resumable(waiting.front(), read_sweep_file(waiting.front()), theirs);
        } catch (const std::exception&) {
        }
        io.err << "dlcarbon: sweep " << spec.name << ": waiting for " << waiting.size() << " shard file(s) to complete, e.g. "
               << waiting.front() << (why.empty() ? "" : " (there now: " + why + ")") << "\n";
        last_note = std::chrono::steady_clock::now();
      }
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    const SweepFile merged = merge_files(names);
    write_run(whole, to_record(merged, merged.total));
    if (!vm.count("quiet")) {
      io.out << "dlcarbon: sweep " << spec.name << ": gathered " << shard.count << " shards, " << merged.done.size() << " of "
             << merged.total << " points -> " << whole.string() << "\n";
    }
  }
  return kOk;
}

int command_merge(const std::vector<std::string>& args, Streams io) {
  const std::string usage =
      "usage: dlcarbon merge -o OUT.h5 SHARD.h5 [SHARD.h5 ...] [--quiet]\n"
      "Merges the files of one sweep's shards (dlcarbon sweep --shard) into one file.";
  po::options_description visible("options");
  visible.add_options()("output,o", po::value<std::string>(), "the merged file")("quiet,q", "print nothing but errors");
  po::options_description hidden;
  hidden.add_options()("inputs", po::value<std::vector<std::string>>(), "");
  po::positional_options_description positional;
  positional.add("inputs", -1);
  po::variables_map vm;
  if (auto code = parse_options(args, usage, visible, positional, hidden, vm, io)) return *code;
  if (!vm.count("output") || !vm.count("inputs")) {
    io.err << "dlcarbon merge: needs -o OUT.h5 and at least one shard file\n" << usage << "\n";
    return kBadInput;
  }
  const fs::path out = vm["output"].as<std::string>();
  check_output_path(out);
  // The merged file must not replace a shard it reads (since session 35; before, `merge -o a.h5
  // a.h5 b.h5` overwrote its own input).
  for (const auto& input : vm["inputs"].as<std::vector<std::string>>()) {
    std::error_code ec;
    if (fs::equivalent(input, out, ec)) {
      throw InputError("--output: cannot write " + text::quoted(out.string()) + ": it is one of the shard files merged (" +
                       text::quoted(input) + "); name another file");
    }
  }
  const SweepFile merged = merge_files(vm["inputs"].as<std::vector<std::string>>());
  write_run(out, to_record(merged, merged.total));
  const auto missing = merged.total - static_cast<std::int64_t>(merged.done.size());
  if (!vm.count("quiet")) {
    io.out << "dlcarbon: merged " << vm["inputs"].as<std::vector<std::string>>().size() << " file(s) of sweep "
           << merged.name << ": " << merged.done.size() << " of " << merged.total << " points"
           << (missing ? " (" + std::to_string(missing) + " missing: run their shards, then merge again)" : "")
           << " -> " << out.string() << "\n";
  }
  return kOk;
}

}  // namespace dlcarbon::cli
