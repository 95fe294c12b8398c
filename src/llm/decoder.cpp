#include "llm/decoder.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/scratch.h"
#include "ops/quant.h"

namespace dsvl2 {

LanguageModel::~LanguageModel() = default;

LanguageModel::LanguageModel(const LanguageConfig& c, const WeightSource& src, const std::string& prefix) : cfg_(c) {
  DSVL2_REQUIRE(c.hidden_act == "silu", "language model: hidden_act \"%s\" is not supported", c.hidden_act.c_str());
  const int64_t D = c.hidden_size;
  const std::string m = prefix + "model.";
  // Any matmul dtype; quantized rows are dequantized one token at a time.
  embed_tokens_ = load_linear(src, m + "embed_tokens.weight", c.vocab_size, D);
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
void LanguageModel::for_each_block(F&& f) {
  for (Layer& L : layers_) {
    if (L.mla) f(*L.mla);
    if (L.mha) f(*L.mha);
    if (L.dense) f(*L.dense);
    if (L.moe) f(*L.moe);
  }
}

size_t LanguageModel::prepare(const Ops& ops, const ReleaseSource& release) {
  DSVL2_REQUIRE(!prepared_, "language model: prepare() was already called");
  prepared_ = true;
  std::vector<Weight*> ws;
  std::vector<FuseGroup> groups;
  auto add_weight = [&](Weight& w) { ws.push_back(&w); };
  auto add_group = [&](FuseGroup g) { groups.push_back(std::move(g)); };
  for_each_block([&](auto& block) {
    block.for_each_linear(add_weight);
    block.for_each_fusable(add_group);
  });
  ws.push_back(&lm_head_);
  size_t bytes = 0;
  packed_ = prepack_weights(ws, groups, ops, release, &bytes);
  return bytes;
}

void LanguageModel::embed(const int* ids, int T, float* out) const {
  const int64_t D = cfg_.hidden_size;
  for (int t = 0; t < T; t++) {
    DSVL2_REQUIRE(ids[t] >= 0 && ids[t] < cfg_.vocab_size, "token id %d at position %d is outside the vocabulary (%d)",
                  ids[t], t, cfg_.vocab_size);
    float* o = out + t * D;
    uint64_t row_bytes = 0;
    DSVL2_CHECK(dtype_bytes(embed_tokens_.dtype, D, &row_bytes), "embed_tokens: rows of %lld are not whole blocks",
                (long long)D);
    const void* row = static_cast<const uint8_t*>(embed_tokens_.data) + size_t(ids[t]) * size_t(row_bytes);
    if (dtype_is_quantized(embed_tokens_.dtype)) {
      dequantize_blocks(embed_tokens_.dtype, row, D, o);
      continue;
    }
    Tensor f = to_f32(TensorView{embed_tokens_.dtype, {D}, row, size_t(row_bytes)});
    std::memcpy(o, f.f32(), size_t(D) * 4);
  }
}

Tensor LanguageModel::embed(const std::vector<int>& ids) const {
  Tensor t = Tensor::f32({int64_t(ids.size()), cfg_.hidden_size});
  embed(ids.data(), int(ids.size()), t.f32());
  return t;
}

std::vector<BatchSegment> LanguageModel::plan(const Batch& b) const {
  DSVL2_REQUIRE(b.rows() >= 1, "language model: empty batch");
  DSVL2_REQUIRE(b.hidden() == cfg_.hidden_size, "language model: batch rows of width %lld, the model's is %lld",
                (long long)b.hidden(), (long long)cfg_.hidden_size);
  const int64_t kw = cfg_.use_mla ? int64_t(cfg_.kv_lora_rank) + cfg_.qk_rope_head_dim
                                  : int64_t(cfg_.num_key_value_heads) * cfg_.head_dim();
  std::vector<BatchSegment> segs;
  std::vector<char> seen(size_t(b.sequences()), 0);
  const auto& rows = b.row_list();
  for (int r = 0; r < b.rows(); r++) {
    const BatchRow& row = rows[size_t(r)];
    if (row.token >= 0 || row.embed < 0)
      DSVL2_REQUIRE(row.token >= 0 && row.token < cfg_.vocab_size,
                    "token id %d at position %d is outside the vocabulary (%d)", row.token, row.pos, cfg_.vocab_size);
    if (!segs.empty() && segs.back().cache == &b.cache(row.seq)) {
      BatchSegment& s = segs.back();
      DSVL2_REQUIRE(row.pos == s.pos0 + s.n, "batch: row %d of a sequence is at position %d, expected %d", r, row.pos,
                    s.pos0 + s.n);
      s.n++;
      continue;
    }
    DSVL2_REQUIRE(!seen[size_t(row.seq)], "batch: the rows of sequence %d are not contiguous", row.seq);
    seen[size_t(row.seq)] = 1;
    KVCache& c = b.cache(row.seq);
    DSVL2_REQUIRE(c.layers() == cfg_.num_hidden_layers && c.k_width() == kw,
                  "language model: the KV cache was built for another model configuration");
    DSVL2_REQUIRE(row.pos >= 0 && row.pos <= c.length(),
                  "batch: sequence %d starts at position %d but its cache holds %d positions", row.seq, row.pos,
                  c.length());
    for (const BatchSegment& s : segs)
      DSVL2_REQUIRE(s.cache != &c, "batch: two sequences share one KV cache");
    segs.push_back({&c, r, 1, row.pos});
  }
  for (const BatchSegment& s : segs)
    if (int64_t(s.pos0) + s.n > s.cache->context())
      DSVL2_FAIL_KIND(kTooLong, "%d positions after %d cached exceed the context length %d", s.n, s.pos0,
                      s.cache->context());
  return segs;
}

Tensor LanguageModel::forward(const Batch& b, const Ops& ops) const {
  const std::vector<BatchSegment> segs = plan(b);
  const int N = b.rows();
  const int64_t D = cfg_.hidden_size, V = cfg_.vocab_size;
  const float eps = float(cfg_.rms_norm_eps);
  auto h = scratch_array<float>(size_t(N * D)), xn = scratch_array<float>(size_t(N * D)),
       out = scratch_array<float>(size_t(N * D));
  const auto& rows = b.row_list();
  for (int r = 0; r < N; r++) {
    const BatchRow& row = rows[size_t(r)];
    if (row.token >= 0)
      embed(&row.token, 1, h.get() + r * D);
    else
      std::memcpy(h.get() + r * D, b.embedding(row.embed), size_t(D) * 4);
  }
  // From here on caches are written: positions at and after each pos0 go.
  for (const BatchSegment& s : segs) s.cache->truncate(s.pos0);
  for (size_t i = 0; i < layers_.size(); i++) {
    const Layer& L = layers_[i];
    ops.k->rms_norm(h.get(), N, D, L.input_norm.f32(), eps, xn.get());
    if (L.mla)
      L.mla->forward(xn.get(), N, segs, int(i), ops, out.get());
    else
      L.mha->forward(xn.get(), N, segs, int(i), ops, out.get());
    for (int64_t j = 0; j < N * D; j++) h[j] += out[j];
    ops.k->rms_norm(h.get(), N, D, L.post_norm.f32(), eps, xn.get());
    if (L.moe)
      L.moe->forward(xn.get(), N, out.get(), ops);
    else
      L.dense->forward(xn.get(), N, out.get(), ops);
    for (int64_t j = 0; j < N * D; j++) h[j] += out[j];
  }
  for (const BatchSegment& s : segs) s.cache->advance(s.n);

  Tensor logits;
  const int L = b.logit_rows();
  if (L == 0) return logits;
  logits = Tensor::f32({L, V});
  std::vector<float> sel(size_t(L * D));
  int l = 0;
  for (int r = 0; r < N; r++)
    if (rows[size_t(r)].logits) std::memcpy(sel.data() + int64_t(l++) * D, h.get() + r * D, size_t(D) * 4);
  ops.k->rms_norm(sel.data(), L, D, final_norm_.f32(), eps, xn.get());
  ops.linear(xn.get(), L, lm_head_, nullptr, logits.f32());
  return logits;
}

Tensor LanguageModel::forward(const float* embeds, int T, KVCache& cache, const Ops& ops, LogitsMode mode,
                              int chunk) const {
  DSVL2_REQUIRE(T >= 1 && embeds, "language model: empty input (%d positions)", T);
  DSVL2_REQUIRE(chunk >= 1, "language model: prefill chunk %d must be >= 1", chunk);
  if (int64_t(cache.length()) + T > cache.context())
    DSVL2_FAIL_KIND(kTooLong, "a prompt of %d positions after %d cached exceeds the context length %d", T,
                    cache.length(), cache.context());
  const int64_t D = cfg_.hidden_size, V = cfg_.vocab_size;
  Tensor logits;
  if (mode == LogitsMode::kAll) logits = Tensor::f32({T, V});
  if (mode == LogitsMode::kLast) logits = Tensor::f32({1, V});
  Batch b(D);
  for (int t0 = 0; t0 < T; t0 += chunk) {
    const int n = std::min(chunk, T - t0);
    b.clear();
    const int s = b.add_sequence(cache);
    b.add_embeddings(s, embeds + int64_t(t0) * D, n, cache.length(), mode == LogitsMode::kLast && t0 + n == T,
                     mode == LogitsMode::kAll);
    Tensor l = forward(b, ops);
    if (mode == LogitsMode::kAll)
      std::memcpy(logits.f32() + int64_t(t0) * V, l.f32(), size_t(n) * V * 4);
    else if (b.logit_rows() > 0)
      std::memcpy(logits.f32(), l.f32(), size_t(V) * 4);
  }
  return logits;
}

Tensor LanguageModel::step(int token, KVCache& cache, const Ops& ops) const {
  Batch b(cfg_.hidden_size);
  b.add_token(b.add_sequence(cache), token, cache.length(), true);
  return forward(b, ops);
}

}  // namespace dsvl2
