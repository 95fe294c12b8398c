// The chat template against the official processor's output in the golden
// model cases: sft_format strings and input_ids (made with a byte stub
// tokenizer, which ../text/stub_tokenizer.h reproduces as a tokenizer.json).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../text/stub_tokenizer.h"
#include "core/file.h"
#include "test_util.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

TEST(ChatTemplateGolden, SftFormatAndInputIds) {
  DSVL2_REQUIRE_GOLDEN();
  Tokenizer tok = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
  ASSERT_EQ(tok.token_to_id("<image>"), 100);
  ASSERT_EQ(tok.token_to_id("<|Assistant|>"), 107);
  int checked = 0;
  for (const char* c : {"tiny_like", "small_like", "base_like"}) {
    const std::string path = test::golden_dir() + "/" + c + "/expected.json";
    if (!file_exists(path)) continue;
    auto j = nlohmann::json::parse(read_file(path));
    ASSERT_FALSE(j["prompts"].empty()) << "no cases: the loop below would pass vacuously";
    for (auto& [name, p] : j["prompts"].items()) {
      SCOPED_TRACE(std::string(c) + "/" + name);
      const int n_images = int(p["images"].size());
      std::vector<ChatMessage> conv = {{ChatRole::kUser, p["text"].get<std::string>(), n_images}};
      EXPECT_EQ(format_sft_prompt(conv), p["sft_format"].get<std::string>());
      std::vector<int64_t> counts;
      int64_t total = 0;
      for (const auto& sc : p["images_spatial_crop"]) {
        counts.push_back(image_token_count(sc[0].get<int>(), sc[1].get<int>(), image_token_side(384, 14, 2)));
        total += counts.back();
      }
      EXPECT_EQ(total, p["num_image_tokens"].get<int64_t>());
      PromptIds ids = build_prompt_ids(tok, conv, counts);
      auto want = p["input_ids"].get<std::vector<int32_t>>();
      EXPECT_EQ(ids.ids, want);
      ASSERT_EQ(ids.image_mask.size(), ids.ids.size());
      ASSERT_EQ(ids.images.size(), counts.size());
      for (size_t i = 0; i < ids.ids.size(); i++) EXPECT_EQ(ids.image_mask[i] != 0, want[i] == 100);
      checked++;
    }
  }
  EXPECT_GT(checked, 0);
}

}  // namespace
}  // namespace dsvl2
