#include "model/cost.h"

#include <cmath>

namespace dsvl2 {

LanguageCost language_cost_per_token(const LanguageConfig& c) {
  const int64_t h = c.hidden_size, H = c.num_attention_heads;
  int64_t attn;
  if (c.use_mla) {
    const int64_t qd = c.q_head_dim();
    int64_t q = c.q_lora_rank > 0 ? h * c.q_lora_rank + int64_t(c.q_lora_rank) * H * qd : h * H * qd;
    attn = q + h * (c.kv_lora_rank + c.qk_rope_head_dim) + int64_t(c.kv_lora_rank) * H * (c.qk_nope_head_dim + c.v_head_dim) +
           H * c.v_head_dim * h;
  } else {
    const int64_t hd = c.head_dim(), kv = c.num_key_value_heads;
    attn = h * H * hd + 2 * h * kv * hd + H * hd * h;
  }
  int64_t ffn = 0, routed = 0;
  for (int l = 0; l < c.num_hidden_layers; l++) {
    if (c.is_moe_layer(l)) {
      ffn += h * c.n_routed_experts;  // gate
      routed += int64_t(c.num_experts_per_tok) * 3 * h * c.moe_intermediate_size;
      ffn += 3 * h * int64_t(c.moe_intermediate_size) * c.n_shared_experts;
    } else {
      ffn += 3 * h * int64_t(c.intermediate_size);
    }
  }
  LanguageCost r;
  const int64_t body = attn * c.num_hidden_layers + ffn + routed;
  r.linear_params = body + h * c.vocab_size;  // + lm_head
  r.attention_params = attn * c.num_hidden_layers;
  r.head_params = h * c.vocab_size;
  r.routed_params = routed;
  r.prefill_flops = 2.0 * double(body);
  return r;
}

double linear_params_per_step(const LanguageConfig& c, int rows) {
  const LanguageCost one = language_cost_per_token(c);
  const int64_t expert = 3 * int64_t(c.hidden_size) * c.moe_intermediate_size;
  int moe_layers = 0;
  for (int l = 0; l < c.num_hidden_layers; l++) moe_layers += c.is_moe_layer(l);
  if (moe_layers == 0 || c.n_routed_experts == 0) return double(one.linear_params);
  const double E = c.n_routed_experts, k = c.num_experts_per_tok;
  const double distinct = E * (1.0 - std::pow(1.0 - k / E, double(rows)));
  return double(one.linear_params) + double(moe_layers) * (distinct - k) * double(expert);
}

}  // namespace dsvl2
