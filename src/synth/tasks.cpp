// Task dispatch and the JSONL record form.
#include "synth/tasks.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "synth/tasks_internal.h"

namespace dsvl2::synth {

const char* task_name(Task t) {
  switch (t) {
    case Task::kVip: return "vip";
    case Task::kGround: return "ground";
    case Task::kGcg: return "gcg";
    case Task::kIcg: return "icg";
    case Task::kNeg: return "neg";
  }
  return "?";
}

Task parse_task(const std::string& s) {
  for (Task t : {Task::kVip, Task::kGround, Task::kGcg, Task::kIcg, Task::kNeg})
    if (s == task_name(t)) return t;
  DSVL2_FAIL("unknown task '%s' (expected vip, ground, gcg, icg or neg)", s.c_str());
}

TaskIndex build_task_index(const AnnotationSet& set) {
  TaskIndex ix;
  for (size_t i = 0; i < set.images.size(); ++i) {
    std::vector<std::string> names;
    for (const AnnotatedObject& o : set.images[i].objects)
      if (!o.crowd && !o.category.empty()) names.push_back(o.category);
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (const std::string& n : names) ix.images_by_category[n].push_back(i);
  }
  return ix;
}

bool applicable(Task task, const AnnotatedImage& img, const TaskContext& ctx) {
  switch (task) {
    case Task::kVip: return detail::vip_applicable(img);
    case Task::kGround: return detail::ground_applicable(img);
    case Task::kGcg: return detail::gcg_applicable(img);
    case Task::kIcg: return detail::icg_applicable(img, ctx);
    case Task::kNeg: return detail::neg_applicable(img, ctx);
  }
  return false;
}

Record make_record(Task task, const AnnotatedImage& img, const TaskContext& ctx) {
  DSVL2_REQUIRE(ctx.set != nullptr, "synth: the task context has no annotation set");
  DSVL2_REQUIRE(img.width > 0 && img.height > 0, "image %lld: size %dx%d unknown", (long long)img.id, img.width,
                img.height);
  DSVL2_REQUIRE(applicable(task, img, ctx), "image %lld: no %s record can be made from it", (long long)img.id,
                task_name(task));
  // One stream per (seed, task, image): records do not depend on each other,
  // so shards and threads can make them in any order.
  Rng rng = detail::record_rng(ctx, task, img);
  Record r;
  switch (task) {
    case Task::kVip: r = detail::make_vip(img, ctx, rng); break;
    case Task::kGround: r = detail::make_ground(img, ctx, rng); break;
    case Task::kGcg: r = detail::make_gcg(img, ctx, rng); break;
    case Task::kIcg: r = detail::make_icg(img, ctx, rng); break;
    case Task::kNeg: r = detail::make_neg(img, ctx, rng); break;
  }
  r.task = task;
  return r;
}

std::string record_json(const Record& r) {
  nlohmann::ordered_json j;
  j["task"] = task_name(r.task);
  nlohmann::ordered_json msgs = nlohmann::ordered_json::array();
  for (const Message& m : r.messages) {
    nlohmann::ordered_json jm;
    jm["role"] = m.role;
    jm["content"] = m.content;
    jm["images"] = m.images;
    msgs.push_back(std::move(jm));
  }
  j["messages"] = std::move(msgs);
  j["source"] = r.source_json.empty() ? nlohmann::ordered_json::object() : nlohmann::ordered_json::parse(r.source_json);
  // Texts were checked for UTF-8 when the record was made; replace rather
  // than throw should a bad byte slip through.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string negative_answer(const std::string& query) {
  // Plain text, no <|ref|>/<|det|> (docs/synth.md, "Negatives"): the official
  // grammar has no empty box list (ground::parse_grounding rejects "[]"), and
  // a sentence parses as "no objects" everywhere.
  return "There is no " + query + " in the image.";
}

}  // namespace dsvl2::synth
