// Block-quantized weights in ggml's layouts (so GGUF tensors are used in
// place) and the int8 matmul on them.
//
//   Q8_0: K/32 blocks of { f16 scale d; int8 qs[32] }    (34 bytes), x[i] ~= d * qs[i]
//   Q4_0: K/32 blocks of { f16 scale d; u8 qs[16] }      (18 bytes),
//         element j = low nibble of qs[j], element j+16 = high nibble;
//         x ~= d * (nibble - 8)
//   IQ4_NL: the Q4_0 layout, but a nibble indexes a non-linear grid:
//         x ~= d * kIQ4NLGrid[nibble] (ggml block_iq4_nl, type 20)
// The matmul follows ggml's vec_dot_q8_0_q8_0 / vec_dot_q4_0_q8_0 /
// vec_dot_iq4_nl_q8_0: each activation row is quantized once to Q8_0, each
// block pair gives an exact int32 dot product, and y = sum over blocks of
// d_w * d_x * isum (f32) + bias.
// The SIMD kernels (AVX-512 VNNI, AVX2) compute the same integer sums; only the
// f32 accumulation of the per-block terms differs in order from the reference.
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

constexpr int kIQ4NLBlock = 32;
struct BlockIQ4_NL {
  uint16_t d;  // f16 scale
  uint8_t qs[kIQ4NLBlock / 2];  // grid indices: element j low nibble, j + 16 high
};
static_assert(sizeof(BlockIQ4_NL) == 18, "ggml block_iq4_nl layout");
// ggml's kvalues_iq4nl: 16 levels spaced more closely near zero, where most
// weights of a roughly normal block fall. Sorted, asymmetric (-127 .. 113).
inline constexpr int8_t kIQ4NLGrid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// n must be a multiple of 32 (DSVL2_REQUIRE). d = max|x| / 127 per block,
// qs = round(x / d) (ggml quantize_row_q8_0_ref).
void quantize_q8_0(const float* x, int64_t n, BlockQ8_0* out);
void dequantize_q8_0(const BlockQ8_0* in, int64_t n, float* out);
// ggml quantize_row_q4_0_ref: d = (the value of largest magnitude) / -8,
// nibble = min(15, int8(x / d + 8.5)).
void quantize_q4_0(const float* x, int64_t n, BlockQ4_0* out);
void dequantize_q4_0(const BlockQ4_0* in, int64_t n, float* out);
// ggml quantize_iq4_nl without importance weights (what llama-quantize writes
// for IQ4_NL without an imatrix): per block, each element rounded to the
// nearest grid value at 16 trial scales (max/127, the value of largest
// magnitude on the grid's top; max/(t - 127), t = -7..7, on its bottom), the
// least-squares scale of each (error weighted by x^2), the best one kept and
// the elements rounded once more at it.
void quantize_iq4_nl(const float* x, int64_t n, BlockIQ4_NL* out);
void dequantize_iq4_nl(const BlockIQ4_NL* in, int64_t n, float* out);

// The block types the matmul runs: kQ8_0, kQ4_0 and kIQ4_NL.
bool is_matmul_quant(DType t);
// Quantizes n elements (a multiple of 32) into t's blocks (a matmul type).
void quantize_blocks(DType t, const float* x, int64_t n, void* out);
// n elements (a multiple of 32) of t's blocks back to f32 (d * q).
void dequantize_blocks(DType t, const void* blocks, int64_t n, float* out);

// y[M, N] = x[M, K] · W^T (+ bias) for W [N, K] in a matmul type. K must be a
// multiple of 32. matmul_quant uses the fastest kernel this CPU runs
// (DSVL2_ISA=scalar forces the reference, =avx2 the AVX2 kernel);
// matmul_quant_ref is the oracle.
void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
void matmul_quant_ref(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
// Q8_0 shorthands on a raw block pointer.
void matmul_q8_0(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                 ThreadPool& pool);
void matmul_q8_0_ref(const float* x, int64_t M, const void* w, int64_t N, int64_t K, const float* bias, float* y,
                     ThreadPool& pool);

namespace avx2 {  // quant_avx2.cpp; only after the CPU check
// ggml's blocks read as stored, or the layout prepare_quant wrote;
// activations quantized per call.
void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
// The blocks rearranged for this kernel (row pairs interleaved, scales
// grouped; see quant_avx2.cpp), written at load into the packed arena, so
// gate/up or q/k/v can be fused and decode reads no file mapping; returns the
// bytes, writes dst (32-byte aligned) when it is non-null.
size_t prepare_quant(const Weight& w, void* dst, Weight* out);
}  // namespace avx2

namespace avx512 {  // quant_avx512.cpp; only after the CPU check
// Works from Weight::packed when prepare_quant packed it, else repacks per call.
void matmul_quant(const float* x, int64_t M, const Weight& w, const float* bias, float* y, ThreadPool& pool);
// The split layout the kernel reads (see quant_avx512.cpp): returns its bytes,
// writes it to dst (64-byte aligned) when dst is non-null.
size_t prepare_quant(const Weight& w, void* dst, Weight* out);
// Rows from which matmul_quant runs matmul_quant_prompt: its per-call repacking
// pays from about 24 rows (bench_kernels, Q8_0 896 x 1280: at 16 rows the
// matrix-vector kernel is ~8 % faster, at 48 the prompt kernel ~35 %).
constexpr int64_t kPromptRows = 24;
// matmul_quant for prompt-sized M (quant_gemm_avx512.cpp): the same int8
// numerics, arranged for many activation rows. `split` is the weight with
// packed holding its split layout (prepared, or split per call).
void matmul_quant_prompt(const float* x, int64_t M, const Weight& split, const float* bias, float* y,
                         ThreadPool& pool);
}  // namespace avx512

}  // namespace dsvl2
