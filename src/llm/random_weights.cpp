#include "llm/random_weights.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "io/random_checkpoint.h"

namespace dsvl2 {

namespace {


bool contains(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// The checkpoints' generator (io/random_checkpoint.h), uniform here: tests
// want bounded weights and norm gains that are not exactly one.
void fill_bf16(uint16_t* p, int64_t n, float amp, float offset, uint64_t seed, uint64_t stream) {
  fill_random_bf16(p, n, seed, stream, 0, {RandomFill::kUniform, amp, offset});
}

}  // namespace

RandomWeights::RandomWeights(uint64_t seed, size_t pool_bytes) : seed_(seed), pool_bytes_(pool_bytes) {}

WeightSource RandomWeights::source() {
  return [this](const std::string& name, const Shape& shape) { return make(name, shape); };
}

TensorView RandomWeights::make(const std::string& name, const Shape& shape) {
  const uint64_t stream = hash_string(name);  // portable, unlike std::hash
  if (auto it = owned_.find(name); it != owned_.end()) {  // asked again: same bytes, views stay valid
    DSVL2_REQUIRE(it->second.shape() == shape, "random weights: %s requested as %s and %s", name.c_str(),
                  shape_str(it->second.shape()).c_str(), shape_str(shape).c_str());
    return it->second.view();
  }
  const int64_t n = shape_numel(shape);
  const size_t nbytes = size_t(n) * 2;
  bytes_ += nbytes;
  if (shape.size() == 1) {
    float amp = 0.1f, offset = 1.f;
    if (contains(name, "bias")) amp = 0.3f, offset = 0.f;
    Tensor& t = owned_[name] = Tensor(DType::kBF16, shape);
    fill_bf16(t.as<uint16_t>(), n, amp, offset, seed_, stream);
    return t.view();
  }
  DSVL2_REQUIRE(shape.size() == 2, "random weights: %s must be 1-D or 2-D", name.c_str());
  float stdv = 1.f / std::sqrt(float(shape[1]));
  if (contains(name, "lm_head")) stdv *= 2.5f;
  if (contains(name, "mlp.gate.")) stdv *= 3.f;
  if (contains(name, "embed_tokens")) stdv = 1.f;
  const float amp = stdv * std::sqrt(3.f);  // U(-a, a) has std a / sqrt(3)
  if (pool_bytes_ == 0) {
    Tensor& t = owned_[name] = Tensor(DType::kBF16, shape);
    fill_bf16(t.as<uint16_t>(), n, amp, 0.f, seed_, stream);
    return t.view();
  }
  if (!pool_.data()) {
    // A 4 MiB random block tiled over the pool: distinct addresses are what a
    // bandwidth benchmark needs, and tiling keeps the setup fast.
    pool_ = Tensor(DType::kBF16, {int64_t(pool_bytes_ / 2)});
    const int64_t block = std::min<int64_t>(pool_.numel(), int64_t(1) << 21);
    uint16_t* p = pool_.as<uint16_t>();
    fill_bf16(p, block, 0.04f, 0.f, seed_, 0);
    for (int64_t i = block; i < pool_.numel(); i += block)
      std::memcpy(p + i, p, size_t(std::min(block, pool_.numel() - i)) * 2);
  }
  DSVL2_REQUIRE(nbytes <= pool_bytes_, "random weights: %s (%zu bytes) does not fit the %zu-byte pool", name.c_str(),
                nbytes, pool_bytes_);
  if (pool_used_ + nbytes > pool_bytes_) pool_used_ = 0;
  const void* p = static_cast<const uint8_t*>(pool_.data()) + pool_used_;
  pool_used_ = (pool_used_ + nbytes + 63) / 64 * 64;
  return TensorView{DType::kBF16, shape, p, nbytes};
}

}  // namespace dsvl2
