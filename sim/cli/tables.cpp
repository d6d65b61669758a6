// Scenario + costs -> the tables of the output file (docs/output-format.md).

#include <ctime>
#include <cmath>
#include <limits>

#include "build_info.hpp"
#include "commands.hpp"

namespace dlcarbon::cli {

namespace {

template <class T>
Column column(const std::string& name, const std::string& units, std::vector<T> values) {
  return Column{name, units, std::move(values)};
}

}  // namespace

RunRecord make_run_record(const Scenario& scenario, const std::vector<TrainingResult>& results,
                          const std::vector<InferenceResult>& inference) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN();
  RunRecord r;
  r.dlcarbon_version = build_info::version();
  r.git_sha = build_info::git_sha();
  r.created = utc_now_iso8601();
  r.scenario_name = scenario.info.name;
  r.seed = static_cast<std::int64_t>(scenario.info.seed);
  r.scenario_given = scenario.given_text;
  r.scenario_resolved = scenario.resolved_yaml;

  std::vector<std::string> job, model, hardware, datacenter, region, mode, status, grid;
  std::vector<double> step_time, mfu, steps, memory, parameters, active;
  std::vector<std::int64_t> accelerators;
  std::vector<double> duration, accel_time, power, it, pue, facility, i_loc, c_loc, i_mkt, c_mkt, tokens, flops;
  double total_it = 0, total_facility = 0, total_loc = 0, total_mkt = 0;
  bool all_market = true;
  for (std::size_t i = 0; i < scenario.training.size(); ++i) {
    const TrainingJob& j = scenario.training[i];
    const TrainingResult& res = results.at(i);
    const TrainingFootprint& f = res.footprint;
    mode.push_back(res.mode);
    grid.push_back(j.datacenter.region.trace ? "trace " + j.datacenter.region.trace->file + " (" +
                                                   j.datacenter.region.trace->basis + ")"
                                             : "annual");
    if (j.datacenter.region.annual_change != 0) {
      grid.back() += ", trajectory " + format_number(100 * j.datacenter.region.annual_change, 4) + " %/year";
    }
    status.push_back(res.ok ? "ok" : res.reason);
    // A job that cannot run has no step, duration, energy or carbon: NaN, not 0 (its memory need,
    // the reason, is kept). Since session 31; before, zeros that read as a free job.
    const bool ran = res.ok;
    step_time.push_back(res.step && ran ? res.step->step_s : nan);
    mfu.push_back(res.step && ran ? res.step->mfu : nan);
    steps.push_back(res.step && ran ? res.step->steps : nan);
    // A job costed far enough to size its memory has a need above 0; one stopped before (hardware
    // without a bandwidth, more stages than layers) has none known: NaN (since session 41, a
    // review: 0 B).
    memory.push_back(res.step && res.step->memory_per_device_bytes > 0 ? res.step->memory_per_device_bytes : nan);
    // The design's count where the job was costed from one (0: too large to build), else the
    // model's published `params`.
    std::optional<double> given;
    for (const Model& m : scenario.models) {
      if (m.id == j.model_id) given = m.params;
    }
    const bool counted = res.step && res.step->parameters > 0;
    parameters.push_back(counted ? res.step->parameters : given.value_or(nan));
    active.push_back(counted ? res.step->active_parameters : nan);
    job.push_back(j.id);
    model.push_back(j.model_id);
    hardware.push_back(j.hardware.id);
    datacenter.push_back(j.datacenter.id);
    region.push_back(j.datacenter.region.id);
    accelerators.push_back(j.accelerators);
    const auto if_ran = [&](double x) { return ran ? x : nan; };
    duration.push_back(if_ran(f.duration_s));
    accel_time.push_back(if_ran(f.accelerator_time_s));
    power.push_back(if_ran(f.power_per_accelerator_w));
    it.push_back(if_ran(f.it_energy_j));
    pue.push_back(f.pue);
    facility.push_back(if_ran(f.facility_energy_j));
    i_loc.push_back(f.intensity_location_kg_per_j);
    c_loc.push_back(if_ran(f.co2e_location_kg));
    i_mkt.push_back(f.intensity_market_kg_per_j.value_or(nan));
    c_mkt.push_back(ran ? f.co2e_market_kg.value_or(nan) : nan);
    tokens.push_back(j.tokens.value_or(nan));
    flops.push_back(j.flops.value_or(nan));
    // A job that cannot run leaves the totals unknown (NaN).
    total_it += if_ran(f.it_energy_j);
    total_facility += if_ran(f.facility_energy_j);
    total_loc += if_ran(f.co2e_location_kg);
    if (f.co2e_market_kg) total_mkt += *f.co2e_market_kg;
    all_market = all_market && ran && f.co2e_market_kg.has_value();
  }
  const std::int64_t n_jobs = static_cast<std::int64_t>(scenario.training.size());
  r.tables.push_back(Table{"summary/training",
                           {column("job", "", job), column("model", "", model), column("hardware", "", hardware),
                            column("datacenter", "", datacenter), column("region", "", region),
                            column("accelerators", "1", accelerators), column("duration", "s", duration),
                            column("accelerator_time", "s", accel_time),
                            column("power_per_accelerator", "W", power), column("it_energy", "J", it),
                            column("pue", "1", pue), column("facility_energy", "J", facility),
                            column("intensity_location", "kgCO2e/J", i_loc),
                            column("co2e_location", "kgCO2e", c_loc),
                            column("intensity_market", "kgCO2e/J", i_mkt),
                            column("co2e_market", "kgCO2e", c_mkt), column("tokens", "1", tokens),
                            column("flops", "FLOP", flops), column("mode", "", mode), column("grid", "", grid),
                            column("status", "", status), column("step_time", "s", step_time),
                            column("mfu", "1", mfu), column("steps", "1", steps),
                            column("memory_per_accelerator", "B", memory), column("parameters", "1", parameters),
                            column("active_parameters", "1", active)}});
  // Per-operator breakdown of each first-principles job: one microbatch on one device
  // (fwd, bwd), plus the optimizer and the communication of one step.
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].step) continue;
    std::vector<std::string> op, kind, phase, bound;
    std::vector<double> f, b, t, e, per_step;
    std::vector<std::int64_t> layer;
    for (const auto& row : results[i].step->ops) {
      op.push_back(row.op);
      per_step.push_back(runs_per_step(*results[i].step, row));
      layer.push_back(row.layer);
      kind.push_back(row.kind);
      phase.push_back(row.phase);
      bound.push_back(row.bound);
      f.push_back(row.flops);
      b.push_back(row.bytes);
      t.push_back(row.time_s);
      e.push_back(row.energy_j);
    }
    std::vector<std::string> item;
    std::vector<double> item_time, item_energy;
    for (const auto& row : results[i].overheads) {
      item.push_back(row.item);
      item_time.push_back(row.time_s);
      item_energy.push_back(row.energy_j);
    }
    r.tables.push_back(Table{"training/" + scenario.training[i].id + "/overheads",
                             {column("item", "", item), column("time", "s", item_time),
                              column("it_energy", "J", item_energy)}});
    std::vector<std::string> component;
    std::vector<double> component_time, component_share;
    for (const auto& part : step_components(*results[i].step)) {
      component.push_back(part.component);
      component_time.push_back(part.time_s);
      component_share.push_back(results[i].step->step_s > 0 ? part.time_s / results[i].step->step_s : 0);
    }
    r.tables.push_back(Table{"training/" + scenario.training[i].id + "/step",
                             {column("component", "", component), column("time", "s", component_time),
                              column("share", "1", component_share)}});
    std::vector<std::int64_t> device, busiest;
    std::vector<double> layers, fwd, bwd, tp, cpc, a2a, slot, held, tail;
    for (const auto& row : results[i].step->stages) {
      device.push_back(row.device);
      layers.push_back(row.layers);
      fwd.push_back(row.forward_s);
      bwd.push_back(row.backward_s);
      tp.push_back(row.tensor_comm_s);
      cpc.push_back(row.context_comm_s);
      a2a.push_back(row.expert_comm_s);
      slot.push_back(row.slot_s);
      held.push_back(row.activation_bytes);
      tail.push_back(row.tail_s);
      busiest.push_back(row.busiest ? 1 : 0);
    }
    r.tables.push_back(Table{"training/" + scenario.training[i].id + "/stages",
                             {column("device", "1", device), column("layers", "1", layers), column("forward", "s", fwd),
                              column("backward", "s", bwd), column("tensor_communication", "s", tp),
                              column("context_communication", "s", cpc),
                              column("expert_all_to_all", "s", a2a), column("slot", "s", slot),
                              column("activations", "B", held), column("tail", "s", tail), column("busiest", "1", busiest)}});
    r.tables.push_back(Table{"training/" + scenario.training[i].id + "/ops",
                             {column("op", "", op), column("kind", "", kind), column("phase", "", phase),
                              column("flops", "FLOP", f), column("bytes", "B", b), column("time", "s", t),
                              column("energy", "J", e), column("bound", "", bound), column("layer", "1", layer),
                              column("per_step", "1", per_step)}});
  }
  if (!scenario.inference.empty()) {
    std::vector<std::string> id, model, hw, dc, region, layout, input_layout, inf_status;
    std::vector<std::int64_t> batch;
    std::vector<double> count, bt, rt, epi_it, epi_fac, at, it_e, fac_e, c_loc, c_mkt, inf_memory;
    for (std::size_t i = 0; i < scenario.inference.size(); ++i) {
      const InferenceJob& j = scenario.inference[i];
      const InferenceResult& x = inference.at(i);
      id.push_back(j.id);
      model.push_back(j.model_id);
      hw.push_back(j.hardware.id);
      dc.push_back(j.datacenter.id);
      region.push_back(j.datacenter.region.id);
      layout.push_back(j.layout);
      input_layout.push_back(j.input_layout.empty() ? j.layout : j.input_layout);
      batch.push_back(j.batch);
      count.push_back(j.inferences);
      inf_status.push_back(x.ok ? "ok" : x.reason);
      inf_memory.push_back(x.weight_bytes + x.activation_bytes);
      // A job that cannot run has no time, energy or carbon: NaN, as a training job's (its memory
      // need, the reason, is kept).
      const auto ran = [&](double v) { return x.ok ? v : nan; };
      bt.push_back(ran(x.batch_time_s));
      rt.push_back(ran(x.reorder_time_s));
      epi_it.push_back(ran(x.it_energy_per_inference_j));
      epi_fac.push_back(ran(x.facility_energy_per_inference_j));
      at.push_back(ran(x.accelerator_time_s));
      it_e.push_back(ran(x.it_energy_j));
      fac_e.push_back(ran(x.facility_energy_j));
      c_loc.push_back(ran(x.co2e_location_kg));
      c_mkt.push_back(ran(x.co2e_market_kg.value_or(nan)));
      // A job that cannot run leaves the totals unknown (NaN), as a training job does.
      total_it += ran(x.it_energy_j);
      total_facility += ran(x.facility_energy_j);
      total_loc += ran(x.co2e_location_kg);
      if (x.co2e_market_kg) total_mkt += *x.co2e_market_kg;
      all_market = all_market && x.ok && x.co2e_market_kg.has_value();
    }
    r.tables.push_back(Table{"summary/inference",
                             {column("job", "", id), column("model", "", model), column("hardware", "", hw),
                              column("datacenter", "", dc), column("region", "", region), column("layout", "", layout),
                              column("input_layout", "", input_layout), column("batch", "1", batch),
                              column("inferences", "1", count), column("status", "", inf_status),
                              column("memory_per_accelerator", "B", inf_memory), column("batch_time", "s", bt),
                              column("reorder_time", "s", rt), column("it_energy_per_inference", "J", epi_it),
                              column("facility_energy_per_inference", "J", epi_fac),
                              column("accelerator_time", "s", at), column("it_energy", "J", it_e),
                              column("facility_energy", "J", fac_e), column("co2e_location", "kgCO2e", c_loc),
                              column("co2e_market", "kgCO2e", c_mkt)}});
  }
  r.tables.push_back(Table{"summary/totals",
                           {column("facility_energy", "J", std::vector<double>{total_facility}),
                            column("it_energy", "J", std::vector<double>{total_it}),
                            column("co2e_location", "kgCO2e", std::vector<double>{total_loc}),
                            column("co2e_market", "kgCO2e", std::vector<double>{all_market ? total_mkt : nan}),
                            column("jobs", "1", std::vector<std::int64_t>{n_jobs + static_cast<std::int64_t>(scenario.inference.size())})}});
  return r;
}

namespace {
std::string iso_time(double unix_s) {
  const auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  // The year in four digits at least, as ISO 8601 writes it (strftime's %Y writes year 1 as "1";
  // since session 41, a review).
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
  return buf;
}
}  // namespace

namespace {

// The HDF5 writer's observer: rows go straight into the columns of the output tables.
class TableObserver : public lifecycle::Observer {
 public:
  void series(const lifecycle::SeriesRow& x) override {
    s_start.push_back(iso_time(x.bin_start));
    // Seconds as lifecycle/bins has them (float64; since session 40, a review: an int64 cut a
    // horizon's last, fractional second off here and not there).
    s_start_s.push_back(x.bin_start);
    s_end_s.push_back(x.bin_end);
    s_phase.push_back(lifecycle::to_string(x.phase));
    s_site.push_back(x.site);
    s_region.push_back(x.region);
    s_hw.push_back(x.hardware);
    s_model.push_back(x.model);
    s_energy.push_back(x.energy_j);
    s_loc.push_back(x.co2e_location_kg);
    s_market.push_back(x.co2e_market_kg);
    s_req.push_back(x.requests);
  }
  void total(const lifecycle::EntityTotal& x) override {
    t_entity.push_back(x.entity);
    t_kind.push_back(x.entity_kind);
    t_phase.push_back(lifecycle::to_string(x.phase));
    t_site.push_back(x.site);
    t_region.push_back(x.region);
    t_hw.push_back(x.hardware);
    t_model.push_back(x.model);
    t_energy.push_back(x.energy_j);
    t_loc.push_back(x.co2e_location_kg);
    t_market.push_back(x.co2e_market_kg);
    t_req.push_back(x.requests);
    energy += x.energy_j;
    co2e += x.co2e_location_kg;
    market += x.co2e_market_kg;
  }
  void deployment(const lifecycle::DeploymentSummary& d) override {
    d_id.push_back(d.id);
    d_model.push_back(d.model);
    d_req.push_back(d.requests);
    d_useful.push_back(d.useful_requests);
    d_unserved.push_back(d.unserved_requests);
    d_energy.push_back(d.energy_j);
    d_loc.push_back(d.co2e_location_kg);
    d_market.push_back(d.co2e_market_kg);
    d_per.push_back(d.co2e_per_inference_kg);
    d_per_useful.push_back(d.co2e_per_useful_inference_kg);
    d_peak.push_back(d.peak_replicas);
    d_util.push_back(d.mean_utilisation);
  }
  void into(RunRecord& record) {
    record.tables.push_back(Table{"lifecycle/timeseries",
                                  {Column{"bin_start", "", std::move(s_start)}, Column{"bin_start_unix", "s", std::move(s_start_s)},
                                   Column{"bin_end_unix", "s", std::move(s_end_s)}, Column{"phase", "", std::move(s_phase)},
                                   Column{"site", "", std::move(s_site)}, Column{"region", "", std::move(s_region)},
                                   Column{"hardware", "", std::move(s_hw)}, Column{"model", "", std::move(s_model)},
                                   Column{"energy", "J", std::move(s_energy)}, Column{"co2e_location", "kgCO2e", std::move(s_loc)},
                                   Column{"co2e_market", "kgCO2e", std::move(s_market)}, Column{"requests", "1", std::move(s_req)}}});
    record.tables.push_back(Table{"lifecycle/totals",
                                  {Column{"entity", "", std::move(t_entity)}, Column{"entity_kind", "", std::move(t_kind)},
                                   Column{"phase", "", std::move(t_phase)}, Column{"site", "", std::move(t_site)},
                                   Column{"region", "", std::move(t_region)}, Column{"hardware", "", std::move(t_hw)},
                                   Column{"model", "", std::move(t_model)}, Column{"energy", "J", std::move(t_energy)},
                                   Column{"co2e_location", "kgCO2e", std::move(t_loc)},
                                   Column{"co2e_market", "kgCO2e", std::move(t_market)}, Column{"requests", "1", std::move(t_req)}}});
    record.tables.push_back(Table{"lifecycle/deployments",
                                  {Column{"deployment", "", std::move(d_id)}, Column{"model", "", std::move(d_model)},
                                   Column{"requests", "1", std::move(d_req)}, Column{"useful_requests", "1", std::move(d_useful)},
                                   Column{"unserved_requests", "1", std::move(d_unserved)}, Column{"energy", "J", std::move(d_energy)},
                                   Column{"co2e_location", "kgCO2e", std::move(d_loc)},
                                   Column{"co2e_market", "kgCO2e", std::move(d_market)},
                                   Column{"co2e_per_inference", "kgCO2e", std::move(d_per)},
                                   Column{"co2e_per_useful_inference", "kgCO2e", std::move(d_per_useful)},
                                   Column{"peak_replicas", "1", std::move(d_peak)},
                                   Column{"mean_utilisation", "1", std::move(d_util)}}});
  }
  double energy = 0, co2e = 0, market = 0;

 private:
  std::vector<std::string> s_start, s_phase, s_site, s_region, s_hw, s_model;
  std::vector<double> s_start_s, s_end_s;
  std::vector<double> s_energy, s_loc, s_market, s_req;
  std::vector<std::string> t_entity, t_kind, t_phase, t_site, t_region, t_hw, t_model;
  std::vector<double> t_energy, t_loc, t_market, t_req;
  std::vector<std::string> d_id, d_model;
  std::vector<double> d_req, d_useful, d_unserved, d_energy, d_loc, d_market, d_per, d_per_useful, d_peak, d_util;
};

}  // namespace

LifecycleTotals add_lifecycle(RunRecord& record, const lifecycle::LifecyclePlan& plan, int threads) {
  // What one replica (or device) of each deployment costs on each hardware of its mix.
  {
    std::vector<std::string> dep, hw, from;
    std::vector<double> busy, idle, rps, energy, batch, prefill, decode, embodied, life, memory;
    for (const auto& d : plan.deployments) {
      for (const auto& m : d.mix) {
        for (const auto& k : m.costs) {
          dep.push_back(d.id);
          hw.push_back(k.hardware_id);
          from.push_back(iso_time(m.from));
          busy.push_back(k.busy_w);
          idle.push_back(k.idle_w);
          rps.push_back(k.requests_per_s);
          energy.push_back(k.requests_per_s > 0 ? k.busy_w / k.requests_per_s : 0.0);
          batch.push_back(k.batch_s);
          prefill.push_back(k.prefill_s);
          decode.push_back(k.decode_s);
          embodied.push_back(k.embodied_kg);
          life.push_back(k.lifetime_s);
          memory.push_back(k.memory_bytes);
        }
      }
    }
    record.tables.push_back(Table{"lifecycle/serving",
                                  {Column{"deployment", "", dep}, Column{"hardware", "", hw}, Column{"from", "", from},
                                   Column{"busy_power", "W", busy}, Column{"idle_power", "W", idle},
                                   Column{"requests_per_second", "1/s", rps}, Column{"it_energy_per_request", "J", energy},
                                   Column{"batch_time", "s", batch}, Column{"prefill_time", "s", prefill},
                                   Column{"decode_time", "s", decode}, Column{"embodied", "kgCO2e", embodied},
                                   Column{"lifetime", "s", life}, Column{"memory_per_accelerator", "B", memory}}});
  }
  TableObserver observer;
  LifecycleTotals t;
  t.events = lifecycle::simulate_lifecycle(plan, threads, observer);
  observer.into(record);
  {
    // Every bin of the horizon, empty ones too (the time series has rows only where something
    // happened), so that a reader can lay the series on the whole calendar (since session 33).
    const std::vector<double> edges = lifecycle::bin_edges(plan.start, plan.end, plan.resolution);
    std::vector<double> starts, ends;
    for (std::size_t i = 0; i + 1 < edges.size(); ++i) {
      starts.push_back(edges[i]);
      ends.push_back(edges[i + 1]);
    }
    record.tables.push_back(Table{"lifecycle/bins", {Column{"bin_start_unix", "s", std::move(starts)}, Column{"bin_end_unix", "s", std::move(ends)}}});
  }
  t.energy_j = observer.energy;
  t.co2e_location_kg = observer.co2e;
  t.co2e_market_kg = observer.market;
  // Runs the horizon cuts: the lifecycle counts only their part inside it.
  for (const auto& r : plan.training) {
    if (r.start < plan.start || r.start + r.duration_s > plan.end) ++t.runs_cut;
  }
  return t;
}

}  // namespace dlcarbon::cli
