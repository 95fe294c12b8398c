// The vision-language adaptor for training: the 2x2 unfold + MLP projector
// (vision/projector.h) and the image-token layout with image_newline /
// view_seperator (vision/layout.h), forward and backward. The layout's
// backward scatters along image_token_sources(), the map the inference
// layout itself is built from.
#pragma once
#include <string>
#include <vector>

#include "io/model_config.h"
#include "train/linear.h"

namespace dsvl2 {

class AdaptorTrain {
 public:
  AdaptorTrain(const VLConfig& cfg, ParamStore& ps);

  // vision_out F32 [n_tiles * side^2, width] -> tokens F32 [N, n_embed] in
  // prompt order (images_spatial_crop I64 [n_images, 2] as the processor's).
  void forward(const Tensor& vision_out, int64_t n_tiles, const Tensor& images_spatial_crop, const TrainOps& t,
               Tensor* tokens);
  // d_tokens as tokens; adds the projector / layout gradients and, when
  // d_vision is non-null, writes (=) the gradient of vision_out.
  void backward(const Tensor& d_tokens, const TrainOps& t, Tensor* d_vision);
  bool trainable() const;

 private:
  ProjectorConfig pc_;
  int64_t side_ = 0, out_side_ = 0;
  std::string global_view_pos_;
  std::vector<LinearRef> layers_;
  Param *newline_, *separator_;
  int64_t tiles_ = 0;
  std::vector<Tensor> inputs_;  // what each linear read (after the GELU for i > 0)
  std::vector<Tensor> pre_;     // each linear's output before the next GELU
  std::vector<int64_t> sources_;
};

}  // namespace dsvl2
