#include "recaption/prompts.h"

#include <cctype>

#include "core/error.h"
#include "core/rng.h"

namespace dsvl2::recaption {
namespace {

// PixelProse (arXiv 2406.10328) App. A.1, copied byte for byte: curly and
// straight quotes as written, "atmost", "desciptive", the missing space in
// "font.Describe".
const char* const kPrompts[kCaptionPromptCount] = {
    R"P(Describe the image in detail. Please specify any objects within the image, backgrounds, scenery, interactions, and gestures or poses. If they are multiple of any object, please specify how many and where they are. If any text is present in the image, mention where it is, and the font.Describe the text in detail with quotation marks. For example, if the image has text, Merry Christmas, write it down as “Merry Christmas”. Describe the style of the image. If there are people or characters in the image, what emotions are they conveying? Identify the style of the image, and describe it as well. Please keep your descriptions factual and terse but complete. The description should be purely factual, with no subjective speculation. Make sure to include the style of the image, for example cartoon, photograph, 3d render etc. Start with the words ‘This image displays:’)P",
    R"P(Describe every component of this image, as it were described by an artist in atmost two paragraphs. Each object, with its count, positions, and attributes should be described. Describe the text, and the font in detail with its contents in quotation marks. For example if the image has text Happy Birthday, write it down as "Happy Birthday". Include the style of the image for example photograph, 3d-render, shopping website etc. Capture the aesthetics of the image, as if described by an artist. Start with the words ‘This image displays:’)P",
    R"P(Describe the image, the foreground and the background. All objects, along with its count and positions must be described. For any text present in the image, describe the text using quotation marks. Be factual in your description, capturing the content, and style of the image. Describe the image, in a short but desciptive manner. Start with the words ‘This image displays:’)P",
    R"P(Write a detailed caption describing the image. Include all components, and objects with their positions. If any text is present in the image, and describe the text contents in quotation marks. For example if the image has text Happy Birthday, write it down as "Happy Birthday". Be detailed in your description of the image, and write as if it were being described by a boring person. Start with the words ‘This image displays:’)P",
    R"P(Don’t forget these rules: 1. Be Direct and Concise: Provide straightforward descriptions without adding interpretative or speculative elements. 2. Use Segmented Details: Break down details about different elements of an image into distinct sentences, focusing on one aspect at a time. 3. Maintain a Descriptive Focus: Prioritize purely visible elements of the image, avoiding conclusions or inferences. 4. Follow a Logical Structure: Begin with the central figure or subject and expand outward, detailing its appearance before addressing the surrounding setting. 5. Avoid Juxtaposition: Do not use comparison or contrast language; keep the description purely factual. 6. Incorporate Specificity: Mention age, gender, race, and specific brands or notable features when present, and clearly identify the medium if it’s discernible. When writing descriptions, prioritize clarity and direct observation over embellishment or interpretation. Write a detailed description of this image, do not forget about the texts on it if they exist. Also, do not forget to mention the type/style of the image. No bullet points. Start with the words, "This image displays:")P",};

// PixelProse Fig. 2 publishes fragments only ("You may use the original
// caption, as a reference to generate your result. Keep [...]", `Alt-text:
// "..."`, "Finally, given the image, describe a few objects that could be
// present in the image but are not. Mention [...]"); the completions are ours.
constexpr std::string_view kAltIntro =
    "You may use the original caption, as a reference to generate your result. Keep the names of places, people, "
    "brands and things it gives when the image agrees with them, and ignore what the image does not show.";
constexpr std::string_view kNegatives =
    "Finally, given the image, describe a few objects that could be present in the image but are not. Mention them "
    "in the last sentences of your description.";
constexpr std::string_view kOcrIntro =
    "OCR hints (text an OCR engine read in the image; it may contain errors, so quote only what you can see):";
constexpr std::string_view kMetaIntro = "Meta information:";

std::string quoted_hints(const std::vector<std::string>& lines) {
  std::string out;
  size_t used = 0, n = 0;
  for (const std::string& l : lines) {
    if (n == kMaxOcrHintLines) break;
    if (used + l.size() > kMaxHintChars) continue;  // a long line must not crowd out the rest
    out += "\n- \"" + defuse_markup(l) + "\"";
    used += l.size();
    n++;
  }
  return out;
}

// The context block every prompt carries: what the image is known to hold.
std::string context_block(const PromptContext& ctx, bool with_alt) {
  std::string out;
  if (!ctx.ocr_lines.empty()) out += "\n\n" + std::string(kOcrIntro) + quoted_hints(ctx.ocr_lines);
  if (!ctx.meta.empty()) out += "\n\n" + std::string(kMetaIntro) + " " + defuse_markup(ctx.meta);
  if (with_alt && !ctx.alt_text.empty())
    out += "\n\n" + std::string(kAltIntro) + "\nAlt-text: \"" + defuse_markup(ctx.alt_text) + "\"";
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string defuse_markup(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); i++) {
    out += text[i];
    if (text[i] != '<') continue;
    const std::string_view rest = text.substr(i + 1);
    // "<|", "<｜" (U+FF5C) and "<image>" open every special token of the
    // DeepSeek-VL2 vocabulary; a space after '<' keeps the words readable.
    if (rest.rfind("|", 0) == 0 || rest.rfind("\xef\xbd\x9c", 0) == 0 || rest.rfind("image>", 0) == 0) out += ' ';
  }
  return out;
}

std::string_view caption_prompt(int id) {
  DSVL2_CHECK(id >= 0 && id < kCaptionPromptCount, "caption prompt %d", id);
  return kPrompts[id];
}

PromptPlan plan_prompt(uint64_t seed, std::string_view key, bool has_alt_text, double p_alt, double p_neg) {
  // Every draw is made whatever the record holds, so each keeps its counter
  // (0: prompt, 1: alt-text, 2: negatives) and adding a draw later changes
  // no earlier one.
  Rng rng(seed, hash_string(key, 0x7265636170ull));
  PromptPlan p;
  p.prompt_id = int(rng.next() % kCaptionPromptCount);  // bias ~1e-19
  const bool alt = rng.chance(p_alt);
  p.alt_text_inserted = has_alt_text && alt;
  p.asked_negatives = rng.chance(p_neg);
  return p;
}

std::string build_caption_prompt(const PromptPlan& plan, const PromptContext& ctx) {
  std::string out(caption_prompt(plan.prompt_id));
  out += context_block(ctx, plan.alt_text_inserted);
  if (plan.asked_negatives) out += "\n\n" + std::string(kNegatives);
  return out;
}

std::string build_vqa_prompt(std::string_view question, std::string_view original_answer, const PromptContext& ctx) {
  std::string out = "Answer the question about the image accurately and helpfully, using what you see, the text in "
                    "the image and the information below.";
  out += context_block(ctx, false);
  if (!original_answer.empty())
    out += "\n\nAn earlier answer, which may be short or wrong: \"" + defuse_markup(original_answer) + "\"";
  out += "\n\nQuestion: " + defuse_markup(question);
  return out;
}

std::string_view screening_question(ScreenKind kind) {
  switch (kind) {
    case ScreenKind::kSafety:
      return "Does this image contain nudity, sexual content, graphic violence, gore or other content unsafe for a "
             "general audience? Answer Yes or No.";
    case ScreenKind::kWatermark:
      return "Does this image carry a watermark (a semi-transparent logo, stock-photo mark or copyright text laid "
             "over it)? Answer Yes or No.";
  }
  return "";
}

const char* screen_name(ScreenKind kind) { return kind == ScreenKind::kSafety ? "safety" : "watermark"; }

std::string build_quality_prompt(std::string_view caption) {
  return "Rate the writing quality of the following image description on a scale from 1 to 10, judging only the "
         "writing: clarity, grammar, no repetition, no filler. 1 means unreadable or repetitive, 10 means clear, "
         "fluent and concise. Reply with the number only.\n\nDescription: \"" +
         defuse_markup(caption) + "\"";
}

std::optional<int> parse_quality_score(std::string_view answer) {
  std::string_view s = trim(answer);
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  if (s.size() > 3 && s.substr(s.size() - 3) == "/10") s.remove_suffix(3);
  s = trim(s);
  if (s.empty() || s.size() > 2) return std::nullopt;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (s.size() == 2 && s[0] == '0') return std::nullopt;
  if (v < 1 || v > 10) return std::nullopt;
  return v;
}

}  // namespace dsvl2::recaption
