// The int8 matmul on AVX2 (no VNNI, no AVX-512): ggml's blocks, read in place
// or from the layout prepare_quant writes at load (row pairs interleaved,
// scales grouped: tile_grouped); the integer sums of matmul_quant_ref (quant.h).
//
// AVX2 has no signed int8 dot product. vpmaddubsw multiplies unsigned by
// signed bytes, so each pair goes in as |w| and x carrying w's sign
// (vpsignb), and vpmaddwd against ones widens the int16 pair sums to int32;
// |w| <= 128 and |x| <= 127 keep every int16 sum below 2^15. Q4_0 and IQ4_NL
// blocks are widened to int8 first (nibbles minus 8, or a vpshufb lookup in
// the IQ4_NL grid). A tile is two weight rows by up to three activation rows
// (eight accumulators and the decoded blocks fit the 16 registers); weight
// rows go in chunks that stay in L1 while every activation row passes over
// them, so a prompt's quantized activations are read once a chunk.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "core/dtype.h"
#include "core/error.h"
#include "core/scratch.h"
#include "ops/math_avx2.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dsvl2::avx2 {
namespace {

constexpr int kRowsW = 2;       // weight rows a tile
constexpr int kRowsX = 3;       // activation rows a tile (at most)
constexpr int64_t kChunkW = 16;  // weight rows a chunk (a few KB: L1)
// Names prepare_quant's layout (tile_grouped); change it whenever that changes.
constexpr uint32_t kPackedGroupsTag = 0x5147'0801;

// f16 -> f32 through a movd: _cvtsh_ss on a memory operand compiled to a
// vpinsrw merging into a live register (a false dependency, 16 % of a
// prompt's samples).
inline float half(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

// One Q8_0 block of x, rounded as quantize_q8_0 (half away from zero): its
// 32 quants to qs (32-byte aligned), its f16 scale as f32 to *d.
inline void quantize_block(const float* x, int8_t* qs, float* d_out) {
  const __m256 sign = _mm256_set1_ps(-0.f);
  __m256 v[4];
  __m256 amax = _mm256_setzero_ps();
  for (int i = 0; i < 4; i++) {
    v[i] = _mm256_loadu_ps(x + 8 * i);
    amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));
  }
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  const float d = _mm_cvtss_f32(m) / 127.f, id = d != 0.f ? 1.f / d : 0.f;
  *d_out = half(f32_to_f16(d));
  __m256i q[4];
  for (int i = 0; i < 4; i++) {
    const __m256 t = _mm256_mul_ps(v[i], _mm256_set1_ps(id));
    const __m256 a = _mm256_andnot_ps(sign, t);
    const __m256 tr = _mm256_round_ps(a, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 up = _mm256_cmp_ps(_mm256_sub_ps(a, tr), _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 r = _mm256_or_ps(_mm256_add_ps(tr, _mm256_and_ps(up, _mm256_set1_ps(1.f))), _mm256_and_ps(sign, t));
    q[i] = _mm256_cvttps_epi32(r);
  }
  // int32 -> int8 with the packs' lane interleave undone.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
  _mm256_store_si256(reinterpret_cast<__m256i*>(qs),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

// A block's 32 weights as signed bytes, from its quants (32 bytes for Q8_0,
// 16 bytes of nibbles for Q4_0 and IQ4_NL).
template <DType T>
inline __m256i block_quants(const uint8_t* qs) {
  if constexpr (T == DType::kQ8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
  } else {
    // The 16 bytes in both lanes, the upper lane shifted by a nibble: low
    // nibbles (elements 0..15) below, high ones (16..31) above.
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)));
    const __m256i n = _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                                       _mm256_set1_epi8(0x0f));
    if constexpr (T == DType::kQ4_0) return _mm256_sub_epi8(n, _mm256_set1_epi8(8));
    else return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(
                                         reinterpret_cast<const __m128i*>(kIQ4NLGrid))), n);
  }
}

// Every block type is {f16 scale, quants}: the scale is the first two bytes.
static_assert(offsetof(BlockQ8_0, qs) == 2 && offsetof(BlockQ4_0, qs) == 2 && offsetof(BlockIQ4_NL, qs) == 2);
template <DType T>
constexpr int64_t kQuantBytes = T == DType::kQ8_0 ? 32 : 16;
template <DType T>
constexpr int64_t kBlockBytes = kQuantBytes<T> + 2;

// One block by one activation block: |w| (aw) times x carrying w's sign, as
// eight int32 partial sums.
inline __m256i block_dot(__m256i aw, __m256i w, __m256i x) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w)), _mm256_set1_epi16(1));
}

// acc[i][j] += (weight row i's block · activation row j's block b) *
// scale(i, j), for both weight rows of a tile and its RX activation rows.
template <int RX, class Scale>
__attribute__((always_inline)) inline void add_block(__m256 (&acc)[kRowsW][RX], const __m256i (&w)[kRowsW],
                                                     const int8_t* const* xrow, int64_t b, Scale scale) {
  __m256i aw[kRowsW];
#pragma GCC unroll 2
  for (int i = 0; i < kRowsW; i++) aw[i] = _mm256_sign_epi8(w[i], w[i]);
#pragma GCC unroll 3
  for (int j = 0; j < RX; j++) {
    const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(xrow[j] + b * kQ8Block));
#pragma GCC unroll 2
    for (int i = 0; i < kRowsW; i++)
      acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_dot(aw[i], w[i], x)), scale(i, j), acc[i][j]);
  }
}

template <int RX>
__attribute__((always_inline)) inline void zero(__m256 (&acc)[kRowsW][RX]) {
#pragma GCC unroll 2
  for (int i = 0; i < kRowsW; i++)
#pragma GCC unroll 3
    for (int j = 0; j < RX; j++) acc[i][j] = _mm256_setzero_ps();
}

// out[i * RX + j]: the sum of acc[i][j]'s lanes.
template <int RX>
__attribute__((always_inline)) inline void store_sums(const __m256 (&acc)[kRowsW][RX], float* out) {
#pragma GCC unroll 2
  for (int i = 0; i < kRowsW; i++)
#pragma GCC unroll 3
    for (int j = 0; j < RX; j++) out[i * RX + j] = hsum256(acc[i][j]);
}

// y[m][n] for RX activation rows and kRowsW weight rows over nb blocks, from
// ggml's blocks in place. out[i * RX + j]: weight row i by activation row j.
// xrow[j]: activation row j's quants, 32 a block, aligned (a 34-byte block's
// quants straddle cache lines every other block); xscale[j] its f32 scales.
template <DType T, int RX>
inline void tile(const uint8_t* const* wrow, const int8_t* const* xrow, const float* const* xscale, int64_t nb,
                 float* out) {
  __m256 acc[kRowsW][RX];
  zero(acc);
  for (int64_t b = 0; b < nb; b++) {
    __m256i w[kRowsW];
    __m256 dwv[kRowsW];
#pragma GCC unroll 2
    for (int i = 0; i < kRowsW; i++) {
      // The rows stream from memory in decode; the hardware prefetcher alone
      // left a thread at 9 GB/s, 2 KiB ahead reads 14.8 (1 KiB 13, 4 KiB 14.5).
      const uint8_t* blk = wrow[i] + b * kBlockBytes<T>;
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048, _MM_HINT_T0);
      uint16_t d;
      std::memcpy(&d, blk, 2);
      dwv[i] = _mm256_set1_ps(half(d));
      w[i] = block_quants<T>(blk + 2);
    }
    add_block(acc, w, xrow, b, [&](int i, int j) { return _mm256_mul_ps(dwv[i], _mm256_broadcast_ss(xscale[j] + b)); });
  }
  store_sums(acc, out);
}

// The layout prepare_quant writes, for each pair of weight rows (an odd last
// row paired with itself), kGroup blocks at a time: the group's f16 scales
// (32 bytes: row 0's eight, then row 1's; zeros past the row's end), then its
// quants block by block, row 0's and row 1's. A tile then reads one stream
// (two rows 1-2 KB apart held a decode thread to 14.6 GB/s; one stream reads
// 20-22), and eight blocks' scales are widened and multiplied by the
// activations' in three vector ops instead of four scalar-to-vector ops a
// block and row (the 4-bit decode is bound by its ops, not by memory).
constexpr int64_t kGroup = 8;
template <DType T>
constexpr int64_t group_bytes(int64_t blocks) {
  return 32 + blocks * kRowsW * kQuantBytes<T>;
}
template <DType T>
constexpr int64_t pair_bytes(int64_t nb) {
  return nb / kGroup * group_bytes<T>(kGroup) + (nb % kGroup ? group_bytes<T>(nb % kGroup) : 0);
}

// tile() over one pair of the prepared layout: the same products in the same
// order (scales multiplied in f32 as there), so the sums are bit-identical.
template <DType T, int RX>
inline void tile_grouped(const uint8_t* pair, const int8_t* const* xrow, const float* const* xscale, int64_t nb,
                         float* out) {
  constexpr int64_t QB = kQuantBytes<T>;
  __m256 acc[kRowsW][RX];
  zero(acc);
  alignas(32) float scale[kRowsW][RX][kGroup];  // dw * dx of each block of the group
  for (int64_t b0 = 0; b0 < nb; b0 += kGroup) {
    const int n = int(std::min(kGroup, nb - b0));
    const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 dw[kRowsW];
#pragma GCC unroll 2
    for (int i = 0; i < kRowsW; i++)
      dw[i] = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(pair) + i));
#pragma GCC unroll 3
    for (int j = 0; j < RX; j++) {
      const __m256 dx = _mm256_maskload_ps(xscale[j] + b0, live);
#pragma GCC unroll 2
      for (int i = 0; i < kRowsW; i++) _mm256_store_ps(scale[i][j], _mm256_mul_ps(dw[i], dx));
    }
    const uint8_t* q = pair + 32;
    for (int k = 0; k < n; k++, q += kRowsW * QB) {
      _mm_prefetch(reinterpret_cast<const char*>(q) + 2048, _MM_HINT_T0);
      __m256i w[kRowsW];
#pragma GCC unroll 2
      for (int i = 0; i < kRowsW; i++) w[i] = block_quants<T>(q + i * QB);
      add_block(acc, w, xrow, b0 + k, [&](int i, int j) { return _mm256_broadcast_ss(&scale[i][j][k]); });
    }
    pair = q;
  }
  store_sums(acc, out);
}

template <DType T>
void matmul_typed(const int8_t* xq, const float* xd, int64_t M, const Weight& w, const float* bias, float* y,
                  ThreadPool& pool) {
  const int64_t N = w.rows, nb = w.cols / kQ8Block;
  const size_t row_bytes = size_t(nb) * dtype_block_bytes(T);
  const bool grouped = w.packed && w.packed_tag == kPackedGroupsTag;
  const auto* base = static_cast<const uint8_t*>(grouped ? w.packed : w.data);
  pool.parallel_for((N + kChunkW - 1) / kChunkW, [&](int64_t c0, int64_t c1, int) {
    for (int64_t n0 = c0 * kChunkW; n0 < std::min(N, c1 * kChunkW); n0 += kChunkW) {
      const int64_t n_end = std::min(N, n0 + kChunkW);
      for (int64_t m = 0; m < M; m += kRowsX) {
        const int rx = int(std::min<int64_t>(kRowsX, M - m));
        const int8_t* xrow[kRowsX];
        const float* xscale[kRowsX];
        for (int j = 0; j < kRowsX; j++) {
          xrow[j] = xq + std::min(m + j, M - 1) * nb * kQ8Block;
          xscale[j] = xd + std::min(m + j, M - 1) * nb;
        }
        for (int64_t n = n0; n < n_end; n += kRowsW) {  // n is even
          float out[kRowsW * kRowsX];
          if (grouped) {
            const uint8_t* pair = base + size_t(n / kRowsW) * size_t(pair_bytes<T>(nb));
            if (rx == 3) tile_grouped<T, 3>(pair, xrow, xscale, nb, out);
            else if (rx == 2) tile_grouped<T, 2>(pair, xrow, xscale, nb, out);
            else tile_grouped<T, 1>(pair, xrow, xscale, nb, out);
          } else {
            const uint8_t* wrow[kRowsW];
            for (int i = 0; i < kRowsW; i++) wrow[i] = base + size_t(std::min(n + i, N - 1)) * row_bytes;
            if (rx == 3) tile<T, 3>(wrow, xrow, xscale, nb, out);
            else if (rx == 2) tile<T, 2>(wrow, xrow, xscale, nb, out);
            else tile<T, 1>(wrow, xrow, xscale, nb, out);
          }
          for (int i = 0; i < kRowsW && n + i < N; i++)
            for (int j = 0; j < rx; j++) y[(m + j) * N + n + i] = out[i * rx + j] + (bias ? bias[n + i] : 0.f);
        }
      }
    }
  }, 1);
}

template <DType T>
void pack_groups(const Weight& w, uint8_t* d) {
  constexpr int64_t QB = kQuantBytes<T>, BB = kBlockBytes<T>;
  const int64_t nb = w.cols / kQ8Block, row_bytes = nb * BB;
  const auto* src = static_cast<const uint8_t*>(w.data);
  for (int64_t p = 0; p < (w.rows + 1) / kRowsW; p++) {
    const uint8_t* rows[kRowsW] = {src + 2 * p * row_bytes, src + std::min(2 * p + 1, w.rows - 1) * row_bytes};
    for (int64_t b0 = 0; b0 < nb; b0 += kGroup) {
      const int64_t n = std::min(kGroup, nb - b0);
      std::memset(d, 0, 32);
      for (int i = 0; i < kRowsW; i++)
        for (int64_t k = 0; k < n; k++) std::memcpy(d + 2 * (i * kGroup + k), rows[i] + (b0 + k) * BB, 2);
      d += 32;
      for (int64_t k = 0; k < n; k++)
        for (int i = 0; i < kRowsW; i++, d += QB) std::memcpy(d, rows[i] + (b0 + k) * BB + 2, size_t(QB));
    }
  }
}

}  // namespace

void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  const int64_t K = w.cols;
  DSVL2_REQUIRE(is_matmul_quant(w.dtype), "quantized matmul: %s weights are not supported", dtype_name(w.dtype));
  DSVL2_REQUIRE(K % kQ8Block == 0, "quantized matmul: K = %lld is not a multiple of %d", (long long)K, kQ8Block);
  if (M <= 0 || w.rows <= 0) return;
  const int64_t nb = K / kQ8Block;
  thread_local ScratchBuffer buf;  // the activations as Q8_0 blocks, reused across calls
  auto* xq = static_cast<int8_t*>(buf.get(size_t(M * nb) * (kQ8Block + sizeof(float))));  // 64-byte aligned
  auto* xd = reinterpret_cast<float*>(xq + M * nb * kQ8Block);
  pool.parallel_for(M * nb, [&](int64_t b0, int64_t b1, int) {
    for (int64_t b = b0; b < b1; b++)
      quantize_block(x + (b / nb) * K + (b % nb) * kQ8Block, xq + b * kQ8Block, xd + b);
  }, 256);
  switch (w.dtype) {
    case DType::kQ8_0: return matmul_typed<DType::kQ8_0>(xq, xd, M, w, bias, y, pool);
    case DType::kQ4_0: return matmul_typed<DType::kQ4_0>(xq, xd, M, w, bias, y, pool);
    default: return matmul_typed<DType::kIQ4_NL>(xq, xd, M, w, bias, y, pool);
  }
}

size_t prepare_quant(const Weight& w, void* dst, Weight* out) {
  if (!is_matmul_quant(w.dtype) || w.rows <= 0 || w.cols % kQ8Block != 0) return 0;
  const int64_t nb = w.cols / kQ8Block, n_pairs = (w.rows + 1) / kRowsW;
  // Q4_0 and IQ4_NL blocks have the same sizes.
  const int64_t bytes = n_pairs * (w.dtype == DType::kQ8_0 ? pair_bytes<DType::kQ8_0>(nb)
                                                            : pair_bytes<DType::kQ4_0>(nb));
  if (dst) {
    auto* d = static_cast<uint8_t*>(dst);
    switch (w.dtype) {
      case DType::kQ8_0: pack_groups<DType::kQ8_0>(w, d); break;
      case DType::kQ4_0: pack_groups<DType::kQ4_0>(w, d); break;
      default: pack_groups<DType::kIQ4_NL>(w, d); break;
    }
    *out = w;
    out->packed = dst;
    out->packed_tag = kPackedGroupsTag;
  }
  return size_t(bytes);
}

}  // namespace dsvl2::avx2
