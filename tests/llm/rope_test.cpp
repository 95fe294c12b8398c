// RoPE layouts and YaRN frequencies against direct formulas.
#include "llm/rope.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"

namespace dsvl2 {
namespace {

std::vector<float> ramp(int n, float a, float b) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) v[size_t(i)] = a + b * std::sin(1.7f * i + 0.3f);
  return v;
}

TEST(Rope, NeoxMatchesDirectFormula) {
  const int d = 8, pos = 37;
  const double theta = 10000;
  Rope r(d, theta, RopeScaling{});
  auto x = ramp(d, 0.1f, 1.f);
  auto y = x;
  r.apply(y.data(), 1, 1, d, d, pos, RopeStyle::kNeox);
  for (int i = 0; i < d / 2; i++) {
    double f = std::pow(theta, -2.0 * i / d), a = pos * f;
    EXPECT_NEAR(y[i], x[i] * std::cos(a) - x[i + d / 2] * std::sin(a), 2e-5);
    EXPECT_NEAR(y[i + d / 2], x[i + d / 2] * std::cos(a) + x[i] * std::sin(a), 2e-5);
  }
}

TEST(Rope, InterleavedRotatesAdjacentPairsIntoHalves) {
  const int d = 8, pos = 11;
  const double theta = 10000;
  Rope r(d, theta, RopeScaling{});
  auto x = ramp(d, -0.2f, 0.9f);
  auto y = x;
  r.apply(y.data(), 1, 1, d, d, pos, RopeStyle::kInterleaved);
  for (int i = 0; i < d / 2; i++) {
    double a = pos * std::pow(theta, -2.0 * i / d);
    // Official: reorder [x0,x1,x2,..] -> [x0,x2,..,x1,x3,..], then rotate_half.
    EXPECT_NEAR(y[i], x[2 * i] * std::cos(a) - x[2 * i + 1] * std::sin(a), 2e-5);
    EXPECT_NEAR(y[i + d / 2], x[2 * i + 1] * std::cos(a) + x[2 * i] * std::sin(a), 2e-5);
  }
}

TEST(Rope, ScoresDependOnlyOnRelativePosition) {
  for (RopeStyle style : {RopeStyle::kNeox, RopeStyle::kInterleaved}) {
    Rope r(16, 10000, RopeScaling{});
    auto q = ramp(16, 0.3f, 1.f), k = ramp(16, -0.1f, 0.7f);
    auto dot_at = [&](int m, int n) {
      auto a = q, b = k;
      r.apply(a.data(), 1, 1, 16, 16, m, style);
      r.apply(b.data(), 1, 1, 16, 16, n, style);
      double s = 0;
      for (int i = 0; i < 16; i++) s += double(a[i]) * b[i];
      return s;
    };
    EXPECT_NEAR(dot_at(9, 4), dot_at(105, 100), 1e-4);
  }
}

TEST(Rope, AppliesPerHeadWithStrides) {
  Rope r(4, 10000, RopeScaling{});
  // Two rows x two heads of width 6, rotating the last 4 of each head.
  std::vector<float> x(24);
  for (int i = 0; i < 24; i++) x[i] = float(i) * 0.1f;
  auto y = x;
  r.apply(y.data() + 2, 2, 2, 12, 6, 3, RopeStyle::kNeox);
  for (int t = 0; t < 2; t++)
    for (int h = 0; h < 2; h++) {
      std::vector<float> one(x.begin() + t * 12 + h * 6 + 2, x.begin() + t * 12 + h * 6 + 6);
      r.apply(one.data(), 1, 1, 4, 4, 3 + t, RopeStyle::kNeox);
      for (int i = 0; i < 4; i++) EXPECT_EQ(y[t * 12 + h * 6 + 2 + i], one[i]);
      EXPECT_EQ(y[t * 12 + h * 6], x[t * 12 + h * 6]);  // the nope part is untouched
    }
}

TEST(Rope, YarnInvFreqBlendAndMagnitude) {
  RopeScaling s;
  s.type = "yarn";
  s.factor = 40;
  s.original_max_position_embeddings = 4096;
  s.beta_fast = 32;
  s.beta_slow = 1;
  s.mscale = 0.707;
  s.mscale_all_dim = 0;  // magnitude = mscale(40, 0.707) / 1
  const int d = 64;
  const double base = 10000;
  Rope r(d, base, s);
  auto corr = [&](double rot) { return d * std::log(4096 / (rot * 2 * M_PI)) / (2 * std::log(base)); };
  double low = std::max(std::floor(corr(32)), 0.0), high = std::min(std::ceil(corr(1)), double(d - 1));
  for (int i = 0; i < d / 2; i++) {
    double extra = std::pow(base, -2.0 * i / d), inter = extra / 40;
    double m = 1 - std::clamp((i - low) / (high - low), 0.0, 1.0);
    double want = inter * (1 - m) + extra * m;
    EXPECT_NEAR(r.inv_freq()[i], want, 1e-6 * want) << i;
  }
  EXPECT_NEAR(r.magnitude(), 0.1 * 0.707 * std::log(40.0) + 1, 1e-6);
  // High frequencies keep the original value, low ones are divided by the factor.
  EXPECT_NEAR(r.inv_freq()[0], 1.f, 1e-7);
  EXPECT_NEAR(r.inv_freq()[d / 2 - 1], std::pow(base, -2.0 * (d / 2 - 1) / d) / 40, 1e-10);
  std::vector<float> c(32), sn(32);
  r.cos_sin(0, c.data(), sn.data());
  EXPECT_NEAR(c[0], r.magnitude(), 1e-6);
  EXPECT_EQ(sn[0], 0.f);
}

TEST(Rope, MscaleFormula) {
  EXPECT_EQ(yarn_get_mscale(1.0, 0.707), 1.0);
  EXPECT_EQ(yarn_get_mscale(0.5, 3), 1.0);
  EXPECT_NEAR(yarn_get_mscale(40, 1), 0.1 * std::log(40.0) + 1, 1e-12);
}

TEST(Rope, RejectsOddWidthAndUnknownScaling) {
  EXPECT_THROW(Rope(7, 10000, RopeScaling{}), Error);
  RopeScaling s;
  s.type = "dynamic";
  EXPECT_THROW(Rope(8, 10000, s), Error);
}

}  // namespace
}  // namespace dsvl2
