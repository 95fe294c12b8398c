// AVX2 + FMA (+ F16C) kernels: the matmul and the table. Elementwise kernels
// live in elementwise_avx2.cpp, attention in attention_avx2.cpp.
//
// There are no bf16 dot products on AVX2, so Compute::kBF16 is emulated
// exactly as the reference defines it: the activations are rounded to bf16
// and the f32 FMA kernel runs on them (weights widened exactly).
//   BF16 weights prepared (Ops::prepare, at load, either mode): bf16 panels
//     (KernBf16Panel), widened in the 6x16 tile; every M, decode included.
//   else M >= kSmallM: blocked GEMM (gemm_driver.h), W widened to f32 panels
//     per call, 6x16 register tile.
//   else: dot products along the rows of W (decode).
#include <immintrin.h>

#include <cstring>

#include "core/error.h"
#include "ops/gemm_driver.h"
#include "ops/kernels_isa.h"
#include "ops/math_avx2.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dsvl2 {
namespace {

constexpr int64_t kSmallM = 4;
// Names KernBf16Panel's packed layout; change it whenever that layout changes.
constexpr uint32_t kPackedBf16PanelTag = 0x4232'1601;

inline float widen(DType d, const void* base, int64_t i) {
  switch (d) {
    case DType::kF32: return static_cast<const float*>(base)[i];
    case DType::kBF16: return bf16_to_f32(static_cast<const uint16_t*>(base)[i]);
    default: return _cvtsh_ss(static_cast<const uint16_t*>(base)[i]);
  }
}

// 8 weights from element i on, widened exactly to f32.
template <DType D>
inline __m256 load_w8(const void* base, int64_t i) {
  if constexpr (D == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    if constexpr (D == DType::kBF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    else return _mm256_cvtph_ps(h);
  }
}

// x rounded to bf16 (round-to-nearest-even, NaN kept quiet), kept in f32:
// bit-exact with round_bf16.
void round_rows(const float* x, int64_t n, float* out, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1, int) {
    int64_t i = i0;
    const __m256i one = _mm256_set1_epi32(1), r7 = _mm256_set1_epi32(0x7fff), hi = _mm256_set1_epi32(-65536);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000), q = _mm256_set1_epi32(0x400000);
    for (; i + 8 <= i1; i += 8) {
      const __m256i u = _mm256_castps_si256(_mm256_loadu_ps(x + i));
      const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
      const __m256i r = _mm256_and_si256(_mm256_add_epi32(u, _mm256_add_epi32(lsb, r7)), hi);
      const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
      const __m256i qn = _mm256_and_si256(_mm256_or_si256(u, q), hi);
      _mm256_storeu_ps(out + i, _mm256_castsi256_ps(_mm256_blendv_epi8(r, qn, nan)));
    }
    for (; i < i1; i++) out[i] = round_bf16(x[i]);
  }, 1 << 14);
}

// A 6x16 tile's MR rows of sums into c: written (plus bias) by the first K
// block, added by later ones; ncols < 16 at the last panel.
template <int MR>
__attribute__((always_inline)) inline void store_tile(const __m256 (&acc)[MR][2], float* c, int64_t ldc, int ncols,
                                                      bool first, const float* bias) {
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    float* cr = c + r * ldc;
    if (ncols == 16) {
      __m256 v0 = acc[r][0], v1 = acc[r][1];
      if (!first) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
      } else if (bias) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias + 8));
      }
      _mm256_storeu_ps(cr, v0);
      _mm256_storeu_ps(cr + 8, v1);
    } else {  // column tail: through a scratch row
      alignas(32) float t[16];
      _mm256_store_ps(t, acc[r][0]);
      _mm256_store_ps(t + 8, acc[r][1]);
      for (int j = 0; j < ncols; j++) cr[j] = t[j] + (!first ? cr[j] : bias ? bias[j] : 0.f);
    }
  }
}

struct KernF32 {
  using AType = float;
  using PackT = float;
  static constexpr int kNR = 16, kMR = 6, kKC = 256, kNCPanels = 16;
  static size_t panel_elems(int64_t kc) { return size_t(kc) * kNR; }

  // panel[k][c] = W[n0+c][k0+k] widened; zero past N. Weights that are not
  // prepared (F32 / F16 ones, --no-repack) are packed by every call, so this
  // runs as often as the tile: eight rows by eight k at a time, transposed in
  // registers (element by element it cost about as much as a 48-row product's
  // FMAs).
  static void pack(const Weight& w, int64_t n0, int64_t k0, int64_t kc, float* d) {
    switch (w.dtype) {
      case DType::kF32: return pack_typed<DType::kF32>(w, n0, k0, kc, d);
      case DType::kBF16: return pack_typed<DType::kBF16>(w, n0, k0, kc, d);
      default: return pack_typed<DType::kF16>(w, n0, k0, kc, d);
    }
  }
  template <DType D>
  static void pack_typed(const Weight& w, int64_t n0, int64_t k0, int64_t kc, float* d) {
    const int64_t k8 = kc & ~int64_t(7);
    for (int c0 = 0; c0 < kNR; c0 += 8) {
      int64_t row[8];
      bool live[8];
      for (int i = 0; i < 8; i++) {
        live[i] = n0 + c0 + i < w.rows;
        row[i] = (live[i] ? n0 + c0 + i : 0) * w.cols + k0;
      }
      for (int64_t k = 0; k < k8; k += 8) {
        __m256 r[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) r[i] = live[i] ? load_w8<D>(w.data, row[i] + k) : _mm256_setzero_ps();
        __m256 t[8], u[8];
#pragma GCC unroll 4
        for (int i = 0; i < 8; i += 2) {
          t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
          t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
        }
#pragma GCC unroll 2
        for (int i = 0; i < 8; i += 4) {
          u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
          u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
          u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
          u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
        }
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
          _mm256_store_ps(d + (k + j) * kNR + c0, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
          _mm256_store_ps(d + (k + j + 4) * kNR + c0, _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
        }
      }
      for (int64_t k = k8; k < kc; k++)
        for (int i = 0; i < 8; i++) d[k * kNR + c0 + i] = live[i] ? widen(D, w.data, row[i] + k) : 0.f;
    }
  }

  template <int MR>
  static void tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, int ncols,
                   bool first, const float* bias) {
    // Every loop over the tile's rows is unrolled: a run-time index into acc
    // makes GCC keep it in memory and store all 12 accumulators each k (a
    // third of the FMA peak, measured).
    __m256 acc[MR][2];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
      const __m256 b0 = _mm256_load_ps(b + k * kNR), b1 = _mm256_load_ps(b + k * kNR + 8);
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
        acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
      }
    }
    store_tile<MR>(acc, c, ldc, ncols, first, bias);
  }

  static void kernel(int mr, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                     int ncols, bool first, const float* bias) {
    dispatch_tile<KernF32>(mr, a, lda, b, kc, c, ldc, ncols, first, bias);
  }
};

// In place: r[i] holds row i's eight 16-bit elements; afterwards r[j] holds
// element j of rows 0..7.
inline void transpose8x8_epi16(__m128i (&r)[8]) {
  __m128i t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm_unpacklo_epi16(r[i], r[i + 1]);
    t[i + 1] = _mm_unpackhi_epi16(r[i], r[i + 1]);
  }
#pragma GCC unroll 2
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm_unpacklo_epi32(t[i], t[i + 2]);
    u[i + 1] = _mm_unpackhi_epi32(t[i], t[i + 2]);
    u[i + 2] = _mm_unpacklo_epi32(t[i + 1], t[i + 3]);
    u[i + 3] = _mm_unpackhi_epi32(t[i + 1], t[i + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; j++) {
    r[2 * j] = _mm_unpacklo_epi64(u[j], u[j + 4]);
    r[2 * j + 1] = _mm_unpackhi_epi64(u[j], u[j + 4]);
  }
}

// BF16 weights packed once at load (prepare_avx2) into panels of 16 columns:
// one 32-byte row per k whose 32-bit lane j holds column j in its low half and
// column j + 8 in its high half. bf16 is the upper half of an f32, so the tile
// widens a row with one shift and one mask; decode and prompts then read two
// bytes a weight in stored order and no call packs (per-call packing from the
// file mapping took 7-40 % of a prompt; f32 panels at load would double the
// weights).
struct KernBf16Panel {
  using AType = float;
  using PackT = uint16_t;
  static constexpr int kNR = 16, kMR = 6, kKC = 256, kNCPanels = 16;
  static size_t panel_elems(int64_t kc) { return size_t(kc) * kNR; }

  static void pack(const Weight& w, int64_t n0, int64_t k0, int64_t kc, uint16_t* d) {
    const auto* W = static_cast<const uint16_t*>(w.data);
    int64_t k = 0;
    if (n0 + kNR <= w.rows)  // eight k of all 16 rows at a time
      for (; k + 8 <= kc; k += 8) {
        __m128i lo[8], hi[8];
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
          lo[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(W + (n0 + i) * w.cols + k0 + k));
          hi[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(W + (n0 + 8 + i) * w.cols + k0 + k));
        }
        transpose8x8_epi16(lo);
        transpose8x8_epi16(hi);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
          __m128i* row = reinterpret_cast<__m128i*>(d + (k + j) * kNR);
          _mm_store_si128(row, _mm_unpacklo_epi16(lo[j], hi[j]));
          _mm_store_si128(row + 1, _mm_unpackhi_epi16(lo[j], hi[j]));
        }
      }
    for (; k < kc; k++)  // k tail, and panels past the last row (zeros)
      for (int c = 0; c < kNR; c++) {
        const int64_t n = n0 + c;
        d[k * kNR + (c % 8) * 2 + c / 8] = n < w.rows ? W[n * w.cols + k0 + k] : uint16_t(0);
      }
  }

  template <int MR>
  static void tile(const float* a, int64_t lda, const uint16_t* b, int64_t kc, float* c, int64_t ldc, int ncols,
                   bool first, const float* bias) {
    // One or two rows (decode) would leave two FMA chains per row, each
    // waiting on the last: even and odd k then go to separate accumulators.
    constexpr int KS = MR <= 2 ? 2 : 1;
    const __m256i high = _mm256_set1_epi32(-65536);
    __m256 acc[KS][MR][2];
#pragma GCC unroll 2
    for (int s = 0; s < KS; s++)
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) acc[s][r][0] = acc[s][r][1] = _mm256_setzero_ps();
    auto step = [&](int s, int64_t k) __attribute__((always_inline)) {
      const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + k * kNR));
      const __m256 b0 = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      const __m256 b1 = _mm256_castsi256_ps(_mm256_and_si256(v, high));
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        const __m256 av = _mm256_broadcast_ss(a + r * lda + k);
        acc[s][r][0] = _mm256_fmadd_ps(av, b0, acc[s][r][0]);
        acc[s][r][1] = _mm256_fmadd_ps(av, b1, acc[s][r][1]);
      }
    };
    int64_t k = 0;
    for (; k + KS <= kc; k += KS)
#pragma GCC unroll 2
      for (int s = 0; s < KS; s++) step(s, k + s);
    if constexpr (KS == 2) {
      if (k < kc) step(0, k);
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        acc[0][r][0] = _mm256_add_ps(acc[0][r][0], acc[1][r][0]);
        acc[0][r][1] = _mm256_add_ps(acc[0][r][1], acc[1][r][1]);
      }
    }
    store_tile<MR>(acc[0], c, ldc, ncols, first, bias);
  }

  static void kernel(int mr, const float* a, int64_t lda, const uint16_t* b, int64_t kc, float* c, int64_t ldc,
                     int ncols, bool first, const float* bias) {
    dispatch_tile<KernBf16Panel>(mr, a, lda, b, kc, c, ldc, ncols, first, bias);
  }
};

// Dot products along rows of W, 4 rows at a time (decode).
template <DType D>
void small_m(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  constexpr int R = 4;
  const int64_t N = w.rows, K = w.cols, k8 = K & ~int64_t(7);
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    for (int64_t n = n0; n < n1; n += R) {
      const int nn = int(std::min<int64_t>(R, n1 - n));
      int64_t row[R];
      for (int i = 0; i < R; i++) row[i] = (n + std::min(i, nn - 1)) * K;
      for (int64_t m = 0; m < M; m++) {
        const float* xr = x + m * K;
        __m256 acc[R];
        for (auto& v : acc) v = _mm256_setzero_ps();
        for (int64_t k = 0; k < k8; k += 8) {
          const __m256 xv = _mm256_loadu_ps(xr + k);
          for (int i = 0; i < R; i++) acc[i] = _mm256_fmadd_ps(xv, load_w8<D>(w.data, row[i] + k), acc[i]);
        }
        for (int i = 0; i < nn; i++) {
          float s = hsum256(acc[i]);
          for (int64_t k = k8; k < K; k++) s += xr[k] * widen(D, w.data, row[i] + k);
          y[m * N + n + i] = s + (bias ? bias[n + i] : 0.f);
        }
      }
    }
  }, 64);
}

void matmul_avx2(const float* x, int64_t M, const Weight& w, const float* bias, float* y, Compute c,
                 ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  if (is_matmul_quant(w.dtype)) return avx2::matmul_quant(x, M, w, bias, y, pool);
  DSVL2_CHECK(w.dtype == DType::kF32 || w.dtype == DType::kBF16 || w.dtype == DType::kF16,
              "matmul: unsupported weight dtype %s", dtype_name(w.dtype));
  if (M <= 0 || N <= 0) return;
  if (K == 0) {
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) y[m * N + n] = bias ? bias[n] : 0.f;
    return;
  }
  const float* a = x;
  if (c == Compute::kBF16) {
    thread_local ScratchBuffer xbuf;  // rounded activations, reused across calls
    float* xr = static_cast<float*>(xbuf.get(size_t(M * K) * 4));
    round_rows(x, M * K, xr, pool);
    a = xr;
  }
  if (w.packed && w.packed_tag == kPackedBf16PanelTag)  // prepared: no packing, any M
    return gemm_blocked<KernBf16Panel>(a, K, M, w, bias, y, pool, static_cast<const uint16_t*>(w.packed));
  if (M >= kSmallM) return gemm_blocked<KernF32>(a, K, M, w, bias, y, pool);
  switch (w.dtype) {
    case DType::kF32: return small_m<DType::kF32>(a, M, w, bias, y, pool);
    case DType::kBF16: return small_m<DType::kBF16>(a, M, w, bias, y, pool);
    default: return small_m<DType::kF16>(a, M, w, bias, y, pool);
  }
}

// Prepared weights: quantized ones rearranged for the int8 kernel, BF16 ones
// packed for KernBf16Panel in both modes (the panels widen exactly and the
// tile multiplies f32 activations, so unlike AVX-512's bf16 pairs they serve
// kF32 too).
size_t prepare_avx2(const Weight& w, Compute, void* dst, Weight* out) {
  if (is_matmul_quant(w.dtype)) return avx2::prepare_quant(w, dst, out);  // both modes: int8 numerics
  if (w.dtype != DType::kBF16 || w.rows <= 0 || w.cols <= 0) return 0;
  const size_t bytes = prepacked_elems<KernBf16Panel>(w) * sizeof(uint16_t);
  if (dst) {
    prepack<KernBf16Panel>(w, static_cast<uint16_t*>(dst));
    *out = w;
    out->packed = dst;
    out->packed_tag = kPackedBf16PanelTag;
  }
  return bytes;
}

const KernelTable kAvx2 = {Isa::kAvx2,      matmul_avx2,    avx2::layer_norm, avx2::rms_norm,     avx2::gelu_tanh,
                           avx2::gelu_erf,  avx2::silu_mul, avx2::softmax_rows, avx2::attention,
                           prepare_avx2};

}  // namespace

const KernelTable* kernels_avx2() { return &kAvx2; }

}  // namespace dsvl2
