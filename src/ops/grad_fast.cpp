// Fast linear backward: the forward GEMM of kernels_best() (y = x · W^T, f32
// mode) on transposed operands, so both products run at GEMM speed.
//   dx = dy · W    = matmul(x = dy, W' = W^T [K, N])
//   dW = dy^T · x  = matmul(x = dy^T [N, M], W' = x^T [K, M])
// The matmul writes (=) its output, so each product lands in a scratch buffer
// that is then added into dx / dW. Operands are transposed (and W widened or
// dequantized to f32) in chunks, so every scratch buffer stays within a
// budget however large W or M is; partial products over chunks are summed.
#include <algorithm>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/scratch.h"
#include "ops/grad.h"
#include "ops/quant.h"

namespace dsvl2 {

namespace {

// Floats per scratch buffer (three per call: 48 MB), kept per calling thread.
// Chunks this large keep the GEMM's inner dimension in the thousands.
constexpr int64_t kScratchFloats = int64_t(4) << 20;

float* scratch_floats(ScratchBuffer& b, int64_t n) { return static_cast<float*>(b.get(size_t(n) * sizeof(float))); }

// out[c * ldo + r] = src[r * lds + c] for r < rows, c < cols; 32x32 tiles,
// threads own ranges of output rows.
void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* out, int64_t ldo,
               ThreadPool& pool) {
  constexpr int64_t kT = 32;
  pool.parallel_for((cols + kT - 1) / kT, [&](int64_t b0, int64_t b1, int) {
    for (int64_t c0 = b0 * kT; c0 < std::min(cols, b1 * kT); c0 += kT)
      for (int64_t r0 = 0; r0 < rows; r0 += kT)
        for (int64_t c = c0; c < std::min(c0 + kT, cols); c++)
          for (int64_t r = r0; r < std::min(r0 + kT, rows); r++) out[c * ldo + r] = src[r * lds + c];
  }, 2);
}

// out[K, nc] = (rows [n0, n0 + nc) of W, as f32)^T.
void widen_transpose(const Weight& w, int64_t n0, int64_t nc, float* out, ThreadPool& pool) {
  const int64_t K = w.cols;
  if (w.dtype == DType::kF32) return transpose(static_cast<const float*>(w.data) + n0 * K, nc, K, K, out, nc, pool);
  // Other dtypes: 16 rows at a time widened into a thread's buffer, then
  // written as 16 consecutive floats of every output row.
  constexpr int64_t kR = 16;
  pool.parallel_for((nc + kR - 1) / kR, [&](int64_t b0, int64_t b1, int) {
    thread_local ScratchBuffer rows_buf;
    float* rows = scratch_floats(rows_buf, kR * K);
    for (int64_t r0 = b0 * kR; r0 < std::min(nc, b1 * kR); r0 += kR) {
      const int64_t nr = std::min(kR, nc - r0);
      weight_rows_f32(w, n0 + r0, nr, rows);
      for (int64_t k = 0; k < K; k++)
        for (int64_t r = 0; r < nr; r++) out[k * nc + r0 + r] = rows[r * K + k];
    }
  });
}

// The GEMM's second operand as the numeric mode wants it: in bf16 mode the
// f32 scratch is rounded to bf16 (into `bf`) so the matmul takes its bf16
// path (vdpbf16ps) instead of f32 FMAs on f32 operands.
Weight operand(float* f32, int64_t rows, int64_t cols, Compute compute, ScratchBuffer& bf, ThreadPool& pool) {
  if (compute != Compute::kBF16) return Weight{DType::kF32, rows, cols, f32};
  uint16_t* b = static_cast<uint16_t*>(bf.get(size_t(rows * cols) * 2));
  pool.parallel_for(rows * cols, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) b[i] = f32_to_bf16(f32[i]);
  }, 1 << 15);
  return Weight{DType::kBF16, rows, cols, b};
}

// dst[i] += src[i], i < n.
void add_into(float* dst, const float* src, int64_t n, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) dst[i] += src[i];
  }, 1 << 14);
}

// db[n] += sum over rows of dy[M, N]; threads own column ranges.
void column_sum(const float* dy, int64_t M, int64_t N, float* db, ThreadPool& pool) {
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    std::vector<float> acc(size_t(n1 - n0), 0.f);
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = n0; n < n1; n++) acc[size_t(n - n0)] += dy[m * N + n];
    for (int64_t n = n0; n < n1; n++) db[n] += acc[size_t(n - n0)];
  }, 64);
}

void linear_dx_table(const float* dy, int64_t M, const Weight& w, float* dx, ThreadPool& pool) {
  linear_dx_fast(dy, M, w, dx, pool, kScratchFloats);
}

void linear_dw_table(const float* dy, const float* x, int64_t M, int64_t N, int64_t K, float* dw, float* db,
                     ThreadPool& pool) {
  linear_dw_fast(dy, x, M, N, K, dw, db, pool, kScratchFloats);
}

void linear_dx_bf16(const float* dy, int64_t M, const Weight& w, float* dx, ThreadPool& pool) {
  linear_dx_fast(dy, M, w, dx, pool, kScratchFloats, Compute::kBF16);
}

void linear_dw_bf16(const float* dy, const float* x, int64_t M, int64_t N, int64_t K, float* dw, float* db,
                    ThreadPool& pool) {
  linear_dw_fast(dy, x, M, N, K, dw, db, pool, kScratchFloats, Compute::kBF16);
}

const GradKernelTable kGradFast = {"fast", linear_dx_table, linear_dw_table, attention_backward_fast};
const GradKernelTable kGradFastBf16 = {"fast-bf16", linear_dx_bf16, linear_dw_bf16, attention_backward_fast};

}  // namespace

const GradKernelTable& grad_kernels_fast() { return kGradFast; }
const GradKernelTable& grad_kernels_fast_bf16() { return kGradFastBf16; }

// dx[m0:m1, :] += dy[m0:m1, n0:n1] · W[n0:n1, :] per chunk of W's rows and of M.
void linear_dx_fast(const float* dy, int64_t M, const Weight& w, float* dx, ThreadPool& pool,
                    int64_t scratch_floats_per_buffer, Compute compute) {
  const int64_t N = w.rows, K = w.cols;
  DSVL2_CHECK(!dtype_is_quantized(w.dtype) || K % kQ8Block == 0, "linear_dx: K=%lld", (long long)K);
  if (M <= 0 || N <= 0 || K <= 0) return;
  const int64_t budget = std::max<int64_t>(scratch_floats_per_buffer, 1);
  const int64_t nc_max = std::clamp<int64_t>(budget / K, 1, N);                    // W^T chunk [K, nc]
  const int64_t mc_max = std::clamp<int64_t>(budget / std::max(K, nc_max), 1, M);  // product [mc, K], dy [mc, nc]
  thread_local ScratchBuffer wt_buf, dy_buf, out_buf, bf_buf;
  float* wt = scratch_floats(wt_buf, K * nc_max);
  float* out = scratch_floats(out_buf, mc_max * K);
  float* dyc = nc_max < N ? scratch_floats(dy_buf, mc_max * nc_max) : nullptr;
  const KernelTable& kt = kernels_best();
  for (int64_t n0 = 0; n0 < N; n0 += nc_max) {
    const int64_t nc = std::min(nc_max, N - n0);
    widen_transpose(w, n0, nc, wt, pool);
    const Weight wt_w = operand(wt, K, nc, compute, bf_buf, pool);
    for (int64_t m0 = 0; m0 < M; m0 += mc_max) {
      const int64_t mc = std::min(mc_max, M - m0);
      const float* a = dy + m0 * N;  // all of N in one chunk: dy rows are the operand as they are
      if (nc < N) {                  // else the strided slice dy[m0:m0+mc, n0:n0+nc], made contiguous
        for (int64_t m = 0; m < mc; m++) std::copy_n(dy + (m0 + m) * N + n0, nc, dyc + m * nc);
        a = dyc;
      }
      kt.matmul(a, mc, wt_w, nullptr, out, compute, pool);
      add_into(dx + m0 * K, out, mc * K, pool);
    }
  }
}

// dW[n0:n1, :] += dy[m0:m1, n0:n1]^T · x[m0:m1, :] per chunk of M and of N.
void linear_dw_fast(const float* dy, const float* x, int64_t M, int64_t N, int64_t K, float* dw, float* db,
                    ThreadPool& pool, int64_t scratch_floats_per_buffer, Compute compute) {
  if (M <= 0 || N <= 0) return;
  if (db) column_sum(dy, M, N, db, pool);
  if (K <= 0) return;
  const int64_t budget = std::max<int64_t>(scratch_floats_per_buffer, 1);
  const int64_t mc_max = std::clamp<int64_t>(budget / K, 1, M);                    // x^T chunk [K, mc]
  const int64_t nc_max = std::clamp<int64_t>(budget / std::max(K, mc_max), 1, N);  // product [nc, K], dy^T [nc, mc]
  thread_local ScratchBuffer xt_buf, dyt_buf, out_buf, bf_buf;
  float* xt = scratch_floats(xt_buf, K * mc_max);
  float* dyt = scratch_floats(dyt_buf, nc_max * mc_max);
  float* out = scratch_floats(out_buf, nc_max * K);
  const KernelTable& kt = kernels_best();
  for (int64_t m0 = 0; m0 < M; m0 += mc_max) {
    const int64_t mc = std::min(mc_max, M - m0);
    transpose(x + m0 * K, mc, K, K, xt, mc, pool);
    const Weight xt_w = operand(xt, K, mc, compute, bf_buf, pool);
    for (int64_t n0 = 0; n0 < N; n0 += nc_max) {
      const int64_t nc = std::min(nc_max, N - n0);
      transpose(dy + m0 * N + n0, mc, nc, N, dyt, mc, pool);
      kt.matmul(dyt, nc, xt_w, nullptr, out, compute, pool);
      add_into(dw + n0 * K, out, nc * K, pool);
    }
  }
}

}  // namespace dsvl2
