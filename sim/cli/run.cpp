#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <variant>

#include "build_info.hpp"
#include "commands.hpp"
#include "dlcarbon/graph.hpp"
#include "dlcarbon/text.hpp"
#include "dlcarbon/grid.hpp"
#include "dlcarbon/lifecycle.hpp"
#include "dlcarbon/lifecycle_plan.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/training_cost.hpp"
#include "options.hpp"

namespace dlcarbon::cli {

namespace {

// Every op moves bytes: hardware without a memory bandwidth gives an inference no time (a
// training job on it is a result that cannot run, with this reason; sim/cost/step_layout.cpp).
std::string without_bandwidth(const Hardware& h) {
  return h.memory_bandwidth_bytes_per_s && *h.memory_bandwidth_bytes_per_s > 0
             ? std::string()
             : "hardware " + h.id + " has no memory_bandwidth in the catalog: an inference cannot be costed without it";
}

// Said, not silent: a dtype the hardware lacks is costed at the rate of the nearest precision it
// has (docs/hardware-model.md); empty where it lists one.
std::string precision_note(const std::string& id, const Hardware& h, const std::string& precision) {
  if (h.peak_flop_per_s.count(precision)) return "";
  return "  note: " + id + ": " + h.id + " lists no " + precision +
         " peak; its products run at the rate of the nearest precision it has (" +
         format_number(hardware::make_device_model(h).peak(precision) / 1e12, 4) + " TFLOP/s)\n";
}

// Said, not silent: hardware whose entry gives no `node:` block takes an unsourced default network
// (docs/hardware-model.md, "Collectives": nodes of 8, a tenth of the memory bandwidth inside and a
// tenth of that between); a training job on more than one device, or a cloud deployment whose replica
// spans several, says so (since session 56: an out-of-sample check costed 256 TPU v3 cores on it
// without a word).
std::string network_note(const std::string& id, const Hardware& h, std::int64_t devices) {
  const hardware::NodeLinks links = hardware::node_links(h);
  if (devices <= 1 || links.given) return "";
  return "  note: " + id + ": " + h.id + " has no `node:` block (its links); its collectives are costed on nodes of " +
         std::to_string(h.node_accelerators) + " at " + format_number(links.intra / 1e9, 3) + " GB/s a device inside and " +
         format_number(links.inter / 1e9, 3) + " GB/s between, an unsourced default: give `node:` for its network\n";
}

// Said, not silent: FlashAttention-1 runs heads of at most 128 channels (its fmha_api.cpp has
// kernels of 32, 64 and 128); a wider head under `fusion: flash1` is costed as
// if it ran (docs/hardware-model.md, "The fused kernel's rate"; since session 51, a review).
std::string flash1_note(const std::string& id, const std::string& fusion, const ModelDesign& design) {
  const auto* t = std::get_if<TransformerDesign>(&design);
  if (fusion != "flash1" || t == nullptr || t->heads <= 0) return "";
  const std::int64_t width = t->head_dim > 0 ? t->head_dim : t->d_model / t->heads;
  if (width <= 128) return "";
  return "  note: " + id + ": FlashAttention-1 runs heads of at most 128 channels and these are " + std::to_string(width) +
         " wide; its attention is costed as if it ran\n";
}

// Said, not silent: a transformer on a GPU for which the catalog knows FlashAttention's rate, its
// `fusion` not given, runs its attention unfused by default (`elementwise`: the score matrix is
// written and read), as codes did before FlashAttention (2022); most codes since run it fused.
// `run` says what `fusion: flash2` would change, costed: a note under the job's line where its step
// would be at least 1 % shorter, and the reason of a job that does not fit where it would then fit
// (since session 54: a job written without the key cost SmolLM3-3B's configuration 40 % more hours
// than with it). The step with FlashAttention-2, where the job is such a job (in 16 or 8 bits);
// else nothing.
std::optional<StepCost> flash2_instead(const TrainingJob& job, const std::optional<StepCost>& step) {
  if (job.fusion_given || job.hardware.kind != "gpu" || job.hardware.attention_efficiency.empty() || !step) return std::nullopt;
  // FlashAttention runs 16-bit attention (an 8-bit job's attention stays at 16 bits), not fp32 or tf32.
  if (job.precision != "fp16" && job.precision != "bf16" && job.precision != "fp8") return std::nullopt;
  const auto* t = std::get_if<TransformerDesign>(&job.design);
  if (t == nullptr || t->heads <= 0) return std::nullopt;
  TrainingJob fused = job;
  fused.fusion = "flash2";
  return cost_training_step(fused);
}

const char* const kUnfusedHead = "`fusion` is not given, so its attention runs unfused (elementwise, the score matrix written and read); ";

std::string unfused_attention_note(const TrainingJob& job, const std::optional<StepCost>& step) {
  const auto f = flash2_instead(job, step);
  if (!f || !f->fits || !step->fits || f->step_s > 0.99 * step->step_s) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f %%", 100 * (1 - f->step_s / step->step_s));
  return "  note: " + job.id + ": " + kUnfusedHead + "with FlashAttention-2 (`fusion: flash2`), as most codes since 2022 run it on " +
         job.hardware.id + ", its step would be " + buf + " shorter\n";
}

// The reason of a job that does not fit, and what FlashAttention-2 would change where it would fit.
std::string unfit_reason(const TrainingJob& job, const TrainingResult& r) {
  const auto f = r.step && !r.step->fits ? flash2_instead(job, r.step) : std::nullopt;
  if (!f || !f->fits) return r.reason;
  return r.reason + "; " + kUnfusedHead + "with FlashAttention-2 (`fusion: flash2`) it would fit";
}

// Where a first-principles job's kernel energy goes in a step, on the line below its step (since
// session 53): the three largest (kind, phase) groups of its per-op table, each row's energy times
// the times it runs a step on the average device (runs_per_step), with their shares; nothing where
// the ops carry no energy.
std::string op_energy_line(const StepCost& c) {
  std::map<std::pair<std::string, std::string>, double> groups;
  double total = 0;
  for (const auto& o : c.ops) {
    const double energy = o.energy_j * runs_per_step(c, o);
    groups[{o.kind, o.phase}] += energy;
    total += energy;
  }
  if (!(total > 0) || !std::isfinite(total)) return "";
  std::vector<std::pair<double, std::pair<std::string, std::string>>> largest;
  for (const auto& [key, energy] : groups) largest.push_back({energy, key});
  std::stable_sort(largest.begin(), largest.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::string line = "    kernel energy a step (the average device):";
  for (std::size_t k = 0; k < largest.size() && k < 3; ++k) {
    char share[32];
    std::snprintf(share, sizeof share, "%.0f %%", 100 * largest[k].first / total);
    line += std::string(k ? "," : "") + " " + largest[k].second.first + " " + largest[k].second.second + " " + share;
  }
  return line + "\n";
}

// Said, not silent: a design whose counted parameters are more than 1 % from the count its model
// publishes (`params`) is likely mistyped, or counts what the publication does not (since session
// 52). Empty where they agree or either is unknown.
std::string params_note(const std::string& id, const Scenario& scenario, const std::string& model_id, double counted) {
  if (counted <= 0) return "";
  for (const Model& m : scenario.models) {
    if (m.id != model_id || !m.params || *m.params <= 0) continue;
    const double apart = counted / *m.params - 1;
    if (std::abs(apart) <= 0.01) return "";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%+.2f %%", 100 * apart);  // two decimals: 1.04 % is not "1.0 %"
    return "  note: " + id + ": its design counts " + format_number(counted, 4) + " parameters, " + buf + " from model " + model_id +
           "'s published params (" + format_number(*m.params, 4) + ")\n";
  }
  return "";
}

}  // namespace

// The message of a time series too large to hold (checked from the scenario, and from the plan).
static std::string series_too_large(const Scenario& scenario, double rows) {
  char size[64];
  std::snprintf(size, sizeof size, "%.3g", rows);
  return format_input_error(
      scenario.info.resolution_given ? scenario.info.resolution_at : SourceLocation{scenario.path.generic_string(), 1, 1},
      "scenario.resolution",
      "the time series would hold up to " + std::string(size) + " rows (bins x sites x phases x hardware x models), "
      "more than 1e7 (about 7 GB); choose a coarser resolution (day, month or year) or a shorter horizon");
}

// Quantities beyond what a double holds (1e300): their sums would be inf or NaN in the output.
constexpr double kRepresentable = 1e300;

// The lifecycle's time series, bounded from the scenario before anything runs (a sweep checks
// every point so; the plan's exact bound is checked again in simulate_scenario): bins x series
// keys, a site by its data centre's or region's id (since session 42, a review: the check ran only
// once a point ran, past the sweep's up-front checks); by content, as the plan counts them, so an
// entry overridden inline with other figures is a site of its own (since session 44, a review: the
// plan keeps such copies apart, and a sweep found the bound only mid-run, half-written).
static void check_series_size(const Scenario& scenario) {
  const bool lifecycle = !scenario.deployments.empty() || scenario.info.resolution_given ||
                         std::any_of(scenario.training.begin(), scenario.training.end(),
                                     [](const TrainingJob& j) { return j.repeat_count > 1; });
  if (!lifecycle) return;
  lifecycle::LifecyclePlan shape;
  shape.start = static_cast<double>(scenario.info.start_unix_s);
  shape.end = shape.start + scenario.info.horizon_s;
  shape.resolution = lifecycle::parse_resolution(scenario.info.resolution);
  // A site by its content, as the plan makes them (lifecycle/plan.cpp, same_site): the id, whether
  // it is an edge fleet's, and the figures it draws with; inline copies with the same figures are one.
  std::map<std::string, std::size_t> site_index;
  const auto site = [&](const std::string& id, bool edge, const GridRegion& g, double pue, std::optional<double> market) {
    char figures[256];
    std::snprintf(figures, sizeof figures, "|%d|%a|%a|%d|%a|%a|%p", edge ? 1 : 0, pue, market.value_or(-1.0), g.year,
                  g.intensity_kg_per_j, g.annual_change, static_cast<const void*>(g.trace.get()));
    return site_index.emplace(id + '\n' + g.id + figures, site_index.size()).first->second;
  };
  for (std::size_t i = 0; i < scenario.deployments.size(); ++i) {
    const Deployment& d = scenario.deployments[i];
    lifecycle::DeploymentPlan dp;
    dp.model = d.model_id;
    for (const auto& step : d.mix) {
      lifecycle::MixPlan mp;
      for (const auto& h : step.hardware) {
        lifecycle::ServiceCost cost;
        cost.hardware_id = h.id;
        mp.costs.push_back(std::move(cost));
      }
      dp.mix.push_back(std::move(mp));
    }
    shape.deployments.push_back(std::move(dp));
    for (const auto& r : d.regions) {
      // (An edge fleet draws from its users' region, a site by the region's id.)
      const bool edge = d.kind == Deployment::Kind::edge;
      const GridRegion& g = r.datacenter.region;
      shape.cohorts.push_back(lifecycle::CohortPlan{
          i, edge ? site(g.id, true, g, 1.0, std::nullopt)
                  : site(r.datacenter.id, false, g, r.datacenter.pue, r.datacenter.market_intensity_kg_per_j)});
    }
  }
  for (const auto& j : scenario.training) {
    // (A job without a model is its own, as the plan names it.)
    shape.training.push_back(lifecycle::TrainingRun{
        j.id, j.model_id.empty() ? j.id : j.model_id, j.hardware.id, site(j.datacenter.id, false, j.datacenter.region, j.datacenter.pue, j.datacenter.market_intensity_kg_per_j)});
  }
  if (const double rows = lifecycle::series_rows_bound(shape); rows > lifecycle::kMaxSeriesRows) {
    throw InputError(series_too_large(scenario, rows));
  }
}

void check_costable(const Scenario& scenario) {
  check_series_size(scenario);
  // A job's energy must be a number: accelerators x duration x power past 1e300 J would be written
  // as inf (found by a review, session 33).
  for (const auto& job : scenario.training) {
    if (!job.duration_given) continue;
    const double n = static_cast<double>(job.accelerators);
    const double watts = job.power.basis == PowerBasis::system ? job.power.value
                         : job.power.basis == PowerBasis::utilisation
                             ? n * (job.hardware.tdp_w * job.power.value + job.hardware.host_overhead_w)
                             : n * job.power.value;
    if (!(watts * job.duration_s * job.datacenter.pue < kRepresentable)) {
      throw InputError(format_input_error(job.origin, "training." + job.id,
                                          "its energy (accelerators x duration x power) is beyond what can be represented"));
    }
  }
  // An exponential growth must stay a number over its deployment (10 requests/s at +1000 %/year
  // passes 1e300 in 290 years).
  for (const auto& d : scenario.deployments) {
    const auto check = [&](const Growth& g, const char* what) {
      if (g.form != Growth::Form::exponential) return;
      const double peak = std::max(lifecycle::growth_at(g, static_cast<double>(d.start_unix_s)),
                                   lifecycle::growth_at(g, static_cast<double>(d.end_unix_s)));
      if (!(peak < kRepresentable)) {
        throw InputError(format_input_error(d.origin, "deployments." + d.id + "." + what,
                                            "grows beyond what can be represented (past 1e300) within the deployment"));
      }
    };
    check(d.demand, "demand");
    if (d.replicas) check(*d.replicas, "replicas");
    if (d.devices) check(*d.devices, "devices");
  }
  // A batch the builders cannot size (graph::size_limit), hardware without a memory bandwidth or a
  // request longer than a learned position table is bad input, found before anything runs (a sweep
  // checks every point so). A job or replica that does not fit the memory is a result that cannot
  // run instead (simulate_scenario).
  for (const auto& job : scenario.inference) {
    std::string why = without_bandwidth(job.hardware);
    if (why.empty()) why = graph::size_limit(job.design, job.batch);
    if (!why.empty()) throw InputError(format_input_error(job.origin, "inference." + job.id, why));
  }
  for (const auto& d : scenario.deployments) {
    const auto bad = [&](const std::string& why) { throw InputError(format_input_error(d.origin, "deployments." + d.id, why)); };
    for (const auto& step : d.mix) {
      for (const auto& h : step.hardware) {
        if (const std::string why = without_bandwidth(h); !why.empty()) bad(why);
      }
    }
    ModelDesign design = d.design;
    // An LLM's requests are costed at their prompt's length (the prefill; docs/lifecycle.md).
    if (auto* t = std::get_if<TransformerDesign>(&design); t && d.tokens_in > 0) {
      // A learned position table has a row a position: a request cannot be longer.
      const double positions = static_cast<double>(std::max(t->seq_len, t->max_positions));
      // The last output token is not fed back (tokens_out - 1 decode steps): it needs no position.
      // An encoder-decoder's prompt is its encoder's and its output its decoder's, the start token
      // first (BART's one table size for both stacks).
      const bool enc_dec = t->arch == TransformerDesign::Arch::encoder_decoder;
      const double length = enc_dec ? std::max(d.tokens_in, d.tokens_out) : d.tokens_in + std::max(0.0, d.tokens_out - 1);
      if (t->position == TransformerDesign::Position::learned && length > positions) {
        bad("a request of " + format_number(length) + " positions (" +
            (enc_dec ? "the longer of tokens_in and tokens_out" : "tokens_in + tokens_out - 1") + ") is longer than " +
            d.model_id + "'s learned position table of " + format_number(positions));
      }
      t->seq_len = static_cast<std::int64_t>(d.tokens_in);
      if (enc_dec) t->target_seq_len = 1;
    }
    if (const std::string why = graph::size_limit(design, d.batch); !why.empty()) bad(why);
  }
}

namespace {

// Every energy and CO2e the run would write must be a number where one is due: what check_costable
// cannot see before the run (a fleet of 1e300 replicas, an embodied share over a lifetime of
// 1e-300 s, 1e308 inferences, a grid trajectory of +1000 %/year four centuries on) is found here,
// after it, and named by the entity that carries it (since session 34; before, inf with exit 0).
void check_representable(const Scenario& scenario, ScenarioOutcome& o) {
  std::vector<std::string> keys;  // one message an entity
  const auto beyond = [&](const SourceLocation& origin, const std::string& key, const std::string& id, const std::string& what) {
    if (std::find(keys.begin(), keys.end(), key) != keys.end()) return;
    keys.push_back(key);
    const std::string why = what + " is beyond what can be represented (past 1e300 or not a number)";
    o.beyond.push_back(format_input_error(origin, key, why));
    o.beyond_reasons.push_back(id + ": " + why);
    o.beyond_keys.push_back(key);
  };
  const auto number = [](double x) { return std::isfinite(x) && std::abs(x) < kRepresentable; };
  for (std::size_t i = 0; i < o.training.size() && i < scenario.training.size(); ++i) {
    const auto& r = o.training[i];
    const auto& job = scenario.training[i];
    if (!r.ok) continue;  // NaN by design: it cannot run
    const auto& f = r.footprint;
    if (!number(f.intensity_location_kg_per_j) || !(f.intensity_location_kg_per_j < kRepresentable)) {
      beyond(job.origin, "training." + job.id, job.id, "the grid intensity of its region at its dates (the region's trajectory compounded)");
    } else if (!number(f.facility_energy_j) || !number(f.co2e_location_kg) || (f.co2e_market_kg && !number(*f.co2e_market_kg))) {
      beyond(job.origin, "training." + job.id, job.id, "its energy or CO2e");
    }
  }
  for (std::size_t i = 0; i < o.inference.size() && i < scenario.inference.size(); ++i) {
    const auto& r = o.inference[i];
    const auto& job = scenario.inference[i];
    if (!r.ok) continue;
    if (!number(r.facility_energy_j) || !number(r.co2e_location_kg) || (r.co2e_market_kg && !number(*r.co2e_market_kg))) {
      beyond(job.origin, "inference." + job.id, job.id, "its energy or CO2e");
    }
  }
  // The lifecycle: every row of its totals, by the entity it belongs to.
  const Table* totals = nullptr;
  for (const auto& t : o.record.tables) {
    if (t.path == "lifecycle/totals") totals = &t;
  }
  if (totals) {
    const auto& entity = std::get<std::vector<std::string>>(totals->find("entity")->values);
    const auto& kind = std::get<std::vector<std::string>>(totals->find("entity_kind")->values);
    std::vector<std::string> named;
    for (const char* column : {"energy", "co2e_location", "co2e_market", "requests"}) {
      const auto& v = std::get<std::vector<double>>(totals->find(column)->values);
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (number(v[i]) || std::find(named.begin(), named.end(), kind[i] + entity[i]) != named.end()) continue;
        named.push_back(kind[i] + entity[i]);
        const std::string what = std::string("its lifecycle ") + (std::string(column) == "requests" ? "requests" : "energy or CO2e");
        if (kind[i] == "deployment") {
          for (const auto& d : scenario.deployments) {
            if (d.id == entity[i]) beyond(d.origin, "deployments." + d.id, d.id, what);
          }
        } else {
          // A training run of the lifecycle: "<job>", or "<job>-<n>" for the n-th of repeated runs
          // (exactly: a job "pretrain-2" is not the second run of "pretrain").
          for (const auto& job : scenario.training) {
            bool mine = entity[i] == job.id;
            for (std::int64_t r = 1; !mine && job.repeat_count > 1 && r <= job.repeat_count; ++r) {
              mine = entity[i] == job.run_id(r);
            }
            if (mine) {
              beyond(job.origin, "training." + job.id, job.id, what);
              break;
            }
          }
        }
      }
    }
  }
  // (After the totals, whose message names the energy first.) The deployments' own figures:
  // unserved requests and the carbon a (useful) inference, which a demand past 1e300 or a useful
  // fraction of 5e-324 make infinite where the totals are not (since session 45, a review: written
  // with exit 0). NaN is by design there: no request, nothing a request.
  for (const auto& t : o.record.tables) {
    if (t.path != "lifecycle/deployments") continue;
    const auto& ids = std::get<std::vector<std::string>>(t.find("deployment")->values);
    for (const char* column : {"requests", "useful_requests", "unserved_requests", "co2e_per_inference", "co2e_per_useful_inference",
                               "peak_replicas"}) {
      const auto& v = std::get<std::vector<double>>(t.find(column)->values);
      for (std::size_t i = 0; i < v.size() && i < ids.size(); ++i) {
        if (std::isnan(v[i]) || std::abs(v[i]) < kRepresentable) continue;
        for (const auto& d : scenario.deployments) {
          if (d.id == ids[i]) beyond(d.origin, "deployments." + d.id, d.id, std::string("its ") + column);
        }
      }
    }
  }
}

}  // namespace

ScenarioOutcome simulate_scenario(const Scenario& scenario, int threads) {
  check_costable(scenario);
  ScenarioOutcome o;
  for (const auto& job : scenario.training) {
    o.training.push_back(simulate_training(job));
    lifecycle::place_in_time(job, o.training.back().footprint);
    if (!o.training.back().ok) {
      o.failures.push_back(format_input_error(job.origin, "training." + job.id, unfit_reason(job, o.training.back())));
    }
  }
  // A job that cannot run is a result with its reason (kept in the file); a single run then
  // exits 2 with the message, a sweep point goes on.
  for (const auto& job : scenario.inference) {
    o.inference.push_back(cost_inference(job));
    lifecycle::place_in_time(job, o.inference.back());
    if (!o.inference.back().ok) {
      o.failures.push_back(format_input_error(job.origin, "inference." + job.id, o.inference.back().reason));
    }
  }
  o.record = make_run_record(scenario, o.training, o.inference);
  // The lifecycle: whenever the scenario has deployments, retraining, or asks for a time series.
  const bool lifecycle_wanted = !scenario.deployments.empty() || scenario.info.resolution_given ||
                                std::any_of(scenario.training.begin(), scenario.training.end(),
                                            [](const TrainingJob& j) { return j.repeat_count > 1; });
  if (lifecycle_wanted) {
    std::vector<TrainingFootprint> footprints;
    for (const auto& r : o.training) footprints.push_back(r.footprint);
    lifecycle::LifecyclePlan plan = lifecycle::plan_lifecycle(scenario, footprints);
    // A deployment whose replica cannot hold the model and its batch on some hardware of its mix
    // cannot run: the run still writes its file, then exits 2; a sweep point is `cannot run`.
    // The message names the hardware where the scenario gives it (since session 38).
    for (std::size_t i = 0; i < plan.deployments.size() && i < scenario.deployments.size(); ++i) {
      const Deployment& d = scenario.deployments[i];
      for (std::size_t s = 0; s < plan.deployments[i].mix.size(); ++s) {
        const auto& step = plan.deployments[i].mix[s];
        for (std::size_t h = 0; h < step.costs.size(); ++h) {
          const auto& k = step.costs[h];
          if (k.fits || !(step.shares[h] > 0)) continue;
          const bool placed = s < d.mix.size() && h < d.mix[s].at.size();
          // A hardware key another deployment's entry gives (`from:`) is named with the deployment
          // that fails (since session 46, a review: only the parent's key, which fits, was named).
          // (The loader records whose entry gave the hardware: another's where `from:` copied it;
          // a review of session 46: found by the key's place, it failed where `extends` updated an
          // entry.)
          const bool inherited = placed && !d.mix_owner.empty() && d.mix_owner != d.id;
          o.failures.push_back(placed ? format_input_error(d.mix[s].at[h],
                                                           d.mix[s].keys[h] + (inherited ? " (inherited by " + d.id + ")" : std::string()),
                                                           k.memory_text)
                                      : format_input_error(d.origin, "deployments." + d.id, k.memory_text));
          // (Each step of the mix named, as the run's message names its key: the same hardware in
          // two steps had read as one reason twice; since session 42, a review.)
          o.cannot_serve.push_back(d.id + (placed ? " (" + d.mix[s].keys[h] + ")" : std::string()) + ": " + k.memory_text);
        }
      }
    }
    // A time series past what memory holds (1,000 years hourly is 8.8 million bins a series) is
    // refused before it is allocated (since session 42, a review: the allowed maximum could run
    // out of memory: 100 years hourly of one site took 1.75 GB and wrote 607 MB).
    if (const double rows = lifecycle::series_rows_bound(plan); rows > lifecycle::kMaxSeriesRows) {
      throw InputError(series_too_large(scenario, rows));
    }
    o.life = add_lifecycle(o.record, std::move(plan), threads);
  }
  check_representable(scenario, o);
  return o;
}

int command_run(const std::vector<std::string>& args, Streams io) {
  const std::string usage =
      "usage: dlcarbon run SCENARIO.yaml [-o OUT.h5] [--data-dir DIR] [--quiet] [--threads N]\n"
      "Simulates the scenario and writes one HDF5 file (docs/output-format.md).";
  po::options_description visible("options");
  visible.add_options()("output,o", po::value<std::string>(), "output file (default: <scenario name>.h5)")(
      "data-dir", po::value<std::string>(), "catalog directory (default: $DLCARBON_DATA_DIR or the source tree's data/)")(
      "quiet,q", "print nothing but errors")(
      "threads", po::value<int>()->default_value(0), "threads for the lifecycle simulation (0: all cores); results do not depend on it");
  po::options_description hidden;
  hidden.add_options()("scenario", po::value<std::string>(), "");
  po::positional_options_description positional;
  positional.add("scenario", 1);
  po::variables_map vm;
  if (auto code = parse_options(args, usage, visible, positional, hidden, vm, io)) return *code;
  if (!vm.count("scenario")) {
    io.err << "dlcarbon run: missing the scenario file\n" << usage << "\n";
    return kBadInput;
  }

  const int threads = threads_option(vm);

  LoadOptions load;
  load.data_dir = data_dir_option(vm);
  const Scenario scenario = load_scenario(vm["scenario"].as<std::string>(), load);

  const std::filesystem::path out =
      vm.count("output") ? std::filesystem::path(vm["output"].as<std::string>())
                         : std::filesystem::path(scenario.info.name + ".h5");
  try {
    check_output_path(out);
  } catch (const InputError& e) {
    // Named by what the user did: no -o, the scenario's name (since session 43, a review).
    const std::string prefix = "--output: ", m = e.what();
    if (vm.count("output") || m.rfind(prefix, 0) != 0) throw;
    throw InputError("the default output (the scenario's name and .h5; no -o given): " + m.substr(prefix.size()));
  }

  ScenarioOutcome outcome = simulate_scenario(scenario, threads);
  // Results that are not numbers are bad input: said, and nothing written.
  if (!outcome.beyond.empty()) {
    for (std::size_t i = 0; i + 1 < outcome.beyond.size(); ++i) io.err << outcome.beyond[i] << "\n";
    throw InputError(outcome.beyond.back());
  }
  const RunRecord& record = outcome.record;
  const auto& results = outcome.training;
  const auto& inference = outcome.inference;
  const auto& failures = outcome.failures;
  const auto& life = outcome.life;
  write_run(out, record);
  for (const auto& f : failures) io.err << f << "\n";
  if (!failures.empty()) return kBadInput;

  if (!vm.count("quiet")) {
    double energy = 0, co2e = 0;
    for (const auto& r : results) {
      energy += r.footprint.facility_energy_j;
      co2e += r.footprint.co2e_location_kg;
    }
    for (const auto& r : inference) {
      energy += r.facility_energy_j;
      co2e += r.co2e_location_kg;
    }
    // One line a first-principles job: what the step model predicts and where the step goes.
    std::string job_lines;
    for (std::size_t i = 0; i < results.size() && i < scenario.training.size(); ++i) {
      const auto& r = results[i];
      if (r.mode != "first-principles" || !r.step) continue;
      const TrainingJob& job = scenario.training[i];
      job_lines += precision_note(job.id, job.hardware, job.precision);
      job_lines += flash1_note(job.id, job.fusion, job.design);
      job_lines += network_note(job.id, job.hardware, job.accelerators);
      job_lines += unfused_attention_note(job, r.step);
      job_lines += params_note(job.id, scenario, job.model_id, r.step->parameters);
      job_lines += "  " + scenario.training[i].id + ": ";
      if (!r.ok) {
        job_lines += r.reason + "\n";
        continue;
      }
      const StepCost& c = *r.step;
      const auto percent = [&](double t) {
        const double x = c.step_s > 0 ? 100 * t / c.step_s : 0;
        char buf[32];
        std::snprintf(buf, sizeof buf, x >= 9.95 || x == 0 ? "%.0f %%" : (x >= 0.995 ? "%.1f %%" : "%.2f %%"), x);
        return std::string(buf);
      };
      const double communication = c.tensor_comm_s + c.context_comm_s + c.pipeline_comm_s + c.expert_comm_s + c.data_comm_s + c.contention_s;
      // A batch ramp-up's smaller batches take more steps than the tokens at the full batch (since
      // session 56: an out-of-sample check read the full batch's count as the run's).
      double ramp_steps = 0;
      for (const OverheadRow& o : r.overheads) {
        if (o.item == "batch ramp-up") ramp_steps += o.steps;
      }
      job_lines += "step " + format_number(c.step_s, 4) + " s, MFU " + format_number(c.mfu, 3) + ", " +
                   format_number(c.steps, 6) + " steps" +
                   (ramp_steps > 0 ? " (and " + format_number(ramp_steps, 4) + " more in the batch ramp-up)" : std::string()) + ", " +
                   format_number(r.footprint.accelerator_time_s / 3600.0, 4) + " accelerator-hours; step: compute " +
                   percent(c.compute_s) + ", communication " + percent(communication) + ", pipeline bubble " +
                   percent(c.bubble_s) + ", optimizer " + percent(c.optimizer_s) + "\n";
      job_lines += op_energy_line(c);
    }
    // An accounting job (its duration given) holds its overheads in that duration: those it names
    // apply where its hours are predicted (`validate --mode first-principles`), said rather than
    // dropped without a word (since session 42, a review).
    for (std::size_t i = 0; i < results.size() && i < scenario.training.size(); ++i) {
      const TrainingJob& job = scenario.training[i];
      const JobOverheads& o = job.overheads;
      const bool named = o.checkpoint_interval_s || o.mtbf_s || o.evaluation_fraction > 0 || o.downtime_s > 0 || o.runs > 1;
      if (results[i].mode != "accounting") continue;
      const bool designed = !std::holds_alternative<std::monostate>(job.design);
      if (named && designed) {
        job_lines += "  note: " + job.id + ": its duration is given, so its overheads are taken to be in it; they apply where its "
                     "hours are predicted (validate --mode first-principles)\n";
      }
      // Its other first-principles keys are not used either, and without a design they never are
      // (since session 47, a review: a parallelism on a job without a model was dropped unsaid).
      std::string unused = named && !designed ? "overheads" : "";
      if (job.parallelism) unused += std::string(unused.empty() ? "" : ", ") + "parallelism";
      if (job.eager) unused += std::string(unused.empty() ? "" : ", ") + "eager";
      if (job.cross_entropy != "fused") unused += std::string(unused.empty() ? "" : ", ") + "cross_entropy";
      if (!unused.empty()) {
        const std::string verb = unused.find(',') == std::string::npos && unused != "overheads" ? "is" : "are";
        job_lines += "  note: " + job.id + ": its duration is given, so its " + unused + " " + verb + " " +
                     (designed ? "used only where its hours are predicted (validate --mode first-principles)"
                               : "not used: it has no model design to predict its hours from") + "\n";
      }
    }
    for (const auto& job : scenario.inference) {
      job_lines += precision_note(job.id, job.hardware, job.precision);
      job_lines += flash1_note(job.id, job.fusion, job.design);
    }
    for (const auto& d : scenario.deployments) {
      for (const auto& step : d.mix) {
        for (const auto& h : step.hardware) {
          const std::int64_t per_replica = d.kind == Deployment::Kind::cloud ? d.accelerators_per_replica : 1;
          for (const std::string& note : {precision_note(d.id, h, d.precision), network_note(d.id, h, per_replica)}) {
            if (job_lines.find(note) == std::string::npos) job_lines += note;  // once a hardware
          }
        }
      }
    }
    if (life) {
      // The lifecycle holds the training runs (their part inside the horizon) and the deployments;
      // the one-off inference jobs, which it does not bin (each is placed on its grid on its own), are added whole.
      energy = life->energy_j;
      co2e = life->co2e_location_kg;
      for (const auto& r : inference) {
        energy += r.facility_energy_j;
        co2e += r.co2e_location_kg;
      }
      io.out << "dlcarbon: " << scenario.info.name << ": lifecycle over the horizon: " << scenario.training.size()
             << " training job(s), " << scenario.deployments.size() << " deployment(s), "
             << (scenario.inference.empty() ? "" : std::to_string(scenario.inference.size()) + " inference job(s), ")
             << life->events << " events, " << format_number(energy / units::joule_per_kwh / 1000.0, 5)
             << " MWh facility energy, " << format_number(co2e / units::kg_per_tonne, 5)
             << " tCO2e (location-based, embodied included) -> " << out.string() << "\n" << job_lines;
      if (life->runs_cut > 0) {
        io.out << "  note: " << life->runs_cut
               << " training run(s) fall wholly or partly outside the horizon; the lifecycle counts only their part "
                  "inside it (/summary/training has each job whole)\n";
      }
      // Said, not silent: a deployment the horizon does not reach counts nothing.
      const double horizon_start = static_cast<double>(scenario.info.start_unix_s);
      const double horizon_end = horizon_start + scenario.info.horizon_s;
      for (const auto& d : scenario.deployments) {
        if (static_cast<double>(d.start_unix_s) >= horizon_end || static_cast<double>(d.end_unix_s) <= horizon_start) {
          io.out << "  note: deployment " << d.id << " lies wholly outside the horizon; it counts nothing\n";
        } else if (static_cast<double>(d.start_unix_s) < horizon_start || static_cast<double>(d.end_unix_s) > horizon_end) {
          io.out << "  note: deployment " << d.id << " runs partly outside the horizon; the lifecycle counts its part inside it\n";
        }
      }
      return kOk;
    }
    io.out << "dlcarbon: " << scenario.info.name << ": " << scenario.training.size() << " training job(s), "
           << (scenario.inference.empty() ? "" : std::to_string(scenario.inference.size()) + " inference job(s), ")
           << format_number(energy / units::joule_per_kwh / 1000.0, 5) << " MWh facility energy, "
           << format_number(co2e / units::kg_per_tonne, 5) << " tCO2e (location-based) -> " << out.string()
           << "\n" << job_lines;
  }
  return kOk;
}

}  // namespace dlcarbon::cli
