// Where decoder weights come from: a function that returns the tensor of an
// official state_dict name with exactly the expected shape (or throws Error).
// Checkpoints use checkpoint_source(); benchmarks and tests pass their own
// buffers. Views must outlive the model that is built from them.
#pragma once
#include <functional>
#include <string>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "ops/ops.h"

namespace dsvl2 {

using WeightSource = std::function<TensorView(const std::string& name, const Shape& shape)>;

WeightSource checkpoint_source(const Checkpoint& ckpt);

// A Linear weight [rows, cols] kept in its stored dtype (F32, F16 or BF16).
Weight load_linear(const WeightSource& src, const std::string& name, int64_t rows, int64_t cols);
// A small vector (norm gain, bias) widened to f32 once.
Tensor load_vector(const WeightSource& src, const std::string& name, int64_t n);

}  // namespace dsvl2
