#include "ops/roofline.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/arena.h"
#include "core/error.h"
#include "ops/ops.h"

namespace dsvl2 {

// Peak loops, compiled with AVX-512 flags (roofline_avx512.cpp); called only
// when the CPU has the features.
double peak_loop_f32_avx512(long iters);
double peak_loop_bf16_avx512(long iters);
double peak_loop_int8_avx512(long iters);
double read_sum_avx512(const float* p, size_t n);
// The same on AVX2 + FMA (roofline_avx2.cpp).
double peak_loop_f32_avx2(long iters);
double peak_loop_int8_avx2(long iters);
double read_sum_avx2(const float* p, size_t n);

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Runs `loop(iters)` on every thread (each returns its op count), best of 3.
template <class F>
double peak(ThreadPool& pool, long iters, F loop) {
  double best = 0;
  for (int rep = 0; rep < 3; rep++) {
    std::vector<double> ops(size_t(pool.size()));
    auto t0 = std::chrono::steady_clock::now();
    pool.run_on_all([&](int t) { ops[size_t(t)] = loop(iters); });
    double s = seconds_since(t0);
    double total = 0;
    for (double o : ops) total += o;
    best = std::max(best, total / s / 1e9);
  }
  return best;
}

double scalar_read_sum(const float* p, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += p[i];
  return s;
}

}  // namespace

namespace {

constexpr size_t kStreamBytes = size_t(1) << 30;  // far beyond any cache

// Best of `reps` timings of `pass` over the pool, as bytes / s / 1e9.
template <class F>
double best_gbs(int reps, double bytes, F pass) {
  double best = 0;
  for (int rep = 0; rep < reps; rep++) {
    auto t0 = std::chrono::steady_clock::now();
    pass();
    best = std::max(best, bytes / seconds_since(t0) / 1e9);
  }
  return best;
}

}  // namespace

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  const bool avx512 = cpu_has_avx512_bf16(), avx2 = cpu_has_avx2_fma();
  try {
    Arena arena(bytes, true);
    const size_t n = bytes / sizeof(float);
    float* buf = static_cast<float*>(arena.take(n * sizeof(float)));
    pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int) {
      std::memset(buf + b, 0, size_t(e - b) * sizeof(float));  // fault the pages in before timing
    });
    volatile double sink = 0;
    return best_gbs(reps, double(n * sizeof(float)), [&] {
      // One contiguous share a thread, as the decode's matrices are split.
      pool.run_on_all([&](int t) {
        const size_t per = n / size_t(pool.size()) / 64 * 64, b = per * size_t(t);
        const size_t e = t + 1 == pool.size() ? n : b + per;
        const double s = avx512 ? read_sum_avx512(buf + b, e - b)
                         : avx2 ? read_sum_avx2(buf + b, e - b)
                                : scalar_read_sum(buf + b, e - b);
        sink = sink + s;
      });
    });
  } catch (const Error&) {
    return 0;
  }
}

Roofline measure_roofline(ThreadPool& pool, bool quick) {
  Roofline r;
  const bool avx512 = cpu_has_avx512_bf16();
  const int reps = quick ? 2 : 4;
  r.mem_gbs = measure_read_bandwidth(pool, kStreamBytes, reps);
  // STREAM triad over three arrays of a third of the buffer each.
  try {
    Arena arena(kStreamBytes, true);
    const size_t n = kStreamBytes / 3 / sizeof(float) / 64 * 64;
    float* a = static_cast<float*>(arena.take(n * sizeof(float)));
    float* b = static_cast<float*>(arena.take(n * sizeof(float)));
    float* c = static_cast<float*>(arena.take(n * sizeof(float)));
    pool.parallel_for(int64_t(n), [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; i++) a[i] = 0.f, b[i] = 1.f, c[i] = 2.f;
    });
    r.triad_gbs = best_gbs(reps, 3.0 * double(n * sizeof(float)), [&] {
      pool.parallel_for(int64_t(n), [&](int64_t i0, int64_t i1, int) {
        for (int64_t i = i0; i < i1; i++) a[i] = b[i] + 0.5f * c[i];
      }, 1 << 16);
    });
  } catch (const Error&) {
    r.triad_gbs = 0;
  }
  const long iters = quick ? 5'000'000 : 20'000'000;
  if (avx512) {
    r.f32_gflops = peak(pool, iters, peak_loop_f32_avx512);
    r.bf16_gflops = peak(pool, iters, peak_loop_bf16_avx512);
    r.int8_gops = peak(pool, iters, peak_loop_int8_avx512);
  } else if (cpu_has_avx2_fma()) {
    // No bf16 dot products: the bf16 mode rounds activations to bf16 and
    // runs the f32 FMA kernel, so its roofline is the FMA peak.
    r.f32_gflops = peak(pool, iters, peak_loop_f32_avx2);
    r.bf16_gflops = r.f32_gflops;
    r.int8_gops = peak(pool, iters, peak_loop_int8_avx2);
  }
  return r;
}

}  // namespace dsvl2
