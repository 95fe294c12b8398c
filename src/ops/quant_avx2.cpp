// The int8 matmul on AVX2 (no VNNI, no AVX-512): ggml's blocks, read in place
// or from the copy prepare_quant makes at load with each pair of rows
// interleaved block by block; the integer sums of matmul_quant_ref (quant.h).
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
// Names prepare_quant's layout: ggml's blocks, row pairs interleaved.
constexpr uint32_t kPackedPairsTag = 0x5150'0201;

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

// A weight block as 32 signed bytes; its scale into *d.
template <DType T>
inline __m256i weight_block(const void* block, float* d) {
  if constexpr (T == DType::kQ8_0) {
    const BlockQ8_0& blk = *static_cast<const BlockQ8_0*>(block);
    *d = half(blk.d);
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk.qs));
  } else {
    const BlockQ4_0& blk = *static_cast<const BlockQ4_0*>(block);  // IQ4_NL has the same layout
    *d = half(blk.d);
    // The 16 bytes in both lanes, the upper lane shifted by a nibble: low
    // nibbles (elements 0..15) below, high ones (16..31) above.
    const __m256i q = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs)));
    const __m256i n = _mm256_and_si256(_mm256_srlv_epi32(q, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                                       _mm256_set1_epi8(0x0f));
    if constexpr (T == DType::kQ4_0) return _mm256_sub_epi8(n, _mm256_set1_epi8(8));
    else return _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128(
                                         reinterpret_cast<const __m128i*>(kIQ4NLGrid))), n);
  }
}

// y[m][n] for RX activation rows and kRowsW weight rows over nb blocks.
// out[i * RX + j]: weight row i by activation row j. Weight row i's block b
// sits at wrow[i] + b * stride bytes.
// xrow[j]: activation row j's quants, 32 a block, aligned (a 34-byte block's
// quants straddle cache lines every other block); xscale[j] its f32 scales.
template <DType T, int RX>
inline void tile(const uint8_t* const* wrow, int64_t stride, const int8_t* const* xrow, const float* const* xscale,
                 int64_t nb, float* out) {
  __m256 acc[kRowsW][RX];
#pragma GCC unroll 2
  for (int i = 0; i < kRowsW; i++)
#pragma GCC unroll 3
    for (int j = 0; j < RX; j++) acc[i][j] = _mm256_setzero_ps();
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; b++) {
    __m256i w[kRowsW], aw[kRowsW];
    __m256 dwv[kRowsW];
#pragma GCC unroll 2
    for (int i = 0; i < kRowsW; i++) {
      // The rows stream from memory in decode; the hardware prefetcher alone
      // left a thread at 9 GB/s, 2 KiB ahead reads 14.8 (1 KiB 13, 4 KiB 14.5).
      _mm_prefetch(reinterpret_cast<const char*>(wrow[i] + b * stride) + 2048, _MM_HINT_T0);
      float dw;
      w[i] = weight_block<T>(wrow[i] + b * stride, &dw);
      dwv[i] = _mm256_set1_ps(dw);
      aw[i] = _mm256_sign_epi8(w[i], w[i]);
    }
#pragma GCC unroll 3
    for (int j = 0; j < RX; j++) {
      const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(xrow[j] + b * kQ8Block));
      const __m256 dx = _mm256_broadcast_ss(xscale[j] + b);
#pragma GCC unroll 2
      for (int i = 0; i < kRowsW; i++) {
        const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(aw[i], _mm256_sign_epi8(x, w[i])), ones);
        acc[i][j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_mul_ps(dwv[i], dx), acc[i][j]);
      }
    }
  }
#pragma GCC unroll 2
  for (int i = 0; i < kRowsW; i++)
#pragma GCC unroll 3
    for (int j = 0; j < RX; j++) out[i * RX + j] = hsum256(acc[i][j]);
}

template <DType T>
void matmul_typed(const int8_t* xq, const float* xd, int64_t M, const Weight& w, const float* bias, float* y,
                  ThreadPool& pool) {
  const int64_t N = w.rows, nb = w.cols / kQ8Block;
  const size_t row_bytes = size_t(nb) * dtype_block_bytes(T);
  const size_t block_bytes = dtype_block_bytes(T);
  const bool pairs = w.packed && w.packed_tag == kPackedPairsTag;
  const auto* base = static_cast<const uint8_t*>(pairs ? w.packed : w.data);
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
        for (int64_t n = n0; n < n_end; n += kRowsW) {
          const uint8_t* wrow[kRowsW];
          for (int i = 0; i < kRowsW; i++)  // n is even: a pair starts there
            wrow[i] = pairs ? base + size_t(n) * row_bytes + size_t(i) * block_bytes
                            : base + size_t(std::min(n + i, N - 1)) * row_bytes;
          const int64_t stride = int64_t(pairs ? kRowsW * block_bytes : block_bytes);
          float out[kRowsW * kRowsX];
          if (rx == 3) tile<T, 3>(wrow, stride, xrow, xscale, nb, out);
          else if (rx == 2) tile<T, 2>(wrow, stride, xrow, xscale, nb, out);
          else tile<T, 1>(wrow, stride, xrow, xscale, nb, out);
          for (int i = 0; i < kRowsW && n + i < N; i++)
            for (int j = 0; j < rx; j++) y[(m + j) * N + n + i] = out[i * rx + j] + (bias ? bias[n + i] : 0.f);
        }
      }
    }
  }, 1);
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

// Row pairs interleaved block by block (row 2p's block b, then row 2p + 1's),
// an odd last row paired with itself: the tile then reads one stream instead
// of two rows 1-2 KB apart (a decode thread read 14.6 GB/s from two streams,
// where the bf16 panels' single stream reads 20).
size_t prepare_quant(const Weight& w, void* dst, Weight* out) {
  if (!is_matmul_quant(w.dtype) || w.rows <= 0 || w.cols % kQ8Block != 0) return 0;
  const size_t block_bytes = dtype_block_bytes(w.dtype), nb = size_t(w.cols / kQ8Block);
  const size_t row_bytes = nb * block_bytes, n_pairs = size_t(w.rows + 1) / 2;
  if (dst) {
    const auto* src = static_cast<const uint8_t*>(w.data);
    auto* d = static_cast<uint8_t*>(dst);
    for (size_t p = 0; p < n_pairs; p++) {
      const uint8_t* r0 = src + 2 * p * row_bytes;
      const uint8_t* r1 = src + std::min<size_t>(2 * p + 1, size_t(w.rows) - 1) * row_bytes;
      for (size_t b = 0; b < nb; b++, d += 2 * block_bytes) {
        std::memcpy(d, r0 + b * block_bytes, block_bytes);
        std::memcpy(d + block_bytes, r1 + b * block_bytes, block_bytes);
      }
    }
    *out = w;
    out->packed = dst;
    out->packed_tag = kPackedPairsTag;
  }
  return n_pairs * 2 * row_bytes;
}

}  // namespace dsvl2::avx2
