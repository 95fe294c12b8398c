// Text rendered with known content and position (Cairo + Pango), for tests
// that need images whose text is known: the OCR check's validation set, and
// any other folder that wants "an image that says X" (header-only: the test
// CMake compiles only *_test.cpp files).
//
//   test::TextCanvas c(384, 384);
//   c.gradient({250, 240, 200}, {120, 160, 220}, /*horizontal=*/true);
//   test::TextStyle s{.font = "Liberation Serif", .size_px = 28, .color = {20, 20, 90}};
//   std::array<int, 4> box = c.text("SUMMER SALE", 20, 40, s);  // x1,y1,x2,y2 of the ink
//   Image img = c.image();
//
// Deterministic: the same calls give the same pixels (fonts from
// fonts-dejavu-core / fonts-liberation, noise from core/rng.h).
#pragma once
#include <cairo.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/rng.h"
#include "image/image.h"

namespace dsvl2::test {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct TextStyle {
  std::string font = "DejaVu Sans";  // fontconfig family name
  double size_px = 24;               // em size in pixels
  Rgb color{0, 0, 0};
  double angle_deg = 0;  // counter-clockwise, about the text's top-left corner
  bool bold = false;
};

class TextCanvas {
 public:
  TextCanvas(int w, int h) : w_(w), h_(h) {
    surface_ = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    DSVL2_CHECK(cairo_surface_status(surface_) == CAIRO_STATUS_SUCCESS, "cannot make a %dx%d surface", w, h);
    cr_ = cairo_create(surface_);
    fill({255, 255, 255});
  }
  ~TextCanvas() {
    cairo_destroy(cr_);
    cairo_surface_destroy(surface_);
  }
  TextCanvas(const TextCanvas&) = delete;
  TextCanvas& operator=(const TextCanvas&) = delete;

  int width() const { return w_; }
  int height() const { return h_; }

  void fill(Rgb c) {
    cairo_set_source_rgb(cr_, c.r / 255.0, c.g / 255.0, c.b / 255.0);
    cairo_paint(cr_);
  }
  void gradient(Rgb a, Rgb b, bool horizontal) {
    cairo_pattern_t* p = cairo_pattern_create_linear(0, 0, horizontal ? w_ : 0, horizontal ? 0 : h_);
    cairo_pattern_add_color_stop_rgb(p, 0, a.r / 255.0, a.g / 255.0, a.b / 255.0);
    cairo_pattern_add_color_stop_rgb(p, 1, b.r / 255.0, b.g / 255.0, b.b / 255.0);
    cairo_set_source(cr_, p);
    cairo_paint(cr_);
    cairo_pattern_destroy(p);
  }
  // `base` with every channel of every pixel moved by up to ±amplitude, plus
  // a few faint blotches: a textured background, not noise over the glyphs.
  void noise(Rgb base, int amplitude, uint64_t seed) {
    fill(base);
    Rng rng(seed, 0x6e6f697365);
    for (int i = 0; i < 12; ++i) {
      const double v = rng.uniform(-0.12, 0.12);
      cairo_set_source_rgba(cr_, base.r / 255.0 + v, base.g / 255.0 + v, base.b / 255.0 + v, 0.6);
      cairo_arc(cr_, rng.uniform(0, w_), rng.uniform(0, h_), rng.uniform(8, w_ / 5.0), 0, 2 * M_PI);
      cairo_fill(cr_);
    }
    cairo_surface_flush(surface_);
    uint8_t* data = cairo_image_surface_get_data(surface_);
    const int stride = cairo_image_surface_get_stride(surface_);
    for (int y = 0; y < h_; ++y) {
      auto* row = reinterpret_cast<uint32_t*>(data + size_t(y) * stride);
      for (int x = 0; x < w_; ++x) {
        uint32_t px = 0;
        for (int sh = 0; sh <= 16; sh += 8) {
          const int c = int((row[x] >> sh) & 0xff) + int(rng.next() % uint64_t(2 * amplitude + 1)) - amplitude;
          px |= uint32_t(std::clamp(c, 0, 255)) << sh;
        }
        row[x] = px;
      }
    }
    cairo_surface_mark_dirty(surface_);
  }

  // Size (w, h) of the text's ink before rotation, to lay text out.
  std::pair<int, int> measure(const std::string& text, const TextStyle& s) {
    PangoLayout* layout = make_layout(text, s);
    PangoRectangle ink, logical;
    pango_layout_get_pixel_extents(layout, &ink, &logical);
    g_object_unref(layout);
    return {ink.width, ink.height};
  }

  // Draws `text` with the top-left of its ink at (x, y); returns the
  // axis-aligned box x1,y1,x2,y2 (exclusive) of the (rotated) ink.
  std::array<int, 4> text(const std::string& text, double x, double y, const TextStyle& s) {
    PangoLayout* layout = make_layout(text, s);
    PangoRectangle ink, logical;
    pango_layout_get_pixel_extents(layout, &ink, &logical);
    const double a = -s.angle_deg * M_PI / 180;  // Cairo's y axis points down
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    cairo_rotate(cr_, a);
    cairo_translate(cr_, -ink.x, -ink.y);
    cairo_set_source_rgb(cr_, s.color.r / 255.0, s.color.g / 255.0, s.color.b / 255.0);
    pango_cairo_update_layout(cr_, layout);
    pango_cairo_show_layout(cr_, layout);
    cairo_restore(cr_);
    g_object_unref(layout);
    double x1 = 1e9, y1 = 1e9, x2 = -1e9, y2 = -1e9;
    for (auto [cx, cy] : {std::pair{0, 0}, {ink.width, 0}, {0, ink.height}, {ink.width, ink.height}}) {
      const double px = x + cx * std::cos(a) - cy * std::sin(a), py = y + cx * std::sin(a) + cy * std::cos(a);
      x1 = std::min(x1, px), y1 = std::min(y1, py), x2 = std::max(x2, px), y2 = std::max(y2, py);
    }
    return {std::max(0, int(std::floor(x1))), std::max(0, int(std::floor(y1))), std::min(w_, int(std::ceil(x2))),
            std::min(h_, int(std::ceil(y2)))};
  }

  Image image() {
    cairo_surface_flush(surface_);
    Image out;
    out.width = w_;
    out.height = h_;
    out.rgb.resize(size_t(w_) * h_ * 3);
    const uint8_t* data = cairo_image_surface_get_data(surface_);
    const int stride = cairo_image_surface_get_stride(surface_);
    for (int y = 0; y < h_; ++y) {
      auto* row = reinterpret_cast<const uint32_t*>(data + size_t(y) * stride);
      uint8_t* dst = out.rgb.data() + size_t(y) * w_ * 3;
      for (int x = 0; x < w_; ++x) {
        dst[3 * x] = uint8_t(row[x] >> 16);
        dst[3 * x + 1] = uint8_t(row[x] >> 8);
        dst[3 * x + 2] = uint8_t(row[x]);
      }
    }
    return out;
  }

 private:
  PangoLayout* make_layout(const std::string& text, const TextStyle& s) {
    PangoLayout* layout = pango_cairo_create_layout(cr_);
    PangoFontDescription* fd = pango_font_description_from_string(s.font.c_str());
    pango_font_description_set_absolute_size(fd, s.size_px * PANGO_SCALE);
    if (s.bold) pango_font_description_set_weight(fd, PANGO_WEIGHT_BOLD);
    pango_layout_set_font_description(layout, fd);
    pango_font_description_free(fd);
    pango_layout_set_text(layout, text.c_str(), int(text.size()));
    return layout;
  }

  int w_, h_;
  cairo_surface_t* surface_ = nullptr;
  cairo_t* cr_ = nullptr;
};

}  // namespace dsvl2::test
