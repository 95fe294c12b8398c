// Rotary position embedding as the official decoder applies it.
//
// Two layouts of the rotated pairs (same frequencies, different pairing):
//   kNeox        — transformers LlamaAttention (MHA, use_mla false): rotate_half
//                  over the full head, pair (i, i + d/2) turns by frequency i.
//   kInterleaved — DeepseekV2 apply_rotary_pos_emb (MLA q_pe / k_pe): the input
//                  is first reordered [x0,x1,x2,..] -> [x0,x2,..,x1,x3,..], then
//                  rotate_half; so pair (x2i, x2i+1) turns by frequency i and the
//                  result is left in the reordered layout (as in the official cache).
// Frequencies: DeepseekV2RotaryEmbedding, or DeepseekV2YarnRotaryEmbedding when
// rope_scaling.type == "yarn" (blended inv_freq and a cos/sin magnitude factor).
#pragma once
#include <vector>

#include "io/model_config.h"

namespace dsvl2 {

enum class RopeStyle { kNeox, kInterleaved };

// yarn_get_mscale: 0.1 * mscale * ln(scale) + 1, or 1 when scale <= 1.
double yarn_get_mscale(double scale, double mscale);

class Rope {
 public:
  // `dim` is the rotated width (even). `scaling.type` "" = plain RoPE.
  Rope(int dim, double theta, const RopeScaling& scaling);

  int dim() const { return dim_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }  // dim/2 values, f32 as torch computes them
  float magnitude() const { return magnitude_; }                    // cos/sin multiplier (1 without yarn)

  // cos/sin of position `pos` for the dim/2 frequencies, in f32 like the official cache.
  void cos_sin(int pos, float* cos, float* sin) const;

  // Rotates n_heads vectors of T rows: x[t * stride_t + h * stride_h + i], i < dim,
  // row t at position pos0 + t.
  void apply(float* x, int T, int n_heads, int64_t stride_t, int64_t stride_h, int pos0, RopeStyle style) const;

 private:
  int dim_;
  std::vector<float> inv_freq_;
  float magnitude_ = 1.f;
};

}  // namespace dsvl2
