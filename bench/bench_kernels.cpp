// Kernel throughput report: GFLOP/s of the best (or DSVL2_ISA-forced) kernel
// table on the shapes the model runs, as a fraction of the machine's peaks
// measured at the start of the same run (ops/roofline.h: bf16 dot, f32 FMA,
// streaming read), with oneDNN's matmul on the same shapes as a peer when
// installed.
//
//   bench_kernels [--quick] [--filter SUBSTR] [--threads N] [--cpu-time]
//
// --cpu-time runs one thread and times it by its own CPU time: on a loaded
// machine this measures the kernel, not the scheduler. Percentages are then
// against one thread's peaks, measured the same way.
// Run oneDNN with OMP_NUM_THREADS matching --threads.
//
// Each row is the best of several runs (the machine is shared; the minimum
// is the least disturbed). Memory bandwidth drifts with the neighbours: a
// matrix-vector row's "of mem" means something only next to the reading
// printed in the same run.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "ops/roofline.h"

#ifdef DSVL2_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace dsvl2 {
namespace {

// Peaks of this run's pool (bf16 and f32 FLOP/s, int8 OP/s, read bytes/s), measured in main().
double g_peak_bf16 = 0, g_peak_f32 = 0, g_peak_int8 = 0, g_peak_mem = 0;
bool g_quick = false;
bool g_cpu_time = false;

double now_s() {
  if (g_cpu_time) {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
std::string g_filter;

double time_best(const std::function<void()>& fn, double budget_s = 0.4, int max_reps = 15) {
  fn();  // warm-up (page faults, packing buffers)
  double best = 1e30, total = 0;
  for (int r = 0; r < max_reps && (r < 2 || total < budget_s); r++) {
    const double t0 = now_s();
    fn();
    const double s = now_s() - t0;
    best = std::min(best, s);
    total += s;
  }
  return best;
}

std::vector<float> randn(size_t n, uint32_t seed) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = float(rng.normal(0.0, 1.0));
  return v;
}

#ifdef DSVL2_HAVE_DNNL
// oneDNN matmul y = x · W^T with W[N, K] read in place (tag ba) or reordered
// once into oneDNN's preferred blocked layout (tag any; the reorder is not timed).
struct Dnnl {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};

  double run_matmul(int64_t M, int64_t N, int64_t K, bool bf16, const void* x, const void* w, float* y, bool packed) {
    using namespace dnnl;
    using dt = memory::data_type;
    using tag = memory::format_tag;
    const dt t = bf16 ? dt::bf16 : dt::f32;
    memory::desc src({M, K}, t, tag::ab), wplain({K, N}, t, tag::ba), dst({M, N}, dt::f32, tag::ab);
    memory::desc wq = packed ? memory::desc({K, N}, t, tag::any) : wplain;
    matmul::primitive_desc pd(matmul::desc(src, wq, dst), eng);
    memory sm(src, eng, const_cast<void*>(x)), dm(dst, eng, y);
    memory wm(wplain, eng, const_cast<void*>(w));
    memory wuse = wm;
    if (pd.weights_desc() != wplain) {
      wuse = memory(pd.weights_desc(), eng);
      reorder(wm, wuse).execute(strm, wm, wuse);
      strm.wait();
    }
    matmul prim(pd);
    return time_best([&] {
      prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wuse}, {DNNL_ARG_DST, dm}});
      strm.wait();
    });
  }
};
#endif

struct MatmulShape {
  const char* name;
  int64_t M, N, K;
};

// Views of copies of w's `bytes` (held in *store). A matrix-vector product
// reads its weights once: it cycles through copies filling 1 GiB, as decode
// streams a model's weights, so its rows compare with the memory peak (one
// copy stays in this machine's cache). Other shapes use one copy.
std::vector<Weight> weight_copies(const Weight& w, int64_t M, size_t bytes, std::vector<uint8_t>* store) {
  const size_t copies = M == 1 ? std::max<size_t>(1, (size_t(1) << 30) / bytes) : 1;
  store->resize(copies * bytes);
  std::vector<Weight> ws(copies, w);
  for (size_t i = 0; i < copies; i++) {
    std::memcpy(store->data() + i * bytes, w.data, bytes);
    ws[i].data = store->data() + i * bytes;
  }
  return ws;
}

// Each weight of `set` prepared for (kt, c); storage in *store.
std::vector<Weight> prepared(const std::vector<Weight>& set, const KernelTable& kt, ThreadPool& pool, Compute c,
                             std::vector<Tensor>* store) {
  store->resize(set.size());
  std::vector<Weight> out;
  for (size_t i = 0; i < set.size(); i++) out.push_back(Ops{&kt, &pool, c}.prepare(set[i], &(*store)[i]));
  return out;
}

// Best seconds of one product, x[M] times each weight of `set` in turn.
double time_each(const KernelTable& kt, ThreadPool& pool, Compute c, const float* x, int64_t M,
                 const std::vector<Weight>& set, float* y) {
  return time_best([&] {
    for (const Weight& w : set) kt.matmul(x, M, w, nullptr, y, c, pool);
  }) / double(set.size());
}

void bench_matmul(const KernelTable& kt, ThreadPool& pool, const MatmulShape& s, Compute c) {
  std::string label = std::string(s.name) + "/" + compute_name(c);
  if (!g_filter.empty() && label.find(g_filter) == std::string::npos) return;
  const int64_t M = s.M, N = s.N, K = s.K;
  std::vector<float> x = randn(size_t(M * K), 1), wf = randn(size_t(N * K), 2), y(size_t(M * N));
  std::vector<uint16_t> wb(wf.size());
  for (size_t i = 0; i < wf.size(); i++) wb[i] = f32_to_bf16(wf[i]);
  const bool bf = c == Compute::kBF16;
  // The model's weights are bf16 in both modes; oneDNN's f32 peer uses f32 weights.
  Weight w{DType::kBF16, N, K, wb.data()};
  std::vector<uint8_t> copies_store;
  const std::vector<Weight> views = weight_copies(w, M, wb.size() * 2, &copies_store);
  const double flop = 2.0 * M * N * K, peak = bf ? g_peak_bf16 : g_peak_f32;
  double t = time_each(kt, pool, c, x.data(), M, views, y.data());
  std::printf("%-28s %5lld %6lld %5lld %9.2f %8.1f %5.0f%%", label.c_str(), (long long)M, (long long)N, (long long)K,
              t * 1e3, flop / t * 1e-9, 100 * flop / t / peak);
  if (M == 1) std::printf(" (%5.1f GB/s = %3.0f%% of mem)", N * K * 2 / t * 1e-9, 100 * N * K * 2 / t / g_peak_mem);
  // Weights prepared once (Ops::prepare), when the table has a packed form.
  std::vector<Tensor> storage;
  const std::vector<Weight> wps = prepared(views, kt, pool, c, &storage);
  if (wps[0].packed) {
    double tp = time_each(kt, pool, c, x.data(), M, wps, y.data());
    std::printf("  prepared %7.1f (%3.0f%%)", flop / tp * 1e-9, 100 * flop / tp / peak);
    if (M == 1) std::printf(" %5.1f GB/s", N * K * 2 / tp * 1e-9);
  }
#ifdef DSVL2_HAVE_DNNL
  static Dnnl dn;
  std::vector<uint16_t> xb(x.size());
  for (size_t i = 0; i < x.size(); i++) xb[i] = f32_to_bf16(x[i]);
  const void* xs = bf ? static_cast<const void*>(xb.data()) : x.data();
  const void* ws = bf ? static_cast<const void*>(wb.data()) : wf.data();
  double tp = dn.run_matmul(M, N, K, bf, xs, ws, y.data(), false);
  double tk = dn.run_matmul(M, N, K, bf, xs, ws, y.data(), true);
  std::printf("  | dnnl %8.1f (%.2fx)  dnnl-packed %8.1f (%.2fx)", flop / tp * 1e-9, tp / t, flop / tk * 1e-9, tk / t);
#endif
  std::printf("\n");
  std::fflush(stdout);
}

// Q8_0 (or IQ4_NL, the q4_m mix's expert type) weights through the int8 kernel
// (f32 mode: its numerics at every M), from ggml's blocks per call and prepared
// once; a decode row reads 34 (18) bytes per 32 weights.
void bench_quant(const KernelTable& kt, ThreadPool& pool, const MatmulShape& s, DType dt) {
  std::string label = std::string(s.name) + (dt == DType::kQ8_0 ? "/q8_0" : "/iq4_nl");
  if (!g_filter.empty() && label.find(g_filter) == std::string::npos) return;
  const int64_t M = s.M, N = s.N, K = s.K;
  std::vector<float> x = randn(size_t(M * K), 1), wf = randn(size_t(N * K), 2), y(size_t(M * N));
  const size_t bytes = size_t(N * K / kQ8Block) * dtype_block_bytes(dt);
  std::vector<uint8_t> w(bytes);
  quantize_blocks(dt, wf.data(), N * K, w.data());
  std::vector<uint8_t> copies_store;
  std::vector<Tensor> storage;
  const std::vector<Weight> ws = weight_copies(Weight{dt, N, K, w.data()}, M, bytes, &copies_store);
  const std::vector<Weight> wps = prepared(ws, kt, pool, Compute::kBF16, &storage);
  const double flop = 2.0 * M * N * K, t = time_each(kt, pool, Compute::kF32, x.data(), M, ws, y.data()),
               tp = time_each(kt, pool, Compute::kF32, x.data(), M, wps, y.data());
  std::printf("%-28s %5lld %6lld %5lld %9.2f %8.1f GOP/s (%3.0f%% of int8 peak) | prepared %7.1f GOP/s (%3.0f%%)",
              label.c_str(), (long long)M, (long long)N, (long long)K, t * 1e3, flop / t * 1e-9,
              100 * flop / t / g_peak_int8, flop / tp * 1e-9, 100 * flop / tp / g_peak_int8);
  if (M == 1)
    std::printf(" | weights %5.1f GB/s, prepared %5.1f GB/s (%3.0f%% of mem)", double(bytes) / t * 1e-9,
                double(bytes) / tp * 1e-9, 100 * double(bytes) / tp / g_peak_mem);
  std::printf("\n");
}

// c = kBF16: the bf16 dot-product kernel where the table has one (peak: bf16);
// bf16_kv: K/V stored as bf16 (a bf16 KV cache).
void bench_attention(const KernelTable& kt, ThreadPool& pool, int T, int S, int H, int D, bool causal,
                     Compute c = Compute::kF32, bool bf16_kv = false) {
  std::string label = std::string("attention") + (causal ? "/causal" : "") + (c == Compute::kBF16 ? "/bf16" : "") +
                      (bf16_kv ? "/bf16kv" : "");
  if (!g_filter.empty() && label.find(g_filter) == std::string::npos) return;
  std::vector<float> q = randn(size_t(T) * H * D, 1), k = randn(size_t(S) * H * D, 2), v = randn(size_t(S) * H * D, 3);
  std::vector<float> o(size_t(T) * H * D);
  AttentionArgs a;
  a.q = q.data(), a.k = k.data(), a.v = v.data(), a.out = o.data();
  a.q_stride_t = a.k_stride_s = a.v_stride_s = a.o_stride_t = int64_t(H) * D;
  a.q_stride_h = a.k_stride_h = a.v_stride_h = a.o_stride_h = D;
  a.T = T, a.S = S, a.H = H, a.Hkv = H, a.Dk = D, a.Dv = D, a.scale = 1.f / std::sqrt(float(D)), a.causal = causal;
  a.q_pos0 = S - T;  // the queries are the last T positions
  a.compute = c;
  std::vector<uint16_t> k16(bf16_kv ? k.size() : 0), v16(bf16_kv ? v.size() : 0);
  if (bf16_kv) {
    f32_to_bf16_row(k.data(), int64_t(k.size()), k16.data());
    f32_to_bf16_row(v.data(), int64_t(v.size()), v16.data());
    a.k_bf16 = k16.data(), a.v_bf16 = v16.data();
  }
  double visible = 0;  // (query, key) pairs the mask lets through
  for (int t = 0; t < T; t++) visible += causal ? std::min(S, a.q_pos0 + t + 1) : S;
  const double flop = 4.0 * visible * H * D;
  double t = time_best([&] { kt.attention(a, pool); });
  double tr = g_quick ? 0 : time_best([&] { kernels_ref().attention(a, pool); }, 0.1, 2);
  const bool bf = c == Compute::kBF16;
  std::printf("%-28s T=%d S=%d H=%d D=%d  %8.2f ms %7.1f GFLOP/s %4.0f%% of %s peak", label.c_str(), T, S, H, D,
              t * 1e3, flop / t * 1e-9, 100 * flop / t / (bf ? g_peak_bf16 : g_peak_f32), bf ? "bf16" : "f32");
  if (T == 1) std::printf(" (K/V %5.1f GB/s)", double(S) * H * 2 * D * (bf16_kv ? 2 : 4) / t * 1e-9);
  if (tr > 0) std::printf("  (scalar ref %.1f ms, %.0fx)", tr * 1e3, tr / t);
  std::printf("\n");
}

void bench_elementwise(const KernelTable& kt) {
  if (!g_filter.empty() && std::string("elementwise").find(g_filter) == std::string::npos) return;
  const int64_t M = 729, D = 1152, H = 4304;
  std::vector<float> x = randn(size_t(M * D), 1), g = randn(size_t(D), 2), b = randn(size_t(D), 3), y(x.size());
  std::vector<float> h = randn(size_t(M * H), 4), h2 = h, up = randn(h.size(), 5);
  auto row = [&](const char* name, double bytes, const std::function<void(const KernelTable&)>& fn) {
    double t = time_best([&] { fn(kt); }, 0.2);
    double tr = time_best([&] { fn(kernels_ref()); }, 0.1, 3);
    std::printf("%-28s %8.3f ms %6.1f GB/s  (scalar ref %.3f ms, %.1fx)\n", name, t * 1e3, bytes / t * 1e-9, tr * 1e3,
                tr / t);
  };
  row("layer_norm 729x1152", 8.0 * M * D, [&](const KernelTable& k) {
    k.layer_norm(x.data(), M, D, g.data(), b.data(), 1e-6f, y.data());
  });
  row("rms_norm 729x1152", 8.0 * M * D, [&](const KernelTable& k) { k.rms_norm(x.data(), M, D, g.data(), 1e-6f, y.data()); });
  row("gelu_tanh 729x4304", 8.0 * M * H, [&](const KernelTable& k) {
    std::memcpy(h2.data(), h.data(), h.size() * 4);
    k.gelu_tanh(h2.data(), M * H);
  });
  row("gelu_erf 729x4304", 8.0 * M * H, [&](const KernelTable& k) {
    std::memcpy(h2.data(), h.data(), h.size() * 4);
    k.gelu_erf(h2.data(), M * H);
  });
  row("silu_mul 729x4304", 12.0 * M * H, [&](const KernelTable& k) {
    std::memcpy(h2.data(), h.data(), h.size() * 4);
    k.silu_mul(h2.data(), up.data(), M * H);
  });
  std::vector<float> sc = randn(size_t(16 * 729 * 729), 6), sc2(sc.size());
  row("softmax_rows 16*729x729", 8.0 * double(sc.size()), [&](const KernelTable& k) {
    std::memcpy(sc2.data(), sc.data(), sc.size() * 4);
    k.softmax_rows(sc2.data(), 16 * 729, 729);
  });
}

}  // namespace
}  // namespace dsvl2

int main(int argc, char** argv) {
  using namespace dsvl2;
  int threads = 2;
  for (int i = 1; i < argc; i++) {
    if (!std::strcmp(argv[i], "--quick")) g_quick = true;
    else if (!std::strcmp(argv[i], "--filter") && i + 1 < argc) g_filter = argv[++i];
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--cpu-time")) g_cpu_time = true;
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--filter SUBSTR] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  if (g_cpu_time) threads = 1;
  ThreadPool pool(threads);
  const KernelTable& kt = kernels_best();
  const Roofline roof = measure_roofline(pool, g_quick);
  g_peak_bf16 = roof.bf16_gflops * 1e9;
  g_peak_f32 = roof.f32_gflops * 1e9;
  g_peak_int8 = roof.int8_gops * 1e9;
  g_peak_mem = roof.mem_gbs * 1e9;
  std::printf("kernels: %s, %d threads; peaks measured now: bf16 %.0f, f32 %.0f GFLOP/s, int8 %.0f GOP/s, "
              "memory %.0f GB/s\n",
              isa_name(kt.isa), threads, g_peak_bf16 * 1e-9, g_peak_f32 * 1e-9, g_peak_int8 * 1e-9, g_peak_mem * 1e-9);
  if (g_cpu_time) std::printf("(timed by thread CPU time, one core)\n");
#ifndef DSVL2_HAVE_DNNL
  std::printf("oneDNN comparison skipped: built without oneDNN (bash scripts/setup --peers, then reconfigure)\n");
#endif
  std::printf("%-28s %5s %6s %5s %9s %8s %6s\n", "matmul (bf16 weights)", "M", "N", "K", "ms", "GFLOP/s", "peak");
  std::vector<MatmulShape> shapes = {
      {"vit.qkv", 729, 3456, 1152},   {"vit.proj", 729, 1152, 1152},   {"vit.fc1", 729, 4304, 1152},
      {"vit.fc2", 729, 1152, 4304},   {"llm.expert_up", 512, 896, 1280}, {"llm.expert_down", 512, 1280, 896},
      {"llm.dense_up", 512, 6848, 1280}, {"llm.moe_small_m", 48, 896, 1280}, {"llm.moe_m16", 16, 896, 1280},
      {"gemv.dense_up", 1, 6848, 1280},
      {"gemv.expert_up", 1, 896, 1280},
  };
  if (!g_quick) {
    shapes.push_back({"vit.fc1.x3tiles", 2187, 4304, 1152});
    shapes.push_back({"llm.lm_head", 512, 129280 / 4, 1280});  // a quarter of the vocabulary
    shapes.push_back({"gemv.lm_head", 1, 129280, 1280});
  }
  for (Compute c : {Compute::kBF16, Compute::kF32})
    for (const auto& s : shapes) bench_matmul(kt, pool, s, c);
  for (const auto& s : shapes)
    if (s.K % kQ8Block == 0 && (s.M == 1 || s.M == 16 || s.M == 48 || s.M == 512))
      bench_quant(kt, pool, s, DType::kQ8_0);
  for (const auto& s : shapes)
    if (s.K % kQ8Block == 0 && (s.M == 1 || s.M == 512)) bench_quant(kt, pool, s, DType::kIQ4_NL);
  bench_attention(kt, pool, 729, 729, 16, 72, false);
  bench_attention(kt, pool, 729, 729, 16, 72, false, Compute::kBF16);
  bench_attention(kt, pool, 1024, 1024, 10, 128, true);
  bench_attention(kt, pool, 1024, 1024, 10, 128, true, Compute::kBF16);
  // Decode over a long cache: f32 vs bf16 K/V storage (memory bound).
  bench_attention(kt, pool, 1, 4096, 10, 128, true);
  bench_attention(kt, pool, 1, 4096, 10, 128, true, Compute::kF32, true);
  bench_elementwise(kt);
  return 0;
}
