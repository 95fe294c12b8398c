// Q8_0 / Q4_0: ggml block layouts, quantization error bounds, and the VNNI matmul
// against the scalar reference (identical integer block sums; only the f32
// accumulation order differs). IQ4_NL joins the matmul cases that loop over
// block types; its own tests are in quant_iq4_nl_test.cpp.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "ops/ops.h"
#include "ops/quant.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using test::randn;

TEST(Quant, Q8_0BlockMatchesHandComputedValues) {
  float x[32] = {};
  x[0] = 1.27f, x[1] = -0.635f, x[2] = 0.01f, x[31] = -1.27f;
  BlockQ8_0 b;
  quantize_q8_0(x, 32, &b);
  EXPECT_FLOAT_EQ(f16_to_f32(b.d), f16_to_f32(f32_to_f16(0.01f)));  // max|x| / 127
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], -64);  // -63.5 rounds away from zero, as roundf
  EXPECT_EQ(b.qs[2], 1);
  EXPECT_EQ(b.qs[3], 0);
  EXPECT_EQ(b.qs[31], -127);
  // Byte layout: f16 scale first, then the 32 int8 (ggml block_q8_0).
  uint8_t raw[34];
  std::memcpy(raw, &b, 34);
  EXPECT_EQ(raw[2], uint8_t(127));
  EXPECT_EQ(raw[33], uint8_t(-127 & 0xff));
  float zero[32] = {};
  quantize_q8_0(zero, 32, &b);
  EXPECT_EQ(f16_to_f32(b.d), 0.f);
  for (int8_t q : b.qs) EXPECT_EQ(q, 0);
}

TEST(Quant, Q8_0RoundTripWithinHalfStep) {
  const int64_t n = 32 * 40;
  std::vector<float> x = randn(size_t(n), 1, 3.f);
  std::vector<float> back(static_cast<size_t>(n));
  std::vector<BlockQ8_0> q(size_t(n / 32));
  quantize_q8_0(x.data(), n, q.data());
  dequantize_q8_0(q.data(), n, back.data());
  for (int64_t b = 0; b < n / 32; b++) {
    const float d = f16_to_f32(q[b].d);
    for (int i = 0; i < 32; i++) {
      const int64_t j = b * 32 + i;
      // Half a quantization step, plus the f16 rounding of d (2^-11 relative) times 127.
      EXPECT_LE(std::fabs(back[j] - x[j]), 0.5f * d + 127.f * d * 0x1p-11f + 1e-7f) << j;
    }
  }
  EXPECT_THROW(quantize_q8_0(x.data(), 33, q.data()), Error);
}

TEST(Quant, MatmulQ8_0MatchesReference) {
  ThreadPool pool(2);
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 32}, {1, 70, 1280}, {3, 5, 96}, {17, 33, 64},
                         {64, 100, 896}, {2, 7, 32 * 33}}) {
    SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K);
    std::vector<float> x = randn(size_t(M * K), uint32_t(K)), wf = randn(size_t(N * K), uint32_t(N), 0.2f);
    std::vector<BlockQ8_0> w(size_t(N * K / 32));
    quantize_q8_0(wf.data(), N * K, w.data());
    w[0].qs[0] = -128;  // legal in a ggml file though the quantizer never writes it
    std::vector<float> wq(wf.size());  // the weights the kernels actually see
    dequantize_q8_0(w.data(), N * K, wq.data());
    std::vector<float> bias = randn(size_t(N), 7), ref(size_t(M * N)), got(size_t(M * N) + 1, -7.f);
    matmul_q8_0_ref(x.data(), M, w.data(), N, K, bias.data(), ref.data(), pool);
    matmul_q8_0(x.data(), M, w.data(), N, K, bias.data(), got.data(), pool);
    EXPECT_EQ(got[size_t(M * N)], -7.f) << "write past y";
    // Integer block sums are exact on both sides; the f32 sum of K/32 block
    // terms differs only in order: bound by nblocks * eps * sum|terms|.
    std::vector<BlockQ8_0> xq(size_t(K / 32));
    for (int64_t m = 0; m < M; m++) {
      quantize_q8_0(x.data() + m * K, K, xq.data());
      for (int64_t n = 0; n < N; n++) {
        double mag = std::fabs(bias[n]);
        for (int64_t b = 0; b < K / 32; b++) {
          int32_t s = 0;
          for (int i = 0; i < 32; i++) s += int32_t(w[n * K / 32 + b].qs[i]) * xq[b].qs[i];
          mag += std::fabs(double(s) * f16_to_f32(w[n * K / 32 + b].d) * f16_to_f32(xq[b].d));
        }
        ASSERT_NEAR(got[m * N + n], ref[m * N + n], 1e-6 * mag * double(K / 32 + 1)) << "m=" << m << " n=" << n;
      }
    }
    // Against f32 activations times the same weights: the activation
    // quantization error stays small (normalised MSE; ~3e-5 expected).
    double num = 0, den = 0;
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) {
        double e = 0;
        for (int64_t k = 0; k < K; k++) e += double(x[m * K + k]) * wq[n * K + k];
        e += bias[n];
        num += (e - got[m * N + n]) * (e - got[m * N + n]);
        den += e * e;
      }
    EXPECT_LT(num / den, 1e-3);
  }
  std::vector<float> x(40), y(1);
  std::vector<BlockQ8_0> w(2);
  EXPECT_THROW(matmul_q8_0(x.data(), 1, w.data(), 1, 40, nullptr, y.data(), pool), Error);
}

TEST(Quant, KernelTablesTakeQ8_0Weights) {
  // Ops::linear on a DType::kQ8_0 Weight: every table, both modes, the int8 path.
  ThreadPool pool(2);
  const int64_t M = 5, N = 37, K = 96;
  std::vector<float> x = randn(size_t(M * K), 1), wf = randn(size_t(N * K), 2, 0.3f), bias = randn(size_t(N), 3);
  std::vector<BlockQ8_0> w(size_t(N * K / 32));
  quantize_q8_0(wf.data(), N * K, w.data());
  std::vector<float> ref(size_t(M * N)), got(size_t(M * N));
  matmul_q8_0_ref(x.data(), M, w.data(), N, K, bias.data(), ref.data(), pool);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    const KernelTable* t = kernels_for(isa);
    if (!t) continue;
    for (Compute c : {Compute::kF32, Compute::kBF16}) {
      Ops{t, &pool, c}.linear(x.data(), M, Weight{DType::kQ8_0, N, K, w.data()}, bias.data(), got.data());
      for (int64_t i = 0; i < M * N; i++) ASSERT_NEAR(got[i], ref[i], 1e-4 * (1 + std::fabs(ref[i]))) << isa_name(isa);
    }
  }
}

TEST(Quant, Q4_0BlockMatchesGgmlRounding) {
  float x[32] = {};
  x[0] = -1.6f;  // largest magnitude: d = -1.6 / -8 = 0.2
  x[1] = 0.7f, x[2] = 1.6f, x[16] = 0.1f, x[31] = -0.3f;
  BlockQ4_0 b;
  quantize_q4_0(x, 32, &b);
  EXPECT_FLOAT_EQ(f16_to_f32(b.d), f16_to_f32(f32_to_f16(0.2f)));
  EXPECT_EQ(b.qs[0] & 0x0f, 0);    // -1.6 * 5 + 8.5 = 0.5 -> 0
  EXPECT_EQ(b.qs[1] & 0x0f, 12);   // 0.7 * 5 + 8.5 = 12
  EXPECT_EQ(b.qs[2] & 0x0f, 15);   // 16.5 -> 16, clamped to 15
  EXPECT_EQ(b.qs[3] & 0x0f, 8);    // zero
  EXPECT_EQ(b.qs[0] >> 4, 9);      // element 16: 0.5 + 8.5 = 9
  EXPECT_EQ(b.qs[15] >> 4, 7);     // element 31: -1.5 + 8.5 = 7
  uint8_t raw[18];
  std::memcpy(raw, &b, 18);
  EXPECT_EQ(raw[2], b.qs[0]);  // f16 scale first, then the 16 bytes (ggml block_q4_0)
  float back[32];
  dequantize_q4_0(&b, 32, back);
  EXPECT_NEAR(back[0], -1.6f, 1e-3f);
  EXPECT_NEAR(back[2], 1.4f, 1e-3f);  // the clamp: 7 steps, not 8
  EXPECT_NEAR(back[16], 0.2f, 1e-3f);
  EXPECT_THROW(quantize_q4_0(x, 31, &b), Error);
}

TEST(Quant, Q4_0RoundTripWithinOneStep) {
  const int64_t n = 32 * 50;
  std::vector<float> x = randn(size_t(n), 5, 2.f), back(static_cast<size_t>(n));
  std::vector<BlockQ4_0> q(size_t(n / 32));
  quantize_q4_0(x.data(), n, q.data());
  dequantize_q4_0(q.data(), n, back.data());
  for (int64_t b = 0; b < n / 32; b++) {
    const float d = std::fabs(f16_to_f32(q[b].d));
    for (int i = 0; i < 32; i++) EXPECT_LE(std::fabs(back[b * 32 + i] - x[b * 32 + i]), d * 1.01f + 1e-6f);
  }
}

// Every block type through the fast kernel (prepared once, or split per call)
// against the scalar reference: identical integer block sums, f32 order aside.
// The K values give every block-group tail of the split layout (groups of 16
// blocks, then 8, 4 and 2: K / 32 = 1, 3, 20, 28, 30, 33, 40).
TEST(Quant, MatmulQuantMatchesReferencePreparedOrNot) {
  ThreadPool pool(2);
  const std::vector<const KernelTable*> fast_tables = test::simd_tables();
  for (DType dt : {DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL})
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 32}, {1, 70, 1280}, {2, 9, 32 * 33},
                           {3, 5, 96}, {5, 37, 64}, {17, 33, 640}, {64, 13, 896}, {2, 11, 32 * 30}}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " M=" << M << " N=" << N << " K=" << K);
      std::vector<float> x = randn(size_t(M * K), uint32_t(K + M)), wf = randn(size_t(N * K), uint32_t(N), 0.2f);
      std::vector<uint8_t> w(size_t(N * K / 32) * dtype_block_bytes(dt));
      quantize_blocks(dt, wf.data(), N * K, w.data());
      const Weight wt{dt, N, K, w.data()};
      std::vector<float> bias = randn(size_t(N), 7), ref(size_t(M * N)), got(size_t(M * N) + 1, -7.f);
      matmul_quant_ref(x.data(), M, wt, bias.data(), ref.data(), pool);
      auto check = [&](const char* what) {
        EXPECT_EQ(got[size_t(M * N)], -7.f) << "write past y";
        for (int64_t i = 0; i < M * N; i++)
          ASSERT_NEAR(got[size_t(i)], ref[size_t(i)], 2e-5 * (1 + std::fabs(ref[size_t(i)])) * std::sqrt(double(K)))
              << what << " at " << i;
      };
      matmul_quant(x.data(), M, wt, bias.data(), got.data(), pool);
      check("unprepared");
      for (const KernelTable* fast : fast_tables) {
        SCOPED_TRACE(isa_name(fast->isa));
        Tensor storage;
        const Weight prepared = Ops{fast, &pool, Compute::kBF16}.prepare(wt, &storage);
        EXPECT_NE(prepared.packed, nullptr);
        std::fill(got.begin(), got.end() - 1, 0.f);
        // The int8 numerics at every M in either mode (AVX-512's prompt GEMM in
        // both modes is tested below).
        Ops{fast, &pool, Compute::kF32}.linear(x.data(), M, prepared, bias.data(), got.data());
        check("prepared");
        // The packed form alone (a fused weight keeps no source view).
        Weight packed_only = prepared;
        packed_only.data = nullptr;
        std::fill(got.begin(), got.end() - 1, 0.f);
        Ops{fast, &pool, Compute::kF32}.linear(x.data(), M, packed_only, bias.data(), got.data());
        check("prepared, no source view");
        // The scalar table ignores the packed form and reads the blocks.
        Ops{&kernels_ref(), &pool, Compute::kF32}.linear(x.data(), M, prepared, bias.data(), got.data());
        check("reference table on a prepared weight");
      }
    }
}

// The fast kernels quantize activations themselves (vectorized): the one
// matmul_quant picks and, on every AVX2 CPU, the AVX2 one called directly.
// Against one-hot weights (d = 1) each output is one activation quant times
// its scale, so any rounding difference from quantize_q8_0 (ties away from
// zero) shows exactly.
TEST(Quant, FastActivationQuantizationEqualsReference) {
  ThreadPool pool(2);
  const int64_t K = 96, N = K;
  std::vector<float> x = randn(size_t(K), 9, 2.f);
  const float ties[] = {127.f, 2.5f, -2.5f, 0.5f, -0.5f, 1.4999999f, 126.5f, -126.5f, 0.f, -0.f, 3.5f, -1e-9f};
  std::copy(std::begin(ties), std::end(ties), x.begin());  // block 0: d = 1, id = 1
  x[40] = -50.f;
  x[41] = 25.f;  // block 1: ties at 127 * 25 / 50 = 63.5
  x[42] = -25.f;
  using Kernel = void (*)(const float*, int64_t, const Weight&, const float*, float*, ThreadPool&);
  std::vector<std::pair<const char*, Kernel>> kernels = {{"matmul_quant", matmul_quant}};
  if (kernels_for(Isa::kAvx2)) kernels.push_back({"avx2::matmul_quant", avx2::matmul_quant});
  for (const auto& [name, kernel] : kernels)
    for (DType dt : {DType::kQ8_0, DType::kQ4_0}) {
      SCOPED_TRACE(std::string(name) + " " + dtype_name(dt));
      std::vector<float> eye(size_t(N * K), 0.f);
      for (int64_t i = 0; i < N; i++) eye[size_t(i * K + i)] = dt == DType::kQ8_0 ? 127.f : -8.f;
      std::vector<uint8_t> w(size_t(N * K / 32) * dtype_block_bytes(dt));
      quantize_blocks(dt, eye.data(), N * K, w.data());  // q = 127 (Q8_0) / -8 (Q4_0), d = 1
      std::vector<float> ref(static_cast<size_t>(N)), got(static_cast<size_t>(N));
      matmul_quant_ref(x.data(), 1, Weight{dt, N, K, w.data()}, nullptr, ref.data(), pool);
      kernel(x.data(), 1, Weight{dt, N, K, w.data()}, nullptr, got.data(), pool);
      for (int64_t i = 0; i < N; i++) EXPECT_EQ(got[size_t(i)], ref[size_t(i)]) << "element " << i;
      EXPECT_EQ(ref[1], (dt == DType::kQ8_0 ? 127.f : -8.f) * 3.f);  // 2.5 rounds away from zero
      EXPECT_EQ(got[41], -got[42]);  // 63.5 and -63.5: away from zero both ways
    }
}

// Prompt-sized M (avx512::kPromptRows and up) runs the prompt GEMM, which
// repacks the split layout into column panels per call: in both modes it keeps
// the int8 numerics of the reference, and every row equals that row run alone
// through the matrix-vector kernel (batched and single sequences agree).
// Shapes: N not a multiple of the 32-column panel, M not of the 6-row tile, K
// across K blocks of 1024 with and without tail groups, an odd block count.
TEST(Quant, PromptRowsKeepTheInt8NumericsInBothModes) {
  const KernelTable* fast = kernels_for(Isa::kAvx512);
  if (!fast) GTEST_SKIP() << "no AVX-512 kernels on this CPU";
  ThreadPool pool(2);
  for (DType dt : {DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL})
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{avx512::kPromptRows, 33, 64}, {40, 70, 1280},
                           {100, 37, 32 * 37}, {31, 5, 32 * 30}, {25, 64, 2560}, {29, 40, 96}}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " M=" << M << " N=" << N << " K=" << K);
      std::vector<float> x = randn(size_t(M * K), 3), wf = randn(size_t(N * K), 4, 0.2f), bias = randn(size_t(N), 5);
      std::vector<uint8_t> w(size_t(N * K / 32) * dtype_block_bytes(dt));
      quantize_blocks(dt, wf.data(), N * K, w.data());
      std::vector<float> ref(size_t(M * N));
      matmul_quant_ref(x.data(), M, Weight{dt, N, K, w.data()}, bias.data(), ref.data(), pool);
      // Prepared, the weight's source bytes are not read (a model drops its
      // mapped pages): poison them after packing.
      std::vector<uint8_t> source = w;
      Tensor storage;
      const Weight prepared = Ops{fast, &pool, Compute::kBF16}.prepare(Weight{dt, N, K, source.data()}, &storage);
      std::fill(source.begin(), source.end(), uint8_t(0x7f));
      for (Compute c : {Compute::kBF16, Compute::kF32}) {
        SCOPED_TRACE(compute_name(c));
        const Ops ops{fast, &pool, c};
        std::vector<float> got(size_t(M * N) + 1, -7.f), got_prepared(size_t(M * N)), row(static_cast<size_t>(N));
        ops.linear(x.data(), M, Weight{dt, N, K, w.data()}, bias.data(), got.data());
        ops.linear(x.data(), M, prepared, bias.data(), got_prepared.data());
        EXPECT_EQ(got[size_t(M * N)], -7.f) << "write past y";
        got.pop_back();
        EXPECT_EQ(got, got_prepared);
        for (int64_t m = 0; m < M; m++) {
          ops.linear(x.data() + m * K, 1, prepared, bias.data(), row.data());
          for (int64_t n = 0; n < N; n++) {
            const float want = ref[size_t(m * N + n)], tol = 2e-5f * (1 + std::fabs(want)) * std::sqrt(float(K));
            ASSERT_NEAR(got[size_t(m * N + n)], want, tol) << "m=" << m << " n=" << n;
            ASSERT_NEAR(got[size_t(m * N + n)], row[size_t(n)], tol) << "alone: m=" << m << " n=" << n;
          }
        }
      }
    }
}

// The AVX2 kernel called directly (AVX-512 machines use their own kernel
// through matmul_quant): every block type against the reference, M across the
// three-row tile's tails, N across the two-row tile's and the 16-row chunk's,
// a Q8_0 weight of -128; each row equals the row run alone (batches agree with
// single sequences), and the layout prepared at load gives the same bits as
// the blocks read in place (block counts across its 8-block groups' tails).
// Its ties: FastActivationQuantizationEqualsReference.
TEST(Quant, Avx2KernelEqualsReference) {
  if (!kernels_for(Isa::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU";
  ThreadPool pool(2);
  for (DType dt : {DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL})
    for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 32}, {1, 70, 1280}, {2, 17, 32 * 33},
                           {4, 33, 96}, {5, 16, 64}, {7, 31, 640}, {48, 45, 896}, {3, 7, 32 * 15}}) {
      SCOPED_TRACE(testing::Message() << dtype_name(dt) << " M=" << M << " N=" << N << " K=" << K);
      std::vector<float> x = randn(size_t(M * K), uint32_t(K + M), 2.f), wf = randn(size_t(N * K), uint32_t(N), 0.2f);
      std::vector<uint8_t> w(size_t(N * K / 32) * dtype_block_bytes(dt));
      quantize_blocks(dt, wf.data(), N * K, w.data());
      if (dt == DType::kQ8_0) reinterpret_cast<BlockQ8_0*>(w.data())[0].qs[3] = -128;
      const Weight wt{dt, N, K, w.data()};
      std::vector<float> bias = randn(size_t(N), 7), ref(size_t(M * N)), got(size_t(M * N) + 1, -7.f);
      std::vector<float> row(static_cast<size_t>(N));
      matmul_quant_ref(x.data(), M, wt, bias.data(), ref.data(), pool);
      avx2::matmul_quant(x.data(), M, wt, bias.data(), got.data(), pool);
      EXPECT_EQ(got[size_t(M * N)], -7.f) << "write past y";
      // Prepared: the source is not read (the weight keeps no view of it).
      Weight prepared;
      Tensor packed(DType::kU8, {int64_t(avx2::prepare_quant(wt, nullptr, nullptr))});
      ASSERT_GT(packed.numel(), 0);
      avx2::prepare_quant(wt, packed.data(), &prepared);
      prepared.data = nullptr;
      std::vector<float> got_prepared(size_t(M * N));
      avx2::matmul_quant(x.data(), M, prepared, bias.data(), got_prepared.data(), pool);
      for (int64_t i = 0; i < M * N; i++) ASSERT_EQ(got_prepared[size_t(i)], got[size_t(i)]) << "prepared, at " << i;
      for (int64_t m = 0; m < M; m++) {
        avx2::matmul_quant(x.data() + m * K, 1, wt, bias.data(), row.data(), pool);
        for (int64_t n = 0; n < N; n++) {
          const float want = ref[size_t(m * N + n)];
          ASSERT_NEAR(got[size_t(m * N + n)], want, 2e-5 * (1 + std::fabs(want)) * std::sqrt(double(K)))
              << "m=" << m << " n=" << n;
          ASSERT_EQ(got[size_t(m * N + n)], row[size_t(n)]) << "alone: m=" << m << " n=" << n;
        }
      }
    }
}

}  // namespace
}  // namespace dsvl2
