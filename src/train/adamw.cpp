#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

namespace dsvl2 {

void AdamW::step(ParamStore& ps, double lr, ThreadPool* pool) {
  t_++;
  const double b1 = cfg_.beta1, b2 = cfg_.beta2;
  const double bc1 = 1 - std::pow(b1, double(t_)), bc2 = 1 - std::pow(b2, double(t_));
  const float step_size = float(lr / bc1), bc2_sqrt = float(std::sqrt(bc2));
  const float decay = float(1 - lr * cfg_.weight_decay), eps = float(cfg_.eps);
  const float fb1 = float(b1), fb2 = float(b2);
  ps.for_each_trainable([&](Param& p) {
    Tensor& m = state_["m." + p.name];
    Tensor& v = state_["v." + p.name];
    if (!m.data()) m = Tensor::f32(p.shape);
    if (!v.data()) v = Tensor::f32(p.shape);
    DSVL2_REQUIRE(m.numel() == p.numel() && v.numel() == p.numel(), "optimizer state of %s has %lld values, not %lld",
                  p.name.c_str(), (long long)m.numel(), (long long)p.numel());
    float* w = p.f32_mut();
    const float* g = p.grad.f32();
    float* mm = m.f32();
    float* vv = v.f32();
    auto update = [&](int64_t a, int64_t b, int) {
      for (int64_t i = a; i < b; i++) {
        w[i] *= decay;
        mm[i] = fb1 * mm[i] + (1 - fb1) * g[i];
        vv[i] = fb2 * vv[i] + (1 - fb2) * g[i] * g[i];
        const float denom = std::sqrt(vv[i]) / bc2_sqrt + eps;
        w[i] -= step_size * mm[i] / denom;
      }
    };
    const int64_t n = p.numel();
    if (pool)  // element-wise: the split changes nothing in the result
      pool->parallel_for(n, update, 1 << 16);
    else
      update(0, n, 0);
  });
}

}  // namespace dsvl2
