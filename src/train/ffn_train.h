// The decoder's feed-forward blocks for training: the SwiGLU MLP (dense
// layers, each routed expert, the shared experts) and DeepseekV2MoE in
// training mode (official MoEGate.forward with self.training):
//   scores = softmax | sigmoid(x W_gate^T); experts picked exactly as
//   inference picks them (llm/moe.h route_tokens); weights = the picked
//   scores (masked ones for group_limited_greedy), normalised and scaled as
//   the config says; y = sum_k w_k expert_k(x) + shared(x).
//   Balance loss (softmax gates, aux_loss_alpha > 0, not noaux_tc):
//   aux = alpha * sum_e ce[e] * mean_t scores[t, e], ce[e] = picks of e / (T k / E);
//   its gradient joins backward (AddAuxiliaryLoss), its value is reported.
// noaux_tc gates run as the official eval path (the official code refuses
// to train them): no balance loss, e_score_correction_bias gets no gradient.
#pragma once
#include <string>
#include <vector>

#include "io/model_config.h"
#include "llm/moe.h"
#include "train/linear.h"

namespace dsvl2 {

class MlpTrain {
 public:
  MlpTrain() = default;
  MlpTrain(ParamStore& ps, const std::string& prefix);  // prefix ends with '.'
  struct Acts {
    Tensor g, u, a;  // gate_proj and up_proj outputs, silu(g) * u
  };
  void forward(const float* x, int64_t T, float* y, Acts& acts, const TrainOps& t) const;
  void backward(const float* x, const Acts& acts, const float* dy, int64_t T, float* dx, const TrainOps& t) const;
  LinearRef gate, up, down;
};

class MoeTrain {
 public:
  MoeTrain(const LanguageConfig& c, ParamStore& ps, const std::string& prefix);  // prefix ends "mlp."
  struct Acts {
    Tensor logits, scores;          // [T, E]
    std::vector<int> idx;           // [T, k] picked experts
    std::vector<float> raw, w;      // picked scores before / after normalisation and scaling
    std::vector<uint8_t> masked;    // picked but masked by group_limited_greedy (weight 0, no gradient)
    std::vector<std::vector<int64_t>> rows;  // per expert: token * k + slot
    std::vector<MlpTrain::Acts> expert;      // per expert
    std::vector<Tensor> xin, out;            // per expert: gathered inputs, outputs
    MlpTrain::Acts shared;
    std::vector<double> ce;  // balance loss: picks of each expert / (T k / E), empty without one
    double aux = 0;
  };
  // y (=); acts.aux holds this layer's balance loss (0 when none).
  void forward(const float* x, int64_t T, float* y, Acts& a, const TrainOps& t) const;
  // dx (+=); the balance loss's gradient is added scaled by aux_scale.
  void backward(const float* x, const Acts& a, const float* dy, int64_t T, float* dx, float aux_scale,
                const TrainOps& t) const;

  std::vector<MlpTrain>& experts() { return experts_; }
  MlpTrain* shared() { return has_shared_ ? &shared_ : nullptr; }

 private:
  RouterConfig rc_;
  double alpha_ = 0;
  LinearRef gate_;
  Param* bias_ = nullptr;  // e_score_correction_bias (noaux_tc)
  std::vector<MlpTrain> experts_;
  MlpTrain shared_;
  bool has_shared_ = false;
};

}  // namespace dsvl2
