// One supervised training sample of DeepSeek-VL2: token ids, labels and the
// preprocessed images, as the official DeepseekVLV2Processor gives them for
// training (process_one with inference_mode=False, mask_prompt=True). The ids
// and labels come from the chat template's training mode (text/chat_template.h),
// so inference and training share one set of tokenization rules:
//   BOS                          label = its id (the official code keeps it)
//   user turns, system text      kIgnoreLabel (-100)
//   image tokens                 kIgnoreLabel
//   each answer + its EOS        label = id
// The loss is taken where the shifted label (labels[t + 1], predicted at t)
// is not kIgnoreLabel, so BOS itself never counts.
//
//   SftSample s = build_sft_sample(tok, conv, {load_image("a.jpg")}, proc, {.max_length = 4096});
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "image/image.h"
#include "image/preprocess.h"
#include "io/model_config.h"
#include "text/chat_template.h"

namespace dsvl2 {

class Tokenizer;

struct SftSample {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> labels;      // same length; kIgnoreLabel where no loss is taken
  std::vector<uint8_t> image_mask;  // images_seq_mask: 1 at image-token positions
  std::vector<ImageSpan> image_spans;
  PreprocessResult images;  // empty tensors when preprocessing was not asked for, or no images

  int64_t size() const { return int64_t(input_ids.size()); }
  // Positions t >= 1 whose label is not kIgnoreLabel: the tokens the loss covers.
  int64_t n_supervised() const;
};

struct SftLimits {
  // Samples longer than this many tokens (image tokens included) are refused
  // with ErrorKind::kTooLong; 0: no limit.
  int64_t max_length = 0;
};

// Ids and labels of a conversation whose i-th image takes image_token_counts[i]
// tokens (in <image> order). The conversation is taken as given (no generation
// prompt), so it should end with an assistant turn. Throws Error for what
// build_prompt_ids refuses, for a sample with no supervised token, and
// (kTooLong) for one over limits.max_length.
SftSample build_sft_ids(const Tokenizer& tok, const std::vector<ChatMessage>& conv,
                        std::span<const int64_t> image_token_counts, const SftLimits& limits = {});

// The same with the images themselves: token counts from their sizes (checked
// against the limits before any pixel is resampled), then preprocess_images
// with CropMode::kAuto exactly as inference does, unless `preprocess` is false
// (an indexing pass that only needs lengths).
SftSample build_sft_sample(const Tokenizer& tok, const std::vector<ChatMessage>& conv,
                           const std::vector<Image>& images, const ProcessorConfig& proc,
                           const SftLimits& limits = {}, bool preprocess = true);

}  // namespace dsvl2
