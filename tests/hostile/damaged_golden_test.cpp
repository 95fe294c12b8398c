// Damaged copies of a golden checkpoint must fail with an error that names
// the file and, where one tensor is at fault, the tensor.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "hostile_util.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/tensor_registry.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

namespace fs = std::filesystem;
using test::fails_with;

// A fresh copy of golden/tiny_like (config + weights) in a temp dir.
std::string copy_golden(const std::string& tag) {
  std::string dst = test::temp_dir(tag);
  std::string src = test::golden_dir() + "/tiny_like";
  for (const char* f : {"config.json", "processor_config.json", "model.safetensors"})
    fs::copy_file(src + "/" + f, dst + "/" + f, fs::copy_options::overwrite_existing);
  return dst;
}

void load_and_validate(const std::string& dir) {
  VLConfig cfg = load_vl_config(dir);
  Checkpoint ck(dir);
  validate_checkpoint(ck, cfg);
}

// Rewrites dir/model.safetensors tensor by tensor; `edit` may drop an entry
// (return false) or change its name, dtype or shape (bytes are kept).
void rewrite(const std::string& dir, const std::function<bool(SafetensorsWriter::Entry&)>& edit) {
  std::string path = dir + "/model.safetensors";
  std::vector<SafetensorsWriter::Entry> entries;
  std::vector<std::string> data;
  {
    SafetensorsFile f(path);
    for (const auto& t : f.tensors()) {
      SafetensorsWriter::Entry e{t.name, t.view.dtype, t.view.shape};
      if (!edit(e)) continue;
      entries.push_back(e);
      data.emplace_back(static_cast<const char*>(t.view.data), t.view.nbytes);
    }
  }
  SafetensorsWriter w(path + ".tmp", entries);
  for (const auto& d : data) w.write(d.data(), d.size());
  w.close();
  fs::rename(path + ".tmp", path);
}

TEST(DamagedGolden, IntactCopyLoads) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_intact");
  EXPECT_NO_THROW(load_and_validate(dir));
}

TEST(DamagedGolden, Truncated) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_truncated");
  std::string p = dir + "/model.safetensors";
  fs::resize_file(p, fs::file_size(p) - 1000);
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); }, {p, "truncated"}));
  fs::resize_file(p, 100);  // inside the header
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); }, {p, "runs past the end"}));
}

TEST(DamagedGolden, FlippedHeaderByte) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_flip");
  std::string p = dir + "/model.safetensors";
  std::string bytes = read_file(p);
  std::string orig = bytes;
  bytes[8] ^= 0x01;  // '{' -> 'z': not JSON any more
  write_file(p, bytes);
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); }, {p, "not valid JSON"}));
  // A digit in the first "data_offsets" end: the span no longer fits the shape.
  bytes = orig;
  size_t at = bytes.find("\"data_offsets\":[0,");
  ASSERT_NE(at, std::string::npos);
  at += std::string("\"data_offsets\":[0,").size();
  bytes[at] = bytes[at] == '9' ? '1' : char(bytes[at] + 1);
  write_file(p, bytes);
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); }, {p, "data_offsets"}));
  // The high byte of the header length.
  bytes = orig;
  bytes[7] = '\x01';
  write_file(p, bytes);
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); }, {p, "100 MB"}));
}

TEST(DamagedGolden, DroppedTensor) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_drop");
  rewrite(dir, [](SafetensorsWriter::Entry& e) { return e.name != "language.model.layers.1.mlp.experts.5.up_proj.weight"; });
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); },
                         {dir + "/model.safetensors", "\"language.model.layers.1.mlp.experts.5.up_proj.weight\"", "missing"}));
}

TEST(DamagedGolden, DroppedOptionalTensorIsFine) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_drop_optional");
  rewrite(dir, [](SafetensorsWriter::Entry& e) { return e.name.rfind("vision.attn_pool.", 0) != 0; });
  EXPECT_NO_THROW(load_and_validate(dir));
}

TEST(DamagedGolden, ChangedShape) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_shape");
  rewrite(dir, [](SafetensorsWriter::Entry& e) {
    if (e.name == "language.model.embed_tokens.weight") e.shape = {64, 128};  // same bytes, transposed
    return true;
  });
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); },
                         {dir + "/model.safetensors", "\"language.model.embed_tokens.weight\"", "[64, 128]"}));
}

TEST(DamagedGolden, ChangedDtype) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_dtype");
  rewrite(dir, [](SafetensorsWriter::Entry& e) {
    if (e.name == "vision.norm.weight") e.dtype = DType::kI16;
    return true;
  });
  EXPECT_TRUE(fails_with([&] { load_and_validate(dir); }, {"\"vision.norm.weight\"", "I16"}));
}

TEST(DamagedGolden, ExtraTensorIsReportedNotFatal) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_extra");
  rewrite(dir, [](SafetensorsWriter::Entry& e) {
    if (e.name == "view_seperator") e.name = "view_separator";  // the fixed spelling is unknown
    return true;
  });
  VLConfig cfg = load_vl_config(dir);
  Checkpoint ck(dir);
  EXPECT_TRUE(fails_with([&] { validate_checkpoint(ck, cfg); }, {"\"view_seperator\"", "missing"}));
  rewrite(dir, [](SafetensorsWriter::Entry& e) {
    if (e.name == "view_separator") e.name = "view_seperator";
    return true;
  });
  Tensor extra = Tensor::f32({1});
  // Keep the real file and add an unknown tensor through a shard index.
  fs::rename(dir + "/model.safetensors", dir + "/model-00001-of-00002.safetensors");
  save_safetensors(dir + "/model-00002-of-00002.safetensors", {{"mystery.weight", &extra}});
  std::string map = "{";
  Checkpoint one(dir + "/model-00001-of-00002.safetensors");
  for (const std::string& n : one.names()) map += "\"" + n + "\":\"model-00001-of-00002.safetensors\",";
  map += "\"mystery.weight\":\"model-00002-of-00002.safetensors\"}";
  write_file(dir + "/model.safetensors.index.json", "{\"weight_map\":" + map + "}");
  Checkpoint ck2(dir);
  auto unexpected = validate_checkpoint(ck2, cfg);
  EXPECT_EQ(unexpected, std::vector<std::string>{"mystery.weight"});
}

TEST(DamagedGolden, ShardNameEscapesTheFolder) {
  DSVL2_REQUIRE_GOLDEN();
  std::string dir = copy_golden("dmg_escape");
  fs::create_directories(dir + "/inner");
  write_file(dir + "/inner/model.safetensors.index.json",
             R"({"weight_map":{"image_newline":"../model.safetensors"}})");
  EXPECT_TRUE(fails_with([&] { Checkpoint ck(dir + "/inner"); }, {"index.json", "../model.safetensors", "not a plain file name"}));
}

}  // namespace
}  // namespace dsvl2
