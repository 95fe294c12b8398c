// Training records for DeepSeek-VL2 from annotated images: visual-prompt QA
// (ViP-LLaVA marks), grounding, grounded conversation, in-context grounding
// and negatives (absent categories, erased objects). A record depends only
// on (seed, task, image id): the same inputs give the same bytes whether one
// job or many shards made it.
//
//   TaskContext ctx{&set, images_dir, seed};
//   Record r = make_record(Task::kGround, set.images[i], ctx);   // throws Error for this record only
//   out << record_json(r, "images/") << '\n';
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "image/image.h"
#include "synth/annotations.h"

namespace dsvl2::synth {

enum class Task { kVip, kGround, kGcg, kIcg, kNeg };
const char* task_name(Task t);         // "vip", "ground", "gcg", "icg", "neg"
Task parse_task(const std::string& s);  // Error for others

struct Message {
  std::string role;  // "<|User|>" or "<|Assistant|>"
  std::string content;
  std::vector<std::string> images;  // paths relative to the JSONL file's folder, in <image> order
};

// An image the record needs written beside the JSONL (a drawn mark, an
// erased object); `name` is its path relative to the JSONL file's folder.
struct OutputImage {
  std::string name;
  Image image;
};

struct Record {
  Task task = Task::kGround;
  std::vector<Message> messages;
  std::string source_json;  // {"dataset", "image_id", "annotation_ids", ...} as compact JSON
  std::vector<OutputImage> new_images;
};

// Which images hold a non-crowd instance of each category, so that icg finds
// its second image without scanning the set for every record.
struct TaskIndex {
  std::map<std::string, std::vector<size_t>> images_by_category;  // name -> indices into set.images, ascending
};
TaskIndex build_task_index(const AnnotationSet& set);

struct TaskContext {
  const AnnotationSet* set = nullptr;
  std::string images_dir;  // where AnnotatedImage::file_name lives
  uint64_t seed = 0;
  // Originals are referred to by this path from the JSONL folder (e.g. the
  // images folder made relative); drawn images go under "images/".
  std::string original_prefix;
  // Optional (build_task_index(*set)); without it icg scans the set.
  const TaskIndex* index = nullptr;
};

// Whether `task` can be made from `img` (e.g. gcg needs grounded phrases,
// icg a second image with the same category).
bool applicable(Task task, const AnnotatedImage& img, const TaskContext& ctx);

// One record of `task` for `img`. Throws Error when this image cannot give
// one (a missing image file, a degenerate mask); the caller records the error.
Record make_record(Task task, const AnnotatedImage& img, const TaskContext& ctx);

// {"task", "messages": [{"role", "content", "images"}], "source"} on one line.
std::string record_json(const Record& r);

// Answer text of a grounding record: <|ref|>q<|/ref|><|det|>[[x1, y1, x2, y2], ...]<|/det|>
// with boxes encoded by encode_box (0-999), in reading order (top to bottom,
// then left to right), boxes whose encoding repeats an earlier one dropped.
std::string grounding_answer(const std::string& query, const std::vector<ground::Box>& boxes, int width, int height);
// The order grounding_answer writes `boxes` in: indices into `boxes`,
// duplicates (same encoded box) left out. Records list annotation ids this way.
std::vector<size_t> answer_order(const std::vector<ground::Box>& boxes, int width, int height);
// One pixel coordinate to 0-999, chosen so that the official decoder
// (ground::coord_to_px: int(v / 999 * size)) maps it back as close as it can:
// within one pixel for sides up to 1998 px (docs/synth.md, "Coordinates").
int encode_coord(double v, int size);
std::array<int, 4> encode_box(const ground::Box& b, int width, int height);

// Writes a record's image under `dir` (dir/name), creating folders; the
// format follows the name's extension (.png or .jpg). Throws Error.
void write_output_image(const OutputImage& im, const std::string& dir);
// Baseline JPEG, 4:4:4 (no chroma subsampling, so thin coloured marks keep their colour).
std::string encode_jpeg(const Image& img, int quality);

// The negative answer (documented choice, docs/synth.md): "There is no {query} in the image."
std::string negative_answer(const std::string& query);

}  // namespace dsvl2::synth
