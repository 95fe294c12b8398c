// Malformed tokenizer.json files and hostile inputs: every one is a
// dsvl2::Error with a message, never a crash.
#include <gtest/gtest.h>

#include "core/error.h"
#include "core/file.h"
#include "stub_tokenizer.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

using nlohmann::json;

void expect_error(const json& j, const std::string& want_in_message) {
  try {
    Tokenizer::from_json_text(j.dump(), "bad.json");
    ADD_FAILURE() << "no error for: " << want_in_message;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(want_in_message), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.json"), std::string::npos) << e.what();
  }
}

TEST(TokenizerHostile, NotJsonOrNotATokenizer) {
  EXPECT_THROW(Tokenizer::from_json_text("", "bad.json"), Error);
  EXPECT_THROW(Tokenizer::from_json_text("{\"model\": {", "bad.json"), Error);
  EXPECT_THROW(Tokenizer::from_json_text("[1, 2]", "bad.json"), Error);
  EXPECT_THROW(Tokenizer::from_json_text("\xff\xfe", "bad.json"), Error);
  expect_error(json{{"version", "1.0"}}, "no 'model'");
}

TEST(TokenizerHostile, MissingOrWrongModel) {
  json j = test::stub_tokenizer();
  j["model"] = "BPE";
  expect_error(j, "'model' must be an object");
  j = test::stub_tokenizer();
  j["model"]["type"] = "WordPiece";
  expect_error(j, "unsupported model type");
  j = test::stub_tokenizer();
  j["model"].erase("vocab");
  expect_error(j, "no 'vocab'");
  j = test::stub_tokenizer();
  j["model"]["vocab"] = json::array({1, 2});
  expect_error(j, "no 'vocab'");
  j = test::stub_tokenizer();
  j["model"]["vocab"]["x"] = "seven";
  expect_error(j, "non-integer id");
  j = test::stub_tokenizer();
  j["model"]["vocab"]["x"] = -4;
  expect_error(j, "out of range");
  j = test::stub_tokenizer();
  j["model"]["vocab"]["x"] = 1LL << 40;
  expect_error(j, "out of range");
  j = test::stub_tokenizer();
  j["model"]["vocab"]["x"] = 1 << 23;  // sparse: would size the tables by the id
  expect_error(j, "out of range");
  j = test::stub_tokenizer();
  j["added_tokens"].push_back({{"id", 1 << 23}, {"content", "<x>"}});
  expect_error(j, "out of range");
  j = test::stub_tokenizer();
  j["model"]["continuing_subword_prefix"] = "##";
  expect_error(j, "not supported");
}

TEST(TokenizerHostile, BadMerges) {
  json j = test::stub_tokenizer();
  j["model"].erase("merges");
  expect_error(j, "no 'merges'");
  j = test::stub_tokenizer();
  j["model"]["merges"] = json::array({"ab"});
  expect_error(j, "not two tokens");
  j = test::stub_tokenizer();
  j["model"]["merges"] = json::array({"a z"});  // "az" is not in the vocab
  expect_error(j, "missing from the vocab");
  j = test::stub_tokenizer();
  j["model"]["merges"] = json::array({json::array({"a"})});
  expect_error(j, "merge 0");
  j = test::stub_tokenizer();
  j["model"]["merges"] = json::array({42});
  expect_error(j, "merge 0");
  j = test::stub_tokenizer();
  j["model"]["merges"] = "a b";
  expect_error(j, "no 'merges'");
}

TEST(TokenizerHostile, BadAddedTokens) {
  json j = test::stub_tokenizer();
  j["added_tokens"] = json::object();
  expect_error(j, "'added_tokens' must be an array");
  j = test::stub_tokenizer();
  j["added_tokens"].push_back({{"id", "5"}, {"content", "<x>"}});
  expect_error(j, "integer 'id'");
  j = test::stub_tokenizer();
  j["added_tokens"].push_back({{"id", 5}, {"content", ""}});
  expect_error(j, "empty");
  j = test::stub_tokenizer();
  j["added_tokens"].push_back({{"id", 5}, {"content", "<x>"}, {"special", "yes"}});
  expect_error(j, "must be a boolean");
  j = test::stub_tokenizer();
  j["added_tokens"].push_back(7);
  expect_error(j, "not an object");
}

TEST(TokenizerHostile, BadPreTokenizerAndDecoder) {
  json j = test::stub_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "([a-";
  expect_error(j, "bad regex");
  j = test::stub_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Sideways";
  expect_error(j, "unknown split behavior");
  j = test::stub_tokenizer();
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = json::object();
  expect_error(j, "'Regex' or 'String'");
  j = test::stub_tokenizer();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_error(j, "unsupported pre_tokenizer");
  j = test::stub_tokenizer();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array()}};
  expect_error(j, "no ByteLevel");
  j = test::stub_tokenizer();
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", 3}};
  expect_error(j, "'pretokenizers' array");
  j = test::stub_tokenizer();
  j.erase("decoder");
  expect_error(j, "no 'decoder'");
  j = test::stub_tokenizer();
  j["decoder"] = {{"type", "WordPiece"}};
  expect_error(j, "unsupported decoder");
  j = test::stub_tokenizer();
  j["normalizer"] = {{"type", "NFKC"}};
  expect_error(j, "unsupported normalizer");
  // Deep nesting is refused, not recursed into.
  json deep = {{"type", "ByteLevel"}};
  for (int i = 0; i < 50; i++) deep = {{"type", "Sequence"}, {"pretokenizers", {deep}}};
  j = test::stub_tokenizer();
  j["pre_tokenizer"] = deep;
  expect_error(j, "nested too deeply");
}

TEST(TokenizerHostile, LoadPaths) {
  EXPECT_THROW(Tokenizer::load("/nonexistent/tokenizer.json"), Error);
  const std::string dir = test::temp_dir("tok_hostile");
  EXPECT_THROW(Tokenizer::load(dir), Error);  // folder without tokenizer.json
  write_file(dir + "/tokenizer.json", "{\"truncated\": ");
  EXPECT_THROW(Tokenizer::load(dir), Error);
  write_file(dir + "/tokenizer.json", test::stub_tokenizer().dump());
  write_file(dir + "/tokenizer_config.json", "not json");  // ignored: only names BOS/EOS
  Tokenizer t = Tokenizer::load(dir);
  EXPECT_EQ(t.bos_id(), 0);
}

TEST(TokenizerHostile, HostileText) {
  Tokenizer t = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
  EXPECT_THROW(t.encode("ok\xC3("), Error);  // invalid UTF-8
  EXPECT_THROW(t.encode("\xED\xA0\x80"), Error);  // surrogate
  // Long runs stress the regex (backtracking in \s+(?!\S)) and the BPE.
  std::string spaces(1 << 20, ' ');
  spaces += "x";
  auto ids = t.encode(spaces);
  EXPECT_EQ(ids.size(), spaces.size());
  EXPECT_EQ(t.decode(ids), spaces);
  std::string letters(1 << 18, 'a');
  EXPECT_EQ(t.encode(letters).size(), letters.size());
  std::string nul("a\0b", 3);
  EXPECT_EQ(t.decode(t.encode(nul)), nul);
  // Unknown ids decode to nothing (HF skips them).
  EXPECT_EQ(t.decode({-5, 1 << 30, 'a' - 0x20 + 3}), "a");
}

}  // namespace
}  // namespace dsvl2
