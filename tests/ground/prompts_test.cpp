#include "ground/prompts.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "ground/vip_vocab.h"

namespace dsvl2::ground {
namespace {

TEST(Prompts, GroundingPaperTemplate) {
  EXPECT_EQ(grounding_prompt("car"), "Locate <|ref|>car<|/ref|> in the given image.");
  EXPECT_EQ(grounding_prompt("the leftmost person"), "Locate <|ref|>the leftmost person<|/ref|> in the given image.");
  EXPECT_EQ(ref_only_prompt("The giraffe at the back."), "<|ref|>The giraffe at the back.<|/ref|>.");
}

TEST(Prompts, GroundedConversation) {
  EXPECT_EQ(grounded_conversation_prompt(), "<|grounding|>Can you describe the content of the image?");
  EXPECT_EQ(grounded_conversation_prompt("I want to throw out the trash now, what should I do?"),
            "<|grounding|>I want to throw out the trash now, what should I do?");
}

TEST(Prompts, InContextGroundingBothVariants) {
  EXPECT_EQ(in_context_grounding_prompt("an object within the red bounding box"),
            "<|grounding|>The first image shows an object within the red bounding box.Please identify the object of "
            "the same category in the second image.");
  // inference.py's example, byte for byte.
  EXPECT_EQ(with_image_tags(in_context_grounding_prompt_repo("an object within the red rectangle"), 2),
            "<image>\n<image>\n<|grounding|>In the first image, an object within the red rectangle is marked. Locate "
            "the object of the same category in the second image.");
}

TEST(Prompts, ImageTags) {
  EXPECT_EQ(with_image_tags("q", 0), "q");
  EXPECT_EQ(with_image_tags("q", 1), "<image>\nq");
  EXPECT_THROW(with_image_tags("q", -1), Error);
}

TEST(VipVocab, PhrasesPerShape) {
  Color red = parse_color("red");
  const char* expected[8] = {"the object within the red rectangle", "the object within the red ellipse",
                             "the object with the red triangle",    "the object at the red point",
                             "the object with the red scribble",    "the object with the red mask contour",
                             "the object with the red mask",        "the object pointed to by the red arrow"};
  for (size_t i = 0; i < kAllShapes.size(); ++i) EXPECT_EQ(object_phrase(kAllShapes[i], red), expected[i]);
  EXPECT_EQ(mark_phrase(Shape::kEllipse, red), "the red ellipse");
  EXPECT_EQ(reference_phrase(Shape::kArrow, Color{1, 2, 3, ""}), "pointed to by the arrow");
  EXPECT_EQ(vip_describe_prompt(Shape::kRectangle, parse_color("aqua")),
            "Describe the object within the aqua rectangle. Please provide a short phrase.");
  EXPECT_EQ(vip_question("What is {object} doing?", Shape::kPoint, parse_color("blue")),
            "What is the object at the blue point doing?");
  EXPECT_THROW(vip_question("no slot", Shape::kPoint, red), Error);
  EXPECT_EQ(
      vip_relation_prompt(Shape::kRectangle, red, Shape::kEllipse, parse_color("lime")),
      "Please describe the relationship between the subject within the red rectangle and the object within the "
      "lime ellipse. Provide a short triplet (subject, relationship, object) to represent this. Here, the subject "
      "and object are noun phrases, and the relationship can be verbs or prepositions.");
}

TEST(VipVocab, ParseShapeAndColor) {
  EXPECT_EQ(parse_shape("contour"), Shape::kMaskContour);
  EXPECT_EQ(parse_shape("mask contour"), Shape::kMaskContour);
  EXPECT_EQ(parse_shape("Arrow"), Shape::kArrow);
  EXPECT_THROW(parse_shape("circle"), Error);
  Color c = parse_color("255,165,0");
  EXPECT_EQ(c.name, "orange");
  c = parse_color(" 1, 2 ,3");
  EXPECT_EQ(c.name, "");
  EXPECT_EQ(c.b, 3);
  for (const char* bad : {"256,0,0", "1,2", "1,2,3,4", "-1,0,0", "", "rouge", "1,,2", "a,b,c"})
    EXPECT_THROW(parse_color(bad), Error) << bad;
}

}  // namespace
}  // namespace dsvl2::ground
