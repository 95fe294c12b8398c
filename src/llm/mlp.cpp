#include "llm/mlp.h"

#include <vector>

namespace dsvl2 {

Mlp Mlp::load(const WeightSource& src, const std::string& prefix, int64_t hidden, int64_t inter) {
  Mlp m;
  m.hidden = hidden;
  m.inter = inter;
  m.gate = load_linear(src, prefix + "gate_proj.weight", inter, hidden);
  m.up = load_linear(src, prefix + "up_proj.weight", inter, hidden);
  m.down = load_linear(src, prefix + "down_proj.weight", hidden, inter);
  return m;
}

void Mlp::forward(const float* x, int64_t T, float* y, const Ops& ops) const {
  if (T == 0) return;
  std::vector<float> g(size_t(T * inter)), u(size_t(T * inter));
  ops.linear(x, T, gate, nullptr, g.data());
  ops.linear(x, T, up, nullptr, u.data());
  ops.k->silu_mul(g.data(), u.data(), T * inter);
  ops.linear(g.data(), T, down, nullptr, y);
}

}  // namespace dsvl2
