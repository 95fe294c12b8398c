// Attention backward at GEMM speed: per head and per block of query rows,
// the score matrix is rebuilt with the forward GEMM of kernels_best() and
// every product of the backward is one more GEMM on (transposed) operands:
//   S = Q K^T * scale, P = softmax(S) (causal rows cut), dP = dO V^T,
//   dS = P * (dP - rowsum(P * dP)),
//   dQ = scale dS K,  dK += scale dS^T Q,  dV += P^T dO.
// The scalar reference (grad_ref.cpp) walks one query row at a time; on a
// 729-token SigLIP tile this is what makes training the vision tower
// affordable. Blocks of query rows bound the score matrices' memory for
// long sequences.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "ops/grad.h"

namespace dsvl2 {

namespace {

constexpr int64_t kRowBlock = 512;

// out[c * rows + r] = src[r * cols + c].
void transpose_to(const float* src, int64_t rows, int64_t cols, float* out) {
  constexpr int64_t kT = 32;
  for (int64_t r0 = 0; r0 < rows; r0 += kT)
    for (int64_t c0 = 0; c0 < cols; c0 += kT)
      for (int64_t r = r0; r < std::min(rows, r0 + kT); r++)
        for (int64_t c = c0; c < std::min(cols, c0 + kT); c++) out[c * rows + r] = src[r * cols + c];
}

// Rows of a strided head view into a contiguous [n, d] buffer, and back (+=).
void gather(const float* base, int64_t stride, int64_t n, int64_t d, float* out) {
  for (int64_t i = 0; i < n; i++) std::memcpy(out + i * d, base + i * stride, size_t(d) * 4);
}
void scatter_add(const float* src, int64_t n, int64_t d, float* base, int64_t stride) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < d; j++) base[i * stride + j] += src[i * d + j];
}

}  // namespace

void attention_backward_fast(const AttentionArgs& a, const AttentionGrads& g, ThreadPool& pool) {
  DSVL2_CHECK(!a.kv_bf16(), "attention_backward: K and V must be f32");
  const KernelTable& k = kernels_best();
  const int64_t T = a.T, S = a.S, Dk = a.Dk, Dv = a.Dv;
  const int group = a.H / a.Hkv;
  auto mm = [&](const float* x, int64_t M, const float* w, int64_t N, int64_t K, float* y) {
    k.matmul(x, M, Weight{DType::kF32, N, K, w, nullptr, 0}, nullptr, y, Compute::kF32, pool);
  };
  std::vector<float> kh(size_t(S * Dk)), vh(size_t(S * Dv)), kt(size_t(Dk * S));
  std::vector<float> dk(size_t(S * Dk)), dv(size_t(S * Dv)), tmp_k(size_t(S * Dk)), tmp_v(size_t(S * Dv));
  const int64_t B = std::min<int64_t>(kRowBlock, T);
  std::vector<float> q(size_t(B * Dk)), qt(size_t(Dk * B)), dout(size_t(B * Dv)), dot(size_t(Dv * B));
  std::vector<float> p(size_t(B * S)), dp(size_t(B * S)), pt(size_t(S * B)), dq(size_t(B * Dk));
  for (int kv = 0; kv < a.Hkv; kv++) {
    gather(a.k + kv * a.k_stride_h, a.k_stride_s, S, Dk, kh.data());
    gather(a.v + kv * a.v_stride_h, a.v_stride_s, S, Dv, vh.data());
    transpose_to(kh.data(), S, Dk, kt.data());
    std::fill(dk.begin(), dk.end(), 0.f);
    std::fill(dv.begin(), dv.end(), 0.f);
    for (int h = kv * group; h < (kv + 1) * group; h++)
      for (int64_t t0 = 0; t0 < T; t0 += B) {
        const int64_t n = std::min(B, T - t0);
        gather(a.q + t0 * a.q_stride_t + h * a.q_stride_h, a.q_stride_t, n, Dk, q.data());
        gather(g.dout + t0 * a.o_stride_t + h * a.o_stride_h, a.o_stride_t, n, Dv, dout.data());
        mm(q.data(), n, kh.data(), S, Dk, p.data());      // Q K^T
        mm(dout.data(), n, vh.data(), S, Dv, dp.data());  // dO V^T
        pool.parallel_for(n, [&](int64_t r0, int64_t r1, int) {
          for (int64_t r = r0; r < r1; r++) {
            float* pr = p.data() + r * S;
            float* dr = dp.data() + r * S;
            const int64_t seen = a.causal ? std::min<int64_t>(S, a.q_pos0 + t0 + r + 1) : S;
            float mx = -INFINITY;
            for (int64_t s = 0; s < seen; s++) mx = std::max(mx, pr[s] * a.scale);
            double sum = 0;
            for (int64_t s = 0; s < seen; s++) sum += (pr[s] = std::exp(pr[s] * a.scale - mx));
            const float inv = seen > 0 ? float(1.0 / sum) : 0.f;
            double pd = 0;
            for (int64_t s = 0; s < seen; s++) pd += double(pr[s] *= inv) * dr[s];
            for (int64_t s = 0; s < seen; s++) dr[s] = pr[s] * (dr[s] - float(pd)) * a.scale;  // scale * dS
            for (int64_t s = seen; s < S; s++) pr[s] = dr[s] = 0.f;
          }
        }, 8);
        mm(dp.data(), n, kt.data(), Dk, S, dq.data());  // dQ = (scale dS) K
        scatter_add(dq.data(), n, Dk, g.dq + t0 * a.q_stride_t + h * a.q_stride_h, a.q_stride_t);
        transpose_to(dp.data(), n, S, pt.data());  // (scale dS)^T [S, n]
        transpose_to(q.data(), n, Dk, qt.data());  // Q^T [Dk, n]
        mm(pt.data(), S, qt.data(), Dk, n, tmp_k.data());
        for (size_t i = 0; i < dk.size(); i++) dk[i] += tmp_k[i];
        transpose_to(p.data(), n, S, pt.data());        // P^T [S, n]
        transpose_to(dout.data(), n, Dv, dot.data());   // dO^T [Dv, n]
        mm(pt.data(), S, dot.data(), Dv, n, tmp_v.data());
        for (size_t i = 0; i < dv.size(); i++) dv[i] += tmp_v[i];
      }
    scatter_add(dk.data(), S, Dk, g.dk + kv * a.k_stride_h, a.k_stride_s);
    scatter_add(dv.data(), S, Dv, g.dv + kv * a.v_stride_h, a.v_stride_s);
  }
}

}  // namespace dsvl2
