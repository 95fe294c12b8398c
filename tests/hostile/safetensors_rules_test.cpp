// One test per reader rule of the safetensors checklist (reference:
// safetensors/src/tensor.rs and its tests, named in each comment).
#include <gtest/gtest.h>

#include "hostile_util.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using test::fails_with;
using test::st_bytes;
using test::st_parse;

std::string one(const std::string& dtype, const std::string& shape, const std::string& offsets,
                const std::string& name = "t") {
  return "{\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";
}

// test_header_too_small: an empty file and a 7-byte file.
TEST(SafetensorsRules, HeaderShorterThan8Bytes) {
  EXPECT_TRUE(fails_with([] { st_parse(""); }, {"hostile.safetensors", "shorter than the 8-byte"}));
  EXPECT_TRUE(fails_with([] { st_parse(std::string(7, '\0')); }, {"7 bytes"}));
}

// test_header_too_large: bytes 3c 00 00 00 00 ff ff ff, and 100,000,001.
TEST(SafetensorsRules, HeaderLengthOver100MB) {
  std::string b("\x3c\x00\x00\x00\x00\xff\xff\xff", 8);
  EXPECT_TRUE(fails_with([&] { st_parse(b + "{}"); }, {"100 MB"}));
  std::string c(8, '\0');
  uint64_t n = kSafetensorsMaxHeader + 1;
  for (int i = 0; i < 8; i++) c[i] = char((n >> (8 * i)) & 0xff);
  EXPECT_TRUE(fails_with([&] { st_parse(c); }, {"100 MB"}));
  std::string d(8, '\xff');  // u64 max: does not fit anything
  EXPECT_TRUE(fails_with([&] { st_parse(d); }, {"100 MB"}));
}

// test_invalid_header_length: the header says 60, no bytes follow.
TEST(SafetensorsRules, HeaderLengthPastEndOfFile) {
  std::string b(8, '\0');
  b[0] = 60;
  EXPECT_TRUE(fails_with([&] { st_parse(b); }, {"runs past the end"}));
  EXPECT_TRUE(fails_with([&] { st_parse(b + std::string(59, ' ')); }, {"runs past the end"}));
}

// test_invalid_header_non_utf8 (N=1, 0xFF), plus overlong, surrogate and > U+10FFFF forms.
TEST(SafetensorsRules, HeaderNotUtf8) {
  for (std::string bad : {std::string("\xff"), std::string("{\"\xc0\xaf\":1}"), std::string("{\"\xed\xa0\x80\":1}"),
                          std::string("{\"\xf4\x90\x80\x80\":1}"), std::string("{\"\xe2\x82\":1}")})
    EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(bad)); }, {"not valid UTF-8"})) << "case of " << bad.size() << " bytes";
}

// test_invalid_header_not_json: N=1, "{".
TEST(SafetensorsRules, HeaderNotJson) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes("{")); }, {"not valid JSON"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes("{} x")); }, {"not valid JSON"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes("[]")); }, {"not a JSON object"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes("")); }, {"not valid JSON"}));
}

// The serde dtype enum rejects unknown names (and lower case).
TEST(SafetensorsRules, UnknownDtype) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F33", "[1]", "[0,4]"), "abcd")); }, {"unsupported dtype", "F33"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("f32", "[1]", "[0,4]"), "abcd")); }, {"unsupported dtype"}));
}

// Sub-byte dtypes (F4, F6_*: MisalignedSlice in the reference when the bit
// count is not a whole byte) and FP8 are valid safetensors but no VL2
// checkpoint uses them: refused by name rather than misread.
TEST(SafetensorsRules, SubByteAndFp8DtypesRefused) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F4", "[3]", "[0,2]"), "ab")); }, {"unsupported dtype", "F4"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F6_E2M3", "[4]", "[0,3]"), "abc")); }, {"unsupported dtype"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F8_E4M3", "[2]", "[0,2]"), "ab")); }, {"unsupported dtype"}));
}

// __metadata__ is a map of string to string only.
TEST(SafetensorsRules, MetadataValueNotString) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"__metadata__":{"format":1}})")); }, {"__metadata__", "format"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"__metadata__":{"a":{"b":"c"}}})")); }, {"not a string"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"__metadata__":["pt"]})")); }, {"not an object"}));
}

// InvalidTensorName / InvalidMetadata (Huntr null-byte report); the name is
// escaped in the message so it cannot inject into logs.
TEST(SafetensorsRules, NulInNames) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[1]", "[0,1]", "a\\u0000b"), "x")); },
                         {"NUL", "a\\x00b"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"__metadata__":{"k\u0000":"v"}})")); }, {"NUL"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"__metadata__":{"k":"v\u0000"}})")); }, {"NUL"}));
}

// README: "Duplicate keys are disallowed"; we reject at every level.
TEST(SafetensorsRules, DuplicateKeys) {
  std::string h = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})";
  EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(h, "xy")); }, {"duplicate key", "\"a\""}));
  std::string inner = R"({"a":{"dtype":"U8","dtype":"F32","shape":[1],"data_offsets":[0,1]}})";
  EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(inner, "x")); }, {"duplicate key", "dtype"}));
}

// InvalidOffset: overlap, hole, first tensor not at 0, END < BEGIN.
TEST(SafetensorsRules, OverlappingOffsets) {
  std::string h = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})";
  EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(h, "xyz")); }, {"overlap", "\"b\""}));
}

TEST(SafetensorsRules, HoleBetweenTensors) {
  std::string h = R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}})";
  EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(h, "vwxyz")); }, {"hole", "\"b\""}));
  EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(one("U8", "[2]", "[1,3]"), "xyz")); }, {"hole"}));
}

TEST(SafetensorsRules, OffsetsOutOfOrderOrReversed) {
  // Declared out of file order but chaining exactly: accepted (the reference sorts).
  std::string ok = R"({"b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  std::string bytes = st_bytes(ok, "AB");  // views point into it: keep it alive
  auto h = st_parse(bytes);
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(*static_cast<const char*>(h.tensors[1].view.data), 'B');
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[0]", "[2,1]"), "xy")); }, {"end before begin"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[1]", "[0]"), "x")); }, {"two non-negative"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[1]", "[-1,0]"), "x")); }, {"two non-negative"}));
}

// test_json_attack: 10 tensors all at [0,16].
TEST(SafetensorsRules, TenTensorsAliasingTheSameBytes) {
  std::string h = "{";
  for (int i = 0; i < 10; i++)
    h += std::string(i ? "," : "") + "\"t" + std::to_string(i) + R"(":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]})";
  h += "}";
  EXPECT_TRUE(fails_with([&] { st_parse(st_bytes(h, std::string(16, '\0'))); }, {"overlap"}));
}

// ValidationOverflow: the reference tests' two shapes, plus bytes overflow.
TEST(SafetensorsRules, ShapeOverflow) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F32", "[2, 18446744073709551614]", "[0,4]"), "abcd")); }, {"overflows"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F32", "[2, 9223372036854775807]", "[0,4]"), "abcd")); }, {"overflows"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[9223372036854775808]", "[0,4]"), "abcd")); }, {"overflows"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F64", "[4611686018427387904]", "[0,4]"), "abcd")); }, {"overflows"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[-1]", "[0,4]"), "abcd")); }, {"non-negative"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[1.5]", "[0,4]"), "abcd")); }, {"non-negative"}));
}

// test_invalid_info: shape [2,2] I32 with offsets [0,4].
TEST(SafetensorsRules, SpanDisagreesWithShape) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("I32", "[2,2]", "[0,4]"), "abcd")); }, {"span 4 bytes", "needs 16"}));
  // 0 elements but a non-empty span.
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("F32", "[2,0]", "[0,4]"), "abcd")); }, {"needs 0"}));
}

// test_metadata_incomplete_buffer: extra bytes (polyglot) and 2 missing bytes.
TEST(SafetensorsRules, TrailingBytes) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[4]", "[0,4]"), "abcdEXTRA")); }, {"trailing bytes"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes("{}", "x")); }, {"trailing bytes"}));
}

TEST(SafetensorsRules, TwoMissingBytes) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[4]", "[0,4]"), "ab")); }, {"truncated"}));
}

TEST(SafetensorsRules, EntryShapeAndTypes) {
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"t":[1,2]})")); }, {"not an object"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"t":{"dtype":"U8","shape":[1]}})", "x")); }, {"missing \"data_offsets\""}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(R"({"t":{"dtype":7,"shape":[1],"data_offsets":[0,1]}})", "x")); }, {"dtype is not a string"}));
  EXPECT_TRUE(fails_with([] { st_parse(st_bytes(one("U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]"), "x")); }, {"at most 8"}));
}

// The accept cases of the reference tests.
TEST(SafetensorsRules, AcceptsReferenceVectors) {
  EXPECT_EQ(st_parse(st_bytes("{}      ")).tensors.size(), 0u);   // test_whitespace_padded_header
  EXPECT_EQ(st_parse(st_bytes("      {}")).tensors.size(), 0u);   // test_whitespace_leading_padded_header
  EXPECT_EQ(st_parse(st_bytes("{}")).data_start, 10u);
  auto s = st_parse(st_bytes(one("I32", "[]", "[0,4]"), "\x01\x02\x03\x04"));  // rank-0
  ASSERT_EQ(s.tensors.size(), 1u);
  EXPECT_TRUE(s.tensors[0].view.shape.empty());
  EXPECT_EQ(s.tensors[0].view.nbytes, 4u);
  auto e = st_parse(st_bytes(one("F32", "[2,0]", "[0,0]")));  // empty tensor
  ASSERT_EQ(e.tensors.size(), 1u);
  EXPECT_EQ(e.tensors[0].view.numel(), 0);
  auto m = st_parse(st_bytes(R"({"__metadata__":{"format":"pt"},"w":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", "abcd"));
  EXPECT_EQ(m.metadata.at("format"), "pt");
  // Data start need not be aligned: a 3-byte header leaves it at offset 11.
  std::string z = st_bytes(one("U8", "[1]", "[0,1]"), "z");
  auto u = st_parse(z);
  EXPECT_EQ(*static_cast<const char*>(u.tensors[0].view.data), 'z');
}

// A writer refusal: declared names must be unique.
TEST(SafetensorsRules, WriterRejectsDuplicateNames) {
  std::string dir = test::temp_dir("hostile_writer");
  EXPECT_TRUE(fails_with(
      [&] {
        SafetensorsWriter w(dir + "/x.safetensors", {{"a", DType::kU8, {1}}, {"a", DType::kU8, {1}}});
      },
      {"duplicate tensor name"}));
}

}  // namespace
}  // namespace dsvl2
