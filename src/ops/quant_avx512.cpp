// AVX-512 VNNI matmul for Q8_0 / Q4_0 / IQ4_NL weights (semantics of matmul_quant_ref
// in quant.cpp: the same exact int32 block sums, f32 accumulation in another
// order).
//
// The kernel reads weights in a split layout, made once at load
// (prepare_quant, through Ops::prepare) or per call when a weight was not
// prepared. ggml's blocks interleave a 2-byte scale with 32 or 16 bytes of
// quants, so no 64-byte vector load lines up with them. Split, a row's blocks
// (padded to an even count) form groups of B = 16 blocks (then 8, 4, 2 for the
// rest), each J = B / 2 vectors of 64 elements, and every int32 lane of a
// group's vectors holds elements of one block only (BlockGroup): a group's J
// vpdpbusd leave 16 exact block sums in 16 lanes, scaled by d_w * d_x in one
// multiply-add. (Two blocks a vector, as ggml lays them, cost a permute, a convert,
// a multiply and an add per vector and row: the 4-bit kernel ran at 27 GB/s a
// thread even from cache, bound by them; this form at 48.)
//   Q8_0 vector: 64 bytes, each weight + 128 (int8 bits xor 0x80: u8 0..255)
//   Q4_0 vector: 32 bytes; byte t holds element t in its low nibble and
//               element 32 + t in its high nibble: one shift, one insert and
//               one and give the 64 as u8 0..15.
//   IQ4_NL: as Q4_0; one vpshufb maps a nibble to grid + 128 (u8 1..241).
// Each lane starts at -c * the sum of its own x (c = 128 for w + 128 and
// grid + 128, 8 for Q4_0's q = w + 8), so its int32 sum is exact.
// Rows go in groups of four (the kernel's register block), interleaved vector
// by vector, each group's 16 f16 scales a row (a block's repeated 16 / B times)
// after its quants: one row group is one sequential stream (separate short rows
// measured at half the bandwidth). Padding (rows, blocks) is zero. Four weight
// rows share each activation load; two activation rows share each weight load.
// GCC 12 reports its own _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/scratch.h"
#include "ops/math_avx512.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "ops/quant_split.h"

namespace dsvl2::avx512 {
namespace {

// Packs the row groups [r0, r1) (their padding rows too), per row and group
// from its blocks' elements in order (w + 128, or nibble values 0..15).
void pack_split(const Weight& w, const Split& s, uint8_t* dst, int64_t r0, int64_t r1) {
  if (r1 * kRows > s.N)  // padding rows of the last row group read as zero
    std::memset(dst + (r1 - 1) * s.stream_bytes, 0, size_t(s.stream_bytes));
  alignas(64) uint8_t elems[16 * 32];
  for (int64_t n = r0 * kRows; n < std::min(s.N, r1 * kRows); n++) {
    uint8_t* stream = dst + (n / kRows) * s.stream_bytes;
    const int i = int(n % kRows);
    for (int64_t g = 0; g < s.n_groups; g++) {
      const BlockGroup bg = s.group(g);
      uint16_t d[16] = {};
      for (int bl = 0; bl < bg.B; bl++) {
        const int64_t b = bg.b0 + bl;
        uint8_t* e = elems + 32 * bl;
        if (b >= s.nb) {  // the padding block of an odd count
          std::memset(e, 0, 32);
        } else if (s.q4) {
          const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(w.data)[n * s.nb + b];  // or IQ4_NL: the same bytes
          const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs)), lo4 = _mm_set1_epi8(0x0f);
          _mm_store_si128(reinterpret_cast<__m128i*>(e), _mm_and_si128(q, lo4));
          _mm_store_si128(reinterpret_cast<__m128i*>(e + 16), _mm_and_si128(_mm_srli_epi16(q, 4), lo4));
          d[bl] = blk.d;
        } else {
          const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(w.data)[n * s.nb + b];
          const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
          const __m256i biased = _mm256_xor_si256(q, _mm256_set1_epi8(char(0x80)));  // w + 128
          _mm256_store_si256(reinterpret_cast<__m256i*>(e), biased);
          d[bl] = blk.d;
        }
      }
      __m512i vs[8];
      group_vectors(bg, elems, vs);
      for (int j = 0; j < bg.J; j++) {
        uint8_t* vec = stream + s.quant_at(bg, j, i);
        if (s.q4)  // lanes 0-7 in the low nibbles of the 32 bytes, lanes 8-15 in the high ones
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(vec),
                              _mm256_or_si256(_mm512_castsi512_si256(vs[j]),
                                              _mm256_slli_epi16(_mm512_extracti64x4_epi64(vs[j], 1), 4)));
        else
          _mm512_storeu_si512(vec, vs[j]);
      }
      uint16_t* scales = reinterpret_cast<uint16_t*>(stream + s.scale_at(bg, i));
      for (int lane = 0; lane < 16; lane++) scales[lane] = d[lane % bg.B];
    }
  }
}


// Activations quantized to Q8_0 (as quantize_q8_0) in the kernel's layout: rows of
// 32 * nbp int8 (each group's vectors as the weights'), and per row and group 16 f32
// scales and 16 int32 starts (each lane's -c * the sum of its x).
struct Activations {
  ScratchBuffer q_buf, d_buf, start_buf;  // per thread, reused across calls, counted
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* start = nullptr;
};
void quantize_activations(const float* x, int64_t M, const Split& s, Activations& a, ThreadPool& pool) {
  const int64_t row_q = 32 * s.nbp, row_g = 16 * s.n_groups;
  a.q = static_cast<int8_t*>(a.q_buf.get(size_t(M * row_q)));
  a.d = static_cast<float*>(a.d_buf.get(size_t(M * row_g) * sizeof(float)));
  a.start = static_cast<int32_t*>(a.start_buf.get(size_t(M * row_g) * sizeof(int32_t)));
  const int32_t c = s.kind == Kind::kQ4 ? 8 : 128;
  auto run = [&](int64_t m0, int64_t m1, int) {
    alignas(64) int8_t elems[16 * 32];
    for (int64_t m = m0; m < m1; m++)
      for (int64_t g = 0; g < s.n_groups; g++) {
        const BlockGroup bg = s.group(g);
        float d[16] = {};
        for (int bl = 0; bl < bg.B; bl++) {
          if (bg.b0 + bl < s.nb) quantize_block(x + m * s.K + (bg.b0 + bl) * 32, elems + 32 * bl, &d[bl]);
          else std::memset(elems + 32 * bl, 0, 32);  // the padding block of an odd count
        }
        // Each lane's start: -c * the sum of its x (vpdpbusd with u8 ones sums four int8).
        __m512i sum = _mm512_setzero_si512(), vs[8];
        group_vectors(bg, reinterpret_cast<const uint8_t*>(elems), vs);
        for (int j = 0; j < bg.J; j++) {
          _mm512_storeu_si512(a.q + m * row_q + 32 * bg.b0 + 64 * j, vs[j]);
          sum = _mm512_dpbusd_epi32(sum, _mm512_set1_epi8(1), vs[j]);
        }
        _mm512_storeu_si512(a.start + m * row_g + 16 * g, _mm512_mullo_epi32(sum, _mm512_set1_epi32(-c)));
        for (int lane = 0; lane < 16; lane++) a.d[m * row_g + 16 * g + lane] = d[lane % bg.B];
      }
  };
  if (M >= 4) pool.parallel_for(M, run);
  else run(0, M, 0);
}


// How far ahead of its loads the kernel prefetches its weight stream: 2 KiB held
// decode at ~0.6 of the read roofline; 4 KiB gained ~10 % (q8_0 and q4_m decode,
// alternated; 8 KiB within noise of 4).
constexpr int64_t kPrefetchAhead = 4096;

// One row group (its stream) against MB activation rows.
template <Kind KD, int MB>
inline void row_group(const Split& s, const uint8_t* stream, int nn, const Activations& a, int64_t m,
                      const float* bias, int64_t n, float* y) {
  constexpr int R = kRows;
  constexpr bool NIB = KD != Kind::kQ8;
  constexpr int64_t CB = NIB ? 32 : 64;
  const int64_t row_q = 32 * s.nbp, row_g = 16 * s.n_groups;
  __m512 acc[R][MB];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  const __m512i grid = _mm512_loadu_si512(kGridU8.data());
  for (int64_t g = 0; g < s.n_groups; g++) {
    const BlockGroup bg = s.group(g);
    __m512i isum[R][MB];
    const int8_t* xg[MB];
    for (int j = 0; j < MB; j++) {
      const __m512i st = _mm512_loadu_si512(a.start + (m + j) * row_g + 16 * g);
      for (int i = 0; i < R; i++) isum[i][j] = st;
      xg[j] = a.q + (m + j) * row_q + 32 * bg.b0;
    }
    for (int v = 0; v < bg.J; v++) {
      const uint8_t* wv = stream + s.quant_at(bg, v, 0);
      for (int64_t p = 0; p < R * CB; p += 64)
        _mm_prefetch(reinterpret_cast<const char*>(wv + kPrefetchAhead + p), _MM_HINT_T0);
      __m512i xv[MB];
      for (int j = 0; j < MB; j++) xv[j] = _mm512_loadu_si512(xg[j] + 64 * v);
      for (int i = 0; i < R; i++) {
        __m512i w;
        if constexpr (NIB) {
          w = unpack_nibbles(wv + i * CB);
          if constexpr (KD == Kind::kIQ4) w = _mm512_shuffle_epi8(grid, w);
        } else {
          w = _mm512_loadu_si512(wv + i * CB);  // w + 128
        }
        for (int j = 0; j < MB; j++) isum[i][j] = _mm512_dpbusd_epi32(isum[i][j], w, xv[j]);
      }
    }
    // Every lane holds one block's exact int32 sum: scale by d_w * d_x.
    const uint16_t* sc = reinterpret_cast<const uint16_t*>(stream + s.scale_at(bg, 0));
    __m512 sx[MB];
    for (int j = 0; j < MB; j++) sx[j] = _mm512_loadu_ps(a.d + (m + j) * row_g + 16 * g);
    for (int i = 0; i < R; i++) {
      const __m512 sw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + 16 * i)));
      for (int j = 0; j < MB; j++)
        acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[i][j]), _mm512_mul_ps(sw, sx[j]), acc[i][j]);
    }
  }
  for (int j = 0; j < MB; j++)
    for (int i = 0; i < nn; i++)
      y[(m + j) * s.N + n + i] = _mm512_reduce_add_ps(acc[i][j]) + (bias ? bias[n + i] : 0.f);
}

template <Kind KD>
void run_split(const Split& s, const uint8_t* packed, const Activations& a, int64_t M, const float* bias, float* y,
               ThreadPool& pool) {
  // Balanced: a thread slowed by a neighbour no longer holds the other at the region's end.
  pool.parallel_for_balanced(s.row_groups, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t n = r * kRows;
      const int nn = int(std::min<int64_t>(kRows, s.N - n));
      const uint8_t* stream = packed + r * s.stream_bytes;
      int64_t m = 0;
      for (; m + 2 <= M; m += 2) row_group<KD, 2>(s, stream, nn, a, m, bias, n, y);
      if (m < M) row_group<KD, 1>(s, stream, nn, a, m, bias, n, y);
    }
  }, 8);
}

}  // namespace

size_t prepare_quant(const Weight& w, void* dst, Weight* out) {
  if (!is_matmul_quant(w.dtype) || w.rows <= 0 || w.cols <= 0 || w.cols % kQ8Block) return 0;
  const Split s(w);
  if (dst) {
    pack_split(w, s, static_cast<uint8_t*>(dst), 0, s.row_groups);
    *out = w;
    out->packed = dst;
    out->packed_tag = s.tag;
  }
  return s.bytes;
}

void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  DSVL2_REQUIRE(is_matmul_quant(w.dtype), "quantized matmul: %s weights are not supported", dtype_name(w.dtype));
  DSVL2_REQUIRE(w.cols % kQ8Block == 0, "quantized matmul: K = %lld is not a multiple of %d", (long long)w.cols,
                kQ8Block);
  if (M <= 0 || w.rows <= 0) return;
  const Split s(w);
  const uint8_t* packed = static_cast<const uint8_t*>(w.packed);
  if (!s.prepared(w)) {
    thread_local ScratchBuffer buf;  // not prepared: split per call
    uint8_t* dst = static_cast<uint8_t*>(buf.get(s.bytes));
    pool.parallel_for(s.row_groups, [&](int64_t r0, int64_t r1, int) { pack_split(w, s, dst, r0, r1); }, 16);
    packed = dst;
  }
  if (M >= kPromptRows) {
    Weight split = w;  // the prompt GEMM repacks from the split layout, prepared or made above
    split.packed = packed;
    split.packed_tag = s.tag;
    return matmul_quant_prompt(x, M, split, bias, y, pool);
  }
  thread_local Activations act;
  quantize_activations(x, M, s, act, pool);
  switch (s.kind) {
    case Kind::kQ8: return run_split<Kind::kQ8>(s, packed, act, M, bias, y, pool);
    case Kind::kQ4: return run_split<Kind::kQ4>(s, packed, act, M, bias, y, pool);
    case Kind::kIQ4: return run_split<Kind::kIQ4>(s, packed, act, M, bias, y, pool);
  }
}

}  // namespace dsvl2::avx512
