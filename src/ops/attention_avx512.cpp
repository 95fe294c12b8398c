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
// Small T (decode): per query, blocks of 16 keys in the outer loop and the
// thread's heads in the inner one (each K/V row read once, the next block
// prefetched); a head's 16 scores are reduced together into one vector.
// bf16 K/V (a.k_bf16) are widened exactly: per key block into f32 scratch in
// the tiled form, on load in the per-query form. a.compute == kBF16 with
// T >= kTiledMinT takes the bf16 dot-product kernel (attention_bf16_avx512.cpp).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined_*
#pragma GCC diagnostic ignored "-Wuninitialized"        // (the unpack intrinsics)
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

// Rows [0, n) of a bf16 matrix (row stride `stride`) widened into f32 rows of d.
void widen_rows(const uint16_t* src, int64_t stride, int n, int d, float* dst) {
  for (int r = 0; r < n; r++)
    for (int j = 0; j < d; j += 16) {
      const __mmask16 m = tail_mask16(d - j);
      _mm512_mask_storeu_ps(dst + int64_t(r) * d + j, m, load_bf16x16(m, src + r * stride + j));
    }
}

void attend_tiled(const AttentionArgs& a, ThreadPool& pool) {
  const int group = a.H / a.Hkv, n_qb = (a.T + kQB - 1) / kQB;
  const bool bf = a.kv_bf16();
  pool.parallel_for(int64_t(a.H) * n_qb, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer qb_buf, pb_buf, ob_buf, kw_buf, vw_buf;
    float* qt = tls_floats(qb_buf, size_t(a.Dk) * kQB);
    float* pt = tls_floats(pb_buf, size_t(kSB) * kQB);
    float* ot = tls_floats(ob_buf, size_t(a.Dv) * kQB);
    float* kw = bf ? tls_floats(kw_buf, size_t(a.Dk) * kSB) : nullptr;  // one key block, widened
    float* vw = bf ? tls_floats(vw_buf, size_t(a.Dv) * kSB) : nullptr;
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
      const __m512 scale = _mm512_set1_ps(a.scale), neg_inf = _mm512_set1_ps(-INFINITY);
      for (int sb = 0; sb < s_lim; sb += kSB) {
        const int ns = std::min(kSB, s_lim - sb);
        // This block's keys kb[s * k_st] and values vb[s * v_st], s < ns.
        const float *kb, *vb;
        int64_t k_st, v_st;
        if (bf) {
          widen_rows(a.k_bf16 + hk * a.k_stride_h + int64_t(sb) * a.k_stride_s, a.k_stride_s, ns, a.Dk, kw);
          widen_rows(a.v_bf16 + hk * a.v_stride_h + int64_t(sb) * a.v_stride_s, a.v_stride_s, ns, a.Dv, vw);
          kb = kw, vb = vw, k_st = a.Dk, v_st = a.Dv;
        } else {
          kb = a.k + hk * a.k_stride_h + int64_t(sb) * a.k_stride_s, k_st = a.k_stride_s;
          vb = a.v + hk * a.v_stride_h + int64_t(sb) * a.v_stride_s, v_st = a.v_stride_s;
        }
        // Scores for kKeys keys at a time (2 x kKeys accumulators).
        for (int s = 0; s < ns; s += kKeys) {
          const int nk = std::min(kKeys, ns - s);
          const float* kp[kKeys];
          for (int i = 0; i < kKeys; i++) kp[i] = kb + int64_t(s + std::min(i, nk - 1)) * k_st;
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
        int d = 0;
        for (; d + kDims <= a.Dv; d += kDims) accumulate_pv<kDims>(ot, pt, ns, vb, v_st, d);
        for (; d < a.Dv; d++) accumulate_pv<1>(ot, pt, ns, vb, v_st, d);
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

inline __m512 load16(__mmask16 m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(__mmask16 m, const uint16_t* p) { return load_bf16x16(m, p); }

// Keys per block of the per-query form: the scores of 16 keys of one head
// are reduced together into one vector (a transpose of partial sums) instead
// of one horizontal sum per key, and P·V keeps each head's output in
// registers for the block instead of loading and storing it per key.
constexpr int kKeyBlock = 16;
constexpr int kDvChunk = 8;  // output vectors a P·V pass holds in registers

// Prefetches n rows of `elems` elements from p on (row stride in elements).
template <typename KV>
inline void prefetch_rows(const KV* p, int64_t stride, int n, int elems) {
  for (int r = 0; r < n; r++)
    for (int j = 0; j < elems; j += 64 / int(sizeof(KV)))
      _mm_prefetch(reinterpret_cast<const char*>(p + r * stride + j), _MM_HINT_T0);
}

// Lane r of the result = the sum of the 16 lanes of x[r].
inline __m512 reduce16x16(__m512 x[16]) {
  __m512 y[8], z[4];
  for (int i = 0; i < 8; i++)  // per 128-bit lane: x[2i], x[2i+1] interleaved, pairs summed
    y[i] = _mm512_add_ps(_mm512_unpacklo_ps(x[2 * i], x[2 * i + 1]), _mm512_unpackhi_ps(x[2 * i], x[2 * i + 1]));
  for (int i = 0; i < 4; i++) {  // per 128-bit lane: one partial sum of each of x[4i .. 4i+3]
    const __m512d a = _mm512_castps_pd(y[2 * i]), b = _mm512_castps_pd(y[2 * i + 1]);
    z[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // The four 128-bit lanes of z[i] summed into lane group i of the result.
  const __m512 u0 = _mm512_add_ps(_mm512_shuffle_f32x4(z[0], z[1], 0x44), _mm512_shuffle_f32x4(z[0], z[1], 0xee));
  const __m512 u1 = _mm512_add_ps(_mm512_shuffle_f32x4(z[2], z[3], 0x44), _mm512_shuffle_f32x4(z[2], z[3], 0xee));
  return _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, 0x88), _mm512_shuffle_f32x4(u0, u1, 0xdd));
}

// Scores of keys [s0, s0 + nk) (nk <= 16) for one query row q against the
// rows k + r * k_stride_s, times scale, into sc[0, nk).
template <typename KV>
inline void score_block(const float* q, const KV* k, int64_t k_stride_s, int nk, int Dk, float scale, float* sc) {
  __m512 acc[kKeyBlock];
  for (auto& x : acc) x = _mm512_setzero_ps();
  const KV* rows[kKeyBlock];
  for (int r = 0; r < kKeyBlock; r++) rows[r] = k + std::min(r, nk - 1) * k_stride_s;
  for (int j = 0; j < Dk; j += 16) {
    const __mmask16 m = tail_mask16(Dk - j);
    const __m512 qv = _mm512_maskz_loadu_ps(m, q + j);
    for (int r = 0; r < kKeyBlock; r++) acc[r] = _mm512_fmadd_ps(qv, load16(m, rows[r] + j), acc[r]);
  }
  _mm512_mask_storeu_ps(sc, tail_mask16(nk), _mm512_mul_ps(reduce16x16(acc), _mm512_set1_ps(scale)));
}

// acc[0, nv) += sum over keys r < nk of p[r] * v[r * v_stride_s + 16u ...].
template <typename KV>
inline void pv_block(float* acc, int nv, const float* p, const KV* v, int64_t v_stride_s, int nk, int Dv) {
  for (int u0 = 0; u0 < nv; u0 += kDvChunk) {
    const int nu = std::min(kDvChunk, nv - u0);
    __m512 o[kDvChunk];
    for (int u = 0; u < nu; u++) o[u] = _mm512_load_ps(acc + 16 * (u0 + u));
    for (int r = 0; r < nk; r++) {
      const __m512 pr = _mm512_set1_ps(p[r]);
      const KV* vr = v + r * v_stride_s + 16 * u0;
      for (int u = 0; u < nu; u++)
        o[u] = _mm512_fmadd_ps(pr, load16(tail_mask16(Dv - 16 * (u0 + u)), vr + 16 * u), o[u]);
    }
    for (int u = 0; u < nu; u++) _mm512_store_ps(acc + 16 * (u0 + u), o[u]);
  }
}

// Decode and short prefills: per query row, the heads of this thread's range
// together over blocks of 16 keys, so each K/V row is read once for all of
// them (not once per head with a row-sized stride, which costs a TLB miss
// per key and, for MQA/MLA, H reads of the same cache); the next block's
// rows are prefetched. Per (query, head): scores (dot products along Dk),
// their softmax (softmax_rows, sums in double as the reference), then V rows
// weighted in key order.
// K/V elements of type KV (f32, or bf16 widened on load).
template <typename KV>
void attend_rows(const AttentionArgs& a, const KV* kk, const KV* vv, ThreadPool& pool) {
  const int group = a.H / a.Hkv, nv = (a.Dv + 15) / 16;
  pool.parallel_for(int64_t(a.T) * a.H, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer sbuf, obuf;
    for (int64_t g = i0; g < i1;) {
      const int t = int(g / a.H), h0 = int(g % a.H), nh = int(std::min<int64_t>(i1 - g, a.H - h0));
      g += nh;
      const int s_end = a.causal ? std::min(a.S, a.q_pos0 + t + 1) : a.S;
      float* o = a.out + t * a.o_stride_t + h0 * a.o_stride_h;  // head h0 + i at o + i * o_stride_h
      if (s_end <= 0) {  // no visible key: the reference writes zeros
        for (int i = 0; i < nh; i++) std::fill(o + i * a.o_stride_h, o + i * a.o_stride_h + a.Dv, 0.f);
        continue;
      }
      const int64_t ss = (int64_t(s_end) + 31) & ~int64_t(15);  // scores of head h0 + i at scores + i * ss
      float* scores = tls_floats(sbuf, size_t(nh * ss));
      float* acc = tls_floats(obuf, size_t(nh) * nv * 16);
      const float* q0 = a.q + t * a.q_stride_t + h0 * a.q_stride_h;
      // Before each kv head's part of a block, its part of the next block's
      // rows is prefetched: spread over the block, not one burst.
      auto first_of_group = [&](int i) { return i == 0 || (h0 + i) % group == 0; };
      for (int s0 = 0; s0 < s_end; s0 += kKeyBlock) {
        const int nk = std::min(kKeyBlock, s_end - s0), n_next = std::min(kKeyBlock, s_end - s0 - kKeyBlock);
        const KV* ks = kk + s0 * a.k_stride_s;
        for (int i = 0; i < nh; i++) {
          const KV* k = ks + (h0 + i) / group * a.k_stride_h;
          if (first_of_group(i)) prefetch_rows(k + kKeyBlock * a.k_stride_s, a.k_stride_s, n_next, a.Dk);
          score_block(q0 + i * a.q_stride_h, k, a.k_stride_s, nk, a.Dk, a.scale, scores + i * ss + s0);
        }
      }
      // Each head's scores become its weights (P·V then multiplies once per key).
      for (int i = 0; i < nh; i++) softmax_rows(scores + i * ss, 1, s_end);
      std::fill(acc, acc + size_t(nh) * nv * 16, 0.f);
      for (int s0 = 0; s0 < s_end; s0 += kKeyBlock) {
        const int nk = std::min(kKeyBlock, s_end - s0), n_next = std::min(kKeyBlock, s_end - s0 - kKeyBlock);
        const KV* vs = vv + s0 * a.v_stride_s;
        for (int i = 0; i < nh; i++) {
          const KV* v = vs + (h0 + i) / group * a.v_stride_h;
          if (first_of_group(i)) prefetch_rows(v + kKeyBlock * a.v_stride_s, a.v_stride_s, n_next, a.Dv);
          pv_block(acc + size_t(i) * nv * 16, nv, scores + i * ss + s0, v, a.v_stride_s, nk, a.Dv);
        }
      }
      for (int i = 0; i < nh; i++)
        for (int u = 0; u < nv; u++)
          _mm512_mask_storeu_ps(o + i * a.o_stride_h + 16 * u, tail_mask16(a.Dv - 16 * u),
                                _mm512_load_ps(acc + (i * nv + u) * 16));
    }
  });
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.T <= 0 || a.H <= 0) return;
  if (a.T >= kTiledMinT && a.S > 0) {
    if (a.compute == Compute::kBF16 && attention_bf16(a, pool)) return;
    attend_tiled(a, pool);
  } else if (a.kv_bf16()) {
    attend_rows(a, a.k_bf16, a.v_bf16, pool);
  } else {
    attend_rows(a, a.k, a.v, pool);
  }
}

}  // namespace dsvl2::avx512
