// Scenario loading: the entries of `deployments:` (docs/lifecycle.md, docs/scenario-format.md),
// built by the loader's builder (load_builder.hpp, load.cpp) piece by piece.

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "design.hpp"
#include "load_builder.hpp"
#include "resolved.hpp"
#include "trace.hpp"

namespace dlcarbon::load_detail {
namespace {

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

}  // namespace

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

}  // namespace dlcarbon::load_detail
