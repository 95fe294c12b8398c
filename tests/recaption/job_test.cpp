// The recaption job in-process on a toy checkpoint: continuous batching
// gives each sequence what it gets alone; a shard with hostile members
// finishes with one record per input record (failed ones carry their
// error); records are deterministic; OCR finds the rendered text and the
// check judges the caption against it.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/file.h"
#include "core/thread_pool.h"
#include "fixtures.h"
#include "model/generate.h"
#include "recaption/generation_slots.h"
#include "recaption/recaption_job.h"

namespace dsvl2::recaption {
namespace {

using json = nlohmann::json;

class RecaptionJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::toy_model_dir().empty()) {
      if (test::in_ci()) FAIL() << "shared/tokenizer not found, and CI=true requires it";
      GTEST_SKIP() << "shared/tokenizer not found";
    }
    if (!model_) model_ = new VisionLanguageModel(test::toy_model_dir());
    if (!pool_) pool_ = new ThreadPool(2);
  }
  static Ops ops() { return Ops{&kernels_best(), pool_, Compute::kF32}; }
  static VisionLanguageModel* model_;
  static ThreadPool* pool_;
};
VisionLanguageModel* RecaptionJobTest::model_ = nullptr;
ThreadPool* RecaptionJobTest::pool_ = nullptr;

TEST_F(RecaptionJobTest, SlotsGiveEachSequenceWhatItGetsAlone) {
  const LanguageModel& lm = model_->language();
  const Tokenizer& tok = model_->tokenizer();
  const std::vector<std::string> prompts = {"A red car on a street.", "Two dogs", "Describe the image in detail, please.",
                                            "x", "Sales by year, a bar chart"};
  GenerateRequest req;
  req.max_new_tokens = 12;
  req.stop_strings = {};
  auto alone = [&](const std::string& p) {
    std::vector<int32_t> ids = tok.encode(p);
    Tensor e = lm.embed(std::vector<int>(ids.begin(), ids.end()));
    KVCache cache(lm.config(), 256);
    const std::function<void(std::string_view)> quiet;
    return dsvl2::generate(lm, tok, e.f32(), int(ids.size()), ids, cache, ops(), req, quiet).ids;
  };
  // Two slots for five prompts: slots are refilled as sequences end, and
  // prompt chunks share forwards with decode rows (max_rows 3).
  GenerationSlots slots(lm, &tok, ops(), 2, 256, 3);
  std::map<size_t, std::vector<int32_t>> got;
  std::vector<Tensor> keep;
  size_t next = 0;
  while (next < prompts.size() || slots.running() > 0) {
    for (int s; next < prompts.size() && (s = slots.free_slot()) >= 0; next++) {
      std::vector<int32_t> ids = tok.encode(prompts[next]);
      keep.push_back(lm.embed(std::vector<int>(ids.begin(), ids.end())));
      const size_t i = next;
      slots.start(s, ids, keep.back().f32(), int(ids.size()), req, [&got, i](GenerateResult&& r, std::exception_ptr e) {
        EXPECT_FALSE(e);
        got[i] = r.ids;
      });
    }
    slots.step();
  }
  ASSERT_EQ(got.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); i++) EXPECT_EQ(got[i], alone(prompts[i])) << prompts[i];
}

// A shard with every kind of trouble, and two good images.
std::string hostile_shard(const std::string& dir) {
  const std::string tar = test::make_tar({
      {"000001.png", test::text_png("OPEN DAILY")},
      {"000001.txt", "A shop sign"},
      {"000001.json", R"({"url": "http://example.com/1.png"})"},
      {"000002.png", "this is not an image at all"},
      {"000003.txt", "alt text without an image"},
      {"000004.png", test::bomb_png()},
      {"000005.png", test::text_png("EXIT", 200, 120)},
      {"000005.txt", std::string("bad \xff\xfe utf-8")},
      {"000006.png", test::text_png("HELLO WORLD", 360, 140)},
      {"000006.txt", "<image> a greeting <\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>"},
      {"000001.png", test::text_png("AGAIN")},  // the key again, later: an error record with its own member
  });
  const std::string path = dir + "/data-00000.tar";
  write_file(path, tar);
  return path;
}

RecaptionOptions options(const std::string& in, const std::string& out) {
  RecaptionOptions o;
  o.inputs = {in};
  o.out_dir = out;
  o.quiet = true;
  o.slots = 3;
  o.request.max_new_tokens = 10;
  o.prepare.seed = 11;
  o.prepare.p_alt = 1.0;
  o.prepare.p_neg = 0.5;
  return o;
}

TEST_F(RecaptionJobTest, HostileShardFinishesWithOneRecordPerInput) {
  const std::string dir = test::temp_dir("recaption_hostile");
  const std::string in = hostile_shard(dir);
  RecaptionOptions o = options(in, dir + "/out");
  o.screen = {ScreenKind::kSafety, ScreenKind::kWatermark};
  o.min_quality = 11;  // nothing a toy judge says can pass: every scored record is marked
  const RecaptionStats st = run_recaption(*model_, ops(), o);
  EXPECT_EQ(st.records, 7);
  const std::vector<json> recs = test::read_records(dir + "/out/data-00000.tar");
  ASSERT_EQ(recs.size(), 7u);
  std::set<std::string> members;
  dataset::for_each_tar_member(dir + "/out/data-00000.tar", [&](const std::string& name, std::string_view) {
    EXPECT_TRUE(members.insert(name).second) << "member twice: " << name;
  });
  EXPECT_TRUE(members.count("000001.json") && members.count("000001_6.json")) << "the repeated key's own member";
  std::map<std::string, json> by_key;
  for (const json& r : recs) {
    if (r["key"] == "000001" && r["error"].is_string()) continue;  // the repeat
    for (const char* f : {"key", "caption", "error", "prompt_id", "alt_text_inserted", "asked_negatives", "meta", "ocr",
                          "ocr_check", "style_class"})
      EXPECT_TRUE(r.contains(f)) << f << " missing in " << r.dump();
    EXPECT_TRUE(r["ocr"]["lines"].is_array());
    by_key[r["key"]] = r;
  }
  for (const char* bad : {"000002", "000003", "000004", "000005"}) {
    ASSERT_TRUE(by_key.count(bad)) << bad;
    EXPECT_TRUE(by_key[bad]["error"].is_string()) << bad;
    EXPECT_TRUE(by_key[bad]["caption"].is_null()) << bad;
  }
  EXPECT_NE(by_key["000005"]["error"].get<std::string>().find("UTF-8"), std::string::npos);
  for (const char* good : {"000001", "000006"}) {
    const json& r = by_key[good];
    ASSERT_TRUE(r["error"].is_null()) << r.dump();
    EXPECT_TRUE(r["caption"].is_string());
    EXPECT_TRUE(r["ocr_check"].is_object());
    EXPECT_TRUE(r["style_class"].is_string());
    EXPECT_GE(r["prompt_id"].get<int>(), 0);
    EXPECT_LT(r["prompt_id"].get<int>(), 5);
    for (const char* s : {"safety", "watermark"}) {
      ASSERT_TRUE(r[s].is_number()) << s;
      EXPECT_GE(r[s].get<double>(), 0.0);
      EXPECT_LE(r[s].get<double>(), 1.0);
    }
    EXPECT_TRUE(r["filtered"].is_string()) << "min quality 11 marks every record";
  }
  EXPECT_TRUE(by_key["000001"]["alt_text_inserted"].get<bool>()) << "p_alt 1 with alt-text";
  EXPECT_EQ(by_key["000001"]["source_meta"]["url"], "http://example.com/1.png");
  // Special-token text in alt-text stays text: the image stays first, the
  // prompt is not ended early.
  ASSERT_TRUE(by_key["000006"]["alt_text_inserted"].get<bool>());
  EXPECT_TRUE(by_key["000006"]["error"].is_null());
  EXPECT_NE(by_key["000006"]["prompt"].get<std::string>().find("< image> a greeting"), std::string::npos);
  // OCR read the rendered text, and the prompt carried it as a hint.
  std::string ocr_text;
  for (const json& l : by_key["000006"]["ocr"]["lines"]) ocr_text += l["text"].get<std::string>() + " ";
  EXPECT_NE(ocr_text.find("HELLO"), std::string::npos) << ocr_text;
  EXPECT_NE(by_key["000006"]["prompt"].get<std::string>().find("HELLO"), std::string::npos);
  // The stats count what the shard holds.
  const json stats = json::parse(read_file(dir + "/out/data-00000_stats.json"));
  EXPECT_EQ(stats["count"], 7);
  EXPECT_EQ(stats["failed"], 5);
  EXPECT_EQ(stats["successes"], 2);
  EXPECT_TRUE(stats["ocr_check"].contains("not_captured"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/out/data-00000.tar.partial"));
}

TEST_F(RecaptionJobTest, SameSeedSameRecordsAndEmptyAndTruncatedShardsFinish) {
  const std::string dir = test::temp_dir("recaption_determinism");
  const std::string in = hostile_shard(dir);
  write_file(dir + "/empty.tar", test::make_tar({}));
  const std::string full = read_file(in);
  write_file(dir + "/cut.tar", full.substr(0, 512 * 3 + 100));  // cut inside the second member
  for (const char* out : {"/a", "/b"}) {
    RecaptionOptions o = options(in, dir + out);
    o.inputs = {in, dir + "/empty.tar", dir + "/cut.tar"};
    const RecaptionStats st = run_recaption(*model_, ops(), o);
    EXPECT_EQ(st.units, 3);
  }
  for (const char* stem : {"data-00000", "empty", "cut"}) {
    const std::vector<json> a = test::read_records(dir + "/a/" + stem + ".tar");
    const std::vector<json> b = test::read_records(dir + "/b/" + stem + ".tar");
    ASSERT_EQ(a.size(), b.size()) << stem;
    for (size_t i = 0; i < a.size(); i++) EXPECT_EQ(test::without_timings(a[i]), test::without_timings(b[i])) << stem;
    EXPECT_TRUE(std::filesystem::exists(dir + "/a/" + std::string(stem) + "_stats.json")) << stem;
  }
  EXPECT_TRUE(test::read_records(dir + "/a/empty.tar").empty());
  const std::vector<json> cut = test::read_records(dir + "/a/cut.tar");
  ASSERT_FALSE(cut.empty());
  EXPECT_TRUE(cut.back()["error"].is_string()) << "the truncation is an error record";
}

TEST_F(RecaptionJobTest, VqaRegeneratesAnswersFromQuestions) {
  const std::string dir = test::temp_dir("recaption_vqa");
  write_file(dir + "/q.tar", test::make_tar({
                                 {"q1.png", test::text_png("PARKING")},
                                 {"q1.json", R"({"question": "What does the sign say?", "answer": "parking"})"},
                                 {"q1.txt", "a parking sign"},
                                 {"q2.png", test::text_png("NO")},
                             }));
  RecaptionOptions o = options(dir + "/q.tar", dir + "/out");
  o.prepare.task = RecaptionTask::kVqa;
  o.quality = false;
  run_recaption(*model_, ops(), o);
  const std::vector<json> recs = test::read_records(dir + "/out/q.tar");
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_TRUE(recs[0]["error"].is_null()) << recs[0].dump();
  EXPECT_TRUE(recs[0]["answer"].is_string());
  EXPECT_EQ(recs[0]["question"], "What does the sign say?");
  EXPECT_FALSE(recs[0]["alt_text_inserted"].get<bool>()) << "the VQA prompt carries no alt-text";
  EXPECT_TRUE(recs[0]["quality_score"].is_null()) << "the judge scores descriptions, not answers";
  EXPECT_NE(recs[0]["prompt"].get<std::string>().find("Question: What does the sign say?"), std::string::npos);
  EXPECT_TRUE(recs[1]["error"].is_string()) << "a VQA record needs a question";
}

TEST_F(RecaptionJobTest, CopyImagesStoresTheImageBesideItsRecordAndManifestsWork) {
  const std::string dir = test::temp_dir("recaption_copy");
  const std::string png = test::text_png("MENU", 240, 120);
  write_file(dir + "/a.png", png);
  write_file(dir + "/list.jsonl", R"({"key": "m.1", "image": "a.png", "alt_text": "a menu board"})"
                                  "\n"
                                  R"({"key": "m2", "image": "missing.png"})"
                                  "\n");
  RecaptionOptions o = options(dir + "/list.jsonl", dir + "/out");
  o.prepare.keep_image_bytes = true;
  o.prepare.ocr = false;
  o.quality = false;
  run_recaption(*model_, ops(), o);
  std::map<std::string, std::string> members;
  dataset::for_each_tar_member(dir + "/out/list.tar", [&](const std::string& name, std::string_view data) {
    members[name] = std::string(data);
  });
  // The key's '.' is not a WebDataset extension: the member stem replaces it,
  // the record keeps the key.
  ASSERT_TRUE(members.count("m_1.json")) << members.size();
  ASSERT_TRUE(members.count("m_1.png"));
  EXPECT_EQ(members["m_1.png"], png);
  EXPECT_EQ(json::parse(members["m_1.json"])["key"], "m.1");
  EXPECT_EQ(json::parse(members["m_1.json"])["alt_text"], "a menu board");
  EXPECT_TRUE(json::parse(members["m_1.json"])["ocr_check"].is_null()) << "no OCR, nothing to check against";
  EXPECT_TRUE(json::parse(members["m_1.json"])["ocr"]["lines"].empty());
  ASSERT_TRUE(members.count("m2.json"));
  EXPECT_TRUE(json::parse(members["m2.json"])["error"].is_string()) << "a missing image is an error record";
  EXPECT_EQ(members.size(), 3u);
}

}  // namespace
}  // namespace dsvl2::recaption
