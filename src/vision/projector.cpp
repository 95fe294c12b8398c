#include "vision/projector.h"

#include <cmath>
#include <string>

#include "core/error.h"

namespace dsvl2 {

namespace {
void check_config(const ProjectorConfig& c) {
  DSVL2_REQUIRE(c.projector_type == "downsample_mlp_gelu",
                "projector_config: projector_type \"%s\" is not supported (only downsample_mlp_gelu)",
                c.projector_type.c_str());
  DSVL2_REQUIRE(c.input_dim > 0 && c.n_embed > 0 && c.mlp_ratio > 0 && c.downsample_ratio > 0,
                "projector_config: input_dim %d, n_embed %d, mlp_ratio %d, downsample_ratio %d must be positive",
                c.input_dim, c.n_embed, c.mlp_ratio, c.downsample_ratio);
}
}  // namespace

int64_t downsampled_side(int64_t side, int r) { return (side + r - 1) / r; }

void downsample_unfold(const float* x, int64_t n, int64_t side, int64_t C, int r, float* out) {
  const int64_t os = downsampled_side(side, r), F = C * r * r;
  for (int64_t t = 0; t < n; t++)
    for (int64_t oy = 0; oy < os; oy++)
      for (int64_t ox = 0; ox < os; ox++) {
        float* o = out + ((t * os + oy) * os + ox) * F;
        for (int dy = 0; dy < r; dy++)
          for (int dx = 0; dx < r; dx++) {
            const int64_t y = oy * r + dy, xx = ox * r + dx, slot = dy * r + dx;
            if (y >= side || xx >= side) {  // F.pad(..., 0) at the bottom/right
              for (int64_t c = 0; c < C; c++) o[c * r * r + slot] = 0.f;
              continue;
            }
            const float* src = x + (t * side * side + y * side + xx) * C;
            for (int64_t c = 0; c < C; c++) o[c * r * r + slot] = src[c];
          }
      }
}

std::vector<std::pair<int64_t, int64_t>> Projector::layer_shapes(const ProjectorConfig& c) {
  const int64_t in = int64_t(c.input_dim) * c.downsample_ratio * c.downsample_ratio;
  const int64_t mid = int64_t(c.n_embed) * c.mlp_ratio;
  std::vector<std::pair<int64_t, int64_t>> s = {{mid, in}};
  for (int i = 1; i < c.depth - 1; i++) s.push_back({mid, mid});  // range(1, depth - 1)
  s.push_back({c.n_embed, mid});  // the final GELU + Linear is always there, even for depth < 2
  return s;
}

Projector::Projector(const ProjectorConfig& cfg, std::vector<ProjectorLinear> layers)
    : cfg_(cfg), layers_(std::move(layers)) {
  check_config(cfg_);
  auto shapes = layer_shapes(cfg_);
  DSVL2_CHECK(layers_.size() == shapes.size(), "projector: %zu layers, expected %zu", layers_.size(), shapes.size());
  for (size_t i = 0; i < shapes.size(); i++) {
    const ProjectorLinear& l = layers_[i];
    DSVL2_CHECK(!l.w.empty() && l.w.rows == shapes[i].first && l.w.cols == shapes[i].second &&
                    l.b.dtype() == DType::kF32 && l.b.numel() == shapes[i].first,
                "projector layer %zu: weight [%lld, %lld] / bias %s, expected [%lld, %lld]", i, (long long)l.w.rows,
                (long long)l.w.cols, shape_str(l.b.shape()).c_str(), (long long)shapes[i].first,
                (long long)shapes[i].second);
  }
}

Projector Projector::load(const Checkpoint& ck, const ProjectorConfig& cfg) {
  check_config(cfg);
  std::vector<ProjectorLinear> layers;
  auto shapes = layer_shapes(cfg);
  for (size_t i = 0; i < shapes.size(); i++) {
    const std::string p = "projector.layers." + std::to_string(2 * i) + ".";  // nn.Sequential index
    ProjectorLinear l;
    l.w = weight_from_view(ck.require_weight(p + "weight", {shapes[i].first, shapes[i].second}));  // may be Q8_0/Q4_0
    l.b = to_f32(ck.require(p + "bias", {shapes[i].first}));
    layers.push_back(std::move(l));
  }
  return Projector(cfg, std::move(layers));
}

std::vector<Weight*> Projector::linears() {
  std::vector<Weight*> ws;
  for (ProjectorLinear& l : layers_) ws.push_back(&l.w);
  return ws;
}

Tensor Projector::forward(const Tensor& v, const Ops& ops) const {
  const int64_t C = cfg_.input_dim;
  const int r = cfg_.downsample_ratio;
  const Shape& s = v.shape();
  DSVL2_REQUIRE(v.dtype() == DType::kF32 && s.size() == 3 && s[0] >= 1 && s[2] == C,
                "projector: input must be F32 [n, hw, %lld], got %s %s", (long long)C, dtype_name(v.dtype()),
                shape_str(s).c_str());
  const int64_t n = s[0], hw = s[1];
  const int64_t side = int64_t(std::lround(std::sqrt(double(hw))));  // h = w = int(hw ** 0.5)
  DSVL2_REQUIRE(side >= 1 && side * side == hw, "projector: %lld tokens per tile is not a square grid", (long long)hw);
  const int64_t os = downsampled_side(side, r), M = n * os * os;

  Tensor cur = Tensor::f32({M, C * r * r});
  downsample_unfold(v.f32(), n, side, C, r, cur.f32());
  for (size_t i = 0; i < layers_.size(); i++) {
    if (i > 0) ops.k->gelu_erf(cur.f32(), cur.numel());
    Tensor next = Tensor::f32_uninit({M, layers_[i].w.rows});  // every element written by the product
    ops.linear(cur.f32(), M, layers_[i].w, layers_[i].b.f32(), next.f32());
    cur = std::move(next);
  }
  cur.reshape({n, os * os, int64_t(cfg_.n_embed)});
  return cur;
}

}  // namespace dsvl2
