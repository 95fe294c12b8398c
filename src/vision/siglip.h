// The SigLIP ViT image encoder of DeepSeek-VL2 (official siglip_vit.py,
// VisionTransformer.forward_features with ignore_head): Conv2d patch embed
// (with bias) -> + learned pos_embed -> `layers` pre-LN blocks -> final
// LayerNorm. No class token, no pre-norm; the MAP head (attn_pool) is unused.
//
//   VisionTower tower = VisionTower::load(ckpt, cfg.vision);
//   Tensor feats = tower.encode(pixel_values, ops);   // [n, 729, width]
//
// All tiles of all images go through ONE pass (M = n * 729 rows per matmul);
// attention runs per tile. Weights stay in their file dtype (mmapped BF16);
// only the small vectors are widened to f32 at load.
#pragma once
#include <functional>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "ops/ops.h"

namespace dsvl2 {

// One timm `Block`: x += proj(attn(norm1(x))); x += fc2(gelu_tanh(fc1(norm2(x)))).
struct VisionBlockWeights {
  Tensor norm1_w, norm1_b;  // f32 [width]
  Weight qkv;               // [3*width, width], output order (q | k | v), heads inside each
  Tensor qkv_b;             // f32 [3*width]
  Weight proj;              // [width, width]
  Tensor proj_b;
  Tensor norm2_w, norm2_b;
  Weight fc1;  // [mlp_hidden, width]
  Tensor fc1_b;
  Weight fc2;  // [width, mlp_hidden]
  Tensor fc2_b;
};

struct VisionWeights {
  Weight patch;      // conv weight [width, 3, p, p] viewed as [width, 3*p*p]
  Tensor patch_b;    // f32 [width]
  Tensor pos_embed;  // f32 [grid*grid, width]
  std::vector<VisionBlockWeights> blocks;
  Tensor norm_w, norm_b;  // final LayerNorm
};

// Activation buffers for one encode() call, sized once for all rows and reused
// by every layer. Pass the same object to repeated calls to avoid reallocating.
struct VisionScratch {
  int64_t rows = 0;  // capacity in token rows
  Tensor x;          // [rows, width] residual stream
  Tensor h;          // [rows, width] normed input / block output
  Tensor qkv;        // [rows, 3*width]
  Tensor attn;       // [rows, width]
  Tensor mlp;        // [rows, max(mlp_hidden, 3*p*p)]; also holds the im2col patches
  void reserve(int64_t rows, const VisionConfig& cfg);
};

class VisionTower {
 public:
  VisionTower(const VisionConfig& cfg, VisionWeights weights);  // checks every shape
  // Reads vision.* from the checkpoint (attn_pool.* ignored, as ignore_head does).
  static VisionTower load(const Checkpoint& ckpt, const VisionConfig& cfg);

  // pixel_values F32 [n, 3, image_size, image_size] (already normalized)
  // -> F32 [n, grid*grid, width]. Throws Error on a wrong shape or dtype.
  // `progress` (optional) is called after each block with (blocks done, blocks).
  Tensor encode(const Tensor& pixel_values, const Ops& ops, VisionScratch* scratch = nullptr,
                const std::function<void(int, int)>& progress = {}) const;

  // encode() in pieces a scheduler can interleave with other work (see
  // VisionEncoding): the patch embedding into s.x, blocks [first, last), and
  // the final norm. Same results as encode(), bit for bit.
  int64_t embed_patches(const Tensor& pixel_values, const Ops& ops, VisionScratch& s) const;  // returns n_tiles
  void run_blocks(int64_t n_tiles, int first, int last, VisionScratch& s, const Ops& ops) const;
  // Block `block` on tiles [tile_begin, tile_end) only: tiles never attend to
  // each other, so a scheduler may split a block's work by tiles.
  void run_block_tiles(int block, int64_t tile_begin, int64_t tile_end, VisionScratch& s, const Ops& ops) const;
  Tensor final_norm(int64_t n_tiles, const VisionScratch& s, const Ops& ops) const;
  int blocks() const { return int(w_.blocks.size()); }

  const VisionConfig& config() const { return cfg_; }
  // Every matrix (patch embedding and the blocks'), for Ops::prepare.
  std::vector<Weight*> linears();
  int64_t tokens_per_tile() const { return int64_t(cfg_.grid()) * cfg_.grid(); }
  // Multiply-adds x2 for one tile (matmuls + attention), for throughput reports.
  double flops_per_tile() const;

 private:
  // Runs block b on n_tiles tiles whose residual rows start at tile `first`.
  void block_forward(const VisionBlockWeights& b, int64_t first, int64_t n_tiles, VisionScratch& s, const Ops& ops) const;

  VisionConfig cfg_;
  VisionWeights w_;
};

// Writes the Conv2d(k=p, s=p) input patches of one tile as rows: out[(py*grid+px),
// c*p*p + ky*p + kx] = pix[c, py*p+ky, px*p+kx]; pixels beyond grid*p are unused.
void patchify(const float* pix, int image_size, int patch, float* out);

}  // namespace dsvl2
