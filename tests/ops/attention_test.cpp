// Attention's two storage/compute options against the f32 reference, in every
// kernel table this CPU runs (scalar, AVX2, AVX-512):
//   * bf16 K/V storage (AttentionArgs::k_bf16 / v_bf16): exactly the f32
//     result on the bf16-rounded K/V values, bit for bit within a table;
//   * bf16 compute (AttentionArgs::compute = kBF16): the AVX-512 bf16
//     dot-product kernel within bf16 rounding of the f32 reference; every
//     other table and path computes exactly as kF32.
// Shapes cover both AVX-512 paths (T < 16 per query, T >= 16 tiled), causal
// prefill continuing a cache (q_pos0 > 0), GQA, MQA and the MLA absorbed form
// (Hkv = 1, Dk != Dv, v reading the first Dv elements of k's rows), odd sizes
// and padded strides whose gaps must stay untouched.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "ops/ops.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

constexpr float kSentinel = -12345.678f;
constexpr int64_t kPad = 37;

using test::all_tables;

using test::randn;

struct Case {
  int T, S, H, Hkv, Dk, Dv;
  bool causal;
  int q_pos0;
  bool mla = false;    // v aliases the first Dv elements of k's row (Hkv = 1)
  float q_scale = 1.5f;  // larger: sharper softmax
  float bf16_tol = 1.f;  // bf16 compute tolerances scaled by this
};

std::string name(const Case& c) {
  return "T=" + std::to_string(c.T) + " S=" + std::to_string(c.S) + " H=" + std::to_string(c.H) +
         " Hkv=" + std::to_string(c.Hkv) + " Dk=" + std::to_string(c.Dk) + " Dv=" + std::to_string(c.Dv) +
         (c.causal ? " causal q_pos0=" + std::to_string(c.q_pos0) : "") + (c.mla ? " mla" : "");
}

// Inputs with padded strides; K/V also as bf16 bits, and k/v hold exactly the
// values the bf16 bits stand for (rounded) so both storages mean the same.
struct Data {
  AttentionArgs a;
  std::vector<float> q, k, v;
  std::vector<uint16_t> k16, v16;
  std::vector<float> out;  // with kPad sentinels either side
  bool mla = false;

  explicit Data(const Case& c) : mla(c.mla) {
    a.T = c.T, a.S = c.S, a.H = c.H, a.Hkv = c.Hkv, a.Dk = c.Dk, a.Dv = c.Dv;
    a.causal = c.causal, a.q_pos0 = c.q_pos0, a.scale = 1.f / std::sqrt(float(c.Dk));
    a.q_stride_h = c.Dk + 3, a.q_stride_t = c.H * a.q_stride_h + 5;
    if (c.mla) {  // one cache row per position: [c | k_pe], values = c
      a.k_stride_h = a.v_stride_h = 0;
      a.k_stride_s = a.v_stride_s = c.Dk + 2;
    } else {
      a.k_stride_h = c.Dk + 1, a.k_stride_s = c.Hkv * a.k_stride_h + 2;
      a.v_stride_h = c.Dv + 2, a.v_stride_s = c.Hkv * a.v_stride_h + 1;
    }
    a.o_stride_h = c.Dv + 2, a.o_stride_t = c.H * a.o_stride_h + 3;
    q = randn(size_t(c.T * a.q_stride_t), 11, c.q_scale);
    k = randn(size_t(c.S * a.k_stride_s), 12, 1.5f);
    v = randn(size_t(c.S * a.v_stride_s), 13, 1.f);
    k16.resize(k.size()), v16.resize(v.size());
    f32_to_bf16_row(k.data(), int64_t(k.size()), k16.data());
    f32_to_bf16_row(v.data(), int64_t(v.size()), v16.data());
    bf16_to_f32_row(k16.data(), int64_t(k.size()), k.data());
    bf16_to_f32_row(v16.data(), int64_t(v.size()), v.data());
    out.assign(size_t(int64_t(c.T) * a.o_stride_t + 2 * kPad), kSentinel);
  }
  float vmax() const {
    float m = 0;
    for (float x : (mla ? k : v)) m = std::max(m, std::fabs(x));
    return m;
  }
  // Runs t with f32 or bf16 K/V (the other pointers null, so a kernel that
  // reads the wrong storage crashes) and returns the output with sentinels.
  std::vector<float> run(const KernelTable& t, bool bf16_kv, Compute c) {
    AttentionArgs x = a;
    x.q = q.data();
    x.compute = c;
    if (bf16_kv) {
      x.k = x.v = nullptr;
      x.k_bf16 = k16.data(), x.v_bf16 = mla ? k16.data() : v16.data();
    } else {
      x.k = k.data(), x.v = mla ? k.data() : v.data();
    }
    std::fill(out.begin(), out.end(), kSentinel);
    x.out = out.data() + kPad;
    ThreadPool pool(2);
    t.attention(x, pool);
    return out;
  }
};

// Sentinels and stride gaps untouched; returns max |got - want| over outputs
// and accumulates squared errors / squared reference values.
double compare(const Data& d, const std::vector<float>& got, const std::vector<float>& want, double* se = nullptr,
               double* sr = nullptr) {
  const AttentionArgs& a = d.a;
  for (int64_t i = 0; i < kPad; i++) {
    EXPECT_EQ(got[size_t(i)], kSentinel) << "write before the output";
    EXPECT_EQ(got[got.size() - 1 - size_t(i)], kSentinel) << "write after the output";
  }
  double worst = 0;
  for (int t = 0; t < a.T; t++)
    for (int h = 0; h < a.H; h++)
      for (int j = 0; j < a.o_stride_h; j++) {
        const size_t i = size_t(kPad + t * a.o_stride_t + h * a.o_stride_h + j);
        if (j >= a.Dv) {
          EXPECT_EQ(got[i], kSentinel) << "write into stride gap t=" << t << " h=" << h;
          continue;
        }
        const double e = std::fabs(double(got[i]) - want[i]);
        if (!(e <= worst)) worst = std::isnan(e) ? INFINITY : e;
        if (se) *se += e * e, *sr += double(want[i]) * want[i];
      }
  return worst;
}

bool bit_equal(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), x.size() * 4) == 0;
}

// T < 16 is the AVX-512 per-query path, larger T the tiled ones.
const Case kCases[] = {
    {1, 1, 1, 1, 8, 8, false, 0},        {5, 7, 4, 2, 16, 16, true, 2},     {1, 300, 8, 1, 40, 32, true, 299},
    {3, 70, 4, 2, 33, 17, true, 67},     {33, 33, 3, 1, 72, 72, false, 0},  {17, 40, 4, 4, 20, 12, true, 23},
    {50, 50, 2, 1, 64, 64, true, 0},     {100, 129, 4, 4, 72, 72, false, 0}, {70, 70, 2, 2, 5, 3, true, 0},
    {40, 90, 6, 3, 24, 40, true, 50},    {2, 517, 4, 1, 96, 80, true, 515, true}, {37, 203, 4, 1, 70, 64, true, 166, true},
    {16, 16, 1, 1, 16, 16, false, 0},
    // Prompts of more query tiles than one pass over the keys takes (the
    // last pass partial; causal tiles that stop before a pass's last block).
    {300, 300, 2, 1, 40, 24, true, 0},    {145, 210, 3, 3, 72, 72, true, 65}, {270, 270, 2, 2, 24, 24, false, 0},
    // Decode at Tiny's shape after an image prompt, and MLA's (Dv wider than
    // one register pass of the per-query form).
    {1, 1033, 10, 10, 128, 128, true, 1032}, {1, 77, 16, 1, 576, 512, true, 76, true},
};

TEST(AttentionBf16Kv, RowHelpersRoundLikeTheScalarConversion) {
  const std::vector<float> x = {1.f, -0.f, 1.00390625f, 1.01171875f, 3.4e38f, -1e-40f, INFINITY, NAN, 0.1f};
  std::vector<uint16_t> b(x.size());
  std::vector<float> back(x.size());
  f32_to_bf16_row(x.data(), int64_t(x.size()), b.data());
  bf16_to_f32_row(b.data(), int64_t(b.size()), back.data());
  for (size_t i = 0; i < x.size(); i++) {
    EXPECT_EQ(b[i], f32_to_bf16(x[i])) << i;
    const float w = bf16_to_f32(b[i]);
    EXPECT_EQ(std::memcmp(&back[i], &w, 4), 0) << i;
  }
  EXPECT_EQ(b[2], 0x3f80);  // 1 + 2^-8: a tie, to even
  EXPECT_EQ(b[3], 0x3f82);  // 1 + 3 * 2^-8: a tie, to even (up)
}

TEST(AttentionBf16Kv, SameAsF32OnTheRoundedValuesInEveryTable) {
  for (const KernelTable* t : all_tables())
    for (const Case& c : kCases) {
      SCOPED_TRACE(std::string(isa_name(t->isa)) + " " + name(c));
      Data d(c);
      const std::vector<float> want = d.run(kernels_ref(), false, Compute::kF32);
      const std::vector<float> f32 = d.run(*t, false, Compute::kF32);
      const std::vector<float> bf = d.run(*t, true, Compute::kF32);
      // Widening is exact and the arithmetic is the same: bit for bit (AVX2's
      // scalar tails may be contracted into FMAs differently by the compiler).
      if (t->isa != Isa::kAvx2) {
        EXPECT_TRUE(bit_equal(bf, f32)) << "bf16 K/V differ from the same table on f32 K/V";
      }
      EXPECT_LE(compare(d, bf, f32), 2e-6 * d.vmax());
      // Convex combinations of v rows: error relative to max|v| (the SIMD
      // kernels' exp and summation order), as kernels_test.
      EXPECT_LE(compare(d, bf, want), 2e-6 * d.vmax());
    }
}

TEST(AttentionBf16Compute, OtherTablesAndShortTComputeAsF32) {
  for (const KernelTable* t : all_tables())
    for (const Case& c : kCases) {
      if (t->isa == Isa::kAvx512 && c.T >= 16) continue;  // the bf16 kernel's case
      SCOPED_TRACE(std::string(isa_name(t->isa)) + " " + name(c));
      Data d(c);
      for (bool bf16_kv : {false, true})
        EXPECT_TRUE(bit_equal(d.run(*t, bf16_kv, Compute::kBF16), d.run(*t, bf16_kv, Compute::kF32)));
    }
}

// The bf16 dot-product kernel: shapes of the vision tower (729 tokens, head
// dim 72), of LLM prefill (64, 128, 192/128), MLA (576/512), odd T, S and Dk.
const Case kBf16Cases[] = {
    {729, 729, 2, 2, 72, 72, false, 0},  {100, 129, 4, 4, 72, 72, false, 0},  {333, 333, 2, 2, 64, 64, true, 0},
    {77, 300, 4, 2, 128, 128, true, 223}, {45, 131, 3, 3, 192, 128, true, 86}, {64, 64, 2, 1, 192, 128, false, 0},
    {40, 90, 6, 3, 24, 40, true, 50},    {70, 70, 2, 2, 5, 3, true, 0},       {33, 47, 3, 1, 33, 17, false, 0},
    {16, 16, 1, 1, 16, 16, false, 0},    {37, 203, 4, 1, 70, 64, true, 166, true},
    {48, 260, 4, 1, 576, 512, true, 212, true},
    {129, 257, 2, 2, 72, 72, false, 0, false, 6.f, 3.f},  // sharp softmax: scores up to ~100
};

TEST(AttentionBf16Compute, Avx512WithinBf16RoundingOfTheF32Reference) {
  const KernelTable* t = kernels_for(Isa::kAvx512);
  if (!t) GTEST_SKIP() << "no AVX-512 BF16 on this CPU";
  for (const Case& c : kBf16Cases)
    for (bool bf16_kv : {false, true}) {
      SCOPED_TRACE(name(c) + (bf16_kv ? " bf16 K/V" : " f32 K/V"));
      Data d(c);
      const std::vector<float> want = d.run(kernels_ref(), false, Compute::kF32);
      const std::vector<float> got = d.run(*t, bf16_kv, Compute::kBF16);
      double se = 0, sr = 0;
      const double worst = compare(d, got, want, &se, &sr);
      // q, k, v and the softmax weights each carry a relative rounding of up
      // to 2^-9, and a score's error grows with its size. Measured (seeds
      // fixed): worst <= 4e-3 max|v| and RMS ratio <= 3e-3, except the sharp
      // case: 1e-2 and 4.5e-3. Tolerances are ~2x that.
      EXPECT_LE(worst, 8e-3 * c.bf16_tol * d.vmax());
      EXPECT_LE(std::sqrt(se / sr), 6e-3 * c.bf16_tol);
      EXPECT_GT(worst, 0.0) << "identical to f32: the bf16 kernel did not run";
    }
}

}  // namespace
}  // namespace dsvl2
