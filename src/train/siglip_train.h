// The SigLIP tower for training: the forward of vision/siglip.h (same
// kernels, same order) that keeps what its backward needs, and the backward
// in reverse order. With `recompute`, only each block's input is kept and the
// block is run again during backward (activation recomputation per layer:
// a few MB a tile per block instead of ~45 MB at SO400M width).
#pragma once
#include <vector>

#include "io/model_config.h"
#include "train/linear.h"

namespace dsvl2 {

class SiglipTrain {
 public:
  SiglipTrain(const VisionConfig& cfg, ParamStore& ps);

  // pixel_values F32 [n, 3, S, S] -> out F32 [n * grid^2, width] after the final norm.
  void forward(const Tensor& pixel_values, const TrainOps& t, bool recompute, Tensor* out);
  // d_out as out; adds the gradients of the trainable vision parameters.
  void backward(const Tensor& d_out, const TrainOps& t);
  // Whether any vision parameter is trainable (else backward is skipped).
  bool trainable() const;
  void release();  // frees the kept activations

 private:
  struct Block {
    Param *n1w, *n1b, *n2w, *n2b;
    LinearRef qkv, proj, fc1, fc2;
  };
  struct Acts {  // one block's intermediates over all rows
    Tensor h1, qkv, att, x_mid, h2, f1, g;
  };
  void block_forward(const Block& b, const float* x_in, float* x_out, Acts& a, const TrainOps& t) const;
  void block_backward(const Block& b, const float* x_in, const Acts& a, const float* dx_out, float* dx_in,
                      const TrainOps& t) const;
  std::vector<Param*> all_params() const;

  VisionConfig cfg_;
  int64_t tiles_ = 0, rows_ = 0;
  LinearRef patch_;
  Param *pos_, *norm_w_, *norm_b_;
  std::vector<Block> blocks_;
  bool recompute_ = false;
  Tensor cols_;                // im2col patches [rows, 3 p p]
  std::vector<Tensor> x_in_;   // each block's input, plus the final norm's input at the end
  std::vector<Acts> acts_;     // per block when not recomputing
};

}  // namespace dsvl2
