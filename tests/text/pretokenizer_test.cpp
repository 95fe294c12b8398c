// Pre-tokenizer steps read from JSON, against the examples of the HF
// tokenizers documentation (SplitDelimiterBehavior, Digits), plus the
// Oniguruma meaning of \s and the BPE merge order.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "stub_tokenizer.h"
#include "text/pretokenizer.h"
#include "text/regex.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

using nlohmann::json;
using Pieces = std::vector<std::string>;

Pieces run(const json& pre, std::string_view text) {
  PreTokenizer p = PreTokenizer::from_json(pre, "test");
  std::vector<std::string_view> pieces;
  std::deque<std::string> arena;
  p.split(text, pieces, arena);
  return Pieces(pieces.begin(), pieces.end());
}

json split(const std::string& regex, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", behavior}, {"invert", invert}};
}

TEST(PreTokenizer, SplitBehaviors) {
  const std::string t = "the-final--countdown";
  EXPECT_EQ(run(split("-", "Removed"), t), (Pieces{"the", "final", "countdown"}));
  EXPECT_EQ(run(split("-", "Isolated"), t), (Pieces{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(run(split("-", "MergedWithPrevious"), t), (Pieces{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(run(split("-", "MergedWithNext"), t), (Pieces{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(run(split("-", "Contiguous"), t), (Pieces{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(run(split("-", "Removed", /*invert=*/true), t), (Pieces{"-", "-", "-"}));
  json lit = {{"type", "Split"}, {"pattern", {{"String", "."}}}, {"behavior", "Isolated"}};
  EXPECT_EQ(run(lit, "a.b-c"), (Pieces{"a", ".", "b-c"}));
}

TEST(PreTokenizer, Digits) {
  EXPECT_EQ(run({{"type", "Digits"}, {"individual_digits", true}}, "Call 123 please"),
            (Pieces{"Call ", "1", "2", "3", " please"}));
  EXPECT_EQ(run({{"type", "Digits"}, {"individual_digits", false}}, "Call 123 please"),
            (Pieces{"Call ", "123", " please"}));
}

TEST(PreTokenizer, SequenceSeesOnlyEachPiece) {
  // The second step's lookahead cannot see past the piece the first step made.
  json seq = {{"type", "Sequence"}, {"pretokenizers", {split("\\p{N}{1,3}", "Isolated"), split("\\s+(?!\\S)|\\s+", "Isolated")}}};
  EXPECT_EQ(run(seq, "a  1234"), (Pieces{"a", "  ", "123", "4"}));
}

TEST(PreTokenizer, DeepSeekLlmStyleSequence) {
  // The shape of the DeepSeek-V2 / DeepSeek-LLM pre-tokenizer (letter class shortened).
  json seq = {{"type", "Sequence"},
              {"pretokenizers",
               {split("[\r\n]", "Isolated"), split("\\s?[A-Za-z\u00b5\u00c0-\u00d6]+", "Isolated"),
                split("\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+", "Isolated"),
                split("\\s+$", "Isolated"), split("[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+", "Isolated"),
                {{"type", "Digits"}, {"individual_digits", true}},
                {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
  EXPECT_EQ(run(seq, "Hello \u4e16\u754c 123\n  end  "),
            (Pieces{"Hello", " ", "\u4e16\u754c", " ", "1", "2", "3", "\n", " ", " end", "  "}));
}

TEST(PreTokenizer, ByteLevelRegexAndPrefix) {
  json bl = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true}};
  EXPECT_EQ(run(bl, "Hello world's"), (Pieces{" Hello", " world", "'s"}));
}

TEST(Regex, OnigurumaWhiteSpace) {
  // \s includes U+0085 (NEL) as in Oniguruma; \S excludes it.
  std::vector<std::pair<size_t, size_t>> m;
  Regex("\\s+").find_all("a \xC2\x85 b", m);
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{1, 5}));
  m.clear();
  Regex("[^\\s]+").find_all("a\xC2\x85" "b", m);
  EXPECT_EQ(m.size(), 2u);
  m.clear();
  Regex("\\S+").find_all("a\xC2\x85" "b", m);
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(Regex::onig_to_pcre2("[\\s\\p{L}]\\s\\\\s"), "[\\t-\\r\\x{85}\\p{Z}\\p{L}][\\t-\\r\\x{85}\\p{Z}]\\\\s");
  // U+FEFF is not white space.
  m.clear();
  Regex("\\s").find_all("\xEF\xBB\xBF", m);
  EXPECT_TRUE(m.empty());
}

TEST(Regex, DollarIsEndOfLine) {
  std::vector<std::pair<size_t, size_t>> m;
  Regex("\\s+$").find_all("a \nb  ", m);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{1, 2}));
  EXPECT_EQ(m[1], (std::pair<size_t, size_t>{4, 6}));
}

TEST(Bpe, MergesByRankLeftmostFirst) {
  // Ranks: "a a" (200) before "aa a" (201); "aaa" = aa + a only via the second.
  Tokenizer t = Tokenizer::from_json_text(test::stub_tokenizer({"a a", "aa a", "b c", "a b"}).dump(), "stub",
                                          {.vl2_tokens = false});
  const int32_t a = 'a' - 0x20 + 3, b = 'b' - 0x20 + 3;
  EXPECT_EQ(t.encode("aa"), (std::vector<int32_t>{200}));
  EXPECT_EQ(t.encode("aaa"), (std::vector<int32_t>{201}));     // (aa)a then aaa
  EXPECT_EQ(t.encode("aaaa"), (std::vector<int32_t>{200, 200}));  // both "a a" first; no "aa aa" merge
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{a, 202}));   // "b c" ranks before "a b"
  EXPECT_EQ(t.encode("ab"), (std::vector<int32_t>{203}));
  EXPECT_EQ(t.encode("bb"), (std::vector<int32_t>{b, b}));
  EXPECT_EQ(t.decode(t.encode("aaaa abc")), "aaaa abc");
}

}  // namespace
}  // namespace dsvl2
