#include "llm/weights.h"

#include "ops/quant.h"

#include "core/error.h"

namespace dsvl2 {

WeightSource checkpoint_source(const Checkpoint& ckpt) {
  // require_weight: quantized matrices (a .gguf from `dsvl2 quantize`) pass
  // through; load_vector still widens only float vectors.
  return [&ckpt](const std::string& name, const Shape& shape) { return ckpt.require_weight(name, shape); };
}

Weight load_linear(const WeightSource& src, const std::string& name, int64_t rows, int64_t cols) {
  TensorView v = src(name, {rows, cols});
  DSVL2_REQUIRE(v.dtype == DType::kBF16 || v.dtype == DType::kF16 || v.dtype == DType::kF32 || is_matmul_quant(v.dtype),
                "%s: weight dtype %s is not supported (F32, F16, BF16, Q8_0, Q4_0 or IQ4_NL)", name.c_str(),
                dtype_name(v.dtype));
  return weight_from_view(v);
}

Tensor load_vector(const WeightSource& src, const std::string& name, int64_t n) { return to_f32(src(name, {n})); }

}  // namespace dsvl2
