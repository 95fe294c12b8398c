#include "ops/roofline.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ops/ops.h"

namespace dsvl2 {

// Peak loops, compiled with AVX-512 flags (roofline_avx512.cpp); called only
// when the CPU has the features.
double peak_loop_f32_avx512(long iters);
double peak_loop_bf16_avx512(long iters);
double peak_loop_int8_avx512(long iters);
double read_sum_avx512(const float* p, size_t n);

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

Roofline measure_roofline(ThreadPool& pool, bool quick) {
  Roofline r;
  const bool avx512 = cpu_has_avx512_bf16();
  // Memory: a buffer far larger than the caches, read once per repetition.
  size_t bytes = size_t(quick ? 256 : 1024) << 20;
  size_t n = bytes / sizeof(float);
  float* buf = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (buf) {
    pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int) {
      std::memset(buf + b, 0, size_t(e - b) * sizeof(float));
    });
    double best = 0;
    volatile double sink = 0;
    for (int rep = 0; rep < 3; rep++) {
      auto t0 = std::chrono::steady_clock::now();
      pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int) {
        double s = avx512 ? read_sum_avx512(buf + b, size_t(e - b)) : scalar_read_sum(buf + b, size_t(e - b));
        sink = sink + s;
      }, 1 << 20);
      best = std::max(best, double(bytes) / seconds_since(t0) / 1e9);
    }
    r.mem_gbs = best;
    std::free(buf);
  }
  if (avx512) {
    long iters = quick ? 2'000'000 : 20'000'000;
    r.f32_gflops = peak(pool, iters, peak_loop_f32_avx512);
    r.bf16_gflops = peak(pool, iters, peak_loop_bf16_avx512);
    r.int8_gops = peak(pool, iters, peak_loop_int8_avx512);
  }
  return r;
}

}  // namespace dsvl2
