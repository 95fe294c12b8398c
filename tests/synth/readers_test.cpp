// Annotation readers: hand-written COCO / RefCOCO / Flickr30k / Visual Genome
// fixtures with known answers, RLE decoding against a pycocotools-style
// encoder written here, mask tracing, and hostile files (each bad record an
// error, the rest of the set intact).
#include <gtest/gtest.h>
#include <algorithm>
#include <random>
#include <string>
#include <vector>
#include "core/error.h"
#include "core/file.h"
#include "synth/annotations.h"
#include "synth/readers_json.h"
#include "synth/rle.h"
#include "test_util.h"
#include "readers_fixture.h"

namespace dsvl2::synth {
namespace {

using namespace fixture;

struct CocoFixture {
  std::string text;
  int64_t l_area = 0;
};

// Images 1 (100x80) and 2 (50x40); a rejected image 3; good annotations 9-13;
// each hostile annotation 20-32 breaks one rule. Categories come last, as in
// COCO's own files.
CocoFixture coco_fixture() {
  CocoFixture f;
  std::vector<uint8_t> rect = rect_mask(40, 50, 5, 10, 15, 20);  // 10 x 10
  std::vector<uint8_t> l = rect_mask(40, 50, 20, 5, 40, 10);     // L: 20x5 bar + 5x15 leg
  for (int y = 10; y < 25; ++y)
    for (int x = 20; x < 25; ++x) l[size_t(y * 50 + x)] = 1;
  f.l_area = std::count(l.begin(), l.end(), 1);
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  f.text = R"({"info": {"description": "test"}, "licenses": [],
  "images": [
    {"id": 2, "file_name": "b.jpg", "width": 50, "height": 40},
    {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
    {"id": 3, "file_name": "c.jpg", "width": 0, "height": 40},
    {"id": 1, "file_name": "again.jpg", "width": 10, "height": 10}
  ],
  "annotations": [
    {"id": 11, "image_id": 1, "category_id": 2, "bbox": [90, 70, 20, 20], "iscrowd": 0,
     "segmentation": [[90, 70, 100, 70, 95, 80], [1, 2, 3, 4]]},
    {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30], "iscrowd": 0, "area": 600,
     "segmentation": [[10, 10, 30, 10, 30, 40, 10, 40]]},
    {"id": 12, "image_id": 2, "category_id": 1, "bbox": [5, 10, 10, 10], "iscrowd": 1,
     "segmentation": {"size": [40, 50], "counts": )" +
           counts_json(encode_counts(rect, 40, 50)) + R"(}},
    {"id": 13, "image_id": 2, "category_id": 2, "bbox": [20, 5, 20, 20], "iscrowd": 0,
     "segmentation": {"size": [40, 50], "counts": ")" +
           encode_string(encode_counts(l, 40, 50)) + R"("}},
    {"id": 9, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 0},
    {"id": 20, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]},
    {"id": 21, "image_id": 1, "category_id": 1, "bbox": [200, 200, 10, 10]},
    {"id": 22, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": [[1, 2, 3, 4]]},
    {"id": 23, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": {"size": [41, 50], "counts": [2050]}},
    {"id": 24, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": {"size": [40, 50], "counts": [5, 6]}},
    {"id": 25, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
    {"id": 26, "image_id": 1, "category_id": 77, "bbox": [1, 1, 5, 5]},
    {"id": 10, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
    {"id": 27, "image_id": 3, "category_id": 1, "bbox": [1, 1, 5, 5]},
    {"id": 28, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},
    {"id": 29, "image_id": 1, "category_id": 1, "bbox": [1, "x", 3, 4]},
    {"id": 30, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "note": ")" +
           std::string((8u << 20) + 10, 'a') + R"("},
    {"id": 31, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], "extra": )" +
           deep + R"(},
    {"id": 32, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5], "segmentation": {"size": [40, 50], "counts": "0T~"}}
  ],
  "categories": [{"id": 1, "name": "person", "supercategory": "person"}, {"id": 2, "name": "dog"},
                 {"id": 1, "name": "duplicate"}]
})";
  return f;
}

TEST(Coco, KnownAnswersAndHostileRecords) {
  std::string dir = test::temp_dir("synth_coco");
  CocoFixture f = coco_fixture();
  AnnotationSet s = read_coco_instances(write(dir, "instances.json", f.text));

  ASSERT_EQ(s.images.size(), 2u) << all_errors(s);
  ASSERT_EQ(s.images[0].objects.size(), 2u) << all_errors(s);
  EXPECT_EQ(s.categories, (std::map<int64_t, std::string>{{1, "person"}, {2, "dog"}}));
  const AnnotatedImage& a = s.images[0];
  EXPECT_EQ(a.id, 1);
  EXPECT_EQ(a.file_name, "a.jpg");
  EXPECT_EQ(a.width, 100);
  EXPECT_EQ(a.source, "coco");
  ASSERT_EQ(a.objects.size(), 2u);
  EXPECT_EQ(a.objects[0].id, 10);
  EXPECT_EQ(a.objects[0].category, "person");
  EXPECT_EQ(a.objects[0].box.x2, 30);
  EXPECT_EQ(a.objects[0].box.y2, 40);
  ASSERT_EQ(a.objects[0].polygons.size(), 1u);
  EXPECT_EQ(a.objects[0].polygons[0].size(), 4u);
  // 11: clipped to the image; the two-point part dropped.
  EXPECT_EQ(a.objects[1].id, 11);
  EXPECT_EQ(a.objects[1].category, "dog");
  EXPECT_EQ(a.objects[1].box.x1, 90);
  EXPECT_EQ(a.objects[1].box.x2, 100);
  EXPECT_EQ(a.objects[1].box.y2, 80);
  ASSERT_EQ(a.objects[1].polygons.size(), 1u);
  EXPECT_EQ(a.objects[1].polygons[0].size(), 3u);

  const AnnotatedImage& b = s.images[1];
  EXPECT_EQ(b.id, 2);
  ASSERT_EQ(b.objects.size(), 3u);
  EXPECT_EQ(b.objects[0].id, 9);
  EXPECT_TRUE(b.objects[0].polygons.empty());
  EXPECT_EQ(b.objects[1].id, 12);
  EXPECT_TRUE(b.objects[1].crowd);
  ASSERT_EQ(b.objects[1].polygons.size(), 1u);  // uncompressed RLE, traced
  EXPECT_EQ(b.objects[1].polygons[0].size(), 4u);
  EXPECT_DOUBLE_EQ(ground::area(b.objects[1].polygons[0]), 100);
  EXPECT_EQ(b.objects[2].id, 13);
  EXPECT_FALSE(b.objects[2].crowd);
  ASSERT_EQ(b.objects[2].polygons.size(), 1u);  // compressed RLE, traced
  EXPECT_EQ(b.objects[2].polygons[0].size(), 6u);
  EXPECT_DOUBLE_EQ(ground::area(b.objects[2].polygons[0]), double(f.l_area));

  EXPECT_TRUE(has_error(s, "has no area", 20));
  EXPECT_TRUE(has_error(s, "outside the 100 x 80 image", 21));
  EXPECT_TRUE(has_error(s, "no polygon of 3", 22));
  EXPECT_TRUE(has_error(s, "RLE size [41, 50] is not the image's [40, 50]", 23));
  EXPECT_TRUE(has_error(s, "sum to 11", 24));
  EXPECT_TRUE(has_error(s, "image_id 99 does not resolve", 25));
  EXPECT_TRUE(has_error(s, "category_id 77 does not resolve", 26));
  EXPECT_TRUE(has_error(s, "duplicate id", 10));
  EXPECT_TRUE(has_error(s, "rejected image", 27));
  EXPECT_TRUE(has_error(s, "bbox is not 4 numbers", 28));
  EXPECT_TRUE(has_error(s, "not a number", 29));
  EXPECT_TRUE(has_error(s, "longer than"));
  EXPECT_TRUE(has_error(s, "deeper than"));
  EXPECT_TRUE(has_error(s, "outside '0'..'o'", 32));
  EXPECT_TRUE(has_error(s, "size 0 x 40"));
  EXPECT_TRUE(has_error(s, "image 1: duplicate id"));
  EXPECT_TRUE(has_error(s, "duplicate category id 1"));
  EXPECT_EQ(s.errors.size(), 17u) << all_errors(s);
}

// A size beyond 32 bits must not wrap into a plausible one.
TEST(Coco, ImageSizesAreCheckedBeforeNarrowing) {
  const std::string dir = test::temp_dir("coco_dims");
  const std::string path = write(dir, "c.json", R"({"images":[{"id":1,"file_name":"a.png","width":4294967936,"height":480},
    {"id":2,"file_name":"b.png","width":640,"height":480}],"annotations":[],"categories":[{"id":1,"name":"cat"}]})");
  AnnotationSet set = read_coco_instances(path);
  ASSERT_EQ(set.images.size(), 1u) << all_errors(set);
  EXPECT_EQ(set.images[0].id, 2);
  EXPECT_TRUE(has_error(set, "width")) << all_errors(set);
}

TEST(Coco, BadJsonThrowsTruncatedKeepsWhatWasRead) {
  std::string dir = test::temp_dir("synth_coco_bad");
  EXPECT_THROW(read_coco_instances(write(dir, "bad.json", "{not json")), Error);
  EXPECT_THROW(read_coco_instances(write(dir, "scalar.json", "42")), Error);
  EXPECT_THROW(read_coco_instances(write(dir, "array.json", "[]")), Error);
  EXPECT_THROW(read_coco_instances(write(dir, "shape.json", R"({"images": 5, "annotations": []})")), Error);
  EXPECT_THROW(read_coco_instances(dir + "/missing.json"), Error);

  // Cut inside the annotations: the images read so far stay, and the error says where reading stopped.
  std::string text = coco_fixture().text;
  text = text.substr(0, text.find(R"({"id": 13,)") + 20);
  AnnotationSet s = read_coco_instances(write(dir, "cut.json", text));
  EXPECT_EQ(s.images.size(), 2u);
  EXPECT_TRUE(has_error(s, "syntax error")) << all_errors(s);
  EXPECT_TRUE(has_error(s, "category_id 1 does not resolve", 10));  // categories were after the cut
}

// ---- RefCOCO

TEST(RefCoco, MergesExpressionsAndReportsUnresolved) {
  std::string dir = test::temp_dir("synth_refs");
  AnnotationSet s = read_coco_instances(write(dir, "instances.json", coco_fixture().text));
  size_t before = s.errors.size();
  std::string refs = write(dir, "refs(umd).json", R"([
    {"ref_id": 1, "ann_id": 10, "image_id": 1, "split": "train", "category_id": 1,
     "sentences": [{"sent": "man on the left", "raw": "Man on the left."}, {"sent": "left guy"}]},
    {"ref_id": 2, "ann_id": 999, "image_id": 1, "split": "val", "category_id": 1, "sentences": [{"sent": "x"}]},
    {"ref_id": 3, "ann_id": 12, "image_id": 1, "split": "val", "category_id": 1, "sentences": [{"sent": "x"}]},
    {"ref_id": 1, "ann_id": 13, "image_id": 2, "split": "val", "category_id": 2, "sentences": [{"sent": "x"}]},
    {"ref_id": 4, "ann_id": 13, "image_id": 2, "split": "test", "category_id": 2, "sentences": [{"sent": "the dog"}]}
  ])");
  AnnotationSet empty = read_annotations(refs, &s);  // sniffed; merged into s
  EXPECT_TRUE(empty.images.empty());
  EXPECT_EQ(s.images[0].objects[0].expressions, (std::vector<std::string>{"man on the left", "left guy"}));
  EXPECT_EQ(s.images[0].source, "refcocog");
  EXPECT_EQ(s.images[1].objects[2].expressions, (std::vector<std::string>{"the dog"}));
  EXPECT_TRUE(s.images[1].objects[1].expressions.empty());
  EXPECT_TRUE(has_error(s, "ann_id 999 does not resolve", 999));
  EXPECT_TRUE(has_error(s, "image_id 1 does not resolve", 12));
  EXPECT_TRUE(has_error(s, "duplicate ref_id 1"));
  EXPECT_EQ(s.errors.size(), before + 3) << all_errors(s);
  EXPECT_THROW(read_annotations(refs), Error);  // refs need their COCO set
}

// ---- Flickr30k Entities JSON

TEST(Flickr30k, PhrasesBoxesAndOffsets) {
  std::string dir = test::temp_dir("synth_flickr");
  std::string path = write(dir, "flickr.json", R"([
    {"image_id": 5, "file_name": "5.jpg", "width": 100, "height": 50,
     "caption": "A man in a red shirt talks to two dogs .", "other_captions": ["Two dogs and a man ."],
     "phrases": [
       {"text": "A man", "first_char": 0, "boxes": [[10, 5, 40, 45], [200, 200, 300, 300]]},
       {"text": "a red shirt", "first_char": 9, "boxes": [[12, 15, 38, 30]]},
       {"text": "two dogs", "first_char": 30, "boxes": [[50, 20, 70, 40], [70, 20, 95, 60]]},
       {"text": "man", "first_char": 2, "boxes": [[10, 5, 40, 45]]},
       {"text": "shirt", "first_char": 3, "boxes": [[1, 1, 2, 2]]},
       {"text": "the scene", "first_char": 0, "boxes": []}
     ]},
    {"image_id": 5, "width": 10, "height": 10, "caption": "dup", "phrases": []},
    {"image_id": 4, "width": 10, "height": 10, "caption": "nothing here", "phrases": []}
  ])");
  AnnotationSet s = read_annotations(path);
  ASSERT_EQ(s.images.size(), 2u) << all_errors(s);
  EXPECT_EQ(s.images[0].id, 4);
  EXPECT_EQ(s.images[0].file_name, "4.jpg");
  const AnnotatedImage& im = s.images[1];
  EXPECT_EQ(im.source, "flickr30k");
  EXPECT_EQ(im.captions.size(), 2u);
  ASSERT_EQ(im.objects.size(), 4u);
  EXPECT_EQ(im.objects[0].expressions, (std::vector<std::string>{"A man", "man"}));  // one box, two phrases
  EXPECT_EQ(im.objects[0].category_id, -1);
  EXPECT_EQ(im.objects[3].box.y2, 50);  // clipped
  ASSERT_EQ(im.phrases.size(), 4u);
  EXPECT_EQ(im.phrases[2].text, "two dogs");
  EXPECT_EQ(im.phrases[2].caption_begin, 30);
  EXPECT_EQ(im.phrases[2].caption_end, 38);
  EXPECT_EQ(im.phrases[2].object_ids, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(im.phrases[3].object_ids, (std::vector<int64_t>{1}));
  for (const Phrase& p : im.phrases)
    EXPECT_EQ(im.captions[0].substr(size_t(p.caption_begin), size_t(p.caption_end - p.caption_begin)), p.text);
  EXPECT_TRUE(has_error(s, "lies outside"));
  EXPECT_TRUE(has_error(s, "\"shirt\" is not at byte 3"));
  EXPECT_TRUE(has_error(s, "\"the scene\" is not at byte 0"));
  EXPECT_TRUE(has_error(s, "duplicate image_id 5"));
  EXPECT_EQ(s.errors.size(), 4u) << all_errors(s);
}

// ---- Visual Genome

TEST(VisualGenome, RegionsWithAndWithoutImageSize) {
  std::string dir = test::temp_dir("synth_vg");
  std::string path = write(dir, "region_descriptions.json", R"([
    {"id": 1, "regions": [
      {"region_id": 100, "image_id": 1, "phrase": "a cat", "x": 5, "y": 6, "width": 10, "height": 20},
      {"region_id": 101, "image_id": 1, "phrase": "zero", "x": 5, "y": 6, "width": 0, "height": 20},
      {"region_id": 99, "image_id": 1, "phrase": "left edge", "x": -5, "y": 2, "width": 10, "height": 3}]},
    {"id": 2, "width": 40, "height": 30, "regions": [
      {"region_id": 200, "image_id": 2, "phrase": "out", "x": 50, "y": 5, "width": 5, "height": 5},
      {"region_id": 100, "image_id": 2, "phrase": "dup", "x": 1, "y": 1, "width": 5, "height": 5},
      {"region_id": 201, "image_id": 3, "phrase": "elsewhere", "x": 1, "y": 1, "width": 5, "height": 5},
      {"region_id": 202, "image_id": 2, "phrase": "tree", "x": 30, "y": 20, "width": 20, "height": 20}]}
  ])");
  AnnotationSet s = read_annotations(path);
  ASSERT_EQ(s.images.size(), 2u) << all_errors(s);
  const AnnotatedImage& a = s.images[0];
  EXPECT_EQ(a.file_name, "1.jpg");
  EXPECT_EQ(a.width, 0);  // unknown: the image gives it
  EXPECT_EQ(a.source, "vg");
  ASSERT_EQ(a.objects.size(), 2u);
  EXPECT_EQ(a.objects[0].id, 99);
  EXPECT_EQ(a.objects[0].box.x1, 0);
  EXPECT_EQ(a.objects[0].box.x2, 5);
  EXPECT_EQ(a.objects[1].expressions, (std::vector<std::string>{"a cat"}));
  const AnnotatedImage& b = s.images[1];
  ASSERT_EQ(b.objects.size(), 1u);
  EXPECT_EQ(b.objects[0].box.x2, 40);
  EXPECT_EQ(b.objects[0].box.y2, 30);
  EXPECT_TRUE(has_error(s, "has no area", 101));
  EXPECT_TRUE(has_error(s, "lies outside", 200));
  EXPECT_TRUE(has_error(s, "duplicate region_id", 100));
  EXPECT_TRUE(has_error(s, "not its entry's", 201));
  EXPECT_EQ(s.errors.size(), 4u) << all_errors(s);

  // Cut after the first entry: it stays.
  std::string text = read_file(path);
  AnnotationSet cut = read_visual_genome_regions(write(dir, "cut.json", text.substr(0, text.find(R"({"id": 2)") + 5)));
  EXPECT_EQ(cut.images.size(), 1u);
  EXPECT_TRUE(has_error(cut, "the rest of the file was not read"));
}

TEST(Sniff, PicksTheReaderOrRefuses) {
  std::string dir = test::temp_dir("synth_sniff");
  AnnotationSet coco = read_annotations(write(dir, "c.json", coco_fixture().text));
  EXPECT_EQ(coco.images.size(), 2u);
  EXPECT_TRUE(read_annotations(write(dir, "e.json", "[]")).images.empty());
  EXPECT_THROW(read_annotations(write(dir, "u.json", R"([{"foo": 1}])")), Error);
  EXPECT_THROW(read_annotations(write(dir, "o.json", R"({"foo": 1})")), Error);
  EXPECT_THROW(read_annotations(write(dir, "b.json", "[{")), Error);
}

// ---- streaming limits

std::vector<JsonRecord> stream_all(const std::string& path, const JsonLimits& lim, JsonStreamResult* res = nullptr) {
  std::vector<JsonRecord> out;
  JsonStreamResult r = stream_json(path, {}, [&](JsonRecord& rec) {
    out.push_back(std::move(rec));
    return true;
  }, nullptr, lim);
  if (res) *res = r;
  return out;
}

TEST(StreamJson, LongStringsAreCutAtCharacterBoundaries) {
  std::string dir = test::temp_dir("synth_stream");
  JsonLimits lim;
  lim.max_string_bytes = 16;
  // Move escapes, a surrogate pair and UTF-8 across the cut point: the lexer
  // must still accept every cut, flag the record and read the next one.
  for (int pad = 0; pad < 24; ++pad) {
    std::string s = std::string(size_t(pad), 'x') + "\\ud83d\\ude00\xc3\xbc\\n\\\"" + std::string(40, 'y');
    std::string path = write(dir, "s.json", "[\"short\", {\"k\": \"" + s + "\"}, \"next\"]");
    JsonStreamResult r;
    auto recs = stream_all(path, lim, &r);
    ASSERT_TRUE(r.stopped.empty()) << pad << ": " << r.stopped;
    ASSERT_EQ(recs.size(), 3u);
    EXPECT_EQ(recs[0].value, "short");
    EXPECT_NE(recs[1].problem.find("longer than 16"), std::string::npos);
    EXPECT_EQ(recs[2].value, "next");
  }
}

TEST(StreamJson, NumbersGapsDepthAndValueCounts) {
  std::string dir = test::temp_dir("synth_stream2");
  JsonLimits lim;
  lim.max_token_chars = 10;
  JsonStreamResult r;
  auto recs = stream_all(write(dir, "n.json", "[1, 123456789012345678901234567890, 2]"), lim, &r);
  EXPECT_EQ(recs.size(), 1u);
  EXPECT_NE(r.stopped.find("number or literal longer than 10"), std::string::npos) << r.stopped;

  lim = {};
  lim.max_gap_bytes = 100;
  recs = stream_all(write(dir, "g.json", "[1," + std::string(500, ' ') + "2]"), lim, &r);
  EXPECT_NE(r.stopped.find("whitespace and brackets"), std::string::npos) << r.stopped;

  lim = {};
  lim.max_record_depth = 3;
  lim.max_record_values = 6;
  recs = stream_all(write(dir, "d.json", "[[[[[1]]]], [[1]], [1,2,3,4,5,6], [1,2,3,4,5], 7]"), lim, &r);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_TRUE(r.stopped.empty());
  EXPECT_NE(recs[0].problem.find("deeper than 3"), std::string::npos);
  EXPECT_EQ(recs[1].value, nlohmann::json::parse("[[1]]"));
  EXPECT_NE(recs[2].problem.find("more than 6 values"), std::string::npos);
  EXPECT_EQ(recs[3].value.size(), 5u);
  EXPECT_EQ(recs[4].value, 7);

  // Skipped top-level members are parsed, never built, whatever their depth.
  std::string deep = std::string(200000, '[') + std::string(200000, ']');
  std::vector<JsonRecord> got;
  JsonStreamResult o = stream_json(write(dir, "o.json", R"({"info": )" + deep + R"(, "images": [{"id": 1}]})"),
                                   {"images"}, [&](JsonRecord& rec) {
                                     got.push_back(std::move(rec));
                                     return true;
                                   });
  EXPECT_TRUE(o.stopped.empty()) << o.stopped;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].section, "images");
  EXPECT_EQ(got[0].value["id"], 1);
}

}  // namespace
}  // namespace dsvl2::synth
