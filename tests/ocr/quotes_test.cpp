// extract_quotes: the quoted strings of a caption, apostrophes left alone.
#include <gtest/gtest.h>

#include "ocr/ocr_check.h"

namespace dsvl2::ocr {
namespace {

using Q = std::vector<std::string>;

TEST(OcrQuotes, DoubleQuoteForms) {
  EXPECT_EQ(extract_quotes("The sign reads \"OPEN\" in red."), Q{"OPEN"});
  EXPECT_EQ(extract_quotes("It says “Merry Christmas” and “Happy New Year”."),
            (Q{"Merry Christmas", "Happy New Year"}));
  EXPECT_EQ(extract_quotes("German „Guten Tag“ and French «Bonjour»"), (Q{"Guten Tag", "Bonjour"}));
  EXPECT_EQ(extract_quotes("Text \"A\" then \"B C\"."), (Q{"A", "B C"}));
  EXPECT_EQ(extract_quotes("Mixed “curly\" closing"), Q{"curly"});
}

TEST(OcrQuotes, SingleQuoteForms) {
  EXPECT_EQ(extract_quotes("The words ‘Fresh Bread’ appear."), Q{"Fresh Bread"});
  EXPECT_EQ(extract_quotes("A label says 'Exit', in green."), Q{"Exit"});
  EXPECT_EQ(extract_quotes("('Stop') at the top"), Q{"Stop"});
}

TEST(OcrQuotes, ApostrophesAreNotQuotes) {
  EXPECT_EQ(extract_quotes("It's a shop's window; don't look. It’s the dogs’ bowl."), Q{});
  EXPECT_EQ(extract_quotes("A rock 'n' roll poster"), Q{});                     // 'n' has one letter
  EXPECT_EQ(extract_quotes("the '90s style with the 'Open' sign"), Q{"Open"});  // '90s restarts nothing
  EXPECT_EQ(extract_quotes("The sign 'Joe's Diner' glows."), Q{"Joe's Diner"});
  EXPECT_EQ(extract_quotes("The dogs' bowl says 'Max'."), Q{"Max"});
  EXPECT_EQ(extract_quotes("“Grandma's Kitchen” and 'Tea'"), (Q{"Grandma's Kitchen", "Tea"}));
}

TEST(OcrQuotes, NestingAndStrays) {
  // A single quote inside a double one belongs to it.
  EXPECT_EQ(extract_quotes("The poster says “Sale ‘50%’ off” today."), Q{"Sale ‘50%’ off"});
  // An unmatched mark yields nothing, and no quote spans a line break.
  EXPECT_EQ(extract_quotes("A stray \" mark here."), Q{});
  EXPECT_EQ(extract_quotes("“Line one\nline two” and “ok”"), Q{"ok"});
  // Inch marks do not open quotes.
  EXPECT_EQ(extract_quotes("A 5\" screen shows \"Menu\"."), Q{"Menu"});
  // A mark that could open while one is open restarts the quote.
  EXPECT_EQ(extract_quotes("He said \"Hello \"World\" loud."), Q{"World"});
}

TEST(OcrQuotes, EmptyLongAndInvalid) {
  EXPECT_EQ(extract_quotes("Empty \"\" and “...” and \"?\" quotes"), Q{});
  EXPECT_EQ(extract_quotes("\"" + std::string(600, 'a') + "\""), Q{});  // over 500 bytes
  EXPECT_EQ(extract_quotes("\"" + std::string(400, 'a') + "\""), Q{std::string(400, 'a')});
  EXPECT_EQ(extract_quotes("Bad \xff bytes \"TE\xc0ST\" here"), Q{"TEST"});
  EXPECT_EQ(extract_quotes(""), Q{});
}

}  // namespace
}  // namespace dsvl2::ocr
