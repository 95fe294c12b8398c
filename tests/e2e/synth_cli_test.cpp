// `dsvl2 synth` end to end on a hand-written COCO + RefCOCO fixture: the job
// finishes despite hostile annotations (their errors are counted), grounding
// answers name exactly the boxes of the annotations they cite, image paths
// resolve from the JSONL folder, one shard and four shards give the same
// records byte for byte, and a resume repeats nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/file.h"
#include "ground/canvas.h"
#include "ground/grounding_parser.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

Image solid(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(size_t(w) * h * 3);
  for (size_t i = 0; i < img.rgb.size(); i += 3) {
    img.rgb[i] = r;
    img.rgb[i + 1] = g;
    img.rgb[i + 2] = b;
  }
  return img;
}

// Eight images; cats and dogs with boxes and polygons; one annotation of each
// hostile kind; refs for two objects.
struct Fixture {
  std::string dir, images, coco, refs;
  Fixture() : dir(test::temp_dir("synth_cli")), images(dir + "/img") {
    fs::create_directories(images);
    json j;
    j["categories"] = json::array({{{"id", 1}, {"name", "cat"}},
                                   {{"id", 2}, {"name", "dog"}},
                                   {{"id", 3}, {"name", "car"}}});
    j["images"] = json::array();
    j["annotations"] = json::array();
    int ann = 100;
    for (int i = 1; i <= 8; i++) {
      const int w = 200 + 20 * i, h = 160 + 10 * i;
      const std::string name = "im" + std::to_string(i) + ".png";
      if (i != 8)
        ground::save_png(
            solid(w, h, uint8_t(30 * i), 120, uint8_t(255 - 20 * i)),
            images + "/" + name); // im8 is missing
      j["images"].push_back(
          {{"id", i}, {"file_name", name}, {"width", w}, {"height", h}});
      const double x = 10 + i, y = 12 + i;
      j["annotations"].push_back(
          {{"id", ann++},
           {"image_id", i},
           {"category_id", 1 + i % 2},
           {"bbox", {x, y, 60, 50}},
           {"segmentation", {{x, y, x + 60, y, x + 60, y + 50, x, y + 50}}},
           {"iscrowd", 0},
           {"area", 3000}});
      j["annotations"].push_back({{"id", ann++},
                                  {"image_id", i},
                                  {"category_id", 1 + i % 2},
                                  {"bbox", {x + 90, y + 40, 40, 30}},
                                  {"segmentation", json::array()},
                                  {"iscrowd", 0},
                                  {"area", 1200}});
    }
    // Hostile: zero area, outside the image, unknown image, unknown category,
    // short polygon.
    j["annotations"].push_back({{"id", 900},
                                {"image_id", 1},
                                {"category_id", 1},
                                {"bbox", {5, 5, 0, 10}},
                                {"iscrowd", 0}});
    j["annotations"].push_back({{"id", 901},
                                {"image_id", 2},
                                {"category_id", 1},
                                {"bbox", {5000, 5000, 10, 10}},
                                {"iscrowd", 0}});
    j["annotations"].push_back({{"id", 902},
                                {"image_id", 77},
                                {"category_id", 1},
                                {"bbox", {5, 5, 10, 10}},
                                {"iscrowd", 0}});
    j["annotations"].push_back({{"id", 903},
                                {"image_id", 3},
                                {"category_id", 99},
                                {"bbox", {5, 5, 10, 10}},
                                {"iscrowd", 0}});
    j["annotations"].push_back({{"id", 904},
                                {"image_id", 4},
                                {"category_id", 2},
                                {"bbox", {5, 5, 10, 10}},
                                {"segmentation", {{1, 2, 3, 4}}},
                                {"iscrowd", 0}});
    coco = dir + "/instances.json";
    write_file(coco, j.dump());
    json r = json::array();
    r.push_back({{"ref_id", 1},
                 {"ann_id", 100},
                 {"image_id", 1},
                 {"split", "val"},
                 {"category_id", 2},
                 {"sentences", {{{"sent", "the dog on the left"}}}}});
    r.push_back({{"ref_id", 2},
                 {"ann_id", 104},
                 {"image_id", 3},
                 {"split", "val"},
                 {"category_id", 2},
                 {"sentences",
                  {{{"sent", "small dog"}}, {{"sent", "the upper dog"}}}}});
    r.push_back({{"ref_id", 3},
                 {"ann_id", 5555},
                 {"image_id", 3},
                 {"split", "val"},
                 {"sentences", {{{"sent", "nothing"}}}}});
    refs = dir + "/refs.json";
    write_file(refs, r.dump());
  }
  std::string synth(const std::string &out, const std::string &extra,
                    const std::string &tasks = "vip,ground,icg,neg") const {
    return test::dsvl2_binary() + " synth -q --annotations " + coco + " " +
           refs + " --images " + images + " --tasks " + tasks +
           " --seed 11 --out " + out + " " + extra;
  }
};

std::vector<std::string> lines(const std::string &path) {
  std::ifstream f(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(f, l);)
    out.push_back(l);
  return out;
}

TEST(SynthCli, RecordsCiteTheirBoxesAndTheJobFinishesDespiteBadAnnotations) {
  Fixture fx;
  for (const std::string tasks : {"vip,ground,icg,neg", "ground"}) {
    const std::string out = fx.dir + "/out-" + tasks;
    test::CommandResult r = test::run_command(fx.synth(out, "", tasks));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::vector<std::string> recs = lines(out + "/synth.jsonl");
    EXPECT_EQ(recs.size(), 7u)
        << r.err; // im8's file is missing: an error, not a record
    json stats = json::parse(read_file(out + "/synth_stats.json"));
    EXPECT_EQ(stats["records"], 7);
    EXPECT_EQ(stats["errors"], 1);
    EXPECT_GE(stats["annotation_errors"].get<int>(), 5);
    int ground = 0;
    for (const std::string &line : recs) {
      json j = json::parse(line);
      ASSERT_TRUE(j["messages"].is_array() && j["messages"].size() >= 2)
          << line;
      for (const auto &m : j["messages"]) {
        const std::string content = m["content"];
        size_t tags = 0;
        for (size_t at = 0;
             (at = content.find("<image>", at)) != std::string::npos; at += 7)
          tags++;
        EXPECT_EQ(tags, m.value("images", json::array()).size()) << line;
        for (const auto &p : m.value("images", json::array()))
          EXPECT_TRUE(fs::exists(out + "/" + p.get<std::string>()))
              << p << " from " << line;
      }
      if (j["task"] == "ground") {
        ground++;
        const json &src = j["source"];
        const int image_id = src["image_id"];
        const std::string answer = j["messages"][1]["content"];
        const int w = 200 + 20 * image_id, h = 160 + 10 * image_id;
        ground::ParseResult parsed = ground::parse_grounding(answer, w, h);
        ASSERT_EQ(parsed.objects.size(), src["annotation_ids"].size()) << line;
        for (size_t k = 0; k < parsed.objects.size(); k++) {
          const int ann = src["annotation_ids"][k];
          const double x = 10 + image_id + (ann % 2 ? 90 : 0),
                       y = 12 + image_id + (ann % 2 ? 40 : 0);
          const double bw = ann % 2 ? 40 : 60, bh = ann % 2 ? 30 : 50;
          EXPECT_NEAR(parsed.objects[k].box_px[0], x, 1.01) << line;
          EXPECT_NEAR(parsed.objects[k].box_px[1], y, 1.01) << line;
          EXPECT_NEAR(parsed.objects[k].box_px[2], x + bw, 1.01) << line;
          EXPECT_NEAR(parsed.objects[k].box_px[3], y + bh, 1.01) << line;
        }
      }
    }
    if (tasks == "ground") {
      EXPECT_EQ(ground, 7);
    }
  }
}

TEST(SynthCli, OneShardAndFourShardsGiveTheSameRecords) {
  Fixture fx;
  ASSERT_EQ(test::run_command(fx.synth(fx.dir + "/one", "")).exit_code, 0);
  std::vector<std::string> four;
  for (int i = 0; i < 4; i++) {
    test::CommandResult r = test::run_command(
        fx.synth(fx.dir + "/four",
                 "--shard-index " + std::to_string(i) + " --num-shards 4"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    for (auto &l : lines(fx.dir + "/four/synth-0000" + std::to_string(i) +
                         "-of-00004.jsonl"))
      four.push_back(l);
  }
  std::vector<std::string> one = lines(fx.dir + "/one/synth.jsonl");
  std::sort(one.begin(), one.end());
  std::sort(four.begin(), four.end());
  EXPECT_EQ(one, four);
  // Drawn images are the same bytes too.
  for (const auto &e :
       fs::recursive_directory_iterator(fx.dir + "/one/images")) {
    const std::string rel = fs::relative(e.path(), fx.dir + "/one").string();
    ASSERT_TRUE(fs::exists(fx.dir + "/four/" + rel)) << rel;
    EXPECT_EQ(read_file(e.path().string()), read_file(fx.dir + "/four/" + rel))
        << rel;
  }
}

TEST(SynthCli, ResumeRepeatsNothingAndARerunWithoutResumeIsRefused) {
  Fixture fx;
  const std::string out = fx.dir + "/out";
  ASSERT_EQ(test::run_command(fx.synth(out, "--preview 4")).exit_code, 0);
  const std::vector<std::string> first = lines(out + "/synth.jsonl");
  EXPECT_TRUE(fs::exists(out + "/synth_preview.png"));
  test::CommandResult again = test::run_command(fx.synth(out, ""));
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  test::CommandResult resumed = test::run_command(fx.synth(out, "--resume"));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.err.find("8 done earlier"), std::string::npos)
      << resumed.err;
  EXPECT_EQ(lines(out + "/synth.jsonl"), first);
}

} // namespace
} // namespace dsvl2
