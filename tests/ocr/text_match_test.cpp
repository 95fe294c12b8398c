// The matching form of text (normalize_text), the edit-distance similarity and
// strict UTF-8 (ocr/text_match.h).
#include "ocr/text_match.h"

#include <gtest/gtest.h>

#include "core/rng.h"

namespace dsvl2::ocr {
namespace {

std::string norm(std::string_view s) { return encode_utf8(normalize_text(s)); }

TEST(OcrNormalize, CaseQuotesDashesSpacesAndEnds) {
  EXPECT_EQ(norm("  “Café—OPEN!” "), "café-open");
  EXPECT_EQ(norm("HAPPY\tBIRTHDAY\n\n"), "happy birthday");
  EXPECT_EQ(norm("\"Hello, World.\""), "hello, world");  // inner punctuation stays
  EXPECT_EQ(norm("Don’t  Stop"), "don't stop");
  EXPECT_EQ(norm("Wi–Fi − 50%"), "wi-fi - 50");  // the trailing % is end punctuation
  EXPECT_EQ(norm("(Room\u00a0204)"), "room 204");
  EXPECT_EQ(norm("…and more…"), "and more");
  EXPECT_EQ(norm("ÉCOLE ÀÖØ Łódź ΑΒΓ ПРИВЕТ"), "école àöø łódź αβγ привет");
  EXPECT_EQ(norm("ﬁne ﬂour"), "fine flour");  // Tesseract emits ligatures
  EXPECT_EQ(norm("ＳＡＬＥ"), "sale");        // full-width
  EXPECT_EQ(norm("soft\u00adhyphen zero\u200bwidth"), "softhyphen zerowidth");
  EXPECT_EQ(norm("?!..."), "");
  EXPECT_EQ(norm(""), "");
}

TEST(OcrNormalize, WordChars) {
  EXPECT_TRUE(is_word_char(U'a'));
  EXPECT_TRUE(is_word_char(U'7'));
  EXPECT_TRUE(is_word_char(U'é'));
  EXPECT_TRUE(is_word_char(U'字'));
  EXPECT_FALSE(is_word_char(U'-'));
  EXPECT_FALSE(is_word_char(U'”'));
  EXPECT_FALSE(is_word_char(U'×'));
  EXPECT_FALSE(is_word_char(U'😀'));
  EXPECT_EQ(count_word_chars(U"a-b c!"), 3);
}

TEST(OcrSimilarity, EditDistanceAndSpaces) {
  EXPECT_EQ(edit_distance(U"kitten", U"sitting"), 3);
  EXPECT_EQ(edit_distance(U"", U"abc"), 3);
  EXPECT_DOUBLE_EQ(similarity(U"summer sale", U"summer sale"), 1.0);
  EXPECT_DOUBLE_EQ(similarity(U"summer sale", U"sumer sale"), 1.0 - 1.0 / 11);
  EXPECT_DOUBLE_EQ(similarity(U"", U""), 1.0);
  EXPECT_DOUBLE_EQ(similarity(U"abc", U""), 0.0);
  // OCR splits and joins words: compared without spaces too.
  EXPECT_DOUBLE_EQ(similarity(U"birthday", U"birth day"), 1.0);
  EXPECT_DOUBLE_EQ(similarity(U"happy birthday", U"happybirthday"), 1.0);
  // The length bound: "a" cannot reach 0.5 against "abcdef", so 0 comes back.
  EXPECT_EQ(similarity(U"a", U"abcdef", 0.5), 0.0);
  EXPECT_GT(similarity(U"a", U"abcdef", 0.0), 0.0);
}

TEST(OcrUtf8, StrictValidation) {
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("“curly” é 字 😀"));
  EXPECT_FALSE(valid_utf8("\xc0\x80"));          // overlong NUL
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));      // overlong /
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // over U+10FFFF
  EXPECT_FALSE(valid_utf8("abc\xe2\x80"));       // truncated
  EXPECT_FALSE(valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(valid_utf8("\xff"));
  EXPECT_EQ(sanitize_utf8("a\xff"
                          "b\xc0\x80"
                          "c\xe2\x80"),
            "abc");
  EXPECT_EQ(sanitize_utf8("é字"), "é字");
  EXPECT_EQ(encode_utf8(decode_utf8("“x” 😀")), "“x” 😀");
  EXPECT_EQ(decode_utf8("a\xff"
                        "z"),
            U"az");
}

TEST(OcrSimilarity, BandedDistanceAgreesWithTheFullOneWithinItsBound) {
  Rng rng(17);
  for (int t = 0; t < 3000; ++t) {
    std::u32string a, b;
    const int na = rng.randint(0, 24), nb = rng.randint(0, 24);
    for (int i = 0; i < na; ++i) a += char32_t('a' + rng.randint(0, 3));  // few letters: many near matches
    for (int i = 0; i < nb; ++i) b += char32_t('a' + rng.randint(0, 3));
    const int full = edit_distance(a, b), max_d = rng.randint(0, 26);
    const int banded = edit_distance_within(a, b, max_d);
    if (full <= max_d)
      ASSERT_EQ(banded, full) << t;
    else
      ASSERT_EQ(banded, max_d + 1) << t;
  }
}

}  // namespace
}  // namespace dsvl2::ocr
