#include "onednn_backend.hpp"

#include <chrono>
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

// Fills a memory with a small pattern so that no kernel sees denormals or NaN.
void fill(memory& m) {
  auto* p = static_cast<unsigned char*>(m.get_data_handle());
  const std::size_t n = m.get_desc().get_size();
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<unsigned char>((i * 37) % 64);
}

std::function<double(int)> runner(dnnl::primitive prim, std::unordered_map<int, memory> args, dnnl::stream& s) {
  for (auto& [k, m] : args) fill(m);
  for (int i = 0; i < 3; ++i) prim.execute(s, args);  // warm-up
  s.wait();
  return [prim, args, &s](int reps) mutable {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) prim.execute(s, args);
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
                  {{DNNL_ARG_SRC, memory(a, eng)}, {DNNL_ARG_WEIGHTS, memory(b, eng)}, {DNNL_ARG_DST, memory(c, eng)}}, s);
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
                  {{DNNL_ARG_SRC, memory(src, eng)},
                   {DNNL_ARG_WEIGHTS, memory(pd.weights_desc(), eng)},
                   {DNNL_ARG_DST, memory(dst, eng)}},
                  s);
  }
  const memory::dim cols = 1024, rows = std::max<memory::dim>(1, k.elements / cols);
  const memory::desc md({rows, cols}, dt::f32, tag::ab);
  if (k.kind == "eltwise") {
    const dnnl::eltwise_forward::primitive_desc pd(
        dnnl::eltwise_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_relu, md, 0.f, 0.f), eng);
    return runner(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, memory(md, eng)}, {DNNL_ARG_DST, memory(md, eng)}}, s);
  }
  if (k.kind == "softmax") {
    const dnnl::softmax_forward::primitive_desc pd(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, md, 1), eng);
    return runner(dnnl::softmax_forward(pd), {{DNNL_ARG_SRC, memory(md, eng)}, {DNNL_ARG_DST, memory(md, eng)}}, s);
  }
  if (k.kind == "layernorm") {
    const memory::desc stat({rows}, dt::f32, tag::a);
    const dnnl::layer_normalization_forward::primitive_desc pd(
        dnnl::layer_normalization_forward::desc(dnnl::prop_kind::forward_inference, md, stat, 1e-5f,
                                                dnnl::normalization_flags::none),
        eng);
    return runner(dnnl::layer_normalization_forward(pd),
                  {{DNNL_ARG_SRC, memory(md, eng)},
                   {DNNL_ARG_DST, memory(md, eng)},
                   {DNNL_ARG_MEAN, memory(stat, eng)},
                   {DNNL_ARG_VARIANCE, memory(stat, eng)}},
                  s);
  }
  if (k.kind == "stream") {
    // STREAM "add": dst = a + b, two reads and one write per element.
    const dnnl::binary::primitive_desc pd(dnnl::binary::desc(dnnl::algorithm::binary_add, md, md, md), eng);
    return runner(dnnl::binary(pd),
                  {{DNNL_ARG_SRC_0, memory(md, eng)}, {DNNL_ARG_SRC_1, memory(md, eng)}, {DNNL_ARG_DST, memory(md, eng)}}, s);
  }
  if (k.kind == "reorder") {
    const memory::dim c = 64, w = std::max<memory::dim>(1, k.elements / c);
    const memory::desc from({1, c, 1, w}, dt::f32, tag::nchw), to({1, c, 1, w}, dt::f32, tag::nhwc);
    memory src(from, eng), dst(to, eng);
    const dnnl::reorder::primitive_desc pd(eng, from, eng, to);
    return runner(dnnl::reorder(pd), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, s);
  }
  return {};
}

}  // namespace dlcarbon::calibrate
