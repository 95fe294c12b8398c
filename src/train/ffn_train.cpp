#include "train/ffn_train.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace dsvl2 {

MlpTrain::MlpTrain(ParamStore& ps, const std::string& p) {
  gate = LinearRef{&ps.at(p + "gate_proj.weight"), nullptr, {}};
  up = LinearRef{&ps.at(p + "up_proj.weight"), nullptr, {}};
  down = LinearRef{&ps.at(p + "down_proj.weight"), nullptr, {}};
}

void MlpTrain::forward(const float* x, int64_t T, float* y, Acts& a, const TrainOps& t) const {
  const int64_t I = gate.rows();
  a.g = Tensor::f32_uninit({T, I});
  a.u = Tensor::f32_uninit({T, I});
  a.a = Tensor::f32_uninit({T, I});
  linear_forward(t, gate, x, T, a.g.f32());
  linear_forward(t, up, x, T, a.u.f32());
  std::memcpy(a.a.f32(), a.g.f32(), a.g.nbytes());
  t.fwd.k->silu_mul(a.a.f32(), a.u.f32(), T * I);
  linear_forward(t, down, a.a.f32(), T, y);
}

void MlpTrain::backward(const float* x, const Acts& a, const float* dy, int64_t T, float* dx,
                        const TrainOps& t) const {
  const int64_t I = gate.rows();
  Tensor da = Tensor::f32({T, I}), dg = Tensor::f32({T, I}), du = Tensor::f32({T, I});
  linear_backward(t, down, a.a.f32(), dy, T, da.f32());
  silu_mul_backward(a.g.f32(), a.u.f32(), da.f32(), dg.f32(), du.f32(), T * I);
  linear_backward(t, gate, x, dg.f32(), T, dx);
  linear_backward(t, up, x, du.f32(), T, dx);
}

MoeTrain::MoeTrain(const LanguageConfig& c, ParamStore& ps, const std::string& p) : rc_(RouterConfig::from(c)) {
  gate_ = LinearRef{&ps.at(p + "gate.weight"), nullptr, {}};
  if (rc_.method == RouterConfig::Method::kNoauxTc) {
    bias_ = &ps.at(p + "gate.e_score_correction_bias");
  } else if (rc_.scoring == RouterConfig::Scoring::kSoftmax) {
    alpha_ = c.aux_loss_alpha;
  }
  for (int e = 0; e < c.n_routed_experts; e++) experts_.emplace_back(ps, p + "experts." + std::to_string(e) + ".");
  if (c.n_shared_experts > 0) {
    has_shared_ = true;
    shared_ = MlpTrain(ps, p + "shared_experts.");
  }
}

void MoeTrain::forward(const float* x, int64_t T, float* y, Acts& a, const TrainOps& t) const {
  const int E = rc_.n_experts, K = rc_.top_k;
  const int64_t D = gate_.cols();
  a.logits = Tensor::f32_uninit({T, E});
  a.scores = Tensor::f32_uninit({T, E});
  TrainOps f32 = t;  // MoEGate computes its logits in float32 whatever the model's dtype
  f32.fwd.compute = Compute::kF32;
  linear_forward(f32, gate_, x, T, a.logits.f32());
  gate_scores(rc_, a.logits.f32(), T, a.scores.f32());
  // The pick is inference's (ties, groups, the correction bias); the weights
  // are rebuilt here from the scores so that backward knows their formula.
  a.idx.assign(size_t(T * K), 0);
  std::vector<float> w_inf(size_t(T * K));
  route_tokens(rc_, a.logits.f32(), bias_ ? bias_->f32() : nullptr, T, a.idx.data(), w_inf.data());
  a.raw.assign(size_t(T * K), 0.f);
  a.w.assign(size_t(T * K), 0.f);
  a.masked.assign(size_t(T * K), 0);
  for (int64_t i = 0; i < T; i++) {
    float sum = 0;
    for (int k = 0; k < K; k++) {
      const size_t j = size_t(i * K + k);
      const float s = a.scores.f32()[i * E + a.idx[j]];
      // group_limited_greedy gathers masked scores: a pick from a dropped group weighs 0.
      a.masked[j] = rc_.method == RouterConfig::Method::kGroupLimitedGreedy && w_inf[j] == 0.f && s != 0.f;
      a.raw[j] = a.masked[j] ? 0.f : s;
      sum += a.raw[j];
    }
    for (int k = 0; k < K; k++) {
      const size_t j = size_t(i * K + k);
      a.w[j] = K > 1 && rc_.norm_topk_prob ? a.raw[j] / (sum + 1e-20f) * rc_.routed_scaling_factor
                                           : a.raw[j] * rc_.routed_scaling_factor;
    }
  }
  // Balance loss (its gradient is added in backward).
  a.aux = 0;
  a.ce.clear();
  if (alpha_ > 0) {
    a.ce.assign(size_t(E), 0.0);
    for (int id : a.idx) a.ce[size_t(id)] += 1.0 / (double(T) * K / E);
    std::vector<double> mean(size_t(E), 0.0);
    for (int64_t i = 0; i < T; i++)
      for (int e = 0; e < E; e++) mean[size_t(e)] += a.scores.f32()[i * E + e];
    for (int e = 0; e < E; e++) a.aux += a.ce[size_t(e)] * (mean[size_t(e)] / double(T));
    a.aux *= alpha_;
  }
  // Experts over their gathered rows, then the weighted sum and the shared experts.
  a.rows.assign(size_t(E), {});
  for (int64_t j = 0; j < T * K; j++) a.rows[size_t(a.idx[size_t(j)])].push_back(j);
  for (auto* v : {&a.xin, &a.out}) {
    v->clear();
    v->resize(size_t(E));
  }
  a.expert.clear();
  a.expert.resize(size_t(E));
  std::fill(y, y + T * D, 0.f);
  for (int e = 0; e < E; e++) {
    const auto& r = a.rows[size_t(e)];
    if (r.empty()) continue;
    const int64_t n = int64_t(r.size());
    a.xin[size_t(e)] = Tensor::f32_uninit({n, D});
    a.out[size_t(e)] = Tensor::f32_uninit({n, D});
    for (int64_t j = 0; j < n; j++)
      std::memcpy(a.xin[size_t(e)].f32() + j * D, x + (r[size_t(j)] / K) * D, size_t(D) * 4);
    experts_[size_t(e)].forward(a.xin[size_t(e)].f32(), n, a.out[size_t(e)].f32(), a.expert[size_t(e)], t);
    for (int64_t j = 0; j < n; j++) {
      float* yt = y + (r[size_t(j)] / K) * D;
      const float wj = a.w[size_t(r[size_t(j)])];
      const float* o = a.out[size_t(e)].f32() + j * D;
      for (int64_t d = 0; d < D; d++) yt[d] += o[d] * wj;
    }
  }
  if (has_shared_) {
    std::vector<float> s(size_t(T * D));
    shared_.forward(x, T, s.data(), a.shared, t);
    for (int64_t i = 0; i < T * D; i++) y[i] += s[size_t(i)];
  }
}

void MoeTrain::backward(const float* x, const Acts& a, const float* dy, int64_t T, float* dx, float aux_scale,
                        const TrainOps& t) const {
  const int E = rc_.n_experts, K = rc_.top_k;
  const int64_t D = gate_.cols();
  if (has_shared_) shared_.backward(x, a.shared, dy, T, dx, t);
  std::vector<float> dw(size_t(T * K), 0.f);
  for (int e = 0; e < E; e++) {
    const auto& r = a.rows[size_t(e)];
    if (r.empty()) continue;
    const int64_t n = int64_t(r.size());
    Tensor dout = Tensor::f32({n, D}), dxin = Tensor::f32({n, D});
    for (int64_t j = 0; j < n; j++) {
      const int64_t slot = r[size_t(j)];
      const float* g = dy + (slot / K) * D;
      const float* o = a.out[size_t(e)].f32() + j * D;
      float* d = dout.f32() + j * D;
      double dot = 0;
      for (int64_t k = 0; k < D; k++) {
        d[k] = g[k] * a.w[size_t(slot)];
        dot += double(g[k]) * o[k];
      }
      dw[size_t(slot)] = float(dot);
    }
    experts_[size_t(e)].backward(a.xin[size_t(e)].f32(), a.expert[size_t(e)], dout.f32(), n, dxin.f32(), t);
    for (int64_t j = 0; j < n; j++) {
      float* xt = dx + (r[size_t(j)] / K) * D;
      const float* g = dxin.f32() + j * D;
      for (int64_t k = 0; k < D; k++) xt[k] += g[k];
    }
  }
  // Through normalisation and scaling to the picked scores, plus the balance loss.
  Tensor dscores = Tensor::f32({T, E}), dlogits = Tensor::f32({T, E});
  for (int64_t i = 0; i < T; i++) {
    const float* raw = a.raw.data() + i * K;
    const float* g = dw.data() + i * K;
    float* ds = dscores.f32() + i * E;
    if (K > 1 && rc_.norm_topk_prob) {
      float sum = 0;
      for (int k = 0; k < K; k++) sum += raw[k];
      const double den = double(sum) + 1e-20;
      double dot = 0;
      for (int k = 0; k < K; k++) dot += double(g[k]) * raw[k];
      for (int k = 0; k < K; k++)
        if (!a.masked[size_t(i * K + k)])
          ds[a.idx[size_t(i * K + k)]] += float(rc_.routed_scaling_factor * (g[k] / den - dot / (den * den)));
    } else {
      for (int k = 0; k < K; k++)
        if (!a.masked[size_t(i * K + k)]) ds[a.idx[size_t(i * K + k)]] += g[k] * rc_.routed_scaling_factor;
    }
  }
  if (alpha_ > 0)  // d aux / d scores[t, e] = alpha * ce[e] / T
    for (int64_t i = 0; i < T; i++)
      for (int e = 0; e < E; e++) dscores.f32()[i * E + e] += float(aux_scale * alpha_ * a.ce[size_t(e)] / double(T));
  for (int64_t i = 0; i < T; i++) {
    const float* s = a.scores.f32() + i * E;
    const float* ds = dscores.f32() + i * E;
    float* dl = dlogits.f32() + i * E;
    if (rc_.scoring == RouterConfig::Scoring::kSoftmax) {
      double dot = 0;
      for (int e = 0; e < E; e++) dot += double(s[e]) * ds[e];
      for (int e = 0; e < E; e++) dl[e] = float(s[e] * (ds[e] - dot));
    } else {
      for (int e = 0; e < E; e++) dl[e] = ds[e] * s[e] * (1.f - s[e]);
    }
  }
  linear_backward(t, gate_, x, dlogits.f32(), T, dx);
}

}  // namespace dsvl2
