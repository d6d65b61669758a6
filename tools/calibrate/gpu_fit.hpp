#pragma once
// The host half of the GPU calibration (docs/calibration.md, "GPU"): the measurements of one run
// (times, sustained times and energies per kernel), their CSV form, and the fits that turn them
// into a hardware entry. dlcarbon-calibrate-gpu measures on the GPU and calls fit_gpu;
// dlcarbon-calibrate-gpu-refit reads a committed CSV and fits it again without a GPU.

#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "calibration.hpp"

namespace dlcarbon::calibrate {

struct GpuDevice {
  std::string name;         // "NVIDIA H200"
  double l2_bytes = 0;      // cudaDeviceProp::l2CacheSize
  double memory_bytes = 0;  // cudaDeviceProp::totalGlobalMem
  double idle_w = -1;       // NVML power a few seconds after the last kernel; < 0: unknown
  std::string measured;     // when (UTC, ISO 8601), for the entry's source; may be empty
};

struct GpuMeasurements {
  GpuDevice device;
  std::vector<KernelSpec> specs;
  std::vector<double> t, t_a, t_b;  // round-robin robust time, and of passes A and B (s)
  std::vector<double> t_sustained;  // per call, ~0.5 s back to back (s); NaN: not measured
  std::vector<double> energy;       // J per call over that run; NaN: not measured
};

// CSV: one comment line with the device, then kernel,group,role,flops,bytes,time_pass_a_s,
// time_pass_b_s,time_s,time_sustained_s,energy_j. read_gpu_csv throws std::runtime_error naming
// the file and line.
void write_gpu_csv(const GpuMeasurements& m, const std::filesystem::path& path);
GpuMeasurements read_gpu_csv(const std::filesystem::path& path);

// "matmul bf16 128x256x512" or "copy f32 65536" back to a spec (role calibrate); throws
// std::invalid_argument for anything else.
KernelSpec parse_gpu_label(const std::string& label);

struct GpuFit {
  ErrorStats time, noise, energy;  // held-out time errors, pass A vs B, held-out energy errors
  double l2_effective = 0;         // bytes, chosen by the copies' calibration error
  EnergyFit energy_roofline;       // e_flop per bf16 FLOP, e_byte per byte from memory
  std::vector<double> predicted;   // s, per kernel
};

// Fits the time models per group and the energy roofline, prints the report to `log` and writes
// the hardware entry `<out>/<id>.yaml` (`from`: the catalog entry it refines, may be empty).
GpuFit fit_gpu(const GpuMeasurements& m, const std::string& id, const std::string& from,
               const std::filesystem::path& out, std::ostream& log);

}  // namespace dlcarbon::calibrate
