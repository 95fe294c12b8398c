// AVX2 scaled dot-product attention (semantics of attention_ref in
// kernels_ref.cpp), two forms:
//   * prompts (T >= kTileQ): sixteen queries of one head per tile, one query a
//     lane. Q·Kᵀ and P·V are FMAs of a query vector by a broadcast key or
//     value element, so no dot product ends in a horizontal sum, and an
//     online softmax over blocks of kKeyBlock keys keeps the tile's scores
//     and outputs in L1; several tiles take each key block in turn;
//   * decode (fewer queries): one (query, head) at a time, dot products along
//     Dk and the weighted sum of V rows 8 lanes wide.
// bf16 K/V (a.k_bf16) are widened exactly; a.compute is ignored (always f32).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

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

// A tile is 16 queries, two vectors; both products are the GEMM tile's shape
// (two vector loads and six broadcasts feed twelve FMAs: eight queries a tile
// measured load-bound at a third of the FMA peak).
constexpr int kTileQ = 16;
constexpr int kKeyBlock = 64;  // keys between softmax rescalings

// out[c][0..1] = Σ_j xᵀ[j] · broadcast(row_c[j]) for NR rows of length n.
template <int NR>
inline void scores_nr(const float* xt, const float* const* rows, int n, __m256 (*out)[2]) {
  __m256 acc[NR][2];
#pragma GCC unroll 6
  for (int c = 0; c < NR; c++) acc[c][0] = acc[c][1] = _mm256_setzero_ps();
  const float* r[NR];
#pragma GCC unroll 6
  for (int c = 0; c < NR; c++) r[c] = rows[c];
  for (int j = 0; j < n; j++) {
    const __m256 x0 = _mm256_load_ps(xt + j * kTileQ), x1 = _mm256_load_ps(xt + j * kTileQ + 8);
#pragma GCC unroll 6
    for (int c = 0; c < NR; c++) {
      const __m256 b = _mm256_broadcast_ss(r[c] + j);
      acc[c][0] = _mm256_fmadd_ps(x0, b, acc[c][0]);
      acc[c][1] = _mm256_fmadd_ps(x1, b, acc[c][1]);
    }
  }
#pragma GCC unroll 6
  for (int c = 0; c < NR; c++) out[c][0] = acc[c][0], out[c][1] = acc[c][1];
}

// oᵀ[d0 + c] += Σ_s p[s] · broadcast(v_s[d0 + c]), c < NC, over nb keys.
template <int NC>
inline void pv_nc(const float* p, const float* const* vrows, int nb, int d0, float* ot) {
  __m256 acc[NC][2];
#pragma GCC unroll 6
  for (int c = 0; c < NC; c++) {
    acc[c][0] = _mm256_load_ps(ot + (d0 + c) * kTileQ);
    acc[c][1] = _mm256_load_ps(ot + (d0 + c) * kTileQ + 8);
  }
  for (int s = 0; s < nb; s++) {
    const __m256 p0 = _mm256_load_ps(p + s * kTileQ), p1 = _mm256_load_ps(p + s * kTileQ + 8);
    const float* v = vrows[s] + d0;
#pragma GCC unroll 6
    for (int c = 0; c < NC; c++) {
      const __m256 b = _mm256_broadcast_ss(v + c);
      acc[c][0] = _mm256_fmadd_ps(p0, b, acc[c][0]);
      acc[c][1] = _mm256_fmadd_ps(p1, b, acc[c][1]);
    }
  }
#pragma GCC unroll 6
  for (int c = 0; c < NC; c++) {
    _mm256_store_ps(ot + (d0 + c) * kTileQ, acc[c][0]);
    _mm256_store_ps(ot + (d0 + c) * kTileQ + 8, acc[c][1]);
  }
}

void pv_block(const float* p, const float* const* vrows, int nb, int dv, float* ot) {
  int d = 0;
  for (; d + 6 <= dv; d += 6) pv_nc<6>(p, vrows, nb, d, ot);
  switch (dv - d) {
    case 1: return pv_nc<1>(p, vrows, nb, d, ot);
    case 2: return pv_nc<2>(p, vrows, nb, d, ot);
    case 3: return pv_nc<3>(p, vrows, nb, d, ot);
    case 4: return pv_nc<4>(p, vrows, nb, d, ot);
    case 5: return pv_nc<5>(p, vrows, nb, d, ot);
    default: return;
  }
}

// Scores of keys [s, s + n) (n <= 6) into sc.
void scores_block(const float* qt, const float* const* krows, int n, int dk, __m256 (*sc)[2]) {
  switch (n) {
    case 6: return scores_nr<6>(qt, krows, dk, sc);
    case 5: return scores_nr<5>(qt, krows, dk, sc);
    case 4: return scores_nr<4>(qt, krows, dk, sc);
    case 3: return scores_nr<3>(qt, krows, dk, sc);
    case 2: return scores_nr<2>(qt, krows, dk, sc);
    default: return scores_nr<1>(qt, krows, dk, sc);
  }
}

// Rows of f32 keys or values: in place, or widened from bf16 into `buf`.
inline const float* key_row(const float* base, int64_t off, int, float*) { return base + off; }
inline const float* key_row(const uint16_t* base, int64_t off, int n, float* buf) {
  int j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(buf + j, load8(base + off + j));
  for (; j < n; j++) buf[j] = load1(base + off + j);
  return buf;
}

// Query tiles that share each key block: K/V of a head (729 × 144 floats, 420
// KB in vision) do not stay in a 512 KB L2 beside the rest, so each tile read
// them from L3; eight tiles a pass read them an eighth as often (vision
// attention on two threads 103-108 -> 117-126 GFLOP/s; four tiles 92-123).
constexpr int kTilesPerPass = 8;

// One query tile's state across key blocks: queries transposed (qt[j][q]),
// unnormalized outputs (ot[d][q]), running max and sum a lane.
struct QueryTile {
  float* qt;
  float* ot;
  int t0 = 0, nq = 0, s_max = 0;
  alignas(32) int s_end[kTileQ];
  __m256 m[2], l[2];
};

// Scores, online softmax and P·V of one key block [s0, s0 + nb) for tile t.
void tile_block(QueryTile& t, const AttentionArgs& a, const float* const* krows, const float* const* vrows, int s0,
                int nb, float* p) {
  const __m256 scale = _mm256_set1_ps(a.scale), neg_inf = _mm256_set1_ps(-INFINITY), zero = _mm256_setzero_ps();
  const __m256i lane_end[2] = {_mm256_load_si256(reinterpret_cast<const __m256i*>(t.s_end)),
                               _mm256_load_si256(reinterpret_cast<const __m256i*>(t.s_end + 8))};
  // Scores of the block, masked past each lane's last visible key.
  __m256 bm[2] = {neg_inf, neg_inf};
  for (int s = 0; s < nb; s += 6) {
    __m256 sc[6][2];
    const int n = std::min(6, nb - s);
    scores_block(t.qt, krows + s, n, a.Dk, sc);
    for (int c = 0; c < n; c++) {
      const __m256i key = _mm256_set1_epi32(s0 + s + c);
      for (int g = 0; g < 2; g++) {
        const __m256 visible = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane_end[g], key));
        const __m256 v = _mm256_blendv_ps(neg_inf, _mm256_mul_ps(sc[c][g], scale), visible);
        _mm256_store_ps(p + (s + c) * kTileQ + 8 * g, v);
        bm[g] = _mm256_max_ps(bm[g], v);
      }
    }
  }
  // Online softmax: rescale what the earlier blocks summed. A lane with
  // no visible key yet keeps max -inf; it subtracts 0 instead.
  __m256 corr[2], m_sub[2], bsum[2] = {zero, zero};
  for (int g = 0; g < 2; g++) {
    const __m256 m_new = _mm256_max_ps(t.m[g], bm[g]);
    m_sub[g] = _mm256_blendv_ps(m_new, zero, _mm256_cmp_ps(m_new, neg_inf, _CMP_EQ_OQ));
    corr[g] = exp256(_mm256_sub_ps(t.m[g], m_sub[g]));
    t.m[g] = m_new;
  }
  for (int s = 0; s < nb; s++)
    for (int g = 0; g < 2; g++) {
      const __m256 v = _mm256_load_ps(p + s * kTileQ + 8 * g);
      const __m256 e = _mm256_blendv_ps(exp256(_mm256_sub_ps(v, m_sub[g])), zero,
                                        _mm256_cmp_ps(v, neg_inf, _CMP_EQ_OQ));
      _mm256_store_ps(p + s * kTileQ + 8 * g, e);
      bsum[g] = _mm256_add_ps(bsum[g], e);
    }
  for (int g = 0; g < 2; g++) t.l[g] = _mm256_fmadd_ps(t.l[g], corr[g], bsum[g]);
  if (s0 > 0)
    for (int d = 0; d < a.Dv; d++)
      for (int g = 0; g < 2; g++) {
        float* o = t.ot + d * kTileQ + 8 * g;
        _mm256_store_ps(o, _mm256_mul_ps(_mm256_load_ps(o), corr[g]));
      }
  pv_block(p, vrows, nb, a.Dv, t.ot);
}

template <typename KV>
void attention_tiled(const AttentionArgs& a, const KV* kk, const KV* vv, ThreadPool& pool) {
  const int group = a.H / a.Hkv;
  const int64_t tiles = (a.T + kTileQ - 1) / kTileQ, passes = (tiles + kTilesPerPass - 1) / kTilesPerPass;
  constexpr bool widen = !std::is_same_v<KV, float>;
  // Balanced: causal passes late in the prompt see more keys than early ones.
  pool.parallel_for_balanced(passes * a.H, [&](int64_t i0, int64_t i1, int) {
    thread_local ScratchBuffer buf;
    const size_t qt_n = size_t(a.Dk) * kTileQ, ot_n = size_t(a.Dv) * kTileQ, p_n = size_t(kKeyBlock) * kTileQ;
    const size_t kv_n = widen ? size_t(kKeyBlock) * size_t(a.Dk + a.Dv) : 0;
    float* p = static_cast<float*>(buf.get((kTilesPerPass * (qt_n + ot_n) + p_n + kv_n) * sizeof(float)));
    float* kvbuf = p + p_n;
    float* tile_mem = kvbuf + kv_n;
    const float* krows[kKeyBlock];
    const float* vrows[kKeyBlock];
    QueryTile qtiles[kTilesPerPass];
    for (int64_t i = i0; i < i1; i++) {
      const int h = int(i % a.H), hk = h / group;
      const int64_t first = i / a.H * kTilesPerPass;
      const int n_tiles = int(std::min<int64_t>(kTilesPerPass, tiles - first));
      int s_max = 0;
      for (int ti = 0; ti < n_tiles; ti++) {
        QueryTile& t = qtiles[ti];
        t.qt = tile_mem + ti * (qt_n + ot_n);
        t.ot = t.qt + qt_n;
        t.t0 = int(first + ti) * kTileQ;
        t.nq = std::min(kTileQ, a.T - t.t0);
        t.s_max = 0;
        for (int q = 0; q < kTileQ; q++) {
          t.s_end[q] = q >= t.nq ? 0 : a.causal ? std::min(a.S, a.q_pos0 + t.t0 + q + 1) : a.S;
          t.s_max = std::max(t.s_max, t.s_end[q]);
        }
        s_max = std::max(s_max, t.s_max);
        for (int j = 0; j < a.Dk; j++)
          for (int q = 0; q < kTileQ; q++)
            t.qt[j * kTileQ + q] = q < t.nq ? a.q[(t.t0 + q) * a.q_stride_t + h * a.q_stride_h + j] : 0.f;
        std::fill(t.ot, t.ot + ot_n, 0.f);
        t.m[0] = t.m[1] = _mm256_set1_ps(-INFINITY);
        t.l[0] = t.l[1] = _mm256_setzero_ps();
      }
      for (int s0 = 0; s0 < s_max; s0 += kKeyBlock) {
        const int nb = std::min(kKeyBlock, s_max - s0);
        for (int s = 0; s < nb; s++) {
          float* row = kvbuf + size_t(s) * size_t(a.Dk + a.Dv);
          krows[s] = key_row(kk, int64_t(s0 + s) * a.k_stride_s + hk * a.k_stride_h, a.Dk, row);
          vrows[s] = key_row(vv, int64_t(s0 + s) * a.v_stride_s + hk * a.v_stride_h, a.Dv, row + a.Dk);
        }
        for (int ti = 0; ti < n_tiles; ti++) {
          QueryTile& t = qtiles[ti];
          // A tile whose visible keys end before this block skips it (causal).
          if (s0 < t.s_max) tile_block(t, a, krows, vrows, s0, std::min(nb, t.s_max - s0), p);
        }
      }
      for (int ti = 0; ti < n_tiles; ti++) {
        const QueryTile& t = qtiles[ti];
        alignas(32) float inv[kTileQ];
        for (int g = 0; g < 2; g++) _mm256_store_ps(inv + 8 * g, _mm256_div_ps(_mm256_set1_ps(1.f), t.l[g]));
        for (int q = 0; q < t.nq; q++) {
          float* o = a.out + (t.t0 + q) * a.o_stride_t + h * a.o_stride_h;
          if (t.s_end[q] <= 0) {  // no visible key: the reference writes zeros
            std::fill(o, o + a.Dv, 0.f);
            continue;
          }
          for (int d = 0; d < a.Dv; d++) o[d] = t.ot[d * kTileQ + q] * inv[q];
        }
      }
    }
  }, 1);
}

}  // namespace

void attention(const AttentionArgs& a, ThreadPool& pool) {
  if (a.T <= 0 || a.H <= 0) return;
  if (a.T >= kTileQ) {
    if (a.kv_bf16()) attention_tiled(a, a.k_bf16, a.v_bf16, pool);
    else attention_tiled(a, a.k, a.v, pool);
    return;
  }
  if (a.kv_bf16()) attention_kv(a, a.k_bf16, a.v_bf16, pool);
  else attention_kv(a, a.k, a.v, pool);
}

}  // namespace dsvl2::avx2
