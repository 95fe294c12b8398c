// IQ4_NL (ggml type 20): the block layout, the quantizer against bytes that
// llama.cpp's quantize_iq4_nl wrote, its scale search, and the matmul: the
// scalar reference against plain integer arithmetic, the AVX-512 VNNI kernel
// against the reference (identical integer sums, checked exactly on data
// whose every partial sum is an integer below 2^24; f32 rounding otherwise).
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

float grid_value(const BlockIQ4_NL& b, int j) {
  const int q = j < 16 ? b.qs[j] & 0x0f : b.qs[j - 16] >> 4;
  return float(kIQ4NLGrid[q]);
}

TEST(Iq4Nl, BlockLayoutIsGgmls) {
  BlockIQ4_NL b;
  b.d = f32_to_f16(0.5f);
  for (int j = 0; j < 16; j++) b.qs[j] = uint8_t(j | (15 - j) << 4);
  float out[32];
  dequantize_iq4_nl(&b, 32, out);
  for (int j = 0; j < 16; j++) {
    EXPECT_EQ(out[j], 0.5f * kIQ4NLGrid[j]) << j;            // element j: low nibble of byte j
    EXPECT_EQ(out[j + 16], 0.5f * kIQ4NLGrid[15 - j]) << j;  // element j + 16: its high nibble
  }
  EXPECT_EQ(out[0], -63.5f);
  EXPECT_EQ(out[16], 56.5f);
  uint8_t raw[18];
  std::memcpy(raw, &b, 18);  // f16 scale first, then the 16 bytes (ggml block_iq4_nl)
  EXPECT_EQ(raw[0] | raw[1] << 8, 0x3800);
  EXPECT_EQ(raw[2], 0xf0);
  EXPECT_EQ(dtype_block_bytes(DType::kIQ4_NL), 18u);
  EXPECT_EQ(dtype_block_elems(DType::kIQ4_NL), 32);
  EXPECT_STREQ(dtype_name(DType::kIQ4_NL), "IQ4_NL");
  EXPECT_THROW(dequantize_iq4_nl(&b, 31, out), Error);
}

// Six blocks of different shapes, in plain integer arithmetic (no libm), and
// the bytes llama.cpp's quantize_iq4_nl (ggml-quants.c at c392e509, no
// imatrix: what llama-quantize writes for IQ4_NL) produced from them.
TEST(Iq4Nl, QuantizerWritesLlamaCppsBytes) {
  float x[192];
  uint32_t h = 12345;
  auto next = [&] {
    h = h * 1664525u + 1013904223u;
    return int((h >> 16) % 1001) - 500;
  };
  for (int i = 0; i < 32; i++) x[i] = float(next() + next() + next()) / 300.f;  // bell-shaped
  for (int i = 32; i < 64; i++) x[i] = float(next()) / 1000.f;                   // uniform
  x[32 + 5] = -4.f;                                                              // one spike
  for (int i = 64; i < 96; i++) x[i] = float(next() % 5) * 0.25f;                // few values: ties
  for (int i = 96; i < 128; i++) x[i] = 1e3f + float(next());                    // all positive, large
  for (int i = 128; i < 160; i++) x[i] = 0.f;                                    // zero block
  for (int i = 160; i < 192; i++) x[i] = float(next()) * 1e-19f;                 // under ggml's GROUP_MAX_EPS
  const uint8_t expected[6][18] = {
      {0x47, 0x26, 0xe3, 0xe8, 0xf7, 0x59, 0xcc, 0xec, 0x83, 0xbc, 0x1b, 0xcb, 0x44, 0x80, 0x12, 0x06, 0x18, 0x49},
      {0x08, 0x28, 0x77, 0x87, 0x89, 0x98, 0x89, 0x70, 0x78, 0x88, 0x79, 0x79, 0x89, 0x97, 0x87, 0x98, 0x79, 0x97},
      {0x55, 0x20, 0xe5, 0x85, 0xe5, 0x53, 0x85, 0x8c, 0xac, 0x82, 0xea, 0xc5, 0xf5, 0x85, 0x83, 0xf3, 0xee, 0x30},
      // A negative scale: the grid's long end (-127) fits the large values.
      {0x95, 0xc9, 0x03, 0x14, 0x10, 0x04, 0x22, 0x23, 0x13, 0x20, 0x04, 0x33, 0x13, 0x02, 0x00, 0x21, 0x22, 0x22},
      // d = 0, every index 8 (the grid's 1, nearest to 0): ggml's bytes for an all-zero block.
      {0x00, 0x00, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88},
      {0x00, 0x00, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88},
  };
  BlockIQ4_NL b[6];
  quantize_blocks(DType::kIQ4_NL, x, 192, b);
  for (int k = 0; k < 6; k++) {
    uint8_t got[18];
    std::memcpy(got, &b[k], 18);
    for (int i = 0; i < 18; i++) EXPECT_EQ(int(got[i]), int(expected[k][i])) << "block " << k << " byte " << i;
  }
  EXPECT_THROW(quantize_iq4_nl(x, 33, b), Error);
}

// The nearest grid index by a plain scan, with ggml's choice between two
// neighbours (`v - lo < hi - v`, else the upper one).
int nearest_index(float v) {
  if (v <= kIQ4NLGrid[0]) return 0;
  if (v >= kIQ4NLGrid[15]) return 15;
  int hi = 1;
  while (float(kIQ4NLGrid[hi]) <= v) hi++;
  return v - float(kIQ4NLGrid[hi - 1]) < float(kIQ4NLGrid[hi]) - v ? hi - 1 : hi;
}

// The stored block fits at least as well (error weighted by x^2, as ggml's
// search measures it) as the best of the 16 candidate roundings, each with its
// own least-squares scale, up to the f16 rounding of d (coarse for the 1e-3
// blocks, whose d falls in f16's subnormal range: up to 1.4% measured).
TEST(Iq4Nl, ScaleSearchKeepsTheBestCandidate) {
  const int nb = 2000;
  std::vector<float> x = randn(size_t(nb) * 32, 11);
  for (int b = 0; b < nb; b++)  // scales from 1e-3 to 1e3; every third block heavy-tailed (cubed)
    for (int j = 0; j < 32; j++) {
      float& v = x[size_t(b * 32 + j)];
      v *= (b % 3 ? 1.f : v * v) * std::pow(10.f, float(b % 7 - 3));
    }
  std::vector<BlockIQ4_NL> q(static_cast<size_t>(nb));
  quantize_iq4_nl(x.data(), int64_t(nb) * 32, q.data());
  int strictly_better_than_first = 0;
  double worst = -1;
  for (int b = 0; b < nb; b++) {
    const float* v = x.data() + b * 32;
    float amax = 0.f, max = 0.f;
    for (int j = 0; j < 32; j++)
      if (std::fabs(v[j]) > amax) amax = std::fabs(v[j]), max = v[j];
    auto weighted_error = [&](double d, auto index_of) {
      double e = 0;
      for (int j = 0; j < 32; j++) {
        const double r = v[j] - d * kIQ4NLGrid[index_of(j)];
        e += double(v[j]) * v[j] * r * r;
      }
      return e;
    };
    double best = 1e300, first = 0;
    for (int t = -8; t <= 7; t++) {  // t = -8: the first candidate, max on the grid's top
      const float id = t == -8 ? 127.f / max : float(t - 127) / max;
      double sqx = 0, sq2 = 0;
      for (int j = 0; j < 32; j++) {
        const double g = kIQ4NLGrid[nearest_index(id * v[j])];
        sqx += double(v[j]) * v[j] * g * v[j];
        sq2 += double(v[j]) * v[j] * g * g;
      }
      const double d = sqx / sq2;
      const double e = weighted_error(d, [&](int j) { return nearest_index(id * v[j]); });
      if (t == -8) first = e;
      best = std::min(best, e);
    }
    const BlockIQ4_NL& blk = q[size_t(b)];
    const double got = weighted_error(f16_to_f32(blk.d), [&](int j) {
      return j < 16 ? blk.qs[j] & 0x0f : blk.qs[j - 16] >> 4;
    });
    double wsum = 0;
    for (int j = 0; j < 32; j++) wsum += double(v[j]) * v[j] * v[j] * v[j];
    worst = std::max(worst, (got - best) / best);
    ASSERT_LE(got, best * 1.03 + wsum * 1e-6) << "block " << b;
    strictly_better_than_first += got < first * 0.999;
  }
  std::printf("worst (stored - best candidate) / best: %.2g; %d of %d blocks beat the first candidate\n", worst,
              strictly_better_than_first, nb);
  // The search matters: most blocks beat the plain max-on-the-top fit.
  EXPECT_GT(strictly_better_than_first, nb / 2);
}

// On normal data IQ4_NL's error is well below Q4_0's at the same 4.5 bits a
// weight (measured: relative MSE 0.78x Q4_0's), and every element lies
// within a bounded distance of its block's largest value.
TEST(Iq4Nl, RoundTripBeatsQ4_0) {
  const int64_t n = 32 * 4000;
  std::vector<float> x = randn(size_t(n), 5, 2.f), back(static_cast<size_t>(n)), back4(static_cast<size_t>(n));
  std::vector<uint8_t> q(size_t(n / 32) * 18), q4(size_t(n / 32) * 18);
  quantize_blocks(DType::kIQ4_NL, x.data(), n, q.data());
  dequantize_blocks(DType::kIQ4_NL, q.data(), n, back.data());
  quantize_blocks(DType::kQ4_0, x.data(), n, q4.data());
  dequantize_blocks(DType::kQ4_0, q4.data(), n, back4.data());
  double e = 0, e4 = 0, ss = 0;
  for (int64_t b = 0; b < n / 32; b++) {
    float amax = 0.f;
    for (int i = 0; i < 32; i++) amax = std::max(amax, std::fabs(x[size_t(b * 32 + i)]));
    for (int i = 0; i < 32; i++) {
      const size_t k = size_t(b * 32 + i);
      // The widest grid step is 24 of 127 + 113 (in units of d), ~0.1 of the range.
      ASSERT_LE(std::fabs(back[k] - x[k]), 0.12f * amax) << k;
      e += double(back[k] - x[k]) * (back[k] - x[k]);
      e4 += double(back4[k] - x[k]) * (back4[k] - x[k]);
      ss += double(x[k]) * x[k];
    }
  }
  std::printf("relative MSE: IQ4_NL %.5f, Q4_0 %.5f\n", e / ss, e4 / ss);
  EXPECT_LT(e / ss, 0.82 * (e4 / ss));
}

// Random grid indices with d = 1 and integer activations whose blocks each
// hold +-127 (so the activation scale is exactly 1 and the quants are the
// values themselves): every product and partial sum is an integer below 2^24,
// exact in f32 in any order, so outputs must equal the integer dot products.
struct ExactCase {
  std::vector<BlockIQ4_NL> w;
  std::vector<float> x, bias;
  std::vector<int64_t> expected;  // [M, N]
};
ExactCase exact_case(int64_t M, int64_t N, int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  ExactCase c;
  c.w.resize(size_t(N * K / 32));
  for (auto& b : c.w) {
    b.d = f32_to_f16(1.f);
    for (auto& q : b.qs) q = uint8_t(rng());
  }
  c.x.resize(size_t(M * K));
  for (auto& v : c.x) v = float(int(rng() % 255) - 127);
  for (int64_t i = 0; i < M * K; i += 32) c.x[size_t(i + int64_t(rng() % 32))] = rng() % 2 ? 127.f : -127.f;
  c.bias.resize(size_t(N));
  for (auto& v : c.bias) v = float(int(rng() % 201) - 100);
  c.expected.resize(size_t(M * N));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      int64_t s = int64_t(c.bias[size_t(n)]), mag = 0;
      for (int64_t k = 0; k < K; k++) {
        const int64_t p =
            int64_t(grid_value(c.w[size_t((n * K + k) / 32)], int(k % 32))) * int64_t(c.x[size_t(m * K + k)]);
        s += p;
        mag += std::abs(p);
      }
      EXPECT_LT(mag, int64_t(1) << 24) << "the case would not be exact in f32";
      c.expected[size_t(m * N + n)] = s;
    }
  return c;
}

TEST(Iq4Nl, ReferenceDotEqualsIntegerArithmetic) {
  ThreadPool pool(2);
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 32}, {3, 7, 96}, {2, 5, 896}}) {
    SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K);
    ExactCase c = exact_case(M, N, K, uint32_t(M * 100 + N + K));
    std::vector<float> y(size_t(M * N));
    matmul_quant_ref(c.x.data(), M, Weight{DType::kIQ4_NL, N, K, c.w.data()}, c.bias.data(), y.data(), pool);
    for (int64_t i = 0; i < M * N; i++) EXPECT_EQ(y[size_t(i)], float(c.expected[size_t(i)])) << i;
  }
  // General data: y = sum over blocks of d_w * d_x * (integer block sum),
  // the integer sums over ggml's Q8_0 activation quants, in f32.
  const int64_t M = 2, N = 9, K = 32 * 28;
  std::vector<float> x = randn(size_t(M * K), 3), wf = randn(size_t(N * K), 4, 0.05f);
  std::vector<BlockIQ4_NL> w(size_t(N * K / 32));
  quantize_iq4_nl(wf.data(), N * K, w.data());
  std::vector<float> y(size_t(M * N));
  matmul_quant_ref(x.data(), M, Weight{DType::kIQ4_NL, N, K, w.data()}, nullptr, y.data(), pool);
  std::vector<BlockQ8_0> xq(size_t(K / 32));
  for (int64_t m = 0; m < M; m++) {
    quantize_q8_0(x.data() + m * K, K, xq.data());
    for (int64_t n = 0; n < N; n++) {
      double e = 0, mag = 0;
      for (int64_t b = 0; b < K / 32; b++) {
        int64_t s = 0;
        for (int i = 0; i < 32; i++) s += int64_t(grid_value(w[size_t(n * K / 32 + b)], i)) * xq[size_t(b)].qs[i];
        const double t = double(s) * f16_to_f32(w[size_t(n * K / 32 + b)].d) * f16_to_f32(xq[size_t(b)].d);
        e += t;
        mag += std::fabs(t);
      }
      EXPECT_NEAR(y[size_t(m * N + n)], e, 1e-6 * mag * double(K / 32)) << "m=" << m << " n=" << n;
    }
  }
}

// The VNNI kernel, prepared at load or split per call, for M = 1..9 (both
// row-pair and single-row paths), odd N (a partial row group) and K with an
// odd number of blocks (a half chunk: 896 = 28 blocks, 32 * 33).
TEST(Iq4Nl, Avx512KernelEqualsReference) {
  const KernelTable* fast = kernels_for(Isa::kAvx512);
  if (!fast) GTEST_SKIP() << "no AVX-512 kernels on this CPU";
  ThreadPool pool(2);
  const Ops ops{fast, &pool, Compute::kF32};
  for (int64_t M = 1; M <= 9; M++)
    for (auto [N, K] : {std::pair<int64_t, int64_t>{1, 32}, {5, 96}, {37, 896}, {4, 32 * 33}, {70, 1408}, {3, 1536}}) {
      SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K);
      // Exact data: the integer sums, bit for bit.
      ExactCase c = exact_case(M, N, K, uint32_t(M * 1000 + N * 7 + K));
      const Weight w{DType::kIQ4_NL, N, K, c.w.data()};
      std::vector<float> got(size_t(M * N) + 1, -7.f), got_prepared(size_t(M * N));
      avx512::matmul_quant(c.x.data(), M, w, c.bias.data(), got.data(), pool);
      EXPECT_EQ(got[size_t(M * N)], -7.f) << "write past y";
      Tensor storage;
      const Weight prepared = ops.prepare(w, &storage);
      ASSERT_NE(prepared.packed, nullptr);
      ops.linear(c.x.data(), M, prepared, c.bias.data(), got_prepared.data());
      for (int64_t i = 0; i < M * N; i++) {
        ASSERT_EQ(got[size_t(i)], float(c.expected[size_t(i)])) << "unprepared, at " << i;
        ASSERT_EQ(got_prepared[size_t(i)], float(c.expected[size_t(i)])) << "prepared, at " << i;
      }
      // Quantized random weights and activations: the reference's value to
      // f32 rounding of the sum of block terms (bound: nblocks * eps * sum|terms|).
      std::vector<float> x = randn(size_t(M * K), uint32_t(K + M)), wf = randn(size_t(N * K), uint32_t(N), 0.2f);
      std::vector<BlockIQ4_NL> wq(size_t(N * K / 32));
      quantize_iq4_nl(wf.data(), N * K, wq.data());
      const Weight wr{DType::kIQ4_NL, N, K, wq.data()};
      std::vector<float> bias = randn(size_t(N), 7), ref(size_t(M * N)), fast_y(size_t(M * N)), fast_p(size_t(M * N));
      matmul_quant_ref(x.data(), M, wr, bias.data(), ref.data(), pool);
      avx512::matmul_quant(x.data(), M, wr, bias.data(), fast_y.data(), pool);
      Tensor storage2;
      ops.linear(x.data(), M, ops.prepare(wr, &storage2), bias.data(), fast_p.data());
      EXPECT_EQ(fast_y, fast_p) << "prepared and per-call split run the same sums in the same order";
      std::vector<BlockQ8_0> xq(size_t(K / 32));
      for (int64_t m = 0; m < M; m++) {
        quantize_q8_0(x.data() + m * K, K, xq.data());
        for (int64_t n = 0; n < N; n++) {
          double mag = std::fabs(bias[size_t(n)]);
          for (int64_t b = 0; b < K / 32; b++)
            for (int i = 0; i < 32; i++)
              mag += std::fabs(double(grid_value(wq[size_t(n * K / 32 + b)], i)) * xq[size_t(b)].qs[i] *
                               f16_to_f32(wq[size_t(n * K / 32 + b)].d) * f16_to_f32(xq[size_t(b)].d));
          ASSERT_NEAR(fast_y[size_t(m * N + n)], ref[size_t(m * N + n)], 1.2e-7 * mag * double(K / 32 + 2))
              << "m=" << m << " n=" << n;
        }
      }
    }
}

// Every kernel table and both modes take IQ4_NL weights through Ops::linear.
TEST(Iq4Nl, KernelTablesTakeIq4NlWeights) {
  ThreadPool pool(2);
  const int64_t N = 37, K = 896;
  std::vector<float> wf = randn(size_t(N * K), 2, 0.05f), bias = randn(size_t(N), 3);
  std::vector<BlockIQ4_NL> w(size_t(N * K / 32));
  quantize_iq4_nl(wf.data(), N * K, w.data());
  std::vector<float> wd(size_t(N * K));
  dequantize_iq4_nl(w.data(), N * K, wd.data());
  const Weight wt{DType::kIQ4_NL, N, K, w.data()};
  for (int64_t M : {1, 5, 40}) {
    std::vector<float> x = randn(size_t(M * K), uint32_t(M)), got(size_t(M * N));
    for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
      const KernelTable* t = kernels_for(isa);
      if (!t) continue;
      for (Compute c : {Compute::kF32, Compute::kBF16}) {
        SCOPED_TRACE(testing::Message() << isa_name(isa) << " " << compute_name(c) << " M=" << M);
        Tensor storage;
        const Ops ops{t, &pool, c};
        ops.linear(x.data(), M, ops.prepare(wt, &storage), bias.data(), got.data());
        // Against f32 activations times the dequantized weights: only the
        // activations' int8 (or bf16) rounding separates them.
        double num = 0, den = 0;
        for (int64_t m = 0; m < M; m++)
          for (int64_t n = 0; n < N; n++) {
            double e = bias[size_t(n)];
            for (int64_t k = 0; k < K; k++) e += double(x[size_t(m * K + k)]) * wd[size_t(n * K + k)];
            num += (e - got[size_t(m * N + n)]) * (e - got[size_t(m * N + n)]);
            den += e * e;
          }
        EXPECT_LT(num / den, 1e-3);
      }
    }
  }
}

}  // namespace
}  // namespace dsvl2
