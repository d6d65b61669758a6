// `dlcarbon validate`: runs every scenario in scenarios/published/ and compares each job
// with the figures its source printed.
//
// A figure printed as "4.3" stands for anything in [4.25, 4.35). The error that counts is
// the distance from the simulated value to that interval, relative to the printed value;
// a row passes when it is within the tolerance (1 %). The raw relative error is printed
// beside it, so a row that passes only because of the paper's rounding is visible.

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>

#include "commands.hpp"
#include "dlcarbon/roofline.hpp"
#include "dlcarbon/text.hpp"
#include "options.hpp"

namespace dlcarbon::cli {

namespace {

struct Row {
  std::string scenario, job, metric, unit, source;
  double published = 0, resolution = 0, simulated = 0;
  std::string file;  // the scenario's path (two folders may hold the same stem)
  double raw_error() const { return (simulated - published) / published; }
  // The error beyond the printed precision, with the raw error's sign (since session 46, a review:
  // always "+", so that a figure below the printed range read as above it).
  double excess_error() const {
    const double e = std::max(0.0, std::abs(simulated - published) - resolution) / published;
    return e > 0 && simulated < published ? -e : e;
  }
};

std::string percent(double x) {
  // Past a million percent (a published figure next to nothing) in powers of ten, and a ratio
  // beyond a double as such (since session 45, a review: "+inf%", and 1e305 % in 306 digits).
  if (std::isnan(x)) return "n/a";
  if (std::isinf(x)) return x > 0 ? ">+1e300%" : "<-1e300%";
  std::ostringstream s;
  s << std::showpos;
  if (std::abs(100 * x) >= 1e6) {
    s << std::scientific << std::setprecision(2) << 100 * x << "%";
  } else {
    s << std::fixed << std::setprecision(2) << 100 * x << "%";
  }
  return s.str();
}

// Left-aligned in w columns, and always followed by at least one space.
std::string pad(const std::string& s, std::size_t w) { return s.size() >= w ? s + " " : s + std::string(w - s.size(), ' '); }

// The error recorded for a row whose job could not be costed: larger than any.
constexpr double kNotCosted = std::numeric_limits<double>::infinity();

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Whether 6 N D stands for a design's training work: N x D counts each weight once a token (a
// sample), as a transformer's or an LSTM's products run them. A design whose sample runs its weights
// at many positions, a convolutional network's image or a ViT's patches counted as one image, does
// work that N x D does not see (ResNet-50: 8.2 GFLOP forward an image against 2 x 25.6 M); its
// baseline is "n/a" and left out of the baseline's medians (since session 56: an out-of-sample check's
// ImageNet rows printed -99 %, which read as a win for the model).
bool six_nd_applies(const ModelDesign& design, const StepCost& c) {
  if (std::holds_alternative<ResNetDesign>(design)) return false;
  if (const auto* t = std::get_if<TransformerDesign>(&design); t != nullptr && t->image > 0) return false;
  if (std::holds_alternative<FileGraphDesign>(design)) {
    return std::none_of(c.ops.begin(), c.ops.end(), [](const OpCostRow& o) { return o.kind == "conv2d"; });
  }
  return true;
}

// A published step measurement against the step model (`published: {step: ...}`).
struct StepRow {
  std::string scenario, job, figure, note;
  double published = 0, simulated = 0;
  bool ok = false;
};

// One layer's forward and backward as the step model costs them, one microbatch: the ops of the
// graph's blocks (layer index >= 0), summed over their fwd and bwd phases and divided by the number
// of blocks. Embeddings, head, optimizer and communication are outside it, as they are outside a
// benchmark of one layer.
double mean_layer_seconds(const StepCost& c) {
  std::set<int> layers;
  double seconds = 0;
  for (const auto& op : c.ops) {
    if (op.layer < 0 || (op.phase != "fwd" && op.phase != "bwd")) continue;
    layers.insert(op.layer);
    seconds += op.time_s;
  }
  return layers.empty() ? 0 : seconds / static_cast<double>(layers.size());
}

std::vector<StepRow> step_rows(const std::string& scenario, const TrainingJob& job, const StepCost& c, bool fits,
                               const std::string& reason) {
  std::vector<StepRow> rows;
  const PublishedStep& p = *job.published->step;
  const double n = static_cast<double>(job.accelerators);
  auto add = [&](const std::string& figure, const PrintedFigure& f, double sim) {
    rows.push_back(StepRow{scenario, job.id, figure, fits ? "" : reason, f.value, sim, fits});
  };
  // A publication that counts causal attention over the whole score matrix (Megatron-LM's formula)
  // states a larger MFU for the same step: the simulated MFU is counted its way.
  if (p.mfu) {
    add(p.mfu_full_attention ? "MFU (full attn.)" : "MFU", *p.mfu, c.mfu * (p.mfu_full_attention ? c.full_attention_flops_ratio : 1));
    // A graph whose ops count no FLOPs has no MFU to compare (since session 42, a review: "+inf%").
    if (fits && !(rows.back().simulated > 0)) {
      rows.back().ok = false;
      rows.back().note = "the model counts no FLOPs";
    }
  }
  if (p.tokens_per_s) add("tokens/s a device", *p.tokens_per_s, c.step_s > 0 ? c.tokens_per_step / c.step_s / n : 0);
  if (p.step_s) add("step time (s)", *p.step_s, c.step_s);
  if (p.layer_s) {
    const double layer = mean_layer_seconds(c);
    add("layer time (s)", *p.layer_s, layer);
    if (fits && !(layer > 0)) {
      rows.back().ok = false;
      rows.back().note = "the model has no layers to time";
    }
  }
  return rows;
}

// The error of a step figure as a duration: a published MFU or throughput of x against a simulated
// y is a step (and a run) of published/simulated the length, so that a model that is too fast reads
// negative, as in the accelerator-hours table.
double step_time_error(const StepRow& r) {
  return r.figure == "step time (s)" || r.figure == "layer time (s)" ? r.simulated / r.published - 1
                                                                      : r.published / r.simulated - 1;
}

void print_step_rows(const std::vector<StepRow>& rows, Streams io) {
  io.out << "\nPublished step measurements (the step model alone, without run-level overheads)\n"
         << pad("scenario", 60) << pad("job", 18) << pad("figure", 19) << pad("published", 11) << pad("dlcarbon", 11)
         << "step-time error\n";
  std::vector<double> errors;
  int within = 0, unfit = 0;  // unfit: rows without a simulated figure
  for (const auto& r : rows) {
    io.out << pad(r.scenario, 60) << pad(r.job, 18) << pad(r.figure, 19) << pad(format_number(r.published, 4), 11);
    if (!r.ok) {
      ++unfit;
      io.out << "- (" << r.note << ")\n";
      continue;
    }
    const double e = step_time_error(r);
    errors.push_back(std::abs(e));
    within += std::abs(e) <= 0.1 ? 1 : 0;
    io.out << pad(format_number(r.simulated, 4), 11) << percent(e) << "\n";
  }
  const double med = median(errors);
  io.out << "\n" << rows.size() << " published step figures";
  if (unfit > 0) io.out << " (" << unfit << " not costed: the job does not fit, or has no layer to time; left out of what follows)";
  io.out << "; " << within << " within +/-10 %; median |step-time error| "
         << (errors.empty() ? std::string("- (none costed)") : format_number(100 * med, 3) + "%") << "\n";
}

// First-principles mode: every published job that states its design, tokens and parallelism is
// predicted without its duration or power; the published accelerator-hours are the reference.
// Published step measurements (scenarios/anchors and rows that print one) are compared after.
int validate_first_principles(const std::vector<std::filesystem::path>& files, const LoadOptions& load,
                              double baseline_mfu, Streams io) {
  std::vector<double> ours, base;
  // The distinct runs' errors: a run two rows publish (the same training accounted at two data
  // centres, or in two papers) counted once, by its published and predicted hours (since session
  // 46, a review: Vaswani et al.'s 8-P100 Transformer (big) run is three rows, which sat on the median).
  std::map<std::pair<double, double>, std::pair<double, double>> runs;  // (published, predicted) -> (|error|, |baseline error|)
  std::set<std::pair<double, std::string>> uncosted_runs;               // (published, why), counted once likewise
  std::vector<StepRow> steps;
  int within = 0, rows = 0, skipped = 0, footprint_only = 0;
  int no_baseline = 0;  // costed rows whose design 6 N D does not describe (six_nd_applies)
  // Every scenario is loaded before a row is printed: a bad file is bad input with nothing of the
  // table on stdout (since session 42, a review; accounting mode did so already).
  std::vector<Scenario> scenarios;
  scenarios.reserve(files.size());
  for (const auto& file : files) scenarios.push_back(load_scenario(file, load));
  // Nothing to predict is bad input (since session 37, a review; it was 1), said before the table (as
  // in accounting mode), with what each published job lacks and where it is defined (since session
  // 53; the folders had been named only, after the table's header). Every published job carries a
  // step figure, hours or a footprint, so a predictable one always gives a row to compare.
  const auto predictable = [](const TrainingJob& job) {
    return job.parallelism && job.tokens && !std::holds_alternative<std::monostate>(job.design);
  };
  if (std::none_of(scenarios.begin(), scenarios.end(), [&](const Scenario& s) {
        return std::any_of(s.training.begin(), s.training.end(),
                           [&](const TrainingJob& job) { return job.published && predictable(job); });
      })) {
    io.err << "dlcarbon validate: no published first-principles rows or step figures found in the folders given";
    bool first = true;
    for (const auto& s : scenarios) {
      for (const auto& job : s.training) {
        if (!job.published) continue;
        if (first) io.err << "; first-principles mode predicts a published job from its model's design, tokens and parallelism:";
        first = false;
        std::string missing;
        const auto lacks = [&missing](bool absent, const char* what) {
          if (absent) missing += (missing.empty() ? "" : ", ") + std::string(what);
        };
        lacks(std::holds_alternative<std::monostate>(job.design), "its model's design");
        lacks(!job.tokens, "tokens");
        lacks(!job.parallelism, "parallelism");
        io.err << "\n  " << format_input_error(job.origin, "training." + job.id, "a published job without " + missing);
      }
    }
    io.err << "\n";
    return kBadInput;
  }
  io.out << pad("scenario", 60) << pad("accel-h published", 19) << pad("dlcarbon", 11) << pad("error", 10)
         << pad("6ND/(peak x " + format_number(baseline_mfu, 2) + ")", 20) << pad("error", 10) << pad("MFU pub.", 10)
         << pad("MFU sim.", 10) << pad("FLOPs/pub.", 11) << pad("err at pub. FLOPs", 18) << pad("energy err", 12) << "note\n";
  for (std::size_t fi = 0; fi < files.size(); ++fi) {
    const auto& file = files[fi];
    const Scenario& s = scenarios[fi];
    // A file that publishes several runs (not stages of one) names each row by its job too (since
    // session 51: the Pythia suite's eight models, one paper's table).
    const auto runs_in_file = std::count_if(s.training.begin(), s.training.end(),
                                            [](const TrainingJob& t) { return t.published && t.stage_of.empty(); });
    for (const auto& job : s.training) {
      if (!job.published) continue;
      const std::string label = file.stem().string() + (runs_in_file > 1 ? ":" + job.id : "");
      if (!predictable(job)) {
        ++skipped;
        continue;
      }
      TrainingJob predict = job;
      predict.duration_given = false;
      const TrainingResult r = simulate_training(predict);
      if (job.published->step) {
        const auto more = step_rows(file.stem().string(), job, *r.step, r.ok, r.reason);
        steps.insert(steps.end(), more.begin(), more.end());
      }
      // The reference: the published duration of a job with a footprint, or the accelerator-hours a
      // source printed for a job without one; a job with only a step figure (an anchor) has neither.
      const auto& printed_time = job.published->accelerator_time_s;
      const bool have_hours = printed_time || (job.duration_given && job.published->has_footprint());
      // A job without a published duration or hours may still publish its energy (session 31): its
      // row compares the energy only and stays out of the hours' statistics.
      if (!have_hours && !job.published->has_footprint()) continue;
      const double published_h =
          !have_hours ? std::numeric_limits<double>::quiet_NaN()
                      : (printed_time ? printed_time->value : static_cast<double>(job.accelerators) * job.duration_s) /
                            units::seconds_per_hour;
      const StepCost& c = *r.step;
      const double flops_total = c.model_flops_per_step / c.tokens_per_step * *job.tokens;
      const double peak = hardware::make_device_model(job.hardware).peak(job.precision);
      // The plain estimate tools use: 6 N D, N the parameters a token runs (all of a dense model's,
      // a mixture's active ones), D the tokens, at the peak of the job's precision (since session 46,
      // a review: the model's own FLOPs had stood in for 6 N D, attention and all).
      const auto six_nd = [&](const StepCost& sc, double tokens) { return 6 * sc.active_parameters * tokens; };
      const bool baseline_applies = six_nd_applies(job.design, c);
      const double baseline_h = baseline_applies ? six_nd(c, *job.tokens) / (peak * baseline_mfu) / units::seconds_per_hour
                                                 : std::numeric_limits<double>::quiet_NaN();
      if (have_hours) ++rows;
      if (!have_hours) ++footprint_only;  // (counted whether it can be costed or not)
      if (!r.ok) {
        io.out << pad(label, 60) << pad(format_number(published_h, 4), 19) << "- (" << r.reason << ")\n";
        if (have_hours) {
          ours.push_back(kNotCosted);
          uncosted_runs.emplace(published_h, r.reason);
        }
        continue;
      }
      // A run trained in stages (`stage_of`): its row is the sum of the stages' predictions.
      double predicted_h = r.footprint.accelerator_time_s / units::seconds_per_hour;
      double flops_all = flops_total, baseline_all = baseline_h, mfu_sim = c.mfu;
      double it_j = r.footprint.it_energy_j, facility_j = r.footprint.facility_energy_j;
      double co2e_location = r.footprint.co2e_location_kg;
      std::optional<double> co2e_market = r.footprint.co2e_market_kg;
      int stages = 0;
      std::string unfit;
      for (const auto& stage : s.training) {
        if (stage.stage_of != job.id) continue;
        ++stages;
        const TrainingResult rs = simulate_training(stage);
        if (!rs.ok) {
          unfit = stage.id + ": " + rs.reason;
          break;
        }
        const double f = rs.step->model_flops_per_step / rs.step->tokens_per_step * *stage.tokens;
        flops_all += f;
        baseline_all += six_nd(*rs.step, *stage.tokens) / (hardware::make_device_model(stage.hardware).peak(stage.precision) * baseline_mfu) /
                        units::seconds_per_hour;
        predicted_h += rs.footprint.accelerator_time_s / units::seconds_per_hour;
        it_j += rs.footprint.it_energy_j;
        facility_j += rs.footprint.facility_energy_j;
        co2e_location += rs.footprint.co2e_location_kg;
        co2e_market = co2e_market && rs.footprint.co2e_market_kg ? std::optional<double>(*co2e_market + *rs.footprint.co2e_market_kg)
                                                                 : std::nullopt;
      }
      if (!unfit.empty()) {
        io.out << pad(label, 60) << pad(format_number(published_h, 4), 19) << "- (" << unfit << ")\n";
        if (have_hours) {
          ours.push_back(kNotCosted);
          uncosted_runs.emplace(published_h, unfit);
        }
        continue;
      }
      if (stages > 0) {
        // Over the whole run, at the lead job's peak (the stages of one run share its hardware).
        mfu_sim = flops_all / (predicted_h * units::seconds_per_hour * peak);
      }
      const double mfu_pub_all = flops_all / (published_h * units::seconds_per_hour * peak);
      const double err = predicted_h / published_h - 1, berr = baseline_all / published_h - 1;
      if (have_hours) {
        ours.push_back(std::abs(err));
        if (baseline_applies) {
          base.push_back(std::abs(berr));
        } else {
          ++no_baseline;
        }
        within += std::abs(err) <= 0.25 ? 1 : 0;
        runs.emplace(std::pair{published_h, predicted_h}, std::pair{std::abs(err), std::abs(berr)});
      }
      std::string energy_err = "-";
      std::string note = !have_hours ? "footprint only (no published hours)" : std::abs(err) <= 0.25 ? "" : "outside +/-25 %";
      // The published footprint: its energy in the energy column; its CO2e (location- and
      // market-based) in the note beside it, or in that column, said so, where no energy is
      // published (since session 42, a review: a CO2e beside an energy, a market-based one, or one
      // of a run in stages, was never compared).
      const auto& pub = *job.published;
      std::vector<std::pair<std::string, std::string>> co2e;  // (which, error)
      if (pub.co2e_location_kg) co2e.emplace_back("CO2e (location)", percent(co2e_location / pub.co2e_location_kg->value - 1));
      if (pub.co2e_market_kg) {
        co2e.emplace_back("CO2e (market)", co2e_market ? percent(*co2e_market / pub.co2e_market_kg->value - 1)
                                                       : std::string("- (the data centre has no market-based intensity)"));
      }
      if (pub.energy_j) {
        const double sim = pub.energy_includes_pue ? facility_j : it_j;
        energy_err = percent(sim / pub.energy_j->value - 1);
      } else if (!co2e.empty() && co2e.front().second.rfind("- ", 0) != 0) {
        energy_err = co2e.front().second;
        note += std::string(note.empty() ? "" : "; ") + "energy column: " + co2e.front().first + " (no published energy)";
        co2e.erase(co2e.begin());
      }
      for (const auto& [which, e] : co2e) note += std::string(note.empty() ? "" : "; ") + which + " error " + e;
      if (stages > 0) note += std::string(note.empty() ? "" : "; ") + std::to_string(stages + 1) + " stages";
      io.out << pad(label, 60) << pad(format_number(published_h, 4), 19)
             << pad(format_number(predicted_h, 4), 11) << pad(have_hours ? percent(err) : "-", 10)
             << pad(baseline_applies ? format_number(baseline_all, 4) : "n/a", 20)
             << pad(have_hours ? percent(berr) : "-", 10)  // (NaN, "n/a", where 6 N D does not apply)
             << pad(format_number(mfu_pub_all, 2), 10) << pad(format_number(mfu_sim, 2), 10)
             << pad(job.flops ? format_number(flops_all / *job.flops, 3) : "-", 11)
             // The same prediction for the work the paper states (its FLOPs) instead of the token count.
             << pad(job.flops && have_hours ? percent(predicted_h * (*job.flops / flops_all) / published_h - 1) : "-", 18)
             << pad(energy_err, 12) << note << "\n";
    }
  }
  // The targets are the distinct runs': every one within +/-25 % and their median at most 15 %.
  std::vector<double> run_errors, run_base;
  int runs_within = 0;
  for (const auto& [key, e] : runs) {
    run_errors.push_back(e.first);
    if (!std::isnan(e.second)) run_base.push_back(e.second);
    runs_within += e.first <= 0.25 ? 1 : 0;
  }
  for (std::size_t i = 0; i < uncosted_runs.size(); ++i) run_errors.push_back(kNotCosted);
  const double med = median(ours), med_base = median(base), run_med = median(run_errors), run_med_base = median(run_base);
  // A row that could not be costed counts as outside the band and as the largest error; where it
  // is the median, there is no median to print (since session 42, a review: "1e+11%").
  // Where 6 N D does not apply to some rows (six_nd_applies), its median is over the others, said so.
  // (Said only where a row's design is the reason: a row that could not be costed has no baseline
  // either, and its absence is not the design's.)
  const auto median_text = [](double m) { return m == kNotCosted ? std::string("- (rows not costed)") : format_number(100 * m, 3) + "%"; };
  const auto baseline_text = [&](const std::vector<double>& errors, double m, const char* what) {
    if (no_baseline > 0 && errors.empty()) return std::string("n/a: no ") + what + " whose design it describes";
    const std::string text = errors.empty() ? std::string("-") : median_text(m);
    if (no_baseline == 0) return text;
    return text + " over the " + std::to_string(errors.size()) + " " + what + (errors.size() == 1 ? "" : "s") + " it applies to";
  };
  io.out << "\n" << rows << " rows with a design, tokens and parallelism (" << skipped << " published jobs without); "
         << within << " within +/-25 %; median |error| " << (rows > 0 ? median_text(med) : std::string("-")) << " (6ND baseline "
         << baseline_text(base, med_base, "row") << ")";
  if (footprint_only > 0) io.out << "; " << footprint_only << " more compare their footprint only";
  io.out << "\n";
  const int distinct = static_cast<int>(run_errors.size());
  if (rows > 0) {
    io.out << distinct << " distinct runs (a run that several rows publish counted once; the targets): " << runs_within
           << " within +/-25 %; median |error| " << median_text(run_med) << " (6ND baseline "
           << baseline_text(run_base, run_med_base, "run") << ")\n";
  }
  if (rows == 0 && footprint_only > 0) io.out << "No published accelerator-hours: the targets are not evaluated (exit 1).\n";
  if (rows == 0 && (footprint_only > 0 || !steps.empty())) {
    io.err << "dlcarbon validate: first-principles targets not evaluated (exit 1): no published accelerator-hours in the "
              "folders given\n";
  }
  if (!steps.empty()) print_step_rows(steps, io);
  const bool all_within = runs_within == distinct, median_met = run_med <= 0.15;
  if (rows > 0 && !(all_within && median_met)) {
    // Said where the exit status is decided (since session 47, a review: exit 1 said nothing).
    io.err << "dlcarbon validate: first-principles targets not met (exit 1): every distinct run within +/-25 % "
           << (all_within ? "holds" : "does not (" + std::to_string(distinct - runs_within) + " of " + std::to_string(distinct) + " outside)")
           << "; median |error| <= 15 % " << (median_met ? "holds" : "does not (" + median_text(run_med) + ")") << "\n";
  }
  return rows > 0 && all_within && median_met ? kOk : kFailure;
}

}  // namespace

int command_validate(const std::vector<std::string>& args, Streams io) {
  const std::string usage =
      "usage: dlcarbon validate [--dir DIR ...] [--mode MODE] [--tolerance 0.01] [--baseline-mfu 0.3] [--data-dir DIR]\n"
      "Runs every scenario in DIR (default: published/ of $DLCARBON_SCENARIO_DIR, else of the source\n"
      "tree's scenarios/, and in first-principles mode its anchors/ too) and compares energy and CO2e (accounting) or\n"
      "accelerator-hours and published step measurements (first-principles) with the published\n"
      "figures. Exit 0 only if every row is within tolerance (accounting) or the targets hold.";
  po::options_description visible("options");
  visible.add_options()("dir", po::value<std::vector<std::string>>(), "folder of published scenarios (may repeat)")(
      "tolerance", po::value<double>()->default_value(0.01, "0.01"), "relative tolerance beyond the printed precision (accounting mode)")(
      "mode", po::value<std::string>()->default_value("accounting"), "accounting or first-principles")(
      "baseline-mfu", po::value<double>()->default_value(0.3, "0.3"), "fixed MFU of the 6ND baseline (first-principles mode)")(
      "data-dir", po::value<std::string>(), "catalog directory");
  po::options_description hidden;
  po::positional_options_description positional;
  po::variables_map vm;
  if (auto code = parse_options(args, usage, visible, positional, hidden, vm, io)) return *code;
  const std::string mode = vm["mode"].as<std::string>();
  if (mode != "accounting" && mode != "first-principles") {
    io.err << "dlcarbon validate: --mode: expected accounting or first-principles, got \"" << mode << "\"\n";
    return kBadInput;
  }
  const double tolerance = vm["tolerance"].as<double>();
  if (!(tolerance >= 0) || !std::isfinite(tolerance)) {  // (inf passed every row before session 35)
    io.err << "dlcarbon validate: --tolerance: expected a finite number >= 0\n";
    return kBadInput;
  }
  // --dir may repeat. By default: the source tree's published footprints, and in first-principles
  // mode its throughput anchors too (published step measurements without a footprint).
  std::vector<std::filesystem::path> dirs;
  if (vm.count("dir")) {
    for (const auto& d : vm["dir"].as<std::vector<std::string>>()) dirs.emplace_back(d);
  } else {
    dirs.push_back(default_scenario_dir() / "published");
    // The anchors join when the source tree has them (an installed tree may not).
    std::error_code ec;
    if (mode == "first-principles" && std::filesystem::is_directory(default_scenario_dir() / "anchors", ec)) {
      dirs.push_back(default_scenario_dir() / "anchors");
    }
  }
  std::vector<std::filesystem::path> files;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      if (vm.count("dir")) {
        io.err << "dlcarbon validate: --dir: " << (dir.empty() ? std::string("an empty path") : text::quoted(dir.string()))
               << " is not a directory\n";
      } else {
        // The default folder (since session 42, a review: the message named --dir, not given).
        io.err << "dlcarbon validate: the default scenario folder " << dir.string()
               << " is not a directory (DLCARBON_SCENARIO_DIR, else the source tree's scenarios/); name one with --dir\n";
      }
      return kBadInput;
    }
    // An unreadable folder, and a .yaml that is a broken link, a FIFO or a device, are bad input
    // (since session 43, a review: the one was an internal failure, the other skipped unsaid);
    // hidden files (an editor's lock link ".#x.yaml") are not scenarios, as in the catalog.
    std::vector<std::filesystem::path> here;
    auto unreadable = [](const std::filesystem::path& p, const std::string& why) {
      return InputError(format_input_error({p.generic_string(), 0, 0}, "", why));
    };
    std::filesystem::directory_iterator it(dir, ec);
    if (ec) throw unreadable(dir, "cannot read this scenario folder: " + ec.message());
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      if (ec) throw unreadable(dir, "cannot read this scenario folder: " + ec.message());
      const std::filesystem::path& p = it->path();
      if (p.extension() != ".yaml" || p.filename().string().rfind('.', 0) == 0) continue;
      std::error_code st;
      if (std::error_code d_ec; it->is_directory(d_ec)) continue;  // a folder named x.yaml: not a scenario
      if (!it->is_regular_file(st)) {
        throw unreadable(p, st ? "cannot read this scenario: " + st.message()
                               : "a scenario must be a regular file, not a device, FIFO, socket or folder");
      }
      here.push_back(p);
    }
    if (ec) throw unreadable(dir, "cannot read this scenario folder: " + ec.message());
    std::sort(here.begin(), here.end());
    files.insert(files.end(), here.begin(), here.end());
  }
  // A folder named twice (or the same file by two names) counts its rows once (since session 38:
  // `--dir a --dir a` counted every row twice in the median).
  {
    std::vector<std::filesystem::path> once;
    std::vector<std::filesystem::path> seen;
    for (const auto& f : files) {
      std::error_code ec;
      const auto canonical = std::filesystem::weakly_canonical(f, ec);
      if (std::find(seen.begin(), seen.end(), canonical) != seen.end()) continue;
      seen.push_back(canonical);
      once.push_back(f);
    }
    files = std::move(once);
  }

  LoadOptions load;
  load.data_dir = data_dir_option(vm);
  // The baseline is first-principles mode's; given to accounting it would be ignored (session 35).
  if (mode != "first-principles" && !vm["baseline-mfu"].defaulted()) {
    io.err << "dlcarbon validate: --baseline-mfu is for --mode first-principles (the 6ND baseline); accounting has none\n";
    return kBadInput;
  }
  // The tolerance is accounting mode's; first-principles mode's targets are fixed (since session 42,
  // a review: it was ignored).
  if (mode == "first-principles" && !vm["tolerance"].defaulted()) {
    io.err << "dlcarbon validate: --tolerance is for --mode accounting; first-principles mode's targets are fixed (every distinct "
              "run within +/-25 %, median |error| <= 15 %)\n";
    return kBadInput;
  }
  if (mode == "first-principles") {
    const double baseline_mfu = vm["baseline-mfu"].as<double>();
    if (!(baseline_mfu > 0 && baseline_mfu <= 1)) {
      io.err << "dlcarbon validate: --baseline-mfu: expected a number in (0, 1]\n";
      return kBadInput;
    }
    return validate_first_principles(files, load, baseline_mfu, io);
  }
  std::vector<Row> rows;
  // Published footprints of jobs without a duration (first-principles): nothing here to account
  // them from; named, for `--mode first-principles` compares them (since session 44, a review: they
  // had been left out without a word).
  std::vector<std::string> predicted_only;
  for (const auto& file : files) {
    const Scenario s = load_scenario(file, load);
    for (const auto& job : s.training) {
      if (!job.published || !job.published->has_footprint()) continue;
      if (!job.duration_given) {
        predicted_only.push_back(file.stem().string() + "/" + job.id);
        continue;
      }
      const TrainingFootprint f = account_training(job);
      const PublishedFigures& p = *job.published;
      // Shown in MWh and tCO2e, or kWh and kgCO2e for figures below one of those.
      auto add = [&](const std::string& metric, bool energy, const PrintedFigure& fig, double sim) {
        const double big = energy ? units::joule_per_kwh * 1000 : units::kg_per_tonne;
        const double small = energy ? units::joule_per_kwh : 1.0;
        const bool use_big = fig.value >= big;
        const double to_unit = use_big ? big : small;
        const std::string unit = energy ? (use_big ? "MWh" : "kWh") : (use_big ? "tCO2e" : "kgCO2e");
        rows.push_back(Row{file.stem().string(), job.id, metric, unit, p.source, fig.value / to_unit,
                           fig.resolution / to_unit, sim / to_unit, file.string()});
      };
      if (p.energy_j) {
        add(p.energy_includes_pue ? "energy (facility)" : "energy (IT)", true, *p.energy_j,
            p.energy_includes_pue ? f.facility_energy_j : f.it_energy_j);
      }
      if (p.co2e_location_kg) add("CO2e location", false, *p.co2e_location_kg, f.co2e_location_kg);
      if (p.co2e_market_kg) {
        if (!f.co2e_market_kg) {
          throw InputError(format_input_error(job.origin, "published.co2e_market",
                                              "the datacenter has no market_intensity to compare with"));
        }
        add("CO2e market", false, *p.co2e_market_kg, *f.co2e_market_kg);
      }
    }
  }

  std::string skipped;
  if (!predicted_only.empty()) {
    skipped = std::to_string(predicted_only.size()) + " published footprint" + (predicted_only.size() == 1 ? "" : "s") +
              " of jobs without a duration not compared here (--mode first-principles predicts them):";
    for (const auto& id : predicted_only) skipped += " " + text::printable(id);
  }
  if (rows.empty()) {
    // Nothing to compare is bad input, not a failed comparison (since session 36); said before any
    // table is printed.
    io.err << "dlcarbon validate: no published figures found in " << dirs.front().string() << (dirs.size() > 1 ? " and the other folders" : "")
           << (skipped.empty() ? "" : "; " + skipped) << "\n";
    return kBadInput;
  }
  io.out << pad("scenario", 60) << pad("metric", 19) << pad("published", 12) << pad("simulated", 12)
         << pad("unit", 7) << pad("error", 10) << pad("beyond print", 13) << "status\n";
  int failed = 0, rounding = 0;
  double worst = 0;
  for (const auto& r : rows) {
    const bool pass = std::abs(r.excess_error()) <= tolerance;
    const bool raw_pass = std::abs(r.raw_error()) <= tolerance;
    failed += pass ? 0 : 1;
    rounding += pass && !raw_pass ? 1 : 0;
    worst = std::max(worst, std::abs(r.raw_error()));
    io.out << pad(r.scenario, 60) << pad(r.metric, 19) << pad(format_number(r.published, 6), 12)
           << pad(format_number(r.simulated, 6), 12) << pad(r.unit, 7) << pad(percent(r.raw_error()), 10)
           << pad(percent(r.excess_error()), 13)
           << (pass ? (raw_pass ? "ok" : "ok (paper's rounding: printed to +/-" + format_number(r.resolution, 3) + ")")
                    : "FAIL")
           << "\n";
  }
  // (The scenarios that gave rows, of those read; since session 46, a review: those read.)
  std::set<std::string> with_rows;
  for (const auto& r : rows) with_rows.insert(r.file);
  io.out << "\n" << rows.size() << " rows from " << with_rows.size() << " scenarios (" << files.size() << " read); "
         << rows.size() - failed
         << " within " << format_number(100 * tolerance, 3) << "% (" << rounding
         << " only through the paper's printed precision), " << failed << " outside; largest raw error "
         << format_number(100 * worst, 3) << "%\n";
  if (!skipped.empty()) io.out << skipped << "\n";
  return failed == 0 ? kOk : kFailure;
}

}  // namespace dlcarbon::cli
