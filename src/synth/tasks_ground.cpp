// Grounding: "Locate <|ref|>{query}<|/ref|> in the given image." answered with
// every instance of the query (paper section 3.2; design note 4.2).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ground/prompts.h"
#include "synth/tasks_internal.h"

namespace dsvl2::synth::detail {
namespace {

// One possible question about the image and the objects that answer it.
struct Query {
  std::string text;
  std::string kind;  // "category", "expression", "phrase"
  std::vector<const AnnotatedObject*> targets;
};

// Category queries: a category with no crowd annotation here (a crowd box
// holds an unknown number of instances, so no exact list exists).
std::vector<Query> category_queries(const AnnotatedImage& img) {
  std::vector<Query> out;
  for (const std::string& name : present_categories(img)) {
    std::optional<std::string> q = clean_text(name);
    if (!q) continue;
    std::vector<const AnnotatedObject*> t = category_targets(img, name);
    if (!t.empty()) out.push_back({*q, "category", std::move(t)});
  }
  return out;
}

// Referring expressions (RefCOCO sentences, VG descriptions) name one object;
// Flickr30k phrases name the boxes they list.
std::vector<Query> expression_queries(const AnnotatedImage& img) {
  std::vector<Query> out;
  for (const AnnotatedObject& o : img.objects) {
    if (o.crowd) continue;
    for (const std::string& e : o.expressions)
      if (std::optional<std::string> q = clean_text(e)) out.push_back({*q, "expression", {&o}});
  }
  for (const Phrase& p : img.phrases) {
    std::optional<std::string> q = clean_text(p.text);
    if (!q) continue;
    std::vector<const AnnotatedObject*> t;
    bool ok = !p.object_ids.empty();
    for (int64_t id : p.object_ids) {
      const AnnotatedObject* o = find_object(img, id);
      if (!o || o->crowd) ok = false;
      else t.push_back(o);
    }
    if (ok) out.push_back({*q, "phrase", std::move(t)});
  }
  return out;
}

}  // namespace

bool ground_applicable(const AnnotatedImage& img) {
  return !category_queries(img).empty() || !expression_queries(img).empty();
}

Record make_ground(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng) {
  require_image_file(ctx, img);
  std::vector<Query> cats = category_queries(img), exprs = expression_queries(img);
  // Both kinds present (COCO with RefCOCO merged): half and half.
  const std::vector<Query>& pool = cats.empty() ? exprs : exprs.empty() ? cats : rng.chance(0.5) ? exprs : cats;
  const Query& q = pool[rng.index(pool.size())];
  GroundedAnswer a = ground_objects(q.text, q.targets, img.width, img.height);

  Record r;
  add_turn(r, with_images(ground::grounding_prompt(q.text), 1), {original_path(ctx, img)}, a.text);
  nlohmann::ordered_json src;
  src["dataset"] = img.source;
  src["image_id"] = img.id;
  src["annotation_ids"] = a.ids;
  src["query"] = q.text;
  src["query_kind"] = q.kind;
  r.source_json = src.dump();
  return r;
}

}  // namespace dsvl2::synth::detail
