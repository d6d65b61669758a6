#include "onednn_backend.hpp"

#include <array>
#include <cstdlib>
#include <memory>
#include <new>
#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#endif
#include <chrono>
#include <cstdint>
#include <cstring>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

namespace dlcarbon::calibrate {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct OneDnnBackend::State {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
};

namespace {

dt data_type(const std::string& d) {
  if (d == "bf16") return dt::bf16;
  if (d == "s8") return dt::s8;
  return dt::f32;
}

bool is_reference(const char* impl) { return std::string(impl).find("ref") != std::string::npos; }

// Fills a memory with values of its data type in [-1, 1) (f32, bf16) or small integers, the way
// real activations and weights look: never denormals, NaN or infinities, which take slow paths
// (a byte pattern reinterpreted as floats gives values down to 1e-37, whose squares underflow).
void fill(memory& m) {
  const std::size_t bytes = m.get_desc().get_size();
  const auto value = [](std::size_t i) { return static_cast<float>(static_cast<int>((i * 37) % 64) - 32) / 32.0f; };
  switch (m.get_desc().data_type()) {
    case dt::f32: {
      auto* p = static_cast<float*>(m.get_data_handle());
      for (std::size_t i = 0; i < bytes / 4; ++i) p[i] = value(i);
      break;
    }
    case dt::bf16: {
      auto* p = static_cast<std::uint16_t*>(m.get_data_handle());
      for (std::size_t i = 0; i < bytes / 2; ++i) {
        const float v = value(i);
        std::uint32_t u = 0;
        std::memcpy(&u, &v, 4);
        p[i] = static_cast<std::uint16_t>(u >> 16);  // exact: these values have at most 6 significant bits
      }
      break;
    }
    case dt::s32: {
      auto* p = static_cast<std::int32_t*>(m.get_data_handle());
      for (std::size_t i = 0; i < bytes / 4; ++i) p[i] = static_cast<std::int32_t>((i * 37) % 64) - 32;
      break;
    }
    default: {  // s8, u8
      auto* p = static_cast<unsigned char*>(m.get_data_handle());
      for (std::size_t i = 0; i < bytes; ++i) p[i] = static_cast<unsigned char>((i * 37) % 64);
    }
  }
}

// Buffers placed on purpose. Left to malloc, a kernel's source and destination often lie a few
// cache lines apart modulo 4 KiB (heap chunks of sizes that are multiples of 4 KiB, one after
// the other), and then every load aliases a store still in flight ("4K aliasing"): the same ReLU
// ran 4x slower in one run than in the next. Each buffer here starts at its own offset within a
// page (argument j at j x 1 KiB, the second instance 512 B further), so no two buffers of a
// kernel alias, whatever the allocator does. Buffers of 256 KiB and more are also aligned to
// 2 MiB and asked for transparent huge pages (madvise; ignored where the kernel does not offer
// them): with 4 KiB pages, which cache sets a buffer occupies depends on the physical pages the
// kernel happens to hand out, and a 3 MiB STREAM add ran at L3 speed in one run and at memory
// speed in the next.
struct Buffers {
  std::vector<std::shared_ptr<void>> blocks;
  memory make(const memory::desc& md, const dnnl::engine& eng, std::size_t offset) {
    const std::size_t huge = std::size_t{2} << 20;
    const std::size_t align = md.get_size() >= (std::size_t{256} << 10) ? huge : 4096;
    const std::size_t bytes = (md.get_size() + offset + 4096 + align - 1) / align * align;
    std::shared_ptr<void> block(std::aligned_alloc(align, bytes), std::free);
    if (!block) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
    if (align == huge) madvise(block.get(), bytes, MADV_HUGEPAGE);
#endif
    blocks.push_back(block);
    return memory(md, eng, static_cast<unsigned char*>(block.get()) + offset);
  }
};

// Two instances of a kernel's buffers, used in alternate calls: the round robin alternates passes
// A and B round by round, so pass A times one placement and pass B the other, and the noise floor
// (A against B) includes what placement does.
std::function<double(int)> runner(dnnl::primitive prim, const std::unordered_map<int, memory>& args, dnnl::stream& s) {
  auto buffers = std::make_shared<Buffers>();
  std::array<std::unordered_map<int, memory>, 2> sets;
  for (std::size_t instance = 0; instance < 2; ++instance) {
    std::size_t j = 0;
    for (const auto& [k, m] : args) {
      sets[instance].emplace(k, buffers->make(m.get_desc(), m.get_engine(), (j++ * 1024 + instance * 512) % 4096));
    }
  }
  for (auto& set : sets) {
    for (auto& [k, m] : set) fill(m);
    for (int i = 0; i < 3; ++i) prim.execute(s, set);  // warm-up
  }
  s.wait();
  return [prim, sets, buffers, &s, call = std::size_t{0}](int reps) mutable {
    auto& set = sets[call++ % 2];
    // One untimed call first: the kernels before this one in the round robin have pushed its data
    // out of the caches, and a timed first call would charge that to some kernels and not others
    // (how many calls share it depends on the kernel's length). Timed calls then see the caches
    // as a kernel run again and again leaves them: warm where its working set fits.
    prim.execute(s, set);
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) prim.execute(s, set);
    s.wait();
    const std::chrono::duration<double> d = std::chrono::steady_clock::now() - t0;
    return d.count() / reps;
  };
}

}  // namespace

OneDnnBackend::OneDnnBackend() : state_(std::make_unique<State>()) {}
OneDnnBackend::~OneDnnBackend() = default;

std::string OneDnnBackend::version() const {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch) + " (" +
         v->hash + ")";
}

std::string OneDnnBackend::isa() const {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

bool OneDnnBackend::native(const std::string& dtype) {
  try {
    const memory::desc a({64, 64}, dtype == "s8" ? dt::u8 : data_type(dtype), tag::ab);
    const memory::desc b({64, 64}, data_type(dtype), tag::ab);
    const memory::desc c({64, 64}, dtype == "s8" ? dt::s32 : data_type(dtype), tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), state_->engine);
    return !is_reference(pd.impl_info_str());
  } catch (const dnnl::error&) {
    return false;
  }
}

std::function<double(int)> OneDnnBackend::prepare(const KernelSpec& k) {
  auto& eng = state_->engine;
  auto& s = state_->stream;
  if (k.kind == "matmul") {
    const memory::desc a({k.m, k.k}, k.dtype == "s8" ? dt::u8 : data_type(k.dtype), tag::ab);
    const memory::desc b({k.k, k.n}, data_type(k.dtype), tag::ab);
    const memory::desc c({k.m, k.n}, k.dtype == "s8" ? dt::s32 : data_type(k.dtype), tag::ab);
    const dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), eng);
    if (is_reference(pd.impl_info_str())) return {};
    return runner(dnnl::matmul(pd),
                  {{DNNL_ARG_SRC, memory(a, eng, DNNL_MEMORY_NONE)}, {DNNL_ARG_WEIGHTS, memory(b, eng, DNNL_MEMORY_NONE)}, {DNNL_ARG_DST, memory(c, eng, DNNL_MEMORY_NONE)}}, s);
  }
  if (k.kind == "conv") {
    const tag t = k.layout == "nhwc" ? tag::nhwc : tag::nchw;
    const memory::dim oh = (k.height - 1) / k.stride + 1, ow = (k.width - 1) / k.stride + 1, pad = k.kernel / 2;
    const memory::desc src({k.batch, k.channels, k.height, k.width}, dt::f32, t);
    const memory::desc wei({k.out_channels, k.channels, k.kernel, k.kernel}, dt::f32, tag::any);
    const memory::desc dst({k.batch, k.out_channels, oh, ow}, dt::f32, t);
    const dnnl::convolution_forward::desc d(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                                            src, wei, dst, {k.stride, k.stride}, {pad, pad}, {pad, pad});
    const dnnl::convolution_forward::primitive_desc pd(d, eng);
    return runner(dnnl::convolution_forward(pd),
                  {{DNNL_ARG_SRC, memory(src, eng, DNNL_MEMORY_NONE)},
                   {DNNL_ARG_WEIGHTS, memory(pd.weights_desc(), eng, DNNL_MEMORY_NONE)},
                   {DNNL_ARG_DST, memory(dst, eng, DNNL_MEMORY_NONE)}},
                  s);
  }
  const memory::dim cols = 1024, rows = std::max<memory::dim>(1, k.elements / cols);
  const memory::desc md({rows, cols}, dt::f32, tag::ab);
  if (k.kind == "eltwise") {
    const dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_relu, md, 0.f, 0.f), eng);
    return runner(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, memory(md, eng, DNNL_MEMORY_NONE)}, {DNNL_ARG_DST, memory(md, eng, DNNL_MEMORY_NONE)}}, s);
  }
  if (k.kind == "softmax") {
    const dnnl::softmax_forward::primitive_desc pd(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng);
    return runner(dnnl::softmax_forward(pd), {{DNNL_ARG_SRC, memory(md, eng, DNNL_MEMORY_NONE)}, {DNNL_ARG_DST, memory(md, eng, DNNL_MEMORY_NONE)}}, s);
  }
  if (k.kind == "layernorm") {
    const memory::desc stat({rows}, dt::f32, tag::a);
    const dnnl::layer_normalization_forward::primitive_desc pd(
        dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, md, stat, 1e-5f,
                                                dnnl::normalization_flags::none),
        eng);
    return runner(dnnl::layer_normalization_forward(pd),
                  {{DNNL_ARG_SRC, memory(md, eng, DNNL_MEMORY_NONE)},
                   {DNNL_ARG_DST, memory(md, eng, DNNL_MEMORY_NONE)},
                   {DNNL_ARG_MEAN, memory(stat, eng, DNNL_MEMORY_NONE)},
                   {DNNL_ARG_VARIANCE, memory(stat, eng, DNNL_MEMORY_NONE)}},
                  s);
  }
  if (k.kind == "stream") {
    // STREAM "add": dst = a + b, two reads and one write per element.
    const dnnl::binary::primitive_desc pd(dnnl::binary::desc(dnnl::algorithm::binary_add, md, md, md), eng);
    return runner(dnnl::binary(pd),
                  {{DNNL_ARG_SRC_0, memory(md, eng, DNNL_MEMORY_NONE)}, {DNNL_ARG_SRC_1, memory(md, eng, DNNL_MEMORY_NONE)}, {DNNL_ARG_DST, memory(md, eng, DNNL_MEMORY_NONE)}}, s);
  }
  if (k.kind == "reorder") {
    const memory::dims dims = k.channels > 0 ? memory::dims{k.batch, k.channels, k.height, k.width}
                                             : memory::dims{1, 64, 1, std::max<memory::dim>(1, k.elements / 64)};
    const memory::desc from(dims, dt::f32, tag::nchw), to(dims, dt::f32, tag::nhwc);
    memory src(from, eng, DNNL_MEMORY_NONE), dst(to, eng, DNNL_MEMORY_NONE);
    const dnnl::reorder::primitive_desc pd(eng, from, eng, to);
    return runner(dnnl::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, s);
  }
  return {};
}

}  // namespace dlcarbon::calibrate
