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

void matmul_q8_0_ref(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                     ThreadPool& pool) {
  DSVL2_REQUIRE(K % kQ8Block == 0, "Q8_0 matmul: K = %lld is not a multiple of %d", (long long)K, kQ8Block);
  const int64_t nb = K / kQ8Block;
  std::vector<BlockQ8_0> xq(size_t(M * nb));
  for (int64_t m = 0; m < M; m++) quantize_q8_0(x + m * K, K, xq.data() + m * nb);
  const BlockQ8_0* W = static_cast<const BlockQ8_0*>(w);
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    for (int64_t n = n0; n < n1; n++) {
      const BlockQ8_0* wr = W + n * nb;
      for (int64_t m = 0; m < M; m++) {
        const BlockQ8_0* xr = xq.data() + m * nb;
        float acc = 0.f;
        for (int64_t b = 0; b < nb; b++) {
          int32_t isum = 0;
          for (int i = 0; i < kQ8Block; i++) isum += int32_t(wr[b].qs[i]) * int32_t(xr[b].qs[i]);
          acc += float(isum) * (f16_to_f32(wr[b].d) * f16_to_f32(xr[b].d));
        }
        y[m * N + n] = acc + (bias ? bias[n] : 0.f);
      }
    }
  }, 16);
}

void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool) {
  static const bool fast = [] {
    const char* env = std::getenv("DSVL2_ISA");
    return cpu_has_avx512_bf16() && !(env && !std::strcmp(env, "scalar")) && !(env && !std::strcmp(env, "avx2"));
  }();
  if (fast) avx512::matmul_q8_0(x, M, w, N, K, bias, y, pool);
  else matmul_q8_0_ref(x, M, w, N, K, bias, y, pool);
}

}  // namespace dsvl2
