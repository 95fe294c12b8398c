// The parameters of a checkpoint as training sees them: every tensor by its
// official state_dict name, in checkpoint order, each either frozen (read
// from the mapped file in its stored dtype, no gradient) or trainable (an
// owned f32 master copy plus an f32 gradient). Optimizer state and LoRA
// adapters walk the same list (ParamStore::for_each), so parameters,
// gradients and moments stay in one order — the shape of llm.c's parameter
// walk and gemma.cpp's ForEachTensor.
//
//   ParamStore ps(ckpt);
//   ps.set_trainable([](const std::string& n) { return n.starts_with("projector."); });
//   Weight w = ps.at("projector.layers.0.weight").weight();   // what Ops::linear reads
#pragma once
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "ops/ops.h"

namespace dsvl2 {

struct Param {
  std::string name;
  Shape shape;
  TensorView stored;  // the checkpoint's bytes (any dtype, quantized included)
  Tensor value;       // f32 copy: trainable parameters, and every 1-D vector (norms, biases)
  Tensor grad;        // f32, trainable parameters only
  bool trainable = false;
  bool keep_f32 = false;  // read as f32 by the model even when frozen (pos_embed)

  int64_t numel() const { return shape_numel(shape); }
  // The current values in f32 (trainable or vector); Error otherwise.
  const float* f32() const;
  float* f32_mut();
  // As a Linear weight [rows, cols]: the f32 master copy when trainable, else
  // the stored bytes (BF16 / Q8_0 / ... stay as they are for frozen weights).
  Weight weight() const;
  float* grad_or_null() { return trainable ? grad.f32() : nullptr; }
};

class ParamStore {
 public:
  // Every tensor of the checkpoint except those `skip` names (e.g. the unused
  // vision.attn_pool.* head). The checkpoint must outlive the store.
  explicit ParamStore(const Checkpoint& ckpt, const std::function<bool(const std::string&)>& skip = {});

  // Keeps an f32 copy of `name` whether trained or not (the model reads it
  // element-wise, not through Ops::linear). Returns it.
  Param& keep_f32(const std::string& name);

  // Marks the parameters `pick` names trainable (f32 copy + zero gradient)
  // and all others frozen (their copies freed unless 1-D). Returns how many.
  int set_trainable(const std::function<bool(const std::string&)>& pick);

  // Adds a parameter that the checkpoint does not hold (a LoRA adapter),
  // trainable, with these initial values. Error when the name exists.
  Param& add(const std::string& name, Tensor value);

  bool has(const std::string& name) const { return index_.count(name) > 0; }
  Param& at(const std::string& name);  // Error naming the tensor when absent
  const Param& at(const std::string& name) const;

  std::deque<Param>& all() { return params_; }
  const std::deque<Param>& all() const { return params_; }
  void for_each_trainable(const std::function<void(Param&)>& f);
  void zero_grad();
  int64_t trainable_numel() const;
  // sqrt(sum of squared gradients) over trainable parameters, in double.
  double grad_norm() const;

 private:
  std::deque<Param> params_;  // stable addresses: layers keep Param pointers
  std::map<std::string, size_t> index_;
};

}  // namespace dsvl2
