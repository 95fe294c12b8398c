// `dsvl2 draw-prompt`: draw one ViP-LLaVA visual prompt on an image and print
// how a question refers to it (e.g. "the red ellipse").
//
//   dsvl2 draw-prompt --image cat.jpg --shape ellipse --box 40,60,200,220 --color red --seed 1 --out marked.png
#include <cstdio>

#include "command.h"
#include "core/error.h"
#include "ground/canvas.h"
#include "ground/polygons.h"
#include "ground/visual_prompt.h"
#include "image/image.h"

namespace dsvl2::cli {
namespace {

struct DrawPromptOptions {
  std::string image, shape, box, mask, color, out;
  uint64_t seed = 0;
  int alpha = -1, anchor = 336;
  bool constant = false;
};

Command reg(
    "draw-prompt", "Draw a ViP-LLaVA visual prompt (rectangle, ellipse, arrow, ...) on an image", [](CLI::App& app) {
      auto o = std::make_shared<DrawPromptOptions>();
      app.add_option("--image", o->image, "Input image")->required();
      app.add_option("--shape", o->shape, "rectangle|ellipse|triangle|point|scribble|contour|mask|arrow")->required();
      app.add_option("--box", o->box, "Region as x1,y1,x2,y2 in pixels");
      app.add_option("--mask", o->mask, "Region as a COCO polygon JSON file [[x1,y1,x2,y2,...], ...]");
      app.add_option("--color", o->color, "Colour name or R,G,B (default: random, as ViP-LLaVA)");
      app.add_option("--seed", o->seed, "Random seed (same seed, same drawing)");
      app.add_option("--alpha", o->alpha, "Fixed alpha 0-255 (default: random in the shape's range)")
          ->check(CLI::Range(0, 255));
      app.add_option("--anchor", o->anchor, "Size anchor for the scale factor (ViP-LLaVA: 336)")
          ->check(CLI::Range(1, 100000));
      app.add_flag("--constant", o->constant, "ViP-LLaVA's 'constant' style (fixed widths)");
      app.add_option("--out", o->out, "Output PNG")->required();
      return std::function<int()>([o] {
        ground::Shape shape = ground::parse_shape(o->shape);
        DSVL2_REQUIRE(!o->box.empty() || !o->mask.empty(), "draw-prompt needs --box or --mask");
        ground::Region region;
        if (!o->box.empty()) region.box = ground::parse_box(o->box);
        if (!o->mask.empty()) region.polygons = ground::load_coco_polygons(o->mask);
        Image img = load_image(o->image);
        Rng rng(o->seed);
        ground::Color color = o->color.empty() ? ground::random_color(rng) : ground::parse_color(o->color);
        ground::VisualPromptOptions opt;
        opt.anchor = o->anchor;
        opt.constant_style = o->constant;
        if (o->alpha >= 0) opt.alpha = o->alpha;
        ground::DrawnPrompt drawn;
        Image out = ground::render_visual_prompt(img, shape, color, region, rng, opt, &drawn);
        ground::save_png(out, o->out);
        std::printf("%s\n", drawn.phrase.c_str());
        return 0;
      });
    });

}  // namespace
}  // namespace dsvl2::cli
