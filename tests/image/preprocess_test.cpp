// Resizing, padding, grid selection and token counts on hand-checkable cases
// (values derived below and cross-checked with Pillow 9.4).
#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "image/preprocess.h"
#include "image/resample.h"

namespace dsvl2 {
namespace {

Image gray_row(const std::vector<uint8_t>& v, bool vertical = false) {
  Image img;
  img.width = vertical ? 1 : int(v.size());
  img.height = vertical ? int(v.size()) : 1;
  img.rgb.resize(v.size() * 3);
  for (size_t i = 0; i < v.size(); ++i) img.rgb[3 * i] = img.rgb[3 * i + 1] = img.rgb[3 * i + 2] = v[i];
  return img;
}

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < size_t(w) * h; ++i) img.rgb[3 * i] = r, img.rgb[3 * i + 1] = g, img.rgb[3 * i + 2] = b;
  return img;
}

std::vector<int> channel0(const Image& img) {
  std::vector<int> v;
  for (size_t i = 0; i < img.rgb.size(); i += 3) v.push_back(img.rgb[i]);
  return v;
}

TEST(ResizeBicubic, UpscaleTwoPixels) {
  // 2 -> 4: output 1 has center 0.75, taps f(-0.25) = 0.8671875 and
  // f(0.75) = 0.2265625, normalised weight of the 255 pixel 0.2071428...,
  // 255 * that = 52.8 -> 53 after 22-bit fixed point rounding; outputs 0 and
  // 3 overshoot and clip.
  EXPECT_EQ(channel0(resize_bicubic(gray_row({0, 255}), 4, 1)), (std::vector<int>{0, 53, 202, 255}));
}

TEST(ResizeBicubic, DownscaleWidensTheKernel) {
  // 4 -> 2: scale 2 doubles the support to 4 and halves the argument. Output 0
  // (center 1) weights f(-.25), f(.25), f(.75), f(1.25) = .8671875, .8671875,
  // .2265625, -.0703125; 255 * (.2265625 - .0703125) / 1.890625 = 21.07 -> 21.
  EXPECT_EQ(channel0(resize_bicubic(gray_row({0, 0, 255, 255}), 2, 1)), (std::vector<int>{21, 234}));
}

TEST(ResizeBicubic, VerticalPassAlone) {
  EXPECT_EQ(channel0(resize_bicubic(gray_row({10, 20, 200, 250}, true), 1, 3)), (std::vector<int>{2, 109, 248}));
}

TEST(ResizeBicubic, SameSizeIsACopyAndConstantsStayConstant) {
  const Image a = gray_row({1, 2, 3});
  EXPECT_EQ(resize_bicubic(a, 3, 1).rgb, a.rgb);
  const Image c = resize_bicubic(solid(7, 5, 9, 99, 199), 13, 3);
  ASSERT_EQ(c.width, 13);
  ASSERT_EQ(c.height, 3);
  for (size_t i = 0; i < c.rgb.size(); i += 3) {
    EXPECT_EQ(c.rgb[i], 9);
    EXPECT_EQ(c.rgb[i + 1], 99);
    EXPECT_EQ(c.rgb[i + 2], 199);
  }
  EXPECT_THROW(resize_bicubic(a, 0, 1), Error);
}

TEST(PilPad, OffsetRoundsHalfToEven) {
  // 3x1 into 4x4: contain() gives 4x1 (round(1/3*4) = 1); the 3 spare rows put
  // the image at y = round(1.5) = 2, not (4-1)//2 = 1.
  const Image out = pil_pad(solid(3, 1, 200, 100, 50), 4, 4, {127, 127, 127});
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      const uint8_t* p = &out.rgb[(y * 4 + x) * 3];
      if (y == 2) {
        EXPECT_EQ(p[0], 200);
        EXPECT_EQ(p[2], 50);
      } else {
        EXPECT_EQ(p[0], 127);
      }
    }
  // Same along x for a 1x3 image.
  const Image col = pil_pad(solid(1, 3, 200, 100, 50), 4, 4, {127, 127, 127});
  EXPECT_EQ(col.rgb[(0 * 4 + 2) * 3], 200);
  EXPECT_EQ(col.rgb[(0 * 4 + 1) * 3], 127);
}

TEST(PilPad, TooThinImagesAreRefused) {
  // 1000x1 into 384x384 would resize to 384x0, which PIL refuses too.
  EXPECT_THROW(pil_pad(solid(1000, 1, 0, 0, 0), 384, 384, {127, 127, 127}), Error);
}

TEST(SelectBestResolution, OfficialCases) {
  const std::vector<std::pair<int, int>> c = {{384, 384},  {384, 768},  {768, 384},  {384, 1152}, {1152, 384},
                                              {384, 1536}, {1536, 384}, {768, 768},  {384, 1920}, {1920, 384},
                                              {384, 2304}, {2304, 384}, {768, 1152}, {1152, 768}, {384, 2688},
                                              {2688, 384}, {384, 3072}, {3072, 384}, {768, 1536}, {1536, 768},
                                              {384, 3456}, {3456, 384}, {1152, 1152}};
  EXPECT_EQ(select_best_resolution(640, 480, c), (std::pair{768, 768}));
  EXPECT_EQ(select_best_resolution(300, 1000, c), (std::pair{384, 1152}));
  EXPECT_EQ(select_best_resolution(4000, 200, c), (std::pair{3456, 384}));
  EXPECT_EQ(select_best_resolution(768, 384, c), (std::pair{768, 384}));
  EXPECT_EQ(select_best_resolution(1920, 1080, c), (std::pair{1536, 768}));
  // Every candidate covers a 1x1 image fully: the least wasted area wins.
  EXPECT_EQ(select_best_resolution(1, 1, c), (std::pair{384, 384}));
  // Exact ties keep the first candidate (strict comparisons).
  EXPECT_EQ(select_best_resolution(10, 10, {{768, 384}, {384, 768}}), (std::pair{768, 384}));
  EXPECT_THROW(select_best_resolution(10, 10, {}), Error);
}

TEST(ImageTokenCount, FromTheConfig) {
  ProcessorConfig cfg;  // 384 / 14 = 27 -> ceil(27 / 2) = 14 tokens a side
  EXPECT_EQ(image_token_count(1, 1, image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio)), 14 * 15 + 1 + 14 * 15);  // 421
  EXPECT_EQ(image_token_count(2, 2, image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio)), 211 + 28 * 29);
  EXPECT_EQ(image_token_count(4, 2, image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio)), 1807);
  EXPECT_EQ(image_token_count(1, 3, image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio)), 841);
}

TEST(PreprocessImages, LayoutAndNormalisation) {
  ProcessorConfig cfg;
  cfg.candidate_resolutions = {{384, 384}, {768, 384}};
  const Image wide = solid(800, 300, 255, 0, 51);
  const PreprocessResult r = preprocess_images({wide, wide}, cfg, CropMode::kAuto);
  ASSERT_EQ(r.pixel_values.shape(), (Shape{6, 3, 384, 384}));  // 2 x (global + 2 tiles)
  EXPECT_EQ(r.images_spatial_crop.as<int64_t>()[0], 2);
  EXPECT_EQ(r.images_spatial_crop.as<int64_t>()[1], 1);
  EXPECT_EQ(r.num_image_tokens.as<int64_t>()[1], image_token_count(2, 1, image_token_side(cfg.image_size, cfg.patch_size, cfg.downsample_ratio)));
  // Padding is 127 -> (127/255 - 0.5)/0.5; the image's 255 -> 1, 0 -> -1.
  const float* g = r.pixel_values.f32();
  EXPECT_FLOAT_EQ(g[0], (127.0f / 255.0f - 0.5f) / 0.5f);
  const size_t plane = 384 * 384;
  EXPECT_EQ(g[192 * 384 + 192], 1.0f);              // R at the centre
  EXPECT_EQ(g[plane + 192 * 384 + 192], -1.0f);     // G
  // Three images turn cropping off: 1 global + 1 identical local tile each.
  const PreprocessResult three = preprocess_images({wide, wide, wide}, cfg, CropMode::kAuto);
  ASSERT_EQ(three.pixel_values.dim(0), 6);
  EXPECT_EQ(std::memcmp(three.pixel_values.f32(), three.pixel_values.f32() + 3 * plane, 3 * plane * sizeof(float)), 0);
  EXPECT_EQ(preprocess_images({wide}, cfg, CropMode::kOff).pixel_values.dim(0), 2);
  EXPECT_EQ(preprocess_images({wide, wide, wide}, cfg, CropMode::kOn).pixel_values.dim(0), 9);
}

}  // namespace
}  // namespace dsvl2
