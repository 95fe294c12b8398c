// Decoding of generated images, with the expected RGB worked out from PIL 9.4's
// rules (see the comments in src/image/decode_*.cpp).
#include <gtest/gtest.h>

#include "core/error.h"
#include "image/image.h"
#include "image/test_encoders.h"

namespace dsvl2 {
namespace {

Image decode(const std::string& bytes) {
  return decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test");
}

std::array<int, 3> px(const Image& img, int x, int y) {
  const uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
  return {p[0], p[1], p[2]};
}

using Rgb = std::array<int, 3>;

TEST(DecodePng, Rgb8IsCopied) {
  test::PngSpec s;
  s.width = 2;
  s.height = 1;
  s.pixels = {1, 2, 3, 250, 251, 252};
  const Image img = decode(test::encode_png(s));
  ASSERT_EQ(img.width, 2);
  ASSERT_EQ(img.height, 1);
  EXPECT_EQ(px(img, 0, 0), (Rgb{1, 2, 3}));
  EXPECT_EQ(px(img, 1, 0), (Rgb{250, 251, 252}));
}

TEST(DecodePng, RgbaDropsAlphaWithoutCompositing) {
  test::PngSpec s;
  s.width = 2;
  s.color_type = PNG_COLOR_TYPE_RGBA;
  s.pixels = {10, 20, 30, 0, 200, 100, 50, 128};
  const Image img = decode(test::encode_png(s));
  EXPECT_EQ(px(img, 0, 0), (Rgb{10, 20, 30}));  // fully transparent pixel keeps its colour
  EXPECT_EQ(px(img, 1, 0), (Rgb{200, 100, 50}));
}

TEST(DecodePng, SixteenBitRgbKeepsTheHighByte) {
  test::PngSpec s;
  s.width = 1;
  s.bit_depth = 16;
  s.pixels = {0x12, 0xff, 0xab, 0x80, 0x00, 0x7f};  // 0x12ff, 0xab80, 0x007f
  EXPECT_EQ(px(decode(test::encode_png(s)), 0, 0), (Rgb{0x12, 0xab, 0x00}));  // truncated, not rounded
  s.color_type = PNG_COLOR_TYPE_RGBA;
  s.pixels = {0x12, 0xff, 0xab, 0x80, 0x00, 0x7f, 0x00, 0x01};
  EXPECT_EQ(px(decode(test::encode_png(s)), 0, 0), (Rgb{0x12, 0xab, 0x00}));
}

TEST(DecodePng, SixteenBitGrayIsClippedNotShifted) {
  // PIL opens 16-bit gray as mode "I" and convert("RGB") clips to 0..255.
  test::PngSpec s;
  s.width = 3;
  s.bit_depth = 16;
  s.color_type = PNG_COLOR_TYPE_GRAY;
  s.pixels = {0x00, 0x64, 0x00, 0xff, 0x01, 0x00};  // 100, 255, 256
  const Image img = decode(test::encode_png(s));
  EXPECT_EQ(px(img, 0, 0), (Rgb{100, 100, 100}));
  EXPECT_EQ(px(img, 1, 0), (Rgb{255, 255, 255}));
  EXPECT_EQ(px(img, 2, 0), (Rgb{255, 255, 255}));
}

TEST(DecodePng, GrayAlphaReplicatesGray) {
  test::PngSpec s;
  s.width = 1;
  s.color_type = PNG_COLOR_TYPE_GRAY_ALPHA;
  s.pixels = {77, 0};
  EXPECT_EQ(px(decode(test::encode_png(s)), 0, 0), (Rgb{77, 77, 77}));
  s.bit_depth = 16;
  s.pixels = {0x9a, 0xff, 0x00, 0x00};
  EXPECT_EQ(px(decode(test::encode_png(s)), 0, 0), (Rgb{0x9a, 0x9a, 0x9a}));
}

TEST(DecodePng, LowBitGrayIsScaled) {
  test::PngSpec s;
  s.width = 4;
  s.bit_depth = 2;
  s.color_type = PNG_COLOR_TYPE_GRAY;
  s.pixels = {0b00011011};  // 0, 1, 2, 3
  const Image img = decode(test::encode_png(s));
  for (int x = 0; x < 4; ++x) EXPECT_EQ(px(img, x, 0)[0], 85 * x);
}

TEST(DecodePng, PaletteWithTransparencyAndShortPalette) {
  test::PngSpec s;
  s.width = 3;
  s.color_type = PNG_COLOR_TYPE_PALETTE;
  s.palette = {{200, 10, 20}, {5, 6, 7}};
  s.trns = {0, 255};
  s.pixels = {0, 1, 9};  // index 9 is past the palette: PIL's gray ramp gives (9, 9, 9)
  const Image img = decode(test::encode_png(s));
  EXPECT_EQ(px(img, 0, 0), (Rgb{200, 10, 20}));
  EXPECT_EQ(px(img, 1, 0), (Rgb{5, 6, 7}));
  EXPECT_EQ(px(img, 2, 0), (Rgb{9, 9, 9}));
}

TEST(DecodePng, InterlacedMatchesPlain) {
  test::PngSpec s;
  s.width = 11;
  s.height = 9;
  for (int i = 0; i < 11 * 9 * 3; ++i) s.pixels.push_back(uint8_t(i * 37 + 11));
  const Image plain = decode(test::encode_png(s));
  s.interlace = true;
  const Image inter = decode(test::encode_png(s));
  EXPECT_EQ(plain.rgb, inter.rgb);
  EXPECT_EQ(std::vector<uint8_t>(s.pixels.begin(), s.pixels.end()), plain.rgb);
}

TEST(DecodeJpeg, GrayIsReplicatedAndFlatColourSurvives) {
  std::vector<uint8_t> gray(16 * 16, 128);
  const Image g = decode(test::encode_jpeg(gray.data(), 16, 16, 1, 100));
  ASSERT_EQ(g.width, 16);
  EXPECT_EQ(px(g, 5, 7), (Rgb{128, 128, 128}));
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 16 * 16; ++i) {
    rgb.push_back(200);
    rgb.push_back(40);
    rgb.push_back(90);
  }
  const Image c = decode(test::encode_jpeg(rgb.data(), 16, 16, 3, 95));
  const Rgb p = px(c, 8, 8);
  EXPECT_NEAR(p[0], 200, 2);
  EXPECT_NEAR(p[1], 40, 2);
  EXPECT_NEAR(p[2], 90, 2);
}

TEST(DecodeWebp, LosslessDropsAlpha) {
  const uint8_t rgba[] = {1, 2, 3, 0, 40, 50, 60, 255, 7, 8, 9, 128, 255, 0, 255, 1};
  const Image img = decode(test::encode_webp_lossless_rgba(rgba, 2, 2));
  ASSERT_EQ(img.width, 2);
  ASSERT_EQ(img.height, 2);
  EXPECT_EQ(px(img, 1, 0), (Rgb{40, 50, 60}));
  EXPECT_EQ(px(img, 0, 1), (Rgb{7, 8, 9}));
  EXPECT_EQ(px(img, 1, 1), (Rgb{255, 0, 255}));
}

TEST(DecodeGif, FirstFrameOnAFilledCanvas) {
  std::vector<GifColorType> pal(4);
  pal[0] = {1, 1, 1};
  pal[1] = {100, 0, 0};
  pal[2] = {0, 100, 0};
  pal[3] = {0, 0, 100};
  // A 2x2 frame at (1, 1) on a 4x3 screen; the rest is index 0.
  const Image img = decode(test::encode_gif(4, 3, 1, 1, 2, 2, {1, 2, 3, 1}, pal));
  ASSERT_EQ(img.width, 4);
  ASSERT_EQ(img.height, 3);
  EXPECT_EQ(px(img, 0, 0), (Rgb{1, 1, 1}));
  EXPECT_EQ(px(img, 1, 1), (Rgb{100, 0, 0}));
  EXPECT_EQ(px(img, 2, 1), (Rgb{0, 100, 0}));
  EXPECT_EQ(px(img, 1, 2), (Rgb{0, 0, 100}));
  // With a transparent index the background is that index's colour.
  const Image t = decode(test::encode_gif(4, 3, 1, 1, 2, 2, {1, 2, 3, 1}, pal, 2));
  EXPECT_EQ(px(t, 0, 0), (Rgb{0, 100, 0}));
  EXPECT_EQ(px(t, 2, 1), (Rgb{0, 100, 0}));
}

TEST(DecodeGif, InterlacedRowsLandInPlace) {
  std::vector<GifColorType> pal(16);
  for (int i = 0; i < 16; ++i) pal[i] = {GifByteType(i * 10), GifByteType(i), GifByteType(255 - i)};
  std::vector<uint8_t> idx(3 * 10);
  for (int y = 0; y < 10; ++y)
    for (int x = 0; x < 3; ++x) idx[y * 3 + x] = uint8_t(y);
  const Image img = decode(test::encode_gif(3, 10, 0, 0, 3, 10, idx, pal, -1, true));
  for (int y = 0; y < 10; ++y) EXPECT_EQ(px(img, 1, y), (Rgb{y * 10, y, 255 - y})) << "row " << y;
}

TEST(DecodeBmp, TwentyFourBitBottomUp) {
  // Stored bottom-up as BGR.
  const Image img = decode(test::encode_bmp(2, 2, 24, {{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}}));
  EXPECT_EQ(px(img, 0, 1), (Rgb{3, 2, 1}));
  EXPECT_EQ(px(img, 1, 1), (Rgb{6, 5, 4}));
  EXPECT_EQ(px(img, 0, 0), (Rgb{9, 8, 7}));
}

TEST(DecodeBmp, ThirtyTwoBitAndPaletteAndRgb565) {
  const Image bgrx = decode(test::encode_bmp(1, 1, 32, {{10, 20, 30, 0}}));
  EXPECT_EQ(px(bgrx, 0, 0), (Rgb{30, 20, 10}));
  // 8-bit palette, BGRX entries.
  const Image pal = decode(test::encode_bmp(2, 1, 8, {{1, 0}}, {0, 0, 0, 0, 30, 60, 90, 0}));
  EXPECT_EQ(px(pal, 0, 0), (Rgb{90, 60, 30}));
  EXPECT_EQ(px(pal, 1, 0), (Rgb{0, 0, 0}));
  // 5-6-5 bitfields: r = 31, g = 32, b = 1 -> 255, 32*255/63 = 129, 255/31 = 8.
  const uint16_t v = (31 << 11) | (32 << 5) | 1;
  const Image f = decode(test::encode_bmp(1, 1, 16, {{uint8_t(v & 0xff), uint8_t(v >> 8)}}, {}, 3,
                                          {0xF800, 0x7E0, 0x1F}));
  EXPECT_EQ(px(f, 0, 0), (Rgb{255, 129, 8}));
}

TEST(DecodeImage, UnknownFormatIsRefused) {
  EXPECT_THROW(decode("II*\0 this is a tiff-like header"), Error);
  EXPECT_THROW(decode(""), Error);
}

TEST(DecodeImage, PixelLimitIsConfigurable) {
  test::PngSpec s;
  s.width = 4;
  s.height = 4;
  s.pixels.assign(4 * 4 * 3, 0);
  const std::string bytes = test::encode_png(s);
  DecodeLimits limits;
  limits.max_pixels = 15;
  EXPECT_THROW(decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t", limits), Error);
  limits.max_pixels = 16;
  EXPECT_NO_THROW(decode_image(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "t", limits));
}

}  // namespace
}  // namespace dsvl2
