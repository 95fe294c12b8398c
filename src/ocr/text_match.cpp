#include "ocr/text_match.h"

#include <algorithm>
#include <vector>

#include "core/utf8.h"

namespace dsvl2::ocr {
namespace {

// Decodes one code point at s[i]; returns its length, or 0 when the bytes
// there are not a valid sequence.
size_t decode_one(std::string_view s, size_t i, char32_t* out) {
  const size_t n = utf8::sequence_length(s, i);
  if (n > 0) {
    size_t at = i;
    *out = char32_t(utf8::next(s, at));
  }
  return n;
}

char32_t lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c < 0xc0) return c;
  if (c <= 0xde) return c == 0xd7 ? c : c + 32;  // Latin-1 (× stays)
  if (c >= 0x100 && c <= 0x17f) {                // Latin Extended-A: upper/lower pairs
    if (c == 0x178) return 0xff;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c + 1 : c;
    if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17f) return c;
    return (c & 1) ? c : c + 1;
  }
  if (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) return c + 32;  // Greek
  if (c >= 0x410 && c <= 0x42f) return c + 32;                // Cyrillic
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}

bool is_space(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
         c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

// Appends the matching form of c (before lower-casing and space folding).
void fold(char32_t c, std::u32string& out) {
  switch (c) {
    case 0x2018:
    case 0x2019:
    case 0x201a:
    case 0x201b:
    case 0x2032:
    case 0x2035:
    case 0x60:
    case 0xb4:
    case 0x2039:
    case 0x203a:
      out += U'\'';
      return;
    case 0x201c:
    case 0x201d:
    case 0x201e:
    case 0x201f:
    case 0x2033:
    case 0x2036:
    case 0xab:
    case 0xbb:
      out += U'"';
      return;
    case 0x2212:
    case 0xfe58:
    case 0xfe63:
    case 0xff0d:
      out += U'-';
      return;
    case 0x2026:
      out += U"...";
      return;
    case 0xfb00:
      out += U"ff";
      return;
    case 0xfb01:
      out += U"fi";
      return;
    case 0xfb02:
      out += U"fl";
      return;
    case 0xfb03:
      out += U"ffi";
      return;
    case 0xfb04:
      out += U"ffl";
      return;
    case 0xfb05:
    case 0xfb06:
      out += U"st";
      return;
    case 0xad:
    case 0x200b:
    case 0x200c:
    case 0x200d:
    case 0x2060:
    case 0xfeff:
      return;  // invisible
    default:
      break;
  }
  if (c >= 0x2010 && c <= 0x2015)
    c = U'-';
  else if (c >= 0xff01 && c <= 0xff5e)
    c -= 0xfee0;  // full-width ASCII
  out += c;
}

}  // namespace

bool valid_utf8(std::string_view s) { return utf8::is_valid(s); }

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = utf8::sequence_length(s, i);
    if (n > 0) out.append(s.substr(i, n));
    i += n > 0 ? n : 1;  // an invalid byte is dropped
  }
  return out;
}

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = decode_one(s, i, &cp);
    if (n == 0) {
      ++i;
      continue;
    }
    out += cp;
    i += n;
  }
  return out;
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s)
    if (c <= 0x10ffff && (c < 0xd800 || c > 0xdfff)) utf8::append(out, uint32_t(c));  // not encodable: dropped
  return out;
}

bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (c < 0xc0 || c == 0xd7 || c == 0xf7) return false;  // Latin-1 punctuation and symbols
  if (c >= 0x2000 && c <= 0x2bff) return false;          // punctuation, arrows, maths, shapes, dingbats
  if (c >= 0x3000 && c <= 0x303f) return false;          // CJK punctuation
  if (c >= 0xfe30 && c <= 0xfe6f) return false;          // compatibility punctuation
  if (c >= 0xff00 && c <= 0xff0f) return false;          // full-width punctuation
  if (c >= 0x1f000 && c <= 0x1faff) return false;        // emoji and pictographs
  if (c == 0xfeff || c == 0xfffd) return false;
  return true;
}

int count_word_chars(std::u32string_view s) { return int(std::count_if(s.begin(), s.end(), is_word_char)); }

std::u32string normalize_text(std::u32string_view s) {
  std::u32string folded;
  folded.reserve(s.size());
  for (char32_t c : s) fold(c, folded);
  std::u32string out;
  out.reserve(folded.size());
  bool pending_space = false;
  for (char32_t c : folded) {
    if (is_space(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += U' ';
    pending_space = false;
    out += lower(c);
  }
  size_t b = 0, e = out.size();
  while (b < e && !is_word_char(out[b])) ++b;
  while (e > b && !is_word_char(out[e - 1])) --e;
  return out.substr(b, e - b);
}

int edit_distance(std::u32string_view a, std::u32string_view b) {
  if (a.size() < b.size()) std::swap(a, b);  // the row runs over the shorter
  std::vector<int> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = int(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int diag = row[0];
    row[0] = int(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int up = row[j];
      row[j] = std::min({up + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

int edit_distance_within(std::u32string_view a, std::u32string_view b, int max_d) {
  if (a.size() < b.size()) std::swap(a, b);
  const int n = int(a.size()), m = int(b.size());
  if (n - m > max_d) return max_d + 1;
  if (max_d >= n) return edit_distance(a, b);
  // Only cells within max_d of the diagonal can lie on a path of cost <=
  // max_d (Ukkonen's band): O(max_d * n) instead of O(n * m), and a row whose
  // every cell is over max_d ends the search.
  const int kBig = max_d + 1;
  std::vector<int> row(size_t(m) + 1, kBig);
  for (int j = 0; j <= std::min(m, max_d); ++j) row[size_t(j)] = j;
  for (int i = 1; i <= n; ++i) {
    const int lo = std::max(1, i - max_d), hi = std::min(m, i + max_d);
    int diag = lo - 1 >= 0 ? row[size_t(lo - 1)] : kBig;
    row[size_t(lo - 1)] = lo - 1 == 0 && i <= max_d ? i : kBig;
    int best = row[size_t(lo - 1)];
    for (int j = lo; j <= hi; ++j) {
      const int up = row[size_t(j)];
      const int v = std::min({up + 1, row[size_t(j - 1)] + 1, diag + (a[size_t(i - 1)] == b[size_t(j - 1)] ? 0 : 1)});
      row[size_t(j)] = std::min(v, kBig);
      diag = up;
      best = std::min(best, row[size_t(j)]);
    }
    if (hi < m) row[size_t(hi + 1)] = kBig;
    if (best > max_d) return kBig;
  }
  return std::min(row[size_t(m)], kBig);
}

namespace {

double ratio(std::u32string_view a, std::u32string_view b, double at_least) {
  const size_t m = std::max(a.size(), b.size());
  if (m == 0) return 1;
  const size_t diff = a.size() > b.size() ? a.size() - b.size() : b.size() - a.size();
  if (1.0 - double(diff) / double(m) < at_least) return 0;  // cannot reach it
  // A distance over max_d would give a ratio under at_least: not worth knowing.
  const int max_d = at_least <= 0 ? int(m) : int((1.0 - at_least) * double(m) + 1e-9);
  const int d = edit_distance_within(a, b, max_d);
  return d > max_d ? 0 : 1.0 - double(d) / double(m);
}

std::u32string without_spaces(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s)
    if (c != U' ') out += c;
  return out;
}

}  // namespace

double similarity(std::u32string_view a, std::u32string_view b, double at_least) {
  double best = ratio(a, b, at_least);
  if (best < 1 && (a.find(U' ') != a.npos || b.find(U' ') != b.npos))
    best = std::max(best, ratio(without_spaces(a), without_spaces(b), std::max(at_least, best)));
  return best;
}

}  // namespace dsvl2::ocr
