// DeepSeek-VL2 "deepseek" chat template (deepseek_vl2/models/conversation.py,
// processing_deepseek_vl_v2.py), byte-exact:
//  * format_sft_prompt(): the display string, DeepseekVLV2Processor.format_messages
//    (Conversation.get_prompt, SeparatorStyle.DeepSeek, then .strip()), e.g.
//    "<|User|>: <image>\nDescribe.\n\n<|Assistant|>:".
//  * build_prompt_ids(): the model input, format_messages_v2 + tokenize_with_images
//    in inference mode: BOS; each user turn tokenized alone as
//    "<|User|>: {content.strip()}\n\n<|Assistant|>:" with every <image> replaced by
//    its image-token run; each assistant turn as content.strip() + EOS; the final
//    EOS dropped. A system message (first only) is tokenized as its stripped text
//    with nothing after it, as format_messages_v2 does; the display string puts
//    it before the turns followed by "\n\n" (format_messages' system_prompt).
//  * Training (ChatOptions::training): process_one with inference_mode=False and
//    mask_prompt=True: the same ids with the final EOS kept, plus labels (target_ids):
//    BOS keeps its id, user turns, system text and image tokens are kIgnoreLabel,
//    each assistant answer and its EOS are supervised (label = id).
//  * Image tags: a message with n_images > 0 has missing <image> tags prepended
//    one per line, and excess tags removed from the left, as the web demo
//    (web_demo.py generate_prompt_with_history) does.
#pragma once
#include "core/image_tokens.h"
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2 {

class Tokenizer;

inline constexpr std::string_view kImageTag = "<image>";
inline constexpr std::string_view kUserRole = "<|User|>";
inline constexpr std::string_view kAssistantRole = "<|Assistant|>";
inline constexpr std::string_view kEosText = "<｜end▁of▁sentence｜>";
inline constexpr int32_t kIgnoreLabel = -100;  // the official ignore_id: no loss at this position

enum class ChatRole { kSystem, kUser, kAssistant };
// "system"; "user" or "<|User|>"; "assistant" or "<|Assistant|>". Throws Error.
ChatRole parse_chat_role(std::string_view s);

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  std::string content;
  // Images attached to this message; -1: take the <image> tags as written.
  int n_images = -1;
};

// The web demo's tag reconciliation for a message carrying n_images images.
std::string reconcile_image_tags(std::string_view text, int n_images);

struct ChatOptions {
  // When the conversation ends with a user turn, add the empty assistant turn
  // so the prompt ends with "<|Assistant|>:".
  bool add_generation_prompt = true;
  // Training mode (see the top of this file): the conversation is taken as it
  // is (add_generation_prompt is not applied), the final EOS stays and
  // PromptIds::labels is filled.
  bool training = false;
};

// The official sft_format display string. Throws Error on bad conversations.
std::string format_sft_prompt(const std::vector<ChatMessage>& conv, const ChatOptions& opt = {});

struct ImageSpan {
  int64_t begin = 0;  // index of the first image token in ids
  int64_t count = 0;  // number of image tokens (the caller's count for this image)
};

struct PromptIds {
  std::vector<int32_t> ids;
  std::vector<uint8_t> image_mask;  // images_seq_mask: 1 at image-token positions
  std::vector<ImageSpan> images;    // one per image, in order
  std::vector<int32_t> labels;      // training mode only: target_ids, same length as ids
};

// Token ids of the conversation. image_token_counts[i] is the number of image
// tokens of the i-th image of the conversation (in order of the <image> tags
// after reconciliation); their number must equal the number of tags.
PromptIds build_prompt_ids(const Tokenizer& tok, const std::vector<ChatMessage>& conv,
                           std::span<const int64_t> image_token_counts, const ChatOptions& opt = {});


}  // namespace dsvl2
