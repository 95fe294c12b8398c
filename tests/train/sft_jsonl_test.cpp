// Training JSONL: the official / synth form and ms-swift's form, grounding
// placeholders, path resolution, streaming, indexing and random access.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../text/stub_tokenizer.h"
#include "core/file.h"
#include "ground/canvas.h"
#include "io/model_config.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "train/sft_jsonl.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;

class SftJsonl : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("sft_jsonl");
    std::filesystem::create_directories(dir + "/sub");
    ground::save_png(picture(64, 48), dir + "/a.png");
    ground::save_png(picture(300, 200), dir + "/sub/b.png");
  }
  static Image picture(int w, int h) {
    Image im{w, h, std::vector<uint8_t>(size_t(w) * h * 3)};
    for (size_t i = 0; i < im.rgb.size(); i++) im.rgb[i] = uint8_t(i * 7 % 251);
    return im;
  }
  std::string write(const std::vector<std::string>& lines, const std::string& name = "train.jsonl") {
    std::ofstream f(dir + "/" + name, std::ios::binary);
    for (const auto& l : lines) f << l << "\n";
    return dir + "/" + name;
  }
  std::string dir;
  ProcessorConfig proc = parse_processor_config(
      R"({"candidate_resolutions": [[384, 384], [384, 768], [768, 384]], "patch_size": 14, "downsample_ratio": 2})",
      "processor_config.json");
  Tokenizer stub = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
};

json msg(const char* role, const std::string& content) { return {{"role", role}, {"content", content}}; }
json msg(const char* role, const std::string& content, json images) {
  return {{"role", role}, {"content", content}, {"images", std::move(images)}};
}

// Every label is -100 except BOS (its id) and, per answer, the answer's tokens
// plus EOS right after "<|Assistant|>:".
void expect_official_masking(const Tokenizer& tok, const SftSample& s, const std::vector<std::string>& answers) {
  ASSERT_EQ(s.labels.size(), s.input_ids.size());
  EXPECT_EQ(s.input_ids[0], tok.bos_id());
  EXPECT_EQ(s.labels[0], tok.bos_id());
  std::vector<std::vector<int32_t>> runs;
  std::vector<size_t> starts;
  for (size_t i = 1; i < s.labels.size(); i++) {
    if (s.labels[i] == kIgnoreLabel) continue;
    EXPECT_EQ(s.labels[i], s.input_ids[i]) << i;
    EXPECT_EQ(s.image_mask[i], 0) << i;
    if (s.labels[i - 1] == kIgnoreLabel || i == 1) {
      runs.emplace_back();
      starts.push_back(i);
    }
    runs.back().push_back(s.input_ids[i]);
  }
  ASSERT_EQ(runs.size(), answers.size());
  const std::vector<int32_t> cue = tok.encode("<|Assistant|>:");
  for (size_t k = 0; k < runs.size(); k++) {
    std::vector<int32_t> want = tok.encode(answers[k]);
    want.push_back(tok.eos_id());
    EXPECT_EQ(runs[k], want) << "answer " << k;
    ASSERT_GE(starts[k], cue.size());
    EXPECT_TRUE(std::equal(cue.begin(), cue.end(), s.input_ids.begin() + std::ptrdiff_t(starts[k] - cue.size())));
  }
}

TEST_F(SftJsonl, SynthAndSwiftFormsGiveTheSameSampleWithTheRealTokenizer) {
  const std::string tdir = test::tokenizer_dir();
  if (tdir.empty()) GTEST_SKIP() << "shared/tokenizer not found";
  Tokenizer tok = Tokenizer::load(tdir + "/deepseek_v3");
  // One image (a.png, 64x48): box (8, 6)-(40, 30) px is [125, 125, 624, 624] on 0-999.
  const std::string synth1 =
      json{{"task", "ground"},
           {"messages",
            {msg("<|User|>", "<image>\nLocate <|ref|>dog<|/ref|> in the given image.", {"a.png"}),
             msg("<|Assistant|>", "<|ref|>dog<|/ref|><|det|>[[125, 125, 624, 624]]<|/det|>", json::array())}},
           {"source", {{"dataset", "coco"}, {"image_id", 1}}}}
          .dump();
  const std::string swift1 = json{{"messages",
                                   {msg("user", "<image>Locate <ref-object> in the given image."),
                                    msg("assistant", "<ref-object><bbox>")}},
                                  {"images", {"a.png"}},
                                  {"objects", {{"ref", {"dog", "dog"}}, {"bbox", {{8, 6, 40, 30}}}}}}
                               .dump();
  // Two images, a system prompt, two turns; boxes given on ms-swift's 0-1000
  // scale (500 -> 499.5 -> 500, 250 -> 249.75 -> 250).
  const std::string synth2 =
      json{{"messages",
            {msg("system", " Be brief. ", json::array()),
             msg("<|User|>", "<image>\n<image>\nWhich is wider? ", {"a.png", "sub/b.png"}),
             msg("<|Assistant|>", " The second one.\n", json::array()), msg("user", "Where is it?", json::array()),
             msg("assistant", "<|det|>[[250, 500, 500, 999]]<|/det|>", json::array())}}}
          .dump();
  const std::string swift2 =
      json{{"messages",
            {msg("system", " Be brief. "), msg("user", "Which is wider? "), msg("assistant", " The second one.\n"),
             msg("user", "Where is it?"), msg("assistant", "<bbox>")}},
           {"images", {"a.png", "sub/b.png"}},
           {"objects", {{"ref", json::array()}, {"bbox", {{250, 500, 500, 1000}}}, {"bbox_type", "norm1000"}}}}
          .dump();
  const std::string path = write({synth1, swift1, synth2, swift2});
  SftJsonlReader r(path, tok, proc);
  std::vector<SftSample> s;
  while (auto x = r.next()) s.push_back(std::move(*x));
  ASSERT_EQ(s.size(), 4u);
  for (int k : {0, 2}) {
    SCOPED_TRACE(k);
    EXPECT_EQ(s[size_t(k)].input_ids, s[size_t(k) + 1].input_ids);
    EXPECT_EQ(s[size_t(k)].labels, s[size_t(k) + 1].labels);
    EXPECT_EQ(s[size_t(k)].image_mask, s[size_t(k) + 1].image_mask);
  }
  expect_official_masking(tok, s[0], {"<|ref|>dog<|/ref|><|det|>[[125, 125, 624, 624]]<|/det|>"});
  // Answers are stripped, as format_messages_v2 does.
  expect_official_masking(tok, s[2], {"The second one.", "<|det|>[[250, 500, 500, 999]]<|/det|>"});
  // The system text is masked and follows BOS directly.
  const auto sys = tok.encode("Be brief.");
  EXPECT_TRUE(std::equal(sys.begin(), sys.end(), s[2].input_ids.begin() + 1));
  // Two images: no cropping (kAuto crops up to two), so 14*15 + 1 + 14*15 tokens each.
  ASSERT_EQ(s[2].image_spans.size(), 2u);
  EXPECT_EQ(s[2].image_spans[0].count, 421);
  EXPECT_EQ(s[2].images.pixel_values.dim(0), 4);
}

TEST_F(SftJsonl, SwiftImageTagsFollowMsSwift) {
  // No tag: ms-swift puts one per image in front of the first non-system
  // message; every tag stands for "<image>\n".
  const json swift = {{"messages", {msg("system", "S"), msg("user", "Compare."), msg("assistant", "Same.")}},
                      {"images", {"a.png", "/abs/b.png"}}};
  SftRecord r = parse_sft_line(swift.dump(), "/data");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].content, "S");
  EXPECT_EQ(r.messages[1].content, "<image>\n<image>\nCompare.");
  EXPECT_EQ(r.images, (std::vector<std::string>{"/data/a.png", "/abs/b.png"}));
  EXPECT_TRUE(r.objects.has_value());
  const json tagged = {{"messages", {msg("user", "A <image> and <image>\nB"), msg("assistant", "x")}},
                       {"images", {"a.png", "sub/b.png"}}};
  EXPECT_EQ(parse_sft_line(tagged.dump(), "d").messages[0].content, "A <image>\n and <image>\n\nB");
  // The synth form takes tags and per-message images as written.
  const json synth = {
      {"messages", {msg("<|User|>", "<image>\nQ", {"sub/b.png"}), msg("<|Assistant|>", "A", json::array())}}};
  SftRecord s = parse_sft_line(synth.dump(), "d");
  EXPECT_EQ(s.messages[0].content, "<image>\nQ");
  EXPECT_EQ(s.messages[0].role, ChatRole::kUser);
  EXPECT_EQ(s.messages[1].role, ChatRole::kAssistant);
  EXPECT_EQ(s.images, (std::vector<std::string>{"d/sub/b.png"}));
  EXPECT_FALSE(s.objects.has_value());
}

TEST_F(SftJsonl, SwiftGroundingPlaceholders) {
  auto render = [](json objects, const std::string& user, const std::string& answer,
                   std::vector<std::pair<int, int>> sizes) {
    json line = {{"messages", {msg("user", user), msg("assistant", answer)}}, {"objects", std::move(objects)}};
    SftRecord r = parse_sft_line(line.dump(), ".");
    apply_grounding(r, sizes);
    return r.messages[0].content + "|" + r.messages[1].content;
  };
  // Pixels (corners swapped into order as ms-swift does), refs and boxes taken in order
  // across messages, adjacent <bbox>es in one block.
  EXPECT_EQ(render({{"ref", {"sheep"}}, {"bbox", {{100, 50, 0, 0}, {200, 100, 300, 200}}}}, "Find <ref-object>.",
                   "<bbox><bbox>", {{300, 200}}),
            "Find <|ref|>sheep<|/ref|>.|<|det|>[[0, 0, 333, 250], [666, 500, 999, 999]]<|/det|>");
  EXPECT_EQ(render({{"ref", {"a", "b"}}, {"bbox", {{0.1, 0.2, 0.3, 0.4}, {0, 0, 1, 1}}}, {"bbox_type", "norm1"}},
                   "Describe.", "<ref-object><bbox> and <ref-object> <bbox>", {}),
            "Describe.|<|ref|>a<|/ref|><|det|>[[100, 200, 300, 400]]<|/det|> and <|ref|>b<|/ref|> "
            "<|det|>[[0, 0, 999, 999]]<|/det|>");
  // image_id picks the image a pixel box is on; a short list is padded with image 0.
  EXPECT_EQ(render({{"ref", json::array()}, {"bbox", {{10, 10, 20, 20}, {10, 10, 20, 20}}}, {"image_id", {1}}}, "Q",
                   "<bbox>, <bbox>", {{100, 100}, {20, 20}}),
            "Q|<|det|>[[500, 500, 999, 999]]<|/det|>, <|det|>[[100, 100, 200, 200]]<|/det|>");
}

TEST_F(SftJsonl, StreamIndexAndReadBack) {
  const json one = {{"messages", {msg("user", "<image>Hi"), msg("assistant", "Yo")}}, {"images", {"a.png"}}};
  const json text = {{"messages", {msg("user", "2+2?"), msg("assistant", "4")}}};
  const std::string path = write({one.dump(), "", text.dump() + "\r", "  ", one.dump()});
  SftReadOptions opt;
  opt.limits.max_length = 1000;
  SftIndex idx = index_sft_jsonl(path, stub, proc, opt);
  ASSERT_EQ(idx.lines.size(), 3u);
  EXPECT_EQ(idx.total_lines, 5);
  EXPECT_EQ(idx.bad.count, 0);
  EXPECT_EQ(idx.lines[0].line, 1);
  EXPECT_EQ(idx.lines[1].line, 3);
  EXPECT_EQ(idx.lines[2].line, 5);
  EXPECT_EQ(idx.lines[0].offset, 0u);
  EXPECT_EQ(idx.lines[1].offset, one.dump().size() + 2);

  SftJsonlReader r(path, stub, proc, opt);
  std::vector<SftSample> seq;
  while (auto s = r.next()) seq.push_back(std::move(*s));
  ASSERT_EQ(seq.size(), 3u);
  for (size_t k : {2u, 0u, 1u}) {  // any order, as an epoch shuffles
    SftSample s = r.read_at(idx.lines[k]);
    EXPECT_EQ(s.input_ids, seq[k].input_ids);
    EXPECT_EQ(s.labels, seq[k].labels);
    EXPECT_EQ(s.size(), idx.lines[k].length);
    EXPECT_EQ(s.images.pixel_values.numel(), seq[k].images.pixel_values.numel());
  }
  // An image sample is preprocessed as inference does: a 64x48 picture, one
  // crop candidate 384x384 -> global view + 1 tile.
  EXPECT_EQ(seq[0].images.pixel_values.dim(0), 2);
  EXPECT_EQ(seq[1].images.pixel_values.numel(), 0);
  EXPECT_EQ(seq[1].labels.back(), stub.eos_id());
  // Without preprocessing only ids and labels are made.
  EXPECT_EQ(r.read_at(idx.lines[0], false).images.pixel_values.nbytes(), 0u);
  r.rewind();
  auto again = r.next();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->input_ids, seq[0].input_ids);
  EXPECT_EQ(r.last().line, 1);
}

}  // namespace
}  // namespace dsvl2
