// Comma lists in flag values ("--tasks vip,ground", "--screen safety,watermark").
#pragma once
#include <string>
#include <vector>

namespace dsvl2::cli {

// "a,b,,c" -> {"a", "b", "", "c"}: empty items are kept for the caller to refuse.
inline std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  for (;;) {
    const size_t next = s.find(sep, at);
    out.push_back(s.substr(at, next - at));
    if (next == std::string::npos) return out;
    at = next + 1;
  }
}

}  // namespace dsvl2::cli
