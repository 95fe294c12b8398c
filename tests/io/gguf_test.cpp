// GGUF writer -> reader round trips, writer refusals, the deepseek_vl2 key set,
// and Checkpoint over a .gguf file.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/gguf_dsvl2.h"
#include "io/safetensors.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

// Deterministic bytes for a tensor.
void fill(Tensor& t, uint8_t seed) {
  auto* p = static_cast<uint8_t*>(t.data());
  for (size_t i = 0; i < t.nbytes(); i++) p[i] = uint8_t(i * 31 + seed);
}

bool same_bytes(const TensorView& v, const Tensor& t) {
  return v.nbytes == t.nbytes() && std::memcmp(v.data, t.data(), t.nbytes()) == 0;
}

TEST(Gguf, DTypeTableAgreesWithGgmlTable) {
  for (const auto& e : kGgmlTypes) {
    if (!e.has_dtype) continue;
    EXPECT_EQ(dtype_block_elems(e.dtype), int64_t(e.block_elems)) << e.name;
    EXPECT_EQ(dtype_block_bytes(e.dtype), size_t(e.block_bytes)) << e.name;
    GgmlType back;
    ASSERT_TRUE(ggml_type_of(e.dtype, &back));
    EXPECT_EQ(back, e.type);
  }
  DType d;
  EXPECT_FALSE(dtype_from_name("Q8_0", &d));  // block types are not safetensors dtypes
  uint64_t n;
  EXPECT_TRUE(dtype_bytes(DType::kQ8_0, 64, &n));
  EXPECT_EQ(n, 68u);
  EXPECT_FALSE(dtype_bytes(DType::kQ4_0, 33, &n));
}

TEST(Gguf, WriteThenReadRoundTrips) {
  std::string dir = test::temp_dir("gguf_roundtrip");
  Tensor f32 = Tensor::f32({3, 5});
  for (int i = 0; i < 15; i++) f32.f32()[i] = float(i) - 7.25f;
  Tensor f16(DType::kF16, {7});
  Tensor bf16(DType::kBF16, {2, 3, 4, 6});  // 4-D, like the patch-embedding conv
  Tensor q8(DType::kQ8_0, {4, 64});
  Tensor q4(DType::kQ4_0, {2, 96});
  Tensor iq4(DType::kIQ4_NL, {3, 64});
  Tensor i32(DType::kI32, {3});
  Tensor empty = Tensor::f32({0, 4});
  Tensor lead1(DType::kBF16, {1, 5, 8});
  fill(f16, 1), fill(bf16, 2), fill(q8, 3), fill(q4, 4), fill(i32, 5), fill(lead1, 6), fill(iq4, 7);

  GgufMetadata md;
  md.set("general.architecture", "test");
  md.set("t.u32", uint32_t(7));
  md.set("t.i64", int64_t(-3));
  md.set("t.f64", 0.125);
  md.set("t.bool", false);
  md.set_array("t.tokens", std::vector<std::string>{"<s>", "a b", "\xe2\x96\x81x", ""});
  md.set_array("t.scores", std::vector<float>{0.5f, -1.f});
  md.set_array("t.flags", std::vector<bool>{true, false, true});
  std::string path = dir + "/m.gguf";
  save_gguf(path, md,
            {{"f32", &f32}, {"f16", &f16}, {"bf16", &bf16}, {"q8", &q8}, {"q4", &q4}, {"i32", &i32}, {"empty", &empty},
             {"lead1", &lead1}, {"iq4", &iq4}});

  GgufFile f(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  ASSERT_EQ(f.tensors().size(), 9u);
  const GgufMetadata& m = f.metadata();
  EXPECT_EQ(m.get<std::string>("general.architecture"), "test");
  EXPECT_EQ(m.get<uint32_t>("t.u32"), 7u);
  EXPECT_EQ(m.get<int64_t>("t.i64"), -3);
  EXPECT_EQ(m.get<double>("t.f64"), 0.125);
  EXPECT_FALSE(m.get<bool>("t.bool"));
  EXPECT_EQ(m.get_array<std::string>("t.tokens", 4)[2], "\xe2\x96\x81x");
  EXPECT_EQ(m.get_array<float>("t.scores", 2)[1], -1.f);
  EXPECT_EQ(m.get_array<bool>("t.flags", 3), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(m.entries()[0].first, "general.architecture");  // order kept

  struct Want {
    const char* name;
    const Tensor* t;
    DType dtype;
  };
  for (const Want& w : {Want{"f32", &f32, DType::kF32}, Want{"f16", &f16, DType::kF16}, Want{"bf16", &bf16, DType::kBF16},
                        Want{"q8", &q8, DType::kQ8_0}, Want{"q4", &q4, DType::kQ4_0}, Want{"i32", &i32, DType::kI32},
                        Want{"empty", &empty, DType::kF32}, Want{"lead1", &lead1, DType::kBF16},
                        Want{"iq4", &iq4, DType::kIQ4_NL}}) {
    const GgufTensor* t = f.find(w.name);
    ASSERT_NE(t, nullptr) << w.name;
    EXPECT_EQ(t->shape, w.t->shape()) << w.name;
    EXPECT_EQ(t->view.dtype, w.dtype) << w.name;
    EXPECT_TRUE(same_bytes(t->view, *w.t)) << w.name;
    EXPECT_EQ((static_cast<const uint8_t*>(t->view.data) - static_cast<const uint8_t*>(f.find("f32")->view.data)) % 32, 0)
        << w.name << " is not aligned";
  }
  EXPECT_EQ(f.find("q8")->view.nbytes, 4u * 2 * 34);
  EXPECT_EQ(f.find("q4")->view.nbytes, 2u * 3 * 18);
  EXPECT_EQ(f.find("iq4")->view.nbytes, 3u * 2 * 18);
  EXPECT_EQ(uint32_t(f.find("iq4")->type->type), 20u);  // ggml's GGML_TYPE_IQ4_NL, what llama.cpp reads
  EXPECT_EQ(f.find("f32")->type->type, GgmlType::kF32);
  EXPECT_EQ(f.find("missing"), nullptr);
  Tensor back = to_f32(f.find("f32")->view);
  EXPECT_EQ(back.f32()[14], 6.75f);
}

TEST(Gguf, CustomAlignmentAndChunkedStreaming) {
  std::string path = test::temp_dir("gguf_align") + "/a.gguf";
  GgufMetadata md;
  md.set("general.alignment", uint32_t(64));
  Tensor a(DType::kQ8_0, {3, 32}), b(DType::kF16, {5});
  fill(a, 9), fill(b, 10);
  {
    GgufWriter w(path, md, {{"a", GgmlType::kQ8_0, a.shape()}, {"b", GgmlType::kF16, b.shape()}});
    const auto* p = static_cast<const uint8_t*>(a.data());
    for (size_t i = 0; i < a.nbytes(); i += 7) w.write(p + i, std::min<size_t>(7, a.nbytes() - i));
    w.write(b.data(), b.nbytes());
    w.close();
  }
  GgufFile f(path);
  EXPECT_EQ(f.alignment(), 64u);
  EXPECT_EQ(f.data_offset() % 64, 0u);
  EXPECT_EQ(f.find("b")->offset, 128u);  // 102 bytes of Q8_0 padded to 64
  EXPECT_TRUE(same_bytes(f.find("a")->view, a));
  EXPECT_TRUE(same_bytes(f.find("b")->view, b));
}

TEST(Gguf, WriterRefusesInvalidInput) {
  std::string dir = test::temp_dir("gguf_refuse");
  std::string p = dir + "/x.gguf";
  GgufMetadata md;
  auto make = [&](std::vector<GgufWriter::Entry> e, const GgufMetadata& m) { GgufWriter w(p, m, std::move(e)); };
  EXPECT_THROW(make({{std::string(64, 'n'), GgmlType::kF32, {1}}}, md), Error);  // name too long
  EXPECT_NO_THROW(make({{std::string(63, 'n'), GgmlType::kF32, {1}}}, md));
  EXPECT_THROW(make({{"", GgmlType::kF32, {1}}}, md), Error);
  EXPECT_THROW(make({{"a", GgmlType::kF32, {1}}, {"a", GgmlType::kF32, {1}}}, md), Error);  // duplicate
  EXPECT_THROW(make({{"a", GgmlType::kQ8_0, {2, 33}}}, md), Error);                        // partial block
  EXPECT_THROW(make({{"a", GgmlType::kF32, {1, 1, 1, 1, 1}}}, md), Error);                 // 5 dims
  EXPECT_THROW(make({{"a", GgmlType::kF32, {-1}}}, md), Error);
  EXPECT_THROW(make({{"a", GgmlType(4), {32}}}, md), Error);  // removed type id
  EXPECT_THROW(make({{"a", GgmlType::kI8, {INT64_MAX, 2}}}, md), Error);
  GgufMetadata bad_align;
  bad_align.set("general.alignment", uint32_t(4));  // the spec wants a multiple of 8
  EXPECT_THROW(make({}, bad_align), Error);
  GgufMetadata wrong_type;
  wrong_type.set("general.alignment", uint64_t(32));
  EXPECT_THROW(make({}, wrong_type), Error);
  // Metadata itself refuses bad keys and duplicates.
  EXPECT_THROW(md.set("", uint32_t(1)), Error);
  EXPECT_THROW(md.set("a key", uint32_t(1)), Error);
  md.set("k", uint32_t(1));
  EXPECT_THROW(md.set("k", uint32_t(2)), Error);
  // Safetensors cannot carry block types.
  Tensor q(DType::kQ8_0, {32});
  EXPECT_THROW(save_safetensors(dir + "/q.safetensors", {{"q", &q}}), Error);
}

TEST(Gguf, Dsvl2MetadataRoundTrips) {
  DSVL2_REQUIRE_GOLDEN();
  std::string g = test::golden_dir() + "/small_like";
  std::string cfg = read_file(g + "/config.json"), proc = read_file(g + "/processor_config.json");
  GgufMetadata md;
  add_dsvl2_metadata(md, "DeepSeek-VL2-test", cfg, proc, gguf_file_type(GgmlType::kQ8_0), true);
  std::string path = test::temp_dir("gguf_dsvl2") + "/m.gguf";
  save_gguf(path, md, {});
  GgufFile f(path);
  const GgufMetadata& m = f.metadata();
  EXPECT_EQ(m.get<std::string>(gguf_key::kArchitecture), "deepseek_vl2");
  EXPECT_EQ(m.get<uint32_t>(gguf_key::kFileType), 7u);
  EXPECT_EQ(m.get<uint32_t>(gguf_key::kQuantizationVersion), 2u);
  VLConfig want = parse_vl_config(cfg, "config.json");
  VLConfig got = gguf_vl_config(m);
  EXPECT_EQ(got.language.num_hidden_layers, want.language.num_hidden_layers);
  EXPECT_EQ(got.language.n_routed_experts, want.language.n_routed_experts);
  EXPECT_EQ(got.language.kv_lora_rank, want.language.kv_lora_rank);
  EXPECT_EQ(got.vision.width, want.vision.width);
  EXPECT_EQ(got.candidate_resolutions, want.candidate_resolutions);
  EXPECT_EQ(m.get<uint32_t>(gguf_key::kBlockCount), uint32_t(want.language.num_hidden_layers));
  EXPECT_EQ(gguf_processor_config(m).image_size, parse_processor_config(proc, "p").image_size);

  // A derived key that disagrees with the JSON is refused, as is another architecture.
  GgufMetadata edited;
  for (const auto& [k, v] : m.entries())
    if (k != gguf_key::kBlockCount) edited.add(k, v);
  edited.set(gguf_key::kBlockCount, uint32_t(want.language.num_hidden_layers + 1));
  EXPECT_THROW(gguf_vl_config(edited), Error);
  GgufMetadata other;
  other.set(gguf_key::kArchitecture, "llama");
  EXPECT_THROW(gguf_vl_config(other), Error);
  GgufMetadata bad;
  EXPECT_THROW(add_dsvl2_metadata(bad, "x", "{not json", proc, 0, false), Error);
}

// The whole golden checkpoint converted to GGUF reads back byte-identical
// through Checkpoint, with the same names and shapes.
TEST(Gguf, CheckpointOverGgufMatchesSafetensors) {
  DSVL2_REQUIRE_GOLDEN();
  std::string g = test::golden_dir() + "/tiny_like";
  Checkpoint st(g);
  SafetensorsFile sf(g + "/model.safetensors");
  std::vector<GgufWriter::Entry> entries;
  for (const auto& name : st.names()) {
    const SafetensorsTensor* t = sf.find(name);
    GgmlType type;
    ASSERT_TRUE(ggml_type_of(t->view.dtype, &type));
    entries.push_back({name, type, t->view.shape});
  }
  GgufMetadata md;
  add_dsvl2_metadata(md, "tiny", read_file(g + "/config.json"), read_file(g + "/processor_config.json"),
                     gguf_file_type(GgmlType::kBF16), false);
  std::string path = test::temp_dir("gguf_ckpt") + "/tiny.gguf";
  {
    GgufWriter w(path, md, entries);
    for (const auto& e : entries) w.write(sf.find(e.name)->view.data, sf.find(e.name)->view.nbytes);
    w.close();
  }
  Checkpoint gg(path);
  ASSERT_NE(gg.gguf(), nullptr);
  EXPECT_EQ(gg.names(), st.names());
  EXPECT_EQ(gg.total_bytes(), st.total_bytes());
  for (const auto& name : st.names()) {
    TensorView a, b;
    ASSERT_TRUE(st.get(name, gg.gguf()->find(name)->shape, &a));
    b = gg.require(name, a.shape);
    ASSERT_EQ(a.nbytes, b.nbytes) << name;
    EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0) << name;
  }
  EXPECT_EQ(gguf_vl_config(gg.gguf()->metadata()).language.num_hidden_layers, 3);
  EXPECT_THROW(gg.require("vision.norm.weight", {33}), Error);
}

TEST(Gguf, CheckpointQuantizedWeights) {
  std::string path = test::temp_dir("gguf_ckpt_q") + "/q.gguf";
  Tensor q(DType::kQ8_0, {4, 64}), pos(DType::kF32, {1, 6, 8});
  fill(q, 1), fill(pos, 2);
  GgufMetadata md;
  // Store pos without its leading 1, as ggml-based writers do (ggml_n_dims).
  {
    GgufWriter w(path, md, {{"w", GgmlType::kQ8_0, {4, 64}}, {"pos", GgmlType::kF32, {6, 8}}});
    w.write(q.data(), q.nbytes());
    w.write(pos.data(), pos.nbytes());
    w.close();
  }
  Checkpoint c(path);
  EXPECT_THROW(c.require("w", {4, 64}), Error);  // quantized where floats are required
  TensorView v = c.require_weight("w", {4, 64});
  EXPECT_EQ(v.dtype, DType::kQ8_0);
  EXPECT_EQ(v.nbytes, 4u * 2 * 34);
  EXPECT_EQ(c.require("pos", {1, 6, 8}).shape, (Shape{1, 6, 8}));  // leading 1 restored
  EXPECT_THROW(c.require("pos", {6, 1, 8}), Error);
  EXPECT_THROW(c.require_weight("missing", {1}), Error);
}

}  // namespace
}  // namespace dsvl2
