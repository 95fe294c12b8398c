// Decoder self-attention for training, one sequence from position 0, causal.
//   MHA (use_mla false): LlamaAttention, NeoX RoPE over the whole head.
//   MLA: the official training form (not the absorbed inference form):
//     q = q_proj(x) | q_b_proj(RMSNorm(q_a_proj(x)));   [c | k_pe] = kv_a_proj_with_mqa(x)
//     [k_nope | v] = kv_b_proj(RMSNorm(c)) per head;   interleaved RoPE on q_pe, k_pe
//     K = [k_nope | k_pe broadcast over heads], softmax(Q K^T * scale) V, o_proj.
// kv_b_proj is read as it is now (no per-head copy that a trained kv_b_proj
// could leave stale), so inference after merging sees the trained weights.
#pragma once
#include <string>

#include "io/model_config.h"
#include "llm/rope.h"
#include "train/linear.h"

namespace dsvl2 {

class AttentionTrain {
 public:
  AttentionTrain(const LanguageConfig& c, ParamStore& ps, const std::string& prefix);  // prefix ends "self_attn."

  struct Acts {
    Tensor q, k, v, att;     // roped Q [T, H*qhd], K [T, H*qhd], V [T, H*vd], attention output [T, H*vd]
    Tensor qa, qan;          // MLA q LoRA: q_a_proj output and its norm
    Tensor raw, cn;          // MLA: kv_a_proj_with_mqa output and RMSNorm(c)
  };
  // y[T, hidden] (=) from x[T, hidden].
  void forward(const float* x, int T, float* y, Acts& a, const TrainOps& t) const;
  // dx (+=) from dy; adds the trainable parameters' gradients.
  void backward(const float* x, const Acts& a, const float* dy, int T, float* dx, const TrainOps& t) const;

  // Every Linear of this layer by its short name (q_proj, kv_b_proj, ...), for LoRA.
  template <class F>
  void for_each_linear(F&& f) {
    for (auto* l : {&q_, &q_a_, &q_b_, &k_, &v_, &kv_a_, &kv_b_, &o_})
      if (l->w) f(*l);
  }

 private:
  AttentionArgs args(const Acts& a, int T) const;
  void mla_forward(const float* x, int T, Acts& a, const TrainOps& t) const;
  void mla_backward(const float* x, const Acts& a, float* dq, float* dk, float* dv, int T, float* dx,
                    const TrainOps& t) const;

  bool mla_ = false;
  int H_ = 0, Hkv_ = 0, qhd_ = 0, vd_ = 0;  // heads, kv heads, query/key and value head widths
  int nope_ = 0, rope_dim_ = 0, lora_ = 0, q_lora_ = 0;
  float scale_ = 1.f;
  Rope rope_;
  LinearRef q_, k_, v_, o_;                // MHA (q_ also MLA without q LoRA; o_ both)
  LinearRef q_a_, q_b_, kv_a_, kv_b_;      // MLA
  Param *q_a_norm_ = nullptr, *kv_a_norm_ = nullptr;
};

}  // namespace dsvl2
