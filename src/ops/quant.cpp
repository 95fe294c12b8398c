// Q8_0 quantization and the scalar reference int8 matmul (see quant.h).
#include "ops/quant.h"

#include <algorithm>
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

bool is_matmul_quant(DType t) { return t == DType::kQ8_0 || t == DType::kQ4_0; }

void quantize_blocks(DType t, const float* x, int64_t n, void* out) {
  if (t == DType::kQ8_0) return quantize_q8_0(x, n, static_cast<BlockQ8_0*>(out));
  if (t == DType::kQ4_0) return quantize_q4_0(x, n, static_cast<BlockQ4_0*>(out));
  DSVL2_FAIL("quantize: %s is not a supported block type (Q8_0, Q4_0)", dtype_name(t));
}

void matmul_quant_ref(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  DSVL2_REQUIRE(is_matmul_quant(w.dtype), "quantized matmul: %s weights are not supported", dtype_name(w.dtype));
  DSVL2_REQUIRE(K % kQ8Block == 0, "quantized matmul: K = %lld is not a multiple of %d", (long long)K, kQ8Block);
  const int64_t nb = K / kQ8Block;
  std::vector<BlockQ8_0> xq(size_t(M * nb));
  for (int64_t m = 0; m < M; m++) quantize_q8_0(x + m * K, K, xq.data() + m * nb);
  const bool q4 = w.dtype == DType::kQ4_0;
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    int8_t wq[kQ8Block];
    for (int64_t n = n0; n < n1; n++) {
      for (int64_t m = 0; m < M; m++) {
        const BlockQ8_0* xr = xq.data() + m * nb;
        float acc = 0.f;
        for (int64_t b = 0; b < nb; b++) {
          float dw;
          if (q4) {
            const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(w.data)[n * nb + b];
            for (int j = 0; j < kQ4Block / 2; j++) {
              wq[j] = int8_t((blk.qs[j] & 0x0f) - 8);
              wq[j + kQ4Block / 2] = int8_t((blk.qs[j] >> 4) - 8);
            }
            dw = f16_to_f32(blk.d);
          } else {
            const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(w.data)[n * nb + b];
            std::memcpy(wq, blk.qs, kQ8Block);
            dw = f16_to_f32(blk.d);
          }
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
  if (kernels_best().isa == Isa::kAvx512) avx512::matmul_quant(x, M, w, bias, y, pool);
  else matmul_quant_ref(x, M, w, bias, y, pool);
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
