// build_sft_ids: the chat template's training mode. Ids use the stub
// tokenizer (ASCII byte c is id c - 0x20 + 3, '\n' 98, bos 0, eos 1,
// <image> 100, <|User|> 106, <|Assistant|> 107).
#include <gtest/gtest.h>

#include "../text/stub_tokenizer.h"
#include "core/error.h"
#include "text/tokenizer.h"
#include "train/sft_sample.h"

namespace dsvl2 {
namespace {

using Ids = std::vector<int32_t>;
constexpr int32_t kI = kIgnoreLabel;

Ids ascii(std::string_view s) { return test::stub_ascii(s); }
Ids cat(std::initializer_list<Ids> parts) { return test::stub_cat(parts); }
Ids masked(size_t n) { return Ids(n, kI); }

class SftSampleTest : public ::testing::Test {
 protected:
  Tokenizer tok = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
  const Ids user_q = cat({{106}, ascii(": "), ascii("Q?"), ascii("\n\n"), {107}, ascii(":")});
};

TEST_F(SftSampleTest, MaskingFollowsFormatMessagesV2) {
  // System text masked; each answer stripped and tokenized alone (no space
  // after "<|Assistant|>:"), supervised with its EOS; BOS keeps its id.
  std::vector<ChatMessage> c = {{ChatRole::kSystem, " Sys ", -1},
                                {ChatRole::kUser, "Q?", -1},
                                {ChatRole::kAssistant, " Ab \n", -1},
                                {ChatRole::kUser, "Q?", -1},
                                {ChatRole::kAssistant, "C", -1}};
  SftSample s = build_sft_ids(tok, c, {});
  EXPECT_EQ(s.input_ids, cat({{0}, ascii("Sys"), user_q, ascii("Ab"), {1}, user_q, ascii("C"), {1}}));
  EXPECT_EQ(s.labels,
            cat({{0}, masked(3), masked(user_q.size()), ascii("Ab"), {1}, masked(user_q.size()), ascii("C"), {1}}));
  EXPECT_EQ(s.n_supervised(), 5);
  // The same ids as inference, which only drops the final EOS.
  PromptIds inf = build_prompt_ids(tok, c, {});
  EXPECT_EQ(inf.ids, Ids(s.input_ids.begin(), s.input_ids.end() - 1));
  EXPECT_TRUE(inf.labels.empty());
}

TEST_F(SftSampleTest, ImageTokensAreMasked) {
  std::vector<ChatMessage> c = {{ChatRole::kUser, "<image>\nQ?", -1}, {ChatRole::kAssistant, "A", -1}};
  SftSample s = build_sft_ids(tok, c, std::vector<int64_t>{5});
  const Ids head = cat({{0, 106}, ascii(": ")});
  EXPECT_EQ(s.input_ids, cat({head, Ids(5, 100), ascii("\nQ?\n\n"), {107}, ascii(":A"), {1}}));
  EXPECT_EQ(s.labels, cat({{0}, masked(s.input_ids.size() - 3), ascii("A"), {1}}));
  ASSERT_EQ(s.image_spans.size(), 1u);
  EXPECT_EQ(s.image_spans[0].begin, int64_t(head.size()));
  for (size_t i = 0; i < s.input_ids.size(); i++) EXPECT_EQ(s.image_mask[i] != 0, s.input_ids[i] == 100) << i;
}

TEST_F(SftSampleTest, ConversationIsTakenAsGiven) {
  // An empty answer still supervises its EOS.
  SftSample e = build_sft_ids(tok, {{ChatRole::kUser, "Q?", -1}, {ChatRole::kAssistant, "", -1}}, {});
  EXPECT_EQ(e.input_ids, cat({{0}, user_q, {1}}));
  EXPECT_EQ(e.n_supervised(), 1);
  // A trailing question is kept, masked, with no generation prompt added.
  SftSample t = build_sft_ids(
      tok, {{ChatRole::kUser, "Q?", -1}, {ChatRole::kAssistant, "A", -1}, {ChatRole::kUser, "Q?", -1}}, {});
  EXPECT_EQ(t.input_ids, cat({{0}, user_q, ascii("A"), {1}, user_q}));
  EXPECT_EQ(t.labels.back(), kI);
}

TEST_F(SftSampleTest, RefusesLabelFreeAndLongSamples) {
  try {
    build_sft_ids(tok, {{ChatRole::kSystem, "S", -1}, {ChatRole::kUser, "Q?", -1}}, {});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("no supervised token"), std::string::npos);
  }
  std::vector<ChatMessage> c = {{ChatRole::kUser, "Q?", -1}, {ChatRole::kAssistant, "A", -1}};
  const int64_t n = build_sft_ids(tok, c, {}).size();
  EXPECT_EQ(build_sft_ids(tok, c, {}, {.max_length = n}).size(), n);
  try {
    build_sft_ids(tok, c, {}, {.max_length = n - 1});
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kTooLong);
  }
  EXPECT_THROW(build_sft_ids(tok, {{ChatRole::kUser, "<image>Q", -1}, {ChatRole::kAssistant, "A", -1}}, {}), Error);
}

}  // namespace
}  // namespace dsvl2
