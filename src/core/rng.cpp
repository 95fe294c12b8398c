#include "core/rng.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace dsvl2 {

uint64_t hash_bytes(const void* data, size_t n, uint64_t seed) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t h = splitmix64(seed ^ 0x6a09e667f3bcc909ull);
  size_t i = 0;
  // Eight bytes a step, each word fully mixed in (a bare xor-multiply would
  // let differences in the top bits cancel): fast enough for megapixel images.
  for (; i + 8 <= n; i += 8) {
    uint64_t w = 0;
    for (int b = 0; b < 8; b++) w |= uint64_t(p[i + size_t(b)]) << (8 * b);
    h = splitmix64(h ^ w);
  }
  uint64_t tail = 0;
  for (int b = 0; i < n; i++, b++) tail |= uint64_t(p[i]) << (8 * b);
  return splitmix64(h ^ tail ^ (uint64_t(n) << 1));
}

int Rng::randint(int a, int b) {
  DSVL2_CHECK(a <= b, "randint(%d, %d)", a, b);
  uint64_t range = uint64_t(int64_t(b) - int64_t(a)) + 1;
  // Largest multiple of range that fits, so that every residue is equally likely.
  uint64_t limit = UINT64_MAX - (UINT64_MAX % range);
  uint64_t x;
  do x = next();
  while (x >= limit);
  return int(int64_t(a) + int64_t(x % range));
}

double Rng::normal(double mean, double stddev) {
  double u1 = 1.0 - uniform01();  // (0, 1], so log is finite
  double u2 = uniform01();
  return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace dsvl2
