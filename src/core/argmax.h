// Index of the largest value, the first one on ties (torch.argmax's choice):
// greedy decoding in the language model, the sampler and the tools share it.
#pragma once
#include <cstdint>

namespace dsvl2 {

inline int argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return int(best);
}

}  // namespace dsvl2
