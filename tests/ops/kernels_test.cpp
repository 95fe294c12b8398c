// Every SIMD KernelTable entry of every ISA this CPU runs, against the scalar
// reference (kernels_ref), on awkward shapes: sizes that are not multiples of
// the vector width or of the register/cache blocks, M = 1 (decode), odd K,
// both numeric modes, with and without bias. Outputs sit between sentinels to
// catch out-of-bounds writes.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

constexpr float kSentinel = -12345.678f;
constexpr int64_t kPad = 37;  // sentinel floats before and after every output

using test::simd_tables;

#define FOR_EACH_SIMD(t)                                                   \
  auto tables_ = simd_tables();                                            \
  if (tables_.empty()) GTEST_SKIP() << "no SIMD kernels for this CPU";      \
  for (const KernelTable* t : tables_)

using test::randn;

// An output buffer with sentinels on both sides.
struct Guarded {
  std::vector<float> buf;
  explicit Guarded(int64_t n) : buf(size_t(n + 2 * kPad), kSentinel) {}
  float* data() { return buf.data() + kPad; }
  bool guards_intact() const {
    for (int64_t i = 0; i < kPad; i++)
      if (buf[i] != kSentinel || buf[buf.size() - 1 - i] != kSentinel) return false;
    return true;
  }
};

// ---------------------------------------------------------------- matmul

struct MatmulCase {
  int64_t M, N, K;
};

// Covers: M=1..5 (small-M dot path), tails of the 12-row tile, N tails of the
// 32-column panel and of 8-panel groups (> 256 columns), K odd / below one
// vector / across the K blocks (256 f32, 1152 bf16), few panels (rows split
// across threads).
const MatmulCase kMatmulCases[] = {
    {1, 1, 1},     {1, 17, 3},    {2, 33, 31},   {3, 31, 17},     {4, 64, 64},    {5, 100, 33},
    {13, 3, 257},  {17, 257, 100}, {31, 33, 1},  {33, 17, 2},     {64, 300, 520}, {100, 64, 257},
    {12, 32, 512}, {24, 64, 256}, {25, 65, 257}, {7, 1000, 300},  {1, 129, 1030}, {3, 5, 1039},
    {129, 600, 1030}, {40, 96, 1},    {20, 70, 2333}, {6, 37, 300},  {7, 9, 1025},
};

struct WeightStore {
  std::vector<float> f32;      // values as the kernels must see them (exact)
  std::vector<uint16_t> half;  // BF16 / F16 storage
  Weight w;
};

WeightStore make_weight(DType dt, int64_t N, int64_t K, uint32_t seed) {
  WeightStore s;
  s.f32 = randn(size_t(N * K), seed, 0.5f);
  if (dt == DType::kBF16) {
    s.half.resize(s.f32.size());
    for (size_t i = 0; i < s.f32.size(); i++) s.f32[i] = bf16_to_f32(s.half[i] = f32_to_bf16(s.f32[i]));
    s.w = Weight{dt, N, K, s.half.data()};
  } else if (dt == DType::kF16) {
    s.half.resize(s.f32.size());
    for (size_t i = 0; i < s.f32.size(); i++) s.f32[i] = f16_to_f32(s.half[i] = f32_to_f16(s.f32[i]));
    s.w = Weight{dt, N, K, s.half.data()};
  } else {
    s.w = Weight{dt, N, K, s.f32.data()};
  }
  return s;
}

// Runs one case on every table in `tables` against one reference result.
// prepared: the weight goes through Ops::prepare for prepared_for first (a
// packed form made for kBF16 must serve kBF16 and give kF32's results too).
void check_matmul(const std::vector<const KernelTable*>& tables, const MatmulCase& mc, DType dt, Compute c,
                  bool with_bias, ThreadPool& pool, bool prepared = false, Compute prepared_for = Compute::kBF16) {
  const int64_t M = mc.M, N = mc.N, K = mc.K;
  std::vector<float> x = randn(size_t(M * K), uint32_t(M * 131 + K));
  WeightStore ws = make_weight(dt, N, K, uint32_t(N * 7 + K));
  std::vector<float> bias = randn(size_t(N), 99);
  const float* b = with_bias ? bias.data() : nullptr;
  Guarded ref(M * N);
  kernels_ref().matmul(x.data(), M, ws.w, b, ref.data(), c, pool);
  // Tolerance: f32 summation-order noise, bounded by K * eps * sum|x_k w_k|.
  // 1e-5 covers K up to ~1000 with margin for blocked partial sums (and for
  // vdpbf16ps, whose products are exact; it only differs in summation order).
  std::vector<double> mag(size_t(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      double s = with_bias ? std::fabs(bias[n]) : 0.0;
      for (int64_t k = 0; k < K; k++) {
        const float xv = c == Compute::kBF16 ? round_bf16(x[m * K + k]) : x[m * K + k];
        s += std::fabs(double(xv) * ws.f32[n * K + k]);
      }
      mag[m * N + n] = s;
    }
  for (const KernelTable* t : tables) {
    SCOPED_TRACE(testing::Message() << isa_name(t->isa) << " M=" << M << " N=" << N << " K=" << K << " "
                                    << dtype_name(dt) << " compute=" << compute_name(c) << " bias=" << with_bias
                                    << " prepared=" << prepared);
    Tensor storage;
    const Weight w = prepared ? Ops{t, &pool, prepared_for}.prepare(ws.w, &storage) : ws.w;
    if (prepared && dt == DType::kBF16 && (t->isa == Isa::kAvx2 || prepared_for == Compute::kBF16)) {
      ASSERT_NE(w.packed, nullptr);
    }
    Guarded got(M * N);
    t->matmul(x.data(), M, w, b, got.data(), c, pool);
    ASSERT_TRUE(got.guards_intact()) << "write outside y";
    for (int64_t i = 0; i < M * N; i++) {
      const float r = ref.data()[i], g = got.data()[i];
      ASSERT_LE(std::fabs(double(r) - g), 1e-5 * mag[i] + 1e-30) << "at m=" << i / N << " n=" << i % N << " ref=" << r;
    }
  }
}

TEST(Kernels, MatmulMatchesReference) {
  ThreadPool pool(2);
  const auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "no SIMD kernels for this CPU";
  for (const MatmulCase& mc : kMatmulCases)
    for (DType dt : {DType::kF32, DType::kBF16, DType::kF16})
      for (Compute c : {Compute::kF32, Compute::kBF16})
        for (bool bias : {false, true}) check_matmul(tables, mc, dt, c, bias, pool);
}

TEST(Kernels, MatmulPreparedWeightsMatchReference) {
  // Ops::prepare repacks once (SIMD tables, BF16 weights, kBF16); the packed form
  // then serves every M, including the decode rows that otherwise read W rows.
  ThreadPool pool(2);
  const auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "no SIMD kernels for this CPU";
  for (const MatmulCase& mc : {MatmulCase{1, 70, 1030}, MatmulCase{2, 33, 31}, MatmulCase{3, 5, 2333},
                               MatmulCase{5, 100, 33}, MatmulCase{64, 300, 520}, MatmulCase{17, 257, 1},
                               MatmulCase{7, 64, 1280}, MatmulCase{12, 40, 2400}})
    for (DType dt : {DType::kBF16, DType::kF16})
      for (Compute c : {Compute::kBF16, Compute::kF32}) check_matmul(tables, mc, dt, c, true, pool, true);
  // f32 mode: AVX-512's bf16 pairs would round the activations, so it has no
  // packed form there; AVX2's panels widen exactly and serve it.
  for (const MatmulCase& mc : {MatmulCase{1, 70, 1030}, MatmulCase{3, 5, 2333}, MatmulCase{64, 300, 520}})
    check_matmul(tables, mc, DType::kBF16, Compute::kF32, true, pool, true, Compute::kF32);
  Tensor unused;
  WeightStore ws = make_weight(DType::kBF16, 8, 8, 1);
  for (const KernelTable* t : tables) {
    const Weight f32_prepared = Ops{t, &pool, Compute::kF32}.prepare(ws.w, &unused);
    if (t->isa == Isa::kAvx512) {
      EXPECT_EQ(f32_prepared.packed, nullptr) << "AVX-512: f32 mode has no packed form";
    } else {
      EXPECT_NE(f32_prepared.packed, nullptr) << "AVX2: the bf16 panels serve f32 mode";
    }
  }
}

TEST(Kernels, MatmulUnevenThreadSplits) {
  // Three threads: column and row ranges that do not divide evenly.
  ThreadPool pool(3);
  const auto tables = simd_tables();
  if (tables.empty()) GTEST_SKIP() << "no SIMD kernels for this CPU";
  for (const MatmulCase& mc : {MatmulCase{50, 70, 90}, MatmulCase{130, 250, 70}, MatmulCase{2, 11, 40}})
    for (Compute c : {Compute::kF32, Compute::kBF16}) check_matmul(tables, mc, DType::kBF16, c, true, pool);
}

TEST(Kernels, MatmulBf16ModeMatchesF32Closely) {
  // The fast mode against the exact one: only the activation rounding
  // (relative 2^-9 per element) separates them.
  ThreadPool pool(2);
  const int64_t M = 37, N = 70, K = 300;
  std::vector<float> x = randn(size_t(M * K), 5);
  WeightStore ws = make_weight(DType::kBF16, N, K, 6);
  FOR_EACH_SIMD(t) {
    std::vector<float> a(size_t(M * N)), b(size_t(M * N));
    t->matmul(x.data(), M, ws.w, nullptr, a.data(), Compute::kF32, pool);
    t->matmul(x.data(), M, ws.w, nullptr, b.data(), Compute::kBF16, pool);
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); i++) {
      num += (a[i] - b[i]) * double(a[i] - b[i]);
      den += double(a[i]) * a[i];
    }
    EXPECT_LT(num / den, 1e-4) << isa_name(t->isa);  // normalised MSE; ~(2^-9)^2/3 expected
    EXPECT_GT(num / den, 0.0) << isa_name(t->isa) << ": bf16 mode did not round";
  }
}

TEST(Kernels, MatmulRejectsUnsupportedDtype) {
  // A dtype the model should never pass is an invariant failure, as in the reference.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ThreadPool pool(1);
  std::vector<int8_t> q(16);
  Weight w{DType::kI8, 4, 4, q.data()};
  float x[4] = {}, y[4];
  FOR_EACH_SIMD(t) { EXPECT_DEATH(t->matmul(x, 1, w, nullptr, y, Compute::kF32, pool), "unsupported weight dtype"); }
}

// ---------------------------------------------------------------- norms

TEST(Kernels, NormsMatchReference) {
  FOR_EACH_SIMD(t) {
    for (int64_t D : {1, 7, 16, 33, 1152, 1281}) {
      for (int64_t M : {1, 3}) {
        SCOPED_TRACE(testing::Message() << isa_name(t->isa) << " M=" << M << " D=" << D);
        std::vector<float> x = randn(size_t(M * D), uint32_t(D), 3.f);
        for (int64_t i = 0; i < M * D; i++) x[i] += 2.f;  // nonzero mean
        std::vector<float> g = randn(size_t(D), 1), b = randn(size_t(D), 2);
        for (bool with_beta : {false, true}) {
          Guarded r(M * D), o(M * D);
          kernels_ref().layer_norm(x.data(), M, D, g.data(), with_beta ? b.data() : nullptr, 1e-6f, r.data());
          t->layer_norm(x.data(), M, D, g.data(), with_beta ? b.data() : nullptr, 1e-6f, o.data());
          ASSERT_TRUE(o.guards_intact());
          // Means/variances in double on both sides; the rest is a few roundings.
          for (int64_t i = 0; i < M * D; i++) ASSERT_NEAR(o.data()[i], r.data()[i], 2e-6 * (1 + std::fabs(r.data()[i])));
        }
        Guarded r(M * D), o(M * D);
        kernels_ref().rms_norm(x.data(), M, D, g.data(), 1e-6f, r.data());
        t->rms_norm(x.data(), M, D, g.data(), 1e-6f, o.data());
        ASSERT_TRUE(o.guards_intact());
        for (int64_t i = 0; i < M * D; i++) ASSERT_NEAR(o.data()[i], r.data()[i], 2e-6 * (1 + std::fabs(r.data()[i])));
      }
    }
  }
}

// ---------------------------------------------------------------- activations

std::vector<float> activation_inputs(int64_t n) {
  std::vector<float> v = randn(size_t(n), uint32_t(n), 4.f);
  const float special[] = {0.f, -0.f, 1e-20f, -1e-20f, 30.f, -30.f, 100.f, -100.f, 1e4f, -1e4f, 0.5f, -3.f};
  for (size_t i = 0; i < v.size() && i < std::size(special); i++) v[i * 7 % v.size()] = special[i];
  return v;
}

TEST(Kernels, ActivationsMatchReference) {
  FOR_EACH_SIMD(t) {
    for (int64_t n : {1, 15, 16, 17, 100, 1000}) {
      SCOPED_TRACE(testing::Message() << isa_name(t->isa) << " n=" << n);
      const std::vector<float> x = activation_inputs(n);
      // The reference itself carries ~|x| * 6e-8 absolute error in its
      // 1 + tanh / 1 + erf terms, hence a tolerance scaled by |x|.
      auto near = [&](const std::vector<float>& r, const std::vector<float>& o, const char* what) {
        for (int64_t i = 0; i < n; i++) {
          const double tol = 1e-6 * (std::fabs(x[i]) + std::fabs(r[i])) + 1e-30;
          ASSERT_LE(std::fabs(double(o[i]) - r[i]), tol) << what << " x=" << x[i] << " ref=" << r[i];
        }
      };
      std::vector<float> r = x, o = x;
      kernels_ref().gelu_tanh(r.data(), n);
      t->gelu_tanh(o.data(), n);
      near(r, o, "gelu_tanh");
      r = x, o = x;
      kernels_ref().gelu_erf(r.data(), n);
      t->gelu_erf(o.data(), n);
      near(r, o, "gelu_erf");
      const std::vector<float> up = randn(size_t(n), 3);
      r = x, o = x;
      kernels_ref().silu_mul(r.data(), up.data(), n);
      t->silu_mul(o.data(), up.data(), n);
      for (int64_t i = 0; i < n; i++)
        ASSERT_LE(std::fabs(double(o[i]) - r[i]), 1e-6 * std::fabs(x[i] * up[i]) + 1e-30) << "silu_mul x=" << x[i];
    }
  }
}

TEST(Kernels, SoftmaxRowsMatchReference) {
  FOR_EACH_SIMD(t) {
    for (int64_t cols : {1, 5, 16, 17, 729, 1000}) {
      const int64_t rows = 3;
      std::vector<float> x = randn(size_t(rows * cols), uint32_t(cols), 5.f);
      if (cols > 1) x[1] = -INFINITY;  // a masked entry (a fully masked row is NaN in the reference too)
      Guarded r(rows * cols), o(rows * cols);
      std::memcpy(r.data(), x.data(), x.size() * 4);
      std::memcpy(o.data(), x.data(), x.size() * 4);
      kernels_ref().softmax_rows(r.data(), rows, cols);
      t->softmax_rows(o.data(), rows, cols);
      ASSERT_TRUE(o.guards_intact());
      for (int64_t i = 0; i < rows * cols; i++)
        ASSERT_NEAR(o.data()[i], r.data()[i], 2e-6 * r.data()[i] + 1e-9) << isa_name(t->isa) << " cols=" << cols;
    }
  }
}

// ---------------------------------------------------------------- attention

struct AttnCase {
  int T, S, H, Hkv, Dk, Dv;
  bool causal;
  int q_pos0;
};

// T < 16 takes the per-query path, larger T the query-tiled one; q_pos0 > 0
// with causal is a prefill continuing a cache; Hkv < H is GQA, Hkv = 1 MQA.
const AttnCase kAttnCases[] = {
    {1, 1, 1, 1, 8, 8, false, 0},     {5, 7, 4, 2, 16, 16, true, 2},     {33, 33, 3, 1, 72, 72, false, 0},
    {17, 40, 4, 4, 20, 12, true, 23}, {50, 50, 2, 1, 64, 64, true, 0},   {1, 100, 8, 1, 40, 32, true, 99},
    {3, 70, 4, 2, 33, 17, true, 67},  {100, 129, 4, 4, 72, 72, false, 0}, {70, 70, 2, 2, 5, 3, true, 0},
    {40, 90, 6, 3, 24, 40, true, 50}, {16, 16, 1, 1, 16, 16, false, 0},
};

void check_attention(const KernelTable& t, const AttnCase& c, ThreadPool& pool) {
  SCOPED_TRACE(testing::Message() << isa_name(t.isa) << " T=" << c.T << " S=" << c.S << " H=" << c.H
                                  << " Hkv=" << c.Hkv << " Dk=" << c.Dk << " Dv=" << c.Dv << " causal=" << c.causal
                                  << " q_pos0=" << c.q_pos0);
  // Padded strides: heads and rows are not packed, to catch stride mistakes.
  AttentionArgs a;
  a.T = c.T, a.S = c.S, a.H = c.H, a.Hkv = c.Hkv, a.Dk = c.Dk, a.Dv = c.Dv;
  a.causal = c.causal, a.q_pos0 = c.q_pos0, a.scale = 1.f / std::sqrt(float(c.Dk));
  a.q_stride_h = c.Dk + 3, a.q_stride_t = c.H * a.q_stride_h + 5;
  a.k_stride_h = c.Dk + 1, a.k_stride_s = c.Hkv * a.k_stride_h + 2;
  a.v_stride_h = c.Dv + 2, a.v_stride_s = c.Hkv * a.v_stride_h + 1;
  a.o_stride_h = c.Dv + 2, a.o_stride_t = c.H * a.o_stride_h + 3;
  std::vector<float> q = randn(size_t(c.T * a.q_stride_t), 11, 1.5f);
  std::vector<float> k = randn(size_t(c.S * a.k_stride_s), 12, 1.5f);
  std::vector<float> v = randn(size_t(c.S * a.v_stride_s), 13);
  a.q = q.data(), a.k = k.data(), a.v = v.data();
  const int64_t on = int64_t(c.T) * a.o_stride_t;
  Guarded r(on), o(on);
  a.out = r.data();
  kernels_ref().attention(a, pool);
  a.out = o.data();
  t.attention(a, pool);
  ASSERT_TRUE(o.guards_intact());
  double vmax = 0;
  for (float x : v) vmax = std::max(vmax, double(std::fabs(x)));
  for (int tq = 0; tq < c.T; tq++)
    for (int h = 0; h < c.H; h++) {
      for (int d = 0; d < a.o_stride_h; d++) {
        const int64_t i = tq * a.o_stride_t + h * a.o_stride_h + d;
        if (d >= c.Dv) {  // stride gap: must stay untouched
          ASSERT_EQ(o.data()[i], kSentinel) << "write into stride gap t=" << tq << " h=" << h;
          continue;
        }
        // Outputs are convex combinations of v rows: error relative to max|v|
        // (exp polynomial ~1 ulp, f32 sums in a different order).
        ASSERT_NEAR(o.data()[i], r.data()[i], 2e-6 * vmax) << "t=" << tq << " h=" << h << " d=" << d;
      }
    }
}

TEST(Kernels, AttentionMatchesReference) {
  ThreadPool pool(2);
  FOR_EACH_SIMD(t) {
    for (const AttnCase& c : kAttnCases) check_attention(*t, c, pool);
  }
}

TEST(Kernels, BestTableIsUsable) {
  const KernelTable& t = kernels_best();
  EXPECT_NE(t.matmul, nullptr);
  EXPECT_NE(t.attention, nullptr);
}

}  // namespace
}  // namespace dsvl2
