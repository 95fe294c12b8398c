// Q8_0 block quantization (ggml's layout, so GGUF Q8_0 tensors can be used in
// place) and the int8 matmul on it.
//
// A Q8_0 row of K elements (K a multiple of 32) is K/32 blocks of
//   { f16 scale d; int8 qs[32] }  (34 bytes, no padding),  x[i] ~= d * qs[i].
// The matmul follows ggml's vec_dot_q8_0_q8_0: each activation row is
// quantized once to Q8_0 too, each block pair gives an exact int32 dot
// product, and y = sum over blocks of d_w * d_x * isum (f32) + bias.
// The SIMD kernel (AVX-512 VNNI) computes the same integer sums; only the f32
// accumulation of the per-block terms differs in order from the reference.
#pragma once
#include <cstdint>

#include "core/thread_pool.h"

namespace dsvl2 {

constexpr int kQ8Block = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "ggml block_q8_0 layout");

// n must be a multiple of 32 (DSVL2_REQUIRE). d = max|x| / 127 per block,
// qs = round(x / d) (ggml quantize_row_q8_0_ref).
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out);
void dequantize_q8_0(const BlockQ8_0* in, int64_t n, float* out);

// y[M, N] = x[M, K] · W^T (+ bias) for W given as N rows of K/32 Q8_0 blocks.
// K must be a multiple of 32. matmul_q8_0 uses the fastest kernel this CPU
// runs (DSVL2_ISA=scalar forces the reference); matmul_q8_0_ref is the oracle.
void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool);
void matmul_q8_0_ref(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                     ThreadPool& pool);

namespace avx512 {  // quant_avx512.cpp; only after the CPU check
void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool);
}

}  // namespace dsvl2
