#include "llm/attention_mla.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "core/error.h"
#include "core/scratch.h"
#include "ops/spread.h"

namespace dsvl2 {

namespace {
const float* opt(const Tensor& t) { return t.data() ? t.f32() : nullptr; }  // absent bias
constexpr float kLoraNormEps = 1e-6f;  // DeepseekV2RMSNorm default, not rms_norm_eps

// Decode-sized rows: a head's absorbed projection is a 128 KB matrix-vector
// product, so whole heads go to the threads (one parallel region per layer
// and phase instead of one per head); prompt-sized rows split each product.
constexpr int kHeadsPerThreadRows = 8;

void for_each_head(int N, const Ops& ops, int H, const std::function<void(int, const Ops&)>& fn) {
  if (N <= kHeadsPerThreadRows) {
    const std::vector<int64_t> cost(size_t(H), 1);
    if (spread_items(ops, cost, fn)) return;
  }
  for (int h = 0; h < H; h++) fn(h, ops);
}
}  // namespace

AttentionMla AttentionMla::load(const WeightSource& src, const std::string& prefix, const LanguageConfig& c) {
  AttentionMla a(Rope(c.qk_rope_head_dim, c.rope_theta, c.rope_scaling));
  a.H_ = c.num_attention_heads;
  a.nope_ = c.qk_nope_head_dim;
  a.rope_dim_ = c.qk_rope_head_dim;
  a.v_dim_ = c.v_head_dim;
  a.lora_ = c.kv_lora_rank;
  a.q_lora_ = c.q_lora_rank;
  a.hidden_ = c.hidden_size;
  const int64_t qhd = a.nope_ + a.rope_dim_, D = c.hidden_size;
  double scale = std::pow(double(qhd), -0.5);
  if (c.rope_scaling.type == "yarn" && c.rope_scaling.mscale_all_dim != 0) {
    double m = yarn_get_mscale(c.rope_scaling.factor, c.rope_scaling.mscale_all_dim);
    scale = scale * m * m;
  }
  a.scale_ = float(scale);

  if (a.q_lora_ == 0) {
    a.q_ = load_linear(src, prefix + "q_proj.weight", a.H_ * qhd, D);
  } else {
    a.q_a_ = load_linear(src, prefix + "q_a_proj.weight", a.q_lora_, D);
    a.q_a_norm_ = load_vector(src, prefix + "q_a_layernorm.weight", a.q_lora_);
    a.q_b_ = load_linear(src, prefix + "q_b_proj.weight", a.H_ * qhd, a.q_lora_);
    if (c.attention_bias) a.q_a_bias_ = load_vector(src, prefix + "q_a_proj.bias", a.q_lora_);
  }
  a.kv_a_ = load_linear(src, prefix + "kv_a_proj_with_mqa.weight", a.lora_ + a.rope_dim_, D);
  a.kv_a_norm_ = load_vector(src, prefix + "kv_a_layernorm.weight", a.lora_);
  a.kv_b_ = load_linear(src, prefix + "kv_b_proj.weight", int64_t(a.H_) * (a.nope_ + a.v_dim_), a.lora_);
  a.o_ = load_linear(src, prefix + "o_proj.weight", D, int64_t(a.H_) * a.v_dim_);
  if (c.attention_bias) {
    a.kv_a_bias_ = load_vector(src, prefix + "kv_a_proj_with_mqa.bias", a.lora_ + a.rope_dim_);
    a.o_bias_ = load_vector(src, prefix + "o_proj.bias", D);
  }

  // The absorbed query needs kv_b's rows regrouped, element by element.
  DSVL2_REQUIRE(!dtype_is_quantized(a.kv_b_.dtype), "%skv_b_proj.weight: must be F32, F16 or BF16, not %s",
                prefix.c_str(), dtype_name(a.kv_b_.dtype));
  // W_uk[h] = kv_b rows [h*(nope+v), h*(nope+v)+nope) x kv_lora; store its transpose.
  const size_t es = dtype_size(a.kv_b_.dtype);
  a.uk_t_ = Tensor(a.kv_b_.dtype, {a.H_, a.lora_, a.nope_});
  const auto* srcb = static_cast<const uint8_t*>(a.kv_b_.data);
  auto* dst = static_cast<uint8_t*>(a.uk_t_.data());
  for (int h = 0; h < a.H_; h++)
    for (int i = 0; i < a.nope_; i++)
      for (int l = 0; l < a.lora_; l++) {
        const size_t from = (size_t(h) * (a.nope_ + a.v_dim_) + i) * a.lora_ + l;
        const size_t to = (size_t(h) * a.lora_ + l) * a.nope_ + i;
        std::memcpy(dst + to * es, srcb + from * es, es);
      }
  return a;
}

void AttentionMla::forward(const float* x, int N, std::span<const BatchSegment> segs, int layer, const Ops& ops,
                           float* y) const {
  const int64_t qhd = nope_ + rope_dim_, kvw = lora_ + rope_dim_;
  const int64_t qw = int64_t(H_) * qhd;

  // The products of x: the query's first projection and kv_a, fused when
  // there are no biases.
  auto q = scratch_array<float>(size_t(N * qw)), raw = scratch_array<float>(size_t(N * kvw));
  std::vector<float> qa;
  if (q_lora_) qa.resize(size_t(N) * q_lora_);
  float* q_first = q_lora_ ? qa.data() : q.get();
  if (q_a_bias_.data() || kv_a_bias_.data()) {
    ops.linear(x, N, q_lora_ ? q_a_ : q_, opt(q_a_bias_), q_first);
    ops.linear(x, N, kv_a_, opt(kv_a_bias_), raw.get());
  } else {
    linear_parts(ops, x, N, q_kv_a_, {q_lora_ ? &q_a_ : &q_, &kv_a_}, {q_first, raw.get()});
  }
  // Queries.
  if (q_lora_) {
    std::vector<float> qn(qa.size());
    ops.k->rms_norm(qa.data(), N, q_lora_, q_a_norm_.f32(), kLoraNormEps, qn.data());
    ops.linear(qn.data(), N, q_b_, nullptr, q.get());
  }
  // Compressed kv into each sequence's cache rows: [c | k_pe], normalise c, rope k_pe.
  std::vector<float> kv;
  for (const BatchSegment& s : segs) {
    kv.resize(size_t(s.n * kvw));
    for (int t = 0; t < s.n; t++) {
      const float* r = raw.get() + int64_t(s.row0 + t) * kvw;
      ops.k->rms_norm(r, 1, lora_, kv_a_norm_.f32(), kLoraNormEps, kv.data() + t * kvw);
      std::memcpy(kv.data() + t * kvw + lora_, r + lora_, size_t(rope_dim_) * 4);
    }
    rope_.apply(kv.data() + lora_, s.n, 1, kvw, 0, s.pos0, RopeStyle::kInterleaved);
    s.cache->write_k(layer, s.pos0, kv.data(), s.n);
    rope_.apply(q.get() + int64_t(s.row0) * qw + nope_, s.n, H_, qw, qhd, s.pos0, RopeStyle::kInterleaved);
  }

  // Attention per run of adjacent segments that take the absorbed form, or per
  // segment in the expanded form; either writes the heads' outputs into att.
  const int64_t ow = int64_t(H_) * v_dim_;
  auto att = scratch_array<float>(size_t(N * ow));  // every row written below
  for (size_t i = 0; i < segs.size();) {
    if (prefers_expanded(segs[i])) {
      attend_expanded(q.get(), segs[i++], layer, ops, att.get());
      continue;
    }
    size_t j = i + 1;
    while (j < segs.size() && !prefers_expanded(segs[j]) && segs[j].row0 == segs[j - 1].row0 + segs[j - 1].n) j++;
    attend_absorbed(q.get(), segs.subspan(i, j - i), layer, ops, att.get());
    i = j;
  }
  ops.linear(att.get(), N, o_, opt(o_bias_), y);
}

// Multiply-adds a head spends on a segment in each form (the projections both
// share are left out). Absorbed: q_nope W_uk and the output's W_uv for its own
// rows, then (q . [c | k_pe]) and (p . c) over kv_lora + rope and kv_lora.
// Expanded: kv_b over every cached position, then q . k and p . v over
// nope + rope and v. A fresh prompt (pos0 = 0) is cheaper expanded whenever
// 2 kv_lora > nope + v (every released model: 1024 > 256); a decode step after
// a prefix, absorbed.
bool AttentionMla::prefers_expanded(const BatchSegment& s) const {
  const double pairs = double(s.n) * s.pos0 + 0.5 * double(s.n) * (s.n + 1);  // causal (query, key) pairs
  const double per_position = double(lora_) * (nope_ + v_dim_);               // kv_b (or W_uk and W_uv) a row
  const double absorbed = s.n * per_position + pairs * (2.0 * lora_ + rope_dim_);
  const double expanded = (double(s.pos0) + s.n) * per_position + pairs * (nope_ + rope_dim_ + v_dim_);
  return expanded < absorbed;
}

// The weight-absorbed form over adjacent segments (rows r0 .. r1): MQA of the
// absorbed queries over each cache's [c | k_pe], up-projected per head.
void AttentionMla::attend_absorbed(const float* q, std::span<const BatchSegment> run, int layer, const Ops& ops,
                                   float* att) const {
  const int64_t qhd = nope_ + rope_dim_, kvw = lora_ + rope_dim_, qw = int64_t(H_) * qhd, ow = int64_t(H_) * v_dim_;
  const int r0 = run.front().row0, N = run.back().row0 + run.back().n - r0;
  q += int64_t(r0) * qw;
  att += int64_t(r0) * ow;

  // Absorbed queries [N, H, kv_lora + rope] = [q_nope W_uk | q_pe].
  auto qc = scratch_array<float>(size_t(N) * H_ * kvw);  // every head's full row written below
  const size_t es = dtype_size(uk_t_.dtype());
  auto absorb_head = [&](int h, const Ops& o) {
    std::vector<float> qn(size_t(N) * nope_), qa(size_t(N) * lora_);
    for (int t = 0; t < N; t++) {
      const float* src = q + t * qw + h * qhd;
      std::memcpy(qn.data() + int64_t(t) * nope_, src, size_t(nope_) * 4);
      std::memcpy(qc.get() + (int64_t(t) * H_ + h) * kvw + lora_, src + nope_, size_t(rope_dim_) * 4);
    }
    Weight uk{uk_t_.dtype(), lora_, nope_, static_cast<const uint8_t*>(uk_t_.data()) + size_t(h) * lora_ * nope_ * es};
    o.linear(qn.data(), N, uk, nullptr, qa.data());
    for (int t = 0; t < N; t++)
      std::memcpy(qc.get() + (int64_t(t) * H_ + h) * kvw, qa.data() + int64_t(t) * lora_, size_t(lora_) * 4);
  };
  for_each_head(N, ops, H_, absorb_head);

  // MQA over each cache: keys [c | k_pe], values c. Output per head [H, N, kv_lora].
  std::vector<float> lat(size_t(H_) * N * lora_);
  for (const BatchSegment& s : run) {
    AttentionArgs a;
    a.q = qc.get() + int64_t(s.row0 - r0) * H_ * kvw;
    a.q_stride_t = int64_t(H_) * kvw;
    a.q_stride_h = kvw;
    set_cache_kv(*s.cache, layer, &a);  // values: the first kv_lora of each key row
    a.k_stride_s = kvw;
    a.k_stride_h = 0;
    a.v_stride_s = kvw;
    a.v_stride_h = 0;
    a.out = lat.data() + int64_t(s.row0 - r0) * lora_;
    a.o_stride_t = lora_;
    a.o_stride_h = int64_t(N) * lora_;
    a.T = s.n;
    a.S = s.pos0 + s.n;
    a.H = H_;
    a.Hkv = 1;
    a.Dk = int(kvw);
    a.Dv = lora_;
    a.scale = scale_;
    a.causal = true;
    a.q_pos0 = s.pos0;
    // f32 dot products in both modes: the 576-wide absorbed queries rounded to
    // bf16 flip a greedy token of the small_like golden case.
    ops.attention(a);
  }

  // Up-project the latent output per head with W_uv.
  const size_t kes = dtype_size(kv_b_.dtype);
  auto up_project_head = [&](int h, const Ops& o) {
    std::vector<float> vh(size_t(N) * v_dim_);
    const auto* base = static_cast<const uint8_t*>(kv_b_.data) + (size_t(h) * (nope_ + v_dim_) + nope_) * lora_ * kes;
    Weight uv{kv_b_.dtype, v_dim_, lora_, base};
    o.linear(lat.data() + int64_t(h) * N * lora_, N, uv, nullptr, vh.data());
    for (int t = 0; t < N; t++)
      std::memcpy(att + t * ow + int64_t(h) * v_dim_, vh.data() + int64_t(t) * v_dim_, size_t(v_dim_) * 4);
  };
  for_each_head(N, ops, H_, up_project_head);
}

// The checkpoint's own form for one segment: every cached c up-projected by
// kv_b into per-head keys [k_nope | k_pe] and values, then multi-head attention.
void AttentionMla::attend_expanded(const float* q, const BatchSegment& s, int layer, const Ops& ops,
                                   float* att) const {
  const int64_t qhd = nope_ + rope_dim_, qw = int64_t(H_) * qhd, ow = int64_t(H_) * v_dim_;
  const int64_t kvb_w = nope_ + v_dim_, S = s.pos0 + s.n;
  const KVCache& cache = *s.cache;
  // c of every position as f32 rows, then kv_b: [S, H, nope + v].
  auto c = scratch_array<float>(size_t(S * lora_));
  auto kvb = scratch_array<float>(size_t(S * H_ * kvb_w));
  auto k = scratch_array<float>(size_t(S * H_ * qhd));
  auto cached_row = [&](int64_t p, int64_t from, int64_t n, float* dst) {
    const void* row = cache.k_at(layer, int(p));
    if (cache.dtype() == DType::kBF16) bf16_to_f32_row(static_cast<const uint16_t*>(row) + from, n, dst);
    else std::memcpy(dst, static_cast<const float*>(row) + from, size_t(n) * 4);
  };
  ops.pool->parallel_for(S, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; p++) cached_row(p, 0, lora_, c.get() + p * lora_);
  }, 64);
  ops.linear(c.get(), S, kv_b_, nullptr, kvb.get());
  ops.pool->parallel_for(S, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; p++) {
      float* kp = k.get() + p * H_ * qhd;
      cached_row(p, lora_, rope_dim_, kp + nope_);  // k_pe, shared by the heads
      for (int h = 0; h < H_; h++) {
        std::memcpy(kp + h * qhd, kvb.get() + (p * H_ + h) * kvb_w, size_t(nope_) * 4);
        if (h > 0) std::memcpy(kp + h * qhd + nope_, kp + nope_, size_t(rope_dim_) * 4);
      }
    }
  }, 16);

  AttentionArgs a;
  a.q = q + int64_t(s.row0) * qw;
  a.q_stride_t = qw;
  a.q_stride_h = qhd;
  a.k = k.get();
  a.k_stride_s = int64_t(H_) * qhd;
  a.k_stride_h = qhd;
  a.v = kvb.get() + nope_;
  a.v_stride_s = int64_t(H_) * kvb_w;
  a.v_stride_h = kvb_w;
  a.out = att + int64_t(s.row0) * ow;
  a.o_stride_t = ow;
  a.o_stride_h = v_dim_;
  a.T = s.n;
  a.S = int(S);
  a.H = a.Hkv = H_;
  a.Dk = int(qhd);
  a.Dv = v_dim_;
  a.scale = scale_;
  a.causal = true;
  a.q_pos0 = s.pos0;
  // bf16 dot products in the fast mode, as MHA prompts: golden small_like /
  // base_like bf16 logits' mean error 0.0075-0.0256 with f32 absorbed prompt
  // attention, 0.0068-0.0235 with this.
  a.compute = ops.compute;
  ops.attention(a);
}

}  // namespace dsvl2
