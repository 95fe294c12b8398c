// DeepSeek-VL2 for training: images -> SigLIP -> adaptor -> spliced at the
// image tokens -> decoder -> loss, then backward through the same chain in
// reverse order. Parts whose parameters are all frozen are run forward
// only, and backward stops where no trainable parameter lies below.
//
//   ParamStore ps(ckpt, skip_attn_pool);
//   ps.set_trainable(...);
//   VlTrain model(cfg, ps);
//   LossParts l = model.step(sample, ops, /*loss_scale=*/1.f / accumulation, recompute);
#pragma once
#include <cstdint>
#include <vector>

#include "io/model_config.h"
#include "train/adaptor_train.h"
#include "train/decoder_train.h"
#include "train/sft_sample.h"
#include "train/siglip_train.h"

namespace dsvl2 {


// The names training never touches: the MAP head SigLIP does not use.
bool is_unused_parameter(const std::string& name);

class VlTrain {
 public:
  VlTrain(const VLConfig& cfg, ParamStore& ps);

  // Forward and backward of one sample: adds d(loss_scale * (loss + aux)) to
  // every trainable parameter's gradient and returns the unscaled parts.
  LossParts step(const SftSample& s, const TrainOps& t, float loss_scale, bool recompute);

  DecoderTrain& decoder() { return decoder_; }

 private:
  Tensor embeds(const SftSample& s, const TrainOps& t, bool recompute, bool keep);

  VLConfig cfg_;
  SiglipTrain vision_;
  AdaptorTrain adaptor_;
  DecoderTrain decoder_;
  int64_t n_image_tokens_ = 0;
};

}  // namespace dsvl2
