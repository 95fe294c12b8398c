// Hostile GGUF inputs: one handcrafted file per reader check, following the
// matrix of llama.cpp's tests/test-gguf.cpp (HEADER_*, KV_*, TENSORS_*, DATA_*
// plus the *_SUCCESS / *_CUSTOM_ALIGN positives), extended with the stricter
// checks of our reader. Each negative asserts the specific error fired.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/gguf.h"

namespace dsvl2 {
namespace {

// Little-endian byte builder.
struct B {
  std::string s;
  B& u8(uint8_t v) { return raw(&v, 1); }
  B& u32(uint32_t v) { return raw(&v, 4); }
  B& i32(int32_t v) { return raw(&v, 4); }
  B& u64(uint64_t v) { return raw(&v, 8); }
  B& i64(int64_t v) { return raw(&v, 8); }
  B& f32(float v) { return raw(&v, 4); }
  B& str(std::string_view v) {
    u64(v.size());
    s.append(v);
    return *this;
  }
  B& raw(const void* p, size_t n) {
    s.append(static_cast<const char*>(p), n);
    return *this;
  }
};

// KV encoders (value type ids from the spec).
std::string kv_u32(const std::string& key, uint32_t v) { return B().str(key).u32(4).u32(v).s; }
std::string kv_i32(const std::string& key, int32_t v) { return B().str(key).u32(5).i32(v).s; }
std::string kv_str(const std::string& key, const std::string& v) { return B().str(key).u32(8).str(v).s; }

struct TensorSpec {
  TensorSpec(std::string n, std::vector<int64_t> dims, uint32_t t = 0, std::optional<uint64_t> off = std::nullopt)
      : name(std::move(n)), ne(std::move(dims)), type(t), offset(off) {}
  std::string name;
  std::vector<int64_t> ne;         // GGUF order: ne[0] innermost
  uint32_t type;                   // 0 = f32
  std::optional<uint64_t> offset;  // default: the correct running offset
};

uint64_t bytes_of(const TensorSpec& t) {
  const GgmlTypeInfo* ti = ggml_type_info(t.type);
  uint64_t n = 1;
  for (int64_t d : t.ne) n *= uint64_t(d);
  return ti ? n / ti->block_elems * ti->block_bytes : n;
}

// A handcrafted file; every field defaults to a well-formed value.
struct Craft {
  std::string magic = "GGUF";
  uint32_t version = 3;
  std::optional<uint64_t> n_tensors, n_kv;  // override the true counts
  std::vector<std::string> kvs;             // encoded KVs
  std::vector<TensorSpec> tensors;
  uint32_t align = 32;         // alignment used to lay out the file
  int64_t data_delta = 0;      // bytes added (or removed) at the end
  bool pad_last = true;        // pad after the last tensor

  std::string build() const {
    B b;
    b.raw(magic.data(), magic.size()).u32(version);
    b.u64(n_tensors.value_or(tensors.size())).u64(n_kv.value_or(kvs.size()));
    for (const auto& kv : kvs) b.raw(kv.data(), kv.size());
    uint64_t off = 0;
    std::vector<uint64_t> sizes;
    for (const auto& t : tensors) {
      b.str(t.name).u32(uint32_t(t.ne.size()));
      for (int64_t d : t.ne) b.i64(d);
      b.u32(t.type).u64(t.offset.value_or(off));
      sizes.push_back(bytes_of(t));
      off += (sizes.back() + align - 1) / align * align;
    }
    while (b.s.size() % align) b.u8(0);
    for (size_t i = 0; i < sizes.size(); i++) {
      if (sizes[i] > (uint64_t(1) << 24)) continue;  // absurd sizes: rejected before the data
      for (uint64_t k = 0; k < sizes[i]; k++) b.u8(uint8_t(k * 7 + i));
      if (i + 1 < sizes.size() || pad_last)
        while (b.s.size() % align) b.u8(0);
    }
    if (data_delta < 0) b.s.resize(b.s.size() - size_t(-data_delta));
    for (int64_t i = 0; i < data_delta; i++) b.u8(0xAB);
    return b.s;
  }
};

GgufHeader parse(const std::string& bytes) {
  return parse_gguf(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test.gguf");
}

// Asserts the parse fails with an Error whose message contains `needle`.
void expect_reject(const std::string& bytes, const std::string& needle) {
  try {
    parse(bytes);
    ADD_FAILURE() << "accepted a file that should fail with \"" << needle << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "error was: " << e.what();
  }
}

Craft with_tensors() {
  Craft c;
  c.kvs = {kv_str("general.architecture", "deepseek_vl2")};
  c.tensors = {{"a.weight", {64, 3}, 0}, {"b.weight", {32, 2}, 8}, {"c.bias", {5}, 1}};
  return c;
}

// ---- HEADER_* -------------------------------------------------------------

TEST(GgufHostile, HeaderBadMagic) {
  Craft c;
  c.magic = "FUGG";
  expect_reject(c.build(), "magic \"FUGG\"");
}
TEST(GgufHostile, HeaderEmptyAndShortFiles) {
  expect_reject("", "not a GGUF file");
  expect_reject("GGU", "not a GGUF file");
  expect_reject("GGUF\x03", "truncated");
}
TEST(GgufHostile, HeaderBadVersion0) {
  Craft c;
  c.version = 0;
  expect_reject(c.build(), "version 0");
}
TEST(GgufHostile, HeaderBadVersion1) {
  Craft c;
  c.version = 1;
  expect_reject(c.build(), "version 1 is no longer supported");
}
TEST(GgufHostile, HeaderBadVersionFuture) {
  Craft c;
  c.version = 4;
  expect_reject(c.build(), "newer than the supported version 3");
}
TEST(GgufHostile, HeaderByteSwappedVersion) {
  Craft c;
  c.version = 0x03000000;  // a big-endian v3 file read little-endian
  expect_reject(c.build(), "byte-swapped");
}
TEST(GgufHostile, HeaderBadNKv) {
  Craft c;
  c.n_kv = uint64_t(-1);
  expect_reject(c.build(), "metadata count");
  c.n_kv = 1000;  // plausible as int64, but the file cannot hold that many
  expect_reject(c.build(), "metadata count 1000 is impossible");
}
TEST(GgufHostile, HeaderBadNTensors) {
  Craft c;
  c.n_tensors = uint64_t(-1);
  expect_reject(c.build(), "tensor count");
  c.n_tensors = uint64_t(INT64_MAX);
  expect_reject(c.build(), "tensor count");
}
TEST(GgufHostile, HeaderEmptySucceeds) {
  GgufHeader h = parse(Craft().build());
  EXPECT_EQ(h.version, 3u);
  EXPECT_EQ(h.metadata.size(), 0u);
  EXPECT_TRUE(h.tensors.empty());
  // Without the trailing padding (llama.cpp skips it when there are no tensors).
  B b;
  b.raw("GGUF", 4).u32(3).u64(0).u64(0);
  EXPECT_NO_THROW(parse(b.s));
}
TEST(GgufHostile, HeaderVersion2Accepted) {  // same layout as v3 (llama.cpp reads it)
  Craft c;
  c.version = 2;
  EXPECT_EQ(parse(c.build()).version, 2u);
}

// ---- KV_* -------------------------------------------------------------------

TEST(GgufHostile, KvBadKeySize) {
  Craft c;
  c.kvs = {B().u64(uint64_t(-1)).s};
  c.data_delta = 64;  // room enough that the KV count itself is plausible
  expect_reject(c.build(), "exceeds the 1 GiB limit");
  c.data_delta = 0;
  c.kvs = {B().u64(1000).raw("abc", 3).u32(4).u32(1).s};  // longer than the file
  c.n_kv = 1;
  expect_reject(c.build(), "exceeds the");
}
TEST(GgufHostile, KvEmptyKey) {
  Craft c;
  c.kvs = {kv_u32("", 1)};
  expect_reject(c.build(), "empty key");
}
TEST(GgufHostile, KvNonPrintableKey) {
  Craft c;
  c.kvs = {kv_u32(std::string("a\0b", 3), 1)};
  expect_reject(c.build(), "not printable ASCII");
  c.kvs = {kv_u32("a b", 1)};
  expect_reject(c.build(), "not printable ASCII");
}
TEST(GgufHostile, KvBadType) {
  Craft c;
  c.kvs = {B().str("k").u32(13).u8(0).s};
  expect_reject(c.build(), "unknown value type 13");
  c.kvs = {B().str("k").u32(uint32_t(-1)).u8(0).s};
  expect_reject(c.build(), "unknown value type");
}
TEST(GgufHostile, KvBadArrayElementType) {
  Craft c;
  c.kvs = {B().str("k").u32(9).u32(13).u64(0).s};
  expect_reject(c.build(), "unknown array element type 13");
}
TEST(GgufHostile, KvArrayOfArrays) {
  Craft c;
  c.kvs = {B().str("k").u32(9).u32(9).u64(1).u32(4).u64(1).u32(7).s};
  expect_reject(c.build(), "arrays of arrays");
}
TEST(GgufHostile, KvArrayTooLong) {
  Craft c;
  c.kvs = {B().str("k").u32(9).u32(0).u64((uint64_t(1) << 30) + 1).s};
  expect_reject(c.build(), "exceeds the 2^30 limit");
}
TEST(GgufHostile, KvArrayPastEndOfFile) {
  Craft c;
  c.kvs = {B().str("k").u32(9).u32(10).u64(uint64_t(1) << 30).u64(1).s};  // 8 GiB of u64 declared
  expect_reject(c.build(), "need more than the");
  c.kvs = {B().str("k").u32(9).u32(8).u64(uint64_t(1) << 29).s};  // 2^29 strings, 4 GiB of lengths at least
  expect_reject(c.build(), "cannot fit");
}
TEST(GgufHostile, KvStringArrayElementTooLong) {
  Craft c;
  c.kvs = {B().str("k").u32(9).u32(8).u64(2).str("ok").u64(1u << 20).raw("x", 1).s};
  expect_reject(c.build(), "exceeds the");
}
TEST(GgufHostile, KvBadBool) {
  Craft c;
  c.kvs = {B().str("k").u32(7).u8(2).s};
  expect_reject(c.build(), "neither 0 nor 1");
  c.kvs = {B().str("k").u32(9).u32(7).u64(3).u8(1).u8(0).u8(0xff).s};
  expect_reject(c.build(), "neither 0 nor 1");
}
TEST(GgufHostile, KvDuplicateKey) {
  Craft c;
  c.kvs = {kv_u32("my_key_0", 1), kv_str("my_key_1", "x"), kv_u32("my_key_0", 2)};
  expect_reject(c.build(), "duplicate metadata key \"my_key_0\"");
}
TEST(GgufHostile, KvBadAlign) {
  for (uint32_t a : {0u, 13u, 48u}) {
    Craft c;
    c.kvs = {kv_u32("general.alignment", a)};
    expect_reject(c.build(), "is not a power of two");
  }
}
TEST(GgufHostile, KvWrongTypeAlign) {
  Craft c;
  c.kvs = {kv_i32("general.alignment", 32)};
  expect_reject(c.build(), "must be a u32 but is i32");
  c.kvs = {B().str("general.alignment").u32(9).u32(4).u64(1).u32(32).s};
  expect_reject(c.build(), "must be a u32 but is an array of u32");
}
TEST(GgufHostile, KvSuccessEveryType) {
  Craft c;
  c.kvs = {
      B().str("t.u8").u32(0).u8(200).s,        B().str("t.i8").u32(1).u8(0xfe).s,
      B().str("t.u16").u32(2).raw("\x34\x12", 2).s, B().str("t.i16").u32(3).raw("\xff\xff", 2).s,
      kv_u32("t.u32", 4000000000u),             kv_i32("t.i32", -7),
      B().str("t.f32").u32(6).f32(1.5f).s,      B().str("t.bool").u32(7).u8(1).s,
      kv_str("t.str", "hello"),                 B().str("t.u64").u32(10).u64(1ull << 40).s,
      B().str("t.i64").u32(11).i64(-5).s,       B().str("t.f64").u32(12).raw("\0\0\0\0\0\0\xf8\x3f", 8).s,
      B().str("t.arr_i32").u32(9).u32(5).u64(3).i32(1).i32(-2).i32(3).s,
      B().str("t.arr_str").u32(9).u32(8).u64(2).str("a").str("").s,
      B().str("t.arr_empty").u32(9).u32(6).u64(0).s,
  };
  GgufHeader h = parse(c.build());
  const GgufMetadata& m = h.metadata;
  EXPECT_EQ(m.size(), 15u);
  EXPECT_EQ(m.get<uint8_t>("t.u8"), 200);
  EXPECT_EQ(m.get<int8_t>("t.i8"), -2);
  EXPECT_EQ(m.get<uint16_t>("t.u16"), 0x1234);
  EXPECT_EQ(m.get<int16_t>("t.i16"), -1);
  EXPECT_EQ(m.get<uint32_t>("t.u32"), 4000000000u);
  EXPECT_EQ(m.get<int32_t>("t.i32"), -7);
  EXPECT_EQ(m.get<float>("t.f32"), 1.5f);
  EXPECT_TRUE(m.get<bool>("t.bool"));
  EXPECT_EQ(m.get<std::string>("t.str"), "hello");
  EXPECT_EQ(m.get<uint64_t>("t.u64"), 1ull << 40);
  EXPECT_EQ(m.get<int64_t>("t.i64"), -5);
  EXPECT_EQ(m.get<double>("t.f64"), 1.5);
  EXPECT_EQ(m.get_array<int32_t>("t.arr_i32", 3), (std::vector<int32_t>{1, -2, 3}));
  EXPECT_EQ(m.get_array<std::string>("t.arr_str", 10), (std::vector<std::string>{"a", ""}));
  EXPECT_TRUE(m.get_array<float>("t.arr_empty", 0).empty());
  EXPECT_EQ(h.alignment, 32u);
}

// The post-parser CVEs were type confusion: the accessors must check.
TEST(GgufHostile, KvTypedAccessorsRefuseConfusion) {
  Craft c;
  c.kvs = {kv_str("s", "x"), kv_u32("n", 5), B().str("a").u32(9).u32(4).u64(4).u32(1).u32(2).u32(3).u32(4).s,
           B().str("big").u32(10).u64(1ull << 33).s};
  GgufHeader h = parse(c.build());
  const GgufMetadata& m = h.metadata;
  EXPECT_THROW(m.get<uint32_t>("s"), Error);          // string read as u32
  EXPECT_THROW(m.get<std::string>("n"), Error);       // u32 read as string
  EXPECT_THROW(m.get<int32_t>("n"), Error);           // no silent signedness change
  EXPECT_THROW(m.get<uint32_t>("a"), Error);          // array read as scalar
  EXPECT_THROW(m.get_array<int32_t>("a", 10), Error);  // wrong element type
  EXPECT_THROW(m.get_array<uint64_t>("a", 10), Error);
  EXPECT_THROW(m.get_array<uint32_t>("a", 3), Error);  // more elements than the caller allows
  EXPECT_EQ(m.get_array<uint32_t>("a", 4).size(), 4u);
  EXPECT_THROW(m.get<uint32_t>("missing"), Error);
  EXPECT_FALSE(m.get_opt<uint32_t>("missing").has_value());
  EXPECT_THROW(m.get_opt<uint32_t>("s"), Error);       // present with another type is not "absent"
  EXPECT_EQ(m.get_count("n", 5), 5u);                  // u32 or u64 counts, range-checked
  EXPECT_THROW(m.get_count("n", 4), Error);
  EXPECT_THROW(m.get_count("big", 1ull << 32), Error);
  EXPECT_THROW(m.get_count("s", 10), Error);
}

// ---- TENSORS_* --------------------------------------------------------------

TEST(GgufHostile, TensorsBadNameSize) {
  Craft c = with_tensors();
  c.tensors[1].name = std::string(64, 'n');
  expect_reject(c.build(), "longer than 63 bytes");
  c.tensors[1].name = std::string(63, 'n');  // the longest allowed
  EXPECT_NO_THROW(parse(c.build()));
}
TEST(GgufHostile, TensorsBadNameContent) {
  Craft c = with_tensors();
  c.tensors[0].name = "";
  expect_reject(c.build(), "empty tensor name");
  c.tensors[0].name = std::string("a\0b", 3);
  expect_reject(c.build(), "NUL");
}
TEST(GgufHostile, TensorsBadNDims) {
  Craft c = with_tensors();
  c.tensors[0].ne = {64, 1, 1, 1, 1};
  expect_reject(c.build(), "5 dimensions, more than 4");
}
TEST(GgufHostile, TensorsBadShape) {
  Craft c = with_tensors();
  c.tensors[1].ne = {-1, 2};
  expect_reject(c.build(), "is negative");
}
TEST(GgufHostile, TensorsZeroDimAccepted) {
  Craft c = with_tensors();
  c.tensors[1].ne = {32, 0};
  GgufHeader h = parse(c.build());
  EXPECT_EQ(h.tensors[1].shape, (Shape{0, 32}));
  EXPECT_EQ(h.tensors[1].view.nbytes, 0u);
}
TEST(GgufHostile, TensorsNeTooBig) {
  Craft c = with_tensors();
  c.tensors[0].ne = {4 * int64_t(INT32_MAX), 4 * int64_t(INT32_MAX)};
  expect_reject(c.build(), "overflows int64");
  c.tensors[0].ne = {2, INT64_MAX};
  expect_reject(c.build(), "overflows int64");
}
TEST(GgufHostile, TensorsNbytesTooBig) {
  Craft c = with_tensors();
  c.tensors[0].ne = {int64_t(1) << 31, int64_t(1) << 31};  // 2^62 elements of i64: 2^65 bytes
  c.tensors[0].type = 27;
  expect_reject(c.build(), "byte size");
}
TEST(GgufHostile, TensorsBadType) {
  for (uint32_t t : {43u, 4u, 5u, 31u, 36u, 0xffffffffu}) {  // past the end, and removed ids
    Craft c = with_tensors();
    c.tensors[2].type = t;
    expect_reject(c.build(), "unknown or removed ggml type");
  }
}
TEST(GgufHostile, TensorsRowNotWholeBlocks) {
  Craft c = with_tensors();
  c.tensors[1].ne = {33, 2};  // Q8_0 blocks are 32 wide
  expect_reject(c.build(), "not a multiple of the q8_0 block size 32");
  c.tensors[1] = {"k", {128, 2}, 12};  // Q4_K super-blocks are 256 wide
  expect_reject(c.build(), "q4_K block size 256");
}
TEST(GgufHostile, TensorsBadOffset) {
  Craft c = with_tensors();
  c.tensors[1].offset = uint64_t(-1);
  expect_reject(c.build(), "has data offset 18446744073709551615, expected 768");
}
TEST(GgufHostile, TensorsOffsetHoleOverlapOrder) {
  Craft c = with_tensors();
  c.tensors[1].offset = 768 + 32;  // aligned, but leaves a hole
  expect_reject(c.build(), "expected 768");
  c.tensors[1].offset = 0;  // aliases tensor 0
  expect_reject(c.build(), "expected 768");
  c.tensors[1].offset = 100;  // inside tensor 0, unaligned
  expect_reject(c.build(), "expected 768");
}
TEST(GgufHostile, TensorsDuplicateName) {
  Craft c = with_tensors();
  c.tensors[2].name = "a.weight";
  expect_reject(c.build(), "duplicate tensor name \"a.weight\"");
}
TEST(GgufHostile, TensorsBadAlign) {
  Craft c = with_tensors();
  c.kvs.push_back(kv_u32("general.alignment", 13));
  expect_reject(c.build(), "not a power of two");
}
TEST(GgufHostile, TensorsInconsistentAlign) {
  // Laid out with alignment 1, but the file declares none (so 32).
  Craft c = with_tensors();
  c.align = 1;
  expect_reject(c.build(), "expected");
}
TEST(GgufHostile, TensorsSuccess) {
  Craft c = with_tensors();
  std::string bytes = c.build();
  GgufHeader h = parse(bytes);
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].shape, (Shape{3, 64}));  // PyTorch order
  EXPECT_EQ(h.tensors[0].view.dtype, DType::kF32);
  EXPECT_EQ(h.tensors[0].view.nbytes, 64u * 3 * 4);
  EXPECT_EQ(h.tensors[1].view.dtype, DType::kQ8_0);
  EXPECT_EQ(h.tensors[1].view.nbytes, 2u * 34);
  EXPECT_EQ(h.tensors[1].offset, 768u);
  EXPECT_EQ(h.tensors[2].view.dtype, DType::kF16);
  EXPECT_EQ(h.data_offset % 32, 0u);
  const uint8_t* base = reinterpret_cast<const uint8_t*>(bytes.data());
  EXPECT_EQ(static_cast<const uint8_t*>(h.tensors[1].view.data), base + h.data_offset + 768);
  EXPECT_EQ(static_cast<const uint8_t*>(h.tensors[1].view.data)[3], uint8_t(3 * 7 + 1));
}
TEST(GgufHostile, TensorsCustomAlign) {
  for (uint32_t a : {1u, 8u, 64u, 4096u}) {  // llama.cpp's test uses 1
    Craft c = with_tensors();
    c.kvs.push_back(kv_u32("general.alignment", a));
    c.align = a;
    GgufHeader h = parse(c.build());
    EXPECT_EQ(h.alignment, a);
    EXPECT_EQ(h.data_offset % a, 0u);
    for (const auto& t : h.tensors) EXPECT_EQ(t.offset % a, 0u);
  }
}
TEST(GgufHostile, TensorsScalarAndForeignQuantTypes) {
  Craft c;
  c.tensors = {{"scalar", {}, 0},      {"q4k", {256, 2}, 12}, {"q6k", {512}, 14},
               {"q8k", {256}, 15},      {"iq2", {256}, 16},   {"q4_0", {64}, 2},
               {"iq4_nl", {64, 3}, 20}};  // as llama.cpp writes IQ4_NL: computable here
  GgufHeader h = parse(c.build());
  EXPECT_TRUE(h.tensors[0].shape.empty());
  EXPECT_EQ(h.tensors[0].view.nbytes, 4u);
  EXPECT_EQ(h.tensors[1].view.nbytes, 2u * 144);
  EXPECT_EQ(h.tensors[1].view.dtype, DType::kQ4_K);
  EXPECT_EQ(h.tensors[2].view.nbytes, 2u * 210);
  EXPECT_EQ(h.tensors[3].view.nbytes, 292u);
  EXPECT_EQ(h.tensors[4].view.nbytes, 66u);
  EXPECT_FALSE(h.tensors[4].has_dtype());  // validated, but not computable
  EXPECT_EQ(h.tensors[5].view.nbytes, 2u * 18);
  EXPECT_TRUE(h.tensors[6].has_dtype());
  EXPECT_EQ(h.tensors[6].view.dtype, DType::kIQ4_NL);
  EXPECT_EQ(h.tensors[6].view.nbytes, 3u * 2 * 18);
}

// ---- DATA_* -----------------------------------------------------------------

TEST(GgufHostile, DataNotEnoughData) {
  Craft c = with_tensors();
  c.pad_last = false;
  c.data_delta = -1;
  expect_reject(c.build(), "truncated GGUF: tensor data needs");
}
TEST(GgufHostile, DataMissingOnlyFinalPaddingAccepted) {
  Craft c = with_tensors();
  c.pad_last = false;  // c.bias: 10 bytes, then no padding
  EXPECT_NO_THROW(parse(c.build()));
}
TEST(GgufHostile, DataTrailingBytes) {
  Craft c = with_tensors();
  c.data_delta = 1;
  expect_reject(c.build(), "1 trailing bytes");
  Craft e;
  e.data_delta = 5;
  expect_reject(e.build(), "trailing bytes");
}
TEST(GgufHostile, DataBadAlign) {
  Craft c = with_tensors();
  c.kvs.push_back(kv_u32("general.alignment", 12));
  c.align = 12;
  expect_reject(c.build(), "not a power of two");
}
TEST(GgufHostile, DataInconsistentAlign) {
  // Declares 64 but is laid out (offsets and data) with 32.
  Craft c = with_tensors();
  c.kvs.push_back(kv_u32("general.alignment", 64));
  expect_reject(c.build(), "expected");
}
TEST(GgufHostile, DataMemSizeOverflow) {
  Craft c;
  c.tensors = {{"a", {0x7FFFFFFFFFFFFFC0}, 24, 0}, {"b", {0x7FFFFFFFFFFFFFC0}, 24, 0x7FFFFFFFFFFFFFC0}};
  B b;
  b.raw("GGUF", 4).u32(3).u64(2).u64(0);
  for (const auto& t : c.tensors) b.str(t.name).u32(1).i64(t.ne[0]).u32(t.type).u64(*t.offset);
  while (b.s.size() % 32) b.u8(0);
  b.s.append(32, '\0');
  try {
    parse(b.s);
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_TRUE(m.find("overflows") != std::string::npos || m.find("truncated") != std::string::npos) << m;
  }
}

// ---- sweeps -------------------------------------------------------------------

// Every strict prefix of a file whose last tensor ends exactly at the end must
// be rejected; no prefix may crash or read out of bounds (run under ASan).
TEST(GgufHostile, EveryTruncationRejected) {
  Craft c = with_tensors();
  c.tensors[2].ne = {16};  // 32 bytes of f16: ends on the alignment
  std::string full = c.build();
  ASSERT_NO_THROW(parse(full));
  for (size_t n = 0; n < full.size(); n++) {
    std::string cut = full.substr(0, n);
    EXPECT_THROW(parse(cut), Error) << "prefix of " << n << " bytes accepted";
  }
}

// Every single-byte change to the header either parses or throws Error.
TEST(GgufHostile, ByteFlipsNeverCrash) {
  Craft c = with_tensors();
  c.kvs.push_back(B().str("t.arr").u32(9).u32(8).u64(2).str("ab").str("cd").s);
  std::string full = c.build();
  GgufHeader h = parse(full);
  int rejected = 0;
  for (size_t i = 0; i < h.data_offset; i++)
    for (uint8_t x : {uint8_t(0x01), uint8_t(0x80), uint8_t(0xff)}) {
      std::string m = full;
      m[i] = char(uint8_t(m[i]) ^ x);
      try {
        parse(m);
      } catch (const Error&) {
        rejected++;
      }
    }
  EXPECT_GT(rejected, 0);
}

}  // namespace
}  // namespace dsvl2
