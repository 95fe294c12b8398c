// DeepSeek-V3 tokenizer.json against ids produced by HF tokenizers
// (shared/tokenizer/golden.jsonl): `ids` without and `ids_vl2` with the
// DeepSeek-VL2 tokens, and decode(ids) == text.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "core/file.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

struct Case {
  std::string text;
  std::vector<int32_t> ids, ids_vl2;
  bool disputed = false;
};

std::vector<Case> load_cases(const std::string& path) {
  std::vector<Case> cases;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int32_t>>(),
                     j["ids_vl2"].get<std::vector<int32_t>>(), j.value("disputed", false)});
  }
  return cases;
}

#define REQUIRE_TOKENIZER()                                                        \
  const std::string dir = test::tokenizer_dir();                                   \
  if (dir.empty() || !file_exists(dir + "/golden.jsonl")) {                        \
    if (test::in_ci()) FAIL() << "tokenizer golden data not found; CI=true requires it"; \
    GTEST_SKIP() << "tokenizer golden data not found (shared/tokenizer)";          \
  }

TEST(TokenizerGolden, AllCasesEncodeAndDecode) {
  REQUIRE_TOKENIZER();
  const auto cases = load_cases(dir + "/golden.jsonl");
  ASSERT_EQ(cases.size(), 260u);
  Tokenizer raw = Tokenizer::load(dir + "/deepseek_v3", {.vl2_tokens = false});
  Tokenizer vl2 = Tokenizer::load(dir + "/deepseek_v3/tokenizer.json");
  int pass = 0, disputed_pass = 0;
  for (size_t i = 0; i < cases.size(); i++) {
    const Case& c = cases[i];
    auto ids = raw.encode(c.text);
    auto ids_vl2 = vl2.encode(c.text);
    auto text = raw.decode(c.ids);
    EXPECT_EQ(ids, c.ids) << "case " << i << " ids: " << c.text;
    EXPECT_EQ(ids_vl2, c.ids_vl2) << "case " << i << " ids_vl2: " << c.text;
    EXPECT_EQ(text, c.text) << "case " << i << " decode";
    bool ok = ids == c.ids && ids_vl2 == c.ids_vl2 && text == c.text;
    pass += ok;
    disputed_pass += ok && c.disputed;
  }
  std::printf("tokenizer golden: %d / %zu cases pass (%d disputed)\n", pass, cases.size(), disputed_pass);
}

TEST(TokenizerGolden, Vl2TokenIds) {
  REQUIRE_TOKENIZER();
  Tokenizer vl2 = Tokenizer::load(dir + "/deepseek_v3");
  auto j = nlohmann::json::parse(read_file(dir + "/vl2_added_tokens.json"));
  ASSERT_EQ(j.size(), 8u);
  for (const auto& t : j) {
    EXPECT_EQ(vl2.token_to_id(t["content"].get<std::string>()), t["id"].get<int32_t>());
    EXPECT_TRUE(vl2.is_special(t["id"].get<int32_t>()));
  }
  EXPECT_EQ(vl2.vocab_size(), 128823);
  EXPECT_EQ(vl2.bos_id(), 0);
  EXPECT_EQ(vl2.eos_id(), 1);
  Tokenizer raw = Tokenizer::load(dir + "/deepseek_v3", {.vl2_tokens = false});
  EXPECT_EQ(raw.vocab_size(), 128815);
  EXPECT_FALSE(raw.token_to_id("<image>").has_value());
}

}  // namespace
}  // namespace dsvl2
