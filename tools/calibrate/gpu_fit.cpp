// The host half of the GPU calibration: CSV in and out, fits, report and hardware entry
// (gpu_fit.hpp, docs/calibration.md "GPU").
#include "gpu_fit.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <ostream>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

namespace dlcarbon::calibrate {

namespace {

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  bool quoted = false;
  for (const char ch : line) {
    if (ch == '"') {
      quoted = !quoted;
    } else if (ch == ',' && !quoted) {
      out.push_back(cell);
      cell.clear();
    } else {
      cell += ch;
    }
  }
  out.push_back(cell);
  return out;
}

// `what`: the column or key, for the message (since session 41, a review: a cell that is no
// number was reported as "stod").
double number(const std::string& s, const std::string& what) {
  if (s == "nan" || s == "-nan" || s.empty()) return NAN;
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::invalid_argument&) {
    used = 0;
  }
  if (used != s.size() || std::isinf(v)) throw std::invalid_argument(what + ": expected a finite number, got \"" + s + "\"");
  return v;
}

// The share of a working set of `bytes` that comes from memory rather than an L2 of capacity
// `l2` (the blended levels of docs/calibration.md).
double memory_share(double l2, double bytes) { return level_shares({l2}, bytes).back(); }

// printf into a string (the report's aligned columns).
template <class... Args>
std::string format(const char* f, Args... args) {
  const int n = std::snprintf(nullptr, 0, f, args...);
  std::string out(static_cast<std::size_t>(std::max(n, 0)) + 1, '\0');
  std::snprintf(out.data(), out.size(), f, args...);
  out.pop_back();
  return out;
}

const char* kHeader = "kernel,group,role,flops,bytes,time_pass_a_s,time_pass_b_s,time_s,time_sustained_s,energy_j";

}  // namespace

KernelSpec parse_gpu_label(const std::string& label) {
  std::istringstream in(label);
  KernelSpec s;
  std::string shape, rest;
  if (!(in >> s.kind >> s.dtype >> shape) || (in >> rest)) throw std::invalid_argument("not a GPU kernel label: " + label);
  if (s.kind == "matmul") {
    char x1 = 0, x2 = 0;
    std::istringstream dims(shape);
    if (!(dims >> s.m >> x1 >> s.n >> x2 >> s.k) || x1 != 'x' || x2 != 'x' || s.m <= 0 || s.n <= 0 || s.k <= 0 ||
        (dims >> rest)) {
      throw std::invalid_argument("not a matmul shape: " + label);
    }
  } else if (s.kind == "copy") {
    std::size_t used = 0;
    s.elements = std::stoll(shape, &used);
    if (used != shape.size() || s.elements <= 0) throw std::invalid_argument("not a copy size: " + label);
  } else {
    throw std::invalid_argument("not a GPU kernel kind: " + label);
  }
  if (s.dtype != "f32" && s.dtype != "tf32" && s.dtype != "f16" && s.dtype != "bf16") {
    throw std::invalid_argument("not a GPU data type: " + label);
  }
  return s;
}

void write_gpu_csv(const GpuMeasurements& m, const std::filesystem::path& path) {
  std::ofstream csv(path);
  csv.precision(9);
  csv << "# device: " << m.device.name << "; l2_bytes: " << m.device.l2_bytes << "; memory_bytes: " << m.device.memory_bytes
      << "; idle_w: " << m.device.idle_w << (m.device.measured.empty() ? "" : "; measured: " + m.device.measured)
      << (m.device.from.empty() ? "" : "; from: " + m.device.from) << "\n"
      << kHeader << "\n";
  for (std::size_t i = 0; i < m.specs.size(); ++i) {
    const auto& s = m.specs[i];
    csv << '"' << s.label() << "\"," << s.group() << "," << (s.role == Role::check ? "check" : "calibrate") << ","
        << s.flops() << "," << s.bytes() << "," << m.t_a[i] << "," << m.t_b[i] << "," << m.t[i] << "," << m.t_sustained[i]
        << "," << m.energy[i] << "\n";
  }
}

GpuMeasurements read_gpu_csv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path.string() + ": cannot read");
  GpuMeasurements m;
  std::string line;
  int number_of_line = 0;
  const auto fail = [&](const std::string& why) {
    throw std::runtime_error(path.string() + ":" + std::to_string(number_of_line) + ": " + why);
  };
  bool header = false;
  int device_line = 0;
  std::map<std::string, int> first_line;  // kernel label -> its row's line
  while (std::getline(in, line)) {
    ++number_of_line;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // a file saved with CRLF line ends
    if (number_of_line == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte order mark
    if (line.empty()) continue;
    if (line.rfind("# device: ", 0) == 0) {
      device_line = number_of_line;
      std::istringstream fields(line.substr(10));
      std::string field;
      while (std::getline(fields, field, ';')) {
        const auto colon = field.find(':');
        if (colon == std::string::npos) {
          if (!m.device.name.empty()) fail("device field without a colon: " + field);
          m.device.name = field.substr(std::min(field.size(), field.find_first_not_of(' ')));
          continue;
        }
        auto key = field.substr(0, colon), value = field.substr(colon + 1);
        key.erase(0, key.find_first_not_of(' '));
        value.erase(0, value.find_first_not_of(' '));
        try {
          if (key == "l2_bytes") m.device.l2_bytes = number(value, key);
          else if (key == "memory_bytes") m.device.memory_bytes = number(value, key);
          else if (key == "idle_w") m.device.idle_w = number(value, key);
          else if (key == "measured") m.device.measured = value;
          else if (key == "from") m.device.from = value;
          else fail("unknown device field: " + key);
        } catch (const std::logic_error&) {  // invalid_argument, out_of_range
          fail("device field " + key + " is not a number: " + value);
        }
      }
      continue;
    }
    if (line[0] == '#') continue;
    if (!header) {
      if (line != kHeader) fail(std::string("expected the header ") + kHeader);
      header = true;
      continue;
    }
    const auto cells = split_csv(line);
    if (cells.size() != 10) fail("expected 10 columns, found " + std::to_string(cells.size()));
    try {
      KernelSpec s = parse_gpu_label(cells[0]);
      if (cells[2] != "calibrate" && cells[2] != "check") fail("role must be calibrate or check: " + cells[2]);
      s.role = cells[2] == "check" ? Role::check : Role::calibrate;
      if (s.group() != cells[1]) fail("group " + cells[1] + " does not match the kernel " + cells[0]);
      m.specs.push_back(s);
      // A cell is named by its column's number and name (since session 45).
      const auto cell = [&](std::size_t i, const char* name) { return number(cells[i], "column " + std::to_string(i + 1) + " (" + name + ")"); };
      m.t_a.push_back(cell(5, "time_pass_a_s"));
      m.t_b.push_back(cell(6, "time_pass_b_s"));
      m.t.push_back(cell(7, "time_s"));
      m.t_sustained.push_back(cell(8, "time_sustained_s"));
      m.energy.push_back(cell(9, "energy_j"));
      // A kernel measured twice (a row pasted again) would weigh its shape twice in the fit
      // (since session 45, a review: a duplicated row moved the fp32 rate by 0.2 %).
      if (const auto [at, fresh] = first_line.emplace(cells[0], number_of_line); !fresh) {
        fail("kernel " + cells[0] + " is measured twice (first at line " + std::to_string(at->second) + ")");
      }
    } catch (const std::out_of_range&) {
      fail("a number out of range in: " + line);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    if (!(m.t.back() > 0)) fail("time_s must be a positive number");
    // The passes' times feed the noise floor (a NaN there reached std::sort); an energy is
    // measured (> 0) or not (nan), never 0 or negative, which made the energy fit NaN and wrote
    // "-nan pJ" into the entry (since session 35, from a review).
    if (!(m.t_a.back() > 0) || !(m.t_b.back() > 0)) fail("time_pass_a_s and time_pass_b_s must be positive numbers");
    if (!std::isnan(m.t_sustained.back()) && !(m.t_sustained.back() > 0)) fail("time_sustained_s must be a positive number (or nan)");
    if (!std::isnan(m.energy.back()) && !(m.energy.back() > 0)) fail("energy_j must be a positive number (or nan: not measured)");
  }
  if (number_of_line == 0) {
    number_of_line = 1;
    fail("the file is empty (expected the device line and the header)");
  }
  if (!header) fail("no header line");
  // The device line's figures are named at that line (since session 42, a review: a memory size
  // past the range of a whole number of bytes was written as a negative one and refused in the
  // entry, naming the entry, not the CSV).
  // A missing device line is named at line 1, where it belongs (since session 45: the last line).
  number_of_line = device_line > 0 ? device_line : 1;
  if (!(m.device.l2_bytes > 0) || !(m.device.l2_bytes < 1e15)) {
    fail("the device line (# device: NAME; l2_bytes: ...) is missing or has no L2 size (bytes, above 0 and below 1e15)");
  }
  if (!(m.device.memory_bytes >= 0 && m.device.memory_bytes < 1e18)) {
    fail("memory_bytes must be a number of bytes from 0 (not recorded) to below 1e18");
  }
  if (!std::isnan(m.device.idle_w) && !(m.device.idle_w < 1e6)) fail("idle_w must be a power in W below 1e6 (or nan)");
  return m;
}

GpuFit fit_gpu(const GpuMeasurements& m, const std::string& id, const GpuDatasheet* datasheet,
               const std::filesystem::path& out, std::ostream& log, const EntryCheck& check, const std::string& raw) {
  const auto& specs = m.specs;
  const auto& t = m.t;
  GpuFit result;
  const double l2_nominal = m.device.l2_bytes;
  // Copies: the blended levels of the CPU calibration (L2, then memory), with L2's effective
  // capacity chosen between its nominal size and 1/16 of it, in quarter-octave steps, by the
  // calibration error of the copies alone (a working set near the nominal size is not held whole:
  // the H100's L2 is two partitions).
  std::vector<double> copy_b, copy_t;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].kind == "copy" && specs[i].role == Role::calibrate) {
      copy_b.push_back(specs[i].bytes());
      copy_t.push_back(t[i]);
    }
  }
  double l2_effective = l2_nominal, best_copy = INFINITY;
  for (int j = 0; j <= 16 && copy_b.size() >= 3; ++j) {
    const double cap = l2_nominal * std::pow(2.0, -0.25 * j);
    const RooflineFit f = fit_memory_blend(copy_b, copy_t, {cap});
    double e = 0;
    for (std::size_t q = 0; q < copy_b.size(); ++q) e += std::pow(f.predict(0, copy_b[q]) / copy_t[q] - 1, 2);
    if (e < best_copy * (1 - 1e-9)) {
      best_copy = e;
      l2_effective = cap;
    }
  }
  result.l2_effective = l2_effective;
  log << format("L2: %.1f MiB nominal, %.1f MiB effective for copies\n", l2_nominal / 1048576, l2_effective / 1048576);

  // Time: per group on calibration shapes. GEMMs: the shape model of the CPU calibration, the
  // weights streamed from L2 or from memory, t = a F (1 + n0/n + k0/k) + W sum_l w_l share_l(W) + c.
  const std::vector<double> l2{l2_nominal};
  std::map<std::string, RooflineFit> fits;
  std::map<std::string, GemmShapeFit> shapes;
  std::map<std::string, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < specs.size(); ++i) groups[specs[i].group()].push_back(i);
  for (const auto& [group, members] : groups) {
    std::vector<std::size_t> cal;
    for (const auto i : members) {
      if (specs[i].role == Role::calibrate) cal.push_back(i);
    }
    if (cal.size() < 2) {
      // Said, not dropped (since session 47, a review: its held-out kernels were counted as NaN).
      log << format("%s: %zu calibration shape%s, too few to fit: no entry figures from it\n", group.c_str(), cal.size(),
                   cal.size() == 1 ? "" : "s");
      continue;
    }
    const auto [F, B, T, M, N, K, gemm] = group_samples(specs, t, cal);
    fits[group] = specs[members.front()].kind == "copy" ? fit_memory_blend(B, T, {l2_effective}) : fit_roofline(F, B, T, l2);
    if (gemm && !T.empty()) {
      const GemmShapeFit shape = fit_gemm_shape(M, N, K, T, l2, element_bytes(specs[members.front()].dtype));
      if (!(shape.a > 0)) {
        // (Since session 47: fewer shapes than the shape model's unknowns, a quick run's.)
        log << format("%s: %zu calibration shapes, fewer than the shape model's unknowns: its plain roofline, no gemm_shape\n",
                     group.c_str(), T.size());
      }
      if (shape.a > 0) {
        shapes[group] = shape;
        fits[group].a = shape.a;  // the asymptotic rate is the entry's peak
        fits[group].c = shape.c;
      }
    }
  }
  const auto predict = [&](const KernelSpec& s) {
    double mm = 0, n = 0, k = 0;
    if (const auto it = shapes.find(s.group()); it != shapes.end() && gemm_dims(s, mm, n, k)) return it->second.predict(mm, n, k);
    if (const auto it = fits.find(s.group()); it != fits.end()) return it->second.predict(s.flops(), s.bytes());
    return std::nan("");
  };
  std::vector<double> errors, noise;
  log << format("\nheld-out kernel                              measured    predicted   error   repeatability\n");
  for (std::size_t i = 0; i < specs.size(); ++i) {
    result.predicted.push_back(predict(specs[i]));
    noise.push_back(m.t_a[i] / m.t_b[i] - 1);
    if (specs[i].role != Role::check) continue;
    if (!std::isfinite(result.predicted.back())) {
      log << format("%-44s %9.2f us    (no fit for its group: not counted)\n", specs[i].label().c_str(), t[i] * 1e6);
      continue;
    }
    errors.push_back(result.predicted.back() / t[i] - 1);
    log << format("%-44s %9.2f us %9.2f us %+6.1f%% %+6.1f%%\n", specs[i].label().c_str(), t[i] * 1e6,
                 result.predicted.back() * 1e6, 100 * errors.back(), 100 * noise.back());
  }
  result.time = error_stats(errors);
  result.noise = error_stats(noise);
  log << format("\nheld-out: %zu kernels, median |error| %.1f%%, p90 %.1f%%, within 10%% %.0f%%, within 15%% %.0f%%; "
               "noise floor (pass A vs B) median %.1f%%\n",
               result.time.n, 100 * result.time.median_abs, 100 * result.time.p90_abs, 100 * result.time.within_10,
               100 * result.time.within_15, 100 * result.noise.median_abs);

  // Energy roofline E = F e_flop + B_mem e_byte + P_static t from the bf16 GEMMs (tensor-core
  // FLOPs: fp32 FLOPs on the CUDA cores cost several times more each) and the copies, over their
  // sustained runs. B_mem is the share of the bytes that comes from memory (the effective L2
  // above): a copy held in L2 draws 160-360 W where one streaming from HBM draws 610 W, and one
  // e_byte over all bytes fitted neither (session 29: energy median |error| 18 % -> 9 %).
  // The tensor-core GEMMs: bf16 where the part has them, else fp16 (V100, P100; since session 42
  // such a run had been given no energy roofline and a launch cost of 0).
  const std::string tensor = fits.count("matmul/bf16") && fits["matmul/bf16"].a > 0 ? "matmul/bf16" : "matmul/f16";
  const std::string tensor_dtype = tensor == "matmul/bf16" ? "bf16" : "fp16";
  const auto energy_kernel = [&](std::size_t i) {
    return (specs[i].group() == tensor || specs[i].kind == "copy") && std::isfinite(m.energy[i]) &&
           std::isfinite(m.t_sustained[i]) && m.t_sustained[i] > 0;
  };
  std::vector<double> F, B, T, E;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].role != Role::calibrate || !energy_kernel(i)) continue;
    F.push_back(specs[i].flops());
    B.push_back(specs[i].bytes() * memory_share(l2_effective, specs[i].bytes()));
    T.push_back(m.t_sustained[i]);
    E.push_back(m.energy[i]);
  }
  const bool have_energy = F.size() >= 3;
  if (!have_energy) {
    // (Since session 47, a review: an entry without an energy roofline was written unsaid.)
    log << format("\nenergy: %zu sustained samples with energy (3 needed): no energy roofline; the entry keeps the "
                 "datasheet's energy model\n", F.size());
  }
  if (have_energy) {
    result.energy_roofline = fit_energy(F, B, T, E);
    const auto& ef = result.energy_roofline;
    log << format("\nenergy (sustained, ~0.5 s back to back)    round-robin  sustained    power  measured  predicted  error\n");
    std::vector<double> energy_errors;
    for (std::size_t i = 0; i < specs.size(); ++i) {
      if (!energy_kernel(i)) continue;
      const double b_mem = specs[i].bytes() * memory_share(l2_effective, specs[i].bytes());
      const double p = ef.predict(specs[i].flops(), b_mem, m.t_sustained[i]);
      if (specs[i].role == Role::check) energy_errors.push_back(p / m.energy[i] - 1);
      log << format("%-44s %9.2f us %9.2f us %6.0f W %8.4g J %8.4g J %+5.0f%%%s\n", specs[i].label().c_str(),
                   t[i] * 1e6, m.t_sustained[i] * 1e6, m.energy[i] / m.t_sustained[i], m.energy[i], p,
                   100 * (p / m.energy[i] - 1), specs[i].role == Role::check ? " (held out)" : "");
    }
    result.energy = error_stats(energy_errors);
    log << format("energy roofline: e_flop %.3g pJ/FLOP (%s), e_byte %.3g pJ/B (from memory), static %.1f W, idle %.1f W; "
                 "held-out energy: %zu kernels, median |error| %.1f%%\n",
                 ef.e_flop * 1e12, tensor_dtype.c_str(), ef.e_byte * 1e12, ef.static_w, m.device.idle_w, result.energy.n,
                 100 * result.energy.median_abs);
  }

  if (datasheet == nullptr) return result;

  // The hardware entry, relative to the datasheet entry it refines (`from`): the measured rates as
  // fractions of the datasheet's peaks and bandwidth, so that what the entry inherits from it
  // (framework kernels' and fused attention's fractions, the node) stays a fraction of the same
  // peaks, and MFU keeps its datasheet denominator.
  const auto rate = [&](const char* g) { return fits.count(g) && fits[g].a > 0 ? 1 / fits[g].a : 0.0; };
  const auto measured_share = [&](const char* group, const char* dtype) {
    const auto it = datasheet->peak.find(dtype);
    if (it == datasheet->peak.end() || !(it->second > 0) || !(rate(group) > 0)) return 0.0;
    return rate(group) / it->second;
  };
  const std::pair<const char*, const char*> products[] = {
      {"matmul/bf16", "bf16"}, {"matmul/f16", "fp16"}, {"matmul/tf32", "tf32"}, {"matmul/f32", "fp32"}};
  // Far above the datasheet's peak, the part measured is not the one the entry refines (an H200's
  // run refitted --from an A100 measured 2.5 times its peak): nothing is written, checked for every
  // precision before the entry is opened (since session 36; before, every fraction was clamped to
  // 1). A little above is a boost clock.
  for (const auto& [group, dtype] : products) {
    if (const double f = measured_share(group, dtype); f > 1.1) {
      throw std::runtime_error(format("%s measured at %.4g TFLOP/s, %.2f times %s's %s peak (%.4g): the run is not of that "
                                      "part; name its datasheet entry with --from",
                                      group, rate(group) / 1e12, f, datasheet->id.c_str(), dtype,
                                      datasheet->peak.at(dtype) / 1e12));
    }
  }
  const auto fraction = [&](const char* group, const char* dtype) {
    const double f = measured_share(group, dtype);
    if (f > 1) {
      log << format("note: %s measured at %.4g TFLOP/s, above %s's %s peak (%.4g): written as 1\n", group, rate(group) / 1e12,
                    datasheet->id.c_str(), dtype, datasheet->peak.at(dtype) / 1e12);
    }
    return std::min(1.0, f);
  };
  // The headline ceiling: bf16 where the datasheet has it, else fp16 (V100, P100).
  const bool bf16_headline = fraction("matmul/bf16", "bf16") > 0;
  const double headline = bf16_headline ? fraction("matmul/bf16", "bf16") : fraction("matmul/f16", "fp16");
  const double bandwidth = fits.count("copy/f32") && fits["copy/f32"].memory_b() > 0 ? 1 / fits["copy/f32"].memory_b() : 0.0;
  // An entry needs its headline GEMM rate and its memory bandwidth: samples without them (a CSV
  // cut to its header, one kernel) had written an entry the catalog refuses (since session 36).
  if (!(headline > 0) || !(bandwidth > 0)) {
    throw std::runtime_error(std::string("the samples fit no ") + (headline > 0 ? "" : "bf16 or fp16 GEMM rate") +
                             (headline > 0 || bandwidth > 0 ? "" : " and no ") + (bandwidth > 0 ? "" : "copy bandwidth") +
                             ": nothing to write (a calibration run measures both)");
  }
  // Copies far above the datasheet's bandwidth are not of that part either; a little above is
  // said and written as 1 (since session 42 both; before, any excess was clamped silently).
  if (datasheet->bandwidth > 0 && bandwidth > 1.1 * datasheet->bandwidth) {
    throw std::runtime_error(format("copies measured at %.4g TB/s, %.2f times %s's bandwidth (%.4g TB/s): the run is not of "
                                    "that part; name its datasheet entry with --from",
                                    bandwidth / 1e12, bandwidth / datasheet->bandwidth, datasheet->id.c_str(),
                                    datasheet->bandwidth / 1e12));
  }
  if (datasheet->bandwidth > 0 && bandwidth > datasheet->bandwidth) {
    log << format("note: copies measured at %.4g TB/s, above %s's bandwidth (%.4g TB/s): written as 1\n", bandwidth / 1e12,
                  datasheet->id.c_str(), datasheet->bandwidth / 1e12);
  }
  std::filesystem::create_directories(out);
  // Written beside its place and renamed once whole and checked (since session 38: a partial or
  // refused entry had been left in the folder, in the catalog's own one too).
  const std::filesystem::path entry = out / (id + ".yaml");
  const std::filesystem::path tmp = out / (id + ".yaml.tmp");
  std::ofstream y(tmp);
  y.precision(6);
  // The raw CSV's name: the id's unless the refit gave another id (since session 42, a review: an
  // entry refitted under --id named a raw file that does not exist).
  const std::string raw_csv = raw.empty() ? id + ".csv" : raw;
  y << "# Fitted by `dlcarbon calibrate --refit " << raw_csv << "` from kernels measured on " << m.device.name
    << " by dlcarbon-calibrate-gpu; held-out time median |error| " << 100 * result.time.median_abs << " %, within 15 %: "
    << 100 * result.time.within_15 << " %; noise floor " << 100 * result.noise.median_abs << " %";
  if (have_energy) y << "; held-out energy median |error| " << 100 * result.energy.median_abs << " %";
  y << ".\n# Measured: bf16 " << rate("matmul/bf16") / 1e12 << " TFLOP/s, fp16 " << rate("matmul/f16") / 1e12 << ", tf32 "
    << rate("matmul/tf32") / 1e12 << ", fp32 " << rate("matmul/f32") / 1e12 << " (round robin); copies " << bandwidth / 1e12
    << " TB/s from memory.\nschema_version: 1\nhardware:\n  - id: " << id << "\n    from: " << datasheet->id << "\n"
    << "    name: \"" << m.device.name << " (measured)\"\n";
  if (m.device.memory_bytes > 0) y << "    memory: \"" << static_cast<long long>(m.device.memory_bytes) << " B\"\n";
  if (m.device.idle_w >= 0) y << "    idle_power: \"" << m.device.idle_w << " W\"\n";
  y << "    efficiency:\n";
  if (headline > 0) y << "      gemm: " << headline << "\n";
  if (bandwidth > 0 && datasheet->bandwidth > 0) y << "      memory: " << std::min(1.0, bandwidth / datasheet->bandwidth) << "\n";
  y << "      launch: \"" << (fits.count(tensor) ? fits[tensor].c : 0.0) << " s\"\n";
  if (shapes.count(tensor) && !datasheet->wave_quantised) {
    // How GEMM efficiency falls with small dimensions (the tensor-core fit; m charges the weights at the
    // memory rate, docs/calibration.md). Left out where the datasheet entry has an SM count: its
    // tile and wave quantisation already is the shape model, and both would count the same loss.
    const auto& sh = shapes[tensor];
    y << "      gemm_shape: {m: " << sh.m0_equivalent() << ", n: " << sh.n0 << ", k: " << sh.k0 << "}\n";
  }
  y << "      precision:\n";
  for (const auto& [group, dtype] : {std::pair{"matmul/f32", "fp32"}, std::pair{"matmul/tf32", "tf32"}, std::pair{"matmul/f16", "fp16"}}) {
    if (!bf16_headline && std::string(dtype) == "fp16") continue;  // the headline already
    if (fraction(group, dtype) > 0) y << "        " << dtype << ": {gemm: " << fraction(group, dtype) << "}\n";
  }
  y << "      source: \"measured by dlcarbon-calibrate-gpu (cuBLAS GemmEx, device copies, round robin), as fractions of "
    << datasheet->id << "'s peaks and bandwidth; raw data in " << raw_csv << "\"\n";
  const auto& fitted = result.energy_roofline;
  // A fit that came out not a number (degenerate samples) is left out of the entry, said in the
  // log, rather than written as "nan pJ" the catalog refuses.
  // So is one that the catalog refuses as physics: no static power, or work that costs nothing.
  const bool energy_ok = std::isfinite(fitted.e_flop) && std::isfinite(fitted.e_byte) && std::isfinite(fitted.static_w) &&
                         fitted.static_w > 0 && (fitted.e_flop > 0 || fitted.e_byte > 0);
  if (have_energy && !energy_ok) {
    log << "energy roofline: the fit is not a number, or has no static power or no energy for the work; the entry keeps "
           "the datasheet energy model\n";
  }
  if (have_energy && energy_ok) {
    const auto& ef = result.energy_roofline;
    y << "    energy_roofline:\n      e_flop: \"" << ef.e_flop * 1e12 << " pJ\"\n      e_byte: \"" << ef.e_byte * 1e12
      << " pJ\"\n      static_power: \"" << ef.static_w << " W\"\n      source: \"NVML total-energy counter around ~0.5 s of each "
      << tensor_dtype << " GEMM and copy of the calibration set, back to back (dlcarbon-calibrate-gpu); e_flop per " << tensor_dtype
      << " FLOP, e_byte per "
      << "byte from memory (beyond an effective L2 of " << l2_effective / 1048576 << " MiB)\"\n";
  }
  y << "    source: \"dlcarbon-calibrate-gpu, " << m.device.name
    << (m.device.measured.empty() ? std::string() : ", measured " + m.device.measured) << "; raw data " << raw_csv << "\"\n";
  y.close();
  const int write_errno = errno;
  std::error_code ec;
  if (!y) {
    std::filesystem::remove(tmp, ec);
    // A write that fails is the machine's, not the input's: exit 1 with the system's reason (since
    // session 43, a review: it had been bad input, exit 2, with no reason).
    throw std::filesystem::filesystem_error("cannot write the entry", tmp,
                                            std::error_code(write_errno != 0 ? write_errno : EIO, std::generic_category()));
  }
  if (!place_entry(tmp, entry, [&] {
        if (check) check(tmp, entry);
      })) {
    throw std::filesystem::filesystem_error("cannot rename the entry into place", tmp, entry,
                                            std::error_code(errno != 0 ? errno : EIO, std::generic_category()));
  }
  log << format("wrote %s\n", entry.c_str());
  return result;
}

bool place_entry(const std::filesystem::path& tmp, const std::filesystem::path& entry, const std::function<void()>& before) {
  std::error_code ec;
  try {
    before();
  } catch (...) {
    std::filesystem::remove(tmp, ec);
    throw;
  }
  std::filesystem::rename(tmp, entry, ec);
  if (!ec) return true;
  std::filesystem::remove(tmp, ec);
  return false;
}

}  // namespace dlcarbon::calibrate
