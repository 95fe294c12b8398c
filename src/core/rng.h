// The one random-number policy of the project: counter-based, so that a draw
// depends only on (seed, key, counter) and not on what ran before or where.
// A record, a shard or a tensor block keyed by its own id gives the same
// numbers on any machine, thread count or shard count (the data pipelines and
// the random checkpoints rely on this). Every distribution is written out:
// the standard library's are not portable (libstdc++ and libc++ differ).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dsvl2 {

// splitmix64's finaliser: a bijective 64-bit mix.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 64-bit hash of bytes (each 8-byte word mixed by splitmix64): content keys such as an image's
// pixels for prefix reuse, or a record's key for its random stream.
uint64_t hash_bytes(const void* data, size_t n, uint64_t seed = 0);
inline uint64_t hash_string(std::string_view s, uint64_t seed = 0) { return hash_bytes(s.data(), s.size(), seed); }

class Rng {
 public:
  // The stream `key` of `seed` (e.g. key = hash_string(record key)).
  explicit Rng(uint64_t seed, uint64_t key = 0) : base_(splitmix64(seed ^ splitmix64(key))) {}

  // The counter-th value of the stream, without advancing it.
  uint64_t at(uint64_t counter) const { return splitmix64(base_ + counter * 0x9e3779b97f4a7c15ull); }
  uint64_t next() { return at(counter_++); }
  uint64_t counter() const { return counter_; }

  // [0, 1) with 53 random bits.
  double uniform01() { return double(next() >> 11) * 0x1.0p-53; }
  // Python's random.uniform(a, b) = a + (b - a) * random(); a > b is allowed.
  double uniform(double a, double b) { return a + (b - a) * uniform01(); }
  // Inclusive, unbiased (rejection sampling). Requires a <= b.
  int randint(int a, int b);
  // Normal(mean, stddev) by Box-Muller, one value per call.
  double normal(double mean, double stddev);
  // True with probability p (Python: random.random() < p).
  bool chance(double p) { return uniform01() < p; }
  // Uniform index in [0, n), n > 0.
  size_t index(size_t n) { return size_t(randint(0, int(n) - 1)); }

 private:
  uint64_t base_;
  uint64_t counter_ = 0;
};

}  // namespace dsvl2
