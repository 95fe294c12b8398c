#include "ground/pipeline.h"

#include "core/error.h"
#include "ground/prompts.h"

namespace dsvl2::ground {

std::string build_grounding_content(std::string_view query, GroundingMode mode) {
  switch (mode) {
    case GroundingMode::kLocate:
      return with_image_tags(grounding_prompt(query), 1);
    case GroundingMode::kRefOnly:
      return with_image_tags(ref_only_prompt(query), 1);
    case GroundingMode::kGroundedConversation:
      return with_image_tags(grounded_conversation_prompt(query), 1);
  }
  DSVL2_CHECK(false, "unknown grounding mode %d", int(mode));
}

GroundingRun ground_query(const Image& img, std::string_view query, const GenerateFn& generate, GroundingMode mode,
                          bool draw) {
  DSVL2_REQUIRE(img.width > 0 && img.height > 0, "grounding needs a non-empty image");
  GroundingRun run;
  run.user_content = build_grounding_content(query, mode);
  run.output = generate(run.user_content);
  run.parsed = parse_grounding(run.output, img.width, img.height);
  if (draw) run.drawn = draw_boxes(img, run.parsed.objects);
  return run;
}

}  // namespace dsvl2::ground
