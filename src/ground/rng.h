// Seeded random numbers for visual-prompt rendering. std::mt19937_64's output
// sequence is fixed by the C++ standard, but the standard distributions are
// not (libstdc++ and libc++ differ), so every distribution here is written out
// and a seed gives the same drawing on every platform.
#pragma once
#include <cstdint>
#include <random>

namespace dsvl2::ground {

class Rng {
 public:
  explicit Rng(uint64_t seed) : eng_(seed) {}

  // [0, 1) with 53 random bits.
  double uniform01() { return double(eng_() >> 11) * 0x1.0p-53; }
  // Python's random.uniform(a, b) = a + (b - a) * random(); a > b is allowed.
  double uniform(double a, double b) { return a + (b - a) * uniform01(); }
  // Python's random.randint(a, b): inclusive, unbiased (rejection sampling). Requires a <= b.
  int randint(int a, int b);
  // Normal(mean, stddev) by Box-Muller, one value per call.
  double normal(double mean, double stddev);
  // True with probability p (Python: random.random() < p).
  bool chance(double p) { return uniform01() < p; }
  // Uniform index in [0, n), n > 0.
  size_t index(size_t n) { return size_t(randint(0, int(n) - 1)); }

 private:
  std::mt19937_64 eng_;
};

}  // namespace dsvl2::ground
