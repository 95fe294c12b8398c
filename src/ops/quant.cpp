// Q8_0 / Q4_0 / IQ4_NL quantization and the scalar reference int8 matmul (see quant.h).
#include "ops/quant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/ops.h"

namespace dsvl2 {

void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out) {
  DSVL2_REQUIRE(n % kQ8Block == 0, "quantize_q8_0: %lld elements is not a multiple of %d", (long long)n, kQ8Block);
  for (int64_t b = 0; b < n / kQ8Block; b++) {
    const float* v = x + b * kQ8Block;
    float amax = 0.f;
    for (int i = 0; i < kQ8Block; i++) amax = std::max(amax, std::fabs(v[i]));
    const float d = amax / 127.f, id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    for (int i = 0; i < kQ8Block; i++) out[b].qs[i] = int8_t(std::lround(v[i] * id));
  }
}

void dequantize_q8_0(const BlockQ8_0* in, int64_t n, float* out) {
  DSVL2_REQUIRE(n % kQ8Block == 0, "dequantize_q8_0: %lld elements is not a multiple of %d", (long long)n, kQ8Block);
  for (int64_t b = 0; b < n / kQ8Block; b++) {
    const float d = f16_to_f32(in[b].d);
    for (int i = 0; i < kQ8Block; i++) out[b * kQ8Block + i] = d * float(in[b].qs[i]);
  }
}

void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* out) {
  DSVL2_REQUIRE(n % kQ4Block == 0, "quantize_q4_0: %lld elements is not a multiple of %d", (long long)n, kQ4Block);
  for (int64_t b = 0; b < n / kQ4Block; b++) {
    const float* v = x + b * kQ4Block;
    float amax = 0.f, max = 0.f;
    for (int i = 0; i < kQ4Block; i++)
      if (amax < std::fabs(v[i])) {
        amax = std::fabs(v[i]);
        max = v[i];
      }
    const float d = max / -8.f, id = d != 0.f ? 1.f / d : 0.f;
    out[b].d = f32_to_f16(d);
    for (int j = 0; j < kQ4Block / 2; j++) {
      const int lo = std::min(15, int(int8_t(v[j] * id + 8.5f)));
      const int hi = std::min(15, int(int8_t(v[j + kQ4Block / 2] * id + 8.5f)));
      out[b].qs[j] = uint8_t(lo | (hi << 4));
    }
  }
}

void dequantize_q4_0(const BlockQ4_0* in, int64_t n, float* out) {
  DSVL2_REQUIRE(n % kQ4Block == 0, "dequantize_q4_0: %lld elements is not a multiple of %d", (long long)n, kQ4Block);
  for (int64_t b = 0; b < n / kQ4Block; b++) {
    const float d = f16_to_f32(in[b].d);
    for (int j = 0; j < kQ4Block / 2; j++) {
      out[b * kQ4Block + j] = d * float((in[b].qs[j] & 0x0f) - 8);
      out[b * kQ4Block + j + kQ4Block / 2] = d * float((in[b].qs[j] >> 4) - 8);
    }
  }
}

namespace {

// Number of grid values <= v for v in (-128, 128), as a table over floor(v):
// the grid holds integers, so g <= v exactly when g <= floor(v).
constexpr std::array<uint8_t, 256> kIQ4NLCount = [] {
  std::array<uint8_t, 256> t{};
  for (int f = -128; f < 128; f++)
    for (int8_t g : kIQ4NLGrid) t[size_t(f + 128)] += g <= f;
  return t;
}();

// Index of the grid value nearest to v; between two neighbours the choice is
// ggml's best_index_int8 (`v - lo < hi - v` in f32, else the upper one), so
// files match llama-quantize's byte for byte. floor(v) comes from
// int(v + 128): a v just below a grid value g may round up to g there, which
// brackets it as [g, next] instead of [prev, g]; g is the nearest either way
// (and below 113 the bracket stays [89, 113]).
inline int iq4_nl_index(float v) {
  if (!(v > kIQ4NLGrid[0])) return 0;  // NaN too
  if (v >= kIQ4NLGrid[15]) return 15;
  const int hi = std::min<int>(15, kIQ4NLCount[size_t(int(v + 128.f))]);
  return v - float(kIQ4NLGrid[hi - 1]) < float(kIQ4NLGrid[hi]) - v ? hi - 1 : hi;
}

// Rounds the block at inverse scale id; returns sum(w q x) and sum(w q^2), the
// terms of the least-squares scale sum(w q x) / sum(w q^2) for that rounding.
inline void iq4_nl_fit(const float* x, const float* w, float id, float* sumqx, float* sumq2) {
  float a = 0.f, b = 0.f;
  for (int j = 0; j < kIQ4NLBlock; j++) {
    const float q = kIQ4NLGrid[iq4_nl_index(id * x[j])];
    a += w[j] * q * x[j];
    b += w[j] * q * q;
  }
  *sumqx = a;
  *sumq2 = b;
}

// ggml quantize_row_iq4_nl_impl (ggml-quants.c, llama.cpp c392e509) for one
// block, no importance weights, ntry = 7. The f32 operations run in ggml's
// order so the chosen scale, and so the bytes, are the same.
void quantize_block_iq4_nl(const float* x, BlockIQ4_NL* out) {
  float w[kIQ4NLBlock], amax = 0.f, max = 0.f;
  for (int j = 0; j < kIQ4NLBlock; j++) {
    w[j] = x[j] * x[j];
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  float d = 0.f;
  if (amax >= 1e-15f) {  // ggml GROUP_MAX_EPS; below it d = 0
    float sumqx, sumq2;
    const float d0 = max / 127.f;  // max lands past the grid's top (113)
    iq4_nl_fit(x, w, 1.f / d0, &sumqx, &sumq2);
    d = sumqx / sumq2;  // sumq2 > 0: no grid value is 0 and max^2 >= 1e-30 is normal
    float best = d * sumqx;
    for (int t = -7; t <= 7; t++) {
      iq4_nl_fit(x, w, float(t - 127) / max, &sumqx, &sumq2);
      // A better fit: sumqx^2 / sumq2 (the error it removes) larger.
      if (sumq2 > 0.f && sumqx * sumqx > best * sumq2) {
        d = sumqx / sumq2;
        best = d * sumqx;
      }
    }
  }
  out->d = f32_to_f16(d);
  const float id = d != 0.f ? 1.f / d : 0.f;  // the f32 scale, as ggml (not the stored f16)
  for (int j = 0; j < kIQ4NLBlock / 2; j++)
    out->qs[j] = uint8_t(iq4_nl_index(id * x[j]) | iq4_nl_index(id * x[j + kIQ4NLBlock / 2]) << 4);
}

}  // namespace

void quantize_iq4_nl(const float* x, int64_t n, BlockIQ4_NL* out) {
  DSVL2_REQUIRE(n % kIQ4NLBlock == 0, "quantize_iq4_nl: %lld elements is not a multiple of %d", (long long)n,
                kIQ4NLBlock);
  for (int64_t b = 0; b < n / kIQ4NLBlock; b++) quantize_block_iq4_nl(x + b * kIQ4NLBlock, out + b);
}

void dequantize_iq4_nl(const BlockIQ4_NL* in, int64_t n, float* out) {
  DSVL2_REQUIRE(n % kIQ4NLBlock == 0, "dequantize_iq4_nl: %lld elements is not a multiple of %d", (long long)n,
                kIQ4NLBlock);
  for (int64_t b = 0; b < n / kIQ4NLBlock; b++) {
    const float d = f16_to_f32(in[b].d);
    for (int j = 0; j < kIQ4NLBlock / 2; j++) {
      out[b * kIQ4NLBlock + j] = d * float(kIQ4NLGrid[in[b].qs[j] & 0x0f]);
      out[b * kIQ4NLBlock + j + kIQ4NLBlock / 2] = d * float(kIQ4NLGrid[in[b].qs[j] >> 4]);
    }
  }
}

bool is_matmul_quant(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0 || t == DType::kIQ4_NL; }

void quantize_blocks(DType t, const float* x, int64_t n, void* out) {
  if (t == DType::kQ8_0) return quantize_q8_0(x, n, static_cast<BlockQ8_0*>(out));
  if (t == DType::kQ4_0) return quantize_q4_0(x, n, static_cast<BlockQ4_0*>(out));
  if (t == DType::kIQ4_NL) return quantize_iq4_nl(x, n, static_cast<BlockIQ4_NL*>(out));
  DSVL2_FAIL("quantize: %s is not a supported block type (Q8_0, Q4_0, IQ4_NL)", dtype_name(t));
}

void dequantize_blocks(DType t, const void* blocks, int64_t n, float* out) {
  if (t == DType::kQ8_0) return dequantize_q8_0(static_cast<const BlockQ8_0*>(blocks), n, out);
  if (t == DType::kQ4_0) return dequantize_q4_0(static_cast<const BlockQ4_0*>(blocks), n, out);
  if (t == DType::kIQ4_NL) return dequantize_iq4_nl(static_cast<const BlockIQ4_NL*>(blocks), n, out);
  DSVL2_FAIL("dequantize: %s is not a supported block type (Q8_0, Q4_0, IQ4_NL)", dtype_name(t));
}

namespace {
// Block b of a weight row as int8 quants in wq; returns its scale d.
inline float weight_block(DType t, const void* row, int64_t b, int8_t* wq) {
  if (t == DType::kQ8_0) {
    const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(row)[b];
    std::memcpy(wq, blk.qs, kQ8Block);
    return f16_to_f32(blk.d);
  }
  if (t == DType::kQ4_0) {
    const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(row)[b];
    for (int j = 0; j < kQ4Block / 2; j++) {
      wq[j] = int8_t((blk.qs[j] & 0x0f) - 8);
      wq[j + kQ4Block / 2] = int8_t((blk.qs[j] >> 4) - 8);
    }
    return f16_to_f32(blk.d);
  }
  const BlockIQ4_NL& blk = static_cast<const BlockIQ4_NL*>(row)[b];
  for (int j = 0; j < kIQ4NLBlock / 2; j++) {
    wq[j] = kIQ4NLGrid[blk.qs[j] & 0x0f];
    wq[j + kIQ4NLBlock / 2] = kIQ4NLGrid[blk.qs[j] >> 4];
  }
  return f16_to_f32(blk.d);
}
}  // namespace

void matmul_quant_ref(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  DSVL2_REQUIRE(is_matmul_quant(w.dtype), "quantized matmul: %s weights are not supported", dtype_name(w.dtype));
  DSVL2_REQUIRE(K % kQ8Block == 0, "quantized matmul: K = %lld is not a multiple of %d", (long long)K, kQ8Block);
  const int64_t nb = K / kQ8Block;
  std::vector<BlockQ8_0> xq(size_t(M * nb));
  for (int64_t m = 0; m < M; m++) quantize_q8_0(x + m * K, K, xq.data() + m * nb);
  const size_t row_bytes = size_t(nb) * dtype_block_bytes(w.dtype);
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    int8_t wq[kQ8Block];
    for (int64_t n = n0; n < n1; n++) {
      const void* row = static_cast<const uint8_t*>(w.data) + size_t(n) * row_bytes;
      for (int64_t m = 0; m < M; m++) {
        const BlockQ8_0* xr = xq.data() + m * nb;
        float acc = 0.f;
        for (int64_t b = 0; b < nb; b++) {
          const float dw = weight_block(w.dtype, row, b, wq);
          int32_t isum = 0;
          for (int i = 0; i < kQ8Block; i++) isum += int32_t(wq[i]) * int32_t(xr[b].qs[i]);
          acc += float(isum) * (dw * f16_to_f32(xr[b].d));
        }
        y[m * N + n] = acc + (bias ? bias[n] : 0.f);
      }
    }
  }, 16);
}

void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  // The same choice as every other kernel (CPUID, or DSVL2_ISA forcing one).
  switch (kernels_best().isa) {
    case Isa::kAvx512: return avx512::matmul_quant(x, M, w, bias, y, pool);
    case Isa::kAvx2: return avx2::matmul_quant(x, M, w, bias, y, pool);
    default: return matmul_quant_ref(x, M, w, bias, y, pool);
  }
}

void matmul_q8_0_ref(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                     ThreadPool& pool) {
  matmul_quant_ref(x, M, Weight{DType::kQ8_0, N, K, w}, bias, y, pool);
}

void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool) {
  matmul_quant(x, M, Weight{DType::kQ8_0, N, K, w}, bias, y, pool);
}

}  // namespace dsvl2
