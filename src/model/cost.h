// Work per token of the language model, from its config: what benchmarks
// divide by to turn a speed into a fraction of the machine's roofline.
#pragma once
#include <cstdint>

#include "io/model_config.h"

namespace dsvl2 {

struct LanguageCost {
  // Matrix weights one decoded token reads: active experts only, lm_head
  // included, the embedding table excluded (one row is read).
  int64_t linear_params = 0;
  // Of those, the attention projections', lm_head's and the active routed
  // experts' (the rest: shared experts, dense MLPs, routers), for files that
  // store the parts in different types (`quantize --type q4_m`).
  int64_t attention_params = 0, head_params = 0, routed_params = 0;
  // Prefill work per prompt token, 2 per multiply-add, without lm_head (only
  // the last position needs logits) and without the attention scores.
  double prefill_flops = 0;
};

// Per token, for a token routed to num_experts_per_tok experts in every MoE layer.
LanguageCost language_cost_per_token(const LanguageConfig& c);

// Matrix weights one batched decode step of `rows` rows reads, each matrix
// once for all rows: everything but the routed experts once, and of those the
// expected number of distinct experts hit when each row picks
// num_experts_per_tok of n_routed_experts uniformly (E * (1 - (1 - k/E)^rows)).
double linear_params_per_step(const LanguageConfig& c, int rows);

}  // namespace dsvl2
