// Shared pieces of the task generators: coordinates, answer order, texts,
// image files.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

// jpeglib.h needs size_t and FILE declared first.
#include <jpeglib.h>

#include "core/error.h"
#include "core/file.h"
#include "ground/canvas.h"
#include "ground/grounding_parser.h"
#include "image/image.h"
#include "synth/tasks_internal.h"
#include "core/utf8.h"

namespace dsvl2::synth {

int encode_coord(double v, int size) {
  DSVL2_REQUIRE(size > 0, "encode_coord: size %d must be positive", size);
  if (!std::isfinite(v)) return 0;
  // The exact position on the 0-999 scale, then the nearby integers: pick the
  // one the official decoder, int(c / 999 * size), maps nearest to v (ties:
  // nearest to t, then the smaller). Plain rounding (ground::normalise_box) is
  // up to 1.5 px off after the decoder's truncation; this is within 1 px for
  // sides up to 1998 px, where decoded values are at most 2 px apart
  // (tests/synth/tasks_test.cpp).
  const double t = std::clamp(v / double(size) * 999.0, 0.0, 999.0);
  const int base = int(std::floor(t));
  int best = -1;
  double best_err = 0, best_dt = 0;
  for (int c = std::max(0, base - 1); c <= std::min(999, base + 2); ++c) {
    const double err = std::abs(double(ground::coord_to_px(c, size)) - v), dt = std::abs(double(c) - t);
    if (best < 0 || err < best_err || (err == best_err && dt < best_dt)) best = c, best_err = err, best_dt = dt;
  }
  return best;
}

std::array<int, 4> encode_box(const ground::Box& b, int width, int height) {
  return {encode_coord(b.x1, width), encode_coord(b.y1, height), encode_coord(b.x2, width),
          encode_coord(b.y2, height)};
}

std::vector<size_t> answer_order(const std::vector<ground::Box>& boxes, int width, int height) {
  std::vector<size_t> order(boxes.size());
  std::iota(order.begin(), order.end(), size_t(0));
  // Reading order on the pixel boxes: top edge, then left edge (then the
  // other corner, then input order, so that equal keys stay deterministic).
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const ground::Box &p = boxes[a], &q = boxes[b];
    if (p.y1 != q.y1) return p.y1 < q.y1;
    if (p.x1 != q.x1) return p.x1 < q.x1;
    if (p.y2 != q.y2) return p.y2 < q.y2;
    return p.x2 < q.x2;
  });
  // Duplicates (two annotations that encode to the same box) would teach the
  // model to repeat itself; keep the first.
  std::vector<size_t> out;
  std::vector<std::array<int, 4>> seen;
  for (size_t i : order) {
    std::array<int, 4> e = encode_box(boxes[i], width, height);
    if (std::find(seen.begin(), seen.end(), e) != seen.end()) continue;
    seen.push_back(e);
    out.push_back(i);
  }
  return out;
}

std::string grounding_answer(const std::string& query, const std::vector<ground::Box>& boxes, int width, int height) {
  std::vector<std::array<int, 4>> enc;
  for (size_t i : answer_order(boxes, width, height)) enc.push_back(encode_box(boxes[i], width, height));
  std::string s = "<|ref|>";
  s.append(query).append("<|/ref|><|det|>").append(ground::format_boxes(enc)).append("<|/det|>");
  return s;
}

std::string encode_jpeg(const Image& img, int quality) {
  DSVL2_REQUIRE(img.width > 0 && img.height > 0 && img.rgb.size() == size_t(img.width) * img.height * 3,
                "jpeg: bad image %dx%d", img.width, img.height);
  jpeg_compress_struct c;
  jpeg_error_mgr err;
  c.err = jpeg_std_error(&err);
  // libjpeg's default error handler exits the process; a library must not.
  err.error_exit = [](j_common_ptr cinfo) {
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    throw Error(std::string("jpeg encode: ") + msg);
  };
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  std::string out;
  try {
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = JDIMENSION(img.width);
    c.image_height = JDIMENSION(img.height);
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality, TRUE);
    // 4:4:4: with the default 4:2:0 a 2-px red stroke bleeds into its neighbours.
    for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
      JSAMPROW row = const_cast<JSAMPROW>(img.rgb.data() + size_t(c.next_scanline) * img.width * 3);
      jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    out.assign(reinterpret_cast<const char*>(buf), size);
  } catch (...) {
    jpeg_destroy_compress(&c);
    std::free(buf);
    throw;
  }
  jpeg_destroy_compress(&c);
  std::free(buf);
  return out;
}

void write_output_image(const OutputImage& im, const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path path = fs::path(dir) / im.name;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  DSVL2_REQUIRE(!ec, "cannot create folder %s: %s", path.parent_path().c_str(), ec.message().c_str());
  // Written under a temporary name and renamed: a job killed mid-write
  // leaves no half image under the final name.
  const std::string ext = path.extension().string();
  if (ext == ".png") {
    const std::string tmp = path.string() + ".tmp";
    ground::save_png(im.image, tmp);
    fs::rename(tmp, path, ec);
    DSVL2_REQUIRE(!ec, "cannot rename %s: %s", tmp.c_str(), ec.message().c_str());
    return;
  }
  DSVL2_REQUIRE(ext == ".jpg" || ext == ".jpeg", "image %s: unknown output format (.png or .jpg)", im.name.c_str());
  write_file(path.string(), encode_jpeg(im.image, detail::kJpegQuality));
}

namespace detail {

Rng record_rng(const TaskContext& ctx, Task task, const AnnotatedImage& img) {
  const std::string key = std::string(task_name(task)) + "/" + img.source + "/" + std::to_string(img.id);
  return Rng(ctx.seed, hash_string(key));
}

std::optional<std::string> clean_text(std::string_view s) {
  if (!utf8::is_valid(s)) return std::nullopt;
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  if (out.empty() || out.size() > 1024) return std::nullopt;
  if (out.find("<|") != std::string::npos || out.find("|>") != std::string::npos ||
      out.find("<image>") != std::string::npos || out.find("<｜") != std::string::npos)
    return std::nullopt;
  return out;
}

std::string original_path(const TaskContext& ctx, const AnnotatedImage& img) {
  if (ctx.original_prefix.empty() || ctx.original_prefix.back() == '/') return ctx.original_prefix + img.file_name;
  return ctx.original_prefix + "/" + img.file_name;
}

static std::string file_path(const TaskContext& ctx, const AnnotatedImage& img) {
  return (std::filesystem::path(ctx.images_dir) / img.file_name).string();
}

void require_image_file(const TaskContext& ctx, const AnnotatedImage& img) {
  std::error_code ec;
  DSVL2_REQUIRE(!img.file_name.empty() && std::filesystem::is_regular_file(file_path(ctx, img), ec),
                "image %lld: file '%s' not found in %s", (long long)img.id, img.file_name.c_str(),
                ctx.images_dir.c_str());
}

Image load_checked(const TaskContext& ctx, const AnnotatedImage& img) {
  require_image_file(ctx, img);
  Image im = load_image(file_path(ctx, img));
  DSVL2_REQUIRE(im.width == img.width && im.height == img.height,
                "image %lld: file %s is %dx%d but the annotations say %dx%d", (long long)img.id,
                img.file_name.c_str(), im.width, im.height, img.width, img.height);
  return im;
}

std::string drawn_name(const AnnotatedImage& img, Task task) {
  std::string src = img.source.empty() ? "img" : img.source;
  // "refcoco+" is a fine file name, but keep names to [A-Za-z0-9_-].
  for (char& c : src)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = c == '+' ? 'p' : '_';
  return "images/" + src + "_" + std::to_string(img.id) + "_" + task_name(task) + kDrawnExt;
}

std::string with_images(std::string_view text, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s.append("<image>\n");
  s.append(text);
  return s;
}

std::vector<const AnnotatedObject*> category_targets(const AnnotatedImage& img, const std::string& name) {
  std::vector<const AnnotatedObject*> out;
  for (const AnnotatedObject& o : img.objects) {
    if (o.category != name) continue;
    if (o.crowd) return {};
    out.push_back(&o);
  }
  return out;
}

std::vector<std::string> present_categories(const AnnotatedImage& img) {
  std::vector<std::string> names;
  for (const AnnotatedObject& o : img.objects)
    if (!o.category.empty()) names.push_back(o.category);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

const AnnotatedObject* find_object(const AnnotatedImage& img, int64_t id) {
  for (const AnnotatedObject& o : img.objects)
    if (o.id == id) return &o;
  return nullptr;
}

GroundedAnswer det_list(const std::vector<const AnnotatedObject*>& objs, int width, int height) {
  std::vector<ground::Box> boxes;
  for (const AnnotatedObject* o : objs) boxes.push_back(o->box);
  GroundedAnswer a;
  std::vector<std::array<int, 4>> enc;
  for (size_t i : answer_order(boxes, width, height)) {
    enc.push_back(encode_box(boxes[i], width, height));
    a.ids.push_back(objs[i]->id);
  }
  a.text = ground::format_boxes(enc);
  return a;
}

GroundedAnswer ground_objects(const std::string& query, const std::vector<const AnnotatedObject*>& objs, int width,
                              int height) {
  GroundedAnswer a = det_list(objs, width, height);
  a.text = "<|ref|>" + query + "<|/ref|><|det|>" + a.text + "<|/det|>";
  return a;
}

void add_turn(Record& r, std::string user, std::vector<std::string> images, std::string answer) {
  r.messages.push_back({"<|User|>", std::move(user), std::move(images)});
  r.messages.push_back({"<|Assistant|>", std::move(answer), {}});
}

}  // namespace detail
}  // namespace dsvl2::synth
