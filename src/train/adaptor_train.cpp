#include "train/adaptor_train.h"

#include <cstring>

#include "core/error.h"
#include "vision/layout.h"
#include "vision/projector.h"

namespace dsvl2 {

AdaptorTrain::AdaptorTrain(const VLConfig& cfg, ParamStore& ps)
    : pc_(cfg.projector), global_view_pos_(cfg.global_view_pos) {
  side_ = cfg.vision.grid();
  out_side_ = downsampled_side(side_, pc_.downsample_ratio);
  const size_t n = Projector::layer_shapes(pc_).size();
  for (size_t i = 0; i < n; i++) {
    const std::string p = "projector.layers." + std::to_string(2 * i) + ".";
    layers_.push_back(LinearRef{&ps.at(p + "weight"), &ps.at(p + "bias"), {}});
  }
  newline_ = &ps.at("image_newline");
  separator_ = &ps.at("view_seperator");
}

bool AdaptorTrain::trainable() const {
  for (const LinearRef& l : layers_)
    if (l.w->trainable || l.b->trainable) return true;
  return newline_->trainable || separator_->trainable;
}

void AdaptorTrain::forward(const Tensor& v, int64_t n_tiles, const Tensor& crops, const TrainOps& t, Tensor* tokens) {
  const int64_t C = pc_.input_dim, r = pc_.downsample_ratio, D = pc_.n_embed;
  DSVL2_REQUIRE(v.dtype() == DType::kF32 && v.numel() == n_tiles * side_ * side_ * C,
                "adaptor training: vision output %s is not %lld tiles of %lld x %lld", shape_str(v.shape()).c_str(),
                (long long)n_tiles, (long long)(side_ * side_), (long long)C);
  DSVL2_REQUIRE(tiles_for_crops(crops) == n_tiles, "adaptor training: images_spatial_crop needs %lld tiles, got %lld",
                (long long)tiles_for_crops(crops), (long long)n_tiles);
  tiles_ = n_tiles;
  const int64_t M = n_tiles * out_side_ * out_side_;
  inputs_.clear();
  pre_.clear();
  Tensor cur = Tensor::f32_uninit({M, C * r * r});
  downsample_unfold(v.f32(), n_tiles, side_, C, int(r), cur.f32());
  for (size_t i = 0; i < layers_.size(); i++) {
    if (i > 0) {
      Tensor act = Tensor::f32_uninit(cur.shape());
      std::memcpy(act.f32(), cur.f32(), cur.nbytes());
      t.fwd.k->gelu_erf(act.f32(), act.numel());
      pre_.push_back(std::move(cur));
      cur = std::move(act);
    }
    Tensor next = Tensor::f32_uninit({M, layers_[i].rows()});
    linear_forward(t, layers_[i], cur.f32(), M, next.f32());
    inputs_.push_back(std::move(cur));
    cur = std::move(next);
  }
  // Layout: gather projector rows, newlines and separators in prompt order.
  sources_ = image_token_sources(crops, out_side_, global_view_pos_);
  *tokens = Tensor::f32_uninit({int64_t(sources_.size()), D});
  for (size_t i = 0; i < sources_.size(); i++) {
    const int64_t s = sources_[i];
    const float* row = s >= 0 ? cur.f32() + s * D : s == kLayoutNewline ? newline_->f32() : separator_->f32();
    std::memcpy(tokens->f32() + int64_t(i) * D, row, size_t(D) * 4);
  }
}

void AdaptorTrain::backward(const Tensor& dt, const TrainOps& t, Tensor* d_vision) {
  DSVL2_CHECK(!inputs_.empty(), "adaptor backward without forward");
  const int64_t C = pc_.input_dim, r = pc_.downsample_ratio, D = pc_.n_embed;
  const int64_t M = tiles_ * out_side_ * out_side_;
  Tensor dcur = Tensor::f32({M, D});
  for (size_t i = 0; i < sources_.size(); i++) {
    const int64_t s = sources_[i];
    const float* g = dt.f32() + int64_t(i) * D;
    float* dst = s >= 0 ? dcur.f32() + s * D
                 : s == kLayoutNewline ? newline_->grad_or_null()
                                       : separator_->grad_or_null();
    if (!dst) continue;
    for (int64_t d = 0; d < D; d++) dst[d] += g[d];
  }
  for (size_t i = layers_.size(); i-- > 0;) {
    Tensor din = Tensor::f32(inputs_[i].shape());
    const bool need_dx = i > 0 || d_vision;
    linear_backward(t, layers_[i], inputs_[i].f32(), dcur.f32(), M, need_dx ? din.f32() : nullptr);
    if (i > 0) gelu_erf_backward(pre_[i - 1].f32(), din.f32(), din.f32(), din.numel());
    dcur = std::move(din);
  }
  if (!d_vision) return;
  // Fold: the unfold's transpose (padding positions drop their gradient).
  *d_vision = Tensor::f32({tiles_ * side_ * side_, C});
  const int64_t F = C * r * r;
  for (int64_t tile = 0; tile < tiles_; tile++)
    for (int64_t oy = 0; oy < out_side_; oy++)
      for (int64_t ox = 0; ox < out_side_; ox++) {
        const float* g = dcur.f32() + ((tile * out_side_ + oy) * out_side_ + ox) * F;
        for (int64_t dy = 0; dy < r; dy++)
          for (int64_t dx = 0; dx < r; dx++) {
            const int64_t y = oy * r + dy, x = ox * r + dx;
            if (y >= side_ || x >= side_) continue;
            float* o = d_vision->f32() + (tile * side_ * side_ + y * side_ + x) * C;
            for (int64_t c = 0; c < C; c++) o[c] += g[c * r * r + dy * r + dx];
          }
      }
}

}  // namespace dsvl2
