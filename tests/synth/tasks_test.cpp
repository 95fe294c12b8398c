// Task generators (src/synth/tasks*.cpp): known answers built by hand on small
// annotation sets whose images are written here, the box round trip through
// the official decoder, marks, erased objects, determinism, and every record
// through the chat template and the real tokenizer.
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


TEST(SynthGround, EveryInstanceInReadingOrderWithIds) {
  Fixture fx("synth_ground");
  Record r = make_record(Task::kGround, fx.image(1), fx.ctx);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "<|User|>");
  // The crowd of people is never asked for: "dog" is the only query.
  EXPECT_EQ(r.messages[0].content, "<image>\nLocate <|ref|>dog<|/ref|> in the given image.");
  EXPECT_EQ(r.messages[0].images, std::vector<std::string>{"../imgs/coco_1.png"});
  EXPECT_EQ(r.messages[1].role, "<|Assistant|>");
  EXPECT_EQ(r.messages[1].content,
            "<|ref|>dog<|/ref|><|det|>[[50, 50, 150, 150], [500, 50, 600, 150], [100, 300, 200, 400]]<|/det|>");
  json src = source_of(r);
  EXPECT_EQ(src["dataset"], "coco");
  EXPECT_EQ(src["image_id"], 1);
  EXPECT_EQ(src["annotation_ids"], json({33, 32, 31}));
  EXPECT_TRUE(r.new_images.empty());
}

TEST(SynthGround, ExpressionsNameOneObjectCategoriesAll) {
  Fixture fx("synth_ground_ref");
  std::set<std::string> kinds;
  for (int s = 0; s < 40; ++s) {
    fx.ctx.seed = uint64_t(s);
    Record r = make_record(Task::kGround, fx.image(3), fx.ctx);
    json src = source_of(r);
    kinds.insert(src["query_kind"]);
    if (src["query_kind"] == "expression") {
      EXPECT_EQ(src["annotation_ids"], json({41}));
      EXPECT_TRUE(src["query"] == "the dog on the left" || src["query"] == "brown dog") << src;
    } else {
      EXPECT_EQ(src["query"], "dog");
      EXPECT_EQ(src["annotation_ids"], json({41, 42}));
    }
    // The answer's boxes are those of the listed annotations, in order.
    ground::ParseResult p = ground::parse_grounding(r.messages[1].content, 400, 300);
    ASSERT_EQ(p.objects.size(), src["annotation_ids"].size());
    EXPECT_TRUE(p.errors.empty());
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"category", "expression"}));
}

TEST(SynthGround, NotApplicableWithoutTargetsAndMissingFileIsAnError) {
  Fixture fx("synth_ground_na");
  AnnotatedImage only_crowd = fx.image(5);
  only_crowd.objects.erase(only_crowd.objects.begin());  // just the crowd of dogs
  EXPECT_FALSE(applicable(Task::kGround, only_crowd, fx.ctx));
  EXPECT_THROW(make_record(Task::kGround, only_crowd, fx.ctx), Error);
  AnnotatedImage missing = fx.image(2);
  missing.file_name = "nope.png";
  EXPECT_THROW(make_record(Task::kGround, missing, fx.ctx), Error);
  EXPECT_THROW(make_record(Task::kVip, missing, fx.ctx), Error);
}

// The answer's coordinates come back through the official decoder
// (int(v / 999 * size), ground::parse_grounding) within one pixel for every
// side up to 1998 px, and within size/999 px (one step of the scale) above.
TEST(SynthGround, BoxRoundTripThroughTheParser) {
  Rng rng(12345);
  int plain_rounding_misses = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    const bool large = trial % 10 == 0;
    const int w = large ? rng.randint(1999, 8000) : rng.randint(1, 1998);
    const int h = large ? rng.randint(1999, 8000) : rng.randint(1, 1998);
    const bool integer = trial % 2 == 0;
    auto coord = [&](int size) { return integer ? double(rng.randint(0, size)) : rng.uniform(0, size); };
    double xa = coord(w), xb = coord(w), ya = coord(h), yb = coord(h);
    ground::Box b{std::min(xa, xb), std::min(ya, yb), std::max(xa, xb), std::max(ya, yb)};
    const std::string ans = grounding_answer("thing", {b}, w, h);
    ground::ParseResult p = ground::parse_grounding(ans, w, h);
    ASSERT_EQ(p.objects.size(), 1u) << ans;
    ASSERT_TRUE(p.errors.empty()) << ans;
    const double tol_x = w <= 1998 ? 1.0 : w / 999.0, tol_y = h <= 1998 ? 1.0 : h / 999.0;
    const auto& px = p.objects[0].box_px;
    ASSERT_LE(std::abs(px[0] - b.x1), tol_x) << ans << " w=" << w << " x1=" << b.x1;
    ASSERT_LE(std::abs(px[1] - b.y1), tol_y) << ans << " h=" << h << " y1=" << b.y1;
    ASSERT_LE(std::abs(px[2] - b.x2), tol_x) << ans << " w=" << w << " x2=" << b.x2;
    ASSERT_LE(std::abs(px[3] - b.y2), tol_y) << ans << " h=" << h << " y2=" << b.y2;
    if (!large) {
      std::array<int, 4> n = ground::normalise_box(b.x1, b.y1, b.x2, b.y2, w, h);
      plain_rounding_misses += std::abs(ground::coord_to_px(n[0], w) - b.x1) > 1.0;
    }
  }
  // Why encode_coord exists: plain rounding fails the one-pixel bound.
  EXPECT_GT(plain_rounding_misses, 0);
}

TEST(SynthGround, AnswerOrderAndDuplicates) {
  // Same top edge: left to right; an exact duplicate is dropped.
  std::vector<ground::Box> boxes = {{50, 10, 60, 20}, {10, 10, 20, 20}, {0, 5, 5, 9}, {10, 10, 20, 20}};
  EXPECT_EQ(answer_order(boxes, 100, 100), (std::vector<size_t>{2, 1, 0}));
  EXPECT_EQ(encode_coord(0, 640), 0);
  EXPECT_EQ(encode_coord(640, 640), 999);
  EXPECT_EQ(encode_coord(-5, 640), 0);
  EXPECT_EQ(encode_coord(1e9, 640), 999);
  EXPECT_EQ(encode_coord(std::nan(""), 640), 0);
}

// ---- visual prompts ----

// Every pixel that changed lies within `margin` of some marked box.
void expect_changes_near(const Image& before, const Image& after, const std::vector<ground::Box>& boxes,
                         double margin) {
  ASSERT_EQ(before.rgb.size(), after.rgb.size());
  int64_t changed = 0, far = 0;
  for (int y = 0; y < before.height; ++y)
    for (int x = 0; x < before.width; ++x) {
      const size_t i = (size_t(y) * before.width + x) * 3;
      if (std::equal(&before.rgb[i], &before.rgb[i] + 3, &after.rgb[i])) continue;
      changed++;
      bool near = false;
      for (const ground::Box& b : boxes)
        near |= x >= b.x1 - margin && x <= b.x2 + margin && y >= b.y1 - margin && y <= b.y2 + margin;
      far += !near;
    }
  EXPECT_GT(changed, 0);
  EXPECT_EQ(far, 0) << "of " << changed << " changed pixels";
}

TEST(SynthVip, MultiMarkColoursDistinctAndPixelsOnlyNearMarks) {
  Fixture fx("synth_vip");
  std::optional<Record> r = find_record(fx, Task::kVip, 7, [](const Record& r) { return r.messages.size() >= 4; });
  ASSERT_TRUE(r) << "no multi-mark record in 200 seeds";
  json src = source_of(*r);
  std::set<std::string> colours;
  std::vector<ground::Box> boxes;
  for (const json& m : src["marks"]) {
    colours.insert(m["color_name"].get<std::string>());
    EXPECT_NE(m["color_name"], "");
    EXPECT_TRUE(m["shape"] == "rectangle" || m["shape"] == "ellipse") << m;  // VG's shapes
    for (const AnnotatedObject& o : fx.image(7).objects)
      if (o.id == m["annotation_id"]) boxes.push_back(o.box);
  }
  EXPECT_EQ(colours.size(), src["marks"].size());
  ASSERT_EQ(boxes.size(), src["marks"].size());
  // One question per mark; each names its colour; only the first turn carries the image.
  for (size_t i = 0; i < src["marks"].size(); ++i) {
    const Message& q = r->messages[2 * i];
    EXPECT_NE(q.content.find(src["marks"][i]["color_name"].get<std::string>()), std::string::npos) << q.content;
    EXPECT_EQ(q.content.rfind("<image>", 0) == 0, i == 0);
    EXPECT_EQ(q.images.size(), i == 0 ? 1u : 0u);
    // VG regions have descriptions: the RefCOCOg question with the reference put back.
    EXPECT_EQ(q.content.find("Describe the object within the "), i == 0 ? 8u : 0u) << q.content;
  }
  ASSERT_EQ(r->new_images.size(), 1u);
  EXPECT_EQ(r->new_images[0].name, r->messages[0].images[0]);
  EXPECT_EQ(r->new_images[0].name, "images/vg_7_vip.jpg");
  // Ellipses grow by up to 1.5x about the centre, strokes up to 8 s px (s = 360/336).
  expect_changes_near(fx.pixels[7], r->new_images[0].image, boxes, 0.25 * 120 + 8 * 360 / 336.0 + 2);
}

TEST(SynthVip, ShapesFollowTheSourceRulesAndAnswersTheNames) {
  Fixture fx("synth_vip_shapes");
  std::set<std::string> coco_shapes, flickr_shapes;
  for (int s = 0; s < 120; ++s) {
    fx.ctx.seed = uint64_t(s);
    Record c = make_record(Task::kVip, fx.image(2), fx.ctx);
    json cs = source_of(c);
    for (size_t i = 0; i < cs["marks"].size(); ++i) {
      coco_shapes.insert(cs["marks"][i]["shape"].get<std::string>());
      const int64_t id = cs["marks"][i]["annotation_id"];
      const std::string want = id == 21 ? "dog" : id == 22 ? "cat" : "car";
      EXPECT_EQ(c.messages[2 * i + 1].content, want);
    }
    if (s < 25) {
      Record f = make_record(Task::kVip, fx.image(6), fx.ctx);
      const json fs = source_of(f);
      for (const json& m : fs["marks"]) flickr_shapes.insert(m["shape"].get<std::string>());
    }
  }
  EXPECT_EQ(coco_shapes.size(), 8u);  // COCO: all eight
  for (const std::string& s : flickr_shapes) EXPECT_TRUE(s == "rectangle" || s == "ellipse" || s == "arrow") << s;
  EXPECT_EQ(flickr_shapes.size(), 3u);
}

TEST(SynthVip, RefcocoObjectsAnswerWithAnExpressionOrTheCategory) {
  Fixture fx("synth_vip_ref");
  std::set<std::string> answers;
  for (int s = 0; s < 80; ++s) {
    fx.ctx.seed = uint64_t(s);
    Record r = make_record(Task::kVip, fx.image(3), fx.ctx);
    json src = source_of(r);
    for (size_t i = 0; i < src["marks"].size(); ++i) {
      const std::string& a = r.messages[2 * i + 1].content;
      if (src["marks"][i]["annotation_id"] == 42) {
        EXPECT_EQ(a, "dog");
      } else {
        answers.insert(a);
      }
      if (a != "dog") {
        EXPECT_NE(r.messages[2 * i].content.find(". Please provide a short phrase."), std::string::npos);
      }
    }
  }
  EXPECT_EQ(answers, (std::set<std::string>{"dog", "the dog on the left", "brown dog"}));
}

// ---- grounded conversation ----

TEST(SynthGcg, PhrasesInlineWithTheirBoxes) {
  Fixture fx("synth_gcg");
  Record r = make_record(Task::kGcg, fx.image(6), fx.ctx);
  EXPECT_EQ(r.messages[0].content, "<image>\n<|grounding|>Can you describe the content of the image?");
  EXPECT_EQ(r.messages[1].content,
            "<|ref|>A man<|/ref|><|det|>[[50, 100, 250, 900]]<|/det|> rides "
            "<|ref|>a bike<|/ref|><|det|>[[200, 500, 500, 800]]<|/det|> down "
            "<|ref|>the street<|/ref|><|det|>[[600, 50, 700, 250], [0, 800, 999, 999]]<|/det|> .");
  EXPECT_EQ(source_of(r)["annotation_ids"], json({71, 72, 74, 73}));
}

TEST(SynthGcg, CaptionsPlusCategoryBoxes) {
  Fixture fx("synth_gcg_coco");
  AnnotatedImage im = fx.image(1);
  im.captions = {"Three dogs play on the grass near a person."};
  // "person" is a crowd here: left as plain text.
  Record r = make_record(Task::kGcg, im, fx.ctx);
  EXPECT_EQ(r.messages[1].content,
            "Three <|ref|>dogs<|/ref|><|det|>[[50, 50, 150, 150], [500, 50, 600, 150], [100, 300, 200, 400]]"
            "<|/det|> play on the grass near a person.");
  EXPECT_FALSE(applicable(Task::kGcg, fx.image(2), fx.ctx));  // no caption
}

// ---- in-context grounding ----

TEST(SynthIcg, TwoImagesSecondAnsweredWithAllItsInstances) {
  Fixture fx("synth_icg");
  TaskIndex ix = build_task_index(fx.set);
  std::set<int64_t> seconds;
  std::set<std::string> templates;
  for (int s = 0; s < 40; ++s) {
    fx.ctx.seed = uint64_t(s);
    fx.ctx.index = s % 2 ? &ix : nullptr;  // the index changes nothing but speed
    Record r = make_record(Task::kIcg, fx.image(2), fx.ctx);
    json src = source_of(r);
    // Image 2 has a dog, a cat and a car; only dogs appear elsewhere (not as image 5's crowd).
    EXPECT_EQ(src["category"], "dog");
    EXPECT_EQ(src["annotation_ids"], json({21}));
    const int64_t t = src["target_image_id"];
    seconds.insert(t);
    templates.insert(src["template"]);
    ASSERT_EQ(r.messages.size(), 2u);
    EXPECT_EQ(r.messages[0].content.rfind("<image>\n<image>\n<|grounding|>", 0), 0u) << r.messages[0].content;
    ASSERT_EQ(r.messages[0].images.size(), 2u);
    EXPECT_EQ(r.messages[0].images[0], "images/coco_2_icg.jpg");
    const AnnotatedImage& second = fx.image(t);
    EXPECT_EQ(r.messages[0].images[1], "../imgs/" + second.file_name);
    ground::ParseResult p = ground::parse_grounding(r.messages[1].content, second.width, second.height);
    size_t dogs = 0;
    for (const AnnotatedObject& o : second.objects) dogs += o.category == "dog" && !o.crowd;
    EXPECT_EQ(p.objects.size(), dogs);
    EXPECT_EQ(src["target_annotation_ids"].size(), dogs);
    for (const auto& o : p.objects) EXPECT_EQ(o.label, "dog");
    ASSERT_EQ(r.new_images.size(), 1u);
    EXPECT_NE(r.new_images[0].image.rgb, fx.pixels[2].rgb);
  }
  EXPECT_EQ(seconds, (std::set<int64_t>{1, 3, 4}));
  EXPECT_EQ(templates.size(), 2u);
}

// ---- negatives ----

}  // namespace
}  // namespace dsvl2::synth
