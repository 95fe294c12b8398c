// Shared helpers of the backward-kernel tests: random data, a scale-free error
// measure, and central finite differences in double.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

namespace dsvl2::grad_test {

using Vec = std::vector<float>;
using VecD = std::vector<double>;

inline Vec randn(size_t n, uint32_t seed, float scale = 1.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, scale);
  Vec v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
inline VecD to_d(const Vec& v) { return VecD(v.begin(), v.end()); }

// max |got - base - want| / max |want|: how far the increment got - base is
// from want, relative to want's scale (base: the value before "+=", or empty).
inline double rel_err(const Vec& got, const VecD& want, const Vec& base = {}) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < want.size(); i++) {
    num = std::max(num, std::fabs(double(got[i]) - (base.empty() ? 0.0 : base[i]) - want[i]));
    den = std::max(den, std::fabs(want[i]));
  }
  return num / den;
}
inline double rel_err(const Vec& got, const Vec& want, const Vec& base = {}) {
  VecD w(want.size());
  for (size_t i = 0; i < w.size(); i++) w[i] = double(want[i]) - (base.empty() ? 0.0 : base[i]);
  return rel_err(got, w, base);
}

// Central differences of loss() in every element of p (p restored after).
inline VecD fd_grad(VecD& p, const std::function<double()>& loss, double h = 1e-6) {
  VecD g(p.size());
  for (size_t i = 0; i < p.size(); i++) {
    const double p0 = p[i];
    p[i] = p0 + h;
    const double lp = loss();
    p[i] = p0 - h;
    const double lm = loss();
    p[i] = p0;
    g[i] = (lp - lm) / (2 * h);
  }
  return g;
}
inline double dot_d(const VecD& a, const VecD& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

constexpr double kTol = 1e-5;  // f32 analytic gradient vs double finite differences

}  // namespace dsvl2::grad_test
