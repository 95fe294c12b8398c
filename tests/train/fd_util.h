// Shared helpers of the layer gradient tests (layer_grad_test.cpp,
// model_grad_test.cpp): toy checkpoints with every parameter trainable, and a
// central-difference check of an analytic gradient on a sample of entries.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/thread_pool.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/random_checkpoint.h"
#include "test_util.h"
#include "train/linear.h"
#include "train/params.h"
#include "train/vl_train.h"

namespace dsvl2::fd {

using json = nlohmann::json;
constexpr double kInadmissible = std::numeric_limits<double>::quiet_NaN();

using test::randn;

inline double dot(const float* a, const float* b, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += double(a[i]) * b[i];
  return s;
}

// A toy model on disk: the "test" preset (MLA + MoE) with a 5x5 vision grid
// (3x3 projector tokens, one padded row and column), `edit` applied to its
// config.json; every parameter trainable, and the norms' gains and biases
// (ones and zeros in the file) made random so their gradients are generic.
struct Toy {
  std::string dir;
  VLConfig cfg;
  std::unique_ptr<Checkpoint> ck;
  std::unique_ptr<ParamStore> ps;
  ~Toy() {
    ps.reset();
    ck.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
};

inline std::unique_ptr<Toy> make_toy(const std::string& tag, const std::function<void(json&)>& edit = {},
                                     uint64_t seed = 5) {
  json c = json::parse(preset_config_json("test"));
  c["vision_config"]["image_size"] = 70;
  if (edit) edit(c);
  auto t = std::make_unique<Toy>();
  t->dir = test::temp_dir("fd_" + tag);
  RandomCheckpointOptions opt;
  opt.seed = seed;
  opt.shard_bytes = 0;
  write_random_checkpoint(t->dir, c.dump(), opt);
  t->cfg = load_vl_config(t->dir);
  t->ck = std::make_unique<Checkpoint>(t->dir);
  t->ps = std::make_unique<ParamStore>(*t->ck, is_unused_parameter);
  t->ps->set_trainable([](const std::string&) { return true; });
  uint32_t s = 1000;
  for (Param& p : t->ps->all()) {
    if (p.shape.size() != 1 || p.name.find("norm") == std::string::npos) continue;
    const bool gain = p.name.ends_with("weight");
    const std::vector<float> r = randn(size_t(p.numel()), s++, gain ? 0.2f : 0.1f);
    for (int64_t i = 0; i < p.numel(); i++) p.f32_mut()[i] = (gain ? 1.f : 0.f) + r[size_t(i)];
  }
  return t;
}

inline TrainOps train_ops(ThreadPool& pool, Compute c = Compute::kF32) {
  return TrainOps{Ops{&kernels_best(), &pool, c}, &grad_kernels_best(c)};
}

struct Opts {
  float eps = 1e-2f;
  double tol = 2e-2;   // max |fd - g| over the entries, relative to max |g| of the tensor
  double atol = 0;     // plus this (the finite differences' own rounding noise)
  int samples = 20;    // entries checked: `must`, the 4 largest |g|, then random ones
  bool allow_zero = false;
  std::vector<int64_t> must;
  // Chainable setters (GCC 12 warns on designated initializers that omit members).
  Opts& eps_(float v) { return eps = v, *this; }
  Opts& tol_(double v) { return tol = v, *this; }
  Opts& atol_(double v) { return atol = v, *this; }
  Opts& samples_(int v) { return samples = v, *this; }
  Opts& allow_zero_(bool v) { return allow_zero = v, *this; }
  Opts& must_(std::vector<int64_t> v) { return must = std::move(v), *this; }
};

// Checks the analytic gradient g[0, n) of loss() with respect to x[0, n)
// (perturbed in place and restored) against central differences. loss()
// returns kInadmissible where the perturbed point may not be used (routing
// changed): the entry is skipped and another drawn.
inline void check(const std::string& what, float* x, const float* g, int64_t n, const std::function<double()>& loss,
                  uint32_t seed, const Opts& o = {}) {
  SCOPED_TRACE(what);
  ASSERT_GT(n, 0);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; i++) order[size_t(i)] = i;
  const int64_t top = std::min<int64_t>(4, n);
  std::partial_sort(order.begin(), order.begin() + top, order.end(),
                    [&](int64_t a, int64_t b) { return std::fabs(g[a]) > std::fabs(g[b]); });
  const double gmax = std::fabs(g[order[0]]);
  if (gmax == 0 && !o.allow_zero) ADD_FAILURE() << what << ": the analytic gradient is all zero";
  const double scale = gmax > 0 ? gmax : 1.0;
  int checked = 0, skipped = 0;
  double err = 0, flip = 0;
  int64_t worst = -1;
  double worst_fd = 0;
  auto one = [&](int64_t i) {
    const float x0 = x[i];
    x[i] = x0 + o.eps;
    const float xp = x[i];
    const double lp = loss();
    x[i] = x0 - o.eps;
    const float xm = x[i];
    const double lm = loss();
    x[i] = x0;
    const double h = double(xp) - double(xm);
    if (!std::isfinite(lp) || !std::isfinite(lm)) {
      skipped++;
      return;
    }
    const double fdv = (lp - lm) / h;
    if (std::fabs(fdv - g[i]) > err) err = std::fabs(fdv - g[i]), worst = i, worst_fd = fdv;
    flip = std::max(flip, std::fabs(fdv + g[i]));
    checked++;
  };
  for (int64_t i : o.must) one(i);
  for (int64_t k = 0; k < top; k++) one(order[size_t(k)]);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, n - 1);
  const int want = int(std::min<int64_t>(o.samples, n));
  for (int tries = 0; checked < want && tries < 4 * o.samples; tries++) one(pick(rng));
  EXPECT_GE(checked, std::min(want, 8)) << what << ": " << skipped << " entries skipped";
  EXPECT_LE(err, o.tol * scale + o.atol) << what << ": entry " << worst << " analytic " << (worst >= 0 ? g[worst] : 0.f)
                                << " vs finite difference " << worst_fd << " (max |g| " << gmax << ")";
  // The sample holds the largest entries, so negating the gradient must fail.
  if (gmax > 0) {
    EXPECT_GT(flip, 10 * o.tol * scale) << what << ": a sign error would pass unnoticed";
  }
}

// Every trainable parameter whose name starts with `prefix`.
inline std::vector<Param*> params_under(ParamStore& ps, const std::string& prefix) {
  std::vector<Param*> v;
  for (Param& p : ps.all())
    if (p.trainable && p.name.rfind(prefix, 0) == 0) v.push_back(&p);
  return v;
}

// Copies of every trainable gradient, in store order.
inline std::vector<std::vector<float>> grads(ParamStore& ps) {
  std::vector<std::vector<float>> v;
  for (Param& p : ps.all())
    if (p.trainable) v.emplace_back(p.grad.f32(), p.grad.f32() + p.numel());
  return v;
}

}  // namespace dsvl2::fd
