#include "ground/vip_vocab.h"

#include <cctype>

#include "core/error.h"

namespace dsvl2::ground {
namespace {

struct ShapeWords {
  Shape shape;
  std::string_view name, word1, word2;
};
// words_shape (visual_prompt_generator.py); word2 is the noun used in text.
constexpr std::array<ShapeWords, 8> kWords = {{{Shape::kRectangle, "rectangle", "within", "rectangle"},
                                               {Shape::kEllipse, "ellipse", "within", "ellipse"},
                                               {Shape::kTriangle, "triangle", "with", "triangle"},
                                               {Shape::kPoint, "point", "at", "point"},
                                               {Shape::kScribble, "scribble", "with", "scribble"},
                                               {Shape::kMaskContour, "mask contour", "with", "mask contour"},
                                               {Shape::kMask, "mask", "with", "mask"},
                                               {Shape::kArrow, "arrow", "pointed to by", "arrow"}}};

const ShapeWords& words(Shape s) {
  for (const auto& w : kWords)
    if (w.shape == s) return w;
  DSVL2_CHECK(false, "unknown shape %d", int(s));
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Parses a decimal 0-255 without sign, spaces allowed around it.
std::optional<int> parse_channel(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty() || s.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > 255) return std::nullopt;
  return v;
}

}  // namespace

std::string_view shape_name(Shape s) { return words(s).name; }
std::string_view shape_preposition(Shape s) { return words(s).word1; }

Shape parse_shape(std::string_view name) {
  std::string n = lower(name);
  if (n == "contour" || n == "mask_contour" || n == "mask-contour") return Shape::kMaskContour;
  for (const auto& w : kWords)
    if (n == w.name) return w.shape;
  DSVL2_FAIL(
      "unknown visual prompt shape '%.*s' (expected rectangle, ellipse, triangle, point, scribble, contour, "
      "mask or arrow)",
      int(std::min<size_t>(name.size(), 64)), name.data());
}

std::optional<std::string_view> pool_name(uint8_t r, uint8_t g, uint8_t b) {
  for (const auto& c : kColorPool)
    if (c.r == r && c.g == g && c.b == b) return c.name;
  return std::nullopt;
}

Color parse_color(std::string_view spec) {
  std::string n = lower(spec);
  for (const auto& c : kColorPool)
    if (n == c.name) return Color{c.r, c.g, c.b, std::string(c.name)};
  size_t c1 = spec.find(','), c2 = c1 == std::string_view::npos ? c1 : spec.find(',', c1 + 1);
  if (c1 != std::string_view::npos && c2 != std::string_view::npos &&
      spec.find(',', c2 + 1) == std::string_view::npos) {
    auto r = parse_channel(spec.substr(0, c1)), g = parse_channel(spec.substr(c1 + 1, c2 - c1 - 1)),
         b = parse_channel(spec.substr(c2 + 1));
    if (r && g && b) {
      Color c{uint8_t(*r), uint8_t(*g), uint8_t(*b), ""};
      if (auto nm = pool_name(c.r, c.g, c.b)) c.name = std::string(*nm);
      return c;
    }
  }
  DSVL2_FAIL(
      "bad colour '%.*s': expected a name (red, lime, blue, yellow, fuchsia, aqua, orange, purple, gold) or "
      "R,G,B with each 0-255",
      int(std::min<size_t>(spec.size(), 64)), spec.data());
}

std::string mark_phrase(Shape s, const Color& c) {
  std::string out = "the";
  if (!c.name.empty()) out.append(" ").append(c.name);
  out.append(" ").append(words(s).word2);
  return out;
}

std::string reference_phrase(Shape s, const Color& c) { return std::string(words(s).word1) + " " + mark_phrase(s, c); }

std::string object_phrase(Shape s, const Color& c) { return "the object " + reference_phrase(s, c); }

std::string vip_describe_prompt(Shape s, const Color& c) {
  return "Describe the object " + reference_phrase(s, c) + ". Please provide a short phrase.";
}

std::string vip_relation_prompt(Shape subject_shape, const Color& subject_color, Shape object_shape,
                                const Color& object_color) {
  return "Please describe the relationship between the subject " + reference_phrase(subject_shape, subject_color) +
         " and the object " + reference_phrase(object_shape, object_color) +
         ". Provide a short triplet (subject, relationship, object) to represent this. Here, the subject and object "
         "are noun phrases, and the relationship can be verbs or prepositions.";
}

std::string vip_question(std::string_view question_template, Shape s, const Color& c) {
  constexpr std::string_view kSlot = "{object}";
  size_t at = question_template.find(kSlot);
  DSVL2_REQUIRE(at != std::string_view::npos, "visual prompt question template has no {object} slot");
  std::string out;
  std::string obj = object_phrase(s, c);
  size_t from = 0;
  for (; at != std::string_view::npos; at = question_template.find(kSlot, from)) {
    out.append(question_template.substr(from, at - from)).append(obj);
    from = at + kSlot.size();
  }
  out.append(question_template.substr(from));
  return out;
}

}  // namespace dsvl2::ground
