#include "recaption/postprocess.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <regex>

namespace dsvl2::recaption {
namespace {

// std::regex is enough here: captions are a few hundred bytes and these run
// once per caption, off the model's critical path.
const std::regex& phone_re() {
  static const std::regex re(R"((^|[^0-9A-Za-z])((\+?1[ .-]?)?(\([0-9]{3}\)[ .-]?|[0-9]{3}[ .-])[0-9]{3}[ .-][0-9]{4})(?![0-9A-Za-z]))");
  return re;
}
const std::regex& ssn_re() {
  static const std::regex re(R"((^|[^0-9A-Za-z])([0-9]{3}-[0-9]{2}-[0-9]{4})(?![0-9A-Za-z]))");
  return re;
}

// Replaces group 2 of every match, keeping the boundary character of group 1.
bool replace_all(std::string& text, const std::regex& re, const char* with) {
  std::string out;
  bool found = false;
  auto begin = std::sregex_iterator(text.begin(), text.end(), re);
  size_t at = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const size_t start = size_t(m.position(2));
    out.append(text, at, start - at);
    out += with;
    at = start + size_t(m.length(2));
    found = true;
  }
  if (!found) return false;
  out.append(text, at, std::string::npos);
  text = std::move(out);
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; }

// `word` at a word start in `text` (so "map" does not match "bitmap"); a
// prefix of a longer word counts ("photograph" in "photographic").
bool has_word_prefix(std::string_view text, std::string_view word) {
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1))
    if (at == 0 || !word_char(text[at - 1])) return true;
  return false;
}
bool has_word(std::string_view text, std::string_view word) {
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const size_t end = at + word.size();
    if ((at == 0 || !word_char(text[at - 1])) && (end == text.size() || !word_char(text[end]))) return true;
  }
  return false;
}

struct StyleRule {
  const char* cls;
  std::vector<std::string_view> prefixes;  // lower case, at word starts ("photograph" in "photographic")
  std::vector<std::string_view> words;     // lower case, whole words ("map" but not "mapping")
  std::vector<std::string_view> exact;     // case-sensitive whole words ("CG" but not "cg")
};
const std::array<StyleRule, 5>& style_rules() {
  static const std::array<StyleRule, 5> rules = {{
      // Word forms spelled out where a prefix would catch other words
      // ("drawer", "tablecloth", "plotted land" is fine, "plotter" is not).
      {"Photographs", {"photograph"}, {}, {}},
      {"3D Rendering", {"render", "3-dimensional"}, {"3d"}, {}},
      {"Digital Art", {"digital", "vector", "raster"}, {}, {"CGI", "CG"}},
      {"Painting & Drawings", {"paint", "sketch", "comic"},
       {"draw", "draws", "drawn", "drawing", "drawings", "anime"}, {}},
      {"Charts & Diagrams", {"chart", "diagram"}, {"plot", "plots", "table", "tables", "map", "maps"}, {}},
  }};
  return rules;
}

const char* classify(std::string_view text) {
  const std::string low = lower(text);
  for (const StyleRule& r : style_rules()) {
    for (std::string_view p : r.prefixes)
      if (has_word_prefix(low, p)) return r.cls;
    for (std::string_view w : r.words)
      if (has_word(low, w)) return r.cls;
    for (std::string_view w : r.exact)
      if (has_word(text, w)) return r.cls;
  }
  return nullptr;
}

std::vector<std::string_view> sentences(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); i++) {
    const bool end = text[i] == '.' || text[i] == '!' || text[i] == '?' || text[i] == '\n';
    if (end && (i + 1 == text.size() || std::isspace(static_cast<unsigned char>(text[i + 1])))) {
      out.push_back(text.substr(start, i + 1 - start));
      start = i + 1;
    }
  }
  if (start < text.size()) out.push_back(text.substr(start));
  return out;
}

}  // namespace

Redaction redact_pii(std::string_view caption) {
  Redaction r{std::string(caption), {}};
  // SSNs first: 123-45-6789 is not a phone number, but check it before the
  // phone pattern could take part of a longer run.
  const bool ssn = replace_all(r.text, ssn_re(), "[SSN]");
  if (replace_all(r.text, phone_re(), "[PHONE]")) r.kinds.push_back("phone");
  if (ssn) r.kinds.push_back("ssn");
  return r;
}

std::string style_class(std::string_view caption) {
  // The style sentence: the prompts ask the model to name the style, which
  // it does in a sentence of its own ("The style of the image is ...").
  for (std::string_view s : sentences(caption)) {
    const std::string low = lower(s);
    if (has_word_prefix(low, "style") || has_word(low, "medium"))
      if (const char* c = classify(s)) return c;
  }
  if (const char* c = classify(caption)) return c;
  return "Other";
}

std::string strip_caption_prefix(std::string_view caption) {
  // Spaces and quote marks the model may put around the prefix.
  auto skip = [&](size_t i) {
    for (;;) {
      if (i < caption.size() && (caption[i] == ' ' || caption[i] == '\n' || caption[i] == '"' || caption[i] == '\'')) {
        i++;
      } else if (caption.substr(i, 2) == "\xe2\x80" && i + 2 < caption.size() &&
                 (uint8_t(caption[i + 2]) >= 0x98 && uint8_t(caption[i + 2]) <= 0x9d)) {
        i += 3;  // U+2018..U+201D, the curly quotes
      } else {
        return i;
      }
    }
  };
  constexpr std::string_view kPrefix = "this image displays";
  size_t i = skip(0);
  if (lower(caption.substr(i, kPrefix.size())) != kPrefix) return std::string(caption);
  i = skip(i + kPrefix.size());
  if (i < caption.size() && caption[i] == ':') i++;
  std::string out(caption.substr(skip(i)));
  if (!out.empty()) out[0] = char(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

}  // namespace dsvl2::recaption
