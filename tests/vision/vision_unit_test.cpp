// Unit tests for the vision path on hand-made tensors: patch order, the 2x2
// unfold feature order, projector shapes, token layout and splicing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/ops.h"
#include "vision/layout.h"
#include "vision/projector.h"
#include "vision/siglip.h"

namespace dsvl2 {
namespace {

TEST(Patchify, ConvPatchOrderIsChannelRowColumn) {
  const int S = 5, P = 2;  // grid 2: the last pixel row/column is unused, as 384 = 27*14 + 6
  std::vector<float> pix(3 * S * S);
  for (int c = 0; c < 3; c++)
    for (int y = 0; y < S; y++)
      for (int x = 0; x < S; x++) pix[(c * S + y) * S + x] = float(c * 100 + y * 10 + x);
  std::vector<float> out(4 * 12, -1.f);
  patchify(pix.data(), S, P, out.data());
  // Patch (py=1, px=0) is row 2; feature c*4 + ky*2 + kx = pixel (c, 2+ky, 0+kx).
  const float* r = out.data() + 2 * 12;
  for (int c = 0; c < 3; c++)
    for (int ky = 0; ky < 2; ky++)
      for (int kx = 0; kx < 2; kx++) EXPECT_EQ(r[c * 4 + ky * 2 + kx], float(c * 100 + (2 + ky) * 10 + kx));
  EXPECT_EQ(out[3 * 12 + 11], float(200 + 30 + 3));  // patch (1,1), c=2, ky=kx=1
}

// A tiny tower (image 5, patch 2 -> 2x2 tokens, width 4, 2 heads, 1 block) against
// a direct transcription of the official forward with F32 weights.
struct TinyTower {
  VisionConfig cfg;
  std::vector<std::vector<float>> mats;  // owned F32 weight storage
  std::vector<float> rnd(size_t n, float scale, float base = 0.f) {
    static uint32_t s = 1;
    std::vector<float> v(n);
    for (float& x : v) {
      s = s * 1664525u + 1013904223u;
      x = base + scale * (float(s >> 8) / float(1 << 24) - 0.5f);
    }
    return v;
  }
  Weight mat(int64_t r, int64_t c, float scale) {
    mats.push_back(rnd(size_t(r * c), scale));
    return Weight{DType::kF32, r, c, mats.back().data()};
  }
  Tensor vec(int64_t n, float scale, float base = 0.f) {
    Tensor t = Tensor::f32({n});
    auto v = rnd(size_t(n), scale, base);
    std::copy(v.begin(), v.end(), t.f32());
    return t;
  }
  TinyTower() {
    cfg.layers = 1;
    cfg.width = 4;
    cfg.heads = 2;
    cfg.mlp_ratio = 1.5;  // hidden 6
    cfg.patch_size = 2;
    cfg.image_size = 5;
    mats.reserve(16);
  }
  VisionWeights weights() {
    VisionWeights w;
    w.patch = mat(4, 12, 1.f);
    w.patch_b = vec(4, 0.5f);
    w.pos_embed = vec(16, 0.5f);
    VisionBlockWeights b;
    b.norm1_w = vec(4, 0.5f, 1.f);
    b.norm1_b = vec(4, 0.5f);
    b.qkv = mat(12, 4, 2.f);
    b.qkv_b = vec(12, 0.5f);
    b.proj = mat(4, 4, 1.f);
    b.proj_b = vec(4, 0.5f);
    b.norm2_w = vec(4, 0.5f, 1.f);
    b.norm2_b = vec(4, 0.5f);
    b.fc1 = mat(6, 4, 1.f);
    b.fc1_b = vec(6, 0.5f);
    b.fc2 = mat(4, 6, 1.f);
    b.fc2_b = vec(4, 0.5f);
    w.blocks.push_back(std::move(b));
    w.norm_w = vec(4, 0.5f, 1.f);
    w.norm_b = vec(4, 0.5f);
    return w;
  }
};

std::vector<double> linear(const std::vector<double>& x, int64_t M, const Weight& w, const Tensor& b) {
  const float* W = static_cast<const float*>(w.data);
  std::vector<double> y(size_t(M * w.rows));
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < w.rows; n++) {
      double acc = b.f32()[n];
      for (int64_t k = 0; k < w.cols; k++) acc += x[m * w.cols + k] * W[n * w.cols + k];
      y[m * w.rows + n] = acc;
    }
  return y;
}
std::vector<double> layer_norm(const std::vector<double>& x, int64_t M, int64_t D, const Tensor& g, const Tensor& b) {
  std::vector<double> y(x.size());
  for (int64_t m = 0; m < M; m++) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < D; i++) mean += x[m * D + i] / D;
    for (int64_t i = 0; i < D; i++) var += (x[m * D + i] - mean) * (x[m * D + i] - mean) / D;
    for (int64_t i = 0; i < D; i++) y[m * D + i] = (x[m * D + i] - mean) / std::sqrt(var + 1e-6) * g.f32()[i] + b.f32()[i];
  }
  return y;
}

TEST(VisionTower, TinyTowerMatchesDirectForward) {
  TinyTower tt;
  VisionWeights w = tt.weights();
  const VisionWeights& ref = w;  // read before the move below (views stay valid: storage is in tt)
  // Keep copies of what the reference needs; Tensors move into the tower.
  Tensor pb = to_f32(ref.patch_b.view()), pos = to_f32(ref.pos_embed.view());
  const VisionBlockWeights& b0 = ref.blocks[0];
  Tensor n1w = to_f32(b0.norm1_w.view()), n1b = to_f32(b0.norm1_b.view()), qb = to_f32(b0.qkv_b.view()),
         prb = to_f32(b0.proj_b.view()), n2w = to_f32(b0.norm2_w.view()), n2b = to_f32(b0.norm2_b.view()),
         f1b = to_f32(b0.fc1_b.view()), f2b = to_f32(b0.fc2_b.view()), nw = to_f32(ref.norm_w.view()),
         nb = to_f32(ref.norm_b.view());
  Weight patch = ref.patch, qkv = b0.qkv, proj = b0.proj, fc1 = b0.fc1, fc2 = b0.fc2;
  VisionTower tower(tt.cfg, std::move(w));

  const int S = 5, n = 2, T = 4, D = 4, H = 2, hd = 2;
  Tensor px = Tensor::f32({n, 3, S, S});
  auto pv = tt.rnd(size_t(px.numel()), 2.f);
  std::copy(pv.begin(), pv.end(), px.f32());
  ThreadPool pool(2);
  Ops ops{&kernels_ref(), &pool, Compute::kF32};
  Tensor got = tower.encode(px, ops);
  ASSERT_EQ(got.shape(), (Shape{n, T, D}));

  for (int t = 0; t < n; t++) {
    // Conv2d(k=2, s=2) directly.
    std::vector<double> x(T * D);
    const float* W = static_cast<const float*>(patch.data);
    for (int py = 0; py < 2; py++)
      for (int pxx = 0; pxx < 2; pxx++)
        for (int o = 0; o < D; o++) {
          double acc = pb.f32()[o];
          for (int c = 0; c < 3; c++)
            for (int ky = 0; ky < 2; ky++)
              for (int kx = 0; kx < 2; kx++)
                acc += W[o * 12 + c * 4 + ky * 2 + kx] * px.f32()[((t * 3 + c) * S + py * 2 + ky) * S + pxx * 2 + kx];
          x[(py * 2 + pxx) * D + o] = acc + pos.f32()[(py * 2 + pxx) * D + o];
        }
    // Attention.
    auto q = linear(layer_norm(x, T, D, n1w, n1b), T, qkv, qb);
    std::vector<double> att(T * D, 0.0);
    for (int h = 0; h < H; h++)
      for (int i = 0; i < T; i++) {
        double s[4], mx = -1e300, sum = 0;
        for (int j = 0; j < T; j++) {
          s[j] = 0;
          for (int e = 0; e < hd; e++) s[j] += q[i * 12 + h * hd + e] * q[j * 12 + 4 + h * hd + e];
          s[j] /= std::sqrt(double(hd));
          mx = std::max(mx, s[j]);
        }
        for (int j = 0; j < T; j++) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j < T; j++)
          for (int e = 0; e < hd; e++) att[i * D + h * hd + e] += s[j] / sum * q[j * 12 + 8 + h * hd + e];
      }
    auto a = linear(att, T, proj, prb);
    for (int i = 0; i < T * D; i++) x[i] += a[i];
    auto f = linear(layer_norm(x, T, D, n2w, n2b), T, fc1, f1b);
    for (double& v : f) v = 0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
    auto m = linear(f, T, fc2, f2b);
    for (int i = 0; i < T * D; i++) x[i] += m[i];
    auto want = layer_norm(x, T, D, nw, nb);
    for (int i = 0; i < T * D; i++) EXPECT_NEAR(got.f32()[t * T * D + i], want[i], 1e-5) << "tile " << t << " i " << i;
  }
  EXPECT_THROW(tower.encode(Tensor::f32({1, 3, 4, 4}), ops), Error);
  EXPECT_THROW(tower.encode(Tensor::f32({0, 3, S, S}), ops), Error);
}

TEST(Unfold, FeatureOrderIsChannelMajorThenOffsetAndPadsWithZero) {
  const int64_t side = 3, C = 2;  // 3x3 grid -> padded to 4x4 -> 2x2 tokens of 8 features
  std::vector<float> x(2 * side * side * C);
  auto val = [](int64_t t, int64_t y, int64_t xx, int64_t c) { return float(1 + t * 1000 + y * 100 + xx * 10 + c); };
  for (int64_t t = 0; t < 2; t++)
    for (int64_t y = 0; y < side; y++)
      for (int64_t xx = 0; xx < side; xx++)
        for (int64_t c = 0; c < C; c++) x[((t * side + y) * side + xx) * C + c] = val(t, y, xx, c);
  ASSERT_EQ(downsampled_side(side, 2), 2);
  std::vector<float> out(2 * 4 * 8, -1.f);
  downsample_unfold(x.data(), 2, side, C, 2, out.data());
  for (int64_t t = 0; t < 2; t++)
    for (int64_t oy = 0; oy < 2; oy++)
      for (int64_t ox = 0; ox < 2; ox++)
        for (int64_t c = 0; c < C; c++)
          for (int dy = 0; dy < 2; dy++)
            for (int dx = 0; dx < 2; dx++) {
              int64_t y = oy * 2 + dy, xx = ox * 2 + dx;
              float want = (y < side && xx < side) ? val(t, y, xx, c) : 0.f;
              EXPECT_EQ(out[((t * 4) + oy * 2 + ox) * 8 + c * 4 + dy * 2 + dx], want)
                  << "t" << t << " o(" << oy << "," << ox << ") c" << c << " d(" << dy << "," << dx << ")";
            }
}

TEST(Unfold, SigLipGridGives196TokensWithPaddedLastRow) {
  const int64_t side = 27, C = 1;
  std::vector<float> x(side * side, 1.f);
  std::vector<float> out(196 * 4, -1.f);
  downsample_unfold(x.data(), 1, side, C, 2, out.data());
  EXPECT_EQ(downsampled_side(27, 2), 14);
  // Token (13, 13) covers rows/cols 26..27: only (26, 26) is real.
  const float* last = out.data() + 195 * 4;
  EXPECT_EQ(last[0], 1.f);
  EXPECT_EQ(last[1], 0.f);
  EXPECT_EQ(last[2], 0.f);
  EXPECT_EQ(last[3], 0.f);
  // Token (0, 13): dx = 1 falls in the padding.
  const float* edge = out.data() + 13 * 4;
  EXPECT_EQ(edge[0], 1.f);
  EXPECT_EQ(edge[1], 0.f);
  EXPECT_EQ(edge[2], 1.f);
  EXPECT_EQ(edge[3], 0.f);
}

TEST(Projector, LayerShapesFollowTheOfficialConstructor) {
  ProjectorConfig c;
  c.input_dim = 32;
  c.n_embed = 64;
  c.depth = 2;
  c.mlp_ratio = 1;
  auto s = Projector::layer_shapes(c);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0], (std::pair<int64_t, int64_t>{64, 128}));
  EXPECT_EQ(s[1], (std::pair<int64_t, int64_t>{64, 64}));
  c.depth = 3;
  c.mlp_ratio = 2;
  s = Projector::layer_shapes(c);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0], (std::pair<int64_t, int64_t>{128, 128}));
  EXPECT_EQ(s[1], (std::pair<int64_t, int64_t>{128, 128}));
  EXPECT_EQ(s[2], (std::pair<int64_t, int64_t>{64, 128}));
  c.depth = 1;  // range(1, 0) adds nothing, the final GELU + Linear is still appended
  EXPECT_EQ(Projector::layer_shapes(c).size(), 2u);
}

TEST(Projector, ForwardMatchesHandComputation) {
  // C = 1, side 3 -> 4 tokens of 4 features; layer0 sums the features (+1), layer1 doubles.
  ProjectorConfig c;
  c.input_dim = 1;
  c.n_embed = 1;
  c.depth = 2;
  std::vector<float> w0 = {1, 1, 1, 1}, w1 = {2};
  ProjectorLinear l0{Weight{DType::kF32, 1, 4, w0.data()}, Tensor::f32({1})};
  l0.b.f32()[0] = 1.f;
  ProjectorLinear l1{Weight{DType::kF32, 1, 1, w1.data()}, Tensor::f32({1})};
  std::vector<ProjectorLinear> layers;
  layers.push_back(std::move(l0));
  layers.push_back(std::move(l1));
  Projector p(c, std::move(layers));
  Tensor v = Tensor::f32({1, 9, 1});
  for (int i = 0; i < 9; i++) v.f32()[i] = float(i) * 0.1f;
  ThreadPool pool(1);
  Ops ops{&kernels_ref(), &pool, Compute::kF32};
  Tensor out = p.forward(v, ops);
  ASSERT_EQ(out.shape(), (Shape{1, 4, 1}));
  // Token sums: (0,1,3,4), (2,5), (6,7), (8).
  const float sums[4] = {0.8f, 0.7f, 1.3f, 0.8f};
  for (int i = 0; i < 4; i++) {
    float h = sums[i] + 1.f;
    float g = 0.5f * h * (1.f + std::erf(h / std::sqrt(2.f)));
    EXPECT_NEAR(out.f32()[i], 2.f * g, 1e-6f) << i;
  }
  EXPECT_THROW(p.forward(Tensor::f32({1, 8, 1}), ops), Error);  // not a square grid
  EXPECT_THROW(p.forward(Tensor::f32({1, 9, 2}), ops), Error);  // wrong width
}

TEST(Layout, TokenCountFormula) {
  EXPECT_EQ(image_token_count(1, 1, 14), 211 + 14 * 15);
  for (int tw = 1; tw <= 4; tw++)
    for (int th = 1; th <= 4; th++) EXPECT_EQ(image_token_count(tw, th, 14), 211 + th * 14 * (tw * 14 + 1));
  VLConfig cfg;
  EXPECT_EQ(image_token_side(cfg), 14);
}

// Tokens encode (tile, y, x) in a 1-wide feature; newline = -1, separator = -2.
Tensor fake_tiles(int64_t n, int64_t side) {
  Tensor t = Tensor::f32({n, side * side, 1});
  for (int64_t i = 0; i < n; i++)
    for (int64_t y = 0; y < side; y++)
      for (int64_t x = 0; x < side; x++) t.f32()[(i * side + y) * side + x] = float(i * 100 + y * 10 + x);
  return t;
}
Tensor crops(std::vector<int64_t> wh) {
  Tensor t(DType::kI64, {int64_t(wh.size() / 2), 2});
  for (size_t i = 0; i < wh.size(); i++) t.as<int64_t>()[i] = wh[i];
  return t;
}
Tensor scalar(float v) {
  Tensor t = Tensor::f32({1});
  t.f32()[0] = v;
  return t;
}

TEST(Layout, HeadOrderStitchesLocalTilesRowMajor) {
  const int64_t side = 2;
  // One image, 3 wide x 2 high: tiles 0 (global), 1..6 local row-major.
  Tensor out = layout_image_tokens(fake_tiles(7, side), crops({3, 2}), scalar(-1), scalar(-2), "head");
  ASSERT_EQ(out.dim(0), image_token_count(3, 2, side));
  std::vector<float> want = {0, 1, -1, 10, 11, -1, -2};
  for (int64_t ty = 0; ty < 2; ty++)
    for (int64_t y = 0; y < side; y++) {
      for (int64_t tx = 0; tx < 3; tx++)
        for (int64_t x = 0; x < side; x++) want.push_back(float((1 + ty * 3 + tx) * 100 + y * 10 + x));
      want.push_back(-1);
    }
  ASSERT_EQ(int64_t(want.size()), out.dim(0));
  for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(out.f32()[i], want[i]) << i;
}

TEST(Layout, TailOrderAndSeveralImages) {
  const int64_t side = 1;
  // Image A: 1x1 (tiles 0, 1); image B: 2x1 (tiles 2, 3, 4).
  Tensor out = layout_image_tokens(fake_tiles(5, side), crops({1, 1, 2, 1}), scalar(-1), scalar(-2), "tail");
  std::vector<float> want = {100, -1, -2, 0, -1, /*B*/ 300, 400, -1, -2, 200, -1};
  ASSERT_EQ(out.dim(0), int64_t(want.size()));
  for (size_t i = 0; i < want.size(); i++) EXPECT_EQ(out.f32()[i], want[i]) << i;
}

TEST(Layout, RejectsBadInput) {
  EXPECT_THROW(layout_image_tokens(fake_tiles(4, 2), crops({2, 2}), scalar(-1), scalar(-2), "head"), Error);  // 5 needed
  EXPECT_THROW(layout_image_tokens(fake_tiles(2, 2), crops({0, 1}), scalar(-1), scalar(-2), "head"), Error);
  EXPECT_THROW(layout_image_tokens(fake_tiles(2, 2), crops({1, 1}), scalar(-1), scalar(-2), "middle"), Error);
  EXPECT_THROW(layout_image_tokens(fake_tiles(2, 2), crops({1, 1}), Tensor::f32({2}), scalar(-2), "head"), Error);
  Tensor bad_crop = Tensor::f32({1, 2});
  EXPECT_THROW(layout_image_tokens(fake_tiles(2, 2), bad_crop, scalar(-1), scalar(-2), "head"), Error);
}

TEST(Layout, TilesForCrops) {
  EXPECT_EQ(tiles_for_crops(crops({2, 2, 1, 3})), 5 + 4);
  EXPECT_THROW(tiles_for_crops(crops({1, -1})), Error);
  EXPECT_THROW(tiles_for_crops(Tensor(DType::kI64, {2, 3})), Error);
}

TEST(Splice, WritesImageRowsInOrderAndChecksCounts) {
  std::vector<int64_t> ids = {0, 7, 7, 5, 7, 1};
  Tensor text = Tensor::f32({6, 2});
  for (int i = 0; i < 12; i++) text.f32()[i] = float(i);
  Tensor img = Tensor::f32({3, 2});
  for (int i = 0; i < 6; i++) img.f32()[i] = float(-1 - i);
  splice_image_embeddings(text, ids, 7, img);
  std::vector<float> want = {0, 1, -1, -2, -3, -4, 6, 7, -5, -6, 10, 11};
  for (int i = 0; i < 12; i++) EXPECT_EQ(text.f32()[i], want[i]) << i;

  EXPECT_THROW(splice_image_embeddings(text, ids, 5, img), Error);             // 1 slot, 3 tokens
  EXPECT_THROW(splice_image_embeddings(text, {0, 7, 7}, 7, img), Error);       // ids vs rows
  EXPECT_THROW(splice_image_embeddings(text, ids, 7, Tensor::f32({3, 3})), Error);  // width
}

}  // namespace
}  // namespace dsvl2
