// AVX-512 VNNI matmul for Q8_0 / Q4_0 / IQ4_NL weights (semantics of matmul_quant_ref
// in quant.cpp: the same exact int32 block sums, f32 accumulation in another
// order).
//
// The kernel reads weights in a split layout, made once at load
// (prepare_quant, through Ops::prepare) or per call when a weight was not
// prepared. ggml's blocks interleave a 2-byte scale with 32 or 16 bytes of
// quants, so no 64-byte vector load lines up with them; split, every row is
// its quants padded to a multiple of 64 elements (a "chunk" = 2 blocks = one
// zmm of int8) and its f16 scales padded to a multiple of 16:
//   Q8_0 chunk: 64 bytes, each weight + 128 (int8 bits xor 0x80: u8 0..255)
//   Q4_0 chunk: 32 bytes; byte j holds element 64c + j in its low nibble and
//               element 64c + 32 + j in its high nibble, so two ands and a
//               shift give the 64 elements in order as u8 0..15.
//   IQ4_NL chunk: as Q4_0 (the blocks have Q4_0's layout; a nibble is an
//               index into the 16-value grid instead of q + 8).
// Rows go in groups of four (the kernel's register block), interleaved chunk
// by chunk, and so are their scales 16 at a time: one group is one sequential
// stream (separate short rows measured at half the bandwidth, the hardware
// prefetcher never ramping up on 1-2 KiB rows). Padding (rows, chunks,
// scales) is zero and contributes nothing.
//
// Per chunk, vpdpbusd multiplies 64 u8 x s8 pairs into 16 int32 lanes: lanes
// 0-7 sum block 2c, lanes 8-15 block 2c+1. Then the lanes are scaled by
// d_w * d_x of their block (one permute each expands 16 scales) into f32
// accumulators; one horizontal sum per output at the end.
//   Q8_0: w + 128 (u8) times x; each lane starts at -128 * the sum of its
//         own four x, as IQ4_NL's (exact int32 sums; no sign fix-up per row).
//   Q4_0: nibble q (u8) times x, with q - 8 the weight: the accumulator
//         starts at -8 * sum(x of the block) in the block's first lane.
//   IQ4_NL: one vpshufb maps the nibbles to grid + 128 (u8 1..241) times x;
//         each lane starts at -128 * the sum of its own four x (one more
//         vpdpbusd per activation chunk), so every lane holds its exact
//         partial sum of grid * x: no large offset cancels in f32 later.
// Four weight rows share each activation load; two activation rows share
// each weight chunk.
// GCC 12 reports its own _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/gemm_driver.h"
#include "ops/math_avx512.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dsvl2::avx512 {
namespace {

constexpr uint32_t kPackedQ8Tag = 0x5138'0003, kPackedQ4Tag = 0x5134'0002, kPackedIQ4Tag = 0x4934'0002;

constexpr int kRows = 4;  // rows per group

// Q4_0 and IQ4_NL share one block layout (f16 d, then 16 bytes of nibbles).
static_assert(sizeof(BlockQ4_0) == sizeof(BlockIQ4_NL) && offsetof(BlockQ4_0, qs) == offsetof(BlockIQ4_NL, qs));

enum class Kind { kQ8, kQ4, kIQ4 };

// The IQ4_NL grid as the kernel's u8 operand (grid + 128: 1..241), once per
// 128-bit lane (vpshufb looks up within a lane), and as int32 for vpermd.
// (Loaded from memory: GCC 12 warns on the broadcast of a folded constant.)
constexpr std::array<uint8_t, 64> kGridU8 = [] {
  std::array<uint8_t, 64> t{};
  for (int i = 0; i < 64; i++) t[size_t(i)] = uint8_t(kIQ4NLGrid[i % 16] + 128);
  return t;
}();
constexpr std::array<int32_t, 16> kGridI32 = [] {
  std::array<int32_t, 16> t{};
  for (int i = 0; i < 16; i++) t[size_t(i)] = kIQ4NLGrid[i];
  return t;
}();

struct Split {
  int64_t N = 0, K = 0, nb = 0, chunks = 0, Kp = 0, ns = 0, groups = 0, chunk_bytes = 0, scale_offset = 0;
  Kind kind = Kind::kQ8;
  bool q4 = false;  // nibble chunks (Q4_0, IQ4_NL)
  uint32_t tag = 0;
  size_t bytes = 0;
  explicit Split(const Weight& w) : N(w.rows), K(w.cols) {
    kind = w.dtype == DType::kQ4_0 ? Kind::kQ4 : w.dtype == DType::kIQ4_NL ? Kind::kIQ4 : Kind::kQ8;
    q4 = kind != Kind::kQ8;
    tag = kind == Kind::kQ4 ? kPackedQ4Tag : kind == Kind::kIQ4 ? kPackedIQ4Tag : kPackedQ8Tag;
    nb = K / kQ8Block;
    chunks = (nb + 1) / 2;
    Kp = 64 * chunks;
    ns = (2 * chunks + 15) / 16 * 16;
    groups = (N + kRows - 1) / kRows;
    chunk_bytes = q4 ? 32 : 64;
    scale_offset = (groups * chunks * kRows * chunk_bytes + 63) / 64 * 64;
    bytes = size_t(scale_offset + groups * ns * kRows * 2);
  }
  bool prepared(const Weight& w) const { return w.packed && w.packed_tag == tag; }
  int64_t group_quant_bytes() const { return chunks * kRows * chunk_bytes; }
  int64_t group_scales() const { return ns * kRows; }
  // Byte offset of chunk c of row n, and index of scale b of row n.
  int64_t quant_at(int64_t n, int64_t c) const {
    return (n / kRows) * group_quant_bytes() + (c * kRows + n % kRows) * chunk_bytes;
  }
  int64_t scale_at(int64_t n, int64_t b) const {
    return (n / kRows) * group_scales() + ((b / 16) * kRows + n % kRows) * 16 + b % 16;
  }
};

// Packs the row groups [g0, g1) (their padding rows too).
void pack_split(const Weight& w, const Split& s, uint8_t* dst, int64_t g0, int64_t g1) {
  uint16_t* scales = reinterpret_cast<uint16_t*>(dst + s.scale_offset);
  std::fill(dst + g0 * s.group_quant_bytes(), dst + g1 * s.group_quant_bytes(), uint8_t(0));
  std::fill(scales + g0 * s.group_scales(), scales + g1 * s.group_scales(), uint16_t(0));
  for (int64_t n = g0 * kRows; n < std::min(s.N, g1 * kRows); n++) {
    if (s.q4) {
      // Blocks a = 2c and b = 2c + 1 (zero past the row): byte j of the chunk
      // is a's element j | b's element j << 4; a block's byte i holds its
      // elements i (low) and i + 16 (high).
      const BlockQ4_0* row = static_cast<const BlockQ4_0*>(w.data) + n * s.nb;  // or IQ4_NL: the same bytes
      const __m128i lo4 = _mm_set1_epi8(0x0f), hi4 = _mm_set1_epi8(char(0xf0));
      for (int64_t c = 0; c < s.chunks; c++) {
        const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[2 * c].qs));
        const __m128i b = 2 * c + 1 < s.nb ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[2 * c + 1].qs))
                                           : _mm_setzero_si128();
        uint8_t* chunk = dst + s.quant_at(n, c);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(chunk),
                         _mm_or_si128(_mm_and_si128(a, lo4), _mm_slli_epi16(_mm_and_si128(b, lo4), 4)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(chunk + 16),
                         _mm_or_si128(_mm_and_si128(_mm_srli_epi16(a, 4), lo4), _mm_and_si128(b, hi4)));
        scales[s.scale_at(n, 2 * c)] = row[2 * c].d;
        if (2 * c + 1 < s.nb) scales[s.scale_at(n, 2 * c + 1)] = row[2 * c + 1].d;
      }
    } else {
      const BlockQ8_0* row = static_cast<const BlockQ8_0*>(w.data) + n * s.nb;
      const __m256i offset = _mm256_set1_epi8(char(0x80));  // int8 w -> u8 w + 128
      for (int64_t b = 0; b < s.nb; b++) {
        scales[s.scale_at(n, b)] = row[b].d;
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[b].qs));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + s.quant_at(n, b / 2) + (b % 2) * 32),
                            _mm256_xor_si256(q, offset));
      }
    }
  }
}

// Activations quantized to Q8_0 (as quantize_q8_0) in the split form:
// int8 rows of Kp, f32 scales rows of ns, and for Q4_0 the per-chunk start
// vectors (-8 * block sums in lanes 0 and 8).
struct Activations {
  ScratchBuffer q_buf, d_buf, start_buf;  // per thread, reused across calls, counted
  int8_t* q = nullptr;
  float* d = nullptr;
  int32_t* start = nullptr;
};

// One Q8_0 block of activations, exactly as quantize_q8_0: d = max|x| / 127,
// q = lroundf(x / d) (half away from zero: trunc(|v|) + (frac >= 0.5), exact
// for |v| <= 127). Returns the block's int sum (Q4_0 start vector).
inline int32_t quantize_block(const float* x, int8_t* q, float* d_out) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
  *d_out = f16_to_f32(f32_to_f16(d));
  __m512i sum = _mm512_setzero_si512();
  for (int h = 0; h < 2; h++) {
    const __m512 v = _mm512_mul_ps(h ? b : a, _mm512_set1_ps(id));
    const __m512 av = _mm512_abs_ps(v);
    const __m512 t = _mm512_roundscale_ps(av, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(av, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    __m512i r = _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.f)));
    r = _mm512_mask_sub_epi32(r, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_si512(), r);
    sum = _mm512_add_epi32(sum, r);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16 * h), _mm512_cvtepi32_epi8(r));
  }
  return _mm512_reduce_add_epi32(sum);
}

void quantize_activations(const float* x, int64_t M, const Split& s, Activations& a, ThreadPool& pool) {
  const bool q4 = s.kind == Kind::kQ4;
  const size_t nq = size_t(M * s.Kp), nd = size_t(M * s.ns), ns = q4 ? size_t(M * s.chunks * 16) : 0;
  a.q = static_cast<int8_t*>(a.q_buf.get(nq));
  a.d = static_cast<float*>(a.d_buf.get(nd * sizeof(float)));
  a.start = q4 ? static_cast<int32_t*>(a.start_buf.get(ns * sizeof(int32_t))) : nullptr;
  std::memset(a.q, 0, nq);  // padding past K must read as zero
  std::memset(a.d, 0, nd * sizeof(float));
  if (q4) std::memset(a.start, 0, ns * sizeof(int32_t));
  auto run = [&](int64_t m0, int64_t m1, int) {
    for (int64_t m = m0; m < m1; m++)
      for (int64_t b = 0; b < s.nb; b++) {
        const int32_t sum =
            quantize_block(x + m * s.K + b * 32, a.q + m * s.Kp + b * 32, a.d + m * s.ns + b);
        if (q4) a.start[size_t((m * s.chunks + b / 2) * 16 + (b % 2) * 8)] = -8 * sum;
      }
  };
  if (M >= 4) pool.parallel_for(M, run);
  else run(0, M, 0);
}

// One row group (wq: its quants, wsc: its scales) against MB activation rows.
template <Kind KD, int MB>
inline void row_group(const Split& s, const uint8_t* wq, const uint16_t* wsc, int nn, const Activations& a, int64_t m,
                      const float* bias, int64_t n, float* y) {
  constexpr int R = kRows;
  constexpr bool Q4 = KD == Kind::kQ4, NIB = KD != Kind::kQ8;
  constexpr int64_t CB = NIB ? 32 : 64;
  __m512 acc[R][MB];
  for (auto& r : acc)
    for (auto& v : r) v = _mm512_setzero_ps();
  const __m512i nib = _mm512_set1_epi8(0x0f);
  const __m512i grid = _mm512_loadu_si512(kGridU8.data());
  const int8_t* xr[MB];
  const float* dr[MB];
  const int32_t* st[MB];
  for (int j = 0; j < MB; j++) {
    xr[j] = a.q + (m + j) * s.Kp;
    dr[j] = a.d + (m + j) * s.ns;
    st[j] = Q4 ? a.start + (m + j) * s.chunks * 16 : nullptr;
  }
  for (int64_t g = 0; g < s.ns / 16; g++) {
    __m512 sw[R], sx[MB];
    for (int i = 0; i < R; i++)
      sw[i] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(wsc + (g * R + i) * 16)));
    for (int j = 0; j < MB; j++) sx[j] = _mm512_loadu_ps(dr[j] + g * 16);
    const int64_t c_end = std::min<int64_t>(s.chunks, g * 8 + 8);
    for (int64_t c = g * 8; c < c_end; c++) {
      const int cc = int(c - g * 8);
      // Lanes 0-7 take scale 2cc, lanes 8-15 scale 2cc + 1 of this group.
      const __m512i idx = _mm512_set_epi32(2 * cc + 1, 2 * cc + 1, 2 * cc + 1, 2 * cc + 1, 2 * cc + 1, 2 * cc + 1,
                                           2 * cc + 1, 2 * cc + 1, 2 * cc, 2 * cc, 2 * cc, 2 * cc, 2 * cc, 2 * cc,
                                           2 * cc, 2 * cc);
      const uint8_t* wc = wq + c * R * CB;
      for (int64_t p = 0; p < R * CB; p += 64) _mm_prefetch(reinterpret_cast<const char*>(wc + 8 * R * CB + p), _MM_HINT_T0);
      __m512i xv[MB], x0[MB];
      __m512 px[MB];
      for (int j = 0; j < MB; j++) {
        xv[j] = _mm512_loadu_si512(xr[j] + c * 64);
        px[j] = _mm512_permutexvar_ps(idx, sx[j]);
        if constexpr (Q4) x0[j] = _mm512_loadu_si512(st[j] + c * 16);
        else  // -128 * (the lane's four x): 128 as u8 times x, negated
          x0[j] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                   _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(char(0x80)), xv[j]));
      }
      for (int i = 0; i < R; i++) {
        const __m512 pw = _mm512_permutexvar_ps(idx, sw[i]);
        if constexpr (NIB) {
          const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wc + i * CB));
          const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1);
          __m512i wv = _mm512_and_si512(both, nib);
          if constexpr (!Q4) wv = _mm512_shuffle_epi8(grid, wv);
          for (int j = 0; j < MB; j++) {
            const __m512i isum = _mm512_dpbusd_epi32(x0[j], wv, xv[j]);
            acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), pw), px[j], acc[i][j]);
          }
        } else {
          const __m512i wv = _mm512_loadu_si512(wc + i * CB);  // w + 128
          for (int j = 0; j < MB; j++) {
            const __m512i isum = _mm512_dpbusd_epi32(x0[j], wv, xv[j]);
            acc[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), pw), px[j], acc[i][j]);
          }
        }
      }
    }
  }
  for (int j = 0; j < MB; j++)
    for (int i = 0; i < nn; i++)
      y[(m + j) * s.N + n + i] = _mm512_reduce_add_ps(acc[i][j]) + (bias ? bias[n + i] : 0.f);
}

template <Kind KD>
void run_split(const Split& s, const uint8_t* packed, const Activations& a, int64_t M, const float* bias, float* y,
               ThreadPool& pool) {
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(packed + s.scale_offset);
  pool.parallel_for(s.groups, [&](int64_t g0, int64_t g1, int) {
    for (int64_t g = g0; g < g1; g++) {
      const int64_t n = g * kRows;
      const int nn = int(std::min<int64_t>(kRows, s.N - n));
      const uint8_t* wq = packed + g * s.group_quant_bytes();
      const uint16_t* ws = scales + g * s.group_scales();
      int64_t m = 0;
      for (; m + 2 <= M; m += 2) row_group<KD, 2>(s, wq, ws, nn, a, m, bias, n, y);
      if (m < M) row_group<KD, 1>(s, wq, ws, nn, a, m, bias, n, y);
    }
  }, 8);
}


// 16 int32 quants times d, rounded to bf16, stored.
inline void store_bf16x16(__m512i q, float d, uint16_t* out) {
  const __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(d));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(bf16_bits(v)));
}

}  // namespace

void dequantize_bf16(const Weight& w, int64_t n0, int64_t rows, int64_t b0, int64_t nblocks, uint16_t* out,
                     int64_t ld) {
  const Split s(w);
  const bool prepared = s.prepared(w);
  const uint8_t* packed = static_cast<const uint8_t*>(w.packed);
  const uint16_t* scales = prepared ? reinterpret_cast<const uint16_t*>(packed + s.scale_offset) : nullptr;
  const __m512i eight = _mm512_set1_epi32(8), nib = _mm512_set1_epi32(0x0f);
  const __m512i grid = _mm512_loadu_si512(kGridI32.data());
  // Nibble values 0..15 (in the low 4 bits) to the weight quants.
  auto value = [&](__m512i q) {
    return s.kind == Kind::kIQ4 ? _mm512_permutexvar_epi32(q, grid) : _mm512_sub_epi32(_mm512_and_si512(q, nib), eight);
  };
  for (int64_t r = 0; r < rows; r++) {
    const int64_t n = n0 + r;
    for (int64_t b = b0; b < b0 + nblocks; b++) {
      uint16_t* o = out + r * ld + (b - b0) * kQ8Block;
      if (s.q4) {
        // Elements 0..15 and 16..31 of the block as nibble values 0..15.
        __m512i lo, hi;
        float d;
        if (prepared) {
          const uint8_t* chunk = packed + s.quant_at(n, b / 2);
          const int shift = int(b % 2) * 4;
          lo = _mm512_srli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk))), shift);
          hi = _mm512_srli_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(chunk + 16))),
                                 shift);
          d = f16_to_f32(scales[s.scale_at(n, b)]);
        } else {
          const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(w.data)[n * s.nb + b];  // or IQ4_NL
          const __m512i raw = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs)));
          lo = raw;
          hi = _mm512_srli_epi32(raw, 4);
          d = f16_to_f32(blk.d);
        }
        store_bf16x16(value(lo), d, o);  // vpermd reads only the low 4 bits of an index
        store_bf16x16(value(hi), d, o + 16);
      } else {
        const int8_t* qs;
        float d;
        __m128i flip = _mm_setzero_si128();  // the split form stores w + 128: xor 0x80 gives w back
        if (prepared) {
          qs = reinterpret_cast<const int8_t*>(packed + s.quant_at(n, b / 2) + (b % 2) * 32);
          d = f16_to_f32(scales[s.scale_at(n, b)]);
          flip = _mm_set1_epi8(char(0x80));
        } else {
          const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(w.data)[n * s.nb + b];
          qs = blk.qs;
          d = f16_to_f32(blk.d);
        }
        for (int h = 0; h < 2; h++) {
          const __m128i q = _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs + 16 * h)), flip);
          store_bf16x16(_mm512_cvtepi8_epi32(q), d, o + 16 * h);
        }
      }
    }
  }
}

size_t prepare_quant(const Weight& w, void* dst, Weight* out) {
  if (!is_matmul_quant(w.dtype) || w.rows <= 0 || w.cols <= 0 || w.cols % kQ8Block) return 0;
  const Split s(w);
  if (dst) {
    pack_split(w, s, static_cast<uint8_t*>(dst), 0, s.groups);
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
    pool.parallel_for(s.groups, [&](int64_t g0, int64_t g1, int) { pack_split(w, s, dst, g0, g1); }, 16);
    packed = dst;
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
