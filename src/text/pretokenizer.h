// The pre-tokenizer of a tokenizer.json, read from the file: a Sequence of
// Split (Regex or String pattern, any SplitDelimiterBehavior, invert), Digits,
// Whitespace, WhitespaceSplit, Punctuation and ByteLevel steps, applied as HF
// `tokenizers` does (pre_tokenizers/*.rs): each step re-splits every piece
// produced by the step before, and the regex only sees that piece.
#pragma once
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "text/regex.h"

namespace dsvl2 {

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

class PreTokenizer {
 public:
  // Parses tokenizer.json's "pre_tokenizer" (null: no splitting). `where`
  // names the file in errors. Throws Error on unknown or malformed steps.
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& where);

  // Splits `text` into pieces. Pieces point into `text` or into `arena`
  // (ByteLevel add_prefix_space creates new strings).
  void split(std::string_view text, std::vector<std::string_view>& pieces, std::deque<std::string>& arena) const;

  // True when a ByteLevel step is present (required for byte-level BPE).
  bool has_byte_level() const { return has_byte_level_; }

 private:
  struct Step {
    std::shared_ptr<Regex> regex;  // null for the ByteLevel prefix-space step
    SplitBehavior behavior = SplitBehavior::kIsolated;
    bool invert = false;
    bool prefix_space = false;  // ByteLevel add_prefix_space
  };
  void parse(const nlohmann::json& j, const std::string& where, int depth);
  std::vector<Step> steps_;
  bool has_byte_level_ = false;
};

}  // namespace dsvl2
