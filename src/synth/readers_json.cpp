// Streaming JSON: a byte filter in front of nlohmann's lexer (the limits it
// cannot enforce itself) and a SAX handler that builds one record at a time.
#include "synth/readers_json.h"

#include <algorithm>
#include <iterator>

#include "core/error.h"
#include "core/file.h"

namespace dsvl2::synth {

namespace {

using nlohmann::json;

bool is_gap_char(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '[' || c == ']' || c == '{' || c == '}' ||
         c == ',' || c == ':';
}

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return 0;  // the lexer rejects it
}

// Feeds the mapped file to the lexer byte by byte while tracking just enough
// lexical state to bound what the lexer buffers: a string longer than the
// limit is cut at a character boundary (never inside an escape, a UTF-8
// sequence or a surrogate pair, so the lexer still accepts it) and flagged;
// an over-long number or gap ends the input, which the parser reports as an
// error and cut_reason() explains.
class GuardedInput {
 public:
  GuardedInput(const char* data, size_t size, const JsonLimits& limits)
      : data_(data), end_(size), limits_(limits) {}

  bool at_end() const { return pos_ >= end_; }
  char current() const { return data_[pos_]; }
  size_t pos() const { return pos_; }
  const std::string& cut_reason() const { return cut_reason_; }
  bool take_truncated() {
    bool t = truncated_;
    truncated_ = false;
    return t;
  }

  void advance() {
    observe(static_cast<unsigned char>(data_[pos_]));
    ++pos_;
    if (in_string_ && escape_ == 0 && !pending_low_ && string_bytes_ >= limits_.max_string_bytes && pos_ < end_) {
      auto next = static_cast<unsigned char>(data_[pos_]);
      if (next != '"' && (next & 0xC0) != 0x80) skip_rest_of_string();
    }
  }

 private:
  static constexpr int kEscapeStart = 5;  // after a backslash; then 4 hex digits for \u

  void observe(unsigned char c) {
    if (in_string_) {
      ++string_bytes_;
      if (escape_ == kEscapeStart) {
        escape_ = c == 'u' ? 4 : 0;
        hex_ = 0;
        if (escape_ == 0) pending_low_ = false;
      } else if (escape_ > 0) {
        hex_ = hex_ * 16 + hex_value(c);
        if (--escape_ == 0) pending_low_ = hex_ >= 0xD800 && hex_ <= 0xDBFF;
      } else if (c == '\\') {
        escape_ = kEscapeStart;
      } else if (c == '"') {
        in_string_ = false;
        gap_ = 0;
      } else {
        pending_low_ = false;
      }
      return;
    }
    if (c == '"') {
      in_string_ = true;
      string_bytes_ = 0;
      escape_ = 0;
      pending_low_ = false;
      gap_ = token_ = 0;
    } else if (is_gap_char(c)) {
      token_ = 0;
      if (++gap_ > limits_.max_gap_bytes) cut(strformat("more than %zu bytes of whitespace and brackets at byte %zu",
                                                        limits_.max_gap_bytes, pos_));
    } else {
      gap_ = 0;
      if (++token_ > limits_.max_token_chars)
        cut(strformat("a number or literal longer than %zu characters at byte %zu", limits_.max_token_chars, pos_));
    }
  }

  // Jumps to the closing quote: the lexer sees the string's first bytes only.
  void skip_rest_of_string() {
    while (pos_ < end_) {
      char ch = data_[pos_];
      if (ch == '\\') {
        pos_ += 2;
      } else if (ch == '"') {
        break;
      } else {
        ++pos_;
      }
    }
    pos_ = std::min(pos_, end_);
    truncated_ = true;
  }

  void cut(std::string reason) {
    if (cut_reason_.empty()) cut_reason_ = std::move(reason);
    end_ = pos_ + 1;  // this byte is the last the lexer gets
  }

  const char* data_;
  size_t pos_ = 0, end_;
  JsonLimits limits_;
  bool in_string_ = false, pending_low_ = false, truncated_ = false;
  int escape_ = 0;
  unsigned hex_ = 0;
  size_t string_bytes_ = 0, gap_ = 0, token_ = 0;
  std::string cut_reason_;
};

// The iterator nlohmann's iterator_input_adapter reads through.
struct GuardedIterator {
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = char;

  GuardedInput* in = nullptr;  // nullptr: the end
  char operator*() const { return in->current(); }
  GuardedIterator& operator++() {
    in->advance();
    return *this;
  }
  GuardedIterator operator++(int) {
    GuardedIterator old = *this;
    in->advance();
    return old;
  }
  bool done() const { return in == nullptr || in->at_end(); }
  bool operator==(const GuardedIterator& o) const { return done() == o.done(); }
};

// SAX handler: tracks the depth of open containers; inside a record it builds
// the record's DOM (as nlohmann's json_sax_dom_parser does: a stack of the open
// containers and the object slot the next value goes to). A record that
// breaks a limit is "poisoned": building stops, parsing goes on, and the
// record is passed on with its problem.
class StreamHandler {
 public:
  StreamHandler(GuardedInput& in, const JsonLimits& limits, const std::vector<std::string>& sections,
                const JsonRecordFn& on_record, const JsonKeyFn& on_top_key)
      : in_(in), limits_(limits), sections_(sections), on_record_(on_record), on_top_key_(on_top_key) {}

  // Every event first checks whether the input was cut: the token that
  // completes after a cut (a number read up to the cut) is not trusted.
  bool null() { return live() && scalar(json(nullptr)); }
  bool boolean(bool b) { return live() && scalar(json(b)); }
  bool number_integer(json::number_integer_t v) { return live() && scalar(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return live() && scalar(json(v)); }
  bool number_float(json::number_float_t v, const std::string&) { return live() && scalar(json(v)); }
  bool string(std::string& s) {
    if (!live()) return false;
    check_truncated();
    return scalar(json(std::move(s)));
  }
  bool binary(json::binary_t&) { return live() && scalar(json(nullptr)); }  // never produced by JSON text
  bool start_object(std::size_t) { return live() && open(json::value_t::object); }
  bool start_array(std::size_t) { return live() && open(json::value_t::array); }
  bool end_object() { return live() && close(); }
  bool end_array() { return live() && close(); }

  bool key(std::string& k) {
    if (!live()) return false;
    if (in_record_) {
      check_truncated();
      if (!poisoned_ && count_value()) slot_ = &(*stack_.back())[k];
      return true;
    }
    in_.take_truncated();  // a skipped member's key: nothing to reject
    if (top_is_object_ && depth_ == 1) {
      pending_key_ = k;
      if (on_top_key_ && !on_top_key_(k)) return stop();
    }
    return true;
  }

  bool parse_error(std::size_t pos, const std::string&, const nlohmann::detail::exception& e) {
    if (!in_.cut_reason().empty()) {
      stopped_ = in_.cut_reason();
    } else {
      std::string what = e.what();
      if (what.size() > 200) what = what.substr(0, 200) + "...";
      stopped_ = strformat("JSON syntax error near byte %zu: %s", pos, what.c_str());
    }
    return false;
  }

  bool top_is_object() const { return top_is_object_; }
  size_t records() const { return records_; }
  const std::string& stopped() const { return stopped_; }
  const std::string& shape_error() const { return shape_error_; }
  bool stopped_by_caller() const { return stopped_by_caller_; }

 private:
  bool live() {
    if (in_.cut_reason().empty()) return true;
    stopped_ = in_.cut_reason();
    return false;
  }

  bool is_section(const std::string& k) const {
    return std::find(sections_.begin(), sections_.end(), k) != sections_.end();
  }

  bool open(json::value_t type) {
    if (depth_ == 0) {
      top_is_object_ = type == json::value_t::object;
      depth_ = 1;
      if (!top_is_object_) record_level_ = 1;
      return true;
    }
    if (in_record_) {
      ++depth_;
      ++record_depth_;
      if (poisoned_) return true;
      if (record_depth_ > limits_.max_record_depth) {
        poison(strformat("nested deeper than %d levels", limits_.max_record_depth));
      } else if (count_value()) {
        stack_.push_back(add(json(type)));
      }
      return true;
    }
    if (depth_ == record_level_) {
      if (!begin_record()) return false;
      ++depth_;
      record_depth_ = 1;
      root_ = json(type);
      stack_.push_back(&root_);
      return true;
    }
    ++depth_;
    if (top_is_object_ && depth_ == 2 && is_section(pending_key_)) {
      if (type != json::value_t::array) return shape(strformat("\"%s\" is not an array", pending_key_.c_str()));
      record_level_ = 2;
      section_ = pending_key_;
      index_ = 0;
    }
    return true;
  }

  bool close() {
    --depth_;
    if (in_record_) {
      --record_depth_;
      if (!poisoned_) stack_.pop_back();
      return record_depth_ == 0 ? finish_record() : true;
    }
    if (depth_ < record_level_) record_level_ = -1;  // the records' array closed
    return true;
  }

  bool scalar(json v) {
    if (depth_ == 0) return shape("the top level is not an object or array");
    if (in_record_) {
      if (!poisoned_ && count_value()) add(std::move(v));
      return true;
    }
    if (depth_ == record_level_) {
      if (!begin_record()) return false;
      root_ = std::move(v);
      return finish_record();
    }
    if (top_is_object_ && depth_ == 1 && is_section(pending_key_))
      return shape(strformat("\"%s\" is not an array", pending_key_.c_str()));
    return true;
  }

  // Places v in the innermost open container; returns where it went.
  json* add(json v) {
    json* back = stack_.back();
    if (back->is_array()) {
      back->push_back(std::move(v));
      return &back->back();
    }
    *slot_ = std::move(v);
    return slot_;
  }

  bool count_value() {
    if (++record_values_ > limits_.max_record_values)
      poison(strformat("more than %zu values", limits_.max_record_values));
    return !poisoned_;
  }

  void check_truncated() {
    if (in_.take_truncated() && in_record_ && !poisoned_)
      poison(strformat("a string longer than %zu bytes", limits_.max_string_bytes));
  }

  void poison(std::string why) {
    poisoned_ = true;
    problem_ = std::move(why);
    stack_.clear();
    root_ = nullptr;
  }

  bool begin_record() {
    if (records_ >= limits_.max_records) {
      stopped_ = strformat("more than %zu records", limits_.max_records);
      return false;
    }
    in_record_ = true;
    poisoned_ = false;
    problem_.clear();
    record_values_ = 1;
    stack_.clear();
    return true;
  }

  bool finish_record() {
    JsonRecord r;
    r.section = section_;
    r.index = index_++;
    r.problem = std::move(problem_);
    if (!poisoned_) r.value = std::move(root_);
    root_ = nullptr;
    in_record_ = false;
    ++records_;
    return on_record_(r) ? true : stop();
  }

  bool shape(std::string why) {
    shape_error_ = std::move(why);
    return false;
  }
  bool stop() {
    stopped_by_caller_ = true;
    return false;
  }

  GuardedInput& in_;
  const JsonLimits& limits_;
  const std::vector<std::string>& sections_;
  const JsonRecordFn& on_record_;
  const JsonKeyFn& on_top_key_;

  int64_t depth_ = 0;         // containers open
  int64_t record_level_ = -1;  // depth at which values are records; -1: none
  bool top_is_object_ = false;
  std::string pending_key_, section_;
  size_t index_ = 0, records_ = 0;

  bool in_record_ = false, poisoned_ = false;
  int64_t record_depth_ = 0;
  size_t record_values_ = 0;
  json root_;
  std::vector<json*> stack_;
  json* slot_ = nullptr;
  std::string problem_;

  std::string stopped_, shape_error_;
  bool stopped_by_caller_ = false;
};

}  // namespace

JsonStreamResult stream_json(const std::string& path, const std::vector<std::string>& sections,
                             const JsonRecordFn& on_record, const JsonKeyFn& on_top_key, const JsonLimits& limits) {
  // A read-only map: the page cache holds the bytes, not our heap, and pages
  // already parsed can be dropped by the kernel.
  MappedFile file(path);
  GuardedInput in(reinterpret_cast<const char*>(file.data()), file.size(), limits);
  StreamHandler handler(in, limits, sections, on_record, on_top_key);
  GuardedIterator first{&in}, last{};
  json::sax_parse(first, last, &handler);
  if (!handler.shape_error().empty()) DSVL2_FAIL("%s: %s", path.c_str(), handler.shape_error().c_str());
  JsonStreamResult r;
  r.top_is_object = handler.top_is_object();
  r.records = handler.records();
  if (!handler.stopped_by_caller()) r.stopped = handler.stopped();
  return r;
}

}  // namespace dsvl2::synth
