// Negatives (design note 6, item 13): a grounding question whose answer is
// "not here", either (a) for a dataset category absent from the image or
// (b) for an object erased from the image by inpainting.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ground/prompts.h"
#include "synth/inpaint.h"
#include "synth/tasks_internal.h"

namespace dsvl2::synth::detail {
namespace {

// How often an image that allows it gets an erased object instead of an absent category.
constexpr double kEraseProbability = 0.3;
// Objects larger than this share of the image are not erased: Telea fills
// from the border inwards and a large hole comes out as a smear.
constexpr double kMaxEraseArea = 0.15;
// Nor tiny ones (under 32x32 px), which barely change the picture.
constexpr double kMinErasePixels = 32 * 32;

// Only images whose categories are exhaustively annotated can say what is
// absent: COCO (and the RefCOCO family, whose images are COCO's). A VG or
// Flickr30k image may well show a "dog" it has no box for.
bool exhaustive(const AnnotatedImage& img) {
  return img.source == "coco" || img.source == "refcoco" || img.source == "refcoco+" || img.source == "refcocog";
}

std::vector<std::string> absent_categories(const AnnotatedImage& img, const TaskContext& ctx) {
  std::vector<std::string> out;
  if (!exhaustive(img) || !ctx.set) return out;
  const std::vector<std::string> present = present_categories(img);
  for (const auto& [id, name] : ctx.set->categories) {
    std::optional<std::string> q = clean_text(name);
    if (!q || *q != name || std::binary_search(present.begin(), present.end(), name)) continue;
    out.push_back(name);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Objects that leave no instance of their category behind when erased.
std::vector<const AnnotatedObject*> erasable(const AnnotatedImage& img) {
  std::vector<const AnnotatedObject*> out;
  const double image_area = double(img.width) * img.height;
  for (const AnnotatedObject& o : img.objects) {
    if (o.crowd || !clean_text(o.category) || *clean_text(o.category) != o.category) continue;
    const double a = (o.box.x2 - o.box.x1) * (o.box.y2 - o.box.y1);
    if (!(a >= kMinErasePixels && a <= kMaxEraseArea * image_area)) continue;
    int same = 0;
    for (const AnnotatedObject& p : img.objects) same += p.category == o.category;
    if (same == 1) out.push_back(&o);
  }
  return out;
}

}  // namespace

bool neg_applicable(const AnnotatedImage& img, const TaskContext& ctx) {
  return !absent_categories(img, ctx).empty() || !erasable(img).empty();
}

Record make_neg(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng) {
  const std::vector<std::string> absent = absent_categories(img, ctx);
  const std::vector<const AnnotatedObject*> objs = erasable(img);
  const bool erase = !objs.empty() && (absent.empty() || rng.chance(kEraseProbability));

  Record r;
  nlohmann::ordered_json src;
  src["dataset"] = img.source;
  src["image_id"] = img.id;
  src["annotation_ids"] = nlohmann::ordered_json::array();  // nothing is in the answer
  if (erase) {
    const AnnotatedObject& o = *objs[rng.index(objs.size())];
    ErasedImage e = erase_object(load_checked(ctx, img), o.polygons, o.box);
    const std::string name = drawn_name(img, Task::kNeg);
    add_turn(r, with_images(ground::grounding_prompt(o.category), 1), {name}, negative_answer(o.category));
    r.new_images.push_back({name, std::move(e.image)});
    src["query"] = o.category;
    src["negative"] = "erased";
    src["erased_annotation_id"] = o.id;
    src["erased_pixels"] = e.mask_pixels;
  } else {
    require_image_file(ctx, img);
    const std::string& q = absent[rng.index(absent.size())];
    add_turn(r, with_images(ground::grounding_prompt(q), 1), {original_path(ctx, img)}, negative_answer(q));
    src["query"] = q;
    src["negative"] = "absent";
  }
  r.source_json = src.dump();
  return r;
}

}  // namespace dsvl2::synth::detail
