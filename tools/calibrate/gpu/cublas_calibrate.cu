// dlcarbon-calibrate-gpu: cuBLAS GEMMs and device copies on an NVIDIA GPU, timed with CUDA
// events round-robin (calibration and check shapes interleaved), energy from NVML's total-energy
// counter, roofline and energy-roofline fits with the same host code as the CPU tool
// (docs/calibration.md). Built only when CMake finds CUDA; needs a GPU to run.
//
// usage: dlcarbon-calibrate-gpu [--quick] [--seconds S] [--id ID] [--from CATALOG_ID] [--out DIR]

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "calibration.hpp"

using namespace dlcarbon::calibrate;

namespace {

#define CHECK_CUDA(x)                                                                        \
  do {                                                                                       \
    cudaError_t e_ = (x);                                                                    \
    if (e_ != cudaSuccess) {                                                                 \
      std::fprintf(stderr, "dlcarbon-calibrate-gpu: %s: %s\n", #x, cudaGetErrorString(e_)); \
      std::exit(1);                                                                          \
    }                                                                                        \
  } while (0)

// NVML through dlopen: the driver ships libnvidia-ml.so.1 on every GPU machine; no header needed.
struct Nvml {
  using Init = int (*)();
  using Handle = int (*)(unsigned, void**);
  using Energy = int (*)(void*, unsigned long long*);
  using Power = int (*)(void*, unsigned*);
  void* lib = nullptr;
  void* device = nullptr;
  Energy energy = nullptr;
  Power power = nullptr;
  bool open() {
    lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!lib) return false;
    auto init = reinterpret_cast<Init>(dlsym(lib, "nvmlInit_v2"));
    auto handle = reinterpret_cast<Handle>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    energy = reinterpret_cast<Energy>(dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption"));
    power = reinterpret_cast<Power>(dlsym(lib, "nvmlDeviceGetPowerUsage"));
    return init && handle && energy && power && init() == 0 && handle(0, &device) == 0;
  }
  double joules() const {
    unsigned long long mj = 0;
    return energy(device, &mj) == 0 ? static_cast<double>(mj) / 1e3 : NAN;
  }
  double watts() const {
    unsigned mw = 0;
    return power(device, &mw) == 0 ? mw / 1e3 : NAN;
  }
};

struct Gemm {
  cudaDataType_t ab, c;
  cublasComputeType_t compute;
};

Gemm gemm_types(const std::string& dt) {
  if (dt == "tf32") return {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F_FAST_TF32};
  if (dt == "f16") return {CUDA_R_16F, CUDA_R_16F, CUBLAS_COMPUTE_32F};
  if (dt == "bf16") return {CUDA_R_16BF, CUDA_R_16BF, CUBLAS_COMPUTE_32F};
  return {CUDA_R_32F, CUDA_R_32F, CUBLAS_COMPUTE_32F};
}

std::string arg(int argc, char** argv, const char* name, const std::string& fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  }
  return fallback;
}

bool flag(int argc, char** argv, const char* name) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = flag(argc, argv, "--quick");
  const double budget = std::atof(arg(argc, argv, "--seconds", quick ? "30" : "240").c_str());
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "dlcarbon-calibrate-gpu: no CUDA device here; nothing to calibrate\n");
    return 1;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  cublasHandle_t blas;
  if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) return 1;
  Nvml nvml;
  const bool have_nvml = nvml.open();

  const auto specs = shape_set_gpu(quick);
  // Buffers big enough for the largest kernel, shared by all (contents do not matter for time).
  std::size_t max_bytes = 0;
  for (const auto& s : specs) max_bytes = std::max<std::size_t>(max_bytes, static_cast<std::size_t>(s.bytes()));
  void *a = nullptr, *b = nullptr, *c = nullptr;
  CHECK_CUDA(cudaMalloc(&a, max_bytes));
  CHECK_CUDA(cudaMalloc(&b, max_bytes));
  CHECK_CUDA(cudaMalloc(&c, max_bytes));
  CHECK_CUDA(cudaMemset(a, 0, max_bytes));
  CHECK_CUDA(cudaMemset(b, 0, max_bytes));
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));

  auto launch = [&](const KernelSpec& s) {
    if (s.kind == "copy") {
      CHECK_CUDA(cudaMemcpyAsync(c, a, static_cast<std::size_t>(s.elements) * 4, cudaMemcpyDeviceToDevice));
      return;
    }
    const Gemm g = gemm_types(s.dtype);
    const float one = 1.f, zero = 0.f;
    // Column-major: C[m x n] = A[m x k] B[k x n].
    cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k),
                 &one, a, g.ab, static_cast<int>(s.m), b, g.ab, static_cast<int>(s.k), &zero, c, g.c,
                 static_cast<int>(s.m), g.compute, CUBLAS_GEMM_DEFAULT);
  };
  auto run_once = [&](std::size_t i, int reps) {
    CHECK_CUDA(cudaEventRecord(start));
    for (int r = 0; r < reps; ++r) launch(specs[i]);
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    return ms / 1e3 / reps;
  };
  std::vector<int> reps;
  double round_s = 0;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    run_once(i, 3);  // warm-up
    const double t = std::max(1e-7, run_once(i, 1));
    reps.push_back(std::max(1, static_cast<int>(2e-3 / t)));
    round_s += reps.back() * t;
  }
  int rounds = static_cast<int>(0.7 * budget / std::max(round_s, 1e-6));
  rounds = std::max(6, std::min(400, rounds - rounds % 2));
  std::printf("dlcarbon-calibrate-gpu: %s, %zu kernels, %d interleaved rounds, NVML %s\n", prop.name, specs.size(),
              rounds, have_nvml ? "energy counters" : "not found (no energy)");
  const Measurement m = measure_round_robin(specs.size(), rounds, run_once, reps, 1);

  std::vector<double> t(specs.size()), ta(specs.size()), tb(specs.size()), energy(specs.size(), NAN);
  for (std::size_t i = 0; i < specs.size(); ++i) {
    std::vector<double> both = m.pass_a[i];
    both.insert(both.end(), m.pass_b[i].begin(), m.pass_b[i].end());
    t[i] = robust_time(both);
    ta[i] = robust_time(m.pass_a[i]);
    tb[i] = robust_time(m.pass_b[i]);
  }
  // Energy: each kernel repeated for ~0.3 s between two reads of the total-energy counter.
  double idle_w = NAN;
  if (have_nvml) {
    CHECK_CUDA(cudaDeviceSynchronize());
    std::this_thread::sleep_for(std::chrono::seconds(1));
    idle_w = nvml.watts();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const int n = std::max(1, static_cast<int>(0.3 / std::max(t[i], 1e-7)));
      const double e0 = nvml.joules();
      for (int r = 0; r < n; ++r) launch(specs[i]);
      CHECK_CUDA(cudaDeviceSynchronize());
      energy[i] = (nvml.joules() - e0) / n;
    }
  }
  // Fits per group on calibration shapes; errors on check shapes. Copies: the roofline over L2 and
  // memory. GEMMs: the shape model of the CPU calibration (docs/calibration.md), the weights
  // streamed from L2 or from memory, t = a F (1 + n0/n + k0/k) + W sum_l w_l share_l(W) + c.
  const std::vector<double> l2{static_cast<double>(prop.l2CacheSize)};
  std::map<std::string, RooflineFit> fits;
  std::map<std::string, GemmShapeFit> shapes;
  std::map<std::string, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < specs.size(); ++i) groups[specs[i].group()].push_back(i);
  for (const auto& [group, members] : groups) {
    std::vector<std::size_t> cal;
    for (const auto i : members) {
      if (specs[i].role == Role::calibrate) cal.push_back(i);
    }
    const auto [F, B, T, M, N, K, gemm] = group_samples(specs, t, cal);
    fits[group] = fit_roofline(F, B, T, l2);
    if (gemm && !T.empty()) {
      const GemmShapeFit shape = fit_gemm_shape(M, N, K, T, l2, element_bytes(specs[members.front()].dtype));
      if (shape.a > 0) {
        shapes[group] = shape;
        fits[group].a = shape.a;  // the asymptotic rate is the entry's peak
        fits[group].c = shape.c;
      }
    }
  }
  const auto predict = [&](const KernelSpec& s) {
    double m = 0, n = 0, k = 0;
    if (const auto it = shapes.find(s.group()); it != shapes.end() && gemm_dims(s, m, n, k)) return it->second.predict(m, n, k);
    return fits[s.group()].predict(s.flops(), s.bytes());
  };
  std::vector<double> errors, noise, F, B, T, E;
  std::printf("\nheld-out kernel                              measured    predicted   error   repeatability\n");
  for (std::size_t i = 0; i < specs.size(); ++i) {
    noise.push_back(ta[i] / tb[i] - 1);
    if (specs[i].role == Role::calibrate && !std::isnan(energy[i])) {
      F.push_back(specs[i].flops());
      B.push_back(specs[i].bytes());
      T.push_back(t[i]);
      E.push_back(energy[i]);
    }
    if (specs[i].role != Role::check) continue;
    const double p = predict(specs[i]);
    errors.push_back(p / t[i] - 1);
    std::printf("%-44s %9.2f us %9.2f us %+6.1f%% %+6.1f%%\n", specs[i].label().c_str(), t[i] * 1e6, p * 1e6,
                100 * errors.back(), 100 * noise.back());
  }
  const auto st = error_stats(errors), ns = error_stats(noise);
  std::printf("\nheld-out: %zu kernels, median |error| %.1f%%, p90 %.1f%%, within 10%% %.0f%%, within 15%% %.0f%%; "
              "noise floor (pass A vs B) median %.1f%%\n",
              st.n, 100 * st.median_abs, 100 * st.p90_abs, 100 * st.within_10, 100 * st.within_15, 100 * ns.median_abs);
  EnergyFit ef;
  if (!E.empty()) {
    ef = fit_energy(F, B, T, E);
    std::printf("energy roofline: e_flop %.3g pJ/FLOP, e_byte %.3g pJ/B, static %.1f W, idle %.1f W\n", ef.e_flop * 1e12,
                ef.e_byte * 1e12, ef.static_w, idle_w);
  }

  // The hardware entry and the raw measurements (CSV beside it).
  const std::string id = arg(argc, argv, "--id", "gpu-measured");
  const std::filesystem::path out = arg(argc, argv, "--out", ".");
  std::filesystem::create_directories(out);
  const auto rate = [&](const char* g) { return fits.count(g) ? 1 / fits[g].a : 0.0; };
  std::ofstream y(out / (id + ".yaml"));
  y << "# Written by dlcarbon-calibrate-gpu on " << prop.name << "; held-out median |error| " << 100 * st.median_abs
    << " %, within 15 %: " << 100 * st.within_15 << " %; noise floor " << 100 * ns.median_abs << " %.\n"
    << "schema_version: 1\nhardware:\n  - id: " << id << "\n";
  const std::string from = arg(argc, argv, "--from", "");
  if (!from.empty()) y << "    from: " << from << "\n";
  y << "    name: \"" << prop.name << " (measured)\"\n    kind: gpu\n    count_unit: chip\n    peak:\n"
    << "      fp32: \"" << rate("matmul/f32") << " FLOP/s\"\n      tf32: \"" << rate("matmul/tf32") << " FLOP/s\"\n"
    << "      fp16: \"" << rate("matmul/f16") << " FLOP/s\"\n      bf16: \"" << rate("matmul/bf16") << " FLOP/s\"\n"
    << "    memory: \"" << prop.totalGlobalMem << " B\"\n"
    << "    memory_bandwidth: \"" << (fits.count("copy/f32") ? 1 / fits["copy/f32"].memory_b() : 0.0) << " B/s\"\n";
  if (!std::isnan(idle_w)) y << "    idle_power: \"" << idle_w << " W\"\n";
  y << "    efficiency:\n      gemm: 1\n      memory: 1\n      launch: \""
    << (fits.count("matmul/bf16") ? fits["matmul/bf16"].c : 0.0) << " s\"\n";
  if (shapes.count("matmul/bf16")) {
    // How GEMM efficiency falls with small dimensions (the bf16 fit; m charges the weights at the
    // memory rate, docs/calibration.md).
    const auto& sh = shapes["matmul/bf16"];
    y << "      gemm_shape: {m: " << sh.m0_equivalent() << ", n: " << sh.n0 << ", k: " << sh.k0 << "}\n";
  }
  y
    << "      source: \"measured by dlcarbon-calibrate-gpu (cuBLAS GemmEx, device copies); raw data in " << id
    << ".csv\"\n    source: \"dlcarbon-calibrate-gpu, " << prop.name << "\"\n"
    << "    notes: \"energy roofline (NVML): e_flop " << ef.e_flop * 1e12 << " pJ/FLOP (bf16), e_byte " << ef.e_byte * 1e12
    << " pJ/B, static " << ef.static_w << " W\"\n";
  std::ofstream csv(out / (id + ".csv"));
  csv << "kernel,group,role,flops,bytes,time_pass_a_s,time_pass_b_s,time_s,energy_j\n";
  for (std::size_t i = 0; i < specs.size(); ++i) {
    csv << '"' << specs[i].label() << "\"," << specs[i].group() << "," << (specs[i].role == Role::check ? "check" : "calibrate")
        << "," << specs[i].flops() << "," << specs[i].bytes() << "," << ta[i] << "," << tb[i] << "," << t[i] << ","
        << energy[i] << "\n";
  }
  std::printf("wrote %s and %s\n", (out / (id + ".yaml")).c_str(), (out / (id + ".csv")).c_str());
  cublasDestroy(blas);
  return 0;
}
