#include "llm/kv_cache.h"

#include <cstring>

#include "core/error.h"

namespace dsvl2 {

namespace {
int64_t k_width_of(const LanguageConfig& c) {
  return c.use_mla ? int64_t(c.kv_lora_rank) + c.qk_rope_head_dim : int64_t(c.num_key_value_heads) * c.head_dim();
}
int64_t v_width_of(const LanguageConfig& c) { return c.use_mla ? 0 : k_width_of(c); }
size_t elem_bytes(DType t) {
  DSVL2_REQUIRE(t == DType::kF32 || t == DType::kBF16, "kv cache: rows are F32 or BF16, not %s", dtype_name(t));
  return dtype_size(t);
}
}  // namespace

size_t KVCache::bytes_for(const LanguageConfig& c, int positions, DType dtype) {
  return size_t(c.num_hidden_layers) * size_t(positions) * size_t(k_width_of(c) + v_width_of(c)) * elem_bytes(dtype);
}

KVCache::KVCache(const LanguageConfig& c, int context, DType dtype) {
  dtype_ = dtype;
  elem_ = int64_t(elem_bytes(dtype));
  if (context > c.max_position_embeddings)
    DSVL2_FAIL_KIND(kTooLong, "a context of %d positions exceeds the model's max_position_embeddings %d", context,
                    c.max_position_embeddings);
  context_ = context > 0 ? context : c.max_position_embeddings;
  layers_ = c.num_hidden_layers;
  k_width_ = k_width_of(c);
  v_width_ = v_width_of(c);
  bytes_ = bytes_for(c, context_, dtype);
  const size_t k_bytes = size_t(layers_) * size_t(context_) * size_t(k_width_) * size_t(elem_);
  const size_t v_bytes = size_t(layers_) * size_t(context_) * size_t(v_width_) * size_t(elem_);
  auto aligned = [](size_t n) { return (n + 63) & ~size_t(63); };  // Arena::take's alignment
  mem_ = std::make_unique<Arena>(aligned(k_bytes) + aligned(v_bytes), /*huge_pages=*/false);
  k_ = static_cast<char*>(mem_->take(k_bytes));
  if (v_bytes > 0) v_ = static_cast<char*>(mem_->take(v_bytes));
}

namespace {
void store_rows(DType t, const float* rows, int64_t n, void* dst) {
  if (t == DType::kBF16)
    f32_to_bf16_row(rows, n, static_cast<uint16_t*>(dst));
  else
    std::memcpy(dst, rows, size_t(n) * sizeof(float));
}
}  // namespace

void KVCache::write_k(int layer, int pos, const float* rows, int n) {
  DSVL2_REQUIRE(layer >= 0 && layer < layers_ && pos >= 0 && n >= 0 && int64_t(pos) + n <= context_,
              "kv cache: write of %d rows at %d past capacity %d", n, pos, context_);
  store_rows(dtype_, rows, int64_t(n) * k_width_, k_ptr(layer, pos));
}

void KVCache::write_v(int layer, int pos, const float* rows, int n) {
  DSVL2_REQUIRE(layer >= 0 && layer < layers_ && pos >= 0 && n >= 0 && int64_t(pos) + n <= context_ && v_width_ > 0,
              "kv cache: write of %d rows at %d past capacity %d", n, pos, context_);
  store_rows(dtype_, rows, int64_t(n) * v_width_, v_ptr(layer, pos));
}

void KVCache::truncate(int n) {
  DSVL2_REQUIRE(n >= 0 && n <= length_, "kv cache: cannot truncate %d positions to %d", length_, n);
  length_ = n;
}

void KVCache::advance(int n) {
  DSVL2_CHECK(n >= 0 && length_ + n <= context_, "kv cache: advance %d past capacity %d", n, context_);
  length_ += n;
}

KVCachePool::KVCachePool(const LanguageConfig& config, size_t budget_bytes, DType dtype)
    : config_(config), budget_(budget_bytes), dtype_(dtype) {
  elem_bytes(dtype);  // rejects other dtypes up front
}

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
    l.cache_ = std::make_unique<KVCache>(config_, positions, dtype_);
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
