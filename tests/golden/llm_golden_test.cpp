// The decoder against the official DeepseekV2ForCausalLM outputs: for every
// prompt of the three model cases, the full-prompt logits, the 8 greedy ids and
// the logits of every greedy step (KV-cache path), in f32 and bf16 compute.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/model_config.h"
#include "io/safetensors.h"
#include "llm/decoder.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

Tensor load_f32(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsTensor* t = f.find(name);
  if (!t) throw Error("missing " + name);
  return to_f32(t->view);
}

std::vector<int> load_ids(const SafetensorsFile& f, const std::string& name) {
  const SafetensorsTensor* t = f.find(name);
  if (!t || t->view.dtype != DType::kI64) throw Error("missing I64 " + name);
  std::vector<int> out(size_t(t->view.numel()));
  for (size_t i = 0; i < out.size(); i++) {
    int64_t v;
    std::memcpy(&v, static_cast<const uint8_t*>(t->view.data) + i * 8, 8);
    out[i] = int(v);
  }
  return out;
}

std::vector<std::string> prompts_of(const SafetensorsFile& f) {
  std::vector<std::string> out;
  const std::string suffix = ".inputs_embeds";
  for (const auto& t : f.tensors())
    if (t.name.size() > suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(t.name.substr(0, t.name.size() - suffix.size()));
  return out;
}

// One golden case loaded: its checkpoint, expectations and both modes' ops.
struct GoldenCase {
  explicit GoldenCase(const char* name)
      : dir(test::golden_dir() + "/" + name), cfg(load_vl_config(dir)), ckpt(dir),
        exp(dir + "/expected.safetensors"), pool(2), ops{&kernels_best(), &pool, Compute::kF32},
        ops_bf16{&kernels_best(), &pool, Compute::kBF16} {}
  std::string dir;
  VLConfig cfg;
  Checkpoint ckpt;
  SafetensorsFile exp;
  ThreadPool pool;
  Ops ops, ops_bf16;
};

class LlmGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(LlmGolden, MatchesOfficialLogitsAndGreedy) {
  DSVL2_REQUIRE_GOLDEN();
  GoldenCase golden(GetParam());
  const VLConfig& cfg = golden.cfg;
  const SafetensorsFile& exp = golden.exp;
  const Ops& ops = golden.ops;
  const Ops& ops_bf16 = golden.ops_bf16;
  LanguageModel lm(cfg.language, checkpoint_source(golden.ckpt));
  const int64_t V = cfg.language.vocab_size;

  auto prompts = prompts_of(exp);
  ASSERT_FALSE(prompts.empty());
  for (const std::string& p : prompts) {
    SCOPED_TRACE(p);
    Tensor embeds = load_f32(exp, p + ".inputs_embeds");
    Tensor want_logits = load_f32(exp, p + ".logits");
    Tensor want_steps = load_f32(exp, p + ".generated_step_logits");
    std::vector<int> want_ids = load_ids(exp, p + ".generated_ids");
    const int T = int(embeds.dim(0));
    ASSERT_EQ(embeds.dim(1), cfg.language.hidden_size);
    ASSERT_EQ(want_logits.numel(), T * V);

    // f32: full prompt, all positions, one chunk.
    KVCache cache(cfg.language);
    Tensor logits = lm.forward(embeds.f32(), T, cache, ops, LogitsMode::kAll, T);
    auto d = test::diff(logits.f32(), want_logits.f32(), T * V);
    EXPECT_LE(d.max_abs, 1e-3) << "at flat index " << d.argmax_at;

    // f32 greedy with the cache, prompt in one chunk.
    const int n_new = int(want_ids.size());
    ASSERT_GT(n_new, 0);
    KVCache c1(cfg.language);
    test::GreedyRun g = test::greedy(lm, embeds.f32(), T, c1, ops, n_new, T);
    EXPECT_EQ(g.ids, want_ids);
    ASSERT_EQ(g.step_logits.size(), size_t(want_steps.numel()));
    auto ds = test::diff(g.step_logits.data(), want_steps.f32(), want_steps.numel());
    EXPECT_LE(ds.max_abs, 1e-3);
    EXPECT_EQ(c1.length(), T + n_new - 1);
    EXPECT_EQ(g.finish_reason, "length");

    // Chunked prefill (official incremental_prefilling) gives the same result.
    KVCache c2(cfg.language);
    test::GreedyRun gc = test::greedy(lm, embeds.f32(), T, c2, ops, n_new, 100);
    EXPECT_EQ(gc.ids, want_ids);
    auto dc = test::diff(gc.step_logits.data(), g.step_logits.data(), int64_t(g.step_logits.size()));
    EXPECT_LE(dc.max_abs, 1e-5);
    KVCache c3(cfg.language);
    Tensor logits_chunked = lm.forward(embeds.f32(), T, c3, ops, LogitsMode::kAll, 100);
    EXPECT_LE(test::diff(logits_chunked.f32(), logits.f32(), T * V).max_abs, 1e-5);

    // bf16 compute: judged by argmax agreement and greedy ids (README's bf16 table).
    KVCache cb(cfg.language);
    Tensor lb = lm.forward(embeds.f32(), T, cb, ops_bf16, LogitsMode::kAll, kDefaultPrefillChunk);
    int agree = 0;
    for (int t = 0; t < T; t++) agree += argmax(lb.f32() + t * V, V) == argmax(want_logits.f32() + t * V, V);
    const double agreement = double(agree) / T;
    EXPECT_GE(agreement, 0.96);
    auto db = test::diff(lb.f32(), want_logits.f32(), T * V);
    KVCache cg(cfg.language);
    test::GreedyRun gb = test::greedy(lm, embeds.f32(), T, cg, ops_bf16, n_new);
    EXPECT_EQ(gb.ids, want_ids);

    std::printf(
        "[%s %s] T=%d f32 logits max %.3g mean %.3g | steps max %.3g | chunked-vs-full %.3g | "
        "bf16 logits max %.3g mean %.3g argmax agree %.4f\n",
        GetParam(), p.c_str(), T, d.max_abs, d.mean_abs, ds.max_abs, dc.max_abs, db.max_abs, db.mean_abs, agreement);
  }
}

// Weights repacked at load (LanguageModel::prepare, the CLI's default) with
// the checkpoint's pages dropped: the f32 reference still matches the official
// logits (reading the re-faulted mapped bytes, or weights prepared for f32
// mode), and bf16 through the packed
// kernels agrees with the official argmax and greedy ids as the unpacked
// bf16 path does.
TEST_P(LlmGolden, PreparedWeightsKeepParity) {
  DSVL2_REQUIRE_GOLDEN();
  GoldenCase golden(GetParam());
  const VLConfig& cfg = golden.cfg;
  const Checkpoint& ckpt = golden.ckpt;
  const SafetensorsFile& exp = golden.exp;
  const Ops& ops = golden.ops;
  const Ops& ops_bf16 = golden.ops_bf16;
  LanguageModel lm(cfg.language, checkpoint_source(ckpt));
  LanguageModel plain(cfg.language, checkpoint_source(ckpt));
  size_t released = 0;
  const size_t packed = lm.prepare(ops_bf16, [&](const void* p, size_t n) { released += ckpt.release(p, n); });
  if (kernels_best().isa != Isa::kScalar) {
    EXPECT_GT(packed, size_t(0));
    EXPECT_GT(released, size_t(0));
  }
  EXPECT_THROW(lm.prepare(ops_bf16), Error);
  // Prepared for f32 mode (AVX2's bf16 panels serve it; AVX-512 packs nothing
  // for it): still the official logits.
  LanguageModel lm32(cfg.language, checkpoint_source(ckpt));
  lm32.prepare(ops);
  const int64_t V = cfg.language.vocab_size;
  for (const std::string& p : prompts_of(exp)) {
    SCOPED_TRACE(p);
    Tensor embeds = load_f32(exp, p + ".inputs_embeds");
    Tensor want_logits = load_f32(exp, p + ".logits");
    std::vector<int> want_ids = load_ids(exp, p + ".generated_ids");
    const int T = int(embeds.dim(0));
    KVCache c32(cfg.language);
    Tensor l32 = lm.forward(embeds.f32(), T, c32, ops, LogitsMode::kAll, T);
    EXPECT_LE(test::diff(l32.f32(), want_logits.f32(), T * V).max_abs, 1e-3);
    KVCache c32p(cfg.language);
    Tensor l32p = lm32.forward(embeds.f32(), T, c32p, ops, LogitsMode::kAll, T);
    EXPECT_LE(test::diff(l32p.f32(), want_logits.f32(), T * V).max_abs, 1e-3) << "f32 mode, prepared for it";

    KVCache cb(cfg.language), cp(cfg.language);
    Tensor lb = lm.forward(embeds.f32(), T, cb, ops_bf16, LogitsMode::kAll);
    Tensor lp = plain.forward(embeds.f32(), T, cp, ops_bf16, LogitsMode::kAll);
    int agree = 0;
    for (int t = 0; t < T; t++) agree += argmax(lb.f32() + t * V, V) == argmax(want_logits.f32() + t * V, V);
    EXPECT_GE(double(agree) / T, 0.96);
    // Same bf16 products, other summation order: far below the bf16 rounding.
    auto dp = test::diff(lb.f32(), lp.f32(), T * V);
    EXPECT_LE(dp.max_abs, 0.05);
    KVCache cg(cfg.language);
    EXPECT_EQ(test::greedy(lm, embeds.f32(), T, cg, ops_bf16, int(want_ids.size())).ids, want_ids);
    std::printf("[%s %s] prepared: %zu bytes packed, %zu released | bf16 packed vs unpacked max %.3g, agree %.4f\n",
                GetParam(), p.c_str(), packed, released, dp.max_abs, double(agree) / T);
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, LlmGolden, ::testing::Values("tiny_like", "small_like", "base_like"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
}  // namespace dsvl2
