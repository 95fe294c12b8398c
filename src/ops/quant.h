// Block-quantized weights in ggml's layouts (so GGUF tensors are used in
// place) and the int8 matmul on them.
//
//   Q8_0: K/32 blocks of { f16 scale d; int8 qs[32] }    (34 bytes), x[i] ~= d * qs[i]
//   Q4_0: K/32 blocks of { f16 scale d; u8 qs[16] }      (18 bytes),
//         element j = low nibble of qs[j], element j+16 = high nibble;
//         x ~= d * (nibble - 8)
// The matmul follows ggml's vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0: each
// activation row is quantized once to Q8_0, each block pair gives an exact
// int32 dot product, and y = sum over blocks of d_w * d_x * isum (f32) + bias.
// The SIMD kernel (AVX-512 VNNI) computes the same integer sums; only the f32
// accumulation of the per-block terms differs in order from the reference.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "core/thread_pool.h"

namespace dsvl2 {

struct Weight;

constexpr int kQ8Block = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "ggml block_q8_0 layout");

constexpr int kQ4Block = 32;
struct BlockQ4_0 {
  uint16_t d;  // f16 scale
  uint8_t qs[kQ4Block / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "ggml block_q4_0 layout");

// n must be a multiple of 32 (DSVL2_REQUIRE). d = max|x| / 127 per block,
// qs = round(x / d) (ggml quantize_row_q8_0_ref).
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out);
void dequantize_q8_0(const BlockQ8_0* in, int64_t n, float* out);
// ggml quantize_row_q4_0_ref: d = (the value of largest magnitude) / -8,
// nibble = min(15, int8(x / d + 8.5)).
void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* out);
void dequantize_q4_0(const BlockQ4_0* in, int64_t n, float* out);

// The block types the matmul runs: kQ8_0 and kQ4_0.
bool is_matmul_quant(DType t);
// Quantizes n elements (a multiple of 32) into t's blocks (Q8_0 or Q4_0).
void quantize_blocks(DType t, const float* x, int64_t n, void* out);

// y[M, N] = x[M, K] · W^T (+ bias) for W [N, K] in Q8_0 or Q4_0. K must be a
// multiple of 32. matmul_quant uses the fastest kernel this CPU runs
// (DSVL2_ISA=scalar|avx2 forces the reference); matmul_quant_ref is the oracle.
void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
void matmul_quant_ref(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
// Q8_0 shorthands on a raw block pointer.
void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool);
void matmul_q8_0_ref(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                     ThreadPool& pool);

namespace avx512 {  // quant_avx512.cpp; only after the CPU check
// Works from Weight::packed when prepare_quant packed it, else repacks per call.
void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
// The split layout the kernel reads (see quant_avx512.cpp): returns its bytes,
// writes it to dst (64-byte aligned) when dst is non-null.
size_t prepare_quant(const Weight& w, void* dst, Weight* out);
// Blocks [b0, b0 + nblocks) of rows [n0, n0 + rows) as bf16 (d * q rounded
// once), row r at out + r * ld; reads the split layout when w is prepared.
void dequantize_bf16(const Weight& w, int64_t n0, int64_t rows, int64_t b0, int64_t nblocks, uint16_t* out,
                     int64_t ld);
}  // namespace avx512

}  // namespace dsvl2
