#include "sample/sampler.h"

#include <gtest/gtest.h>

#include <cmath>

#include <map>

#include "core/error.h"

namespace dsvl2 {
namespace {

TEST(Sampler, GreedyPicksArgmaxWithLowestIdOnTies) {
  Sampler s(SamplingParams{});
  float logits[] = {1.f, 3.f, 3.f, -2.f};
  EXPECT_EQ(s.sample(logits, 4), 1);
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p;
  p.repetition_penalty = 2.f;
  Sampler s(p);
  // Token 0 (logit 3) seen -> 1.5 < token 1 (2.0). Token 2 negative seen -> more negative.
  float logits[] = {3.f, 2.f, -0.5f};
  s.accept_prompt({0, 2});
  EXPECT_EQ(s.sample(logits, 3), 1);
  float neg[] = {-1.f, -1.5f};
  Sampler s2(p);
  s2.accept(0);  // -1 -> -2, so token 1 (-1.5) wins
  EXPECT_EQ(s2.sample(neg, 2), 1);
}

TEST(Sampler, TopKOneIsGreedyEvenWithTemperature) {
  SamplingParams p;
  p.temperature = 5.f;
  p.top_k = 1;
  p.seed = 7;
  Sampler s(p);
  float logits[] = {0.f, 0.1f, 2.f, 1.9f};
  for (int i = 0; i < 50; i++) EXPECT_EQ(s.sample(logits, 4), 2);
}

TEST(Sampler, TopPKeepsSmallestPrefixReachingMass) {
  SamplingParams p;
  p.temperature = 1.f;
  p.top_p = 0.5f;
  p.seed = 1;
  Sampler s(p);
  // probs ~ {0.64, 0.24, 0.09, 0.03}: the first token alone reaches 0.5.
  float logits[] = {2.f, 1.f, 0.f, -1.f};
  for (int i = 0; i < 100; i++) EXPECT_EQ(s.sample(logits, 4), 0);
}

TEST(Sampler, SamplingFollowsTheDistributionAndSeedIsDeterministic) {
  SamplingParams p;
  p.temperature = 1.f;
  p.seed = 123;
  Sampler a(p), b(p);
  float logits[] = {0.f, std::log(3.f)};  // p = {0.25, 0.75}
  int ones = 0;
  for (int i = 0; i < 4000; i++) {
    int x = a.sample(logits, 2);
    EXPECT_EQ(x, b.sample(logits, 2));
    ones += x;
  }
  EXPECT_NEAR(ones / 4000.0, 0.75, 0.03);
}

TEST(Sampler, RejectsBadParameters) {
  SamplingParams p;
  p.top_p = 0.f;
  EXPECT_THROW(Sampler{p}, Error);
  p = {};
  p.temperature = -1.f;
  EXPECT_THROW(Sampler{p}, Error);
}

TEST(StopStrings, HoldsBackPartialMatchesAndCutsAtStop) {
  StopStrings s({"<|end|>"});
  bool stopped = false;
  EXPECT_EQ(s.feed("Hello <|e", &stopped), "Hello ");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(s.feed("nd|> more", &stopped), "");
  EXPECT_TRUE(stopped);
  StopStrings t({"STOP"});
  EXPECT_EQ(t.feed("ST", &stopped), "");
  EXPECT_EQ(t.feed("AY", &stopped), "STAY");
  EXPECT_FALSE(stopped);
  EXPECT_EQ(t.feed("S", &stopped), "");
  EXPECT_EQ(t.flush(), "S");
}

}  // namespace
}  // namespace dsvl2
