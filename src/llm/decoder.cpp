#include "llm/decoder.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace dsvl2 {

LanguageModel::~LanguageModel() = default;

LanguageModel::LanguageModel(const LanguageConfig& c, const WeightSource& src, const std::string& prefix) : cfg_(c) {
  DSVL2_REQUIRE(c.hidden_act == "silu", "language model: hidden_act \"%s\" is not supported", c.hidden_act.c_str());
  const int64_t D = c.hidden_size;
  const std::string m = prefix + "model.";
  embed_tokens_ = load_linear(src, m + "embed_tokens.weight", c.vocab_size, D);
  DSVL2_REQUIRE(!dtype_is_quantized(embed_tokens_.dtype), "%sembed_tokens.weight: must be F32, F16 or BF16, not %s",
                m.c_str(), dtype_name(embed_tokens_.dtype));
  lm_head_ = load_linear(src, prefix + "lm_head.weight", c.vocab_size, D);
  final_norm_ = load_vector(src, m + "norm.weight", D);
  layers_.resize(size_t(c.num_hidden_layers));
  for (int i = 0; i < c.num_hidden_layers; i++) {
    const std::string p = m + "layers." + std::to_string(i) + ".";
    Layer& L = layers_[size_t(i)];
    L.input_norm = load_vector(src, p + "input_layernorm.weight", D);
    L.post_norm = load_vector(src, p + "post_attention_layernorm.weight", D);
    if (c.use_mla)
      L.mla.emplace(AttentionMla::load(src, p + "self_attn.", c));
    else
      L.mha.emplace(AttentionMha::load(src, p + "self_attn.", c));
    if (c.is_moe_layer(i))
      L.moe.emplace(Moe::load(src, p + "mlp.", c));
    else
      L.dense.emplace(Mlp::load(src, p + "mlp.", D, c.intermediate_size));
  }
}

template <class F>
void LanguageModel::for_each_linear(F&& f) {
  for (Layer& L : layers_) {
    if (L.mla) L.mla->for_each_linear(f);
    if (L.mha) L.mha->for_each_linear(f);
    if (L.dense) L.dense->for_each_linear(f);
    if (L.moe) L.moe->for_each_linear(f);
  }
  f(lm_head_);
}

size_t LanguageModel::prepare(const Ops& ops, const ReleaseSource& release) {
  DSVL2_REQUIRE(!prepared_, "language model: prepare() was already called");
  prepared_ = true;
  std::vector<Weight*> ws;
  for_each_linear([&](Weight& w) { ws.push_back(&w); });
  size_t bytes = 0;
  packed_ = prepack_weights(ws, ops, release, &bytes);
  return bytes;
}

void LanguageModel::embed(const int* ids, int T, float* out) const {
  const int64_t D = cfg_.hidden_size;
  for (int t = 0; t < T; t++) {
    DSVL2_REQUIRE(ids[t] >= 0 && ids[t] < cfg_.vocab_size, "token id %d at position %d is outside the vocabulary (%d)",
                  ids[t], t, cfg_.vocab_size);
    float* o = out + t * D;
    const size_t es = dtype_size(embed_tokens_.dtype);
    const void* row = static_cast<const uint8_t*>(embed_tokens_.data) + size_t(ids[t]) * D * es;
    TensorView v{embed_tokens_.dtype, {D}, row, size_t(D) * es};
    Tensor f = to_f32(v);
    std::memcpy(o, f.f32(), size_t(D) * 4);
  }
}

Tensor LanguageModel::embed(const std::vector<int>& ids) const {
  Tensor t = Tensor::f32({int64_t(ids.size()), cfg_.hidden_size});
  embed(ids.data(), int(ids.size()), t.f32());
  return t;
}

void LanguageModel::run_chunk(float* h, int T, KVCache& cache, const Ops& ops) const {
  const int64_t D = cfg_.hidden_size;
  const float eps = float(cfg_.rms_norm_eps);
  std::vector<float> xn(size_t(T * D)), out(size_t(T * D));
  for (size_t i = 0; i < layers_.size(); i++) {
    const Layer& L = layers_[i];
    ops.k->rms_norm(h, T, D, L.input_norm.f32(), eps, xn.data());
    if (L.mla)
      L.mla->forward(xn.data(), T, int(i), cache, ops, out.data());
    else
      L.mha->forward(xn.data(), T, int(i), cache, ops, out.data());
    for (int64_t j = 0; j < T * D; j++) h[j] += out[size_t(j)];
    ops.k->rms_norm(h, T, D, L.post_norm.f32(), eps, xn.data());
    if (L.moe)
      L.moe->forward(xn.data(), T, out.data(), ops);
    else
      L.dense->forward(xn.data(), T, out.data(), ops);
    for (int64_t j = 0; j < T * D; j++) h[j] += out[size_t(j)];
  }
  cache.advance(T);
}

Tensor LanguageModel::forward(const float* embeds, int T, KVCache& cache, const Ops& ops, LogitsMode mode,
                              int chunk) const {
  DSVL2_REQUIRE(T >= 1 && embeds, "language model: empty input (%d positions)", T);
  DSVL2_REQUIRE(chunk >= 1, "language model: prefill chunk %d must be >= 1", chunk);
  const int64_t kw = cfg_.use_mla ? int64_t(cfg_.kv_lora_rank) + cfg_.qk_rope_head_dim
                                  : int64_t(cfg_.num_key_value_heads) * cfg_.head_dim();
  DSVL2_REQUIRE(cache.layers() == cfg_.num_hidden_layers && cache.k_width() == kw,
                "language model: the KV cache was built for another model configuration");
  DSVL2_REQUIRE(int64_t(cache.length()) + T <= cache.context(),
                "prompt of %d positions after %d cached exceeds the context length %d", T, cache.length(),
                cache.context());
  cache.reserve(cache.length() + T);

  const int64_t D = cfg_.hidden_size, V = cfg_.vocab_size;
  Tensor logits;
  if (mode == LogitsMode::kAll) logits = Tensor::f32({T, V});
  if (mode == LogitsMode::kLast) logits = Tensor::f32({1, V});
  std::vector<float> h, xn;
  for (int t0 = 0; t0 < T; t0 += chunk) {
    const int n = std::min(chunk, T - t0);
    h.assign(embeds + int64_t(t0) * D, embeds + int64_t(t0 + n) * D);
    run_chunk(h.data(), n, cache, ops);
    if (mode == LogitsMode::kAll) {
      xn.resize(size_t(n * D));
      ops.k->rms_norm(h.data(), n, D, final_norm_.f32(), float(cfg_.rms_norm_eps), xn.data());
      ops.linear(xn.data(), n, lm_head_, nullptr, logits.f32() + int64_t(t0) * V);
    } else if (mode == LogitsMode::kLast && t0 + n == T) {
      xn.resize(size_t(D));
      ops.k->rms_norm(h.data() + int64_t(n - 1) * D, 1, D, final_norm_.f32(), float(cfg_.rms_norm_eps), xn.data());
      ops.linear(xn.data(), 1, lm_head_, nullptr, logits.f32());
    }
  }
  return logits;
}

Tensor LanguageModel::step(int token, KVCache& cache, const Ops& ops) const {
  std::vector<float> e(static_cast<size_t>(cfg_.hidden_size));
  embed(&token, 1, e.data());
  return forward(e.data(), 1, cache, ops, LogitsMode::kLast);
}

GreedyResult generate_greedy(const LanguageModel& lm, const float* prompt_embeds, int T, KVCache& cache, const Ops& ops,
                             const GenerateOptions& opt) {
  DSVL2_REQUIRE(opt.max_new_tokens >= 1, "generate: max_new_tokens %d must be >= 1", opt.max_new_tokens);
  // The last generated token is never fed back, so the cache needs T + n - 1 positions.
  const int64_t need = int64_t(cache.length()) + T + opt.max_new_tokens - 1;
  DSVL2_REQUIRE(need <= cache.context(), "prompt of %d positions plus %d new tokens exceeds the context length %d", T,
                opt.max_new_tokens, cache.context());
  const int64_t V = lm.config().vocab_size;
  GreedyResult r;
  Tensor all = Tensor::f32({opt.max_new_tokens, V});
  Tensor logits = lm.forward(prompt_embeds, T, cache, ops, LogitsMode::kLast, opt.prefill_chunk);
  for (int i = 0; i < opt.max_new_tokens; i++) {
    std::memcpy(all.f32() + i * V, logits.f32(), size_t(V) * 4);
    const int id = argmax(logits.f32(), V);
    r.ids.push_back(id);
    if (id == opt.stop_token || i + 1 == opt.max_new_tokens) break;
    logits = lm.step(id, cache, ops);
  }
  r.step_logits = Tensor::f32({int64_t(r.ids.size()), V});
  std::memcpy(r.step_logits.f32(), all.f32(), size_t(r.ids.size() * V) * 4);
  return r;
}

}  // namespace dsvl2
