// Visual prompt rendering, checked by its pixels over many seeds: each shape
// lands where the ViP-LLaVA parameters say, with one alpha in the stated range.
#include "ground/visual_prompt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsvl2::ground {
namespace {

Image solid(int w, int h, uint8_t v = 0) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.assign(size_t(w) * h * 3, v);
  return img;
}

struct Marked {
  std::vector<std::pair<int, int>> px;  // changed pixels
  std::vector<bool> at;                 // width*height
  int w = 0;
  bool operator()(int x, int y) const { return x >= 0 && y >= 0 && x < w && y < int(at.size()) / w && at[y * w + x]; }
};

Marked changed(const Image& before, const Image& after) {
  Marked m;
  m.w = before.width;
  m.at.assign(size_t(before.width) * before.height, false);
  for (int y = 0; y < before.height; ++y)
    for (int x = 0; x < before.width; ++x) {
      size_t i = (size_t(y) * before.width + x) * 3;
      if (before.rgb[i] != after.rgb[i] || before.rgb[i + 1] != after.rgb[i + 1] ||
          before.rgb[i + 2] != after.rgb[i + 2]) {
        m.px.push_back({x, y});
        m.at[size_t(y) * before.width + x] = true;
      }
    }
  return m;
}

const Color kRed{255, 0, 0, "red"};

// Every changed pixel must be red composited over black with the drawn alpha.
void expect_uniform_alpha(const Image& out, const Marked& m, const DrawnPrompt& d, int lo, int hi) {
  EXPECT_GE(d.alpha, lo);
  EXPECT_LE(d.alpha, hi);
  uint8_t want = pil_composite(255, 0, uint8_t(d.alpha));
  for (auto [x, y] : m.px) {
    const uint8_t* p = &out.rgb[(size_t(y) * out.width + x) * 3];
    ASSERT_EQ(p[0], want);
    ASSERT_EQ(p[1], 0);
    ASSERT_EQ(p[2], 0);
  }
}

Region box_region(double x1, double y1, double x2, double y2) { return Region{Box{x1, y1, x2, y2}, {}}; }

TEST(PilComposite, MatchesRoundedBlendEverywhere) {
  EXPECT_EQ(pil_composite(255, 0, 128), 128);
  EXPECT_EQ(pil_composite(255, 0, 255), 255);
  EXPECT_EQ(pil_composite(0, 200, 0), 200);
  EXPECT_EQ(pil_composite(100, 50, 96), 69);  // (100*96 + 50*159) / 255 = 68.82
  for (int a = 0; a < 256; ++a)
    for (int s = 0; s < 256; s += 3)
      for (int d = 0; d < 256; d += 5) {
        double exact = (s * a + d * (255 - a)) / 255.0;
        ASSERT_LE(std::fabs(pil_composite(uint8_t(s), uint8_t(d), uint8_t(a)) - exact), 0.51)
            << s << " " << d << " " << a;
      }
}

TEST(VisualPrompt, RectangleStrokeIsInsideTheBoxForManySeeds) {
  for (int size : {336, 672}) {
    Image img = solid(size, size * 3 / 4);
    const int s = size / 336;
    for (uint64_t seed = 0; seed < 40; ++seed) {
      Rng rng(seed);
      DrawnPrompt d;
      Image out = render_visual_prompt(img, Shape::kRectangle, kRed, box_region(50, 60, 200, 230), rng, {}, &d);
      Marked m = changed(img, out);
      EXPECT_GE(d.width, 2 * s);
      EXPECT_LE(d.width, 8 * s);
      expect_uniform_alpha(out, m, d, 96, 255);
      // Exactly PIL's inward outline: the ring between the box and the box inset by the width.
      size_t ring = 151 * 171 - size_t(151 - 2 * d.width) * (171 - 2 * d.width);
      EXPECT_EQ(m.px.size(), ring) << "seed " << seed;
      for (auto [x, y] : m.px) {
        ASSERT_TRUE(x >= 50 && x <= 200 && y >= 60 && y <= 230);
        ASSERT_FALSE(x >= 50 + d.width && x <= 200 - d.width && y >= 60 + d.width && y <= 230 - d.width);
      }
      EXPECT_EQ(d.phrase, "the red rectangle");
    }
  }
}

TEST(VisualPrompt, ConstantStyleAndFixedAlpha) {
  Image img = solid(672, 400);
  Rng rng(7);
  DrawnPrompt d;
  VisualPromptOptions opt;
  opt.constant_style = true;
  opt.alpha = 128;
  Image out = render_visual_prompt(img, Shape::kRectangle, kRed, box_region(10, 10, 100, 100), rng, opt, &d);
  EXPECT_EQ(d.width, 6);  // int(3 * 672 / 336)
  EXPECT_EQ(d.alpha, 128);
  expect_uniform_alpha(out, changed(img, out), d, 128, 128);
  opt.alpha = 300;
  EXPECT_THROW(render_visual_prompt(img, Shape::kRectangle, kRed, box_region(1, 1, 5, 5), rng, opt), Error);
}

TEST(VisualPrompt, EllipseRingLiesInScaledBounds) {
  Image img = solid(400, 300);
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    Image out = render_visual_prompt(img, Shape::kEllipse, kRed, box_region(150, 100, 250, 180), rng, {}, &d);
    Marked m = changed(img, out);
    ASSERT_FALSE(m.px.empty());
    expect_uniform_alpha(out, m, d, 96, 255);
    EXPECT_GE(d.size_ratio, 1.0);
    EXPECT_LT(d.size_ratio, 1.5);
    double cx = 200, cy = 140, rx = 50 * d.size_ratio + 0.5, ry = 40 * d.size_ratio + 0.5;
    EXPECT_NEAR((d.bounds.x0 + d.bounds.x1) / 2, cx, 1e-9);
    for (auto [x, y] : m.px) {
      double e = std::pow((x - cx) / rx, 2) + std::pow((y - cy) / ry, 2);
      ASSERT_LE(e, 1.01) << "outside the outer ellipse, seed " << seed;  // Cairo's arcs are Bezier approximations
      // Inside the ring's inner ellipse nothing is drawn.
      double ei = std::pow((x - cx) / (rx - d.width - 1), 2) + std::pow((y - cy) / (ry - d.width - 1), 2);
      ASSERT_GE(ei, 0.99) << "inside the inner ellipse, seed " << seed;
    }
    EXPECT_FALSE(m(200, 140));
    // The ring reaches the extreme points of the scaled ellipse.
    EXPECT_TRUE(m(int(std::lround(cx)), int(std::ceil(cy - ry + 0.5))) ||
                m(int(std::lround(cx)), int(std::ceil(cy - ry + 1.5))));
  }
}

TEST(VisualPrompt, EllipseUsesMaskUnionBounds) {
  Image img = solid(336, 336);
  Region r;
  r.box = Box{0, 0, 10, 10};  // ignored by the ellipse when a mask exists
  r.polygons = {{{100, 100}, {140, 100}, {140, 130}}, {{150, 150}, {180, 150}, {180, 200}}};
  Rng rng(3);
  DrawnPrompt d;
  render_visual_prompt(img, Shape::kEllipse, kRed, r, rng, {}, &d);
  EXPECT_NEAR((d.bounds.x0 + d.bounds.x1) / 2, 140, 1e-9);
  EXPECT_NEAR((d.bounds.y0 + d.bounds.y1) / 2, 150, 1e-9);
  EXPECT_NEAR(d.bounds.width(), 80 * d.size_ratio, 1e-9);
}

TEST(VisualPrompt, TriangleVerticesInBoxAndAnglesBounded) {
  Image img = solid(336, 336);
  for (uint64_t seed = 0; seed < 40; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    Image out = render_visual_prompt(img, Shape::kTriangle, kRed, box_region(80, 90, 260, 250), rng, {}, &d);
    Marked m = changed(img, out);
    expect_uniform_alpha(out, m, d, 96, 255);
    ASSERT_EQ(d.points.size(), 3u);
    for (const Point& p : d.points) {
      EXPECT_TRUE(p.x >= 80 && p.x <= 260 && p.y >= 90 && p.y <= 250);
      EXPECT_TRUE(m(int(std::lround(p.x)), int(std::lround(p.y)))) << "vertex not drawn, seed " << seed;
    }
    for (int i = 0; i < 3; ++i) {
      const Point &a = d.points[i], &b = d.points[(i + 1) % 3], &c = d.points[(i + 2) % 3];
      double v1x = a.x - b.x, v1y = a.y - b.y, v2x = c.x - b.x, v2y = c.y - b.y;
      double ang = std::acos((v1x * v2x + v1y * v2y) / (std::hypot(v1x, v1y) * std::hypot(v2x, v2y))) * 180 / M_PI;
      EXPECT_LE(ang, 150.0 + 1e-6);
    }
    for (auto [x, y] : m.px)
      ASSERT_TRUE(x >= 80 - d.width && x <= 260 + d.width && y >= 90 - d.width && y <= 250 + d.width);
  }
}

TEST(VisualPrompt, TriangleWithMaskSamplesInsideTheMask) {
  Image img = solid(336, 336);
  Region r;
  r.polygons = {{{100, 100}, {250, 100}, {250, 250}, {100, 250}}};
  int inside = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    render_visual_prompt(img, Shape::kTriangle, kRed, r, rng, {}, &d);
    for (const Point& p : d.points) inside += contains(r.polygons[0], p);
  }
  EXPECT_EQ(inside, 60);
}

TEST(VisualPrompt, PointIsAFilledEllipseNearTheCentre) {
  Image img = solid(336, 336);
  int near_centre = 0;
  for (uint64_t seed = 0; seed < 60; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    Image out = render_visual_prompt(img, Shape::kPoint, kRed, box_region(100, 100, 220, 200), rng, {}, &d);
    Marked m = changed(img, out);
    expect_uniform_alpha(out, m, d, 96, 255);
    EXPECT_GE(d.width, 5);
    EXPECT_LE(d.width, 20);
    ASSERT_EQ(d.points.size(), 1u);
    Point c = d.points[0];
    EXPECT_NEAR(d.radius_x * d.radius_y, double(d.width) * d.width, 1e-6);
    EXPECT_TRUE(m(int(std::lround(c.x)), int(std::lround(c.y))));
    double want = M_PI * d.radius_x * d.radius_y;
    EXPECT_NEAR(double(m.px.size()), want, 0.15 * want + 4) << "seed " << seed;
    for (auto [x, y] : m.px) ASSERT_LE(std::hypot((x - c.x) / (d.radius_x + 1), (y - c.y) / (d.radius_y + 1)), 1.0);
    // Standard deviations sqrt(120/8) ~ 3.9 and sqrt(100/8) ~ 3.5: the centre stays close.
    near_centre += std::fabs(c.x - 160) < 16 && std::fabs(c.y - 150) < 14;
  }
  EXPECT_GE(near_centre, 58);
}

TEST(VisualPrompt, ScribbleFollowsItsControlPoints) {
  Image img = solid(336, 336);
  for (uint64_t seed = 0; seed < 30; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    Image out = render_visual_prompt(img, Shape::kScribble, kRed, box_region(60, 70, 280, 300), rng, {}, &d);
    Marked m = changed(img, out);
    expect_uniform_alpha(out, m, d, 96, 255);
    EXPECT_GE(d.width, 2);
    EXPECT_LE(d.width, 12);
    ASSERT_EQ(d.points.size(), 4u);
    Bounds hull = bounds_of(Polygon(d.points.begin(), d.points.end()));
    for (auto [x, y] : m.px)
      ASSERT_TRUE(x >= hull.x0 - d.width && x <= hull.x1 + d.width && y >= hull.y0 - d.width && y <= hull.y1 + d.width);
    // The stroke starts at p0 and ends at p3.
    for (const Point& end : {d.points[0], d.points[3]}) {
      bool hit = false;
      for (int dy = -d.width; dy <= d.width && !hit; ++dy)
        for (int dx = -d.width; dx <= d.width && !hit; ++dx) hit = m(int(end.x) + dx, int(end.y) + dy);
      EXPECT_TRUE(hit) << "seed " << seed;
    }
  }
}

TEST(VisualPrompt, MaskFillsThePolygonArea) {
  Image img = solid(400, 400);
  Region r;
  // A concave arrow-like polygon and a separate triangle: area by the shoelace formula.
  r.polygons = {{{50, 50}, {300, 60}, {200, 150}, {320, 300}, {60, 250}}, {{330, 330}, {390, 330}, {360, 390}}};
  double want = area(r.polygons[0]) + area(r.polygons[1]);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    Image out = render_visual_prompt(img, Shape::kMask, kRed, r, rng, {}, &d);
    Marked m = changed(img, out);
    expect_uniform_alpha(out, m, d, 48, 128);
    EXPECT_NEAR(double(m.px.size()), want, 0.02 * want) << "seed " << seed;
    for (auto [x, y] : m.px) {  // every filled pixel is inside, or on the edge of, the polygons
      bool near = false;
      for (int dy = -1; dy <= 1 && !near; ++dy)
        for (int dx = -1; dx <= 1 && !near; ++dx) near = contains_any(r.polygons, {double(x + dx), double(y + dy)});
      ASSERT_TRUE(near) << x << "," << y;
    }
    EXPECT_TRUE(m(100, 100));
    EXPECT_FALSE(m(290, 150));  // in the notch
    EXPECT_EQ(d.phrase, "the red mask");
  }
}

TEST(VisualPrompt, MaskWithoutPolygonsFillsTheBox) {
  Image img = solid(200, 200);
  Rng rng(1);
  Image out = render_visual_prompt(img, Shape::kMask, kRed, box_region(10, 20, 59, 99), rng);
  EXPECT_EQ(changed(img, out).px.size(), 50u * 80);
}

TEST(VisualPrompt, ContourOutlinesEveryPart) {
  Image img = solid(336, 336);
  Region r;
  r.polygons = {{{50, 50}, {150, 50}, {150, 120}, {50, 120}}, {{200, 200}, {300, 210}, {250, 300}}};
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Rng rng(seed);
    DrawnPrompt d;
    Image out = render_visual_prompt(img, Shape::kMaskContour, kRed, r, rng, {}, &d);
    Marked m = changed(img, out);
    expect_uniform_alpha(out, m, d, 96, 255);
    EXPECT_GE(d.width, 1);
    EXPECT_LE(d.width, 2);
    for (const auto& part : r.polygons)
      for (const Point& p : part) EXPECT_TRUE(m(int(p.x), int(p.y)));
    EXPECT_FALSE(m(100, 85));   // interior of the first part
    EXPECT_FALSE(m(250, 240));  // interior of the second
    for (auto [x, y] : m.px) {
      bool near1 = x >= 50 - d.width - 1 && x <= 150 + d.width + 1 && y >= 50 - d.width - 1 && y <= 120 + d.width + 1;
      bool near2 = x >= 200 - d.width - 1 && x <= 300 + d.width + 1 && y >= 200 - d.width - 1 && y <= 300 + d.width + 1;
      ASSERT_TRUE(near1 || near2);
    }
  }
}

TEST(VisualPrompt, ArrowTipInJitteredCentreRegion) {
  for (int size : {336, 1008}) {
    Image img = solid(size, size);
    const int s = size / 336;
    const double x1 = 100 * s, y1 = 120 * s, x2 = 220 * s, y2 = 200 * s, bw = x2 - x1, bh = y2 - y1;
    for (uint64_t seed = 0; seed < 50; ++seed) {
      Rng rng(seed);
      DrawnPrompt d;
      Image out = render_visual_prompt(img, Shape::kArrow, kRed, box_region(x1, y1, x2, y2), rng, {}, &d);
      Marked m = changed(img, out);
      expect_uniform_alpha(out, m, d, 96, 255);
      EXPECT_GE(d.width, s);
      EXPECT_LE(d.width, 6 * s);
      const Point tip = d.points[0];
      EXPECT_GE(tip.x, (x1 + x2) / 2 - 0.25 * bw);
      EXPECT_LE(tip.x, (x1 + x2) / 2 + 0.25 * bw);
      EXPECT_GE(tip.y, (y1 + y2) / 2 - 0.25 * bh);
      EXPECT_LE(tip.y, (y1 + y2) / 2 + 0.25 * bh);
      // Length between 0.8 * min side and max(int(50 s), 1) (Python's uniform allows a > b).
      double lo = std::min(0.8 * std::min(bw, bh), 50.0 * s), hi = std::max(0.8 * std::min(bw, bh), 50.0 * s);
      EXPECT_GE(d.arrow_length, lo);
      EXPECT_LE(d.arrow_length, hi);
      EXPECT_GE(d.arrow_head, 6.0 * s);
      EXPECT_GE(d.arrow_head, 0.2 * d.arrow_length - 1e-9);
      // The drawing touches the tip and stays within one arrow length (+ stroke and wobble) of it.
      bool tip_hit = false;
      for (int dy = -d.width; dy <= d.width && !tip_hit; ++dy)
        for (int dx = -d.width; dx <= d.width && !tip_hit; ++dx) tip_hit = m(int(tip.x) + dx, int(tip.y) + dy);
      EXPECT_TRUE(tip_hit) << "seed " << seed;
      double reach = std::max(d.arrow_length, d.arrow_head) + d.width + 5 * s + 2;
      for (auto [x, y] : m.px) ASSERT_LE(std::hypot(x - tip.x, y - tip.y), reach) << "seed " << seed;
    }
  }
}

TEST(VisualPrompt, DeterministicPerSeedAndVariesAcrossSeeds) {
  Image img = solid(300, 200, 90);
  Region r = box_region(40, 30, 200, 170);
  r.polygons = {{{50, 40}, {190, 50}, {150, 160}, {60, 150}}};
  for (Shape shape : kAllShapes) {
    Rng a(42), b(42);
    Image x = render_visual_prompt(img, shape, kRed, r, a);
    Image y = render_visual_prompt(img, shape, kRed, r, b);
    EXPECT_EQ(x.rgb, y.rgb) << shape_name(shape);
    int differing = 0;
    for (uint64_t seed = 1; seed <= 5; ++seed) {
      Rng c(seed);
      differing += render_visual_prompt(img, shape, kRed, r, c).rgb != x.rgb;
    }
    EXPECT_GE(differing, 4) << shape_name(shape);
  }
}

TEST(VisualPrompt, RandomColourFollowsThePool) {
  Rng rng(5);
  int named = 0;
  for (int i = 0; i < 1000; ++i) {
    Color c = random_color(rng);
    if (!c.name.empty()) {
      ++named;
      EXPECT_TRUE(pool_name(c.r, c.g, c.b).has_value());
    }
  }
  EXPECT_NEAR(named, 500, 60);
}

TEST(VisualPrompt, BadRegionsThrow) {
  Image img = solid(50, 50);
  Rng rng(0);
  EXPECT_THROW(render_visual_prompt(img, Shape::kRectangle, kRed, Region{}, rng), Error);
  EXPECT_THROW(render_visual_prompt(img, Shape::kArrow, kRed, box_region(NAN, 0, 1, 1), rng), Error);
  EXPECT_THROW(render_visual_prompt(img, Shape::kArrow, kRed, box_region(0, 0, 1e30, 1), rng), Error);
  EXPECT_THROW(render_visual_prompt(Image{}, Shape::kArrow, kRed, box_region(0, 0, 1, 1), rng), Error);
  // Degenerate and off-image regions draw without trouble.
  for (Shape shape : kAllShapes) {
    EXPECT_NO_THROW(render_visual_prompt(img, shape, kRed, box_region(10, 10, 10, 10), rng)) << shape_name(shape);
    EXPECT_NO_THROW(render_visual_prompt(img, shape, kRed, box_region(-500, -500, 900, 900), rng)) << shape_name(shape);
    Region flat;  // zero-area mask: the official triangle loop would never end
    flat.polygons = {{{0, 0}, {10, 10}, {20, 20}}};
    EXPECT_NO_THROW(render_visual_prompt(img, shape, kRed, flat, rng)) << shape_name(shape);
  }
}

TEST(CocoPolygons, ParseFormsAndRejectBadInput) {
  auto parts = parse_coco_polygons(nlohmann::json::parse("[[1,2,3,4,5,6],[1,2]]"), "t");
  ASSERT_EQ(parts.size(), 1u);  // the 1-point part is dropped
  EXPECT_EQ(parts[0][2].x, 5);
  EXPECT_EQ(parse_coco_polygons(nlohmann::json::parse("[0,0,10,0,10,10]"), "t").size(), 1u);
  EXPECT_EQ(parse_coco_polygons(nlohmann::json::parse(R"({"segmentation": [[0,0,10,0,10,10]]})"), "t").size(), 1u);
  for (const char* bad : {"[]", "{}", "[[1,2,3]]", "[[1,2,\"x\",4,5,6]]", "[[1,2]]", "5", "[[1e300,0,0,0,1,1]]",
                          "[[[1,2,3,4,5,6]]]", R"({"segmentation": 3})"})
    EXPECT_THROW(parse_coco_polygons(nlohmann::json::parse(bad), "t"), Error) << bad;
  PolygonLimits lim;
  lim.max_parts = 2;
  EXPECT_THROW(parse_coco_polygons(nlohmann::json::parse("[[0,0,1,0,1,1],[0,0,1,0,1,1],[0,0,1,0,1,1]]"), "t", lim),
               Error);
}

}  // namespace
}  // namespace dsvl2::ground
