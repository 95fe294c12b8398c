#include "llm/moe.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <utility>

#include "core/error.h"
#include "core/scratch.h"
#include "ops/spread.h"

namespace dsvl2 {

RouterConfig RouterConfig::from(const LanguageConfig& c) {
  RouterConfig r;
  r.n_experts = c.n_routed_experts;
  r.top_k = c.num_experts_per_tok;
  r.n_group = c.n_group;
  r.topk_group = c.topk_group;
  r.norm_topk_prob = c.norm_topk_prob;
  r.routed_scaling_factor = float(c.routed_scaling_factor);
  if (c.scoring_func == "softmax")
    r.scoring = Scoring::kSoftmax;
  else if (c.scoring_func == "sigmoid")
    r.scoring = Scoring::kSigmoid;
  else
    DSVL2_FAIL("MoE: scoring_func \"%s\" is not supported", c.scoring_func.c_str());
  if (c.topk_method == "greedy")
    r.method = Method::kGreedy;
  else if (c.topk_method == "group_limited_greedy")
    r.method = Method::kGroupLimitedGreedy;
  else if (c.topk_method == "noaux_tc")
    r.method = Method::kNoauxTc;
  else
    DSVL2_FAIL("MoE: topk_method \"%s\" is not supported", c.topk_method.c_str());
  DSVL2_REQUIRE(r.n_experts > 0 && r.top_k >= 1 && r.top_k <= r.n_experts,
                "MoE: num_experts_per_tok %d must be in [1, n_routed_experts=%d]", r.top_k, r.n_experts);
  if (r.method != Method::kGreedy) {
    DSVL2_REQUIRE(r.n_group >= 1 && r.n_experts % r.n_group == 0 && r.topk_group >= 1 && r.topk_group <= r.n_group,
                  "MoE: n_group %d / topk_group %d do not fit %d experts", r.n_group, r.topk_group, r.n_experts);
    DSVL2_REQUIRE(r.method != Method::kNoauxTc || r.n_experts / r.n_group >= 2,
                  "MoE: noaux_tc needs at least 2 experts per group (%d experts, %d groups)", r.n_experts, r.n_group);
  }
  return r;
}

namespace {

// Indices of the k largest values, in the order torch.topk(sorted=False) on
// CPU returns them: ATen's topk_impl_loop puts (value, index) pairs in index
// order and runs std::nth_element (std::partial_sort when k * 64 <= n) with a
// "greater" comparator. Reproducing that, not just "a" top-k, matters on ties:
// noaux_tc sets dropped experts to 0.0 and such zeros can compete for a slot.
void top_k_indices(const float* v, int n, int k, int* out) {
  using Elem = std::pair<double, int>;
  std::vector<Elem> q(static_cast<size_t>(n));
  for (int i = 0; i < n; i++) q[size_t(i)] = {double(v[i]), i};
  auto greater = [](const Elem& x, const Elem& y) {
    return (std::isnan(x.first) && !std::isnan(y.first)) || x.first > y.first;
  };
  if (int64_t(k) * 64 <= n)
    std::partial_sort(q.begin(), q.begin() + k, q.end(), greater);
  else
    std::nth_element(q.begin(), q.begin() + (k - 1), q.end(), greater);
  for (int i = 0; i < k; i++) out[i] = q[size_t(i)].second;
}

// Keeps the topk_group best groups; sets the other experts' entries to 0.0.
void mask_groups(const RouterConfig& rc, const float* group_score, float* s) {
  const int per = rc.n_experts / rc.n_group;
  std::vector<int> keep(size_t(rc.topk_group));
  top_k_indices(group_score, rc.n_group, rc.topk_group, keep.data());
  for (int g = 0; g < rc.n_group; g++) {
    if (std::find(keep.begin(), keep.end(), g) != keep.end()) continue;
    for (int e = g * per; e < (g + 1) * per; e++) s[e] = 0.0f;
  }
}

}  // namespace

void gate_scores(const RouterConfig& rc, const float* logits, int64_t T, float* scores) {
  const int E = rc.n_experts;
  for (int64_t t = 0; t < T; t++) {
    const float* l = logits + t * E;
    float* s = scores + t * E;
    if (rc.scoring == RouterConfig::Scoring::kSoftmax) {
      float mx = *std::max_element(l, l + E);
      double sum = 0;
      for (int e = 0; e < E; e++) sum += (s[e] = std::exp(l[e] - mx));
      for (int e = 0; e < E; e++) s[e] = float(s[e] / sum);
    } else {
      for (int e = 0; e < E; e++) s[e] = 1.f / (1.f + std::exp(-l[e]));
    }
  }
}

void route_tokens(const RouterConfig& rc, const float* logits, const float* bias, int64_t T, int* idx, float* w) {
  const int E = rc.n_experts, K = rc.top_k, per = rc.n_experts / std::max(rc.n_group, 1);
  DSVL2_CHECK(rc.method != RouterConfig::Method::kNoauxTc || bias, "noaux_tc routing needs e_score_correction_bias");
  std::vector<float> all(static_cast<size_t>(T * E)), choice(static_cast<size_t>(E)),
      group(size_t(std::max(rc.n_group, 1)));
  gate_scores(rc, logits, T, all.data());
  for (int64_t t = 0; t < T; t++) {
    const float* scores = all.data() + t * E;
    int* id = idx + t * K;
    float* wt = w + t * K;
    switch (rc.method) {
      case RouterConfig::Method::kGreedy:
        top_k_indices(scores, E, K, id);
        for (int k = 0; k < K; k++) wt[k] = scores[id[k]];
        break;
      case RouterConfig::Method::kGroupLimitedGreedy:
        choice.assign(scores, scores + E);
        for (int g = 0; g < rc.n_group; g++)
          group[g] = *std::max_element(choice.begin() + g * per, choice.begin() + (g + 1) * per);
        mask_groups(rc, group.data(), choice.data());
        top_k_indices(choice.data(), E, K, id);
        for (int k = 0; k < K; k++) wt[k] = choice[id[k]];  // masked scores, as the official gather
        break;
      case RouterConfig::Method::kNoauxTc:
        for (int e = 0; e < E; e++) choice[e] = scores[e] + bias[e];
        for (int g = 0; g < rc.n_group; g++) {
          int top2[2];
          top_k_indices(choice.data() + g * per, per, 2, top2);
          group[g] = choice[g * per + top2[0]] + choice[g * per + top2[1]];
        }
        mask_groups(rc, group.data(), choice.data());
        top_k_indices(choice.data(), E, K, id);
        for (int k = 0; k < K; k++) wt[k] = scores[id[k]];  // bias steers the choice only
        break;
    }
    if (K > 1 && rc.norm_topk_prob) {
      float sum = 0.f;
      for (int k = 0; k < K; k++) sum += wt[k];
      float denom = sum + 1e-20f;
      for (int k = 0; k < K; k++) wt[k] = wt[k] / denom * rc.routed_scaling_factor;
    } else {
      for (int k = 0; k < K; k++) wt[k] *= rc.routed_scaling_factor;
    }
  }
}

Moe Moe::load(const WeightSource& src, const std::string& prefix, const LanguageConfig& c) {
  Moe m;
  m.rc_ = RouterConfig::from(c);
  m.hidden_ = c.hidden_size;
  m.gate_ = load_linear(src, prefix + "gate.weight", c.n_routed_experts, c.hidden_size);
  if (m.rc_.method == RouterConfig::Method::kNoauxTc)
    m.bias_ = load_vector(src, prefix + "gate.e_score_correction_bias", c.n_routed_experts);
  m.experts_.reserve(size_t(c.n_routed_experts));
  for (int e = 0; e < c.n_routed_experts; e++)
    m.experts_.push_back(
        Mlp::load(src, prefix + "experts." + std::to_string(e) + ".", c.hidden_size, c.moe_intermediate_size));
  if (c.n_shared_experts > 0) {
    m.has_shared_ = true;
    m.shared_ = Mlp::load(src, prefix + "shared_experts.", c.hidden_size,
                          int64_t(c.moe_intermediate_size) * c.n_shared_experts);
  }
  return m;
}

void Moe::forward(const float* x, int64_t T, float* y, const Ops& ops) const {
  const int E = rc_.n_experts, K = rc_.top_k;
  const int64_t D = hidden_;
  // Gate in f32 whatever the compute mode (MoEGate casts both sides to float32).
  Ops f32_ops = ops;
  f32_ops.compute = Compute::kF32;
  std::vector<float> logits(size_t(T * E));
  f32_ops.linear(x, T, gate_, nullptr, logits.data());
  std::vector<int> idx(size_t(T * K));
  std::vector<float> w(size_t(T * K));
  route_tokens(rc_, logits.data(), bias_.data() ? bias_.f32() : nullptr, T, idx.data(), w.data());

  // moe_infer: gather the tokens of each expert, one pass per active expert.
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(E));  // (token * K + slot) per expert
  for (int64_t i = 0; i < T * K; i++) rows[size_t(idx[i])].push_back(i);
  std::vector<int> active;
  for (int e = 0; e < E; e++)
    if (!rows[size_t(e)].empty()) active.push_back(e);
  const int n_items = int(active.size()) + (has_shared_ ? 1 : 0);

  // Each item (an active expert, or the shared experts) computes into its own
  // buffer; the sum below runs in the reference order whatever ran where.
  std::vector<std::unique_ptr<float[]>> out(static_cast<size_t>(n_items));
  auto run_item = [&](int item, const Ops& o) {
    if (item == int(active.size())) {
      out[size_t(item)] = scratch_array<float>(size_t(T * D));
      shared_.forward(x, T, out[size_t(item)].get(), o);
      return;
    }
    const auto& r = rows[size_t(active[size_t(item)])];
    const int64_t n = int64_t(r.size());
    auto xin = scratch_array<float>(size_t(n * D));
    out[size_t(item)] = scratch_array<float>(size_t(n * D));
    for (int64_t j = 0; j < n; j++) std::copy(x + (r[j] / K) * D, x + (r[j] / K + 1) * D, xin.get() + j * D);
    experts_[size_t(active[size_t(item)])].forward(xin.get(), n, out[size_t(item)].get(), o);
  };

  // Few rows per expert (decode): each thread runs whole experts on its own
  // and threads never wait for each other inside an expert. The choice
  // depends on rows per expert, not on T: a decode batch of 8 sequences qualifies.
  const bool few_rows_per_expert = !active.empty() && T * K <= kExpertParallelRowsPerExpert * int64_t(active.size());
  // An item's cost is the bytes of its weights: with a few rows each, reading
  // them once is the work, and a mix (q4_m: routed experts in 4 bits, the
  // shared ones in 8) must balance bytes, not widths.
  std::vector<int64_t> cost(static_cast<size_t>(n_items));
  for (int i = 0; i < n_items; i++)
    cost[size_t(i)] = int64_t(i == int(active.size()) ? shared_.weight_bytes()
                                                       : experts_[size_t(active[size_t(i)])].weight_bytes());
  if (!few_rows_per_expert || !spread_items(ops, cost, run_item))
    for (int i = 0; i < n_items; i++) run_item(i, ops);

  std::fill(y, y + T * D, 0.f);
  for (size_t a = 0; a < active.size(); a++) {
    const auto& r = rows[size_t(active[a])];
    for (size_t j = 0; j < r.size(); j++) {
      float* yt = y + (r[j] / K) * D;
      const float wj = w[size_t(r[j])];
      const float* o = out[a].get() + int64_t(j) * D;
      for (int64_t d = 0; d < D; d++) yt[d] += o[d] * wj;
    }
  }
  if (has_shared_) {
    const float* s = out.back().get();
    for (int64_t i = 0; i < T * D; i++) y[i] += s[i];
  }
}

}  // namespace dsvl2
