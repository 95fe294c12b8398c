#include "train/attention_train.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "train/rope_grad.h"

namespace dsvl2 {

namespace {

constexpr float kLoraNormEps = 1e-6f;  // DeepseekV2RMSNorm default for q_a / kv_a layernorms

Rope make_rope(const LanguageConfig& c) {
  if (c.use_mla) return Rope(c.qk_rope_head_dim, c.rope_theta, c.rope_scaling);
  return Rope(c.head_dim(), c.rope_theta, RopeScaling{});
}

LinearRef lin(ParamStore& ps, const std::string& p, bool bias) {
  return LinearRef{&ps.at(p + ".weight"), bias ? &ps.at(p + ".bias") : nullptr, {}};
}

}  // namespace

AttentionTrain::AttentionTrain(const LanguageConfig& c, ParamStore& ps, const std::string& p)
    : mla_(c.use_mla), rope_(make_rope(c)) {
  H_ = c.num_attention_heads;
  const bool bias = c.attention_bias;
  if (!mla_) {
    DSVL2_REQUIRE(c.rope_scaling.type.empty(), "MHA training does not support rope_scaling \"%s\"",
                  c.rope_scaling.type.c_str());
    Hkv_ = c.num_key_value_heads;
    qhd_ = vd_ = c.head_dim();
    scale_ = float(1.0 / std::sqrt(double(qhd_)));
    q_ = lin(ps, p + "q_proj", bias);
    k_ = lin(ps, p + "k_proj", bias);
    v_ = lin(ps, p + "v_proj", bias);
    o_ = lin(ps, p + "o_proj", bias);
    return;
  }
  Hkv_ = H_;
  nope_ = c.qk_nope_head_dim;
  rope_dim_ = c.qk_rope_head_dim;
  qhd_ = nope_ + rope_dim_;
  vd_ = c.v_head_dim;
  lora_ = c.kv_lora_rank;
  q_lora_ = c.q_lora_rank;
  double scale = std::pow(double(qhd_), -0.5);
  if (c.rope_scaling.type == "yarn" && c.rope_scaling.mscale_all_dim != 0) {
    const double m = yarn_get_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    scale *= m * m;
  }
  scale_ = float(scale);
  if (q_lora_ == 0) {
    q_ = lin(ps, p + "q_proj", false);
  } else {
    q_a_ = lin(ps, p + "q_a_proj", bias);
    q_a_norm_ = &ps.at(p + "q_a_layernorm.weight");
    q_b_ = lin(ps, p + "q_b_proj", false);
  }
  kv_a_ = lin(ps, p + "kv_a_proj_with_mqa", bias);
  kv_a_norm_ = &ps.at(p + "kv_a_layernorm.weight");
  kv_b_ = lin(ps, p + "kv_b_proj", false);
  o_ = lin(ps, p + "o_proj", bias);
}

AttentionArgs AttentionTrain::args(const Acts& a, int T) const {
  AttentionArgs r;
  r.q = a.q.f32();
  r.q_stride_t = int64_t(H_) * qhd_;
  r.q_stride_h = qhd_;
  r.k = a.k.f32();
  r.k_stride_s = int64_t(Hkv_) * qhd_;
  r.k_stride_h = qhd_;
  r.v = a.v.f32();
  r.v_stride_s = int64_t(Hkv_) * vd_;
  r.v_stride_h = vd_;
  r.out = const_cast<float*>(a.att.f32());
  r.o_stride_t = int64_t(H_) * vd_;
  r.o_stride_h = vd_;
  r.T = r.S = T;
  r.H = H_;
  r.Hkv = Hkv_;
  r.Dk = qhd_;
  r.Dv = vd_;
  r.scale = scale_;
  r.causal = true;
  r.q_pos0 = 0;
  return r;
}

void AttentionTrain::mla_forward(const float* x, int T, Acts& a, const TrainOps& t) const {
  const int64_t qw = int64_t(H_) * qhd_, kvw = lora_ + rope_dim_, kvb = int64_t(H_) * (nope_ + vd_);
  a.q = Tensor::f32_uninit({T, qw});
  if (q_lora_ == 0) {
    linear_forward(t, q_, x, T, a.q.f32());
  } else {
    a.qa = Tensor::f32_uninit({T, q_lora_});
    a.qan = Tensor::f32_uninit({T, q_lora_});
    linear_forward(t, q_a_, x, T, a.qa.f32());
    t.fwd.k->rms_norm(a.qa.f32(), T, q_lora_, q_a_norm_->f32(), kLoraNormEps, a.qan.f32());
    linear_forward(t, q_b_, a.qan.f32(), T, a.q.f32());
  }
  a.raw = Tensor::f32_uninit({T, kvw});
  linear_forward(t, kv_a_, x, T, a.raw.f32());
  a.cn = Tensor::f32_uninit({T, lora_});
  for (int i = 0; i < T; i++)
    t.fwd.k->rms_norm(a.raw.f32() + i * kvw, 1, lora_, kv_a_norm_->f32(), kLoraNormEps, a.cn.f32() + int64_t(i) * lora_);
  Tensor kv = Tensor::f32_uninit({T, kvb});
  linear_forward(t, kv_b_, a.cn.f32(), T, kv.f32());
  // k_pe: one rotated vector a position, shared by every head.
  std::vector<float> kpe(size_t(T) * rope_dim_);
  for (int i = 0; i < T; i++)
    std::memcpy(kpe.data() + int64_t(i) * rope_dim_, a.raw.f32() + i * kvw + lora_, size_t(rope_dim_) * 4);
  rope_.apply(kpe.data(), T, 1, rope_dim_, 0, 0, RopeStyle::kInterleaved);
  rope_.apply(a.q.f32() + nope_, T, H_, qw, qhd_, 0, RopeStyle::kInterleaved);
  a.k = Tensor::f32_uninit({T, qw});
  a.v = Tensor::f32_uninit({T, int64_t(H_) * vd_});
  for (int i = 0; i < T; i++)
    for (int h = 0; h < H_; h++) {
      const float* src = kv.f32() + i * kvb + int64_t(h) * (nope_ + vd_);
      float* k = a.k.f32() + i * qw + int64_t(h) * qhd_;
      std::memcpy(k, src, size_t(nope_) * 4);
      std::memcpy(k + nope_, kpe.data() + int64_t(i) * rope_dim_, size_t(rope_dim_) * 4);
      std::memcpy(a.v.f32() + (int64_t(i) * H_ + h) * vd_, src + nope_, size_t(vd_) * 4);
    }
}

void AttentionTrain::forward(const float* x, int T, float* y, Acts& a, const TrainOps& t) const {
  if (mla_) {
    mla_forward(x, T, a, t);
  } else {
    const int64_t qw = int64_t(H_) * qhd_, kw = int64_t(Hkv_) * qhd_;
    a.q = Tensor::f32_uninit({T, qw});
    a.k = Tensor::f32_uninit({T, kw});
    a.v = Tensor::f32_uninit({T, kw});
    linear_forward(t, q_, x, T, a.q.f32());
    linear_forward(t, k_, x, T, a.k.f32());
    linear_forward(t, v_, x, T, a.v.f32());
    rope_.apply(a.q.f32(), T, H_, qw, qhd_, 0, RopeStyle::kNeox);
    rope_.apply(a.k.f32(), T, Hkv_, kw, qhd_, 0, RopeStyle::kNeox);
  }
  a.att = Tensor::f32_uninit({T, int64_t(H_) * vd_});
  t.fwd.attention(args(a, T));
  linear_forward(t, o_, a.att.f32(), T, y);
}

void AttentionTrain::backward(const float* x, const Acts& a, const float* dy, int T, float* dx,
                              const TrainOps& t) const {
  Tensor datt = Tensor::f32(a.att.shape()), dq = Tensor::f32(a.q.shape()), dk = Tensor::f32(a.k.shape()),
         dv = Tensor::f32(a.v.shape());
  linear_backward(t, o_, a.att.f32(), dy, T, datt.f32());
  AttentionGrads g{datt.f32(), dq.f32(), dk.f32(), dv.f32()};
  t.grad->attention(args(a, T), g, t.pool());
  if (mla_) {
    mla_backward(x, a, dq.f32(), dk.f32(), dv.f32(), T, dx, t);
    return;
  }
  const int64_t qw = int64_t(H_) * qhd_, kw = int64_t(Hkv_) * qhd_;
  rope_backward(rope_, dq.f32(), T, H_, qw, qhd_, 0, RopeStyle::kNeox);
  rope_backward(rope_, dk.f32(), T, Hkv_, kw, qhd_, 0, RopeStyle::kNeox);
  linear_backward(t, q_, x, dq.f32(), T, dx);
  linear_backward(t, k_, x, dk.f32(), T, dx);
  linear_backward(t, v_, x, dv.f32(), T, dx);
}

void AttentionTrain::mla_backward(const float* x, const Acts& a, float* dq, float* dk, float* dv, int T, float* dx,
                                  const TrainOps& t) const {
  const int64_t qw = int64_t(H_) * qhd_, kvw = lora_ + rope_dim_, kvb = int64_t(H_) * (nope_ + vd_);
  // Queries.
  rope_backward(rope_, dq + nope_, T, H_, qw, qhd_, 0, RopeStyle::kInterleaved);
  if (q_lora_ == 0) {
    linear_backward(t, q_, x, dq, T, dx);
  } else {
    Tensor dqan = Tensor::f32({T, q_lora_}), dqa = Tensor::f32({T, q_lora_});
    linear_backward(t, q_b_, a.qan.f32(), dq, T, dqan.f32());
    rms_norm_backward(a.qa.f32(), dqan.f32(), T, q_lora_, q_a_norm_->f32(), kLoraNormEps, dqa.f32(),
                      q_a_norm_->grad_or_null());
    linear_backward(t, q_a_, x, dqa.f32(), T, dx);
  }
  // Keys and values back into kv_b's output and the shared k_pe.
  Tensor dkv = Tensor::f32({T, kvb}), draw = Tensor::f32({T, kvw});
  std::vector<float> dkpe(size_t(T) * rope_dim_, 0.f);
  for (int i = 0; i < T; i++)
    for (int h = 0; h < H_; h++) {
      const float* gk = dk + i * qw + int64_t(h) * qhd_;
      float* d = dkv.f32() + i * kvb + int64_t(h) * (nope_ + vd_);
      std::memcpy(d, gk, size_t(nope_) * 4);
      std::memcpy(d + nope_, dv + (int64_t(i) * H_ + h) * vd_, size_t(vd_) * 4);
      float* dp = dkpe.data() + int64_t(i) * rope_dim_;
      for (int j = 0; j < rope_dim_; j++) dp[j] += gk[nope_ + j];
    }
  rope_backward(rope_, dkpe.data(), T, 1, rope_dim_, 0, 0, RopeStyle::kInterleaved);
  Tensor dcn = Tensor::f32({T, lora_});
  linear_backward(t, kv_b_, a.cn.f32(), dkv.f32(), T, dcn.f32());
  for (int i = 0; i < T; i++) {
    rms_norm_backward(a.raw.f32() + i * kvw, dcn.f32() + int64_t(i) * lora_, 1, lora_, kv_a_norm_->f32(),
                      kLoraNormEps, draw.f32() + i * kvw, kv_a_norm_->grad_or_null());
    std::memcpy(draw.f32() + i * kvw + lora_, dkpe.data() + int64_t(i) * rope_dim_, size_t(rope_dim_) * 4);
  }
  linear_backward(t, kv_a_, x, draw.f32(), T, dx);
}

}  // namespace dsvl2
