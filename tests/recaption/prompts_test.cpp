// The recaption prompts: PixelProse's five, byte for byte as the design
// notes quote the paper; the per-key plan (deterministic, with the asked
// probabilities); the additions; the strict quality-score parser.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "recaption/prompts.h"
#include "test_util.h"

namespace dsvl2::recaption {
namespace {

TEST(RecaptionPrompts, FiveCaptionPromptsAreTheDesignNotesVerbatim) {
  const std::string path = test::shared_dir() + "/design/data-pipelines.md";
  std::ifstream f(path);
  if (!f) GTEST_SKIP() << "no design notes at " << path;
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();
  for (int i = 0; i < kCaptionPromptCount; i++) {
    const std::string head = "**P" + std::to_string(i + 1) + "**\n> ";
    const size_t at = doc.find(head);
    ASSERT_NE(at, std::string::npos) << head;
    const size_t start = at + head.size();
    const std::string quoted = doc.substr(start, doc.find('\n', start) - start);
    EXPECT_EQ(std::string(caption_prompt(i)), quoted) << "P" << i + 1;
  }
  // The curly quotes and typos the paper has survive.
  EXPECT_NE(std::string(caption_prompt(1)).find("atmost"), std::string::npos);
  EXPECT_NE(std::string(caption_prompt(0)).find("\u2018This image displays:\u2019"), std::string::npos);
  EXPECT_NE(std::string(caption_prompt(4)).find("\"This image displays:\""), std::string::npos);
}

TEST(RecaptionPrompts, PlanDependsOnlyOnSeedAndKey) {
  const PromptPlan a = plan_prompt(7, "000123", true, 0.5, 0.2);
  const PromptPlan b = plan_prompt(7, "000123", true, 0.5, 0.2);
  EXPECT_EQ(a.prompt_id, b.prompt_id);
  EXPECT_EQ(a.alt_text_inserted, b.alt_text_inserted);
  EXPECT_EQ(a.asked_negatives, b.asked_negatives);
  // Across keys and seeds the choices spread, at the asked rates.
  int prompts[kCaptionPromptCount] = {}, alt = 0, neg = 0, differ_seed = 0;
  const int n = 20000;
  for (int i = 0; i < n; i++) {
    std::string key = "k";
    key += std::to_string(i);
    const PromptPlan p = plan_prompt(1, key, true, 0.3, 0.1);
    prompts[p.prompt_id]++;
    alt += p.alt_text_inserted;
    neg += p.asked_negatives;
    differ_seed += plan_prompt(2, key, true, 0.3, 0.1).prompt_id != p.prompt_id;
    EXPECT_FALSE(plan_prompt(1, key, false, 1.0, 0.0).alt_text_inserted) << "no alt-text, nothing to insert";
  }
  for (int c : prompts) EXPECT_NEAR(c, n / 5, n / 5 * 0.08);
  EXPECT_NEAR(alt, 0.3 * n, 0.02 * n);
  EXPECT_NEAR(neg, 0.1 * n, 0.02 * n);
  EXPECT_NEAR(differ_seed, 0.8 * n, 0.03 * n);
  // The extremes are exact.
  EXPECT_TRUE(plan_prompt(3, "x", true, 1.0, 1.0).alt_text_inserted);
  EXPECT_TRUE(plan_prompt(3, "x", true, 1.0, 1.0).asked_negatives);
  EXPECT_FALSE(plan_prompt(3, "x", true, 0.0, 0.0).asked_negatives);
}

TEST(RecaptionPrompts, AdditionsFollowThePrompt) {
  PromptPlan p{2, true, true};
  PromptContext ctx;
  ctx.alt_text = "Taj Mahal at dawn";
  ctx.ocr_lines = {"OPEN 24 HOURS", "EXIT"};
  ctx.meta = "Taken with a Canon EOS 5D.";
  const std::string s = build_caption_prompt(p, ctx);
  EXPECT_EQ(s.rfind(std::string(caption_prompt(2)), 0), 0u) << "the PixelProse prompt comes first, unchanged";
  EXPECT_NE(s.find("Alt-text: \"Taj Mahal at dawn\""), std::string::npos);
  EXPECT_NE(s.find("- \"OPEN 24 HOURS\"\n- \"EXIT\""), std::string::npos);
  EXPECT_NE(s.find("Meta information: Taken with a Canon EOS 5D."), std::string::npos);
  EXPECT_NE(s.find("Finally, given the image, describe a few objects that could be present in the image but are not."),
            std::string::npos);
  // Without the plan's flags the alt-text and the negatives stay out.
  const std::string plain = build_caption_prompt({2, false, false}, ctx);
  EXPECT_EQ(plain.find("Alt-text"), std::string::npos);
  EXPECT_EQ(plain.find("Finally"), std::string::npos);
  EXPECT_EQ(build_caption_prompt({4, false, false}, {}), std::string(caption_prompt(4)));
  // The hints are capped.
  PromptContext many;
  for (int i = 0; i < 100; i++) many.ocr_lines.push_back("line " + std::to_string(i));
  const std::string capped = build_caption_prompt({0, false, false}, many);
  EXPECT_NE(capped.find("line 15"), std::string::npos);
  EXPECT_EQ(capped.find("line 16"), std::string::npos);
}

TEST(RecaptionPrompts, VqaPromptCarriesQuestionAnswerAndHints) {
  PromptContext ctx;
  ctx.ocr_lines = {"SALE 50%"};
  const std::string s = build_vqa_prompt("What does the sign say?", "sale", ctx);
  EXPECT_NE(s.find("Question: What does the sign say?"), std::string::npos);
  EXPECT_NE(s.find("\"sale\""), std::string::npos);
  EXPECT_NE(s.find("SALE 50%"), std::string::npos);
  EXPECT_EQ(build_vqa_prompt("Q?", "", {}).find("earlier answer"), std::string::npos);
}

TEST(RecaptionPrompts, UntrustedTextCannotPlaceSpecialTokens) {
  EXPECT_EQ(defuse_markup("a <image> b <|User|>: c <\xef\xbd\x9c" "end"), "a < image> b < |User|>: c < \xef\xbd\x9c" "end");
  EXPECT_EQ(defuse_markup("x < y, <b>, 3<4"), "x < y, <b>, 3<4");
  PromptContext ctx;
  ctx.alt_text = "<image>";
  ctx.ocr_lines = {"<|Assistant|>"};
  ctx.meta = "<image>";
  const std::string s = build_caption_prompt({0, true, false}, ctx);
  EXPECT_EQ(s.find("<image>"), std::string::npos);
  EXPECT_EQ(s.find("<|"), std::string::npos);
  EXPECT_EQ(build_vqa_prompt("<image> what?", "<|x", {}).find("<image>"), std::string::npos);
  EXPECT_EQ(build_quality_prompt("<image>").find("<image>"), std::string::npos);
}

TEST(RecaptionPrompts, QualityScoreIsParsedStrictly) {
  EXPECT_EQ(parse_quality_score("7"), 7);
  EXPECT_EQ(parse_quality_score(" 10\n"), 10);
  EXPECT_EQ(parse_quality_score("8."), 8);
  EXPECT_EQ(parse_quality_score("9/10"), 9);
  EXPECT_EQ(parse_quality_score("1"), 1);
  for (const char* bad : {"", "0", "11", "07", "seven", "7 out of 10", "Score: 7", "-3", "7.5", "100", "x7"})
    EXPECT_FALSE(parse_quality_score(bad).has_value()) << bad;
  EXPECT_NE(build_quality_prompt("A red car.").find("\"A red car.\""), std::string::npos);
}

}  // namespace
}  // namespace dsvl2::recaption
