// Draws grounding results the way the official demo does
// (serve/app_modules/utils.py: parse_ref_bbox; presets.py: BOX2COLOR):
// box i gets colour kBoxColors[i % 13], a rectangle outline of width 3 drawn
// inside the box (PIL's ImageDraw.rectangle semantics: pixels x1..x2 inclusive,
// the stroke grows inward), and its label at (x1, y1 - 20), size 20, same colour.
// The demo's font is SimSun; we use DejaVu Sans (see canvas.h), so label
// pixels differ while positions and colours match. Unlike the demo, a box whose
// corners are swapped is drawn with them sorted instead of failing the image.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "ground/grounding_parser.h"
#include "image/image.h"

namespace dsvl2::ground {

struct RGB {
  uint8_t r, g, b;
};

inline constexpr std::array<RGB, 13> kBoxColors = {{{255, 0, 0},
                                                    {0, 255, 0},
                                                    {0, 0, 255},
                                                    {0, 255, 255},
                                                    {255, 255, 0},
                                                    {255, 0, 255},
                                                    {127, 127, 127},
                                                    {255, 255, 127},
                                                    {255, 127, 255},
                                                    {127, 255, 255},
                                                    {127, 127, 255},
                                                    {127, 255, 127},
                                                    {255, 127, 127}}};

struct BoxStyle {
  int line_width = 3;     // official box_width
  double font_size = 20;  // official ImageFont size
  int label_offset = 20;  // text at y1 - 20
  bool draw_labels = true;
};

// Returns a copy of `img` with every object's box_px drawn (and its label, when it has one).
Image draw_boxes(const Image& img, const std::vector<GroundedObject>& objects, const BoxStyle& style = {});

}  // namespace dsvl2::ground
