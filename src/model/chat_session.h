// One conversation with DeepSeek-VL2: messages, attached images and the KV
// cache, kept across turns. Each turn re-renders the whole conversation with
// the official template and prefills only what differs from the cached
// tokens, so a follow-up question costs only its own tokens. Image tokens are
// encoded once per image (again only if the crop rule flips, when the
// conversation passes two images).
//
//   ChatSession chat(model, ops, {.context = 4096});
//   chat.ask("What is in this picture?", {load_image("a.jpg")}, req, print);
//   chat.ask("And what colour is it?", {}, req, print);
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "model/generate.h"
#include "model/vl_model.h"
#include "text/chat_template.h"

namespace dsvl2 {

struct ChatSessionOptions {
  int context = 0;  // 0: the model's max_position_embeddings
  std::string system;
};

struct TurnStats {
  double encode_s = 0;  // preprocessing + vision
  int new_prompt_tokens = 0, reused_tokens = 0, image_tiles = 0;
};

class ChatSession {
 public:
  ChatSession(const VisionLanguageModel& model, const Ops& ops, const ChatSessionOptions& opt = {});

  // Adds a user turn (with images attached to it) and generates the answer,
  // which becomes the assistant turn.
  GenerateResult ask(const std::string& text, std::vector<Image> images, const GenerateRequest& req,
                     const std::function<void(std::string_view)>& on_text, TurnStats* stats = nullptr);
  void clear();
  // Called while images are encoded: (tiles in this pass, blocks done, blocks).
  void set_progress(std::function<void(int, int, int)> progress) { progress_ = std::move(progress); }
  int tokens_in_cache() const { return cache_.length(); }
  const std::vector<ChatMessage>& messages() const { return conv_; }

 private:
  struct AttachedImage {
    Image image;
    bool crop = false;          // crop flag its tokens were made with
    uint64_t hash = 0;          // image_content_hash(image, crop) when encoded
    Tensor tokens;              // [n_tokens, hidden], empty until encoded
  };
  const VisionLanguageModel& model_;
  Ops ops_;
  std::vector<ChatMessage> conv_;
  std::vector<AttachedImage> images_;
  KVCache cache_;
  // One key per position whose K/V the cache holds: the token id, or at an
  // image position the image's content hash and the position within it
  // (every image position has the same token id, so ids alone would reuse
  // another image's K/V).
  std::vector<uint64_t> cached_keys_;
  std::function<void(int, int, int)> progress_;
};

}  // namespace dsvl2
