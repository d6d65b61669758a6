#pragma once
// Calibration of the hardware model from real kernels (docs/calibration.md).
//
// A kernel is described by what the roofline needs (FLOPs, bytes) and what a backend needs to
// build it (kind, dtype, shape, layout). Calibration and check shapes are disjoint sets. The
// fitted models per (kind, dtype, layout) group are forms of the roofline with an overhead,
//   t = max(a F, b B) + c        (a = 1 / compute rate, b = 1 / bandwidth, c = fixed cost),
// with b per cache level (stepped or blended), and the GEMM shape model below.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace dlcarbon::calibrate {

enum class Role { calibrate, check };

struct KernelSpec {
  std::string kind;    // matmul, conv, eltwise, softmax, layernorm, reorder, stream
  std::string dtype;   // f32, bf16, s8
  std::string layout;  // plain, nhwc, blocked (conv, reorder), "" otherwise
  std::int64_t m = 0, n = 0, k = 0;         // matmul: C[m x n] = A[m x k] B[k x n]
  std::int64_t batch = 0, channels = 0, out_channels = 0, height = 0, width = 0, kernel = 0, stride = 1;  // conv
  std::int64_t elements = 0;               // eltwise, softmax (rows x n), layernorm, reorder, stream
  Role role = Role::calibrate;
  std::string label() const;   // "matmul f32 512x512x512"
  std::string group() const;   // "matmul/f32", "conv/f32/nhwc"
  double flops() const;
  double bytes() const;
};

// Bytes per element of a kernel's operands: f32 and tf32 4, bf16 and f16 2, int8 1.
double element_bytes(const std::string& dtype);

// The designed shape sets: log-spaced squares, skinny and tall GEMMs, transformer and ResNet
// layer shapes; calibration and check shapes never coincide. `quick` is a small subset.
std::vector<KernelSpec> shape_set(bool quick, bool have_bf16, bool have_s8);

// t = max(a F, b(W) B) + c, with W = B the working set: b is the time per byte of the memory
// level the working set fits in (levels = cache sizes, smallest first; b has one more entry, for
// main memory). No levels gives the single-level roofline.
struct RooflineFit {
  double a = 0;                // s per FLOP
  std::vector<double> levels;  // bytes: the working-set limits of the cache levels
  std::vector<double> b;       // s per byte, per level, then main memory
  double c = 0;                // s
  // Blended levels (memory-bound kernels swept again and again): a working set W larger than a
  // cache of capacity L still finds about L / W of its bytes there (the cyclic sweep under a
  // replacement policy that is not strict LRU), so the time per byte is the mix
  //   b(W) = sum_l b_l (min(1, L_l / W) - min(1, L_{l-1} / W)),   L_{-1} = 0, L_last+1 = inf,
  // smooth across each boundary instead of a step.
  bool blend = false;
  double time_per_byte(double working_set) const;
  double predict(double flops, double bytes) const;
  double memory_b() const { return b.empty() ? 0 : b.back(); }
};

// Compute-bound kernels without a usable memory term (convolutions of one kernel size):
// t = a F + c by non-negative least squares on relative error (b = 0).
RooflineFit fit_compute(const std::vector<double>& flops, const std::vector<double>& seconds);

// Non-negative least squares on relative error, min sum_i (x_i . beta / y_i - 1)^2 over beta >= 0
// (Lawson and Hanson's active-set method): the fits below are made of it. `rows[i]` holds x_i.
std::vector<double> nonnegative_relative_fit(const std::vector<std::vector<double>>& rows, const std::vector<double>& y);

// GEMM-like kernels (matmul, convolution as an implicit GEMM C[m x n] += A[m x k] B[k x n]):
// efficiency falls as any dimension shrinks, each by a fixed overhead per row, column and
// reduction step of the tiled product:
//   t = a F (1 + m0/m + n0/n + k0/k) + c
//     = a F + (a m0) 2nk + (a n0) 2mk + (a k0) 2mn + c      (linear: fitted by non-negative LS)
// The 2nk term is the cost of streaming the weights once per row block (what makes skinny GEMMs
// slow), 2mn that of writing the output and starting each reduction.
//
// With cache levels given (and `weight_bytes`, the size of a weight element), the 2nk term is
// replaced by the time to stream the weight matrix W = k n x weight_bytes from its level, with the
// blended levels of the memory-bound kernels (RooflineFit::blend):
//   t = a F (1 + n0/n + k0/k) + W sum_l w_l share_l(W) + c
// so that a decode-like product whose weights sit in the last-level cache is not charged the
// bandwidth of main memory, nor one whose weights stream from memory that of the cache.
// One cache's geometry (sysfs): sets, ways and line size in bytes.
struct CacheGeometry {
  double sets = 0, ways = 0, line = 0;
  bool known() const { return sets > 0 && ways > 0 && line > 0; }
};

struct GemmShapeFit {
  double a = 0;             // s per FLOP at the asymptotic rate
  double m0 = 0, n0 = 0, k0 = 0;
  double c = 0;             // s
  std::vector<double> levels;  // bytes: effective cache capacities (empty: the m0 form)
  std::vector<double> w;       // s per byte of weights streamed, per level, then main memory
  // Whether some calibration shape's weights came (partly) from main memory: else the last of `w`
  // rests on no sample and the entry leaves its m0 out (since session 35).
  bool memory_sampled = false;
  double element_bytes = 0;
  // Weight rows `n x element_bytes` apart all start in the same set of this cache (L1) when that
  // stride is a multiple of its way size, sets x line (4 KiB on x86: f32 rows of n = 1024, 2048,
  // ...; "4K aliasing"); such weights cost `w_conflict` more per byte (way_aliasing). Unknown
  // geometry: no such term.
  CacheGeometry conflict_cache;
  double w_conflict = 0;
  double conflict_share(double n, double k) const;
  double efficiency(double m, double n, double k) const { return 1 / (1 + m0 / m + n0 / n + k0 / k); }
  double weight_time(double n, double k) const;
  double predict(double m, double n, double k) const {
    return 2 * m * n * k * a / efficiency(m, n, k) + weight_time(n, k) + c;
  }
  // The m0 of the plain form that charges the weights at the main-memory rate (for the entry).
  double m0_equivalent() const { return w.empty() || a <= 0 ? m0 : element_bytes * w.back() / (2 * a); }
};
GemmShapeFit fit_gemm_shape(const std::vector<double>& m, const std::vector<double>& n, const std::vector<double>& k,
                            const std::vector<double>& seconds, const std::vector<double>& levels = {},
                            double weight_bytes = 0, const CacheGeometry& conflict_cache = {});

// Convolutions of one kernel size as implicit GEMMs: t = a F (1 + m0/m + n0/n) + c, with the m0
// and n0 terms each in or out (both out: t = a F + c); linear in (a, a m0, a n0, c).
GemmShapeFit fit_gemm_terms(const std::vector<double>& m, const std::vector<double>& n, const std::vector<double>& k,
                            const std::vector<double>& seconds, bool with_m0, bool with_n0);

// How well a model form predicts calibration samples it was not fitted to: the root mean square
// over i of `error(train = every sample but i, test = i)` (a relative error). NaN when a fit needs
// more than n - 1 samples (`parameters`), so that a form is never chosen on fewer points than it has
// parameters.
double leave_one_out_rms(std::size_t n, std::size_t parameters,
                         const std::function<double(const std::vector<std::size_t>& train, std::size_t test)>& error);

// The share of a working set's bytes served by each level (caches, then main memory) when it is
// swept again and again: min(1, L_l / W) - min(1, L_{l-1} / W).
std::vector<double> level_shares(const std::vector<double>& levels, double working_set);

// The GEMM view of a matmul or convolution spec (m = batch x output pixels, n = output channels,
// k = input channels x kernel area); false for other kinds.
bool gemm_dims(const KernelSpec& spec, double& m, double& n, double& k);

// Memory-bound kernels: t = B b(W) + c with the blended levels above (W = B), linear in the b_l
// and c, fitted by non-negative least squares on relative error. Levels holding no calibration
// shape are merged into the next.
// `extra` (optional, one row per kernel) adds further non-negative terms, returned in `extra_coef`
// (the reorder's per-byte cost when its channels' cache lines overflow L1).
RooflineFit fit_memory_blend(const std::vector<double>& bytes, const std::vector<double>& seconds,
                             std::vector<double> levels, const std::vector<std::vector<double>>& extra = {},
                             std::vector<double>* extra_coef = nullptr);

// One cache level's geometry (sysfs: number_of_sets, ways_of_associativity, coherency_line_size).

// A transposition (reorder nchw -> nhwc) reads `streams` rows (the channels) `row_stride` bytes
// apart, one cache line of each at a time, and must hold one line of every stream until its
// pixels are written out. The row starts fall into the cache's sets; where a set receives more
// streams than it has ways, the surplus lines are evicted before they are used up and fetched
// again. Returns that share of the streams, 1 - ways / (most streams in one set), or 0.
double stream_conflict_share(std::int64_t streams, double row_stride, const CacheGeometry& cache);

// 1 when rows `row_stride` bytes apart all map onto one set of `cache` (the stride is a multiple
// of the way size, sets x line), else 0; 0 for an unknown geometry.
double way_aliasing(double row_stride, const CacheGeometry& cache);

// Least squares on relative error: an additive start (Eigen, non-negative), then a simplex
// refinement of the max() model in log space. Levels holding no calibration shape are dropped.
RooflineFit fit_roofline(const std::vector<double>& flops, const std::vector<double>& bytes,
                         const std::vector<double>& seconds, std::vector<double> levels = {});

// The samples of a kernel group for a fit: FLOPs, bytes, time and (GEMM-like groups) m, n, k of
// the kernels `indices` of `specs`, with `gemm` false when any of them is not GEMM-like.
struct GroupSamples {
  std::vector<double> F, B, T, M, N, K;
  bool gemm = true;
};
GroupSamples group_samples(const std::vector<KernelSpec>& specs, const std::vector<double>& seconds,
                           const std::vector<std::size_t>& indices);

// The GPU shape set (cuBLAS GEMMs at fp32, tf32, fp16, bf16; device-to-device copies), with the
// same calibration/check split. Host-side code: tested without a GPU.
std::vector<KernelSpec> shape_set_gpu(bool quick);

// Energy roofline from per-kernel energies: E = F e_flop + B e_byte + P_static t (non-negative
// least squares on relative error). Returns {e_flop J/FLOP, e_byte J/B, P_static W}.
struct EnergyFit {
  double e_flop = 0, e_byte = 0, static_w = 0;
  double predict(double flops, double bytes, double seconds) const { return flops * e_flop + bytes * e_byte + seconds * static_w; }
};
EnergyFit fit_energy(const std::vector<double>& flops, const std::vector<double>& bytes,
                     const std::vector<double>& seconds, const std::vector<double>& joules);

struct ErrorStats {
  std::size_t n = 0;
  double median_abs = 0, p90_abs = 0, within_10 = 0, within_15 = 0;  // shares in [0, 1]
};
ErrorStats error_stats(const std::vector<double>& relative_errors);

// Robust per-shape time from samples: the 10th percentile after dropping samples more than
// 3 median absolute deviations above the median.
double robust_time(std::vector<double> samples);

// Round-robin measurement: each round runs every kernel once (one sample, `reps` executions)
// in a fixed shuffled order, so slow phases of a noisy machine hit all shapes alike.
struct Measurement {
  std::vector<std::vector<double>> pass_a, pass_b;  // samples per kernel, two interleaved passes
};
// `out_of_time`, where given, is asked after each pair of rounds (one of each pass) from the sixth
// round on: true ends the measurement there, so a budget holds however long the rounds take.
Measurement measure_round_robin(std::size_t kernels, int rounds,
                                const std::function<double(std::size_t, int)>& run_once_s,
                                const std::vector<int>& reps, std::uint64_t seed,
                                const std::function<bool()>& out_of_time = nullptr);

}  // namespace dlcarbon::calibrate
