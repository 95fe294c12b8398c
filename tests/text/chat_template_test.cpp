// The "deepseek" template. Expected strings follow conversation.py
// (Conversation.get_prompt, SeparatorStyle.DeepSeek) and
// processing_deepseek_vl_v2.py (format_messages, format_messages_v2,
// tokenize_with_images); ids use the stub tokenizer, where an ASCII byte c is
// id c - 0x20 + 3, '\n' 98, bos 0, eos 1, <image> 100, <|User|> 106,
// <|Assistant|> 107.
#include <gtest/gtest.h>

#include "core/error.h"
#include "stub_tokenizer.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace dsvl2 {
namespace {

using Ids = std::vector<int32_t>;
constexpr int32_t kBos = 0, kEos = 1, kImg = 100, kUser = 106, kAsst = 107;

Ids ascii(std::string_view s) { return test::stub_ascii(s); }
Ids cat(std::initializer_list<Ids> parts) { return test::stub_cat(parts); }
// "<|User|>: {q}\n\n<|Assistant|>:" in stub ids.
Ids user_turn(std::string_view q) { return cat({{kUser}, ascii(": "), ascii(q), ascii("\n\n"), {kAsst}, ascii(":")}); }

class ChatTemplate : public ::testing::Test {
 protected:
  Tokenizer tok = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
};

TEST_F(ChatTemplate, SingleTurnString) {
  std::vector<ChatMessage> c = {{ChatRole::kUser, "Describe this image.\n", 1}};
  EXPECT_EQ(format_sft_prompt(c), "<|User|>: <image>\nDescribe this image.\n\n<|Assistant|>:");
  // The web demo prepends tags before format_messages strips the content, so
  // leading spaces of the text stay after the tag.
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "  Hi", 1}}), "<|User|>: <image>\n  Hi\n\n<|Assistant|>:");
  // Explicit empty assistant turn, as the official inference.py writes it.
  c.push_back({ChatRole::kAssistant, "", -1});
  EXPECT_EQ(format_sft_prompt(c, {.add_generation_prompt = false}),
            "<|User|>: <image>\nDescribe this image.\n\n<|Assistant|>:");
  // Without the generation prompt, format_messages' final strip() drops the "\n\n".
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "Hi", -1}}, {.add_generation_prompt = false}), "<|User|>: Hi");
}

TEST_F(ChatTemplate, MultiTurnString) {
  // conversation.py's __main__ example with the "deepseek" template.
  std::vector<ChatMessage> c = {{ChatRole::kUser, "Hello!"},
                                {ChatRole::kAssistant, "Hi! This is Tony."},
                                {ChatRole::kUser, "Who are you?"},
                                {ChatRole::kAssistant, "I am a helpful assistant."},
                                {ChatRole::kUser, "How are you?"}};
  EXPECT_EQ(format_sft_prompt(c),
            "<|User|>: Hello!\n\n<|Assistant|>: Hi! This is Tony.<｜end▁of▁sentence｜>"
            "<|User|>: Who are you?\n\n<|Assistant|>: I am a helpful assistant.<｜end▁of▁sentence｜>"
            "<|User|>: How are you?\n\n<|Assistant|>:");
}

TEST_F(ChatTemplate, SystemString) {
  std::vector<ChatMessage> c = {{ChatRole::kSystem, "You are a helpful assistant."}, {ChatRole::kUser, "Hi"}};
  EXPECT_EQ(format_sft_prompt(c), "You are a helpful assistant.\n\n<|User|>: Hi\n\n<|Assistant|>:");
}

TEST_F(ChatTemplate, MultiImageTags) {
  // Tags already present are kept; missing ones are prepended one per line.
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "<image>\n<image>\nDescribe the two images.", 2}}),
            "<|User|>: <image>\n<image>\nDescribe the two images.\n\n<|Assistant|>:");
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "Describe the two images.", 2}}),
            "<|User|>: <image>\n<image>\nDescribe the two images.\n\n<|Assistant|>:");
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "Compare <image> with this.", 2}}),
            "<|User|>: <image>\nCompare <image> with this.\n\n<|Assistant|>:");
  // More tags than images: the first ones are removed (str.replace with a count).
  EXPECT_EQ(reconcile_image_tags("<image>a<image>b<image>", 1), "ab<image>");
  // Only occurrences of the original text count: a tag formed by a removal stays.
  EXPECT_EQ(reconcile_image_tags("<ima<image>ge><image>", 0 + 1), "<image><image>");
  EXPECT_EQ(reconcile_image_tags("<image>a", -1), "<image>a");
  EXPECT_EQ(reconcile_image_tags("a", 0), "a");
}

TEST_F(ChatTemplate, SingleTurnIds) {
  const int64_t counts[] = {3};
  PromptIds p = build_prompt_ids(tok, {{ChatRole::kUser, "Hi", 1}}, counts);
  // "<|User|>: " | image run | "\nHi\n\n<|Assistant|>:", text pieces encoded apart.
  Ids want = cat({{kBos, kUser}, ascii(": "), {kImg, kImg, kImg}, ascii("\nHi\n\n"), {kAsst}, ascii(":")});
  EXPECT_EQ(p.ids, want);
  ASSERT_EQ(p.images.size(), 1u);
  EXPECT_EQ(p.images[0].begin, 4);
  EXPECT_EQ(p.images[0].count, 3);
  EXPECT_EQ(p.image_mask, (std::vector<uint8_t>{0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}));
}

TEST_F(ChatTemplate, MultiTurnIds) {
  // format_messages_v2: assistant answers are stripped and end with EOS, with no
  // space after "<|Assistant|>:"; the final EOS goes (inference mode).
  std::vector<ChatMessage> c = {{ChatRole::kUser, "Q1"}, {ChatRole::kAssistant, " A1 "}, {ChatRole::kUser, "Q2"}};
  PromptIds p = build_prompt_ids(tok, c, {});
  EXPECT_EQ(p.ids, cat({{kBos}, user_turn("Q1"), ascii("A1"), {kEos}, user_turn("Q2")}));
  EXPECT_TRUE(p.images.empty());
  // An explicit empty last assistant turn gives the same ids.
  c.push_back({ChatRole::kAssistant, ""});
  EXPECT_EQ(build_prompt_ids(tok, c, {}).ids, p.ids);
  // A non-empty last assistant turn is a prefill: its text, no EOS.
  c.back().content = "Sure";
  EXPECT_EQ(build_prompt_ids(tok, c, {}).ids, cat({p.ids, ascii("Sure")}));
}

TEST_F(ChatTemplate, SystemIds) {
  // format_messages_v2 encodes the system text alone, with nothing after it.
  PromptIds p = build_prompt_ids(tok, {{ChatRole::kSystem, " Be brief. "}, {ChatRole::kUser, "Hi"}}, {});
  EXPECT_EQ(p.ids, cat({{kBos}, ascii("Be brief."), user_turn("Hi")}));
}

TEST_F(ChatTemplate, MultiImageIds) {
  const int64_t counts[] = {2, 1, 4};
  std::vector<ChatMessage> c = {{ChatRole::kUser, "A", 1}, {ChatRole::kAssistant, "B"}, {ChatRole::kUser, "<image>x<image>", 2}};
  PromptIds p = build_prompt_ids(tok, c, counts);
  Ids want = cat({{kBos, kUser}, ascii(": "), {kImg, kImg}, ascii("\nA\n\n"), {kAsst}, ascii(":"), ascii("B"), {kEos},
                  {kUser}, ascii(": "), {kImg}, ascii("x"), {kImg, kImg, kImg, kImg}, ascii("\n\n"), {kAsst}, ascii(":")});
  EXPECT_EQ(p.ids, want);
  ASSERT_EQ(p.images.size(), 3u);
  for (const auto& im : p.images)
    for (int64_t k = 0; k < im.count; k++) EXPECT_EQ(p.ids[size_t(im.begin + k)], kImg);
  EXPECT_EQ(p.images[1].count, 1);
  EXPECT_EQ(p.images[2].begin, p.images[1].begin + 2);
}

TEST_F(ChatTemplate, ImageTokenCount) {
  // 384 / 14 = 27 patches, /2 -> 14: global 14*15 + 1 + local (th*14)*(tw*14+1).
  EXPECT_EQ(image_token_count(1, 1, image_token_side(384, 14, 2)), 421);
  EXPECT_EQ(image_token_count(2, 2, image_token_side(384, 14, 2)), 211 + 28 * 29);
  EXPECT_EQ(image_token_count(1, 3, image_token_side(384, 14, 2)), 211 + 42 * 15);
}

TEST_F(ChatTemplate, Errors) {
  const int64_t one[] = {5};
  EXPECT_THROW(build_prompt_ids(tok, {{ChatRole::kUser, "<image><image>"}}, one), Error);
  EXPECT_THROW(build_prompt_ids(tok, {{ChatRole::kUser, "x", 1}}, {}), Error);
  EXPECT_THROW(build_prompt_ids(tok, {{ChatRole::kUser, "x"}, {ChatRole::kSystem, "s"}}, {}), Error);
  EXPECT_THROW(build_prompt_ids(tok, {{ChatRole::kUser, "x"}, {ChatRole::kAssistant, "<image>"}}, one), Error);
  const int64_t zero[] = {0};
  EXPECT_THROW(build_prompt_ids(tok, {{ChatRole::kUser, "<image>"}}, zero), Error);
  Tokenizer raw = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub", {.vl2_tokens = false});
  EXPECT_THROW(build_prompt_ids(raw, {{ChatRole::kUser, "<image>"}}, one), Error);
  EXPECT_THROW(format_sft_prompt({{ChatRole::kUser, "\xff"}}), Error);
  EXPECT_THROW(parse_chat_role("robot"), Error);
  EXPECT_EQ(parse_chat_role("<|User|>"), ChatRole::kUser);
  EXPECT_EQ(parse_chat_role("assistant"), ChatRole::kAssistant);
}

TEST_F(ChatTemplate, PythonStripWhitespace) {
  // str.strip() removes Unicode whitespace such as U+3000 and U+001C, but not U+200B.
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "\xE3\x80\x80\x1cHi\xC2\x85"}}), "<|User|>: Hi\n\n<|Assistant|>:");
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "\xE2\x80\x8BHi"}}), "<|User|>: \xE2\x80\x8BHi\n\n<|Assistant|>:");
  // A whitespace-only message renders as "role:" with no separator.
  EXPECT_EQ(format_sft_prompt({{ChatRole::kUser, "  "}}), "<|User|>:<|Assistant|>:");
}

}  // namespace
}  // namespace dsvl2
