// Reproduces the box semantics of DeepSeek-VL2's serve/app_modules/utils.py:
// parse_ref_bbox, with a strict hand-written scanner in place of its regexes
// and eval(). See grounding_parser.h for the grammar and the differences.
#include "ground/grounding_parser.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ground/prompts.h"

namespace dsvl2::ground {
namespace {

enum class Tag { kNone, kRefOpen, kRefClose, kDetOpen, kDetClose };  // Tag::k* vs the k* strings

struct TagAt {
  size_t pos;
  Tag tag;
};

size_t tag_len(Tag t) {
  switch (t) {
    case Tag::kRefOpen:
      return kRefOpen.size();
    case Tag::kRefClose:
      return kRefClose.size();
    case Tag::kDetOpen:
      return kDetOpen.size();
    case Tag::kDetClose:
      return kDetClose.size();
    case Tag::kNone:
      return 0;
  }
  return 0;
}

// The first of the four grounding tags at or after `from`.
TagAt next_tag(std::string_view s, size_t from) {
  for (size_t p = s.find("<|", from); p != std::string_view::npos; p = s.find("<|", p + 1)) {
    std::string_view rest = s.substr(p);
    if (rest.starts_with(kRefOpen)) return {p, Tag::kRefOpen};
    if (rest.starts_with(kRefClose)) return {p, Tag::kRefClose};
    if (rest.starts_with(kDetOpen)) return {p, Tag::kDetOpen};
    if (rest.starts_with(kDetClose)) return {p, Tag::kDetClose};
  }
  return {s.size(), Tag::kNone};
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Cuts at most `cap` bytes without splitting a UTF-8 sequence; marks the cut.
std::string cap_text(std::string_view s, size_t cap) {
  if (s.size() <= cap) return std::string(s);
  size_t n = cap;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

std::string describe_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7F) return strformat("unexpected character '%c'", c);
  return strformat("unexpected byte 0x%02X", u);
}

// Parses the inside of one <|det|> block; returns the reason on failure.
class BlockParser {
 public:
  BlockParser(std::string_view s, const ParseLimits& lim) : s_(s), lim_(lim) {}

  std::optional<std::string> parse(std::vector<std::array<int, 4>>& boxes) {
    skip_ws();
    if (at_end()) return "empty <|det|> block";
    if (peek() != '[') {
      if (is_digit(peek())) return "boxes must be a list of lists: [[x1, y1, x2, y2], ...]";
      return describe_char(peek()) + ", expected '[' to open the box list";
    }
    ++i_;
    skip_ws();
    if (!at_end() && peek() == ']') return "empty box list";
    for (;;) {
      skip_ws();
      if (at_end()) return "box list not closed, expected '['";
      if (peek() != '[') {
        if (is_digit(peek())) return "boxes must be a list of lists: [[x1, y1, x2, y2], ...]";
        if (peek() == ']') return "trailing comma in box list";
        return describe_char(peek()) + ", expected '[' to open a box";
      }
      ++i_;
      std::array<int, 4> box{};
      if (auto err = parse_box(box)) return err;
      if (int(boxes.size()) >= lim_.max_boxes_per_block)
        return strformat("too many boxes in one block (limit %d)", lim_.max_boxes_per_block);
      boxes.push_back(box);
      skip_ws();
      if (at_end()) return "box list not closed, expected ']'";
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == ']') {
        ++i_;
        break;
      }
      return describe_char(peek()) + " after a box, expected ',' or ']'";
    }
    skip_ws();
    if (!at_end()) return describe_char(peek()) + " after the box list";
    return std::nullopt;
  }

 private:
  std::optional<std::string> parse_box(std::array<int, 4>& box) {
    int n = 0;
    skip_ws();
    if (!at_end() && peek() == ']') return "empty box, expected 4 values";
    for (;;) {
      skip_ws();
      if (at_end()) return "box not closed";
      char c = peek();
      if (c == '-') return "negative coordinate";
      if (c == '[') return "unexpected '[': boxes nest exactly two levels deep";
      if (c == ']') return "trailing comma in box";
      if (!is_digit(c)) return describe_char(c) + ", expected a coordinate";
      size_t start = i_;
      while (!at_end() && is_digit(peek())) {
        ++i_;
        if (int(i_ - start) > lim_.max_digits) return strformat("digit run longer than %d", lim_.max_digits);
      }
      if (!at_end() && (peek() == '.' || peek() == 'e' || peek() == 'E')) return "non-integer coordinate";
      int v = 0;
      for (size_t k = start; k < i_; ++k) v = v * 10 + (s_[k] - '0');
      if (v > 999) return strformat("coordinate %d out of range 0-999", v);
      if (n >= 4) return "box has more than 4 values";
      box[n++] = v;
      skip_ws();
      if (at_end()) return "box not closed";
      if (peek() == ',') {
        ++i_;
        continue;
      }
      if (peek() == ']') {
        ++i_;
        break;
      }
      return describe_char(peek()) + " in box, expected ',' or ']'";
    }
    if (n != 4) return strformat("box has %d values, expected 4", n);
    return std::nullopt;
  }

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  void skip_ws() {
    while (!at_end() && is_ws(peek())) ++i_;
  }

  std::string_view s_;
  const ParseLimits& lim_;
  size_t i_ = 0;
};

}  // namespace

int coord_to_px(int v, int size) {
  // Python: int(box[0] / 999 * image_w). Both steps in double, then truncation.
  double x = double(v) / 999.0 * double(size);
  return int(std::trunc(x));
}

ParseResult parse_grounding(std::string_view text, int width, int height, const ParseLimits& lim) {
  ParseResult r;
  width = std::max(width, 0);
  height = std::max(height, 0);
  auto add_error = [&](std::string_view t, std::string reason) {
    if (r.errors.size() < lim.max_errors) r.errors.push_back({cap_text(t, lim.max_error_text), std::move(reason)});
  };
  std::optional<std::string> label;
  bool objects_capped = false;
  size_t i = 0;
  while (i < text.size()) {
    TagAt t = next_tag(text, i);
    if (t.tag == Tag::kNone) break;
    size_t body = t.pos + tag_len(t.tag);
    switch (t.tag) {
      case Tag::kRefClose:
        add_error(kRefClose, "<|/ref|> without an opening <|ref|>");
        i = body;
        break;
      case Tag::kDetClose:
        add_error(kDetClose, "<|/det|> without an opening <|det|>");
        i = body;
        break;
      case Tag::kRefOpen: {
        TagAt end = next_tag(text, body);
        if (end.tag != Tag::kRefClose) {
          // A broken ref cannot name the boxes after it, so they get no label.
          add_error(text.substr(t.pos, end.pos - t.pos), "unterminated <|ref|>");
          label.reset();
          i = end.pos;
        } else if (end.pos - body > lim.max_label_bytes) {
          add_error(text.substr(t.pos, end.pos + kRefClose.size() - t.pos),
                    strformat("label longer than %zu bytes", lim.max_label_bytes));
          label.reset();
          i = end.pos + kRefClose.size();
        } else {
          label = std::string(text.substr(body, end.pos - body));
          i = end.pos + kRefClose.size();
        }
        break;
      }
      case Tag::kDetOpen: {
        TagAt end = next_tag(text, body);
        if (end.tag != Tag::kDetClose) {
          add_error(text.substr(t.pos, end.pos - t.pos), "unterminated <|det|>");
          i = end.pos;
          break;
        }
        size_t stop = end.pos + kDetClose.size();
        std::string_view block = text.substr(t.pos, stop - t.pos);
        i = stop;
        if (end.pos - body > lim.max_block_bytes) {
          add_error(block, strformat("<|det|> block longer than %zu bytes", lim.max_block_bytes));
          break;
        }
        std::vector<std::array<int, 4>> boxes;
        if (auto err = BlockParser(text.substr(body, end.pos - body), lim).parse(boxes)) {
          add_error(block, *err);
          break;
        }
        for (const auto& b : boxes) {
          if (r.objects.size() >= lim.max_objects) {
            if (!objects_capped)
              add_error(block, strformat("more than %zu objects, the rest dropped", lim.max_objects));
            objects_capped = true;
            break;
          }
          GroundedObject o;
          o.label = label;
          o.box = b;
          o.box_px = {coord_to_px(b[0], width), coord_to_px(b[1], height), coord_to_px(b[2], width),
                      coord_to_px(b[3], height)};
          r.objects.push_back(std::move(o));
        }
        break;
      }
      case Tag::kNone:
        break;
    }
  }
  return r;
}

nlohmann::ordered_json to_json(const ParseResult& r) {
  using Json = nlohmann::ordered_json;
  Json objs = Json::array(), errs = Json::array();
  for (const auto& o : r.objects) {
    Json j;
    j["label"] = o.label ? Json(*o.label) : Json(nullptr);
    j["box"] = o.box;
    j["box_px"] = o.box_px;
    objs.push_back(std::move(j));
  }
  for (const auto& e : r.errors) {
    Json j;
    j["text"] = e.text;
    j["reason"] = e.reason;
    errs.push_back(std::move(j));
  }
  Json out;
  out["objects"] = std::move(objs);
  out["errors"] = std::move(errs);
  return out;
}

std::string to_json_string(const ParseResult& r) {
  return to_json(r).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string format_boxes(const std::vector<std::array<int, 4>>& boxes) {
  std::string s = "[";
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    if (i) s += ", ";
    s += strformat("[%d, %d, %d, %d]", b[0], b[1], b[2], b[3]);
  }
  return s + "]";
}

std::array<int, 4> normalise_box(double x1, double y1, double x2, double y2, int width, int height) {
  DSVL2_REQUIRE(width > 0 && height > 0, "normalise_box: image size %dx%d must be positive", width, height);
  auto norm = [](double v, int size) {
    double x = std::round(v / double(size) * 999.0);
    if (!(x >= 0)) return 0;  // also NaN
    return x > 999 ? 999 : int(x);
  };
  return {norm(x1, width), norm(y1, height), norm(x2, width), norm(y2, height)};
}

// ---- RunawayGuard ----

void RunawayGuard::reset() { *this = RunawayGuard(limits_); }

void RunawayGuard::stop(std::string why) {
  if (stopped_) return;
  stopped_ = true;
  reason_ = std::move(why);
}

void RunawayGuard::on_byte(char c) {
  tail_.push_back(c);
  if (tail_.size() > 8) tail_.erase(0, tail_.size() - 8);
  std::string_view tail(tail_);
  switch (state_) {
    case State::kText:
      if (tail.ends_with(kDetOpen)) {
        state_ = State::kDet;
        block_bytes_ = digits_ = depth_ = boxes_ = 0;
      } else if (tail.ends_with(kRefOpen)) {
        state_ = State::kRef;
        block_bytes_ = 0;
      }
      return;
    case State::kRef:
      if (tail.ends_with(kRefClose)) {
        state_ = State::kText;
      } else if (++block_bytes_ > limits_.max_label_bytes + kRefClose.size()) {
        stop(strformat("<|ref|> label longer than %zu bytes", limits_.max_label_bytes));
      }
      return;
    case State::kDet:
      if (tail.ends_with(kDetClose)) {
        state_ = State::kText;
        return;
      }
      if (++block_bytes_ > limits_.max_block_bytes + kDetClose.size()) {
        stop(strformat("<|det|> block longer than %zu bytes without <|/det|>", limits_.max_block_bytes));
        return;
      }
      if (is_digit(c)) {
        if (++digits_ > limits_.max_digits) stop(strformat("number longer than %d digits", limits_.max_digits));
        return;
      }
      digits_ = 0;
      if (c == '[') {
        if (++depth_ > 2) stop("brackets nested deeper than [[...]]");
      } else if (c == ']') {
        if (depth_ == 2 && ++boxes_ > limits_.max_boxes)
          stop(strformat("more than %d boxes in one <|det|> block", limits_.max_boxes));
        if (depth_ > 0) --depth_;
      }
      return;
  }
}

bool RunawayGuard::feed(std::string_view piece) {
  for (char c : piece) {
    if (stopped_) break;
    on_byte(c);
  }
  return stopped_;
}

}  // namespace dsvl2::ground
