// Helpers shared by the task generators (tasks_*.cpp); not a public interface.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"
#include "synth/tasks.h"

namespace dsvl2::synth::detail {

// Drawn and erased images are JPEG (docs/synth.md, "Image format"): the
// extension and the quality in one place.
inline constexpr const char* kDrawnExt = ".jpg";
inline constexpr int kJpegQuality = 95;

// The record's random stream: a function of (seed, task, source, image id) only.
Rng record_rng(const TaskContext& ctx, Task task, const AnnotatedImage& img);

// A query or answer text fit for a record: whitespace runs collapsed to one
// space, trimmed; nullopt when empty, not UTF-8, or holding a special token
// ("<|...|>", "<image>") that would change the prompt's structure.
std::optional<std::string> clean_text(std::string_view s);

// Path of an original image as the JSONL refers to it (original_prefix + file).
std::string original_path(const TaskContext& ctx, const AnnotatedImage& img);
// Throws Error when the image file is missing (records must not point at nothing).
void require_image_file(const TaskContext& ctx, const AnnotatedImage& img);
// Loads the image and checks its size against the annotation. Throws Error.
Image load_checked(const TaskContext& ctx, const AnnotatedImage& img);
// "images/<source>_<id>_<task><ext>"
std::string drawn_name(const AnnotatedImage& img, Task task);

// "<image>\n" x n + text: the DeepSeek template's placeholders, in image order.
std::string with_images(std::string_view text, int n);

// Non-crowd objects whose category is `name`, or empty when the image has a
// crowd annotation of it (then "every instance" has no exact box list).
std::vector<const AnnotatedObject*> category_targets(const AnnotatedImage& img, const std::string& name);
// Distinct category names of the image's objects (crowd included), sorted.
std::vector<std::string> present_categories(const AnnotatedImage& img);
const AnnotatedObject* find_object(const AnnotatedImage& img, int64_t id);

// The grounding answer for `objs` and the ids in answer order.
struct GroundedAnswer {
  std::string text;
  std::vector<int64_t> ids;
};
GroundedAnswer ground_objects(const std::string& query, const std::vector<const AnnotatedObject*>& objs, int width,
                              int height);
// "[[x1, y1, x2, y2], ...]" of `objs` in answer order, and their ids.
GroundedAnswer det_list(const std::vector<const AnnotatedObject*>& objs, int width, int height);

// One user turn and one assistant turn.
void add_turn(Record& r, std::string user, std::vector<std::string> images, std::string answer);

// The generators, one file each (tasks_<task>.cpp).
Record make_vip(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng);
Record make_ground(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng);
Record make_gcg(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng);
Record make_icg(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng);
Record make_neg(const AnnotatedImage& img, const TaskContext& ctx, Rng& rng);
bool vip_applicable(const AnnotatedImage& img);
bool ground_applicable(const AnnotatedImage& img);
bool gcg_applicable(const AnnotatedImage& img);
bool icg_applicable(const AnnotatedImage& img, const TaskContext& ctx);
bool neg_applicable(const AnnotatedImage& img, const TaskContext& ctx);

}  // namespace dsvl2::synth::detail
