// Visual Genome region descriptions (region_descriptions.json): a top-level
// array of {"id": image_id, "regions": [{"region_id", "image_id", "phrase",
// "x", "y", "width", "height"}, ...]}. That file has no image sizes; an entry
// may carry "width" and "height" (merged from image_data.json), otherwise the
// size is left 0 (unknown: the task code reads the image and clips then) and
// boxes are only clipped at 0.
#include <algorithm>
#include <map>
#include <unordered_set>

#include "core/error.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"

namespace dsvl2::synth {

AnnotationSet read_visual_genome_regions(const std::string& path) {
  using nlohmann::json;
  AnnotationSet set;
  std::map<int64_t, AnnotatedImage> images;
  std::unordered_set<int64_t> seen_regions;
  JsonStreamResult r = stream_json(path, {}, [&](JsonRecord& rec) {
    int64_t image_id = -1;
    try {
      if (!rec.problem.empty()) DSVL2_FAIL("%s", rec.problem.c_str());
      const json& v = rec.value;
      if (!v.is_object()) DSVL2_FAIL("not an object");
      image_id = json_int(v, "id");
      if (images.count(image_id)) DSVL2_FAIL("duplicate image id %lld", (long long)image_id);
      AnnotatedImage img;
      img.id = image_id;
      img.source = "vg";
      img.file_name = std::to_string(image_id) + ".jpg";
      if (v.contains("width") || v.contains("height")) {
        img.width = json_dim(v, "width");
        img.height = json_dim(v, "height");
        if (img.width <= 0 || img.height <= 0 || img.width > (1 << 20) || img.height > (1 << 20))
          DSVL2_FAIL("size %d x %d is not an image size", img.width, img.height);
      }
      auto regions = v.find("regions");
      if (regions == v.end() || !regions->is_array()) DSVL2_FAIL("no \"regions\" list");
      for (size_t i = 0; i < regions->size(); ++i) {
        const json& g = (*regions)[i];
        int64_t region_id = -1;
        try {
          region_id = json_int(g, "region_id");
          if (!seen_regions.insert(region_id).second) DSVL2_FAIL("duplicate region_id");
          if (g.contains("image_id") && json_int(g, "image_id") != image_id)
            DSVL2_FAIL("image_id %lld is not its entry's %lld", (long long)json_int(g, "image_id"), (long long)image_id);
          double x = json_number(g, "x"), y = json_number(g, "y");
          double w = json_number(g, "width"), h = json_number(g, "height");
          if (!(w > 0) || !(h > 0)) DSVL2_FAIL("box [%g, %g, %g, %g] has no area", x, y, w, h);
          ground::Box b{std::max(x, 0.0), std::max(y, 0.0), x + w, y + h};
          if (img.width > 0) {
            b.x2 = std::min(b.x2, double(img.width));
            b.y2 = std::min(b.y2, double(img.height));
          }
          if (!(b.x2 > b.x1) || !(b.y2 > b.y1))
            DSVL2_FAIL("box [%g, %g, %g, %g] lies outside the %d x %d image", x, y, w, h, img.width, img.height);
          AnnotatedObject o;
          o.id = region_id;
          o.box = b;
          std::string phrase = json_string(g, "phrase");
          if (!phrase.empty()) o.expressions.push_back(std::move(phrase));
          img.objects.push_back(std::move(o));
        } catch (const Error& e) {
          set.errors.push_back({path, strformat("image %lld, region %lld: %s", (long long)image_id,
                                                (long long)region_id, e.what()),
                                image_id, region_id});
        }
      }
      images.emplace(image_id, std::move(img));
    } catch (const Error& e) {
      set.errors.push_back({path, strformat("entry [%zu]: %s", rec.index, e.what()), image_id, -1});
    }
    return true;
  });
  if (r.top_is_object) DSVL2_FAIL("%s: not Visual Genome regions (the top level is not an array)", path.c_str());
  finish_stream(path, r, set);
  set.images = sorted_images(std::move(images));
  return set;
}

}  // namespace dsvl2::synth
