// What happens to a caption after the model wrote it, as PixelProse did:
// PII redaction by regular expressions (phone numbers, US social security
// numbers; PixelProse removed samples with phone numbers, we redact and flag
// them so nothing is silently lost), the style class from its keyword table
// (App. A.4), and the optional removal of the forced "This image displays:"
// prefix.
//
//   Redaction r = redact_pii(caption);   // r.text, r.kinds = {"phone"}
//   std::string cls = style_class(r.text);  // "Photographs"
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dsvl2::recaption {

struct Redaction {
  std::string text;                // with each match replaced by [PHONE] / [SSN]
  std::vector<std::string> kinds;  // "phone", "ssn": the kinds found, in that order
};
// Phone numbers as PixelProse's examples: (123)-456-7890, (123) 456-7890,
// 123-456-7890, 123.456.7890, 123 456 7890, optionally +1; SSNs 123-45-6789.
// Digits glued to other digits or letters are not matched.
Redaction redact_pii(std::string_view caption);

// PixelProse's classes: "Photographs", "3D Rendering", "Digital Art",
// "Painting & Drawings", "Charts & Diagrams", "Other". The keywords are
// looked up in the caption's style sentence: the first sentence that says
// "style", "medium" or names a keyword after "This image is/appears"...;
// without one, in the whole caption. Earlier classes of the table win.
std::string style_class(std::string_view caption);

// Removes a leading "This image displays:" (any case, straight or curly
// quotes and spaces around it) and capitalises what follows.
std::string strip_caption_prefix(std::string_view caption);

}  // namespace dsvl2::recaption
