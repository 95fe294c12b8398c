// Prompt-sized M for Q8_0 / Q4_0 / IQ4_NL weights: the int8 numerics of
// matmul_quant_ref (exact block sums, d_w * d_x per block) at prompt speed, in
// both compute modes, through the cache-blocked driver of gemm_driver.h.
//
// The matrix-vector kernel (quant_avx512.cpp) keeps one block per int32 lane,
// so every output ends in a 16-lane horizontal sum, and 4-bit weights unpack
// per row pair: with many rows and K ~ 1,000 those were a third of its time.
// Here the weights are repacked per call, from the split layout, into panels
// of 32 output columns (one int32 lane per column: a 16 x 16 transpose of the
// split vectors, nibbles made w + 128 bytes once), and each activation row's
// four int8 quants of a block are broadcast against them: a 6 x 32 register
// tile of vpdpbusd, one block (8 steps) at a time, then scaled by d_w * d_x
// into f32 accumulators. (Reading the weights back as bf16 for the bf16 GEMM,
// the route before this kernel, spent a third of a Q8_0 prefill on the read-back.)
// GCC 12 reports its own _mm512_undefined_* placeholders as (maybe-)uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/scratch.h"
#include "ops/gemm_driver.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "ops/quant_split.h"

namespace dsvl2::avx512 {
namespace {

// One activation block as the kernel reads it: the Q8_0 quants, their scale
// and -128 * their sum (the weights are w + 128 bytes).
struct RowBlock {
  int8_t q[32];
  float d;
  int32_t start;
};
static_assert(sizeof(RowBlock) == 40);

void quantize_rows(const float* x, int64_t M, int64_t K, RowBlock* out, ThreadPool& pool) {
  const int64_t nb = K / kQ8Block;
  pool.parallel_for(M, [&](int64_t m0, int64_t m1, int) {
    for (int64_t m = m0; m < m1; m++)
      for (int64_t b = 0; b < nb; b++) {
        RowBlock& r = out[m * nb + b];
        r.start = -128 * quantize_block(x + m * K + b * kQ8Block, r.q, &r.d);
      }
  }, 16);
}

// Nibble values (u8 0..15) as the Q8 kernel's w + 128 bytes.
inline __m512i nibbles_as_q8(Kind kind, __m512i v) {
  return kind == Kind::kIQ4 ? _mm512_shuffle_epi8(_mm512_loadu_si512(kGridU8.data()), v)
                            : _mm512_add_epi8(v, _mm512_set1_epi8(120));  // Q4_0: (q - 8) + 128
}

struct KernSplitQ8 {
  using AType = uint8_t;  // RowBlock rows
  using PackT = uint8_t;
  // K block 1024: 32 blocks, two full groups of the split layout (a group never
  // straddles it); 6 panels of 36 KiB stay in L2, 6 activation rows in L1.
  static constexpr int kNV = 2, kNR = 16 * kNV, kMR = 6, kKC = 1024, kNCPanels = 6;
  // Per block: slot k (4 elements) of the 32 columns at k * 128, then 32 f32 scales.
  static constexpr int64_t kBlockBytes = 8 * 128 + 128;
  static size_t panel_elems(int64_t kc) { return size_t(kc / kQ8Block * kBlockBytes); }
  static int64_t a_offset(int64_t k0) { return k0 / kQ8Block * int64_t(sizeof(RowBlock)); }

  // Columns n0 .. n0 + 31, blocks of [k0, k0 + kc), from w's split layout (w.packed).
  static void pack(const Weight& w, int64_t n0, int64_t k0, int64_t kc, uint8_t* dst) {
    const Split s(w);
    const uint8_t* packed = static_cast<const uint8_t*>(w.packed);
    const int64_t b_begin = k0 / kQ8Block, b_end = std::min(s.nb, b_begin + kc / kQ8Block);
    for (int h = 0; h < kNV; h++) {
      const int64_t nh = n0 + 16 * h;
      for (int64_t g = s.group_of_block(b_begin); g < s.n_groups && s.group(g).b0 < b_end; g++) {
        const BlockGroup bg = s.group(g);
        __m512i r[16];
        // Quants: lane l of column c's vector v is slot v + J * (l / B) of block
        // l % B; transposed, r[l] holds that slot of all 16 columns.
        for (int v = 0; v < bg.J; v++) {
          for (int c = 0; c < 16; c++) {
            const int64_t n = nh + c;
            const uint8_t* vec = packed + (n / kRows) * s.stream_bytes + s.quant_at(bg, v, int(n % kRows));
            r[c] = n >= s.N ? _mm512_setzero_si512()
                   : s.q4   ? nibbles_as_q8(s.kind, unpack_nibbles(vec))
                            : _mm512_loadu_si512(vec);
          }
          transpose16(r);
          for (int l = 0; l < 16; l++) {
            const int64_t b = bg.b0 + l % bg.B;
            if (b < b_end)  // not the padding block of an odd count
              _mm512_store_si512(dst + (b - b_begin) * kBlockBytes + (v + bg.J * (l / bg.B)) * 128 + 64 * h, r[l]);
          }
        }
        // Scales: lane l of a row's 16 is block l % B's.
        for (int c = 0; c < 16; c++) {
          const int64_t n = nh + c;
          if (n >= s.N) {
            r[c] = _mm512_setzero_si512();
            continue;
          }
          const uint8_t* sc = packed + (n / kRows) * s.stream_bytes + s.scale_at(bg, int(n % kRows));
          r[c] = _mm512_castps_si512(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc))));
        }
        transpose16(r);
        for (int l = 0; l < bg.B && bg.b0 + l < b_end; l++)
          _mm512_store_si512(dst + (bg.b0 + l - b_begin) * kBlockBytes + 8 * 128 + 64 * h, r[l]);
      }
    }
  }

  template <int MR>
  static void tile(const uint8_t* a, int64_t lda, const uint8_t* b, int64_t kc, float* c, int64_t ldc, int ncols,
                   bool first, const float* bias) {
    __m512 acc[MR][kNV];
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < kNV; j++) acc[r][j] = _mm512_setzero_ps();
    for (int64_t bi = 0; bi < kc / kQ8Block; bi++) {
      const uint8_t* pb = b + bi * kBlockBytes;
      const uint8_t* ab = a + bi * int64_t(sizeof(RowBlock));
      __m512i isum[MR][kNV];
      for (int r = 0; r < MR; r++) {
        int32_t start;
        std::memcpy(&start, ab + r * lda + offsetof(RowBlock, start), 4);
        for (int j = 0; j < kNV; j++) isum[r][j] = _mm512_set1_epi32(start);
      }
#pragma GCC unroll 8
      for (int k = 0; k < 8; k++) {
        __m512i w[kNV];
        for (int j = 0; j < kNV; j++) w[j] = _mm512_load_si512(pb + k * 128 + 64 * j);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
          int32_t quad;
          std::memcpy(&quad, ab + r * lda + 4 * k, 4);
          const __m512i av = _mm512_set1_epi32(quad);
          for (int j = 0; j < kNV; j++) isum[r][j] = _mm512_dpbusd_epi32(isum[r][j], w[j], av);
        }
      }
      __m512 sw[kNV];
      for (int j = 0; j < kNV; j++) sw[j] = _mm512_load_ps(reinterpret_cast<const float*>(pb + 8 * 128 + 64 * j));
      for (int r = 0; r < MR; r++) {
        float d;
        std::memcpy(&d, ab + r * lda + offsetof(RowBlock, d), 4);
        const __m512 sx = _mm512_set1_ps(d);
        for (int j = 0; j < kNV; j++)
          acc[r][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[r][j]), _mm512_mul_ps(sw[j], sx), acc[r][j]);
      }
    }
    for (int r = 0; r < MR; r++) store_tile_row<kNV>(c + r * ldc, acc[r], ncols, first, bias);
  }

  static void kernel(int mr, const uint8_t* a, int64_t lda, const uint8_t* b, int64_t kc, float* c, int64_t ldc,
                     int ncols, bool first, const float* bias) {
    dispatch_tile<KernSplitQ8>(mr, a, lda, b, kc, c, ldc, ncols, first, bias);
  }
};

}  // namespace

void matmul_quant_prompt(const float* x, int64_t M, const Weight& split, const float* bias, float* y,
                         ThreadPool& pool) {
  thread_local ScratchBuffer rows_buf;
  const int64_t row_bytes = split.cols / kQ8Block * int64_t(sizeof(RowBlock));
  auto* rows = static_cast<RowBlock*>(rows_buf.get(size_t(M * row_bytes)));
  quantize_rows(x, M, split.cols, rows, pool);
  gemm_blocked<KernSplitQ8>(reinterpret_cast<const uint8_t*>(rows), row_bytes, M, split, bias, y, pool);
}

}  // namespace dsvl2::avx512
