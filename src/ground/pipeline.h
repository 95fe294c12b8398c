// The grounding flow in one call, with generation left to the caller:
//   build prompt -> generate(text) -> parse -> draw.
// The model lives above this module, so it comes in as a callback:
//
//   GroundingRun run = ground_query(img, "the red car", [&](const std::string& user) {
//     return model.generate(chat_template(user), {&img});   // text after "<|Assistant|>:"
//   });
//   save_png(*run.drawn, "boxes.png");
//   puts(to_json_string(run.parsed).c_str());
//
// While generating, feed each new piece of text to a RunawayGuard
// (grounding_parser.h) and stop when it says so.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "ground/box_drawer.h"
#include "ground/grounding_parser.h"
#include "image/image.h"

namespace dsvl2::ground {

// Receives the user message content (image tag included) and returns the model's answer text.
using GenerateFn = std::function<std::string(const std::string& user_content)>;

enum class GroundingMode {
  kLocate,                // "Locate <|ref|>q<|/ref|> in the given image." (paper)
  kRefOnly,               // "<|ref|>q<|/ref|>." (README)
  kGroundedConversation,  // "<|grounding|>q"
};

struct GroundingRun {
  std::string user_content;  // what was sent to generate()
  std::string output;        // what came back
  ParseResult parsed;
  std::optional<Image> drawn;  // the image with boxes, when asked for
};

std::string build_grounding_content(std::string_view query, GroundingMode mode);

GroundingRun ground_query(const Image& img, std::string_view query, const GenerateFn& generate,
                          GroundingMode mode = GroundingMode::kLocate, bool draw = true);

}  // namespace dsvl2::ground
