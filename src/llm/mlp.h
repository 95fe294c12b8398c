// DeepseekV2MLP: down_proj(silu(gate_proj(x)) * up_proj(x)), no biases. Used for
// the dense layers, each routed expert and the shared experts.
#pragma once
#include <cstdint>
#include <string>

#include "llm/weights.h"
#include "ops/ops.h"
#include "ops/prepack.h"

namespace dsvl2 {

struct Mlp {
  Weight gate, up, down;  // [inter, hidden], [inter, hidden], [hidden, inter]
  FusedWeight gate_up;     // gate and up as one product, once prepared
  int64_t hidden = 0, inter = 0;

  // `prefix` ends with '.', e.g. "language.model.layers.0.mlp.".
  static Mlp load(const WeightSource& src, const std::string& prefix, int64_t hidden, int64_t inter);
  // Bytes of gate, up and down as stored.
  uint64_t weight_bytes() const;
  // y[T, hidden] for x[T, hidden]; y may not alias x.
  void forward(const float* x, int64_t T, float* y, const Ops& ops) const;
  template <class F>
  void for_each_linear(F&& f) {
    f(gate);
    f(up);
    f(down);
  }
  template <class F>
  void for_each_fusable(F&& f) {
    f(FuseGroup{{&gate, &up}, &gate_up});
  }
};

}  // namespace dsvl2
