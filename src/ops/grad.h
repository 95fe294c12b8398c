// Backward kernels for training (src/train): the products and element-wise
// derivatives that backward passes need, f32 throughout. Like the forward
// table (ops.h), each entry has a scalar reference (ops/grad_ref.cpp) that is
// the oracle; the fast entries (ops/grad_fast.cpp) reuse the forward GEMM of
// kernels_best() on transposed operands, so dY·W and dYᵀ·X run at GEMM speed
// without a second hand-tuned GEMM.
//
// Conventions: every output that a parameter or a shared input accumulates
// into is ADDED to (+=), so a caller zeroes gradients once per step and
// several consumers of one tensor just add; outputs marked "(=)" are written.
// Layout as ops.h: a Linear weight is W[N, K], y[M, N] = x[M, K] · W^T + b.
#pragma once
#include <cstdint>

#include "ops/ops.h"

namespace dsvl2 {

struct AttentionGrads {
  const float* dout = nullptr;
  float* dq = nullptr;
  float* dk = nullptr;
  float* dv = nullptr;
};

struct GradKernelTable {
  const char* name;
  // dx[M, K] += dy[M, N] · W[N, K]. W any dtype Ops::linear takes in f32 mode
  // (F32, F16, BF16, Q8_0, Q4_0, IQ4_NL: frozen base weights stay in their format).
  void (*linear_dx)(const float* dy, int64_t M, const Weight& w, float* dx, ThreadPool& pool);
  // dW[N, K] += dy[M, N]^T · x[M, K]; db[N] += sum over rows of dy (db may be null).
  void (*linear_dw)(const float* dy, const float* x, int64_t M, int64_t N, int64_t K, float* dw, float* db,
                    ThreadPool& pool);
  // Attention backward (semantics of attention_backward below): the reference
  // walks query rows; the fast entry runs every product as a GEMM per head.
  void (*attention)(const AttentionArgs& a, const AttentionGrads& g, ThreadPool& pool);
};

const GradKernelTable& grad_kernels_ref();
const GradKernelTable& grad_kernels_fast();
// The fast table's products in bf16 (Compute::kBF16): training's fast mode.
const GradKernelTable& grad_kernels_fast_bf16();
// For a numeric mode: f32 -> the fast table (the reference one when
// DSVL2_ISA=scalar); bf16 -> grad_kernels_fast_bf16().
const GradKernelTable& grad_kernels_best(Compute c = Compute::kF32);

// Rows [n0, n0 + rows) of W widened to f32, row r at out + r * w.cols: exact
// for F32/F16/BF16, Q8_0/Q4_0/IQ4_NL dequantized (d * q). The linear_dx of both tables
// multiplies by these values, i.e. the gradient of x · deq(W)^T (the int8
// rounding of x in the quantized forward is treated as the identity).
void weight_rows_f32(const Weight& w, int64_t n0, int64_t rows, float* out);

// The fast entries with an explicit scratch budget in floats per buffer (the
// table's is 4M: three buffers of 16 MB, kept per calling thread as
// ScratchBuffers); tests pass tiny ones to exercise the chunking.
// `compute` kBF16 rounds the GEMM operands to bf16 (f32 accumulation), the
// backward of the forward's bf16 mode.
void linear_dx_fast(const float* dy, int64_t M, const Weight& w, float* dx, ThreadPool& pool,
                    int64_t scratch_floats, Compute compute = Compute::kF32);
void linear_dw_fast(const float* dy, const float* x, int64_t M, int64_t N, int64_t K, float* dw, float* db,
                    ThreadPool& pool, int64_t scratch_floats, Compute compute = Compute::kF32);

// ---- element-wise and row-wise derivatives (scalar, shared by both tables) ----

// LayerNorm y = (x - mean) / sqrt(var + eps) * gamma + beta (biased var), rows of D.
// dx (+=), dgamma (+=), dbeta (+=); any of the three may be null.
void layer_norm_backward(const float* x, const float* dy, int64_t M, int64_t D, const float* gamma, float eps,
                         float* dx, float* dgamma, float* dbeta);
// RMSNorm y = x / sqrt(mean(x^2) + eps) * gamma. dx (+=), dgamma (+=, may be null).
void rms_norm_backward(const float* x, const float* dy, int64_t M, int64_t D, const float* gamma, float eps,
                       float* dx, float* dgamma);
// y = gelu(x) (tanh approximation / exact erf); x is the pre-activation. dx (=).
void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n);
void gelu_erf_backward(const float* x, const float* dy, float* dx, int64_t n);
// y = silu(g) * u. dg (=), du (=).
void silu_mul_backward(const float* g, const float* u, const float* dy, float* dg, float* du, int64_t n);

// Attention backward for the forward of ops.h (AttentionArgs, any strides,
// causal or not, GQA/MQA by Hkv). The softmax is recomputed from q and k.
// dout has the strides of a.out; dq (+=) the strides of a.q; dk, dv (+=) the
// strides of a.k, a.v. Runs over kv heads in parallel (no two threads add to
// one dk/dv row); with fewer kv heads than threads, each head's query rows are
// split too, over private dk/dv buffers summed at the end (<= 64 MB).
void attention_backward(const AttentionArgs& a, const AttentionGrads& g, ThreadPool& pool);
// The same through per-head GEMMs over blocks of query rows (grad_attention_fast.cpp).
void attention_backward_fast(const AttentionArgs& a, const AttentionGrads& g, ThreadPool& pool);

// Mean cross-entropy over the rows t whose target[t] >= 0 (-100 and any other
// negative value is ignored), with logits[T, V] f32. Returns the mean loss (0
// when no row counts) and, when dlogits is non-null, writes (=) d(scale *
// mean loss) / dlogits (zero rows for ignored targets). Computed in double
// per row for the log-sum-exp.
double cross_entropy(const float* logits, int64_t T, int64_t V, const int32_t* target, float scale, float* dlogits);

}  // namespace dsvl2
