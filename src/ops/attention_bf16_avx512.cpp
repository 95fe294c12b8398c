// AVX-512 attention in bf16 compute mode (a.compute == kBF16, T >= 16): the
// flash-style tiling of attend_tiled (attention_avx512.cpp) with both
// products as vdpbf16ps, which does twice the multiply-adds of an f32 FMA.
//
// Vector lanes are queries, 32 per work item (two vectors). Operands:
//   Q^T pairs  qp[p][32]: (q[t][2p], q[t][2p+1]) as one 32-bit word per lane;
//   K rows     bf16, a word per pair (read in place when K is stored bf16 with
//              even Dk, else converted once per call into a packed copy);
//   V^T pairs  vt[d][s/2]: (v[2i][d], v[2i+1][d]), transposed once per call;
//   P^T pairs  pp[s/2][32]: the softmax weights of two keys per lane.
// Scores S^T[s][32] = sum_p bcast(K word) * Q^T pairs, then an online softmax
// per lane in f32 (running max and sum, exp2 with the scale folded in), then
// O^T[d][32] += bcast(V^T word) * P^T pairs, the rescale folded into the
// store. Dk odd pads the last pair with a zero; tails of keys and of Dv are
// handled by clamping and masks, never by reading past a row.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12 on _mm512_undefined_*
#include <immintrin.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/scratch.h"
#include "ops/kernels_isa.h"
#include "ops/math_avx512.h"

namespace dsvl2::avx512 {
namespace {

constexpr int kQB = 32;     // queries per work item: two vectors of lanes
constexpr int kSB = 256;    // keys per online-softmax block (even; 128: 3% slower, a whole 729 row: same)
constexpr int kKeys = 12;   // keys per score register tile (12 x 2 vectors)
constexpr int kDims = 12;   // output dims per P.V register tile
constexpr int kPack = kQB;  // query and key rows per packing work item (even)

inline __mmask16 mask16(int64_t n) { return n <= 0 ? __mmask16(0) : tail_mask16(n); }
inline __mmask32 mask32(int64_t n) { return n <= 0 ? __mmask32(0) : n >= 32 ? ~__mmask32(0) : __mmask32((1u << n) - 1); }

// Row of n values (f32 or bf16) as bf16 into dst[0, n_pad), zeros after n.
void row_bf16(const float* src, int n, uint16_t* dst, int n_pad) {
  for (int j = 0; j < n_pad; j += 32) {
    const __m512 lo = _mm512_maskz_loadu_ps(mask16(n - j), src + j);
    const __m512 hi = _mm512_maskz_loadu_ps(mask16(n - j - 16), src + j + 16);
    _mm512_mask_storeu_epi16(dst + j, mask32(n_pad - j), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}
void row_bf16(const uint16_t* src, int n, uint16_t* dst, int n_pad) {
  for (int j = 0; j < n_pad; j += 32)
    _mm512_mask_storeu_epi16(dst + j, mask32(n_pad - j), _mm512_maskz_loadu_epi16(mask32(n - j), src + j));
}

// 16 values of a row as bf16 bits in the low half of 32-bit lanes.
inline __m512i bits16(__mmask16 m, const float* p) {
  return _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, p)));
}
inline __m512i bits16(__mmask16 m, const uint16_t* p) { return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)); }

// 2^x for x <= ~0, ~2e-6 relative (Taylor degree 5 on [-1/2, 1/2]);
// far below the bf16 rounding of the result. x < -127 (and -inf) give ~0
// (flushed to 0 by the bf16 conversion); NaN stays NaN.
inline __m512 exp2_bf(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-127.f), x);  // max(c, NaN) keeps NaN
  const __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(x, n);
  __m512 p = _mm512_set1_ps(1.3333558e-3f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.f));
  return _mm512_scalef_ps(p, n);
}

// Packed operands of one call.
struct Packed {
  int dk2 = 0, s2 = 0, n_qb = 0;  // Dk pairs; key pairs (S rounded up to even, / 2); query blocks
  const uint16_t* k = nullptr;    // key rows: k + hk * k_head + s * k_row (bf16)
  int64_t k_head = 0, k_row = 0;
  uint32_t* vt = nullptr;         // vt + (hk * Dv + d) * s2 + i: V^T pair words
  uint32_t* qp = nullptr;         // qp + ((h * n_qb + qb) * dk2 + p) * kQB + r: Q^T pair words
};

// Touches the cache lines of [p, p + bytes) ahead of use: a pack item walks rows
// far apart, whose misses the hardware prefetchers do not cover.
inline void prefetch_span(const void* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(static_cast<const char*>(p) + o, _MM_HINT_T0);
}

// Rows [r0, r0 + kPack) of every head: queries into Q^T words, keys into bf16
// rows (when kbuf) and values into V^T words. Heads in the inner loop, so each
// token's row is read front to back (rows far apart cost a TLB miss each).
template <typename KV>
void pack_rows(const AttentionArgs& a, const KV* kk, const KV* vv, const Packed& pk, uint16_t* kbuf, int r0,
               uint32_t* tmp, uint16_t* row) {
  const int dk2 = pk.dk2;
  if (r0 < a.T) {  // query block r0 / kQB
    const int qb = r0 / kQB, nt = std::min(kQB, a.T - r0);
    const int64_t q_span = (int64_t(a.H - 1) * a.q_stride_h + a.Dk) * 4;  // one query row, all heads
    for (int r = 0; r < kQB; r++) {
      if (r + 1 < nt) prefetch_span(a.q + (r0 + r + 1) * a.q_stride_t, q_span);
      for (int h = 0; h < a.H; h++) {
        uint32_t* dst = pk.qp + (int64_t(h) * pk.n_qb + qb) * dk2 * kQB + r;
        if (r >= nt) {
          for (int p = 0; p < dk2; p++) dst[p * kQB] = 0;
          continue;
        }
        row_bf16(a.q + (r0 + r) * a.q_stride_t + h * a.q_stride_h, a.Dk, row, 2 * dk2);
        for (int p = 0; p < dk2; p++) std::memcpy(dst + p * kQB, row + 2 * p, 4);
      }
    }
  }
  if (r0 >= a.S) return;
  const int n = std::min(kPack, a.S - r0), np = (n + 1) / 2;
  const int64_t k_span = (int64_t(a.Hkv - 1) * a.k_stride_h + a.Dk) * int64_t(sizeof(KV));
  const int64_t v_span = (int64_t(a.Hkv - 1) * a.v_stride_h + a.Dv) * int64_t(sizeof(KV));
  if (kbuf)
    for (int s = r0; s < r0 + n; s++) {
      if (s + 1 < r0 + n) prefetch_span(kk + (s + 1) * a.k_stride_s, k_span);
      for (int hk = 0; hk < a.Hkv; hk++)
        row_bf16(kk + hk * a.k_stride_h + s * a.k_stride_s, a.Dk, kbuf + hk * pk.k_head + s * pk.k_row, 2 * dk2);
    }
  // V pairs as rows tmp[hk][i][d] (vector), then transposed into vt[hk][d][i].
  for (int i = 0; i < np; i++) {
    const int sa = r0 + 2 * i, sb = sa + 1;
    if (sb + 2 < a.S && i + 1 < np) {
      prefetch_span(vv + (sa + 2) * a.v_stride_s, v_span);
      prefetch_span(vv + (sb + 2) * a.v_stride_s, v_span);
    }
    for (int hk = 0; hk < a.Hkv; hk++) {
      const KV* va = vv + hk * a.v_stride_h + sa * a.v_stride_s;
      const KV* vb = vv + hk * a.v_stride_h + sb * a.v_stride_s;
      uint32_t* t = tmp + (hk * (kPack / 2) + i) * a.Dv;
      for (int d = 0; d < a.Dv; d += 16) {
        const __mmask16 m = mask16(a.Dv - d);
        __m512i w = bits16(m, va + d);
        if (sb < a.S) w = _mm512_or_si512(w, _mm512_slli_epi32(bits16(m, vb + d), 16));
        _mm512_mask_storeu_epi32(t + d, m, w);
      }
    }
  }
  for (int hk = 0; hk < a.Hkv; hk++)
    for (int d = 0; d < a.Dv; d++) {
      uint32_t* dst = pk.vt + (int64_t(hk) * a.Dv + d) * pk.s2 + r0 / 2;
      const uint32_t* t = tmp + hk * (kPack / 2) * a.Dv + d;
      for (int i = 0; i < np; i++) dst[i] = t[i * a.Dv];
    }
}

// Two bf16 at p (any alignment) as one 32-bit lane value.
inline int word(const uint16_t* p) {
  int w;
  std::memcpy(&w, p, 4);
  return w;
}

// S^T[s][32] for keys kr[0..nk) (bf16 rows, nk <= kKeys; rows past nk repeat
// the last one and are not stored) against qp[dk2][32].
inline void score_tile(const uint32_t* qp, int dk2, const uint16_t* const* kr, int nk, float* st) {
  __m512 acc[kKeys][2];
  for (auto& x : acc) x[0] = x[1] = _mm512_setzero_ps();
  for (int p = 0; p < dk2; p++) {
    const __m512bh q0 = (__m512bh)_mm512_load_si512(qp + p * kQB), q1 = (__m512bh)_mm512_load_si512(qp + p * kQB + 16);
    for (int i = 0; i < kKeys; i++) {
      const __m512bh kb = (__m512bh)_mm512_set1_epi32(word(kr[i] + 2 * p));
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], kb, q0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], kb, q1);
    }
  }
  for (int i = 0; i < nk; i++) {
    _mm512_store_ps(st + i * kQB, acc[i][0]);
    _mm512_store_ps(st + i * kQB + 16, acc[i][1]);
  }
}

// O^T[d..d+ND) (two vectors each) = O^T * corr + sum_i vt[d+j][i] * pp[i], or
// without the old O^T on the first key block.
template <int ND>
void pv_tile(float* ot, const uint32_t* pp, int np, const uint32_t* vt, int64_t vt_row, int d, const __m512* corr,
             bool first) {
  __m512 acc[ND][2];
  for (auto& x : acc) x[0] = x[1] = _mm512_setzero_ps();
  const uint32_t* vr = vt + d * vt_row;
  for (int i = 0; i < np; i++) {
    const __m512bh p0 = (__m512bh)_mm512_load_si512(pp + i * kQB), p1 = (__m512bh)_mm512_load_si512(pp + i * kQB + 16);
    for (int j = 0; j < ND; j++) {
      const __m512bh vb = (__m512bh)_mm512_set1_epi32(int(vr[j * vt_row + i]));
      acc[j][0] = _mm512_dpbf16_ps(acc[j][0], vb, p0);
      acc[j][1] = _mm512_dpbf16_ps(acc[j][1], vb, p1);
    }
  }
  for (int j = 0; j < ND; j++) {
    float* o = ot + (d + j) * kQB;
    if (!first) {
      acc[j][0] = _mm512_fmadd_ps(_mm512_load_ps(o), corr[0], acc[j][0]);
      acc[j][1] = _mm512_fmadd_ps(_mm512_load_ps(o + 16), corr[1], acc[j][1]);
    }
    _mm512_store_ps(o, acc[j][0]);
    _mm512_store_ps(o + 16, acc[j][1]);
  }
}

using PvTile = void (*)(float*, const uint32_t*, int, const uint32_t*, int64_t, int, const __m512*, bool);
constexpr PvTile kPv[kDims + 1] = {nullptr,     pv_tile<1>, pv_tile<2>, pv_tile<3>,  pv_tile<4>,  pv_tile<5>, pv_tile<6>,
                                   pv_tile<7>,  pv_tile<8>, pv_tile<9>, pv_tile<10>, pv_tile<11>, pv_tile<12>};

// Interleaves two rows of 16 f32 weights into 16 words (a[i], b[i]) as bf16.
inline __m512i pair_words(__m512 a, __m512 b) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21,
                                       5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

void attend(const AttentionArgs& a, const Packed& pk, ThreadPool& pool) {
  const int group = a.H / a.Hkv, n_qb = (a.T + kQB - 1) / kQB, dk2 = pk.dk2;
  const float c = a.scale * 1.44269504088896341f;  // scores to log2 units
  pool.parallel_for(int64_t(a.H) * n_qb, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer s_buf, p_buf, o_buf;
    float* st = static_cast<float*>(s_buf.get(size_t(kSB) * kQB * 4));
    uint32_t* pp = static_cast<uint32_t*>(p_buf.get(size_t(kSB / 2) * kQB * 4));
    float* ot = static_cast<float*>(o_buf.get(size_t(a.Dv) * kQB * 4));
    for (int64_t item = i0; item < i1; item++) {
      const int h = int(item / n_qb), hk = h / group, t0 = int(item % n_qb) * kQB, nt = std::min(kQB, a.T - t0);
      const uint32_t* qp = pk.qp + item * dk2 * kQB;  // item = h * n_qb + query block
      __m512 m[2] = {_mm512_set1_ps(-FLT_MAX), _mm512_set1_ps(-FLT_MAX)};
      __m512 l[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
      const int s_lim = a.causal ? std::clamp(a.q_pos0 + t0 + nt, 0, a.S) : a.S;
      const uint16_t* kh = pk.k + hk * pk.k_head;
      const uint32_t* vh = pk.vt + int64_t(hk) * a.Dv * pk.s2;
      const __m512 neg_inf = _mm512_set1_ps(-INFINITY), cv = _mm512_set1_ps(c);
      for (int sb = 0; sb < s_lim; sb += kSB) {
        const int ns = std::min(kSB, s_lim - sb);
        for (int s = 0; s < ns; s += kKeys) {
          const int nk = std::min(kKeys, ns - s);
          const uint16_t* kr[kKeys];
          for (int i = 0; i < kKeys; i++) kr[i] = kh + int64_t(sb + s + std::min(i, nk - 1)) * pk.k_row;
          score_tile(qp, dk2, kr, nk, st + s * kQB);
          if (a.causal)  // lane r sees key j iff j <= q_pos0 + t0 + r
            for (int i = 0; i < nk; i++) {
              const int first = sb + s + i - a.q_pos0 - t0;  // first lane that sees this key
              if (first <= 0) continue;
              const __mmask16 v0 = first >= 16 ? 0 : __mmask16(0xffffu << first);
              const __mmask16 v1 = first >= 32 ? 0 : first <= 16 ? 0xffff : __mmask16(0xffffu << (first - 16));
              float* row = st + (s + i) * kQB;
              _mm512_store_ps(row, _mm512_mask_mov_ps(neg_inf, v0, _mm512_load_ps(row)));
              _mm512_store_ps(row + 16, _mm512_mask_mov_ps(neg_inf, v1, _mm512_load_ps(row + 16)));
            }
        }
        // Online softmax per lane; weights of key pairs into P^T words (an odd
        // last key pairs with a zero weight).
        __m512 corr[2], mc[2], sum[2];
        for (int u = 0; u < 2; u++) {
          __m512 bm = m[u];
          for (int s = 0; s < ns; s++) bm = _mm512_max_ps(bm, _mm512_load_ps(st + s * kQB + 16 * u));
          corr[u] = exp2_bf(_mm512_mul_ps(_mm512_sub_ps(m[u], bm), cv));
          m[u] = bm;
          mc[u] = _mm512_max_ps(_mm512_mul_ps(bm, cv), _mm512_set1_ps(-FLT_MAX));  // finite: -inf - mc = -inf
          sum[u] = _mm512_setzero_ps();
        }
        const int np = (ns + 1) / 2;
        for (int i = 0; i < np; i++) {
          for (int u = 0; u < 2; u++) {
            const float* row = st + 2 * i * kQB + 16 * u;
            const __m512 e0 = exp2_bf(_mm512_fmsub_ps(_mm512_load_ps(row), cv, mc[u]));
            const __m512 e1 = 2 * i + 1 < ns ? exp2_bf(_mm512_fmsub_ps(_mm512_load_ps(row + kQB), cv, mc[u]))
                                             : _mm512_setzero_ps();
            sum[u] = _mm512_add_ps(sum[u], _mm512_add_ps(e0, e1));
            _mm512_store_si512(pp + i * kQB + 16 * u, pair_words(e0, e1));
          }
        }
        for (int u = 0; u < 2; u++) l[u] = _mm512_fmadd_ps(l[u], corr[u], sum[u]);
        const uint32_t* vb = vh + sb / 2;
        int d = 0;
        for (; d + kDims <= a.Dv; d += kDims) pv_tile<kDims>(ot, pp, np, vb, pk.s2, d, corr, sb == 0);
        if (d < a.Dv) kPv[a.Dv - d](ot, pp, np, vb, pk.s2, d, corr, sb == 0);
      }
      alignas(64) float inv[kQB];
      for (int u = 0; u < 2; u++) {  // no visible key (l = 0): zeros, as the reference
        const __mmask16 pos = _mm512_cmp_ps_mask(l[u], _mm512_setzero_ps(), _CMP_GT_OQ);
        _mm512_store_ps(inv + 16 * u, _mm512_maskz_div_ps(pos, _mm512_set1_ps(1.f), l[u]));
      }
      if (s_lim <= 0) std::fill(ot, ot + size_t(a.Dv) * kQB, 0.f);
      // out[t0 + r][d] = O^T[d][r] / l[r], 16 x 16 blocks transposed in registers.
      for (int r0 = 0; r0 < nt; r0 += 16)
        for (int d0 = 0; d0 < a.Dv; d0 += 16) {
          __m512 x[16];
          for (int j = 0; j < 16; j++)
            x[j] = d0 + j < a.Dv ? _mm512_load_ps(ot + (d0 + j) * kQB + r0) : _mm512_setzero_ps();
          transpose16(x);
          const __mmask16 m = mask16(a.Dv - d0);
          for (int r = r0; r < std::min(nt, r0 + 16); r++)
            _mm512_mask_storeu_ps(a.out + (t0 + r) * a.o_stride_t + h * a.o_stride_h + d0, m,
                                  _mm512_mul_ps(x[r - r0], _mm512_set1_ps(inv[r])));
        }
    }
  });
}

template <typename KV>
void run(const AttentionArgs& a, const KV* kk, const KV* vv, bool k_in_place, ThreadPool& pool) {
  Packed pk;
  pk.dk2 = (a.Dk + 1) / 2;
  pk.s2 = (a.S + 1) / 2;
  pk.n_qb = (a.T + kQB - 1) / kQB;
  // Per calling thread (a nested call runs on its caller's thread).
  thread_local ScratchBuffer k_buf, v_buf, q_buf;
  uint16_t* kbuf = nullptr;
  if (k_in_place) {
    pk.k = reinterpret_cast<const uint16_t*>(kk);
    pk.k_head = a.k_stride_h, pk.k_row = a.k_stride_s;
  } else {
    pk.k_row = 2 * pk.dk2, pk.k_head = int64_t(a.S) * pk.k_row;
    kbuf = static_cast<uint16_t*>(k_buf.get(size_t(a.Hkv) * pk.k_head * 2));
    pk.k = kbuf;
  }
  pk.vt = static_cast<uint32_t*>(v_buf.get(size_t(a.Hkv) * a.Dv * pk.s2 * 4));
  pk.qp = static_cast<uint32_t*>(q_buf.get(size_t(a.H) * pk.n_qb * pk.dk2 * kQB * 4));
  const int n_items = (std::max(a.S, a.T) + kPack - 1) / kPack;
  pool.parallel_for(n_items, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer t_buf, r_buf;
    uint32_t* tmp = static_cast<uint32_t*>(t_buf.get(size_t(a.Hkv) * (kPack / 2) * a.Dv * 4 + 64));
    uint16_t* row = static_cast<uint16_t*>(r_buf.get(size_t(pk.dk2) * 4 + 64));
    for (int64_t i = i0; i < i1; i++) pack_rows(a, kk, vv, pk, kbuf, int(i) * kPack, tmp, row);
  });
  attend(a, pk, pool);
}

}  // namespace

bool attention_bf16(const AttentionArgs& a, ThreadPool& pool) {
  if (!(a.scale > 0.f) || a.S <= 0 || a.Dk <= 0 || a.Dv <= 0) return false;
  if (a.kv_bf16()) run(a, a.k_bf16, a.v_bf16, a.Dk % 2 == 0, pool);
  else run(a, a.k, a.v, false, pool);
  return true;
}

}  // namespace dsvl2::avx512
