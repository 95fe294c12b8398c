// Flickr30k Entities in the JSON form documented in annotations.h and
// docs/synth.md (the dataset itself ships Sentences/*.txt + Annotations/*.xml).
// Each box becomes an object (no category; the phrase is its expression);
// boxes repeated across phrases (one entity named twice) are one object.
#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_set>

#include "core/error.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"

namespace dsvl2::synth {

namespace {

using nlohmann::json;

// [x1, y1, x2, y2] in pixels, clipped to the image; Error when it has no area
// or lies outside.
ground::Box parse_corner_box(const json& b, int width, int height) {
  if (!b.is_array() || b.size() != 4) DSVL2_FAIL("box is not [x1, y1, x2, y2]");
  double v[4];
  for (int i = 0; i < 4; ++i) v[i] = json_finite(b[size_t(i)], "a box value");
  if (!(v[2] > v[0]) || !(v[3] > v[1])) DSVL2_FAIL("box [%g, %g, %g, %g] has no area", v[0], v[1], v[2], v[3]);
  ground::Box c{std::max(v[0], 0.0), std::max(v[1], 0.0), std::min(v[2], double(width)), std::min(v[3], double(height))};
  if (!(c.x2 > c.x1) || !(c.y2 > c.y1))
    DSVL2_FAIL("box [%g, %g, %g, %g] lies outside the %d x %d image", v[0], v[1], v[2], v[3], width, height);
  return c;
}

}  // namespace

AnnotationSet read_flickr30k_entities(const std::string& path) {
  AnnotationSet set;
  std::map<int64_t, AnnotatedImage> images;
  std::unordered_set<int64_t> seen;
  JsonStreamResult r = stream_json(path, {}, [&](JsonRecord& rec) {
    int64_t image_id = -1;
    auto error = [&](const std::string& what) {
      set.errors.push_back({path, strformat("entry [%zu]: %s", rec.index, what.c_str()), image_id, -1});
    };
    try {
      if (!rec.problem.empty()) DSVL2_FAIL("%s", rec.problem.c_str());
      const json& v = rec.value;
      if (!v.is_object()) DSVL2_FAIL("not an object");
      image_id = json_int(v, "image_id");
      if (!seen.insert(image_id).second) DSVL2_FAIL("duplicate image_id %lld", (long long)image_id);
      AnnotatedImage img;
      img.id = image_id;
      img.source = "flickr30k";
      img.file_name = v.contains("file_name") ? json_string(v, "file_name") : std::to_string(image_id) + ".jpg";
      img.width = json_dim(v, "width");
      img.height = json_dim(v, "height");
      if (img.width <= 0 || img.height <= 0 || img.width > (1 << 20) || img.height > (1 << 20))
        DSVL2_FAIL("size %d x %d is not an image size", img.width, img.height);
      const std::string caption = json_string(v, "caption");
      img.captions.push_back(caption);
      if (auto it = v.find("other_captions"); it != v.end() && it->is_array())
        for (const json& c : *it)
          if (c.is_string()) img.captions.push_back(c.get<std::string>());
      auto phrases = v.find("phrases");
      if (phrases == v.end() || !phrases->is_array()) DSVL2_FAIL("no \"phrases\" list");
      std::map<std::tuple<double, double, double, double>, size_t> object_at;  // box -> index in img.objects
      for (size_t pi = 0; pi < phrases->size(); ++pi) {
        try {
          const json& p = (*phrases)[pi];
          Phrase ph;
          ph.text = json_string(p, "text");
          int64_t first = json_int(p, "first_char");
          if (first < 0 || size_t(first) > caption.size() || caption.compare(size_t(first), ph.text.size(), ph.text) != 0)
            DSVL2_FAIL("\"%s\" is not at byte %lld of the caption", ph.text.c_str(), (long long)first);
          ph.caption_begin = first;
          ph.caption_end = first + int64_t(ph.text.size());
          auto boxes = p.find("boxes");
          if (boxes == p.end() || !boxes->is_array()) DSVL2_FAIL("no \"boxes\" list");
          for (const json& b : *boxes) {
            try {
              ground::Box box = parse_corner_box(b, img.width, img.height);
              auto key = std::make_tuple(box.x1, box.y1, box.x2, box.y2);
              auto [at, fresh] = object_at.emplace(key, img.objects.size());
              if (fresh) {
                AnnotatedObject o;
                o.id = int64_t(img.objects.size()) + 1;  // 1, 2, ... in order of first mention
                o.box = box;
                img.objects.push_back(std::move(o));
              }
              AnnotatedObject& o = img.objects[at->second];
              if (o.expressions.empty() || o.expressions.back() != ph.text) o.expressions.push_back(ph.text);
              if (ph.object_ids.empty() || ph.object_ids.back() != o.id) ph.object_ids.push_back(o.id);
            } catch (const Error& e) {
              error(strformat("image %lld, phrase %zu: %s", (long long)image_id, pi, e.what()));
            }
          }
          // Phrases with no usable box (Flickr30k's non-visual ones) stay out:
          // every Phrase names at least one object.
          if (!ph.object_ids.empty()) img.phrases.push_back(std::move(ph));
        } catch (const Error& e) {
          error(strformat("image %lld, phrase %zu: %s", (long long)image_id, pi, e.what()));
        }
      }
      images.emplace(image_id, std::move(img));
    } catch (const Error& e) {
      error(e.what());
    }
    return true;
  });
  if (r.top_is_object) DSVL2_FAIL("%s: not Flickr30k Entities JSON (the top level is not an array)", path.c_str());
  finish_stream(path, r, set);
  set.images = sorted_images(std::move(images));
  return set;
}

}  // namespace dsvl2::synth
