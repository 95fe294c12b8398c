// RefCOCO / RefCOCO+ / RefCOCOg referring expressions: the refs(*).p files of
// lichengunc/refer converted to JSON, a top-level array of
//   {"ref_id", "ann_id", "image_id", "split", "category_id",
//    "sentences": [{"sent": "man in red", "raw": ..., "tokens": [...]}, ...]}
// merged into the objects of the COCO set they annotate (train2014).
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"

namespace dsvl2::synth {

void merge_refcoco(AnnotationSet& set, const std::string& path, const std::string& source) {
  using nlohmann::json;
  // ann id -> (image index, object index) in `set`.
  std::unordered_map<int64_t, std::pair<size_t, size_t>> where;
  for (size_t i = 0; i < set.images.size(); ++i)
    for (size_t j = 0; j < set.images[i].objects.size(); ++j) where[set.images[i].objects[j].id] = {i, j};
  std::unordered_set<int64_t> seen_refs;

  JsonStreamResult r = stream_json(path, {}, [&](JsonRecord& rec) {
    int64_t ann_id = -1, image_id = -1;
    try {
      if (!rec.problem.empty()) DSVL2_FAIL("%s", rec.problem.c_str());
      const json& v = rec.value;
      if (!v.is_object()) DSVL2_FAIL("not an object");
      ann_id = json_int(v, "ann_id");
      image_id = json_int(v, "image_id");
      if (auto it = v.find("ref_id"); it != v.end()) {
        int64_t ref_id = json_int(v, "ref_id");
        if (!seen_refs.insert(ref_id).second) DSVL2_FAIL("duplicate ref_id %lld", (long long)ref_id);
      }
      auto at = where.find(ann_id);
      if (at == where.end()) DSVL2_FAIL("ann_id %lld does not resolve", (long long)ann_id);
      AnnotatedImage& img = set.images[at->second.first];
      AnnotatedObject& obj = img.objects[at->second.second];
      if (img.id != image_id)
        DSVL2_FAIL("image_id %lld does not resolve: annotation %lld is in image %lld", (long long)image_id,
                   (long long)ann_id, (long long)img.id);
      if (auto it = v.find("category_id"); it != v.end() && json_int(v, "category_id") != obj.category_id)
        DSVL2_FAIL("category_id %lld is not the annotation's %lld", (long long)json_int(v, "category_id"),
                   (long long)obj.category_id);
      auto sentences = v.find("sentences");
      if (sentences == v.end() || !sentences->is_array()) DSVL2_FAIL("no \"sentences\" list");
      std::vector<std::string> add;
      for (const json& s : *sentences) {
        // "sent" is the cleaned sentence; "raw" is the annotator's text.
        const char* key = s.contains("sent") ? "sent" : "raw";
        std::string text = json_string(s, key);
        if (!text.empty()) add.push_back(std::move(text));
      }
      if (add.empty()) DSVL2_FAIL("no sentence");
      obj.expressions.insert(obj.expressions.end(), add.begin(), add.end());
      img.source = source;
    } catch (const Error& e) {
      set.errors.push_back({path, strformat("ref [%zu]: %s", rec.index, e.what()), image_id, ann_id});
    }
    return true;
  });
  if (r.top_is_object) DSVL2_FAIL("%s: not a refs file (the top level is not an array)", path.c_str());
  finish_stream(path, r, set);
}

}  // namespace dsvl2::synth
