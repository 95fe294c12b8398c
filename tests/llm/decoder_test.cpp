// Decoder behaviour on small random models: the weight-absorbed MLA against the
// plain (non-absorbed) formulation, cached decoding against full recomputation,
// chunked prefill, and the errors for bad prompts and contexts.
#include "llm/decoder.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/error.h"
#include "io/model_config.h"
#include "llm/random_weights.h"
#include "test_util.h"

namespace dsvl2 {
namespace {

LanguageConfig mla_config(int q_lora) {
  LanguageConfig c;
  c.vocab_size = 40;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.moe_intermediate_size = 16;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 4;
  c.n_shared_experts = 1;
  c.n_routed_experts = 8;
  c.num_experts_per_tok = 3;
  c.kv_lora_rank = 16;
  c.q_lora_rank = q_lora;
  c.qk_nope_head_dim = 8;
  c.qk_rope_head_dim = 8;
  c.v_head_dim = 6;
  c.topk_method = "noaux_tc";
  c.scoring_func = "sigmoid";
  c.n_group = 4;
  c.topk_group = 2;
  c.norm_topk_prob = true;
  c.routed_scaling_factor = 2.0;
  c.first_k_dense_replace = 1;
  c.max_position_embeddings = 64;
  c.rope_scaling.type = "yarn";
  c.rope_scaling.factor = 4;
  c.rope_scaling.original_max_position_embeddings = 16;
  c.rope_scaling.mscale = 0.707;
  c.rope_scaling.mscale_all_dim = 0.707;
  return c;
}

LanguageConfig mha_config() {
  LanguageConfig c = mla_config(0);
  c.use_mla = false;
  c.num_key_value_heads = 2;  // GQA
  c.rope_scaling = RopeScaling{};
  c.topk_method = "greedy";
  c.scoring_func = "softmax";
  c.norm_topk_prob = false;
  c.routed_scaling_factor = 1.0;
  return c;
}

std::vector<float> random_embeds(int T, int D, uint32_t seed) {
  std::vector<float> e(size_t(T) * D);
  for (size_t i = 0; i < e.size(); i++) e[i] = std::sin(0.37f * float(i) + float(seed)) * 0.8f;
  return e;
}

struct Env {
  ThreadPool pool{2};
  Ops ops{&kernels_ref(), &pool, Compute::kF32};
};

// ---- MLA: absorbed implementation vs the plain formulation ------------------

std::vector<double> matvec(const Tensor& w, const float* x, int64_t row0, int64_t rows) {
  const int64_t K = w.dim(1);
  std::vector<double> y(static_cast<size_t>(rows));
  for (int64_t n = 0; n < rows; n++) {
    double s = 0;
    for (int64_t k = 0; k < K; k++) s += double(w.f32()[(row0 + n) * K + k]) * x[k];
    y[size_t(n)] = s;
  }
  return y;
}

std::vector<float> rms(const std::vector<double>& x, const Tensor& g, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  double inv = 1 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); i++) y[i] = float(x[i] * inv * g.f32()[i]);
  return y;
}

class MlaReference : public ::testing::TestWithParam<int> {};

TEST_P(MlaReference, AbsorbedEqualsPlainAttention) {
  const LanguageConfig c = mla_config(GetParam());
  RandomWeights rw(7);
  WeightSource src = rw.source();
  const std::string p = "l.self_attn.";
  AttentionMla attn = AttentionMla::load(src, p, c);
  const int T = 9, D = c.hidden_size, H = c.num_attention_heads, L = c.kv_lora_rank;
  const int nope = c.qk_nope_head_dim, R = c.qk_rope_head_dim, V = c.v_head_dim, Q = nope + R;
  auto x = random_embeds(T, D, 3);
  Env env;
  // The rows in one call (a fresh prompt: the expanded form), then as a prompt
  // of 5 and the rest after it (chunks and single steps: the absorbed form).
  const std::vector<std::vector<int>> splits = {{T}, {5, 4}, {5, 1, 1, 1, 1}};
  std::vector<std::vector<float>> ys;
  for (const std::vector<int>& split : splits) {
    KVCache cache(c);
    std::vector<float>& y = ys.emplace_back(size_t(T) * D);
    int pos = 0;
    for (int n : split) {
      const BatchSegment seg{&cache, 0, n, pos};
      EXPECT_EQ(attn.prefers_expanded(seg), pos == 0) << "rows " << n << " at " << pos;
      attn.forward(x.data() + int64_t(pos) * D, n, {&seg, 1}, 0, env.ops, y.data() + int64_t(pos) * D);
      pos += n;
    }
  }

  auto W = [&](const std::string& n, Shape s) { return to_f32(src(p + n, s)); };
  Tensor kv_a = W("kv_a_proj_with_mqa.weight", {L + R, D}), kv_norm = W("kv_a_layernorm.weight", {L});
  Tensor kv_b = W("kv_b_proj.weight", {int64_t(H) * (nope + V), L}), o = W("o_proj.weight", {D, int64_t(H) * V});
  Rope rope(R, c.rope_theta, c.rope_scaling);
  std::vector<std::vector<float>> q(T), k_nope(T), k_pe(T), v(T);
  for (int t = 0; t < T; t++) {
    const float* xt = x.data() + t * D;
    std::vector<double> qd;
    if (c.q_lora_rank == 0) {
      qd = matvec(W("q_proj.weight", {int64_t(H) * Q, D}), xt, 0, int64_t(H) * Q);
    } else {
      Tensor qa = W("q_a_proj.weight", {c.q_lora_rank, D});
      auto n = rms(matvec(qa, xt, 0, c.q_lora_rank), W("q_a_layernorm.weight", {c.q_lora_rank}), 1e-6);
      qd = matvec(W("q_b_proj.weight", {int64_t(H) * Q, c.q_lora_rank}), n.data(), 0, int64_t(H) * Q);
    }
    q[t].assign(qd.begin(), qd.end());
    rope.apply(q[t].data() + nope, 1, H, 0, Q, t, RopeStyle::kInterleaved);
    auto kv = matvec(kv_a, xt, 0, L + R);
    auto cn = rms(std::vector<double>(kv.begin(), kv.begin() + L), kv_norm, 1e-6);
    k_pe[t].assign(kv.begin() + L, kv.end());
    rope.apply(k_pe[t].data(), 1, 1, 0, R, t, RopeStyle::kInterleaved);
    for (int h = 0; h < H; h++) {
      auto kn = matvec(kv_b, cn.data(), int64_t(h) * (nope + V), nope);
      auto vv = matvec(kv_b, cn.data(), int64_t(h) * (nope + V) + nope, V);
      k_nope[t].insert(k_nope[t].end(), kn.begin(), kn.end());
      v[t].insert(v[t].end(), vv.begin(), vv.end());
    }
  }
  double scale = std::pow(double(Q), -0.5) * std::pow(yarn_get_mscale(4, 0.707), 2);
  EXPECT_NEAR(attn.softmax_scale(), scale, 1e-7);
  double worst = 0;
  for (int t = 0; t < T; t++) {
    std::vector<float> cat(size_t(H) * V);
    for (int h = 0; h < H; h++) {
      std::vector<double> s(size_t(t + 1));
      double mx = -1e300, sum = 0;
      for (int j = 0; j <= t; j++) {
        double d = 0;
        for (int i = 0; i < nope; i++) d += double(q[t][h * Q + i]) * k_nope[j][h * nope + i];
        for (int i = 0; i < R; i++) d += double(q[t][h * Q + nope + i]) * k_pe[j][i];
        s[j] = d * scale;
        mx = std::max(mx, s[j]);
      }
      for (double& e : s) sum += (e = std::exp(e - mx));
      for (int i = 0; i < V; i++) {
        double acc = 0;
        for (int j = 0; j <= t; j++) acc += s[j] / sum * v[j][h * V + i];
        cat[size_t(h) * V + i] = float(acc);
      }
    }
    auto yt = matvec(o, cat.data(), 0, D);
    for (const std::vector<float>& y : ys)
      for (int i = 0; i < D; i++) worst = std::max(worst, std::fabs(yt[i] - y[size_t(t) * D + i]));
  }
  EXPECT_LT(worst, 2e-5);
}

// One call with a decoding sequence (absorbed form) beside a fresh prompt
// (expanded form) gives each the rows it gets alone, in both numeric modes.
TEST_P(MlaReference, MixedFormsInOneBatchEqualSeparateCalls) {
  const LanguageConfig c = mla_config(GetParam());
  RandomWeights rw(11);
  AttentionMla attn = AttentionMla::load(rw.source(), "l.self_attn.", c);
  const int D = c.hidden_size, P = 7, T = 6;
  auto x = random_embeds(P + 1 + T, D, 5);
  for (Compute mode : {Compute::kF32, Compute::kBF16}) {
    SCOPED_TRACE(compute_name(mode));
    ThreadPool pool(2);
    const Ops ops{&kernels_best(), &pool, mode};
    const DType kv = kv_dtype_for(mode);
    auto prefill = [&](KVCache& cache) {
      const BatchSegment seg{&cache, 0, P, 0};
      std::vector<float> y(size_t(P) * D);
      attn.forward(x.data(), P, {&seg, 1}, 0, ops, y.data());
    };
    // Alone: a step of the first sequence, then the second's prompt.
    KVCache a1(c, 0, kv), b1(c, 0, kv);
    prefill(a1);
    std::vector<float> alone(size_t(1 + T) * D);
    const BatchSegment step{&a1, 0, 1, P}, prompt{&b1, 0, T, 0};
    ASSERT_FALSE(attn.prefers_expanded(step));
    ASSERT_TRUE(attn.prefers_expanded(prompt));
    attn.forward(x.data() + int64_t(P) * D, 1, {&step, 1}, 0, ops, alone.data());
    attn.forward(x.data() + int64_t(P + 1) * D, T, {&prompt, 1}, 0, ops, alone.data() + D);
    // Together, in both orders of the segments.
    for (bool step_first : {true, false}) {
      KVCache a2(c, 0, kv), b2(c, 0, kv);
      prefill(a2);
      std::vector<float> in(size_t(1 + T) * D), out(in.size()), want(in.size());
      const int step_row = step_first ? 0 : T, prompt_row = step_first ? 1 : 0;
      std::copy_n(x.data() + int64_t(P) * D, D, in.data() + int64_t(step_row) * D);
      std::copy_n(x.data() + int64_t(P + 1) * D, T * D, in.data() + int64_t(prompt_row) * D);
      std::copy_n(alone.data(), D, want.data() + int64_t(step_row) * D);
      std::copy_n(alone.data() + D, T * D, want.data() + int64_t(prompt_row) * D);
      std::vector<BatchSegment> segs = {{&a2, step_row, 1, P}, {&b2, prompt_row, T, 0}};
      if (!step_first) std::swap(segs[0], segs[1]);
      attn.forward(in.data(), 1 + T, segs, 0, ops, out.data());
      EXPECT_LE(test::diff(out.data(), want.data(), int64_t(out.size())).max_abs, 1e-6) << "step first " << step_first;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(QLora, MlaReference, ::testing::Values(0, 12));

// ---- Cached decoding, chunking ---------------------------------------------

class CachedDecoding : public ::testing::TestWithParam<bool> {};

TEST_P(CachedDecoding, EqualsFullRecomputation) {
  const LanguageConfig c = GetParam() ? mla_config(12) : mha_config();
  RandomWeights rw(11);
  LanguageModel lm(c, rw.source());
  Env env;
  const int T = 14, D = c.hidden_size, V = c.vocab_size;
  auto e = random_embeds(T, D, 5);
  KVCache full(c);
  Tensor want = lm.forward(e.data(), T, full, env.ops, LogitsMode::kAll);
  ASSERT_EQ(full.length(), T);

  // Prefix of 5, then one position at a time with the cache.
  KVCache inc(c);
  Tensor first = lm.forward(e.data(), 5, inc, env.ops, LogitsMode::kAll);
  double worst = test::diff(first.f32(), want.f32(), 5 * V).max_abs;
  for (int t = 5; t < T; t++) {
    Tensor l = lm.forward(e.data() + t * D, 1, inc, env.ops, LogitsMode::kLast);
    worst = std::max(worst, test::diff(l.f32(), want.f32() + t * V, V).max_abs);
  }
  EXPECT_LT(worst, 1e-5);
  EXPECT_EQ(inc.length(), T);

  for (int chunk : {1, 3, 13}) {
    KVCache ch(c);
    Tensor l = lm.forward(e.data(), T, ch, env.ops, LogitsMode::kAll, chunk);
    EXPECT_LT(test::diff(l.f32(), want.f32(), T * V).max_abs, 1e-5) << chunk;
  }
  KVCache last(c);
  Tensor l = lm.forward(e.data(), T, last, env.ops, LogitsMode::kLast, 4);
  ASSERT_EQ(l.dim(0), 1);
  EXPECT_LT(test::diff(l.f32(), want.f32() + (T - 1) * V, V).max_abs, 1e-5);
}

TEST_P(CachedDecoding, GreedyStepLogitsEqualRecomputedPrefixes) {
  const LanguageConfig c = GetParam() ? mla_config(0) : mha_config();
  RandomWeights rw(12);
  LanguageModel lm(c, rw.source());
  Env env;
  const int T = 6, D = c.hidden_size, V = c.vocab_size;
  auto e = random_embeds(T, D, 9);
  KVCache cache(c);
  test::GreedyRun g = test::greedy(lm, e.data(), T, cache, env.ops, 5);
  ASSERT_EQ(g.ids.size(), 5u);
  EXPECT_EQ(cache.length(), T + 4);
  // Recompute each step from scratch: prompt + generated ids so far, positions 0..T+i-1.
  std::vector<float> seq = e;
  for (int i = 0; i < 5; i++) {
    KVCache fresh(c);
    Tensor l = lm.forward(seq.data(), int(seq.size() / D), fresh, env.ops, LogitsMode::kLast);
    EXPECT_LT(test::diff(l.f32(), g.step_logits.data() + i * V, V).max_abs, 1e-5) << i;
    EXPECT_EQ(argmax(l.f32(), V), g.ids[i]);
    Tensor emb = lm.embed({g.ids[i]});
    seq.insert(seq.end(), emb.f32(), emb.f32() + D);
  }
  // step() continues the same cache: the next position after the last fed token.
  Tensor next = lm.step(g.ids.back(), cache, env.ops);
  KVCache fresh(c);
  Tensor want = lm.forward(seq.data(), int(seq.size() / D), fresh, env.ops, LogitsMode::kLast);
  EXPECT_LT(test::diff(next.f32(), want.f32(), V).max_abs, 1e-5);
  EXPECT_EQ(cache.length(), T + 5);
}

INSTANTIATE_TEST_SUITE_P(Attention, CachedDecoding, ::testing::Values(false, true),
                         [](const auto& info) { return std::string(info.param ? "mla" : "mha"); });

// ---- bf16 KV cache; whole heads per thread --------------------------------

// Every ISA table this CPU runs: a bf16 cache rounds each key and value once,
// so greedy decoding stays within bf16 distance of the f32 cache, and the
// rows really are rounded (the logits are not bit-equal).
TEST_P(CachedDecoding, Bf16CacheTracksTheF32Cache) {
  const LanguageConfig c = GetParam() ? mla_config(0) : mha_config();
  RandomWeights rw(12);
  LanguageModel lm(c, rw.source());
  const int T = 7, D = c.hidden_size;
  auto e = random_embeds(T, D, 4);
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512}) {
    const KernelTable* k = kernels_for(isa);
    if (!k) continue;
    ThreadPool pool(2);
    const Ops ops{k, &pool, Compute::kF32};
    KVCache f32_cache(c, 0, DType::kF32), bf16_cache(c, 0, DType::kBF16);
    test::GreedyRun a = test::greedy(lm, e.data(), T, f32_cache, ops, 6);
    test::GreedyRun b = test::greedy(lm, e.data(), T, bf16_cache, ops, 6);
    ASSERT_EQ(a.step_logits.size(), b.step_logits.size());
    double max_ref = 0;
    for (float v : a.step_logits) max_ref = std::max(max_ref, double(std::fabs(v)));
    const test::DiffStats d = test::diff(b.step_logits.data(), a.step_logits.data(), int64_t(a.step_logits.size()));
    EXPECT_GT(d.max_abs, 0.0) << isa_name(isa);
    EXPECT_LT(d.max_abs, 2e-2 * max_ref) << isa_name(isa);
    EXPECT_EQ(a.ids[0], b.ids[0]) << isa_name(isa);
  }
}

// Decode steps run the MLA heads' absorbed projections (and the MoE's
// experts) whole on each thread; the values must not depend on the threads.
TEST_P(CachedDecoding, ThreadCountDoesNotChangeDecoding) {
  const LanguageConfig c = GetParam() ? mla_config(8) : mha_config();
  RandomWeights rw(3);
  LanguageModel lm(c, rw.source());
  const int T = 5, D = c.hidden_size;
  auto e = random_embeds(T, D, 2);
  std::vector<test::GreedyRun> runs;
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    const Ops ops{&kernels_best(), &pool, Compute::kF32};
    KVCache cache(c);
    runs.push_back(test::greedy(lm, e.data(), T, cache, ops, 6));
  }
  for (size_t i = 1; i < runs.size(); i++) {
    EXPECT_EQ(runs[i].ids, runs[0].ids);
    EXPECT_EQ(test::diff(runs[i].step_logits.data(), runs[0].step_logits.data(),
                         int64_t(runs[0].step_logits.size())).max_abs, 0.0) << i;
  }
}

// ---- Errors ------------------------------------------------------------------

TEST(DecoderErrors, EmptyPromptAndContextOverflow) {
  const LanguageConfig c = mla_config(12);
  RandomWeights rw(3);
  LanguageModel lm(c, rw.source());
  Env env;
  auto e = random_embeds(20, c.hidden_size, 1);
  KVCache cache(c, 16);
  EXPECT_EQ(cache.context(), 16);
  EXPECT_THROW(lm.forward(e.data(), 0, cache, env.ops), Error);
  EXPECT_THROW(lm.forward(e.data(), 17, cache, env.ops), Error);
  EXPECT_EQ(cache.length(), 0);  // nothing written on error
  lm.forward(e.data(), 16, cache, env.ops);
  EXPECT_EQ(cache.length(), 16);
  try {
    lm.forward(e.data(), 1, cache, env.ops);
    FAIL() << "expected an Error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("context length 16"), std::string::npos) << err.what();
  }
  EXPECT_EQ(cache.length(), 16);
  // Generation stops, with finish reason "length", when the cache is full:
  // 8 prompt positions + 2 fed tokens fill 10; the third token is not fed.
  KVCache small(c, 10);
  test::GreedyRun g = test::greedy(lm, e.data(), 8, small, env.ops, 4);
  EXPECT_EQ(g.ids.size(), 3u);
  EXPECT_EQ(g.finish_reason, "length");
  EXPECT_EQ(small.length(), 10);
  EXPECT_THROW(lm.forward(e.data(), 4, cache, env.ops, LogitsMode::kLast, 0), Error);
  // A prompt that does not fit is refused before any work, as too long.
  KVCache tiny(c, 4);
  try {
    test::greedy(lm, e.data(), 8, tiny, env.ops, 1);
    FAIL() << "expected an Error";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::kTooLong);
  }
  EXPECT_EQ(tiny.length(), 0);
}

TEST(DecoderErrors, BadCacheTokensAndContext) {
  const LanguageConfig c = mla_config(12);
  RandomWeights rw(3);
  LanguageModel lm(c, rw.source());
  Env env;
  EXPECT_THROW(KVCache(c, c.max_position_embeddings + 1), Error);
  KVCache wrong(mha_config());
  auto e = random_embeds(2, c.hidden_size, 1);
  EXPECT_THROW(lm.forward(e.data(), 2, wrong, env.ops), Error);
  EXPECT_THROW(lm.embed({0, c.vocab_size}), Error);
  EXPECT_THROW(lm.embed({-1}), Error);
  EXPECT_EQ(lm.embed({0, 1}).dim(0), 2);
}

TEST(DecoderErrors, MissingOrMisshapedWeightsNameTheTensor) {
  const LanguageConfig c = mla_config(12);
  RandomWeights rw(3);
  WeightSource inner = rw.source();
  WeightSource src = [&](const std::string& name, const Shape& s) {
    if (name == "language.model.layers.2.mlp.experts.5.up_proj.weight") throw Error(name + ": missing");
    return inner(name, s);
  };
  try {
    LanguageModel lm(c, src);
    FAIL() << "expected an Error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("experts.5.up_proj"), std::string::npos);
  }
  LanguageConfig mha = mha_config();
  mha.rope_scaling.type = "yarn";  // LlamaAttention has no yarn
  EXPECT_THROW(LanguageModel(mha, rw.source()), Error);
}

}  // namespace
}  // namespace dsvl2
