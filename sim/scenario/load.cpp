// Scenario loading: files -> layers -> resolved, checked structs.
//
// Every file (catalogs in data/, then the `extends` chain from base to the scenario
// itself) contributes *pieces*: one YAML map per entry, keyed by id. An entity is built by
// applying its pieces in order, so a later file updates an earlier entry key by key.
// Because pieces keep their own file name and key path, an error in a base file or a
// catalog points there, not at the file that extends it.
//
// This file: the layers, the builder, the catalogs' entities (regions, data centres, hardware,
// models), overrides and the scenario as a whole; load_jobs.cpp builds training and inference jobs,
// load_deployments.cpp deployments (the types they share: load_builder.hpp).

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <deque>
#include <fstream>
#include <map>
#include <set>

#include "dlcarbon/scenario.hpp"
#include "dlcarbon/text.hpp"
#include "design.hpp"
#include "load_builder.hpp"
#include "resolved.hpp"
#include "trace.hpp"
#include "yaml_reader.hpp"

namespace fs = std::filesystem;

namespace dlcarbon {
namespace load_detail {

const std::vector<std::string> kEntitySections = {"regions", "datacenters", "hardware", "models",
                                                  "training", "inference", "deployments"};
const std::vector<std::string> kScenarioKeys = {"schema_version", "extends",  "scenario",
                                                "regions",        "datacenters", "hardware",
                                                "models",         "training", "inference", "deployments"};
const std::vector<std::string> kFusions = {"none", "tensorflow1", "fairseq", "softmax", "elementwise", "attention", "flash1", "flash2", "flash3"};

void check_fusion_on(const Value& at, const std::string& fusion, const Hardware& h, const std::string& whose) {
  if (fusion == "tensorflow1" && h.kind == "tpu") {
    at.fail("tensorflow1 is TensorFlow 1.x's graph on a GPU without XLA, and " + whose + h.id +
            " is a TPU, where TensorFlow compiles through XLA: use elementwise (or none)");
  }
  if (fusion == "fairseq" && h.kind == "tpu") {
    at.fail("fairseq is fairseq's PyTorch kernels on a GPU, and " + whose + h.id + " is a TPU, which compiles through XLA: use elementwise (or none)");
  }
}
const std::vector<std::string> kPrecisions = {"fp32", "tf32", "fp16", "bf16", "fp8", "int8"};
const std::vector<std::string> kCatalogKeys = {"schema_version", "regions", "datacenters",
                                               "hardware", "models"};

std::string display_of(const fs::path& p) { return p.lexically_normal().generic_string(); }

void fold_bytes(std::uint64_t& h, const char* data, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 1099511628211ULL;
  }
  h ^= 0xff;
  h *= 1099511628211ULL;
}

// The files a scenario file's entries name (`trace:` of a region, `file:` of a growth series,
// `path:` of a graph file), folded into the inputs' digest with their text, whether or not an entry
// the scenario uses names them: a sweep's fingerprint then covers a trace beside the scenario that
// only a swept value reaches (since session 39; before, only CSV files under the data directory
// were, and an edit of such a trace kept the stale points on resume). A name that is no readable
// file is left to the loader, which refuses it where an entry in use names it.
// A catalog's entries: the same, but for the CSV files under the data directory, which a sweep folds
// whole already (`csv_folded`: that directory, canonical; since session 41, a review: a catalog's
// graph file or a trace outside the data directory was not folded).
void fold_named_files(const YAML::Node& node, const fs::path& folder, std::uint64_t& digest, int depth = 0,
                      const fs::path* csv_folded = nullptr) {
  if (depth > 64) return;  // the reader has refused deeper documents already
  if (node.IsSequence()) {
    for (const auto& item : node) fold_named_files(item, folder, digest, depth + 1, csv_folded);
    return;
  }
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : "";
    if ((key == "trace" || key == "file" || key == "path") && kv.second.IsScalar()) {
      const fs::path named = folder / kv.second.Scalar();
      std::error_code ec;
      if (!fs::is_regular_file(named, ec)) continue;
      if (csv_folded && named.extension() == ".csv") {
        const auto rel = fs::canonical(named, ec).lexically_relative(*csv_folded);
        if (!ec && !rel.empty() && *rel.begin() != "..") continue;
      }
      fold_bytes(digest, key.data(), key.size());
      std::ifstream in(named, std::ios::binary);  // streamed: a trace may be large
      std::vector<char> buffer(1 << 16);
      while (in.read(buffer.data(), static_cast<std::streamsize>(buffer.size())) || in.gcount() > 0) {
        fold_bytes(digest, buffer.data(), static_cast<std::size_t>(in.gcount()));
      }
    } else {
      fold_named_files(kv.second, folder, digest, depth + 1, csv_folded);
    }
  }
}

void load_layer(const fs::path& path, const std::string& display, bool catalog,
                std::vector<fs::path>& stack, Layers& layers, const Value* referenced_by,
                std::string* given_text) {
  std::string text;
  const SourceLocation from = referenced_by ? referenced_by->location() : SourceLocation{};
  const YAML::Node root =
      detail::read_yaml_file(path, display, text, from, referenced_by ? referenced_by->path : "");
  if (given_text) *given_text = text;
  // The text only: the same files named another way (a relative --data-dir) are the same inputs.
  fold_bytes(layers.digest, text.data(), text.size());
  if (!catalog) {
    fold_named_files(root, path.parent_path(), layers.digest);
  } else {
    // Catalogs' traces lie under the data directory, whose CSV files a sweep folds whole.
    std::error_code ec;
    const fs::path data_dir = fs::canonical(layers.data_dir, ec);
    fold_named_files(root, path.parent_path(), layers.digest, 0, ec ? nullptr : &data_dir);
  }
  layers.files.push_back(display);
  const std::string* file = &layers.files.back();
  const Value top{root, file, ""};
  const MapView map(top, catalog ? kCatalogKeys : kScenarioKeys);
  if (!map.has("schema_version")) {
    throw InputError(format_input_error({display, 1, 1}, "",
                                        "missing required key \"schema_version\" (this format is version 1)"));
  }
  const Value version = map.at("schema_version");
  if (!version.node.IsScalar() || version.node.Scalar() != std::to_string(kSchemaVersion)) {
    version.expected("1 (the only schema version so far)");
  }

  if (map.has("extends")) {
    const Value ext = map.at("extends");
    const std::string rel = detail::read_text(ext);
    const fs::path base = path.parent_path() / rel;
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(base, ec);
    for (const auto& seen : stack) {
      if (seen == canonical) {
        std::vector<std::string> chain;
        bool on = false;
        for (const auto& s : stack) {
          on = on || s == canonical;
          if (on) chain.push_back(s.filename().string());
        }
        chain.push_back(canonical.filename().string());
        ext.fail("circular extends: " + text::join(chain, " -> "));
      }
    }
    // Each file extends the next by a recursive call: a bound on the chain keeps a long one from
    // running out of stack (since session 43, a review: 4,000 files crashed).
    if (stack.size() >= kMaxChain) {
      ext.fail("a chain of extends longer than " + std::to_string(kMaxChain) + " files");
    }
    stack.push_back(canonical);
    load_layer(base, display_of(fs::path(display).parent_path() / rel), false, stack, layers, &ext,
               nullptr);
    stack.pop_back();
  }

  if (map.has("scenario")) layers.info.push_back(map.at("scenario"));

  for (const auto& name : kEntitySections) {
    if (!map.has(name)) continue;
    const Value list = map.at(name);
    if (list.node.IsNull()) continue;
    if (!list.node.IsSequence()) list.expected("a list of entries, each with an id");
    std::map<std::string, int> first_line;
    for (std::size_t i = 0; i < list.node.size(); ++i) {
      const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
      if (!item.node.IsMap()) item.expected("a map with an id");
      const YAML::Node id_node = item.node["id"];
      if (!id_node.IsDefined()) item.fail("missing required key \"id\"");
      const std::string id = detail::read_id(item.child(id_node, "id"));
      if (const auto it = first_line.find(id); it != first_line.end()) {
        item.child(id_node, "id").fail("duplicate id " + text::quoted(id) + " (first at line " +
                                       std::to_string(it->second) + ")");
      }
      first_line[id] = item.location().line;
      if (catalog) {
        const SourceLocation at = item.location();
        const std::string place = at.file + ":" + std::to_string(at.line);
        const auto [it, added] = layers.catalog_ids.emplace(name + "\n" + id, place);
        if (!added) {
          item.child(id_node, "id").fail("duplicate id " + text::quoted(id) + " in the catalog (first at " + it->second +
                                         "): a catalog entry is defined once; a scenario may extend it");
        }
      }
      layers.sections[name].add(id, item);
      if (name == "models" && !catalog) layers.scenario_model_ids.push_back(id);
    }
  }
}

void Builder::unknown(const std::string& noun, const Section& sec, const std::string& id,
                      const Value& ref) const {
  const std::string guess = text::closest(id, sec.order);
  std::vector<std::string> known = sec.order;
  std::sort(known.begin(), known.end());
  std::string msg = "unknown " + noun + " " + text::quoted(id);
  if (!guess.empty()) msg += "; did you mean " + text::quoted(guess) + "?";
  msg += known.empty() ? " (none defined)" : " (known: " + text::join(known) + ")";
  ref.fail(msg);
}

template <class T>
const T& Builder::get(const EntityKind<T>& kind, std::map<std::string, T>& cache, const std::string& id,
                      const Value& ref) {
  if (const auto it = cache.find(id); it != cache.end()) return it->second;
  const Section& sec = section(kind.section);
  const auto found = sec.by_id.find(id);
  if (found == sec.by_id.end()) unknown(kind.noun, sec, id, ref);
  const std::string key = kind.section + ":" + id;
  if (building_.count(key)) {
    // The loop, as the entries refer to one another (since session 47, a review: "a" from "b" from
    // "a" was said as "a" referring to itself).
    std::string loop;
    const auto at = std::find(building_order_.begin(), building_order_.end(), key);
    for (auto it = at; it != building_order_.end(); ++it) {
      if (it->compare(0, kind.section.size() + 1, kind.section + ":") != 0) continue;
      loop += text::quoted(it->substr(kind.section.size() + 1)) + " -> ";
    }
    ref.fail("circular reference: " + kind.noun + " " +
             (loop.empty() ? text::quoted(id) + " refers to itself" : loop + text::quoted(id)));
  }
  building_.insert(key);
  building_order_.push_back(key);
  std::size_t chain = 1;

  T entity{};
  std::set<std::string> seen;
  for (const Value& piece : found->second) {
    const YAML::Node from = piece.node["from"];
    if (from.IsDefined()) {
      const Value from_value = piece.child(from, "from");
      // As extends: a bound on the chain of entries built from others (since session 43, a review:
      // 7,000 hardware entries each `from` the next crashed).
      if (building_.size() >= kMaxChain) {
        from_value.fail("a chain of entries built with from (and the entries they refer to) longer than " +
                        std::to_string(kMaxChain));
      }
      const std::string base = detail::read_id(from_value);
      entity = get(kind, cache, base, from_value);
      seen.insert(kind.allowed.begin(), kind.allowed.end());
      // The chain's length, however its entries are ordered in the file (since session 47, a
      // review: entries each built from the one before were never counted).
      chain = std::max(chain, chain_[kind.section + ":" + base] + 1);
      if (chain > kMaxChain) {
        from_value.fail("a chain of entries built with from (and the entries they refer to) longer than " +
                        std::to_string(kMaxChain));
      }
    }
  }
  for (const Value& piece : found->second) {
    const MapView map(piece, kind.allowed);
    kind.apply(*this, map, entity);
    for (const auto& k : map.keys()) seen.insert(k);
  }
  const Value& last = found->second.back();
  for (const auto& req : kind.required) {
    if (!seen.count(req)) {
      std::string msg = "missing required key " + text::quoted(req);
      std::vector<std::string> others;
      for (const auto& o : sec.order) {
        if (o != id) others.push_back(o);
      }
      const std::string guess = text::closest(id, others);
      if (!guess.empty()) msg += " (or did you mean to update " + text::quoted(guess) + "?)";
      last.fail(msg);
    }
  }
  if (kind.finish) kind.finish(entity, last);
  building_.erase(key);
  building_order_.pop_back();
  chain_[key] = chain;
  return cache.emplace(id, std::move(entity)).first->second;
}

template <class T>
T Builder::ref(const EntityKind<T>& kind, std::map<std::string, T>& cache, const Value& v) {
  if (v.node.IsScalar()) return get(kind, cache, detail::read_id(v), v);
  if (!v.node.IsMap()) v.expected("a " + kind.noun + " id or a map with id and overrides");
  std::vector<std::string> allowed;
  for (const auto& k : kind.allowed) {
    if (k != "from") allowed.push_back(k);
  }
  const MapView map(v, allowed);
  map.require("id");
  const Value id = map.at("id");
  T copy = get(kind, cache, detail::read_id(id), id);
  kind.apply(*this, map, copy);
  if (kind.finish) kind.finish(copy, v);
  return copy;
}

void Builder::check_all() {
  const Value none{};
  for (const auto& id : section("regions").order) get(region_kind(), regions_, id, none);
  for (const auto& id : section("datacenters").order) get(datacenter_kind(), datacenters_, id, none);
  for (const auto& id : section("hardware").order) get(hardware_kind(), hardware_, id, none);
  for (const auto& id : section("models").order) get(model_kind(), models_, id, none);
}

GridRegion Builder::region_ref(const Value& v) {
  GridRegion r = ref(region_kind(), regions_, v);
  if (v.node.IsMap() && v.node.size() > 1) {
    // Keys besides the id: an override where its figures differ from the region as defined (since
    // session 41, a review: an edge site of an overridden region took the region's own id).
    const GridRegion& defined = get(region_kind(), regions_, r.id, v);
    r.inline_override = !(r.intensity_kg_per_j == defined.intensity_kg_per_j && r.year == defined.year &&
                          r.annual_change == defined.annual_change && r.trace == defined.trace);
  }
  return r;
}
Datacenter Builder::datacenter_ref(const Value& v) {
  Datacenter dc = ref(datacenter_kind(), datacenters_, v);
  if (v.node.IsMap() && v.node.size() > 1) {
    // Keys besides the id: an override where its figures differ from the data centre as defined.
    const Datacenter& defined = get(datacenter_kind(), datacenters_, dc.id, v);
    const GridRegion &a = dc.region, &b = defined.region;
    dc.inline_override = !(dc.pue == defined.pue && dc.market_intensity_kg_per_j == defined.market_intensity_kg_per_j &&
                           a.id == b.id && a.intensity_kg_per_j == b.intensity_kg_per_j && a.year == b.year &&
                           a.annual_change == b.annual_change && a.trace == b.trace);
  }
  return dc;
}
Hardware Builder::hardware_ref(const Value& v) { return ref(hardware_kind(), hardware_, v); }
const Model& Builder::model(const Value& v) {
  return get(model_kind(), models_, detail::read_id(v), v).model;
}
JobDraft Builder::training(const std::string& id) {
  return get(training_kind(), jobs_, id, Value{});
}

InferenceDraft Builder::inference(const std::string& id) {
  return get(inference_kind_table(), inference_jobs_, id, Value{});
}

DeploymentDraft Builder::deployment(const std::string& id) {
  return get(deployment_kind_table(), deployments_, id, Value{});
}

const std::vector<std::string>& Builder::section_keys(const std::string& name) {
  if (name == "regions") return region_kind().allowed;
  if (name == "datacenters") return datacenter_kind().allowed;
  if (name == "hardware") return hardware_kind().allowed;
  if (name == "models") return model_kind().allowed;
  if (name == "training") return training_kind().allowed;
  if (name == "inference") return inference_kind_table().allowed;
  return deployment_kind_table().allowed;
}

// "-5 %/year" -> -0.05: the relative change of a region's intensity per year after its `year`.
double read_trajectory(const Value& v) {
  const std::string what = "a change per year (e.g. \"-5 %/year\")";
  if (!v.node.IsScalar()) v.expected(what);
  std::string s = v.node.Scalar();
  std::string squashed;
  for (const char c : s) {
    if (c != ' ') squashed += c;
  }
  std::string number;
  for (const char* suffix : {"%/year", "%/yr"}) {
    const std::string tail = suffix;
    if (squashed.size() > tail.size() && squashed.compare(squashed.size() - tail.size(), tail.size(), tail) == 0) {
      number = squashed.substr(0, squashed.size() - tail.size());
    }
  }
  if (number.empty()) v.expected(what, "no %/year unit");
  // A growth may say its sign: "+20 %/year" (since session 42, a review: refused as if no number).
  if (number.size() > 1 && number.front() == '+' && number[1] != '-' && number[1] != '+') number.erase(0, 1);
  double x = 0;
  try {
    x = units::parse_quantity(number, Kind::ratio).value;
  } catch (const units::QuantityError&) {
    v.expected(what);
  }
  if (!(x > -100) || x > 1000) v.expected(what, "outside (-100, 1000] %");
  return x / 100;
}

// A device's service life, over which its embodied carbon is spread: an hour or more (since session
// 45, a review: "1e-320 years" was read, and the deployment using it failed as beyond what can be
// represented, named at the deployment, not at the lifetime).
double read_lifetime(const detail::Value& v) {
  const double s = detail::read_positive(v, Kind::time);
  if (s < 3600) v.expected("a lifetime of an hour or more (e.g. \"4 years\")");
  return s;
}

// A grid's intensity, as a trace's rows are bounded: at most 100,000 gCO2e/kWh (a hundred times the
// dirtiest grid; since session 45, a review: "1e6 kgCO2e/kWh" had been read as a region's).
void check_intensity(const detail::Value& v, double kg_per_j) {
  constexpr double kMaxKgPerJ = 100.0 / 3.6e6;  // 100,000 g/kWh
  if (kg_per_j > kMaxKgPerJ * (1 + 1e-12)) v.expected("an intensity from 0 to 100,000 gCO2e/kWh");
}

// --- regions ---------------------------------------------------------------------------

const EntityKind<GridRegion>& Builder::region_kind() {
  static const EntityKind<GridRegion> kind{
      "regions", "region",
      {"id", "from", "name", "zone", "intensity", "year", "basis", "trace", "trajectory", "source", "notes"},
      {"name", "intensity", "year", "source"},
      [](Builder&, const MapView& m, GridRegion& r) {
        if (m.has("id")) r.id = detail::read_id(m.at("id"));
        if (m.has("name")) r.name = detail::read_text(m.at("name"));
        if (m.has("zone")) r.zone = detail::read_text(m.at("zone"));
        if (m.has("intensity")) {
          r.intensity_kg_per_j = detail::read_non_negative(m.at("intensity"), Kind::intensity);
          check_intensity(m.at("intensity"), r.intensity_kg_per_j);
        }
        if (m.has("year")) {
          const double year = detail::read_number_in(m.at("year"), 1900, 2200, true, "a year from 1900 to 2200 (e.g. 2023)");
          if (year != std::floor(year)) m.at("year").expected("a whole year (e.g. 2023)");
          r.year = static_cast<int>(year);
        }
        if (m.has("basis")) r.basis = detail::read_text(m.at("basis"));
        if (m.has("trace")) r.trace = detail::read_trace(m.at("trace"));
        if (m.has("trajectory")) r.annual_change = read_trajectory(m.at("trajectory"));
        if (m.has("source")) r.source = detail::read_text(m.at("source"));
        if (m.has("notes")) r.notes = detail::read_text(m.at("notes"));
      },
      nullptr};
  return kind;
}

// --- datacenters -----------------------------------------------------------------------

const EntityKind<Datacenter>& Builder::datacenter_kind() {
  static const EntityKind<Datacenter> kind{
      "datacenters", "datacenter",
      {"id", "from", "name", "region", "pue", "market_intensity", "source", "notes"},
      {"region", "pue", "source"},
      [](Builder& b, const MapView& m, Datacenter& d) {
        if (m.has("id")) d.id = detail::read_id(m.at("id"));
        if (m.has("name")) d.name = detail::read_text(m.at("name"));
        if (m.has("region")) d.region = b.region_ref(m.at("region"));
        if (m.has("pue")) d.pue = detail::read_number_in(m.at("pue"), 1, 10, true, "a PUE from 1 to 10 (e.g. 1.58)");
        if (m.has("market_intensity")) {
          d.market_intensity_kg_per_j = detail::read_non_negative(m.at("market_intensity"), Kind::intensity);
          check_intensity(m.at("market_intensity"), *d.market_intensity_kg_per_j);
        }
        if (m.has("source")) d.source = detail::read_text(m.at("source"));
        if (m.has("notes")) d.notes = detail::read_text(m.at("notes"));
      },
      nullptr};
  return kind;
}

// --- hardware --------------------------------------------------------------------------

const EntityKind<Hardware>& Builder::hardware_kind() {
  static const EntityKind<Hardware> kind{
      "hardware", "hardware",
      {"id", "from", "name", "kind", "count_unit", "peak", "memory", "memory_bandwidth", "tdp",
       "idle_power", "max_power", "host_overhead", "embodied", "embodied_basis", "lifetime", "process_node", "die_area",
       "compute_units", "matrix_unit", "separate_cores", "vector_peak",
       "efficiency", "energy_roofline", "node", "source", "notes"},
      {"name", "kind", "count_unit", "peak", "tdp", "source"},
      [](Builder&, const MapView& m, Hardware& h) {
        if (m.has("id")) h.id = detail::read_id(m.at("id"));
        if (m.has("name")) h.name = detail::read_text(m.at("name"));
        if (m.has("kind")) h.kind = detail::read_choice(m.at("kind"), {"gpu", "tpu", "cpu", "soc", "npu"});
        if (m.has("count_unit")) {
          h.count_unit = detail::read_choice(m.at("count_unit"),
                                             {"chip", "core", "board", "package", "socket", "device"});
        }
        if (m.has("peak")) {
          const MapView peak(m.at("peak"), {"fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4", "fp4"});
          if (peak.keys().empty()) m.at("peak").expected("a map of dtype to peak rate (e.g. fp16: \"125 TFLOP/s\")");
          for (const auto& dtype : peak.keys()) {
            h.peak_flop_per_s[dtype] = detail::read_positive(peak.at(dtype), Kind::rate);
          }
        }
        if (m.has("vector_peak")) h.vector_peak_flop_per_s = detail::read_positive(m.at("vector_peak"), Kind::rate);
        if (m.has("memory")) h.memory_bytes = detail::read_positive(m.at("memory"), Kind::bytes);
        if (m.has("memory_bandwidth")) {
          h.memory_bandwidth_bytes_per_s = detail::read_positive(m.at("memory_bandwidth"), Kind::bandwidth);
        }
        if (m.has("tdp")) h.tdp_w = detail::read_positive(m.at("tdp"), Kind::power);
        if (m.has("idle_power")) h.idle_power_w = detail::read_non_negative(m.at("idle_power"), Kind::power);
        if (m.has("max_power")) h.max_power_w = detail::read_positive(m.at("max_power"), Kind::power);
        if (m.has("host_overhead")) h.host_overhead_w = detail::read_non_negative(m.at("host_overhead"), Kind::power);
        if (m.has("embodied")) h.embodied_kg = detail::read_non_negative(m.at("embodied"), Kind::co2e);
        if (m.has("embodied_basis")) h.embodied_basis = detail::read_text(m.at("embodied_basis"));
        if (m.has("lifetime")) h.lifetime_s = read_lifetime(m.at("lifetime"));
        if (m.has("compute_units")) h.compute_units = detail::read_positive_int(m.at("compute_units"));
        if (m.has("matrix_unit")) h.matrix_unit = detail::read_positive_int(m.at("matrix_unit"));
        if (m.has("separate_cores")) h.separate_cores = detail::read_positive_int(m.at("separate_cores"));
        if (m.has("process_node")) h.process_node = detail::read_text(m.at("process_node"));
        if (m.has("die_area")) detail::read_text(m.at("die_area"));
        if (m.has("efficiency")) {
          const MapView e(m.at("efficiency"),
                          {"gemm", "memory", "elementwise", "launch", "conv_nchw", "conv_nhwc", "gemm_shape", "attention", "precision", "misaligned",
                           "source"});
          e.require("source");
          if (e.has("gemm")) h.gemm_efficiency = detail::read_number_in(e.at("gemm"), 0, 1, false, "a fraction of peak in (0, 1]");
          if (e.has("memory")) {
            h.memory_efficiency = detail::read_number_in(e.at("memory"), 0, 1, false, "a fraction of bandwidth in (0, 1]");
          }
          if (e.has("elementwise")) {
            h.elementwise_efficiency = detail::read_number_in(e.at("elementwise"), 0, 1, false, "a fraction of bandwidth in (0, 1]");
          }
          if (e.has("launch")) h.kernel_launch_s = detail::read_non_negative(e.at("launch"), Kind::time);
          if (e.has("misaligned")) {
            h.misaligned_gemm = detail::read_number_in(e.at("misaligned"), 0, 1, false, "a fraction of the aligned rate in (0, 1]");
          }
          // t = F / (peak eta) x (1 + m0/m + n0/n + k0/k): overheads per row, column and reduction step.
          const auto read_shape = [](const Value& node, std::array<double, 3>& shape) {
            const MapView g(node, {"m", "n", "k"});
            for (const auto& [key, slot] : {std::pair{"m", 0}, std::pair{"n", 1}, std::pair{"k", 2}}) {
              if (g.has(key)) shape[static_cast<std::size_t>(slot)] = detail::read_non_negative(g.at(key), Kind::count);
            }
          };
          if (e.has("gemm_shape")) read_shape(e.at("gemm_shape"), h.gemm_shape);
          if (e.has("precision")) {
            // GEMM ceilings measured at one precision apart from the headline: {fp32: {gemm, gemm_shape}}.
            const MapView per(e.at("precision"), {"fp32", "tf32", "fp16", "bf16", "fp8", "int8"});
            for (const char* dtype : {"fp32", "tf32", "fp16", "bf16", "fp8", "int8"}) {
              if (!per.has(dtype)) continue;
              const MapView c(per.at(dtype), {"gemm", "gemm_shape"});
              c.require("gemm");
              Hardware::GemmCeiling ceiling;
              ceiling.efficiency = detail::read_number_in(c.at("gemm"), 0, 1, false, "a fraction of peak in (0, 1]");
              ceiling.shape = h.gemm_shape;  // the headline shape unless measured at this precision
              if (c.has("gemm_shape")) {
                ceiling.shape = {0, 0, 0};
                read_shape(c.at("gemm_shape"), ceiling.shape);
              }
              h.gemm_by_precision[dtype] = ceiling;
            }
          }
          for (const char* layout : {"nchw", "nhwc"}) {
            const std::string key = std::string("conv_") + layout;
            if (e.has(key)) {
              h.conv_efficiency[layout] = detail::read_number_in(e.at(key), 0, 1, false, "a fraction of peak in (0, 1]");
            }
          }
          if (e.has("attention")) {
            // Measured rates of fused attention kernels, by FlashAttention generation.
            const MapView a(e.at("attention"), {"flash1", "flash2", "flash3"});
            for (const char* kernel : {"flash1", "flash2", "flash3"}) {
              if (a.has(kernel)) {
                h.attention_efficiency[kernel] = detail::read_number_in(a.at(kernel), 0, 1, false, "a fraction of peak in (0, 1]");
              }
            }
          }
          h.efficiency_source = detail::read_text(e.at("source"));
        }
        if (m.has("energy_roofline")) {
          // E = F e_flop + B e_byte + P_static t, measured: all three terms and where they come from.
          const MapView e(m.at("energy_roofline"), {"e_flop", "e_byte", "static_power", "source"});
          e.require("e_flop");
          e.require("e_byte");
          e.require("static_power");
          e.require("source");
          Hardware::EnergyRoofline r;
          r.e_flop_j = detail::read_non_negative(e.at("e_flop"), Kind::energy);
          r.e_byte_j = detail::read_non_negative(e.at("e_byte"), Kind::energy);
          // A busy chip draws static power and spends energy on its work: a roofline of zeros would
          // make a job free (since session 36, from a review; either dynamic term alone may be 0).
          r.static_w = detail::read_positive(e.at("static_power"), Kind::power);
          if (r.e_flop_j <= 0 && r.e_byte_j <= 0) e.at("e_byte").fail("e_flop and e_byte are both 0: the work would cost no energy");
          r.source = detail::read_text(e.at("source"));
          h.energy_roofline = r;
        }
        if (m.has("node")) {
          const MapView n(m.at("node"), {"accelerators", "intra_bandwidth", "inter_bandwidth", "topology", "source"});
          n.require("source");
          if (n.has("accelerators")) h.node_accelerators = detail::read_positive_int(n.at("accelerators"));
          if (n.has("intra_bandwidth")) h.intra_node_bandwidth = detail::read_positive(n.at("intra_bandwidth"), Kind::bandwidth);
          if (n.has("inter_bandwidth")) h.inter_node_bandwidth = detail::read_positive(n.at("inter_bandwidth"), Kind::bandwidth);
          if (n.has("topology")) h.node_topology = detail::read_choice(n.at("topology"), {"switched", "torus-2d", "torus-3d"});
          h.node_source = detail::read_text(n.at("source"));
        }
        if (m.has("source")) h.source = detail::read_text(m.at("source"));
        if (m.has("notes")) h.notes = detail::read_text(m.at("notes"));
        if (h.idle_power_w && h.tdp_w > 0 && *h.idle_power_w > h.tdp_w) {
          m.at(m.has("idle_power") ? "idle_power" : "tdp").fail("idle power exceeds tdp");
        }
        if (h.max_power_w && h.tdp_w > 0 && *h.max_power_w > h.tdp_w) {
          m.at(m.has("max_power") ? "max_power" : "tdp").fail("max_power exceeds tdp");
        }
        if (h.max_power_w && h.idle_power_w && *h.idle_power_w > *h.max_power_w) {
          m.at(m.has("idle_power") ? "idle_power" : "max_power").fail("idle power exceeds max_power");
        }
        // Without idle_power the static power is a share of the TDP, which must leave the limit
        // room too (since session 44, a review: the work above it was free).
        if (h.max_power_w && !h.idle_power_w && Hardware::kDefaultStaticShare * h.tdp_w > *h.max_power_w) {
          char share[96];
          std::snprintf(share, sizeof share, "%g W, %g %% of tdp", Hardware::kDefaultStaticShare * h.tdp_w, 100 * Hardware::kDefaultStaticShare);
          m.at(m.has("max_power") ? "max_power" : "tdp")
              .fail("max_power is below the static power an entry without idle_power draws (" + std::string(share) + "): give idle_power");
        }
        // A measured static power above the power limit (inherited or overridden) would leave the
        // dynamic energy no room: checked wherever either is given.
        const double power_limit = h.max_power_w.value_or(h.tdp_w);
        if (h.energy_roofline && power_limit > 0 && h.energy_roofline->static_w > power_limit) {
          const std::string limit = h.max_power_w ? "max_power" : "tdp";
          if (m.has("energy_roofline")) {
            MapView(m.at("energy_roofline"), {"e_flop", "e_byte", "static_power", "source"})
                .at("static_power")
                .fail("static power exceeds " + limit);
          }
          // Only a piece that gives the limit can get here without the roofline: point at it.
          m.at(m.has(limit) ? limit : (m.has("max_power") ? "max_power" : "tdp"))
              .fail("the energy roofline's static power exceeds " + limit);
        }
      },
      nullptr};
  return kind;
}

// Whether a design has convolutions, the only ops a data layout (nchw, nhwc) changes: a ResNet, an
// LSTM's character CNN, a graph file's conv2d ops (a ViT's patch embedding is a product).
bool has_convolutions(const ModelDesign& design) {
  if (std::holds_alternative<ResNetDesign>(design)) return true;
  if (const auto* l = std::get_if<LstmDesign>(&design)) return !l->char_cnn.filters.empty();
  if (const auto* f = std::get_if<FileGraphDesign>(&design)) {
    return std::any_of(f->ops.begin(), f->ops.end(), [](const FileOp& o) { return o.kind == "conv2d"; });
  }
  return false;
}

// A layout given for a design without convolutions would change nothing: bad input (since session
// 42, a review: an inference job's `layout: nhwc` on a decoder was recorded and ignored).
void check_layout_key(const Value& at, const ModelDesign& design, const std::string& model_id) {
  if (std::holds_alternative<std::monostate>(design) || has_convolutions(design)) return;
  at.fail("layout is the data layout of convolutions (a ResNet, an LSTM's character CNN, a graph file's conv2d ops); model " +
          text::quoted(model_id) + " has none");
}

// --- models ----------------------------------------------------------------------------

const EntityKind<ModelDraft>& Builder::model_kind() {
  static const EntityKind<ModelDraft> kind{
      "models", "model",
      {"id", "from", "name", "params", "design", "layout", "source", "notes"},
      {},
      [](Builder& b, const MapView& m, ModelDraft& d) {
        if (m.has("id")) d.model.id = detail::read_id(m.at("id"));
        if (m.has("name")) d.model.name = detail::read_text(m.at("name"));
        if (m.has("params")) {
          d.model.params = detail::read_positive(m.at("params"), Kind::count);
          detail::check_count_noun(m.at("params"), Kind::count, {"param"});
        }
        if (m.has("design")) {
          d.model.design = detail::read_design(m.at("design"), b.graph_files());
          YAML::Emitter design;
          design << YAML::Flow << m.at("design").node;
          d.model.design_yaml = design.c_str();
        }
        if (m.has("layout")) {
          d.model.layout = detail::read_choice(m.at("layout"), {"nchw", "nhwc"});
          check_layout_key(m.at("layout"), d.model.design, d.model.id);
        }
        if (m.has("source")) d.model.source = detail::read_text(m.at("source"));
        if (m.has("notes")) detail::read_text(m.at("notes"));
      },
      nullptr};
  return kind;
}

// --- the scenario section --------------------------------------------------------------

void apply_info(const Value& v, ScenarioInfo& info, std::set<std::string>& seen) {
  const MapView m(v, {"name", "description", "start", "horizon", "seed", "resolution"});
  if (m.has("name")) {
    info.name = detail::read_id(m.at("name"));
  }
  if (m.has("description")) detail::read_text(m.at("description"));
  if (m.has("start")) info.start_unix_s = detail::read_date(m.at("start"), info.start);
  if (m.has("horizon")) {
    info.horizon_s = detail::read_positive(m.at("horizon"), Kind::time);
    // The lifecycle bins the horizon (hourly at the finest: 8.8 million bins over 1,000 years).
    if (info.horizon_s > kMaxSpanS) m.at("horizon").expected("a horizon of at most 1,000 years");
    // The lifecycle's times are seconds since 1970 in doubles: a horizon under a second may not
    // move the end past the start (since session 34; before, an internal failure).
    if (info.horizon_s < 1) m.at("horizon").expected("a horizon of at least 1 s");
  }
  if (m.has("resolution")) {
    info.resolution = detail::read_choice(m.at("resolution"), {"hour", "day", "month", "year"});
    info.resolution_at = m.at("resolution").location();
    info.resolution_given = true;
  }
  if (m.has("seed")) {
    const std::int64_t seed = detail::read_int(m.at("seed"));
    if (seed < 0) m.at("seed").expected("a seed >= 0");
    info.seed = static_cast<std::uint64_t>(seed);
  }
  for (const auto& k : m.keys()) seen.insert(k);
}

std::vector<fs::path> catalog_files(const fs::path& dir) {
  std::vector<fs::path> files;
  if (dir.empty()) return files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw InputError(format_input_error({dir.generic_string(), 0, 0}, "",
                                        fs::exists(dir, ec) ? "the data directory is not a directory (set --data-dir)"
                                                            : "the data directory does not exist (set --data-dir)"));
  }
  // A folder that cannot be read, a linked folder and a catalog file that is not a regular file are
  // said or followed, never skipped (since session 43, a review: an unreadable data directory had
  // run with no catalog at all, an unreadable or linked `hardware/` gave "none defined", and a FIFO
  // named .yaml was left out without a word). Links to folders are followed, as the sweep's
  // fingerprint of the catalog follows them.
  fs::path last = dir;
  auto unreadable = [&](const std::error_code& e) {
    return InputError(format_input_error({last.generic_string(), 0, 0}, "", "cannot read this catalog folder: " + e.message()));
  };
  auto it = fs::recursive_directory_iterator(dir, fs::directory_options::follow_directory_symlink, ec);
  if (ec) throw unreadable(ec);
  // Each real folder once: a link back up (`a -> .`) would walk round to the kernel's limit of 40
  // links, and two such links exponentially (a review of session 43).
  std::set<fs::path> folders{fs::weakly_canonical(dir, ec)};
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw unreadable(ec);
    last = it->path();
    std::error_code dir_ec;
    const bool folder = it->is_directory(dir_ec);
    // Hidden files and folders (an editor's lock link ".#name.yaml", ".ipynb_checkpoints/") are not
    // part of the catalog.
    if (it->path().filename().string().rfind('.', 0) == 0) {
      if (folder) it.disable_recursion_pending();
      continue;
    }
    if (folder) {
      std::error_code c_ec;
      const fs::path real = fs::weakly_canonical(it->path(), c_ec);
      if (!c_ec && !folders.insert(real).second) it.disable_recursion_pending();
      // (A folder named x.yaml is a folder: walked, not read.)
      continue;
    }
    // A catalog entry written to a .yml file would be skipped without a word: said instead (since
    // session 47, a review).
    if (it->path().extension() == ".yml") {
      throw InputError(format_input_error({it->path().generic_string(), 0, 0}, "",
                                          "catalog files end in .yaml; this .yml file would not be read (rename it)"));
    }
    if (it->path().extension() != ".yaml") continue;
    // A catalog file that a link leads to nowhere, or round in a loop, is said, not skipped or
    // thrown as an internal failure (since session 35).
    std::error_code st_ec;
    const bool regular = it->is_regular_file(st_ec);
    if (st_ec) {
      throw InputError(format_input_error({it->path().generic_string(), 0, 0}, "",
                                          "cannot read this catalog file: " + st_ec.message()));
    }
    if (!regular) {
      throw InputError(format_input_error({it->path().generic_string(), 0, 0}, "",
                                          "a catalog file must be a regular file, not a device, FIFO, socket or folder"));
    }
    files.push_back(it->path());
  }
  if (ec) throw unreadable(ec);
  std::sort(files.begin(), files.end());
  return files;
}

const std::vector<std::string> kInfoKeys = {"name", "description", "start", "horizon", "seed", "resolution"};

// A sweep's values (LoadOptions::overrides) become the last piece of the entry they update,
// as if one more file extended the scenario; a nested key copies the map it sits in from the
// entry's last piece that has it, so `parallelism.pipeline` keeps the rest of `parallelism`.
// The entry a key path names in its section: the longest run of parts after the section that is
// an id (an id may hold dots itself, "gcp.us-east4"); 0 where none is. Returns the first key part.
std::size_t first_key_part(const std::vector<std::string>& parts, const Section& section) {
  for (std::size_t j = parts.size() - 1; j >= 2; --j) {
    const std::vector<std::string> id_parts(parts.begin() + 1, parts.begin() + static_cast<std::ptrdiff_t>(j));
    if (section.by_id.count(text::join(id_parts, "."))) return j;
  }
  return 0;
}

// How many `from:` links lead from an override's entry to one that copies nothing (0 for anything
// that is not an entry's key). Overrides are applied in this order, so that a nested key of an
// entry that copies another's map copies it after that one's own overrides (since session 44, a
// review: the copy took the map as it stood, and an override of the source listed later in the
// sweep file never reached the copy).
std::size_t from_depth(const Override& o, Layers& layers) {
  const std::vector<std::string> parts = text::split(o.key, '.');
  if (parts.size() < 3 || std::find(kEntitySections.begin(), kEntitySections.end(), parts.front()) == kEntitySections.end()) return 0;
  const Section& section = layers.sections[parts.front()];
  const std::size_t first_key = first_key_part(parts, section);
  if (!first_key) return 0;
  std::string id = text::join(std::vector<std::string>(parts.begin() + 1, parts.begin() + static_cast<std::ptrdiff_t>(first_key)), ".");
  std::set<std::string> visited;
  std::size_t depth = 0;
  for (auto at = section.by_id.find(id); at != section.by_id.end() && visited.insert(at->first).second; ++depth) {
    std::optional<std::string> from_id;
    for (auto it = at->second.rbegin(); it != at->second.rend() && !from_id; ++it) {
      const YAML::Node from = static_cast<const YAML::Node&>(it->node)["from"];
      if (from.IsDefined() && from.IsScalar()) from_id = from.Scalar();
    }
    if (!from_id) break;
    at = section.by_id.find(*from_id);
  }
  return depth;
}

void apply_overrides(const std::vector<Override>& given, Layers& layers) {
  std::vector<std::pair<std::size_t, const Override*>> ordered;
  for (const Override& o : given) ordered.emplace_back(from_depth(o, layers), &o);
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [depth, op] : ordered) {
    const Override& o = *op;
    auto fail = [&](const std::string& what) -> void {
      throw InputError(format_input_error(o.key_at.file.empty() ? o.at : o.key_at, o.key, what));
    };
    layers.files.push_back(o.at.file);
    const std::string* file = &layers.files.back();
    YAML::Node value;
    try {
      value = YAML::Load(o.value_yaml);
    } catch (const YAML::Exception& e) {
      throw InputError(format_input_error(o.at, o.key, "the value is not YAML: " + e.msg));
    }
    const std::vector<std::string> parts = text::split(o.key, '.');
    if (std::any_of(parts.begin(), parts.end(), [](const std::string& p) { return p.empty(); })) {
      fail("expected a key path such as training.<id>.accelerators or scenario.horizon");
    }
    if (parts.front() == "scenario") {
      if (parts.size() != 2) fail("expected scenario.<key> (one of " + text::join(kInfoKeys) + ")");
      if (std::find(kInfoKeys.begin(), kInfoKeys.end(), parts[1]) == kInfoKeys.end()) {
        const std::string guess = text::closest(parts[1], kInfoKeys);
        fail("unknown key " + text::quoted(parts[1]) + " in scenario" +
             (guess.empty() ? "" : "; did you mean " + text::quoted(guess) + "?") + " (known: " +
             text::join(kInfoKeys) + ")");
      }
      YAML::Node piece(YAML::NodeType::Map);
      piece[parts[1]] = value;
      layers.info.push_back(Value{piece, file, "scenario", o.at});
      continue;
    }
    if (std::find(kEntitySections.begin(), kEntitySections.end(), parts.front()) == kEntitySections.end()) {
      std::vector<std::string> roots = kEntitySections;
      roots.push_back("scenario");
      const std::string guess = text::closest(parts.front(), roots);
      fail("unknown section " + text::quoted(parts.front()) +
           (guess.empty() ? "" : "; did you mean " + text::quoted(guess) + "?") + " (known: " + text::join(roots) + ")");
    }
    if (parts.size() < 3) fail("expected " + parts.front() + ".<id>.<key>");
    Section& section = layers.sections[parts.front()];
    // An id may hold dots itself ("gcp.us-east4"): the longest run of parts after the section
    // that names an entry is the id, the rest the key path inside it.
    const std::size_t first_key = first_key_part(parts, section);
    if (!first_key) {
      const std::string& guessed_id = parts[1];
      const std::string guess = text::closest(guessed_id, section.order);
      std::vector<std::string> known = section.order;
      std::sort(known.begin(), known.end());
      fail("no entry " + text::quoted(guessed_id) + " in " + parts.front() +
           (guess.empty() ? "" : "; did you mean " + text::quoted(guess) + "?") +
           (known.empty() ? " (none defined)" : " (known: " + text::join(known) + ")"));
    }
    const std::string id = text::join(std::vector<std::string>(parts.begin() + 1, parts.begin() + static_cast<std::ptrdiff_t>(first_key)), ".");
    const std::vector<std::string> key(parts.begin() + static_cast<std::ptrdiff_t>(first_key), parts.end());
    const auto entry = section.by_id.find(id);
    std::vector<std::string> keys;
    for (const auto& k : Builder::section_keys(parts.front())) {
      if (k != "id" && k != "from") keys.push_back(k);
    }
    if (std::find(keys.begin(), keys.end(), key.front()) == keys.end()) {
      const std::string guess = text::closest(key.front(), keys);
      fail("unknown key " + text::quoted(key.front()) + " for " + parts.front() + " entries" +
           (guess.empty() ? "" : "; did you mean " + text::quoted(guess) + "?") + " (known: " + text::join(keys) + ")");
    }
    YAML::Node piece(YAML::NodeType::Map);
    piece["id"] = id;
    if (key.size() == 1) {
      piece[key.front()] = value;
    } else {
      // The map to update: the entry's own (its last piece that has the key), else the one it
      // copies through `from:`, and so on up the chain.
      YAML::Node top(YAML::NodeType::Map);
      std::set<std::string> visited;
      for (auto at_entry = entry; at_entry != section.by_id.end() && visited.insert(at_entry->first).second;) {
        std::optional<std::string> from_id;
        bool found = false;
        for (auto it = at_entry->second.rbegin(); it != at_entry->second.rend() && !found; ++it) {
          const YAML::Node& node = it->node;  // const: a look-up must not add the key
          const YAML::Node given = node[key.front()];
          if (given.IsDefined()) {
            top = YAML::Clone(given);
            found = true;
          }
          const YAML::Node from = node["from"];
          if (!from_id && from.IsDefined() && from.IsScalar()) from_id = from.Scalar();
        }
        if (found || !from_id) break;
        at_entry = section.by_id.find(*from_id);
      }
      YAML::Node at = top;
      std::string where = parts.front() + "." + id + "." + key.front();
      for (std::size_t i = 1; i < key.size(); ++i) {
        if (!at.IsMap()) {
          fail("cannot set a key inside " + where + ": it is " + detail::shown(at) +
               ", not a map (sweep the whole " + where + " instead)");
        }
        if (i + 1 == key.size()) {
          at[key[i]] = value;
        } else {
          if (!at[key[i]].IsDefined()) at[key[i]] = YAML::Node(YAML::NodeType::Map);
          at.reset(at[key[i]]);
          where += "." + key[i];
        }
      }
      piece[key.front()] = top;
    }
    section.add(id, Value{piece, file, parts.front() + "." + id, o.at});
  }
}

// A job's `stage_of` must name another job of the scenario that is not itself a stage, and both
// must be first-principles jobs: validation adds the stages' predicted accelerator-hours to that
// job's, which a given duration would not be.
void check_stages(Builder& builder, const std::vector<std::string>& order, const std::vector<TrainingJob>& jobs) {
  for (const auto& id : order) {
    const JobDraft d = builder.training(id);
    if (!d.stage_of) continue;
    const Value& where = *d.stage_of;
    const std::string& lead = d.job.stage_of;
    if (lead == id) where.fail("a job cannot be a stage of itself");
    const auto it = std::find_if(jobs.begin(), jobs.end(), [&](const TrainingJob& j) { return j.id == lead; });
    if (it == jobs.end()) {
      std::vector<std::string> others;
      for (const auto& o : order) {
        if (o != id) others.push_back(o);
      }
      const std::string guess = text::closest(lead, others);
      where.fail("unknown training job " + text::quoted(lead) + (guess.empty() ? "" : "; did you mean " + text::quoted(guess) + "?") +
                 " (stage_of names another job of this scenario)");
    }
    if (!it->stage_of.empty()) {
      where.fail("training job " + text::quoted(lead) + " is itself a stage of " + text::quoted(it->stage_of) +
                 "; name the job the stages belong to");
    }
    if (d.job.published && (d.job.published->has_footprint() || d.job.published->accelerator_time_s)) {
      where.fail("the published footprint or accelerator_hours of a run trained in stages belong to the job the "
                 "stages belong to (" + text::quoted(lead) + "); a stage may publish only a step figure");
    }
    if (d.job.duration_given || it->duration_given) {
      where.fail("stages are predicted from their design (first-principles mode): drop duration, "
                 "accelerator_hours and power from " + text::quoted(d.job.duration_given ? id : lead));
    }
    // A later stage continues its run: it does not start before it, and the two repeat, or not,
    // together (since session 45, a review: a stage five years before its run, or repeating alone,
    // had been accepted).
    // (Their starts as placed: the scenario's start where a job gives none.)
    const auto self = std::find_if(jobs.begin(), jobs.end(), [&](const TrainingJob& j) { return j.id == id; });
    if (self != jobs.end() && self->start_unix_s && it->start_unix_s && *self->start_unix_s < *it->start_unix_s) {
      where.fail("a later stage starts no earlier than the run it continues (" + text::quoted(lead) + ")");
    }
    if (d.job.repeat_count != it->repeat_count || d.job.repeat_every_s != it->repeat_every_s) {
      where.fail("a stage repeats as the run it belongs to (" + text::quoted(lead) + ") does: give both the same repeat, or neither");
    }
  }
}

// Every catalog file of the data directory, read into `layers`; `except` (where given) left out.
void load_catalogs(const LoadOptions& options, Layers& layers, const fs::path& except = {}) {
  std::error_code ec;
  const fs::path skip = except.empty() ? fs::path() : fs::weakly_canonical(except, ec);
  layers.data_dir = options.data_dir;
  for (const auto& catalog : catalog_files(options.data_dir)) {
    if (!skip.empty() && fs::weakly_canonical(catalog, ec) == skip) continue;
    std::vector<fs::path> stack;
    load_layer(catalog, display_of(catalog), true, stack, layers, nullptr, nullptr);
  }
}

}  // namespace load_detail

using namespace load_detail;

Hardware load_catalog_hardware(const std::string& id, const LoadOptions& options) {
  Layers layers;
  load_catalogs(options, layers);
  Builder builder(layers);
  return builder.hardware_by_id(id);
}

std::string catalog_hardware_place(const std::string& id, const LoadOptions& options) {
  Layers layers;
  load_catalogs(options, layers);
  const auto it = layers.catalog_ids.find("hardware\n" + id);
  return it == layers.catalog_ids.end() ? std::string() : it->second;
}

bool lies_in_catalog(const fs::path& file, const fs::path& data_dir) {
  if (data_dir.empty()) return false;
  std::error_code ec;
  const fs::path dest = fs::weakly_canonical(file, ec);
  const auto rel = dest.lexically_relative(fs::weakly_canonical(data_dir, ec));
  bool in = !rel.empty() && *rel.begin() != ".." && dest.extension() == ".yaml";
  for (const auto& part : rel) in = in && part.string().rfind('.', 0) != 0;  // hidden ones are not read
  return in;
}

Hardware check_hardware_entry(const std::string& id, const fs::path& text, const fs::path& destination,
                              const LoadOptions& options) {
  // A file in the catalog is read as one (an id given once there); one elsewhere as a scenario's
  // layer, which may redefine a catalog entry, as it would be used (`extends`).
  Layers layers;
  load_catalogs(options, layers, destination);  // without the file the entry replaces
  std::vector<fs::path> stack;
  load_layer(text, display_of(destination), lies_in_catalog(destination, options.data_dir), stack, layers, nullptr,
             nullptr);
  Builder builder(layers);
  return builder.hardware_by_id(id);
}

std::string named_files_digest(const std::string& yaml_text, const fs::path& folder) {
  std::uint64_t h = 1469598103934665603ULL;
  try {
    fold_named_files(YAML::Load(yaml_text), folder, h);
  } catch (const YAML::Exception&) {
    // The text's own errors are reported by its reader; nothing it names is folded.
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Scenario load_scenario(const fs::path& file, const LoadOptions& options) {
  Layers layers;
  load_catalogs(options, layers);
  Scenario scenario;
  scenario.path = file;
  std::vector<fs::path> stack;
  std::error_code ec;
  stack.push_back(fs::weakly_canonical(file, ec));
  const std::size_t first_scenario_file = layers.files.size();
  load_layer(file, display_of(file), false, stack, layers, nullptr, &scenario.given_text);
  apply_overrides(options.overrides, layers);

  const std::string& main_file = layers.files[first_scenario_file];
  if (layers.info.empty()) {
    throw InputError(format_input_error({main_file, 1, 1}, "", "missing required key \"scenario\""));
  }
  std::set<std::string> seen;
  scenario.info.start = "2025-01-01";
  scenario.info.start_unix_s = 1735689600;  // 2025-01-01T00:00:00Z
  scenario.info.horizon_s = 365 * units::seconds_per_day;
  for (const auto& piece : layers.info) apply_info(piece, scenario.info, seen);
  if (!seen.count("name")) layers.info.back().fail("missing required key \"name\"");

  Builder builder(layers);
  const auto training = layers.sections.find("training");
  const auto inference = layers.sections.find("inference");
  const bool any_training = training != layers.sections.end() && !training->second.order.empty();
  const bool any_inference = inference != layers.sections.end() && !inference->second.order.empty();
  const auto deployments = layers.sections.find("deployments");
  const bool any_deployment = deployments != layers.sections.end() && !deployments->second.order.empty();
  if (!any_training && !any_inference && !any_deployment) {
    throw InputError(format_input_error({main_file, 1, 1}, "training",
                                        "expected at least one training job, inference job or deployment, got none"));
  }
  builder.check_all();
  if (any_training) {
    for (const auto& id : training->second.order) {
      scenario.training.push_back(builder.training(id).job);
      if (!scenario.training.back().start_unix_s) scenario.training.back().start_unix_s = scenario.info.start_unix_s;
    }
    check_stages(builder, training->second.order, scenario.training);
    // A repeated job's runs are the lifecycle's entities "<id>-<n>" (n from 1 to times): a job of
    // such a name would share their rows of the output (since session 40, a review; before, two
    // entities were both written as "r-2").
    for (const auto& job : scenario.training) {
      if (job.repeat_count <= 1) continue;
      const std::string prefix = job.id + "-";
      for (const auto& other : scenario.training) {
        if (other.id.size() <= prefix.size() || other.id.compare(0, prefix.size(), prefix) != 0) continue;
        const std::string rest = other.id.substr(prefix.size());
        if (rest.size() > 6 || rest.front() == '0' || rest.find_first_not_of("0123456789") != std::string::npos) continue;
        if (std::stoll(rest) > job.repeat_count || other.id != job.run_id(std::stoll(rest))) continue;
        throw InputError(format_input_error(
            other.origin, "training." + other.id,
            "the id " + text::quoted(other.id) + " names run " + rest + " of job " + text::quoted(job.id) + "'s repeat (" +
                job.origin.file + ":" + std::to_string(job.origin.line) + ":" + std::to_string(job.origin.column) +
                "), whose lifecycle rows it would share; name this job another way"));
      }
    }
  }
  if (any_inference) {
    for (const auto& id : inference->second.order) {
      scenario.inference.push_back(builder.inference(id).job);
      scenario.inference.back().start_unix_s = scenario.info.start_unix_s;
    }
  }
  if (any_deployment) {
    for (const auto& id : deployments->second.order) scenario.deployments.push_back(builder.deployment(id).d);
  }
  for (const auto& id : layers.scenario_model_ids) {
    const Value& ref = layers.sections.at("models").by_id.at(id).back();
    const Model m = builder.model_by_id(id, ref);
    if (std::none_of(scenario.models.begin(), scenario.models.end(),
                     [&](const Model& x) { return x.id == m.id; })) {
      scenario.models.push_back(m);
    }
  }
  // A training job without a model is labelled by its id in the lifecycle tables' `model` column:
  // an id that is also the model of another job's or a deployment's rows would merge its rows with
  // theirs (since session 47, a review; a model nothing in the lifecycle runs has no rows).
  {
    std::set<std::string> model_ids;
    for (const auto& j : scenario.training) model_ids.insert(j.model_id);
    for (const auto& d : scenario.deployments) model_ids.insert(d.model_id);
    for (const auto& job : scenario.training) {
      if (!job.model_id.empty() || model_ids.count(job.id) == 0) continue;
      throw InputError(format_input_error(
          job.origin, "training." + job.id,
          "this job has no model, so the lifecycle tables label it by its id, which is also a model's id " + text::quoted(job.id) +
              ": their rows would merge; give the job `model: " + job.id + "` if it trains that model, or another id"));
    }
  }
  scenario.resolved_yaml = detail::emit_resolved(scenario);
  {
    char buf[20];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(layers.digest));
    scenario.inputs_digest = buf;
  }
  return scenario;
}

}  // namespace dlcarbon
