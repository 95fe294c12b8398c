// Reproduces ViP-LLaVA's llava/visual_prompt_generator.py (image_blending and
// the draw_* functions); see visual_prompt.h for the parameters.
#include "ground/visual_prompt.h"

#include <cairo.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numbers>

#include "core/error.h"
#include "ground/canvas.h"

namespace dsvl2::ground {
namespace {

constexpr double kPi = std::numbers::pi;
constexpr double kMaxCoord = 1e7;

// Python's int(k * max_image_size / image_size_anchor): the product is an
// exact integer, the quotient is truncated toward zero.
int scaled(int k, int max_side, int anchor) { return int(std::trunc(double(k) * max_side / anchor)); }

// A coverage mask drawn with Cairo in PIL's pixel coordinates (pixel (x, y)
// is the unit square centred on (x, y)), without anti-aliasing.
class MaskCanvas {
 public:
  MaskCanvas(int w, int h) {
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_A8, w, h);
    if (cairo_surface_status(surface_) != CAIRO_STATUS_SUCCESS) {
      cairo_surface_destroy(surface_);
      DSVL2_FAIL("cannot allocate a %dx%d visual prompt overlay", w, h);
    }
    cr_ = cairo_create(surface_);
    cairo_set_antialias(cr_, CAIRO_ANTIALIAS_NONE);
    cairo_set_source_rgba(cr_, 0, 0, 0, 1);
    cairo_translate(cr_, 0.5, 0.5);
  }
  ~MaskCanvas() {
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
  }
  MaskCanvas(const MaskCanvas&) = delete;
  MaskCanvas& operator=(const MaskCanvas&) = delete;
  cairo_t* cr() { return cr_; }
  // Coverage of pixel (x, y): 0 or 255.
  const uint8_t* data() {
    cairo_surface_flush(surface_);
    return cairo_image_surface_get_data(surface_);
  }
  int stride() { return cairo_image_surface_get_stride(surface_); }
  // Written directly, then marked dirty, as Cairo requires.
  uint8_t* pixels() {
    cairo_surface_flush(surface_);
    return cairo_image_surface_get_data(surface_);
  }
  void mark_dirty() { cairo_surface_mark_dirty(surface_); }

 private:
  cairo_surface_t* surface_;
  cairo_t* cr_;
};

void polyline(cairo_t* cr, const std::vector<Point>& pts, bool closed) {
  cairo_new_path(cr);
  for (size_t i = 0; i < pts.size(); ++i) {
    if (i == 0)
      cairo_move_to(cr, pts[i].x, pts[i].y);
    else
      cairo_line_to(cr, pts[i].x, pts[i].y);
  }
  if (closed) cairo_close_path(cr);
}

void stroke(cairo_t* cr, const std::vector<Point>& pts, bool closed, double width, cairo_line_join_t join) {
  polyline(cr, pts, closed);
  cairo_set_line_width(cr, width);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  cairo_set_line_join(cr, join);
  cairo_stroke(cr);
}

void ellipse_path(cairo_t* cr, double x0, double y0, double x1, double y1) {
  double rx = (x1 - x0) / 2, ry = (y1 - y0) / 2;
  if (!(rx > 0 && ry > 0)) return;
  cairo_save(cr);
  cairo_translate(cr, x0 + rx, y0 + ry);
  cairo_scale(cr, rx, ry);
  cairo_new_sub_path(cr);
  cairo_arc(cr, 0, 0, 1, 0, 2 * kPi);
  cairo_close_path(cr);
  cairo_restore(cr);
}

// PIL's ImageDraw.rectangle / ellipse outline: pixels x0..x1 inclusive, the
// stroke of width w grows inward. Filled as the ring between two shapes.
void rectangle_outline(cairo_t* cr, Bounds b, int w) {
  cairo_new_path(cr);
  double x0 = b.x0 - 0.5, y0 = b.y0 - 0.5, x1 = b.x1 + 0.5, y1 = b.y1 + 0.5;
  cairo_rectangle(cr, x0, y0, x1 - x0, y1 - y0);
  if (x1 - x0 > 2 * w && y1 - y0 > 2 * w) cairo_rectangle(cr, x0 + w, y0 + w, x1 - x0 - 2 * w, y1 - y0 - 2 * w);
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
  cairo_fill(cr);
}

void ellipse_outline(cairo_t* cr, Bounds b, int w) {
  cairo_new_path(cr);
  double x0 = b.x0 - 0.5, y0 = b.y0 - 0.5, x1 = b.x1 + 0.5, y1 = b.y1 + 0.5;
  ellipse_path(cr, x0, y0, x1, y1);
  if (x1 - x0 > 2 * w && y1 - y0 > 2 * w) ellipse_path(cr, x0 + w, y0 + w, x1 - w, y1 - w);
  cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
  cairo_fill(cr);
}

// The 1-px outlines of `parts` (miter joins), as ViP-LLaVA's contour draws
// them, dilated by a (2r+1)-pixel square into `out` (w x h, row stride
// `out_stride`). ViP-LLaVA redraws each outline at every offset (dx, dy) in
// [-r, r]^2: (2r+1)^2 strokes per part, hours for a mask of many points on a
// wide image. Unantialiased strokes move by whole pixels with an integer
// offset, so the union of the shifted strokes is the outline drawn once on
// pixels [-r, w + r) x [-r, h + r) and dilated: the same pixels, up to
// Cairo's rounding of points at another offset.
void dilated_outlines(const std::vector<Polygon>& parts, int r, int w, int h, uint8_t* out, int out_stride) {
  const int pw = w + 2 * r, ph = h + 2 * r, k = 2 * r + 1;
  std::vector<uint8_t> cov(size_t(pw) * ph);
  // In tiles, as the padded area may pass Cairo's size limit. Geometry past
  // a surface's edge can mark its outermost pixels, so tiles overlap by one
  // pixel each way and keep only their inside.
  constexpr int kTile = kMaxCanvasSide - 2;
  for (int ty = 0; ty < ph; ty += kTile)
    for (int tx = 0; tx < pw; tx += kTile) {
      const int x0 = std::max(tx - 1, 0), y0 = std::max(ty - 1, 0);
      const int x1 = std::min(tx + kTile + 1, pw), y1 = std::min(ty + kTile + 1, ph);
      MaskCanvas tile(x1 - x0, y1 - y0);
      cairo_translate(tile.cr(), r - x0, r - y0);
      for (const Polygon& p : parts) stroke(tile.cr(), p, true, 1.0, CAIRO_LINE_JOIN_MITER);
      DSVL2_REQUIRE(cairo_status(tile.cr()) == CAIRO_STATUS_SUCCESS, "visual prompt drawing failed: %s",
                    cairo_status_to_string(cairo_status(tile.cr())));
      const uint8_t* d = tile.data();
      const int cw = std::min(kTile, pw - tx), ch = std::min(kTile, ph - ty);
      for (int y = ty; y < ty + ch; ++y)
        std::memcpy(&cov[size_t(y) * pw + tx], d + size_t(y - y0) * tile.stride() + (tx - x0), cw);
    }
  // Rows in place: cov[y][x] = any of cov[y][x .. x + 2r] (a running count).
  for (int y = 0; y < ph; ++y) {
    uint8_t* row = &cov[size_t(y) * pw];
    int n = 0;
    for (int x = 0; x < k - 1; ++x) n += row[x] != 0;
    for (int x = 0; x < w; ++x) {
      const bool leaving = row[x] != 0;
      n += row[x + k - 1] != 0;
      row[x] = n > 0;
      n -= leaving;
    }
  }
  // Columns: out[y][x] = any of cov[y .. y + 2r][x].
  std::vector<int> n(size_t(w), 0);
  for (int y = 0; y < ph; ++y) {
    const uint8_t* add = &cov[size_t(y) * pw];
    for (int x = 0; x < w; ++x) n[size_t(x)] += add[x];
    if (y < k - 1) continue;
    const uint8_t* drop = &cov[size_t(y - k + 1) * pw];
    uint8_t* o = out + size_t(y - k + 1) * out_stride;
    for (int x = 0; x < w; ++x) {
      o[x] = n[size_t(x)] > 0 ? 255 : 0;
      n[size_t(x)] -= drop[x];
    }
  }
}

Polygon box_polygon(const Bounds& b) { return {{b.x0, b.y0}, {b.x0, b.y1}, {b.x1, b.y1}, {b.x1, b.y0}}; }

Point uniform_in(Rng& rng, const Bounds& b) {
  double x = rng.uniform(b.x0, b.x1);
  double y = rng.uniform(b.y0, b.y1);
  return {x, y};
}

// get_random_point_within_polygon: rejection in the bounds, 50 tries, then any point in the bounds.
Point point_in_parts(Rng& rng, const std::vector<Polygon>& parts, const Bounds& b) {
  for (int trial = 0; trial < 50; ++trial) {
    Point p = uniform_in(rng, b);
    if (contains_any(parts, p)) return p;
  }
  return uniform_in(rng, b);
}

// is_max_angle_less_than_150. A degenerate triangle gives NaN angles, which
// pass, exactly as numpy's comparisons do.
bool max_angle_at_most_150(const std::vector<Point>& p) {
  for (int i = 0; i < 3; ++i) {
    const Point &p1 = p[i], &p2 = p[(i + 1) % 3], &p3 = p[(i + 2) % 3];
    double a = std::hypot(p3.x - p2.x, p3.y - p2.y), b = std::hypot(p1.x - p3.x, p1.y - p3.y),
           c = std::hypot(p1.x - p2.x, p1.y - p2.y);
    double deg = std::acos((a * a + c * c - b * b) / (2 * a * c)) * 180.0 / kPi;
    if (deg > 150) return false;
  }
  return true;
}

void check_box(const Box& b) {
  for (double v : {b.x1, b.y1, b.x2, b.y2})
    DSVL2_REQUIRE(std::isfinite(v) && std::fabs(v) <= kMaxCoord, "visual prompt box has a bad coordinate %g", v);
}

}  // namespace

uint8_t pil_composite(uint8_t src, uint8_t dst, uint8_t a) {
  if (a == 0) return dst;
  // Image.alpha_composite (libImaging/AlphaComposite.c) with an opaque
  // destination: coefficients a*128 and (255-a)*128 (7 fractional bits),
  // then a rounded division by 255 done as two shifts.
  uint32_t coef1 = uint32_t(a) * 128, coef2 = 255u * 128 - coef1;
  uint32_t t = uint32_t(src) * coef1 + uint32_t(dst) * coef2 + (0x80u << 7);
  return uint8_t((((t >> 8) + t) >> 8) >> 7);
}

Color random_color(Rng& rng) {
  if (rng.chance(0.5)) {
    Color c;
    c.r = uint8_t(rng.randint(0, 255));
    c.g = uint8_t(rng.randint(0, 255));
    c.b = uint8_t(rng.randint(0, 255));
    return c;  // unnamed, even if it happens to equal a pool colour
  }
  const NamedColor& n = kColorPool[rng.index(kColorPool.size())];
  return Color{n.r, n.g, n.b, std::string(n.name)};
}

Image render_visual_prompt(const Image& img, Shape shape, const Color& color, const Region& region, Rng& rng,
                           const VisualPromptOptions& opt, DrawnPrompt* drawn) {
  DSVL2_REQUIRE(img.width > 0 && img.height > 0 && img.rgb.size() == size_t(img.width) * img.height * 3,
                "visual prompt: bad image %dx%d", img.width, img.height);
  DSVL2_REQUIRE(img.width <= kMaxCanvasSide && img.height <= kMaxCanvasSide,
                "visual prompt: image %dx%d too large (limit %d per side)", img.width, img.height, kMaxCanvasSide);
  DSVL2_REQUIRE(opt.anchor > 0 && opt.anchor <= 100000, "visual prompt: anchor %d out of range", opt.anchor);
  DSVL2_REQUIRE(region.box || !region.polygons.empty(), "visual prompt needs a box or a mask");
  if (region.box) check_box(*region.box);
  for (const Polygon& p : region.polygons) {
    DSVL2_REQUIRE(p.size() >= 3, "visual prompt mask part has fewer than 3 points");
    for (const Point& q : p)
      DSVL2_REQUIRE(
          std::isfinite(q.x) && std::isfinite(q.y) && std::fabs(q.x) <= kMaxCoord && std::fabs(q.y) <= kMaxCoord,
          "visual prompt mask has a bad coordinate");
  }
  const std::vector<Polygon>& parts = region.polygons;
  const bool has_mask = !parts.empty();
  Bounds bbox;
  if (region.box) {
    const Box& b = *region.box;
    bbox = {std::min(b.x1, b.x2), std::min(b.y1, b.y2), std::max(b.x1, b.x2), std::max(b.y1, b.y2)};
  } else {
    bbox = bounds_of(parts);
  }
  const int max_side = std::max(img.width, img.height);
  const int anchor = opt.anchor;
  auto px = [&](int k) { return scaled(k, max_side, anchor); };

  DrawnPrompt d;
  d.shape = shape;
  d.color = color;
  d.phrase = mark_phrase(shape, color);
  if (opt.alpha) {
    DSVL2_REQUIRE(*opt.alpha >= 0 && *opt.alpha <= 255, "visual prompt alpha %d out of range 0-255", *opt.alpha);
    d.alpha = *opt.alpha;
  } else {
    d.alpha = shape == Shape::kMask ? rng.randint(48, 128) : rng.randint(96, 255);
  }
  // image_blending picks one part for point and scribble before drawing anything.
  const Polygon* part = has_mask ? &parts[rng.index(parts.size())] : nullptr;

  MaskCanvas mask(img.width, img.height);
  cairo_t* cr = mask.cr();
  switch (shape) {
    case Shape::kRectangle: {
      d.width = opt.constant_style ? std::max(px(3), 1) : std::max(rng.randint(px(2), px(8)), 1);
      d.bounds = bbox;
      rectangle_outline(cr, bbox, d.width);
      break;
    }
    case Shape::kEllipse: {
      d.width = std::max(rng.randint(px(2), px(8)), 1);
      d.size_ratio = rng.uniform(1, 1.5);
      Bounds b = has_mask ? bounds_of(parts) : bbox;
      double cx = (b.x0 + b.x1) / 2, cy = (b.y0 + b.y1) / 2;
      double nw = b.width() * d.size_ratio, nh = b.height() * d.size_ratio;
      d.bounds = {cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2};
      ellipse_outline(cr, d.bounds, d.width);
      break;
    }
    case Shape::kTriangle: {
      d.width = std::max(rng.randint(px(2), px(8)), 1);
      d.bounds = has_mask ? bounds_of(parts) : bbox;
      // Redraw until no angle exceeds 150 degrees. The official loop is
      // unbounded (a zero-area mask never ends); 100 redraws keep hostile input bounded.
      for (int attempt = 0; attempt < 100; ++attempt) {
        d.points.clear();
        for (int k = 0; k < 3; ++k)
          d.points.push_back(has_mask ? point_in_parts(rng, parts, d.bounds) : uniform_in(rng, bbox));
        if (max_angle_at_most_150(d.points)) break;
      }
      stroke(cr, d.points, true, d.width, CAIRO_LINE_JOIN_ROUND);
      break;
    }
    case Shape::kPoint: {
      d.width = opt.constant_style ? std::max(px(8), 1) : std::max(rng.randint(px(5), px(20)), 1);
      double aspect = (opt.constant_style || rng.chance(0.5)) ? 1.0 : rng.uniform(0.5, 2.0);
      Polygon fallback = box_polygon(bbox);
      const Polygon& target = part ? *part : fallback;
      d.bounds = bounds_of(target);
      double mx = (d.bounds.x0 + d.bounds.x1) / 2, my = (d.bounds.y0 + d.bounds.y1) / 2;
      // The official code passes w/8 and h/8 as the covariance, i.e. variances.
      double sx = std::sqrt(std::max(d.bounds.width() / 8, 0.0)), sy = std::sqrt(std::max(d.bounds.height() / 8, 0.0));
      Point c;
      for (int tries = 0;; ++tries) {
        c.x = rng.normal(mx, sx);
        c.y = rng.normal(my, sy);
        if (contains(target, c)) break;
        if (tries + 1 >= 10) {
          c.x = rng.normal(mx, sx);
          c.y = rng.normal(my, sy);
          break;
        }
      }
      d.points = {c};
      d.radius_x = d.width * aspect;
      d.radius_y = d.width / aspect;
      cairo_new_path(cr);
      ellipse_path(cr, c.x - d.radius_x, c.y - d.radius_y, c.x + d.radius_x, c.y + d.radius_y);
      cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
      cairo_fill(cr);
      break;
    }
    case Shape::kScribble: {
      d.width = std::max(rng.randint(px(2), px(12)), 1);
      if (part) {
        d.bounds = bounds_of(*part);
        std::vector<Polygon> one{*part};
        for (int k = 0; k < 4; ++k) d.points.push_back(point_in_parts(rng, one, d.bounds));
      } else {
        d.bounds = bbox;
        for (int k = 0; k < 4; ++k) d.points.push_back(uniform_in(rng, bbox));
      }
      const int n = px(1000);  // np.linspace(0, 1, int(1000 s))
      std::vector<Point> curve;
      curve.reserve(std::max(n, 0));
      const Point &p0 = d.points[0], &p1 = d.points[1], &p2 = d.points[2], &p3 = d.points[3];
      for (int i = 0; i < n; ++i) {
        double t = n == 1 ? 0.0 : double(i) / (n - 1), u = 1 - t;
        double b0 = u * u * u, b1 = 3 * u * u * t, b2 = 3 * u * t * t, b3 = t * t * t;
        curve.push_back({b0 * p0.x + b1 * p1.x + b2 * p2.x + b3 * p3.x, b0 * p0.y + b1 * p1.y + b2 * p2.y + b3 * p3.y});
      }
      if (curve.size() >= 2) stroke(cr, curve, false, d.width, CAIRO_LINE_JOIN_ROUND);
      break;
    }
    case Shape::kMaskContour: {
      d.width = std::max(rng.randint(px(1), px(2)), 1);
      std::vector<Polygon> outline = has_mask ? parts : std::vector<Polygon>{box_polygon(bbox)};
      d.bounds = bounds_of(outline);
      dilated_outlines(outline, d.width, img.width, img.height, mask.pixels(), mask.stride());
      mask.mark_dirty();
      break;
    }
    case Shape::kMask: {
      cairo_set_fill_rule(cr, CAIRO_FILL_RULE_EVEN_ODD);
      if (!has_mask) {  // the box, pixels x1..x2 inclusive as PIL fills it
        d.bounds = bbox;
        cairo_rectangle(cr, bbox.x0 - 0.5, bbox.y0 - 0.5, bbox.width() + 1, bbox.height() + 1);
        cairo_fill(cr);
        break;
      }
      d.bounds = bounds_of(parts);
      for (const Polygon& p : parts) {  // one fill per part: overlapping parts unite
        polyline(cr, p, true);
        cairo_fill(cr);
      }
      break;
    }
    case Shape::kArrow: {
      d.width = std::max(rng.randint(px(1), px(6)), 1);
      const double max_len = std::max(px(50), 1);
      const double bw = bbox.width(), bh = bbox.height();
      d.bounds = bbox;
      d.arrow_length = rng.uniform(0.8 * std::min(bw, bh), max_len);
      d.arrow_angle = rng.uniform(0, 2 * kPi);
      Point tip{(bbox.x0 + bbox.x1) / 2, (bbox.y0 + bbox.y1) / 2};
      tip.x += rng.uniform(-0.25, 0.25) * bw;
      tip.y += rng.uniform(-0.25, 0.25) * bh;
      d.arrow_head = std::max(rng.uniform(0.2, 0.5) * d.arrow_length, double(px(6)));
      const double ca = std::cos(d.arrow_angle), sa = std::sin(d.arrow_angle);
      Point end{tip.x + (d.arrow_length - d.arrow_head) * ca, tip.y + (d.arrow_length - d.arrow_head) * sa};
      d.points = {tip, end};
      if (rng.chance(0.5)) {  // a midpoint "wobble", imitating a hand-drawn stroke
        const int unit = px(1);
        Point mid{(tip.x + end.x) / 2 + rng.uniform(-5, 5) * unit, (tip.y + end.y) / 2 + rng.uniform(-5, 5) * unit};
        d.points.push_back(mid);
        stroke(cr, {tip, mid, end}, false, d.width, CAIRO_LINE_JOIN_BEVEL);
      } else {
        stroke(cr, {tip, end}, false, d.width, CAIRO_LINE_JOIN_BEVEL);
      }
      const double h = d.arrow_head;
      Point left{tip.x + h * std::cos(d.arrow_angle + kPi / 3), tip.y + h * std::sin(d.arrow_angle + kPi / 3)};
      Point right{tip.x + h * std::cos(d.arrow_angle - kPi / 3), tip.y + h * std::sin(d.arrow_angle - kPi / 3)};
      d.head_filled = rng.chance(0.5);
      if (d.head_filled) {
        polyline(cr, {left, tip, right}, true);
        cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
        cairo_fill(cr);
      } else {
        stroke(cr, {left, tip, right}, false, d.width, CAIRO_LINE_JOIN_BEVEL);
      }
      break;
    }
  }
  DSVL2_REQUIRE(cairo_status(cr) == CAIRO_STATUS_SUCCESS, "visual prompt drawing failed: %s",
                cairo_status_to_string(cairo_status(cr)));

  Image out = img;
  const uint8_t* cov = mask.data();
  const int stride = mask.stride();
  const uint8_t a = uint8_t(d.alpha);
  const uint8_t rgb[3] = {color.r, color.g, color.b};
  for (int y = 0; y < img.height; ++y) {
    const uint8_t* row = cov + size_t(y) * stride;
    uint8_t* dst = out.rgb.data() + size_t(y) * img.width * 3;
    for (int x = 0; x < img.width; ++x)
      if (row[x])
        for (int k = 0; k < 3; ++k) dst[3 * x + k] = pil_composite(rgb[k], dst[3 * x + k], a);
  }
  if (drawn) *drawn = std::move(d);
  return out;
}

Box parse_box(const std::string& s) {
  double v[4];
  const char* p = s.c_str();
  for (int i = 0; i < 4; ++i) {
    char* end = nullptr;
    v[i] = std::strtod(p, &end);
    DSVL2_REQUIRE(end != p && std::isfinite(v[i]), "box '%s': expected x1,y1,x2,y2 numbers", s.c_str());
    p = end;
    while (*p == ' ') ++p;
    if (i < 3) {
      DSVL2_REQUIRE(*p == ',', "box '%s': expected x1,y1,x2,y2 numbers", s.c_str());
      ++p;
    }
  }
  DSVL2_REQUIRE(*p == '\0', "box '%s': expected x1,y1,x2,y2 numbers", s.c_str());
  return {v[0], v[1], v[2], v[3]};
}


}  // namespace dsvl2::ground
