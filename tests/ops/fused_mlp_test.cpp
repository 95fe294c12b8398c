// Ops::gelu_tanh_linear: the fused bf16 hand-off (gelu written as bf16 rows,
// then the bf16-row matmul) gives the very bits of gelu_tanh + matmul in kBF16
// mode, for every table (tables without the fused entries take the unfused
// path), prepared and unprepared weights, small-M and blocked shapes, odd K.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "ops/ops.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using test::all_tables;

struct Case {
  int64_t M, N, K;
};

TEST(FusedMlp, GeluLinearMatchesUnfusedBitForBit) {
  ThreadPool pool(2);
  for (const Case& c : {Case{1, 70, 33}, Case{3, 40, 1280}, Case{13, 70, 33}, Case{40, 100, 1157}, Case{29, 64, 4}}) {
    const std::vector<float> x = test::randn(size_t(c.M * c.K), 1, 2.f), wf = test::randn(size_t(c.N * c.K), 2, 0.1f);
    const std::vector<float> bias = test::randn(size_t(c.N), 3);
    std::vector<uint16_t> wb(wf.size());
    f32_to_bf16_row(wf.data(), int64_t(wf.size()), wb.data());
    const Weight raw{DType::kBF16, c.N, c.K, wb.data()};
    for (const KernelTable* t : all_tables())
      for (Compute mode : {Compute::kBF16, Compute::kF32})
        for (bool prepared : {false, true}) {
          SCOPED_TRACE(testing::Message() << isa_name(t->isa) << " M=" << c.M << " N=" << c.N << " K=" << c.K
                                          << " " << compute_name(mode) << " prepared=" << prepared);
          const Ops ops{t, &pool, mode};
          Tensor storage;
          const Weight w = prepared ? ops.prepare(raw, &storage) : raw;
          std::vector<float> g = x, want(size_t(c.M * c.N)), got(size_t(c.M * c.N), -1.f);
          t->gelu_tanh(g.data(), int64_t(g.size()));
          t->matmul(g.data(), c.M, w, bias.data(), want.data(), mode, pool);
          std::vector<float> xin = x;
          ops.gelu_tanh_linear(xin.data(), c.M, c.K, w, bias.data(), got.data());
          ASSERT_EQ(std::memcmp(want.data(), got.data(), want.size() * 4), 0);
        }
  }
}

TEST(FusedMlp, GeluRowsAreRoundedLikeTheMatmulInput) {
  const KernelTable* t = kernels_for(Isa::kAvx512);
  if (!t || !t->gelu_tanh_bf16) GTEST_SKIP() << "no fused entries on this CPU";
  ASSERT_NE(t->matmul_bf16, nullptr);
  ThreadPool pool(2);
  const int64_t M = 21, K = 37, ld = 38;
  std::vector<float> x = test::randn(size_t(M * K), 4, 3.f);
  x[5] = 0.f, x[6] = -0.f, x[7] = 1e-30f, x[8] = 60.f, x[9] = -60.f;
  std::vector<uint16_t> out(size_t(M * ld), 0xffff);
  t->gelu_tanh_bf16(x.data(), M, K, out.data(), ld, pool);
  std::vector<float> g = x;
  t->gelu_tanh(g.data(), int64_t(g.size()));
  for (int64_t m = 0; m < M; m++) {
    for (int64_t k = 0; k < K; k++) ASSERT_EQ(out[m * ld + k], f32_to_bf16(g[m * K + k])) << m << "," << k;
    EXPECT_EQ(out[m * ld + K], 0) << "the pad column is zero";
  }
}

}  // namespace
}  // namespace dsvl2
