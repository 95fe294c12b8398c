#include "train/siglip_train.h"

#include <cmath>
#include <cstring>
#include <string>

#include "core/error.h"
#include "vision/siglip.h"

namespace dsvl2 {

namespace {

constexpr float kEps = 1e-6f;  // siglip_vit.py LayerNorm eps

void layer_norm(const TrainOps& t, const float* x, int64_t M, int64_t D, const Param* g, const Param* b, float* y) {
  t.pool().parallel_for(M, [&](int64_t r0, int64_t r1, int) {
    t.fwd.k->layer_norm(x + r0 * D, r1 - r0, D, g->f32(), b->f32(), kEps, y + r0 * D);
  }, 16);
}

// dx (+=) and the gain/bias gradients when trainable; rows split over the
// pool for dx, the parameter sums kept serial per row block to stay exact.
void layer_norm_bwd(const TrainOps& t, const float* x, const float* dy, int64_t M, int64_t D, Param* g, Param* b,
                    float* dx) {
  t.pool().parallel_for(M, [&](int64_t r0, int64_t r1, int) {
    layer_norm_backward(x + r0 * D, dy + r0 * D, r1 - r0, D, g->f32(), kEps, dx ? dx + r0 * D : nullptr, nullptr,
                        nullptr);
  }, 16);
  if (g->trainable || b->trainable)
    layer_norm_backward(x, dy, M, D, g->f32(), kEps, nullptr, g->grad_or_null(), b->grad_or_null());
}

LinearRef linear(ParamStore& ps, const std::string& p) { return LinearRef{&ps.at(p + ".weight"), &ps.at(p + ".bias"), {}}; }

}  // namespace

SiglipTrain::SiglipTrain(const VisionConfig& cfg, ParamStore& ps) : cfg_(cfg) {
  patch_ = linear(ps, "vision.patch_embed.proj");
  pos_ = &ps.keep_f32("vision.pos_embed");
  norm_w_ = &ps.at("vision.norm.weight");
  norm_b_ = &ps.at("vision.norm.bias");
  for (int l = 0; l < cfg.layers; l++) {
    const std::string p = "vision.blocks." + std::to_string(l) + ".";
    Block b;
    b.n1w = &ps.at(p + "norm1.weight");
    b.n1b = &ps.at(p + "norm1.bias");
    b.n2w = &ps.at(p + "norm2.weight");
    b.n2b = &ps.at(p + "norm2.bias");
    b.qkv = linear(ps, p + "attn.qkv");
    b.proj = linear(ps, p + "attn.proj");
    b.fc1 = linear(ps, p + "mlp.fc1");
    b.fc2 = linear(ps, p + "mlp.fc2");
    blocks_.push_back(b);
  }
}

std::vector<Param*> SiglipTrain::all_params() const {
  std::vector<Param*> v{patch_.w, patch_.b, pos_, norm_w_, norm_b_};
  for (const Block& b : blocks_)
    for (Param* p : {b.n1w, b.n1b, b.n2w, b.n2b, b.qkv.w, b.qkv.b, b.proj.w, b.proj.b, b.fc1.w, b.fc1.b, b.fc2.w,
                     b.fc2.b})
      v.push_back(p);
  return v;
}

bool SiglipTrain::trainable() const {
  for (Param* p : all_params())
    if (p->trainable) return true;
  return false;
}

void SiglipTrain::release() {
  cols_ = Tensor();
  x_in_.clear();
  acts_.clear();
}

namespace {
// The attention of one tile, as VisionTower::block_forward lays it out.
AttentionArgs tile_attention(const float* qkv, float* out, int64_t T, int64_t W, int H, int hd) {
  AttentionArgs a;
  a.q = qkv;
  a.q_stride_t = 3 * W;
  a.q_stride_h = hd;
  a.k = qkv + W;
  a.k_stride_s = 3 * W;
  a.k_stride_h = hd;
  a.v = qkv + 2 * W;
  a.v_stride_s = 3 * W;
  a.v_stride_h = hd;
  a.out = out;
  a.o_stride_t = W;
  a.o_stride_h = hd;
  a.T = a.S = int(T);
  a.H = a.Hkv = H;
  a.Dk = a.Dv = hd;
  a.scale = 1.0f / std::sqrt(float(hd));
  return a;
}
}  // namespace

void SiglipTrain::block_forward(const Block& b, const float* x_in, float* x_out, Acts& a, const TrainOps& t) const {
  const int64_t T = int64_t(cfg_.grid()) * cfg_.grid(), M = rows_, W = cfg_.width, F = cfg_.mlp_hidden();
  a.h1 = Tensor::f32_uninit({M, W});
  a.qkv = Tensor::f32_uninit({M, 3 * W});
  a.att = Tensor::f32_uninit({M, W});
  a.x_mid = Tensor::f32_uninit({M, W});
  a.h2 = Tensor::f32_uninit({M, W});
  a.f1 = Tensor::f32_uninit({M, F});
  a.g = Tensor::f32_uninit({M, F});
  layer_norm(t, x_in, M, W, b.n1w, b.n1b, a.h1.f32());
  linear_forward(t, b.qkv, a.h1.f32(), M, a.qkv.f32());
  for (int64_t i = 0; i < tiles_; i++)
    t.fwd.attention(tile_attention(a.qkv.f32() + i * T * 3 * W, a.att.f32() + i * T * W, T, W, cfg_.heads,
                                   cfg_.head_dim()));
  linear_forward(t, b.proj, a.att.f32(), M, a.x_mid.f32());
  float* xm = a.x_mid.f32();
  for (int64_t i = 0; i < M * W; i++) xm[i] += x_in[i];
  layer_norm(t, xm, M, W, b.n2w, b.n2b, a.h2.f32());
  linear_forward(t, b.fc1, a.h2.f32(), M, a.f1.f32());
  std::memcpy(a.g.f32(), a.f1.f32(), a.f1.nbytes());
  t.fwd.k->gelu_tanh(a.g.f32(), M * F);
  linear_forward(t, b.fc2, a.g.f32(), M, x_out);
  for (int64_t i = 0; i < M * W; i++) x_out[i] += xm[i];
}

void SiglipTrain::block_backward(const Block& b, const float* x_in, const Acts& a, const float* dx_out,
                                 float* dx_in, const TrainOps& t) const {
  const int64_t T = int64_t(cfg_.grid()) * cfg_.grid(), M = rows_, W = cfg_.width, F = cfg_.mlp_hidden();
  // MLP half: x_out = x_mid + fc2(gelu(fc1(LN2(x_mid)))).
  Tensor dx_mid = Tensor::f32_uninit({M, W});
  std::memcpy(dx_mid.f32(), dx_out, dx_mid.nbytes());
  Tensor dg = Tensor::f32({M, F}), dh = Tensor::f32({M, W});
  linear_backward(t, b.fc2, a.g.f32(), dx_out, M, dg.f32());
  gelu_tanh_backward(a.f1.f32(), dg.f32(), dg.f32(), M * F);
  linear_backward(t, b.fc1, a.h2.f32(), dg.f32(), M, dh.f32());
  layer_norm_bwd(t, a.x_mid.f32(), dh.f32(), M, W, b.n2w, b.n2b, dx_mid.f32());
  // Attention half: x_mid = x_in + proj(attn(qkv(LN1(x_in)))).
  std::memcpy(dx_in, dx_mid.f32(), dx_mid.nbytes());
  Tensor datt = Tensor::f32({M, W}), dqkv = Tensor::f32({M, 3 * W});
  linear_backward(t, b.proj, a.att.f32(), dx_mid.f32(), M, datt.f32());
  for (int64_t i = 0; i < tiles_; i++) {
    AttentionArgs args = tile_attention(a.qkv.f32() + i * T * 3 * W, const_cast<float*>(a.att.f32()) + i * T * W, T,
                                        W, cfg_.heads, cfg_.head_dim());
    AttentionGrads g;
    g.dout = datt.f32() + i * T * W;
    g.dq = dqkv.f32() + i * T * 3 * W;
    g.dk = g.dq + W;
    g.dv = g.dq + 2 * W;
    t.grad->attention(args, g, t.pool());
  }
  std::memset(dh.data(), 0, dh.nbytes());
  linear_backward(t, b.qkv, a.h1.f32(), dqkv.f32(), M, dh.f32());
  layer_norm_bwd(t, x_in, dh.f32(), M, W, b.n1w, b.n1b, dx_in);
}

void SiglipTrain::forward(const Tensor& px, const TrainOps& t, bool recompute, Tensor* out) {
  const int S = cfg_.image_size, P = cfg_.patch_size;
  const Shape& ps = px.shape();
  DSVL2_REQUIRE(px.dtype() == DType::kF32 && ps.size() == 4 && ps[0] >= 1 && ps[1] == 3 && ps[2] == S && ps[3] == S,
                "vision training: pixel_values must be F32 [n, 3, %d, %d], got %s", S, S, shape_str(ps).c_str());
  release();
  recompute_ = recompute;
  tiles_ = ps[0];
  const int64_t T = int64_t(cfg_.grid()) * cfg_.grid(), W = cfg_.width, K = 3LL * P * P;
  rows_ = tiles_ * T;
  cols_ = Tensor::f32_uninit({rows_, K});
  for (int64_t i = 0; i < tiles_; i++) patchify(px.f32() + i * 3 * S * S, S, P, cols_.f32() + i * T * K);
  Tensor x = Tensor::f32_uninit({rows_, W});
  linear_forward(t, patch_, cols_.f32(), rows_, x.f32());
  const float* pos = pos_->f32();
  for (int64_t r = 0; r < rows_; r++)
    for (int64_t i = 0; i < W; i++) x.f32()[r * W + i] += pos[(r % T) * W + i];
  if (!recompute_) acts_.resize(blocks_.size());
  for (size_t l = 0; l < blocks_.size(); l++) {
    Tensor next = Tensor::f32_uninit({rows_, W});
    Acts scratch;
    block_forward(blocks_[l], x.f32(), next.f32(), recompute_ ? scratch : acts_[l], t);
    x_in_.push_back(std::move(x));
    x = std::move(next);
  }
  *out = Tensor::f32_uninit({rows_, W});
  layer_norm(t, x.f32(), rows_, W, norm_w_, norm_b_, out->f32());
  x_in_.push_back(std::move(x));  // the final norm's input
}

void SiglipTrain::backward(const Tensor& d_out, const TrainOps& t) {
  DSVL2_CHECK(x_in_.size() == blocks_.size() + 1, "vision backward without forward");
  const int64_t W = cfg_.width, T = int64_t(cfg_.grid()) * cfg_.grid();
  Tensor dx = Tensor::f32({rows_, W});
  layer_norm_bwd(t, x_in_.back().f32(), d_out.f32(), rows_, W, norm_w_, norm_b_, dx.f32());
  for (size_t l = blocks_.size(); l-- > 0;) {
    Acts scratch;
    const Acts* a = &scratch;
    if (recompute_) {
      Tensor tmp = Tensor::f32_uninit({rows_, W});
      block_forward(blocks_[l], x_in_[l].f32(), tmp.f32(), scratch, t);
    } else {
      a = &acts_[l];
    }
    Tensor dprev = Tensor::f32_uninit({rows_, W});
    block_backward(blocks_[l], x_in_[l].f32(), *a, dx.f32(), dprev.f32(), t);
    dx = std::move(dprev);
    if (!recompute_) acts_[l] = Acts();
  }
  // Patch embedding + position embedding.
  linear_backward(t, patch_, cols_.f32(), dx.f32(), rows_, nullptr);
  if (pos_->trainable) {
    float* dp = pos_->grad.f32();
    for (int64_t r = 0; r < rows_; r++)
      for (int64_t i = 0; i < W; i++) dp[(r % T) * W + i] += dx.f32()[r * W + i];
  }
}

}  // namespace dsvl2
