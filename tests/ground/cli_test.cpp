// The CLI contracts of `dsvl2 ground --parse` and `dsvl2 draw-prompt`, run on
// the built binary (skipped when it has not been built).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "ground/canvas.h"
#include "test_util.h"

namespace dsvl2::ground {
namespace {

std::string dsvl2_bin() {
  std::string p = test::binary_dir() + "/dsvl2";
  return std::filesystem::exists(p) ? p : "";
}

// Runs a shell command; returns stdout and sets rc.
std::string run(const std::string& cmd, int& rc) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int st = pclose(f);
  rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

#define REQUIRE_BIN()            \
  std::string bin = dsvl2_bin(); \
  if (bin.empty()) GTEST_SKIP() << "dsvl2 binary not built";

TEST(GroundCli, ParseContract) {
  REQUIRE_BIN();
  std::string dir = test::temp_dir("ground_cli");
  {
    std::ofstream f(dir + "/in.txt");
    f << "<|ref|>The giraffe at the back.<|/ref|><|det|>[[580, 270, 999, 900]]<|/det|> then "
         "<|det|>[[1, 2, 3, 4], [5, 6, 7, 8]]<|/det|> and <|det|>[[1, 2, 3]]<|/det|>";
  }
  int rc = -1;
  std::string out = run(bin + " ground --parse --width 1000 --height 750 < " + dir + "/in.txt", rc);
  ASSERT_EQ(rc, 0);
  auto j = nlohmann::json::parse(out);
  ASSERT_EQ(j.size(), 2u);
  ASSERT_EQ(j["objects"].size(), 3u);
  EXPECT_EQ(j["objects"][0]["label"], "The giraffe at the back.");
  EXPECT_EQ(j["objects"][0]["box"], nlohmann::json::parse("[580, 270, 999, 900]"));
  EXPECT_EQ(j["objects"][0]["box_px"], nlohmann::json::parse("[580, 202, 1000, 675]"));
  // The nearest preceding ref names the later boxes too.
  EXPECT_EQ(j["objects"][2]["label"], "The giraffe at the back.");
  ASSERT_EQ(j["errors"].size(), 1u);
  EXPECT_EQ(j["errors"][0]["text"], "<|det|>[[1, 2, 3]]<|/det|>");
  EXPECT_EQ(out.find('\n'), out.size() - 1);  // one line

  out = run(bin + " ground --parse --width 10 --height 10 < /dev/null", rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "{\"objects\":[],\"errors\":[]}\n");

  run(bin + " ground -m x --image y --query z 2>/dev/null", rc);
  EXPECT_NE(rc, 0);
}

TEST(DrawPromptCli, DrawsAndPrintsThePhrase) {
  REQUIRE_BIN();
  std::string dir = test::temp_dir("draw_prompt_cli");
  Image img;
  img.width = 120;
  img.height = 90;
  img.rgb.assign(size_t(120) * 90 * 3, 0);
  save_png(img, dir + "/in.png");
  int rc = -1;
  std::string out = run(bin + " draw-prompt --image " + dir + "/in.png --shape ellipse --box 20,20,80,70 --color red " +
                            "--seed 3 --out " + dir + "/out.png",
                        rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "the red ellipse\n");
  EXPECT_TRUE(std::filesystem::exists(dir + "/out.png"));
  std::ofstream(dir + "/m.json") << "[[10,10,100,10,60,80]]";
  out = run(bin + " draw-prompt --image " + dir + "/in.png --shape contour --mask " + dir +
                "/m.json --color 1,2,3 --out " + dir + "/out2.png",
            rc);
  EXPECT_EQ(rc, 0);
  EXPECT_EQ(out, "the mask contour\n");
  run(bin + " draw-prompt --image " + dir + "/in.png --shape hexagon --box 1,1,5,5 --out " + dir + "/x.png 2>/dev/null",
      rc);
  EXPECT_NE(rc, 0);
  run(bin + " draw-prompt --image " + dir + "/in.png --shape arrow --box 1,1,5 --out " + dir + "/x.png 2>/dev/null",
      rc);
  EXPECT_NE(rc, 0);
}

}  // namespace
}  // namespace dsvl2::ground
