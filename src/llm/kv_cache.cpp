#include "llm/kv_cache.h"

#include "core/error.h"

namespace dsvl2 {

namespace {
int64_t k_width_of(const LanguageConfig& c) {
  return c.use_mla ? int64_t(c.kv_lora_rank) + c.qk_rope_head_dim : int64_t(c.num_key_value_heads) * c.head_dim();
}
int64_t v_width_of(const LanguageConfig& c) { return c.use_mla ? 0 : k_width_of(c); }
}  // namespace

size_t KVCache::bytes_for(const LanguageConfig& c, int positions) {
  return size_t(c.num_hidden_layers) * size_t(positions) * size_t(k_width_of(c) + v_width_of(c)) * sizeof(float);
}

KVCache::KVCache(const LanguageConfig& c, int context) {
  if (context > c.max_position_embeddings)
    DSVL2_FAIL_KIND(kTooLong, "a context of %d positions exceeds the model's max_position_embeddings %d", context,
                    c.max_position_embeddings);
  context_ = context > 0 ? context : c.max_position_embeddings;
  layers_ = c.num_hidden_layers;
  k_width_ = k_width_of(c);
  v_width_ = v_width_of(c);
  bytes_ = bytes_for(c, context_);
  const size_t k_bytes = size_t(layers_) * size_t(context_) * size_t(k_width_) * sizeof(float);
  const size_t v_bytes = size_t(layers_) * size_t(context_) * size_t(v_width_) * sizeof(float);
  auto aligned = [](size_t n) { return (n + 63) & ~size_t(63); };  // Arena::take's alignment
  mem_ = std::make_unique<Arena>(aligned(k_bytes) + aligned(v_bytes), /*huge_pages=*/false);
  k_ = static_cast<float*>(mem_->take(k_bytes));
  if (v_bytes > 0) v_ = static_cast<float*>(mem_->take(v_bytes));
}

void KVCache::truncate(int n) {
  DSVL2_REQUIRE(n >= 0 && n <= length_, "kv cache: cannot truncate %d positions to %d", length_, n);
  length_ = n;
}

void KVCache::advance(int n) {
  DSVL2_CHECK(n >= 0 && length_ + n <= context_, "kv cache: advance %d past capacity %d", n, context_);
  length_ += n;
}

KVCachePool::KVCachePool(const LanguageConfig& config, size_t budget_bytes) : config_(config), budget_(budget_bytes) {}

size_t KVCachePool::used() const {
  std::lock_guard<std::mutex> lk(mu_);
  return used_;
}

bool KVCachePool::can_admit(int positions) const {
  if (positions < 1 || positions > config_.max_position_embeddings) return false;
  std::lock_guard<std::mutex> lk(mu_);
  return cost(positions) <= budget_ - used_;
}

KVCachePool::Lease KVCachePool::acquire(int positions) {
  DSVL2_REQUIRE(positions >= 1, "kv cache pool: a cache needs at least one position, not %d", positions);
  if (positions > config_.max_position_embeddings)
    DSVL2_FAIL_KIND(kTooLong, "a sequence of %d positions exceeds the model's context of %d", positions,
                    config_.max_position_embeddings);
  const size_t need = cost(positions);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (need > budget_ - used_)
      DSVL2_FAIL_KIND(kOutOfResources, "the KV cache budget of %zu bytes has %zu left; %d positions need %zu", budget_,
                      budget_ - used_, positions, need);
    used_ += need;
  }
  Lease l;
  l.pool_ = this;
  try {
    l.cache_ = std::make_unique<KVCache>(config_, positions);
  } catch (...) {
    give_back(need);
    l.pool_ = nullptr;
    throw;
  }
  return l;
}

void KVCachePool::give_back(size_t bytes) {
  std::lock_guard<std::mutex> lk(mu_);
  used_ -= bytes;
}

KVCachePool::Lease::Lease(Lease&& o) noexcept : pool_(o.pool_), cache_(std::move(o.cache_)) { o.pool_ = nullptr; }

KVCachePool::Lease& KVCachePool::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    reset();
    pool_ = o.pool_;
    cache_ = std::move(o.cache_);
    o.pool_ = nullptr;
  }
  return *this;
}

KVCachePool::Lease::~Lease() { reset(); }

void KVCachePool::Lease::reset() {
  if (pool_ && cache_) pool_->give_back(cache_->bytes());
  cache_.reset();
  pool_ = nullptr;
}

}  // namespace dsvl2
