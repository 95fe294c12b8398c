// Unit tests for the vision path on hand-made tensors: patch order, the 2x2
// unfold feature order, projector shapes, token layout and splicing.
#include <gtest/gtest.h>

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
