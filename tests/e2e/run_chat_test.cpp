// The user-facing commands end to end on a toy checkpoint with Tiny's schema,
// the real DeepSeek-V3 vocabulary and the real tokenizer: mechanics (streaming,
// -n, two images, follow-up turns reusing the cache, grounding) and one clear
// error line for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/file.h"
#include "io/random_checkpoint.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

class RunChat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (test::tokenizer_dir().empty()) return;
    dir_ = new std::string(test::temp_dir("run_chat_model"));
    test::CommandResult r = test::run_command(test::dsvl2_binary() + " make-random-checkpoint --preset tiny-test --out " +
                                              *dir_ + " --seed 5 --tokenizer " + test::tokenizer_dir() +
                                              "/deepseek_v3/tokenizer.json");
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  void SetUp() override {
    if (test::tokenizer_dir().empty()) GTEST_SKIP() << "shared/tokenizer not found";
  }
  static std::string cmd(const std::string& args) { return test::dsvl2_binary() + " " + args; }
  static std::string model() { return " -m " + *dir_; }
  static std::string demo() { return std::string(DSVL2_SOURCE_DIR) + "/demo/demo.png"; }
  static inline std::string* dir_ = nullptr;
};

// "decode N tokens" from the timing line on stderr.
int decoded_tokens(const std::string& err) {
  std::smatch m;
  std::regex re("decode ([0-9]+) tokens");
  return std::regex_search(err, m, re) ? std::stoi(m[1]) : -1;
}

TEST_F(RunChat, RunStreamsTextAndStopsAtMaxTokens) {
  auto r = test::run_command(cmd("run" + model() + " --image " + demo() + " -p 'Describe this image.' -n 7 --temp 0.7 -s 1"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_EQ(decoded_tokens(r.err), 7) << r.err;
  EXPECT_NE(r.err.find("5 tiles"), std::string::npos) << r.err;  // 640x480: global + 2x2 local
  // Same seed, same text.
  auto again = test::run_command(cmd("run" + model() + " --image " + demo() + " -p 'Describe this image.' -n 7 --temp 0.7 -s 1"));
  EXPECT_EQ(again.out, r.out);
}

// bench --quick --json on the toy model and on its Q4_0 and q4_m files: every
// field the issue names, and --against gives exact agreement for the model
// against itself and less for the quantized files; a mix names its types.
TEST_F(RunChat, BenchReportsFiguresAndQuality) {
  const std::string q4 = test::temp_dir("bench_q4") + "/model-q4_0.gguf";
  auto qr = test::run_command(cmd("quantize" + model() + " --type q4_0 -o " + q4));
  ASSERT_EQ(qr.exit_code, 0) << qr.err;
  const std::string q4m = test::temp_dir("bench_q4_m") + "/model-q4_m.gguf";
  auto mr = test::run_command(cmd("quantize" + model() + " --type q4_m -o " + q4m));
  ASSERT_EQ(mr.exit_code, 0) << mr.err;
  for (const std::string& m : {*dir_, q4, q4m}) {
    auto r = test::run_command(cmd("bench -m " + m + " --quick --json -t 2 --against " + *dir_));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* k : {"vision_s_per_tile", "prefill_tok_s", "decode_tok_s", "ttft_s", "peak_rss_gb"})
      EXPECT_GT(j.at(k).get<double>(), 0.0) << k;
    for (const char* k : {"mem_gbs", "triad_gbs", "mem_gbs_before_decode", "mem_gbs_after_decode", "bf16_gflops",
                          "int8_gops"})
      EXPECT_GT(j.at("roofline").at(k).get<double>(), 0.0) << k;
    // The decode is judged against the highest of the bandwidth readings.
    for (const char* k : {"mem_gbs_start", "mem_gbs_before_decode", "mem_gbs_after_decode"})
      EXPECT_GE(j.at("roofline").at("mem_gbs").get<double>(), j.at("roofline").at(k).get<double>()) << k;
    // Quick mode runs the full mode's workloads, fewer times.
    EXPECT_EQ(j.at("prefill_tokens").get<int>(), 512);
    EXPECT_EQ(j.at("decode_tokens").get<int>(), 128);
    for (const char* k : {"vision", "prefill", "decode"}) EXPECT_GT(j.at("fraction").at(k).get<double>(), 0.0);
    // 1, 4 and 8 sequences stepped together; a step of more rows reads more
    // distinct experts, but never more than one pass per row would.
    const auto& b = j.at("decode_batched");
    ASSERT_EQ(b.size(), 3u);
    for (size_t i = 0; i < b.size(); i++) {
      EXPECT_EQ(b[i].at("sequences").get<int>(), (std::vector<int>{1, 4, 8}[i]));
      EXPECT_GT(b[i].at("tok_s").get<double>(), 0.0);
      if (i > 0) {
        const double w0 = b[0].at("weight_bytes_per_step").get<double>(), wi = b[i].at("weight_bytes_per_step").get<double>();
        EXPECT_GE(wi, w0);
        EXPECT_LT(wi, w0 * b[i].at("sequences").get<int>());
      }
    }
    EXPECT_EQ(b[0].at("tok_s").get<double>(), j.at("decode_tok_s").get<double>());
    const auto& q = j.at("quality");
    EXPECT_EQ(q.at("tokens").get<int>(), 256);
    if (m != *dir_) {
      EXPECT_EQ(j.at("weights"), m == q4 ? "q4_0" : "iq4_nl+q8_0");  // experts' type first
      EXPECT_LT(q.at("top1_agreement").get<double>(), 1.0);
      EXPECT_GT(q.at("mean_kl").get<double>(), 1e-4);
    } else {
      EXPECT_EQ(j.at("weights"), "bf16");
      EXPECT_EQ(q.at("top1_agreement").get<double>(), 1.0);
      EXPECT_LT(q.at("mean_kl").get<double>(), 1e-3);  // same weights; repacked vs mapped summation order
    }
  }
}

// --no-repack runs from the mapping (populated first, as every run is on a
// CPU whose kernels pack nothing): the same greedy text as the repacked run,
// for the BF16 folder and for a GGUF whose embedding table is block-quantized.
TEST_F(RunChat, NoRepackGivesTheSameText) {
  const std::string q8_dir = test::temp_dir("no_repack_q8"), q8 = q8_dir + "/model-q8_0.gguf";
  auto qr = test::run_command(cmd("quantize" + model() + " --type q8_0 --parts language -o " + q8));
  ASSERT_EQ(qr.exit_code, 0) << qr.err;
  std::filesystem::copy_file(*dir_ + "/tokenizer.json", q8_dir + "/tokenizer.json",
                             std::filesystem::copy_options::overwrite_existing);
  for (const std::string& m : {*dir_, q8}) {
    const std::string args = " -m " + m + " --image " + demo() + " -p 'Describe this image.' -n 6 --temp 0";
    auto packed = test::run_command(cmd("run" + args));
    auto mapped = test::run_command(cmd("run" + args + " --no-repack"));
    ASSERT_EQ(packed.exit_code, 0) << packed.err;
    ASSERT_EQ(mapped.exit_code, 0) << mapped.err;
    EXPECT_FALSE(mapped.out.empty());
    EXPECT_EQ(mapped.out, packed.out) << m;
  }
}

TEST_F(RunChat, RunTakesTwoImagesAndNoImage) {
  auto two = test::run_command(cmd("run" + model() + " --image " + demo() + " --image " + demo() +
                                   " -p 'Compare the two images.' -n 3"));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("10 tiles"), std::string::npos) << two.err;
  auto none = test::run_command(cmd("run" + model() + " -p 'Hello' -n 3 --compute f32"));
  ASSERT_EQ(none.exit_code, 0) << none.err;
  EXPECT_EQ(decoded_tokens(none.err), 3);
}

TEST_F(RunChat, ChatKeepsTheCacheAcrossTurns) {
  std::string script = "/image " + demo() + "\nWhat is in the picture?\nAnd what colour is the car?\n/quit\n";
  auto r = test::run_command(cmd("chat" + model() + " -n 4"), script);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  std::regex re("([0-9]+) new prompt tokens \\(([0-9]+) reused");
  std::vector<std::pair<int, int>> turns;
  for (auto it = std::sregex_iterator(r.err.begin(), r.err.end(), re); it != std::sregex_iterator(); ++it)
    turns.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  ASSERT_EQ(turns.size(), 2u) << r.err;
  EXPECT_EQ(turns[0].second, 0);
  EXPECT_GT(turns[0].first, 1000);  // the image's tokens
  // The follow-up reuses at least the whole first prompt (image included) and
  // runs only the re-tokenized answer plus its own tokens.
  EXPECT_GE(turns[1].second, turns[0].first);
  EXPECT_LT(turns[1].first, 40);
}

TEST_F(RunChat, GroundRunsTheModelAndPrintsWellFormedJson) {
  std::string png = test::temp_dir("ground_out") + "/boxes.png";
  auto r = test::run_command(cmd("ground" + model() + " --image " + demo() + " --query 'the red car' -n 16 --json --out " + png));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);  // random weights: boxes are unlikely, but the shape is fixed
  EXPECT_TRUE(j["objects"].is_array());
  EXPECT_TRUE(j["errors"].is_array());
  EXPECT_TRUE(file_exists(png));
}

TEST_F(RunChat, BadInputGivesOneClearLine) {
  auto missing = test::run_command(cmd("run" + model() + " --image /nonexistent.png -p hi -n 1"));
  EXPECT_EQ(missing.exit_code, 1) << "invalid input";
  EXPECT_NE(missing.err.find("/nonexistent.png"), std::string::npos) << missing.err;
  EXPECT_EQ(std::count(missing.err.begin(), missing.err.end(), '\n'), 1) << missing.err;

  auto ctx = test::run_command(cmd("run" + model() + " --image " + demo() + " -p hi -n 1 -c 200"));
  EXPECT_EQ(ctx.exit_code, 3) << "too long: " << ctx.err;
  EXPECT_NE(ctx.err.find("context"), std::string::npos) << ctx.err;
  EXPECT_EQ(ctx.err.find("--ctx"), std::string::npos) << "library messages name the limit, not a flag: " << ctx.err;

  std::string broken = test::temp_dir("broken_tok");
  for (const char* f : {"config.json", "processor_config.json", "model.safetensors"})
    write_file(broken + "/" + f, read_file(*dir_ + "/" + f));
  write_file(broken + "/tokenizer.json", "{\"model\": 42");
  auto tok = test::run_command(cmd("run -m " + broken + " -p hi -n 1"));
  EXPECT_EQ(tok.exit_code, 1);
  EXPECT_NE(tok.err.find("tokenizer.json"), std::string::npos) << tok.err;
  EXPECT_EQ(std::count(tok.err.begin(), tok.err.end(), '\n'), 1) << tok.err;
}

}  // namespace
}  // namespace dsvl2
