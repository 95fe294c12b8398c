#include "text/pretokenizer.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;
using Span = std::pair<size_t, size_t>;

// The GPT-2 pattern that ByteLevel uses when use_regex is true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

SplitBehavior parse_behavior(const json& j, const std::string& where) {
  if (!j.is_string()) DSVL2_FAIL("%s: pre_tokenizer behavior must be a string", where.c_str());
  const std::string s = j.get<std::string>();
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  DSVL2_FAIL("%s: unknown split behavior '%s'", where.c_str(), s.c_str());
}

bool get_bool(const json& j, const char* key, bool def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) DSVL2_FAIL("%s: pre_tokenizer field '%s' must be a boolean", where.c_str(), key);
  return it->get<bool>();
}

// pattern.rs + normalizer.rs split(): matches -> (span, is_match) covering the
// piece, then the behavior folds them. Empty pieces are dropped.
void split_piece(std::string_view piece, const Regex& re, SplitBehavior behavior, bool invert,
                 std::vector<Span>& matches, std::vector<std::pair<Span, bool>>& parts, std::vector<Span>& out) {
  matches.clear();
  parts.clear();
  re.find_all(piece, matches);
  size_t prev = 0;
  for (auto [b, e] : matches) {
    if (prev != b) parts.push_back({{prev, b}, invert});
    parts.push_back({{b, e}, !invert});
    prev = e;
  }
  if (prev != piece.size()) parts.push_back({{prev, piece.size()}, invert});

  const size_t first = out.size();
  bool prev_match = false;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (auto& [sp, m] : parts) out.push_back(sp);
      break;
    case SplitBehavior::kRemoved:
      for (auto& [sp, m] : parts)
        if (!m) out.push_back(sp);
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (auto& [sp, m] : parts) {
        if (m && !prev_match && out.size() > first) {
          out.back().second = sp.second;
        } else {
          out.push_back(sp);
        }
        prev_match = m;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = parts.size(); k-- > 0;) {
        auto& [sp, m] = parts[k];
        if (m && !prev_match && out.size() > first) {
          out.back().first = sp.first;
        } else {
          out.push_back(sp);
        }
        prev_match = m;
      }
      std::reverse(out.begin() + long(first), out.end());
      break;
    case SplitBehavior::kContiguous:
      for (auto& [sp, m] : parts) {
        if (m == prev_match && out.size() > first) {
          out.back().second = sp.second;
        } else {
          out.push_back(sp);
        }
        prev_match = m;
      }
      break;
  }
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const json& j, const std::string& where) {
  PreTokenizer p;
  if (!j.is_null()) p.parse(j, where, 0);
  return p;
}

void PreTokenizer::parse(const json& j, const std::string& where, int depth) {
  if (depth > 8) DSVL2_FAIL("%s: pre_tokenizer nested too deeply", where.c_str());
  if (!j.is_object()) DSVL2_FAIL("%s: pre_tokenizer must be an object", where.c_str());
  auto t = j.find("type");
  if (t == j.end() || !t->is_string()) DSVL2_FAIL("%s: pre_tokenizer without a string 'type'", where.c_str());
  const std::string type = t->get<std::string>();
  if (type == "Sequence") {
    auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) DSVL2_FAIL("%s: Sequence pre_tokenizer needs a 'pretokenizers' array", where.c_str());
    for (const auto& s : *it) parse(s, where, depth + 1);
  } else if (type == "Split") {
    auto pat = j.find("pattern");
    if (pat == j.end() || !pat->is_object()) DSVL2_FAIL("%s: Split pre_tokenizer needs a 'pattern' object", where.c_str());
    Step s;
    if (auto r = pat->find("Regex"); r != pat->end() && r->is_string()) {
      s.regex = std::make_shared<Regex>(r->get<std::string>());
    } else if (auto st = pat->find("String"); st != pat->end() && st->is_string()) {
      if (st->get<std::string>().empty()) DSVL2_FAIL("%s: Split pattern String is empty", where.c_str());
      s.regex = std::make_shared<Regex>(st->get<std::string>(), /*literal=*/true);
    } else {
      DSVL2_FAIL("%s: Split pattern must have a string 'Regex' or 'String'", where.c_str());
    }
    auto b = j.find("behavior");
    if (b == j.end()) DSVL2_FAIL("%s: Split pre_tokenizer without 'behavior'", where.c_str());
    s.behavior = parse_behavior(*b, where);
    s.invert = get_bool(j, "invert", false, where);
    steps_.push_back(std::move(s));
  } else if (type == "ByteLevel") {
    has_byte_level_ = true;
    if (get_bool(j, "add_prefix_space", true, where)) steps_.push_back(Step{nullptr, {}, false, true});
    if (get_bool(j, "use_regex", true, where))
      steps_.push_back(Step{std::make_shared<Regex>(kGpt2Pattern), SplitBehavior::kIsolated, false, false});
  } else if (type == "Digits") {
    // digits.rs: char::is_numeric, each digit alone or runs of digits.
    bool individual = get_bool(j, "individual_digits", false, where);
    steps_.push_back(Step{std::make_shared<Regex>("\\p{N}"),
                          individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous, false, false});
  } else if (type == "Whitespace") {
    // whitespace.rs: keep the matches of \w+|[^\w\s]+ (Invert + Removed).
    steps_.push_back(Step{std::make_shared<Regex>("\\w+|[^\\w\\s]+"), SplitBehavior::kRemoved, true, false});
  } else if (type == "WhitespaceSplit") {
    steps_.push_back(Step{std::make_shared<Regex>("\\s+"), SplitBehavior::kRemoved, false, false});
  } else if (type == "Punctuation") {
    SplitBehavior beh = SplitBehavior::kIsolated;
    if (auto b = j.find("behavior"); b != j.end()) beh = parse_behavior(*b, where);
    steps_.push_back(Step{std::make_shared<Regex>("[\\p{P}!-/:-@\\[-`{-~]"), beh, false, false});
  } else {
    DSVL2_FAIL("%s: unsupported pre_tokenizer type '%s'", where.c_str(), type.c_str());
  }
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& pieces,
                         std::deque<std::string>& arena) const {
  pieces.clear();
  if (text.empty()) return;
  pieces.push_back(text);
  std::vector<std::string_view> next;
  std::vector<Span> matches, spans;
  std::vector<std::pair<Span, bool>> parts;
  for (const Step& st : steps_) {
    next.clear();
    for (std::string_view p : pieces) {
      if (!st.regex) {  // ByteLevel add_prefix_space
        if (p.empty() || p.front() != ' ') {
          std::string& s = arena.emplace_back(1, ' ');
          s.append(p.data(), p.size());
          next.push_back(s);
        } else {
          next.push_back(p);
        }
        continue;
      }
      spans.clear();
      split_piece(p, *st.regex, st.behavior, st.invert, matches, parts, spans);
      for (auto [b, e] : spans)
        if (e > b) next.push_back(p.substr(b, e - b));
    }
    pieces.swap(next);
  }
}

}  // namespace dsvl2
