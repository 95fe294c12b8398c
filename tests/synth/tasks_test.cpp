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

namespace dsvl2::synth {
namespace {

using nlohmann::json;

// A photo-like picture: smooth multi-scale value noise plus a little grain,
// so that inpainting and JPEG have texture to work on.
Image textured(int w, int h, uint64_t seed) {
  Image im{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
  Rng rng(seed);
  auto lattice = [&](int cell, int c) {
    const int gw = w / cell + 2, gh = h / cell + 2;
    std::vector<double> g(size_t(gw) * gh);
    for (double& v : g) v = rng.uniform01();
    std::vector<double> out(size_t(w) * h);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        const double fx = double(x) / cell, fy = double(y) / cell;
        const int ix = int(fx), iy = int(fy);
        const double tx = fx - ix, ty = fy - iy;
        auto at = [&](int a, int b) { return g[size_t(b) * gw + a]; };
        out[size_t(y) * w + x] = (at(ix, iy) * (1 - tx) + at(ix + 1, iy) * tx) * (1 - ty) +
                                 (at(ix, iy + 1) * (1 - tx) + at(ix + 1, iy + 1) * tx) * ty;
      }
    (void)c;
    return out;
  };
  if (size_t(w) * h > 1000 * 1000) {  // big ones: a cheap gradient (the tests never erase on them)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x)
        for (int c = 0; c < 3; ++c) im.rgb[(size_t(y) * w + x) * 3 + c] = uint8_t((x * (c + 1) + y * (3 - c)) / 16);
    return im;
  }
  for (int c = 0; c < 3; ++c) {
    std::vector<double> a = lattice(64, c), b = lattice(16, c), d = lattice(4, c);
    for (size_t i = 0; i < a.size(); ++i) {
      const double v = 150 * a[i] + 60 * b[i] + 25 * d[i] + rng.uniform(-6, 6);
      im.rgb[i * 3 + c] = uint8_t(std::clamp(v, 0.0, 255.0));
    }
  }
  return im;
}

// Paints a box in a flat colour (a stand-in object for the erase checks).
void paint(Image& im, const ground::Box& b, uint8_t r, uint8_t g, uint8_t bl) {
  for (int y = int(b.y1); y < int(b.y2); ++y)
    for (int x = int(b.x1); x < int(b.x2); ++x) {
      uint8_t* p = &im.rgb[(size_t(y) * im.width + x) * 3];
      p[0] = r, p[1] = g, p[2] = bl;
    }
}

ground::Polygon rect_polygon(const ground::Box& b) {
  return {{b.x1, b.y1}, {b.x2, b.y1}, {b.x2, b.y2}, {b.x1, b.y2}};
}

AnnotatedObject obj(int64_t id, int64_t cat_id, std::string cat, ground::Box box, bool crowd = false,
                    bool with_mask = false) {
  AnnotatedObject o;
  o.id = id;
  o.category_id = cat_id;
  o.category = std::move(cat);
  o.box = box;
  o.crowd = crowd;
  if (with_mask) o.polygons = {rect_polygon(box)};
  return o;
}

// The fixture: a COCO-like set (ids 1-5), a Flickr30k-like image (6), a VG one (7).
struct Fixture {
  std::string dir;
  AnnotationSet set;
  std::map<int64_t, Image> pixels;
  TaskContext ctx;

  // The images are made and written once per run (the big ones take a while);
  // every test gets its own copy of the set.
  explicit Fixture(const std::string& tag) {
    static const Fixture* base = new Fixture();
    dir = base->dir, set = base->set, pixels = base->pixels, ctx = base->ctx;
    ctx.set = &set;
    (void)tag;
  }
  Fixture(const Fixture&) = delete;

 private:
  Fixture() : dir(test::temp_dir("synth_tasks")) {
    set.categories = {{1, "person"}, {2, "dog"}, {3, "cat"}, {4, "car"}, {5, "bicycle"}, {6, "zebra"}};
    // 1: three dogs out of reading order and a crowd of people (1998 px: even
    // pixel coordinates encode to exactly half their value, so the expected
    // answers below are written by hand).
    add(1, "coco", 1998, 1998,
        {obj(31, 2, "dog", {200, 600, 400, 800}), obj(32, 2, "dog", {1000, 100, 1200, 300}),
         obj(33, 2, "dog", {100, 100, 300, 300}), obj(34, 1, "person", {1400, 1400, 1900, 1900}, true)});
    // 2: a dog, a cat (mask) and a car.
    add(2, "coco", 320, 240,
        {obj(21, 2, "dog", {20, 30, 120, 130}, false, true), obj(22, 3, "cat", {180, 40, 280, 140}, false, true),
         obj(23, 4, "car", {150, 170, 310, 235})});
    // 3: a RefCOCO image: two dogs, one with expressions.
    AnnotatedObject left = obj(41, 2, "dog", {10, 20, 100, 200}, false, true);
    left.expressions = {"the dog on the left", "brown dog"};
    add(3, "refcoco", 400, 300, {left, obj(42, 2, "dog", {200, 20, 390, 280}, false, true)});
    // 4: a second dog image for icg (two dogs, one crowd-free).
    add(4, "coco", 500, 400, {obj(51, 2, "dog", {300, 200, 450, 380}), obj(52, 2, "dog", {20, 20, 80, 90})});
    // 5: a bicycle with a crowd of dogs (never an icg target).
    add(5, "coco", 300, 300, {obj(61, 5, "bicycle", {10, 10, 200, 200}), obj(62, 2, "dog", {0, 0, 300, 300}, true)});
    // 6: Flickr30k Entities: a caption with phrase offsets (and one without).
    AnnotatedImage& f = add(6, "flickr30k", 1998, 1998,
                            {obj(71, -1, "", {100, 200, 500, 1800}), obj(72, -1, "", {400, 1000, 1000, 1600}),
                             obj(73, -1, "", {0, 1600, 1998, 1998}), obj(74, -1, "", {1200, 100, 1400, 500})});
    f.captions = {"A man rides a bike down the street ."};
    f.phrases = {{"A man", {71}, 0, 5}, {"a bike", {72}, 12, 18}, {"the street", {73, 74}, -1, -1}};
    // 7: Visual Genome regions (descriptions, no categories).
    AnnotatedObject r1 = obj(81, -1, "", {30, 40, 150, 160});
    r1.expressions = {"a red kite in the sky"};
    AnnotatedObject r2 = obj(82, -1, "", {200, 100, 300, 220});
    r2.expressions = {"green tree"};
    AnnotatedObject r3 = obj(83, -1, "", {60, 200, 180, 290});
    r3.expressions = {"white fence"};
    add(7, "vg", 360, 300, {r1, r2, r3});
    ctx = TaskContext{&set, dir, 7, "../imgs/"};
  }

 public:

  AnnotatedImage& add(int64_t id, const std::string& source, int w, int h, std::vector<AnnotatedObject> objs) {
    AnnotatedImage im;
    im.id = id;
    im.file_name = source + "_" + std::to_string(id) + ".png";
    im.width = w, im.height = h;
    im.objects = std::move(objs);
    im.source = source;
    Image px = textured(w, h, uint64_t(id));
    ground::save_png(px, dir + "/" + im.file_name);
    pixels[id] = std::move(px);
    set.images.push_back(std::move(im));
    return set.images.back();
  }
  const AnnotatedImage& image(int64_t id) const {
    for (const AnnotatedImage& im : set.images)
      if (im.id == id) return im;
    throw std::runtime_error("no image");
  }
};

json source_of(const Record& r) { return json::parse(r.source_json); }

// The first record over seeds 0..n-1 that `pred` accepts.
template <class Pred>
std::optional<Record> find_record(Fixture& fx, Task t, int64_t image_id, Pred pred, int n = 200) {
  for (int s = 0; s < n; ++s) {
    fx.ctx.seed = uint64_t(s);
    Record r = make_record(t, fx.image(image_id), fx.ctx);
    if (pred(r)) return r;
  }
  return std::nullopt;
}

// ---- grounding ----

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
