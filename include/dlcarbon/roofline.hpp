#pragma once
// Hardware models: the roofline (time) and the energy roofline (Choi et al., IPDPS 2013) of
// one device. Plain numbers in, plain numbers out: this room knows nothing of graphs.
//
//   DeviceModel v100 = make_device_model(hardware_entry);
//   KernelTime t = kernel_time(v100, "fp16", flops, bytes, /*gemm=*/true);
//   double joules = kernel_energy(v100, flops, bytes, t.seconds);

#include <array>
#include <map>
#include <string>

#include "dlcarbon/scenario.hpp"

namespace dlcarbon::hardware {

struct DeviceModel {
  std::string id;
  std::map<std::string, double> peak_flop_per_s;  // dense, per dtype
  double vector_peak = 0;  // non-matrix work's rate where the catalog gives one (0: the fp32 peak)
  double memory_bandwidth = 0;                    // B/s
  double memory_bytes = 0;
  // Achieved fraction of peak for large kernels (roofline ceilings), and the fixed cost of
  // launching one kernel. The tail of small kernels is the launch term: t = F / (eta P) + t_launch.
  double gemm_efficiency = 0;
  double headline_gemm_efficiency = 0;  // the catalog's `gemm`, which e_flop is set against (at_precision keeps it)
  double memory_efficiency = 0;       // memory-bound GEMMs (a weight stream)
  double elementwise_efficiency = 0;  // every other memory-bound kernel (Hardware::elementwise_efficiency)
  std::map<std::string, double> conv_efficiency;  // by activation layout, where calibrated
  std::map<std::string, double> attention_efficiency;  // by FlashAttention generation, where published
  std::array<double, 3> gemm_shape{0, 0, 0};      // m0, n0, k0 (calibrated; 0: no shape dependence)
  std::map<std::string, Hardware::GemmCeiling> gemm_by_precision;  // where measured apart (at_precision)
  std::int64_t compute_units = 0;                 // SMs for tile and wave quantisation (0: none)
  std::int64_t matrix_unit = 0;                   // systolic array side for operand padding (TPU MXU: 128; 0: none)
  // GPUs' matrix units read rows of 16 bytes: a 16- or 8-bit product whose feature dimensions are
  // not a multiple of 16 B leaves the tensor-core path (at_precision sets the elements; 0: no rule).
  double alignment_bytes = 0;
  double alignment_elements = 0;
  double misaligned_gemm = 1;  // the rate of such a product, as a fraction of the aligned one's
  double launch_s = 0;
  // Energy roofline E = F e_flop + B e_byte + P_static t, while the device is busy;
  // P_idle when it is powered and waiting.
  double idle_w = 0;
  double static_w = 0;
  double e_flop_j = 0;  // per FLOP at the device's fastest 16-bit rate (scaled by peak for other dtypes)
  double e_byte_j = 0;
  double tdp_w = 0;
  double power_limit_w = 0;  // the most it draws: the measured maximum, else the TDP
  double host_w = 0;  // host share of the node per accelerator
  std::string efficiency_source;
  std::string energy_source;

  // Peak for a dtype; a dtype the device lacks runs at the nearest it has (tf32 -> fp32,
  // bf16 <-> fp16, fp8/int8 -> 16-bit). Throws std::invalid_argument when nothing fits.
  double peak(const std::string& dtype) const;
  // The precision whose rate `peak` takes for `dtype` (itself where listed); "" for fp32 or tf32
  // emulated on 16-bit matrix units (a quarter of their rate).
  std::string rate_precision(const std::string& dtype) const;

  // This device as a job at `dtype` sees it: the GEMM ceiling and shape measured at that precision,
  // or at the precision whose rate it runs at (tf32 at fp32's, bf16 at fp16's where only fp16 is
  // listed; since session 43), where the catalog has them, else the headline ones. (kernel_energy
  // scales the energy a FLOP by the kernel's precision's ceiling, whatever the job's.)
  DeviceModel at_precision(const std::string& dtype) const;
  // The measured ceiling (gemm_by_precision) a product at `dtype` runs at, else end().
  std::map<std::string, Hardware::GemmCeiling>::const_iterator ceiling_entry(const std::string& dtype) const;
};

// Bytes per value of a compute dtype: fp32/tf32 4, fp16/bf16 2, fp8/int8 1.
double bytes_per_value(const std::string& dtype);

// A misaligned 16-bit GEMM on an H200 (cuBLAS, 6000 x 5000 x 700 against 704, bf16 and fp16):
// 70 against 234 us, 0.30 of the aligned rate (data/hardware/measured/nvidia-h200-measured.csv).
constexpr double kMisalignedGemm = 0.30;

// misaligned_gemm where a product's feature dimensions, `n` (output columns) and `k` (reduction),
// as one device runs them, are not whole multiples of alignment_elements; else 1. The row count
// (tokens) is never a leading dimension of a row-major activation and does not count.
double alignment_factor(const DeviceModel& device, double n, double k);

struct KernelTime {
  double seconds = 0;
  double compute_s = 0;
  double memory_s = 0;
  bool memory_bound = false;
};

// Roofline time of one kernel: max(F / (P eta_c), B / (BW eta)) + t_launch, with eta the streaming
// eta_m for a GEMM and the frameworks' eta_e (elementwise_efficiency) for every other kernel.
KernelTime kernel_time(const DeviceModel& device, const std::string& dtype, double flops, double bytes,
                       bool gemm, double efficiency = 0);

// Compute efficiency of a convolution in `layout`: the calibrated one, else the GEMM ceiling.
double conv_efficiency(const DeviceModel& device, const std::string& layout);

// How much of the GEMM ceiling `count` products C[m x n] += A[m x k] B[k x n] reach:
//   calibrated devices: 1 / (1 + m0/m + n0/n + k0/k), the fitted overheads per row, column and
//   reduction step;
//   devices with `compute_units` (SMs): tile and wave quantisation (NVIDIA, "Matrix Multiplication
//   Background User's Guide"): output tiles padded to the tile size, spread over the SMs in whole
//   waves; the best of the usual tile sizes (256x128, 128x128, 128x64, 64x64), as a library's
//   heuristics would pick;
//   devices with a `matrix_unit` (a TPU's 128 x 128 MXU): the reduction dimension and the larger
//   output dimension are padded to the unit's side, the smaller output dimension (the operand
//   streamed through it in 8-row chunks) to 8 (Austin et al. 2025, How to Scale Your Model, tpus.md);
//   else 1.
double gemm_shape_factor(const DeviceModel& device, double m, double n, double k, double count = 1);

// The number of ways the tile gemm_shape_factor picks splits the reduction of `count` products
// C[m x n] = A[m x k] B[k x n] on a device with `compute_units` (split-K where there are fewer
// tiles than SMs, each split at least 256 of k); 1 where it is not split or the device gives no SMs.
double gemm_split_k(const DeviceModel& device, double m, double n, double k, double count = 1);

// Energy roofline of one kernel that ran `seconds`, computing `flops` at `dtype`; a product
// (`gemm`) at its precision's measured ceiling draws what one at the headline ceiling does.
double kernel_energy(const DeviceModel& device, const std::string& dtype, double flops, double bytes,
                     double seconds, bool gemm = true);

// The model of a catalog entry: its calibrated `efficiency` and `energy` blocks where the
// catalog has them, else the documented datasheet defaults (docs/hardware-model.md).
DeviceModel make_device_model(const Hardware& hardware);

// A device's links, one direction, bytes a second: inside its node (NVLink, ICI) and between nodes,
// as its `node:` block gives them, else the unsourced default (docs/hardware-model.md, "Collectives"):
// a tenth of the memory bandwidth inside and a tenth of that between. `given` says whether the
// entry has a `node:` block at all.
struct NodeLinks {
  double intra = 0, inter = 0;
  bool given = false;
};
NodeLinks node_links(const Hardware& hardware);

}  // namespace dlcarbon::hardware
