// The gradient check contract (`dsvl2 train --grad-check`): one forward and
// backward of one sample with every parameter trainable, nothing updated,
// and the loss, the summed balance losses and every parameter's gradient
// written to a safetensors file (F32 `loss` [1], `aux_loss` [1],
// `grad.NAME`) for comparison with a reference implementation.
#pragma once
#include <string>
#include <vector>

#include "ops/ops.h"
#include "train/decoder_train.h"

namespace dsvl2 {

struct GradCheckInputs {
  std::string model_dir;
  std::vector<std::string> images;  // in prompt order
  std::vector<int32_t> input_ids, labels;
  int image_token_id = -1;  // -1: the tokenizer's, else the one id that fills the image positions
  Compute compute = Compute::kF32;
};

// Writes `out` and returns the loss parts. Throws Error on bad inputs.
LossParts run_grad_check(const GradCheckInputs& in, const std::string& out, ThreadPool& pool);

// The image token id of a prompt for a model folder: its tokenizer's
// <image> when the folder has tokenizer.json, else the only id that occurs
// exactly n_image_tokens times (Error when none or several do).
int infer_image_token_id(const std::string& model_dir, const std::string& image_token,
                         const std::vector<int32_t>& ids, int64_t n_image_tokens);

}  // namespace dsvl2
