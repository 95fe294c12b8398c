#include "train/linear.h"

#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "core/scratch.h"

namespace dsvl2 {

namespace {
const float* bias_of(const LinearRef& l) { return l.b ? l.b->f32() : nullptr; }

// In bf16 mode an f32 master weight is rounded to bf16 for the product (the
// kernels run f32 FMAs on f32 weights whatever the mode): one pass over W
// per call against a GEMM over M rows of it.
Weight compute_weight(const TrainOps& t, const Weight& w) {
  if (t.fwd.compute != Compute::kBF16 || w.dtype != DType::kF32) return w;
  thread_local ScratchBuffer buf;
  uint16_t* b = static_cast<uint16_t*>(buf.get(size_t(w.rows * w.cols) * 2));
  const float* src = static_cast<const float*>(w.data);
  t.pool().parallel_for(w.rows * w.cols, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) b[i] = f32_to_bf16(src[i]);
  }, 1 << 15);
  return Weight{DType::kBF16, w.rows, w.cols, b};
}
}  // namespace

void linear_forward(const TrainOps& t, const LinearRef& l, const float* x, int64_t M, float* y) {
  t.fwd.linear(x, M, compute_weight(t, l.w->weight()), bias_of(l), y);
  if (!l.lora.a) return;
  const int64_t r = l.lora.a->shape[0], N = l.rows();
  std::vector<float> xa(size_t(M * r)), d(size_t(M * N));
  t.fwd.linear(x, M, l.lora.a->weight(), nullptr, xa.data());
  t.fwd.linear(xa.data(), M, l.lora.b->weight(), nullptr, d.data());
  const float s = l.lora.scale;
  for (int64_t i = 0; i < M * N; i++) y[i] += s * d[size_t(i)];
}

void linear_backward(const TrainOps& t, const LinearRef& l, const float* x, const float* dy, int64_t M, float* dx) {
  const int64_t N = l.rows(), K = l.cols();
  if (l.w->trainable || (l.b && l.b->trainable)) {
    if (l.w->trainable) {
      t.grad->linear_dw(dy, x, M, N, K, l.w->grad.f32(), l.b && l.b->trainable ? l.b->grad.f32() : nullptr,
                        t.pool());
    } else {  // a trained bias on a frozen matrix
      float* db = l.b->grad.f32();
      for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++) db[n] += dy[m * N + n];
    }
  }
  if (dx) t.grad->linear_dx(dy, M, l.w->weight(), dx, t.pool());
  if (!l.lora.a) return;
  // h = x A^T [M, r]; y += s h B^T. dB += s dy^T h; dh = s dy B; dA += dh^T x; dx += dh A.
  const int64_t r = l.lora.a->shape[0];
  const float s = l.lora.scale;
  std::vector<float> h(size_t(M * r)), dh(size_t(M * r), 0.f), sdy(size_t(M * N));
  t.fwd.linear(x, M, l.lora.a->weight(), nullptr, h.data());
  for (int64_t i = 0; i < M * N; i++) sdy[size_t(i)] = s * dy[i];
  if (l.lora.b->trainable) t.grad->linear_dw(sdy.data(), h.data(), M, N, r, l.lora.b->grad.f32(), nullptr, t.pool());
  t.grad->linear_dx(sdy.data(), M, l.lora.b->weight(), dh.data(), t.pool());
  if (l.lora.a->trainable) t.grad->linear_dw(dh.data(), x, M, r, K, l.lora.a->grad.f32(), nullptr, t.pool());
  if (dx) t.grad->linear_dx(dh.data(), M, l.lora.a->weight(), dx, t.pool());
}

}  // namespace dsvl2
