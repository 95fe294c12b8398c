#include "llm/mlp.h"

#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/scratch.h"

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

uint64_t Mlp::weight_bytes() const {
  uint64_t total = 0;
  for (const Weight* w : {&gate, &up, &down}) {
    uint64_t b = 0;
    if (dtype_bytes(w->dtype, w->rows * w->cols, &b)) total += b;
  }
  return total;
}

void Mlp::forward(const float* x, int64_t T, float* y, const Ops& ops) const {
  if (T == 0) return;
  auto h = scratch_array<float>(size_t(T * inter));
  if (gate_up.usable(ops)) {
    // One product [T, gate | up]; each row's silu(gate) * up into h, rows on
    // every thread (the prompt's rows are megabytes).
    auto gu = scratch_array<float>(size_t(T * 2 * inter));
    ops.linear(x, T, gate_up.w, nullptr, gu.get());
    ops.pool->parallel_for(T, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; t++) {
        std::memcpy(h.get() + t * inter, gu.get() + t * 2 * inter, size_t(inter) * sizeof(float));
        ops.k->silu_mul(h.get() + t * inter, gu.get() + (t * 2 + 1) * inter, inter);
      }
    }, 16);
  } else {
    auto u = scratch_array<float>(size_t(T * inter));
    ops.linear(x, T, gate, nullptr, h.get());
    ops.linear(x, T, up, nullptr, u.get());
    ops.k->silu_mul(h.get(), u.get(), T * inter);
  }
  ops.linear(h.get(), T, down, nullptr, y);
}

}  // namespace dsvl2
