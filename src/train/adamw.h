// AdamW as torch.optim.AdamW computes it (decoupled weight decay applied
// first, bias-corrected moments, eps added after the square root), over the
// trainable parameters of a ParamStore in its order. The moments live here,
// keyed by parameter name, so that a resumed run finds them again.
#pragma once
#include <map>
#include <string>

#include "core/thread_pool.h"
#include "train/params.h"

namespace dsvl2 {

struct AdamWConfig {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  explicit AdamW(const AdamWConfig& c) : cfg_(c) {}
  // One update of every trainable parameter from its gradient with learning
  // rate `lr` (the schedule's value for this step).
  void step(ParamStore& ps, double lr, ThreadPool* pool = nullptr);
  int64_t steps() const { return t_; }

  // Moments as tensors "m.NAME" / "v.NAME" plus the step count, for checkpoints.
  std::map<std::string, Tensor>& moments() { return state_; }
  void set_steps(int64_t t) { t_ = t; }

 private:
  AdamWConfig cfg_;
  int64_t t_ = 0;
  std::map<std::string, Tensor> state_;
};

}  // namespace dsvl2
