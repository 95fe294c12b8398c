// The vision-language adaptor (official modeling_deepseek_vl_v2.py MlpProjector,
// projector_type "downsample_mlp_gelu"): each tile's [side*side, C] SigLIP grid
// is zero-padded bottom/right to a multiple of r = downsample_ratio, every r x r
// block is concatenated into one 4C-wide token by F.unfold (feature index
// c*r*r + dy*r + dx), then an MLP maps it to the LLM width:
//   Linear(C*r*r, n_embed*mlp_ratio) -> [GELU, Linear(n_embed*mlp_ratio, same)] x (depth-2)
//   -> GELU -> Linear(n_embed*mlp_ratio, n_embed)      (nn.GELU: exact erf form)
// Checkpoint names: projector.layers.{0,2,4,...}.{weight,bias} (GELUs hold the odd slots).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "ops/ops.h"

namespace dsvl2 {

struct ProjectorLinear {
  Weight w;  // [out, in]
  Tensor b;  // f32 [out]
};

class Projector {
 public:
  Projector(const ProjectorConfig& cfg, std::vector<ProjectorLinear> layers);  // checks every shape
  static Projector load(const Checkpoint& ckpt, const ProjectorConfig& cfg);

  // vision_output F32 [n, side*side, input_dim] -> F32 [n, out_side*out_side, n_embed],
  // out_side = ceil(side / downsample_ratio). Throws Error on a wrong shape.
  Tensor forward(const Tensor& vision_output, const Ops& ops) const;

  const ProjectorConfig& config() const { return cfg_; }
  std::vector<Weight*> linears();
  // Shapes of the Linear layers as the official constructor builds them.
  static std::vector<std::pair<int64_t, int64_t>> layer_shapes(const ProjectorConfig& cfg);  // (out, in)

 private:
  ProjectorConfig cfg_;
  std::vector<ProjectorLinear> layers_;
};

// Tokens a side after the r x r merge: ceil(side / r) (27 -> 14 for r = 2).
int64_t downsampled_side(int64_t side, int r);

// The pad + F.unfold(kernel=r, stride=r) step for n tiles of a side x side grid of
// C-wide tokens (row-major): out[t, oy*os + ox, c*r*r + dy*r + dx] =
// x[t, (oy*r+dy)*side + ox*r+dx, c], zero where the position falls in the padding.
void downsample_unfold(const float* x, int64_t n, int64_t side, int64_t C, int r, float* out);

}  // namespace dsvl2
