// Added-token splitting as HF AddedVocabulary: leftmost match, longest at that
// position, non-normalized tokens before normalized ones, lstrip / rstrip /
// single_word, and the DeepSeek-VL2 tokens added at load.
#include <gtest/gtest.h>

#include "stub_tokenizer.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

using nlohmann::json;

int32_t ch(char c) { return int32_t(uint8_t(c)) - 0x20 + 3; }  // stub id of a printable ASCII byte

std::vector<int32_t> ascii(std::string_view s) {
  std::vector<int32_t> v;
  for (char c : s) v.push_back(c == '\n' ? 98 : ch(c));
  return v;
}

json added(int id, const std::string& content, bool special, bool normalized, bool lstrip = false,
           bool rstrip = false, bool single_word = false) {
  return {{"id", id},         {"content", content},   {"special", special},        {"normalized", normalized},
          {"lstrip", lstrip}, {"rstrip", rstrip}, {"single_word", single_word}};
}

Tokenizer with_added(const std::vector<json>& extra, bool vl2 = false) {
  json j = test::stub_tokenizer();
  for (const auto& a : extra) j["added_tokens"].push_back(a);
  return Tokenizer::from_json_text(j.dump(), "stub", {.vl2_tokens = vl2});
}

TEST(AddedTokens, Vl2TokensGetNextIdsInOrder) {
  Tokenizer t = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
  const char* names[] = {"<image>", "<|ref|>", "<|/ref|>", "<|det|>", "<|/det|>", "<|grounding|>", "<|User|>", "<|Assistant|>"};
  for (int i = 0; i < 8; i++) EXPECT_EQ(t.token_to_id(names[i]), 100 + i) << names[i];
  EXPECT_EQ(t.vocab_size(), 108);
  Tokenizer raw = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub", {.vl2_tokens = false});
  EXPECT_FALSE(raw.token_to_id("<image>"));
  EXPECT_EQ(raw.encode("<image>"), ascii("<image>"));
  EXPECT_EQ(t.encode("a<image>b"), (std::vector<int32_t>{ch('a'), 100, ch('b')}));
}

TEST(AddedTokens, ExistingTokenKeepsItsId) {
  json j = test::stub_tokenizer();
  j["added_tokens"].push_back(added(150, "<image>", true, false));
  Tokenizer t = Tokenizer::from_json_text(j.dump(), "stub");
  EXPECT_EQ(t.token_to_id("<image>"), 150);
  EXPECT_EQ(t.token_to_id("<|ref|>"), 151);  // next after the highest id
  EXPECT_EQ(t.token_to_id("<|Assistant|>"), 157);
}

TEST(AddedTokens, LeftmostThenLongest) {
  Tokenizer t = with_added({added(150, "ab", true, false), added(151, "bcd", true, false), added(152, "abc", true, false)});
  // At position 0 both "ab" and "abc" match: the longest wins; "bcd" starts later.
  EXPECT_EQ(t.encode("abcd"), (std::vector<int32_t>{152, ch('d')}));
  EXPECT_EQ(t.encode("xbcd"), (std::vector<int32_t>{ch('x'), 151}));
  EXPECT_EQ(t.encode("abd"), (std::vector<int32_t>{150, ch('d')}));
}

TEST(AddedTokens, NonNormalizedFirst) {
  // "ab" is normalized, "bc" is not: the raw pass takes "bc" before "ab" is tried.
  Tokenizer t = with_added({added(150, "ab", false, true), added(151, "bc", true, false)});
  EXPECT_EQ(t.encode("abc"), (std::vector<int32_t>{ch('a'), 151}));
  EXPECT_EQ(t.encode("abx"), (std::vector<int32_t>{150, ch('x')}));
}

TEST(AddedTokens, StripAndSingleWordFlags) {
  Tokenizer t = with_added({added(150, "[L]", true, false, /*lstrip=*/true), added(151, "[R]", true, false, false, /*rstrip=*/true),
                            added(152, "ab", true, false, false, false, /*single_word=*/true)});
  EXPECT_EQ(t.encode("x  [L]y"), (std::vector<int32_t>{ch('x'), 150, ch('y')}));
  EXPECT_EQ(t.encode("x[R]  y"), (std::vector<int32_t>{ch('x'), 151, ch('y')}));
  EXPECT_EQ(t.encode("ab cd"), (std::vector<int32_t>{152, ch(' '), ch('c'), ch('d')}));
  EXPECT_EQ(t.encode("xab"), ascii("xab"));
  EXPECT_EQ(t.encode("abx"), ascii("abx"));
}

TEST(AddedTokens, SpecialDecodeFlag) {
  Tokenizer t = with_added({added(150, "<s1>", true, false), added(151, "<n1>", false, true)});
  auto ids = t.encode("<s1>a<n1>");
  EXPECT_EQ(ids, (std::vector<int32_t>{150, ch('a'), 151}));
  EXPECT_TRUE(t.is_special(150));
  EXPECT_FALSE(t.is_special(151));
  EXPECT_EQ(t.decode(ids, true), "a<n1>");
}

TEST(AddedTokens, RealTokenizer) {
  const std::string dir = test::tokenizer_dir();
  if (dir.empty()) GTEST_SKIP() << "shared/tokenizer not found";
  Tokenizer vl2 = Tokenizer::load(dir + "/deepseek_v3");
  // Fullwidth-bar DeepSeek tokens are in the file; the ASCII-bar VL2 ones are added.
  EXPECT_EQ(vl2.encode("<｜User｜><|User|>"), (std::vector<int32_t>{128803, 128821}));
  auto ids = vl2.encode("<｜begin▁of▁sentence｜><image>\n<|ref|>cat<|/ref|>");
  ASSERT_GE(ids.size(), 5u);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 128815);
  EXPECT_EQ(ids[3], 128816);
  EXPECT_EQ(ids.back(), 128817);
  EXPECT_EQ(vl2.decode(ids), "<｜begin▁of▁sentence｜><image>\n<|ref|>cat<|/ref|>");
}

}  // namespace
}  // namespace dsvl2
