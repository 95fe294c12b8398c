// Shared fixtures of the synth task tests: textured images written to a
// temporary folder and an AnnotationSet over them.
#pragma once
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
#include <optional>
#include <stdexcept>

namespace dsvl2::synth::fixture {

using nlohmann::json;

// A photo-like picture: smooth multi-scale value noise plus a little grain,
// so that inpainting and JPEG have texture to work on.
inline Image textured(int w, int h, uint64_t seed) {
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
inline void paint(Image& im, const ground::Box& b, uint8_t r, uint8_t g, uint8_t bl) {
  for (int y = int(b.y1); y < int(b.y2); ++y)
    for (int x = int(b.x1); x < int(b.x2); ++x) {
      uint8_t* p = &im.rgb[(size_t(y) * im.width + x) * 3];
      p[0] = r, p[1] = g, p[2] = bl;
    }
}

inline ground::Polygon rect_polygon(const ground::Box& b) {
  return {{b.x1, b.y1}, {b.x2, b.y1}, {b.x2, b.y2}, {b.x1, b.y2}};
}

inline AnnotatedObject obj(int64_t id, int64_t cat_id, std::string cat, ground::Box box, bool crowd = false,
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

inline json source_of(const Record& r) { return json::parse(r.source_json); }

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
}  // namespace dsvl2::synth::fixture
