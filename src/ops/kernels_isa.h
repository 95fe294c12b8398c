// Entry points of the per-ISA kernel files, gathered into KernelTables by
// kernels_<isa>.cpp. Each namespace's functions are compiled with that ISA's
// flags and must only be called after the run-time CPU check (dispatch.cpp).
#pragma once
#include <cstdint>

#include "ops/ops.h"

namespace dsvl2 {

#define DSVL2_DECLARE_KERNELS                                                                                     \
  void layer_norm(const float* x, int64_t M, int64_t D, const float* gamma, const float* beta, float eps, float* y); \
  void rms_norm(const float* x, int64_t M, int64_t D, const float* gamma, float eps, float* y);                     \
  void gelu_tanh(float* x, int64_t n);                                                                              \
  void gelu_erf(float* x, int64_t n);                                                                               \
  void silu_mul(float* gate, const float* up, int64_t n);                                                           \
  void softmax_rows(float* x, int64_t rows, int64_t cols);                                                          \
  void attention(const AttentionArgs& a, ThreadPool& pool);

namespace avx512 {
DSVL2_DECLARE_KERNELS
// The a.compute == kBF16 form of attention (attention_bf16_avx512.cpp), for
// T >= 16; false (nothing written) when it does not apply.
bool attention_bf16(const AttentionArgs& a, ThreadPool& pool);
}
namespace avx2 {
DSVL2_DECLARE_KERNELS
}

#undef DSVL2_DECLARE_KERNELS

}  // namespace dsvl2
