// Random BF16 decoder weights built in memory, served through WeightSource by
// official tensor name (tests, benchmarks, random checkpoints). Values are
// deterministic in (seed, name): Linear weights ~ U(-a, a) with std
// 1/sqrt(in_features) (lm_head 2.5x, MoE gate 3x, as the golden models),
// norm gains ~ 1 + U(-0.1, 0.1), e_score_correction_bias ~ U(-0.3, 0.3).
//
// pool_bytes > 0 serves 2-D weights as views into one shared random pool of
// that size (wrapping around), so a benchmark can touch model-sized bytes
// per token without holding a whole model in memory; values then repeat.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "llm/weights.h"

namespace dsvl2 {

class RandomWeights {
 public:
  explicit RandomWeights(uint64_t seed = 1, size_t pool_bytes = 0);
  // The source stays valid while this object lives.
  WeightSource source();
  size_t bytes() const { return bytes_; }  // bytes served (pool views counted once per tensor)

 private:
  TensorView make(const std::string& name, const Shape& shape);
  uint64_t seed_;
  size_t pool_bytes_, pool_used_ = 0, bytes_ = 0;
  Tensor pool_;
  std::map<std::string, Tensor> owned_;
};

}  // namespace dsvl2
