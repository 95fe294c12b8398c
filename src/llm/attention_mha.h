// Multi-head attention for use_mla false (DeepSeek-VL2 Tiny): the official code
// then uses transformers-4.38 LlamaAttention — q/k/v/o projections (bias when
// attention_bias), NeoX RoPE over the full head, scale 1/sqrt(head_dim), GQA
// when num_key_value_heads < num_attention_heads. The cache keeps roped k and v.
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

class AttentionMha {
 public:
  // `prefix` ends with "self_attn.".
  static AttentionMha load(const WeightSource& src, const std::string& prefix, const LanguageConfig& c);
  // x[N, hidden], the rows of `segs` (each a sequence at its positions):
  // projections over all rows, then per sequence RoPE, this layer's k/v rows
  // into its cache (capacity checked by the caller) and attention; y[N, hidden].
  void forward(const float* x, int N, std::span<const BatchSegment> segs, int layer, const Ops& ops, float* y) const;
  template <class F>
  void for_each_linear(F&& f) {
    f(q_);
    f(k_);
    f(v_);
    f(o_);
  }
  // q, k and v read the same input: one fused product (no biases only).
  template <class F>
  void for_each_fusable(F&& f) {
    if (!q_b_.data()) f(FuseGroup{{&q_, &k_, &v_}, &qkv_});
  }

 private:
  AttentionMha(int heads, int kv_heads, int head_dim, const Rope& rope)
      : H_(heads), Hkv_(kv_heads), hd_(head_dim), rope_(rope) {}
  int H_, Hkv_, hd_;
  int64_t hidden_ = 0;
  Rope rope_;
  Weight q_, k_, v_, o_;
  FusedWeight qkv_;
  Tensor q_b_, k_b_, v_b_, o_b_;  // biases when attention_bias
};

}  // namespace dsvl2
