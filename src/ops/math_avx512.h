// Vector math for the AVX-512 kernel files only (include after immintrin.h in
// files compiled with the AVX-512 flags). Internal linkage, so no copy can be
// shared with code built for another ISA.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace dsvl2 {
namespace {

// f32 -> bf16 bits, round-to-nearest-even with NaN kept quiet: bit-exact with
// f32_to_bf16 (vcvtne2ps2bf16 would flush denormals).
inline __m512i bf16_bits(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

// In-register transpose of a 16x16 matrix of 32-bit elements: r[i][j] <- r[j][i].
inline void transpose16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int h = 0; h < 16; h += 8)
    for (int i = 0; i < 4; i++) {
      t[h + i] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0x88);
      t[h + i + 4] = _mm512_shuffle_i32x4(r[h + i], r[h + i + 4], 0xdd);
    }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd);
  }
}

inline void transpose16(__m512 x[16]) {
  __m512i r[16];
  for (int i = 0; i < 16; i++) r[i] = _mm512_castps_si512(x[i]);
  transpose16(r);
  for (int i = 0; i < 16; i++) x[i] = _mm512_castsi512_ps(r[i]);
}

inline __mmask16 tail_mask16(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }

// Writes (first K block: + bias) or accumulates NV vectors of one tile row.
template <int NV>
inline void store_tile_row(float* c, __m512* v, int ncols, bool first, const float* bias) {
  for (int j = 0; j < NV; j++) {
    const __mmask16 k = ncols > 16 * j ? tail_mask16(ncols - 16 * j) : 0;
    if (!k) break;
    __m512 x = v[j];
    if (!first) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, c + 16 * j));
    else if (bias) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, bias + 16 * j));
    _mm512_mask_storeu_ps(c + 16 * j, k, x);
  }
}

// 16 bf16 values at p (lanes outside m read nothing and give 0), widened exactly.
inline __m512 load_bf16x16(__mmask16 m, const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

// e^x, ~1 ulp (Cephes expf: range reduction by ln 2 in two parts, degree-6
// polynomial, 2^n applied with scalef so that under/overflow saturate).
// NaN stays NaN, -inf gives 0, +inf gives +inf.
inline __m512 exp512(__m512 x) {
  const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-104.f), x);  // max(c, NaN) keeps NaN
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  // 2p * 2^(n-1): exact doubling keeps x just below ln(FLT_MAX) finite.
  return _mm512_scalef_ps(_mm512_add_ps(p, p), _mm512_sub_ps(n, _mm512_set1_ps(1.f)));
}

// GELU, tanh form: 0.5 v (1 + tanh(u)) == v / (1 + e^(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3).
inline __m512 gelu_tanh16(__m512 v) {
  const __m512 u = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), v), _mm512_mul_ps(v, v), v);
  const __m512 e = exp512(_mm512_mul_ps(_mm512_set1_ps(-2.f * 0.7978845608028654f), u));
  return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.f), e));
}

}  // namespace
}  // namespace dsvl2
