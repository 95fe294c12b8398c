// Prompt text for DeepSeek-VL2 grounding and ViP-LLaVA style visual prompts.
// These build the *user message content* only; the chat template (roles,
// separators, EOS) lives in src/text. Strings are byte-exact with the sources
// named on each function (see the data-pipelines design note, sections 3.5 and 4.2).
//
//   std::string q = with_image_tags(grounding_prompt("the red car"), 1);
//   // "<image>\nLocate <|ref|>the red car<|/ref|> in the given image."
#pragma once
#include <string>
#include <string_view>

namespace dsvl2::ground {

// Special tokens added by processing_deepseek_vl_v2.py.
inline constexpr std::string_view kRefOpen = "<|ref|>";
inline constexpr std::string_view kRefClose = "<|/ref|>";
inline constexpr std::string_view kDetOpen = "<|det|>";
inline constexpr std::string_view kDetClose = "<|/det|>";
inline constexpr std::string_view kGroundingTag = "<|grounding|>";
inline constexpr std::string_view kImageTag = "<image>";

// Visual grounding (paper section 3.2): "Locate <|ref|>{query}<|/ref|> in the given image."
std::string grounding_prompt(std::string_view query);

// The README / web-demo shorthand: "<|ref|>{query}<|/ref|>." (README example keeps the trailing '.').
std::string ref_only_prompt(std::string_view query);

// Grounded conversation: "<|grounding|>" + question. The default is the
// paper's pretraining prompt "Can you describe the content of the image?".
std::string grounded_conversation_prompt(std::string_view question = "Can you describe the content of the image?");

// In-context grounding over two images (SFT, paper section 3.3):
// "<|grounding|>The first image shows {object}.Please identify the object of
// the same category in the second image." (no space after the full stop, verbatim).
// `object` is a phrase such as "an object within the red bounding box".
std::string in_context_grounding_prompt(std::string_view object);

// The repository's variant (inference.py, web_demo.py):
// "<|grounding|>In the first image, {object} is marked. Locate the object of the
// same category in the second image." With object = "an object within the red
// rectangle" this is the official example byte for byte.
std::string in_context_grounding_prompt_repo(std::string_view object);

// Prepends n "<image>\n" lines, as the web demo does for images the text does not tag.
std::string with_image_tags(std::string_view text, int n_images);

}  // namespace dsvl2::ground
