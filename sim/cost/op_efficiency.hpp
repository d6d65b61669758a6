#pragma once
// The fraction of peak one op's kernel reaches on a device: shared by the training step and
// inference (docs/hardware-model.md, "Roofline and energy roofline"). Internal to sim/cost.

#include <algorithm>
#include <string>

#include "dlcarbon/graph.hpp"
#include "dlcarbon/roofline.hpp"

namespace dlcarbon::cost_detail {

// The ceiling of a GEMM-like op (a convolution's by layout) times the shape factor of one product
// C[m x n] = A[m x k] B[k x n], `count` of them: the forward's shape, or either of the backward's
// two products (docs/hardware-model.md).
// A convolution whose layout was calibrated runs at that efficiency alone: `dlcarbon calibrate`
// writes it as the rate over the measured convolutions, their shapes' losses included (since
// session 46, a review: the product's shape factor on top charged them twice, ResNet-50 on the
// measured CPU about 20 % slow).
inline double gemm_efficiency_at(const hardware::DeviceModel& dev, const graph::Op& op, const std::string& layout,
                                 double m, double n, double k, double count) {
  if (op.kind == graph::OpKind::conv2d && dev.conv_efficiency.count(layout)) return dev.conv_efficiency.at(layout);
  const double ceiling = op.kind == graph::OpKind::conv2d ? hardware::conv_efficiency(dev, layout) : dev.gemm_efficiency;
  return ceiling * hardware::gemm_shape_factor(dev, m, n, k, std::max(1.0, count));
}

// The misaligned-row factor of a weight product (matmul) whose forward runs n columns over a
// reduction of k on one device; its backward's two products read and write the same rows, so they
// share it. 1 for everything else: attention's products (their n or k is a sequence length, which
// FlashAttention's kernels and paged KV caches pad), convolutions (cuDNN pads their channels) and
// routers.
inline double alignment(const hardware::DeviceModel& dev, const graph::Op& op, double n, double k) {
  return op.kind == graph::OpKind::matmul && !op.fused_attention ? hardware::alignment_factor(dev, n, k) : 1.0;
}

// The pass that sums a split-K product's partial results (docs/hardware-model.md): where the
// reduction of `count` products C[m x n] is split s ways, each split writes its m x n partial sums
// in fp32 and a reduction kernel reads the s of them and adds them up (cuBLAS's and CUTLASS's
// parallel split-K); the product's own bytes already count writing C once. 8 s m n bytes and
// (s - 1) m n additions a product, at the vector rate and the elementwise bandwidth, one launch.
// Zero where the product is not split, and for fused attention (its kernel's measured rate covers
// how it is scheduled).
struct Reduction {
  double seconds = 0, flops = 0, bytes = 0;
};
inline Reduction split_k_reduction(const hardware::DeviceModel& dev, const graph::Op& op, const std::string& dtype,
                                   double m, double n, double k, double count) {
  if (op.fused_attention || !(graph::is_gemm(op.kind) || op.kind == graph::OpKind::router)) return {};
  const double s = hardware::gemm_split_k(dev, m, n, k, std::max(1.0, count));
  if (!(s > 1)) return {};
  const double cells = m * n * std::max(1.0, count);
  Reduction r{0, (s - 1) * cells, 8 * s * cells};
  r.seconds = hardware::kernel_time(dev, dtype, r.flops, r.bytes, false).seconds;
  return r;
}

// The forward bias add of a product that does not fuse it (`fusion: none`): TensorFlow 1.x runs
// BiasAdd after MatMul or Conv2D, and PyTorch 1.x's F.linear on a 3-D input `output += bias` after
// its matmul, a kernel of its own that reads the output and the bias and writes the output. Fused
// codes add it in the product's epilogue (cuBLASLt, Megatron-LM's and XLA's fusions), and a TPU
// always fuses it. `rows` x `n`: the output one device adds it to. Since session 47 (a review; the
// backward's reduction of the bias gradient was charged, its forward add was not).
inline Reduction unfused_bias_add(const hardware::DeviceModel& dev, const graph::Op& op, const std::string& dtype,
                                  graph::Fusion fusion, bool tpu, double rows, double n, double bytes_per_value) {
  if (!op.bias || op.bias_in_activation || fusion != graph::Fusion::none || tpu) return {};
  if (op.kind != graph::OpKind::matmul && op.kind != graph::OpKind::conv2d) return {};
  const double cells = rows * n * static_cast<double>(std::max<std::int64_t>(1, op.count));
  Reduction r{0, cells, bytes_per_value * (2 * cells + n * static_cast<double>(std::max<std::int64_t>(1, op.count)))};
  r.seconds = hardware::kernel_time(dev, dtype, r.flops, r.bytes, false).seconds;
  return r;
}

// 0 for ops that are not GEMM-like (kernel_time then uses the vector rate and bandwidth). `m`, `n`,
// `k` and `count` are the product one device runs (after tensor and expert parallelism split it;
// `k` or `m` < 0: the op's own).
inline double op_efficiency(const hardware::DeviceModel& dev, const graph::Op& op, const std::string& layout,
                            const std::string& fusion, double n, double count, double k = -1, double m = -1) {
  if (!graph::is_gemm(op.kind) && op.kind != graph::OpKind::router) return 0;
  if (op.fused_attention) {
    // A fused attention kernel reaches what its generation was measured at on this device, a
    // rate of the whole kernel (tiles, waves, softmax and rescaling between its two products
    // included) over its products' FLOPs, 4 x head_dim a score; the op also counts 5 FLOPs a
    // score for the softmax, which the measured rate already covers.
    const std::string kernel = graph::attention_kernel(fusion);
    const auto it = dev.attention_efficiency.find(kernel);
    if (it != dev.attention_efficiency.end()) {
      const double per_score = 4 * static_cast<double>(op.n);
      // FlashAttention-1 has kernels for heads of 32, 64 and 128 and runs a head in the smallest
      // that holds it (fmha_api.cpp's run_fmha_fwd and run_fmha_bwd: d <= 32, <= 64, <= 128), its
      // tiles computing the padded channels: an 80-wide head at 80 / 128 of the rate (since
      // session 51, a review). (Wider heads it refuses; they are left at the rate.)
      double padded = 1;
      if (kernel == "flash1") {
        const double w = static_cast<double>(op.n);
        const double tile = w <= 32 ? 32 : w <= 64 ? 64 : w <= 128 ? 128 : w;
        padded = w / tile;
      }
      return it->second * padded * (per_score + 5) / per_score;
    }
  }
  const double kk = k >= 0 ? k : static_cast<double>(op.k);
  return gemm_efficiency_at(dev, op, layout, m >= 0 ? m : static_cast<double>(op.m), n, kk, count) * alignment(dev, op, n, kk);
}

}  // namespace dlcarbon::cost_detail
