// Peak-throughput loops for AVX2 + FMA machines (no AVX-512): the same shape
// as roofline_avx512.cpp, 12 independent chains so the loop runs at the
// units' issue rate; each returns its arithmetic operations (a multiply-add
// counts 2).
#include <immintrin.h>

#include <cstddef>

#include "ops/math_avx2.h"

namespace dsvl2 {

double peak_loop_f32_avx2(long iters) {
  __m256 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 x = _mm256_set1_ps(0.999f), y = _mm256_set1_ps(1e-4f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) a[i] = _mm256_fmadd_ps(a[i], x, y);
  __m256 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_add_ps(s, a[i]);
  volatile float sink = hsum256(s);
  (void)sink;
  return double(iters) * 12 * 8 * 2;
}

// AVX2 has no int8 dot-product instruction: 32 u8 x s8 products go through
// vpmaddubsw (pairs summed to int16), vpmaddwd against ones (to int32) and
// vpaddd, the sequence the int8 kernels use. Counted as 32 multiply-adds.
double peak_loop_int8_avx2(long iters) {
  __m256i a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm256_setzero_si256();
  const __m256i x = _mm256_set1_epi8(1), y = _mm256_set1_epi8(2), ones = _mm256_set1_epi16(1);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++)
      a[i] = _mm256_add_epi32(a[i], _mm256_madd_epi16(_mm256_maddubs_epi16(x, y), ones));
  __m256i s = a[0];
  for (int i = 1; i < 12; i++) s = _mm256_or_si256(s, a[i]);  // or: the lanes may wrap (UB in a sum)
  alignas(32) int lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s);
  volatile int sink = lanes[0] | lanes[7];
  (void)sink;
  return double(iters) * 12 * 32 * 2;
}

// Eight independent accumulators, as read_sum_avx512.
double read_sum_avx2(const float* p, size_t n) {
  __m256 s[8];
  for (auto& v : s) v = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 64 <= n; i += 64)
    for (int k = 0; k < 8; k++) s[k] = _mm256_add_ps(s[k], _mm256_load_ps(p + i + 8 * k));
  float tail = 0;
  for (; i < n; i++) tail += p[i];
  for (int k = 1; k < 8; k++) s[0] = _mm256_add_ps(s[0], s[k]);
  return double(hsum256(s[0])) + tail;
}

}  // namespace dsvl2
