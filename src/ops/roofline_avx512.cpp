// Peak-throughput loops: 12 independent accumulator chains hide instruction
// latency, so the loop runs at the units' issue rate. Each returns the number
// of arithmetic operations it performed (a multiply-add counts 2).
// GCC 12 warns falsely inside its own AVX-512 headers (_mm512_undefined_*).
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstddef>

namespace dsvl2 {

double peak_loop_f32_avx512(long iters) {
  __m512 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps(float(i) * 1e-3f);
  const __m512 x = _mm512_set1_ps(0.999f), y = _mm512_set1_ps(1e-4f);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], x, y);
  __m512 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * 12 * 16 * 2;
}

double peak_loop_bf16_avx512(long iters) {
  __m512 a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm512_setzero_ps();
  const __m512bh x = (__m512bh)_mm512_set1_epi16(0x3f80), y = (__m512bh)_mm512_set1_epi16(0x3a80);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_dpbf16_ps(a[i], x, y);
  __m512 s = a[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_ps(s, a[i]);
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return double(iters) * 12 * 32 * 2;
}

double peak_loop_int8_avx512(long iters) {
  __m512i a[12];
  for (int i = 0; i < 12; i++) a[i] = _mm512_setzero_si512();
  const __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(2);
  for (long it = 0; it < iters; it++)
    for (int i = 0; i < 12; i++) a[i] = _mm512_dpbusd_epi32(a[i], x, y);
  __m512i s = a[0];
  for (int i = 1; i < 12; i++) s = _mm512_add_epi32(s, a[i]);
  volatile int sink = _mm512_reduce_or_epi32(s);  // or, not add: the lanes wrap past INT_MAX (UB in a sum)
  (void)sink;
  return double(iters) * 12 * 64 * 2;
}

// Eight independent accumulators: enough loads in flight to keep a core's
// share of the memory bus busy (four left bandwidth unread on these machines).
double read_sum_avx512(const float* p, size_t n) {
  __m512 s[8];
  for (auto& v : s) v = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 128 <= n; i += 128)
    for (int k = 0; k < 8; k++) s[k] = _mm512_add_ps(s[k], _mm512_load_ps(p + i + 16 * k));
  float tail = 0;
  for (; i < n; i++) tail += p[i];
  for (int k = 1; k < 8; k++) s[0] = _mm512_add_ps(s[0], s[k]);
  return double(_mm512_reduce_add_ps(s[0])) + tail;
}

}  // namespace dsvl2
