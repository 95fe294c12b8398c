// AVX-512 scaled dot-product attention (the semantics of attention_ref in
// kernels_ref.cpp: f32 throughout, causal mask by absolute query position,
// GQA/MQA by head groups).
//
// T >= kTiledMinT (prefill, vision): flash-style tiles. Vector lanes are
// queries: a tile of 32 queries is transposed once (Q^T[Dk][32]); for each
// block of keys the scores S^T[key][32] come from broadcast-key FMAs, the
// softmax runs online per lane (running max and sum, rescaling the output),
// and O^T[Dv][32] += V^T · P accumulates with broadcast values. No S x T
// matrix is ever stored, and K/V are read in place through their strides.
// Small T (decode): one query at a time, dot products along Dk.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined_*
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/scratch.h"
#include "ops/kernels_isa.h"
#include "ops/math_avx512.h"

namespace dsvl2::avx512 {
namespace {

constexpr int kQB = 32;         // queries per tile: two vectors of lanes
constexpr int kSB = 64;         // keys per online-softmax block
constexpr int kTiledMinT = 16;  // below this a tile would be mostly padding
constexpr int kKeys = 8;        // keys per score register tile
constexpr int kDims = 8;        // output dims per P·V register tile

float* tls_floats(ScratchBuffer& b, size_t n) { return static_cast<float*>(b.get(n * sizeof(float))); }

// O^T[d..d+ND) (two vectors each) += sum_s V[s][d+i] * P^T[s].
template <int ND>
inline void accumulate_pv(float* ot, const float* pt, int ns, const float* v, int64_t v_stride_s, int d) {
  __m512 acc[ND][2];
  for (int i = 0; i < ND; i++) {
    acc[i][0] = _mm512_load_ps(ot + (d + i) * kQB);
    acc[i][1] = _mm512_load_ps(ot + (d + i) * kQB + 16);
  }
  for (int s = 0; s < ns; s++) {
    const __m512 p0 = _mm512_load_ps(pt + s * kQB), p1 = _mm512_load_ps(pt + s * kQB + 16);
    const float* vr = v + s * v_stride_s + d;
    for (int i = 0; i < ND; i++) {
      const __m512 vb = _mm512_set1_ps(vr[i]);
      acc[i][0] = _mm512_fmadd_ps(vb, p0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(vb, p1, acc[i][1]);
    }
  }
  for (int i = 0; i < ND; i++) {
    _mm512_store_ps(ot + (d + i) * kQB, acc[i][0]);
    _mm512_store_ps(ot + (d + i) * kQB + 16, acc[i][1]);
  }
}

void attend_tiled(const AttentionArgs& a, ThreadPool& pool) {
  const int group = a.H / a.Hkv, n_qb = (a.T + kQB - 1) / kQB;
  pool.parallel_for(int64_t(a.H) * n_qb, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer qb_buf, pb_buf, ob_buf;
    float* qt = tls_floats(qb_buf, size_t(a.Dk) * kQB);
    float* pt = tls_floats(pb_buf, size_t(kSB) * kQB);
    float* ot = tls_floats(ob_buf, size_t(a.Dv) * kQB);
    for (int64_t item = i0; item < i1; item++) {
      const int h = int(item / n_qb), hk = h / group, t0 = int(item % n_qb) * kQB, nt = std::min(kQB, a.T - t0);
      for (int j = 0; j < a.Dk; j++)
        for (int r = 0; r < kQB; r++) qt[j * kQB + r] = r < nt ? a.q[(t0 + r) * a.q_stride_t + h * a.q_stride_h + j] : 0.f;
      std::fill(ot, ot + size_t(a.Dv) * kQB, 0.f);
      __m512 m[2] = {_mm512_set1_ps(-INFINITY), _mm512_set1_ps(-INFINITY)};
      __m512 l[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
      // Keys any query of the tile may see (every lane sees key 0, so the
      // running max is finite after the first block).
      const int s_lim = a.causal ? std::min(a.S, a.q_pos0 + t0 + nt) : a.S;
      const float* kh = a.k + hk * a.k_stride_h;
      const float* vh = a.v + hk * a.v_stride_h;
      const __m512 scale = _mm512_set1_ps(a.scale), neg_inf = _mm512_set1_ps(-INFINITY);
      for (int sb = 0; sb < s_lim; sb += kSB) {
        const int ns = std::min(kSB, s_lim - sb);
        // Scores for kKeys keys at a time (2 x kKeys accumulators).
        for (int s = 0; s < ns; s += kKeys) {
          const int nk = std::min(kKeys, ns - s);
          const float* kp[kKeys];
          for (int i = 0; i < kKeys; i++) kp[i] = kh + int64_t(sb + s + std::min(i, nk - 1)) * a.k_stride_s;
          __m512 acc[kKeys][2];
          for (auto& x : acc) x[0] = x[1] = _mm512_setzero_ps();
          for (int j = 0; j < a.Dk; j++) {
            const __m512 q0 = _mm512_load_ps(qt + j * kQB), q1 = _mm512_load_ps(qt + j * kQB + 16);
            for (int i = 0; i < kKeys; i++) {
              const __m512 kb = _mm512_set1_ps(kp[i][j]);
              acc[i][0] = _mm512_fmadd_ps(kb, q0, acc[i][0]);
              acc[i][1] = _mm512_fmadd_ps(kb, q1, acc[i][1]);
            }
          }
          for (int i = 0; i < nk; i++) {
            __m512 s0 = _mm512_mul_ps(acc[i][0], scale), s1 = _mm512_mul_ps(acc[i][1], scale);
            if (a.causal) {  // lane r sees key s iff s <= q_pos0 + t0 + r
              const int first = sb + s + i - a.q_pos0 - t0;  // first lane that sees this key
              if (first > 0) {
                const __mmask16 v0 = first >= 16 ? 0 : __mmask16(0xffffu << first);
                const __mmask16 v1 = first >= 32 ? 0 : first <= 16 ? 0xffff : __mmask16(0xffffu << (first - 16));
                s0 = _mm512_mask_mov_ps(neg_inf, v0, s0);
                s1 = _mm512_mask_mov_ps(neg_inf, v1, s1);
              }
            }
            _mm512_store_ps(pt + (s + i) * kQB, s0);
            _mm512_store_ps(pt + (s + i) * kQB + 16, s1);
          }
        }
        // Online softmax: new running max, rescale sum and output, exponentiate.
        __m512 corr[2];
        for (int u = 0; u < 2; u++) {
          __m512 bm = m[u];
          for (int s = 0; s < ns; s++) bm = _mm512_max_ps(bm, _mm512_load_ps(pt + s * kQB + 16 * u));
          corr[u] = exp512(_mm512_sub_ps(m[u], bm));
          m[u] = bm;
          __m512 sum = _mm512_mul_ps(l[u], corr[u]);
          for (int s = 0; s < ns; s++) {
            const __m512 p = exp512(_mm512_sub_ps(_mm512_load_ps(pt + s * kQB + 16 * u), bm));
            _mm512_store_ps(pt + s * kQB + 16 * u, p);
            sum = _mm512_add_ps(sum, p);
          }
          l[u] = sum;
        }
        if (sb > 0)
          for (int d = 0; d < a.Dv; d++) {
            _mm512_store_ps(ot + d * kQB, _mm512_mul_ps(_mm512_load_ps(ot + d * kQB), corr[0]));
            _mm512_store_ps(ot + d * kQB + 16, _mm512_mul_ps(_mm512_load_ps(ot + d * kQB + 16), corr[1]));
          }
        const float* vb = vh + int64_t(sb) * a.v_stride_s;
        int d = 0;
        for (; d + kDims <= a.Dv; d += kDims) accumulate_pv<kDims>(ot, pt, ns, vb, a.v_stride_s, d);
        for (; d < a.Dv; d++) accumulate_pv<1>(ot, pt, ns, vb, a.v_stride_s, d);
      }
      alignas(64) float inv[kQB];
      _mm512_store_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.f), l[0]));
      _mm512_store_ps(inv + 16, _mm512_div_ps(_mm512_set1_ps(1.f), l[1]));
      for (int r = 0; r < nt; r++) {
        float* o = a.out + (t0 + r) * a.o_stride_t + h * a.o_stride_h;
        for (int d = 0; d < a.Dv; d++) o[d] = ot[d * kQB + r] * inv[r];
      }
    }
  });
}

// One (query, head) at a time: decode and short prefills.
void attend_rows(const AttentionArgs& a, ThreadPool& pool) {
  const int group = a.H / a.Hkv;
  pool.parallel_for(int64_t(a.T) * a.H, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer sbuf;
    float* scores = tls_floats(sbuf, size_t(a.S) + 16);
    for (int64_t i = i0; i < i1; i++) {
      const int t = int(i / a.H), h = int(i % a.H), hk = h / group;
      const float* q = a.q + t * a.q_stride_t + h * a.q_stride_h;
      const int s_end = a.causal ? std::min(a.S, a.q_pos0 + t + 1) : a.S;
      float* o = a.out + t * a.o_stride_t + h * a.o_stride_h;
      if (s_end <= 0) {  // no visible key: the reference writes zeros
        std::fill(o, o + a.Dv, 0.f);
        continue;
      }
      __m512 mx = _mm512_set1_ps(-INFINITY);
      for (int s = 0; s < s_end; s++) {
        const float* k = a.k + s * a.k_stride_s + hk * a.k_stride_h;
        __m512 acc = _mm512_setzero_ps();
        for (int j = 0; j < a.Dk; j += 16) {
          const __mmask16 m = tail_mask16(a.Dk - j);
          acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + j), _mm512_maskz_loadu_ps(m, k + j), acc);
        }
        scores[s] = _mm512_reduce_add_ps(acc) * a.scale;
      }
      for (int s = 0; s < s_end; s += 16)
        mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask16(s_end - s), scores + s));
      const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
      __m512 sum = _mm512_setzero_ps();
      for (int s = 0; s < s_end; s += 16) {
        const __mmask16 m = tail_mask16(s_end - s);
        const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + s), mv)));
        _mm512_mask_storeu_ps(scores + s, m, e);
        sum = _mm512_add_ps(sum, e);
      }
      const float inv = 1.f / _mm512_reduce_add_ps(sum);
      for (int d0 = 0; d0 < a.Dv; d0 += 128) {  // up to 8 output vectors in registers
        const int nv = std::min(8, (a.Dv - d0 + 15) / 16);
        __m512 acc[8];
        for (auto& x : acc) x = _mm512_setzero_ps();
        for (int s = 0; s < s_end; s++) {
          const float* v = a.v + s * a.v_stride_s + hk * a.v_stride_h + d0;
          const __m512 p = _mm512_set1_ps(scores[s] * inv);
          for (int u = 0; u < nv; u++)
            acc[u] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(tail_mask16(a.Dv - d0 - 16 * u), v + 16 * u), acc[u]);
        }
        for (int u = 0; u < nv; u++) _mm512_mask_storeu_ps(o + d0 + 16 * u, tail_mask16(a.Dv - d0 - 16 * u), acc[u]);
      }
    }
  });
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.T <= 0 || a.H <= 0) return;
  if (a.T >= kTiledMinT && a.S > 0) attend_tiled(a, pool);
  else attend_rows(a, pool);
}

}  // namespace dsvl2::avx512
