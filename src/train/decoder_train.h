// The DeepSeekMoE language model for training (DeepseekV2ForCausalLM with
// labels): inputs_embeds -> layers -> final RMSNorm -> lm_head -> the mean
// cross-entropy of logits[t] against labels[t + 1] over labels >= 0. Only
// the rows that predict a supervised label go through lm_head (a 129k-wide
// vocabulary times every image token would be most of the step's memory).
// With `recompute`, each layer keeps only its input and runs again during
// backward.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "train/attention_train.h"
#include "train/ffn_train.h"

namespace dsvl2 {

struct LossParts {
  double loss = 0;      // mean cross-entropy over supervised positions
  double aux_loss = 0;  // sum of the MoE layers' balance losses
  int64_t supervised = 0;
};

class DecoderTrain {
 public:
  DecoderTrain(const LanguageConfig& c, ParamStore& ps, const std::string& prefix = "language.");

  // Token embeddings [T, hidden] (=) for ids (Error outside the vocabulary).
  void embed(const std::vector<int32_t>& ids, float* out) const;
  // Adds d_embeds rows into embed_tokens' gradient, skipping rows where skip[t] != 0.
  void embed_backward(const std::vector<int32_t>& ids, const float* d_embeds, const std::vector<uint8_t>& skip);
  bool embed_trainable() const { return embed_->trainable; }

  // Runs the model on embeds[T, hidden] and returns the loss parts; keeps
  // what backward needs. labels[T]: -100 where unsupervised.
  LossParts forward(const float* embeds, int T, const std::vector<int32_t>& labels, const TrainOps& t,
                    bool recompute);
  // d(loss_scale * (loss + aux)) into every trainable parameter; d_embeds
  // (=, [T, hidden]) when non-null.
  void backward(const TrainOps& t, float loss_scale, float* d_embeds);
  void release();

  struct Layer {
    Param *in_norm, *post_norm;
    AttentionTrain attn;
    std::optional<MlpTrain> dense;
    std::optional<MoeTrain> moe;
  };
  std::vector<Layer>& layers() { return layers_; }

 private:
  struct Acts {
    Tensor xn1, h_mid, xn2;
    AttentionTrain::Acts attn;
    MlpTrain::Acts dense;
    MoeTrain::Acts moe;
  };
  void layer_forward(const Layer& L, const float* h_in, float* h_out, Acts& a, const TrainOps& t) const;
  void layer_backward(const Layer& L, const float* h_in, const Acts& a, const float* dh_out, float* dh_in,
                      float loss_scale, const TrainOps& t) const;

  LanguageConfig cfg_;
  Param *embed_, *final_norm_;
  LinearRef lm_head_;
  std::vector<Layer> layers_;
  // Kept by forward.
  int T_ = 0;
  bool recompute_ = false;
  std::vector<Tensor> h_in_;  // each layer's input, then the final norm's input
  std::vector<Acts> acts_;
  std::vector<int32_t> rows_, targets_;  // positions that predict a label, and the labels
  Tensor xn_final_, dlogits_;
};

}  // namespace dsvl2
