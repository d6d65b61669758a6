#include "calibration.hpp"

#include <Eigen/Dense>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace dlcarbon::calibrate {

double KernelSpec::flops() const {
  const auto d = [](std::int64_t x) { return static_cast<double>(x); };
  if (kind == "matmul") return 2 * d(m) * d(n) * d(k);
  if (kind == "conv") {
    const double oh = d((height - 1) / stride + 1), ow = d((width - 1) / stride + 1);
    return 2 * d(batch) * oh * ow * d(out_channels) * d(channels) * d(kernel * kernel);
  }
  if (kind == "softmax") return 5 * d(elements);
  if (kind == "layernorm") return 8 * d(elements);
  if (kind == "eltwise") return d(elements);
  return 0;  // reorder, stream: pure data movement
}

double element_bytes(const std::string& dtype) {
  if (dtype == "f32" || dtype == "tf32") return 4;
  if (dtype == "bf16" || dtype == "f16") return 2;
  return 1;
}

double KernelSpec::bytes() const {
  const auto d = [](std::int64_t x) { return static_cast<double>(x); };
  const double in = element_bytes(dtype);
  const double out = dtype == "s8" ? 4 : in;  // int8 GEMMs accumulate and write s32
  if (kind == "matmul") return in * (d(m) * d(k) + d(k) * d(n)) + out * d(m) * d(n);
  if (kind == "conv") {
    const double oh = d((height - 1) / stride + 1), ow = d((width - 1) / stride + 1);
    return in * (d(batch) * d(channels) * d(height) * d(width) + d(out_channels) * d(channels) * d(kernel * kernel) +
                 d(batch) * d(out_channels) * oh * ow);
  }
  if (kind == "stream") return 3 * in * d(elements);  // two reads, one write
  if (kind == "copy") return 2 * in * d(elements);    // read and write
  return 2 * in * d(elements);                        // read once, write once
}

std::string KernelSpec::label() const {
  std::string s = kind + " " + dtype;
  if (!layout.empty()) s += " " + layout;
  if (kind == "matmul") return s + " " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
  if (kind == "conv") {
    return s + " n" + std::to_string(batch) + " c" + std::to_string(channels) + " o" + std::to_string(out_channels) +
           " " + std::to_string(height) + "x" + std::to_string(width) + " k" + std::to_string(kernel) + " s" +
           std::to_string(stride);
  }
  if (kind == "reorder" && channels > 0) {
    return s + " n" + std::to_string(batch) + " c" + std::to_string(channels) + " " + std::to_string(height) + "x" +
           std::to_string(width);
  }
  return s + " " + std::to_string(elements);
}

std::string KernelSpec::group() const {
  std::string g = kind + "/" + dtype;
  if (!layout.empty()) g += "/" + layout;
  return g;
}

namespace {

KernelSpec matmul_spec(std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dtype, Role role) {
  KernelSpec s;
  s.kind = "matmul";
  s.dtype = dtype;
  s.m = m;
  s.n = n;
  s.k = k;
  s.role = role;
  return s;
}

}  // namespace

// Non-negative least squares on relative error: minimises sum_i (x_i . beta / y_i - 1)^2 over
// beta >= 0, by Lawson and Hanson's active-set method (Solving Least Squares Problems, 1974,
// ch. 23): columns enter the passive set one at a time by the largest gradient, and any that the
// unconstrained solution on the passive set drives below zero leave it again, until no excluded
// column would lower the error. Columns are scaled to unit norm first (a rate per FLOP and one per
// byte differ by orders of magnitude). `rows[i]` holds x_i; `y` the measured values. (Since
// session 43, a review: the earlier fit dropped every negative column at once and never brought
// one back, which on the H200's fp16 products zeroed the wrong column: a squared error of 0.2085
// against the optimum's 0.1132.)
std::vector<double> nonnegative_relative_fit(const std::vector<std::vector<double>>& rows, const std::vector<double>& y) {
  const std::size_t p = rows.empty() ? 0 : rows.front().size();
  const auto n = static_cast<Eigen::Index>(rows.size());
  Eigen::MatrixXd A(n, static_cast<Eigen::Index>(p));
  for (Eigen::Index i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < p; ++j) A(i, static_cast<Eigen::Index>(j)) = rows[static_cast<std::size_t>(i)][j] / y[static_cast<std::size_t>(i)];
  }
  const Eigen::VectorXd b = Eigen::VectorXd::Ones(n);
  Eigen::VectorXd scale(static_cast<Eigen::Index>(p));
  for (Eigen::Index j = 0; j < A.cols(); ++j) {
    const double norm = A.col(j).norm();
    scale(j) = norm > 0 && std::isfinite(norm) ? norm : 0.0;
    if (scale(j) > 0) A.col(j) /= scale(j);
  }
  std::vector<bool> passive(p, false);
  Eigen::VectorXd x = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(p));
  // The least-squares solution on the passive columns (zero elsewhere).
  const auto solve_passive = [&]() {
    std::vector<Eigen::Index> cols;
    for (std::size_t j = 0; j < p; ++j) {
      if (passive[j]) cols.push_back(static_cast<Eigen::Index>(j));
    }
    Eigen::VectorXd z = Eigen::VectorXd::Zero(static_cast<Eigen::Index>(p));
    if (cols.empty()) return z;
    Eigen::MatrixXd Ap(n, static_cast<Eigen::Index>(cols.size()));
    for (std::size_t k = 0; k < cols.size(); ++k) Ap.col(static_cast<Eigen::Index>(k)) = A.col(cols[k]);
    const Eigen::VectorXd s = Ap.colPivHouseholderQr().solve(b);
    for (std::size_t k = 0; k < cols.size(); ++k) z(cols[k]) = s(static_cast<Eigen::Index>(k));
    return z;
  };
  constexpr double kTol = 1e-12;
  for (std::size_t outer = 0; outer < 3 * p + 3; ++outer) {
    const Eigen::VectorXd w = A.transpose() * (b - A * x);
    Eigen::Index best = -1;
    for (std::size_t j = 0; j < p; ++j) {
      const auto jj = static_cast<Eigen::Index>(j);
      if (!passive[j] && scale(jj) > 0 && w(jj) > kTol && (best < 0 || w(jj) > w(best))) best = jj;
    }
    if (best < 0) break;
    passive[static_cast<std::size_t>(best)] = true;
    for (std::size_t inner = 0; inner < 3 * p + 3; ++inner) {
      const Eigen::VectorXd z = solve_passive();
      bool feasible = true;
      double alpha = 1;
      for (std::size_t j = 0; j < p; ++j) {
        const auto jj = static_cast<Eigen::Index>(j);
        if (passive[j] && z(jj) <= 0) {
          feasible = false;
          const double denom = x(jj) - z(jj);
          if (denom > 0) alpha = std::min(alpha, x(jj) / denom);
        }
      }
      if (feasible) {
        x = z;
        break;
      }
      x += alpha * (z - x);
      for (std::size_t j = 0; j < p; ++j) {
        const auto jj = static_cast<Eigen::Index>(j);
        if (passive[j] && x(jj) <= kTol) {
          passive[j] = false;
          x(jj) = 0;
        }
      }
    }
  }
  std::vector<double> coef(p, 0.0);
  for (std::size_t j = 0; j < p; ++j) {
    const auto jj = static_cast<Eigen::Index>(j);
    coef[j] = scale(jj) > 0 && x(jj) > 0 ? x(jj) / scale(jj) : 0.0;
  }
  return coef;
}

std::vector<KernelSpec> shape_set(bool quick, bool have_bf16, bool have_s8) {
  std::vector<KernelSpec> out;
  auto mm = [&](std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dt, Role r) {
    out.push_back(matmul_spec(m, n, k, dt, r));
  };
  auto flat = [&](const std::string& kind, std::int64_t e, Role r, const std::string& layout = "") {
    KernelSpec s;
    s.kind = kind;
    s.dtype = "f32";
    s.elements = e;
    s.layout = layout;
    s.role = r;
    out.push_back(s);
  };
  auto conv = [&](std::int64_t n, std::int64_t c, std::int64_t o, std::int64_t hw, std::int64_t k, std::int64_t st,
                  const std::string& layout, Role r) {
    KernelSpec s;
    s.kind = "conv";
    s.dtype = "f32";
    s.layout = layout;
    s.batch = n;
    s.channels = c;
    s.out_channels = o;
    s.height = s.width = hw;
    s.kernel = k;
    s.stride = st;
    s.role = r;
    out.push_back(s);
  };
  const Role C = Role::calibrate, K = Role::check;
  std::vector<std::string> dtypes{"f32"};
  if (have_bf16) dtypes.push_back("bf16");
  if (have_s8) dtypes.push_back("s8");
  for (const auto& dt : dtypes) {
    // Calibration: log-spaced squares, skinny (small m) and tall (small n) products.
    // Full set: half-octave steps (32, 45, 64, 91, ...), so that sizes that are not powers of two
    // (whose tiles do not divide them) weigh as much in the fit as those that are.
    const std::vector<std::int64_t> squares = quick ? std::vector<std::int64_t>{64, 256, 768}
                                                    : std::vector<std::int64_t>{32, 45, 64, 91, 128, 181, 256, 362, 512, 724, 1024};
    for (const auto x : squares) mm(x, x, x, dt, C);
    mm(16, 1024, 1024, dt, C);
    mm(1024, 16, 512, dt, C);
    if (!quick) {
      mm(4, 2048, 2048, dt, C);
      mm(2048, 64, 256, dt, C);
      mm(256, 3072, 768, dt, C);   // BERT-base FFN up, 256 tokens
      mm(512, 768, 768, dt, C);    // attention projections
      // Decode-like products (a few rows of activations against a weight matrix), weights from
      // within L2 to beyond the last level.
      mm(1, 4096, 1024, dt, C);
      mm(8, 1024, 1024, dt, C);
      mm(32, 2048, 2048, dt, C);
      mm(2, 4096, 4096, dt, C);
      // The same at widths that are not powers of two (GPT-2 small and large, GPT-Neo 2.7B):
      // weight rows 2^k bytes apart share few cache sets, and only shapes of both kinds let the
      // fit tell that cost from the streaming itself.
      mm(8, 768, 768, dt, C);
      mm(8, 1280, 1280, dt, C);
      mm(4, 2560, 2560, dt, C);
    }
    // Check: shapes the fit never saw (transformer layers, odd sizes, skinny and tall).
    mm(384, 384, 384, dt, K);
    mm(128, 3072, 768, dt, K);
    mm(8, 1536, 1536, dt, K);
    if (!quick) {
      mm(96, 96, 96, dt, K);
      mm(700, 700, 700, dt, K);
      mm(512, 4096, 1024, dt, K);
      mm(2048, 32, 512, dt, K);
      mm(1000, 1000, 200, dt, K);
      mm(64, 2048, 512, dt, K);
    }
  }
  // Memory-bound kernels: log-spaced sizes, check sizes in between.
  // Full set: every power of two from 2^12 to 2^24 elements (the cache levels are crossed in
  // steps of 2, not 4); the check sizes 3 x 2^k lie between two of them.
  std::vector<std::int64_t> sizes = {1 << 14, 1 << 18, 1 << 22};
  if (!quick) {
    sizes.clear();
    for (int e = 12; e <= 24; ++e) sizes.push_back(std::int64_t{1} << e);
  }
  const std::vector<std::int64_t> between = quick ? std::vector<std::int64_t>{3 << 17, 3 << 20}
                                                  : std::vector<std::int64_t>{3 << 13, 3 << 17, 3 << 19, 3 << 21, 3 << 23};
  for (const char* kind : {"eltwise", "softmax", "layernorm", "stream"}) {
    for (const auto e : sizes) flat(kind, e, C);
    for (const auto e : between) flat(kind, e, K);
  }
  // Reorders from nchw to nhwc of real activations (a transposition of channels x pixels): the
  // ResNet-50 layer outputs at batch 1, 8 and 32 for calibration; MobileNet-v2 and VGG-16
  // activations for the check. A power-of-two pixel count would make every channel's row start
  // in the same cache sets, a pathology no real activation has.
  auto reorder = [&](std::int64_t n, std::int64_t c, std::int64_t hw, Role r) {
    KernelSpec s;
    s.kind = "reorder";
    s.dtype = "f32";
    s.layout = "nchw-to-nhwc";
    s.batch = n;
    s.channels = c;
    s.height = s.width = hw;
    s.elements = n * c * hw * hw;
    s.role = r;
    out.push_back(s);
  };
  reorder(1, 512, 7, C);
  reorder(1, 256, 14, C);
  reorder(1, 512, 28, C);
  reorder(8, 256, 56, C);
  if (!quick) {
    reorder(1, 2048, 7, C);
    reorder(1, 1024, 14, C);
    reorder(1, 128, 28, C);
    reorder(1, 64, 56, C);
    reorder(1, 256, 56, C);
    reorder(1, 64, 112, C);
    reorder(8, 512, 28, C);
    reorder(32, 256, 56, C);
  }
  reorder(1, 144, 56, K);   // MobileNet-v2
  reorder(8, 128, 112, K);  // VGG-16
  if (!quick) {
    reorder(1, 960, 7, K);
    reorder(1, 384, 14, K);
    reorder(1, 96, 112, K);
  }
  // Convolutions in two layouts: ResNet-50 layers (batch 1 and 8) and made-up ones.
  for (const char* layout : {"nchw", "nhwc"}) {
    conv(1, 64, 64, 56, 3, 1, layout, C);
    conv(1, 256, 64, 56, 1, 1, layout, C);
    conv(1, 128, 128, 28, 3, 1, layout, C);
    conv(1, 512, 128, 28, 1, 1, layout, C);
    if (!quick) {
      conv(8, 64, 64, 56, 3, 1, layout, C);
      conv(1, 256, 256, 14, 3, 1, layout, C);
      conv(1, 1024, 256, 14, 1, 1, layout, C);
      conv(1, 3, 64, 224, 7, 2, layout, C);
      // 7x7 maps (the last stage of a ResNet at batch 1: few output pixels): the ResNet-50
      // expansion 1x1 and Wide ResNet-50-2's 3x3 (Zagoruyko & Komodakis 2016); ResNet-50 stage 3
      // at batch 4.
      conv(1, 512, 2048, 7, 1, 1, layout, C);
      conv(1, 1024, 1024, 7, 3, 1, layout, C);
      conv(4, 512, 128, 28, 1, 1, layout, C);
      // ResNet-50's stage-2 expansion at batch 8 (m = 25,088 output pixels): without it the
      // 4 x 56 x 56 1x1 check (12,544) would lie beyond every calibration 1x1 (at most 3,136).
      conv(8, 64, 256, 56, 1, 1, layout, C);
    }
    conv(1, 512, 512, 7, 3, 1, layout, K);
    conv(2, 128, 128, 28, 3, 1, layout, K);
    if (!quick) {
      conv(1, 2048, 512, 7, 1, 1, layout, K);
      conv(4, 256, 64, 56, 1, 1, layout, K);
      conv(1, 96, 96, 40, 3, 1, layout, K);
    }
  }
  return out;
}

std::vector<KernelSpec> shape_set_gpu(bool quick) {
  std::vector<KernelSpec> out;
  auto mm = [&](std::int64_t m, std::int64_t n, std::int64_t k, const std::string& dt, Role r) {
    out.push_back(matmul_spec(m, n, k, dt, r));
  };
  for (const char* dt : {"f32", "tf32", "f16", "bf16"}) {
    const std::vector<std::int64_t> squares = quick ? std::vector<std::int64_t>{256, 2048, 8192}
                                                    : std::vector<std::int64_t>{128, 256, 512, 1024, 2048, 4096, 8192, 16384};
    for (const auto x : squares) mm(x, x, x, dt, Role::calibrate);
    mm(16, 8192, 8192, dt, Role::calibrate);     // decode-like, memory-bound
    mm(8192, 64, 4096, dt, Role::calibrate);
    if (!quick) {
      mm(2048, 12288, 12288, dt, Role::calibrate);  // GPT-3 layer, 2048 tokens
      mm(4096, 4096, 11008, dt, Role::calibrate);   // LLaMA-7B FFN
    }
    mm(3000, 3000, 3000, dt, Role::check);
    mm(4096, 14336, 4096, dt, Role::check);
    mm(64, 8192, 8192, dt, Role::check);
    if (!quick) {
      mm(768, 768, 768, dt, Role::check);
      mm(12288, 128, 12288, dt, Role::check);
      mm(6000, 5000, 700, dt, Role::check);  // 16-bit: rows of 1,400 B, not a multiple of 16
      mm(6000, 5000, 704, dt, Role::check);  // the same, aligned
    }
  }
  const std::vector<std::int64_t> copies = quick ? std::vector<std::int64_t>{1 << 20, 1 << 26}
                                                 : std::vector<std::int64_t>{1 << 16, 1 << 20, 1 << 21, 1 << 22, 5 << 20,
                                                                             1 << 23, 1 << 24, 1 << 26, 1 << 28};
  for (const auto e : copies) {
    KernelSpec s;
    s.kind = "copy";
    s.dtype = "f32";
    s.elements = e;
    s.role = Role::calibrate;
    out.push_back(s);
  }
  for (const std::int64_t e : {std::int64_t{3} << 19, std::int64_t{3} << 21, std::int64_t{3} << 25}) {
    KernelSpec s;
    s.kind = "copy";
    s.dtype = "f32";
    s.elements = e;
    s.role = Role::check;
    out.push_back(s);
  }
  return out;
}

EnergyFit fit_energy(const std::vector<double>& F, const std::vector<double>& B, const std::vector<double>& t,
                     const std::vector<double>& E) {
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < E.size(); ++i) rows.push_back({F[i], B[i], t[i]});
  const auto c = nonnegative_relative_fit(rows, E);
  return {c[0], c[1], c[2]};
}

GemmShapeFit fit_gemm_shape(const std::vector<double>& m, const std::vector<double>& n, const std::vector<double>& k,
                            const std::vector<double>& t, const std::vector<double>& levels, double weight_bytes,
                            const CacheGeometry& conflict_cache) {
  std::vector<std::vector<double>> rows;
  // No more unknowns than samples, as for the memory fits (since session 47, a review: a quick
  // run's 5 shapes against 8 unknowns had fitted exactly through its points, k0 and m0 free). With
  // too few, no shape fit (a = 0): the group keeps its plain roofline.
  // (The set-conflict column, where some shape has such conflicts, is one more.)
  bool any_conflict = false;
  if (weight_bytes > 0) {
    GemmShapeFit probe;
    probe.element_bytes = weight_bytes;
    probe.conflict_cache = conflict_cache;
    for (std::size_t i = 0; i < t.size(); ++i) any_conflict = any_conflict || probe.conflict_share(n[i], k[i]) > 0;
  }
  const std::size_t unknowns = weight_bytes > 0 ? 4 + levels.size() + 1 + (any_conflict ? 1 : 0) : 5;
  if (t.size() < unknowns) return GemmShapeFit{};
  if (weight_bytes > 0) {
    // Weights streamed from their level: columns F, 2mk, 2mn, 1, then W x share per level, then
    // (with a cache geometry, where some calibration shape has such conflicts) W x conflict share.
    GemmShapeFit f;
    f.levels = levels;
    f.element_bytes = weight_bytes;
    f.conflict_cache = conflict_cache;
    bool conflicts = false;
    for (std::size_t i = 0; i < t.size(); ++i) conflicts = conflicts || f.conflict_share(n[i], k[i]) > 0;
    for (std::size_t i = 0; i < t.size(); ++i) {
      std::vector<double> row{2 * m[i] * n[i] * k[i], 2 * m[i] * k[i], 2 * m[i] * n[i], 1.0};
      const double W = n[i] * k[i] * weight_bytes;
      // Increments of time per byte, level by level outwards, as fit_memory_blend takes them: a
      // level beyond every sampled weight set streams as fast as the last one sampled, not for
      // free, and no cache level is slower than the one beyond it (session 45: a quick run's f32
      // weights had fitted "inf GB/s, 6.97 GB/s, inf GB/s").
      auto share = level_shares(levels, W);
      for (std::size_t j = share.size(); j-- > 1;) share[j - 1] += share[j];
      for (const double s : share) row.push_back(W * s);
      f.memory_sampled = f.memory_sampled || level_shares(levels, W).back() > 0;
      if (conflicts) row.push_back(W * f.conflict_share(n[i], k[i]));
      rows.push_back(std::move(row));
    }
    const auto c = nonnegative_relative_fit(rows, t);
    f.a = c[0];
    if (f.a > 0) {
      f.n0 = c[1] / f.a;
      f.k0 = c[2] / f.a;
    }
    f.c = c[3];
    f.w.assign(c.begin() + 4, c.begin() + 4 + static_cast<std::ptrdiff_t>(levels.size() + 1));
    for (std::size_t l = 1; l < f.w.size(); ++l) f.w[l] += f.w[l - 1];
    f.w_conflict = conflicts ? c.back() : 0;
    if (!conflicts) f.conflict_cache = {};
    return f;
  }
  for (std::size_t i = 0; i < t.size(); ++i) {
    rows.push_back({2 * m[i] * n[i] * k[i], 2 * n[i] * k[i], 2 * m[i] * k[i], 2 * m[i] * n[i], 1.0});
  }
  const auto c = nonnegative_relative_fit(rows, t);
  GemmShapeFit f;
  f.a = c[0];
  if (f.a > 0) {
    f.m0 = c[1] / f.a;
    f.n0 = c[2] / f.a;
    f.k0 = c[3] / f.a;
  }
  f.c = c[4];
  return f;
}

GemmShapeFit fit_gemm_terms(const std::vector<double>& m, const std::vector<double>& n, const std::vector<double>& k,
                            const std::vector<double>& t, bool with_m0, bool with_n0) {
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < t.size(); ++i) {
    std::vector<double> row{2 * m[i] * n[i] * k[i]};
    if (with_m0) row.push_back(2 * n[i] * k[i]);
    if (with_n0) row.push_back(2 * m[i] * k[i]);
    row.push_back(1.0);
    rows.push_back(std::move(row));
  }
  const auto c = nonnegative_relative_fit(rows, t);
  GemmShapeFit f;
  f.a = c[0];
  std::size_t j = 1;
  if (with_m0) {
    f.m0 = f.a > 0 ? c[j] / f.a : 0;
    ++j;
  }
  if (with_n0) {
    f.n0 = f.a > 0 ? c[j] / f.a : 0;
    ++j;
  }
  f.c = c[j];
  return f;
}

double leave_one_out_rms(std::size_t n, std::size_t parameters,
                         const std::function<double(const std::vector<std::size_t>& train, std::size_t test)>& error) {
  if (n < parameters + 1) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (std::size_t test = 0; test < n; ++test) {
    std::vector<std::size_t> train;
    for (std::size_t i = 0; i < n; ++i) {
      if (i != test) train.push_back(i);
    }
    const double e = error(train, test);
    s += e * e;
  }
  return std::sqrt(s / static_cast<double>(n));
}

RooflineFit fit_compute(const std::vector<double>& F, const std::vector<double>& t) {
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < t.size(); ++i) rows.push_back({F[i], 1.0});
  const auto c = nonnegative_relative_fit(rows, t);
  return RooflineFit{c[0], {}, {0.0}, c[1]};
}

GroupSamples group_samples(const std::vector<KernelSpec>& specs, const std::vector<double>& t,
                           const std::vector<std::size_t>& indices) {
  GroupSamples g;
  for (const auto i : indices) {
    double m = 0, n = 0, k = 0;
    g.gemm = gemm_dims(specs[i], m, n, k) && g.gemm;
    g.F.push_back(specs[i].flops());
    g.B.push_back(specs[i].bytes());
    g.T.push_back(t[i]);
    g.M.push_back(m);
    g.N.push_back(n);
    g.K.push_back(k);
  }
  return g;
}

bool gemm_dims(const KernelSpec& s, double& m, double& n, double& k) {
  const auto d = [](std::int64_t x) { return static_cast<double>(x); };
  if (s.kind == "matmul") {
    m = d(s.m);
    n = d(s.n);
    k = d(s.k);
    return true;
  }
  if (s.kind == "conv") {
    const double oh = d((s.height - 1) / s.stride + 1), ow = d((s.width - 1) / s.stride + 1);
    m = d(s.batch) * oh * ow;
    n = d(s.out_channels);
    k = d(s.channels) * d(s.kernel * s.kernel);
    return true;
  }
  return false;
}

std::vector<double> level_shares(const std::vector<double>& levels, double working_set) {
  std::vector<double> share;
  double below = 0;  // min(1, L_{l-1} / W)
  for (const double capacity : levels) {
    const double upto = working_set > 0 ? std::min(1.0, capacity / working_set) : 1.0;
    share.push_back(upto - below);
    below = upto;
  }
  share.push_back(1 - below);
  return share;
}

double GemmShapeFit::weight_time(double n, double k) const {
  if (w.empty()) return 0;
  const double bytes = n * k * element_bytes;
  const auto share = level_shares(levels, bytes);
  double s = 0;
  for (std::size_t l = 0; l < share.size() && l < w.size(); ++l) s += share[l] * w[l];
  return (s + w_conflict * conflict_share(n, k)) * bytes;
}

double GemmShapeFit::conflict_share(double n, double /*k*/) const {
  if (!conflict_cache.known() || element_bytes <= 0) return 0;
  return way_aliasing(n * element_bytes, conflict_cache);
}

double way_aliasing(double row_stride, const CacheGeometry& cache) {
  if (!cache.known() || row_stride <= 0) return 0;
  const double way = cache.sets * cache.line;  // bytes that map onto each set once
  return std::fmod(row_stride, way) == 0 ? 1.0 : 0.0;
}

double stream_conflict_share(std::int64_t streams, double row_stride, const CacheGeometry& cache) {
  if (!cache.known() || streams <= 0 || row_stride <= 0) return 0;
  const auto sets = static_cast<std::int64_t>(cache.sets);
  std::vector<std::int64_t> per_set(static_cast<std::size_t>(sets), 0);
  std::int64_t most = 0;
  for (std::int64_t j = 0; j < streams; ++j) {
    const auto line = static_cast<std::int64_t>(std::floor(static_cast<double>(j) * row_stride / cache.line));
    most = std::max(most, ++per_set[static_cast<std::size_t>(line % sets)]);
  }
  return std::max(0.0, 1 - cache.ways / static_cast<double>(most));
}

double RooflineFit::time_per_byte(double working_set) const {
  if (!blend) {
    std::size_t level = 0;
    while (level < levels.size() && working_set > levels[level]) ++level;
    return b.at(level);
  }
  const auto share = level_shares(levels, working_set);
  double s = 0;
  for (std::size_t l = 0; l < share.size(); ++l) s += share[l] * b.at(l);
  return s;
}

double RooflineFit::predict(double flops, double bytes) const {
  return std::max(a * flops, time_per_byte(bytes) * bytes) + c;
}

RooflineFit fit_memory_blend(const std::vector<double>& B, const std::vector<double>& t, std::vector<double> levels,
                             const std::vector<std::vector<double>>& extra, std::vector<double>* extra_coef) {
  std::sort(levels.begin(), levels.end());
  // Drop a level that no calibration working set reaches beyond its predecessor, and the levels
  // beyond the largest working set (nothing constrains their rates).
  std::vector<double> kept;
  const double largest = B.empty() ? 0 : *std::max_element(B.begin(), B.end());
  for (const double L : levels) {
    if (L < largest && (kept.empty() || std::any_of(B.begin(), B.end(), [&](double x) { return x > kept.back() && x <= L; }))) {
      kept.push_back(L);
    }
  }
  // No more unknowns (a rate per kept level and memory's, the fixed cost, the extra terms) than
  // distinct working sets: a quick run's three STREAM sizes against L2, L3 and memory had fitted
  // exactly through its points, with L3 free and memory at a quarter of what any size measured
  // (session 45, a review). The smallest levels go first: the last one is the boundary with main
  // memory, whose bandwidth the entry records.
  std::vector<double> distinct = B;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const std::size_t extra_terms = extra.empty() ? 0 : extra.front().size();
  while (!kept.empty() && kept.size() + 2 + extra_terms > distinct.size()) kept.erase(kept.begin());
  // Time per byte grows outwards (a cache level is never slower than the one beyond it): the fit
  // takes non-negative increments d_j, b_l = d_0 + ... + d_l, whose column is B x the share of the
  // working set at level j or beyond.
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < t.size(); ++i) {
    auto row = level_shares(kept, B[i]);
    for (std::size_t j = row.size(); j-- > 1;) row[j - 1] += row[j];
    for (auto& x : row) x *= B[i];
    row.push_back(1.0);
    if (i < extra.size()) row.insert(row.end(), extra[i].begin(), extra[i].end());
    rows.push_back(std::move(row));
  }
  const auto coef = nonnegative_relative_fit(rows, t);
  const std::size_t nb = kept.size() + 1;
  RooflineFit f;
  f.blend = true;
  f.levels = kept;
  f.b.assign(coef.begin(), coef.begin() + static_cast<std::ptrdiff_t>(nb));
  for (std::size_t l = 1; l < nb; ++l) f.b[l] += f.b[l - 1];
  f.c = coef[nb];
  if (extra_coef) extra_coef->assign(coef.begin() + static_cast<std::ptrdiff_t>(nb) + 1, coef.end());
  return f;
}

namespace {

std::size_t level_of(const std::vector<double>& levels, double bytes) {
  std::size_t level = 0;
  while (level < levels.size() && bytes > levels[level]) ++level;
  return level;
}

double objective(const RooflineFit& f, const std::vector<double>& F, const std::vector<double>& B,
                 const std::vector<double>& t) {
  double s = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    const double r = f.predict(F[i], B[i]) / t[i] - 1;
    s += r * r;
  }
  return s;
}

// The additive start t = a F + sum_l b_l B [W in level l] + c, fitted without the max().
std::vector<double> additive(const std::vector<double>& F, const std::vector<double>& B, const std::vector<double>& t,
                             const std::vector<double>& levels) {
  const std::size_t p = levels.size() + 3;  // a, b per level + memory, c
  std::vector<std::vector<double>> rows;
  for (std::size_t i = 0; i < t.size(); ++i) {
    std::vector<double> row(p, 0.0);
    row[0] = F[i];
    row[1 + level_of(levels, B[i])] = B[i];
    row[p - 1] = 1.0;
    rows.push_back(std::move(row));
  }
  return nonnegative_relative_fit(rows, t);
}

}  // namespace

RooflineFit fit_roofline(const std::vector<double>& F, const std::vector<double>& B, const std::vector<double>& t,
                         std::vector<double> levels) {
  // Keep only the cache levels that hold calibration shapes, and main memory only if used.
  std::sort(levels.begin(), levels.end());
  std::vector<double> kept;
  for (std::size_t l = 0; l < levels.size(); ++l) {
    const double lo = l == 0 ? 0 : levels[l - 1];
    if (std::any_of(B.begin(), B.end(), [&](double x) { return x > lo && x <= levels[l]; })) kept.push_back(levels[l]);
  }
  // If nothing lies beyond the last kept level, that level is "main memory" for this data.
  if (!kept.empty() && std::none_of(B.begin(), B.end(), [&](double x) { return x > kept.back(); })) kept.pop_back();
  levels = kept;
  const auto start = additive(F, B, t, levels);
  const std::size_t nb = levels.size() + 1, D = nb + 2;
  std::vector<double> p0(D);
  p0[0] = std::log(std::max(start[0], 1e-18));
  for (std::size_t l = 0; l < nb; ++l) p0[1 + l] = std::log(std::max(start[1 + l], 1e-15));
  p0[D - 1] = std::log(std::max(start[D - 1], 1e-9));
  auto to_fit = [&](const std::vector<double>& p) {
    RooflineFit f;
    f.a = std::exp(p[0]);
    f.levels = levels;
    for (std::size_t l = 0; l < nb; ++l) f.b.push_back(std::exp(p[1 + l]));
    f.c = std::exp(p[D - 1]);
    return f;
  };
  auto cost = [&](const std::vector<double>& p) { return objective(to_fit(p), F, B, t); };
  // Nelder-Mead on the log parameters.
  std::vector<std::vector<double>> simplex(D + 1, p0);
  for (std::size_t i = 0; i < D; ++i) simplex[i + 1][i] += 0.5;
  std::vector<double> values(D + 1);
  for (std::size_t i = 0; i <= D; ++i) values[i] = cost(simplex[i]);
  std::vector<std::size_t> order(D + 1);
  for (int iter = 0; iter < 20000; ++iter) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return values[x] < values[y]; });
    const std::size_t best = order[0], worst = order[D], second = order[D - 1];
    if (std::abs(values[worst] - values[best]) <= 1e-16 * (1 + values[best])) break;
    std::vector<double> centroid(D, 0.0);
    for (std::size_t r = 0; r < D; ++r) {
      for (std::size_t j = 0; j < D; ++j) centroid[j] += simplex[order[r]][j] / static_cast<double>(D);
    }
    auto along = [&](double step) {
      std::vector<double> p(D);
      for (std::size_t j = 0; j < D; ++j) p[j] = centroid[j] + step * (simplex[worst][j] - centroid[j]);
      return p;
    };
    const auto reflected = along(-1);
    const double fr = cost(reflected);
    if (fr < values[best]) {
      const auto expanded = along(-2);
      const double fe = cost(expanded);
      simplex[worst] = fe < fr ? expanded : reflected;
      values[worst] = std::min(fe, fr);
    } else if (fr < values[second]) {
      simplex[worst] = reflected;
      values[worst] = fr;
    } else {
      const auto contracted = along(0.5);
      const double fc = cost(contracted);
      if (fc < values[worst]) {
        simplex[worst] = contracted;
        values[worst] = fc;
      } else {
        for (std::size_t r = 1; r <= D; ++r) {
          const std::size_t i = order[r];
          for (std::size_t j = 0; j < D; ++j) simplex[i][j] = simplex[best][j] + 0.5 * (simplex[i][j] - simplex[best][j]);
          values[i] = cost(simplex[i]);
        }
      }
    }
  }
  std::size_t best = 0;
  for (std::size_t i = 1; i <= D; ++i) {
    if (values[i] < values[best]) best = i;
  }
  return to_fit(simplex[best]);
}

ErrorStats error_stats(const std::vector<double>& errors) {
  ErrorStats s;
  s.n = errors.size();
  if (errors.empty()) return s;
  std::vector<double> a;
  for (const double e : errors) a.push_back(std::abs(e));
  std::sort(a.begin(), a.end());
  const auto q = [&](double p) { return a[std::min(a.size() - 1, static_cast<std::size_t>(p * static_cast<double>(a.size() - 1) + 0.5))]; };
  s.median_abs = q(0.5);
  s.p90_abs = q(0.9);
  s.within_10 = static_cast<double>(std::count_if(a.begin(), a.end(), [](double x) { return x <= 0.10; })) / static_cast<double>(a.size());
  s.within_15 = static_cast<double>(std::count_if(a.begin(), a.end(), [](double x) { return x <= 0.15; })) / static_cast<double>(a.size());
  return s;
}

double robust_time(std::vector<double> samples) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  const double median = samples[samples.size() / 2];
  std::vector<double> dev;
  for (const double x : samples) dev.push_back(std::abs(x - median));
  std::sort(dev.begin(), dev.end());
  const double mad = dev[dev.size() / 2];
  std::vector<double> kept;
  for (const double x : samples) {
    if (mad == 0 || x <= median + 3 * mad) kept.push_back(x);
  }
  const std::size_t i = static_cast<std::size_t>(0.1 * static_cast<double>(kept.size() - 1) + 0.5);
  return kept[i];
}

Measurement measure_round_robin(std::size_t kernels, int rounds,
                                const std::function<double(std::size_t, int)>& run_once_s,
                                const std::vector<int>& reps, std::uint64_t seed,
                                const std::function<bool()>& out_of_time) {
  Measurement m;
  m.pass_a.resize(kernels);
  m.pass_b.resize(kernels);
  std::vector<std::size_t> order(kernels);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  for (int r = 0; r < rounds; ++r) {
    // Passes alternate round by round, so both see the same machine over the same minutes.
    auto& pass = (r % 2 == 0) ? m.pass_a : m.pass_b;
    for (const std::size_t i : order) pass[i].push_back(run_once_s(i, reps[i]));
    // (Since session 47, a review: a run planned at 299 s had taken 461.)
    if (r % 2 == 1 && r + 1 >= 6 && out_of_time && out_of_time()) break;
  }
  return m;
}

}  // namespace dlcarbon::calibrate
