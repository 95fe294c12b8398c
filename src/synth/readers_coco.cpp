// COCO instances JSON (images, annotations, categories). The file is streamed;
// annotations usually come before categories, so each annotation is checked
// on its own while streaming (box numbers, polygons, RLE decoded and traced)
// and resolved against images and categories once the file is read.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <unordered_set>

#include "core/error.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"
#include "synth/rle.h"

namespace dsvl2::synth {

namespace {

using nlohmann::json;

// An annotation checked on its own, waiting for its image and category.
struct PendingAnnotation {
  AnnotatedObject object;  // box not yet clipped
  int64_t image_id = -1;
  int64_t rle_height = -1, rle_width = -1;  // an RLE mask's size, to check against the image
};

// Polygons [[x1,y1,...],...] (or one flat list). Parts with fewer than 3
// points, an odd count or a non-finite value are dropped; when every part is
// dropped the annotation is an error (its mask cannot be used).
std::vector<ground::Polygon> parse_polygons(const json& seg) {
  std::vector<const json*> parts;
  if (!seg.empty() && seg.front().is_number()) {
    parts.push_back(&seg);
  } else {
    for (const json& p : seg) parts.push_back(&p);
  }
  std::vector<ground::Polygon> out;
  for (const json* p : parts) {
    if (!p->is_array() || p->size() < 6 || p->size() % 2 != 0) continue;
    ground::Polygon poly;
    bool ok = true;
    for (size_t i = 0; ok && i < p->size(); i += 2) {
      const json &x = (*p)[i], &y = (*p)[i + 1];
      ok = x.is_number() && y.is_number() && std::isfinite(x.get<double>()) && std::isfinite(y.get<double>());
      if (ok) poly.push_back({x.get<double>(), y.get<double>()});
    }
    if (ok) out.push_back(std::move(poly));
  }
  if (out.empty() && !parts.empty())
    DSVL2_FAIL("segmentation has no polygon of 3 or more finite points (%zu parts)", parts.size());
  return out;
}

// {"size": [h, w], "counts": [...] | "..."}: decoded, checked, traced.
void parse_rle(const json& seg, PendingAnnotation& pa) {
  auto size = seg.find("size");
  if (size == seg.end() || !size->is_array() || size->size() != 2 || !(*size)[0].is_number_integer() ||
      !(*size)[1].is_number_integer())
    DSVL2_FAIL("RLE has no \"size\": [height, width]");
  int64_t h = (*size)[0].get<int64_t>(), w = (*size)[1].get<int64_t>();
  auto counts = seg.find("counts");
  if (counts == seg.end()) DSVL2_FAIL("RLE has no \"counts\"");
  Rle rle;
  if (counts->is_string()) {
    rle = rle_from_string(h, w, counts->get_ref<const std::string&>());
  } else if (counts->is_array()) {
    std::vector<int64_t> c;
    c.reserve(counts->size());
    for (const json& v : *counts) {
      if (!v.is_number_integer()) DSVL2_FAIL("RLE counts are not all integers");
      c.push_back(v.get<int64_t>());
    }
    rle = rle_from_counts(h, w, c);
  } else {
    DSVL2_FAIL("RLE \"counts\" is neither a list nor a string");
  }
  pa.rle_height = h;
  pa.rle_width = w;
  pa.object.polygons = trace_mask(rle_decode(rle));
}

PendingAnnotation parse_annotation(const json& a) {
  PendingAnnotation pa;
  AnnotatedObject& o = pa.object;
  o.id = json_int(a, "id");
  pa.image_id = json_int(a, "image_id");
  o.category_id = json_int(a, "category_id");
  auto bbox = a.find("bbox");
  if (bbox == a.end() || !bbox->is_array() || bbox->size() != 4) DSVL2_FAIL("bbox is not 4 numbers");
  double b[4];
  for (int i = 0; i < 4; ++i) b[i] = json_finite((*bbox)[size_t(i)], "a bbox value");
  if (!(b[2] > 0) || !(b[3] > 0))
    DSVL2_FAIL("bbox [%g, %g, %g, %g] has no area", b[0], b[1], b[2], b[3]);
  o.box = {b[0], b[1], b[0] + b[2], b[1] + b[3]};
  auto crowd = a.find("iscrowd");
  if (crowd != a.end()) o.crowd = crowd->is_boolean() ? crowd->get<bool>() : crowd->is_number() && crowd->get<double>() != 0;
  auto seg = a.find("segmentation");
  if (seg != a.end() && !seg->is_null()) {
    if (seg->is_array()) {
      o.polygons = parse_polygons(*seg);
    } else if (seg->is_object()) {
      parse_rle(*seg, pa);
    } else {
      DSVL2_FAIL("segmentation is neither polygons nor RLE");
    }
  }
  return pa;
}

class CocoBuilder {
 public:
  explicit CocoBuilder(const std::string& path) : path_(path) {}

  bool add(JsonRecord& r) {
    if (!r.problem.empty()) {
      error(strformat("%s[%zu]: %s", r.section.c_str(), r.index, r.problem.c_str()));
      return true;
    }
    const json& v = r.value;
    if (!v.is_object()) {
      error(strformat("%s[%zu] is not an object", r.section.c_str(), r.index));
      return true;
    }
    if (r.section == "images") add_image(r, v);
    if (r.section == "annotations") add_annotation(r, v);
    if (r.section == "categories") add_category(r, v);
    return true;
  }

  AnnotationSet finish(AnnotationSet&& set) {
    for (auto& [id, pa] : pending_) resolve(pa);
    set.categories = std::move(categories_);
    set.images = sorted_images(std::move(images_));
    set.errors.insert(set.errors.end(), errors_.begin(), errors_.end());
    return std::move(set);
  }

 private:
  void add_image(const JsonRecord& r, const json& v) {
    int64_t id = -1;
    try {
      id = json_int(v, "id");
      AnnotatedImage img;
      img.id = id;
      img.file_name = json_string(v, "file_name");
      img.width = json_dim(v, "width");
      img.height = json_dim(v, "height");
      img.source = "coco";
      if (img.width <= 0 || img.height <= 0 || img.width > (1 << 20) || img.height > (1 << 20))
        DSVL2_FAIL("size %d x %d is not an image size", img.width, img.height);
      if (images_.count(id) || rejected_images_.count(id)) {
        error(strformat("image %lld: duplicate id", (long long)id), id);
        return;  // the first one stays
      }
      images_.emplace(id, std::move(img));
    } catch (const Error& e) {
      if (id >= 0 && !images_.count(id)) rejected_images_.insert(id);
      error(strformat("images[%zu]: %s", r.index, e.what()), id);
    }
  }

  void add_annotation(const JsonRecord& r, const json& v) {
    int64_t id = -1, image_id = -1;
    if (auto it = v.find("id"); it != v.end() && it->is_number_integer()) id = it->get<int64_t>();
    if (auto it = v.find("image_id"); it != v.end() && it->is_number_integer()) image_id = it->get<int64_t>();
    try {
      if (id >= 0 && seen_annotations_.count(id)) DSVL2_FAIL("duplicate id");
      PendingAnnotation pa = parse_annotation(v);
      seen_annotations_.insert(pa.object.id);
      pending_.emplace(pa.object.id, std::move(pa));
    } catch (const Error& e) {
      if (id >= 0) seen_annotations_.insert(id);
      error(id >= 0 ? strformat("annotation %lld: %s", (long long)id, e.what())
                    : strformat("annotations[%zu]: %s", r.index, e.what()),
            image_id, id);
    }
  }

  void add_category(const JsonRecord& r, const json& v) {
    try {
      int64_t id = json_int(v, "id");
      std::string name = json_string(v, "name");
      if (!categories_.emplace(id, std::move(name)).second) DSVL2_FAIL("duplicate category id %lld", (long long)id);
    } catch (const Error& e) {
      error(strformat("categories[%zu]: %s", r.index, e.what()));
    }
  }

  // Image, category, RLE size and clipping, now that everything is read.
  void resolve(PendingAnnotation& pa) {
    AnnotatedObject& o = pa.object;
    auto fail = [&](const std::string& what) {
      error(strformat("annotation %lld: %s", (long long)o.id, what.c_str()), pa.image_id, o.id);
    };
    auto img = images_.find(pa.image_id);
    if (img == images_.end()) {
      fail(strformat(rejected_images_.count(pa.image_id) ? "image_id %lld names a rejected image"
                                                          : "image_id %lld does not resolve",
                     (long long)pa.image_id));
      return;
    }
    auto cat = categories_.find(o.category_id);
    if (cat == categories_.end()) {
      fail(strformat("category_id %lld does not resolve", (long long)o.category_id));
      return;
    }
    AnnotatedImage& im = img->second;
    if (pa.rle_height >= 0 && (pa.rle_height != im.height || pa.rle_width != im.width)) {
      fail(strformat("RLE size [%lld, %lld] is not the image's [%d, %d]", (long long)pa.rle_height,
                     (long long)pa.rle_width, im.height, im.width));
      return;
    }
    // Clip to the image; a box left with no area lay entirely outside.
    ground::Box b = o.box;
    ground::Box c{std::max(b.x1, 0.0), std::max(b.y1, 0.0), std::min(b.x2, double(im.width)),
                  std::min(b.y2, double(im.height))};
    if (!(c.x2 > c.x1) || !(c.y2 > c.y1)) {
      fail(strformat("box [%g, %g, %g, %g] lies outside the %d x %d image", b.x1, b.y1, b.x2, b.y2, im.width,
                     im.height));
      return;
    }
    o.box = c;
    o.category = cat->second;
    im.objects.push_back(std::move(o));
  }

  void error(std::string what, int64_t image_id = -1, int64_t annotation_id = -1) {
    errors_.push_back({path_, std::move(what), image_id, annotation_id});
  }

  std::string path_;
  std::map<int64_t, AnnotatedImage> images_;
  std::set<int64_t> rejected_images_;
  std::map<int64_t, std::string> categories_;
  std::map<int64_t, PendingAnnotation> pending_;  // by id: objects come out sorted
  std::unordered_set<int64_t> seen_annotations_;
  std::vector<AnnotationError> errors_;
};

}  // namespace

AnnotationSet read_coco_instances(const std::string& path) {
  CocoBuilder builder(path);
  JsonStreamResult r =
      stream_json(path, {"images", "annotations", "categories"}, [&](JsonRecord& rec) { return builder.add(rec); });
  if (!r.top_is_object) DSVL2_FAIL("%s: not COCO instances (the top level is not an object)", path.c_str());
  AnnotationSet set;
  finish_stream(path, r, set);
  return builder.finish(std::move(set));
}

}  // namespace dsvl2::synth
