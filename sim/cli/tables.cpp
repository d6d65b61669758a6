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
  std::vector<double> step_time, mfu, steps, memory;
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
    step_time.push_back(res.step ? res.step->step_s : nan);
    mfu.push_back(res.step ? res.step->mfu : nan);
    steps.push_back(res.step ? res.step->steps : nan);
    memory.push_back(res.step ? res.step->memory_per_device_bytes : nan);
    job.push_back(j.id);
    model.push_back(j.model_id);
    hardware.push_back(j.hardware.id);
    datacenter.push_back(j.datacenter.id);
    region.push_back(j.datacenter.region.id);
    accelerators.push_back(j.accelerators);
    duration.push_back(f.duration_s);
    accel_time.push_back(f.accelerator_time_s);
    power.push_back(f.power_per_accelerator_w);
    it.push_back(f.it_energy_j);
    pue.push_back(f.pue);
    facility.push_back(f.facility_energy_j);
    i_loc.push_back(f.intensity_location_kg_per_j);
    c_loc.push_back(f.co2e_location_kg);
    i_mkt.push_back(f.intensity_market_kg_per_j.value_or(nan));
    c_mkt.push_back(f.co2e_market_kg.value_or(nan));
    tokens.push_back(j.tokens.value_or(nan));
    flops.push_back(j.flops.value_or(nan));
    total_it += f.it_energy_j;
    total_facility += f.facility_energy_j;
    total_loc += f.co2e_location_kg;
    if (f.co2e_market_kg) total_mkt += *f.co2e_market_kg;
    all_market = all_market && f.co2e_market_kg.has_value();
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
                            column("memory_per_accelerator", "B", memory)}});
  // Per-operator breakdown of each first-principles job: one microbatch on one device
  // (fwd, bwd), plus the optimizer and the communication of one step.
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i].step) continue;
    std::vector<std::string> op, kind, phase, bound;
    std::vector<double> f, b, t, e;
    for (const auto& row : results[i].step->ops) {
      op.push_back(row.op);
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
    r.tables.push_back(Table{"training/" + scenario.training[i].id + "/ops",
                             {column("op", "", op), column("kind", "", kind), column("phase", "", phase),
                              column("flops", "FLOP", f), column("bytes", "B", b), column("time", "s", t),
                              column("energy", "J", e), column("bound", "", bound)}});
  }
  if (!scenario.inference.empty()) {
    std::vector<std::string> id, model, hw, dc, region, layout, input_layout;
    std::vector<std::int64_t> batch;
    std::vector<double> count, bt, rt, epi_it, epi_fac, at, it_e, fac_e, c_loc, c_mkt;
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
      bt.push_back(x.batch_time_s);
      rt.push_back(x.reorder_time_s);
      epi_it.push_back(x.it_energy_per_inference_j);
      epi_fac.push_back(x.facility_energy_per_inference_j);
      at.push_back(x.accelerator_time_s);
      it_e.push_back(x.it_energy_j);
      fac_e.push_back(x.facility_energy_j);
      c_loc.push_back(x.co2e_location_kg);
      c_mkt.push_back(x.co2e_market_kg.value_or(nan));
      total_it += x.it_energy_j;
      total_facility += x.facility_energy_j;
      total_loc += x.co2e_location_kg;
      if (x.co2e_market_kg) total_mkt += *x.co2e_market_kg;
      all_market = all_market && x.co2e_market_kg.has_value();
    }
    r.tables.push_back(Table{"summary/inference",
                             {column("job", "", id), column("model", "", model), column("hardware", "", hw),
                              column("datacenter", "", dc), column("region", "", region), column("layout", "", layout),
                              column("input_layout", "", input_layout), column("batch", "1", batch),
                              column("inferences", "1", count), column("batch_time", "s", bt),
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
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
}  // namespace

void add_lifecycle_tables(RunRecord& record, const lifecycle::LifecycleResult& r) {
  {
    std::vector<std::string> start, phase, site, region, hw, model;
    std::vector<std::int64_t> start_s, end_s;
    std::vector<double> energy, loc, market, requests;
    for (const auto& x : r.series) {
      start.push_back(iso_time(x.bin_start));
      start_s.push_back(static_cast<std::int64_t>(x.bin_start));
      end_s.push_back(static_cast<std::int64_t>(x.bin_end));
      phase.push_back(lifecycle::to_string(x.phase));
      site.push_back(x.site);
      region.push_back(x.region);
      hw.push_back(x.hardware);
      model.push_back(x.model);
      energy.push_back(x.energy_j);
      loc.push_back(x.co2e_location_kg);
      market.push_back(x.co2e_market_kg);
      requests.push_back(x.requests);
    }
    record.tables.push_back(Table{"lifecycle/timeseries",
                                  {Column{"bin_start", "", start}, Column{"bin_start_unix", "s", start_s},
                                   Column{"bin_end_unix", "s", end_s}, Column{"phase", "", phase}, Column{"site", "", site},
                                   Column{"region", "", region}, Column{"hardware", "", hw}, Column{"model", "", model},
                                   Column{"energy", "J", energy}, Column{"co2e_location", "kgCO2e", loc},
                                   Column{"co2e_market", "kgCO2e", market}, Column{"requests", "1", requests}}});
  }
  {
    std::vector<std::string> entity, kind, phase, site, region, hw, model;
    std::vector<double> energy, loc, market, requests;
    for (const auto& x : r.totals) {
      entity.push_back(x.entity);
      kind.push_back(x.entity_kind);
      phase.push_back(lifecycle::to_string(x.phase));
      site.push_back(x.site);
      region.push_back(x.region);
      hw.push_back(x.hardware);
      model.push_back(x.model);
      energy.push_back(x.energy_j);
      loc.push_back(x.co2e_location_kg);
      market.push_back(x.co2e_market_kg);
      requests.push_back(x.requests);
    }
    record.tables.push_back(Table{"lifecycle/totals",
                                  {Column{"entity", "", entity}, Column{"entity_kind", "", kind}, Column{"phase", "", phase},
                                   Column{"site", "", site}, Column{"region", "", region}, Column{"hardware", "", hw},
                                   Column{"model", "", model}, Column{"energy", "J", energy},
                                   Column{"co2e_location", "kgCO2e", loc}, Column{"co2e_market", "kgCO2e", market},
                                   Column{"requests", "1", requests}}});
  }
  {
    std::vector<std::string> id, model;
    std::vector<double> req, useful, unserved, energy, loc, market, per, per_useful, peak;
    for (const auto& d : r.deployments) {
      id.push_back(d.id);
      model.push_back(d.model);
      req.push_back(d.requests);
      useful.push_back(d.useful_requests);
      unserved.push_back(d.unserved_requests);
      energy.push_back(d.energy_j);
      loc.push_back(d.co2e_location_kg);
      market.push_back(d.co2e_market_kg);
      per.push_back(d.co2e_per_inference_kg);
      per_useful.push_back(d.co2e_per_useful_inference_kg);
      peak.push_back(d.peak_replicas);
    }
    record.tables.push_back(Table{"lifecycle/deployments",
                                  {Column{"deployment", "", id}, Column{"model", "", model}, Column{"requests", "1", req},
                                   Column{"useful_requests", "1", useful}, Column{"unserved_requests", "1", unserved},
                                   Column{"energy", "J", energy}, Column{"co2e_location", "kgCO2e", loc},
                                   Column{"co2e_market", "kgCO2e", market},
                                   Column{"co2e_per_inference", "kgCO2e", per},
                                   Column{"co2e_per_useful_inference", "kgCO2e", per_useful},
                                   Column{"peak_replicas", "1", peak}}});
  }
}

}  // namespace dlcarbon::cli
