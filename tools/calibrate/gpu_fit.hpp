#pragma once
// The host half of the GPU calibration (docs/calibration.md, "GPU"): the measurements of one run
// (times, sustained times and energies per kernel), their CSV form, and the fits that turn them
// into a hardware entry. dlcarbon-calibrate-gpu measures on the GPU and calls fit_gpu;
// `dlcarbon calibrate --refit RUN.csv` reads a committed CSV and fits it again without a GPU.

#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
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
  std::string from;         // the catalog entry of its datasheet (--from), for the refit; may be empty
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

// The datasheet entry a measured one refines: its id, dense peaks by dtype (fp32, tf32, fp16,
// bf16), memory bandwidth (B/s), and whether it has an SM count (tile and wave quantisation).
struct GpuDatasheet {
  std::string id;
  std::map<std::string, double> peak;
  double bandwidth = 0;
  bool wave_quantised = false;
};

// Fits the time models per group and the energy roofline and prints the report to `log`; with a
// datasheet, also writes the hardware entry `<out>/<id>.yaml` refining it (`from:`), its rates
// as fractions of the datasheet's. The device tool has no catalog and passes none. `check`, where
// given, reads the written entry (its temporary file, then where it goes) and throws to refuse it:
// nothing is left in `out` then.
// `raw` is the raw CSV's file name the entry names as its data (default: the id's).
using EntryCheck = std::function<void(const std::filesystem::path& written, const std::filesystem::path& destination)>;
GpuFit fit_gpu(const GpuMeasurements& m, const std::string& id, const GpuDatasheet* datasheet,
               const std::filesystem::path& out, std::ostream& log, const EntryCheck& check = {},
               const std::string& raw = {});

// Moves a written entry's temporary file into place once `before` has run (the entry's check, the
// raw samples' write; both calibrations): if `before` throws, or the move fails, the temporary is
// removed and nothing replaces the entry. False where the move failed (each caller says so in its
// own terms).
bool place_entry(const std::filesystem::path& tmp, const std::filesystem::path& entry, const std::function<void()>& before);

}  // namespace dlcarbon::calibrate
