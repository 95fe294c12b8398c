#include "train/sft_sample.h"

#include "core/error.h"
#include "text/tokenizer.h"

namespace dsvl2 {

int64_t SftSample::n_supervised() const {
  int64_t n = 0;
  for (size_t t = 1; t < labels.size(); t++) n += labels[t] != kIgnoreLabel;
  return n;
}

SftSample build_sft_ids(const Tokenizer& tok, const std::vector<ChatMessage>& conv,
                        std::span<const int64_t> image_token_counts, const SftLimits& limits) {
  // Checked before tokenizing: the image tokens alone may already be too many.
  int64_t image_tokens = 0;
  for (int64_t n : image_token_counts) image_tokens += n > 0 ? n : 0;
  if (limits.max_length > 0 && image_tokens > limits.max_length)
    DSVL2_FAIL_KIND(kTooLong, "sample has %lld image tokens, over the maximum length %lld", (long long)image_tokens,
                    (long long)limits.max_length);

  PromptIds p = build_prompt_ids(tok, conv, image_token_counts, {.add_generation_prompt = false, .training = true});
  DSVL2_CHECK(p.labels.size() == p.ids.size(), "training mode must give one label per id");
  SftSample s;
  s.input_ids = std::move(p.ids);
  s.labels = std::move(p.labels);
  s.image_mask = std::move(p.image_mask);
  s.image_spans = std::move(p.images);
  if (limits.max_length > 0 && s.size() > limits.max_length)
    DSVL2_FAIL_KIND(kTooLong, "sample has %lld tokens, over the maximum length %lld", (long long)s.size(),
                    (long long)limits.max_length);
  // A sample without an answer token adds nothing to the loss (and 0/0 to a mean).
  if (s.n_supervised() == 0) DSVL2_FAIL("sample has no supervised token (no assistant answer)");
  return s;
}

SftSample build_sft_sample(const Tokenizer& tok, const std::vector<ChatMessage>& conv,
                           const std::vector<Image>& images, const ProcessorConfig& proc, const SftLimits& limits,
                           bool preprocess) {
  const bool crop = cropping_enabled(CropMode::kAuto, images.size());
  std::vector<int64_t> counts;
  counts.reserve(images.size());
  for (const Image& im : images) counts.push_back(image_token_count(im, proc, crop));
  SftSample s = build_sft_ids(tok, conv, counts, limits);
  if (!preprocess) return s;
  s.images = preprocess_images(images, proc, CropMode::kAuto);
  const int64_t* n = s.images.num_image_tokens.as<int64_t>();
  for (size_t i = 0; i < counts.size(); i++)
    DSVL2_CHECK(n[i] == counts[i], "image %zu: %lld tokens preprocessed, %lld counted", i, (long long)n[i],
                (long long)counts[i]);
  return s;
}

}  // namespace dsvl2
