// ViP-LLaVA visual prompts (llava/visual_prompt_generator.py: image_blending
// and draw_*), reimplemented with Cairo and a portable seeded RNG.
//
// Model: the shape is drawn at full opacity into a coverage mask (no
// anti-aliasing, like PIL's ImageDraw), the mask becomes an RGBA overlay of
// colour (r, g, b, alpha) where covered, and the overlay is alpha-composited
// onto the RGB image with PIL's Image.alpha_composite integer formula. As in
// PIL, overlapping strokes do not add up: every covered pixel has one alpha.
//
// Parameters follow the official code (see the design note, section 3):
//   s = max(W, H) / anchor (anchor 336); every "k pixels" constant is int(k*s);
//   alpha  randint(96, 255), or randint(48, 128) for mask;
//   rectangle width max(randint(int(2s), int(8s)), 1) (constant style: max(int(3s), 1));
//   ellipse   width as rectangle, bounds of all mask parts (else the box) scaled by U(1, 1.5);
//   triangle  width as rectangle, 3 points in the mask union (50 rejection tries)
//             or the box, redrawn until every angle <= 150 degrees; round joins;
//   point     filled ellipse, radius max(randint(int(5s), int(20s)), 1) (constant: int(8s)),
//             aspect 1 with p = 0.5 else U(0.5, 2); centre ~ N(centre, variance w/8, h/8)
//             of one random mask part (the box without a mask: the OPEN case), 10 tries
//             to land inside, then one unchecked draw;
//   scribble  width max(randint(int(2s), int(12s)), 1); cubic Bezier through 4 points
//             in one random mask part (else the box), int(1000 s) samples of t;
//   contour   every part's 1-px outline redrawn at offsets dx, dy in [-w, w],
//             w = max(randint(int(s), int(2s)), 1) (the box without a mask);
//   mask      every part filled (the box without a mask);
//   arrow     width max(randint(int(s), int(6s)), 1); length U(0.8 min(bw, bh), max(int(50s), 1));
//             angle U(0, 2pi); tip = box centre + U(-0.25, 0.25)(bw, bh);
//             head max(U(0.2, 0.5) L, int(6s)); shaft with a midpoint wobble of
//             U(-5, 5) int(s) with p = 0.5; head filled with p = 0.5, else an open V.
// Random draws happen in that order (alpha, mask part, shape parameters), so
// one seed always gives the same picture; the sequence is not Python's.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "ground/polygons.h"
#include "core/rng.h"
#include "ground/vip_vocab.h"
#include "image/image.h"

namespace dsvl2::ground {

struct Box {
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
};

// What the prompt marks: a box, a mask, or both (a missing box is the mask's bounds).
// Parses "x1,y1,x2,y2" (pixels); throws Error.
Box parse_box(const std::string& s);

struct Region {
  std::optional<Box> box;
  std::vector<Polygon> polygons;
};

struct VisualPromptOptions {
  int anchor = 336;             // CLIP crop size in ViP-LLaVA (DeepSeek-VL2 tiles are 384: OPEN)
  std::optional<int> alpha;     // fixed alpha 0-255 instead of the random range
  bool constant_style = false;  // ViP's 'constant' style (fixed rectangle width and point size)
};

// What was drawn, for tests and logs. Coordinates are PIL pixel coordinates.
struct DrawnPrompt {
  Shape shape = Shape::kRectangle;
  Color color;
  int alpha = 0;
  int width = 0;                      // line width; point radius; contour w
  double size_ratio = 1;              // ellipse
  Bounds bounds;                      // rectangle/ellipse outer bounds; point/scribble/triangle sampling bounds
  std::vector<Point> points;          // triangle: 3; point: centre; scribble: 4 control points;
                                      // arrow: tip, shaft end, [wobble midpoint]
  double radius_x = 0, radius_y = 0;  // point
  double arrow_length = 0, arrow_head = 0, arrow_angle = 0;
  bool head_filled = false;
  std::string phrase;  // mark_phrase, e.g. "the red ellipse"
};

// ViP-LLaVA's generic colour choice: with p = 0.5 an unnamed random RGB, else a pool colour.
Color random_color(Rng& rng);

// Draws one visual prompt on a copy of `img` and returns it. Throws Error on
// a bad region (no box and no mask, non-finite numbers) or an image Cairo
// cannot hold.
Image render_visual_prompt(const Image& img, Shape shape, const Color& color, const Region& region, Rng& rng,
                           const VisualPromptOptions& options = {}, DrawnPrompt* drawn = nullptr);

// PIL Image.alpha_composite of one colour with alpha `a` over an opaque pixel.
uint8_t pil_composite(uint8_t src, uint8_t dst, uint8_t a);

}  // namespace dsvl2::ground
