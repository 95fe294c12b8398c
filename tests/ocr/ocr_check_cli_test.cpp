// `dsvl2 ocr-check` end to end: rendered images, good records and one record
// of each hostile kind (bad JSON, missing keys, ../ and absolute paths, a
// non-image file, a missing image, invalid UTF-8, a line over 1 MiB): every line comes out, in
// order, with ocr + ocr_check or an error; the job exits 0; the stats file
// holds the totals. Without a runnable input or output it exits 1 and writes
// nothing.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file.h"
#include "ground/canvas.h"
#include "ocr/render_text.h"
#include "ocr/text_match.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

void sign(const std::string& path, const std::string& a, const std::string& b) {
  test::TextCanvas c(384, 384);
  c.gradient({250, 245, 230}, {200, 210, 230}, false);
  test::TextStyle s;
  s.size_px = 30;
  c.text(a, 30, 60, s);
  s.font = "Liberation Serif";
  s.size_px = 24;
  c.text(b, 30, 250, s);
  ground::save_png(c.image(), path);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    out.push_back(text.substr(at, nl - at));
    at = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

TEST(OcrCheckCli, HostileLinesBecomeErrorLines) {
  const std::string dir = test::temp_dir("ocr_check_cli"), images = dir + "/images";
  fs::create_directories(images + "/sub");
  sign(images + "/a.png", "GRAND OPENING", "Fresh Bread Daily");
  sign(images + "/sub/b.png", "Jazz Night", "Live Music Tonight");
  write_file(images + "/notes.png", "this is not an image\n");
  write_file(dir + "/secret.png", read_file(images + "/a.png"));
  const std::string input = dir + "/in.jsonl";
  write_file(
      input,
      R"({"key": "a", "image": "a.png", "caption": "This image displays: a sign reading “GRAND OPENING” above 'Fresh Bread Daily'."})"
      "\n"
      R"({"key": "b", "image": "sub/b.png", "caption": "A poster with \"Jazz Night\" and \"Blues Morning\" on it."})"
      "\n"
      R"({"key": "c", "image": )"
      "\n"
      R"({"key": "d", "image": "a.png"})"
      "\n"
      "\n"
      R"({"key": "e", "image": "../secret.png", "caption": "\"GRAND OPENING\""})"
      "\n"
      R"({"key": "f", "image": "/etc/passwd", "caption": "x"})"
      "\n"
      R"({"key": "g", "image": "notes.png", "caption": "x"})"
      "\n"
      R"({"key": "h", "image": "nope.png", "caption": "x"})"
      "\n"
      "{\"key\": \"i\", \"image\": \"a.png\", \"caption\": \"bad \xff\xfe bytes\"}\n"
      R"([1, 2, 3])"
      "\n"
      R"({"key": 7, "image": 5, "caption": "x"})"
      "\n"
      R"({"key": "j", "image": "sub/../a.png", "caption": "x"})"
      "\n"
      R"({"key": "k", "image": "a.png", "caption": "A sign, with no quotes."})"
      "\n"
      R"({"key": "big", "image": "a.png", "caption": ")" +
          std::string(1200000, 'x') + "\"}");  // over 1 MiB, and no final newline
  const std::string out = dir + "/out.jsonl";
  const test::CommandResult r = test::run_command(test::dsvl2_binary() + " ocr-check --input " + input + " --images " +
                                                  images + " --out " + out + " -t 2 -q");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<std::string> lines = lines_of(read_file(out));
  ASSERT_EQ(lines.size(), 14u);  // the blank line carries no record
  std::vector<json> recs;
  for (const std::string& l : lines) {
    EXPECT_TRUE(ocr::valid_utf8(l));
    recs.push_back(json::parse(l));
  }
  // Good records: ocr + ocr_check, the input's keys kept.
  EXPECT_EQ(recs[0]["key"], "a");
  EXPECT_FALSE(recs[0].contains("error"));
  EXPECT_EQ(recs[0]["ocr_check"]["quotes"][0]["verdict"], "matched");
  EXPECT_EQ(recs[0]["ocr_check"]["quotes"][1]["verdict"], "matched");
  EXPECT_EQ(recs[0]["ocr_check"]["category"], "correct");
  EXPECT_EQ(recs[0]["ocr"]["lines"][0]["text"], "GRAND OPENING");
  EXPECT_EQ(recs[0]["ocr"]["lines"][0]["box"].size(), 4u);
  EXPECT_EQ(recs[1]["key"], "b");
  EXPECT_EQ(recs[1]["ocr_check"]["quotes"][0]["verdict"], "matched");
  EXPECT_NE(recs[1]["ocr_check"]["quotes"][1]["verdict"], "matched");  // "Blues Morning"
  EXPECT_EQ(recs[1]["ocr_check"]["not_captured"], 1);                  // "Live Music Tonight"
  EXPECT_EQ(recs[1]["ocr_check"]["category"], "incorrect");
  // Hostile lines, in input order.
  EXPECT_EQ(recs[2]["line"], 3);  // bad JSON: no record to echo
  EXPECT_NE(recs[2]["error"].get<std::string>().find("bad JSON"), std::string::npos);
  EXPECT_EQ(recs[3]["key"], "d");
  EXPECT_NE(recs[3]["error"].get<std::string>().find("caption"), std::string::npos);
  for (size_t i : {4, 5, 11}) {  // e: ../, f: absolute, j: sub/../
    EXPECT_NE(recs[i]["error"].get<std::string>().find("relative"), std::string::npos) << recs[i].dump();
    EXPECT_FALSE(recs[i].contains("ocr"));
  }
  EXPECT_EQ(recs[6]["key"], "g");  // not an image
  EXPECT_TRUE(recs[6].contains("error"));
  EXPECT_EQ(recs[7]["key"], "h");  // missing
  EXPECT_TRUE(recs[7].contains("error"));
  EXPECT_EQ(recs[8]["line"], 10);  // invalid UTF-8: the parser refuses the line
  EXPECT_TRUE(recs[8].contains("error"));
  EXPECT_EQ(recs[9]["line"], 11);  // not an object
  EXPECT_EQ(recs[10]["key"], 7);   // image not a string
  EXPECT_TRUE(recs[10].contains("error"));
  EXPECT_EQ(recs[11]["key"], "j");
  EXPECT_EQ(recs[12]["key"], "k");
  EXPECT_EQ(recs[12]["ocr_check"]["category"], "not_captured");
  EXPECT_EQ(recs[13]["line"], 15);  // over 1 MiB: not even parsed
  EXPECT_NE(recs[13]["error"].get<std::string>().find("limit"), std::string::npos);
  // Totals: 3 records checked, 11 errors; the summary on stderr.
  const json stats = json::parse(read_file(dir + "/out_stats.json"));
  EXPECT_EQ(stats["records"], 3);
  EXPECT_EQ(stats["errors"], 11);
  EXPECT_EQ(stats["items"]["correct"], 3);
  EXPECT_EQ(stats["items"]["incorrect"], 1);
  EXPECT_EQ(stats["items"]["not_captured"], 3);  // b's second line, k's two lines
  EXPECT_NE(r.err.find("correct 3 (42.9 %)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not captured 3 (42.9 %)"), std::string::npos) << r.err;
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();  // nothing left behind
}

TEST(OcrCheckCli, ExitsOneWhenItCannotRun) {
  const std::string dir = test::temp_dir("ocr_check_cli_fail");
  fs::create_directories(dir + "/images");
  write_file(dir + "/in.jsonl", "{\"key\": \"a\", \"image\": \"a.png\", \"caption\": \"x\"}\n");
  const std::string bin = test::dsvl2_binary() + " ocr-check -q --images " + dir + "/images";
  test::CommandResult r = test::run_command(bin + " --input " + dir + "/none.jsonl --out " + dir + "/out.jsonl");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("none.jsonl"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir + "/out.jsonl"));
  r = test::run_command(bin + " --input " + dir + "/in.jsonl --out " + dir + "/no/such/dir/out.jsonl");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("out.jsonl"), std::string::npos) << r.err;
  // A record whose image is missing is not a failed run; --stats names the totals file.
  r = test::run_command(bin + " --input " + dir + "/in.jsonl --out " + dir + "/out.jsonl --stats " + dir + "/s.json");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(read_file(dir + "/s.json"))["errors"], 1);
}

}  // namespace
}  // namespace dsvl2
