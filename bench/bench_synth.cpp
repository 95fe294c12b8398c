// Records per second of `synth` for each task on 640x480 images, with
// reading the image, drawing or inpainting, encoding the new image and the
// JSON included (what a job does per image, less the ledger). Images are
// textured noise with two objects (a polygon and a box) each.
//
//   bench_synth [images]        (default 24)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "core/rng.h"
#include "ground/canvas.h"
#include "synth/tasks.h"

namespace dsvl2::synth {
namespace {

Image textured(int w, int h, uint64_t seed) {
  Rng rng(seed);
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int c = 0; c < 3; c++)
        img.rgb[(size_t(y) * w + x) * 3 + c] = uint8_t((x * (c + 1) + y * 2) / 3 % 200 + rng.randint(0, 55));
  return img;
}

// `categories`: the vocabulary. With only the objects' own category every
// negative must erase an object; with more, most ask for an absent one.
AnnotationSet make_set(const std::string& dir, int n, bool vocabulary_beyond_image) {
  AnnotationSet set;
  set.categories[1] = "box";
  if (vocabulary_beyond_image) set.categories[2] = "ball", set.categories[3] = "kite";
  for (int i = 0; i < n; i++) {
    AnnotatedImage im;
    im.id = i + 1;
    im.file_name = "im" + std::to_string(i) + ".png";
    im.width = 640;
    im.height = 480;
    im.source = "coco";
    const std::string path = dir + "/" + im.file_name;
    if (!std::filesystem::exists(path)) ground::save_png(textured(640, 480, uint64_t(i)), path);
    AnnotatedObject a;
    a.id = 100 + i;
    a.category_id = 1;
    a.category = "box";
    const double x = 60 + 7 * (i % 20), y = 50 + 5 * (i % 15);
    a.box = {x, y, x + 120, y + 90};
    a.polygons = {{{x, y}, {x + 120, y + 10}, {x + 110, y + 90}, {x + 5, y + 80}}};
    a.expressions = {"the box on the left"};
    im.objects.push_back(a);
    im.captions = {"A box lies on the floor."};
    im.phrases = {{"A box", {a.id}, 0, 5}};
    set.images.push_back(std::move(im));
  }
  return set;
}

double rate(Task task, const AnnotationSet& set, const std::string& images, const std::string& out) {
  const TaskIndex index = build_task_index(set);
  TaskContext ctx{&set, images, 7, "../img/"};
  ctx.index = &index;
  const auto t0 = std::chrono::steady_clock::now();
  int made = 0;
  for (const AnnotatedImage& img : set.images) {
    if (!applicable(task, img, ctx)) continue;
    Record r = make_record(task, img, ctx);
    for (const OutputImage& o : r.new_images) write_output_image(o, out);
    made += !record_json(r).empty();
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return made / s;
}

}  // namespace
}  // namespace dsvl2::synth

int main(int argc, char** argv) {
  using namespace dsvl2::synth;
  const int n = argc > 1 ? std::atoi(argv[1]) : 24;
  const std::string root = std::filesystem::temp_directory_path() / "dsvl2-bench-synth";
  std::filesystem::create_directories(root + "/img");
  std::filesystem::create_directories(root + "/out");
  try {
    const AnnotationSet wide = make_set(root + "/img", n, true), own = make_set(root + "/img", n, false);
    std::printf("synth records/s, %d images of 640x480, one thread (drawing, inpainting, JPEG and JSON included)\n", n);
    for (Task t : {Task::kGround, Task::kVip, Task::kGcg, Task::kIcg, Task::kNeg})
      std::printf("%-6s %8.1f\n", task_name(t), rate(t, wide, root + "/img", root + "/out"));
    std::printf("%-6s %8.1f  (every negative an erased object: inpainting)\n", "neg", rate(Task::kNeg, own, root + "/img", root + "/out"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_synth: %s\n", e.what());
    return 1;
  }
  return 0;
}
