// The learning-rate schedule: linear warm-up from 0 to `peak` over `warmup`
// steps, then a cosine decay to `min` at step `total` (transformers'
// get_cosine_schedule_with_warmup, with a floor). Steps count from 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace dsvl2 {

struct LrSchedule {
  double peak = 1e-4, min = 0;
  int64_t warmup = 0, total = 1;

  double at(int64_t step) const {
    if (step < warmup) return peak * double(step + 1) / double(warmup + 1);
    const double span = double(std::max<int64_t>(total - warmup, 1));
    const double progress = std::clamp(double(step - warmup) / span, 0.0, 1.0);
    return min + (peak - min) * 0.5 * (1.0 + std::cos(M_PI * progress));
  }
};

}  // namespace dsvl2
