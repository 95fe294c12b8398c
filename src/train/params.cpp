#include "train/params.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "ops/quant.h"

namespace dsvl2 {

namespace {

// An owned f32 copy of a stored tensor of any supported dtype.
Tensor widen(const TensorView& v, const Shape& shape) {
  Tensor t = Tensor::f32(shape);
  if (is_matmul_quant(v.dtype)) {
    const int64_t n = v.numel();
    DSVL2_REQUIRE(n % 32 == 0, "a quantized tensor of %lld values is not whole blocks", (long long)n);
    dequantize_blocks(v.dtype, v.data, n, t.f32());
    return t;
  }
  Tensor w = to_f32(v);
  std::memcpy(t.f32(), w.f32(), size_t(t.numel()) * 4);
  return t;
}

// Vectors (norm gains, biases; any shape with one dimension over 1) are read
// element-wise as f32 by every kernel, so they always keep an f32 copy.
bool is_vector(const Shape& s) {
  int non1 = 0;
  for (int64_t d : s) non1 += d != 1;
  return non1 <= 1;
}

}  // namespace

const float* Param::f32() const {
  DSVL2_REQUIRE(value.data(), "parameter %s has no f32 copy (frozen and not a vector)", name.c_str());
  return value.f32();
}

float* Param::f32_mut() {
  DSVL2_REQUIRE(value.data(), "parameter %s has no f32 copy (frozen and not a vector)", name.c_str());
  return value.f32();
}

Weight Param::weight() const {
  DSVL2_REQUIRE(shape.size() >= 2, "parameter %s %s is not a matrix", name.c_str(), shape_str(shape).c_str());
  const int64_t rows = shape[0], cols = numel() / shape[0];  // conv [W, 3, p, p] reads as [W, 3*p*p]
  if (trainable) return Weight{DType::kF32, rows, cols, value.f32()};
  return Weight{stored.dtype, rows, cols, stored.data};
}

ParamStore::ParamStore(const Checkpoint& ckpt, const std::function<bool(const std::string&)>& skip) {
  for (const std::string& name : ckpt.names()) {
    if (skip && skip(name)) continue;
    const TensorView* v = ckpt.find(name);
    DSVL2_CHECK(v, "checkpoint lists %s but has no view", name.c_str());
    Param p;
    p.name = name;
    p.shape = v->shape;
    p.stored = *v;
    if (is_vector(p.shape)) p.value = widen(*v, p.shape);
    index_[name] = params_.size();
    params_.push_back(std::move(p));
  }
}

int ParamStore::set_trainable(const std::function<bool(const std::string&)>& pick) {
  int n = 0;
  for (Param& p : params_) {
    const bool on = pick(p.name);
    if (on) {
      if (!p.value.data()) p.value = widen(p.stored, p.shape);
      p.grad = Tensor::f32(p.shape);
      n++;
    } else {
      p.grad = Tensor();
      // A parameter that add() created has no checkpoint bytes: `stored` views
      // `value`, so freeing it would leave weight() reading freed memory.
      const bool owned = p.value.data() && p.stored.data == p.value.data();
      if (!is_vector(p.shape) && !p.keep_f32 && !owned) p.value = Tensor();
    }
    p.trainable = on;
  }
  return n;
}

Param& ParamStore::keep_f32(const std::string& name) {
  Param& p = at(name);
  p.keep_f32 = true;
  if (!p.value.data()) p.value = widen(p.stored, p.shape);
  return p;
}

Param& ParamStore::add(const std::string& name, Tensor value) {
  DSVL2_REQUIRE(!has(name), "parameter \"%s\" exists already", name.c_str());
  DSVL2_REQUIRE(value.dtype() == DType::kF32, "parameter %s must be F32", name.c_str());
  Param p;
  p.name = name;
  p.shape = value.shape();
  p.value = std::move(value);
  p.stored = p.value.view();
  p.grad = Tensor::f32(p.shape);
  p.trainable = true;
  index_[name] = params_.size();
  params_.push_back(std::move(p));
  return params_.back();
}

Param& ParamStore::at(const std::string& name) {
  auto it = index_.find(name);
  DSVL2_REQUIRE(it != index_.end(), "the checkpoint has no parameter \"%s\"", name.c_str());
  return params_[it->second];
}

const Param& ParamStore::at(const std::string& name) const { return const_cast<ParamStore*>(this)->at(name); }

void ParamStore::for_each_trainable(const std::function<void(Param&)>& f) {
  for (Param& p : params_)
    if (p.trainable) f(p);
}

void ParamStore::zero_grad() {
  for (Param& p : params_)
    if (p.trainable) std::memset(p.grad.data(), 0, p.grad.nbytes());
}

int64_t ParamStore::trainable_numel() const {
  int64_t n = 0;
  for (const Param& p : params_)
    if (p.trainable) n += p.numel();
  return n;
}

double ParamStore::grad_norm() const {
  double s = 0;
  for (const Param& p : params_) {
    if (!p.trainable) continue;
    const float* g = p.grad.f32();
    const int64_t n = p.numel();
    double part = 0;  // per tensor, then summed: fewer dependent double adds
    for (int64_t i = 0; i < n; i++) part += double(g[i]) * g[i];
    s += part;
  }
  return std::sqrt(s);
}

}  // namespace dsvl2
