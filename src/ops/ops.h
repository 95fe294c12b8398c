// The kernel interface that model code calls. Kernels never see model types.
//
// Every kernel has a scalar reference (ops/kernels_ref.cpp) that is the oracle
// for the SIMD variants (ops/kernels_avx2.cpp, ops/kernels_avx512.cpp). The
// variant is chosen once at run time from the CPU's features; DSVL2_ISA=
// scalar|avx2|avx512 forces one (tests run every variant on one machine).
//
// Two numeric modes (Compute):
//   kF32  — reference: activations and accumulation in f32; bf16 weights are
//           widened exactly to f32. Matches the golden data to ~1e-4.
//   kBF16 — fast: matmul inputs rounded to bf16, bf16 weights, f32
//           accumulation (AVX512-BF16 dot products). Checked against kF32.
//
// Layout: PyTorch order, row-major. A Linear weight is W[N, K] (out, in):
//   y[M, N] = x[M, K] · W^T + b
#pragma once
#include <cstdint>
#include <string>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace dsvl2 {

enum class Compute { kF32, kBF16 };
enum class Isa { kScalar, kAvx2, kAvx512 };
const char* isa_name(Isa isa);
const char* compute_name(Compute c);
bool parse_compute(const std::string& s, Compute* out);

// A Linear weight as stored (usually a view into the mmapped checkpoint).
// Quantized formats extend DType handling in the kernels, not the model:
// DType::kQ8_0 / kQ4_0 / kIQ4_NL (ggml blocks, rows of K/32 blocks) run the int8 matmul
// of ops/quant.h in both modes and at every M (activations quantized to Q8_0
// per block, as ggml does).
struct Weight {
  DType dtype = DType::kF32;
  int64_t rows = 0;  // N (output features)
  int64_t cols = 0;  // K (input features)
  const void* data = nullptr;
  // Optional copy repacked once for one kernel table and compute mode (see
  // Ops::prepare). A kernel uses it only when packed_tag names its own layout;
  // otherwise it reads `data`, so a prepared Weight is valid everywhere.
  const void* packed = nullptr;
  uint32_t packed_tag = 0;
  bool empty() const { return data == nullptr; }
};
Weight weight_from_view(const TensorView& v);  // 2-D F32/F16/BF16 view

// Scaled dot-product attention over strided q/k/v.
//   q[t, h, :Dk], k[s, h / (H/Hkv), :Dk], v[s, h / (H/Hkv), :Dv] -> out[t, h, :Dv]
// Query t sits at absolute position q_pos0 + t; with `causal` it sees keys
// s <= q_pos0 + t. Softmax in f32. Hkv = 1 is MQA (the MLA absorbed form).
// All strides count elements of the pointed-to type.
struct AttentionArgs {
  const float* q = nullptr;
  int64_t q_stride_t = 0, q_stride_h = 0;
  const float* k = nullptr;
  int64_t k_stride_s = 0, k_stride_h = 0;
  const float* v = nullptr;
  int64_t v_stride_s = 0, v_stride_h = 0;
  float* out = nullptr;
  int64_t o_stride_t = 0, o_stride_h = 0;
  int T = 0, S = 0, H = 0, Hkv = 0, Dk = 0, Dv = 0;
  float scale = 1.0f;
  bool causal = false;
  int q_pos0 = 0;
  // bf16 K/V storage (a bf16 KV cache): when k_bf16 is set, keys and values
  // are read from k_bf16 / v_bf16 (bf16 bits as f32_to_bf16 writes them,
  // widened exactly to f32; strides as above, in elements) and k / v are
  // ignored. Set both or neither; v_bf16 may alias k_bf16's rows (MLA).
  const uint16_t* k_bf16 = nullptr;
  const uint16_t* v_bf16 = nullptr;
  // kBF16 (callers pass Ops::compute): the kernel may round q, k, v and the
  // softmax weights to bf16 for its dot products (f32 accumulation, softmax
  // in f32), ~1e-2 relative. Only the AVX-512 table does so, for T >= 16 and
  // scale > 0; every other case computes exactly as kF32.
  Compute compute = Compute::kF32;

  bool kv_bf16() const { return k_bf16 != nullptr; }
};

struct KernelTable {
  Isa isa;
  // y[M, N] = x[M, K] · W^T (+ bias). x row stride = K, y row stride = N.
  void (*matmul)(const float* x, int64_t M, const Weight& w, const float* bias, float* y, Compute c, ThreadPool& pool);
  // Row-wise LayerNorm with affine (gamma, beta), biased variance.
  void (*layer_norm)(const float* x, int64_t M, int64_t D, const float* gamma, const float* beta, float eps, float* y);
  // Row-wise RMSNorm: y = x / sqrt(mean(x^2) + eps) * gamma.
  void (*rms_norm)(const float* x, int64_t M, int64_t D, const float* gamma, float eps, float* y);
  void (*gelu_tanh)(float* x, int64_t n);  // tanh approximation (SigLIP MLP)
  void (*gelu_erf)(float* x, int64_t n);   // exact erf form (projector)
  // gate[i] = silu(gate[i]) * up[i]
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  void (*softmax_rows)(float* x, int64_t rows, int64_t cols);
  void (*attention)(const AttentionArgs& a, ThreadPool& pool);
  // Repacking of a weight for this table's matmul in mode c, or nullptr when
  // the table has none. Returns the bytes the packed form needs (0: no packed
  // form for this dtype/mode) and, when dst is non-null (64-byte aligned),
  // writes it there and returns w with packed/packed_tag set via *out.
  size_t (*prepare)(const Weight& w, Compute c, void* dst, Weight* out);
  // Optional (nullptr where a table has none): an MLP's GELU handed to the next
  // matmul as bf16 rows, without writing f32 and reading it back to round it.
  // gelu_tanh_bf16: gelu_tanh(x[M, K]) rounded to bf16 as matmul rounds its input
  // in kBF16 mode, into rows of stride ld (even, >= K; zeros past K). matmul_bf16:
  // such rows times a BF16 weight, exactly what matmul computes in kBF16 mode.
  void (*gelu_tanh_bf16)(const float* x, int64_t M, int64_t K, uint16_t* out, int64_t ld, ThreadPool& pool) = nullptr;
  void (*matmul_bf16)(const uint16_t* x, int64_t ld, int64_t M, const Weight& w, const float* bias, float* y,
                      ThreadPool& pool) = nullptr;
};

const KernelTable& kernels_ref();
const KernelTable* kernels_avx2();    // nullptr when not compiled in
const KernelTable* kernels_avx512();  // nullptr when not compiled in

// CPU features checked with CPUID and XGETBV (the OS must save the registers).
bool cpu_has_avx2_fma();
bool cpu_has_avx512_bf16();

// Best table for this CPU, or the one DSVL2_ISA names (error if unsupported).
const KernelTable& kernels_best();
// The table for one ISA, or nullptr when this CPU (or build) lacks it.
const KernelTable* kernels_for(Isa isa);

// What model code holds: the chosen table, the pool and the numeric mode.
struct Ops {
  const KernelTable* k;
  ThreadPool* pool;
  Compute compute = Compute::kF32;

  void linear(const float* x, int64_t M, const Weight& w, const float* bias, float* y) const {
    k->matmul(x, M, w, bias, y, compute, *pool);
  }
  // Once per weight at load time: w repacked for this table and mode when the
  // table has a faster packed form (AVX-512 + bf16 weights + kBF16: K-pair
  // interleaved panels; skips all per-call packing, also for M = 1), else w
  // unchanged. *storage receives the packed bytes and must outlive the result.
  Weight prepare(const Weight& w, Tensor* storage) const;
  // Bytes prepare() would need for w (0: no packed form), and the same
  // repacking into `dst` (prepared_bytes(w) bytes, 64-byte aligned).
  size_t prepared_bytes(const Weight& w) const { return k->prepare ? k->prepare(w, compute, nullptr, nullptr) : 0; }
  Weight prepare_into(const Weight& w, void* dst) const;
  void attention(const AttentionArgs& a) const { k->attention(a, *pool); }
  // y = gelu_tanh(x[M, K]) · W^T (+ bias). x is left unspecified (the GELU may
  // be written over it). In kBF16 mode with a BF16 weight the table's fused
  // entries, where it has them, skip the f32 round trip; the result is the same.
  void gelu_tanh_linear(float* x, int64_t M, int64_t K, const Weight& w, const float* bias, float* y) const;
};

}  // namespace dsvl2
