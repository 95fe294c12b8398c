// PCRE2 regex (UTF + UCP, JIT) with the Oniguruma meaning that HF tokenizers
// (Rust `tokenizers`, onig crate, Ruby syntax) gives to tokenizer.json
// patterns. Differences handled:
//  * `\s` / `\S`: Oniguruma's Unicode \s is the White_Space property, which
//    includes U+0085 (NEL); PCRE2's UCP \s is \p{Xps} and does not. The pattern
//    is rewritten to an explicit class before compiling.
//  * `^` / `$` are line anchors in Ruby syntax: compiled with PCRE2_MULTILINE.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2 {

class Regex {
 public:
  // literal = true matches `pattern` as a plain string (HF Split {"String": ..}).
  Regex(const std::string& pattern, bool literal = false);  // throws Error
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends the (begin, end) byte offsets of all non-overlapping matches in
  // `subject` (valid UTF-8), as the onig crate's find_iter walks them.
  void find_all(std::string_view subject, std::vector<std::pair<size_t, size_t>>& out) const;

  // The pattern after the Oniguruma rewrite (for tests and error messages).
  static std::string onig_to_pcre2(std::string_view pattern);

 private:
  void* code_ = nullptr;  // pcre2_code_8
  std::string pattern_;
};

}  // namespace dsvl2
