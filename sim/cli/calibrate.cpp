// `dlcarbon calibrate`: measure this machine's CPU with oneDNN kernels, fit the roofline per
// kernel group, check it on held-out shapes, and write a hardware entry (docs/calibration.md).

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <numeric>
#include <optional>
#include <ostream>
#include <sstream>
#include <thread>

#include "build_info.hpp"
#include "calibration.hpp"
#include "gpu_fit.hpp"
#include "commands.hpp"
#include "dlcarbon/text.hpp"
#include "onednn_backend.hpp"
#include "options.hpp"

namespace dlcarbon::cli {

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

std::string slug(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!out.empty() && out.back() != '-') out += '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "cpu" : out;
}

// The cache levels working sets fit in, from sysfs: each level's size times the number of its
// instances among the `threads` CPUs (the distinct sets of CPUs sharing one: a core's L2 shared by
// its SMT siblings counts once, a per-CCX L3 once per CCX). Empty when sysfs says nothing (then one
// memory level is fitted). Since session 35, from a review; before, a level was private (times
// every thread) only where cpu0's list named one CPU, so an SMT machine's L2 counted once and a
// per-CCX L3 once.
std::vector<double> cache_levels(unsigned threads) {
  std::vector<double> levels;
  for (int index = 2; index <= 4; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level(dir + "level"), size(dir + "size");
    int l = 0;
    std::string text;
    if (!(level >> l) || !(size >> text) || text.empty()) continue;
    double bytes = std::atof(text.c_str());
    if (text.back() == 'K') bytes *= 1024;
    if (text.back() == 'M') bytes *= 1024 * 1024;
    std::set<std::string> instances;
    for (unsigned cpu = 0; cpu < std::max(1u, threads); ++cpu) {
      std::ifstream shared("/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/cache/index" + std::to_string(index) +
                           "/shared_cpu_list");
      std::string cpus;
      if (shared >> cpus) instances.insert(cpus);
    }
    levels.push_back(bytes * static_cast<double>(std::max<std::size_t>(1, instances.size())));
  }
  std::sort(levels.begin(), levels.end());
  return levels;
}

bool rapl_readable() {
  std::ifstream in("/sys/class/powercap/intel-rapl:0/energy_uj");
  long long v = 0;
  return static_cast<bool>(in >> v);
}

// A 1x1 convolution as the matmul(s) its layout makes of it, less the matmul's fixed cost:
// channels-last is one product [batch x pixels, in] x [in, out]; nchw is, per image,
// [out, in] x [in, pixels] (the weights on the left, the pixels the columns).
double pointwise_time(const calibrate::GemmShapeFit& mm, const calibrate::KernelSpec& s) {
  const auto d = [](std::int64_t x) { return static_cast<double>(x); };
  const double pixels = d((s.height - 1) / s.stride + 1) * d((s.width - 1) / s.stride + 1);
  if (s.layout == "nchw") return d(s.batch) * (mm.predict(d(s.out_channels), pixels, d(s.channels)) - mm.c);
  return mm.predict(d(s.batch) * pixels, d(s.out_channels), d(s.channels)) - mm.c;
}

// The fitted model of one kernel group (chosen on calibration shapes only, never on checks).
struct GroupModel {
  calibrate::RooflineFit roofline;
  std::optional<calibrate::GemmShapeFit> shape;
  // Convolutions: one roofline per kernel size (1x1 is a plain GEMM; 3x3 and the 7x7 stem run
  // other algorithms), where the size has two calibration shapes or more.
  std::map<std::int64_t, calibrate::GemmShapeFit> by_kernel;
  // 1x1 convolutions are plain GEMMs run by the same microkernels as the matmul of their dtype:
  // the matmul's time for the products their layout makes (pointwise_time), scaled by a fitted
  // factor (folded into a and w), plus a fitted fixed cost c.
  std::optional<calibrate::GemmShapeFit> pointwise;
  // Reorders (a transposition of channels x pixels): each channel is one stream of cache lines
  // held in L1 while its pixels are written out; the share of streams that their L1 sets cannot
  // hold (calibrate::stream_conflict_share) is fetched again, at an extra cost per byte
  // (`stream_penalty`, s/B, fitted).
  double stream_penalty = 0;
  calibrate::CacheGeometry l1;  // unknown: no such term
  double effective_rate = 0;  // FLOPs / predicted time over the calibration shapes
  double predict(const calibrate::KernelSpec& s) const {
    double m = 0, n = 0, k = 0;
    if (shape && calibrate::gemm_dims(s, m, n, k)) return shape->predict(m, n, k);
    if (pointwise && s.kind == "conv" && s.kernel == 1) return pointwise_time(*pointwise, s) + pointwise->c;
    if (const auto it = by_kernel.find(s.kernel); s.kind == "conv" && it != by_kernel.end()) {
      calibrate::gemm_dims(s, m, n, k);
      return it->second.predict(m, n, k);
    }
    return roofline.predict(s.flops(), s.bytes()) + stream_penalty * conflict_share(s) * s.bytes();
  }
  double conflict_share(const calibrate::KernelSpec& s) const {
    if (s.kind != "reorder" || s.channels <= 0) return 0;
    const double row_stride = static_cast<double>(s.height * s.width) * calibrate::element_bytes(s.dtype);
    return calibrate::stream_conflict_share(s.channels, row_stride, l1);
  }
  double rate() const {
    if (shape) return 1 / shape->a;
    if (effective_rate > 0) return effective_rate;
    return 1 / roofline.a;
  }
  double overhead() const { return shape ? shape->c : roofline.c; }
};

// The geometry of one core's cache at `level` holding data (L1d, L2), from sysfs; unknown when
// sysfs does not say.
calibrate::CacheGeometry cache_geometry(int level) {
  for (int index = 0; index < 8; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream lv(dir + "level"), type(dir + "type"), sets(dir + "number_of_sets"),
        ways(dir + "ways_of_associativity"), line(dir + "coherency_line_size");
    int l = 0;
    std::string t;
    if (!(lv >> l) || !(type >> t)) break;
    if (l != level || t == "Instruction") continue;
    calibrate::CacheGeometry g;
    if (!(sets >> g.sets) || !(ways >> g.ways) || !(line >> g.line)) return {};
    return g;
  }
  return {};
}

// The machine a calibration measured: its name, threads, oneDNN and ISA, cache levels and L1
// geometry. Recorded in the raw file (`calibration/machine`), so that a refit elsewhere fits the
// measured machine's caches and names it, not the refitting one's (since session 35, from a
// review; files written before hold none, and a refit of one takes this machine's, and says so).
struct Machine {
  std::string cpu, onednn, isa;
  unsigned threads = 1;
  std::vector<double> levels;
  calibrate::CacheGeometry l1;
  // The options the entry was written with (since session 42, a review: a refit without them
  // dropped the measured run's --tdp for the assumed 4.4 W a thread, and its --from): 0 and "" none.
  double tdp_w = 0;
  std::string from;
};

Machine this_machine(const calibrate::OneDnnBackend& backend) {
  Machine m;
  m.cpu = cpu_model();
  m.threads = std::max(1u, std::thread::hardware_concurrency());
  m.onednn = backend.version();
  m.isa = backend.isa();
  m.levels = cache_levels(m.threads);
  m.l1 = cache_geometry(1);
  return m;
}

Table machine_table(const Machine& m) {
  std::string levels;
  for (const double l : m.levels) levels += (levels.empty() ? "" : ";") + format_number(l, 17);
  return Table{"calibration/machine",
               {Column{"cpu", "", std::vector<std::string>{m.cpu}}, Column{"threads", "1", std::vector<std::int64_t>{static_cast<std::int64_t>(m.threads)}},
                Column{"onednn", "", std::vector<std::string>{m.onednn}}, Column{"isa", "", std::vector<std::string>{m.isa}},
                Column{"cache_levels", "", std::vector<std::string>{levels}},
                Column{"l1_sets", "1", std::vector<std::int64_t>{static_cast<std::int64_t>(m.l1.sets)}},
                Column{"l1_ways", "1", std::vector<std::int64_t>{static_cast<std::int64_t>(m.l1.ways)}},
                Column{"l1_line", "B", std::vector<std::int64_t>{static_cast<std::int64_t>(m.l1.line)}},
                Column{"tdp", "W", std::vector<double>{m.tdp_w > 0 ? m.tdp_w : std::nan("")}},
                Column{"from", "", std::vector<std::string>{m.from}}}};
}

// The machine a raw file records; nullopt where it records none (or not in this form).
// A table that is there but cannot be read (a column missing or of another type, threads below 1,
// a cache level that is not a positive size, a negative L1 geometry, a recorded tdp that is not a
// power or NaN) sets `malformed` to what is wrong and gives nothing: it is not a file written
// before machines were recorded (since session 45, a review: such a table was said to be absent,
// and --this-machine then took this machine's caches without a word).
std::optional<Machine> recorded_machine(const RunRecord& r, std::string& malformed) {
  malformed.clear();
  for (const auto& t : r.tables) {
    if (t.path != "calibration/machine") continue;
    if (t.rows() != 1) {
      malformed = "calibration/machine has " + std::to_string(t.rows()) + " rows, not 1";
      return std::nullopt;
    }
    const auto text = [&](const char* c) -> const std::string* {
      const Column* col = t.find(c);
      return col && col->values.index() == 2 ? &std::get<std::vector<std::string>>(col->values).at(0) : nullptr;
    };
    const auto whole = [&](const char* c) -> std::optional<std::int64_t> {
      const Column* col = t.find(c);
      if (!col || col->values.index() != 1) return std::nullopt;
      return std::get<std::vector<std::int64_t>>(col->values).at(0);
    };
    const auto *cpu = text("cpu"), *onednn = text("onednn"), *isa = text("isa"), *levels = text("cache_levels");
    const auto threads = whole("threads"), sets = whole("l1_sets"), ways = whole("l1_ways"), line = whole("l1_line");
    const auto missing = [&]() -> std::string {
      for (const auto& [name, ok] : std::initializer_list<std::pair<const char*, bool>>{
               {"cpu", cpu != nullptr}, {"onednn", onednn != nullptr}, {"isa", isa != nullptr},
               {"cache_levels", levels != nullptr}, {"threads", threads.has_value()}, {"l1_sets", sets.has_value()},
               {"l1_ways", ways.has_value()}, {"l1_line", line.has_value()}}) {
        if (!ok) return name;
      }
      return "";
    }();
    if (!missing.empty()) {
      malformed = "calibration/machine has no readable column " + missing;
      return std::nullopt;
    }
    if (*threads < 1) {
      malformed = "calibration/machine records " + std::to_string(*threads) + " threads";
      return std::nullopt;
    }
    if (*sets < 0 || *ways < 0 || *line < 0) {
      malformed = "calibration/machine records a negative L1 geometry (sets, ways, line: 0 where unknown)";
      return std::nullopt;
    }
    Machine m;
    m.cpu = *cpu;
    m.onednn = *onednn;
    m.isa = *isa;
    m.threads = static_cast<unsigned>(*threads);
    for (const auto& piece : text::split(*levels, ';')) {
      if (piece.empty()) continue;
      char* end = nullptr;
      const double v = std::strtod(piece.c_str(), &end);
      if (!end || *end != '\0' || !(v > 0) || !std::isfinite(v)) {
        malformed = "calibration/machine's cache_levels \"" + text::printable(*levels) + "\" holds \"" + text::printable(piece) +
                    "\", not a size in bytes";
        return std::nullopt;
      }
      m.levels.push_back(v);
    }
    m.l1.sets = static_cast<double>(*sets);
    m.l1.ways = static_cast<double>(*ways);
    m.l1.line = static_cast<double>(*line);
    // (Files written before session 42 record neither option.)
    if (const Column* c = t.find("tdp"); c && c->values.index() == 0) {
      const double w = std::get<std::vector<double>>(c->values).at(0);
      if (std::isfinite(w) && w > 0) {
        m.tdp_w = w;
      } else if (!std::isnan(w)) {  // (NaN: no --tdp was given)
        malformed = "calibration/machine records a tdp of " + format_number(w, 4) + " W";
        return std::nullopt;
      }
    }
    if (const auto* from = text("from")) m.from = *from;
    return m;
  }
  return std::nullopt;
}

// The model of one kernel group, chosen before seeing any check shape: matmuls take the GEMM
// shape model (their efficiency depends on m, n, k, with the weights streamed from their cache
// level), convolutions a compute roofline per kernel size (1x1: the matmul's shape where that fits
// the calibration shapes better), memory-bound kernels the blended cache levels (reorders with a
// term for the channel streams that L1's sets cannot hold).
GroupModel fit_group(const std::vector<calibrate::KernelSpec>& specs, const std::vector<double>& t,
                     const std::vector<std::size_t>& cal, const std::vector<double>& levels,
                     const std::optional<calibrate::GemmShapeFit>& matmul_shape, const calibrate::CacheGeometry& l1) {
  auto [F, B, T, M, N, K, gemm] = calibrate::group_samples(specs, t, cal);
  GroupModel g;
  const std::string kind = specs[cal.front()].kind;
  if (!gemm) {
    // Memory-bound kernels do a fixed number of FLOPs per byte: a compute term would be collinear
    // with the bandwidth terms and fit noise. Time per byte per cache level, and an overhead.
    std::fill(F.begin(), F.end(), 0.0);
  }
  if (gemm) {
    g.roofline = calibrate::fit_roofline(F, B, T, levels);
  } else if (kind == "reorder" && l1.known()) {
    g.l1 = l1;
    std::vector<std::vector<double>> extra;
    for (const auto i : cal) extra.push_back({g.conflict_share(specs[i]) * specs[i].bytes()});
    std::vector<double> coef;
    g.roofline = calibrate::fit_memory_blend(B, T, levels, extra, &coef);
    g.stream_penalty = coef.empty() ? 0 : coef.front();
  } else {
    g.roofline = calibrate::fit_memory_blend(B, T, levels);
  }
  if (kind == "matmul" && gemm) {
    // Weight rows a multiple of L1's way size apart (4 KiB: f32 rows of 1024, 2048, ... columns)
    // all map onto one L1 set: the aliasing term of GemmShapeFit, where L1's geometry is known.
    // (Until session 5 the term counted the rows L2's sets could not hold; that also charged
    // 1536- and 2560-wide rows, which measure as fast as 768 and 1280.)
    const auto shape = calibrate::fit_gemm_shape(M, N, K, T, levels, calibrate::element_bytes(specs[cal.front()].dtype), l1);
    if (shape.a > 0) g.shape = shape;
  }
  if (kind == "conv") {
    std::map<std::int64_t, std::vector<std::size_t>> sizes;
    for (std::size_t j = 0; j < cal.size(); ++j) sizes[specs[cal[j]].kernel].push_back(j);
    for (const auto& [size, members] : sizes) {
      if (members.size() < 2) continue;
      // One kernel size as an implicit GEMM, t = a F (1 + m0/m + n0/n) + c, with each of the m0
      // (few output pixels) and n0 (few output channels) terms in or out; 1x1 also as the matmul
      // of the products its layout makes (pointwise_time), t = alpha x that + c. The form is the
      // one that best predicts each calibration shape from the others (leave one out); the check
      // shapes never take part. With too few shapes for that: t = a F + c.
      auto form = [&](const std::vector<std::size_t>& use, bool with_m0, bool with_n0) {
        std::vector<double> mm, nn, kk, tt;
        for (const auto q : use) {
          mm.push_back(M[members[q]]);
          nn.push_back(N[members[q]]);
          kk.push_back(K[members[q]]);
          tt.push_back(T[members[q]]);
        }
        return calibrate::fit_gemm_terms(mm, nn, kk, tt, with_m0, with_n0);
      };
      auto as_matmul = [&](const std::vector<std::size_t>& use) {
        std::vector<double> matmul_time, tt;
        for (const auto q : use) {
          matmul_time.push_back(pointwise_time(*matmul_shape, specs[cal[members[q]]]));
          tt.push_back(T[members[q]]);
        }
        const auto fit = calibrate::fit_compute(matmul_time, tt);
        calibrate::GemmShapeFit pw = *matmul_shape;
        pw.a *= fit.a;
        for (auto& x : pw.w) x *= fit.a;
        pw.w_conflict *= fit.a;  // the whole matmul time is scaled, its aliased weights' share too (session 35)
        pw.c = fit.c;
        return pw;
      };
      std::vector<std::size_t> all(members.size());
      std::iota(all.begin(), all.end(), std::size_t{0});
      g.by_kernel[size] = form(all, false, false);
      double best = std::numeric_limits<double>::infinity();
      for (const auto& [with_m0, with_n0] : {std::pair{false, false}, {true, false}, {false, true}, {true, true}}) {
        const double loo = calibrate::leave_one_out_rms(
            members.size(), 2 + (with_m0 ? 1 : 0) + (with_n0 ? 1 : 0), [&](const auto& train, std::size_t test) {
              const auto fit = form(train, with_m0, with_n0);
              const auto q = members[test];
              return fit.predict(M[q], N[q], K[q]) / T[q] - 1;
            });
        if (loo < best) {
          best = loo;
          g.by_kernel[size] = form(all, with_m0, with_n0);
        }
      }
      if (size == 1 && matmul_shape) {
        const double loo = calibrate::leave_one_out_rms(members.size(), 2, [&](const auto& train, std::size_t test) {
          const auto pw = as_matmul(train);
          return (pointwise_time(pw, specs[cal[members[test]]]) + pw.c) / T[members[test]] - 1;
        });
        if (loo < best) g.pointwise = as_matmul(all);
      }
    }
    double flops = 0, seconds = 0;
    for (const auto i : cal) {
      flops += specs[i].flops();
      seconds += g.predict(specs[i]);
    }
    if (seconds > 0) g.effective_rate = flops / seconds;
  }
  return g;
}

// The topmost folder of `dir` that is not there yet ("" where all are): what the command makes, and
// removes again when the entry is refused.
std::filesystem::path first_missing(const std::filesystem::path& dir) {
  std::error_code ec;
  // (Normalised: `new/../x` makes x, not new.)
  std::filesystem::path p = std::filesystem::absolute(dir, ec).lexically_normal(), missing;
  if (!p.empty() && p.filename().empty()) p = p.parent_path();  // a trailing slash
  while (!p.empty() && !std::filesystem::exists(p, ec)) {
    missing = p;
    if (p == p.parent_path()) break;
    p = p.parent_path();
  }
  return missing;
}

// The catalogs an entry is checked against: none where the data directory is not one (an entry
// written elsewhere needs none to be read).
LoadOptions entry_catalogs(const std::filesystem::path& data) {
  std::error_code ec;
  return LoadOptions{std::filesystem::is_directory(data, ec) ? data : std::filesystem::path()};
}

// An entry's message from the catalog's reader, with the reader's "<input>: " prefix dropped.
std::string entry_refusal(const InputError& e) {
  std::string why = e.what();
  if (why.rfind("<input>: ", 0) == 0) why = why.substr(9);
  return why;
}

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f%%", 100 * x);
  return b;
}

}  // namespace

int command_calibrate(const std::vector<std::string>& args, Streams io) {
  const std::string usage =
      "usage: dlcarbon calibrate [--quick] [--check] [--seconds S] [--seed N] [--out DIR] [--id ID] [--tdp POWER] [--from ID]\n"
      "                          [--refit RAW.h5|RUN.csv [--this-machine]] [--data-dir DIR]\n"
      "Times oneDNN kernels on this CPU (calibration and held-out check shapes interleaved), fits the\n"
      "roofline per kernel group and writes DIR/ID.yaml (a hardware entry) and DIR/ID.h5 (raw data).";
  po::options_description visible("options");
  visible.add_options()("quick", "a small shape set and a 25 s measuring budget, ~30 s in all (tests)")(
      "check", "print every held-out kernel: measured, predicted, error, repeatability")(
      "out", po::value<std::string>(), "folder for the entry (default: <data dir>/hardware/measured)")(
      "id", po::value<std::string>(), "hardware id (default: cpu-<model>-<threads>t)")(
      "tdp", po::value<std::string>(), "power of the measured CPU share for the energy model, e.g. \"8.8 W\"")(
      "from", po::value<std::string>(), "catalog entry whose datasheet keys (embodied, ...) the entry inherits")(
      "seconds", po::value<double>(), "measurement budget in seconds (default 300, quick 25)")(
      "seed", po::value<long long>()->default_value(1), "order of the round robin (0 to 4294967295)")(
      "refit", po::value<std::string>(), "refit the raw samples of an earlier run (its .h5; a GPU run's .csv) instead of measuring")(
      "this-machine", "with --refit of a raw .h5 that records no machine (written before 2026-12-05): it was measured here, "
                      "take this machine's caches and name")(
      "data-dir", po::value<std::string>(), "catalog directory");
  po::options_description hidden;
  po::positional_options_description positional;
  po::variables_map vm;
  if (auto code = parse_options(args, usage, visible, positional, hidden, vm, io)) return *code;
  if (vm.count("this-machine") && !(vm.count("refit") && std::filesystem::path(vm["refit"].as<std::string>()).extension() == ".h5")) {
    io.err << "dlcarbon calibrate: --this-machine: only with --refit of a raw .h5 file\n";
    return kBadInput;
  }
  // A refit times nothing: the measuring options would be ignored (since session 35).
  if (vm.count("refit")) {
    for (const char* o : {"quick", "seconds", "seed"}) {
      if (vm.count(o) && !vm[o].defaulted()) {
        io.err << "dlcarbon calibrate: --" << o << " measures; --refit fits the samples of an earlier run without measuring\n";
        return kBadInput;
      }
    }
  }
  const bool quick = vm.count("quick") > 0;
  const double budget = vm.count("seconds") ? vm["seconds"].as<double>() : (quick ? 25.0 : 300.0);
  // At most a week: a budget is a wall-clock time to spend measuring (inf and 1e300 overflowed the
  // round count into the fewest rounds; since session 37, a review).
  if (!(budget > 0) || !(budget <= 604800)) {
    io.err << "dlcarbon calibrate: --seconds: expected a number of seconds greater than 0 and at most 604800 (a week)\n";
    return kBadInput;
  }
  double tdp_w = 0;
  if (vm.count("tdp")) {
    try {
      tdp_w = units::parse_quantity(vm["tdp"].as<std::string>(), units::Kind::power).value;
    } catch (const units::QuantityError& e) {
      io.err << "dlcarbon calibrate: --tdp: " << e.what() << "\n";
      return kBadInput;
    }
  }
  // A seed as a scenario's (0 to 2^32 - 1; "-1" had wrapped to 4294967295) and a named --out (an
  // empty one had written into the working folder); since session 36.
  if (const long long seed = vm["seed"].as<long long>(); seed < 0 || seed > 4294967295LL) {
    io.err << "dlcarbon calibrate: --seed: expected a whole number from 0 to 4294967295, got " << seed << "\n";
    return kBadInput;
  }
  if (vm.count("out") && vm["out"].as<std::string>().empty()) {
    io.err << "dlcarbon calibrate: --out: expected a folder, got an empty name\n";
    return kBadInput;
  }
  const std::filesystem::path data = data_dir_option(vm);
  // A data directory given that is none is bad input, as for `run` (since session 43, a review: a
  // misspelt one was taken as empty, its checks skipped, and a measurement written into it).
  if (vm.count("data-dir") && !vm["data-dir"].defaulted()) {
    std::error_code ec;
    if (!std::filesystem::is_directory(data, ec)) {
      io.err << "dlcarbon calibrate: --data-dir: " << text::quoted(data.string())
             << (std::filesystem::exists(data, ec) ? " is not a directory" : " does not exist") << "\n";
      return kBadInput;
    }
  }
  // A refit writes beside the raw data it read (under the same id), unless told otherwise.
  const std::filesystem::path refit_file = vm.count("refit") ? std::filesystem::path(vm["refit"].as<std::string>()) : "";
  const std::filesystem::path out_dir = vm.count("out")     ? std::filesystem::path(vm["out"].as<std::string>())
                                        : vm.count("refit") ? (refit_file.parent_path().empty() ? "." : refit_file.parent_path())
                                                            : data / "hardware/measured";
  const unsigned threads = std::thread::hardware_concurrency();
  const std::string id = vm.count("id")      ? vm["id"].as<std::string>()
                         : vm.count("refit") ? refit_file.stem().string()
                                             : "cpu-" + slug(cpu_model()) + "-" + std::to_string(threads) + "t";

  // The options are checked before anything is measured (since session 35; before, an id with a
  // path in it wrote outside --out, an empty one wrote ".yaml", a zero or negative --tdp fell back
  // to the default, an unknown --from was written into the entry, and --out naming a file failed
  // after the measurement).
  {
    // Not starting with a dot: the catalog skips hidden files, so such an entry could never be found
    // (since session 41, a review).
    bool ok = !id.empty() && id.size() <= 128 && id.front() != '.';
    for (const char c : id) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
    if (!ok) {
      const bool from_name = !vm.count("id") && vm.count("refit");  // the default: the raw file's name
      io.err << "dlcarbon calibrate: " << (from_name ? "the id taken from --refit's file name" : std::string("--id"))
             << ": expected an id (letters, digits, '-', '_', '.'; at most 128; not starting with '.'), got " << text::quoted(id)
             << (from_name ? "; give one with --id" : "") << "\n";
      return kBadInput;
    }
  }
  if (vm.count("tdp") && !(tdp_w > 0)) {
    io.err << "dlcarbon calibrate: --tdp: expected a power greater than 0 (e.g. \"8.8 W\"), got "
           << text::quoted(vm["tdp"].as<std::string>()) << "\n";
    return kBadInput;
  }
  {
    std::error_code ec;
    if (std::filesystem::exists(out_dir, ec) && !std::filesystem::is_directory(out_dir, ec)) {
      io.err << "dlcarbon calibrate: --out: " << text::quoted(out_dir.string()) << " is not a directory (name the folder for the entry)\n";
      return kBadInput;
    }
    // A folder that cannot be made or written is said before anything is measured (since session 41,
    // a review: `--out afile/sub` measured for the whole budget, then failed with exit 1). Nothing
    // is made yet (a refused fit leaves no folder): the nearest folder that is there must be one,
    // and take a file.
    std::filesystem::path there = std::filesystem::absolute(out_dir, ec);
    while (!std::filesystem::exists(there, ec) && there.has_relative_path()) there = there.parent_path();
    bool writable = std::filesystem::is_directory(there, ec);
    if (writable) {
      const std::filesystem::path probe = there / (".dlcarbon-probe-" + std::to_string(::getpid()));
      std::ofstream(probe).put('\n');
      writable = std::filesystem::is_regular_file(probe, ec);
      std::filesystem::remove(probe, ec);
    }
    if (!writable) {
      io.err << "dlcarbon calibrate: --out: cannot write in " << text::quoted(out_dir.string())
             << " (it cannot be made, or is not writable): name another folder\n";
      return kBadInput;
    }
    // The entry and its raw samples replace files of those names, never a folder (since session 37,
    // a review: a folder named like the entry was reported written, one named like the raw file
    // failed after the entry was written).
    for (const char* ext : {".yaml", ".h5"}) {
      const std::filesystem::path target = out_dir / (id + ext);
      if (std::filesystem::exists(target, ec) && !std::filesystem::is_regular_file(target, ec)) {
        io.err << "dlcarbon calibrate: cannot write " << text::quoted(target.string())
               << ": it is a folder or not a regular file (choose another --id or --out)\n";
        return kBadInput;
      }
    }
    // An entry replaces only an entry calibrate wrote: never a catalog file or a user's YAML of that
    // name (since session 41, a review: `--id datacenters --out <data dir>` replaced the data
    // centre catalog, `--id cpus` the CPU one).
    const std::filesystem::path yaml = out_dir / (id + ".yaml");
    if (std::filesystem::is_regular_file(yaml, ec)) {
      std::ifstream in(yaml);
      std::string first;
      std::getline(in, first);
      const bool cpu_entry = first.rfind("# Written by `dlcarbon calibrate`", 0) == 0;
      const bool gpu_entry = first.rfind("# Fitted by `dlcarbon calibrate", 0) == 0;
      if (!cpu_entry && !gpu_entry) {
        io.err << "dlcarbon calibrate: cannot write " << text::quoted(yaml.string())
               << ": it is there and was not written by dlcarbon calibrate (a catalog file, or another YAML file): "
                  "choose another --id or --out\n";
        return kBadInput;
      }
      // A CPU's entry replaces a CPU's, a GPU's a GPU's (since session 43, a review: `--id
      // cpu-amd-epyc-2t` had turned the measured CPU into an H200 without a word).
      const bool gpu_run = vm.count("refit") && refit_file.extension() == ".csv";
      if (gpu_run != gpu_entry) {
        io.err << "dlcarbon calibrate: cannot write " << text::quoted(yaml.string()) << ": it is a measured "
               << (gpu_entry ? "GPU" : "CPU") << "'s entry, and this run's is a " << (gpu_run ? "GPU" : "CPU")
               << "'s: choose another --id or --out\n";
        return kBadInput;
      }
    }
    // The same for the raw file: it replaces only a calibration's raw samples, never a run's output
    // or another HDF5 file (since session 43, a review: `--id results` replaced a simulation's file).
    // (A GPU refit from its .csv writes no raw file.)
    const std::filesystem::path raw = out_dir / (id + ".h5");
    const bool gpu_refit = vm.count("refit") && refit_file.extension() == ".csv";
    if (!gpu_refit && std::filesystem::is_regular_file(raw, ec) && read_scenario_name(raw).rfind("calibrate-", 0) != 0) {
      io.err << "dlcarbon calibrate: cannot write " << text::quoted(raw.string())
             << ": it is there and is not a calibration's raw file (a run's output, or another file): choose another --id or --out\n";
      return kBadInput;
    }
  }
  // An id the catalog already defines in another file: an entry written into the catalog under it
  // would make every later command refuse the catalog (since session 38, a review). Checked before
  // anything is measured; the entry itself is read as the catalog would once it is written (below).
  {
    const std::filesystem::path destination = out_dir / (id + ".yaml");
    const LoadOptions catalogs = entry_catalogs(data);
    std::error_code ec;
    const std::filesystem::path dest = std::filesystem::weakly_canonical(destination, ec);
    if (lies_in_catalog(destination, catalogs.data_dir)) {
      std::string place;
      try {
        place = catalog_hardware_place(id, catalogs);
      } catch (const InputError& e) {
        io.err << "dlcarbon calibrate: the catalog the entry would join is refused: " << entry_refusal(e) << "\n";
        return kBadInput;
      }
      const std::string file = place.substr(0, place.rfind(':'));
      if (!place.empty() && std::filesystem::weakly_canonical(file, ec) != dest) {
        io.err << "dlcarbon calibrate: --id: the catalog already defines hardware " << text::quoted(id) << " (at " << place
               << "); an entry written to " << destination.string()
               << " would define it twice: choose another --id, or --out a folder outside the data directory\n";
        return kBadInput;
      }
    }
  }
  // A GPU entry inherits its power limit from the datasheet entry it refines: a --tdp would be
  // dropped (since session 36; the CPU entry writes it).
  if (vm.count("tdp") && vm.count("refit") && refit_file.extension() == ".csv") {
    io.err << "dlcarbon calibrate: --tdp: a GPU run's entry takes its tdp from the datasheet entry it refines (--from); "
              "drop --tdp, or override tdp in a scenario\n";
    return kBadInput;
  }
  if (vm.count("from") && !(vm.count("refit") && refit_file.extension() == ".csv")) {
    try {
      // A CPU run's entry inherits a CPU's datasheet keys; a GPU's would give it the GPU's kind
      // and peaks under a CPU's measured rates (since session 42, a review).
      const Hardware h = load_catalog_hardware(vm["from"].as<std::string>(), LoadOptions{data});
      if (h.kind != "cpu") {
        io.err << "dlcarbon calibrate: --from: " << h.id << " is a " << h.kind
               << ", not a CPU (a GPU run's entry is refitted from its .csv with --refit)\n";
        return kBadInput;
      }
      // What the entry will inherit, checked before measuring (since session 43, a review): the
      // measured threads are a share of the part, so its whole TDP is not theirs; and an idle
      // power above the --tdp given makes an entry the catalog refuses.
      if (!vm.count("tdp") && !vm.count("refit")) {
        io.err << "dlcarbon calibrate: --from: give the measured threads' power with --tdp (the entry would take "
               << h.id << "'s tdp, " << format_number(h.tdp_w) << " W, the whole part's)\n";
        return kBadInput;
      }
      if (vm.count("tdp") && h.idle_power_w && *h.idle_power_w > tdp_w) {
        io.err << "dlcarbon calibrate: --tdp: " << format_number(tdp_w) << " W is below " << h.id << "'s idle power ("
               << format_number(*h.idle_power_w) << " W), which the entry inherits: give a larger --tdp, or another --from\n";
        return kBadInput;
      }
    } catch (const InputError& e) {
      std::string why = e.what();
      if (why.rfind("<input>: ", 0) == 0) why = why.substr(9);
      io.err << "dlcarbon calibrate: --from: " << why << "\n";
      return kBadInput;
    }
  }

  if (vm.count("refit") && refit_file.extension() == ".csv") {
    // A GPU calibration's raw CSV (dlcarbon-calibrate-gpu): its fits again, here, without a GPU.
    // The entry refines the datasheet entry of its GPU (--from, else the one the run recorded),
    // read from the catalog: its rates become fractions of that entry's peaks and bandwidth.
    calibrate::GpuMeasurements gpu;
    try {
      gpu = calibrate::read_gpu_csv(refit_file);
    } catch (const std::exception& e) {
      io.err << "dlcarbon calibrate: --refit: " << e.what() << "\n";
      return kBadInput;
    }
    const bool from_csv = !vm.count("from");
    const std::string from = from_csv ? gpu.device.from : vm["from"].as<std::string>();
    if (from.empty()) {
      io.err << "dlcarbon calibrate: --refit: " << refit_file.string()
             << " records no datasheet entry; name the GPU's with --from (e.g. --from nvidia-h200-sxm)\n";
      return kBadInput;
    }
    calibrate::GpuDatasheet datasheet;
    try {
      const Hardware h = load_catalog_hardware(from, LoadOptions{data});
      if (h.kind != "gpu") {
        io.err << "dlcarbon calibrate: --from: " << from << " is a " << h.kind << ", not a GPU\n";
        return kBadInput;
      }
      datasheet.id = h.id;
      datasheet.peak = h.peak_flop_per_s;
      datasheet.bandwidth = h.memory_bandwidth_bytes_per_s.value_or(0);
      datasheet.wave_quantised = h.compute_units > 0;
    } catch (const InputError& e) {
      // The id came from the command line or from the CSV's device line: name that place.
      std::string why = e.what();
      if (why.rfind("<input>: ", 0) == 0) why = why.substr(9);
      io.err << "dlcarbon calibrate: " << (from_csv ? refit_file.string() + ":1: from: " : "--from: ") << why << "\n";
      return kBadInput;
    }
    io.out << "dlcarbon calibrate: refitting " << gpu.specs.size() << " GPU kernels from " << refit_file.string() << " against "
           << from << "\n";
    const auto check = [&](const std::filesystem::path& written, const std::filesystem::path& destination) {
      (void)check_hardware_entry(id, written, destination, entry_catalogs(data));
    };
    // Folders --out names that are not there yet are made for the entry, and removed again when it
    // is refused or cannot be written (since session 43, a review: they had been left behind).
    const std::filesystem::path made = first_missing(out_dir);
    std::error_code rm_ec;
    try {
      calibrate::fit_gpu(gpu, id, &datasheet, out_dir, io.out, check, refit_file.filename().string());
    } catch (const InputError& e) {
      if (!made.empty()) std::filesystem::remove_all(made, rm_ec);
      io.err << "dlcarbon calibrate: the fitted entry would be refused, so nothing was written: " << entry_refusal(e) << "\n";
      return kBadInput;
    } catch (const std::filesystem::filesystem_error& e) {
      if (!made.empty()) std::filesystem::remove_all(made, rm_ec);
      io.err << "dlcarbon calibrate: " << e.what() << "\n";
      return kFailure;
    } catch (const std::exception& e) {
      if (!made.empty()) std::filesystem::remove_all(made, rm_ec);
      // (The file it read, named: since session 47, a review.)
      io.err << "dlcarbon calibrate: --refit: " << refit_file.string() << ": " << e.what() << "\n";
      return kBadInput;
    }
    return 0;
  }
  calibrate::OneDnnBackend backend;
  Machine machine = this_machine(backend);  // a refit's: the one its file records (below)
  // When the kernels were timed: now, or a refit's raw file's time (since session 41, a review: a
  // refit stamped its own day as the measurement's).
  std::string measured_at = utc_now_iso8601();
  std::int64_t measured_seed = vm["seed"].as<long long>();
  // The datasheet entry the entry refines: --from, else (a refit) the one the raw file records.
  std::string from_id = vm.count("from") ? vm["from"].as<std::string>() : std::string();
  const bool bf16 = backend.native("bf16"), s8 = backend.native("s8");
  std::vector<calibrate::KernelSpec> specs;
  calibrate::Measurement m;
  std::chrono::duration<double> took{0};
  if (vm.count("refit")) {
    // Refit the raw samples of an earlier run (its .h5) with this build's models: no timing.
    const std::string source = vm["refit"].as<std::string>();
    const auto bad = [&](const std::string& why) {
      io.err << "dlcarbon calibrate: --refit: " << source << ": " << why << "\n";
      return kBadInput;
    };
    // A path that is missing or not a file is named as such, not as a file that is not HDF5
    // (since session 36).
    {
      std::error_code ec;
      if (!std::filesystem::exists(source, ec)) return bad("no such file");
      if (!std::filesystem::is_regular_file(source, ec)) return bad("not a regular file (name the raw .h5 of a calibration run)");
    }
    RunRecord old;
    try {
      old = read_run_guarded(source);
    } catch (const std::exception& e) {
      return bad(std::string("not a raw calibration file (") + e.what() + ")");
    }
    if (!old.created.empty()) {
      // The entry's source names the measuring date from it (since session 45, a review: "garbage"
      // had become "dlcarbon calibrate on garbage").
      const std::string& c = old.created;
      const auto digits = [&](std::size_t from, std::size_t n) {
        for (std::size_t i = from; i < from + n; ++i) {
          if (i >= c.size() || c[i] < '0' || c[i] > '9') return false;
        }
        return true;
      };
      if (!(digits(0, 4) && c.size() >= 10 && c[4] == '-' && digits(5, 2) && c[7] == '-' && digits(8, 2))) {
        return bad("records its creation as \"" + text::printable(c) + "\", not an ISO 8601 time (YYYY-MM-DD...)");
      }
      measured_at = c;
    }
    measured_seed = old.seed;
    // A file with no samples (a run's output) is said to be one before anything about its machine
    // (since session 44, a review: "records no machine", or under --this-machine a line taking this
    // machine's caches, came first).
    if (std::none_of(old.tables.begin(), old.tables.end(), [](const Table& t) { return t.path == "calibration/samples"; })) {
      return bad("holds no calibration/samples table");
    }
    std::string malformed;
    const auto recorded = recorded_machine(old, malformed);
    if (!malformed.empty()) return bad(malformed + ": the file was edited or damaged; measure again");
    if (recorded) {
      machine = *recorded;
      // The measured run's --tdp and --from hold unless given again.
      if (!vm.count("tdp") && machine.tdp_w > 0) tdp_w = machine.tdp_w;
      if (from_id.empty() && !machine.from.empty()) {
        try {
          const Hardware h = load_catalog_hardware(machine.from, LoadOptions{data});
          if (h.kind != "cpu") return bad("records --from " + machine.from + ", a " + h.kind + ", not a CPU; give another with --from");
        } catch (const InputError& e) {
          std::string why = e.what();
          if (why.rfind("<input>: ", 0) == 0) why = why.substr(9);
          return bad("records --from " + machine.from + ": " + why + "; give another with --from");
        }
        from_id = machine.from;
      }
      if (!from_id.empty() && !(tdp_w > 0)) {
        return bad("with --from " + from_id + " and no --tdp, recorded or given, the entry would take " + from_id +
                   "'s tdp, the whole part's: give the measured threads' power with --tdp");
      }
    } else if (vm.count("this-machine")) {
      io.out << "dlcarbon calibrate: " << source << " records no machine: taking this machine's caches and name (--this-machine)\n";
    } else {
      // Its caches and name are unknown: taking this machine's would credit it with the measurement
      // and fit the cache model to the wrong levels (since session 43, a review: a refit of the
      // shipped EPYC file here named a Xeon and moved its fp32 rate by 1.5 %). --this-machine says
      // it was measured here.
      return bad("records no machine (a raw file written before 2026-12-05): its caches and name are unknown, and "
                 "this machine's need not be the measured one's: refit it on the machine that measured it with --this-machine, "
                 "or measure again");
    }
    const Table* samples = nullptr;
    for (const auto& t : old.tables) {
      if (t.path == "calibration/samples") samples = &t;
    }
    const Table* kernels = nullptr;
    for (const auto& t : old.tables) {
      if (t.path == "calibration/kernels") kernels = &t;
    }
    // Two forms: since 2026-12-02 each sample names its kernel by row of calibration/kernels and
    // its pass as 0 (A) or 1 (B), which compresses; before, by label and "a"/"b".
    const auto holds = [](const Table* t, const char* name, std::size_t alternative) {
      return t && t->find(name) && t->find(name)->values.index() == alternative;
    };
    const bool by_row = holds(samples, "kernel_row", 1) && holds(samples, "pass", 1) && holds(kernels, "kernel", 2);
    const bool by_label = holds(samples, "kernel", 2) && holds(samples, "pass", 2);
    if (!(by_row || by_label) || !holds(samples, "time", 0)) return bad("holds no calibration/samples table");
    const auto& times = std::get<std::vector<double>>(samples->find("time")->values);
    for (const auto& column : samples->columns) {
      if (column.size() != times.size()) return bad("the columns of calibration/samples differ in length");
    }
    for (std::size_t i = 0; i < times.size(); ++i) {
      if (!std::isfinite(times[i]) || times[i] <= 0) {
        const std::string shown = std::isnan(times[i]) ? "NaN" : std::isinf(times[i]) ? (times[i] > 0 ? "inf" : "-inf") : format_number(times[i], 6);
        return bad("calibration/samples row " + std::to_string(i) + " has time " + shown +
                   ": every time must be a positive number of seconds");
      }
    }
    std::vector<std::string> labels;
    std::vector<bool> pass_a(times.size());
    if (by_row) {
      const auto& names = std::get<std::vector<std::string>>(kernels->find("kernel")->values);
      const auto& rows = std::get<std::vector<std::int64_t>>(samples->find("kernel_row")->values);
      const auto& p = std::get<std::vector<std::int64_t>>(samples->find("pass")->values);
      for (std::size_t i = 0; i < times.size() && i < rows.size() && i < p.size(); ++i) {
        if (rows[i] < 0 || static_cast<std::size_t>(rows[i]) >= names.size()) {
          return bad("calibration/samples row " + std::to_string(i) + " names kernel row " + std::to_string(rows[i]) +
                     ", the kernels table has " + std::to_string(names.size()));
        }
        if (p[i] != 0 && p[i] != 1) {
          return bad("calibration/samples row " + std::to_string(i) + " has pass " + std::to_string(p[i]) + ", not 0 (A) or 1 (B)");
        }
        labels.push_back(names[static_cast<std::size_t>(rows[i])]);
        pass_a[i] = p[i] == 0;
      }
    } else {
      labels = std::get<std::vector<std::string>>(samples->find("kernel")->values);
      const auto& p = std::get<std::vector<std::string>>(samples->find("pass")->values);
      for (std::size_t i = 0; i < times.size() && i < p.size(); ++i) {
        if (p[i] != "a" && p[i] != "b") return bad("calibration/samples row " + std::to_string(i) + " has pass \"" + p[i] + "\", not a or b");
        pass_a[i] = p[i] == "a";
      }
    }
    std::map<std::string, calibrate::KernelSpec> known;
    for (const bool q : {false, true}) {
      for (const auto& spec : calibrate::shape_set(q, true, true)) known.emplace(spec.label(), spec);
    }
    std::map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < labels.size() && i < times.size(); ++i) {
      auto at = index.find(labels[i]);
      if (at == index.end()) {
        const auto k = known.find(labels[i]);
        if (k == known.end()) continue;  // a shape this build no longer has
        at = index.emplace(labels[i], specs.size()).first;
        specs.push_back(k->second);
        m.pass_a.emplace_back();
        m.pass_b.emplace_back();
      }
      (pass_a[i] ? m.pass_a : m.pass_b)[at->second].push_back(times[i]);
    }
    if (specs.empty()) return bad("holds no kernel this build knows");
    if (std::none_of(specs.begin(), specs.end(), [](const calibrate::KernelSpec& s) { return s.kind == "matmul" || s.kind == "conv"; })) {
      return bad("holds no matmul or convolution, so the entry would have no fp32 peak");
    }
    if (from_id.empty() && std::none_of(specs.begin(), specs.end(), [](const calibrate::KernelSpec& s) { return s.kind == "stream"; })) {
      return bad("holds no STREAM add, so the entry would have no memory bandwidth");
    }
    io.out << "dlcarbon calibrate: refitting " << specs.size() << " kernels from " << source << "\n";
  } else {
    std::vector<std::function<double(int)>> runs;
    for (const auto& spec : calibrate::shape_set(quick, bf16, s8)) {
      auto run = backend.prepare(spec);
      if (!run) continue;
      specs.push_back(spec);
      runs.push_back(std::move(run));
    }
    // Repetitions per sample: enough executions for ~0.5 ms (quick) or ~2 ms per sample.
    const double target = quick ? 0.5e-3 : 2e-3;
    std::vector<int> reps;
    double round_s = 0;
    for (auto& run : runs) {
      const double t = std::max(1e-7, run(1));
      const int r = std::max(1, static_cast<int>(target / t));
      reps.push_back(r);
      round_s += (r + 1) * t;  // and the untimed call before each sample (onednn_backend.cpp)
    }
    int rounds = static_cast<int>(budget / std::max(round_s, 1e-6));
    rounds = std::clamp(rounds - rounds % 2, 6, 400);
    io.out << "dlcarbon calibrate: " << specs.size() << " kernels (" << machine.cpu << ", " << machine.threads
           << " threads, oneDNN " << machine.onednn << ", ISA " << machine.isa << "), " << rounds
           << " interleaved rounds of ~" << format_number(round_s * 1e3, 3) << " ms\n";
    const auto started = std::chrono::steady_clock::now();
    // The rounds are planned from one timing of each kernel; the budget is kept by the clock.
    const auto out_of_time = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() >= budget; };
    m = calibrate::measure_round_robin(
        specs.size(), rounds, [&](std::size_t i, int r) { return runs[i](r); }, reps, static_cast<unsigned>(vm["seed"].as<long long>()),
        out_of_time);
    took = std::chrono::steady_clock::now() - started;
  }

  // Robust times, pass by pass and together; repeatability is pass A against pass B.
  std::vector<double> t_all(specs.size()), t_a(specs.size()), t_b(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    std::vector<double> both = m.pass_a[i];
    both.insert(both.end(), m.pass_b[i].begin(), m.pass_b[i].end());
    t_all[i] = calibrate::robust_time(both);
    t_a[i] = calibrate::robust_time(m.pass_a[i]);
    t_b[i] = calibrate::robust_time(m.pass_b[i]);
  }
  std::map<std::string, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < specs.size(); ++i) groups[specs[i].group()].push_back(i);
  const calibrate::CacheGeometry l1 = machine.l1;
  auto fit_all = [&](const std::vector<double>& levels) {
    std::map<std::string, GroupModel> out;
    // Matmuls first: a 1x1 convolution borrows the shape overheads of its dtype's matmul.
    for (const bool conv_pass : {false, true}) {
      for (const auto& [group, members] : groups) {
        if ((specs[members.front()].kind == "conv") != conv_pass) continue;
        std::vector<std::size_t> cal;
        for (const auto i : members) {
          if (specs[i].role == calibrate::Role::calibrate) cal.push_back(i);
        }
        std::optional<calibrate::GemmShapeFit> matmul_shape;
        if (const auto mm = out.find("matmul/" + specs[members.front()].dtype); mm != out.end()) matmul_shape = mm->second.shape;
        if (cal.size() >= 2) out[group] = fit_group(specs, t_all, cal, levels, matmul_shape, l1);
      }
    }
    return out;
  };
  const std::vector<double> nominal = machine.levels;
  // Effective cache capacities. On a shared machine a working set cannot use the whole of what
  // sysfs reports (other tenants hold part of the last level; the private levels also hold code
  // and the other operand streams), so each level's capacity is chosen between its nominal size
  // and 1/16 of it, in quarter-octave steps, by the calibration error of the memory-bound kernels
  // (never the checks). The capacities are one property of the machine, shared by all kernels.
  std::vector<double> levels = nominal;
  {
    auto memory_error = [&](const std::vector<double>& lv) {
      double sum = 0;
      for (const auto& [group, members] : groups) {
        double m = 0, n = 0, k = 0;
        if (calibrate::gemm_dims(specs[members.front()], m, n, k)) continue;
        std::vector<std::size_t> cal;
        for (const auto i : members) {
          if (specs[i].role == calibrate::Role::calibrate) cal.push_back(i);
        }
        if (cal.size() < 2) continue;
        const auto g = fit_group(specs, t_all, cal, lv, std::nullopt, l1);
        for (const auto i : cal) sum += std::pow(g.predict(specs[i]) / t_all[i] - 1, 2);
      }
      return sum;
    };
    double best = memory_error(levels);
    std::vector<double> candidate = nominal;
    // Coordinate search, level by level, repeated until no level moves.
    for (int sweep = 0; sweep < 4; ++sweep) {
      bool moved = false;
      for (std::size_t l = 0; l < nominal.size(); ++l) {
        for (int j = 0; j <= 16; ++j) {
          candidate = levels;
          candidate[l] = nominal[l] * std::pow(2.0, -0.25 * j);
          if (l > 0 && candidate[l] <= candidate[l - 1]) continue;
          if (l + 1 < candidate.size() && candidate[l] >= candidate[l + 1]) continue;
          const double e = memory_error(candidate);
          if (e < best * (1 - 1e-9)) {
            best = e;
            levels = candidate;
            moved = true;
          }
        }
      }
      if (!moved) break;
    }
  }
  std::map<std::string, GroupModel> fits = fit_all(levels);
  std::vector<double> predicted(specs.size(), NAN), errors, repeat;
  std::map<std::string, std::vector<double>> errors_by_kind;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const auto f = fits.find(specs[i].group());
    if (f == fits.end()) continue;
    predicted[i] = f->second.predict(specs[i]);
    repeat.push_back(t_a[i] / t_b[i] - 1);
    if (specs[i].role != calibrate::Role::check) continue;
    errors.push_back(predicted[i] / t_all[i] - 1);
    errors_by_kind[specs[i].kind].push_back(errors.back());
  }
  if (vm.count("check")) {
    io.out << "\nheld-out kernel                                   measured   predicted  error    repeatability\n";
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].role != calibrate::Role::check || std::isnan(predicted[i])) continue;
      std::string label = specs[i].label();
      label.resize(std::max<std::size_t>(label.size(), 50), ' ');
      io.out << label << format_number(t_all[i] * 1e6, 4) << " us  " << format_number(predicted[i] * 1e6, 4) << " us  "
             << pct(predicted[i] / t_all[i] - 1) << "  " << pct(t_a[i] / t_b[i] - 1) << "\n";
    }
  }
  const auto stats = calibrate::error_stats(errors);
  const auto noise = calibrate::error_stats(repeat);
  io.out << "\nfits (memory-bound: t = B x sum_l b_l share_l(B) + overhead over the effective cache capacities below;\n"
            "      matmul: t = F / rate x (1 + n0/n + k0/k) + W x sum_l w_l share_l(W) + overhead, W the weights' bytes;\n"
            "      convolution per kernel size: t = F / rate x (1 + m0/m + n0/n) + overhead, m = output pixels,\n"
            "      n = output channels, each term kept where it predicts the other calibration shapes better,\n"
            "      1x1 as the matmul of its products where that does):\n";
  io.out << "  effective cache capacities:";
  for (std::size_t l = 0; l < levels.size(); ++l) {
    io.out << " " << format_number(levels[l] / 1048576, 3) << " MiB (sysfs "
           << format_number(nominal.at(l) / 1048576, 3) << " MiB)" << (l + 1 < levels.size() ? "," : "");
  }
  io.out << "\n";
  for (const auto& [group, g] : fits) {
    io.out << "  " << group << ": ";
    if (g.shape) {
      io.out << format_number(g.rate() / 1e9, 4) << " GFLOP/s; n0 " << format_number(g.shape->n0, 3) << ", k0 "
             << format_number(g.shape->k0, 3) << "; weights at";
      for (std::size_t l = 0; l < g.shape->w.size(); ++l) {
        io.out << " " << (g.shape->w[l] > 0 ? format_number(1 / g.shape->w[l] / 1e9, 4) : std::string("inf")) << " GB/s";
      }
      if (g.shape->w_conflict > 0) {
        io.out << "; rows a multiple of L1's way size apart: +" << format_number(g.shape->w_conflict * 1e12, 3) << " ps/B";
      }
      io.out << ";";
    } else if (specs[groups.at(group).front()].kind == "conv") {
      io.out << format_number(g.rate() / 1e9, 4) << " GFLOP/s (FLOP-weighted over its shapes);";
      for (const auto& [size, f] : g.by_kernel) {
        io.out << " " << size << "x" << size << ": ";
        if (size == 1 && g.pointwise) {
          io.out << "as matmul;";
          continue;
        }
        io.out << format_number(1 / f.a / 1e9, 4) << " GFLOP/s";
        if (f.m0 > 0) io.out << " m0 " << format_number(f.m0, 3);
        if (f.n0 > 0) io.out << " n0 " << format_number(f.n0, 3);
        io.out << " + " << format_number(f.c * 1e6, 3) << " us;";
      }
    } else {
      const auto& f = g.roofline;
      for (std::size_t l = 0; l < f.b.size(); ++l) {
        io.out << " " << (f.b[l] > 0 ? format_number(1 / f.b[l] / 1e9, 4) : std::string("inf")) << " GB/s"
               << (l < f.levels.size() ? " to " + format_number(f.levels[l] / 1048576, 3) + " MiB," : " beyond;");
      }
      if (g.stream_penalty > 0) io.out << " channel streams L1 cannot hold: +" << format_number(g.stream_penalty * 1e12, 3) << " ps/B;";
    }
    io.out << " " << format_number(g.overhead() * 1e6, 3) << " us\n";
  }
  io.out << "\nheld-out kernels: " << stats.n << "; median |error| " << pct(stats.median_abs) << ", 90th percentile "
         << pct(stats.p90_abs) << "; within +/-10 %: " << pct(stats.within_10) << ", within +/-15 %: " << pct(stats.within_15)
         << "\n";
  for (const auto& [kind, e] : errors_by_kind) {
    const auto k = calibrate::error_stats(e);
    io.out << "  " << kind << ": " << k.n << " kernels, median " << pct(k.median_abs) << ", within +/-15 % " << pct(k.within_15) << "\n";
  }
  io.out << "noise floor (same shapes, pass A vs pass B of this run, all " << noise.n << " kernels): median "
         << pct(noise.median_abs) << ", 90th percentile " << pct(noise.p90_abs) << "\n";
  io.out << "energy: " << (rapl_readable() ? "RAPL readable (not used yet)" : "no readable RAPL counters: datasheet model")
         << "; measured in " << format_number(took.count(), 3) << " s\n";

  // --- the hardware entry and its raw data ------------------------------------------------
  std::error_code ec;
  const std::filesystem::path made = first_missing(out_dir);  // removed again if the entry is refused
  std::filesystem::create_directories(out_dir, ec);
  // A group's GEMM rate: the fitted asymptote, unless the fit put (nearly) all of the time into the
  // fixed cost (a quick run on a slow or noisy host: a -> 0, a rate beyond any measured one), in
  // which case the best FLOPs / time measured in the group, as a benchmark would report it. The
  // asymptote of a sound fit lies within a few times the best measured rate (the largest shapes
  // run near it); 4x is the bound.
  std::map<std::string, bool> rate_direct;
  const auto rate = [&](const char* group) {
    if (!fits.count(group)) return 0.0;
    double best = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].group() == group && t_all[i] > 0) best = std::max(best, specs[i].flops() / t_all[i]);
    }
    const double fitted = fits[group].rate();
    if (std::isfinite(fitted) && fitted > 0 && fitted <= 4 * best) return fitted;
    rate_direct[group] = best > 0;
    return best;
  };
  const auto finite = [](double x, double otherwise) { return std::isfinite(x) ? x : otherwise; };
  // Main-memory bandwidth: the STREAM add's fitted rate beyond the caches; where the fit could not
  // tell it from the fixed cost (a quick or very noisy run: rate 0 or infinite), the bytes over the
  // time of the largest STREAM add measured, as STREAM itself reports it.
  double bandwidth = fits.count("stream/f32") && fits["stream/f32"].roofline.memory_b() > 0
                         ? 1 / fits["stream/f32"].roofline.memory_b()
                         : 0.0;
  bool bandwidth_direct = false;
  if (!(bandwidth > 0) || !std::isfinite(bandwidth)) {
    double largest = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (specs[i].group() == "stream/f32" && specs[i].bytes() > largest && t_all[i] > 0) {
        largest = specs[i].bytes();
        bandwidth = largest / t_all[i];
        bandwidth_direct = true;
      }
    }
  }
  const double launch = fits.count("matmul/f32") ? std::max(0.0, finite(fits["matmul/f32"].overhead(), 0.0)) : 0.0;
  const std::string date = utc_now_iso8601().substr(0, 10);  // the entry's writing
  const std::string measured_on = measured_at.substr(0, 10);
  const std::string raw_name = id + ".h5";
  // Every number of the entry is finite: a NaN or infinity would be written as text that is not a
  // number (invalid YAML, or a catalog that refuses the entry), so it is an internal failure here.
  const auto entry_number = [](double x, int significant) {
    if (!std::isfinite(x)) throw std::runtime_error("calibrate: a fitted value of the entry is not finite");
    return format_number(x, significant);
  };
  std::ostringstream y;
  // The command that wrote it (since session 47, a review: a quick entry read like a full one).
  std::string command = "dlcarbon calibrate";
  for (const auto& a : args) command += " " + a;
  y << "# Written by `dlcarbon calibrate` (" << build_info::version() << ", " << build_info::git_sha() << ") on " << date
    << ".\n# Command: " << text::printable(command) << "\n# Measured on: " << machine.cpu << ", " << machine.threads << " threads, oneDNN " << machine.onednn << ", ISA "
    << machine.isa << ".\n# Held-out check: median |error| " << pct(stats.median_abs) << ", within +/-15 % "
    << pct(stats.within_15) << "; noise floor (pass A vs B) median " << pct(noise.median_abs) << ".\n"
    << "schema_version: 1\nhardware:\n  - id: " << id << "\n";
  if (!from_id.empty()) y << "    from: " << from_id << "\n";
  y << "    name: \"" << machine.cpu << " (" << machine.threads << " threads, measured)\"\n    kind: cpu\n    count_unit: device\n    peak:\n";
  // fp32 peak: the best sustained rate of any GEMM-like kernel (matmul or convolution in either
  // layout); the efficiencies below are relative to it.
  const double peak32 = std::max({rate("matmul/f32"), rate("conv/f32/nchw"), rate("conv/f32/nhwc")});
  y << "      fp32: \"" << entry_number(peak32, 6) << " FLOP/s\"\n";
  // One GEMM efficiency serves every dtype: scale the 16- and 8-bit peaks so that peak x
  // efficiency is the measured matmul rate.
  if (!(peak32 > 0)) throw std::runtime_error("calibrate: no matmul or convolution was timed, so the entry has no fp32 peak");
  const double gemm_eff = rate("matmul/f32") > 0 ? rate("matmul/f32") / peak32 : 1;
  if (rate("matmul/bf16") > 0) y << "      bf16: \"" << entry_number(rate("matmul/bf16") / gemm_eff, 6) << " FLOP/s\"\n";
  if (rate("matmul/s8") > 0) y << "      int8: \"" << entry_number(rate("matmul/s8") / gemm_eff, 6) << " FLOP/s\"\n";
  if (bandwidth > 0 && std::isfinite(bandwidth)) {
    // Whether any STREAM working set reached main memory: where every one fits in the last cache
    // level, the rate is that level's (since session 47, a review: a quick run on a CPU with a
    // 480 MiB L3 wrote its L3 rate as the memory bandwidth, unsaid).
    // (The calibration shapes the rate was fitted on, or the one it was taken from: not the
    // held-out ones.)
    double largest_stream = 0;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const auto& s = specs[i];
      if (s.group() != "stream/f32") continue;
      if (bandwidth_direct ? t_all[i] > 0 : s.role == calibrate::Role::calibrate) largest_stream = std::max(largest_stream, s.bytes());
    }
    const bool in_cache = !machine.levels.empty() && largest_stream <= machine.levels.back();
    y << "    memory_bandwidth: \"" << entry_number(bandwidth, 6) << " B/s\""
      << (bandwidth_direct ? "  # the largest STREAM add's bytes / time: the fit could not separate it from the fixed cost" : "")
      << (in_cache ? "  # every STREAM working set (at most " + format_number(largest_stream / 1048576, 4) +
                         " MiB) fits in the last cache level: a cache rate, not main memory's"
                   : std::string())
      << "\n";
  } else if (from_id.empty()) {
    throw std::runtime_error("calibrate: no STREAM add was measured, so the entry has no memory bandwidth");
  }
  if (tdp_w > 0) y << "    tdp: \"" << entry_number(tdp_w, 6) << " W\"\n";
  else if (from_id.empty()) y << "    tdp: \"" << entry_number(4.4 * machine.threads, 4) << " W\"  # assumed: 4.4 W per thread (Green Algorithms' per-core figure for AMD EPYC, taken for this CPU)\n";
  y << "    efficiency:\n      gemm: " << entry_number(gemm_eff, 4)
    << "\n      memory: 1\n      launch: \"" << entry_number(launch, 6) << " s\"\n";
  // Convolutions per layout, as a fraction of the fp32 matmul ceiling (the hidden cost of a layout).
  for (const char* layout : {"nchw", "nhwc"}) {
    const std::string g = std::string("conv/f32/") + layout;
    if (rate(g.c_str()) > 0) y << "      conv_" << layout << ": " << entry_number(rate(g.c_str()) / peak32, 4) << "\n";
  }
  // How GEMM efficiency falls with small dimensions (the f32 matmul's shape fit, where chosen).
  if (fits.count("matmul/f32") && fits["matmul/f32"].shape && !rate_direct.count("matmul/f32") &&
      std::isfinite(fits["matmul/f32"].shape->m0_equivalent()) && std::isfinite(fits["matmul/f32"].shape->n0) &&
      std::isfinite(fits["matmul/f32"].shape->k0)) {
    const auto& sh = *fits["matmul/f32"].shape;
    // m0 charges the weights at the main-memory rate: left out where no calibration shape's weights
    // came from memory (a quick run's; it would be a 0 nothing measured, since session 35).
    const bool m_known = sh.levels.empty() || sh.memory_sampled;
    y << "      gemm_shape: {" << (m_known ? "m: " + entry_number(sh.m0_equivalent(), 4) + ", " : std::string()) << "n: "
      << entry_number(sh.n0, 4) << ", k: " << entry_number(sh.k0, 4) << "}\n";
  }
  y << "      source: \"measured: peaks are fitted asymptotic rates (fp32: the best of matmul and convolution; bf16 "
       "and int8: matmul, scaled by the GEMM efficiency), efficiencies relative to them, the bandwidth that of "
       "a STREAM-style add; raw data in " << raw_name;
  std::string direct;
  for (const auto& [group, used] : rate_direct) {
    if (used) direct += (direct.empty() ? "" : ", ") + group;
  }
  if (!direct.empty()) y << "; " << direct << ": the best FLOPs / time measured (the fit could not separate the rate from the fixed cost)";
  y << "\"\n";
  y << "    source: \"dlcarbon calibrate on " << measured_on << ", " << machine.cpu << ", " << machine.threads << " threads, oneDNN "
    << machine.onednn << "\"\n";
  y << "    notes: >-\n      Per-group fits (rate GFLOP/s, bandwidth GB/s, overhead us):";
  // "-" where a group's model has no such term (since session 45, a review: memory-bound groups
  // had printed a rate "inf" and convolutions, fitted on compute alone, a "bandwidth" of 3.8e4
  // GB/s); a GEMM shape model's bandwidth is that of its weights beyond the caches, and a rate the
  // entry took as the best measured (above) is printed as taken.
  const auto shown = [](double x, int significant) {
    return std::isfinite(x) && x > 0 ? format_number(x, significant) : std::string("-");
  };
  for (const auto& [group, g] : fits) {
    const bool compute_only = group.rfind("conv/", 0) == 0;
    const bool memory_only = std::isinf(g.rate());
    const double rate_used = rate_direct.count(group) && rate_direct.at(group) ? rate(group.c_str()) : g.rate();
    const double time_per_byte = g.shape && !g.shape->w.empty() ? g.shape->w.back() : g.roofline.memory_b();
    y << " " << group << " " << (memory_only ? "-" : shown(rate_used / 1e9, 4)) << "/"
      << (compute_only ? "-" : shown(1 / time_per_byte / 1e9, 4)) << "/" << format_number(g.overhead() * 1e6, 3)
      << (g.shape ? " (shape model)" : "") << ";";
  }
  y << " energy: " << (rapl_readable() ? "RAPL readable" : "no readable RAPL, datasheet model") << ".\n";
  const std::filesystem::path entry = out_dir / (id + ".yaml");
  const std::string tmp = entry.string() + ".tmp";
  {
    std::ofstream file(tmp);
    file << y.str();
    file.close();
    if (!file) {
      const int write_errno = errno;
      std::filesystem::remove(tmp, ec);
      if (!made.empty()) std::filesystem::remove_all(made, ec);
      throw OutputError("cannot write " + tmp + ": " + std::strerror(write_errno != 0 ? write_errno : EIO));
    }
    // Read as the catalog will read it (since session 38, a review: a --tdp below the idle power
    // of its --from entry was written, and every later command refused the catalog).
    try {
      (void)check_hardware_entry(id, tmp, entry, entry_catalogs(data));
    } catch (const InputError& e) {
      std::filesystem::remove(tmp, ec);
      if (!made.empty()) std::filesystem::remove_all(made, ec);
      io.err << "dlcarbon calibrate: the fitted entry would be refused, so nothing was written: " << entry_refusal(e) << "\n";
      return kBadInput;
    }
  }
  // The raw samples are written before the entry is moved into place: an entry never names raw data
  // that a failed write left out (since session 41, a review: the entry was renamed first).
  RunRecord raw;
  raw.dlcarbon_version = build_info::version();
  raw.git_sha = build_info::git_sha();
  raw.created = measured_at;
  // The round robin's order (a refit keeps the measured run's; since session 43, a review: 0 was
  // written whatever the seed).
  raw.seed = measured_seed;
  raw.scenario_name = "calibrate-" + id;
  raw.scenario_given = y.str();
  raw.scenario_resolved = y.str();
  std::vector<std::string> label, group, role;
  std::vector<double> flops, bytes, ta, tb, tall, pred;
  std::vector<std::int64_t> s_row, s_pass;
  std::vector<double> s_time;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    label.push_back(specs[i].label());
    group.push_back(specs[i].group());
    role.push_back(specs[i].role == calibrate::Role::check ? "check" : "calibrate");
    flops.push_back(specs[i].flops());
    bytes.push_back(specs[i].bytes());
    ta.push_back(t_a[i]);
    tb.push_back(t_b[i]);
    tall.push_back(t_all[i]);
    pred.push_back(predicted[i]);
    const auto row = static_cast<std::int64_t>(i);
    for (const double t : m.pass_a[i]) { s_row.push_back(row); s_pass.push_back(0); s_time.push_back(t); }
    for (const double t : m.pass_b[i]) { s_row.push_back(row); s_pass.push_back(1); s_time.push_back(t); }
  }
  raw.tables.push_back(Table{"calibration/kernels",
                             {Column{"kernel", "", label}, Column{"group", "", group}, Column{"role", "", role},
                              Column{"flops", "FLOP", flops}, Column{"bytes", "B", bytes}, Column{"time_pass_a", "s", ta},
                              Column{"time_pass_b", "s", tb}, Column{"time", "s", tall}, Column{"predicted", "s", pred}}});
  machine.tdp_w = tdp_w;
  machine.from = from_id;
  raw.tables.push_back(machine_table(machine));
  raw.tables.push_back(Table{"calibration/samples",
                             {Column{"kernel_row", "1", s_row}, Column{"pass", "1", s_pass}, Column{"time", "s", s_time}}});
  // A refit that writes beside its own raw file keeps that file as it is: rewriting it would drop
  // the samples of shapes this build no longer has.
  std::error_code same_ec;
  const bool over_source = vm.count("refit") && std::filesystem::equivalent(out_dir / raw_name, refit_file, same_ec);
  if (!calibrate::place_entry(tmp, entry, [&] {
        if (!over_source) write_run(out_dir / raw_name, raw);
      })) {
    throw OutputError("cannot rename " + tmp + " to " + entry.string());
  }
  io.out << "wrote " << entry.string() << (over_source ? "; its raw samples stay in " : " and ") << (out_dir / raw_name).string()
         << "\n";
  return kOk;
}

}  // namespace dlcarbon::cli
