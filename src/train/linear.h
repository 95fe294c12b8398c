// One Linear layer during training: y = x · W^T (+ b) (+ LoRA), and its
// backward. Every matrix of the trained model goes through these two calls,
// so a LoRA adapter wraps any of them without the layer code knowing, and a
// frozen W (any stored dtype, quantized included) still passes activation
// gradients back without a weight gradient.
#pragma once
#include <cstdint>

#include "ops/grad.h"
#include "ops/ops.h"
#include "train/params.h"

namespace dsvl2 {

// What training code holds: forward kernels in f32 (or bf16) mode, the
// backward table and the pool.
struct TrainOps {
  Ops fwd;
  const GradKernelTable* grad = nullptr;
  ThreadPool& pool() const { return *fwd.pool; }
};

// LoRA (PEFT's Linear): y += scale · (x · A^T) · B^T, A [r, in], B [out, r],
// scale = alpha / r.
struct LoraRef {
  Param* a = nullptr;
  Param* b = nullptr;
  float scale = 1.f;
};

struct LinearRef {
  Param* w = nullptr;
  Param* b = nullptr;  // optional bias
  LoraRef lora;        // optional adapter (lora.a null: none)
  int64_t rows() const { return w->shape[0]; }
  int64_t cols() const { return w->numel() / w->shape[0]; }
};

// y[M, out] (=).
void linear_forward(const TrainOps& t, const LinearRef& l, const float* x, int64_t M, float* y);
// From x[M, in] and dy[M, out]: dx (+=, null when not needed) and the
// gradients of whichever of W, b, A, B are trainable.
void linear_backward(const TrainOps& t, const LinearRef& l, const float* x, const float* dy, int64_t M, float* dx);

}  // namespace dsvl2
