#include "model/chat_session.h"

#include <chrono>
#include <cstring>

#include "core/error.h"
#include "model/prefix_keys.h"

namespace dsvl2 {

ChatSession::ChatSession(const VisionLanguageModel& model, const Ops& ops, const ChatSessionOptions& opt)
    : model_(model), ops_(ops), cache_(model.config().language, opt.context, kv_dtype_for(ops.compute)) {
  if (!opt.system.empty()) conv_.push_back({ChatRole::kSystem, opt.system, 0});
}

void ChatSession::clear() {
  ChatMessage system;
  bool has_system = !conv_.empty() && conv_[0].role == ChatRole::kSystem;
  if (has_system) system = conv_[0];
  conv_.clear();
  if (has_system) conv_.push_back(system);
  images_.clear();
  cache_.clear();
  cached_keys_.clear();
}

GenerateResult ChatSession::ask(const std::string& text, std::vector<Image> images, const GenerateRequest& req,
                                const std::function<void(std::string_view)>& on_text, TurnStats* stats) {
  const Tokenizer& tok = model_.tokenizer();
  const int image_token_id = model_.image_token_id();
  if (!images.empty() && image_token_id < 0)
    DSVL2_FAIL("%s: the tokenizer has no %s token, so images cannot be placed", model_.dir().c_str(),
               model_.processor().image_token.c_str());
  TurnStats local;
  if (!stats) stats = &local;
  *stats = {};
  const size_t n_messages = conv_.size(), n_images = images_.size();
  conv_.push_back({ChatRole::kUser, text, int(images.size())});
  for (auto& im : images) images_.push_back({std::move(im), false, 0, {}});
  try {
    // Image tokens: the crop rule depends on how many images the whole
    // conversation has (official: cropping only with <= 2 images).
    auto t0 = std::chrono::steady_clock::now();
    const bool crop = cropping_enabled(CropMode::kAuto, images_.size());
    for (auto& a : images_) {
      if (a.tokens.numel() > 0 && a.crop == crop) continue;
      PreprocessResult pre = preprocess_images({a.image}, model_.processor(), crop ? CropMode::kOn : CropMode::kOff);
      const int tiles = int(pre.pixel_values.dim(0));
      stats->image_tiles += tiles;
      std::function<void(int, int)> on_block;
      if (progress_) on_block = [&](int done, int total) { progress_(tiles, done, total); };
      a.tokens = model_.vision().embed_images(pre.pixel_values, pre.images_spatial_crop, ops_, nullptr, nullptr, on_block);
      a.crop = crop;
      a.hash = image_content_hash(a.image, crop);  // the crop flag changes the tokens
    }
    stats->encode_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

    std::vector<int64_t> counts;
    for (const auto& a : images_) counts.push_back(a.tokens.dim(0));
    PromptIds prompt = build_prompt_ids(tok, conv_, counts);
    std::vector<uint64_t> hashes;
    for (const auto& a : images_) hashes.push_back(a.hash);
    std::vector<uint64_t> keys = prefix_keys(prompt, hashes);
    // Reuse the cached prefix; at least one token must be run to get logits.
    size_t common = common_prefix(cached_keys_, keys);
    if (common == keys.size()) common--;
    cache_.truncate(int(common));
    cached_keys_.resize(common);
    const int T = int(prompt.ids.size() - common);
    stats->new_prompt_tokens = T;
    stats->reused_tokens = int(common);

    std::vector<int> new_ids(prompt.ids.begin() + int64_t(common), prompt.ids.end());
    Tensor embeds = model_.language().embed(new_ids);
    const int64_t hidden = embeds.dim(1);
    for (size_t i = 0; i < prompt.images.size(); i++) {
      const ImageSpan& span = prompt.images[i];
      const Tensor& tokens = images_[i].tokens;
      DSVL2_CHECK(span.count == tokens.dim(0), "image %zu: %lld positions for %lld tokens", i, (long long)span.count,
                  (long long)tokens.dim(0));
      for (int64_t r = 0; r < span.count; r++) {
        int64_t pos = span.begin + r;
        if (pos < int64_t(common)) continue;
        std::memcpy(embeds.f32() + (pos - int64_t(common)) * hidden, tokens.f32() + r * hidden, size_t(hidden) * 4);
      }
    }
    GenerateResult g = generate(model_.language(), tok, embeds.f32(), T, prompt.ids, cache_, ops_, req, on_text);
    cached_keys_ = std::move(keys);
    cached_keys_.insert(cached_keys_.end(), g.fed_ids.begin(), g.fed_ids.end());
    conv_.push_back({ChatRole::kAssistant, g.text, 0});
    return g;
  } catch (...) {
    conv_.resize(n_messages);
    images_.resize(n_images);
    throw;
  }
}

}  // namespace dsvl2
