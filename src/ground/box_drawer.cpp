#include "ground/box_drawer.h"

#include <cairo.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/utf8.h"
#include "ground/canvas.h"

namespace dsvl2::ground {
namespace {

// Cairo puts its context into a sticky error state on invalid UTF-8, which
// would silently stop all later drawing; replace bad bytes with '?' first.
std::string valid_utf8(const std::string& s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max_bytes) {
    const size_t n = s[i] == 0 ? 0 : utf8::sequence_length(s, i);
    if (n > 0) {
      out.append(s, i, n);
      i += n;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

}  // namespace

Image draw_boxes(const Image& img, const std::vector<GroundedObject>& objects, const BoxStyle& style) {
  DSVL2_REQUIRE(style.line_width >= 1 && style.line_width <= 1000, "box line width %d out of range", style.line_width);
  Canvas canvas(img);
  cairo_t* cr = canvas.cr();
  cairo_set_antialias(cr, CAIRO_ANTIALIAS_NONE);
  cairo_set_font_face(cr, label_font_face());
  cairo_set_font_size(cr, style.font_size);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  const double w = style.line_width;
  for (size_t i = 0; i < objects.size(); ++i) {
    const auto& o = objects[i];
    const RGB c = kBoxColors[i % kBoxColors.size()];
    cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
    double x0 = std::min(o.box_px[0], o.box_px[2]), x1 = std::max(o.box_px[0], o.box_px[2]);
    double y0 = std::min(o.box_px[1], o.box_px[3]), y1 = std::max(o.box_px[1], o.box_px[3]);
    // Pixels x0..x1 inclusive span [x0, x1 + 1) in Cairo's pixel-edge coordinates;
    // four bands of width w inside that span form PIL's inward outline.
    double bw = x1 + 1 - x0, bh = y1 + 1 - y0;
    cairo_rectangle(cr, x0, y0, bw, std::min(w, bh));
    cairo_rectangle(cr, x0, std::max(y0, y1 + 1 - w), bw, std::min(w, bh));
    cairo_rectangle(cr, x0, y0, std::min(w, bw), bh);
    cairo_rectangle(cr, std::max(x0, x1 + 1 - w), y0, std::min(w, bw), bh);
    cairo_set_fill_rule(cr, CAIRO_FILL_RULE_WINDING);
    cairo_fill(cr);
    if (style.draw_labels && o.label && !o.label->empty()) {
      // PIL draws text with its top (ascender line) at y; Cairo's origin is the baseline.
      cairo_save(cr);
      cairo_set_antialias(cr, CAIRO_ANTIALIAS_DEFAULT);
      cairo_move_to(cr, x0, y0 - style.label_offset + fe.ascent);
      cairo_show_text(cr, valid_utf8(*o.label, 1024).c_str());
      cairo_restore(cr);
    }
  }
  return canvas.to_image();
}

}  // namespace dsvl2::ground
