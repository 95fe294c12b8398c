// Brace expansion: the pattern is parsed into a tree (text, lists, ranges),
// its size is counted with saturation before anything is built, and only then
// expanded, so "{0..999999999}" is refused without allocating a billion names.
#include "dataset/braces.h"

#include <charconv>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace dsvl2::dataset {

namespace {

struct Tok {
  char c;
  bool escaped;
};

struct Range {
  int64_t from = 0, to = 0, step = 1;
  int width = 0;  // zero padding, counting a minus sign as bash does
  bool alpha = false;
};

struct Node;
using Seq = std::vector<Node>;
struct Node {
  enum Kind { kText, kList, kRange } kind = kText;
  std::string text;
  std::vector<Seq> alts;
  Range range;
};

class Parser {
 public:
  explicit Parser(const std::string& pattern) : pattern_(pattern) {
    for (size_t i = 0; i < pattern.size(); i++) {
      if (pattern[i] == '\\' && i + 1 < pattern.size()) {
        toks_.push_back({pattern[++i], true});
      } else {
        toks_.push_back({pattern[i], false});
      }
    }
  }

  Seq parse() { return parse_seq(0, toks_.size()); }

 private:
  bool is(size_t i, char c) const { return toks_[i].c == c && !toks_[i].escaped; }

  // The '}' closing the '{' at `open`, or npos.
  size_t matching(size_t open, size_t end) const {
    int depth = 0;
    for (size_t i = open; i < end; i++) {
      if (is(i, '{')) depth++;
      if (is(i, '}') && --depth == 0) return i;
    }
    return std::string::npos;
  }

  Seq parse_seq(size_t begin, size_t end) {
    Seq seq;
    std::string text;
    auto flush = [&] {
      if (!text.empty()) seq.push_back(Node{Node::kText, std::move(text), {}, {}});
      text.clear();
    };
    for (size_t i = begin; i < end; i++) {
      if (is(i, '}')) DSVL2_FAIL("%s: unbalanced '}' in the file name pattern", pattern_.c_str());
      if (!is(i, '{')) {
        text += toks_[i].c;
        continue;
      }
      const size_t close = matching(i, end);
      if (close == std::string::npos) DSVL2_FAIL("%s: unbalanced '{' in the file name pattern", pattern_.c_str());
      flush();
      // Bounded so that a hostile pattern cannot exhaust the stack.
      if (++depth_ > 64) DSVL2_FAIL("%s: braces nested more than 64 deep", pattern_.c_str());
      group(i + 1, close, seq);
      depth_--;
      i = close;
    }
    flush();
    return seq;
  }

  // The inside of one brace pair: a list, a range, or literal braces around
  // whatever the inside expands to (bash keeps "{x}" as it is).
  void group(size_t begin, size_t end, Seq& seq) {
    std::vector<size_t> commas;
    int depth = 0;
    for (size_t i = begin; i < end; i++) {
      if (is(i, '{')) depth++;
      if (is(i, '}')) depth--;
      if (depth == 0 && is(i, ',')) commas.push_back(i);
    }
    if (!commas.empty()) {
      Node list{Node::kList, {}, {}, {}};
      size_t from = begin;
      commas.push_back(end);
      for (size_t c : commas) {
        list.alts.push_back(parse_seq(from, c));
        from = c + 1;
      }
      seq.push_back(std::move(list));
      return;
    }
    Range r;
    if (parse_range(begin, end, r)) {
      seq.push_back(Node{Node::kRange, {}, {}, r});
      return;
    }
    seq.push_back(Node{Node::kText, "{", {}, {}});
    for (Node& n : parse_seq(begin, end)) seq.push_back(std::move(n));
    seq.push_back(Node{Node::kText, "}", {}, {}});
  }

  // "M..N" or "M..N..STEP" (integers), or "a..e" (single letters).
  bool parse_range(size_t begin, size_t end, Range& r) const {
    std::string s;
    for (size_t i = begin; i < end; i++) {
      if (toks_[i].escaped) return false;
      s += toks_[i].c;
    }
    std::vector<std::string> parts;
    for (size_t at = 0;;) {
      const size_t dots = s.find("..", at);
      parts.push_back(s.substr(at, dots == std::string::npos ? std::string::npos : dots - at));
      if (dots == std::string::npos) break;
      at = dots + 2;
    }
    if (parts.size() != 2 && parts.size() != 3) return false;
    auto is_int = [](const std::string& p) {
      const size_t d = (!p.empty() && p[0] == '-') ? 1 : 0;
      if (p.size() == d) return false;
      for (size_t i = d; i < p.size(); i++)
        if (p[i] < '0' || p[i] > '9') return false;
      return true;
    };
    auto is_letter = [](const std::string& p) {
      return p.size() == 1 && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z'));
    };
    if (parts.size() == 3 && !is_int(parts[2])) return false;
    if (is_int(parts[0]) && is_int(parts[1])) {
      r.from = to_int(parts[0]);
      r.to = to_int(parts[1]);
      for (const std::string& p : {parts[0], parts[1]}) {
        const size_t d = p[0] == '-' ? 1 : 0;
        if (p.size() > d + 1 && p[d] == '0') r.width = int(std::max(parts[0].size(), parts[1].size()));
      }
    } else if (is_letter(parts[0]) && is_letter(parts[1])) {
      r.alpha = true;
      r.from = parts[0][0];
      r.to = parts[1][0];
    } else {
      return false;
    }
    if (parts.size() == 3) {
      r.step = std::llabs(to_int(parts[2]));
      if (r.step == 0) DSVL2_FAIL("%s: a range step of 0 in the file name pattern", pattern_.c_str());
    }
    return true;
  }

  int64_t to_int(const std::string& p) const {
    int64_t v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    // Bounds under 1e15 keep every later difference and count far from overflow.
    if (ec != std::errc() || end != p.data() + p.size() || std::llabs(v) > 1'000'000'000'000'000LL)
      DSVL2_FAIL("%s: range bound %s is too large in the file name pattern", pattern_.c_str(), p.c_str());
    return v;
  }

  const std::string& pattern_;
  std::vector<Tok> toks_;
  int depth_ = 0;
};

// Sizes saturate just above the limit, so huge patterns cannot overflow.
constexpr uint64_t kCap = kMaxBraceExpansion + 1;
uint64_t sat_mul(uint64_t a, uint64_t b) { return (a == 0 || b == 0) ? 0 : (a > kCap / b ? kCap : std::min(kCap, a * b)); }
uint64_t sat_add(uint64_t a, uint64_t b) { return std::min(kCap, a + b); }

uint64_t range_size(const Range& r) {
  const uint64_t span = uint64_t(r.to >= r.from ? r.to - r.from : r.from - r.to);
  return span / uint64_t(r.step) + 1;
}

uint64_t count(const Seq& seq);
uint64_t count(const Node& n) {
  switch (n.kind) {
    case Node::kText: return 1;
    case Node::kRange: return std::min(kCap, range_size(n.range));
    case Node::kList: {
      uint64_t total = 0;
      for (const Seq& s : n.alts) total = sat_add(total, count(s));
      return total;
    }
  }
  return 1;
}
uint64_t count(const Seq& seq) {
  uint64_t total = 1;
  for (const Node& n : seq) total = sat_mul(total, count(n));
  return total;
}

std::string format_number(int64_t v, int width) {
  std::string digits = std::to_string(v < 0 ? -v : v);
  const int pad = width - int(digits.size()) - (v < 0 ? 1 : 0);
  std::string out(v < 0 ? 1 : 0, '-');
  out.append(pad > 0 ? size_t(pad) : 0, '0');
  return out.append(digits);
}

std::vector<std::string> expand(const Seq& seq);
std::vector<std::string> expand(const Node& n) {
  std::vector<std::string> out;
  switch (n.kind) {
    case Node::kText:
      out.push_back(n.text);
      break;
    case Node::kRange: {
      const int64_t dir = n.range.to >= n.range.from ? 1 : -1;
      const uint64_t size = range_size(n.range);
      for (uint64_t i = 0; i < size; i++) {
        const int64_t v = n.range.from + dir * int64_t(i) * n.range.step;
        out.push_back(n.range.alpha ? std::string(1, char(v)) : format_number(v, n.range.width));
      }
      break;
    }
    case Node::kList:
      for (const Seq& s : n.alts)
        for (std::string& e : expand(s)) out.push_back(std::move(e));
      break;
  }
  return out;
}
std::vector<std::string> expand(const Seq& seq) {
  std::vector<std::string> out{""};
  for (const Node& n : seq) {
    const std::vector<std::string> tails = expand(n);
    std::vector<std::string> next;
    next.reserve(out.size() * tails.size());
    for (const std::string& head : out)
      for (const std::string& tail : tails) next.push_back(head + tail);
    out = std::move(next);
  }
  return out;
}

}  // namespace

std::vector<std::string> expand_braces(const std::string& pattern) {
  const Seq seq = Parser(pattern).parse();
  const uint64_t n = count(seq);
  if (n > kMaxBraceExpansion)
    DSVL2_FAIL_KIND(kTooLong, "%s: expands to more than %zu names", pattern.c_str(), kMaxBraceExpansion);
  return expand(seq);
}

}  // namespace dsvl2::dataset
