#include "dlcarbon/lifecycle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <tuple>
#include <stdexcept>

#include "dlcarbon/engine.hpp"
#include "dlcarbon/grid.hpp"

namespace dlcarbon::lifecycle {

double growth_at(const Growth& g, double t) {
  const double years = (t - static_cast<double>(g.start_unix_s)) / (365.0 * 86400.0);
  switch (g.form) {
    case Growth::Form::constant: return g.initial;
    case Growth::Form::exponential: return g.initial * std::pow(1 + g.rate_per_year, years);
    case Growth::Form::logistic: {
      if (!(g.initial > 0) || !(g.capacity > 0)) return 0;
      return g.capacity / (1 + (g.capacity / g.initial - 1) * std::exp(-g.rate_per_year * years));
    }
    case Growth::Form::piecewise:
    case Growth::Form::trace: {
      // Step function: value[i] from time[i]; before the first step, the first value.
      const auto& times = g.time_unix_s;
      const auto it = std::upper_bound(times.begin(), times.end(), static_cast<std::int64_t>(std::floor(t)));
      const std::size_t i = it == times.begin() ? 0 : static_cast<std::size_t>(it - times.begin()) - 1;
      return g.values.empty() ? 0 : g.values[i];
    }
  }
  return 0;
}

namespace {

constexpr double kHour = 3600, kDay = 86400;


double next_boundary(double t, Resolution r) {
  switch (r) {
    case Resolution::hour: return (std::floor(t / kHour) + 1) * kHour;
    case Resolution::day: return (std::floor(t / kDay) + 1) * kDay;
    case Resolution::month:
    case Resolution::year: {
      std::int64_t y = 0;
      unsigned m = 0, d = 0;
      civil_from_days(static_cast<std::int64_t>(std::floor(t / kDay)), y, m, d);
      if (r == Resolution::year) return static_cast<double>(days_from_civil(y + 1, 1, 1)) * kDay;
      return static_cast<double>(m == 12 ? days_from_civil(y + 1, 1, 1) : days_from_civil(y, m + 1, 1)) * kDay;
    }
  }
  return t;
}

// The mean intensity over [t, t + 1 h): exact for traces of any period (half-hourly, hourly,
// daily) and any alignment, so that an hour's energy times it is the exact carbon.
double hour_mean_intensity(const GridRegion& region, double t) {
  double total = 0;
  double a = t;
  const double b = t + kHour;
  while (a < b) {
    // The next change: a trace row, the trace year's wrap, or a trajectory's year.
    double next = b;
    if (region.trace && region.trace->time_unix_s.size() > 1) {
      const IntensityTrace& tr = *region.trace;
      const double start = static_cast<double>(tr.time_unix_s.front());
      const double period = trace_period_s(tr);
      const double year0 = a - (std::fmod(a - start, period) + (std::fmod(a - start, period) < 0 ? period : 0));
      const double u = a - year0 + start;
      const auto it = std::upper_bound(tr.time_unix_s.begin(), tr.time_unix_s.end(), static_cast<std::int64_t>(std::floor(u)));
      const double change = it == tr.time_unix_s.end() ? start + period : std::min(static_cast<double>(*it), start + period);
      next = std::min(next, year0 + (change - start));
    }
    if (region.annual_change != 0) {
      const double ref = trajectory_reference(region);
      const double boundary = year_start(ref, years_since(ref, a) + 1);
      if (boundary > a) next = std::min(next, boundary);
    }
    if (!(next > a)) next = std::min(b, a + 1);  // guard against rounding
    total += intensity_at(region, 0.5 * (a + next)) * (next - a);
    a = next;
  }
  return total / kHour;
}

// A piecewise-constant function on the hours of the horizon, with prefix sums: integral over any
// [a, b] in O(1), exact.
struct Hourly {
  double start = 0;
  std::vector<double> value, prefix;  // prefix[h] = integral over [start, start + h hours)
  void finish() {
    prefix.assign(value.size() + 1, 0.0);
    for (std::size_t h = 0; h < value.size(); ++h) prefix[h + 1] = prefix[h] + value[h] * kHour;
  }
  double cumulative(double t) const {
    const double x = (t - start) / kHour;
    if (x <= 0) return 0;
    const auto h = std::min(static_cast<std::size_t>(x), value.size() - 1);
    return prefix[h] + value[h] * (t - start - static_cast<double>(h) * kHour);
  }
  double integral(double a, double b) const { return cumulative(b) - cumulative(a); }
};

// The demand profile of a cohort in a site: d(t) and d(t) I(t) per hour.
struct Profile {
  Hourly d, dI;
  double max = 1;
};

struct Stream {
  Phase phase = Phase::inference;
  std::uint32_t hardware = 0;
  double a_w = 0, b_w = 0;        // facility W: A + B d(t)
  double a_kg = 0, b_kg = 0;      // direct kgCO2e/s (embodied)
  double a_req = 0, b_req = 0;    // requests/s served
};

struct Acc {
  double energy = 0, loc = 0, market = 0, requests = 0;
  void add(const Acc& o) {
    energy += o.energy;
    loc += o.loc;
    market += o.market;
    requests += o.requests;
  }
};

// Everything one partition (site) owns.
struct SiteState {
  Hourly intensity;
  std::vector<Profile> profiles;             // by the plan's profile index
  std::map<std::uint64_t, std::vector<Acc>> series;  // (phase, hardware, model) -> per bin
  std::map<std::uint64_t, Acc> totals;       // (entity, phase, hardware) -> total
};

struct CohortState {
  std::size_t next = 0;  // index of the step boundary the next event starts
  double unserved = 0, peak = 0;
  double replica_s = 0, busy_s = 0;  // provisioned and busy replica-seconds (edge: device-seconds)
  std::size_t profile = 0;
};

std::uint64_t series_key(Phase p, std::uint32_t hw, std::uint32_t model) {
  return (static_cast<std::uint64_t>(p) << 48) | (static_cast<std::uint64_t>(hw) << 24) | model;
}
std::uint64_t total_key(std::uint32_t entity, Phase p, std::uint32_t hw) {
  return (static_cast<std::uint64_t>(entity) << 32) | (static_cast<std::uint64_t>(p) << 24) | hw;
}

class Simulation {
 public:
  explicit Simulation(const LifecyclePlan& plan) : plan_(plan) {
    if (!(plan.end > plan.start)) throw std::invalid_argument("lifecycle: the horizon is empty");
    for (const auto& d : plan.deployments) {
      if (d.mix.empty()) throw std::invalid_argument("lifecycle: deployment " + d.id + " has no hardware");
      for (const auto& m : d.mix) {
        if (m.costs.size() != m.shares.size()) throw std::invalid_argument("lifecycle: deployment " + d.id + ": shares and hardware differ in number");
      }
      if (d.diurnal.size() != 24 || d.weekly.size() != 7) throw std::invalid_argument("lifecycle: deployment " + d.id + ": a profile needs 24 and 7 values");
      if (d.kind == Deployment::Kind::edge && !d.devices) throw std::invalid_argument("lifecycle: edge deployment " + d.id + " has no devices");
    }
    for (const auto& c : plan.cohorts) {
      if (c.deployment >= plan.deployments.size() || c.site >= plan.sites.size()) throw std::invalid_argument("lifecycle: a cohort refers to no deployment or site");
    }
    for (const auto& t : plan.training) {
      if (t.site >= plan.sites.size()) throw std::invalid_argument("lifecycle: training run " + t.id + " refers to no site");
    }
    edges_ = bin_edges(plan.start, plan.end, plan.resolution);
    hours_ = static_cast<std::size_t>(std::ceil((plan.end - plan.start) / kHour));
    intern_names();
    plan_steps();
    plan_profiles();
    sites_.resize(plan.sites.size());
    cohorts_.resize(plan.cohorts.size());
    for (std::size_t c = 0; c < plan.cohorts.size(); ++c) cohorts_[c].profile = cohort_profile_[c];
  }

  std::uint64_t run(int threads, Observer& observer) {
    const auto partitions = static_cast<std::uint32_t>(std::max<std::size_t>(1, plan_.sites.size()));
    engine::Engine engine(partitions, plan_.end - plan_.start + 1);
    // Grids and profiles: each site builds its own prefix sums, in parallel, in the first window.
    for (std::uint32_t s = 0; s < plan_.sites.size(); ++s) engine.schedule({plan_.start, 0, s, kSetup, 0});
    for (std::size_t c = 0; c < plan_.cohorts.size(); ++c) {
      const auto& steps = steps_[plan_.cohorts[c].deployment];
      if (steps.size() < 2) continue;
      engine.schedule({steps.front(), 0, static_cast<std::uint32_t>(plan_.cohorts[c].site), kStep, c});
    }
    for (std::size_t j = 0; j < plan_.training.size(); ++j) {
      const auto& t = plan_.training[j];
      const double a = std::max(t.start, plan_.start);
      if (a >= std::min(plan_.end, t.start + t.duration_s)) continue;
      engine.schedule({a, 0, static_cast<std::uint32_t>(t.site), kTraining, j});
    }
    const auto stats = engine.run_until(plan_.end + 1, [this](const engine::Event& e, engine::Context& ctx) {
      handle(e, ctx);
    }, threads);
    collect(observer);
    return stats.events;
  }

 private:
  static constexpr std::uint32_t kSetup = 0, kStep = 1, kTraining = 2;

  void intern_names() {
    auto intern = [](std::vector<std::string>& names, const std::string& n) {
      const auto it = std::find(names.begin(), names.end(), n);
      if (it != names.end()) return static_cast<std::uint32_t>(it - names.begin());
      names.push_back(n);
      return static_cast<std::uint32_t>(names.size() - 1);
    };
    for (const auto& d : plan_.deployments) {
      deployment_model_.push_back(intern(models_, d.model));
      std::vector<std::vector<std::uint32_t>> per_mix;
      for (const auto& m : d.mix) {
        std::vector<std::uint32_t> ids;
        for (const auto& c : m.costs) ids.push_back(intern(hardware_, c.hardware_id));
        per_mix.push_back(ids);
      }
      mix_hardware_.push_back(per_mix);
    }
    for (const auto& t : plan_.training) {
      training_model_.push_back(intern(models_, t.model));
      training_hardware_.push_back(intern(hardware_, t.hardware_id));
    }
  }

  // Step boundaries of each deployment: regular steps from its start, and every mix change.
  void plan_steps() {
    for (const auto& d : plan_.deployments) {
      const double a = std::max(d.start, plan_.start), b = std::min(d.end, plan_.end);
      std::vector<double> s;
      if (b > a) {
        const double step = std::max(d.step_s, kHour);  // the loader asks for >= 1 h too
        for (double k = std::ceil((a - d.start) / step);; k += 1) {
          const double t = d.start + k * step;
          if (t >= b) break;
          s.push_back(t);
        }
        for (const auto& m : d.mix) {
          if (m.from > a && m.from < b) s.push_back(m.from);
        }
        // Step functions (piecewise, trace) change only at their times: make those boundaries too.
        for (const Growth* g : {d.replicas ? &*d.replicas : nullptr, &d.demand, d.devices ? &*d.devices : nullptr}) {
          if (!g || (g->form != Growth::Form::piecewise && g->form != Growth::Form::trace)) continue;
          for (const auto t : g->time_unix_s) {
            if (static_cast<double>(t) > a && static_cast<double>(t) < b) s.push_back(static_cast<double>(t));
          }
        }
        s.push_back(a);
        s.push_back(b);
        std::sort(s.begin(), s.end());
        s.erase(std::unique(s.begin(), s.end()), s.end());
        s.erase(std::remove_if(s.begin(), s.end(), [&](double t) { return t < a || t > b; }), s.end());
      }
      steps_.push_back(std::move(s));
    }
  }

  // Distinct profiles (diurnal, weekly, offset): each site builds only those of its cohorts.
  void plan_profiles() {
    std::vector<std::tuple<std::vector<double>, std::vector<double>, double>> keys;
    for (const auto& c : plan_.cohorts) {
      const auto& d = plan_.deployments[c.deployment];
      auto key = std::make_tuple(d.diurnal, d.weekly, c.utc_offset_s);
      auto it = std::find(keys.begin(), keys.end(), key);
      if (it == keys.end()) {
        keys.push_back(key);
        it = keys.end() - 1;
      }
      cohort_profile_.push_back(static_cast<std::size_t>(it - keys.begin()));
    }
    profile_keys_ = std::move(keys);
  }

  void setup_site(std::uint32_t s) {
    SiteState& st = sites_[s];
    st.intensity.start = plan_.start;
    st.intensity.value.resize(hours_);
    const GridRegion& region = plan_.sites[s].region;
    for (std::size_t h = 0; h < hours_; ++h) st.intensity.value[h] = hour_mean_intensity(region, plan_.start + static_cast<double>(h) * kHour);
    st.intensity.finish();
    st.profiles.resize(profile_keys_.size());
    std::vector<bool> used(profile_keys_.size(), false);
    for (std::size_t c = 0; c < plan_.cohorts.size(); ++c) {
      if (plan_.cohorts[c].site == s) used[cohort_profile_[c]] = true;
    }
    for (std::size_t p = 0; p < profile_keys_.size(); ++p) {
      if (!used[p]) continue;
      const auto& [diurnal, weekly, offset] = profile_keys_[p];
      Profile& pr = st.profiles[p];
      pr.d.start = pr.dI.start = plan_.start;
      pr.d.value.resize(hours_);
      pr.dI.value.resize(hours_);
      pr.max = 0;
      for (double w : weekly) {
        for (double x : diurnal) pr.max = std::max(pr.max, w * x);
      }
      for (std::size_t h = 0; h < hours_; ++h) {
        const double local = plan_.start + static_cast<double>(h) * kHour + offset;
        const auto day = static_cast<std::int64_t>(std::floor(local / kDay));
        const auto hour = static_cast<std::size_t>(std::floor((local - static_cast<double>(day) * kDay) / kHour)) % 24;
        const auto weekday = static_cast<std::size_t>(((day + 3) % 7 + 7) % 7);  // 1970-01-01 was a Thursday; Monday = 0
        pr.d.value[h] = diurnal[hour] * weekly[weekday];
        pr.dI.value[h] = pr.d.value[h] * st.intensity.value[h];
      }
      pr.d.finish();
      pr.dI.finish();
    }
  }

  void handle(const engine::Event& e, engine::Context& ctx) {
    if (e.kind == kSetup) return setup_site(e.target);
    if (e.kind == kTraining) return run_training(e.target, static_cast<std::size_t>(e.payload));
    const auto c = static_cast<std::size_t>(e.payload);
    CohortState& cs = cohorts_[c];
    const auto& steps = steps_[plan_.cohorts[c].deployment];
    step(e.target, c, steps[cs.next], steps[cs.next + 1]);
    ++cs.next;
    if (cs.next + 1 < steps.size()) ctx.schedule(steps[cs.next], e.target, kStep, e.payload);
  }

  void run_training(std::uint32_t s, std::size_t j) {
    const auto& t = plan_.training[j];
    const double a = std::max(t.start, plan_.start), b = std::min(plan_.end, t.start + t.duration_s);
    const double pue = plan_.sites[s].pue;
    const auto entity = static_cast<std::uint32_t>(plan_.deployments.size() + j);
    Stream train{Phase::training, training_hardware_[j], t.it_w * pue, 0, 0, 0, 0, 0};
    Stream embodied{Phase::embodied, training_hardware_[j], 0, 0, t.embodied_kg_per_s, 0, 0, 0};
    accumulate(s, nullptr, entity, training_model_[j], train, a, b);
    accumulate(s, nullptr, entity, training_model_[j], embodied, a, b);
  }

  // Where a step reads its growth: its middle, or, for a step the horizon cuts, the middle of the
  // deployment's own step around it (its step grid, mix changes and step-function times bound it,
  // the horizon does not), so that what falls inside the horizon does not depend on where the
  // horizon starts or ends (since session 41, a review: January's embodied carbon moved 2 % with
  // the horizon's start).
  double growth_time(const DeploymentPlan& d, double t0, double t1) const {
    const bool cut_start = t0 == plan_.start && plan_.start > d.start;
    const bool cut_end = t1 == plan_.end && plan_.end < d.end;
    if (!cut_start && !cut_end) return 0.5 * (t0 + t1);
    const double step = std::max(d.step_s, kHour);
    const double k = std::floor((t0 - d.start) / step);
    double lo = std::max(d.start, d.start + k * step), hi = std::min(d.end, d.start + (k + 1) * step);
    const auto bound = [&](double t) {
      if (t <= t0) lo = std::max(lo, t);
      if (t >= t1) hi = std::min(hi, t);
    };
    for (const auto& m : d.mix) bound(m.from);
    for (const Growth* g : {d.replicas ? &*d.replicas : nullptr, &d.demand, d.devices ? &*d.devices : nullptr}) {
      if (!g || (g->form != Growth::Form::piecewise && g->form != Growth::Form::trace)) continue;
      for (const auto t : g->time_unix_s) bound(static_cast<double>(t));
    }
    return 0.5 * ((cut_start ? lo : t0) + (cut_end ? hi : t1));
  }

  // One step of a cohort: replicas, demand and mix are fixed, the profile and grid vary by hour.
  void step(std::uint32_t s, std::size_t c, double t0, double t1) {
    const CohortPlan& cp = plan_.cohorts[c];
    const DeploymentPlan& d = plan_.deployments[cp.deployment];
    CohortState& cs = cohorts_[c];
    const Profile& prof = sites_[s].profiles[cs.profile];
    const double pue = plan_.sites[s].pue, mid = growth_time(d, t0, t1);
    std::size_t mi = 0;
    for (std::size_t i = 0; i < d.mix.size(); ++i) {
      if (d.mix[i].from <= t0) mi = i;
    }
    const MixPlan& mix = d.mix[mi];
    const auto& hw = mix_hardware_[cp.deployment][mi];
    const auto entity = static_cast<std::uint32_t>(cp.deployment);
    const std::uint32_t model = deployment_model_[cp.deployment];
    std::vector<Stream> streams;
    if (d.kind == Deployment::Kind::edge) {
      const double devices = (d.devices ? growth_at(*d.devices, mid) : 0) * cp.share;
      cs.peak = std::max(cs.peak, devices);
      const double rate = devices * growth_at(d.demand, mid);  // inferences/s at d(t) = 1
      cs.replica_s += devices * (t1 - t0);
      const double per_device = growth_at(d.demand, mid);  // inferences/s a device at d(t) = 1
      for (std::size_t h = 0; h < mix.costs.size(); ++h) {
        const ServiceCost& k = mix.costs[h];
        const double r = rate * mix.shares[h];
        const double busy_s = k.requests_per_s > 0 ? 1 / k.requests_per_s : 0;  // device time per inference
        const double alpha = per_device * busy_s;  // a device's utilisation at d(t) = 1
        if (alpha * prof.max <= 1) {
          cs.busy_s += r * busy_s * prof.d.integral(t0, t1);
          streams.push_back({Phase::inference, hw[h], 0, r * k.busy_w * busy_s / d.charging_efficiency, 0, 0, 0, r});
          streams.push_back({Phase::embodied, hw[h], 0, 0, 0, r * busy_s * k.embodied_kg / k.lifetime_s, 0, 0});
          continue;
        }
        // A device busy all the time serves no more: at the peaks u = min(1, alpha d(t)), hour by
        // hour, and the rest of the demand is unserved, as a cloud deployment's overload (since
        // session 38, a review: a phone had been booked 234 times busy).
        const double n = devices * mix.shares[h];
        each_hour(t0, t1, [&](std::size_t hi, double a, double b) {
          const double dv = prof.d.value[hi];
          const double u = std::min(1.0, alpha * dv);
          cs.unserved += n * std::max(0.0, per_device * dv - k.requests_per_s) * (b - a);
          cs.busy_s += n * u * (b - a);
          accumulate(s, nullptr, entity, model,
                     {Phase::inference, hw[h], n * u * k.busy_w / d.charging_efficiency, 0, 0, 0, n * u * k.requests_per_s, 0}, a, b);
          accumulate(s, nullptr, entity, model, {Phase::embodied, hw[h], 0, 0, n * u * k.embodied_kg / k.lifetime_s, 0, 0, 0}, a, b);
        });
      }
      for (const auto& st : streams) accumulate(s, &prof, entity, model, st, t0, t1);
      return;
    }
    const double demand = growth_at(d.demand, mid) * cp.share;  // requests/s at d(t) = 1
    double mean_rate = 0;
    for (std::size_t h = 0; h < mix.costs.size(); ++h) mean_rate += mix.shares[h] * mix.costs[h].requests_per_s;
    double replicas = 0;
    if (d.replicas) replicas = growth_at(*d.replicas, mid) * cp.share;
    else if (mean_rate > 0 && demand > 0) {
      // Autoscaled: whole replicas for the step's peak demand plus headroom (at least one).
      replicas = std::max(1.0, std::ceil(demand * prof.max * (1 + d.headroom) / mean_rate - 1e-9));
    }
    cs.peak = std::max(cs.peak, replicas);
    cs.replica_s += replicas * (t1 - t0);
    double capacity = 0;
    for (std::size_t h = 0; h < mix.costs.size(); ++h) capacity += replicas * mix.shares[h] * mix.costs[h].requests_per_s;
    for (std::size_t h = 0; h < mix.costs.size(); ++h) {
      const ServiceCost& k = mix.costs[h];
      const double n = replicas * mix.shares[h];
      streams.push_back({Phase::embodied, hw[h], 0, 0, n * k.embodied_kg / k.lifetime_s, 0, 0, 0});
    }
    for (const auto& st : streams) accumulate(s, &prof, entity, model, st, t0, t1);
    if (!(capacity > 0)) {
      // Nothing can serve: every request is unserved, and provisioned replicas still idle.
      cs.unserved += demand * prof.d.integral(t0, t1);
      for (std::size_t h = 0; h < mix.costs.size(); ++h) {
        const double n = replicas * mix.shares[h];
        accumulate(s, &prof, entity, model, {Phase::idle, hw[h], n * mix.costs[h].idle_w * pue, 0, 0, 0, 0, 0}, t0, t1);
      }
      return;
    }
    const double alpha = demand / capacity;  // utilisation at d(t) = 1
    if (alpha * prof.max <= 1) {
      cs.busy_s += replicas * alpha * prof.d.integral(t0, t1);
      // Linear: busy power n u busy, idle power n (1 - u) idle, with u = alpha d(t).
      for (std::size_t h = 0; h < mix.costs.size(); ++h) {
        const ServiceCost& k = mix.costs[h];
        const double n = replicas * mix.shares[h];
        accumulate(s, &prof, entity, model, {Phase::inference, hw[h], 0, n * alpha * k.busy_w * pue, 0, 0, 0, n * alpha * k.requests_per_s}, t0, t1);
        accumulate(s, &prof, entity, model, {Phase::idle, hw[h], n * k.idle_w * pue, -n * alpha * k.idle_w * pue, 0, 0, 0, 0}, t0, t1);
      }
      return;
    }
    // Overloaded at the peaks: u = min(1, alpha d(t)), hour by hour (still exact).
    each_hour(t0, t1, [&](std::size_t hi, double a, double b) {
      const double dv = prof.d.value[hi];
      const double u = std::min(1.0, alpha * dv);
      cs.unserved += std::max(0.0, demand * dv - capacity) * (b - a);
      cs.busy_s += replicas * u * (b - a);
      for (std::size_t h = 0; h < mix.costs.size(); ++h) {
        const ServiceCost& k = mix.costs[h];
        const double n = replicas * mix.shares[h];
        accumulate(s, nullptr, entity, model, {Phase::inference, hw[h], n * u * k.busy_w * pue, 0, 0, 0, n * u * k.requests_per_s, 0}, a, b);
        accumulate(s, nullptr, entity, model, {Phase::idle, hw[h], n * (1 - u) * k.idle_w * pue, 0, 0, 0, 0, 0}, a, b);
      }
    });
  }

  // Calls f(hour, a, b) for each hour of the profile that [t0, t1] overlaps, [a, b] the overlap
  // (the last hour runs on to t1).
  template <class F>
  void each_hour(double t0, double t1, F&& f) const {
    const auto first = static_cast<std::size_t>(std::max(0.0, std::floor((t0 - plan_.start) / kHour)));
    for (std::size_t hi = std::min(first, hours_ - 1);; ++hi) {
      const double a = std::max(t0, plan_.start + static_cast<double>(hi) * kHour);
      const double b = hi + 1 >= hours_ ? t1 : std::min(t1, plan_.start + static_cast<double>(hi + 1) * kHour);
      if (b > a) f(hi, a, b);
      if (b >= t1) break;
    }
  }

  // Adds a stream over [t0, t1] to the site's bins and the entity's totals. Without a profile,
  // d(t) = 0 (only the A terms).
  void accumulate(std::uint32_t s, const Profile* prof, std::uint32_t entity, std::uint32_t model, const Stream& st,
                  double t0, double t1) {
    if (!(t1 > t0)) return;
    SiteState& site = sites_[s];
    const auto& market = plan_.sites[s].market_kg_per_j;
    auto& bins = site.series[series_key(st.phase, st.hardware, model)];
    if (bins.empty()) bins.resize(edges_.size() - 1);
    Acc& total = site.totals[total_key(entity, st.phase, st.hardware)];
    auto j = static_cast<std::size_t>(std::upper_bound(edges_.begin(), edges_.end(), t0) - edges_.begin());
    j = j == 0 ? 0 : j - 1;
    for (; j + 1 < edges_.size() && edges_[j] < t1; ++j) {
      const double a = std::max(t0, edges_[j]), b = std::min(t1, edges_[j + 1]);
      if (!(b > a)) continue;
      const double D = prof ? prof->d.integral(a, b) : 0;
      const double DI = prof ? prof->dI.integral(a, b) : 0;
      const double I = site.intensity.integral(a, b);
      Acc x;
      x.energy = st.a_w * (b - a) + st.b_w * D;
      const double direct = st.a_kg * (b - a) + st.b_kg * D;
      x.loc = st.a_w * I + st.b_w * DI + direct;
      x.market = (market ? x.energy * *market : x.loc - direct) + direct;
      x.requests = st.a_req * (b - a) + st.b_req * D;
      bins[j].add(x);
      total.add(x);
    }
  }

  void collect(Observer& observer) {
    const std::size_t nd = plan_.deployments.size();
    std::vector<DeploymentSummary> deployments(nd);
    for (std::size_t i = 0; i < nd; ++i) {
      deployments[i].id = plan_.deployments[i].id;
      deployments[i].model = plan_.deployments[i].model;
    }
    for (std::size_t s = 0; s < sites_.size(); ++s) {
      const Site& site = plan_.sites[s];
      for (const auto& [key, bins] : sites_[s].series) {
        const auto phase = static_cast<Phase>(key >> 48);
        const auto hw = static_cast<std::uint32_t>((key >> 24) & 0xFFFFFF);
        const auto model = static_cast<std::uint32_t>(key & 0xFFFFFF);
        for (std::size_t j = 0; j < bins.size(); ++j) {
          const Acc& x = bins[j];
          if (x.energy == 0 && x.loc == 0 && x.requests == 0) continue;
          observer.series({edges_[j], edges_[j + 1], phase, site.id, site.region.id, hardware_[hw], models_[model], x.energy, x.loc,
                           x.market, x.requests});
        }
      }
      for (const auto& [key, x] : sites_[s].totals) {
        const auto entity = static_cast<std::uint32_t>(key >> 32);
        const auto phase = static_cast<Phase>((key >> 24) & 0xFF);
        const auto hw = static_cast<std::uint32_t>(key & 0xFFFFFF);
        EntityTotal t;
        const bool dep = entity < nd;
        t.entity = dep ? plan_.deployments[entity].id : plan_.training[entity - nd].id;
        t.entity_kind = dep ? "deployment" : "training";
        t.site = site.id;
        t.region = site.region.id;
        t.hardware = hardware_[hw];
        t.model = dep ? plan_.deployments[entity].model : plan_.training[entity - nd].model;
        t.phase = phase;
        t.energy_j = x.energy;
        t.co2e_location_kg = x.loc;
        t.co2e_market_kg = x.market;
        t.requests = x.requests;
        observer.total(t);
        if (dep) {
          DeploymentSummary& ds = deployments[entity];
          ds.energy_j += x.energy;
          ds.co2e_location_kg += x.loc;
          ds.co2e_market_kg += x.market;
          ds.requests += x.requests;
        }
      }
    }
    std::vector<double> replica_s(nd, 0.0), busy_s(nd, 0.0);
    for (std::size_t c = 0; c < plan_.cohorts.size(); ++c) {
      DeploymentSummary& ds = deployments[plan_.cohorts[c].deployment];
      ds.unserved_requests += cohorts_[c].unserved;
      ds.peak_replicas += cohorts_[c].peak;  // sum of the cohorts' peaks: an upper bound when peaks differ in time
      replica_s[plan_.cohorts[c].deployment] += cohorts_[c].replica_s;
      busy_s[plan_.cohorts[c].deployment] += cohorts_[c].busy_s;
    }
    for (std::size_t i = 0; i < nd; ++i) {
      DeploymentSummary& ds = deployments[i];
      const double none = std::numeric_limits<double>::quiet_NaN();
      if (!plan_.deployments[i].runs) {
        // Cannot run (its replica does not fit): every figure unknown, as a training job's that
        // does not fit (since session 34; before, it was simulated as if it fitted).
        ds.requests = ds.useful_requests = ds.unserved_requests = none;
        ds.energy_j = ds.co2e_location_kg = ds.co2e_market_kg = none;
        ds.co2e_per_inference_kg = ds.co2e_per_useful_inference_kg = none;
        ds.peak_replicas = ds.mean_utilisation = none;
        observer.deployment(ds);
        continue;
      }
      ds.useful_requests = ds.requests * plan_.deployments[i].useful_fraction;
      // Never provisioned (wholly outside the horizon): no utilisation (NaN, not 0; since session 34).
      ds.mean_utilisation = replica_s[i] > 0 ? busy_s[i] / replica_s[i] : none;
      // Nothing served: no figure per inference (NaN, not a free one; since session 33), whatever
      // the fleet emitted while it waited.
      ds.co2e_per_inference_kg = ds.requests > 0 ? ds.co2e_location_kg / ds.requests : none;
      ds.co2e_per_useful_inference_kg = ds.useful_requests > 0 ? ds.co2e_location_kg / ds.useful_requests : none;
      observer.deployment(ds);
    }
  }

  const LifecyclePlan& plan_;
  std::vector<double> edges_;
  std::size_t hours_ = 0;
  std::vector<std::string> models_, hardware_;
  std::vector<std::uint32_t> deployment_model_, training_model_, training_hardware_;
  std::vector<std::vector<std::vector<std::uint32_t>>> mix_hardware_;
  std::vector<std::vector<double>> steps_;
  std::vector<std::tuple<std::vector<double>, std::vector<double>, double>> profile_keys_;
  std::vector<std::size_t> cohort_profile_;
  std::vector<SiteState> sites_;
  std::vector<CohortState> cohorts_;
};

}  // namespace

const char* to_string(Phase phase) {
  switch (phase) {
    case Phase::training: return "training";
    case Phase::inference: return "inference";
    case Phase::idle: return "idle";
    case Phase::embodied: return "embodied";
  }
  return "?";
}

Resolution parse_resolution(const std::string& text) {
  if (text == "hour") return Resolution::hour;
  if (text == "day") return Resolution::day;
  if (text == "month") return Resolution::month;
  if (text == "year") return Resolution::year;
  throw std::invalid_argument("unknown resolution " + text);
}

std::vector<double> bin_edges(double t0, double t1, Resolution resolution) {
  std::vector<double> e{t0};
  for (double t = next_boundary(t0, resolution); t < t1; t = next_boundary(t, resolution)) e.push_back(t);
  e.push_back(t1);
  return e;
}

double series_rows_bound(const LifecyclePlan& plan) {
  // Bins, counted without building their edges (1,000 years hourly is 8.8 million).
  const double span = std::max(0.0, plan.end - plan.start);
  const double per_bin = plan.resolution == Resolution::hour ? 3600.0
                         : plan.resolution == Resolution::day ? 86400.0
                         : plan.resolution == Resolution::month ? 28 * 86400.0
                                                                 : 365 * 86400.0;
  const double bins = std::floor(span / per_bin) + 2;
  // The series keys, as the simulation makes them: site x phase x hardware x model.
  std::set<std::tuple<std::size_t, int, std::string, std::string>> keys;
  for (const auto& c : plan.cohorts) {
    if (c.deployment >= plan.deployments.size()) continue;
    const auto& d = plan.deployments[c.deployment];
    for (const auto& step : d.mix) {
      for (const auto& k : step.costs) {
        for (const Phase ph : {Phase::inference, Phase::idle, Phase::embodied}) keys.emplace(c.site, static_cast<int>(ph), k.hardware_id, d.model);
      }
    }
  }
  for (const auto& r : plan.training) {
    for (const Phase ph : {Phase::training, Phase::embodied}) keys.emplace(r.site, static_cast<int>(ph), r.hardware_id, r.model);
  }
  return bins * static_cast<double>(keys.size());
}

double intensity_at(const GridRegion& region, double t) {
  double value = region.intensity_kg_per_j;
  if (region.trace && !region.trace->time_unix_s.empty()) {
    const IntensityTrace& tr = *region.trace;
    const double start = static_cast<double>(tr.time_unix_s.front());
    const double period = trace_period_s(tr);
    const double u = start + (t - start - std::floor((t - start) / period) * period);
    const auto it = std::upper_bound(tr.time_unix_s.begin(), tr.time_unix_s.end(), static_cast<std::int64_t>(std::floor(u)));
    const std::size_t i = it == tr.time_unix_s.begin() ? 0 : static_cast<std::size_t>(it - tr.time_unix_s.begin()) - 1;
    value = tr.kg_per_j[i];
  }
  if (region.annual_change != 0) {
    // Year k after the reference year scales by (1 + change)^k (as intensity_integral does).
    const double ref = trajectory_reference(region);
    value *= std::pow(1 + region.annual_change, std::max(0.0, years_since(ref, t)));
  }
  return value;
}

std::uint64_t simulate_lifecycle(const LifecyclePlan& plan, int threads, Observer& observer) {
  Simulation sim(plan);
  return sim.run(threads, observer);
}

namespace {
class Collector : public Observer {
 public:
  explicit Collector(LifecycleResult& r) : r_(r) {}
  void series(const SeriesRow& row) override { r_.series.push_back(row); }
  void total(const EntityTotal& t) override { r_.totals.push_back(t); }
  void deployment(const DeploymentSummary& d) override { r_.deployments.push_back(d); }

 private:
  LifecycleResult& r_;
};
}  // namespace

LifecycleResult simulate_lifecycle(const LifecyclePlan& plan, int threads) {
  LifecycleResult r;
  Collector c(r);
  r.events = simulate_lifecycle(plan, threads, c);
  return r;
}

}  // namespace dlcarbon::lifecycle
