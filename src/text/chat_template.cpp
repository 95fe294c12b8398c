#include "text/chat_template.h"

#include "core/error.h"
#include "core/image_tokens.h"
#include "text/tokenizer.h"
#include "core/utf8.h"

namespace dsvl2 {
namespace {

size_t count_tags(std::string_view s) {
  size_t n = 0;
  for (size_t p = s.find(kImageTag); p != std::string_view::npos; p = s.find(kImageTag, p + kImageTag.size())) n++;
  return n;
}

std::string strip(std::string_view s) {
  if (size_t bad = utf8::find_invalid(s); bad != std::string_view::npos)
    DSVL2_FAIL("chat message is not valid UTF-8 (byte offset %zu)", bad);
  return std::string(utf8::python_strip(s));
}

// Checks the message order rules of format_messages_v2 and returns the
// conversation with tags reconciled and, if asked, the empty assistant turn.
std::vector<ChatMessage> prepare(const std::vector<ChatMessage>& conv, const ChatOptions& opt) {
  std::vector<ChatMessage> out;
  out.reserve(conv.size() + 1);
  for (size_t i = 0; i < conv.size(); i++) {
    const ChatMessage& m = conv[i];
    if (m.role == ChatRole::kSystem && i != 0)
      DSVL2_FAIL("chat: a system message is only allowed as the first message (message %zu)", i);
    ChatMessage c = m;
    c.content = reconcile_image_tags(m.content, m.n_images);
    if (m.role != ChatRole::kUser && count_tags(c.content))
      DSVL2_FAIL("chat: only user messages may hold <image> (message %zu)", i);
    out.push_back(std::move(c));
  }
  if (opt.add_generation_prompt && !opt.training && !out.empty() && out.back().role == ChatRole::kUser)
    out.push_back({ChatRole::kAssistant, "", -1});
  return out;
}

std::string_view role_name(ChatRole r) { return r == ChatRole::kUser ? kUserRole : kAssistantRole; }

// Conversation.get_prompt() for SeparatorStyle.DeepSeek with sep "\n\n" and
// sep2 EOS; `msgs` are (role, already stripped message).
void render_turns(const std::vector<std::pair<ChatRole, std::string>>& msgs, std::string& ret) {
  for (size_t i = 0; i < msgs.size(); i++) {
    const auto& [role, message] = msgs[i];
    ret += role_name(role);
    if (!message.empty()) {
      ret += ": ";
      ret += message;
      ret += i % 2 == 0 ? std::string_view("\n\n") : kEosText;
    } else {
      ret += ":";
    }
  }
}

void append_tokens(const Tokenizer& tok, std::string_view text, PromptIds& p) {
  tok.encode(text, p.ids);
  p.image_mask.resize(p.ids.size(), 0);
}

// Training: labels for the ids appended since the last call, as format_messages_v2
// builds masked_tokenized_data (mask_prompt=True).
void append_labels(PromptIds& p, bool training, bool supervised) {
  if (!training) return;
  for (size_t i = p.labels.size(); i < p.ids.size(); i++) p.labels.push_back(supervised ? p.ids[i] : kIgnoreLabel);
}

}  // namespace

ChatRole parse_chat_role(std::string_view s) {
  if (s == "system") return ChatRole::kSystem;
  if (s == "user" || s == kUserRole) return ChatRole::kUser;
  if (s == "assistant" || s == kAssistantRole) return ChatRole::kAssistant;
  DSVL2_FAIL("unknown chat role '%.*s' (system, user or assistant)", int(s.size()), s.data());
}

std::string reconcile_image_tags(std::string_view text, int n_images) {
  std::string t(text);
  if (n_images <= 0) return t;
  const size_t tags = count_tags(t);
  if (size_t(n_images) > tags) {
    std::string pre;
    for (size_t k = 0; k < size_t(n_images) - tags; k++) {
      if (k) pre += '\n';
      pre += kImageTag;
    }
    return pre + "\n" + t;
  }
  // str.replace(tag, "", count): the first `count` occurrences of the original text.
  std::string out;
  size_t pos = 0, left = tags - size_t(n_images);
  for (size_t f = t.find(kImageTag); left && f != std::string::npos; f = t.find(kImageTag, pos), left--) {
    out.append(t, pos, f - pos);
    pos = f + kImageTag.size();
  }
  out.append(t, pos);
  return out;
}

std::string format_sft_prompt(const std::vector<ChatMessage>& conv, const ChatOptions& opt) {
  std::vector<ChatMessage> msgs = prepare(conv, opt);
  std::string ret;
  std::vector<std::pair<ChatRole, std::string>> turns;
  for (const ChatMessage& m : msgs) {
    if (m.role == ChatRole::kSystem) {
      strip(m.content);  // validates UTF-8
      if (!m.content.empty()) ret = m.content + "\n\n";
    } else {
      turns.emplace_back(m.role, strip(m.content));
    }
  }
  render_turns(turns, ret);
  return std::string(utf8::python_strip(ret));
}

PromptIds build_prompt_ids(const Tokenizer& tok, const std::vector<ChatMessage>& conv,
                           std::span<const int64_t> image_token_counts, const ChatOptions& opt) {
  std::vector<ChatMessage> msgs = prepare(conv, opt);
  size_t total_tags = 0;
  for (const ChatMessage& m : msgs) total_tags += count_tags(m.content);
  if (total_tags != image_token_counts.size())
    DSVL2_FAIL("chat: the conversation has %zu <image> tags but %zu images", total_tags, image_token_counts.size());
  DSVL2_REQUIRE(tok.bos_id() >= 0, "tokenizer has no BOS token <｜begin▁of▁sentence｜>");
  int32_t image_id = -1;
  if (total_tags) {
    auto id = tok.token_to_id(kImageTag);
    DSVL2_REQUIRE(id.has_value(), "tokenizer has no <image> token (loaded without the DeepSeek-VL2 tokens?)");
    image_id = *id;
  }

  PromptIds p;
  p.ids.push_back(tok.bos_id());
  p.image_mask.push_back(0);
  append_labels(p, opt.training, true);  // the official code does not mask BOS
  size_t image_index = 0;
  bool ends_with_eos = false;
  for (const ChatMessage& m : msgs) {
    ends_with_eos = false;
    const std::string content = strip(m.content);
    if (m.role == ChatRole::kSystem) {
      append_tokens(tok, content, p);
      append_labels(p, opt.training, false);
    } else if (m.role == ChatRole::kUser) {
      std::string q;
      render_turns({{ChatRole::kUser, content}, {ChatRole::kAssistant, ""}}, q);
      // tokenize_with_images: text pieces between the tags are encoded apart.
      size_t pos = 0;
      for (size_t t = q.find(kImageTag); t != std::string::npos; t = q.find(kImageTag, pos)) {
        append_tokens(tok, std::string_view(q).substr(pos, t - pos), p);
        const int64_t n = image_token_counts[image_index++];
        if (n <= 0 || n > (int64_t(1) << 24)) DSVL2_FAIL("chat: bad image token count %lld", (long long)n);
        p.images.push_back({int64_t(p.ids.size()), n});
        p.ids.insert(p.ids.end(), size_t(n), image_id);
        p.image_mask.insert(p.image_mask.end(), size_t(n), 1);
        pos = t + kImageTag.size();
      }
      append_tokens(tok, std::string_view(q).substr(pos), p);
      append_labels(p, opt.training, false);
    } else {
      DSVL2_REQUIRE(tok.eos_id() >= 0, "tokenizer has no EOS token <｜end▁of▁sentence｜>");
      append_tokens(tok, content, p);
      p.ids.push_back(tok.eos_id());
      p.image_mask.push_back(0);
      append_labels(p, opt.training, true);
      ends_with_eos = true;
    }
  }
  if (opt.training) {
    // process_one: target_ids[input_ids == image_token_id] = ignore_id, wherever they are.
    if (auto id = tok.token_to_id(kImageTag))
      for (size_t i = 0; i < p.ids.size(); i++)
        if (p.ids[i] == *id) p.labels[i] = kIgnoreLabel;
    return p;
  }
  // inference_mode: the trailing EOS of the last (assistant) turn is removed.
  if (ends_with_eos) {
    p.ids.pop_back();
    p.image_mask.pop_back();
  }
  return p;
}


}  // namespace dsvl2
