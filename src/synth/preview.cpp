#include "synth/preview.h"

#include <cairo.h>

#include <algorithm>

#include "core/error.h"
#include "ground/canvas.h"

namespace dsvl2::synth {
namespace {

constexpr int kColumns = 4, kTextHeight = 150, kPad = 8;

// Box-filter shrink: good enough for a thumbnail a person glances at.
Image shrink(const Image& img, int side) {
  const double s = std::min(1.0, double(side) / std::max(img.width, img.height));
  Image out;
  out.width = std::max(1, int(img.width * s));
  out.height = std::max(1, int(img.height * s));
  out.rgb.resize(size_t(out.width) * out.height * 3);
  for (int y = 0; y < out.height; y++)
    for (int x = 0; x < out.width; x++) {
      const int x0 = int(x / s), x1 = std::max(x0 + 1, std::min(img.width, int((x + 1) / s)));
      const int y0 = int(y / s), y1 = std::max(y0 + 1, std::min(img.height, int((y + 1) / s)));
      for (int c = 0; c < 3; c++) {
        uint64_t sum = 0;
        for (int yy = y0; yy < y1; yy++)
          for (int xx = x0; xx < x1; xx++) sum += img.rgb[(size_t(yy) * img.width + xx) * 3 + c];
        out.rgb[(size_t(y) * out.width + x) * 3 + c] = uint8_t(sum / uint64_t((x1 - x0) * (y1 - y0)));
      }
    }
  return out;
}

// Draws `text` wrapped to `width` from (x, y) down, at most `height` tall.
void draw_wrapped(cairo_t* cr, const std::string& text, double x, double y, double width, double height) {
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  std::string line;
  double at = y + fe.ascent;
  auto flush = [&] {
    cairo_move_to(cr, x, at);
    cairo_show_text(cr, line.c_str());
    line.clear();
    at += fe.height;
  };
  size_t i = 0;
  while (i < text.size() && at < y + height) {
    size_t j = text.find_first_of(" \n", i);
    if (j == std::string::npos) j = text.size();
    const std::string word = text.substr(i, j - i);
    std::string trial = line.empty() ? word : line + " " + word;
    cairo_text_extents_t te;
    cairo_text_extents(cr, trial.c_str(), &te);
    if (te.x_advance > width && !line.empty()) {
      flush();
      trial = word;
    }
    line = trial;
    if (j < text.size() && text[j] == '\n') flush();
    i = j + 1;
  }
  if (!line.empty() && at < y + height) flush();
}

}  // namespace

PreviewCell preview_cell(const Record& r, const std::string& out_dir) {
  PreviewCell c;
  for (const Message& m : r.messages)
    if (!m.images.empty()) {
      c.thumb = shrink(load_image(out_dir + "/" + m.images[0]), kPreviewSide);
      break;
    }
  c.text = std::string("[") + task_name(r.task) + "]";
  for (const Message& m : r.messages) c.text += (m.role == "<|User|>" ? " Q: " : " A: ") + m.content;
  return c;
}

Image contact_sheet(const std::vector<PreviewCell>& cells) {
  DSVL2_REQUIRE(!cells.empty(), "contact sheet: no records");
  const int cw = kPreviewSide + 2 * kPad, ch = kPreviewSide + kTextHeight + 2 * kPad;
  const int cols = std::min<int>(kColumns, int(cells.size())), rows = int((cells.size() + kColumns - 1) / kColumns);
  Image sheet;
  sheet.width = cols * cw;
  sheet.height = rows * ch;
  sheet.rgb.assign(size_t(sheet.width) * sheet.height * 3, 255);
  for (size_t k = 0; k < cells.size(); k++) {
    const Image& t = cells[k].thumb;
    const int ox = int(k % kColumns) * cw + kPad, oy = int(k / kColumns) * ch + kPad;
    for (int y = 0; y < t.height; y++)
      std::copy_n(&t.rgb[size_t(y) * t.width * 3], size_t(t.width) * 3, &sheet.rgb[(size_t(oy + y) * sheet.width + ox) * 3]);
  }
  ground::Canvas canvas(sheet);
  cairo_t* cr = canvas.cr();
  cairo_set_font_face(cr, ground::label_font_face());
  cairo_set_font_size(cr, 11);
  cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
  for (size_t k = 0; k < cells.size(); k++) {
    const int ox = int(k % kColumns) * cw + kPad, oy = int(k / kColumns) * ch + kPad + kPreviewSide + 4;
    draw_wrapped(cr, cells[k].text, ox, oy, kPreviewSide, kTextHeight - 8);
  }
  return canvas.to_image();
}

}  // namespace dsvl2::synth
