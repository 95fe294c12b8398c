// The tensor registry: every tensor a DeepSeek-VL2 checkpoint holds, with the
// shape the architecture implies, derived from the config alone. It mirrors
// the official state_dict (DeepseekVLV2ForCausalLM: vision = timm SigLIP ViT,
// projector = MlpProjector, language = DeepseekV2ForCausalLM), HF names.
//
//   for (const TensorSpec& s : expected_tensors(cfg)) ...
//   auto extra = validate_checkpoint(ckpt, cfg);   // throws Error on missing / wrong shape
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/model_config.h"

namespace dsvl2 {

struct TensorSpec {
  std::string name;
  Shape shape;
  // false: in the official state_dict but never read (the vision attn_pool
  // MAP head, dropped by ignore_head). Absent is fine; present must match.
  bool required = true;
  // Fan-in of a weight matrix (last dims), 0 for vectors: lets generators scale.
  int64_t fan_in = 0;
};

// In a stable order: vision, projector, image_newline/view_seperator, language.
std::vector<TensorSpec> expected_tensors(const VLConfig& cfg);

// Checks that every required tensor is present with exactly its expected
// shape and a float dtype (F32/F16/BF16), and that optional ones, when
// present, have their expected shape. Throws Error naming the tensor and the
// file. Returns the names the registry does not know (for a warning).
std::vector<std::string> validate_checkpoint(const Checkpoint& ckpt, const VLConfig& cfg);

}  // namespace dsvl2
