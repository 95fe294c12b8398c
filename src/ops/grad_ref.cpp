// Scalar reference backward kernels: the oracle for grad_fast.cpp, written as
// plain loops. Also the row-wise and element-wise derivatives and attention,
// which both tables share (one version each: they are cheap next to the
// products, or not worth a second one yet).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/grad.h"
#include "ops/quant.h"

namespace dsvl2 {

void weight_rows_f32(const Weight& w, int64_t n0, int64_t rows, float* out) {
  const int64_t K = w.cols;
  switch (w.dtype) {
    case DType::kF32:
      std::memcpy(out, static_cast<const float*>(w.data) + n0 * K, size_t(rows * K) * 4);
      return;
    case DType::kBF16: {
      const uint16_t* r = static_cast<const uint16_t*>(w.data) + n0 * K;
      for (int64_t i = 0; i < rows * K; i++) out[i] = bf16_to_f32(r[i]);
      return;
    }
    case DType::kF16: {
      const uint16_t* r = static_cast<const uint16_t*>(w.data) + n0 * K;
      for (int64_t i = 0; i < rows * K; i++) out[i] = f16_to_f32(r[i]);
      return;
    }
    case DType::kQ8_0:  // rows of K/32 blocks, contiguous: one call covers all rows
    case DType::kQ4_0:
    case DType::kIQ4_NL: {
      const size_t row_bytes = size_t(K / kQ8Block) * dtype_block_bytes(w.dtype);
      return dequantize_blocks(w.dtype, static_cast<const uint8_t*>(w.data) + size_t(n0) * row_bytes, rows * K, out);
    }
    default:
      DSVL2_CHECK(false, "linear backward: unsupported weight dtype %s", dtype_name(w.dtype));
  }
}

namespace {

void linear_dx_ref(const float* dy, int64_t M, const Weight& w, float* dx, ThreadPool& pool) {
  const int64_t N = w.rows, K = w.cols;
  DSVL2_CHECK(!dtype_is_quantized(w.dtype) || K % kQ8Block == 0, "linear_dx: K=%lld", (long long)K);
  // Threads own row ranges of dx; each widens every row of W once.
  pool.parallel_for(M, [&](int64_t m0, int64_t m1, int) {
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; n++) {
      weight_rows_f32(w, n, 1, row.data());
      for (int64_t m = m0; m < m1; m++) {
        const float g = dy[m * N + n];
        float* o = dx + m * K;
        for (int64_t k = 0; k < K; k++) o[k] += g * row[k];
      }
    }
  }, 16);
}

void linear_dw_ref(const float* dy, const float* x, int64_t M, int64_t N, int64_t K, float* dw, float* db,
                   ThreadPool& pool) {
  // Threads own rows of dW (and entries of db).
  pool.parallel_for(N, [&](int64_t n0, int64_t n1, int) {
    std::vector<float> acc(static_cast<size_t>(K));
    for (int64_t n = n0; n < n1; n++) {
      std::fill(acc.begin(), acc.end(), 0.f);
      float bsum = 0.f;
      for (int64_t m = 0; m < M; m++) {
        const float g = dy[m * N + n];
        const float* xm = x + m * K;
        bsum += g;
        for (int64_t k = 0; k < K; k++) acc[k] += g * xm[k];
      }
      for (int64_t k = 0; k < K; k++) dw[n * K + k] += acc[k];
      if (db) db[n] += bsum;
    }
  }, 4);
}

const GradKernelTable kGradRef = {"ref", linear_dx_ref, linear_dw_ref, attention_backward};

}  // namespace

const GradKernelTable& grad_kernels_ref() { return kGradRef; }

const GradKernelTable& grad_kernels_best(Compute c) {
  if (c == Compute::kBF16) return grad_kernels_fast_bf16();
  const char* env = std::getenv("DSVL2_ISA");
  return env && !std::strcmp(env, "scalar") ? grad_kernels_ref() : grad_kernels_fast();
}

// With xhat = (x - mean) * inv and g = dy * gamma:
//   dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
void layer_norm_backward(const float* x, const float* dy, int64_t M, int64_t D, const float* gamma, float eps,
                         float* dx, float* dgamma, float* dbeta) {
  std::vector<float> xhat(static_cast<size_t>(D));
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    const float* gy = dy + m * D;
    double mean = 0;  // statistics as the forward computes them (double)
    for (int64_t i = 0; i < D; i++) mean += r[i];
    mean /= double(D);
    double var = 0;
    for (int64_t i = 0; i < D; i++) var += (r[i] - mean) * (r[i] - mean);
    var /= double(D);
    const float inv = float(1.0 / std::sqrt(var + eps));
    double sg = 0, sgx = 0;
    for (int64_t i = 0; i < D; i++) {
      xhat[i] = (r[i] - float(mean)) * inv;
      const float g = gy[i] * gamma[i];
      sg += g;
      sgx += double(g) * xhat[i];
    }
    const float mg = float(sg / double(D)), mgx = float(sgx / double(D));
    for (int64_t i = 0; i < D; i++) {
      if (dx) dx[m * D + i] += inv * (gy[i] * gamma[i] - mg - xhat[i] * mgx);
      if (dgamma) dgamma[i] += gy[i] * xhat[i];
      if (dbeta) dbeta[i] += gy[i];
    }
  }
}

// With r = 1 / sqrt(mean(x^2) + eps) and g = dy * gamma:
//   dx = r * g - r^3 * x * mean(g * x).
void rms_norm_backward(const float* x, const float* dy, int64_t M, int64_t D, const float* gamma, float eps,
                       float* dx, float* dgamma) {
  for (int64_t m = 0; m < M; m++) {
    const float* r = x + m * D;
    const float* gy = dy + m * D;
    double ss = 0, sgx = 0;
    for (int64_t i = 0; i < D; i++) {
      ss += double(r[i]) * r[i];
      sgx += double(gy[i]) * gamma[i] * r[i];
    }
    const double inv = 1.0 / std::sqrt(ss / double(D) + eps);
    const float a = float(inv), b = float(inv * inv * inv * sgx / double(D));
    for (int64_t i = 0; i < D; i++) {
      if (dx) dx[m * D + i] += a * gy[i] * gamma[i] - b * r[i];
      if (dgamma) dgamma[i] += gy[i] * r[i] * a;
    }
  }
}

void gelu_tanh_backward(const float* x, const float* dy, float* dx, int64_t n) {
  const float k = 0.7978845608028654f, c = 0.044715f;  // the forward's sqrt(2/pi) and cubic coefficient
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float t = std::tanh(k * (v + c * v * v * v));
    dx[i] = dy[i] * (0.5f * (1.f + t) + 0.5f * v * (1.f - t * t) * k * (1.f + 3.f * c * v * v));
  }
}

void gelu_erf_backward(const float* x, const float* dy, float* dx, int64_t n) {
  const float inv_sqrt2 = 0.7071067811865476f, inv_sqrt_2pi = 0.3989422804014327f;
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    dx[i] = dy[i] * (0.5f * (1.f + std::erf(v * inv_sqrt2)) + v * inv_sqrt_2pi * std::exp(-0.5f * v * v));
  }
}

// silu(g) = g * s with s = sigmoid(g); silu'(g) = s * (1 + g * (1 - s)).
void silu_mul_backward(const float* g, const float* u, const float* dy, float* dg, float* du, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float s = 1.f / (1.f + std::exp(-g[i]));
    dg[i] = dy[i] * u[i] * s * (1.f + g[i] * (1.f - s));
    du[i] = dy[i] * g[i] * s;
  }
}

double cross_entropy(const float* logits, int64_t T, int64_t V, const int32_t* target, float scale, float* dlogits) {
  int64_t counted = 0;
  for (int64_t t = 0; t < T; t++) {
    if (target[t] < 0) continue;
    DSVL2_REQUIRE(target[t] < V, "cross_entropy: target %d of row %lld is outside the vocabulary of %lld",
                  int(target[t]), (long long)t, (long long)V);
    counted++;
  }
  double total = 0;
  const double c = counted ? double(scale) / double(counted) : 0.0;
  for (int64_t t = 0; t < T; t++) {
    const float* l = logits + t * V;
    float* d = dlogits ? dlogits + t * V : nullptr;
    if (target[t] < 0) {
      if (d) std::fill(d, d + V, 0.f);
      continue;
    }
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; v++) mx = std::max(mx, double(l[v]));
    double sum = 0;
    for (int64_t v = 0; v < V; v++) sum += std::exp(double(l[v]) - mx);
    const double lse = mx + std::log(sum);
    total += lse - l[target[t]];
    if (!d) continue;
    for (int64_t v = 0; v < V; v++) d[v] = float(c * std::exp(double(l[v]) - lse));
    d[target[t]] = float(c * (std::exp(double(l[target[t]]) - lse) - 1.0));  // one rounding, no cancellation in f32
  }
  return counted ? total / double(counted) : 0.0;
}

// ---- attention ----
//
// Per query row the softmax P is recomputed once from q and k, as the forward
// computes it, then
//   dP_s = dout · v_s,  dS_s = P_s * (dP_s - sum_s' P_s' dP_s')
//   dq += scale * sum_s dS_s k_s,  dk_s += scale * dS_s q,  dv_s += P_s dout.
// Work is split by kv head, so every dk/dv row has one writer. With fewer kv
// heads than threads (MQA, GQA with few groups) each head's query rows are also
// split, each slice adding into a private dk/dv that is summed afterwards.

namespace {

// Keys query t sees: [0, key_end(t)).
int key_end(const AttentionArgs& a, int t) { return a.causal ? std::clamp(a.q_pos0 + t + 1, 0, a.S) : a.S; }

// Query rows [t0, t1) of the heads that share kv head hk. Key s adds its
// gradients at dk + s * dk_ss and dv + s * dv_ss (the caller's rows or a
// private buffer); dq goes to g.dq directly (rows owned by this call).
void head_group_backward(const AttentionArgs& a, const AttentionGrads& g, int hk, int t0, int t1, float* dk,
                         int64_t dk_ss, float* dv, int64_t dv_ss) {
  const int group = a.H / a.Hkv;
  std::vector<float> p(size_t(a.S)), dp(size_t(a.S));
  const float* kh = a.k + hk * a.k_stride_h;
  const float* vh = a.v + hk * a.v_stride_h;
  for (int h = hk * group; h < (hk + 1) * group; h++)
    for (int t = t0; t < t1; t++) {
      const int s_end = key_end(a, t);
      if (s_end == 0) continue;  // the forward writes zeros: no dependence on q, k or v
      const float* q = a.q + t * a.q_stride_t + h * a.q_stride_h;
      const float* go = g.dout + t * a.o_stride_t + h * a.o_stride_h;
      float* gq = g.dq + t * a.q_stride_t + h * a.q_stride_h;
      float mx = -INFINITY;
      for (int s = 0; s < s_end; s++) {
        const float* k = kh + s * a.k_stride_s;
        float d = 0.f;
        for (int j = 0; j < a.Dk; j++) d += q[j] * k[j];
        p[s] = d * a.scale;
        mx = std::max(mx, p[s]);
      }
      double sum = 0;
      for (int s = 0; s < s_end; s++) {
        p[s] = std::exp(p[s] - mx);
        sum += p[s];
      }
      const float inv = float(1.0 / sum);
      double pdp = 0;
      for (int s = 0; s < s_end; s++) {
        const float* v = vh + s * a.v_stride_s;
        p[s] *= inv;
        float d = 0.f;
        for (int j = 0; j < a.Dv; j++) d += go[j] * v[j];
        dp[s] = d;
        pdp += double(p[s]) * d;
      }
      for (int s = 0; s < s_end; s++) {
        const float ds = p[s] * (dp[s] - float(pdp)) * a.scale;
        const float* k = kh + s * a.k_stride_s;
        float* gk = dk + s * dk_ss;
        float* gv = dv + s * dv_ss;
        for (int j = 0; j < a.Dk; j++) {
          gq[j] += ds * k[j];
          gk[j] += ds * q[j];
        }
        for (int j = 0; j < a.Dv; j++) gv[j] += p[s] * go[j];
      }
    }
}

// Splits [0, T) into `parts` slices of about equal work (keys seen per row).
std::vector<int> balanced_slices(const AttentionArgs& a, int parts) {
  int64_t total = 0;
  for (int t = 0; t < a.T; t++) total += key_end(a, t) + 1;
  std::vector<int> b(size_t(parts) + 1, a.T);
  b[0] = 0;
  int64_t acc = 0;
  int j = 1;
  for (int t = 0; t < a.T && j < parts; t++) {
    acc += key_end(a, t) + 1;
    while (j < parts && acc * parts >= total * j) b[size_t(j++)] = t + 1;
  }
  return b;
}

}  // namespace

void attention_backward(const AttentionArgs& a, const AttentionGrads& g, ThreadPool& pool) {
  DSVL2_CHECK(a.Hkv > 0 && a.H % a.Hkv == 0, "attention_backward: H=%d, Hkv=%d", a.H, a.Hkv);
  DSVL2_CHECK(!a.kv_bf16(), "attention_backward: K and V must be f32");
  if (a.T <= 0 || a.S <= 0) return;
  // Private dk/dv slices cost Hkv * S * (Dk + Dv) floats each: keep them to ~64 MB.
  const int64_t per_slice = int64_t(a.Hkv) * a.S * (a.Dk + a.Dv);
  int split = a.Hkv >= pool.size() ? 1 : (pool.size() + a.Hkv - 1) / a.Hkv;
  const int64_t max_split = std::max<int64_t>(1, (int64_t(16) << 20) / std::max<int64_t>(per_slice, 1));
  split = int(std::min<int64_t>({split, a.T, max_split}));
  if (split <= 1) {
    pool.parallel_for(a.Hkv, [&](int64_t h0, int64_t h1, int) {
      for (int64_t hk = h0; hk < h1; hk++)
        head_group_backward(a, g, int(hk), 0, a.T, g.dk + hk * a.k_stride_h, a.k_stride_s,
                            g.dv + hk * a.v_stride_h, a.v_stride_s);
    });
    return;
  }
  // Item i = (kv head i / split, query slice i % split); its private buffer
  // holds dk [S, Dk] then dv [S, Dv].
  const std::vector<int> slices = balanced_slices(a, split);
  const int64_t item_floats = int64_t(a.S) * (a.Dk + a.Dv);
  std::vector<float> priv(size_t(a.Hkv * split * item_floats), 0.f);
  pool.parallel_for(int64_t(a.Hkv) * split, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      float* pk = priv.data() + i * item_floats;
      const int j = int(i % split);
      head_group_backward(a, g, int(i / split), slices[size_t(j)], slices[size_t(j) + 1], pk, a.Dk,
                          pk + int64_t(a.S) * a.Dk, a.Dv);
    }
  });
  // Sum the slices per (kv head, key): each dk/dv row has one writer again.
  pool.parallel_for(int64_t(a.Hkv) * a.S, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; r++) {
      const int64_t hk = r / a.S, s = r % a.S;
      float* gk = g.dk + hk * a.k_stride_h + s * a.k_stride_s;
      float* gv = g.dv + hk * a.v_stride_h + s * a.v_stride_s;
      for (int j = 0; j < split; j++) {
        const float* pk = priv.data() + (hk * split + j) * item_floats;
        for (int d = 0; d < a.Dk; d++) gk[d] += pk[s * a.Dk + d];
        for (int d = 0; d < a.Dv; d++) gv[d] += pk[int64_t(a.S) * a.Dk + s * a.Dv + d];
      }
    }
  }, 16);
}

}  // namespace dsvl2
