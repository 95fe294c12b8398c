// What every annotation reader produces and every task generator consumes:
// images with their objects (box, mask, category, referring phrases), in one
// shape whatever the source (COCO instances, RefCOCO/+/g, Flickr30k
// Entities, Visual Genome regions). Readers validate; a record that cannot be
// used (a box outside its image, a polygon of two points, an id that does not
// resolve) becomes an AnnotationError naming it, and the others go on.
//
//   AnnotationSet set = read_coco_instances("instances_val2017.json");
//   merge_refcoco(set, "refs(umd).json");
//   for (const AnnotatedImage& img : set.images) { ... }
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ground/polygons.h"
#include "ground/visual_prompt.h"

namespace dsvl2::synth {

// One referring phrase with the boxes it names (Flickr30k Entities: one phrase
// may name several boxes; RefCOCO: one sentence, one object).
struct Phrase {
  std::string text;
  std::vector<int64_t> object_ids;  // AnnotatedObject::id values
  // Flickr30k/GCG: where the phrase sits in `caption` (byte offsets), or -1.
  int64_t caption_begin = -1, caption_end = -1;
};

struct AnnotatedObject {
  int64_t id = 0;           // the source's annotation id (COCO ann id, VG region id, ...)
  int64_t category_id = -1;  // -1: none (VG regions, Flickr30k phrases)
  std::string category;     // category name, or "" when the source has none
  ground::Box box;          // pixels, x1 < x2, y1 < y2, inside the image
  std::vector<ground::Polygon> polygons;  // mask parts (COCO polygons, or RLE traced to polygons); may be empty
  bool crowd = false;       // COCO iscrowd: never a grounding target on its own
  std::vector<std::string> expressions;  // referring expressions (RefCOCO sentences, VG descriptions)
};

struct AnnotatedImage {
  int64_t id = 0;
  std::string file_name;  // relative to the images folder
  int width = 0, height = 0;
  std::vector<AnnotatedObject> objects;
  std::vector<std::string> captions;  // whole-image captions (Flickr30k), if any
  std::vector<Phrase> phrases;        // grounded phrases of captions[0], if any
  std::string source;                 // "coco", "refcoco", "refcoco+", "refcocog", "flickr30k", "vg"
};

struct AnnotationError {
  std::string file;     // the annotation file
  std::string what;     // e.g. "annotation 123: bbox [10, 10, 0, 5] has no area"
  int64_t image_id = -1, annotation_id = -1;
};

struct AnnotationSet {
  std::vector<AnnotatedImage> images;   // sorted by id: the order every run sees
  std::map<int64_t, std::string> categories;  // id -> name (the vocabulary negatives sample from)
  std::vector<AnnotationError> errors;
};

// The readers (synth/readers_*.cpp). Each throws Error only when the file as a
// whole is unusable (missing, not JSON, not the expected top-level shape);
// bad records become errors in the set.
AnnotationSet read_coco_instances(const std::string& path);
// Adds RefCOCO/RefCOCO+/RefCOCOg expressions (refs JSON: ann_id, image_id,
// sentences[].sent) to the objects of `set` (read from the matching COCO file).
void merge_refcoco(AnnotationSet& set, const std::string& path, const std::string& source = "refcoco");
// Flickr30k Entities has no standard JSON (it ships Sentences/*.txt +
// Annotations/*.xml); this reads one entry per image (docs/synth.md, Inputs):
//   [{"image_id", "file_name" (default "<image_id>.jpg"), "width", "height",
//     "caption": "A man in a red shirt ...", "other_captions": [...] (optional),
//     "phrases": [{"text": "A man", "first_char": 0, "boxes": [[x1, y1, x2, y2], ...]}]}]
// first_char is a byte offset into caption and must match text. Each distinct
// box is one object (ids 1, 2, ... by first mention; no category; the phrases
// naming it as expressions); phrases with no usable box are left out.
AnnotationSet read_flickr30k_entities(const std::string& path);
// Visual Genome region_descriptions.json: [{"id": image_id, "regions":
// [{"region_id", "image_id", "phrase", "x", "y", "width", "height"}]}]. One
// object per region (id = region_id). The file has no image sizes: an entry
// may carry "width"/"height" (from image_data.json); otherwise width and
// height stay 0 (unknown; the image file gives them) and boxes are clipped at
// 0 only. file_name is "<image_id>.jpg".
AnnotationSet read_visual_genome_regions(const std::string& path);
// Sniffs the format of an annotation file from its top-level keys. A refs
// file is merged into *coco_for_refs (Error when null) and an empty set is
// returned.
AnnotationSet read_annotations(const std::string& path, AnnotationSet* coco_for_refs = nullptr);

}  // namespace dsvl2::synth
