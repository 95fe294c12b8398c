// AVX-512 norms, activations and row softmax (see kernels_ref.cpp for the
// formulas they reproduce). Means and variances are accumulated in double as
// in the reference; exp is the ~1-ulp polynomial of math_avx512.h.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined_*
#include <immintrin.h>

#include <cmath>

#include "ops/kernels_isa.h"
#include "ops/math_avx512.h"

namespace dsvl2::avx512 {
namespace {

// Sum of 16 floats into 8 double lanes.
inline __m512d add_pd16(__m512d acc, __m512 v) {
  acc = _mm512_add_pd(acc, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
  return _mm512_add_pd(acc, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

// Sum of squares of (v - mean) over the lanes of k, in double.
inline __m512d add_sq_pd16(__m512d acc, __m512 v, __m512d mean, __mmask16 k) {
  const __m512d lo = _mm512_maskz_sub_pd(__mmask8(k), _mm512_cvtps_pd(_mm512_castps512_ps256(v)), mean);
  const __m512d hi = _mm512_maskz_sub_pd(__mmask8(k >> 8),
      _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))), mean);
  acc = _mm512_fmadd_pd(lo, lo, acc);
  return _mm512_fmadd_pd(hi, hi, acc);
}

}  // namespace

void layer_norm(const float* x, int64_t M, int64_t D, const float* gamma, const float* beta, float eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    __m512d s = _mm512_setzero_pd();
    for (int64_t i = 0; i < D; i += 16) s = add_pd16(s, _mm512_maskz_loadu_ps(tail_mask16(D - i), r + i));
    const double mean = _mm512_reduce_add_pd(s) / double(D);
    const __m512d mv = _mm512_set1_pd(mean);
    __m512d q = _mm512_setzero_pd();
    for (int64_t i = 0; i < D; i += 16) {
      const __mmask16 k = tail_mask16(D - i);
      q = add_sq_pd16(q, _mm512_maskz_loadu_ps(k, r + i), mv, k);
    }
    const double var = _mm512_reduce_add_pd(q) / double(D);
    const __m512 inv = _mm512_set1_ps(float(1.0 / std::sqrt(var + eps))), mf = _mm512_set1_ps(float(mean));
    float* o = y + m * D;
    for (int64_t i = 0; i < D; i += 16) {
      const __mmask16 k = tail_mask16(D - i);
      __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, r + i), mf), inv),
                               _mm512_maskz_loadu_ps(k, gamma + i));
      if (beta) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, beta + i));
      _mm512_mask_storeu_ps(o + i, k, v);
    }
  }
}

void rms_norm(const float* x, int64_t M, int64_t D, const float* gamma, float eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    __m512d q = _mm512_setzero_pd();
    for (int64_t i = 0; i < D; i += 16) {
      const __mmask16 k = tail_mask16(D - i);
      q = add_sq_pd16(q, _mm512_maskz_loadu_ps(k, r + i), _mm512_setzero_pd(), k);
    }
    const __m512 inv = _mm512_set1_ps(float(1.0 / std::sqrt(_mm512_reduce_add_pd(q) / double(D) + eps)));
    float* o = y + m * D;
    for (int64_t i = 0; i < D; i += 16) {
      const __mmask16 k = tail_mask16(D - i);
      _mm512_mask_storeu_ps(o + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, gamma + i), _mm512_mul_ps(_mm512_maskz_loadu_ps(k, r + i), inv)));
    }
  }
}

void gelu_tanh(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    _mm512_mask_storeu_ps(x + i, m, gelu_tanh16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// Exact-erf GELU: std::erf per element (a vector erf polynomial would need
// ~1e-7 accuracy to be a drop-in; this runs only in the projector).
void gelu_erf(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.7071067811865476f));
}

void silu_mul(float* gate, const float* up, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask16(n - i);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), g))));
    _mm512_mask_storeu_ps(gate + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
  }
}

void softmax_rows(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    float* p = x + r * cols;
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < cols; i += 16)
      mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask16(cols - i), p + i));
    const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
    __m512d sum = _mm512_setzero_pd();
    for (int64_t i = 0; i < cols; i += 16) {
      const __mmask16 m = tail_mask16(cols - i);
      const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p + i), mv)));
      _mm512_mask_storeu_ps(p + i, m, e);
      sum = add_pd16(sum, e);
    }
    const __m512 inv = _mm512_set1_ps(float(1.0 / _mm512_reduce_add_pd(sum)));
    for (int64_t i = 0; i < cols; i += 16) {
      const __mmask16 m = tail_mask16(cols - i);
      _mm512_mask_storeu_ps(p + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, p + i), inv));
    }
  }
}

}  // namespace dsvl2::avx512
