// libFuzzer target for the OCR check of the recaption pipeline: the quote
// extractor (ocr::extract_quotes), the strict reader of OCR JSON
// (ocr::ocr_from_json) and the check itself (ocr::check_caption,
// check_to_json). Build: cmake --preset fuzz && cmake --build build-fuzz
// --target fuzz_ocr_check; run: build-fuzz/fuzz/fuzz_ocr_check
// -dict=fuzz/ocr_check.dict -timeout=10 -rss_limit_mb=2048 CORPUS/ fuzz/corpus_ocr_check
// The input is a caption, a NUL byte, then an OCR JSON document
// ({"lines":[{"text","box","conf","small"}]}); without a NUL the whole input
// is the caption and the OCR found nothing. A document that is not JSON or
// that ocr_from_json refuses (dsvl2::Error) ends the run; a crash, sanitizer
// report, other exception, hang or a result breaking ocr_check.h's promises
// (checked with __builtin_trap) is a bug.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/utf8.h"
#include "ocr/ocr_check.h"
#include "ocr/tesseract_ocr.h"

namespace {

using namespace dsvl2;
using namespace dsvl2::ocr;

void check_quotes(const std::vector<std::string>& quotes) {
  for (const std::string& q : quotes) {
    if (q.empty() || q.size() > 500 || !utf8::is_valid(q)) __builtin_trap();
    if (q.find('\n') != std::string::npos || q.find('\r') != std::string::npos) __builtin_trap();
  }
}

void check_result(std::string_view caption, const OcrResult& ocr, const OcrCheck& c) {
  const CheckOptions o;
  // The quotes are extract_quotes' (which drops invalid bytes itself), in order.
  const std::vector<std::string> quotes = extract_quotes(caption);
  if (c.quotes.size() != quotes.size()) __builtin_trap();
  int matched = 0;
  for (size_t i = 0; i < c.quotes.size(); i++) {
    const QuoteVerdict& q = c.quotes[i];
    if (q.quote != quotes[i]) __builtin_trap();
    if (!(q.similarity >= 0 && q.similarity <= 1)) __builtin_trap();
    if (!utf8::is_valid(q.ocr_span)) __builtin_trap();
    if (q.verdict == "matched") {
      if (q.similarity < o.match) __builtin_trap();
      matched++;
    } else if (q.verdict == "partial") {
      if (q.similarity < o.partial) __builtin_trap();
    } else if (q.verdict == "not_in_image") {
      if (q.similarity >= o.partial) __builtin_trap();
    } else {
      __builtin_trap();
    }
  }
  if (c.correct != matched || c.incorrect != int(c.quotes.size()) - matched) __builtin_trap();

  if (c.lines.size() != ocr.lines.size()) __builtin_trap();
  int not_captured = 0;
  bool any_line = false;
  for (size_t i = 0; i < c.lines.size(); i++) {
    const LineVerdict& l = c.lines[i];
    if (l.text != ocr.lines[i].text) __builtin_trap();
    if (l.verdict == "not_captured") {
      not_captured++;
    } else if (l.verdict != "captured" && l.verdict != "misquoted" && l.verdict != "ignored") {
      __builtin_trap();
    }
    if (l.verdict != "ignored") any_line = true;
    if (ocr.lines[i].conf < o.noise_conf && l.verdict != "ignored") __builtin_trap();
  }
  if (c.not_captured != not_captured) __builtin_trap();

  const std::string want = c.quotes.empty() && !any_line ? "no_text"
                           : c.incorrect > 0             ? "incorrect"
                           : c.not_captured > 0          ? "not_captured"
                                                         : "correct";
  if (c.category != want) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  check_quotes(extract_quotes(bytes));

  const size_t nul = bytes.find('\0');
  const std::string_view caption = bytes.substr(0, nul);
  OcrResult ocr;
  if (nul != std::string_view::npos) {
    nlohmann::json doc;
    try {
      doc = nlohmann::json::parse(bytes.substr(nul + 1));  // strict: invalid UTF-8 is a parse error
    } catch (const nlohmann::json::exception&) {
      return 0;
    }
    try {
      ocr = ocr_from_json(doc);
    } catch (const Error&) {
      return 0;
    }
    // What was read writes back and reads again the same (text, box, small; conf to 0.1).
    const OcrResult again = ocr_from_json(nlohmann::json::parse(ocr_to_json(ocr).dump()));
    if (again.lines.size() != ocr.lines.size()) __builtin_trap();
    for (size_t i = 0; i < ocr.lines.size(); i++) {
      const OcrLine &a = ocr.lines[i], &b = again.lines[i];
      if (a.text != b.text || a.box != b.box || a.small != b.small || std::abs(a.conf - b.conf) > 0.051f)
        __builtin_trap();
    }
  }
  const OcrCheck c = check_caption(caption, ocr);
  check_result(caption, ocr, c);
  const std::string out = check_to_json(c).dump();  // strict: throws on invalid UTF-8
  if (!nlohmann::json::accept(out)) __builtin_trap();
  return 0;
}
