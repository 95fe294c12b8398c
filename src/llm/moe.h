// DeepseekV2MoE: MoEGate routing + routed experts + shared experts.
//
// Routing (MoEGate.forward, inference path):
//   logits = x_f32 @ W^T in f32; scores = softmax or sigmoid.
//   greedy:               top-k of scores.
//   group_limited_greedy: group score = max in group; keep topk_group groups;
//                         other experts' scores -> 0.0; top-k; weights = masked scores.
//   noaux_tc:             s' = scores + e_score_correction_bias; group score =
//                         sum of the group's top-2 s'; keep topk_group groups;
//                         other experts' s' -> 0.0 (not -inf, so a dropped expert
//                         can win over negative s'); top-k of s';
//                         weights = unbiased scores at the chosen experts.
//   top_k > 1 and norm_topk_prob: w = w / (sum w + 1e-20) * routed_scaling_factor,
//   otherwise w *= routed_scaling_factor.
// Ties in a top-k are broken as torch.topk on CPU breaks them (see moe.cpp).
#pragma once
#include <string>
#include <vector>

#include "io/model_config.h"
#include "llm/mlp.h"
#include "llm/weights.h"
#include "ops/ops.h"

namespace dsvl2 {

struct RouterConfig {
  enum class Scoring { kSoftmax, kSigmoid };
  enum class Method { kGreedy, kGroupLimitedGreedy, kNoauxTc };
  int n_experts = 0, top_k = 0, n_group = 1, topk_group = 1;
  Scoring scoring = Scoring::kSoftmax;
  Method method = Method::kGreedy;
  bool norm_topk_prob = false;
  float routed_scaling_factor = 1.f;

  static RouterConfig from(const LanguageConfig& c);  // validates; throws Error
};

// logits[T, n_experts] -> scores[T, n_experts]: the softmax or sigmoid the
// gate picks from (training's backward goes through the same values).
void gate_scores(const RouterConfig& rc, const float* logits, int64_t T, float* scores);

// logits[T, n_experts] -> expert ids idx[T, top_k] and weights w[T, top_k].
// `bias` (n_experts) is used by noaux_tc only and may be null otherwise.
void route_tokens(const RouterConfig& rc, const float* logits, const float* bias, int64_t T, int* idx, float* w);

// While the routed experts get at most this many rows each on average (decode
// steps of one or many sequences, short prompts), whole experts are spread
// over the threads instead of splitting each expert's matrices: each expert is
// then a few matrix-vector products, bound by reading its weights once, and
// one parallel region per layer replaces three per expert.
constexpr int64_t kExpertParallelRowsPerExpert = 4;

class Moe {
 public:
  // `prefix` ends with "mlp.".
  static Moe load(const WeightSource& src, const std::string& prefix, const LanguageConfig& c);
  // y[T, hidden] = routed + shared experts of x[T, hidden]; y may not alias x.
  void forward(const float* x, int64_t T, float* y, const Ops& ops) const;
  const RouterConfig& router() const { return rc_; }
  // The experts' matrices (not the router, which runs in f32).
  template <class F>
  void for_each_linear(F&& f) {
    for (Mlp& e : experts_) e.for_each_linear(f);
    if (has_shared_) shared_.for_each_linear(f);
  }
  template <class F>
  void for_each_fusable(F&& f) {
    for (Mlp& e : experts_) e.for_each_fusable(f);
    if (has_shared_) shared_.for_each_fusable(f);
  }

 private:
  RouterConfig rc_;
  int64_t hidden_ = 0;
  Weight gate_;  // [n_experts, hidden]
  Tensor bias_;  // e_score_correction_bias (noaux_tc), f32
  std::vector<Mlp> experts_;
  Mlp shared_;  // empty when n_shared_experts == 0
  bool has_shared_ = false;
};

}  // namespace dsvl2
