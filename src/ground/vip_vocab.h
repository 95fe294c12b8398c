// ViP-LLaVA's visual-prompt vocabulary: the eight shapes, the named colour
// pool, and how question text refers to a drawn mark
// (llava/visual_prompt_generator.py: color_pool, words_shape;
// llava/visual_prompt_organizer.py: "{word1} the{ colour} {word2}").
//
//   reference_phrase(Shape::kEllipse, red)  -> "within the red ellipse"
//   mark_phrase(Shape::kEllipse, red)       -> "the red ellipse"
//   object_phrase(Shape::kArrow, unnamed)   -> "the object pointed to by the arrow"
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dsvl2::ground {

enum class Shape { kRectangle, kEllipse, kTriangle, kPoint, kScribble, kMaskContour, kMask, kArrow };
inline constexpr std::array<Shape, 8> kAllShapes = {Shape::kRectangle, Shape::kEllipse,  Shape::kTriangle,
                                                    Shape::kPoint,     Shape::kScribble, Shape::kMaskContour,
                                                    Shape::kMask,      Shape::kArrow};

// "rectangle", "ellipse", "triangle", "point", "scribble", "mask contour", "mask", "arrow".
std::string_view shape_name(Shape s);
// Accepts the names above and "contour" for the mask contour; throws Error otherwise.
Shape parse_shape(std::string_view name);
// words_shape[shape][0]: "within", "with", "at", "pointed to by".
std::string_view shape_preposition(Shape s);

// An RGB colour; `name` is empty for an unnamed (random) colour, which the
// reference phrase then omits, as ViP-LLaVA does.
struct Color {
  uint8_t r = 0, g = 0, b = 0;
  std::string name;
};

struct NamedColor {
  std::string_view name;
  uint8_t r, g, b;
};
// color_pool, in its order.
inline constexpr std::array<NamedColor, 9> kColorPool = {{{"red", 255, 0, 0},
                                                          {"lime", 0, 255, 0},
                                                          {"blue", 0, 0, 255},
                                                          {"yellow", 255, 255, 0},
                                                          {"fuchsia", 255, 0, 255},
                                                          {"aqua", 0, 255, 255},
                                                          {"orange", 255, 165, 0},
                                                          {"purple", 128, 0, 128},
                                                          {"gold", 255, 215, 0}}};

// "red" (a pool name, case-insensitive) or "R,G,B" with each 0-255. An RGB
// triple equal to a pool colour gets that colour's name. Throws Error on bad input.
Color parse_color(std::string_view spec);
// The pool name for an exact RGB match, or nullopt.
std::optional<std::string_view> pool_name(uint8_t r, uint8_t g, uint8_t b);

// "the{ colour} {word2}", e.g. "the red ellipse", "the mask contour".
std::string mark_phrase(Shape s, const Color& c);
// "{word1} the{ colour} {word2}", e.g. "within the red ellipse".
std::string reference_phrase(Shape s, const Color& c);
// "the object " + reference_phrase, e.g. "the object pointed to by the red arrow".
std::string object_phrase(Shape s, const Color& c);

// RefCOCOg-style region question. The released code drops the reference
// ("Describe the object ."), a bug; this is the evident intent:
// "Describe the object {reference}. Please provide a short phrase."
std::string vip_describe_prompt(Shape s, const Color& c);
// VG relation template (visual_prompt_organizer.py: vip_conv_generator, vg_rel).
std::string vip_relation_prompt(Shape subject_shape, const Color& subject_color, Shape object_shape,
                                const Color& object_color);
// A free question about the marked object: "{question with {object} replaced}"
// e.g. vip_question("What colour is {object}?", kEllipse, red)
//   -> "What colour is the object within the red ellipse?". Throws if no "{object}".
std::string vip_question(std::string_view question_template, Shape s, const Color& c);

}  // namespace dsvl2::ground
