// AVX-512 VNNI Q8_0 matmul (semantics of matmul_q8_0_ref in quant.cpp).
// Per block pair: |w| (u8) times x with w's sign (s8) in one vpdpbusd (ymm,
// 8 int32 lanes; the sign trick keeps the product exact and handles w = -128,
// since activations quantized here stay in [-127, 127]), then the lanes are
// scaled by d_w * d_x into an f32 accumulator; one horizontal sum per output.
// Four weight rows share each activation block load.
#include <immintrin.h>

#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/quant.h"

namespace dsvl2::avx512 {

void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool) {
  DSVL2_REQUIRE(K % kQ8Block == 0, "Q8_0 matmul: K = %lld is not a multiple of %d", (long long)K, kQ8Block);
  const int64_t nb = K / kQ8Block;
  std::vector<BlockQ8_0> xq(size_t(M * nb));
  pool.parallel_for(M, [&](int64_t m0, int64_t m1, int) {
    for (int64_t m = m0; m < m1; m++) quantize_q8_0(x + m * K, K, xq.data() + m * nb);
  });
  std::vector<float> xd(size_t(M * nb));  // activation scales as f32
  for (size_t i = 0; i < xd.size(); i++) xd[i] = _cvtsh_ss(xq[i].d);
  const BlockQ8_0* W = static_cast<const BlockQ8_0*>(w);
  constexpr int R = 4;
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    for (int64_t n = n0; n < n1; n += R) {
      const int nn = int(std::min<int64_t>(R, n1 - n));
      const BlockQ8_0* wr[R];
      for (int i = 0; i < R; i++) wr[i] = W + (n + std::min(i, nn - 1)) * nb;
      for (int64_t m = 0; m < M; m++) {
        const BlockQ8_0* xr = xq.data() + m * nb;
        const float* xs = xd.data() + m * nb;
        __m256 acc[R];
        for (auto& a : acc) a = _mm256_setzero_ps();
        for (int64_t b = 0; b < nb; b++) {
          const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xr[b].qs));
          for (int i = 0; i < R; i++) {
            const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wr[i][b].qs));
            const __m256i isum =
                _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
            acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(_cvtsh_ss(wr[i][b].d) * xs[b]), acc[i]);
          }
        }
        for (int i = 0; i < nn; i++) {
          __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc[i]), _mm256_extractf128_ps(acc[i], 1));
          s = _mm_add_ps(s, _mm_movehl_ps(s, s));
          s = _mm_add_ss(s, _mm_movehdup_ps(s));
          y[m * N + n + i] = _mm_cvtss_f32(s) + (bias ? bias[n + i] : 0.f);
        }
      }
    }
  }, 16);
}

}  // namespace dsvl2::avx512
