// read_annotations: picks the reader from the file's top level without
// reading the whole file: for an object, its top-level keys until both
// "images" and "annotations" have been seen; for an array, its first element.
#include <cctype>

#include "core/error.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"

namespace dsvl2::synth {

namespace {

enum class Format { kCoco, kRefs, kFlickr30k, kVisualGenome, kEmpty, kUnknown };

Format sniff(const std::string& path) {
  bool images = false, annotations = false;
  nlohmann::json first;
  bool have_first = false;
  JsonStreamResult r = stream_json(
      path, {},
      [&](JsonRecord& rec) {
        first = std::move(rec.value);
        have_first = true;
        return false;
      },
      [&](const std::string& key) {
        images = images || key == "images";
        annotations = annotations || key == "annotations";
        return !(images && annotations);
      });
  if (r.top_is_object) {
    if (images && annotations) return Format::kCoco;
    if (!r.stopped.empty()) DSVL2_FAIL("%s: %s", path.c_str(), r.stopped.c_str());
    return Format::kUnknown;
  }
  if (!have_first) {
    if (!r.stopped.empty()) DSVL2_FAIL("%s: %s", path.c_str(), r.stopped.c_str());
    return Format::kEmpty;
  }
  if (!first.is_object()) return Format::kUnknown;
  if (first.contains("ann_id") && first.contains("sentences")) return Format::kRefs;
  if (first.contains("phrases") || first.contains("caption")) return Format::kFlickr30k;
  if (first.contains("regions")) return Format::kVisualGenome;
  return Format::kUnknown;
}

// refs(unc).json -> "refcoco", refs(unc+)... -> "refcoco+", names with
// "refcocog" or "umd"/"google" -> "refcocog": the names the refer toolkit uses.
std::string refs_source(const std::string& path) {
  std::string name = path.substr(path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/') + 1);
  for (char& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
  auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
  if (has("refcocog") || has("umd") || has("google")) return "refcocog";
  if (has("refcoco+") || has("refcocoplus") || has("unc+")) return "refcoco+";
  return "refcoco";
}

}  // namespace

AnnotationSet read_annotations(const std::string& path, AnnotationSet* coco_for_refs) {
  switch (sniff(path)) {
    case Format::kCoco:
      return read_coco_instances(path);
    case Format::kRefs:
      if (!coco_for_refs)
        DSVL2_FAIL("%s: a RefCOCO refs file needs the COCO instances it refers to, read first", path.c_str());
      merge_refcoco(*coco_for_refs, path, refs_source(path));
      return {};
    case Format::kFlickr30k:
      return read_flickr30k_entities(path);
    case Format::kVisualGenome:
      return read_visual_genome_regions(path);
    case Format::kEmpty:
      return {};
    case Format::kUnknown:
      break;
  }
  DSVL2_FAIL(
      "%s: not a known annotation format (COCO instances, RefCOCO refs, Flickr30k Entities JSON, Visual Genome "
      "regions)",
      path.c_str());
}

}  // namespace dsvl2::synth
