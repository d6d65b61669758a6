// The scenario loader's own types (load.cpp, load_jobs.cpp, load_deployments.cpp): the layers
// of pieces a scenario's files contribute, the drafts an entry is built into, and the builder
// that resolves references between entries. Private to sim/scenario (yaml-cpp stays out of the
// public headers).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dlcarbon/scenario.hpp"
#include "dlcarbon/text.hpp"
#include "yaml_reader.hpp"

namespace dlcarbon::load_detail {

using detail::MapView;
using detail::Value;
using units::Kind;
namespace fs = std::filesystem;

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

// The `fusion` and `precision` values a job may give.
extern const std::vector<std::string> kFusions;
extern const std::vector<std::string> kPrecisions;

// TensorFlow 1.x's GPU kernels (fusion: tensorflow1) on a TPU, where TensorFlow compiles through XLA:
// bad input at `at` (since session 48, a review). `whose`: how the message names the hardware.
void check_fusion_on(const Value& at, const std::string& fusion, const Hardware& h, const std::string& whose = "");

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

// "-5 %/year" -> -0.05: the relative change of a region's intensity per year after its `year`.
double read_trajectory(const Value& v);

// A device's service life, over which its embodied carbon is spread: an hour or more (since session
// 45, a review: "1e-320 years" was read, and the deployment using it failed as beyond what can be
// represented, named at the deployment, not at the lifetime).
double read_lifetime(const Value& v);

// Whether a design has convolutions, the only ops a data layout (nchw, nhwc) changes: a ResNet, an
// LSTM's character CNN, a graph file's conv2d ops (a ViT's patch embedding is a product).
bool has_convolutions(const ModelDesign& design);

// A layout given for a design without convolutions would change nothing: bad input (since session
// 42, a review: an inference job's `layout: nhwc` on a decoder was recorded and ignored).
void check_layout_key(const Value& at, const ModelDesign& design, const std::string& model_id);

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

}  // namespace dlcarbon::load_detail
