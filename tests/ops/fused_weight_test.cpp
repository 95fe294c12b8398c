// FusedWeight (ops/prepack.h): matrices that multiply the same input packed as
// one. The fused product must give, column for column, exactly what each
// part prepared on its own gives, for decode-sized and prompt-sized M, in
// every weight type that has a packed form; other Ops must fall back to the
// parts; groups that cannot be stacked are prepared part by part.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "core/dtype.h"
#include "ops/ops.h"
#include "ops/prepack.h"
#include "ops/quant.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

// A [rows, K] matrix of normal values stored as dtype (bf16 bits or blocks).
struct Stored {
  std::vector<uint8_t> bytes;
  Weight w;
  Stored(DType dt, int64_t rows, int64_t K, uint32_t seed) {
    const std::vector<float> f = test::randn(size_t(rows * K), seed, 0.05f);
    uint64_t n = 0;
    EXPECT_TRUE(dtype_bytes(dt, rows * K, &n));
    bytes.resize(size_t(n));
    if (dt == DType::kBF16) {
      auto* b = reinterpret_cast<uint16_t*>(bytes.data());
      for (size_t i = 0; i < f.size(); i++) b[i] = f32_to_bf16(f[i]);
    } else {
      quantize_blocks(dt, f.data(), rows * K, bytes.data());
    }
    w = Weight{dt, rows, K, bytes.data()};
  }
};


void equals_the_parts_prepared_alone(const KernelTable* t, DType dt) {
  ThreadPool pool(2);
  const int64_t K = 320;
  // q / k / v-like widths, one not a multiple of the 32-column panels.
  Stored a(dt, 96, K, 1), b(dt, 40, K, 2), c(dt, 72, K, 3);
  Stored a1(dt, 96, K, 1), b1(dt, 40, K, 2), c1(dt, 72, K, 3);  // prepared alone
  for (Compute mode : {Compute::kBF16, Compute::kF32}) {
    const Ops ops{t, &pool, mode};
    if (ops.prepared_bytes(a.w) == 0) continue;  // e.g. BF16 weights in f32 mode
    SCOPED_TRACE(testing::Message() << dtype_name(dt) << " " << compute_name(mode));
    Weight pa = a.w, pb = b.w, pc = c.w;
    Weight qa = a1.w, qb = b1.w, qc = c1.w;
    FusedWeight fused;
    std::set<const void*> released;
    auto release = [&](const void* p, size_t) { released.insert(p); };
    auto arena = prepack_weights({&pa, &pb, &pc}, {FuseGroup{{&pa, &pb, &pc}, &fused}}, ops, release, nullptr);
    auto alone = prepack_weights({&qa, &qb, &qc}, ops, {}, nullptr);
    ASSERT_TRUE(fused.usable(ops));
    EXPECT_EQ(fused.w.rows, 96 + 40 + 72);
    EXPECT_EQ(fused.w.data, nullptr) << "only the packed copy may be read";
    EXPECT_EQ(pa.packed, nullptr) << "a fused part keeps its source view";
    EXPECT_EQ(released, (std::set<const void*>{a.w.data, b.w.data, c.w.data}));
    for (int64_t M : {1, 3, 40}) {
      SCOPED_TRACE(testing::Message() << "M=" << M);
      const std::vector<float> x = test::randn(size_t(M * K), 9);
      std::vector<float> ya(size_t(M * 96)), yb(size_t(M * 40)), yc(size_t(M * 72));
      linear_parts(ops, x.data(), M, fused, {&pa, &pb, &pc}, {ya.data(), yb.data(), yc.data()});
      for (auto [w, y] : {std::pair{&qa, &ya}, std::pair{&qb, &yb}, std::pair{&qc, &yc}}) {
        std::vector<float> want(y->size());
        ops.linear(x.data(), M, *w, nullptr, want.data());
        ASSERT_EQ(std::memcmp(want.data(), y->data(), want.size() * sizeof(float)), 0);
      }
      // Another table or mode reads the parts' source views instead.
      const Ops other{&kernels_ref(), &pool, mode};
      ASSERT_FALSE(fused.usable(other));
      std::vector<float> ra(ya.size()), rb(yb.size()), rc(yc.size()), want(ya.size());
      linear_parts(other, x.data(), M, fused, {&pa, &pb, &pc}, {ra.data(), rb.data(), rc.data()});
      other.linear(x.data(), M, a.w, nullptr, want.data());
      ASSERT_EQ(std::memcmp(want.data(), ra.data(), want.size() * sizeof(float)), 0);
    }
  }
}

class FusedWeightTest : public ::testing::TestWithParam<DType> {};

TEST_P(FusedWeightTest, EqualsThePartsPreparedAlone) {
  const auto tables = test::simd_tables();  // each has packed weights
  if (tables.empty()) GTEST_SKIP() << "no kernel table with packed weights on this CPU";
  for (const KernelTable* t : tables) {
    SCOPED_TRACE(isa_name(t->isa));
    equals_the_parts_prepared_alone(t, GetParam());
  }
}

INSTANTIATE_TEST_SUITE_P(Types, FusedWeightTest,
                         ::testing::Values(DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kIQ4_NL),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

void parts_that_do_not_stack_are_prepared_alone(const KernelTable* t) {
  ThreadPool pool(2);
  const Ops ops{t, &pool, Compute::kBF16};
  Stored a(DType::kQ8_0, 64, 256, 1), b(DType::kBF16, 64, 256, 2), c(DType::kQ8_0, 64, 128, 3);
  Weight pa = a.w, pb = b.w, pc = c.w;
  FusedWeight mixed, narrow;
  auto arena = prepack_weights({&pa, &pb, &pc}, {FuseGroup{{&pa, &pb}, &mixed}, FuseGroup{{&pa, &pc}, &narrow}},
                               ops, {}, nullptr);
  EXPECT_FALSE(mixed.usable(ops)) << "dtypes differ";
  EXPECT_FALSE(narrow.usable(ops)) << "widths differ";
  EXPECT_NE(pa.packed, nullptr);
  EXPECT_NE(pb.packed, nullptr);
  EXPECT_NE(pc.packed, nullptr);
  // linear_parts then runs each part.
  const std::vector<float> x = test::randn(256, 4);
  std::vector<float> ya(64), yb(64), want(64);
  linear_parts(ops, x.data(), 1, mixed, {&pa, &pb}, {ya.data(), yb.data()});
  ops.linear(x.data(), 1, pb, nullptr, want.data());
  EXPECT_EQ(std::memcmp(want.data(), yb.data(), sizeof(float) * 64), 0);
}

TEST(FusedWeight, PartsThatDoNotStackArePreparedAlone) {
  const auto tables = test::simd_tables();
  if (tables.empty()) GTEST_SKIP() << "no kernel table with packed weights on this CPU";
  for (const KernelTable* t : tables) {
    SCOPED_TRACE(isa_name(t->isa));
    parts_that_do_not_stack_are_prepared_alone(t);
  }
}

}  // namespace
}  // namespace dsvl2
