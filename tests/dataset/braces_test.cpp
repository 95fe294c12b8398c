#include <gtest/gtest.h>

#include "core/error.h"
#include "dataset/braces.h"

namespace dsvl2::dataset {
namespace {

using V = std::vector<std::string>;

TEST(Braces, NoBracesIsTheNameItself) {
  EXPECT_EQ(expand_braces("data/shard.tar"), V{"data/shard.tar"});
  EXPECT_EQ(expand_braces(""), V{""});
}

TEST(Braces, NumericRangeKeepsZeroPadding) {
  const V v = expand_braces("data-{00000..00099}.tar");
  ASSERT_EQ(v.size(), 100u);
  EXPECT_EQ(v.front(), "data-00000.tar");
  EXPECT_EQ(v[7], "data-00007.tar");
  EXPECT_EQ(v.back(), "data-00099.tar");
  // Padding comes from either end, to the wider of the two (bash).
  EXPECT_EQ(expand_braces("{8..010}"), (V{"008", "009", "010"}));
  EXPECT_EQ(expand_braces("{1..3}"), (V{"1", "2", "3"}));
  EXPECT_EQ(expand_braces("{9..11}"), (V{"9", "10", "11"}));
}

TEST(Braces, RangesGoDownStepAndTakeLetters) {
  EXPECT_EQ(expand_braces("{3..1}"), (V{"3", "2", "1"}));
  EXPECT_EQ(expand_braces("{0..10..5}"), (V{"0", "5", "10"}));
  EXPECT_EQ(expand_braces("{10..0..-5}"), (V{"10", "5", "0"}));  // the step's sign is ignored, as in bash
  EXPECT_EQ(expand_braces("{-2..1}"), (V{"-2", "-1", "0", "1"}));
  EXPECT_EQ(expand_braces("{-02..01}"), (V{"-02", "-01", "000", "001"}));
  EXPECT_EQ(expand_braces("{a..c}"), (V{"a", "b", "c"}));
  EXPECT_EQ(expand_braces("{e..a..2}"), (V{"e", "c", "a"}));
}

TEST(Braces, ListsAndSeveralGroupsExpandLeftToRight) {
  EXPECT_EQ(expand_braces("{a,b}"), (V{"a", "b"}));
  EXPECT_EQ(expand_braces("x{a,,b}y"), (V{"xay", "xy", "xby"}));
  EXPECT_EQ(expand_braces("{a,b}/x{1..5..2}"), (V{"a/x1", "a/x3", "a/x5", "b/x1", "b/x3", "b/x5"}));
  EXPECT_EQ(expand_braces("{x,y}{0..1}.tar"), (V{"x0.tar", "x1.tar", "y0.tar", "y1.tar"}));
}

TEST(Braces, GroupsNest) {
  EXPECT_EQ(expand_braces("{a,b{0..1}}"), (V{"a", "b0", "b1"}));
  EXPECT_EQ(expand_braces("s{1,{2,3}x}e"), (V{"s1e", "s2xe", "s3xe"}));
  EXPECT_EQ(expand_braces("{a,{b,{c,d}}}"), (V{"a", "b", "c", "d"}));
}

TEST(Braces, BracesWithoutListOrRangeStayLiteral) {
  EXPECT_EQ(expand_braces("{x}"), V{"{x}"});
  EXPECT_EQ(expand_braces("a{}b"), V{"a{}b"});
  EXPECT_EQ(expand_braces("{1..x}"), V{"{1..x}"});
  EXPECT_EQ(expand_braces("{1...3}"), V{"{1...3}"});
  EXPECT_EQ(expand_braces("{a..bb}"), V{"{a..bb}"});
  // ... but what is inside them still expands, as in bash.
  EXPECT_EQ(expand_braces("{x{1,2}}"), (V{"{x1}", "{x2}"}));
}

TEST(Braces, BackslashEscapes) {
  EXPECT_EQ(expand_braces("\\{a,b\\}"), V{"{a,b}"});
  EXPECT_EQ(expand_braces("{a\\,b,c}"), (V{"a,b", "c"}));
}

TEST(Braces, Errors) {
  EXPECT_THROW(expand_braces("data-{0..9.tar"), Error);
  EXPECT_THROW(expand_braces("data-0..9}.tar"), Error);
  EXPECT_THROW(expand_braces("{a,b}}"), Error);
  EXPECT_THROW(expand_braces("{{a,b}"), Error);
  EXPECT_THROW(expand_braces("{0..10..0}"), Error);
  EXPECT_THROW(expand_braces("{0..99999999999999999999}"), Error);
  try {
    expand_braces("{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}");  // 1e7 names
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kTooLong);
    EXPECT_NE(std::string(e.what()).find("1000000"), std::string::npos) << e.what();
  }
  EXPECT_THROW(expand_braces("{0..999999999999}"), Error);
  EXPECT_THROW(expand_braces(std::string(1000, '{') + "a,b" + std::string(1000, '}')), Error);  // too deep
  // Exactly at the limit is fine.
  EXPECT_EQ(expand_braces("{0..9}{0..9}{0..9}{0..9}{0..9}{0..9}").size(), 1'000'000u);
}

}  // namespace
}  // namespace dsvl2::dataset
