// Negatives (absent and erased), record determinism and shape, tokenization
// through the real template, and the output image format.
#include <gtest/gtest.h>
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include "core/error.h"
#include "core/rng.h"
#include "ground/canvas.h"
#include "ground/grounding_parser.h"
#include "image/image.h"
#include "synth/inpaint.h"
#include "synth/tasks.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "synth_fixture.h"

namespace dsvl2::synth {
namespace {

using namespace fixture;
using nlohmann::json;

TEST(SynthNeg, AbsentCategoryIsAbsent) {
  Fixture fx("synth_neg_absent");
  int absent = 0;
  for (int s = 0; s < 40; ++s) {
    fx.ctx.seed = uint64_t(s);
    Record r = make_record(Task::kNeg, fx.image(2), fx.ctx);
    json src = source_of(r);
    EXPECT_EQ(src["annotation_ids"], json::array());
    const std::string q = src["query"];
    EXPECT_EQ(r.messages[0].content, "<image>\nLocate <|ref|>" + q + "<|/ref|> in the given image.");
    EXPECT_EQ(r.messages[1].content, negative_answer(q));
    if (src["negative"] == "absent") {
      absent++;
      for (const AnnotatedObject& o : fx.image(2).objects) EXPECT_NE(o.category, q);
      EXPECT_TRUE(q == "person" || q == "bicycle" || q == "zebra") << q;
    }
  }
  EXPECT_GT(absent, 0);
  // The negative answer parses as no boxes, without errors.
  EXPECT_EQ(negative_answer("zebra"), "There is no zebra in the image.");
  ground::ParseResult p = ground::parse_grounding(negative_answer("zebra"), 100, 100);
  EXPECT_TRUE(p.objects.empty());
  EXPECT_TRUE(p.errors.empty());
  // VG does not label every object, so it cannot say what is absent.
  EXPECT_FALSE(applicable(Task::kNeg, fx.image(7), fx.ctx));
}

TEST(SynthNeg, ErasedObjectChangesOnlyTheDilatedMask) {
  Fixture fx("synth_neg_erase");
  // A flat magenta "cat" on the textured picture, the only cat; all other
  // dataset categories are present or crowd, so erasing is the only negative.
  AnnotatedImage& im = fx.set.images[1];
  ASSERT_EQ(im.id, 2);
  Image px = fx.pixels[2];
  const ground::Box cat = im.objects[1].box;
  paint(px, cat, 255, 0, 255);
  im.file_name = "magenta_cat.png";
  ground::save_png(px, fx.dir + "/" + im.file_name);
  fx.set.categories = {{2, "dog"}, {3, "cat"}, {4, "car"}};
  Record r = make_record(Task::kNeg, im, fx.ctx);
  json src = source_of(r);
  ASSERT_EQ(src["negative"], "erased");
  // The dog, cat and car are each the only one of their kind: whichever goes,
  // its category is asked for.
  const int64_t erased_id = src["erased_annotation_id"];
  const AnnotatedObject* o = nullptr;
  for (const AnnotatedObject& x : im.objects)
    if (x.id == erased_id) o = &x;
  ASSERT_NE(o, nullptr);
  EXPECT_EQ(src["query"], o->category);
  EXPECT_EQ(r.messages[1].content, negative_answer(o->category));
  EXPECT_EQ(r.messages[0].images, std::vector<std::string>{"images/coco_2_neg.jpg"});
  ASSERT_EQ(r.new_images.size(), 1u);
  // The record's image is erase_object's, which keeps every pixel outside the mask.
  ErasedImage e = erase_object(px, o->polygons, o->box);
  EXPECT_EQ(r.new_images[0].image.rgb, e.image.rgb);
  int64_t outside_changed = 0, inside = 0, inside_changed = 0;
  for (size_t i = 0; i < e.mask.size(); ++i) {
    const bool same = std::equal(&px.rgb[i * 3], &px.rgb[i * 3] + 3, &e.image.rgb[i * 3]);
    if (e.mask[i]) {
      inside++, inside_changed += !same;
    } else {
      outside_changed += !same;
    }
  }
  EXPECT_EQ(outside_changed, 0);
  EXPECT_EQ(inside, e.mask_pixels);
  // The dilated mask covers the box and a ring around it (radius 3 at 320 px).
  EXPECT_GE(inside, int64_t((o->box.x2 - o->box.x1 + 6) * (o->box.y2 - o->box.y1 + 6) * 0.9));
  EXPECT_GT(inside_changed, inside / 2);
}

TEST(SynthNeg, MagentaObjectIsReallyGone) {
  Image px = textured(200, 150, 3);
  const ground::Box b{60, 40, 120, 100};
  paint(px, b, 255, 0, 255);
  ErasedImage e = erase_object(px, {rect_polygon(b)}, b);
  int magenta = 0;
  for (int y = 40; y < 100; ++y)
    for (int x = 60; x < 120; ++x) {
      const uint8_t* p = &e.image.rgb[(size_t(y) * 200 + x) * 3];
      magenta += p[0] > 200 && p[1] < 60 && p[2] > 200;
    }
  EXPECT_EQ(magenta, 0);
  EXPECT_THROW(erase_object(px, {}, ground::Box{500, 500, 600, 600}), Error);  // outside: empty mask
}

TEST(SynthNeg, OnlyObjectsWhoseCategoryDisappearsAreErased) {
  Fixture fx("synth_neg_unique");
  AnnotatedImage im = fx.image(2);
  im.objects.push_back(obj(24, 3, "cat", {10, 150, 60, 200}, false, true));  // a second cat
  fx.set.categories = {{2, "dog"}, {3, "cat"}, {4, "car"}};                   // nothing absent
  for (int s = 0; s < 20; ++s) {
    fx.ctx.seed = uint64_t(s);
    Record r = make_record(Task::kNeg, im, fx.ctx);
    EXPECT_NE(source_of(r)["query"], "cat");
  }
}

// ---- determinism, JSON, tokenizer ----

std::vector<Record> all_records(Fixture& fx) {
  std::vector<Record> out;
  for (const AnnotatedImage& im : fx.set.images)
    for (Task t : {Task::kVip, Task::kGround, Task::kGcg, Task::kIcg, Task::kNeg})
      if (applicable(t, im, fx.ctx)) out.push_back(make_record(t, im, fx.ctx));
  return out;
}

TEST(SynthRecords, SameSeedSameBytesOtherSeedOtherRecords) {
  Fixture fx("synth_det");
  fx.ctx.seed = 11;
  std::vector<Record> a = all_records(fx), b = all_records(fx);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_GE(a.size(), 20u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(record_json(a[i]), record_json(b[i]));
    ASSERT_EQ(a[i].new_images.size(), b[i].new_images.size());
    for (size_t k = 0; k < a[i].new_images.size(); ++k)
      EXPECT_EQ(a[i].new_images[k].image.rgb, b[i].new_images[k].image.rgb);
  }
  fx.ctx.seed = 12;
  std::vector<Record> c = all_records(fx);
  int differ = 0;
  for (size_t i = 0; i < std::min(a.size(), c.size()); ++i) differ += record_json(a[i]) != record_json(c[i]);
  EXPECT_GE(differ, 5);
}

TEST(SynthRecords, JsonShape) {
  Fixture fx("synth_json");
  Record r = make_record(Task::kGround, fx.image(1), fx.ctx);
  const std::string line = record_json(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.rfind("{\"task\":\"ground\",\"messages\":[{\"role\":\"<|User|>\",\"content\":", 0), 0u) << line;
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"task", "messages", "source"}));
  EXPECT_EQ(j["messages"][1]["images"], nlohmann::ordered_json::array());
  std::vector<std::string> src_keys;
  for (auto it = j["source"].begin(); it != j["source"].end(); ++it) src_keys.push_back(it.key());
  EXPECT_EQ(std::vector<std::string>(src_keys.begin(), src_keys.begin() + 3),
            (std::vector<std::string>{"dataset", "image_id", "annotation_ids"}));
  EXPECT_EQ(parse_task("icg"), Task::kIcg);
  EXPECT_THROW(parse_task("caption"), Error);
}

TEST(SynthRecords, EveryRecordRendersAndTokenizes) {
  const std::string dir = test::tokenizer_dir();
  if (dir.empty()) {
    if (test::in_ci()) FAIL() << "tokenizer not found, and CI=true requires it";
    GTEST_SKIP() << "shared/tokenizer not found (set DSVL2_SHARED_DIR)";
  }
  Tokenizer tok = Tokenizer::load(dir + "/deepseek_v3");
  const int32_t image_id = *tok.token_to_id("<image>");
  const int32_t ref_id = *tok.token_to_id("<|ref|>");
  Fixture fx("synth_tok");
  int checked = 0;
  for (uint64_t seed : {1u, 2u, 3u}) {
    fx.ctx.seed = seed;
    for (const Record& r : all_records(fx)) {
      std::vector<ChatMessage> conv;
      std::vector<int64_t> counts;
      size_t tags = 0;
      for (const Message& m : r.messages) {
        conv.push_back({parse_chat_role(m.role), m.content, int(m.images.size())});
        for (size_t k = 0; k < m.images.size(); ++k) counts.push_back(5);
        // The placeholders are written out, one per image, so reconciliation changes nothing.
        size_t n = 0;
        for (size_t at = m.content.find("<image>"); at != std::string::npos; at = m.content.find("<image>", at + 1))
          n++;
        EXPECT_EQ(n, m.images.size()) << m.content;
        EXPECT_EQ(reconcile_image_tags(m.content, int(m.images.size())), m.content);
        tags += n;
      }
      PromptIds p = build_prompt_ids(tok, conv, counts);
      ASSERT_EQ(p.images.size(), tags);
      EXPECT_EQ(std::count(p.image_mask.begin(), p.image_mask.end(), 1), int64_t(5 * tags));
      // The special tokens stay single tokens (ids), not spelled out.
      int64_t refs = 0;
      for (const Message& m : r.messages)
        for (size_t at = m.content.find("<|ref|>"); at != std::string::npos; at = m.content.find("<|ref|>", at + 1))
          refs++;
      EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), ref_id), refs) << record_json(r);
      EXPECT_EQ(std::count(p.ids.begin(), p.ids.end(), image_id), int64_t(5 * tags));  // one run per image
      EXPECT_FALSE(format_sft_prompt(conv).empty());
      checked++;
    }
  }
  EXPECT_GE(checked, 60);
}

// ---- output images ----

double psnr(const Image& a, const Image& b) {
  double se = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) se += (double(a.rgb[i]) - b.rgb[i]) * (double(a.rgb[i]) - b.rgb[i]);
  const double mse = se / double(a.rgb.size());
  return mse == 0 ? 99 : 10 * std::log10(255.0 * 255.0 / mse);
}

// The PNG-vs-JPEG measurement behind the format of drawn images
// (docs/synth.md, "Image format"): sizes and PSNR printed, the choice checked.
TEST(SynthImages, JpegMeasurementAndWriting) {
  Fixture fx("synth_img");
  fx.ctx.seed = 5;
  const std::string out = fx.dir + "/out";
  for (int64_t id : {2, 7}) {
    Record r = make_record(Task::kVip, fx.image(id), fx.ctx);
    const Image& drawn = r.new_images.at(0).image;
    const std::string png = out + "/m.png";
    write_output_image({"m.png", drawn}, out);
    write_output_image(r.new_images[0], out);
    const auto png_size = std::filesystem::file_size(png);
    const std::string jpg_path = out + "/" + r.new_images[0].name;
    const auto jpg_size = std::filesystem::file_size(jpg_path);
    Image back = load_image(jpg_path);
    const double q = psnr(drawn, back);
    std::string q90 = encode_jpeg(drawn, 90);
    std::printf("[ measure ] %dx%d: PNG %zu B, JPEG q95 4:4:4 %zu B (%.1fx smaller, PSNR %.1f dB), q90 %zu B\n",
                drawn.width, drawn.height, size_t(png_size), size_t(jpg_size), double(png_size) / jpg_size, q,
                q90.size());
    EXPECT_EQ(load_image(png).rgb, drawn.rgb);  // PNG: lossless
    EXPECT_LT(jpg_size * 2, png_size);
    EXPECT_GT(q, 36.0);
  }
  EXPECT_THROW(write_output_image({"x.bmp", fx.pixels[2]}, out), Error);
}

}  // namespace
}  // namespace dsvl2::synth
