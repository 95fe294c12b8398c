#include "llm/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dsvl2 {

double yarn_get_mscale(double scale, double mscale) {
  if (scale <= 1) return 1.0;
  return 0.1 * mscale * std::log(scale) + 1.0;
}

namespace {
// yarn_find_correction_dim: the dimension whose wavelength makes `rotations`
// turns over the original context.
double yarn_correction_dim(double rotations, int dim, double base, int orig_max) {
  return (dim * std::log(orig_max / (rotations * 2 * M_PI))) / (2 * std::log(base));
}
}  // namespace

Rope::Rope(int dim, double theta, const RopeScaling& scaling) : dim_(dim) {
  DSVL2_REQUIRE(dim >= 2 && dim % 2 == 0, "rope: rotated width %d must be even and >= 2", dim);
  const int half = dim / 2;
  // base ** (arange(0, dim, 2) / dim) in f32, as the torch expression computes it.
  std::vector<float> base_pow(static_cast<size_t>(half));
  const float base = float(theta);
  for (int i = 0; i < half; i++) base_pow[i] = std::pow(base, float(2 * i) / float(dim));
  inv_freq_.resize(size_t(half));
  if (scaling.type.empty()) {
    for (int i = 0; i < half; i++) inv_freq_[i] = 1.0f / base_pow[i];
    return;
  }
  DSVL2_REQUIRE(scaling.type == "yarn", "rope: scaling type \"%s\" is not supported", scaling.type.c_str());
  // DeepseekV2YarnRotaryEmbedding._set_cos_sin_cache.
  const float factor = float(scaling.factor);
  int low =
      int(std::floor(yarn_correction_dim(scaling.beta_fast, dim, theta, scaling.original_max_position_embeddings)));
  int high =
      int(std::ceil(yarn_correction_dim(scaling.beta_slow, dim, theta, scaling.original_max_position_embeddings)));
  low = std::max(low, 0);
  high = std::min(high, dim - 1);
  float lo = float(low), span = float(high - low);
  if (low == high) span = float(double(high) + 0.001 - double(low));  // yarn_linear_ramp_mask singularity guard
  for (int i = 0; i < half; i++) {
    float extra = 1.0f / base_pow[i];
    float inter = 1.0f / (factor * base_pow[i]);
    float ramp = std::clamp((float(i) - lo) / span, 0.f, 1.f);
    float mask = 1.f - ramp;
    inv_freq_[i] = inter * (1.f - mask) + extra * mask;
  }
  magnitude_ =
      float(yarn_get_mscale(scaling.factor, scaling.mscale) / yarn_get_mscale(scaling.factor, scaling.mscale_all_dim));
}

void Rope::cos_sin(int pos, float* c, float* s) const {
  const float t = float(pos);
  for (int i = 0; i < dim_ / 2; i++) {
    float angle = t * inv_freq_[i];  // f32 product, as torch.outer(t, inv_freq)
    c[i] = float(std::cos(double(angle))) * magnitude_;
    s[i] = float(std::sin(double(angle))) * magnitude_;
  }
}

void Rope::apply(float* x, int T, int n_heads, int64_t stride_t, int64_t stride_h, int pos0, RopeStyle style) const {
  const int half = dim_ / 2;
  std::vector<float> c(static_cast<size_t>(half)), s(static_cast<size_t>(half)), tmp(static_cast<size_t>(dim_));
  for (int t = 0; t < T; t++) {
    cos_sin(pos0 + t, c.data(), s.data());
    for (int h = 0; h < n_heads; h++) {
      float* v = x + t * stride_t + h * stride_h;
      if (style == RopeStyle::kNeox) {
        for (int i = 0; i < half; i++) {
          float a = v[i], b = v[i + half];
          v[i] = a * c[i] - b * s[i];
          v[i + half] = b * c[i] + a * s[i];
        }
      } else {
        for (int i = 0; i < half; i++) {
          float a = v[2 * i], b = v[2 * i + 1];
          tmp[i] = a * c[i] - b * s[i];
          tmp[i + half] = b * c[i] + a * s[i];
        }
        std::copy(tmp.begin(), tmp.end(), v);
      }
    }
  }
}

}  // namespace dsvl2
