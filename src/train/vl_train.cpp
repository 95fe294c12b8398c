#include "train/vl_train.h"

#include <cstring>

#include "core/error.h"

namespace dsvl2 {

bool is_unused_parameter(const std::string& name) { return name.rfind("vision.attn_pool.", 0) == 0; }

VlTrain::VlTrain(const VLConfig& cfg, ParamStore& ps)
    : cfg_(cfg), vision_(cfg.vision, ps), adaptor_(cfg, ps), decoder_(cfg.language, ps) {
  DSVL2_REQUIRE(cfg.projector.input_dim == cfg.vision.width,
                "config: projector input_dim %d differs from the vision width %d", cfg.projector.input_dim,
                cfg.vision.width);
}

Tensor VlTrain::embeds(const SftSample& s, const TrainOps& t, bool recompute, bool keep) {
  const int64_t T = int64_t(s.input_ids.size()), D = cfg_.language.hidden_size;
  DSVL2_REQUIRE(T >= 1, "training: an empty sample");
  DSVL2_REQUIRE(s.labels.size() == size_t(T) && s.image_mask.size() == size_t(T),
                "training: %zu labels and %zu mask entries for %lld tokens", s.labels.size(), s.image_mask.size(),
                (long long)T);
  Tensor e = Tensor::f32({T, D});
  decoder_.embed(s.input_ids, e.f32());
  int64_t slots = 0;
  for (uint8_t m : s.image_mask) slots += m != 0;
  n_image_tokens_ = slots;
  if (slots == 0) return e;
  const Tensor& px = s.images.pixel_values;
  DSVL2_REQUIRE(px.data(), "training: the sample has %lld image positions but no images",
                (long long)slots);
  Tensor feats, tokens;
  vision_.forward(px, t, recompute, &feats);
  adaptor_.forward(feats, px.dim(0), s.images.images_spatial_crop, t, &tokens);
  DSVL2_REQUIRE(tokens.dim(0) == slots, "training: the images give %lld tokens for %lld image positions",
                (long long)tokens.dim(0), (long long)slots);
  int64_t k = 0;
  for (int64_t i = 0; i < T; i++)
    if (s.image_mask[size_t(i)]) std::memcpy(e.f32() + i * D, tokens.f32() + (k++) * D, size_t(D) * 4);
  if (!keep) vision_.release();
  return e;
}

LossParts VlTrain::step(const SftSample& s, const TrainOps& t, float loss_scale, bool recompute) {
  const bool image_grads = vision_.trainable() || adaptor_.trainable();
  Tensor e = embeds(s, t, recompute, vision_.trainable());
  const int64_t T = e.dim(0), D = e.dim(1);
  LossParts l = decoder_.forward(e.f32(), int(T), s.labels, t, recompute);
  const bool need_dembeds = decoder_.embed_trainable() || (image_grads && n_image_tokens_ > 0);
  Tensor de;
  if (need_dembeds) de = Tensor::f32({T, D});
  decoder_.backward(t, loss_scale, need_dembeds ? de.f32() : nullptr);
  decoder_.release();
  if (!need_dembeds) return l;
  // masked_scatter_ overwrote the image positions: their text embeddings get nothing.
  decoder_.embed_backward(s.input_ids, de.f32(), s.image_mask);
  if (!image_grads || n_image_tokens_ == 0) return l;
  Tensor dtok = Tensor::f32({n_image_tokens_, D});
  int64_t k = 0;
  for (int64_t i = 0; i < T; i++)
    if (s.image_mask[size_t(i)]) std::memcpy(dtok.f32() + (k++) * D, de.f32() + i * D, size_t(D) * 4);
  Tensor dvis;
  const bool vision = vision_.trainable();
  adaptor_.backward(dtok, t, vision ? &dvis : nullptr);
  if (vision) vision_.backward(dvis, t);
  vision_.release();
  return l;
}

}  // namespace dsvl2
