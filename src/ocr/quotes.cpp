// extract_quotes (ocr_check.h): the quoted strings of a caption.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "ocr/ocr_check.h"
#include "ocr/text_match.h"

namespace dsvl2::ocr {
namespace {

constexpr size_t kMaxQuoteBytes = 500;

bool opens_word(char32_t prev) {  // what may stand before an opening mark
  return prev == 0 || prev == U' ' || prev == U'\t' || prev == U'\n' || prev == U'(' || prev == U'[' || prev == U'{' ||
         prev == U'-' || prev == 0x2014 || prev == 0x2013 || prev == U'/' || prev == U':';
}

bool is_blank(char32_t c) { return c == 0 || c == U' ' || c == U'\t' || c == U'\n' || c == U'\r'; }

struct Text {
  std::u32string s;
  char32_t at(size_t i) const { return i < s.size() ? s[i] : 0; }
  char32_t before(size_t i) const { return i > 0 ? s[i - 1] : 0; }
};

// The closing marks that end a quote opened by `open`.
bool closes(char32_t open, char32_t c) {
  switch (open) {
    case U'"':
    case 0x201c:
    case 0x201e:
      return c == U'"' || c == 0x201d || c == 0x201c;
    case 0xab:
      return c == 0xbb;
    case U'\'':
    case 0x2018:
      return c == U'\'' || c == 0x2019;
    default:
      return false;
  }
}

bool is_open_mark(char32_t c, bool single) {
  return single ? (c == U'\'' || c == 0x2018) : (c == U'"' || c == 0x201c || c == 0x201e || c == 0xab);
}

// An opening mark starts a word: something that is not a space follows, and
// (for the marks that are also closers or apostrophes) a space, the start or
// an opening bracket precedes.
bool can_open(const Text& t, size_t i) {
  const char32_t c = t.at(i);
  if (is_blank(t.at(i + 1))) return false;
  if (c == 0x201e || c == 0xab) return true;  // never a closer
  return opens_word(t.before(i));
}

// A closing mark ends a word: it follows a non-space and is not followed by a
// letter or digit (the apostrophe of don't is).
bool can_close(const Text& t, size_t i) { return !is_blank(t.before(i)) && !is_word_char(t.at(i + 1)); }

using Span = std::pair<size_t, size_t>;  // content [first, second)

// Pairs the marks of one kind, skipping [covered) spans. A mark that could
// open a quote while one is already open restarts it there: quotes do not
// nest, and the earlier mark was an apostrophe ('90s) or a stray.
std::vector<Span> pair_marks(const Text& t, bool single, const std::vector<Span>& covered) {
  std::vector<Span> out;
  size_t cover = 0;
  size_t open_at = SIZE_MAX, bytes = 0;
  for (size_t i = 0; i < t.s.size(); ++i) {
    while (cover < covered.size() && covered[cover].second < i) ++cover;
    if (cover < covered.size() && i >= covered[cover].first && i <= covered[cover].second) {
      open_at = SIZE_MAX;  // a single quote does not span a double-quoted one
      continue;
    }
    const char32_t c = t.s[i];
    if (open_at != SIZE_MAX) {
      bytes += encode_utf8(std::u32string_view(&c, 1)).size();
      if (c == U'\n' || c == U'\r' || bytes > kMaxQuoteBytes) {
        open_at = SIZE_MAX;
        continue;
      }
      if (closes(t.s[open_at], c) && can_close(t, i)) {
        out.emplace_back(open_at + 1, i);
        open_at = SIZE_MAX;
        continue;
      }
    }
    if (is_open_mark(c, single) && can_open(t, i)) open_at = i, bytes = 0;
  }
  return out;
}

}  // namespace

std::vector<std::string> extract_quotes(std::string_view caption) {
  Text t{decode_utf8(caption)};
  std::vector<Span> doubles = pair_marks(t, false, {});
  // Outer spans include the marks themselves, so that a single quote cannot
  // start on a double quote's closing mark.
  std::vector<Span> covered;
  for (auto [b, e] : doubles) covered.emplace_back(b - 1, e);
  std::vector<Span> singles = pair_marks(t, true, covered);
  std::vector<Span> all = doubles;
  all.insert(all.end(), singles.begin(), singles.end());
  std::sort(all.begin(), all.end());
  std::vector<std::string> out;
  for (const Span& sp : all) {
    const std::u32string_view q(t.s.data() + sp.first, sp.second - sp.first);
    const int chars = count_word_chars(q);
    const bool single = t.s[sp.first - 1] == U'\'' || t.s[sp.first - 1] == 0x2018;
    if (chars < (single ? 2 : 1)) continue;  // 'n' of rock 'n' roll; "..." or "?"
    out.push_back(encode_utf8(q));
  }
  return out;
}

}  // namespace dsvl2::ocr
