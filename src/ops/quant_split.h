// The split layout of quantized weights that the AVX-512 VNNI kernels read
// (described at the top of quant_avx512.cpp) and the Q8_0 quantization of an
// activation block. Shared by the matrix-vector kernel (quant_avx512.cpp) and
// the prompt GEMM (quant_gemm_avx512.cpp); included only by AVX-512 files.
#pragma once
#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "ops/math_avx512.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dsvl2::avx512 {
// Anonymous: every file compiles its own copy with its own flags (as gemm_driver.h).
namespace {

constexpr uint32_t kPackedQ8Tag = 0x5138'0004, kPackedQ4Tag = 0x5134'0003, kPackedIQ4Tag = 0x4934'0003;  // layout v4/v3

constexpr int kRows = 4;  // rows per group

// Q4_0 and IQ4_NL share one block layout (f16 d, then 16 bytes of nibbles).
static_assert(sizeof(BlockQ4_0) == sizeof(BlockIQ4_NL) && offsetof(BlockQ4_0, qs) == offsetof(BlockIQ4_NL, qs));

enum class Kind { kQ8, kQ4, kIQ4 };

// The IQ4_NL grid as the kernel's u8 operand (grid + 128: 1..241), once per 128-bit
// lane (vpshufb looks up within a lane). (Loaded from
// memory: GCC 12 warns on the broadcast of a folded constant.)
constexpr std::array<uint8_t, 64> kGridU8 = [] {
  std::array<uint8_t, 64> t{};
  for (int i = 0; i < 64; i++) t[size_t(i)] = uint8_t(kIQ4NLGrid[i % 16] + 128);
  return t;
}();
// A row's blocks (padded to an even count) in groups of B = 16, then 8, 4
// and 2 blocks for the rest: a group is J = B / 2 vectors of 64 elements.
// Slot k (elements 4k..4k+3) of its block bl sits in int32 lane
// (k / J) * B + bl of vector k % J: each lane holds one block's slots only.
struct BlockGroup {
  int B = 16, J = 8;
  int64_t b0 = 0;   // first block
  int64_t off = 0;  // byte offset in a row group's stream
};

struct Split {
  int64_t N = 0, K = 0, nb = 0, nbp = 0, row_groups = 0, chunk_bytes = 0, full = 0, n_groups = 0;
  int64_t stream_bytes = 0;  // one row group: every block group, quants then scales
  int n_tail = 0;
  BlockGroup tail[3];
  Kind kind = Kind::kQ8;
  bool q4 = false;  // nibble vectors (Q4_0, IQ4_NL)
  uint32_t tag = 0;
  size_t bytes = 0;
  explicit Split(const Weight& w) : N(w.rows), K(w.cols) {
    kind = w.dtype == DType::kQ4_0 ? Kind::kQ4 : w.dtype == DType::kIQ4_NL ? Kind::kIQ4 : Kind::kQ8;
    q4 = kind != Kind::kQ8;
    tag = kind == Kind::kQ4 ? kPackedQ4Tag : kind == Kind::kIQ4 ? kPackedIQ4Tag : kPackedQ8Tag;
    chunk_bytes = q4 ? 32 : 64;
    nb = K / kQ8Block;
    nbp = (nb + 1) / 2 * 2;
    row_groups = (N + kRows - 1) / kRows;
    full = nbp / 16;
    int64_t off = full * group_bytes(8), b0 = full * 16;
    for (int B = 8; B >= 2; B /= 2)
      if ((nbp % 16) & B) {
        tail[n_tail++] = BlockGroup{B, B / 2, b0, off};
        off += group_bytes(B / 2);
        b0 += B;
      }
    n_groups = full + n_tail;
    stream_bytes = off;
    bytes = size_t(row_groups * stream_bytes);
  }
  int64_t group_bytes(int J) const { return J * kRows * chunk_bytes + kRows * 16 * 2; }
  BlockGroup group(int64_t g) const {
    return g < full ? BlockGroup{16, 8, 16 * g, g * group_bytes(8)} : tail[g - full];
  }
  int64_t group_of_block(int64_t b) const {
    if (b < 16 * full) return b / 16;
    int64_t g = full;
    while (g + 1 < n_groups && tail[g + 1 - full].b0 <= b) g++;
    return g;
  }
  bool prepared(const Weight& w) const { return w.packed && w.packed_tag == tag; }
  // Row i (of its row group) in a group: vector j's quants, the 16 f16 scales.
  int64_t quant_at(const BlockGroup& bg, int j, int i) const { return bg.off + (j * kRows + i) * chunk_bytes; }
  int64_t scale_at(const BlockGroup& bg, int i) const { return bg.off + bg.J * kRows * chunk_bytes + i * 32; }
};

// A nibble vector's 32 bytes as its 64 values (u8 0..15): low nibbles, then high.
inline __m512i unpack_nibbles(const uint8_t* p) {
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(raw), _mm256_srli_epi16(raw, 4), 1),
                          _mm512_set1_epi8(0x0f));
}

// Lane l of vector j as an int32 index into the group's blocks (8 slots each).
inline __m512i group_gather_index(const BlockGroup& bg, int j) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const int log_b = __builtin_ctz(unsigned(bg.B)), log_j = log_b - 1;
  const __m512i block = _mm512_and_si512(lane, _mm512_set1_epi32(bg.B - 1));
  const __m512i slot = _mm512_add_epi32(_mm512_slli_epi32(_mm512_srli_epi32(lane, log_b), log_j), _mm512_set1_epi32(j));
  return _mm512_add_epi32(_mm512_slli_epi32(block, 3), slot);
}

// A group's J vectors from its blocks' elements (32 bytes each, one after another): a
// full group is a 16 x 16 transpose of the blocks' slot words; a tail group gathers.
inline void group_vectors(const BlockGroup& bg, const uint8_t* elems, __m512i v[8]) {
  if (bg.B == 16) {
    __m512i r[16];
    for (int l = 0; l < 16; l++)
      r[l] = _mm512_zextsi256_si512(_mm256_load_si256(reinterpret_cast<const __m256i*>(elems + 32 * l)));
    transpose16(r);
    for (int j = 0; j < 8; j++) v[j] = r[j];
    return;
  }
  for (int j = 0; j < bg.J; j++) v[j] = _mm512_i32gather_epi32(group_gather_index(bg, j), elems, 4);
}

// One Q8_0 block of activations, exactly as quantize_q8_0: d = max|x| / 127, q =
// lroundf(x / d) (half away from zero: trunc(|v|) + (frac >= 0.5), exact for |v| <= 127).
// Returns the sum of the 32 quants from the registers: summing the stored
// bytes again stalls on store forwarding (two thirds of a prompt's
// quantization time when it did).
inline int32_t quantize_block(const float* x, int8_t* q, float* d_out) {
  const __m512 a = _mm512_loadu_ps(x), b = _mm512_loadu_ps(x + 16);
  const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(b)));
  const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
  *d_out = f16_to_f32(f32_to_f16(d));
  __m512i r[2];
  for (int h = 0; h < 2; h++) {
    const __m512 v = _mm512_mul_ps(h ? b : a, _mm512_set1_ps(id));
    const __m512 av = _mm512_abs_ps(v);
    const __m512 t = _mm512_roundscale_ps(av, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_sub_ps(av, t), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    r[h] = _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, _mm512_set1_ps(1.f)));
    r[h] = _mm512_mask_sub_epi32(r[h], _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), _mm512_setzero_si512(),
                                 r[h]);
  }
  // One 32-byte store, so that a 32-byte load of the block forwards from it.
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                      _mm256_set_m128i(_mm512_cvtepi32_epi8(r[1]), _mm512_cvtepi32_epi8(r[0])));
  return _mm512_reduce_add_epi32(_mm512_add_epi32(r[0], r[1]));
}

}  // namespace
}  // namespace dsvl2::avx512
