#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "core/file.h"
#include "io/checkpoint.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

std::string header_file(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; i++) out[i] = char((n >> (8 * i)) & 0xff);
  return out + json + data;
}

SafetensorsHeader parse(const std::string& bytes) {
  return parse_safetensors(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "test");
}

TEST(Safetensors, WriteThenReadRoundTrips) {
  std::string dir = test::temp_dir("st_roundtrip");
  Tensor a = Tensor::f32({2, 3});
  for (int i = 0; i < 6; i++) a.f32()[i] = float(i) * 1.5f;
  Tensor b(DType::kBF16, {4});
  for (int i = 0; i < 4; i++) b.as<uint16_t>()[i] = f32_to_bf16(float(i) - 2.f);
  Tensor empty = Tensor::f32({2, 0});
  save_safetensors(dir + "/t.safetensors", {{"a", &a}, {"b", &b}, {"e", &empty}});
  SafetensorsFile f(dir + "/t.safetensors");
  ASSERT_EQ(f.tensors().size(), 3u);
  const SafetensorsTensor* ta = f.find("a");
  ASSERT_NE(ta, nullptr);
  EXPECT_EQ(ta->view.shape, (Shape{2, 3}));
  Tensor back = to_f32(ta->view);
  for (int i = 0; i < 6; i++) EXPECT_EQ(back.f32()[i], a.f32()[i]);
  Tensor bb = to_f32(f.find("b")->view);
  EXPECT_EQ(bb.f32()[3], 1.f);
  EXPECT_EQ(f.find("missing"), nullptr);
}

// Prefaulting maps pages without changing what they read; a checkpoint over
// the budget is left alone.
TEST(Safetensors, CheckpointPopulateKeepsBytesAndRespectsBudget) {
  std::string dir = test::temp_dir("st_populate");
  Tensor a = Tensor::f32({64, 64});
  for (int i = 0; i < 64 * 64; i++) a.f32()[i] = float(i % 97) - 40.f;
  save_safetensors(dir + "/model.safetensors", {{"a", &a}});
  Checkpoint ck(dir);
  EXPECT_FALSE(ck.populate(100));  // the file is larger than 100 bytes
  EXPECT_TRUE(ck.populate(size_t(1) << 30));
  Tensor back = to_f32(ck.require("a", {64, 64}));
  for (int i = 0; i < 64 * 64; i++) ASSERT_EQ(back.f32()[i], a.f32()[i]);
  MappedFile empty_map;
  EXPECT_TRUE(empty_map.populate());
  EXPECT_GT(memory_available_bytes(), size_t(0));
}

TEST(Safetensors, AcceptsPaddedAndEmptyHeaders) {
  EXPECT_EQ(parse(header_file("{}      ", "")).tensors.size(), 0u);
  EXPECT_EQ(parse(header_file("  {}", "")).tensors.size(), 0u);
  auto h = parse(header_file(R"({"s":{"dtype":"I32","shape":[],"data_offsets":[0,4]}})", "abcd"));
  ASSERT_EQ(h.tensors.size(), 1u);
  EXPECT_TRUE(h.tensors[0].view.shape.empty());
}

TEST(Safetensors, RejectsOverlappingOffsets) {
  EXPECT_THROW(parse(header_file(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})",
                                 "abcd")),
               Error);
}

}  // namespace
}  // namespace dsvl2
