// In-context grounding: two images; the first with one object marked by a
// rectangle or an ellipse, the second to search for every object of the same
// category (paper section 3.3; design note 4.2).
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ground/prompts.h"
#include "ground/visual_prompt.h"
#include "synth/tasks_internal.h"

namespace dsvl2::synth::detail {
namespace {

// Indices of the other images holding a non-crowd `name` and no crowd of it.
std::vector<size_t> second_images(const AnnotatedImage& img, const std::string& name, const TaskContext& ctx) {
  std::vector<size_t> all;
  if (ctx.index) {
    auto it = ctx.index->images_by_category.find(name);
    if (it != ctx.index->images_by_category.end()) all = it->second;
  } else {
    for (size_t i = 0; i < ctx.set->images.size(); ++i)
      for (const AnnotatedObject& o : ctx.set->images[i].objects)
        if (!o.crowd && o.category == name) {
          all.push_back(i);
          break;
        }
  }
  std::vector<size_t> out;
  for (size_t i : all) {
    const AnnotatedImage& other = ctx.set->images[i];
    if (other.id == img.id && other.source == img.source) continue;
    if (other.width > 0 && other.height > 0 && !category_targets(other, name).empty()) out.push_back(i);
  }
  return out;
}

// The categories of `img` that can be asked: a usable name, a non-crowd
// instance here to mark, and a second image.
std::vector<std::string> icg_categories(const AnnotatedImage& img, const TaskContext& ctx) {
  std::vector<std::string> out;
  for (const std::string& name : present_categories(img)) {
    if (!clean_text(name) || *clean_text(name) != name) continue;
    bool markable = false;
    for (const AnnotatedObject& o : img.objects) markable |= !o.crowd && o.category == name;
    if (markable && !second_images(img, name, ctx).empty()) out.push_back(name);
  }
  return out;
}

}  // namespace

bool icg_applicable(const AnnotatedImage& img, const TaskContext& ctx) {
  return ctx.set && !icg_categories(img, ctx).empty();
}

Record make_icg(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng) {
  const std::vector<std::string> cats = icg_categories(img, ctx);
  const std::string& name = cats[rng.index(cats.size())];
  std::vector<const AnnotatedObject*> marked_pool;
  for (const AnnotatedObject& o : img.objects)
    if (!o.crowd && o.category == name) marked_pool.push_back(&o);
  const AnnotatedObject& marked = *marked_pool[rng.index(marked_pool.size())];
  const std::vector<size_t> seconds = second_images(img, name, ctx);
  const AnnotatedImage& second = ctx.set->images[seconds[rng.index(seconds.size())]];
  require_image_file(ctx, second);

  // The paper marks with "the red bounding box"; DeepSeek-VL2's SFT data used
  // rectangles and ellipses. A named pool colour, so the text can say which.
  const ground::Shape shape = rng.chance(0.5) ? ground::Shape::kRectangle : ground::Shape::kEllipse;
  const ground::NamedColor& nc = ground::kColorPool[rng.index(ground::kColorPool.size())];
  const ground::Color color{nc.r, nc.g, nc.b, std::string(nc.name)};
  Image image = load_checked(ctx, img);
  image = ground::render_visual_prompt(image, shape, color, ground::Region{marked.box, marked.polygons}, rng);

  // Both published templates, half and half: the paper's (with its missing
  // space, verbatim) and the repository's inference example.
  const std::string object = "an object " + ground::reference_phrase(shape, color);
  const bool paper = rng.chance(0.5);
  const std::string prompt =
      paper ? ground::in_context_grounding_prompt(object) : ground::in_context_grounding_prompt_repo(object);
  GroundedAnswer a = ground_objects(name, category_targets(second, name), second.width, second.height);

  Record r;
  const std::string drawn = drawn_name(img, Task::kIcg);
  add_turn(r, with_images(prompt, 2), {drawn, original_path(ctx, second)}, a.text);
  r.new_images.push_back({drawn, std::move(image)});
  nlohmann::ordered_json src;
  src["dataset"] = img.source;
  src["image_id"] = img.id;
  src["annotation_ids"] = {marked.id};
  src["target_image_id"] = second.id;
  src["target_annotation_ids"] = a.ids;
  src["category"] = name;
  src["shape"] = std::string(ground::shape_name(shape));
  src["color_name"] = color.name;
  src["template"] = paper ? "paper" : "repo";
  r.source_json = src.dump();
  return r;
}

}  // namespace dsvl2::synth::detail
