// Backward kernels (ops/grad.h) against central finite differences of
// independent double-precision forwards. Each double forward is first checked
// against the engine's own forward (kernels_ref()), so the gradients checked
// are those of the function the model runs. Accumulating outputs start from
// random values, so "+=" is checked too. Then the fast linear table against the
// reference on large shapes, every weight dtype and tiny scratch budgets.
// Attention is in grad_attention_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "grad_fixture.h"
#include "ops/grad.h"
#include "ops/quant.h"

namespace dsvl2 {
namespace {

using namespace grad_test;

// ---------------------------------------------------------------- linear

// A weight in dtype dt; `values` are the f32 values the kernels see (exact
// widening, or the dequantized blocks).
struct TestWeight {
  Vec values;
  std::vector<uint16_t> half;
  std::vector<uint8_t> blocks;
  Weight w;
};

TestWeight make_weight(DType dt, int64_t N, int64_t K, uint32_t seed) {
  TestWeight s;
  s.values = randn(size_t(N * K), seed, 0.5f);
  const size_t n = s.values.size();
  if (dt == DType::kBF16 || dt == DType::kF16) {
    s.half.resize(n);
    for (size_t i = 0; i < n; i++) {
      s.half[i] = dt == DType::kBF16 ? f32_to_bf16(s.values[i]) : f32_to_f16(s.values[i]);
      s.values[i] = dt == DType::kBF16 ? bf16_to_f32(s.half[i]) : f16_to_f32(s.half[i]);
    }
    s.w = Weight{dt, N, K, s.half.data()};
  } else if (dt == DType::kQ8_0) {
    s.blocks.resize(n / kQ8Block * sizeof(BlockQ8_0));
    auto* b = reinterpret_cast<BlockQ8_0*>(s.blocks.data());
    quantize_q8_0(s.values.data(), int64_t(n), b);
    dequantize_q8_0(b, int64_t(n), s.values.data());
    s.w = Weight{dt, N, K, b};
  } else if (dt == DType::kQ4_0) {
    s.blocks.resize(n / kQ4Block * sizeof(BlockQ4_0));
    auto* b = reinterpret_cast<BlockQ4_0*>(s.blocks.data());
    quantize_q4_0(s.values.data(), int64_t(n), b);
    dequantize_q4_0(b, int64_t(n), s.values.data());
    s.w = Weight{dt, N, K, b};
  } else {
    s.w = Weight{dt, N, K, s.values.data()};
  }
  return s;
}

// y[M, N] = x[M, K] · W^T + b in double.
VecD linear_d(const VecD& x, const VecD& w, const VecD& b, int64_t M, int64_t N, int64_t K) {
  VecD y(size_t(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = b[size_t(n)];
      for (int64_t k = 0; k < K; k++) s += x[size_t(m * K + k)] * w[size_t(n * K + k)];
      y[size_t(m * N + n)] = s;
    }
  return y;
}

TEST(GradLinear, MatchesFiniteDifferences) {
  ThreadPool pool(2);
  for (const GradKernelTable* t : {&grad_kernels_ref(), &grad_kernels_fast()})
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16, DType::kQ8_0, DType::kQ4_0}) {
      const bool quant = dtype_is_quantized(dt);
      const int64_t M = 5, N = 7, K = quant ? 64 : 13;  // block types need K % 32 == 0
      SCOPED_TRACE(std::string(t->name) + " " + dtype_name(dt));
      TestWeight tw = make_weight(dt, N, K, 11);
      const Vec x = randn(size_t(M * K), 12), b = randn(size_t(N), 13), r = randn(size_t(M * N), 14);
      VecD xd = to_d(x), wd = to_d(tw.values), bd = to_d(b), rd = to_d(r);
      if (!quant) {  // the quantized forward rounds x to Q8_0 too; the gradient is that of x · deq(W)^T
        Vec y(size_t(M * N));
        kernels_ref().matmul(x.data(), M, tw.w, b.data(), y.data(), Compute::kF32, pool);
        EXPECT_LT(rel_err(y, linear_d(xd, wd, bd, M, N, K)), 1e-6);
      }
      auto loss = [&] { return dot_d(rd, linear_d(xd, wd, bd, M, N, K)); };
      const Vec dx0 = randn(size_t(M * K), 15), dw0 = randn(size_t(N * K), 16), db0 = randn(size_t(N), 17);
      Vec dx = dx0, dw = dw0, db = db0;
      t->linear_dx(r.data(), M, tw.w, dx.data(), pool);
      t->linear_dw(r.data(), x.data(), M, N, K, dw.data(), db.data(), pool);
      EXPECT_LT(rel_err(dx, fd_grad(xd, loss), dx0), kTol);
      EXPECT_LT(rel_err(dw, fd_grad(wd, loss), dw0), kTol);
      EXPECT_LT(rel_err(db, fd_grad(bd, loss), db0), kTol);
      Vec dw_nob = dw0;  // db is optional
      t->linear_dw(r.data(), x.data(), M, N, K, dw_nob.data(), nullptr, pool);
      EXPECT_EQ(dw_nob, dw);
    }
}

struct LinearCase {
  int64_t M, N, K;
  DType dt;
};

// Fast and reference increments of dx, dW, db for one case.
void check_fast_vs_ref(const LinearCase& c, ThreadPool& pool, int64_t scratch_floats) {
  SCOPED_TRACE(::testing::Message() << c.M << "x" << c.N << "x" << c.K << " " << dtype_name(c.dt)
                                    << " scratch " << scratch_floats);
  TestWeight tw = make_weight(c.dt, c.N, c.K, uint32_t(c.N + c.K));
  const Vec dy = randn(size_t(c.M * c.N), 1), x = randn(size_t(c.M * c.K), 2);
  const Vec dx0 = randn(size_t(c.M * c.K), 3), dw0 = randn(size_t(c.N * c.K), 4), db0 = randn(size_t(c.N), 5);
  Vec dx_ref = dx0, dw_ref = dw0, db_ref = db0, dx = dx0, dw = dw0, db = db0;
  grad_kernels_ref().linear_dx(dy.data(), c.M, tw.w, dx_ref.data(), pool);
  grad_kernels_ref().linear_dw(dy.data(), x.data(), c.M, c.N, c.K, dw_ref.data(), db_ref.data(), pool);
  if (scratch_floats > 0) {
    linear_dx_fast(dy.data(), c.M, tw.w, dx.data(), pool, scratch_floats);
    linear_dw_fast(dy.data(), x.data(), c.M, c.N, c.K, dw.data(), db.data(), pool, scratch_floats);
  } else {
    grad_kernels_fast().linear_dx(dy.data(), c.M, tw.w, dx.data(), pool);
    grad_kernels_fast().linear_dw(dy.data(), x.data(), c.M, c.N, c.K, dw.data(), db.data(), pool);
  }
  EXPECT_LT(rel_err(dx, dx_ref, dx0), 1e-4);
  EXPECT_LT(rel_err(dw, dw_ref, dw0), 1e-4);
  EXPECT_LT(rel_err(db, db_ref, db0), 1e-4);
}

TEST(GradLinear, FastMatchesReference) {
  ThreadPool pool(2);
  const LinearCase cases[] = {
      {1, 1, 1, DType::kF32},       {5, 7, 13, DType::kF32},      {300, 257, 1000, DType::kF32},
      {300, 257, 1000, DType::kBF16}, {33, 100, 257, DType::kF16}, {300, 257, 992, DType::kQ8_0},
      {7, 65, 96, DType::kQ4_0},    {64, 5, 1, DType::kF32},      {2, 300, 64, DType::kQ8_0},
      {1, 129, 1030, DType::kBF16},
  };
  for (const LinearCase& c : cases) check_fast_vs_ref(c, pool, 0);
}

TEST(GradLinear, FastChunkedMatchesReference) {
  // Budgets far below the shapes: chunks of W's rows, of M and of N, down to
  // one element per chunk (budget 1), and one chunk that covers all of N.
  ThreadPool pool(2);
  const struct {
    LinearCase c;
    int64_t budget;
  } cases[] = {
      {{5, 3, 7, DType::kF32}, 1},       {{37, 29, 45, DType::kF32}, 200},  {{37, 29, 45, DType::kF32}, 1000},
      {{37, 29, 45, DType::kF32}, 5000}, {{20, 41, 64, DType::kQ8_0}, 300}, {{20, 41, 64, DType::kQ4_0}, 1000},
      {{19, 23, 50, DType::kBF16}, 120},
  };
  for (const auto& c : cases) check_fast_vs_ref(c.c, pool, c.budget);
}

TEST(GradLinear, BestFollowsDsvl2Isa) {
  const char* old = std::getenv("DSVL2_ISA");
  const std::string saved = old ? old : "";
  setenv("DSVL2_ISA", "scalar", 1);
  EXPECT_EQ(&grad_kernels_best(), &grad_kernels_ref());
  unsetenv("DSVL2_ISA");
  EXPECT_EQ(&grad_kernels_best(), &grad_kernels_fast());
  if (old) setenv("DSVL2_ISA", saved.c_str(), 1);
}

// ---------------------------------------------------------------- norms and activations

VecD layer_norm_d(const VecD& x, const VecD& gamma, const VecD& beta, int64_t M, int64_t D, double eps) {
  VecD y(x.size());
  for (int64_t m = 0; m < M; m++) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < D; i++) mean += x[size_t(m * D + i)] / double(D);
    for (int64_t i = 0; i < D; i++) var += std::pow(x[size_t(m * D + i)] - mean, 2) / double(D);
    for (int64_t i = 0; i < D; i++)
      y[size_t(m * D + i)] = (x[size_t(m * D + i)] - mean) / std::sqrt(var + eps) * gamma[size_t(i)] + beta[size_t(i)];
  }
  return y;
}

VecD rms_norm_d(const VecD& x, const VecD& gamma, int64_t M, int64_t D, double eps) {
  VecD y(x.size());
  for (int64_t m = 0; m < M; m++) {
    double ss = 0;
    for (int64_t i = 0; i < D; i++) ss += x[size_t(m * D + i)] * x[size_t(m * D + i)];
    const double inv = 1 / std::sqrt(ss / double(D) + eps);
    for (int64_t i = 0; i < D; i++) y[size_t(m * D + i)] = x[size_t(m * D + i)] * inv * gamma[size_t(i)];
  }
  return y;
}

TEST(GradNorm, LayerNormMatchesFiniteDifferences) {
  const int64_t M = 3, D = 37;
  const float eps = 1e-5f;
  Vec x = randn(size_t(M * D), 21, 2.f);
  for (auto& v : x) v += 0.5f;  // a mean away from zero
  const Vec gamma = randn(size_t(D), 22), beta = randn(size_t(D), 23), r = randn(size_t(M * D), 24);
  VecD xd = to_d(x), gd = to_d(gamma), bd = to_d(beta), rd = to_d(r);
  Vec y(x.size());
  kernels_ref().layer_norm(x.data(), M, D, gamma.data(), beta.data(), eps, y.data());
  ASSERT_LT(rel_err(y, layer_norm_d(xd, gd, bd, M, D, eps)), 1e-5);
  auto loss = [&] { return dot_d(rd, layer_norm_d(xd, gd, bd, M, D, eps)); };
  const Vec dx0 = randn(x.size(), 25), dg0 = randn(size_t(D), 26), db0 = randn(size_t(D), 27);
  Vec dx = dx0, dg = dg0, db = db0;
  layer_norm_backward(x.data(), r.data(), M, D, gamma.data(), eps, dx.data(), dg.data(), db.data());
  EXPECT_LT(rel_err(dx, fd_grad(xd, loss), dx0), kTol);
  EXPECT_LT(rel_err(dg, fd_grad(gd, loss), dg0), kTol);
  EXPECT_LT(rel_err(db, fd_grad(bd, loss), db0), kTol);
  Vec dx_only = dx0, dg_only = dg0;  // each output is optional
  layer_norm_backward(x.data(), r.data(), M, D, gamma.data(), eps, dx_only.data(), nullptr, nullptr);
  layer_norm_backward(x.data(), r.data(), M, D, gamma.data(), eps, nullptr, dg_only.data(), nullptr);
  EXPECT_EQ(dx_only, dx);
  EXPECT_EQ(dg_only, dg);
}

TEST(GradNorm, RmsNormMatchesFiniteDifferences) {
  const int64_t M = 4, D = 37;
  const float eps = 1e-6f;
  const Vec x = randn(size_t(M * D), 31, 1.5f), gamma = randn(size_t(D), 32), r = randn(size_t(M * D), 33);
  VecD xd = to_d(x), gd = to_d(gamma), rd = to_d(r);
  Vec y(x.size());
  kernels_ref().rms_norm(x.data(), M, D, gamma.data(), eps, y.data());
  ASSERT_LT(rel_err(y, rms_norm_d(xd, gd, M, D, eps)), 1e-5);
  auto loss = [&] { return dot_d(rd, rms_norm_d(xd, gd, M, D, eps)); };
  const Vec dx0 = randn(x.size(), 34), dg0 = randn(size_t(D), 35);
  Vec dx = dx0, dg = dg0, dx_only = dx0;
  rms_norm_backward(x.data(), r.data(), M, D, gamma.data(), eps, dx.data(), dg.data());
  rms_norm_backward(x.data(), r.data(), M, D, gamma.data(), eps, dx_only.data(), nullptr);
  EXPECT_LT(rel_err(dx, fd_grad(xd, loss), dx0), kTol);
  EXPECT_LT(rel_err(dg, fd_grad(gd, loss), dg0), kTol);
  EXPECT_EQ(dx_only, dx);
}

// One element-wise function: the kernel's forward (in place, f32) against the
// double one, then the backward against finite differences of the double one.
void check_elementwise(void (*fwd)(float*, int64_t), double (*fwd_d)(double),
                       void (*bwd)(const float*, const float*, float*, int64_t)) {
  const int64_t n = 37;
  Vec x = randn(size_t(n), 41, 3.f);
  x[0] = 0.f, x[1] = -8.f, x[2] = 8.f;  // tails where the derivative saturates
  const Vec r = randn(size_t(n), 42);
  VecD xd = to_d(x), rd = to_d(r);
  Vec y = x;
  fwd(y.data(), n);
  VecD yd(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) yd[size_t(i)] = fwd_d(xd[size_t(i)]);
  ASSERT_LT(rel_err(y, yd), 1e-6);
  auto loss = [&] {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += rd[size_t(i)] * fwd_d(xd[size_t(i)]);
    return s;
  };
  Vec dx(size_t(n), 123.f);  // written (=), not added
  bwd(x.data(), r.data(), dx.data(), n);
  EXPECT_LT(rel_err(dx, fd_grad(xd, loss)), kTol);
}

double gelu_tanh_d(double v) { return 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))); }
double gelu_erf_d(double v) { return 0.5 * v * (1 + std::erf(v / std::sqrt(2.0))); }

TEST(GradActivation, GeluTanhMatchesFiniteDifferences) {
  check_elementwise(kernels_ref().gelu_tanh, gelu_tanh_d, gelu_tanh_backward);
}

TEST(GradActivation, GeluErfMatchesFiniteDifferences) {
  check_elementwise(kernels_ref().gelu_erf, gelu_erf_d, gelu_erf_backward);
}

TEST(GradActivation, SiluMulMatchesFiniteDifferences) {
  const int64_t n = 37;
  const Vec g = randn(size_t(n), 51, 3.f), u = randn(size_t(n), 52), r = randn(size_t(n), 53);
  VecD gd = to_d(g), ud = to_d(u), rd = to_d(r);
  auto fwd_d = [&] {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += rd[size_t(i)] * gd[size_t(i)] / (1 + std::exp(-gd[size_t(i)])) * ud[size_t(i)];
    return s;
  };
  Vec y = g;
  kernels_ref().silu_mul(y.data(), u.data(), n);
  double sy = 0;
  for (int64_t i = 0; i < n; i++) sy += r[size_t(i)] * double(y[size_t(i)]);
  ASSERT_NEAR(sy, fwd_d(), 1e-5 * (1 + std::fabs(sy)));
  Vec dg(size_t(n), 123.f), du(size_t(n), 123.f);
  silu_mul_backward(g.data(), u.data(), r.data(), dg.data(), du.data(), n);
  EXPECT_LT(rel_err(dg, fd_grad(gd, fwd_d)), kTol);
  EXPECT_LT(rel_err(du, fd_grad(ud, fwd_d)), kTol);
}

// ---------------------------------------------------------------- cross-entropy

double cross_entropy_d(const VecD& l, int64_t T, int64_t V, const std::vector<int32_t>& target) {
  double total = 0;
  int n = 0;
  for (int64_t t = 0; t < T; t++) {
    if (target[size_t(t)] < 0) continue;
    double mx = -INFINITY, s = 0;
    for (int64_t v = 0; v < V; v++) mx = std::max(mx, l[size_t(t * V + v)]);
    for (int64_t v = 0; v < V; v++) s += std::exp(l[size_t(t * V + v)] - mx);
    total += mx + std::log(s) - l[size_t(t * V + target[size_t(t)])];
    n++;
  }
  return n ? total / n : 0.0;
}

TEST(GradCrossEntropy, MatchesFiniteDifferencesAndIgnoresNegativeTargets) {
  const int64_t T = 6, V = 37;
  const std::vector<int32_t> target = {3, -100, 0, 36, -1, 17};
  Vec logits = randn(size_t(T * V), 61, 3.f);
  for (int64_t v = 0; v < V; v++) logits[size_t(3 * V + v)] += 500.f;  // a shifted row: log-sum-exp must not overflow
  const float scale = 0.7f;
  VecD ld = to_d(logits);
  // The double loss against the forward kernel's softmax.
  Vec p = logits;
  kernels_ref().softmax_rows(p.data(), T, V);
  double lf = 0;
  for (int64_t t : {0, 2, 3, 5}) lf -= std::log(double(p[size_t(t * V + target[size_t(t)])])) / 4;
  ASSERT_NEAR(lf, cross_entropy_d(ld, T, V, target), 1e-5);

  Vec d(size_t(T * V), 123.f);  // written (=) everywhere, ignored rows included
  const double loss = cross_entropy(logits.data(), T, V, target.data(), scale, d.data());
  EXPECT_NEAR(loss, cross_entropy_d(ld, T, V, target), 1e-9);
  EXPECT_EQ(cross_entropy(logits.data(), T, V, target.data(), scale, nullptr), loss);
  const VecD fd = fd_grad(ld, [&] { return scale * cross_entropy_d(ld, T, V, target); });
  EXPECT_LT(rel_err(d, fd), kTol);
  for (int64_t v = 0; v < V; v++) {
    EXPECT_EQ(d[size_t(1 * V + v)], 0.f);
    EXPECT_EQ(d[size_t(4 * V + v)], 0.f);
  }
}

TEST(GradCrossEntropy, AllIgnoredGivesZero) {
  const int64_t T = 3, V = 5;
  const std::vector<int32_t> target = {-100, -100, -7};
  const Vec logits = randn(size_t(T * V), 71);
  Vec d(size_t(T * V), 123.f);
  EXPECT_EQ(cross_entropy(logits.data(), T, V, target.data(), 1.f, d.data()), 0.0);
  for (float v : d) EXPECT_EQ(v, 0.f);
  EXPECT_EQ(cross_entropy(logits.data(), 0, V, target.data(), 1.f, d.data()), 0.0);
  const std::vector<int32_t> bad = {0, 5, 1};  // 5 is outside V
  EXPECT_THROW(cross_entropy(logits.data(), T, V, bad.data(), 1.f, d.data()), Error);
}

}  // namespace
}  // namespace dsvl2
