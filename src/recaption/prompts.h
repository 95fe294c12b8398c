// The words the recaption job says to the model: PixelProse's five caption
// prompts (verbatim, typos included: byte-exact prompts matter), its
// alt-text and negative-description additions, DeepSeek-VL2's OCR hints and
// meta information, the VQA regeneration prompt, the zero-shot screening
// questions and the writing-quality judge. The wording of every addition
// PixelProse and DeepSeek-VL2 did not publish is ours (docs/recaption.md).
//
//   PromptPlan p = plan_prompt(seed, key, has_alt, 0.5, 0.2);   // same key+seed: same plan, anywhere
//   std::string text = build_caption_prompt(p, {.alt_text = alt, .ocr_lines = lines, .meta = phrase});
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2::recaption {

inline constexpr int kCaptionPromptCount = 5;
// PixelProse App. A.1, prompt P(id + 1).
std::string_view caption_prompt(int id);

struct PromptPlan {
  int prompt_id = 0;               // 0..4
  bool alt_text_inserted = false;  // only when the record has alt-text
  bool asked_negatives = false;
};
// Drawn from the record key's own random stream (core/rng.h): the same key
// and seed give the same plan on any machine, shard count or input order.
PromptPlan plan_prompt(uint64_t seed, std::string_view key, bool has_alt_text, double p_alt, double p_neg);

// Untrusted text (alt-text, OCR lines, EXIF strings, questions, captions)
// must not place special tokens: "<image>" in alt-text would move the image,
// "<｜end▁of▁sentence｜>" would end the prompt. Every builder below passes
// such text through this, which puts a space after the '<' of "<|", "<｜"
// and "<image>".
std::string defuse_markup(std::string_view text);

// What DeepSeek-VL2 added to the prompt. Strings must be valid UTF-8.
struct PromptContext {
  std::string alt_text;                 // used only when the plan inserts it
  std::vector<std::string> ocr_lines;   // OCR hints, most confident first
  std::string meta;                     // dataset::describe_meta(), "" for none
};
// Caps that keep the hints from crowding out the image in the context.
inline constexpr size_t kMaxOcrHintLines = 16;
inline constexpr size_t kMaxHintChars = 600;

std::string build_caption_prompt(const PromptPlan& plan, const PromptContext& ctx);
// DeepSeek-VL2's SFT VQA regeneration: "jointly considering the original
// questions, images, and OCR information". `original_answer` may be empty.
std::string build_vqa_prompt(std::string_view question, std::string_view original_answer, const PromptContext& ctx);

// Zero-shot screening questions, answered "Yes" or "No" (recaption/screening.h).
enum class ScreenKind { kSafety, kWatermark };
std::string_view screening_question(ScreenKind kind);
const char* screen_name(ScreenKind kind);  // "safety", "watermark"

// The writing-quality judge (DeepSeek-VL2 scored every caption "simply based
// on their writing quality"), answered with one number.
std::string build_quality_prompt(std::string_view caption);
// Strict: the answer, trimmed of whitespace and one trailing period, must be
// an integer 1..10 (optionally "N/10"); anything else is nullopt.
std::optional<int> parse_quality_score(std::string_view answer);

}  // namespace dsvl2::recaption
