// dlcarbon-calibrate-gpu: cuBLAS GEMMs and device copies on an NVIDIA GPU, timed with CUDA
// events round-robin (calibration and check shapes interleaved), energy from NVML's total-energy
// counter, roofline and energy-roofline fits with the same host code as the CPU tool
// (docs/calibration.md). Writes the raw measurements (<id>.csv) and prints the fits; the hardware
// entry is written beside the catalog by `dlcarbon calibrate --refit <id>.csv`. Built only when
// CMake finds CUDA; needs a GPU to run.
//
// usage: dlcarbon-calibrate-gpu [--quick] [--seconds S] [--id ID] [--from CATALOG_ID] [--out DIR]

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "calibration.hpp"
#include "gpu_fit.hpp"

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
  using ByBus = int (*)(const char*, void**);
  using Energy = int (*)(void*, unsigned long long*);
  using Power = int (*)(void*, unsigned*);
  void* lib = nullptr;
  void* device = nullptr;
  Energy energy = nullptr;
  Power power = nullptr;
  // The NVML device of CUDA device 0, found by its PCI bus id: NVML numbers the GPUs in PCI order
  // and ignores CUDA_VISIBLE_DEVICES, so index 0 may be another GPU (since session 35, from a
  // review). Index 0 only where the bus id cannot be had.
  bool open(const char* pci_bus_id) {
    lib = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    if (!lib) return false;
    auto init = reinterpret_cast<Init>(dlsym(lib, "nvmlInit_v2"));
    auto handle = reinterpret_cast<Handle>(dlsym(lib, "nvmlDeviceGetHandleByIndex_v2"));
    auto by_bus = reinterpret_cast<ByBus>(dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2"));
    energy = reinterpret_cast<Energy>(dlsym(lib, "nvmlDeviceGetTotalEnergyConsumption"));
    power = reinterpret_cast<Power>(dlsym(lib, "nvmlDeviceGetPowerUsage"));
    if (!(init && handle && energy && power && init() == 0)) return false;
    if (by_bus && pci_bus_id && *pci_bus_id && by_bus(pci_bus_id, &device) == 0) return true;
    return handle(0, &device) == 0;
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

// Inputs hold values of their own data type spread over [-1, 1) (a hash of the index), never
// zeros: a GEMM over zeros toggles almost no bits, draws far less power and so holds higher
// clocks (session 29's first run on an H200 with zero-filled buffers fitted 1,033 TFLOP/s of
// bf16, above the 989 of the datasheet, and 0.25 pJ/FLOP).
__device__ float spread(std::size_t i, unsigned seed) {
  unsigned x = static_cast<unsigned>(i) * 2654435761u ^ static_cast<unsigned>(i >> 32) ^ seed * 0x9e3779b9u;
  x ^= x >> 16;
  x *= 0x7feb352du;
  x ^= x >> 15;
  x *= 0x846ca68bu;
  x ^= x >> 16;
  return static_cast<float>(x >> 8) * (2.0f / 16777216.0f) - 1.0f;
}
template <class T>
__global__ void fill(T* p, std::size_t n, unsigned seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    p[i] = static_cast<T>(spread(i, seed));
  }
}

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
  char bus_id[32] = {};
  if (cudaDeviceGetPCIBusId(bus_id, sizeof bus_id, 0) != cudaSuccess) bus_id[0] = '\0';
  Nvml nvml;
  const bool have_nvml = nvml.open(bus_id);

  const auto specs = shape_set_gpu(quick);
  // Buffers big enough for the largest kernel: two inputs per storage type (f32 also for tf32),
  // filled with values of that type (see `fill`), and one output shared by all.
  std::size_t max_bytes = 0;
  for (const auto& s : specs) max_bytes = std::max<std::size_t>(max_bytes, static_cast<std::size_t>(s.bytes()));
  std::map<std::string, std::pair<void*, void*>> inputs;
  unsigned seed = 1;
  for (const char* storage : {"f32", "f16", "bf16"}) {
    void *x = nullptr, *y = nullptr;
    CHECK_CUDA(cudaMalloc(&x, max_bytes));
    CHECK_CUDA(cudaMalloc(&y, max_bytes));
    for (void* p : {x, y}) {
      const std::string st = storage;
      if (st == "f32") fill<<<1024, 256>>>(static_cast<float*>(p), max_bytes / 4, seed++);
      if (st == "f16") fill<<<1024, 256>>>(static_cast<__half*>(p), max_bytes / 2, seed++);
      if (st == "bf16") fill<<<1024, 256>>>(static_cast<__nv_bfloat16*>(p), max_bytes / 2, seed++);
    }
    inputs[storage] = {x, y};
  }
  void* c = nullptr;
  CHECK_CUDA(cudaMalloc(&c, max_bytes));
  CHECK_CUDA(cudaGetLastError());
  CHECK_CUDA(cudaDeviceSynchronize());
  const auto storage_of = [](const std::string& dt) { return dt == "tf32" ? std::string("f32") : dt; };
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));

  auto launch = [&](const KernelSpec& s) {
    const auto& [a, b] = inputs.at(storage_of(s.dtype));
    if (s.kind == "copy") {
      CHECK_CUDA(cudaMemcpyAsync(c, a, static_cast<std::size_t>(s.elements) * 4, cudaMemcpyDeviceToDevice));
      return;
    }
    const Gemm g = gemm_types(s.dtype);
    const float one = 1.f, zero = 0.f;
    // Column-major: C[m x n] = A[m x k] B[k x n].
    // A product cuBLAS refuses would time an empty launch: stop instead (since session 35).
    const cublasStatus_t status =
        cublasGemmEx(blas, CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(s.m), static_cast<int>(s.n), static_cast<int>(s.k),
                     &one, a, g.ab, static_cast<int>(s.m), b, g.ab, static_cast<int>(s.k), &zero, c, g.c,
                     static_cast<int>(s.m), g.compute, CUBLAS_GEMM_DEFAULT);
    if (status != CUBLAS_STATUS_SUCCESS) {
      std::fprintf(stderr, "dlcarbon-calibrate-gpu: cublasGemmEx %s failed (status %d)\n", s.label().c_str(), static_cast<int>(status));
      std::exit(1);
    }
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
  // Energy: each kernel repeated for ~0.5 s between two reads of the total-energy counter, the
  // repetitions timed too: a big GEMM run back to back for 0.5 s meets the power limit and slows
  // (session 29: 8192^3 bf16 drew 1.21 J a call, 860 W at its round-robin time), so the energy
  // fit takes this sustained time, and the CSV keeps both.
  std::vector<double> t_sustained(specs.size(), NAN);
  double idle_w = NAN;
  if (have_nvml) {
    CHECK_CUDA(cudaDeviceSynchronize());
    std::this_thread::sleep_for(std::chrono::seconds(3));
    idle_w = nvml.watts();
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const int n = std::max(1, static_cast<int>(0.5 / std::max(t[i], 1e-7)));
      const double e0 = nvml.joules();
      CHECK_CUDA(cudaEventRecord(start));
      for (int r = 0; r < n; ++r) launch(specs[i]);
      CHECK_CUDA(cudaEventRecord(stop));
      CHECK_CUDA(cudaEventSynchronize(stop));
      float ms = 0;
      CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
      t_sustained[i] = ms / 1e3 / n;
      energy[i] = (nvml.joules() - e0) / n;
    }
  }
  GpuMeasurements run;
  run.device.name = prop.name;
  run.device.l2_bytes = static_cast<double>(prop.l2CacheSize);
  run.device.memory_bytes = static_cast<double>(prop.totalGlobalMem);
  run.device.idle_w = std::isnan(idle_w) ? -1 : idle_w;
  {
    const std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
    run.device.measured = when;
  }
  run.specs = specs;
  run.t = t;
  run.t_a = ta;
  run.t_b = tb;
  run.t_sustained = t_sustained;
  run.energy = energy;
  const std::string id = arg(argc, argv, "--id", "gpu-measured");
  const std::filesystem::path out = arg(argc, argv, "--out", ".");
  std::filesystem::create_directories(out);
  run.device.from = arg(argc, argv, "--from", "");
  write_gpu_csv(run, out / (id + ".csv"));
  fit_gpu(run, id, nullptr, out, std::cout);
  std::printf("wrote %s; the hardware entry: dlcarbon calibrate --refit %s (with the catalog)\n", (out / (id + ".csv")).c_str(),
              (out / (id + ".csv")).c_str());
  cublasDestroy(blas);
  return 0;
}
