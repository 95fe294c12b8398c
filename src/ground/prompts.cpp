#include "ground/prompts.h"

#include "core/error.h"

namespace dsvl2::ground {

std::string grounding_prompt(std::string_view query) {
  std::string s = "Locate ";
  s.append(kRefOpen).append(query).append(kRefClose).append(" in the given image.");
  return s;
}

std::string ref_only_prompt(std::string_view query) {
  std::string s(kRefOpen);
  s.append(query).append(kRefClose).append(".");
  return s;
}

std::string grounded_conversation_prompt(std::string_view question) {
  std::string s(kGroundingTag);
  s.append(question);
  return s;
}

std::string in_context_grounding_prompt(std::string_view object) {
  std::string s(kGroundingTag);
  s.append("The first image shows ").append(object);
  s.append(".Please identify the object of the same category in the second image.");
  return s;
}

std::string in_context_grounding_prompt_repo(std::string_view object) {
  std::string s(kGroundingTag);
  s.append("In the first image, ").append(object);
  s.append(" is marked. Locate the object of the same category in the second image.");
  return s;
}

std::string with_image_tags(std::string_view text, int n_images) {
  DSVL2_REQUIRE(n_images >= 0 && n_images <= 64, "with_image_tags: image count %d out of range 0-64", n_images);
  std::string s;
  for (int i = 0; i < n_images; ++i) s.append(kImageTag).append("\n");
  s.append(text);
  return s;
}

}  // namespace dsvl2::ground
