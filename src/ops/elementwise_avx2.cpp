// AVX2 norms, activations and row softmax (formulas of kernels_ref.cpp; sums
// of squares and means in double as there; exp from math_avx2.h). Tails of
// fewer than 8 elements run the same formula in scalar code.
#include <immintrin.h>

#include <cmath>

#include "ops/kernels_isa.h"
#include "ops/math_avx2.h"

namespace dsvl2::avx2 {
namespace {

inline __m256d lo_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_castps256_ps128(v)); }
inline __m256d hi_pd(__m256 v) { return _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)); }

double sum_sq(const float* r, int64_t D, double mean) {
  __m256d acc = _mm256_setzero_pd();
  const __m256d mv = _mm256_set1_pd(mean);
  int64_t i = 0;
  for (; i + 8 <= D; i += 8) {
    const __m256 v = _mm256_loadu_ps(r + i);
    const __m256d a = _mm256_sub_pd(lo_pd(v), mv), b = _mm256_sub_pd(hi_pd(v), mv);
    acc = _mm256_fmadd_pd(a, a, _mm256_fmadd_pd(b, b, acc));
  }
  double s = hsum256d(acc);
  for (; i < D; i++) s += (r[i] - mean) * (r[i] - mean);
  return s;
}

// Applies f to x[0, n) 8 lanes at a time; the tail goes through a padded copy.
template <class F>
inline void map8(float* x, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i), i));
  if (i < n) {
    alignas(32) float t[8] = {};
    for (int64_t j = i; j < n; j++) t[j - i] = x[j];
    _mm256_store_ps(t, f(_mm256_load_ps(t), i));
    for (int64_t j = i; j < n; j++) x[j] = t[j - i];
  }
}

}  // namespace

void layer_norm(const float* x, int64_t M, int64_t D, const float* gamma, const float* beta, float eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    __m256d s = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= D; i += 8) {
      const __m256 v = _mm256_loadu_ps(r + i);
      s = _mm256_add_pd(s, _mm256_add_pd(lo_pd(v), hi_pd(v)));
    }
    double sum = hsum256d(s);
    for (; i < D; i++) sum += r[i];
    const double mean = sum / double(D);
    const double var = sum_sq(r, D, mean) / double(D);
    const float inv = float(1.0 / std::sqrt(var + eps)), mf = float(mean);
    float* o = y + m * D;
    const __m256 iv = _mm256_set1_ps(inv), mv = _mm256_set1_ps(mf);
    for (i = 0; i + 8 <= D; i += 8) {
      __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(r + i), mv), iv), _mm256_loadu_ps(gamma + i));
      if (beta) v = _mm256_add_ps(v, _mm256_loadu_ps(beta + i));
      _mm256_storeu_ps(o + i, v);
    }
    for (; i < D; i++) o[i] = (r[i] - mf) * inv * gamma[i] + (beta ? beta[i] : 0.f);
  }
}

void rms_norm(const float* x, int64_t M, int64_t D, const float* gamma, float eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    const float inv = float(1.0 / std::sqrt(sum_sq(r, D, 0.0) / double(D) + eps));
    float* o = y + m * D;
    const __m256 iv = _mm256_set1_ps(inv);
    int64_t i = 0;
    for (; i + 8 <= D; i += 8)
      _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(gamma + i), _mm256_mul_ps(_mm256_loadu_ps(r + i), iv)));
    for (; i < D; i++) o[i] = gamma[i] * (r[i] * inv);
  }
}

// 0.5 v (1 + tanh(u)) == v / (1 + e^(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3).
void gelu_tanh(float* x, int64_t n) {
  const __m256 k2 = _mm256_set1_ps(-2.f * 0.7978845608028654f), c = _mm256_set1_ps(0.044715f), one = _mm256_set1_ps(1.f);
  map8(x, n, [&](__m256 v, int64_t) {
    const __m256 u = _mm256_fmadd_ps(_mm256_mul_ps(c, v), _mm256_mul_ps(v, v), v);
    return _mm256_div_ps(v, _mm256_add_ps(one, exp256(_mm256_mul_ps(k2, u))));
  });
}

// Exact-erf GELU: std::erf per element, accuracy first (projector only).
void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.7071067811865476f));
}

void silu_mul(float* gate, const float* up, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 g = _mm256_loadu_ps(gate + i);
    const __m256 s = _mm256_div_ps(g, _mm256_add_ps(one, exp256(_mm256_sub_ps(_mm256_setzero_ps(), g))));
    _mm256_storeu_ps(gate + i, _mm256_mul_ps(s, _mm256_loadu_ps(up + i)));
  }
  for (; i < n; i++) gate[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    float* p = x + r * cols;
    float mx = -INFINITY;
    for (int64_t i = 0; i < cols; i++) mx = std::fmax(mx, p[i]);
    const __m256 mv = _mm256_set1_ps(mx);
    double sum = 0;
    map8(p, cols, [&](__m256 v, int64_t i) {
      const __m256 e = exp256(_mm256_sub_ps(v, mv));
      alignas(32) float t[8];
      _mm256_store_ps(t, e);
      for (int64_t j = 0; j < 8 && i + j < cols; j++) sum += t[j];
      return e;
    });
    const __m256 inv = _mm256_set1_ps(float(1.0 / sum));
    map8(p, cols, [&](__m256 v, int64_t) { return _mm256_mul_ps(v, inv); });
  }
}

}  // namespace dsvl2::avx2
