#include "vision/siglip.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"

namespace dsvl2 {

namespace {

constexpr float kLayerNormEps = 1e-6f;  // siglip_vit.py: partial(nn.LayerNorm, eps=1e-6)

void check_config(const VisionConfig& c) {
  DSVL2_REQUIRE(c.width > 0 && c.heads > 0 && c.width % c.heads == 0,
                "vision_config: width %d must be a positive multiple of heads %d", c.width, c.heads);
  DSVL2_REQUIRE(c.patch_size > 0 && c.image_size >= c.patch_size,
                "vision_config: image_size %d and patch_size %d give no patches", c.image_size, c.patch_size);
  DSVL2_REQUIRE(c.layers >= 0 && c.mlp_hidden() > 0, "vision_config: layers %d / mlp hidden %d out of range", c.layers,
                c.mlp_hidden());
}

Tensor vec_f32(const Checkpoint& ck, const std::string& name, int64_t n) { return to_f32(ck.require(name, {n})); }

// A matrix as stored: F32/F16/BF16, or Q8_0/Q4_0 from a .gguf quantized with
// --parts vision (ops/quant.h runs it).
Weight linear_w(const Checkpoint& ck, const std::string& name, int64_t out, int64_t in) {
  return weight_from_view(ck.require_weight(name, {out, in}));
}

void require_vec(const Tensor& t, int64_t n, const char* what) {
  DSVL2_CHECK(t.dtype() == DType::kF32 && t.numel() == n, "vision weight %s: expected %lld f32 values, got %s", what,
              (long long)n, shape_str(t.shape()).c_str());
}
void require_w(const Weight& w, int64_t rows, int64_t cols, const char* what) {
  DSVL2_CHECK(!w.empty() && w.rows == rows && w.cols == cols, "vision weight %s: expected [%lld, %lld], got [%lld, %lld]",
              what, (long long)rows, (long long)cols, (long long)w.rows, (long long)w.cols);
}

// x[i] += y[i], split over the pool.
void add_inplace(float* x, const float* y, int64_t n, ThreadPool& pool) {
  pool.parallel_for(n, [&](int64_t a, int64_t b, int) {
    for (int64_t i = a; i < b; i++) x[i] += y[i];
  }, 1 << 14);
}

// The row-wise kernels take no pool; split their rows over it here.
void layer_norm_rows(const Ops& ops, const float* x, int64_t M, int64_t D, const Tensor& g, const Tensor& b, float* y) {
  ops.pool->parallel_for(M, [&](int64_t r0, int64_t r1, int) {
    ops.k->layer_norm(x + r0 * D, r1 - r0, D, g.f32(), b.f32(), kLayerNormEps, y + r0 * D);
  }, 16);
}
}  // namespace

void VisionScratch::reserve(int64_t n_rows, const VisionConfig& cfg) {
  if (n_rows <= rows) return;
  const int64_t W = cfg.width;
  const int64_t wide = std::max<int64_t>(cfg.mlp_hidden(), 3LL * cfg.patch_size * cfg.patch_size);
  // Not zeroed: every buffer is written by an op before it is read (zeroing
  // 160 MB for a five-tile image was 1-2 % of its encode).
  x = Tensor::f32_uninit({n_rows, W});
  h = Tensor::f32_uninit({n_rows, W});
  qkv = Tensor::f32_uninit({n_rows, 3 * W});
  attn = Tensor::f32_uninit({n_rows, W});
  mlp = Tensor::f32_uninit({n_rows, wide});
  rows = n_rows;
}

void patchify(const float* pix, int image_size, int patch, float* out) {
  const int grid = image_size / patch;
  const int64_t K = 3LL * patch * patch;
  const int64_t plane = int64_t(image_size) * image_size;
  for (int py = 0; py < grid; py++)
    for (int px = 0; px < grid; px++) {
      float* row = out + (int64_t(py) * grid + px) * K;
      for (int c = 0; c < 3; c++)
        for (int ky = 0; ky < patch; ky++) {
          const float* src = pix + c * plane + int64_t(py * patch + ky) * image_size + px * patch;
          std::memcpy(row + (int64_t(c) * patch + ky) * patch, src, size_t(patch) * sizeof(float));
        }
    }
}

VisionTower::VisionTower(const VisionConfig& cfg, VisionWeights weights) : cfg_(cfg), w_(std::move(weights)) {
  check_config(cfg_);
  const int64_t W = cfg_.width, F = cfg_.mlp_hidden(), P = cfg_.patch_size;
  require_w(w_.patch, W, 3 * P * P, "patch_embed.proj.weight");
  require_vec(w_.patch_b, W, "patch_embed.proj.bias");
  require_vec(w_.pos_embed, tokens_per_tile() * W, "pos_embed");
  DSVL2_CHECK(w_.blocks.size() == size_t(cfg_.layers), "vision: %zu blocks for %d layers", w_.blocks.size(), cfg_.layers);
  for (const VisionBlockWeights& b : w_.blocks) {
    require_vec(b.norm1_w, W, "norm1.weight");
    require_vec(b.norm1_b, W, "norm1.bias");
    require_w(b.qkv, 3 * W, W, "attn.qkv.weight");
    require_vec(b.qkv_b, 3 * W, "attn.qkv.bias");
    require_w(b.proj, W, W, "attn.proj.weight");
    require_vec(b.proj_b, W, "attn.proj.bias");
    require_vec(b.norm2_w, W, "norm2.weight");
    require_vec(b.norm2_b, W, "norm2.bias");
    require_w(b.fc1, F, W, "mlp.fc1.weight");
    require_vec(b.fc1_b, F, "mlp.fc1.bias");
    require_w(b.fc2, W, F, "mlp.fc2.weight");
    require_vec(b.fc2_b, W, "mlp.fc2.bias");
  }
  require_vec(w_.norm_w, W, "norm.weight");
  require_vec(w_.norm_b, W, "norm.bias");
}

VisionTower VisionTower::load(const Checkpoint& ck, const VisionConfig& cfg) {
  check_config(cfg);
  const int64_t W = cfg.width, F = cfg.mlp_hidden(), P = cfg.patch_size, T = int64_t(cfg.grid()) * cfg.grid();
  VisionWeights w;
  TensorView conv = ck.require("vision.patch_embed.proj.weight", {W, 3, P, P});
  w.patch = Weight{conv.dtype, W, 3 * P * P, conv.data};  // the [W, 3, P, P] bytes read as [W, 3*P*P]
  w.patch_b = vec_f32(ck, "vision.patch_embed.proj.bias", W);
  w.pos_embed = to_f32(ck.require("vision.pos_embed", {1, T, W}));
  w.pos_embed.reshape({T, W});
  for (int l = 0; l < cfg.layers; l++) {
    const std::string p = "vision.blocks." + std::to_string(l) + ".";
    VisionBlockWeights b;
    b.norm1_w = vec_f32(ck, p + "norm1.weight", W);
    b.norm1_b = vec_f32(ck, p + "norm1.bias", W);
    b.qkv = linear_w(ck, p + "attn.qkv.weight", 3 * W, W);
    b.qkv_b = vec_f32(ck, p + "attn.qkv.bias", 3 * W);
    b.proj = linear_w(ck, p + "attn.proj.weight", W, W);
    b.proj_b = vec_f32(ck, p + "attn.proj.bias", W);
    b.norm2_w = vec_f32(ck, p + "norm2.weight", W);
    b.norm2_b = vec_f32(ck, p + "norm2.bias", W);
    b.fc1 = linear_w(ck, p + "mlp.fc1.weight", F, W);
    b.fc1_b = vec_f32(ck, p + "mlp.fc1.bias", F);
    b.fc2 = linear_w(ck, p + "mlp.fc2.weight", W, F);
    b.fc2_b = vec_f32(ck, p + "mlp.fc2.bias", W);
    w.blocks.push_back(std::move(b));
  }
  w.norm_w = vec_f32(ck, "vision.norm.weight", W);
  w.norm_b = vec_f32(ck, "vision.norm.bias", W);
  return VisionTower(cfg, std::move(w));
}

std::vector<Weight*> VisionTower::linears() {
  std::vector<Weight*> ws{&w_.patch};
  for (VisionBlockWeights& b : w_.blocks)
    for (Weight* w : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) ws.push_back(w);
  return ws;
}

double VisionTower::flops_per_tile() const {
  const double T = double(tokens_per_tile()), W = cfg_.width, F = cfg_.mlp_hidden(), P = cfg_.patch_size;
  const double per_layer = 2 * T * W * (3 * W + W + 2 * F)  // qkv, proj, fc1, fc2
                           + 2 * 2 * T * T * W;              // q.k and p.v over all heads
  return 2 * T * (3 * P * P) * W + cfg_.layers * per_layer;
}

// timm Block.forward: pre-LN attention and MLP, each added to the residual.
void VisionTower::block_forward(const VisionBlockWeights& b, int64_t first, int64_t n_tiles, VisionScratch& s,
                                const Ops& ops) const {
  const int64_t T = tokens_per_tile(), M = n_tiles * T, W = cfg_.width, F = cfg_.mlp_hidden();
  const int H = cfg_.heads, hd = cfg_.head_dim();
  float* x = s.x.f32() + first * T * W;  // the temporaries below start at row 0
  float* h = s.h.f32();
  float* qkv = s.qkv.f32();
  float* attn = s.attn.f32();
  float* mlp = s.mlp.f32();

  // x = x + proj(attn(norm1(x)))
  layer_norm_rows(ops, x, M, W, b.norm1_w, b.norm1_b, h);
  ops.linear(h, M, b.qkv, b.qkv_b.f32(), qkv);
  for (int64_t t = 0; t < n_tiles; t++) {  // tiles never attend to each other
    const float* q = qkv + t * T * 3 * W;
    AttentionArgs a;
    a.q = q;
    a.q_stride_t = 3 * W;
    a.q_stride_h = hd;
    a.k = q + W;  // qkv.reshape(B, N, 3, H, hd): q | k | v along the feature axis
    a.k_stride_s = 3 * W;
    a.k_stride_h = hd;
    a.v = q + 2 * W;
    a.v_stride_s = 3 * W;
    a.v_stride_h = hd;
    a.out = attn + t * T * W;
    a.o_stride_t = W;
    a.o_stride_h = hd;
    a.T = a.S = int(T);
    a.H = a.Hkv = H;
    a.Dk = a.Dv = hd;
    a.scale = 1.0f / std::sqrt(float(hd));  // head_dim ** -0.5
    a.causal = false;
    a.compute = ops.compute;  // kBF16: bf16 dot products for q.k and p.v
    ops.attention(a);
  }
  ops.linear(attn, M, b.proj, b.proj_b.f32(), h);
  add_inplace(x, h, M * W, *ops.pool);

  // x = x + fc2(gelu_tanh(fc1(norm2(x))))
  layer_norm_rows(ops, x, M, W, b.norm2_w, b.norm2_b, h);
  ops.linear(h, M, b.fc1, b.fc1_b.f32(), mlp);
  ops.gelu_tanh_linear(mlp, M, F, b.fc2, b.fc2_b.f32(), h);
  add_inplace(x, h, M * W, *ops.pool);
}

Tensor VisionTower::encode(const Tensor& pixel_values, const Ops& ops, VisionScratch* scratch,
                           const std::function<void(int, int)>& progress) const {
  VisionScratch local;
  VisionScratch& s = scratch ? *scratch : local;
  const int64_t n = embed_patches(pixel_values, ops, s);
  for (int l = 0; l < blocks(); l++) {
    run_blocks(n, l, l + 1, s, ops);
    if (progress) progress(l + 1, blocks());
  }
  return final_norm(n, s, ops);
}

int64_t VisionTower::embed_patches(const Tensor& pixel_values, const Ops& ops, VisionScratch& s) const {
  const int S = cfg_.image_size, P = cfg_.patch_size;
  const Shape& ps = pixel_values.shape();
  DSVL2_REQUIRE(pixel_values.dtype() == DType::kF32 && ps.size() == 4 && ps[0] >= 1 && ps[1] == 3 && ps[2] == S &&
                    ps[3] == S,
                "vision encoder: pixel_values must be F32 [n, 3, %d, %d] with n >= 1, got %s %s", S, S,
                dtype_name(pixel_values.dtype()), shape_str(ps).c_str());
  const int64_t n = ps[0], T = tokens_per_tile(), M = n * T, W = cfg_.width, K = 3LL * P * P;
  s.reserve(M, cfg_);

  // Patch embedding: Conv2d(k=P, s=P) as im2col + one matmul over all tiles.
  float* cols = s.mlp.f32();  // [M, K] (mlp is at least K wide)
  const int64_t plane = 3LL * S * S;
  ops.pool->parallel_for(n, [&](int64_t a, int64_t b, int) {
    for (int64_t t = a; t < b; t++) patchify(pixel_values.f32() + t * plane, S, P, cols + t * T * K);
  });
  float* x = s.x.f32();
  ops.linear(cols, M, w_.patch, w_.patch_b.f32(), x);
  const float* pos = w_.pos_embed.f32();
  ops.pool->parallel_for(M, [&](int64_t a, int64_t b, int) {
    for (int64_t r = a; r < b; r++) {
      const float* pr = pos + (r % T) * W;
      float* xr = x + r * W;
      for (int64_t i = 0; i < W; i++) xr[i] += pr[i];
    }
  }, 64);
  return n;
}

void VisionTower::run_blocks(int64_t n_tiles, int first, int last, VisionScratch& s, const Ops& ops) const {
  DSVL2_CHECK(first >= 0 && first <= last && last <= blocks(), "vision blocks [%d, %d) of %d", first, last, blocks());
  DSVL2_CHECK(s.rows >= n_tiles * tokens_per_tile(), "vision scratch holds %lld rows", (long long)s.rows);
  for (int l = first; l < last; l++) block_forward(w_.blocks[size_t(l)], 0, n_tiles, s, ops);
}

void VisionTower::run_block_tiles(int block, int64_t tile_begin, int64_t tile_end, VisionScratch& s,
                                  const Ops& ops) const {
  DSVL2_CHECK(block >= 0 && block < blocks(), "vision block %d of %d", block, blocks());
  DSVL2_CHECK(tile_begin >= 0 && tile_begin < tile_end && s.rows >= tile_end * tokens_per_tile(),
              "vision tiles [%lld, %lld) with scratch for %lld rows", (long long)tile_begin, (long long)tile_end,
              (long long)s.rows);
  block_forward(w_.blocks[size_t(block)], tile_begin, tile_end - tile_begin, s, ops);
}

Tensor VisionTower::final_norm(int64_t n_tiles, const VisionScratch& s, const Ops& ops) const {
  const int64_t T = tokens_per_tile(), W = cfg_.width;
  Tensor out = Tensor::f32({n_tiles, T, W});
  layer_norm_rows(ops, s.x.f32(), n_tiles * T, W, w_.norm_w, w_.norm_b, out.f32());
  return out;
}

}  // namespace dsvl2
