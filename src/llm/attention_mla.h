// Multi-head latent attention, DeepseekV2Attention (DeepSeek-VL2 Small / Base):
//   q      = q_proj(x)  or  q_b_proj(RMSNorm_1e-6(q_a_proj(x)))       [T, H, nope + rope]
//   c, kpe = kv_a_proj_with_mqa(x); c = RMSNorm_1e-6(c)                 cached: [c | roped kpe]
//   kv_b_proj.weight viewed [H, nope + v, kv_lora] = [W_uk ; W_uv] per head
// in two equal forms, chosen per sequence by the work each does:
//   expanded (prompts): k = [c W_uk^T | k_pe], v = c W_uv^T for every cached
//     position, then multi-head attention (the checkpoint's eager form);
//   absorbed (decode):  score = (q_pe . k_pe + (q_nope W_uk) . c) * scale, MQA
//     over [c | kpe], out = (softmax_f32(score) @ c) W_uv^T per head.
// Either way o_proj over the heads. scale = (nope + rope)^-0.5, times
// mscale(factor, mscale_all_dim)^2 under yarn. RoPE on q_pe / k_pe is the
// interleaved-pair form (see rope.h).
#pragma once
#include <span>
#include <string>

#include "io/model_config.h"
#include "llm/batch.h"
#include "llm/rope.h"
#include "llm/weights.h"
#include "ops/ops.h"
#include "ops/prepack.h"

namespace dsvl2 {

class AttentionMla {
 public:
  // `prefix` ends with "self_attn.".
  static AttentionMla load(const WeightSource& src, const std::string& prefix, const LanguageConfig& c);
  // x[N, hidden], the rows of `segs` (each a sequence at its positions):
  // projections over all rows, then per sequence this layer's cache rows
  // (capacity checked by the caller), RoPE and attention; y[N, hidden].
  void forward(const float* x, int N, std::span<const BatchSegment> segs, int layer, const Ops& ops, float* y) const;
  float softmax_scale() const { return scale_; }
  // The form forward() takes for a segment: expanded (prompts) or absorbed
  // (decode steps, short chunks after a long prefix), whichever does less work.
  bool prefers_expanded(const BatchSegment& s) const;
  // The projections run through Ops::linear (kv_b_proj is read per head).
  template <class F>
  void for_each_linear(F&& f) {
    for (Weight* w : {&q_, &q_a_, &q_b_, &kv_a_, &o_})
      if (!w->empty()) f(*w);
  }
  // The query's first projection and kv_a read the same input (no biases only).
  template <class F>
  void for_each_fusable(F&& f) {
    if (!q_a_bias_.data() && !kv_a_bias_.data()) f(FuseGroup{{q_lora_ ? &q_a_ : &q_, &kv_a_}, &q_kv_a_});
  }

 private:
  explicit AttentionMla(const Rope& rope) : rope_(rope) {}
  void attend_absorbed(const float* q, std::span<const BatchSegment> run, int layer, const Ops& ops, float* att) const;
  void attend_expanded(const float* q, const BatchSegment& s, int layer, const Ops& ops, float* att) const;
  int H_ = 0, nope_ = 0, rope_dim_ = 0, v_dim_ = 0, lora_ = 0, q_lora_ = 0;
  int64_t hidden_ = 0;
  float scale_ = 1.f;
  Rope rope_;
  Weight q_, q_a_, q_b_, kv_a_, kv_b_, o_;
  FusedWeight q_kv_a_;
  Tensor q_a_norm_, kv_a_norm_;
  Tensor q_a_bias_, kv_a_bias_, o_bias_;  // when attention_bias
  // W_uk^T per head [H, kv_lora, nope] in the stored dtype (exact copy), so that
  // absorbing q_nope is an ordinary Linear; W_uv is a view into kv_b_proj.
  Tensor uk_t_;
};

}  // namespace dsvl2
