#include "train/decoder_train.h"

#include <cstring>

#include "core/error.h"

namespace dsvl2 {

DecoderTrain::DecoderTrain(const LanguageConfig& c, ParamStore& ps, const std::string& prefix) : cfg_(c) {
  DSVL2_REQUIRE(c.hidden_act == "silu", "language model: hidden_act \"%s\" is not supported", c.hidden_act.c_str());
  const std::string m = prefix + "model.";
  embed_ = &ps.at(m + "embed_tokens.weight");
  final_norm_ = &ps.at(m + "norm.weight");
  lm_head_ = LinearRef{&ps.at(prefix + "lm_head.weight"), nullptr, {}};
  for (int i = 0; i < c.num_hidden_layers; i++) {
    const std::string p = m + "layers." + std::to_string(i) + ".";
    Layer L{&ps.at(p + "input_layernorm.weight"), &ps.at(p + "post_attention_layernorm.weight"),
            AttentionTrain(c, ps, p + "self_attn."), std::nullopt, std::nullopt};
    if (c.is_moe_layer(i))
      L.moe.emplace(c, ps, p + "mlp.");
    else
      L.dense.emplace(ps, p + "mlp.");
    layers_.push_back(std::move(L));
  }
}

void DecoderTrain::embed(const std::vector<int32_t>& ids, float* out) const {
  const int64_t D = cfg_.hidden_size;
  const bool f32 = embed_->value.data() != nullptr;
  for (size_t t = 0; t < ids.size(); t++) {
    DSVL2_REQUIRE(ids[t] >= 0 && ids[t] < cfg_.vocab_size, "token id %d at position %zu is outside the vocabulary (%d)",
                  ids[t], t, cfg_.vocab_size);
    if (f32) {
      std::memcpy(out + int64_t(t) * D, embed_->f32() + int64_t(ids[t]) * D, size_t(D) * 4);
    } else {
      const size_t es = dtype_size(embed_->stored.dtype);
      TensorView row{embed_->stored.dtype, {D}, static_cast<const uint8_t*>(embed_->stored.data) + ids[t] * D * es,
                     size_t(D) * es};
      Tensor r = to_f32(row);
      std::memcpy(out + int64_t(t) * D, r.f32(), size_t(D) * 4);
    }
  }
}

void DecoderTrain::embed_backward(const std::vector<int32_t>& ids, const float* d, const std::vector<uint8_t>& skip) {
  if (!embed_->trainable) return;
  const int64_t D = cfg_.hidden_size;
  float* g = embed_->grad.f32();
  for (size_t t = 0; t < ids.size(); t++) {
    if (!skip.empty() && skip[t]) continue;
    for (int64_t i = 0; i < D; i++) g[int64_t(ids[t]) * D + i] += d[int64_t(t) * D + i];
  }
}

void DecoderTrain::layer_forward(const Layer& L, const float* h_in, float* h_out, Acts& a, const TrainOps& t) const {
  const int64_t D = cfg_.hidden_size, T = T_;
  const float eps = float(cfg_.rms_norm_eps);
  a.xn1 = Tensor::f32_uninit({T, D});
  a.h_mid = Tensor::f32_uninit({T, D});
  a.xn2 = Tensor::f32_uninit({T, D});
  t.fwd.k->rms_norm(h_in, T, D, L.in_norm->f32(), eps, a.xn1.f32());
  L.attn.forward(a.xn1.f32(), int(T), a.h_mid.f32(), a.attn, t);
  float* hm = a.h_mid.f32();
  for (int64_t i = 0; i < T * D; i++) hm[i] += h_in[i];
  t.fwd.k->rms_norm(hm, T, D, L.post_norm->f32(), eps, a.xn2.f32());
  if (L.moe)
    L.moe->forward(a.xn2.f32(), T, h_out, a.moe, t);
  else
    L.dense->forward(a.xn2.f32(), T, h_out, a.dense, t);
  for (int64_t i = 0; i < T * D; i++) h_out[i] += hm[i];
}

void DecoderTrain::layer_backward(const Layer& L, const float* h_in, const Acts& a, const float* dh_out, float* dh_in,
                                  float loss_scale, const TrainOps& t) const {
  const int64_t D = cfg_.hidden_size, T = T_;
  const float eps = float(cfg_.rms_norm_eps);
  Tensor dxn = Tensor::f32({T, D}), dmid = Tensor::f32({T, D});
  std::memcpy(dmid.f32(), dh_out, dmid.nbytes());
  if (L.moe)
    L.moe->backward(a.xn2.f32(), a.moe, dh_out, T, dxn.f32(), loss_scale, t);
  else
    L.dense->backward(a.xn2.f32(), a.dense, dh_out, T, dxn.f32(), t);
  rms_norm_backward(a.h_mid.f32(), dxn.f32(), T, D, L.post_norm->f32(), eps, dmid.f32(), L.post_norm->grad_or_null());
  std::memcpy(dh_in, dmid.f32(), dmid.nbytes());
  std::memset(dxn.data(), 0, dxn.nbytes());
  L.attn.backward(a.xn1.f32(), a.attn, dmid.f32(), int(T), dxn.f32(), t);
  rms_norm_backward(h_in, dxn.f32(), T, D, L.in_norm->f32(), eps, dh_in, L.in_norm->grad_or_null());
}

void DecoderTrain::release() {
  h_in_.clear();
  acts_.clear();
  xn_final_ = Tensor();
  dlogits_ = Tensor();
}

LossParts DecoderTrain::forward(const float* embeds, int T, const std::vector<int32_t>& labels, const TrainOps& t,
                                bool recompute) {
  DSVL2_REQUIRE(T >= 1 && int64_t(labels.size()) == T, "training: %zu labels for %d positions", labels.size(), T);
  DSVL2_REQUIRE(T <= cfg_.max_position_embeddings, "training: a sample of %d positions exceeds the context length %d",
                T, cfg_.max_position_embeddings);
  release();
  T_ = T;
  recompute_ = recompute;
  const int64_t D = cfg_.hidden_size, V = cfg_.vocab_size;
  LossParts out;
  Tensor h = Tensor::f32_uninit({T, D});
  std::memcpy(h.f32(), embeds, h.nbytes());
  if (!recompute_) acts_.resize(layers_.size());
  for (size_t l = 0; l < layers_.size(); l++) {
    Tensor next = Tensor::f32_uninit({T, D});
    Acts scratch;
    Acts& a = recompute_ ? scratch : acts_[l];
    layer_forward(layers_[l], h.f32(), next.f32(), a, t);
    out.aux_loss += a.moe.aux;
    h_in_.push_back(std::move(h));
    h = std::move(next);
  }
  // Shifted labels: position t predicts labels[t + 1].
  rows_.clear();
  targets_.clear();
  for (int i = 0; i + 1 < T; i++)
    if (labels[size_t(i) + 1] >= 0) {
      DSVL2_REQUIRE(labels[size_t(i) + 1] < V, "training: label %d at position %d is outside the vocabulary (%lld)",
                    labels[size_t(i) + 1], i + 1, (long long)V);
      rows_.push_back(i);
      targets_.push_back(labels[size_t(i) + 1]);
    }
  out.supervised = int64_t(rows_.size());
  const int64_t R = out.supervised;
  Tensor sel = Tensor::f32({std::max<int64_t>(R, 1), D});
  for (int64_t r = 0; r < R; r++) std::memcpy(sel.f32() + r * D, h.f32() + rows_[size_t(r)] * D, size_t(D) * 4);
  h_in_.push_back(std::move(h));
  if (R == 0) return out;
  xn_final_ = Tensor::f32_uninit({R, D});
  t.fwd.k->rms_norm(sel.f32(), R, D, final_norm_->f32(), float(cfg_.rms_norm_eps), xn_final_.f32());
  Tensor logits = Tensor::f32_uninit({R, V});
  linear_forward(t, lm_head_, xn_final_.f32(), R, logits.f32());
  dlogits_ = Tensor::f32_uninit({R, V});
  out.loss = cross_entropy(logits.f32(), R, V, targets_.data(), 1.f, dlogits_.f32());
  return out;
}

void DecoderTrain::backward(const TrainOps& t, float loss_scale, float* d_embeds) {
  DSVL2_CHECK(h_in_.size() == layers_.size() + 1, "decoder backward without forward");
  const int64_t D = cfg_.hidden_size, T = T_, R = int64_t(rows_.size());
  const float eps = float(cfg_.rms_norm_eps);
  Tensor dh = Tensor::f32({T, D});
  if (R > 0) {
    float* dl = dlogits_.f32();
    const int64_t nl = dlogits_.numel();
    for (int64_t i = 0; i < nl; i++) dl[i] *= loss_scale;
    Tensor dxn = Tensor::f32({R, D}), sel = Tensor::f32({R, D}), dsel = Tensor::f32({R, D});
    linear_backward(t, lm_head_, xn_final_.f32(), dl, R, dxn.f32());
    for (int64_t r = 0; r < R; r++) std::memcpy(sel.f32() + r * D, h_in_.back().f32() + rows_[size_t(r)] * D, size_t(D) * 4);
    rms_norm_backward(sel.f32(), dxn.f32(), R, D, final_norm_->f32(), eps, dsel.f32(), final_norm_->grad_or_null());
    for (int64_t r = 0; r < R; r++)
      std::memcpy(dh.f32() + rows_[size_t(r)] * D, dsel.f32() + r * D, size_t(D) * 4);
  }
  for (size_t l = layers_.size(); l-- > 0;) {
    Acts scratch;
    const Acts* a = &scratch;
    if (recompute_) {
      Tensor tmp = Tensor::f32_uninit({T, D});
      layer_forward(layers_[l], h_in_[l].f32(), tmp.f32(), scratch, t);
    } else {
      a = &acts_[l];
    }
    Tensor dprev = Tensor::f32_uninit({T, D});
    layer_backward(layers_[l], h_in_[l].f32(), *a, dh.f32(), dprev.f32(), loss_scale, t);
    dh = std::move(dprev);
    if (!recompute_) acts_[l] = Acts();
  }
  if (d_embeds) std::memcpy(d_embeds, dh.f32(), dh.nbytes());
}

}  // namespace dsvl2
