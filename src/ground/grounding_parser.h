// Strict parser for DeepSeek-VL2 grounding output, and a runaway guard for
// use while the model is still generating.
//
// Grammar (official format, paper section 3.2 and README):
//   <|ref|>LABEL<|/ref|><|det|>[[x1, y1, x2, y2], [x1, y1, x2, y2], ...]<|/det|>
// with 0-999 integer coordinates relative to the image. Whitespace (spaces,
// tabs, newlines) is allowed between any two tokens inside <|det|>.
//
// Semantics, compared with the official demo (serve/app_modules/utils.py:
// parse_ref_bbox, which pairs regex matches and eval()s the boxes):
//  * One object per box, in output order. Its label is the text of the nearest
//    preceding <|ref|>...<|/ref|> (verbatim, not trimmed), or nullopt when no
//    ref precedes it. The official code instead zips refs with dets and gives
//    up entirely when their counts differ; we keep every well-formed block.
//  * Pixel mapping is the official one, in double precision then truncated:
//      X = int(v / 999 * W),  Y = int(v / 999 * H)
//    on the ORIGINAL image size (v / 999 first, then times W, as Python does).
//  * A malformed <|det|> block produces no objects, only an error naming the
//    block's text and the reason; malformed never means "evaluated". Stray or
//    unterminated tags are errors too. Parsing never throws on any input.
//
//   ParseResult r = parse_grounding(text, image.width, image.height);
//   for (auto& o : r.objects) ... o.label, o.box[0..3], o.box_px[0..3]
#pragma once
#include <array>
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2::ground {

struct GroundedObject {
  std::optional<std::string> label;
  std::array<int, 4> box{};     // x1, y1, x2, y2 in 0-999
  std::array<int, 4> box_px{};  // mapped to pixels of the original image
};

struct ParseError {
  std::string text;    // the offending text (capped at ParseLimits::max_error_text bytes)
  std::string reason;  // e.g. "coordinate out of range 0-999"
};

struct ParseResult {
  std::vector<GroundedObject> objects;
  std::vector<ParseError> errors;
};

struct ParseLimits {
  int max_digits = 6;              // longer digit runs are rejected without converting them
  int max_boxes_per_block = 100;   // per <|det|> block
  size_t max_block_bytes = 16384;  // between <|det|> and <|/det|>
  size_t max_label_bytes = 4096;   // between <|ref|> and <|/ref|>
  size_t max_objects = 10000;      // in one output
  size_t max_errors = 1000;        // later errors are dropped
  size_t max_error_text = 256;     // bytes of offending text quoted in an error
};

// Maps a 0-999 coordinate to pixels exactly as the official demo: int(v / 999 * size).
int coord_to_px(int v, int size);

// Parses model output. width/height are the original image size (>= 0).
ParseResult parse_grounding(std::string_view text, int width, int height, const ParseLimits& limits = {});

// {"objects": [{"label": STR|null, "box": [..], "box_px": [..]}], "errors": [{"text":..,"reason":..}]}
// with the keys in that order.
nlohmann::ordered_json to_json(const ParseResult& r);
// The JSON text; invalid UTF-8 in labels is replaced by U+FFFD, never thrown on.
std::string to_json_string(const ParseResult& r);

// Serialises boxes in the official format "[[x1, y1, x2, y2], ...]" (", " separators).
std::string format_boxes(const std::vector<std::array<int, 4>>& boxes);
// Normalises a pixel box to 0-999: round(v / size * 999), clamped (an OPEN choice: round, not floor).
std::array<int, 4> normalise_box(double x1, double y1, double x2, double y2, int width, int height);

// Runaway guard, fed the generated text piece by piece (pieces may split tags
// anywhere). It watches only the inside of an open <|det|> (and <|ref|>) block
// and says stop when the block cannot become well formed within the limits:
//  * a digit run longer than max_digits (4: "9999" is already out of range),
//  * more than max_boxes boxes in one block,
//  * bracket depth above 2 (the format nests exactly [[...]]),
//  * more than max_block_bytes bytes without <|/det|>,
//  * a <|ref|> label longer than max_label_bytes without <|/ref|>.
// After a stop, feed() keeps returning true until reset().
class RunawayGuard {
 public:
  struct Limits {
    int max_digits = 4;
    int max_boxes = 100;
    size_t max_block_bytes = 4096;  // 100 boxes of "[999, 999, 999, 999], " are ~2.2 KB
    size_t max_label_bytes = 1024;
  };
  RunawayGuard() : RunawayGuard(Limits{}) {}
  explicit RunawayGuard(Limits limits) : limits_(limits) {}

  // Returns true when generation should stop.
  bool feed(std::string_view piece);
  bool stopped() const { return stopped_; }
  const std::string& reason() const { return reason_; }
  bool in_det_block() const { return state_ == State::kDet; }
  void reset();

 private:
  enum class State { kText, kRef, kDet };
  void stop(std::string why);
  void on_byte(char c);

  Limits limits_;
  State state_ = State::kText;
  std::string tail_;  // last bytes seen, to match tags split across pieces
  size_t block_bytes_ = 0;
  int digits_ = 0, depth_ = 0, boxes_ = 0;
  bool stopped_ = false;
  std::string reason_;
};

}  // namespace dsvl2::ground
