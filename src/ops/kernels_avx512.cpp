// AVX-512 kernels (F, BW, VL, DQ, BF16, VNNI): the matmul and the table.
// Elementwise kernels live in elementwise_avx512.cpp, attention in
// attention_avx512.cpp; all three are compiled with the AVX-512 flags and only
// reached through kernels_avx512() after the CPUID check in dispatch.cpp.
//
// Matmul paths (y = x · W^T + b):
//   BF16 weights, Compute::kBF16: x rounded to bf16 once, W packed into
//     K-pair-interleaved 32-column panels, 12x32 register tile of vdpbf16ps.
//   everything else: W widened exactly to f32 while packing, 12x32 tile of
//     f32 FMA (kBF16 with F32/F16 weights rounds x only, as the reference does).
//   M < kSmallM: no packing; dot products along the rows of W (memory bound,
//     decode) with horizontal sums.
//   Q8_0 / Q4_0 / IQ4_NL weights, either mode: the int8 kernels of ops/quant.h
//     (matrix-vector for few rows, quant_gemm_avx512.cpp for prompts).
// GCC 12 reports its own _mm512_undefined_* placeholders as maybe-uninitialized.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/gemm_driver.h"
#include "ops/kernels_isa.h"
#include "ops/math_avx512.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dsvl2 {
namespace {

constexpr int64_t kSmallM = 8;
// Names the packed layout of prepare_avx512 (kernel, panel width, K block);
// change it whenever KernBF16's packing changes.
constexpr uint32_t kPackedBf16Tag = 0x5a42'2006;


inline __mmask16 tail16(int64_t n) { return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1); }
inline __mmask32 tail32(int64_t n) { return n >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << n) - 1); }

// f(x[M, K]) -> bf16 rows of stride ld (>= K; f(0) past K, which is 0 for both
// uses below).
template <class F>
void bf16_rows(const float* x, int64_t M, int64_t K, uint16_t* out, int64_t ld, ThreadPool& pool, F f) {
  pool.parallel_for(M, [&](int64_t m0, int64_t m1, int) {
    for (int64_t m = m0; m < m1; m++)
      for (int64_t k = 0; k < ld; k += 16) {
        const __m512 v = f(_mm512_maskz_loadu_ps(k < K ? tail16(K - k) : 0, x + m * K + k));
        _mm256_mask_storeu_epi16(out + m * ld + k, tail16(ld - k), _mm512_cvtepi32_epi16(bf16_bits(v)));
      }
  }, 64);
}

// x[M, K] -> bf16 rows of stride ld (>= K, zero-padded).
void to_bf16_rows(const float* x, int64_t M, int64_t K, uint16_t* out, int64_t ld, ThreadPool& pool) {
  bf16_rows(x, M, K, out, ld, pool, [](__m512 v) { return v; });
}

// gelu_tanh(x[M, K]) as bf16 rows of stride ld, rounded as to_bf16_rows rounds.
void gelu_tanh_bf16(const float* x, int64_t M, int64_t K, uint16_t* out, int64_t ld, ThreadPool& pool) {
  bf16_rows(x, M, K, out, ld, pool, [](__m512 v) { return gelu_tanh16(v); });
}

// x[M, K] -> x rounded to bf16, kept in f32.
void round_rows(const float* x, int64_t n, float* out, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i += 16) {
      const __mmask16 m = tail16(i1 - i);
      __m512i b = bf16_bits(_mm512_maskz_loadu_ps(m, x + i));
      _mm512_mask_storeu_ps(out + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)));
    }
  }, 1 << 14);
}

// 16 weights from element i on, widened exactly to f32 (masked lanes read nothing).
template <DType D>
inline __m512 load_w16(const void* base, int64_t i, __mmask16 m) {
  if constexpr (D == DType::kF32) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(base) + i);
  } else {
    const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(base) + i);
    if constexpr (D == DType::kBF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    else return _mm512_cvtph_ps(h);
  }
}

// ---- bf16 x bf16 -> f32 (vdpbf16ps) ----
// K block 1152 (the SigLIP width) covers most layers in one block, so the
// output tile is written once; measured ~10% faster than 512 on Zen. The
// group of 6 panels (432 KiB) stays in L2 while A micro-panels (27 KiB) sit in L1.
struct KernBF16 {
  using AType = uint16_t;
  using PackT = uint16_t;
  static constexpr int kNV = 2, kNR = 16 * kNV, kMR = 12, kKC = 1152, kNCPanels = 6;
  static size_t panel_elems(int64_t kc) { return size_t((kc + 1) / 2) * 2 * kNR; }

  // panel[kp][c] (32-bit) = {W[n0+c][k0+2kp], W[n0+c][k0+2kp+1]}: one zmm per
  // 16 columns holds the K pair vdpbf16ps multiplies with a broadcast x pair.
  static void pack(const Weight& w, int64_t n0, int64_t k0, int64_t kc, uint16_t* dst) {
    const int64_t kp_n = (kc + 1) / 2;
    uint32_t* d = reinterpret_cast<uint32_t*>(dst);
    const uint16_t* W = static_cast<const uint16_t*>(w.data);
    for (int c0 = 0; c0 < kNR; c0 += 16) {
      for (int64_t kp = 0; kp < kp_n; kp += 16) {
        const __mmask32 km = tail32(kc - 2 * kp);  // zero past the block (odd K: the pair's upper half)
        __m512i r[16];
        for (int i = 0; i < 16; i++) {
          const int64_t n = n0 + c0 + i;
          // 16 strided row streams defeat the hardware prefetcher: fetch 8 lines ahead.
          if (n < w.rows) _mm_prefetch(reinterpret_cast<const char*>(W + n * w.cols + k0 + 2 * kp + 256), _MM_HINT_T0);
          r[i] = n < w.rows ? _mm512_maskz_loadu_epi16(km, W + n * w.cols + k0 + 2 * kp) : _mm512_setzero_si512();
        }
        transpose16(r);
        const int64_t cnt = std::min<int64_t>(16, kp_n - kp);
        for (int64_t i = 0; i < cnt; i++) _mm512_store_si512(d + (kp + i) * kNR + c0, r[i]);
      }
    }
  }

  template <int MR>
  static void tile(const uint16_t* a, int64_t lda, const uint16_t* b, int64_t kc, float* c, int64_t ldc, int ncols,
                   bool first, const float* bias) {
    __m512 acc[MR][kNV];
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < kNV; j++) acc[r][j] = _mm512_setzero_ps();
    const int64_t kp_n = (kc + 1) / 2;
    for (int64_t kp = 0; kp < kp_n; kp++) {
      __m512bh bv[kNV];
      for (int j = 0; j < kNV; j++) bv[j] = (__m512bh)_mm512_load_si512(b + kp * 2 * kNR + 32 * j);
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++) {
        int32_t v;
        std::memcpy(&v, a + r * lda + 2 * kp, 4);
        const __m512bh av = (__m512bh)_mm512_set1_epi32(v);
        for (int j = 0; j < kNV; j++) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], av, bv[j]);
      }
    }
    for (int r = 0; r < MR; r++) store_tile_row<kNV>(c + r * ldc, acc[r], ncols, first, bias);
  }
  static void kernel(int mr, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t kc, float* c, int64_t ldc,
                     int ncols, bool first, const float* bias);
};

// ---- f32 FMA (weights widened exactly) ----
struct KernF32 {
  using AType = float;
  using PackT = float;
  static constexpr int kNV = 2, kNR = 16 * kNV, kMR = 12, kKC = 256, kNCPanels = 8;
  static size_t panel_elems(int64_t kc) { return size_t(kc) * kNR; }

  // panel[k][c] = W[n0+c][k0+k] widened: 16x16 blocks loaded along K, transposed.
  template <DType D>
  static void pack_t(const Weight& w, int64_t n0, int64_t k0, int64_t kc, float* d) {
    for (int c0 = 0; c0 < kNR; c0 += 16) {
      for (int64_t k = 0; k < kc; k += 16) {
        const __mmask16 km = tail16(kc - k);
        __m512i r[16];
        for (int i = 0; i < 16; i++) {
          const int64_t n = n0 + c0 + i;
          r[i] = n < w.rows ? _mm512_castps_si512(load_w16<D>(w.data, n * w.cols + k0 + k, km)) : _mm512_setzero_si512();
        }
        transpose16(r);
        const int64_t cnt = std::min<int64_t>(16, kc - k);
        for (int64_t i = 0; i < cnt; i++) _mm512_store_si512(d + (k + i) * kNR + c0, r[i]);
      }
    }
  }
  static void pack(const Weight& w, int64_t n0, int64_t k0, int64_t kc, float* d) {
    switch (w.dtype) {
      case DType::kF32: return pack_t<DType::kF32>(w, n0, k0, kc, d);
      case DType::kBF16: return pack_t<DType::kBF16>(w, n0, k0, kc, d);
      default: return pack_t<DType::kF16>(w, n0, k0, kc, d);
    }
  }
  template <int MR>
  static void tile(const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc, int ncols,
                   bool first, const float* bias) {
    __m512 acc[MR][kNV];
    for (int r = 0; r < MR; r++)
      for (int j = 0; j < kNV; j++) acc[r][j] = _mm512_setzero_ps();
    for (int64_t k = 0; k < kc; k++) {
      __m512 bv[kNV];
      for (int j = 0; j < kNV; j++) bv[j] = _mm512_load_ps(b + k * kNR + 16 * j);
#pragma GCC unroll 16
      for (int r = 0; r < MR; r++) {
        const __m512 av = _mm512_set1_ps(a[r * lda + k]);
        for (int j = 0; j < kNV; j++) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
      }
    }
    for (int r = 0; r < MR; r++) store_tile_row<kNV>(c + r * ldc, acc[r], ncols, first, bias);
  }
  static void kernel(int mr, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                     int ncols, bool first, const float* bias);
};

void KernBF16::kernel(int mr, const uint16_t* a, int64_t lda, const uint16_t* b, int64_t kc, float* c, int64_t ldc,
                      int ncols, bool first, const float* bias) {
  dispatch_tile<KernBF16>(mr, a, lda, b, kc, c, ldc, ncols, first, bias);
}
void KernF32::kernel(int mr, const float* a, int64_t lda, const float* b, int64_t kc, float* c, int64_t ldc,
                     int ncols, bool first, const float* bias) {
  dispatch_tile<KernF32>(mr, a, lda, b, kc, c, ldc, ncols, first, bias);
}

// ---- small M: dot products along rows of W, 4 rows at a time ----
constexpr int kDotRows = 4;

// kDotRows rows of W against MB rows of x: kDotRows x MB accumulators, each W
// vector loaded once per MB rows (the x rows stay in L1).
template <int MB>
inline void dot_block_bf16(const uint16_t* const* wr, int nn, const uint16_t* xb, int64_t ldx, int64_t K,
                           const float* bias, int64_t n, float* y, int64_t N) {
  const int64_t kfull = K & ~int64_t(31);
  __m512 acc[kDotRows][MB];
  for (auto& row : acc)
    for (auto& v : row) v = _mm512_setzero_ps();
  for (int64_t k = 0; k < kfull; k += 32) {
    __m512bh xv[MB];
    for (int m = 0; m < MB; m++) xv[m] = (__m512bh)_mm512_loadu_si512(xb + m * ldx + k);
    for (int i = 0; i < kDotRows; i++) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(wr[i] + k);
      for (int m = 0; m < MB; m++) acc[i][m] = _mm512_dpbf16_ps(acc[i][m], xv[m], wv);
    }
  }
  if (kfull < K) {
    const __mmask32 t = tail32(K - kfull);
    for (int i = 0; i < kDotRows; i++) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(t, wr[i] + kfull);
      for (int m = 0; m < MB; m++)
        acc[i][m] = _mm512_dpbf16_ps(acc[i][m], (__m512bh)_mm512_maskz_loadu_epi16(t, xb + m * ldx + kfull), wv);
    }
  }
  for (int m = 0; m < MB; m++)
    for (int i = 0; i < nn; i++) y[m * N + n + i] = _mm512_reduce_add_ps(acc[i][m]) + (bias ? bias[n + i] : 0.f);
}

void small_m_bf16(const uint16_t* xb, int64_t ldx, int64_t M, const Weight& w, const float* bias, float* y,
                  ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  const uint16_t* W = static_cast<const uint16_t*>(w.data);
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    for (int64_t n = n0; n < n1; n += kDotRows) {
      const int nn = int(std::min<int64_t>(kDotRows, n1 - n));
      const uint16_t* wr[kDotRows];
      for (int i = 0; i < kDotRows; i++) wr[i] = W + (n + std::min(i, nn - 1)) * K;
      for (int64_t m = 0; m < M; m += 4) {
        const uint16_t* xm = xb + m * ldx;
        float* ym = y + m * N;
        switch (std::min<int64_t>(4, M - m)) {
          case 1: dot_block_bf16<1>(wr, nn, xm, ldx, K, bias, n, ym, N); break;
          case 2: dot_block_bf16<2>(wr, nn, xm, ldx, K, bias, n, ym, N); break;
          case 3: dot_block_bf16<3>(wr, nn, xm, ldx, K, bias, n, ym, N); break;
          default: dot_block_bf16<4>(wr, nn, xm, ldx, K, bias, n, ym, N); break;
        }
      }
    }
  }, 64);
}

template <DType D>
void small_m_f32(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  const size_t es = dtype_size(D);
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    for (int64_t n = n0; n < n1; n += kDotRows) {
      const int nn = int(std::min<int64_t>(kDotRows, n1 - n));
      const void* wr[kDotRows];
      for (int i = 0; i < kDotRows; i++)
        wr[i] = static_cast<const char*>(w.data) + (n + std::min(i, nn - 1)) * K * int64_t(es);
      for (int64_t m = 0; m < M; m++) {
        const float* xr = x + m * K;
        __m512 acc[kDotRows];
        for (auto& v : acc) v = _mm512_setzero_ps();
        // Two vectors per row per step (independent chains), then a masked tail.
        __m512 acc2[kDotRows];
        for (auto& v : acc2) v = _mm512_setzero_ps();
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
          const __m512 x0 = _mm512_loadu_ps(xr + k), x1 = _mm512_loadu_ps(xr + k + 16);
          for (int i = 0; i < kDotRows; i++) {
            acc[i] = _mm512_fmadd_ps(x0, load_w16<D>(wr[i], k, 0xffff), acc[i]);
            acc2[i] = _mm512_fmadd_ps(x1, load_w16<D>(wr[i], k + 16, 0xffff), acc2[i]);
          }
        }
        for (; k < K; k += 16) {
          const __mmask16 t = tail16(K - k);
          const __m512 xv = _mm512_maskz_loadu_ps(t, xr + k);
          for (int i = 0; i < kDotRows; i++) acc[i] = _mm512_fmadd_ps(xv, load_w16<D>(wr[i], k, t), acc[i]);
        }
        for (int i = 0; i < kDotRows; i++) acc[i] = _mm512_add_ps(acc[i], acc2[i]);
        for (int i = 0; i < nn; i++) y[m * N + n + i] = _mm512_reduce_add_ps(acc[i]) + (bias ? bias[n + i] : 0.f);
      }
    }
  }, 64);
}

// y = bias (or 0): a product over K = 0.
void fill_bias(int64_t M, int64_t N, const float* bias, float* y) {
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) y[m * N + n] = bias ? bias[n] : 0.f;
}

// bf16 rows x (stride ld, even, >= K) times a BF16 weight: matmul's kBF16 path
// after its rounding of the input.
void matmul_bf16(const uint16_t* xb, int64_t ld, int64_t M, const Weight& w, const float* bias, float* y,
                 ThreadPool& pool) {
  DSVL2_CHECK(w.dtype == DType::kBF16 && ld >= w.cols && ld % 2 == 0, "matmul_bf16: needs BF16 weights, even ld >= K");
  if (M <= 0 || w.rows <= 0) return;
  if (w.cols == 0) return fill_bias(M, w.rows, bias, y);
  if (w.packed && w.packed_tag == kPackedBf16Tag)  // prepared: no packing, any M
    gemm_blocked<KernBF16>(xb, ld, M, w, bias, y, pool, static_cast<const uint16_t*>(w.packed));
  else if (M < kSmallM) small_m_bf16(xb, ld, M, w, bias, y, pool);
  else gemm_blocked<KernBF16>(xb, ld, M, w, bias, y, pool);
}

void matmul_avx512(const float* x, int64_t M, const Weight& w, const float* bias, float* y, Compute c,
                   ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  // Quantized weights: the int8 kernels (VNNI, ops/quant.h) at every M, both modes.
  if (is_matmul_quant(w.dtype)) return avx512::matmul_quant(x, M, w, bias, y, pool);
  DSVL2_CHECK(w.dtype == DType::kF32 || w.dtype == DType::kBF16 || w.dtype == DType::kF16,
              "matmul: unsupported weight dtype %s", dtype_name(w.dtype));
  if (M <= 0 || N <= 0) return;
  if (K == 0) return fill_bias(M, N, bias, y);
  thread_local ScratchBuffer xbuf;  // converted activations, reused across calls
  if (c == Compute::kBF16 && w.dtype == DType::kBF16) {
    const int64_t ld = (K + 1) & ~int64_t(1);  // pairs: odd K gets a zero column
    uint16_t* xb = static_cast<uint16_t*>(xbuf.get(size_t(M * ld) * 2));
    to_bf16_rows(x, M, K, xb, ld, pool);
    return matmul_bf16(xb, ld, M, w, bias, y, pool);
  }
  const float* a = x;
  if (c == Compute::kBF16) {
    float* xr = static_cast<float*>(xbuf.get(size_t(M * K) * 4));
    round_rows(x, M * K, xr, pool);
    a = xr;
  }
  if (M >= kSmallM) return gemm_blocked<KernF32>(a, K, M, w, bias, y, pool);
  switch (w.dtype) {
    case DType::kF32: return small_m_f32<DType::kF32>(a, M, w, bias, y, pool);
    case DType::kBF16: return small_m_f32<DType::kBF16>(a, M, w, bias, y, pool);
    default: return small_m_f32<DType::kF16>(a, M, w, bias, y, pool);
  }
}

// Prepared weights: BF16 weights for Compute::kBF16, packed for KernBF16.
size_t prepare_avx512(const Weight& w, Compute c, void* dst, Weight* out) {
  if (is_matmul_quant(w.dtype)) return avx512::prepare_quant(w, dst, out);  // both modes: int8 numerics
  if (c != Compute::kBF16 || w.dtype != DType::kBF16 || w.rows <= 0 || w.cols <= 0) return 0;
  const size_t bytes = prepacked_elems<KernBF16>(w) * sizeof(uint16_t);
  if (dst) {
    prepack<KernBF16>(w, static_cast<uint16_t*>(dst));
    *out = w;
    out->packed = dst;
    out->packed_tag = kPackedBf16Tag;
  }
  return bytes;
}

const KernelTable kAvx512 = {Isa::kAvx512,      matmul_avx512,      avx512::layer_norm,   avx512::rms_norm,
                             avx512::gelu_tanh, avx512::gelu_erf,   avx512::silu_mul,     avx512::softmax_rows,
                             avx512::attention, prepare_avx512,    gelu_tanh_bf16,       matmul_bf16};

}  // namespace

const KernelTable* kernels_avx512() { return &kAvx512; }

}  // namespace dsvl2
