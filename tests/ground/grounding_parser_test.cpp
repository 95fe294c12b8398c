// Grounding output parser: well-formed outputs from the paper, README and demo,
// and malformed / runaway forms that must become errors, never objects.
#include "ground/grounding_parser.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ground/prompts.h"

namespace dsvl2::ground {
namespace {

TEST(GroundingParser, ReadmeGiraffe) {
  // README: output for "<|ref|>The giraffe at the back.<|/ref|>." on visual_grounding_1.jpeg.
  auto r = parse_grounding("<|ref|>The giraffe at the back.<|/ref|><|det|>[[580, 270, 999, 900]]<|/det|>", 1000, 750);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(*r.objects[0].label, "The giraffe at the back.");
  EXPECT_EQ(r.objects[0].box, (std::array<int, 4>{580, 270, 999, 900}));
  // int(580/999*1000)=580, int(270/999*750)=202, int(999/999*1000)=1000, int(900/999*750)=675
  EXPECT_EQ(r.objects[0].box_px, (std::array<int, 4>{580, 202, 1000, 675}));
}

TEST(GroundingParser, PixelMappingMatchesPythonDoubleArithmetic) {
  // Hand-computed Python values: int(v / 999 * size).
  EXPECT_EQ(coord_to_px(0, 640), 0);
  EXPECT_EQ(coord_to_px(999, 640), 640);
  EXPECT_EQ(coord_to_px(500, 640), 320);  // 320.3203...
  EXPECT_EQ(coord_to_px(333, 999), 333);  // 333/999*999 = 332.99999999999994 in double? Python gives 333.0
  EXPECT_EQ(coord_to_px(1, 999), 1);      // 1/999*999 = 1.0
  EXPECT_EQ(coord_to_px(998, 1), 0);
  EXPECT_EQ(coord_to_px(123, 1920), 236);  // 236.39639...
  EXPECT_EQ(coord_to_px(456, 1080), 492);  // 492.97297...
}

TEST(GroundingParser, MultipleRefsAndBoxes) {
  std::string t =
      "Two <|ref|>dogs<|/ref|><|det|>[[10, 20, 30, 40], [50, 60, 70, 80]]<|/det|> are running on the "
      "<|ref|>grass<|/ref|><|det|>[[0, 500, 999, 999]]<|/det|>.";
  auto r = parse_grounding(t, 999, 999);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.objects.size(), 3u);
  EXPECT_EQ(*r.objects[0].label, "dogs");
  EXPECT_EQ(*r.objects[1].label, "dogs");
  EXPECT_EQ(*r.objects[2].label, "grass");
  EXPECT_EQ(r.objects[1].box, (std::array<int, 4>{50, 60, 70, 80}));
  EXPECT_EQ(r.objects[2].box_px, (std::array<int, 4>{0, 500, 999, 999}));
}

TEST(GroundingParser, ChineseLabel) {
  auto r = parse_grounding("<|ref|>淡定姐<|/ref|><|det|>[[304, 178, 682, 998]]<|/det|>", 800, 600);
  ASSERT_TRUE(r.errors.empty());
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(*r.objects[0].label, "淡定姐");
  EXPECT_EQ(r.objects[0].box_px, (std::array<int, 4>{243, 106, 546, 599}));
  auto j = nlohmann::json::parse(to_json_string(r));
  EXPECT_EQ(j["objects"][0]["label"], "淡定姐");
}

TEST(GroundingParser, WhitespaceAndNewlinesTolerated) {
  auto r = parse_grounding("<|ref|>cat<|/ref|><|det|>\n [ [1,2 ,3,  4] ,\n\t[5,6,7,8] ]\r\n<|/det|>", 999, 999);
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].reason;
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(r.objects[1].box, (std::array<int, 4>{5, 6, 7, 8}));
}

TEST(GroundingParser, DetWithoutRefHasNullLabel) {
  auto r = parse_grounding("here: <|det|>[[1, 2, 3, 4]]<|/det|>", 100, 100);
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_FALSE(r.objects[0].label.has_value());
  auto j = nlohmann::json::parse(to_json_string(r));
  EXPECT_TRUE(j["objects"][0]["label"].is_null());
}

TEST(GroundingParser, LabelIsNearestPrecedingRef) {
  auto r = parse_grounding("<|ref|>a<|/ref|><|ref|>b<|/ref|> text <|det|>[[1,1,2,2]]<|/det|><|det|>[[3,3,4,4]]<|/det|>",
                           10, 10);
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(*r.objects[0].label, "b");
  EXPECT_EQ(*r.objects[1].label, "b");
}

TEST(GroundingParser, PlainTextAndEosAreIgnored) {
  auto r = parse_grounding("No objects here.<｜end▁of▁sentence｜>", 10, 10);
  EXPECT_TRUE(r.objects.empty());
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(to_json_string(r), R"({"objects":[],"errors":[]})");
}

TEST(GroundingParser, ValidBlockAfterMalformedOneStillParses) {
  auto r =
      parse_grounding("<|ref|>x<|/ref|><|det|>[[1,2,3]]<|/det|><|ref|>y<|/ref|><|det|>[[1,2,3,4]]<|/det|>", 10, 10);
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(*r.objects[0].label, "y");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].text, "<|det|>[[1,2,3]]<|/det|>");
  EXPECT_EQ(r.errors[0].reason, "box has 3 values, expected 4");
}

TEST(GroundingParser, ThirteenColourCycleHasManyBoxes) {
  std::string t = "<|ref|>dot<|/ref|><|det|>[";
  for (int i = 0; i < 30; ++i) {
    if (i) t += ", ";
    t += "[1, 2, 3, 4]";
  }
  t += "]<|/det|>";
  auto r = parse_grounding(t, 10, 10);
  EXPECT_EQ(r.objects.size(), 30u);
  EXPECT_TRUE(r.errors.empty());
}

TEST(GroundingParser, FormatAndNormaliseRoundTrip) {
  std::vector<std::array<int, 4>> boxes = {{580, 270, 999, 900}, {0, 1, 2, 3}};
  std::string s = format_boxes(boxes);
  EXPECT_EQ(s, "[[580, 270, 999, 900], [0, 1, 2, 3]]");
  auto r = parse_grounding(std::string(kDetOpen) + s + std::string(kDetClose), 999, 999);
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(r.objects[0].box, boxes[0]);
  EXPECT_EQ(normalise_box(0, 0, 640, 480, 640, 480), (std::array<int, 4>{0, 0, 999, 999}));
  EXPECT_EQ(normalise_box(320, -5, 700, 240, 640, 480), (std::array<int, 4>{500, 0, 999, 500}));
}

struct BadCase {
  const char* text;
  const char* reason_part;
  size_t objects = 0;  // well-formed blocks next to the bad part still count
};

class MalformedTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedTest, ProducesErrorAndNoObject) {
  const BadCase& c = GetParam();
  auto r = parse_grounding(c.text, 640, 480);
  EXPECT_EQ(r.objects.size(), c.objects) << c.text;
  ASSERT_FALSE(r.errors.empty()) << c.text;
  EXPECT_NE(r.errors[0].reason.find(c.reason_part), std::string::npos)
      << "text: " << c.text << "\nreason: " << r.errors[0].reason;
  // The JSON form is always valid.
  auto j = nlohmann::json::parse(to_json_string(r));
  EXPECT_EQ(j["objects"].size(), c.objects);
}

const std::string kLongDigits = "<|det|>[[1" + std::string(50, '9') + ", 1, 1, 1]]<|/det|>";
const std::string kManyBoxes = [] {
  std::string s = "<|det|>[";
  for (int i = 0; i < 101; ++i) {
    if (i) s += ",";
    s += "[1,2,3,4]";
  }
  return s + "]<|/det|>";
}();
const std::string kHuge = "<|det|>[[1,2,3,4]" + std::string(20000, ' ') + "]<|/det|>";
const std::string kLongLabel = "<|ref|>" + std::string(5000, 'a') + "<|/ref|><|det|>[[1,2,3,4]]<|/det|>";

INSTANTIATE_TEST_SUITE_P(
    Grounding, MalformedTest,
    ::testing::Values(BadCase{"<|det|>[[1.5, 2, 3, 4]]<|/det|>", "non-integer"},
                      BadCase{"<|det|>[[1e3, 2, 3, 4]]<|/det|>", "non-integer"},
                      BadCase{"<|det|>[[-1, 2, 3, 4]]<|/det|>", "negative"},
                      BadCase{"<|det|>[[1000, 2, 3, 4]]<|/det|>", "out of range"},
                      BadCase{"<|det|>[[1, 2, 3, 4, 5]]<|/det|>", "more than 4"},
                      BadCase{"<|det|>[[1, 2, 3]]<|/det|>", "3 values"}, BadCase{"<|det|>[[]]<|/det|>", "empty box"},
                      BadCase{"<|det|>[]<|/det|>", "empty box list"}, BadCase{"<|det|><|/det|>", "empty <|det|>"},
                      BadCase{"<|det|>   <|/det|>", "empty <|det|>"},
                      BadCase{"<|det|>[1, 2, 3, 4]<|/det|>", "list of lists"},
                      BadCase{"<|det|>[[[1, 2, 3, 4]]]<|/det|>", "two levels"},
                      BadCase{"<|det|>[[1, 2, 3, 4]<|/det|>", "not closed"},
                      BadCase{"<|det|>[[1, 2, 3, 4]]]<|/det|>", "after the box list"},
                      BadCase{"<|det|>[[1, 2, 3, 4],]<|/det|>", "trailing comma"},
                      BadCase{"<|det|>[[1, 2, 3, 4,]]<|/det|>", "trailing comma"},
                      BadCase{"<|det|>[[1, 2, 3, 4] [5, 6, 7, 8]]<|/det|>", "expected ',' or ']'"},
                      BadCase{"<|det|>[[1 2, 3, 4]]<|/det|>", "expected ',' or ']'"},
                      BadCase{"<|det|>[[a, 2, 3, 4]]<|/det|>", "unexpected character 'a'"},
                      BadCase{"<|det|>[[__import__('os'), 2, 3, 4]]<|/det|>", "unexpected character '_'"},
                      BadCase{"<|det|>[[0x10, 2, 3, 4]]<|/det|>", "expected ',' or ']'"},
                      BadCase{"<|det|>[[+1, 2, 3, 4]]<|/det|>", "unexpected character '+'"},
                      BadCase{"<|det|>[(1, 2, 3, 4)]<|/det|>", "unexpected character '('"},
                      BadCase{"<|det|>[[1, 2, 3, 4]]", "unterminated <|det|>"},
                      BadCase{"<|det|>[[1, 2, 3, 4]]<|det|>[[1,2,3,4]]<|/det|>", "unterminated <|det|>", 1},
                      BadCase{"<|det|>[[1, 2, 3, 4]]<|ref|>x<|/ref|>", "unterminated <|det|>"},
                      BadCase{"<|/det|>", "without an opening"}, BadCase{"<|/ref|>", "without an opening"},
                      BadCase{"<|ref|>dog<|det|>[[1,2,3,4]]<|/det|>", "unterminated <|ref|>", 1},
                      BadCase{"<|det|>[[1,\xff, 3, 4]]<|/det|>", "unexpected byte 0xFF"},
                      BadCase{kLongDigits.c_str(), "digit run longer"}, BadCase{kManyBoxes.c_str(), "too many boxes"},
                      BadCase{kHuge.c_str(), "longer than"}, BadCase{kLongLabel.c_str(), "label longer than", 1}));

TEST(GroundingParser, UnterminatedRefResetsLabel) {
  auto r = parse_grounding("<|ref|>cat<|/ref|><|det|>[[1,2,3,4]]<|/det|><|ref|>dog <|det|>[[5,6,7,8]]<|/det|>", 10, 10);
  ASSERT_EQ(r.objects.size(), 2u);
  EXPECT_EQ(*r.objects[0].label, "cat");
  EXPECT_FALSE(r.objects[1].label.has_value());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].text, "<|ref|>dog ");
}

TEST(GroundingParser, ErrorTextIsCappedOnCharBoundary) {
  std::string t = "<|det|>[[" + std::string(300, ' ') + "猫]]<|/det|>";
  auto r = parse_grounding(t, 10, 10);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_LE(r.errors[0].text.size(), 256u + 3);
  EXPECT_EQ(r.errors[0].text.substr(r.errors[0].text.size() - 3), "...");
}

TEST(GroundingParser, InvalidUtf8LabelStillGivesValidJson) {
  auto r = parse_grounding("<|ref|>\xc3\x28\xff<|/ref|><|det|>[[1,2,3,4]]<|/det|>", 10, 10);
  ASSERT_EQ(r.objects.size(), 1u);
  auto j = nlohmann::json::parse(to_json_string(r));
  EXPECT_EQ(j["objects"][0]["label"].get<std::string>(), "\xEF\xBF\xBD(\xEF\xBF\xBD");
}

TEST(GroundingParser, ObjectAndErrorCountsAreCapped) {
  ParseLimits lim;
  lim.max_objects = 5;
  lim.max_errors = 3;
  std::string t;
  for (int i = 0; i < 10; ++i) t += "<|det|>[[1,2,3,4]]<|/det|><|/ref|>";
  auto r = parse_grounding(t, 10, 10, lim);
  EXPECT_EQ(r.objects.size(), 5u);
  EXPECT_EQ(r.errors.size(), 3u);
}

// ---- runaway guard ----

bool feed_all(RunawayGuard& g, std::string_view s, size_t piece) {
  for (size_t i = 0; i < s.size(); i += piece)
    if (g.feed(s.substr(i, piece))) return true;
  return false;
}

TEST(RunawayGuard, WellFormedOutputNeverStops) {
  std::string t =
      "Two <|ref|>dogs<|/ref|><|det|>[[10, 20, 30, 40], [50, 60, 70, 80]]<|/det|> and <|ref|>淡定姐<|/ref|>"
      "<|det|>[[580, 270, 999, 900]]<|/det|> 12345678 digits outside blocks are fine [[[[[[";
  for (size_t piece : {1, 2, 3, 5, 7, 1000}) {
    RunawayGuard g;
    EXPECT_FALSE(feed_all(g, t, piece)) << piece << ": " << g.reason();
    EXPECT_FALSE(g.in_det_block());
  }
}

TEST(RunawayGuard, StopsOnLongNumber) {
  for (size_t piece : {1, 3, 64}) {
    RunawayGuard g;
    EXPECT_TRUE(feed_all(g, "<|ref|>x<|/ref|><|det|>[[12, 99999", piece));
    EXPECT_NE(g.reason().find("digits"), std::string::npos);
  }
}

TEST(RunawayGuard, StopsOnTooManyBoxes) {
  RunawayGuard g;
  std::string t = "<|det|>[";
  for (int i = 0; i < 100; ++i) t += "[1,2,3,4],";
  EXPECT_FALSE(feed_all(g, t, 4));
  EXPECT_TRUE(g.feed("[1,2,3,4]"));
  EXPECT_NE(g.reason().find("boxes"), std::string::npos);
}

TEST(RunawayGuard, StopsOnDeepNesting) {
  RunawayGuard g;
  EXPECT_TRUE(feed_all(g, "<|det|>[[[", 1));
  EXPECT_NE(g.reason().find("nested"), std::string::npos);
}

TEST(RunawayGuard, StopsOnUnclosedBlock) {
  RunawayGuard g;
  EXPECT_FALSE(g.feed("<|det|>[[1, 2, 3, 4]"));
  bool stopped = false;
  for (int i = 0; i < 5000 && !stopped; ++i) stopped = g.feed(" ");
  EXPECT_TRUE(stopped);
  EXPECT_NE(g.reason().find("without <|/det|>"), std::string::npos);
  EXPECT_TRUE(g.feed("<|/det|>"));  // sticky until reset
  g.reset();
  EXPECT_FALSE(g.stopped());
  EXPECT_FALSE(g.feed("<|det|>[[1,2,3,4]]<|/det|>"));
}

TEST(RunawayGuard, StopsOnRunawayLabel) {
  RunawayGuard g;
  EXPECT_TRUE(feed_all(g, "<|ref|>" + std::string(2000, 'a'), 16));
  EXPECT_NE(g.reason().find("label"), std::string::npos);
}

TEST(RunawayGuard, TagSplitAcrossPieces) {
  RunawayGuard g;
  EXPECT_FALSE(g.feed("<|d"));
  EXPECT_FALSE(g.feed("et"));
  EXPECT_FALSE(g.feed("|>"));
  EXPECT_TRUE(g.in_det_block());
  EXPECT_FALSE(g.feed("[[1,2,3,4]]<|/d"));
  EXPECT_FALSE(g.feed("et|>"));
  EXPECT_FALSE(g.in_det_block());
}

}  // namespace
}  // namespace dsvl2::ground
