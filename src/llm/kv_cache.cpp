#include "llm/kv_cache.h"

#include <algorithm>

#include "core/error.h"

namespace dsvl2 {

KVCache::KVCache(const LanguageConfig& c, int context) {
  DSVL2_REQUIRE(context <= c.max_position_embeddings, "context %d exceeds the model's max_position_embeddings %d",
                context, c.max_position_embeddings);
  context_ = context > 0 ? context : c.max_position_embeddings;
  if (c.use_mla) {
    k_width_ = int64_t(c.kv_lora_rank) + c.qk_rope_head_dim;
  } else {
    k_width_ = int64_t(c.num_key_value_heads) * c.head_dim();
    v_width_ = k_width_;
  }
  k_.resize(size_t(c.num_hidden_layers));
  v_.resize(size_t(c.num_hidden_layers));
}

void KVCache::truncate(int n) {
  DSVL2_REQUIRE(n >= 0 && n <= length_, "kv cache: cannot truncate %d positions to %d", length_, n);
  length_ = n;
}

void KVCache::reserve(int n) {
  DSVL2_REQUIRE(n <= context_, "sequence of %d positions exceeds the context length %d", n, context_);
  if (n <= capacity_) return;
  int cap = std::min(context_, std::max({n, capacity_ * 2, 256}));
  for (auto& k : k_) k.resize(size_t(int64_t(cap) * k_width_));
  for (auto& v : v_) v.resize(size_t(int64_t(cap) * v_width_));
  capacity_ = cap;
}

void KVCache::advance(int n) {
  DSVL2_CHECK(n >= 0 && length_ + n <= capacity_, "kv cache: advance %d past capacity %d", n, capacity_);
  length_ += n;
}

size_t KVCache::bytes() const {
  size_t n = 0;
  for (auto& k : k_) n += k.size() * sizeof(float);
  for (auto& v : v_) n += v.size() * sizeof(float);
  return n;
}

}  // namespace dsvl2
