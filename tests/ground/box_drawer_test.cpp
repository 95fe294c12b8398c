#include "ground/box_drawer.h"

#include <cairo.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "ground/canvas.h"
#include "test_util.h"

namespace dsvl2::ground {
namespace {

Image solid(int w, int h, uint8_t v) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(size_t(w) * h * 3, v);
  return img;
}

RGB at(const Image& img, int x, int y) {
  const uint8_t* p = &img.rgb[(size_t(y) * img.width + x) * 3];
  return {p[0], p[1], p[2]};
}

bool same(RGB a, RGB b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

GroundedObject obj(std::optional<std::string> label, std::array<int, 4> px) {
  GroundedObject o;
  o.label = std::move(label);
  o.box_px = px;
  return o;
}

TEST(BoxDrawer, OutlineIsThreePixelsInsideTheBox) {
  Image img = solid(200, 150, 40);
  Image out = draw_boxes(img, {obj(std::nullopt, {50, 40, 120, 100})});
  const RGB red = kBoxColors[0], bg{40, 40, 40};
  for (int y = 40; y <= 100; ++y) {
    for (int x : {50, 51, 52, 118, 119, 120}) EXPECT_TRUE(same(at(out, x, y), red)) << x << "," << y;
    if (y > 42 && y < 98) {
      for (int x : {49, 53, 117, 121}) EXPECT_TRUE(same(at(out, x, y), bg)) << x << "," << y;
    }
  }
  for (int x = 50; x <= 120; ++x) {
    for (int y : {40, 41, 42, 98, 99, 100}) EXPECT_TRUE(same(at(out, x, y), red)) << x << "," << y;
    EXPECT_TRUE(same(at(out, x, 39), bg));
    EXPECT_TRUE(same(at(out, x, 101), bg));
  }
  // Count: exactly the ring (71 x 61 minus 65 x 55).
  int n = 0;
  for (int y = 0; y < 150; ++y)
    for (int x = 0; x < 200; ++x) n += !same(at(out, x, y), bg);
  EXPECT_EQ(n, 71 * 61 - 65 * 55);
}

TEST(BoxDrawer, ColoursCycleThroughThirteen) {
  Image img = solid(300, 60, 0);
  std::vector<GroundedObject> objs;
  for (int i = 0; i < 14; ++i) objs.push_back(obj(std::nullopt, {i * 20, 10, i * 20 + 15, 50}));
  Image out = draw_boxes(img, objs);
  for (int i = 0; i < 14; ++i) {
    RGB want = kBoxColors[i % 13];
    EXPECT_TRUE(same(at(out, i * 20, 30), want)) << i;
  }
  EXPECT_TRUE(same(at(out, 13 * 20, 30), RGB{255, 0, 0}));
}

TEST(BoxDrawer, LabelDrawnAboveTheBoxInItsColour) {
  ASSERT_FALSE(find_label_font().empty()) << "DejaVu Sans not installed (fonts-dejavu-core)";
  Image img = solid(300, 200, 0);
  Image out = draw_boxes(img, {obj("dog", {40, 80, 200, 180})});
  int label_px = 0, elsewhere = 0;
  for (int y = 0; y < 200; ++y)
    for (int x = 0; x < 300; ++x) {
      RGB p = at(out, x, y);
      if (p.r == 0 && p.g == 0 && p.b == 0) continue;
      bool in_label_band = y >= 60 && y < 80 && x >= 40 && x < 100;
      bool on_box = x >= 40 && x <= 200 && y >= 80 && y <= 180;
      if (in_label_band) {
        ++label_px;
        EXPECT_EQ(p.g, 0);  // red text, anti-aliased edges keep the hue
        EXPECT_EQ(p.b, 0);
      } else if (!on_box) {
        ++elsewhere;
      }
    }
  EXPECT_GT(label_px, 40);
  EXPECT_EQ(elsewhere, 0);
}

TEST(BoxDrawer, BadLabelsAndOffImageBoxesAreHarmless) {
  Image img = solid(100, 100, 0);
  std::vector<GroundedObject> objs = {obj(std::string("\xff\xfe bad"), {10, 30, 50, 60}),
                                      obj(std::string("猫"), {-50, -50, 2000, 3000}),
                                      obj(std::nullopt, {90, 90, 20, 20})};  // corners swapped
  Image out = draw_boxes(img, objs);
  EXPECT_TRUE(same(at(out, 10, 45), kBoxColors[0]));
  EXPECT_TRUE(same(at(out, 20, 50), kBoxColors[2]));  // the swapped box is drawn after the invalid label
  EXPECT_TRUE(same(at(out, 90, 25), kBoxColors[2]));
}

TEST(Canvas, PngRoundTrip) {
  Image img = solid(7, 5, 0);
  for (size_t i = 0; i < img.rgb.size(); ++i) img.rgb[i] = uint8_t(i * 37);
  std::string path = test::temp_dir("ground_png") + "/x.png";
  save_png(img, path);
  cairo_surface_t* s = cairo_image_surface_create_from_png(path.c_str());
  ASSERT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  ASSERT_EQ(cairo_image_surface_get_width(s), 7);
  ASSERT_EQ(cairo_image_surface_get_height(s), 5);
  const uint8_t* data = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int y = 0; y < 5; ++y)
    for (int x = 0; x < 7; ++x) {
      uint32_t v = reinterpret_cast<const uint32_t*>(data + y * stride)[x];
      RGB p = at(img, x, y);
      EXPECT_EQ(uint8_t(v >> 16), p.r);
      EXPECT_EQ(uint8_t(v >> 8), p.g);
      EXPECT_EQ(uint8_t(v), p.b);
    }
  cairo_surface_destroy(s);
  EXPECT_THROW(save_png(img, "/nonexistent-dir/x.png"), Error);
  EXPECT_THROW(Canvas(solid(40000, 1, 0)), Error);
}

}  // namespace
}  // namespace dsvl2::ground
