// A batched forward equals its sequences run alone: 8 sequences of different
// lengths and positions in one batch — two prefilling image prompts (rows of
// spliced vision embeddings), two in the middle of a chunked prefill, four
// decoding after prompts of different lengths — give, row by row, the logits
// of the same rows run one sequence at a time on the golden checkpoints (MHA
// and MLA). Also: a batch that breaks the rules leaves every cache as it was.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file.h"
#include "model/vl_model.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

struct Case {
  std::string name;
  Compute compute;
};

class BatchGolden : public ::testing::TestWithParam<Case> {};

// What one sequence contributes to the batch: rows run before (alone, in both
// worlds), then the rows of the batched step.
struct SeqPlan {
  std::vector<float> before;  // [n_before, hidden]
  std::vector<float> rows;    // [n_rows, hidden]
  int n_before = 0, n_rows = 0;
};

TEST_P(BatchGolden, EightSequencesEqualEachRunAlone) {
  DSVL2_REQUIRE_GOLDEN();
  const Case& c = GetParam();
  const std::string dir = test::golden_dir() + "/" + c.name;
  nlohmann::json exp = nlohmann::json::parse(read_file(dir + "/expected.json"));
  VisionLanguageModel model(dir);
  ThreadPool pool(2);
  Ops ops{&kernels_best(), &pool, c.compute};
  const LanguageModel& lm = model.language();
  const LanguageConfig& L = model.config().language;
  const int64_t D = L.hidden_size, V = L.vocab_size;
  const int image_token_id = exp["image_token_id"].get<int>();

  std::vector<SeqPlan> plans;
  auto take = [&](const Tensor& e, int from, int n) {
    return std::vector<float>(e.f32() + int64_t(from) * D, e.f32() + int64_t(from + n) * D);
  };
  // Two image prompts, prefilled whole in the batch (their image rows included).
  ASSERT_GE(exp["prompts"].size(), 2u);
  int k = 0;
  for (auto& [name, p] : exp["prompts"].items()) {
    std::vector<Image> images;
    for (const auto& f : p["images"]) images.push_back(load_image(dir + "/" + f.get<std::string>()));
    PreprocessResult pre = preprocess_images(images, model.processor(), CropMode::kAuto);
    std::vector<int32_t> ids = p["input_ids"].get<std::vector<int32_t>>();
    const int n = std::min<int>(int(ids.size()), k == 0 ? 260 : 190);
    ASSERT_GT(std::count(ids.begin(), ids.begin() + n, image_token_id), 20) << "the rows must include image rows";
    Tensor e = model.embed_prompt(ids, image_token_id, &pre, ops);
    plans.push_back({{}, take(e, 0, n), 0, n});
    if (++k == 2) break;
  }
  // Text: two mid-prefill (a first chunk ran before), four decoding.
  auto text = [&](int n, int seed) {
    std::vector<int> ids(static_cast<size_t>(n), 0);
    for (int i = 0; i < n; i++) ids[size_t(i)] = int((uint64_t(seed) * 7919 + uint64_t(i) * 104729) % uint64_t(V));
    Tensor e = lm.embed(ids);
    return std::vector<float>(e.f32(), e.f32() + int64_t(n) * D);
  };
  for (auto [before, rows, seed] : {std::tuple{24, 17, 1}, std::tuple{9, 30, 2}}) {
    std::vector<float> all = text(before + rows, seed);
    plans.push_back({std::vector<float>(all.begin(), all.begin() + int64_t(before) * D),
                     std::vector<float>(all.begin() + int64_t(before) * D, all.end()), before, rows});
  }
  for (auto [before, seed] : {std::pair{3, 3}, std::pair{12, 4}, std::pair{40, 5}, std::pair{7, 6}}) {
    std::vector<float> all = text(before + 1, seed);
    plans.push_back({std::vector<float>(all.begin(), all.begin() + int64_t(before) * D),
                     std::vector<float>(all.begin() + int64_t(before) * D, all.end()), before, 1});
  }
  ASSERT_EQ(plans.size(), 8u);

  // The same history in two sets of caches.
  std::vector<std::unique_ptr<KVCache>> batched, alone;
  for (const SeqPlan& s : plans) {
    batched.push_back(std::make_unique<KVCache>(L, s.n_before + s.n_rows + 4));
    alone.push_back(std::make_unique<KVCache>(L, s.n_before + s.n_rows + 4));
    if (s.n_before > 0) {
      lm.forward(s.before.data(), s.n_before, *batched.back(), ops, LogitsMode::kNone);
      lm.forward(s.before.data(), s.n_before, *alone.back(), ops, LogitsMode::kNone);
    }
  }
  Batch b(D);
  for (size_t i = 0; i < plans.size(); i++) {
    const int seq = b.add_sequence(*batched[i]);
    b.add_embeddings(seq, plans[i].rows.data(), plans[i].n_rows, plans[i].n_before, false, true);
  }
  Tensor got = lm.forward(b, ops);
  ASSERT_EQ(got.dim(0), b.rows());

  double worst = 0;
  int64_t agree = 0, total = 0, row = 0;
  for (size_t i = 0; i < plans.size(); i++) {
    Tensor want = lm.forward(plans[i].rows.data(), plans[i].n_rows, *alone[i], ops, LogitsMode::kAll);
    const auto d = test::diff(got.f32() + row * V, want.f32(), int64_t(plans[i].n_rows) * V);
    worst = std::max(worst, d.max_abs);
    for (int t = 0; t < plans[i].n_rows; t++)
      agree += argmax(got.f32() + (row + t) * V, V) == argmax(want.f32() + int64_t(t) * V, V);
    total += plans[i].n_rows;
    row += plans[i].n_rows;
    EXPECT_EQ(batched[i]->length(), alone[i]->length()) << "sequence " << i;
    if (c.compute == Compute::kF32) {
      EXPECT_LE(d.max_abs, 1e-5) << "sequence " << i;
    }
  }
  const double frac = double(agree) / double(total);
  if (c.compute == Compute::kF32) {
    EXPECT_EQ(agree, total);
  } else {
    EXPECT_GE(frac, 0.98) << "bf16 argmax agreement, batched vs alone";
  }
  std::printf("[batch %s %s] %d rows of 8 sequences: max |batched - alone| %.3g, argmax agreement %.4f\n",
              c.name.c_str(), c.compute == Compute::kF32 ? "f32" : "bf16", b.rows(), worst, frac);

  // Decode once more, batched, after that step: still equal.
  Batch next(D);
  std::vector<Tensor> want_next;
  for (size_t i = 0; i < plans.size(); i++) {
    const int tok = int((i * 31 + 7) % size_t(V));
    next.add_token(next.add_sequence(*batched[i]), tok, batched[i]->length(), true);
    Tensor e = lm.embed({tok});
    want_next.push_back(lm.forward(e.f32(), 1, *alone[i], ops, LogitsMode::kLast));
  }
  Tensor got_next = lm.forward(next, ops);
  for (size_t i = 0; i < plans.size(); i++) {
    const double d = test::diff(got_next.f32() + int64_t(i) * V, want_next[i].f32(), V).max_abs;
    if (c.compute == Compute::kF32) {
      EXPECT_LE(d, 1e-5) << "decode row " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllCases, BatchGolden,
                         ::testing::Values(Case{"tiny_like", Compute::kF32}, Case{"small_like", Compute::kF32},
                                           Case{"tiny_like", Compute::kBF16}, Case{"small_like", Compute::kBF16}),
                         [](const auto& info) {
                           return info.param.name + (info.param.compute == Compute::kF32 ? "_f32" : "_bf16");
                         });

// The rules of a batch, each broken once: an Error, and no cache changes.
TEST(BatchRules, BrokenBatchesLeaveCachesUntouched) {
  DSVL2_REQUIRE_GOLDEN();
  VisionLanguageModel model(test::golden_dir() + "/tiny_like");
  ThreadPool pool(2);
  Ops ops{&kernels_best(), &pool, Compute::kF32};
  const LanguageModel& lm = model.language();
  const LanguageConfig& L = model.config().language;
  KVCache a(L, 8), c(L, 8);
  std::vector<int> ids = {5, 6, 7};
  lm.forward(lm.embed(ids).f32(), 3, a, ops, LogitsMode::kNone);
  auto expect_refused = [&](Batch& b, ErrorKind kind) {
    try {
      lm.forward(b, ops);
      ADD_FAILURE() << "expected an Error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), kind) << e.what();
    }
    EXPECT_EQ(a.length(), 3);
    EXPECT_EQ(c.length(), 0);
  };
  {
    Batch b(L.hidden_size);  // a gap: position 4 after a cache of 3
    b.add_token(b.add_sequence(a), 1, 4, true);
    expect_refused(b, ErrorKind::kInvalidInput);
  }
  {
    Batch b(L.hidden_size);  // not consecutive
    const int s = b.add_sequence(a);
    b.add_token(s, 1, 3, false);
    b.add_token(s, 1, 5, true);
    expect_refused(b, ErrorKind::kInvalidInput);
  }
  {
    Batch b(L.hidden_size);  // interleaved sequences
    const int s = b.add_sequence(a), t = b.add_sequence(c);
    b.add_token(s, 1, 3, false);
    b.add_token(t, 1, 0, false);
    b.add_token(s, 1, 4, true);
    expect_refused(b, ErrorKind::kInvalidInput);
  }
  {
    Batch b(L.hidden_size);  // past the capacity of 8
    std::vector<int> six(6, 9);
    b.add_tokens(b.add_sequence(a), six.data(), 6, 3, true);
    expect_refused(b, ErrorKind::kTooLong);
  }
  {
    Batch b(L.hidden_size);  // a token outside the vocabulary
    b.add_token(b.add_sequence(c), L.vocab_size, 0, true);
    expect_refused(b, ErrorKind::kInvalidInput);
  }
  // Rewinding: a first position inside the cache overwrites from there.
  Batch b(L.hidden_size);
  b.add_token(b.add_sequence(a), 9, 1, true);
  Tensor l = lm.forward(b, ops);
  EXPECT_EQ(a.length(), 2);
  KVCache fresh(L, 8);
  std::vector<int> re = {5, 9};
  Tensor want = lm.forward(lm.embed(re).f32(), 2, fresh, ops, LogitsMode::kLast);
  EXPECT_LE(test::diff(l.f32(), want.f32(), L.vocab_size).max_abs, 1e-5);
}

}  // namespace
}  // namespace dsvl2
