// JSONL / JSON-array manifests and img2dataset folders.
#include <gtest/gtest.h>

#include <filesystem>

#include "dataset/dataset_fixture.h"

namespace dsvl2::dataset {
namespace {

using test::keys_of;
using test::read_all;
using test::write_bytes;

std::vector<Sample> read_manifest(const std::string& path, const ReadLimits& limits = {}) {
  return read_all({path, "m", InputKind::kManifest}, limits);
}

TEST(Manifest, LinesBecomeSamples) {
  const std::string dir = test::test_dir();
  std::filesystem::create_directories(dir + "/img");
  write_bytes(dir + "/img/a.jpg", "A");
  write_bytes(dir + "/b.png", "B");
  write_bytes(dir + "/abs.jpg", "C");
  const std::string lines =
      "\xEF\xBB\xBF{\"key\": \"a\", \"image\": \"img/a.jpg\", \"alt_text\": \"caf\\u00e9\", \"url\": \"u\", \"w\": 3}\n"
      "\n"
      "   \t\r\n"
      "{\"key\": \"b\", \"image\": \"b.png\", \"alt_text\": null}\r\n"
      "{\"image\": \"" + dir + "/abs.jpg\"}";  // no key, no final newline
  write_bytes(dir + "/m.jsonl", lines);
  const auto s = read_manifest(dir + "/m.jsonl");
  ASSERT_EQ(keys_of(s), "a b line-5");
  EXPECT_EQ(s[0].image_bytes, "A");
  EXPECT_EQ(s[0].image_name, dir + "/img/a.jpg");
  EXPECT_EQ(*s[0].alt_text, "caf\xC3\xA9");
  EXPECT_EQ(s[0].source_meta, (nlohmann::json{{"url", "u"}, {"w", 3}}));
  EXPECT_FALSE(s[1].alt_text);
  EXPECT_TRUE(s[1].source_meta.is_null()) << "no extra fields: null";
  EXPECT_EQ(s[2].image_bytes, "C");
}

TEST(Manifest, BadLinesAreErrorSamples) {
  const std::string dir = test::test_dir();
  write_bytes(dir + "/ok.jpg", "ok");
  write_bytes(dir + "/big.jpg", std::string(2000, 'x'));
  std::filesystem::create_directories(dir + "/folder.jpg");
  const std::string lines =
      "{\"key\": \"k1\", \"image\": \"ok.jpg\"}\n"           // 1
      "{not json\n"                                          // 2
      "[1, 2]\n"                                             // 3
      "{\"key\": \"k4\"}\n"                                  // 4: no image
      "{\"key\": \"k5\", \"image\": \"missing.jpg\"}\n"      // 5
      "{\"key\": \"k1\", \"image\": \"ok.jpg\"}\n"           // 6: duplicate
      "{\"key\": 7, \"image\": \"ok.jpg\"}\n"                // 7: an integer key is fine
      "{\"key\": [7], \"image\": \"ok.jpg\"}\n"              // 8
      "{\"key\": \"k9\", \"image\": \"ok.jpg\", \"alt_text\": 5}\n"  // 9
      "{\"key\": \"k10\", \"image\": \"big.jpg\"}\n"        // 10: over the size limit
      "{\"key\": \"k11\", \"image\": \"folder.jpg\"}\n"     // 11
      "{\"key\": \"k12\", \"image\": \"ok.jpg\", \"x\": " + std::string(80, '[') + std::string(80, ']') + "}\n"  // 12: too deep, refused unparsed
      "{\"key\": \"" + std::string(3000, 'z') + "\", \"image\": \"ok.jpg\"}\n"  // 13: over the line limit
      "{\"key\": \"k14\", \"image\": \"ok.jpg\", \"alt_text\": \"\xFF\"}\n"  // 14: not UTF-8: not JSON
      "{\"key\": \"\", \"image\": \"ok.jpg\"}\n"              // 15
      "{\"key\": \"k16\", \"image\": \"ok.jpg\"}\n";
  write_bytes(dir + "/m.jsonl", lines);
  ReadLimits limits;
  limits.max_member_bytes = 1000;
  limits.max_line_bytes = 2000;
  const auto s = read_manifest(dir + "/m.jsonl", limits);
  ASSERT_EQ(keys_of(s), "k1 line-2! line-3! k4! k5! k1! 7 line-8! k9! k10! k11! line-12! line-13! line-14! line-15! k16");
  EXPECT_NE(s[1].error.find("line 2: not valid JSON"), std::string::npos) << s[1].error;
  EXPECT_NE(s[2].error.find("not an object"), std::string::npos) << s[2].error;
  EXPECT_NE(s[3].error.find("line 4: no \"image\""), std::string::npos) << s[3].error;
  EXPECT_NE(s[4].error.find("missing.jpg: cannot open"), std::string::npos) << s[4].error;
  EXPECT_NE(s[5].error.find("duplicate key"), std::string::npos) << s[5].error;
  EXPECT_NE(s[9].error.find("2000 bytes, over the limit of 1000"), std::string::npos) << s[9].error;
  EXPECT_NE(s[10].error.find("not a regular file"), std::string::npos) << s[10].error;
  EXPECT_NE(s[11].error.find("nested"), std::string::npos) << s[11].error;
  EXPECT_NE(s[12].error.find("line 13: over the limit of 2000 bytes"), std::string::npos) << s[12].error;
  for (const Sample& x : s) EXPECT_NO_THROW(nlohmann::json(x.error).dump()) << "messages are valid UTF-8";
}

TEST(Manifest, JsonArrayForm) {
  const std::string dir = test::test_dir();
  write_bytes(dir + "/a.jpg", "A");
  write_bytes(dir + "/m.json", "\n [ {\"key\": \"a\", \"image\": \"a.jpg\", \"alt_text\": \"t\"}, 3, {\"image\": \"a.jpg\"} ]\n");
  auto s = read_manifest(dir + "/m.json");
  ASSERT_EQ(keys_of(s), "a item-2! item-3");
  EXPECT_EQ(*s[0].alt_text, "t");
  write_bytes(dir + "/bad.json", "[{\"key\": \"a\", \"image\": \"a.jpg\"}");
  s = read_manifest(dir + "/bad.json");
  EXPECT_EQ(keys_of(s), "__truncated_after_0!");
}

TEST(Manifest, EmptyFileAndLimits) {
  const std::string dir = test::test_dir();
  write_bytes(dir + "/empty.jsonl", "");
  EXPECT_TRUE(read_manifest(dir + "/empty.jsonl").empty());
  write_bytes(dir + "/a.jpg", "A");
  write_bytes(dir + "/m.jsonl", "{\"image\": \"a.jpg\"}\n{\"image\": \"a.jpg\"}\n{\"image\": \"a.jpg\"}\n");
  ReadLimits limits;
  limits.max_members = 2;
  EXPECT_EQ(keys_of(read_manifest(dir + "/m.jsonl", limits)), "line-1 line-2 __truncated_after_2!");
  EXPECT_THROW(read_manifest(dir + "/none.jsonl"), Error);
  // Garbage: one error sample per line, never an exception.
  std::string junk;
  for (int i = 0; i < 3000; i++) junk += char((i * 37 + 11) % 256);
  write_bytes(dir + "/junk.jsonl", junk);
  std::vector<Sample> s;
  ASSERT_NO_THROW(s = read_manifest(dir + "/junk.jsonl"));
  for (const Sample& x : s) EXPECT_FALSE(x.error.empty());
}

// img2dataset's "files" output format.
TEST(Folder, Img2DatasetFilesLayout) {
  const std::string dir = test::test_dir() + "/out";
  for (const char* sub : {"/00000", "/00001", "/.ipynb_checkpoints"}) std::filesystem::create_directories(dir + sub);
  write_bytes(dir + "/00001/000010000.png", "P");
  write_bytes(dir + "/00000/000000001.txt", "second");
  write_bytes(dir + "/00000/000000001.jpg", "J1");
  write_bytes(dir + "/00000/000000000.jpg", "J0");
  write_bytes(dir + "/00000/000000000.txt", "first");
  write_bytes(dir + "/00000/000000000.json", "{\"url\": \"http://x\", \"status\": \"success\"}");
  write_bytes(dir + "/00000_stats.json", "{\"count\": 2}");
  write_bytes(dir + "/00000.parquet", "PAR1");
  write_bytes(dir + "/.ipynb_checkpoints/x.jpg", "hidden");
  write_bytes(dir + "/00001/000010001.json", "{}");  // a key without an image
  const auto s = read_all({dir, "out", InputKind::kFolder});
  ASSERT_EQ(keys_of(s), "00000/000000000 00000/000000001 00001/000010000 00001/000010001!");
  EXPECT_EQ(s[0].image_name, "00000/000000000.jpg");
  EXPECT_EQ(s[0].image_bytes, "J0");
  EXPECT_EQ(*s[0].alt_text, "first");
  EXPECT_EQ(s[0].source_meta["status"], "success");
  EXPECT_EQ(*s[1].alt_text, "second");
  EXPECT_EQ(s[2].image_bytes, "P");
  EXPECT_NE(s[3].error.find("no image"), std::string::npos) << s[3].error;
}

TEST(Folder, BadFilesAndLimits) {
  const std::string dir = test::test_dir();
  write_bytes(dir + "/a.jpg", std::string(50, 'x'));
  write_bytes(dir + "/b.jpg", "b");
  write_bytes(dir + "/b.json", "[]");
  write_bytes(dir + "/c.jpg", "c");
  ReadLimits limits;
  limits.max_member_bytes = 10;
  EXPECT_EQ(keys_of(read_all({dir, "d", InputKind::kFolder}, limits)), "a! b! c");
  limits.max_members = 2;
  EXPECT_EQ(keys_of(read_all({dir, "d", InputKind::kFolder}, limits)), "__truncated_after_0!");
  EXPECT_THROW(read_all({dir + "/nope", "d", InputKind::kFolder}), Error);
}

}  // namespace
}  // namespace dsvl2::dataset
