// The one UTF-8 codec: strict validity (as Rust's str::from_utf8), sequence
// lengths, and encoding round trips over every kind of malformed input.
#include <gtest/gtest.h>

#include "core/utf8.h"

namespace dsvl2 {
namespace {

TEST(Utf8, SequenceLengthsAndStrictValidity) {
  const std::string ok = "a\xC3\xA9\xE2\x80\x9C\xF0\x9F\x98\x80";  // a é “ 😀
  EXPECT_EQ(utf8::sequence_length(ok, 0), 1u);
  EXPECT_EQ(utf8::sequence_length(ok, 1), 2u);
  EXPECT_EQ(utf8::sequence_length(ok, 3), 3u);
  EXPECT_EQ(utf8::sequence_length(ok, 6), 4u);
  EXPECT_EQ(utf8::sequence_length(ok, 2), 0u) << "a continuation byte starts nothing";
  EXPECT_EQ(utf8::sequence_length(ok, ok.size()), 0u);
  EXPECT_TRUE(utf8::is_valid(ok));
  for (const char* bad : {"\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",
                          "\xC3", "\xE2\x80", "\xFF"}) {
    EXPECT_FALSE(utf8::is_valid(bad)) << "overlong, surrogate, too large or cut off";
    EXPECT_EQ(utf8::sequence_length(bad, 0), 0u);
  }
}

TEST(Utf8, EveryCodePointRoundTrips) {
  for (uint32_t cp = 0; cp <= 0x10FFFF; cp += (cp < 0x800 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    utf8::append(s, cp);
    ASSERT_EQ(utf8::sequence_length(s, 0), s.size()) << cp;
    size_t i = 0;
    ASSERT_EQ(utf8::next(s, i), cp);
    ASSERT_EQ(i, s.size());
  }
}

}  // namespace
}  // namespace dsvl2
