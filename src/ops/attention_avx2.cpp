// AVX2 scaled dot-product attention: one (query, head) at a time, dot
// products along Dk and the weighted sum of V rows 8 lanes wide (semantics of
// attention_ref in kernels_ref.cpp). The query-tiled form lives in the
// AVX-512 file; this is the portable fallback. bf16 K/V (a.k_bf16) are
// widened exactly on load; a.compute is ignored (always f32).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/scratch.h"
#include "ops/kernels_isa.h"
#include "ops/math_avx2.h"

namespace dsvl2::avx2 {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}
inline float load1(const float* p) { return *p; }
inline float load1(const uint16_t* p) { return bf16_to_f32(*p); }

template <typename KV>
void attention_kv(const AttentionArgs& a, const KV* kk, const KV* vv, ThreadPool& pool) {
  const int group = a.H / a.Hkv, dk8 = a.Dk & ~7, dv8 = a.Dv & ~7;
  pool.parallel_for(int64_t(a.T) * a.H, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer sbuf, obuf;
    float* scores = static_cast<float*>(sbuf.get((size_t(a.S) + 8) * sizeof(float)));
    float* acc = static_cast<float*>(obuf.get((size_t(a.Dv) + 8) * sizeof(float)));
    for (int64_t i = i0; i < i1; i++) {
      const int t = int(i / a.H), h = int(i % a.H), hk = h / group;
      const float* q = a.q + t * a.q_stride_t + h * a.q_stride_h;
      const int s_end = a.causal ? std::min(a.S, a.q_pos0 + t + 1) : a.S;
      float* o = a.out + t * a.o_stride_t + h * a.o_stride_h;
      if (s_end <= 0) {  // no visible key: the reference writes zeros
        std::fill(o, o + a.Dv, 0.f);
        continue;
      }
      float mx = -INFINITY;
      for (int s = 0; s < s_end; s++) {
        const KV* k = kk + s * a.k_stride_s + hk * a.k_stride_h;
        __m256 d = _mm256_setzero_ps();
        for (int j = 0; j < dk8; j += 8) d = _mm256_fmadd_ps(_mm256_loadu_ps(q + j), load8(k + j), d);
        float dot = hsum256(d);
        for (int j = dk8; j < a.Dk; j++) dot += q[j] * load1(k + j);
        scores[s] = dot * a.scale;
        mx = std::max(mx, scores[s]);
      }
      const __m256 mv = _mm256_set1_ps(mx);
      double sum = 0;
      int s = 0;
      for (; s + 8 <= s_end; s += 8) {
        const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(scores + s), mv));
        _mm256_storeu_ps(scores + s, e);
        sum += hsum256(e);
      }
      for (; s < s_end; s++) sum += scores[s] = std::exp(scores[s] - mx);
      const float inv = float(1.0 / sum);
      std::fill(acc, acc + a.Dv, 0.f);
      for (s = 0; s < s_end; s++) {
        const KV* v = vv + s * a.v_stride_s + hk * a.v_stride_h;
        const float p = scores[s] * inv;
        const __m256 pv = _mm256_set1_ps(p);
        int j = 0;
        for (; j < dv8; j += 8) _mm256_storeu_ps(acc + j, _mm256_fmadd_ps(pv, load8(v + j), _mm256_loadu_ps(acc + j)));
        for (; j < a.Dv; j++) acc[j] += p * load1(v + j);
      }
      std::copy(acc, acc + a.Dv, o);
    }
  });
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.T <= 0 || a.H <= 0) return;
  if (a.kv_bf16()) attention_kv(a, a.k_bf16, a.v_bf16, pool);
  else attention_kv(a, a.k, a.v, pool);
}

}  // namespace dsvl2::avx2
