// Visual-prompt QA (ViP-LLaVA): marks drawn on the image, questions that
// refer to them by shape and colour (design note 3.2-3.5).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ground/visual_prompt.h"
#include "synth/tasks_internal.h"

namespace dsvl2::synth::detail {
namespace {

using ground::Shape;

// visual_prompt_config (design note 3.4). COCO alone has no entry there: it
// gets all eight, like RefCOCOg, whose images are COCO's.
std::vector<Shape> allowed_shapes(const std::string& source) {
  if (source == "flickr30k") return {Shape::kRectangle, Shape::kEllipse, Shape::kArrow};
  if (source == "vg") return {Shape::kRectangle, Shape::kEllipse};
  return {ground::kAllShapes.begin(), ground::kAllShapes.end()};
}

// What a marked object is called in an answer.
struct Candidate {
  const AnnotatedObject* obj;
  std::vector<std::string> names;        // category name, or its expressions/phrases
  bool describe;                         // no category: always the RefCOCOg "Describe ..." form
  std::vector<std::string> expressions;  // a category's object with RefCOCO expressions too
};

std::vector<Candidate> candidates(const AnnotatedImage& img) {
  std::vector<Candidate> out;
  for (const AnnotatedObject& o : img.objects) {
    if (o.crowd) continue;
    Candidate c{&o, {}, false, {}};
    if (std::optional<std::string> n = clean_text(o.category)) {
      c.names.push_back(*n);
      // RefCOCO objects have both: the expression is asked for half the time.
      for (const std::string& e : o.expressions)
        if (std::optional<std::string> t = clean_text(e)) c.expressions.push_back(*t);
    } else {
      for (const std::string& e : o.expressions)
        if (std::optional<std::string> n = clean_text(e)) c.names.push_back(*n);
      for (const Phrase& p : img.phrases)  // Flickr30k: the phrases that name this box alone
        if (p.object_ids.size() == 1 && p.object_ids[0] == o.id)
          if (std::optional<std::string> n = clean_text(p.text)) c.names.push_back(*n);
      c.describe = true;
    }
    if (!c.names.empty()) out.push_back(std::move(c));
  }
  return out;
}

// Category questions. "{mark}" is ground::mark_phrase ("the red ellipse");
// "{ref}" is ground::reference_phrase ("within the red ellipse"), used only
// with prepositions that read well after "What is" (not "with").
constexpr const char* kMarkTemplates[] = {
    "What object is marked by {mark}? Answer with a single word or phrase.",
    "Name the object highlighted by {mark}.",
    "What is the object indicated by {mark}? Please provide a short phrase.",
};
constexpr const char* kRefTemplate = "What is {ref}? Answer with a single word or phrase.";

std::string replace(std::string s, const std::string& key, const std::string& value) {
  const size_t at = s.find(key);
  DSVL2_CHECK(at != std::string::npos, "template lacks %s", key.c_str());
  return s.replace(at, key.size(), value);
}

std::string category_question(Shape s, const ground::Color& c, Rng& rng) {
  const bool ref_ok = ground::shape_preposition(s) != "with";
  const size_t n = std::size(kMarkTemplates) + (ref_ok ? 1 : 0);
  const size_t k = rng.index(n);
  if (k == std::size(kMarkTemplates)) return replace(kRefTemplate, "{ref}", ground::reference_phrase(s, c));
  return replace(kMarkTemplates[k], "{mark}", ground::mark_phrase(s, c));
}

}  // namespace

bool vip_applicable(const AnnotatedImage& img) { return !candidates(img).empty(); }

Record make_vip(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng) {
  std::vector<Candidate> cands = candidates(img);
  // One mark mostly; 2-3 marks (one question each) for 30% of images that have the objects.
  size_t n = 1;
  if (cands.size() >= 2 && rng.chance(0.3)) n = std::min(cands.size(), size_t(rng.randint(2, 3)));
  for (size_t i = 0; i < n; ++i) std::swap(cands[i], cands[i + rng.index(cands.size() - i)]);  // partial shuffle
  cands.resize(n);

  const std::vector<Shape> shapes = allowed_shapes(img.source);
  // Single mark: ViP-LLaVA's colour rule (an unnamed random RGB half the
  // time; the text then omits the colour). Several: distinct pool colours, so
  // every question names its mark unambiguously.
  std::vector<size_t> pool(ground::kColorPool.size());
  for (size_t i = 0; i < pool.size(); ++i) pool[i] = i;
  Image image = load_checked(ctx, img);
  Record r;
  const std::string drawn = drawn_name(img, Task::kVip);
  nlohmann::ordered_json marks = nlohmann::ordered_json::array();
  std::vector<int64_t> ids;
  for (size_t i = 0; i < n; ++i) {
    const Candidate& c = cands[i];
    const Shape shape = shapes[rng.index(shapes.size())];
    ground::Color color;
    if (n == 1) {
      color = ground::random_color(rng);
    } else {
      const size_t k = i + rng.index(pool.size() - i);
      std::swap(pool[i], pool[k]);
      const ground::NamedColor& nc = ground::kColorPool[pool[i]];
      color = {nc.r, nc.g, nc.b, std::string(nc.name)};
    }
    ground::Region region{c.obj->box, c.obj->polygons};
    image = ground::render_visual_prompt(image, shape, color, region, rng);

    std::string question, answer;
    if (c.describe || (!c.expressions.empty() && rng.chance(0.5))) {
      // RefCOCOg's template, with the reference the released code dropped put back.
      const std::vector<std::string>& names = c.describe ? c.names : c.expressions;
      question = ground::vip_describe_prompt(shape, color);
      answer = names[rng.index(names.size())];
    } else {
      question = category_question(shape, color, rng);
      answer = c.names[0];
    }
    if (i == 0) add_turn(r, with_images(question, 1), {drawn}, answer);
    else add_turn(r, question, {}, answer);

    nlohmann::ordered_json m;
    m["annotation_id"] = c.obj->id;
    m["shape"] = std::string(ground::shape_name(shape));
    m["color"] = {color.r, color.g, color.b};
    m["color_name"] = color.name;
    marks.push_back(std::move(m));
    ids.push_back(c.obj->id);
  }
  r.new_images.push_back({drawn, std::move(image)});
  nlohmann::ordered_json src;
  src["dataset"] = img.source;
  src["image_id"] = img.id;
  src["annotation_ids"] = ids;
  src["marks"] = std::move(marks);
  r.source_json = src.dump();
  return r;
}

}  // namespace dsvl2::synth::detail
