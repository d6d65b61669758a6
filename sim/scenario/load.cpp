// Scenario loading: files -> layers -> resolved, checked structs.
//
// Every file (catalogs in data/, then the `extends` chain from base to the scenario
// itself) contributes *pieces*: one YAML map per entry, keyed by id. An entity is built by
// applying its pieces in order, so a later file updates an earlier entry key by key.
// Because pieces keep their own file name and key path, an error in a base file or a
// catalog points there, not at the file that extends it.

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
#include "resolved.hpp"
#include "trace.hpp"
#include "yaml_reader.hpp"

namespace fs = std::filesystem;

namespace dlcarbon {
namespace {

using detail::MapView;
using detail::Value;
using units::Kind;

// The most pipeline chunks (pipeline x virtual_stages) a layout may have: far above any published
// run (Llama 3.1 405B's 128) and small enough to list them.
constexpr double kMaxPipelineChunks = 65536;
// The most layers a pipeline chunk may list: the graph builders' limit on a model's layers.
constexpr std::int64_t kMaxStageLayers = 100000;
// The longest span a scenario's horizon or a deployment may cover, 1,000 years: the lifecycle bins
// it hourly at the finest (8.8 million bins), and its dates must stay dates.
constexpr double kMaxSpanS = 1000 * 365.25 * units::seconds_per_day;
// The longest chain of `extends` files, or of entries built `from` others: each link is a nested
// call, and real chains are a few long.
constexpr std::size_t kMaxChain = 256;

struct Section {
  std::vector<std::string> order;
  std::map<std::string, std::vector<Value>> by_id;

  void add(const std::string& id, const Value& v) {
    auto& pieces = by_id[id];
    if (pieces.empty()) order.push_back(id);
    pieces.push_back(v);
  }
};

struct Layers {
  std::deque<std::string> files;  // display names; deque keeps addresses stable
  std::uint64_t digest = 1469598103934665603ULL;  // FNV-1a over every file's text, in order
  fs::path data_dir;  // the catalogs' folder, as the options name it
  std::vector<Value> info;
  std::map<std::string, Section> sections;  // regions, datacenters, hardware, models, training
  std::vector<std::string> scenario_model_ids;
  // Each catalog entry's first place ("section\nid" -> file:line): an id given in two catalog files
  // is refused (which won depended on the files' names; since session 35).
  std::map<std::string, std::string> catalog_ids;
};

const std::vector<std::string> kEntitySections = {"regions", "datacenters", "hardware", "models",
                                                  "training", "inference", "deployments"};
const std::vector<std::string> kScenarioKeys = {"schema_version", "extends",  "scenario",
                                                "regions",        "datacenters", "hardware",
                                                "models",         "training", "inference", "deployments"};
const std::vector<std::string> kFusions = {"none", "tensorflow1", "fairseq", "softmax", "elementwise", "attention", "flash1", "flash2", "flash3"};

// TensorFlow 1.x's GPU kernels (fusion: tensorflow1) on a TPU, where TensorFlow compiles through XLA:
// bad input at `at` (since session 48, a review). `whose`: how the message names the hardware.
void check_fusion_on(const Value& at, const std::string& fusion, const Hardware& h, const std::string& whose = "") {
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

// ---------------------------------------------------------------------------------------
// Entities

struct JobDraft {
  TrainingJob job;
  std::optional<double> duration_s;
  std::optional<double> accelerator_time_s;
  bool power_given = false;
  std::optional<Value> stage_of;  // where `stage_of` was given, for errors that need the whole scenario
  std::optional<Value> stage_layers;  // where `parallelism.stage_layers` was given, checked against the model
  // `stage_layers: {first: a, last: b}`: the first and the last chunk's layers, the rest spread
  // evenly once the model's layers are known.
  std::optional<std::pair<std::int64_t, std::int64_t>> stage_ends;
  std::optional<Value> published_at;  // where `published` was given (checked against the duration)
  std::optional<Value> tokens_at;     // where `tokens` was given (its noun checked against the model)
  std::optional<Value> power_at;      // where `power` was given (a first-principles job predicts it)
  std::optional<Value> cross_entropy_at;  // where `cross_entropy` was given (checked against the design)
  std::optional<Value> fusion_at;         // where `fusion` was given (checked against the hardware)
  std::optional<Value> eager_at;          // where `eager` was given
  std::optional<Value> expert_dispatch_at;  // where `expert_dispatch` was given (checked against the design and precision)
  std::optional<Value> partition_activations_at;  // where parallelism.partition_activations is true
  std::optional<Value> shared_expert_overlap_at;   // where parallelism.shared_expert_overlap is true (checked against the design)
};

struct ModelDraft {
  Model model;
};

struct InferenceDraft {
  InferenceJob job;
  bool layout_given = false;
  std::optional<Value> layout_at;  // checked against the model's design once it is known
  std::optional<Value> input_layout_at;  // checked against the model's design once it is known
  std::optional<Value> fusion_at;        // checked against the hardware
};

struct DeploymentDraft {
  Deployment d;
  bool start_given = false, end_given = false;
  std::optional<double> duration_s;
  bool demand_start_given = false, replicas_start_given = false, devices_start_given = false;
  bool layout_given = false;
  std::optional<Value> layout_at;
  std::optional<Value> demand_at, regions_at, mix_at, request_at, replicas_at, devices_at;
  std::optional<Value> charging_at, per_replica_at;  // keys for one kind of deployment only
  std::optional<Value> batch_at, headroom_at;          // cloud only; headroom: autoscaled only
};

class Builder;

template <class T>
struct EntityKind {
  std::string section;
  std::string noun;
  std::vector<std::string> allowed;
  std::vector<std::string> required;
  void (*apply)(Builder&, const MapView&, T&);
  void (*finish)(T&, const Value& last);
};

template <class T>
struct EntityKind;
const EntityKind<InferenceDraft>& inference_kind_table();
const EntityKind<DeploymentDraft>& deployment_kind_table();

class Builder {
 public:
  explicit Builder(const Layers& layers) : layers_(layers) {}

  GridRegion region_ref(const Value& v);
  Datacenter datacenter_ref(const Value& v);
  Hardware hardware_ref(const Value& v);
  const Model& model(const Value& v);
  JobDraft training(const std::string& id);
  InferenceDraft inference(const std::string& id);
  DeploymentDraft deployment(const std::string& id);
  // Builds every entry of every section, so that an entry nobody refers to is checked too.
  void check_all();
  Model model_by_id(const std::string& id, const Value& ref) { return get(model_kind(), models_, id, ref).model; }
  Hardware hardware_by_id(const std::string& id) { return get(hardware_kind(), hardware_, id, Value{}); }
  std::deque<std::string>& graph_files() { return graph_files_; }
  // The keys an entry of `section` accepts (one of kEntitySections).
  static const std::vector<std::string>& section_keys(const std::string& section);

 private:
  static const EntityKind<GridRegion>& region_kind();
  static const EntityKind<Datacenter>& datacenter_kind();
  static const EntityKind<Hardware>& hardware_kind();
  static const EntityKind<ModelDraft>& model_kind();
  static const EntityKind<JobDraft>& training_kind();

  template <class T>
  const T& get(const EntityKind<T>& kind, std::map<std::string, T>& cache, const std::string& id,
               const Value& ref);
  template <class T>
  T ref(const EntityKind<T>& kind, std::map<std::string, T>& cache, const Value& v);
  [[noreturn]] void unknown(const std::string& noun, const Section& section, const std::string& id,
                            const Value& ref) const;
  const Section& section(const std::string& name) const {
    static const Section empty;
    const auto it = layers_.sections.find(name);
    return it == layers_.sections.end() ? empty : it->second;
  }

  const Layers& layers_;
  std::map<std::string, GridRegion> regions_;
  std::map<std::string, Datacenter> datacenters_;
  std::map<std::string, Hardware> hardware_;
  std::map<std::string, ModelDraft> models_;
  std::map<std::string, JobDraft> jobs_;
  std::map<std::string, InferenceDraft> inference_jobs_;
  std::map<std::string, DeploymentDraft> deployments_;
  std::set<std::string> building_;
  std::vector<std::string> building_order_;  // the entries being built, outermost first ("section:id")
  std::map<std::string, std::size_t> chain_;  // a built entry's chain of `from` entries, itself included
  std::deque<std::string> graph_files_;  // names of graph files read for designs
};

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

// The model an inference job or a deployment names (`m` has "model"), taken into `costed`: its id
// and design, and its layout unless this piece gives one. A model without convolutions given here
// drops a layout an earlier piece gave (`from`, a sweep's base), as a model that does not generate
// drops a request (since session 42, a review: the inherited key was refused at the parent's line
// and could not be unset). A model without a design has nothing to cost.
template <class Costed, class Draft>
void take_costed_model(Builder& b, const MapView& m, Costed& costed, Draft& draft) {
  const Model& model = b.model(m.at("model"));
  costed.model_id = model.id;
  costed.design = model.design;
  if (!m.has("layout") && !has_convolutions(model.design)) {
    draft.layout_given = false;
    draft.layout_at.reset();
  }
  if (!draft.layout_given) costed.layout = model.layout;
  if (std::holds_alternative<std::monostate>(model.design)) {
    m.at("model").fail("model " + text::quoted(model.id) + " has no design to cost");
  }
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

// --- training jobs ---------------------------------------------------------------------

void apply_power(const Value& v, TrainingPower& p) {
  const MapView m(v, {"per_accelerator", "system", "utilisation"});
  const auto keys = m.keys();
  if (keys.size() != 1) {
    v.expected("exactly one of per_accelerator, system, utilisation",
               keys.empty() ? "none given" : std::to_string(keys.size()) + " given");
  }
  if (m.has("per_accelerator")) {
    p = {PowerBasis::per_accelerator, detail::read_positive(m.at("per_accelerator"), Kind::power)};
  } else if (m.has("system")) {
    p = {PowerBasis::system, detail::read_positive(m.at("system"), Kind::power)};
  } else {
    p = {PowerBasis::utilisation,
         detail::read_number_in(m.at("utilisation"), 0, 1, false, "a utilisation in (0, 1] (e.g. 0.8)")};
  }
}

// Why the roofline has no rate for `precision` on `hw` ("" where it has one), with the fallbacks
// hardware::DeviceModel::peak takes: a 16- or 8-bit precision the other 16-bit one or fp32; fp32 and
// tf32 a quarter of a 16-bit rate, not of an 8-bit one (since session 43, a review: fp32 on a phone's
// int8-only NPU ran at a quarter of its int8 rate; since session 41: bf16 on hardware that lists only
// an int8 rate was an internal failure, exit 1).
std::string without_rate(const Hardware& hw, const std::string& precision) {
  const auto& r = hw.peak_flop_per_s;
  if (r.count(precision)) return "";
  if (r.count("bf16") || r.count("fp16") || r.count("fp32")) return "";
  if (r.empty()) return hw.id + " lists no peak rate";
  std::string listed;
  for (const auto& [dtype, rate] : r) listed += (listed.empty() ? "" : ", ") + dtype;
  return hw.id + " lists no 16-bit or fp32 peak rate to cost " + precision + " on" +
         (listed.empty() ? "" : " (only " + listed + ")") + "; choose a precision it lists, or other hardware";
}

// What a training layout must satisfy whatever the job's mode: the data-parallel ranks run whole
// microbatches, shards and experts divide their groups, the schedule's needs.
void check_layout(const TrainingJob& j, const Value& last, const std::optional<Value>& stage_layers_at = std::nullopt) {
  // A hybrid sharding group must divide the data-parallel size, also where that is derived.
  const Parallelism& p = *j.parallelism;
  // Products below are formed in 64-bit integers: bound their factors first (each is at most 2^53).
  const bool cp = p.context > 1;
  if (static_cast<double>(p.tensor) * static_cast<double>(p.pipeline) * static_cast<double>(p.context) >
      static_cast<double>(j.accelerators)) {
    last.fail(std::string("parallelism: tensor x pipeline") + (cp ? " x context (" : " (") + std::to_string(p.tensor) + " x " +
              std::to_string(p.pipeline) + (cp ? " x " + std::to_string(p.context) : "") + ") exceeds the accelerators (" +
              std::to_string(j.accelerators) + ")");
  }
  const std::int64_t model_parallel = std::max<std::int64_t>(1, p.tensor * p.pipeline * p.context);
  // The ranks fill the accelerators: data x tensor x pipeline x context of them (since session 42, a
  // review: a mismatch was found only when costing, and written as a job that cannot run).
  const std::string layout = std::string("tensor x pipeline") + (cp ? " x context (" : " (") + std::to_string(p.tensor) + " x " +
                             std::to_string(p.pipeline) + (cp ? " x " + std::to_string(p.context) : "") + ")";
  if (p.data > 0 && static_cast<double>(p.data) * static_cast<double>(model_parallel) != static_cast<double>(j.accelerators)) {
    last.fail("parallelism.data (" + std::to_string(p.data) + ") x " + layout + " is not the accelerators (" +
              std::to_string(j.accelerators) + "); leave data out to derive it");
  }
  if (p.data == 0 && j.accelerators % model_parallel != 0) {
    last.fail("parallelism: the accelerators (" + std::to_string(j.accelerators) + ") are not a multiple of " + layout);
  }
  // ZeRO shards over the ranks that hold the same weights: data x context.
  if (p.shard_group > 0 && p.data == 0 && j.accelerators % model_parallel == 0 &&
      (j.accelerators / model_parallel * p.context) % p.shard_group != 0) {
    last.fail("parallelism.shard_group (" + std::to_string(p.shard_group) +
              (cp ? ") must divide the data x context ranks (" : ") must divide the data-parallel size (accelerators / (tensor x pipeline) = ") +
              std::to_string(j.accelerators / model_parallel * p.context) + ")");
  }
  // (A model with no design is never costed: its layout is a record, as `tensor`'s is; since
  // session 40, a review: an accounting job with Llama 3's long-context layout was refused.)
  if (cp && !std::holds_alternative<std::monostate>(j.design)) {
    // Context parallelism is costed for dense decoder-only transformers: their causal attention's
    // chunks balanced over the ranks (Megatron-LM's and Llama 3's two chunks a rank, the sequence
    // cut in 2 x context). Experts, latent attention, the evolved cell and encoders are not
    // modelled with it: refused, not costed as if they split freely.
    const auto* t = std::get_if<TransformerDesign>(&j.design);
    if (!t || t->arch != TransformerDesign::Arch::decoder || t->image > 0) {
      last.fail("parallelism.context (" + std::to_string(p.context) + ") needs a decoder-only transformer (builder: decoder): "
                "context parallelism splits a causal sequence's positions over ranks");
    }
    if (t->experts > 0 || t->kv_lora_rank > 0 || t->evolved) {
      last.fail("parallelism.context (" + std::to_string(p.context) + ") is modelled for dense decoders with multi-head, "
                "grouped-query or multi-query attention; the model has " +
                (t->experts > 0 ? std::string("experts") : t->kv_lora_rank > 0 ? std::string("latent attention") : std::string("the evolved cell")));
    }
    if (t->seq_len % (2 * p.context) != 0) {
      last.fail("parallelism.context (" + std::to_string(p.context) + "): seq_len (" + std::to_string(t->seq_len) +
                ") must be a multiple of 2 x context (" + std::to_string(2 * p.context) +
                "): each rank holds two equal chunks of every sequence");
    }
  }
  // Each data-parallel rank runs whole microbatches: the global batch is a whole number of
  // them on every rank (as Megatron-LM and DeepSpeed require).
  const std::int64_t data =
      p.data > 0 ? p.data : (j.accelerators % model_parallel == 0 ? j.accelerators / model_parallel : 0);
  if (data > 0 && static_cast<double>(data) * static_cast<double>(p.microbatch) > static_cast<double>(p.global_batch)) {
    last.fail("parallelism.global_batch (" + std::to_string(p.global_batch) + ") is less than data x microbatch (" +
              std::to_string(data) + " x " + std::to_string(p.microbatch) +
              "): each data-parallel rank runs at least one whole microbatch");
  }
  if (data > 0 && p.global_batch % (data * p.microbatch) != 0) {
    last.fail("parallelism.global_batch (" + std::to_string(p.global_batch) +
              ") is not a multiple of data x microbatch (" + std::to_string(data) + " x " +
              std::to_string(p.microbatch) + " = " + std::to_string(data * p.microbatch) +
              "): each data-parallel rank runs whole microbatches");
  }
  if (p.batch_rampup && data > 0) {
    // Every batch of the ramp is whole microbatches on every rank, as the global batch is.
    const std::int64_t unit = data * p.microbatch;
    const auto& r = *p.batch_rampup;
    const std::int64_t step = r.increment > 0 ? r.increment : unit;
    // Each batch size of the ramp is a step of the overheads' sum: at most 10^6 of them.
    if (static_cast<double>(p.global_batch - r.start) / static_cast<double>(step) > 1e6) {
      last.fail("parallelism.batch_rampup: " + std::to_string((p.global_batch - r.start) / step) +
                " batch sizes from start to global_batch; at most 1,000,000 (a larger increment)");
    }
    if (r.start % unit != 0 || step % unit != 0) {
      last.fail("parallelism.batch_rampup: start (" + std::to_string(r.start) + ") and increment (" + std::to_string(step) +
                ") must be multiples of data x microbatch (" + std::to_string(unit) + "): each rank runs whole microbatches");
    }
    if (p.dualpipe && ((r.start / unit) % 2 != 0 || (step / unit) % 2 != 0 || r.start / unit < 2 * p.pipeline)) {
      last.fail("parallelism.batch_rampup: under dualpipe every batch of the ramp needs an even number of microbatches a "
                "data rank, at least twice the pipeline's " + std::to_string(p.pipeline) + " stages (start " +
                std::to_string(r.start) + " and increment " + std::to_string(step) + " over data x microbatch " +
                std::to_string(unit) + ")");
    }
    // Interleaved 1F1B and zb1p need as many microbatches a data rank as stages in every batch of
    // the ramp too, as for the global batch below (since session 42, a review: the ramp's smaller
    // batches were costed in the regime the checks below refuse).
    if ((p.virtual_stages > 1 || p.zero_bubble) && r.start / unit < p.pipeline) {
      last.fail(std::string("parallelism.batch_rampup: under ") + (p.zero_bubble ? "zb1p" : "interleaved 1F1B (virtual_stages)") +
                " every batch of the ramp needs at least as many microbatches a data rank as the pipeline's " +
                std::to_string(p.pipeline) + " stages; start " + std::to_string(r.start) + " over data x microbatch " +
                std::to_string(unit) + " is " + std::to_string(r.start / unit));
    }
    if (p.virtual_stages > 1 && ((r.start / unit) % p.pipeline != 0 || (step / unit) % p.pipeline != 0)) {
      last.fail("parallelism.batch_rampup: under interleaved 1F1B (virtual_stages) every batch of the ramp needs a multiple of the "
                "pipeline's " + std::to_string(p.pipeline) + " stages in microbatches a data rank; start " + std::to_string(r.start) +
                " and increment " + std::to_string(step) + (r.increment > 0 ? "" : " (the default, data x microbatch: give one)") +
                " over data x microbatch " + std::to_string(unit));
    }
    // The ramp's sequences are the job's first: no more than it trains.
    std::int64_t sample_tokens = 1;
    if (const auto* t = std::get_if<TransformerDesign>(&j.design)) sample_tokens = t->tokens_per_sample();
    if (const auto* l = std::get_if<LstmDesign>(&j.design)) sample_tokens = l->seq_len;
    if (const auto* f = std::get_if<FileGraphDesign>(&j.design)) sample_tokens = f->tokens_per_sample;  // as graph::tokens_per_sample
    if (j.tokens && r.samples * static_cast<double>(sample_tokens) * (1 - p.padding) > *j.tokens) {
      last.fail("parallelism.batch_rampup: samples (" + std::to_string(static_cast<std::int64_t>(r.samples)) +
                " sequences) exceed the job's tokens (" +
                std::to_string(std::llround(*j.tokens / (static_cast<double>(sample_tokens) * (1 - p.padding)))) +
                " sequences of " + std::to_string(sample_tokens) + " tokens)");
    }
    if ((p.global_batch - r.start) % step != 0) {
      last.fail("parallelism.batch_rampup: global_batch - start (" + std::to_string(p.global_batch - r.start) +
                ") is not a multiple of the increment (" + std::to_string(step) + ")");
    }
  }
  // Tensor parallelism is costed as Megatron-LM's split of a transformer's layers (attention by
  // heads, the feed-forward's two GEMMs, and their all-reduces). Nothing splits a CNN's, LSTM's,
  // MLP's or graph file's ops with the collectives that would go with it: refused, not costed as a
  // free speed-up (since session 34; before, their compute was divided by `tensor` with no
  // communication).
  if (p.tensor > 1 && !std::holds_alternative<TransformerDesign>(j.design) && !std::holds_alternative<std::monostate>(j.design)) {
    const char* kind = std::holds_alternative<ResNetDesign>(j.design)  ? "a ResNet"
                       : std::holds_alternative<LstmDesign>(j.design) ? "an LSTM"
                       : std::holds_alternative<MlpDesign>(j.design)  ? "an MLP"
                                                                       : "a graph file";
    last.fail("parallelism.tensor (" + std::to_string(p.tensor) + ") needs a transformer design: tensor parallelism is " +
              "costed as Megatron-LM's split of attention heads and feed-forward layers, and the model is " + kind +
              " (use data or pipeline parallelism)");
  }
  if (const auto* t = std::get_if<TransformerDesign>(&j.design)) {
    // Megatron-LM splits attention by heads over the tensor group, and expert parallelism
    // places E / data experts on a rank (or one expert on data / E ranks).
    if (t->heads > 0 && t->heads % p.tensor != 0) {
      last.fail("parallelism.tensor (" + std::to_string(p.tensor) + ") must divide the model's heads (" +
                std::to_string(t->heads) + "): tensor parallelism splits attention by heads");
    }
    // A decoder vocabulary of its own is a second table: where a pipeline places it, and the
    // copies of a tied table between stages, are modelled for one vocabulary only (since session 35).
    if (t->target_vocab > 0 && p.pipeline > 1) {
      last.fail("parallelism.pipeline (" + std::to_string(p.pipeline) + ") with a model's target_vocab is not modelled: " +
                "the stages' vocabulary tables are placed for one vocabulary (use data, tensor or expert parallelism)");
    }
    if (p.expert > 0 && t->experts == 0) {
      last.fail("parallelism.expert (" + std::to_string(p.expert) + ") needs a model with experts");
    }
    // (Since session 34; before, accepted with no effect.)
    if (p.expert_tensor > 0 && t->experts == 0) {
      last.fail("parallelism.expert_tensor (" + std::to_string(p.expert_tensor) + ") needs a model with experts");
    }
    if (p.expert > 0 && t->experts > 0) {
      if (t->experts % p.expert != 0) {
        last.fail("parallelism.expert (" + std::to_string(p.expert) + ") must divide the model's experts (" +
                  std::to_string(t->experts) + "): each rank of the group holds experts / expert of them");
      }
      if (data > 0 && data % p.expert != 0) {
        last.fail("parallelism.expert (" + std::to_string(p.expert) + ") must divide the data-parallel size (" +
                  std::to_string(data) + ")");
      }
    } else if (t->experts > 0 && data > 0 && t->experts % data != 0 && data % t->experts != 0) {
      last.fail("the model's experts (" + std::to_string(t->experts) + ") and the data-parallel size (" +
                std::to_string(data) + ") must divide one another: expert parallelism places experts / data "
                "experts on each rank, or each expert on data / experts ranks");
    }
  }
  if (p.recompute_latent) {
    const auto* t = std::get_if<TransformerDesign>(&j.design);
    if (!t || t->kv_lora_rank == 0) {
      last.fail("parallelism.recompute: latent recomputes latent attention's up-projections; the model has no "
                "kv_lora_rank (use elementwise, selective or full)");
    }
  }
  if ((j.precision == "fp8" || j.precision == "int8") && std::holds_alternative<ResNetDesign>(j.design)) {
    last.fail("precision " + j.precision + " trains the matrix products in 8 bits; convolutions are not "
              "modelled in 8 bits (use bf16 or fp16 for a ResNet)");
  }
  if (p.dualpipe && data > 0) {
    // DualPipe feeds microbatches from both ends: an even number, at least two a stage.
    const std::int64_t per_rank = p.global_batch / std::max<std::int64_t>(1, data * p.microbatch);
    if (per_rank % 2 != 0 || per_rank < 2 * p.pipeline) {
      last.fail("parallelism.pipeline_schedule dualpipe needs an even number of microbatches a data rank, at "
                "least twice the pipeline's " + std::to_string(p.pipeline) + " stages; global_batch / (data x "
                "microbatch) = " + std::to_string(per_rank));
    }
  }
  if (p.virtual_stages > 1 && p.pipeline < 2) {
    last.fail("parallelism.virtual_stages (" + std::to_string(p.virtual_stages) +
              ") needs pipeline > 1: an interleaved schedule splits each pipeline stage into chunks");
  }
  if (p.virtual_stages > 1 && data > 0) {
    // Interleaved 1F1B runs the microbatches in groups of one a stage: Megatron-LM refuses fewer
    // than the stages (since session 34; before, accepted) and a number they do not divide (before
    // 2024 outright; since, with its default group of p microbatches, a last group smaller than p:
    // `0 < m % N < p`, "dependency bubbles"; since session 42, a review: such an order deadlocked
    // in the schedule run op by op).
    const std::int64_t per_rank = p.global_batch / std::max<std::int64_t>(1, data * p.microbatch);
    if (per_rank < p.pipeline) {
      last.fail("parallelism.virtual_stages (" + std::to_string(p.virtual_stages) + ") needs at least as many microbatches a data rank as " +
                "the pipeline's " + std::to_string(p.pipeline) + " stages; global_batch / (data x microbatch) = " + std::to_string(per_rank));
    }
    if (per_rank % p.pipeline != 0) {
      last.fail("parallelism.virtual_stages (" + std::to_string(p.virtual_stages) + ") needs a multiple of the pipeline's " +
                std::to_string(p.pipeline) + " stages in microbatches a data rank, as Megatron-LM's interleaved schedule does; "
                "global_batch / (data x microbatch) = " + std::to_string(per_rank));
    }
  }
  if (p.zero_bubble && data > 0) {
    // Zero-bubble 1F1B fills its bubble with the weight-gradient halves of later microbatches: its
    // (p - 1) F holds with at least one microbatch a stage; with fewer, a microbatch's chain through
    // the stages is longer than that charges (since session 41, a review: 29 % short at one).
    const std::int64_t per_rank = p.global_batch / std::max<std::int64_t>(1, data * p.microbatch);
    if (per_rank < p.pipeline) {
      last.fail("parallelism.pipeline_schedule zb1p needs at least as many microbatches a data rank as the pipeline's " +
                std::to_string(p.pipeline) + " stages; global_batch / (data x microbatch) = " + std::to_string(per_rank) +
                " (use 1f1b)");
    }
  }
  if (!p.stage_layers.empty()) {
    const Value& at = stage_layers_at ? *stage_layers_at : last;
    const auto* t = std::get_if<TransformerDesign>(&j.design);
    if (!t) at.fail("partitions a transformer's layers; the model has no transformer design");
    std::int64_t sum = 0;
    for (const std::int64_t n : p.stage_layers) sum += n;
    // A multi-token prediction module is a layer of the partition (Megatron-Core's layouts).
    const std::int64_t layers = t->encoder_layers + t->decoder_layers + t->mtp_depth;
    if (sum != layers) {
      at.fail("holds " + std::to_string(sum) + " layers; the model has " + std::to_string(layers) +
                (t->mtp_depth > 0 ? " (its multi-token prediction layers included)" : ""));
    }
    // Every device runs a layer, or the embeddings (the first) or the head (the last).
    for (std::int64_t d = 1; d + 1 < p.pipeline; ++d) {
      std::int64_t held = 0;
      for (std::size_t c = static_cast<std::size_t>(d); c < p.stage_layers.size(); c += static_cast<std::size_t>(p.pipeline)) {
        held += p.stage_layers[c];
      }
      if (held == 0) at.fail("leaves pipeline device " + std::to_string(d) + " without a layer");
    }
  }
}

Parallelism read_parallelism(const Value& v) {
  const MapView m(v, {"data", "tensor", "pipeline", "context", "microbatch", "global_batch", "zero_stage", "recompute",
                      "overlap_communication", "optimizer", "sequence_parallel", "sequence_parallel_backward", "virtual_stages", "padding",
                      "shard_group", "gradient_precision", "gradient_accumulation", "pipeline_p2p", "gradient_reduction", "gradient_clipping", "dropout_masks", "expert", "expert_tensor",
                      "pipeline_schedule", "stage_layers", "batch_rampup", "gradient_bucket", "shared_expert_overlap",
                      "partition_activations"});
  m.require("global_batch");
  Parallelism p;
  if (m.has("data")) p.data = detail::read_positive_int(m.at("data"));
  if (m.has("tensor")) p.tensor = detail::read_positive_int(m.at("tensor"));
  if (m.has("pipeline")) p.pipeline = detail::read_positive_int(m.at("pipeline"));
  if (m.has("context")) p.context = detail::read_positive_int(m.at("context"));
  if (m.has("microbatch")) p.microbatch = detail::read_positive_int(m.at("microbatch"));
  p.global_batch = detail::read_positive_int(m.at("global_batch"));
  if (m.has("zero_stage")) p.zero_stage = std::stoi(detail::read_choice(m.at("zero_stage"), {"0", "1", "2", "3"}));
  if (m.has("optimizer")) p.optimizer = detail::read_choice(m.at("optimizer"), {"adam", "adafactor", "sgd", "adagrad"});
  if (m.has("recompute")) {
    const Value r = m.at("recompute");
    const std::string mode = r.node.IsScalar() ? r.node.Scalar() : std::string();
    if (mode == "selective") {
      p.recompute_selective = true;
    } else if (mode == "elementwise") {
      p.recompute_elementwise = true;
    } else if (mode == "latent") {
      p.recompute_latent = true;
    } else if (mode == "full") {
      p.recompute = true;
    } else if (mode == "none") {
      p.recompute = false;
    } else if (mode == "true" || mode == "yes" || mode == "false" || mode == "no") {
      p.recompute = detail::read_bool(r);
    } else {
      r.expected("true, false, full, none, selective, elementwise or latent");
    }
  }
  if (m.has("batch_rampup")) {
    const MapView r(m.at("batch_rampup"), {"start", "increment", "samples"});
    r.require("start");
    r.require("samples");
    Parallelism::BatchRampup ramp;
    ramp.start = detail::read_positive_int(r.at("start"));
    if (r.has("increment")) ramp.increment = detail::read_positive_int(r.at("increment"));
    ramp.samples = static_cast<double>(detail::read_positive_int(r.at("samples")));  // sequences, as Megatron-LM counts them
    if (ramp.start >= p.global_batch) {
      r.at("start").fail("a ramp-up starts below global_batch (" + std::to_string(p.global_batch) + ")");
    }
    if (ramp.increment > 0 && (p.global_batch - ramp.start) % ramp.increment != 0) {
      r.at("increment").fail("global_batch - start (" + std::to_string(p.global_batch - ramp.start) +
                             ") is not a multiple of the increment (" + std::to_string(ramp.increment) + ")");
    }
    p.batch_rampup = ramp;
  }
  if (m.has("overlap_communication")) p.overlap_communication = detail::read_bool(m.at("overlap_communication"));
  if (m.has("shared_expert_overlap")) p.shared_expert_overlap = detail::read_bool(m.at("shared_expert_overlap"));
  if (m.has("partition_activations")) p.partition_activations = detail::read_bool(m.at("partition_activations"));
  if (m.has("sequence_parallel")) p.sequence_parallel = detail::read_bool(m.at("sequence_parallel"));
  if (m.has("sequence_parallel_backward")) {
    p.sequence_parallel_backward = detail::read_choice(m.at("sequence_parallel_backward"), {"exposed", "overlapped"});
    if (!p.sequence_parallel) {
      m.at("sequence_parallel_backward").fail("needs sequence_parallel: true (it says how a sequence-parallel backward runs its collectives)");
    }
  }
  if (m.has("virtual_stages")) p.virtual_stages = detail::read_positive_int(m.at("virtual_stages"));
  // The layout's counts are multiplied in 64-bit integers and its chunks are listed one by one:
  // bounded far above any run (Llama 3.1's 128 chunks) and far below overflow.
  if (static_cast<double>(p.pipeline) * static_cast<double>(p.virtual_stages) > kMaxPipelineChunks) {
    m.at(m.has("virtual_stages") ? "virtual_stages" : "pipeline")
        .fail("pipeline x virtual_stages (" + std::to_string(p.pipeline) + " x " + std::to_string(p.virtual_stages) +
              ") is more than " + std::to_string(static_cast<std::int64_t>(kMaxPipelineChunks)) + " pipeline chunks");
  }
  if (p.microbatch > p.global_batch) {
    m.at("microbatch").fail("exceeds global_batch (" + std::to_string(p.global_batch) + "): a step runs whole microbatches");
  }
  if (m.has("padding")) {
    const char* what = "a share of the batch's positions that are padding, in [0, 1) (e.g. 0.24)";
    p.padding = detail::read_number_in(m.at("padding"), 0, 1, true, what);
    if (!(p.padding < 1)) m.at("padding").expected(what);
  }
  if (m.has("pipeline_schedule")) {
    const std::string schedule = detail::read_choice(m.at("pipeline_schedule"), {"1f1b", "zb1p", "dualpipe"});
    p.dualpipe = schedule == "dualpipe";
    p.zero_bubble = schedule == "zb1p";
    if (p.zero_bubble && p.pipeline < 2) {
      m.at("pipeline_schedule").fail("zb1p needs a pipeline of 2 or more stages (pipeline: " + std::to_string(p.pipeline) + ")");
    }

    if (p.dualpipe && (p.pipeline < 2 || p.pipeline % 2 != 0)) {
      m.at("pipeline_schedule").fail("dualpipe needs an even pipeline of 2 or more stages (pipeline: " +
                                     std::to_string(p.pipeline) + "): it runs microbatches from both ends");
    }
    if ((p.dualpipe || p.zero_bubble) && p.virtual_stages > 1) {
      m.at("pipeline_schedule").fail(schedule + " has its own schedule; drop virtual_stages (interleaved 1F1B)");
    }
  }
  if (m.has("stage_layers") && !m.at("stage_layers").node.IsMap()) {
    const Value list = m.at("stage_layers");
    const std::int64_t chunks = p.pipeline * p.virtual_stages;
    const std::string what = "a list of " + std::to_string(chunks) + " layer counts, one a pipeline chunk (pipeline x virtual_stages = " +
                             std::to_string(p.pipeline) + " x " + std::to_string(p.virtual_stages) + "), or {first: n, last: n}";
    if (!list.node.IsSequence() || static_cast<std::int64_t>(list.node.size()) != chunks) {
      list.expected(what, list.node.IsSequence() ? std::to_string(list.node.size()) + " of them" : "");
    }
    if (p.dualpipe) list.fail("dualpipe places two stages on each device; stage_layers is for 1f1b, interleaved or zb1p schedules");
    for (std::size_t i = 0; i < list.node.size(); ++i) {
      const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
      const std::int64_t n = detail::read_int(item);
      if (n < 0 || n > kMaxStageLayers) item.expected("a whole number of layers from 0 to 100,000");
      p.stage_layers.push_back(n);
    }
  }
  if (m.has("expert")) {
    p.expert = detail::read_positive_int(m.at("expert"));
    if (p.data > 0 && p.data % p.expert != 0) {
      m.at("expert").fail("must divide the data-parallel size (" + std::to_string(p.data) +
                          "): the experts spread over groups of this many data ranks");
    }
  }
  if (m.has("expert_tensor")) {
    p.expert_tensor = detail::read_positive_int(m.at("expert_tensor"));
    if (p.expert_tensor != 1 && p.expert_tensor != p.tensor) {
      m.at("expert_tensor").fail("must be 1 (whole experts on each rank of a tensor group) or the tensor-parallel size (" +
                                 std::to_string(p.tensor) + ": each expert split over the tensor group)");
    }
  }
  if (m.has("gradient_precision")) p.gradient_precision = detail::read_choice(m.at("gradient_precision"), {"fp32", "bf16", "fp16"});
  if (m.has("gradient_accumulation")) {
    p.gradient_accumulation = detail::read_choice(m.at("gradient_accumulation"), {"separate", "fused", "cast"});
  }
  if (m.has("pipeline_p2p")) p.pipeline_p2p = detail::read_choice(m.at("pipeline_p2p"), {"exchange", "blocking"});
  if (m.has("gradient_clipping")) p.gradient_clipping = detail::read_choice(m.at("gradient_clipping"), {"conditional", "always"});
  if (m.has("gradient_reduction")) {
    p.gradient_reduction = detail::read_choice(m.at("gradient_reduction"), {"reduce_scatter", "all_reduce", "stage1_copies"});
    if (p.zero_stage != 1) {
      m.at("gradient_reduction").fail("chooses how ZeRO-1 reduces the gradients; needs zero_stage: 1 (without ZeRO they are "
                                      "all-reduced, with ZeRO-2 and -3 reduce-scattered)");
    }
  }
  if (m.has("dropout_masks")) p.dropout_masks = detail::read_choice(m.at("dropout_masks"), {"seeded", "allreduce"});
  if (m.has("gradient_bucket")) {
    const Value b = m.at("gradient_bucket");
    if (b.node.IsScalar() && b.node.Scalar() == "megatron") {
      p.megatron_buckets = true;
    } else {
      try {
        p.gradient_bucket_bytes = detail::read_positive(b, Kind::bytes);
      } catch (const InputError&) {
        b.expected("a size in bytes (e.g. \"25 MB\") or `megatron` (Megatron-Core's default bucket)");
      }
    }
    if (p.zero_stage >= 2) {
      b.fail("sizes the buckets of the gradient reduction under ZeRO 0-1; ZeRO-2 and -3 reduce the gradients unit by unit");
    }
  }
  if (m.has("shard_group")) {
    p.shard_group = detail::read_positive_int(m.at("shard_group"));
    if (p.zero_stage != 3) {
      m.at("shard_group").fail("needs zero_stage: 3 (hybrid sharding shards the parameters within each group of "
                               "data-parallel ranks and replicates them across the groups)");
    }
    // (Over the ranks that hold the same weights, data x context, as the cost model shards; since
    // session 46, a review: `data` alone where it was given.)
    const std::int64_t cp = std::max<std::int64_t>(1, p.context);
    if (p.data > 0 && (p.data * cp) % p.shard_group != 0) {
      m.at("shard_group").fail(cp > 1 ? "must divide the data x context ranks (" + std::to_string(p.data * cp) + ")"
                                      : "must divide the data-parallel size (" + std::to_string(p.data) + ")");
    }
  }
  if (p.pipeline_p2p == "blocking" && (p.pipeline < 2 || p.virtual_stages > 1 || p.dualpipe || p.zero_bubble)) {
    m.at("pipeline_p2p").fail("blocking (DeepSpeed's pipeline engine) needs pipeline > 1 and the plain 1F1B schedule "
                              "(not virtual_stages > 1, zb1p or dualpipe)");
  }
  return p;
}

JobOverheads read_overheads(const Value& v) {
  const MapView m(v, {"checkpoint_interval", "checkpoint_bandwidth", "mtbf", "restart", "evaluation", "downtime", "runs"});
  JobOverheads o;
  if (m.has("checkpoint_interval")) o.checkpoint_interval_s = detail::read_positive(m.at("checkpoint_interval"), Kind::time);
  if (m.has("checkpoint_bandwidth")) {
    o.checkpoint_bandwidth_bytes_per_s = detail::read_positive(m.at("checkpoint_bandwidth"), Kind::bandwidth);
  }
  if (m.has("mtbf")) o.mtbf_s = detail::read_positive(m.at("mtbf"), Kind::time);
  if (m.has("restart")) o.restart_s = detail::read_non_negative(m.at("restart"), Kind::time);
  if (m.has("evaluation")) {
    o.evaluation_fraction = detail::read_number_in(m.at("evaluation"), 0, 10, true, "a share of training compute from 0 to 10 (e.g. 0.02)");
  }
  if (m.has("downtime")) {
    o.downtime_s = detail::read_non_negative(m.at("downtime"), Kind::time);
    if (o.downtime_s > kMaxSpanS) m.at("downtime").expected("a downtime of at most 1,000 years");
  }
  if (m.has("runs")) o.runs = detail::read_positive_int(m.at("runs"));
  if (o.checkpoint_bandwidth_bytes_per_s && !o.checkpoint_interval_s) {
    m.at("checkpoint_bandwidth").fail("needs checkpoint_interval");
  }
  if (o.mtbf_s && !o.checkpoint_interval_s) m.at("mtbf").fail("needs checkpoint_interval (work since the last checkpoint is lost)");
  // (A restart follows a failure: without an mtbf it would be silently ignored; since session 46.)
  if (m.has("restart") && !o.mtbf_s) m.at("restart").fail("needs mtbf (a restart follows a failure)");
  return o;
}

PrintedFigure printed(const Value& v, Kind kind) {
  const units::Quantity q = detail::read_quantity(v, kind);
  if (!(q.value > 0)) v.expected(units::describe(kind, "greater than 0"));
  return {q.value, q.resolution};
}

PublishedStep read_published_step(const Value& v) {
  const MapView m(v, {"mfu", "mfu_attention", "throughput", "step_time", "layer_time", "source"});
  PublishedStep s;
  if (m.has("source")) s.source = detail::read_text(m.at("source"));
  if (m.has("mfu")) {
    const units::Quantity q = detail::read_quantity(m.at("mfu"), Kind::ratio);
    if (!(q.value > 0 && q.value <= 1)) m.at("mfu").expected("a fraction of peak in (0, 1] (e.g. 0.41)");
    s.mfu = PrintedFigure{q.value, q.resolution};
  }
  if (m.has("mfu_attention")) {
    if (!m.has("mfu")) m.at("mfu_attention").fail("says how an mfu counts attention; give mfu too");
    s.mfu_full_attention = detail::read_choice(m.at("mfu_attention"), {"causal", "full"}) == "full";
  }
  if (m.has("throughput")) {
    // Tokens a second per accelerator: the rate is compared with the step's tokens, so another
    // count noun ("images/s") is refused rather than read as tokens.
    const Value& t = m.at("throughput");
    if (t.node.IsScalar() && t.node.Scalar().find("token") == std::string::npos) {
      t.expected("tokens a second per accelerator (e.g. \"380 tokens/s\")");
    }
    s.tokens_per_s = printed(t, Kind::frequency);
  }
  if (m.has("step_time")) s.step_s = printed(m.at("step_time"), Kind::time);
  if (m.has("layer_time")) s.layer_s = printed(m.at("layer_time"), Kind::time);
  if (!s.mfu && !s.tokens_per_s && !s.step_s && !s.layer_s) {
    v.fail("missing a step figure: give mfu, throughput (tokens/s per accelerator), step_time or layer_time");
  }
  return s;
}

void apply_published(const Value& v, PublishedFigures& f) {
  const MapView m(v, {"source", "energy", "energy_scope", "co2e_location", "co2e_market", "step", "accelerator_hours",
                      "notes"});
  m.require("source");
  f.source = detail::read_text(m.at("source"));
  if (m.has("energy")) f.energy_j = printed(m.at("energy"), Kind::energy);
  if (m.has("energy_scope")) {
    f.energy_includes_pue = detail::read_choice(m.at("energy_scope"), {"facility", "it"}) == "facility";
    // The scope of a published energy: without one it would scope nothing (since session 36).
    if (!m.has("energy")) m.at("energy_scope").fail("scopes a published energy; give energy, or drop energy_scope");
  }
  if (m.has("co2e_location")) f.co2e_location_kg = printed(m.at("co2e_location"), Kind::co2e);
  if (m.has("co2e_market")) f.co2e_market_kg = printed(m.at("co2e_market"), Kind::co2e);
  if (m.has("step")) f.step = read_published_step(m.at("step"));
  // Beside a footprint too (since session 50): a first-principles job (the job's check below
  // refuses them beside a duration) that publishes a run's hours and its CO2e, as Meta's card for
  // Llama 3.1 does for a run costed in stages, has both compared by `validate --mode
  // first-principles`; before, the footprint was refused with them.
  if (m.has("accelerator_hours")) f.accelerator_time_s = printed(m.at("accelerator_hours"), Kind::time);
  if (m.has("notes")) f.notes = detail::read_text(m.at("notes"));
  if (!f.has_footprint() && !f.step && !f.accelerator_time_s) {
    v.fail("missing a figure to compare: give energy, co2e_location, co2e_market, step or accelerator_hours");
  }
}

const EntityKind<JobDraft>& Builder::training_kind() {
  static const EntityKind<JobDraft> kind{
      "training", "training job",
      {"id", "from", "name", "model", "hardware", "accelerators", "duration", "accelerator_hours",
       "power", "datacenter", "tokens", "flops", "precision", "fusion", "eager", "cross_entropy", "expert_dispatch", "parallelism", "overheads", "start",
       "repeat", "stage_of", "published", "notes"},
      {"hardware", "accelerators", "datacenter"},
      [](Builder& b, const MapView& m, JobDraft& d) {
        TrainingJob& j = d.job;
        if (m.has("id")) j.id = detail::read_id(m.at("id"));
        if (m.has("name")) detail::read_text(m.at("name"));
        if (m.has("model")) {
          const Model& model = b.model(m.at("model"));
          j.model_id = model.id;
          j.design = model.design;
          j.layout = model.layout;
        }
        if (m.has("precision")) {
          j.precision = detail::read_choice(m.at("precision"), kPrecisions);
        }
        if (m.has("parallelism")) {
          j.parallelism = read_parallelism(m.at("parallelism"));
          // A parallelism given again (extends) replaces the earlier one, its partition too.
          d.stage_layers.reset();
          d.stage_ends.reset();
          d.shared_expert_overlap_at.reset();
          d.partition_activations_at.reset();
          const Value pv = m.at("parallelism");
          if (pv.node.IsMap() && pv.node["partition_activations"] && j.parallelism->partition_activations) {
            d.partition_activations_at = pv.child(pv.node["partition_activations"], "partition_activations");
          }
          if (pv.node.IsMap() && pv.node["shared_expert_overlap"] && j.parallelism->shared_expert_overlap) {
            d.shared_expert_overlap_at = pv.child(pv.node["shared_expert_overlap"], "shared_expert_overlap");
          }
          if (pv.node.IsMap() && pv.node["stage_layers"]) {
            d.stage_layers = pv.child(pv.node["stage_layers"], "stage_layers");
            if (d.stage_layers->node.IsMap()) {
              // The short form: the first and the last chunk's layers (Megatron-Core's
              // decoder_first_pipeline_num_layers and decoder_last_pipeline_num_layers, by chunk).
              const MapView ends(*d.stage_layers, {"first", "last"});
              ends.require("first");
              ends.require("last");
              const std::int64_t first = detail::read_int(ends.at("first")), last_n = detail::read_int(ends.at("last"));
              if (first < 0 || first > kMaxStageLayers) ends.at("first").expected("a whole number of layers from 0 to 100,000");
              if (last_n < 0 || last_n > kMaxStageLayers) ends.at("last").expected("a whole number of layers from 0 to 100,000");
              if (j.parallelism->dualpipe) {
                d.stage_layers->fail("dualpipe places two stages on each device; stage_layers is for 1f1b, interleaved or zb1p schedules");
              }
              if (j.parallelism->pipeline * j.parallelism->virtual_stages < 2) {
                d.stage_layers->fail("needs pipeline x virtual_stages of 2 or more: a first and a last chunk");
              }
              d.stage_ends = std::make_pair(first, last_n);
            }
          }
        }
        if (m.has("fusion")) {
          j.fusion = detail::read_choice(m.at("fusion"), kFusions);
          d.fusion_at = m.at("fusion");
        }
        if (m.has("eager")) {
          // true, false, neox (GPT-NeoX's layer code) or largescale (GLM-130B's; since session 51).
          const Value& v = m.at("eager");
          j.neox = v.node.IsScalar() && v.node.Scalar() == "neox";
          j.largescale = v.node.IsScalar() && v.node.Scalar() == "largescale";
          if (!j.neox && !j.largescale &&
              !(v.node.IsScalar() && (v.node.Scalar() == "true" || v.node.Scalar() == "yes" || v.node.Scalar() == "false" ||
                                      v.node.Scalar() == "no"))) {
            v.expected("true, false, neox or largescale");
          }
          j.eager = j.neox || (!j.largescale && detail::read_bool(v));
          d.eager_at = v;
        }
        if (m.has("cross_entropy")) {
          j.cross_entropy = detail::read_choice(m.at("cross_entropy"), {"fused", "megatron", "pytorch"});
          d.cross_entropy_at = m.at("cross_entropy");
        }
        if (m.has("expert_dispatch")) {
          j.expert_dispatch = detail::read_choice(m.at("expert_dispatch"), {"compute", "fp8"});
          d.expert_dispatch_at = m.at("expert_dispatch");
        }
        if (m.has("overheads")) j.overheads = read_overheads(m.at("overheads"));
        if (m.has("start")) {
          std::string text_date;
          j.start_unix_s = detail::read_date(m.at("start"), text_date);
        }
        if (m.has("repeat")) {
          // Retraining cadence: {every: "3 months", times: 20} (times counts the first run too).
          const MapView r(m.at("repeat"), {"every", "times"});
          r.require("every");
          r.require("times");
          j.repeat_every_s = detail::read_positive(r.at("every"), Kind::time);
          j.repeat_count = detail::read_positive_int(r.at("times"));
          // Each run is an event of the lifecycle: a run an hour for 10 years is 87,600.
          if (j.repeat_count > 100000) r.at("times").expected("at most 100,000 runs");
        }
        if (m.has("hardware")) j.hardware = b.hardware_ref(m.at("hardware"));
        if (m.has("accelerators")) j.accelerators = detail::read_positive_int(m.at("accelerators"));
        if (m.has("duration") && m.has("accelerator_hours")) {
          m.at("accelerator_hours").fail("give either duration or accelerator_hours, not both");
        }
        if (m.has("duration")) {
          d.duration_s = detail::read_positive(m.at("duration"), Kind::time);
          d.accelerator_time_s.reset();
        }
        if (m.has("accelerator_hours")) {
          d.accelerator_time_s = detail::read_positive(m.at("accelerator_hours"), Kind::time);
          d.duration_s.reset();
        }
        if (m.has("power")) {
          apply_power(m.at("power"), j.power);
          d.power_given = true;
          d.power_at = m.at("power");
        }
        if (m.has("datacenter")) j.datacenter = b.datacenter_ref(m.at("datacenter"));
        if (m.has("tokens")) {
          j.tokens = detail::read_positive(m.at("tokens"), Kind::count);
          // Tokens, or an image model's samples (since session 35; "1e9 params" was taken as tokens).
          detail::check_count_noun(m.at("tokens"), Kind::count, {"token", "sample", "image"});
          // At least one (since session 45, a review: "0.5 tokens" had been a run of 2.4e-7 steps); a
          // fraction above one stays, as a sweep's continuous range over tokens gives it.
          if (*j.tokens < 1) m.at("tokens").expected("tokens (or samples) >= 1");
          d.tokens_at = m.at("tokens");
        }
        if (m.has("flops")) j.flops = detail::read_positive(m.at("flops"), Kind::work);
        if (m.has("published")) {
          PublishedFigures f;
          apply_published(m.at("published"), f);
          j.published = f;
          d.published_at = m.at("published");
        }
        if (m.has("stage_of")) {
          j.stage_of = detail::read_id(m.at("stage_of"));
          d.stage_of = m.at("stage_of");
        }
        if (m.has("notes")) detail::read_text(m.at("notes"));
        j.origin = m.self().location();
      },
      [](JobDraft& d, const Value& last) {
        TrainingJob& j = d.job;
        // Checked here, once every file the entry extends is read.
        if (j.published && j.published->accelerator_time_s && (d.duration_s || d.accelerator_time_s)) {
          d.published_at->fail("published accelerator_hours are the reference of a first-principles job: drop "
                               "the job's duration (or accelerator_hours) and power, or publish its energy or CO2e in "
                               "place of published.accelerator_hours (compared over the job's duration)");
        }
        // Samples or images are tokens only where a sample is one token (an image model): a
        // decoder's "1e9 samples" had been costed as 1e9 tokens, seq_len times too few (since
        // session 36, from a review).
        if (d.tokens_at && d.tokens_at->node.IsScalar()) {
          const std::string noun = detail::read_quantity(*d.tokens_at, Kind::count).noun;
          std::int64_t per = 1;
          if (const auto* t = std::get_if<TransformerDesign>(&j.design)) per = t->tokens_per_sample();
          if (const auto* l = std::get_if<LstmDesign>(&j.design)) per = l->seq_len;
          if (const auto* f = std::get_if<FileGraphDesign>(&j.design)) per = f->tokens_per_sample;
          if ((noun == "sample" || noun == "image") && per > 1) {
            d.tokens_at->fail("counts " + noun + "s, and a sample of job " + text::quoted(j.id) + "'s model " +
                              text::quoted(j.model_id) + " is " + std::to_string(per) + " tokens: give the tokens (" +
                              std::to_string(per) + " a sample)");
          }
        }
        // A loss's kernels need a loss over logits: the transformer and LSTM builders cost one; a
        // ResNet's, an MLP's or a graph file's graph has none (since session 48, a review: the key
        // had no effect, unsaid).
        const auto* lstm = std::get_if<LstmDesign>(&j.design);
        if (d.cross_entropy_at && j.cross_entropy != "fused" &&
            (std::holds_alternative<ResNetDesign>(j.design) || std::holds_alternative<MlpDesign>(j.design) ||
             std::holds_alternative<FileGraphDesign>(j.design) || (lstm != nullptr && lstm->vocab == 0))) {
          d.cross_entropy_at->fail("the loss's kernels apply to a loss over logits, and job " + text::quoted(j.id) + "'s model " +
                                   text::quoted(j.model_id) + " builds none (" +
                                   (std::holds_alternative<ResNetDesign>(j.design) ? "a ResNet"
                                    : std::holds_alternative<MlpDesign>(j.design)  ? "an MLP"
                                    : lstm != nullptr                               ? "an LSTM without a vocabulary"
                                                                                   : "a graph file") +
                                   "): drop cross_entropy");
        }
        // The dispatch's precision applies to a mixture of experts' all-to-all, and 8 bits to an 8-bit
        // job (since session 49).
        if (d.expert_dispatch_at) {
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          // (`compute`, the default, applies to any model: a job copied with `from:` may change it.)
          if (j.expert_dispatch == "fp8" && (t == nullptr || t->experts == 0)) {
            d.expert_dispatch_at->fail("fp8 dispatches a mixture of experts' tokens in 8 bits, and job " + text::quoted(j.id) +
                                       "'s model " + text::quoted(j.model_id) + " has no experts: drop expert_dispatch");
          }
          if (j.expert_dispatch == "fp8" && j.precision != "fp8") {
            d.expert_dispatch_at->fail("fp8 dispatches the tokens an 8-bit job quantizes for its experts' products, and job " +
                                       text::quoted(j.id) + " computes in " + j.precision + ": drop expert_dispatch, or give precision: fp8");
          }
        }
        // The shared experts' products are what the all-to-all runs under; DualPipe hides it behind
        // the paired chunk instead (since session 50).
        if (d.shared_expert_overlap_at && j.parallelism) {
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          if (t == nullptr || t->experts == 0 || t->shared_experts == 0) {
            d.shared_expert_overlap_at->fail("hides a mixture of experts' all-to-all behind its shared experts, and job " + text::quoted(j.id) +
                                      "'s model " + text::quoted(j.model_id) + " has " +
                                      (t == nullptr || t->experts == 0 ? "no experts" : "no shared experts") +
                                      ": drop shared_expert_overlap");
          }
          if (j.parallelism->dualpipe) {
            d.shared_expert_overlap_at->fail("job " + text::quoted(j.id) +
                                             " runs dualpipe, which already runs the all-to-all under the paired chunk's compute: "
                                             "drop shared_expert_overlap");
          }
          // (The experts' group as the cost model takes it: `expert`, or min(data, experts).)
          const Parallelism& pl = *j.parallelism;
          const std::int64_t ranks = std::max<std::int64_t>(1, pl.tensor * pl.pipeline * std::max<std::int64_t>(1, pl.context));
          const std::int64_t data = pl.data > 0 ? pl.data : std::max<std::int64_t>(1, j.accelerators / ranks);
          if ((pl.expert > 0 ? pl.expert : std::min(data, t->experts)) == 1) {
            d.shared_expert_overlap_at->fail("hides the experts' all-to-all, and job " + text::quoted(j.id) +
                                      " holds every expert on each rank (an expert-parallel group of 1): there is none; drop "
                                      "shared_expert_overlap");
          }
        }
        // A TPU runs TensorFlow (and PyTorch/XLA) through XLA, which fuses what these keys itemise:
        // TensorFlow 1.x's GPU kernels, a GPU code's loss passes, eager PyTorch's chains (since
        // session 48, a review: accepted and costed). Eager PyTorch is not TensorFlow 1.x.
        const bool tpu = j.hardware.kind == "tpu";
        if (d.fusion_at) check_fusion_on(*d.fusion_at, j.fusion, j.hardware);
        if (d.cross_entropy_at && j.cross_entropy != "fused" && tpu) {
          d.cross_entropy_at->fail(j.cross_entropy + " names a GPU code's loss kernels, and " + j.hardware.id +
                                   " is a TPU, whose loss XLA compiles: drop cross_entropy");
        }
        if (j.neox || j.largescale) {
          // GPT-NeoX's and LargeScale's layer code is a dense decoder's (since session 51).
          const std::string code = j.neox ? "neox names GPT-NeoX's" : "largescale names GLM-130B's LargeScale's";
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          if (t == nullptr || t->arch != TransformerDesign::Arch::decoder || t->patch > 0 || t->experts > 0 ||
              t->kv_lora_rank > 0 || t->evolved) {
            d.eager_at->fail(code + " dense decoder layer, and job " + text::quoted(j.id) + "'s model " +
                             (t == nullptr ? std::string("has no transformer design")
                              : t->arch != TransformerDesign::Arch::decoder || t->patch > 0 ? std::string("is not a decoder")
                              : t->experts > 0 ? std::string("has experts")
                              : t->kv_lora_rank > 0 ? std::string("has latent attention")
                                                    : std::string("is an evolved transformer")) +
                             ": give eager true or false");
          }
          if (j.hardware.kind == "tpu") {
            d.eager_at->fail(code + " CUDA kernels and DeepSpeed's copies, and " + j.hardware.id +
                             " is a TPU, whose XLA compiles its own: give eager true or false");
          }
          // Their attention: GPT-NeoX's FlashAttention or fused softmax; LargeScale's fused softmax
          // (Megatron's, no flash path). LargeScale's Megatron-DeepSpeed of 2022 has no sequence
          // parallelism, and its layer is sequential, post-LN LayerNorm.
          const bool flash = j.fusion == "attention" || j.fusion == "flash1" || j.fusion == "flash2" || j.fusion == "flash3";
          const bool attention_ok = j.neox ? (j.fusion == "softmax" || flash) : j.fusion == "softmax";
          if (!attention_ok) {
            const std::string want = j.neox ? "GPT-NeoX's attention is FlashAttention or its fused softmax: give fusion flash1, flash2, attention or softmax"
                                            : "LargeScale's attention is Megatron's fused softmax: give fusion softmax";
            if (d.fusion_at) {
              d.fusion_at->fail("is " + j.fusion + ", and " + want);
            } else {
              d.eager_at->fail(std::string(j.neox ? "is neox" : "is largescale") + " with the default fusion, elementwise, and " + want);
            }
          }
          if (j.largescale && t != nullptr && (t->rms_norm || t->parallel_block)) {
            d.eager_at->fail(std::string("largescale names GLM-130B's LargeScale's sequential LayerNorm layer, and job ") + text::quoted(j.id) +
                             "'s model " + (t->rms_norm ? "uses RMSNorm" : "has a parallel block") + ": give eager true or false");
          }
          if (j.largescale && j.parallelism && j.parallelism->sequence_parallel) {
            d.eager_at->fail("largescale names GLM-130B's LargeScale, whose Megatron-DeepSpeed of 2022 has no sequence parallelism, and job " +
                             text::quoted(j.id) + " says sequence_parallel: give eager true or false");
          }
        }
        if (d.partition_activations_at && j.parallelism && (!(j.neox || j.largescale) || !j.parallelism->recompute)) {
          d.partition_activations_at->fail(std::string("is DeepSpeed's partitioned activation checkpointing as GPT-NeoX and LargeScale run it, and job ") +
                                           text::quoted(j.id) +
                                           (!(j.neox || j.largescale) ? " does not say eager: neox (or largescale)" : " does not recompute every layer (recompute: true)") +
                                           ": drop partition_activations");
        }
        if (j.eager && j.fusion == "tensorflow1") {
          (d.eager_at ? *d.eager_at : d.fusion_at ? *d.fusion_at : last)
              .fail("eager (PyTorch's chains of kernels) and fusion: tensorflow1 (TensorFlow 1.x's graph) are two frameworks: "
                    "give one");
        }
        // A published market-based figure is compared with the data centre's market intensity
        // (since session 34: `run` accepted it and `validate` refused it at the job's line).
        if (j.published && j.published->co2e_market_kg && !j.datacenter.market_intensity_kg_per_j && d.published_at) {
          d.published_at->fail("co2e_market is compared with the data centre's market-based figure, and " + j.datacenter.id +
                               " has no market_intensity: give it one, or drop co2e_market");
        }
        if (d.stage_ends && j.parallelism) {
          // {first, last}: the chunks between them share the rest evenly, the earlier ones one layer
          // more where it does not divide (DeepSpeed's partition_uniform).
          const auto* t = std::get_if<TransformerDesign>(&j.design);
          if (!t) d.stage_layers->fail("partitions a transformer's layers; the model has no transformer design");
          const std::int64_t layers = t->encoder_layers + t->decoder_layers + t->mtp_depth;
          const std::int64_t chunks = j.parallelism->pipeline * j.parallelism->virtual_stages;
          const std::int64_t rest = layers - d.stage_ends->first - d.stage_ends->second;
          if (rest < 0 || (chunks == 2 && rest != 0)) {
            d.stage_layers->fail("first (" + std::to_string(d.stage_ends->first) + ") and last (" +
                                 std::to_string(d.stage_ends->second) + ") leave " + std::to_string(rest) +
                                 " layers for the " + std::to_string(chunks - 2) + " chunks between them; the model has " +
                                 std::to_string(layers));
          }
          std::vector<std::int64_t> split(static_cast<std::size_t>(chunks), 0);
          split.front() = d.stage_ends->first;
          split.back() = d.stage_ends->second;
          for (std::int64_t c = 1; c + 1 < chunks; ++c) {
            split[static_cast<std::size_t>(c)] = rest / (chunks - 2) + (c - 1 < rest % (chunks - 2) ? 1 : 0);
          }
          j.parallelism->stage_layers = split;
        }
        // A layout is checked wherever it is given: a job with a published duration is costed from it
        // too (`dlcarbon validate --mode first-principles`).
        if (j.parallelism) check_layout(j, last, d.stage_layers);
        if (!d.duration_s && !d.accelerator_time_s) {
          // First-principles mode: the duration is predicted from the design.
          const bool ready = j.tokens && j.parallelism && !std::holds_alternative<std::monostate>(j.design);
          if (!ready) {
            last.fail("missing required key \"duration\" (or \"accelerator_hours\"; or, to predict it, "
                      "tokens, parallelism and a model with a design)");
          }
          // A footprint needs the duration it was measured over; a step figure does not.
          // 8-bit training needs 8-bit matrix units; costing it at another rate with its casts would be
          // slower than the 16-bit run it stands for (since session 31; before, a silent fallback).
          if ((j.precision == "fp8" || j.precision == "int8") && !j.hardware.peak_flop_per_s.count(j.precision)) {
            last.fail("precision " + j.precision + ": " + j.hardware.id + " lists no " + j.precision +
                      " peak, so it cannot train in " + j.precision + "; choose bf16 or fp16, or hardware with an " +
                      j.precision + " peak");
          }
          if (const std::string why = without_rate(j.hardware, j.precision); !why.empty()) {
            last.fail("precision " + j.precision + ": " + why);
          }
          // Its power comes from the step model: a given one would be ignored (since session 36, from
          // a review; `validate --mode first-principles` drops a published job's duration and power
          // after reading it, so the published scenarios keep both).
          if (d.power_at) {
            d.power_at->fail("a first-principles job (no duration) predicts its power from its steps; drop power, or give "
                             "the duration (or accelerator_hours) the power was measured over");
          }
          // A published footprint without a duration (session 31; before, bad input): `validate
          // --mode first-principles` compares its energy with the prediction; the accounting mode,
          // which re-runs a published duration, leaves it out.
          j.duration_given = false;
          j.duration_s = 0;
          return;
        }
        if (!d.power_given) last.fail("missing required key \"power\"");
        j.duration_s = d.duration_s ? *d.duration_s : *d.accelerator_time_s / static_cast<double>(j.accelerators);
      }};
  return kind;
}

const EntityKind<InferenceDraft>& inference_kind_table() {
  static const EntityKind<InferenceDraft> kind{
      "inference", "inference job",
      {"id", "from", "name", "model", "hardware", "datacenter", "batch", "precision", "layout", "input_layout",
       "fusion", "inferences", "notes"},
      {"model", "hardware", "datacenter", "inferences"},
      [](Builder& b, const MapView& m, InferenceDraft& d) {
        InferenceJob& j = d.job;
        if (m.has("id")) j.id = detail::read_id(m.at("id"));
        if (m.has("name")) detail::read_text(m.at("name"));
        if (m.has("model")) take_costed_model(b, m, j, d);
        if (m.has("hardware")) j.hardware = b.hardware_ref(m.at("hardware"));
        if (m.has("datacenter")) j.datacenter = b.datacenter_ref(m.at("datacenter"));
        if (m.has("batch")) j.batch = detail::read_positive_int(m.at("batch"));
        if (m.has("precision")) {
          j.precision = detail::read_choice(m.at("precision"), kPrecisions);
        }
        if (m.has("layout")) {
          j.layout = detail::read_choice(m.at("layout"), {"nchw", "nhwc"});
          d.layout_given = true;
          d.layout_at = m.at("layout");
        }
        if (m.has("input_layout")) {
          j.input_layout = detail::read_choice(m.at("input_layout"), {"nchw", "nhwc"});
          d.input_layout_at = m.at("input_layout");
        }
        if (m.has("fusion")) {
          j.fusion = detail::read_choice(m.at("fusion"), kFusions);
          d.fusion_at = m.at("fusion");
        }
        if (m.has("inferences")) {
          j.inferences = detail::read_positive(m.at("inferences"), Kind::count);
          detail::check_count_noun(m.at("inferences"), Kind::count, {"request", "image", "sample"});
          // Whole inferences (since session 38, a review: "0.001" and "1.5" were costed).
          if (std::floor(j.inferences) != j.inferences) m.at("inferences").expected("a whole number of inferences >= 1");
        }
        if (m.has("notes")) detail::read_text(m.at("notes"));
        j.origin = m.self().location();
      },
      [](InferenceDraft& d, const Value& last) {
        if (const std::string why = without_rate(d.job.hardware, d.job.precision); !why.empty()) {
          last.fail("precision " + d.job.precision + ": " + why);
        }
        if (d.fusion_at) check_fusion_on(*d.fusion_at, d.job.fusion, d.job.hardware);
        // A layout is an image batch's: tokens and feature vectors have none to reorder (since
        // session 33; before, a decoder's token ids were "reordered", ~0.6 % of its energy).
        const InferenceJob& j = d.job;
        if (d.layout_at) check_layout_key(*d.layout_at, j.design, j.model_id);
        if (!d.input_layout_at || std::holds_alternative<std::monostate>(j.design)) return;
        const auto* f = std::get_if<FileGraphDesign>(&j.design);
        const auto* vit = std::get_if<TransformerDesign>(&j.design);
        const bool images = std::holds_alternative<ResNetDesign>(j.design) || (vit && vit->image > 0) ||
                            (f && std::any_of(f->ops.begin(), f->ops.end(), [](const FileOp& o) { return o.kind == "conv2d"; }));
        if (!images) {
          d.input_layout_at->fail("input_layout is the layout of an image batch (a ResNet, a ViT, or a graph file with convolutions); model " +
                                  text::quoted(j.model_id) + " has no images to reorder");
        }
      }};
  return kind;
}

// --- deployments (docs/lifecycle.md) ---------------------------------------------------

// A quantity over time: a number (constant) or a map: {initial, growth: "40 %/year"}
// (exponential), {initial, capacity, rate: "150 %/year"} (logistic), {steps: [{from, value}]}
// (piecewise), {file: x.csv} (trace). `start` (default: the deployment's start) anchors the curve.
Growth read_growth(const Value& v, Kind kind, bool& start_given, std::initializer_list<std::string_view> nouns = {}) {
  Growth g;
  // What its counts may name (check_count_noun), in every form that writes one: the number, a
  // curve's initial and capacity, each step's value (since session 35, from a review).
  const auto counts = [&](const Value& x) {
    if (nouns.size() > 0) detail::check_count_noun(x, kind, nouns);
  };
  // A growth given again (in a file that extends another) replaces the earlier one, its start too.
  start_given = false;
  if (v.node.IsScalar()) {
    g.initial = detail::read_non_negative(v, kind);
    counts(v);
    return g;
  }
  if (!v.node.IsMap()) v.expected("a number or a map (initial and growth, capacity and rate, steps, or file)");
  const MapView m(v, {"initial", "growth", "capacity", "rate", "steps", "file", "start"});
  // One form per growth: a trace, steps, or a curve from `initial`.
  const std::vector<std::string> forms{"file", "steps", "initial"};
  std::vector<std::string> given;
  for (const auto& f : forms) {
    if (m.has(f)) given.push_back(f);
  }
  if (given.size() > 1) {
    m.at(given[1]).fail("give only one of file, steps or initial (with growth, or capacity and rate); got " + text::join(given, " and "));
  }
  if (!m.has("initial")) {
    for (const char* k : {"growth", "capacity", "rate"}) {
      if (m.has(k)) m.at(k).fail(std::string(k) + " needs initial (a curve); steps and file give the values themselves");
    }
  }
  if (m.has("start") && !m.has("initial")) m.at("start").fail("start anchors a curve (initial with growth or capacity); steps and file carry their own dates");
  if (m.has("start")) {
    std::string text_date;
    g.start_unix_s = detail::read_date(m.at("start"), text_date);
    start_given = true;
  }
  if (m.has("file")) {
    detail::read_growth_trace(m.at("file"), g);
    return g;
  }
  if (m.has("steps")) {
    const Value list = m.at("steps");
    if (!list.node.IsSequence() || list.node.size() == 0) list.expected("a list of {from: date, value}");
    for (std::size_t i = 0; i < list.node.size(); ++i) {
      const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
      const MapView st(item, {"from", "value"});
      st.require("from");
      st.require("value");
      std::string text_date;
      const std::int64_t t = detail::read_date(st.at("from"), text_date);
      if (!g.time_unix_s.empty() && t <= g.time_unix_s.back()) st.at("from").expected("dates in increasing order");
      g.time_unix_s.push_back(t);
      g.values.push_back(detail::read_non_negative(st.at("value"), kind));
      counts(st.at("value"));
    }
    g.form = Growth::Form::piecewise;
    return g;
  }
  m.require("initial");
  g.initial = detail::read_positive(m.at("initial"), kind);
  counts(m.at("initial"));
  // One curve: exponential (growth) or logistic (capacity and rate), not both (since session 42,
  // a review: the other's keys had been ignored).
  if (m.has("growth") && (m.has("capacity") || m.has("rate"))) {
    m.at("growth").fail(std::string("give growth (exponential) or capacity and rate (logistic), not both; got growth and ") +
                        (m.has("capacity") ? "capacity" : "rate"));
  }
  if (m.has("capacity")) {
    m.require("rate");
    g.form = Growth::Form::logistic;
    g.capacity = detail::read_positive(m.at("capacity"), kind);
    counts(m.at("capacity"));
    if (g.capacity < g.initial) m.at("capacity").expected("a capacity >= initial");
    g.rate_per_year = read_trajectory(m.at("rate"));
    if (!(g.rate_per_year > 0)) m.at("rate").expected("a positive rate (e.g. \"150 %/year\")");
  } else if (m.has("growth")) {
    g.form = Growth::Form::exponential;
    g.rate_per_year = read_trajectory(m.at("growth"));
  } else if (m.has("rate")) {
    m.at("rate").fail("a rate needs a capacity (logistic growth); for exponential growth use \"growth\"");
  }
  return g;
}

std::string share_text(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", x);
  return b;
}

std::vector<double> read_profile(const Value& v, std::size_t n, const std::string& what) {
  if (!v.node.IsSequence() || v.node.size() != n) {
    v.expected("a list of " + std::to_string(n) + " numbers (" + what + ")",
               v.node.IsSequence() ? std::to_string(v.node.size()) + " of them" : "");
  }
  std::vector<double> out;
  double sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(detail::read_number_in(v.child(v.node[i], "[" + std::to_string(i) + "]"), 0, 1e9, true, "a number from 0 to 1e9"));
    sum += out.back();
  }
  if (!(sum > 0)) v.expected("a profile with some value above 0");
  // (x / sum first: n / sum overflows for a sum past 1 / DBL_MAX, and 0 x inf is NaN; since session
  // 46, a review.)
  for (auto& x : out) x = x / sum * static_cast<double>(n);  // mean 1
  return out;
}

const EntityKind<DeploymentDraft>& deployment_kind_table() {
  static const EntityKind<DeploymentDraft> kind{
      "deployments", "deployment",
      {"id", "from", "name", "model", "kind", "start", "end", "duration", "step", "hardware", "hardware_mix",
       "accelerators_per_replica", "replicas", "headroom", "demand", "devices", "profile", "batch", "precision",
       "layout", "fusion", "request", "regions", "charging_efficiency", "useful_fraction", "lifetime", "notes"},
      {"model", "demand", "regions"},
      [](Builder& b, const MapView& m, DeploymentDraft& dr) {
        Deployment& d = dr.d;
        if (m.has("id")) d.id = detail::read_id(m.at("id"));
        if (m.has("name")) detail::read_text(m.at("name"));
        if (m.has("model")) {
          take_costed_model(b, m, d, dr);
          // A model given here that is not a language model drops a request an earlier piece gave
          // (`from`, a sweep's base), as `kind` drops the other kind's keys: only this piece's own
          // keys are held against it (since session 39; before, the inherited request was refused
          // at the parent's line and could not be unset).
          const auto* t = std::get_if<TransformerDesign>(&d.design);
          const bool generates = t && t->image == 0 &&
                                 (t->arch == TransformerDesign::Arch::decoder ||
                                  (t->arch == TransformerDesign::Arch::encoder_decoder && !t->evolved && t->kv_lora_rank == 0));
          if (!m.has("request") && !generates) {
            d.tokens_in = 0;
            d.tokens_out = 0;
            dr.request_at.reset();
          }
        }
        if (m.has("kind")) {
          d.kind = detail::read_choice(m.at("kind"), {"cloud", "edge"}) == "edge" ? Deployment::Kind::edge : Deployment::Kind::cloud;
          // A kind given here overrides what an earlier piece (`from`, `extends`, a sweep's base)
          // gave for the other kind: only keys of this piece, read below, are held against it
          // (since session 34: an inherited key that cannot be unset was refused).
          if (d.kind == Deployment::Kind::edge) {
            dr.batch_at.reset();
            dr.headroom_at.reset();
            dr.per_replica_at.reset();
            d.batch = 1;  // a device serves its inferences one at a time
            d.accelerators_per_replica = 1;
            // (The fleet too: a cloud deployment's replicas; since session 42, a review.)
            d.replicas.reset();
            dr.replicas_start_given = false;
          } else {
            dr.charging_at.reset();
            d.devices.reset();
            dr.devices_start_given = false;
          }
        }
        std::string text_date;
        if (m.has("start")) {
          d.start_unix_s = detail::read_date(m.at("start"), text_date);
          dr.start_given = true;
        }
        if (m.has("end") && m.has("duration")) m.at("duration").fail("give either end or duration, not both");
        if (m.has("end")) {
          d.end_unix_s = detail::read_date(m.at("end"), text_date);
          dr.end_given = true;
          dr.duration_s.reset();
        }
        if (m.has("duration")) {
          dr.duration_s = detail::read_positive(m.at("duration"), Kind::time);
          // As the scenario's horizon: a date past it is never simulated, and it must stay a date.
          if (*dr.duration_s > kMaxSpanS) m.at("duration").expected("a duration of at most 1,000 years");
          // Deployments are dated to the second (since session 34; below, "ends before it starts").
          if (*dr.duration_s < 1) m.at("duration").expected("a duration of at least 1 s");
          dr.end_given = false;
        }
        if (m.has("step")) {
          d.step_s = detail::read_positive(m.at("step"), Kind::time);
          if (d.step_s < 3600) m.at("step").expected("a step of at least 1 h (the grid and the profile are hourly)");
        }
        if (m.has("hardware") && m.has("hardware_mix")) m.at("hardware_mix").fail("give either hardware or hardware_mix, not both");
        if (m.has("hardware")) {
          d.mix = {MixStep{0, {b.hardware_ref(m.at("hardware"))}, {1.0}, {m.at("hardware").location()}, {m.at("hardware").path}}};
          d.mix_owner = d.id;
          dr.mix_at = m.at("hardware");
        }
        if (m.has("hardware_mix")) {
          const Value list = m.at("hardware_mix");
          d.mix_owner = d.id;
          dr.mix_at = list;
          if (!list.node.IsSequence() || list.node.size() == 0) list.expected("a list of {from: date, shares: {hardware id: share}}");
          d.mix.clear();
          for (std::size_t i = 0; i < list.node.size(); ++i) {
            const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
            const MapView st(item, {"from", "shares"});
            st.require("shares");
            MixStep step;
            if (st.has("from")) step.from_unix_s = detail::read_date(st.at("from"), text_date);
            else if (i > 0) st.require("from");
            if (!d.mix.empty() && step.from_unix_s <= d.mix.back().from_unix_s) st.at("from").expected("dates in increasing order");
            const Value shares = st.at("shares");
            if (!shares.node.IsMap() || shares.node.size() == 0) shares.expected("a map of hardware id to share");
            MapView::any_keys(shares);  // each key a hardware id, once
            double sum = 0;
            for (const auto& kv : shares.node) {
              const std::string key = kv.first.Scalar();
              const Value share = shares.child(kv.second, key);
              step.hardware.push_back(b.hardware_ref(Value{kv.first, share.file, share.path, share.origin}));
              step.shares.push_back(detail::read_number_in(share, 0, 1, true, "a share in [0, 1]"));
              step.at.push_back(share.location());
              step.keys.push_back(share.path);
              sum += step.shares.back();
            }
            if (std::abs(sum - 1) > 1e-6) shares.fail("the shares sum to " + share_text(sum) + ", expected 1");
            d.mix.push_back(std::move(step));
          }
        }
        if (m.has("accelerators_per_replica")) {
          d.accelerators_per_replica = detail::read_positive_int(m.at("accelerators_per_replica"));
          dr.per_replica_at = m.at("accelerators_per_replica");
        }
        if (m.has("replicas")) {
          d.replicas = read_growth(m.at("replicas"), Kind::count, dr.replicas_start_given);
          dr.replicas_at = m.at("replicas");
          dr.headroom_at.reset();  // an inherited headroom is overridden, one of this piece is not (below)
        }
        if (m.has("headroom")) {
          d.headroom = detail::read_number_in(m.at("headroom"), 0, 100, true, "a headroom from 0 to 100 (0.3 = 30 % above the peak)");
          dr.headroom_at = m.at("headroom");
        }
        if (m.has("demand")) {
          // Requests (or images) a unit time: "1000 tokens/s" would be read as requests (since
          // session 35; before, accepted and costed as 1,000 requests a second).
          d.demand = read_growth(m.at("demand"), Kind::frequency, dr.demand_start_given, {"request", "image"});
          dr.demand_at = m.at("demand");
        }
        if (m.has("devices")) {
          d.devices = read_growth(m.at("devices"), Kind::count, dr.devices_start_given);
          dr.devices_at = m.at("devices");
        }
        if (m.has("profile")) {
          const MapView pr(m.at("profile"), {"diurnal", "weekly"});
          // Given again (a file that extends another), the profile is replaced whole: a factor it
          // leaves out is flat, not inherited (since session 35, from a review).
          d.diurnal.assign(24, 1.0);
          d.weekly.assign(7, 1.0);
          if (pr.has("diurnal")) d.diurnal = read_profile(pr.at("diurnal"), 24, "one per hour of the local day, from 00:00");
          if (pr.has("weekly")) d.weekly = read_profile(pr.at("weekly"), 7, "one per day, Monday first");
        }
        if (m.has("batch")) {
          d.batch = detail::read_positive_int(m.at("batch"));
          dr.batch_at = m.at("batch");
        }
        if (m.has("precision")) d.precision = detail::read_choice(m.at("precision"), kPrecisions);
        if (m.has("layout")) {
          d.layout = detail::read_choice(m.at("layout"), {"nchw", "nhwc"});
          dr.layout_given = true;
          dr.layout_at = m.at("layout");
        }
        if (m.has("fusion")) {
          d.fusion = detail::read_choice(m.at("fusion"), kFusions);
          for (const auto& step : d.mix) {
            for (const auto& h : step.hardware) check_fusion_on(m.at("fusion"), d.fusion, h, "the deployment's ");
          }
        }
        if (m.has("request")) {
          const MapView r(m.at("request"), {"tokens_in", "tokens_out"});
          r.require("tokens_in");
          r.require("tokens_out");
          // Both as counts of tokens: "800", "1e3", "1,000" or "800 tokens" (since session 38, a review:
          // tokens_in refused the noun tokens_out took).
          const Value in = r.at("tokens_in");
          d.tokens_in = detail::read_positive(in, Kind::count);
          detail::check_count_noun(in, Kind::count, {"token"});
          if (std::floor(d.tokens_in) != d.tokens_in || d.tokens_in > 9.007199254740992e15) {
            in.expected("a whole number of tokens >= 1");
          }
          // tokens_out >= 1: the prefill's forward pass yields the first output token, so a request
          // costs at least that (since session 39; before, 0 was read and costed as 1).
          const Value out = r.at("tokens_out");
          d.tokens_out = detail::read_non_negative(out, Kind::count);
          detail::check_count_noun(out, Kind::count, {"token"});
          if (d.tokens_out < 1 || std::floor(d.tokens_out) != d.tokens_out || d.tokens_out > 9.007199254740992e15) {
            out.expected("a whole number of tokens >= 1 (the prefill yields the first; a prompt scored alone is 1)");
          }
          dr.request_at = m.at("request");  // checked against the model once it is known
        }
        if (m.has("regions")) {
          const Value list = m.at("regions");
          dr.regions_at = list;
          if (!list.node.IsSequence() || list.node.size() == 0) list.expected("a list of {datacenter (or region), share}");
          d.regions.clear();
          double sum = 0;
          for (std::size_t i = 0; i < list.node.size(); ++i) {
            const Value item = list.child(list.node[i], "[" + std::to_string(i) + "]");
            const MapView r(item, {"datacenter", "region", "share", "utc_offset"});
            DeploymentRegion dreg;
            if (r.has("datacenter") == r.has("region")) item.fail("give a datacenter (cloud) or a region (edge), one of them");
            if (r.has("datacenter")) {
              dreg.datacenter = b.datacenter_ref(r.at("datacenter"));
              dreg.is_datacenter = true;
            }
            if (r.has("region")) {
              dreg.datacenter.region = b.region_ref(r.at("region"));
              dreg.datacenter.id = dreg.datacenter.region.id;
            }
            dreg.share = r.has("share") ? detail::read_number_in(r.at("share"), 0, 1, true, "a share in [0, 1]") : 1.0;
            if (r.has("utc_offset")) {
              const Value off = r.at("utc_offset");
              const std::string t = off.node.IsScalar() ? off.node.Scalar() : "";
              const bool negative = !t.empty() && t.front() == '-';
              const Value magnitude{YAML::Node(negative || (!t.empty() && t.front() == '+') ? t.substr(1) : t), off.file, off.path, off.location()};
              double x = 0;
              try {
                x = detail::read_non_negative(magnitude, Kind::time);
              } catch (const InputError&) {
                off.expected("an offset from UTC with its unit (e.g. \"-5 h\")");  // shows the value with its sign
              }
              if (x > 14 * 3600.0) off.expected("an offset from UTC within 14 h (e.g. \"-5 h\")");
              if (std::fmod(x, 3600.0) != 0) {
                off.expected("a whole number of hours (the demand profile is hourly; round to the nearest hour)");
              }
              dreg.utc_offset_s = negative ? -x : x;
            }
            sum += dreg.share;
            // A cloud site named twice with the same figures and time zone would be two fleets, each with
            // its own minimum replica (since session 36, from a review: two halves of one site took twice
            // its energy). Compared as parsed ("-5 h" and "-300 min" are one offset; an override that
            // changes nothing is the site itself); edge devices have no minimum. The region by its
            // figures, as the planner tells sites apart (since session 42, a review: an inline region
            // under the same id with another intensity or trajectory was refused as a duplicate).
            const auto same_region = [](const GridRegion& a, const GridRegion& b) {
              return a.id == b.id && a.intensity_kg_per_j == b.intensity_kg_per_j && a.year == b.year &&
                     a.annual_change == b.annual_change && a.trace == b.trace;
            };
            for (std::size_t j = 0; dreg.is_datacenter && j < d.regions.size(); ++j) {
              const DeploymentRegion& e = d.regions[j];
              if (e.is_datacenter && e.datacenter.id == dreg.datacenter.id && e.utc_offset_s == dreg.utc_offset_s &&
                  e.datacenter.pue == dreg.datacenter.pue && same_region(e.datacenter.region, dreg.datacenter.region) &&
                  e.datacenter.market_intensity_kg_per_j == dreg.datacenter.market_intensity_kg_per_j) {
                r.at("datacenter").fail("duplicate: " + text::quoted(dreg.datacenter.id) + " is listed at [" + std::to_string(j) +
                                        "] already, for the same time zone; give the site one entry and its whole share");
              }
            }
            d.regions.push_back(std::move(dreg));
          }
          if (std::abs(sum - 1) > 1e-6) list.fail("the shares sum to " + share_text(sum) + ", expected 1");
        }
        if (m.has("charging_efficiency")) {
          dr.charging_at = m.at("charging_efficiency");
          d.charging_efficiency = detail::read_number_in(m.at("charging_efficiency"), 0, 1, false, "an efficiency in (0, 1]");
        }
        if (m.has("useful_fraction")) {
          d.useful_fraction = detail::read_number_in(m.at("useful_fraction"), 0, 1, false, "a fraction in (0, 1]");
        }
        if (m.has("lifetime")) d.lifetime_s = read_lifetime(m.at("lifetime"));
        if (m.has("notes")) detail::read_text(m.at("notes"));
        d.origin = m.self().location();
      },
      [](DeploymentDraft& dr, const Value& last) {
        if (dr.layout_at) check_layout_key(*dr.layout_at, dr.d.design, dr.d.model_id);
        Deployment& d = dr.d;
        if (d.mix.empty()) last.fail("missing required key \"hardware\" (or \"hardware_mix\")");
        const bool edge = d.kind == Deployment::Kind::edge;
        for (const auto& r : d.regions) {
          const bool is_dc = r.is_datacenter;
          if (edge && is_dc && dr.regions_at) dr.regions_at->fail("an edge deployment draws from its users' grids: give region, not datacenter");
          if (!edge && !is_dc && dr.regions_at) dr.regions_at->fail("a cloud deployment runs in data centres: give datacenter, not region");
        }
        if (edge && !d.devices) last.fail("missing required key \"devices\" (an edge deployment's devices over time)");
        if (!edge && d.devices) last.fail("devices are for edge deployments (kind: edge); a cloud deployment has replicas");
        if (edge && d.replicas) last.fail("replicas are for cloud deployments; an edge deployment has devices");
        if (edge && d.tokens_in > 0) last.fail("LLM requests (request:) are served from the cloud here; use kind: cloud");
        // Said, not ignored (since session 33): each of these means something for one kind only.
        if (!edge && dr.charging_at) dr.charging_at->fail("charging_efficiency is for edge deployments (kind: edge), whose devices charge from their users' grids");
        if (edge && dr.per_replica_at) dr.per_replica_at->fail("accelerators_per_replica is for cloud deployments; an edge deployment runs on one device each");
        // A transformer's replica is tensor-parallel over its accelerators, which split its heads
        // (since session 45, as training's tensor degree must).
        if (const auto* t = std::get_if<TransformerDesign>(&d.design); t && dr.per_replica_at && d.accelerators_per_replica > 1 &&
                                                                       t->heads % d.accelerators_per_replica != 0) {
          dr.per_replica_at->fail("a transformer's replica splits its " + std::to_string(t->heads) +
                                  " heads over its accelerators (tensor-parallel): give a number that divides them");
        }
        // Its key/value heads too, or each held by several ranks (the number a multiple of them), as
        // vLLM requires (since session 45, a review: 6 KV heads over 4 ranks were split 1.5 a rank).
        if (const auto* t = std::get_if<TransformerDesign>(&d.design); t && dr.per_replica_at && d.accelerators_per_replica > 1 &&
                                                                       t->kv_lora_rank == 0) {
          const std::int64_t kv = t->kv_heads > 0 ? t->kv_heads : t->heads, k = d.accelerators_per_replica;
          if (kv % k != 0 && k % kv != 0) {
            dr.per_replica_at->fail("a transformer's replica splits its " + std::to_string(kv) +
                                    " key/value heads over its accelerators, or holds each on several: give a divisor or a multiple of them");
          }
        }
        // (Since session 34: both were accepted and had no effect, or, for batch, an effect the
        // documentation denies.)
        if (edge && dr.batch_at && d.batch != 1) {
          dr.batch_at->fail("an edge device serves its own inferences one at a time: batch 1 (a batch is for cloud deployments)");
        }
        if (dr.headroom_at && (edge || d.replicas)) {
          dr.headroom_at->fail(edge ? "headroom is for autoscaled cloud deployments; an edge deployment has devices"
                                    : "headroom is for autoscaled cloud deployments (no replicas); the replicas given are the fleet");
        }
        if (d.tokens_in > 0) {
          const auto* t = std::get_if<TransformerDesign>(&d.design);
          // A decoder-only model, or an encoder-decoder that generates (since session 41): not an
          // encoder, a ViT, or an encoder-decoder whose cells or attention the decode step does not
          // model (the evolved cell, latent attention).
          if (!t || t->arch == TransformerDesign::Arch::encoder || t->image > 0) {
            dr.request_at->fail("tokens in and out need a transformer that generates: a decoder-only (builder: decoder) "
                                "or encoder-decoder model");
          }
          if (t->arch == TransformerDesign::Arch::encoder_decoder && (t->evolved || t->kv_lora_rank > 0)) {
            dr.request_at->fail(std::string("generation by an encoder-decoder with ") +
                                (t->evolved ? "the evolved cell" : "latent attention") + " is not modelled");
          }
        } else if (const auto* t = std::get_if<TransformerDesign>(&d.design); t && t->arch == TransformerDesign::Arch::decoder) {
          // A language model serves prompts and generates tokens: without a request it had been costed
          // as one forward pass over its whole sequence, logits at every position, with no decode
          // (since session 38, a review).
          last.fail("missing required key \"request\": a decoder-only language model serves a prompt and generates "
                    "tokens, request: {tokens_in, tokens_out}");
        }
        if (!dr.start_given) last.fail("missing required key \"start\"");
        if (dr.duration_s) d.end_unix_s = d.start_unix_s + static_cast<std::int64_t>(std::llround(*dr.duration_s));
        else if (!dr.end_given) last.fail("missing required key \"end\" (or \"duration\")");
        if (d.end_unix_s <= d.start_unix_s) last.fail("the deployment ends before it starts");
        if (!dr.demand_start_given) d.demand.start_unix_s = d.start_unix_s;
        if (d.replicas && !dr.replicas_start_given) d.replicas->start_unix_s = d.start_unix_s;
        // Steps and traces give their values from their own dates: one that starts after the
        // deployment would leave its first months unsaid (the first value held there before
        // session 33, charging a demand that "starts in July" from January).
        // (The zero as the key writes it: a demand's carries its unit, since session 35.)
        const auto from_start = [&](const Growth& g, const std::optional<Value>& at, const char* zero) {
          const bool stepped = g.form == Growth::Form::piecewise || g.form == Growth::Form::trace;
          if (stepped && !g.time_unix_s.empty() && g.time_unix_s.front() > d.start_unix_s && at) {
            at->fail(std::string("its first value is dated after the deployment's start: give one from the start (a first step "
                                 "of ") + zero + " where nothing runs yet)");
          }
        };
        from_start(d.demand, dr.demand_at, "\"0 requests/s\"");
        if (d.replicas) from_start(*d.replicas, dr.replicas_at, "0");
        if (d.devices) from_start(*d.devices, dr.devices_at, "0");
        if (d.devices && !dr.devices_start_given) d.devices->start_unix_s = d.start_unix_s;
        // The first mix holds from the deployment's start: one dated after it would leave the start
        // without hardware, and a step that never runs (from the deployment's end on, or replaced
        // by the next before the start) would be costed all the same (since session 38, a review:
        // a first date of July was read as January, and a step dated after the end that could not
        // hold the model stopped the deployment).
        if (dr.mix_at && dr.mix_at->node.IsSequence()) {
          for (std::size_t i = 0; i < d.mix.size(); ++i) {
            const Value item = dr.mix_at->child(dr.mix_at->node[i], "[" + std::to_string(i) + "]");
            const MapView st(item, {"from", "shares"});
            if (i == 0 && st.has("from") && d.mix[0].from_unix_s > d.start_unix_s) {
              st.at("from").fail("the first step is dated after the deployment's start: the hardware from the start "
                                 "is needed (date it at or before the start, or leave out its from)");
            }
            if (i > 0 && d.mix[i].from_unix_s >= d.end_unix_s) {
              st.at("from").fail("dated at or after the deployment's end: this step never runs");
            }
            if (i + 1 < d.mix.size() && d.mix[i + 1].from_unix_s <= d.start_unix_s) {
              const std::string why =
                  "hardware_mix[" + std::to_string(i + 1) + "] replaces this step before the deployment starts: it never runs";
              if (st.has("from")) st.at("from").fail(why);
              item.fail(why);
            }
          }
        }
        d.mix.front().from_unix_s = d.start_unix_s;
      }};
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

}  // namespace

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
