// Bad training lines: each is an Error naming the file and the line, or, with
// BadLinePolicy::kSkip, counted with its reason while reading goes on.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "../text/stub_tokenizer.h"
#include "core/error.h"
#include "ground/canvas.h"
#include "io/model_config.h"
#include "test_util.h"
#include "text/tokenizer.h"
#include "train/sft_jsonl.h"

namespace dsvl2 {
namespace {

using json = nlohmann::json;

json msg(const char* role, const std::string& content) { return {{"role", role}, {"content", content}}; }

class SftJsonlErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = test::temp_dir("sft_jsonl_errors");
    Image im{32, 32, std::vector<uint8_t>(32 * 32 * 3, 128)};
    ground::save_png(im, dir + "/a.png");
  }
  std::string write(const std::vector<std::string>& lines) {
    std::ofstream f(dir + "/t.jsonl", std::ios::binary);
    for (const auto& l : lines) f << l << "\n";
    return dir + "/t.jsonl";
  }
  // The error of the only sample of a file whose line 2 is `bad` (line 1 blank).
  Error error_of(const std::string& bad, SftReadOptions opt = {}) {
    SftJsonlReader r(write({"", bad}), stub, proc, opt);
    try {
      r.next();
    } catch (const Error& e) {
      return e;
    }
    ADD_FAILURE() << "no error for: " << bad;
    return Error("");
  }
  std::string dir;
  ProcessorConfig proc = parse_processor_config(R"({"candidate_resolutions": [[384, 384]]})", "p.json");
  Tokenizer stub = Tokenizer::from_json_text(test::stub_tokenizer().dump(), "stub");
  const json ok = {{"messages", {msg("user", "<image>Q"), msg("assistant", "A")}}, {"images", {"a.png"}}};
};

TEST_F(SftJsonlErrors, EachBadLineNamesFileLineAndReason) {
  struct Case {
    std::string line, reason;
  };
  const std::vector<Case> cases = {
      {R"({"messages": [)", "not valid JSON"},
      {"[1, 2]", "one JSON object"},
      {R"({"messages": []})", "no \"messages\""},
      {json{{"messages", {msg("user", "Q")}}}.dump(), "no supervised token"},
      {json{{"messages", {msg("system", "S"), msg("user", "Q")}}}.dump(), "no supervised token"},
      {json{{"messages", {msg("user", "<image>Q"), msg("assistant", "A")}}, {"images", {"missing.png"}}}.dump(),
       "missing.png' not found"},
      {json{{"messages", {msg("user", "<image><image>Q"), msg("assistant", "A")}}, {"images", {"a.png"}}}.dump(),
       "2 <image> tags but there are 1 images"},
      {json{{"messages",
             {{{"role", "user"}, {"content", "Q"}, {"images", {"a.png"}}},
              {{"role", "assistant"}, {"content", "A"}, {"images", json::array()}}}}}
           .dump(),
       "message 0 has 0 <image> tags but 1 images"},
      {json{{"messages", {{{"role", "user"}, {"content", "<image>Q"}, {"images", {"a.png"}}}, msg("assistant", "A")}},
            {"images", {"a.png"}}}
           .dump(),
       "use one form"},
      {json{{"messages", {msg("user", "Find <ref-object>"), msg("assistant", "<bbox>")}},
            {"objects", {{"ref", {"a", "b"}}, {"bbox", {{0, 0, 1, 1}}}, {"bbox_type", "norm1"}}}}
           .dump(),
       "1 <ref-object> placeholders but 2 objects.ref"},
      {json{{"messages", {msg("user", "Find it"), msg("assistant", "<bbox>")}}}.dump(),
       "1 <bbox> placeholders but 0 objects.bbox"},
      {json{{"messages", {msg("user", "Q"), msg("assistant", "<bbox>")}}, {"objects", {{"bbox", {{1, 2}}}}}}.dump(),
       "is a point"},
      {json{{"messages", {msg("user", "Q"), msg("assistant", "<bbox>")}},
            {"objects", {{"bbox", {{0, 0, 1, 1}}}, {"bbox_type", "xyxy"}}}}
           .dump(),
       "bbox_type must be"},
      {json{{"messages", {msg("user", "Q"), msg("assistant", "<bbox>")}}, {"objects", {{"bbox", {{0, 0, 1, 1}}}}}}
           .dump(),
       "objects.bbox 0 is on image 0 but the sample has 0 images"},
      {json{{"messages", {msg("user", "<image>Q"), msg("assistant", "A")}}, {"images", {"http://x/a.png"}}}.dump(),
       "only local files"},
      {json{{"messages", {msg("robot", "Q"), msg("assistant", "A")}}}.dump(), "unknown chat role"},
      {json{{"messages", {{{"role", "user"}, {"content", 3}}, msg("assistant", "A")}}}.dump(),
       "message 0 has no string \"content\""},
      {json{{"messages", {msg("user", "Q"), msg("assistant", "<image>A")}}, {"images", {"a.png"}}}.dump(),
       "only user messages may hold <image>"},
      {json{{"messages", {msg("user", "Q"), msg("system", "S"), msg("assistant", "A")}}}.dump(),
       "system message is only allowed as the first"},
      {std::string(100, '[') + std::string(100, ']'), "nested deeper"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    const Error e = error_of(c.line);
    const std::string what = e.what();
    EXPECT_EQ(what.rfind(dir + "/t.jsonl:2: ", 0), 0u) << what;
    EXPECT_NE(what.find(c.reason), std::string::npos) << what;
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << what;
  }
}

TEST_F(SftJsonlErrors, LimitsAreTooLong) {
  SftReadOptions opt;
  opt.limits.max_length = 100;  // the image alone takes 421 tokens
  Error e = error_of(ok.dump(), opt);
  EXPECT_EQ(e.kind(), ErrorKind::kTooLong);
  EXPECT_NE(std::string(e.what()).find("t.jsonl:2: sample has 421 image tokens, over the maximum length 100"),
            std::string::npos)
      << e.what();
  e = error_of(json{{"messages", {msg("user", std::string(150, 'q')), msg("assistant", "A")}}}.dump(), opt);
  EXPECT_EQ(e.kind(), ErrorKind::kTooLong);
  EXPECT_NE(std::string(e.what()).find("over the maximum length 100"), std::string::npos) << e.what();
  opt.max_line_bytes = 64;
  e = error_of(ok.dump(), opt);
  EXPECT_EQ(e.kind(), ErrorKind::kTooLong);
  EXPECT_NE(std::string(e.what()).find("t.jsonl:2: line longer than 64 bytes"), std::string::npos) << e.what();
}

TEST_F(SftJsonlErrors, SkipPolicyCountsBadLinesAndKeepsTheFirstReasons) {
  const std::string path = write({ok.dump(), "{oops", ok.dump(), R"({"messages": []})", "", "[]", ok.dump()});
  SftReadOptions opt;
  opt.on_bad_line = BadLinePolicy::kSkip;
  opt.max_reasons = 2;
  SftJsonlReader r(path, stub, proc, opt);
  std::vector<int64_t> good;
  while (auto s = r.next()) good.push_back(r.last().line);
  EXPECT_EQ(good, (std::vector<int64_t>{1, 3, 7}));
  EXPECT_EQ(r.bad_lines().count, 3);
  ASSERT_EQ(r.bad_lines().first.size(), 2u);
  EXPECT_EQ(r.bad_lines().first[0].rfind(path + ":2: not valid JSON", 0), 0u) << r.bad_lines().first[0];
  EXPECT_EQ(r.bad_lines().first[1].rfind(path + ":4: no \"messages\"", 0), 0u) << r.bad_lines().first[1];
  // The index pass reports the same.
  SftIndex idx = index_sft_jsonl(path, stub, proc, opt);
  EXPECT_EQ(idx.lines.size(), 3u);
  EXPECT_EQ(idx.bad.count, 3);
  EXPECT_EQ(idx.total_lines, 7);
  // Stop policy: the good lines before the first bad one come out, then it throws.
  SftJsonlReader stop(path, stub, proc);
  EXPECT_TRUE(stop.next().has_value());
  try {
    stop.next();
    ADD_FAILURE() << "line 2 should have thrown";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":2: ", 0), 0u) << e.what();
  }
}

TEST_F(SftJsonlErrors, ChangedFileIsReportedOnReadBack) {
  SftReadOptions opt;
  const std::string path = write({ok.dump(), ok.dump()});
  SftIndex idx = index_sft_jsonl(path, stub, proc, opt);
  ASSERT_EQ(idx.lines.size(), 2u);
  write({"", ""});  // same path, rewritten
  SftJsonlReader r2(path, stub, proc, opt);
  EXPECT_THROW(r2.read_at(idx.lines[1]), Error);
  EXPECT_THROW(SftJsonlReader(dir + "/none.jsonl", stub, proc), Error);
  EXPECT_THROW(SftJsonlReader(dir, stub, proc), Error);
}

}  // namespace
}  // namespace dsvl2
