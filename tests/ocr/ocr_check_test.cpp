// check_caption on hand-made OCR results (no engine): verdicts, categories,
// the JSON contracts and the run totals.
#include "ocr/ocr_check.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dsvl2::ocr {
namespace {

OcrLine line(std::string text, std::array<int, 4> box = {10, 10, 200, 40}, float conf = 95) {
  OcrLine l;
  l.text = std::move(text);
  l.box = box;
  l.conf = conf;
  l.small = std::min(box[2] - box[0], box[3] - box[1]) < 15;
  return l;
}

OcrResult result(std::vector<OcrLine> lines) {
  OcrResult r;
  r.lines = std::move(lines);
  return r;
}

TEST(OcrCheck, QuoteVerdicts) {
  const OcrResult r = result({line("GRAND OPENING"), line("Live Music Every Friday"), line("Sale 50% Of")});
  const OcrCheck c = check_caption(
      "This image displays: “Grand Opening” at the top, \"Live Music Every Sunday\" below, 'Sale 50% Off' and "
      "“Free Parking” nowhere.",
      r);
  ASSERT_EQ(c.quotes.size(), 4u);
  EXPECT_EQ(c.quotes[0].verdict, "matched");  // case differs only
  EXPECT_DOUBLE_EQ(c.quotes[0].similarity, 1.0);
  EXPECT_EQ(c.quotes[0].ocr_span, "GRAND OPENING");
  // One word swapped: the whole string is 0.87 similar, but "sunday" is not in the span.
  EXPECT_EQ(c.quotes[1].verdict, "partial");
  EXPECT_GT(c.quotes[1].similarity, 0.75);
  EXPECT_EQ(c.quotes[2].verdict, "matched");  // one letter misread by OCR
  EXPECT_EQ(c.quotes[3].verdict, "not_in_image");
  EXPECT_EQ(c.correct, 2);
  EXPECT_EQ(c.incorrect, 2);
  EXPECT_EQ(c.category, "incorrect");
  // The misquoted line is the quote's error, not also text the caption missed.
  ASSERT_EQ(c.lines.size(), 3u);
  EXPECT_EQ(c.lines[0].verdict, "captured");
  EXPECT_EQ(c.lines[1].verdict, "misquoted");
  EXPECT_EQ(c.lines[2].verdict, "captured");
  EXPECT_EQ(c.not_captured, 0);
}

TEST(OcrCheck, QuotesSpanLinesAndWordRuns) {
  // A two-line sign quoted whole; a quote that is part of a line.
  const OcrResult r = result({line("HAPPY"), line("BIRTHDAY JOHN"), line("Welcome to the City Library")});
  const OcrCheck c = check_caption("A cake with \"Happy Birthday John\" and a sign \"City Library\".", r);
  ASSERT_EQ(c.quotes.size(), 2u);
  EXPECT_EQ(c.quotes[0].verdict, "matched");
  EXPECT_EQ(c.quotes[0].ocr_span, "HAPPY BIRTHDAY JOHN");
  EXPECT_EQ(c.quotes[1].verdict, "matched");
  EXPECT_EQ(c.quotes[1].ocr_span, "City Library");
  // "Welcome to the City Library" is covered only in part: not captured.
  EXPECT_EQ(c.lines[0].verdict, "captured");
  EXPECT_EQ(c.lines[1].verdict, "captured");
  EXPECT_EQ(c.lines[2].verdict, "not_captured");
  EXPECT_EQ(c.not_captured, 1);
  EXPECT_EQ(c.category, "not_captured");
}

TEST(OcrCheck, LinesCapturedWithoutQuotesAndNoise) {
  const OcrResult r = result({line("No Parking"), line("Ae", {0, 0, 8, 8}, 40), line("xq zv", {0, 0, 50, 20}, 45),
                              line("OK", {5, 5, 40, 30})});
  const OcrCheck c = check_caption("A white sign that says no parking, in a photograph.", r);
  EXPECT_TRUE(c.quotes.empty());
  ASSERT_EQ(c.lines.size(), 4u);
  EXPECT_EQ(c.lines[0].verdict, "captured");  // mentioned without quote marks
  EXPECT_EQ(c.lines[1].verdict, "ignored");   // low confidence
  EXPECT_EQ(c.lines[2].verdict, "ignored");   // low confidence
  EXPECT_EQ(c.lines[3].verdict, "ignored");   // under 3 letters
  EXPECT_EQ(c.category, "correct");
}

TEST(OcrCheck, Categories) {
  EXPECT_EQ(check_caption("A cat on a mat.", result({})).category, "no_text");
  EXPECT_EQ(check_caption("A cat on a mat.", result({line("Ae", {0, 0, 8, 8}, 30)})).category, "no_text");
  // Quotes but no text read: every quote is incorrect.
  const OcrCheck c = check_caption("A sign \"OPEN\".", result({}));
  EXPECT_EQ(c.category, "incorrect");
  EXPECT_EQ(c.quotes[0].verdict, "not_in_image");
  EXPECT_EQ(c.quotes[0].ocr_span, "");
  EXPECT_EQ(check_caption("A sign \"OPEN\".", result({line("OPEN")})).category, "correct");
  EXPECT_EQ(check_caption("A sign.", result({line("OPEN NOW")})).category, "not_captured");
}

TEST(OcrCheck, JsonShapes) {
  const OcrResult r = result({line("OPEN"), line("Fresh Bread", {5, 50, 90, 60}, 88.26f)});
  const nlohmann::json o = ocr_to_json(r);
  EXPECT_EQ(o.dump(), R"({"lines":[{"box":[10,10,200,40],"conf":95.0,"small":false,"text":"OPEN"},)"
                      R"({"box":[5,50,90,60],"conf":88.3,"small":true,"text":"Fresh Bread"}]})");
  const OcrResult back = ocr_from_json(o);
  ASSERT_EQ(back.lines.size(), 2u);
  EXPECT_EQ(back.lines[1].text, "Fresh Bread");
  EXPECT_EQ(back.lines[1].box, (std::array<int, 4>{5, 50, 90, 60}));
  EXPECT_TRUE(back.lines[1].small);
  const nlohmann::json j = check_to_json(check_caption("It says \"OPEN\".", r));
  for (const char* k : {"quotes", "lines", "correct", "incorrect", "not_captured", "category"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["quotes"][0].size(), 4u);
  EXPECT_EQ(j["quotes"][0]["verdict"], "matched");
  EXPECT_EQ(j["lines"][1]["verdict"], "not_captured");
  EXPECT_EQ(j["category"], "not_captured");
}

TEST(OcrCheck, OcrFromJsonIsStrict) {
  using nlohmann::json;
  const auto bad = [](const std::string& s) { EXPECT_THROW(ocr_from_json(json::parse(s)), Error) << s; };
  bad(R"([])");
  bad(R"({"lines":{}})");
  bad(R"({"lines":[{"text":"a","box":[0,0,1,1],"conf":5}]})");                      // missing small
  bad(R"({"lines":[{"text":"a","box":[0,0,1],"conf":5,"small":false}]})");          // short box
  bad(R"({"lines":[{"text":"a","box":[5,0,1,1],"conf":5,"small":false}]})");        // x1 > x2
  bad(R"({"lines":[{"text":"a","box":[0,0,1,1],"conf":101,"small":false}]})");      // conf
  bad(R"({"lines":[{"text":"a","box":[0,0,1.5,1],"conf":5,"small":false}]})");      // not integer
  bad(R"({"lines":[{"text":1,"box":[0,0,1,1],"conf":5,"small":false}]})");          // text type
  bad(R"({"lines":[{"text":"a","box":[0,0,1,1],"conf":5,"small":0}]})");            // small type
  bad(R"({"lines":[{"text":"a","box":[0,0,1,1],"conf":5,"small":false,"x":1}]})");  // extra key
  EXPECT_EQ(ocr_from_json(json::parse(R"({"lines":[]})")).lines.size(), 0u);
  // JSON holds only valid UTF-8 once parsed; a hand-built object may not.
  json j = {{"lines", {{{"text", "\xff"}, {"box", {0, 0, 1, 1}}, {"conf", 5}, {"small", false}}}}};
  EXPECT_THROW(ocr_from_json(j), Error);
}

TEST(OcrCheck, Totals) {
  OcrCheckTotals t, u;
  const OcrResult r = result({line("OPEN"), line("CLOSED", {0, 0, 10, 10})});
  t.add(check_caption("\"OPEN\" and \"SHUT\"", r), r);
  u.add(check_caption("A cat.", result({})), result({}));
  u.errors = 2;
  t.merge(u);
  EXPECT_EQ(t.records, 2);
  EXPECT_EQ(t.errors, 2);
  EXPECT_EQ(t.correct, 1);
  EXPECT_EQ(t.incorrect, 1);
  EXPECT_EQ(t.not_captured, 1);
  EXPECT_EQ(t.lines_small, 1);
  EXPECT_EQ(t.category_incorrect, 1);
  EXPECT_EQ(t.category_no_text, 1);
  const nlohmann::json j = totals_to_json(t);
  EXPECT_DOUBLE_EQ(j["items"]["percent"]["correct"].get<double>(), 33.3);
  EXPECT_DOUBLE_EQ(j["records_by_category"]["percent_of_records_with_text"]["incorrect"].get<double>(), 100.0);
}

TEST(OcrCheck, WorkPerRecordIsBounded) {
  // A long caption full of long quotes against long OCR lines (the shape a
  // fuzzer found taking minutes before the caps and the banded distance):
  // the check finishes, within the ctest timeout, and honours the caps.
  std::string caption, ocr_line;
  for (int q = 0; q < 100; ++q) {
    caption += " and \"";
    for (int w = 0; w < 40; ++w) caption += (w ? " word" : "word") + std::to_string((q * 7 + w) % 97);
    caption += "\"";
  }
  for (int w = 0; w < 400; ++w) ocr_line += "word" + std::to_string(w % 89) + " ";
  std::vector<OcrLine> lines(200, line(ocr_line));
  const OcrCheck c = check_caption(caption, result(lines));
  EXPECT_LE(c.quotes.size(), CheckOptions{}.max_quotes);
  EXPECT_EQ(c.lines.size(), 200u);
  EXPECT_EQ(c.lines.back().verdict, "ignored") << "lines past max_lines are not compared";
  EXPECT_TRUE(c.truncated) << "the comparison budget ran out on this record";
  EXPECT_TRUE(check_to_json(c)["truncated"].get<bool>());
  EXPECT_FALSE(check_caption("a \"short\" one", result({line("short")})).truncated);
}

TEST(OcrCheck, RejectsBadThresholds) {
  CheckOptions o;
  o.partial = 0.9;
  o.match = 0.8;
  EXPECT_THROW(check_caption("x", result({}), o), Error);
}

}  // namespace
}  // namespace dsvl2::ocr
