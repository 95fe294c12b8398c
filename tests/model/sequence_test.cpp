// The one generation step: several requests stepped together (prompts
// prefilled in small chunks beside other sequences' decode rows) give each
// the tokens, text and finish reason it gets alone through generate(); stop
// strings, the guard and max_new_tokens end a sequence with the right reason.
// A toy checkpoint with Tiny's schema and the real DeepSeek-V3 tokenizer.
#include "model/sequence.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>

#include "core/error.h"
#include "core/file.h"
#include "io/random_checkpoint.h"
#include "model/generate.h"
#include "model/vl_model.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

class SequenceStep : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string tok = test::tokenizer_dir();
    if (tok.empty()) return;
    const std::string dir = test::temp_dir("sequence_model");
    write_random_checkpoint(dir, preset_config_json("tiny-test"), {.seed = 11});
    write_file(dir + "/tokenizer.json", read_file(tok + "/deepseek_v3/tokenizer.json"));
    model_ = new VisionLanguageModel(dir);
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  void SetUp() override {
    if (!model_) {
      if (test::in_ci()) FAIL() << "shared/tokenizer not found; CI=true requires it";
      GTEST_SKIP() << "shared/tokenizer not found";
    }
  }
  static Tensor prompt(const std::string& text) {
    std::vector<int32_t> ids = model_->tokenizer().encode(text);
    return model_->language().embed(std::vector<int>(ids.begin(), ids.end()));
  }
  static inline VisionLanguageModel* model_ = nullptr;
};

struct Request {
  std::string text;
  GenerateRequest req;
};

TEST_F(SequenceStep, SteppedTogetherEqualsEachAlone) {
  ThreadPool pool(2);
  Ops ops{&kernels_best(), &pool, Compute::kF32};
  const LanguageModel& lm = model_->language();
  const Tokenizer& tok = model_->tokenizer();
  std::vector<Request> reqs(6);
  const char* texts[] = {"Describe a red bicycle.", "Hi", "List three colours of the sea and the sky at dusk, please.",
                         "What is 2 + 2?", "Tell me a story about a lighthouse keeper.", "Why?"};
  for (size_t i = 0; i < reqs.size(); i++) {
    reqs[i].text = texts[i];
    reqs[i].req.max_new_tokens = 6 + int(i) * 3;
    reqs[i].req.stop_strings = {};
  }
  reqs[1].req.sampling.temperature = 0.8f;
  reqs[1].req.sampling.seed = 3;
  reqs[3].req.sampling.top_k = 5;
  reqs[3].req.sampling.temperature = 1.0f;
  reqs[3].req.sampling.seed = 9;
  reqs[4].req.sampling.repetition_penalty = 1.3f;
  int guard_calls = 0;
  reqs[5].req.guard = [&](std::string_view) { return ++guard_calls == 3; };

  // Alone; a stop string is taken from one answer's text to check cutting.
  std::vector<GenerateResult> alone;
  for (auto& r : reqs) {
    Tensor e = prompt(r.text);
    KVCache cache(lm.config(), 256);
    alone.push_back(generate(lm, tok, e.f32(), int(e.dim(0)), {}, cache, ops, r.req, {}));
  }
  ASSERT_GE(alone[2].text.size(), 6u);
  EXPECT_EQ(alone[5].finish, FinishReason::kGuard);
  EXPECT_EQ(alone[5].ids.size(), 3u);
  for (size_t i = 0; i < 5; i++) EXPECT_EQ(alone[i].finish_reason, "length") << i;
  const std::string stop = alone[2].text.substr(alone[2].text.size() / 2, 3);
  reqs[2].req.stop_strings = {stop};
  {
    Tensor e = prompt(reqs[2].text);
    KVCache cache(lm.config(), 256);
    alone[2] = generate(lm, tok, e.f32(), int(e.dim(0)), {}, cache, ops, reqs[2].req, {});
  }
  EXPECT_EQ(alone[2].finish, FinishReason::kStopString);
  EXPECT_EQ(alone[2].text.find(stop), std::string::npos);

  // Together, prefill chunks of at most 4 rows beside decode rows.
  guard_calls = 0;
  std::vector<std::unique_ptr<KVCache>> caches;
  std::vector<std::unique_ptr<Sequence>> seqs;
  std::vector<std::string> streamed(reqs.size());
  std::vector<Sequence*> live;
  for (size_t i = 0; i < reqs.size(); i++) {
    caches.push_back(std::make_unique<KVCache>(lm.config(), 256));
    seqs.push_back(std::make_unique<Sequence>(&tok, *caches.back(), reqs[i].req, std::vector<int32_t>{},
                                              [&, i](std::string_view s) { streamed[i] += s; }));
    Tensor e = prompt(reqs[i].text);
    seqs.back()->set_prompt(e.f32(), int(e.dim(0)), lm.config().hidden_size);
    live.push_back(seqs.back().get());
  }
  int steps = 0;
  while (step_sequences(lm, live, ops, 4) > 0) ASSERT_LT(++steps, 500);
  for (size_t i = 0; i < reqs.size(); i++) {
    const GenerateResult& got = seqs[i]->result();
    EXPECT_EQ(got.ids, alone[i].ids) << "request " << i;
    EXPECT_EQ(got.text, alone[i].text) << "request " << i;
    EXPECT_EQ(streamed[i], got.text) << "request " << i;
    EXPECT_EQ(got.finish, alone[i].finish) << "request " << i;
    EXPECT_EQ(caches[i]->length(), got.prompt_tokens + int(got.fed_ids.size())) << "request " << i;
  }
}

// A step whose forward fails changes nothing: here two sequences share one
// cache (refused by the batch), then run one after the other they finish
// normally. A sequence whose own callback throws ends with kError alone.
TEST_F(SequenceStep, FailuresStayWithTheirStepOrSequence) {
  ThreadPool pool(2);
  Ops ops{&kernels_best(), &pool, Compute::kF32};
  const LanguageModel& lm = model_->language();
  const Tokenizer& tok = model_->tokenizer();
  GenerateRequest req;
  req.max_new_tokens = 4;
  req.stop_strings = {};
  Tensor e = prompt("A shared cache");
  const int T = int(e.dim(0));
  KVCache shared(lm.config(), 64);
  Sequence a(&tok, shared, req), b(&tok, shared, req);
  a.set_prompt(e.f32(), T, lm.config().hidden_size);
  b.set_prompt(e.f32(), T, lm.config().hidden_size);
  Sequence* both[] = {&a, &b};
  EXPECT_THROW(step_sequences(lm, both, ops), Error);
  EXPECT_EQ(shared.length(), 0);
  EXPECT_EQ(a.pending_prompt_rows(), T);
  EXPECT_EQ(b.pending_prompt_rows(), T);
  Sequence* only_a[] = {&a};
  while (step_sequences(lm, only_a, ops) > 0) {
  }
  EXPECT_EQ(a.result().ids.size(), 4u);
  EXPECT_EQ(a.result().finish, FinishReason::kMaxTokens);

  KVCache c1(lm.config(), 64), c2(lm.config(), 64);
  Sequence bad(&tok, c1, req, {}, [](std::string_view) { throw std::runtime_error("client went away"); });
  Sequence good(&tok, c2, req);
  bad.set_prompt(e.f32(), T, lm.config().hidden_size);
  good.set_prompt(e.f32(), T, lm.config().hidden_size);
  Sequence* pair[] = {&bad, &good};
  int steps = 0;
  while (step_sequences(lm, pair, ops) > 0) ASSERT_LT(++steps, 50);
  EXPECT_EQ(bad.result().finish, FinishReason::kError);
  EXPECT_EQ(bad.result().finish_reason, "error");
  EXPECT_TRUE(bad.error());
  EXPECT_EQ(good.result().ids, a.result().ids) << "the other sequence is unaffected";
  // generate() hands its one sequence's error to the caller.
  KVCache c3(lm.config(), 64);
  EXPECT_THROW(generate(lm, tok, e.f32(), T, {}, c3, ops, req,
                        [](std::string_view) { throw std::runtime_error("client went away"); }),
               std::runtime_error);
}

TEST_F(SequenceStep, ZeroNewTokensAndAFullContext) {
  ThreadPool pool(2);
  Ops ops{&kernels_best(), &pool, Compute::kF32};
  const LanguageModel& lm = model_->language();
  Tensor e = prompt("Hello there");
  const int T = int(e.dim(0));
  GenerateRequest req;
  req.max_new_tokens = 0;
  KVCache c0(lm.config(), 64);
  GenerateResult r0 = generate(lm, model_->tokenizer(), e.f32(), T, {}, c0, ops, req, {});
  EXPECT_TRUE(r0.ids.empty());
  EXPECT_EQ(r0.finish, FinishReason::kMaxTokens);
  req.max_new_tokens = 50;
  req.stop_strings = {};
  KVCache full(lm.config(), T + 2);  // room for two fed tokens
  GenerateResult r1 = generate(lm, model_->tokenizer(), e.f32(), T, {}, full, ops, req, {});
  EXPECT_EQ(r1.finish, FinishReason::kContext);
  EXPECT_EQ(r1.finish_reason, "length");
  EXPECT_EQ(r1.ids.size(), 3u);
  EXPECT_EQ(full.length(), T + 2);
}

}  // namespace
}  // namespace dsvl2
