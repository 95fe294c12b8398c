// How deeply a JSON text nests, counted before parsing: nlohmann parses
// iteratively, but what callers later do with the value (dump, copy,
// destruction) recurses, so untrusted text nested deeper than a limit is
// refused up front.
#pragma once
#include <string_view>

namespace dsvl2 {

// Whether no array or object in `text` opens more than max_depth levels deep
// (brackets inside strings, escapes included, do not count).
inline bool json_depth_within(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return false;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return true;
}

}  // namespace dsvl2
