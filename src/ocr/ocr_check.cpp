#include "ocr/ocr_check.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "ocr/text_match.h"

namespace dsvl2::ocr {
namespace {

std::vector<std::string> split_spaces(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

int word_count(std::u32string_view norm) {
  return norm.empty() ? 0 : 1 + int(std::count(norm.begin(), norm.end(), U' '));
}

struct Best {
  double sim = 0;
  size_t begin = 0, end = 0;  // run of words
};

// The run of `words` (count of `target`'s words ± slack, possibly crossing
// line ends) closest to `target`. Stops early once `enough` is reached.
Best best_run(const std::u32string& target, const std::vector<std::string>& words, int slack, double floor,
              double enough, int64_t& budget) {
  Best best;
  if (target.empty()) return best;
  const int k = word_count(target);
  const int lo = std::max(1, k - slack), hi = k + slack;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string joined;
    for (int n = 1; n <= hi && i + size_t(n) <= words.size(); ++n) {
      joined += (n > 1 ? " " : "") + words[i + size_t(n) - 1];
      if (n < lo) continue;
      if (budget-- <= 0) return best;
      const double s = similarity(target, normalize_text(std::string_view(joined)), std::max(floor, best.sim));
      if (s > best.sim) {
        best = {s, i, i + size_t(n)};
        if (s >= enough) return best;
      }
    }
  }
  return best;
}

std::vector<std::u32string> tokens(const std::u32string& norm) {
  std::vector<std::u32string> out;
  size_t at = 0;
  while (at <= norm.size()) {
    size_t sp = norm.find(U' ', at);
    if (sp == std::u32string::npos) sp = norm.size();
    out.push_back(normalize_text(std::u32string_view(norm).substr(at, sp - at)));
    at = sp + 1;
  }
  return out;
}

// Quote words of two or more letters/digits that the span lacks: no span word
// is `present` similar and the span (spaces removed) does not contain it.
// Catches one word swapped in a long quote, which the whole-string similarity
// forgives ("Live Music Every Friday" vs "... Sunday").
int missing_words(const std::u32string& quote, const std::u32string& span, double present) {
  const std::vector<std::u32string> span_words = tokens(span);
  std::u32string joined;
  for (const std::u32string& w : span_words) joined += w;
  int missing = 0;
  for (const std::u32string& q : tokens(quote)) {
    if (count_word_chars(q) < 2 || joined.find(q) != std::u32string::npos) continue;
    bool found = false;
    for (const std::u32string& w : span_words) found = found || similarity(q, w, present) >= present;
    missing += found ? 0 : 1;
  }
  return missing;
}

std::string join(const std::vector<std::string>& w, size_t b, size_t e) {
  std::string out;
  for (size_t i = b; i < e; ++i) out += (i > b ? " " : "") + w[i];
  return out;
}

}  // namespace

OcrCheck check_caption(std::string_view caption_in, const OcrResult& ocr, const CheckOptions& o) {
  DSVL2_REQUIRE(o.partial >= 0 && o.partial <= o.match && o.match <= 1 && o.line_captured >= 0 &&
                    o.line_captured <= 1 && o.word_present >= 0 && o.word_present <= 1 && o.ngram_slack >= 0 &&
                    o.max_quote_chars > 0,
                "OCR check thresholds: want 0 <= partial <= match <= 1, 0 <= line_captured <= 1");
  const std::string caption = sanitize_utf8(caption_in);
  OcrCheck c;
  // The OCR words in reading order, lines one after another.
  std::vector<std::string> ocr_words;
  std::vector<size_t> line_of;  // of each word
  for (size_t i = 0; i < ocr.lines.size(); ++i) {
    const OcrLine& l = ocr.lines[i];
    if (!l.words.empty()) {
      for (const OcrWord& w : l.words) ocr_words.push_back(w.text);
    } else {
      for (std::string& w : split_spaces(l.text)) ocr_words.push_back(std::move(w));
    }
    line_of.resize(ocr_words.size(), i);
  }
  std::vector<int> line_words(ocr.lines.size(), 0);
  for (size_t k : line_of) line_words[k]++;
  std::vector<int> misquoted_words(ocr.lines.size(), 0);  // words inside a partial quote's span
  int64_t budget = o.max_comparisons;
  std::vector<std::string> quotes = extract_quotes(caption);
  if (quotes.size() > o.max_quotes) quotes.resize(o.max_quotes);
  for (std::string& q : quotes) {
    std::u32string nq = normalize_text(std::string_view(q));
    if (nq.size() > o.max_quote_chars) nq = normalize_text(std::u32string_view(nq).substr(0, o.max_quote_chars));
    if (budget <= 0) {
      c.truncated = true;
      break;
    }
    const Best b = best_run(nq, ocr_words, o.ngram_slack, 0, 1.0, budget);
    QuoteVerdict v;
    v.quote = std::move(q);
    v.similarity = b.sim;
    v.ocr_span = b.end > b.begin ? join(ocr_words, b.begin, b.end) : "";
    const bool all_words =
        b.sim >= o.match && missing_words(nq, normalize_text(std::string_view(v.ocr_span)), o.word_present) == 0;
    v.verdict = all_words ? "matched" : b.sim >= o.partial ? "partial" : "not_in_image";
    (all_words ? c.correct : c.incorrect)++;
    if (v.verdict == "partial")
      for (size_t k = b.begin; k < b.end; ++k) misquoted_words[line_of[k]]++;
    c.quotes.push_back(std::move(v));
  }
  const std::vector<std::string> caption_words = split_spaces(caption);
  for (size_t i = 0; i < ocr.lines.size(); ++i) {
    const OcrLine& l = ocr.lines[i];
    std::u32string nl = normalize_text(std::string_view(l.text));
    if (nl.size() > o.max_quote_chars) nl = normalize_text(std::u32string_view(nl).substr(0, o.max_quote_chars));
    LineVerdict v{l.text, "ignored"};
    if (budget <= 0) c.truncated = true;
    if (i < o.max_lines && budget > 0 && l.conf >= o.noise_conf && count_word_chars(nl) >= o.min_line_chars) {
      const Best b = best_run(nl, caption_words, o.ngram_slack, o.line_captured, 1.0, budget);
      // As for quotes, every word must be there: "... Every Sunday" does not capture "... Every Friday".
      const bool captured =
          b.sim >= o.line_captured &&
          missing_words(nl, normalize_text(std::string_view(join(caption_words, b.begin, b.end))), o.word_present) == 0;
      v.verdict = captured ? "captured" : 2 * misquoted_words[i] > line_words[i] ? "misquoted" : "not_captured";
      if (v.verdict == "not_captured") c.not_captured++;
    }
    c.lines.push_back(std::move(v));
  }
  const bool any_line = std::any_of(c.lines.begin(), c.lines.end(), [](auto& v) { return v.verdict != "ignored"; });
  c.category = c.quotes.empty() && !any_line ? "no_text"
               : c.incorrect > 0             ? "incorrect"
               : c.not_captured > 0          ? "not_captured"
                                             : "correct";
  return c;
}

nlohmann::json check_to_json(const OcrCheck& c) {
  nlohmann::json quotes = nlohmann::json::array(), lines = nlohmann::json::array();
  for (const QuoteVerdict& q : c.quotes)
    quotes.push_back({{"quote", q.quote},
                      {"verdict", q.verdict},
                      {"similarity", std::round(q.similarity * 1000) / 1000},
                      {"ocr_span", q.ocr_span}});
  for (const LineVerdict& l : c.lines) lines.push_back({{"text", l.text}, {"verdict", l.verdict}});
  nlohmann::json j = {{"quotes", std::move(quotes)}, {"lines", std::move(lines)},      {"correct", c.correct},
                      {"incorrect", c.incorrect},    {"not_captured", c.not_captured}, {"category", c.category}};
  if (c.truncated) j["truncated"] = true;
  return j;
}

void OcrCheckTotals::add(const OcrCheck& c, const OcrResult& r) {
  records++;
  correct += c.correct;
  incorrect += c.incorrect;
  not_captured += c.not_captured;
  for (const QuoteVerdict& q : c.quotes)
    (q.verdict == "matched" ? quotes_matched : q.verdict == "partial" ? quotes_partial : quotes_not_in_image)++;
  for (const LineVerdict& l : c.lines)
    (l.verdict == "captured"       ? lines_captured
     : l.verdict == "not_captured" ? lines_not_captured
     : l.verdict == "misquoted"    ? lines_misquoted
                                   : lines_ignored)++;
  for (const OcrLine& l : r.lines) lines_small += l.small ? 1 : 0;
  (c.category == "correct"        ? category_correct
   : c.category == "incorrect"    ? category_incorrect
   : c.category == "not_captured" ? category_not_captured
                                  : category_no_text)++;
}

void OcrCheckTotals::merge(const OcrCheckTotals& o) {
  records += o.records, errors += o.errors;
  correct += o.correct, incorrect += o.incorrect, not_captured += o.not_captured;
  quotes_matched += o.quotes_matched, quotes_partial += o.quotes_partial;
  quotes_not_in_image += o.quotes_not_in_image;
  lines_captured += o.lines_captured, lines_not_captured += o.lines_not_captured;
  lines_ignored += o.lines_ignored, lines_misquoted += o.lines_misquoted, lines_small += o.lines_small;
  category_correct += o.category_correct, category_incorrect += o.category_incorrect;
  category_not_captured += o.category_not_captured, category_no_text += o.category_no_text;
  ocr_seconds += o.ocr_seconds;
}

nlohmann::json totals_to_json(const OcrCheckTotals& t) {
  const auto pct = [](int64_t n, int64_t of) { return of > 0 ? std::round(1000.0 * n / of) / 10 : 0.0; };
  const int64_t items = t.correct + t.incorrect + t.not_captured;
  const int64_t with_text = t.category_correct + t.category_incorrect + t.category_not_captured;
  return {
      {"records", t.records},
      {"errors", t.errors},
      {"items",
       {{"correct", t.correct},
        {"incorrect", t.incorrect},
        {"not_captured", t.not_captured},
        {"percent",
         {{"correct", pct(t.correct, items)},
          {"incorrect", pct(t.incorrect, items)},
          {"not_captured", pct(t.not_captured, items)}}}}},
      {"records_by_category",
       {{"correct", t.category_correct},
        {"incorrect", t.category_incorrect},
        {"not_captured", t.category_not_captured},
        {"no_text", t.category_no_text},
        {"percent_of_records_with_text",
         {{"correct", pct(t.category_correct, with_text)},
          {"incorrect", pct(t.category_incorrect, with_text)},
          {"not_captured", pct(t.category_not_captured, with_text)}}}}},
      {"quotes",
       {{"matched", t.quotes_matched}, {"partial", t.quotes_partial}, {"not_in_image", t.quotes_not_in_image}}},
      {"lines",
       {{"captured", t.lines_captured},
        {"not_captured", t.lines_not_captured},
        {"misquoted", t.lines_misquoted},
        {"ignored", t.lines_ignored},
        {"small", t.lines_small}}},
      {"ocr_seconds", std::round(t.ocr_seconds * 1000) / 1000},
      {"ocr_seconds_per_record", t.records > 0 ? std::round(1e4 * t.ocr_seconds / double(t.records)) / 1e4 : 0.0},
  };
}

}  // namespace dsvl2::ocr
