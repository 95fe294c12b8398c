#include "train/rope_grad.h"

#include <algorithm>
#include <vector>

namespace dsvl2 {

void rope_backward(const Rope& rope, float* dx, int T, int n_heads, int64_t stride_t, int64_t stride_h, int pos0,
                   RopeStyle style) {
  const int half = rope.dim() / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half)), tmp(static_cast<size_t>(rope.dim()));
  for (int t = 0; t < T; t++) {
    rope.cos_sin(pos0 + t, c.data(), s.data());
    for (int h = 0; h < n_heads; h++) {
      float* v = dx + t * stride_t + h * stride_h;
      if (style == RopeStyle::kNeox) {  // out[i] = a c - b s, out[i + half] = b c + a s
        for (int i = 0; i < half; i++) {
          const float da = v[i], db = v[i + half];
          v[i] = da * c[i] + db * s[i];
          v[i + half] = db * c[i] - da * s[i];
        }
      } else {  // a = x[2i], b = x[2i + 1] land at out[i], out[i + half]
        for (int i = 0; i < half; i++) {
          const float d0 = v[i], d1 = v[i + half];
          tmp[2 * i] = d0 * c[i] + d1 * s[i];
          tmp[2 * i + 1] = d1 * c[i] - d0 * s[i];
        }
        std::copy(tmp.begin(), tmp.end(), v);
      }
    }
  }
}

}  // namespace dsvl2
