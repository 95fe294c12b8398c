#include "ground/rng.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace dsvl2::ground {

int Rng::randint(int a, int b) {
  DSVL2_CHECK(a <= b, "randint(%d, %d)", a, b);
  uint64_t range = uint64_t(int64_t(b) - int64_t(a)) + 1;
  // Largest multiple of range that fits, so that every residue is equally likely.
  uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
  uint64_t x;
  do x = eng_();
  while (x >= limit);
  return int(int64_t(a) + int64_t(x % range));
}

double Rng::normal(double mean, double stddev) {
  double u1 = 1.0 - uniform01();  // (0, 1], so log is finite
  double u2 = uniform01();
  return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace dsvl2::ground
