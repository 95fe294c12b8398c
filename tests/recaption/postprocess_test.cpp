// Caption post-processing: PixelProse's PII patterns, the style classes of
// its keyword table, the prefix removal, and safe tar member names.
#include <gtest/gtest.h>

#include "recaption/postprocess.h"
#include "recaption/record_json.h"

namespace dsvl2::recaption {
namespace {

TEST(RecaptionPii, PhoneNumbersInPixelProseFormsAreRedacted) {
  for (const char* phone : {"(123)-456-7890", "123-456-7890", "123.456.7890", "(123) 456-7890", "+1 123-456-7890"}) {
    const Redaction r = redact_pii(std::string("Call ") + phone + " today.");
    EXPECT_EQ(r.text, "Call [PHONE] today.") << phone;
    ASSERT_EQ(r.kinds.size(), 1u) << phone;
    EXPECT_EQ(r.kinds[0], "phone");
  }
}

TEST(RecaptionPii, SsnAndNotNumbersThatAreNotPii) {
  Redaction r = redact_pii("SSN 123-45-6789 on the card");
  EXPECT_EQ(r.text, "SSN [SSN] on the card");
  EXPECT_EQ(r.kinds, std::vector<std::string>{"ssn"});
  // Years, prices, long serials and glued digits stay.
  for (const char* keep : {"In 2024 the price was 12.50 dollars.", "Serial 1234-567-89012 on the label.",
                           "Model A123-456-7890B", "The sign reads 555-0100."}) {
    r = redact_pii(keep);
    EXPECT_EQ(r.text, keep);
    EXPECT_TRUE(r.kinds.empty()) << keep;
  }
  r = redact_pii("Phone 123-456-7890, SSN 987-65-4321.");
  EXPECT_EQ(r.text, "Phone [PHONE], SSN [SSN].");
  EXPECT_EQ(r.kinds, (std::vector<std::string>{"phone", "ssn"}));
}

TEST(RecaptionStyle, KeywordTableInOrder) {
  EXPECT_EQ(style_class("This image displays: a dog. The style of the image is a photograph."), "Photographs");
  EXPECT_EQ(style_class("A city. The style is a 3D render with soft light."), "3D Rendering");
  EXPECT_EQ(style_class("A robot. The image is in a 3d style."), "3D Rendering");
  EXPECT_EQ(style_class("A logo. The style is digital art, vector graphics."), "Digital Art");
  EXPECT_EQ(style_class("A knight. Style: CGI."), "Digital Art");
  EXPECT_EQ(style_class("A girl. The style of the image is anime."), "Painting & Drawings");
  EXPECT_EQ(style_class("A cat. It is a pencil sketch style."), "Painting & Drawings");
  EXPECT_EQ(style_class("Sales by year. The style of the image is a bar chart."), "Charts & Diagrams");
  EXPECT_EQ(style_class("Streets of Paris. The style is a map."), "Charts & Diagrams");
  EXPECT_EQ(style_class("A blurry shape on a wall."), "Other");
  // The style sentence decides over words elsewhere in the caption ...
  EXPECT_EQ(style_class("A table with a drawing on it. The style of the image is a photograph."), "Photographs");
  // ... and word boundaries matter: "cg" in lower case or "mapping" are not keywords.
  EXPECT_EQ(style_class("A bitmap of mapping data."), "Other");
  EXPECT_EQ(style_class("The letters cg on a sign."), "Other");
  EXPECT_EQ(style_class("An open drawer next to a tablecloth."), "Other");
  EXPECT_EQ(style_class("A pencil drawing of a horse."), "Painting & Drawings");
}

TEST(RecaptionPrefix, ThisImageDisplaysIsRemoved) {
  EXPECT_EQ(strip_caption_prefix("This image displays: a red car."), "A red car.");
  EXPECT_EQ(strip_caption_prefix("\u2018This image displays:\u2019 a red car."), "A red car.");
  EXPECT_EQ(strip_caption_prefix("  this image displays:\n\nTwo dogs."), "Two dogs.");
  EXPECT_EQ(strip_caption_prefix("A red car. This image displays: nothing."), "A red car. This image displays: nothing.");
  EXPECT_EQ(strip_caption_prefix(""), "");
}

TEST(RecaptionRecords, MemberStemsAreSafeForTarsAndWebDataset) {
  EXPECT_EQ(member_stem("000123"), "000123");
  EXPECT_EQ(member_stem("a/b/000123"), "a/b/000123");
  EXPECT_EQ(member_stem("../../etc/passwd"), "etc/passwd");
  EXPECT_EQ(member_stem("/abs/key"), "abs/key");
  EXPECT_EQ(member_stem("img.001"), "img_001");
  EXPECT_EQ(member_stem("dir.v2/img.001"), "dir.v2/img_001");
  EXPECT_EQ(member_stem(std::string("bad\x01\nkey")), "bad__key");
  EXPECT_EQ(member_stem(".."), "_");
  EXPECT_EQ(member_stem(""), "_");
  EXPECT_EQ(image_extension("JPG"), "jpg");
  EXPECT_EQ(image_extension("v2.png"), "png");
  EXPECT_EQ(image_extension("json"), "img") << "never read back as the record";
  EXPECT_EQ(image_extension("txt"), "img");
  EXPECT_EQ(image_extension(""), "img");
}

}  // namespace
}  // namespace dsvl2::recaption
