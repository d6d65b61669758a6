#include "dlcarbon/roofline.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <stdexcept>

namespace dlcarbon::hardware {

namespace {

// Datasheet defaults, used until a device is calibrated (issue 4). Each is documented with
// its basis in docs/hardware-model.md.
constexpr double kDefaultGemmEfficiency = 0.80;    // large dense GEMMs reach ~80 % of peak (MAMF: A100 86.9 %, H100 80.3 %)
constexpr double kDefaultMemoryEfficiency = 0.85;  // STREAM-like kernels reach ~85 % of HBM bandwidth
constexpr double kDefaultLaunchS = 5e-6;           // per kernel on a GPU/TPU
// Per primitive on a CPU: the launch term fitted to oneDNN's kernels on this project's build machine
// (data/hardware/measured/cpu-amd-epyc-2t.yaml, 0.948 us); taken for phone SoCs too [assumed: no
// per-op figure of a phone's runtime is stored] and NPUs. Since session 44, from a review: the GPU's 5 us
// had been a third of ResNet-50's int8 time on a phone.
constexpr double kDefaultCpuLaunchS = 9.4771e-7;
constexpr double kMemoryShareOfDynamic = 0.5;      // of TDP - P_static drawn by a stream at the achievable bandwidth

const char* fallback_for(const std::string& dtype) {
  if (dtype == "tf32") return "fp32";
  if (dtype == "bf16") return "fp16";
  if (dtype == "fp16") return "bf16";
  if (dtype == "fp8" || dtype == "int8") return "bf16";
  return nullptr;
}

double fastest_16bit(const DeviceModel& d) {
  double best = 0;
  for (const char* k : {"fp16", "bf16"}) {
    if (auto it = d.peak_flop_per_s.find(k); it != d.peak_flop_per_s.end()) best = std::max(best, it->second);
  }
  if (best == 0) {
    for (const auto& [dtype, rate] : d.peak_flop_per_s) best = std::max(best, rate);
  }
  return best;
}

}  // namespace

std::string DeviceModel::rate_precision(const std::string& dtype) const {
  std::string d = dtype;
  for (int hops = 0; hops < 3; ++hops) {
    if (peak_flop_per_s.count(d)) return d;
    const char* next = fallback_for(d);
    if (!next) break;
    if (d == "fp16" && next == std::string("bf16") && hops > 0) break;
    d = next;
  }
  if ((dtype == "fp16" || dtype == "bf16" || dtype == "fp8" || dtype == "int8") && peak_flop_per_s.count("fp32")) return "fp32";
  return "";
}

double DeviceModel::peak(const std::string& dtype) const {
  if (const auto it = peak_flop_per_s.find(dtype); it != peak_flop_per_s.end()) return it->second;  // (the usual case, op by op)
  if (const std::string d = rate_precision(dtype); !d.empty()) return peak_flop_per_s.at(d);
  if (dtype == "fp32" || dtype == "tf32") {
    // No fp32 figure (TPUs): matrix units emulate fp32 in several 16-bit passes; take a quarter of
    // the 16-bit rate. Not of an 8-bit one: a part that lists only int8 (a phone's NPU) says
    // nothing of its float rate (since session 43, a review: fp32 had run at a quarter of int8).
    double p16 = 0;
    for (const char* k : {"fp16", "bf16"}) {
      if (auto it = peak_flop_per_s.find(k); it != peak_flop_per_s.end()) p16 = std::max(p16, it->second);
    }
    if (p16 > 0) return p16 / 4;
  }
  throw std::invalid_argument("hardware " + id + " has no peak rate for " + dtype);
}

// The measured ceiling a product at `dtype` runs at: its own, or that of the precision whose rate it
// takes (tf32 at fp32's), else none (end()).
std::map<std::string, Hardware::GemmCeiling>::const_iterator DeviceModel::ceiling_entry(const std::string& dtype) const {
  auto it = gemm_by_precision.find(dtype);
  if (it == gemm_by_precision.end()) {
    if (const std::string from = rate_precision(dtype); !from.empty() && from != dtype) it = gemm_by_precision.find(from);
  }
  if (it == gemm_by_precision.end() && dtype == "tf32") it = gemm_by_precision.find("fp32");
  return it;
}

DeviceModel DeviceModel::at_precision(const std::string& dtype) const {
  DeviceModel d = *this;
  auto it = ceiling_entry(dtype);
  // A precision run at another's rate takes that one's measured ceiling (since session 43, a review:
  // bf16 on a P100, run at its fp16 rate, had taken the fp32-measured headline ceiling, 0.896
  // against fp16's 0.416, and ran 1.9 times as fast as fp16).
  if (it != gemm_by_precision.end()) {
    d.gemm_efficiency = it->second.efficiency;
    d.gemm_shape = it->second.shape;
  }
  // Tensor cores at 16 and 8 bits; float32 and tf32 products are not covered (not measured).
  const double width = bytes_per_value(dtype);
  d.alignment_elements = alignment_bytes > 0 && width <= 2 ? alignment_bytes / width : 0;
  return d;
}

double alignment_factor(const DeviceModel& device, double n, double k) {
  if (!(device.alignment_elements > 0)) return 1;
  const auto whole = [&](double x) {
    const double q = x / device.alignment_elements;
    return std::abs(q - std::round(q)) < 1e-9;
  };
  return whole(n) && whole(k) ? 1 : device.misaligned_gemm;
}

double bytes_per_value(const std::string& dtype) {
  if (dtype == "fp32" || dtype == "tf32") return 4;
  if (dtype == "fp8" || dtype == "int8") return 1;
  return 2;
}

double conv_efficiency(const DeviceModel& device, const std::string& layout) {
  const auto it = device.conv_efficiency.find(layout);
  return it != device.conv_efficiency.end() ? it->second : device.gemm_efficiency;
}

namespace {

// Tile and wave quantisation on a GPU's SMs: the best factor of the usual tile sizes, and the
// number of ways the reduction is split for it (the fewest among equally good tiles: a library
// that can fill the SMs either way splits less, each split's partial sums costing a pass).
struct TileChoice {
  double factor = 1;
  double split = 1;
};

TileChoice tile_choice(const DeviceModel& device, double m, double n, double k, double count) {
  // A product with one row or one column is a matrix-vector product: cuBLAS runs it as a gemv
  // kernel (batch-1 decoding's products, in any precision), each block reducing whole outputs over
  // k and all SMs streaming the weights; no tile is padded and nothing is split (since session 45,
  // a review: one row was charged the compute of 64, so an fp32 decode step at batch 1 came out
  // compute-bound, 4.2 times the weights' streaming on an A100). Two rows or more pad to the
  // tiles below, as the H200's fp32 products measure (16 x 8192 x 8192 takes 0.71 of 64's time,
  // data/hardware/measured/nvidia-h200-measured.csv).
  if (m <= 1 || n <= 1) return {1, 1};
  TileChoice best{0, 1};
  const double sms = static_cast<double>(device.compute_units);
  for (const auto& [tm, tn] : {std::pair{256.0, 128.0}, std::pair{128.0, 128.0}, std::pair{128.0, 64.0}, std::pair{64.0, 64.0}}) {
    const double tiles_m = std::ceil(m / tm), tiles_n = std::ceil(n / tn);
    const double tiles = tiles_m * tiles_n * std::max(1.0, count);
    const double tile_eff = (m * n) / (tiles_m * tm * tiles_n * tn);  // padding inside the edge tiles
    // Fewer tiles than SMs (a skinny product: a decode step's, m a batch of tokens): cuBLAS and
    // CUTLASS split the reduction (split-K, stream-K) so that s x tiles fill the SMs, each split
    // keeping at least kMinSplitK of K; their partial sums' reduction is a pass of its own
    // (split_k_reduction in sim/cost). Since session 34; before, such a product ran on `tiles`
    // SMs, compute-bound below about n = 2,700 at batch 64 on an A100 where streaming its weights
    // takes longer.
    constexpr double kMinSplitK = 256;
    double split = 1;
    if (tiles < sms) split = std::max(1.0, std::min(std::floor(sms / tiles), std::floor(k / kMinSplitK)));
    const double slices = tiles * split;
    const double wave_eff = slices / (std::ceil(slices / sms) * sms);  // idle SMs in the last wave
    const double f = tile_eff * wave_eff;
    if (f > best.factor * (1 + 1e-12) || (f >= best.factor * (1 - 1e-12) && split < best.split)) best = {f, split};
  }
  return best;
}

}  // namespace

double gemm_split_k(const DeviceModel& device, double m, double n, double k, double count) {
  if (!(m > 0 && n > 0 && k > 0) || device.compute_units <= 0) return 1;
  return tile_choice(device, m, n, k, count).split;
}

double gemm_shape_factor(const DeviceModel& device, double m, double n, double k, double count) {
  if (!(m > 0 && n > 0 && k > 0)) return 1;
  double factor = 1;
  const auto& s = device.gemm_shape;
  factor /= 1 + s[0] / m + s[1] / n + s[2] / k;
  if (device.compute_units > 0) factor *= tile_choice(device, m, n, k, count).factor;
  if (device.matrix_unit > 0) {
    // A systolic unit holds one operand as side x side tiles (the reduction dimension by an output
    // dimension) and streams the other through in chunks of kStreamRows rows: each dimension is
    // padded to its granularity. The compiler picks which output dimension is held (XLA: the
    // larger, so that the smaller is the one padded only to 8).
    constexpr double kStreamRows = 8;  // TPU vector registers are 8 x 128 (Cloud TPU performance guide)
    const double side = static_cast<double>(device.matrix_unit);
    const auto fill = [](double extent, double unit) { return extent / (std::ceil(extent / unit) * unit); };
    factor *= fill(k, side) * fill(std::max(m, n), side) * fill(std::min(m, n), kStreamRows);
  }
  return factor;
}

namespace {
// The rate of the units a kernel runs on. Elementwise work runs on the vector units, GEMMs on the
// matrix units: a vector rate where the catalog gives one (a TPU's VPU), else the fp32 rate (a
// GPU's CUDA cores).
double unit_peak(const DeviceModel& device, const std::string& dtype, bool gemm) {
  if (!gemm) {
    if (device.vector_peak > 0) return device.vector_peak;
    if (auto it = device.peak_flop_per_s.find("fp32"); it != device.peak_flop_per_s.end()) return it->second;
  }
  return device.peak(dtype);
}
}  // namespace

KernelTime kernel_time(const DeviceModel& device, const std::string& dtype, double flops, double bytes,
                       bool gemm, double efficiency) {
  KernelTime t;
  const double peak = unit_peak(device, dtype, gemm);
  t.compute_s = flops > 0 ? flops / (peak * (efficiency > 0 ? efficiency : device.gemm_efficiency)) : 0;
  const double bandwidth_share = gemm ? device.memory_efficiency : device.elementwise_efficiency;
  t.memory_s = bytes > 0 ? bytes / (device.memory_bandwidth * bandwidth_share) : 0;
  t.memory_bound = t.memory_s > t.compute_s;
  t.seconds = std::max(t.compute_s, t.memory_s) + device.launch_s;
  return t;
}

double kernel_energy(const DeviceModel& device, const std::string& dtype, double flops, double bytes,
                     double seconds, bool gemm) {
  // Lower-precision units spend less per FLOP: scale e_flop by the ratio of peaks, and by that of
  // the ceilings, the headline's to the one a product at `dtype` runs at, so that a GEMM at its own
  // precision's ceiling draws the power limit as one at the headline ceiling does (since session 44,
  // from a review: a P100's fp16 GEMM at 0.416 of its peak had drawn 188 W of its 300 W and an
  // H100's FP8 GEMM at 0.709 about 643 W of 700; per kernel, not per job: an FP8 job's fp32 optimizer
  // takes fp32's ratio). A kernel that is not a product runs on the vector units whatever its
  // precision: their rate's ratio, as kernel_time takes it (since session 46, a review: a bf16
  // elementwise kernel had been charged the tensor cores' energy a FLOP, 138 W against fp32's 399 W
  // for the same work and time on an A100).
  double scale = fastest_16bit(device) / unit_peak(device, dtype, gemm);
  // (Products only: the other kernels run on the vector units, whose rate no GEMM ceiling sets.)
  if (const auto it = device.ceiling_entry(dtype); gemm && it != device.gemm_by_precision.end() && it->second.efficiency > 0) {
    scale *= device.headline_gemm_efficiency / it->second.efficiency;
  }
  // The power limit: whatever the kernel does, the device draws at most its TDP.
  const double dynamic = flops * device.e_flop_j * scale + bytes * device.e_byte_j;
  const double headroom = std::max(0.0, device.power_limit_w - device.static_w) * seconds;
  return (device.power_limit_w > 0 ? std::min(dynamic, headroom) : dynamic) + device.static_w * seconds;
}

NodeLinks node_links(const Hardware& h) {
  NodeLinks links;
  links.intra = h.intra_node_bandwidth.value_or(make_device_model(h).memory_bandwidth / 10);
  links.inter = h.inter_node_bandwidth.value_or(links.intra / 10);
  links.given = h.intra_node_bandwidth || h.inter_node_bandwidth || !h.node_source.empty();
  return links;
}

DeviceModel make_device_model(const Hardware& h) {
  DeviceModel d;
  d.id = h.id;
  d.peak_flop_per_s = h.peak_flop_per_s;
  d.vector_peak = h.vector_peak_flop_per_s.value_or(0);
  d.memory_bandwidth = h.memory_bandwidth_bytes_per_s.value_or(0);
  d.memory_bytes = h.memory_bytes.value_or(0);
  d.tdp_w = h.tdp_w;
  d.host_w = h.host_overhead_w;
  d.gemm_efficiency = h.gemm_efficiency.value_or(kDefaultGemmEfficiency);
  d.headline_gemm_efficiency = d.gemm_efficiency;
  d.memory_efficiency = h.memory_efficiency.value_or(kDefaultMemoryEfficiency);
  d.elementwise_efficiency = h.elementwise_efficiency.value_or(d.memory_efficiency);
  d.launch_s = h.kernel_launch_s.value_or(h.kind == "cpu" || h.kind == "soc" || h.kind == "npu" ? kDefaultCpuLaunchS : kDefaultLaunchS);
  d.conv_efficiency = h.conv_efficiency;
  d.attention_efficiency = h.attention_efficiency;
  d.gemm_shape = h.gemm_shape;
  d.gemm_by_precision = h.gemm_by_precision;
  d.compute_units = h.compute_units;
  d.matrix_unit = h.matrix_unit;
  // Tensor cores: a GPU whose 16-bit peak is at least 4 times its fp32 rate runs 16-bit products
  // on matrix units (V100 on; the P100's half2 and the GTX 1080 have none). Where the catalog says
  // `misaligned`, that; AMD's entries say 1 (not measured).
  const double fp32 = h.peak_flop_per_s.count("fp32") ? h.peak_flop_per_s.at("fp32") : 0;
  const bool matrix_units = fp32 > 0 && fastest_16bit(d) >= 4 * fp32;
  if (h.kind == "gpu" && (h.misaligned_gemm || matrix_units)) {
    d.alignment_bytes = 16;
    d.misaligned_gemm = h.misaligned_gemm.value_or(kMisalignedGemm);
  }
  d.efficiency_source = h.gemm_efficiency ? h.efficiency_source : "datasheet default (uncalibrated)";
  d.idle_w = h.idle_power_w.value_or(Hardware::kDefaultStaticShare * h.tdp_w);
  d.static_w = d.idle_w;
  // A GEMM at the achievable rate (eta_c x the 16-bit peak) draws the power limit (the measured
  // maximum where the catalog has one, else the TDP): GPUs reach their power limit on large GEMMs.
  // A stream at the achievable bandwidth draws half the dynamic range.
  d.power_limit_w = h.max_power_w.value_or(h.tdp_w);
  const double dynamic = std::max(0.0, d.power_limit_w - d.static_w);
  const double peak16 = fastest_16bit(d);
  d.e_flop_j = peak16 > 0 ? dynamic / (d.gemm_efficiency * peak16) : 0;
  d.e_byte_j = d.memory_bandwidth > 0 ? kMemoryShareOfDynamic * dynamic / (d.memory_efficiency * d.memory_bandwidth) : 0;
  d.energy_source = h.max_power_w ? "datasheet model: the measured maximum power for a GEMM at the achievable rate, idle (or 30 % of TDP) static"
                                  : "datasheet model: TDP for a GEMM at the achievable rate (the power limit), idle (or 30 % of TDP) static";
  if (h.energy_roofline) {
    // Measured (dlcarbon-calibrate-gpu): the three terms as fitted; the power limit still caps.
    d.e_flop_j = h.energy_roofline->e_flop_j;
    d.e_byte_j = h.energy_roofline->e_byte_j;
    d.static_w = h.energy_roofline->static_w;
    d.energy_source = "measured energy roofline: " + h.energy_roofline->source;
  }
  return d;
}

}  // namespace dlcarbon::hardware
