#include "text/added_vocab.h"

#include "core/utf8.h"

namespace dsvl2 {
namespace {

// Rust char::is_whitespace (White_Space property).
bool is_white_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// A word character for single_word: ASCII alphanumerics, '_' and, as an
// approximation of Rust's char::is_alphanumeric, every non-space non-ASCII code point.
bool is_word_char(uint32_t cp) {
  if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
  return !is_white_space(cp);
}

uint32_t last_cp(std::string_view s) {
  size_t st = s.size() - 1;
  while (st > 0 && (uint8_t(s[st]) & 0xC0) == 0x80) st--;
  return utf8::next(s, st);
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view s, int32_t token_index) {
  if (s.empty()) return;
  int32_t node = 0;
  for (char c : s) {
    uint64_t key = (uint64_t(node) << 8) | uint8_t(c);
    auto it = edges.find(key);
    if (it == edges.end()) {
      int32_t nn = int32_t(terminal.size());
      terminal.push_back(-1);
      it = edges.emplace(key, nn).first;
    }
    node = it->second;
  }
  if (terminal[size_t(node)] < 0) terminal[size_t(node)] = token_index;
  first[uint8_t(s[0])] = true;
}

std::pair<int32_t, size_t> AddedVocabulary::Trie::longest(std::string_view text, size_t pos) const {
  int32_t node = 0, best = -1;
  size_t best_end = pos;
  for (size_t i = pos; i < text.size(); i++) {
    auto it = edges.find((uint64_t(node) << 8) | uint8_t(text[i]));
    if (it == edges.end()) break;
    node = it->second;
    if (terminal[size_t(node)] >= 0) {
      best = terminal[size_t(node)];
      best_end = i + 1;
    }
  }
  return {best, best_end};
}

void AddedVocabulary::add(AddedToken t) {
  const auto index = int32_t(tokens_.size());
  by_content_.emplace(t.content, tokens_.size());
  by_id_.emplace(t.id, tokens_.size());
  (t.normalized ? normalized_trie_ : raw_trie_).insert(t.content, index);
  tokens_.push_back(std::move(t));
}

const AddedToken* AddedVocabulary::find(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? nullptr : &tokens_[it->second];
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

void AddedVocabulary::find_matches(const Trie& trie, std::string_view text, size_t base,
                                   std::vector<Segment>& out) const {
  size_t start_offset = 0, pos = 0;
  while (pos < text.size()) {
    if (!trie.first[uint8_t(text[pos])]) {
      pos++;
      continue;
    }
    auto [index, stop] = trie.longest(text, pos);
    if (index < 0) {
      pos++;
      continue;
    }
    const AddedToken& t = tokens_[size_t(index)];
    size_t start = pos;
    pos = stop;  // the automaton resumes after every match, even a skipped one
    if (t.single_word) {
      bool start_ok = start == 0 || !is_word_char(last_cp(text.substr(0, start)));
      size_t j = stop;
      bool stop_ok = stop == text.size() || !is_word_char(utf8::next(text, j));
      if (!start_ok || !stop_ok) continue;
    }
    if (t.lstrip) {
      size_t ns = start;
      while (ns > 0) {
        size_t st = ns - 1;
        while (st > 0 && (uint8_t(text[st]) & 0xC0) == 0x80) st--;
        size_t j = st;
        if (!is_white_space(utf8::next(text, j))) break;
        ns = st;
      }
      start = std::max(ns, start_offset);
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        size_t j = stop;
        if (!is_white_space(utf8::next(text, j))) break;
        stop = j;
      }
    }
    if (start_offset < start) out.push_back({-1, base + start_offset, base + start});
    out.push_back({t.id, base + start, base + stop});
    start_offset = stop;
    pos = std::max(pos, stop);
  }
  if (start_offset < text.size()) out.push_back({-1, base + start_offset, base + text.size()});
}

void AddedVocabulary::split(std::string_view text, std::vector<Segment>& out) const {
  out.clear();
  if (text.empty()) return;
  std::vector<Segment> first;
  find_matches(raw_trie_, text, 0, first);
  for (const Segment& s : first) {
    if (s.id >= 0) {
      out.push_back(s);
    } else {
      // The normalizer is the identity (checked at load), so the normalized
      // pass runs on the raw gap.
      find_matches(normalized_trie_, text.substr(s.begin, s.end - s.begin), s.begin, out);
    }
  }
}

}  // namespace dsvl2
