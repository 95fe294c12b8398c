// Scalar reference kernels: the oracle every SIMD variant is tested against.
// Written for clarity; they are also what the f32 golden tests run by default
// on CPUs without AVX2.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "ops/quant.h"

namespace dsvl2 {

namespace {

// Widens row n of W to f32 (exact for BF16/F16).
void weight_row_f32(const Weight& w, int64_t n, float* out) {
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(w.data) + n * w.cols, size_t(w.cols) * 4);
      break;
    case DType::kBF16: {
      const uint16_t* r = static_cast<const uint16_t*>(w.data) + n * w.cols;
      for (int64_t k = 0; k < w.cols; k++) out[k] = bf16_to_f32(r[k]);
      break;
    }
    case DType::kF16: {
      const uint16_t* r = static_cast<const uint16_t*>(w.data) + n * w.cols;
      for (int64_t k = 0; k < w.cols; k++) out[k] = f16_to_f32(r[k]);
      break;
    }
    default:
      DSVL2_CHECK(false, "matmul: unsupported weight dtype %s", dtype_name(w.dtype));
  }
}

void matmul_ref(const float* x, int64_t M, const Weight& w, const float* bias, float* y, Compute c, ThreadPool& pool) {
  // Q8_0 / Q4_0 weights have their own numerics (int8 block dot products, ops/quant.h)
  // in both compute modes.
  if (is_matmul_quant(w.dtype)) return matmul_quant_ref(x, M, w, bias, y, pool);
  const int64_t N = w.rows, K = w.cols;
  // bf16 mode rounds the activations to bf16 first (what the fast kernels feed
  // the bf16 dot-product instructions), so scalar and SIMD agree closely.
  std::vector<float> xr;
  if (c == Compute::kBF16) {
    xr.resize(size_t(M * K));
    for (int64_t i = 0; i < M * K; i++) xr[i] = round_bf16(x[i]);
    x = xr.data();
  }
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; n++) {
      weight_row_f32(w, n, row.data());
      for (int64_t m = 0; m < M; m++) {
        const float* xm = x + m * K;
        float acc = 0.f;
        for (int64_t k = 0; k < K; k++) acc += xm[k] * row[k];
        y[m * N + n] = acc + (bias ? bias[n] : 0.f);
      }
    }
  }, 16);
}

void layer_norm_ref(const float* x, int64_t M, int64_t D, const float* gamma, const float* beta, float eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    double mean = 0;
    for (int64_t i = 0; i < D; i++) mean += r[i];
    mean /= double(D);
    double var = 0;
    for (int64_t i = 0; i < D; i++) var += (r[i] - mean) * (r[i] - mean);
    var /= double(D);
    float inv = float(1.0 / std::sqrt(var + eps));
    float* o = y + m * D;
    for (int64_t i = 0; i < D; i++) o[i] = (r[i] - float(mean)) * inv * gamma[i] + (beta ? beta[i] : 0.f);
  }
}

void rms_norm_ref(const float* x, int64_t M, int64_t D, const float* gamma, float eps, float* y) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    double ss = 0;
    for (int64_t i = 0; i < D; i++) ss += double(r[i]) * r[i];
    float inv = float(1.0 / std::sqrt(ss / double(D) + eps));
    float* o = y + m * D;
    for (int64_t i = 0; i < D; i++) o[i] = gamma[i] * (r[i] * inv);
  }
}

void gelu_tanh_ref(float* x, int64_t n) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    x[i] = 0.5f * v * (1.f + std::tanh(k * (v + 0.044715f * v * v * v)));
  }
}

void gelu_erf_ref(float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * 0.7071067811865476f));
}

void silu_mul_ref(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.f + std::exp(-gate[i])) * up[i];
}

void softmax_rows_ref(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    float* p = x + r * cols;
    float mx = -INFINITY;
    for (int64_t i = 0; i < cols; i++) mx = std::max(mx, p[i]);
    double sum = 0;
    for (int64_t i = 0; i < cols; i++) {
      p[i] = std::exp(p[i] - mx);
      sum += p[i];
    }
    float inv = float(1.0 / sum);
    for (int64_t i = 0; i < cols; i++) p[i] *= inv;
  }
}

inline float kv_at(const float* p) { return *p; }
inline float kv_at(const uint16_t* p) { return bf16_to_f32(*p); }

// K/V elements of type KV (f32, or bf16 widened exactly). Ignores a.compute:
// the reference is the f32 oracle in both modes.
template <typename KV>
void attention_ref_kv(const AttentionArgs& a, const KV* kk, const KV* vv, ThreadPool& pool) {
  const int group = a.H / a.Hkv;
  pool.parallel_for(int64_t(a.T) * a.H, [&](int64_t i0, int64_t i1, int) {
    std::vector<float> scores(static_cast<size_t>(a.S));
    for (int64_t i = i0; i < i1; i++) {
      int t = int(i / a.H), h = int(i % a.H), hk = h / group;
      const float* q = a.q + t * a.q_stride_t + h * a.q_stride_h;
      int s_end = a.causal ? std::min(a.S, a.q_pos0 + t + 1) : a.S;
      float mx = -INFINITY;
      for (int s = 0; s < s_end; s++) {
        const KV* k = kk + s * a.k_stride_s + hk * a.k_stride_h;
        float d = 0.f;
        for (int j = 0; j < a.Dk; j++) d += q[j] * kv_at(k + j);
        scores[s] = d * a.scale;
        mx = std::max(mx, scores[s]);
      }
      double sum = 0;
      for (int s = 0; s < s_end; s++) {
        scores[s] = std::exp(scores[s] - mx);
        sum += scores[s];
      }
      float inv = float(1.0 / sum);
      float* o = a.out + t * a.o_stride_t + h * a.o_stride_h;
      for (int j = 0; j < a.Dv; j++) o[j] = 0.f;
      for (int s = 0; s < s_end; s++) {
        const KV* v = vv + s * a.v_stride_s + hk * a.v_stride_h;
        float p = scores[s] * inv;
        for (int j = 0; j < a.Dv; j++) o[j] += p * kv_at(v + j);
      }
    }
  });
}

void attention_ref(const AttentionArgs& a, ThreadPool& pool) {
  if (a.kv_bf16()) attention_ref_kv(a, a.k_bf16, a.v_bf16, pool);
  else attention_ref_kv(a, a.k, a.v, pool);
}

const KernelTable kRef = {Isa::kScalar, matmul_ref,   layer_norm_ref,   rms_norm_ref,  gelu_tanh_ref,
                          gelu_erf_ref, silu_mul_ref, softmax_rows_ref, attention_ref, nullptr};

}  // namespace

const KernelTable& kernels_ref() { return kRef; }

}  // namespace dsvl2
