// Per-sequence attention cache, separate from the immutable LanguageModel so one
// model can serve several sequences.
//
//   MHA (use_mla false): per layer k and v rows [S, Hkv * head_dim]; k is stored
//       after RoPE (transformers DynamicCache as LlamaAttention fills it).
//   MLA: per layer one row [S, kv_lora + rope] = [kv_a_layernorm(c_kv) | roped k_pe],
//       the compressed cache of the official weight-absorbed DeepseekV2Attention.
//
// Rows are stored in f32 (the reference) or bf16 (the fast mode's default:
// half the bytes a decode step reads, so long prompts slow decode half as
// much); attention widens bf16 rows to f32 as it reads them. Rows go in
// through write_k/write_v, which round once.
//
// The capacity (maximum positions) is fixed at construction and its memory is
// reserved then, in one mapping: nothing is reallocated or copied while a
// sequence runs, and the bytes a cache can ever use are known up front (see
// KVCachePool). Pages are committed as positions are written. Running past
// the capacity is a dsvl2::Error of kind kTooLong, never a silent overrun.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/arena.h"
#include "core/dtype.h"
#include "io/model_config.h"
#include "ops/ops.h"

namespace dsvl2 {

class KVCache {
 public:
  // context <= 0: config.max_position_embeddings; a larger value is an Error.
  // dtype: DType::kF32 or DType::kBF16 (see kv_dtype_for).
  explicit KVCache(const LanguageConfig& config, int context = 0, DType dtype = DType::kF32);
  // Bytes reserved by a cache of `positions` positions for `config`.
  static size_t bytes_for(const LanguageConfig& config, int positions, DType dtype = DType::kF32);

  int context() const { return context_; }  // capacity in positions
  int length() const { return length_; }    // positions already stored
  int layers() const { return layers_; }
  int64_t k_width() const { return k_width_; }
  int64_t v_width() const { return v_width_; }  // 0 for MLA (values live in the k row)
  // True when `n` more positions fit.
  bool can_grow(int n) const { return n >= 0 && int64_t(length_) + n <= context_; }
  void clear() { length_ = 0; }
  // Drops positions from n on (n <= length).
  void truncate(int n);

  DType dtype() const { return dtype_; }
  // Row `pos` of `layer` in the cache's dtype (read by attention).
  const void* k_at(int layer, int pos) const { return k_ptr(layer, pos); }
  const void* v_at(int layer, int pos) const { return v_ptr(layer, pos); }
  // Stores n rows (k_width / v_width floats each) from position pos on.
  void write_k(int layer, int pos, const float* rows, int n);
  void write_v(int layer, int pos, const float* rows, int n);
  // Marks `n` more positions as written (after every layer wrote them).
  void advance(int n);
  size_t bytes() const { return bytes_; }  // reserved

 private:
  int context_ = 0, length_ = 0, layers_ = 0;
  int64_t k_width_ = 0, v_width_ = 0;
  DType dtype_ = DType::kF32;
  int64_t elem_ = 4;  // bytes per element
  size_t bytes_ = 0;
  std::unique_ptr<Arena> mem_;
  char *k_ = nullptr, *v_ = nullptr;
  char* k_ptr(int layer, int pos) const { return k_ + ((int64_t(layer) * context_ + pos) * k_width_) * elem_; }
  char* v_ptr(int layer, int pos) const { return v_ + ((int64_t(layer) * context_ + pos) * v_width_) * elem_; }
};

// Points a's keys and values at row 0 of `layer` (f32 or bf16 fields by the
// cache's dtype); a cache without value rows (MLA) gives its key rows for both.
inline void set_cache_kv(const KVCache& c, int layer, AttentionArgs* a) {
  const void* k = c.k_at(layer, 0);
  const void* v = c.v_width() > 0 ? c.v_at(layer, 0) : k;
  if (c.dtype() == DType::kBF16) {
    a->k_bf16 = static_cast<const uint16_t*>(k);
    a->v_bf16 = static_cast<const uint16_t*>(v);
  } else {
    a->k = static_cast<const float*>(k);
    a->v = static_cast<const float*>(v);
  }
}

// The cache dtype for a numeric mode: f32 for the reference, bf16 for the
// fast mode (whose matmuls already round activations to bf16).
inline DType kv_dtype_for(Compute c) { return c == Compute::kBF16 ? DType::kBF16 : DType::kF32; }

// Hands out fixed-capacity caches from a budget in bytes: admission control
// for a scheduler. Thread-safe. A lease returns its bytes when destroyed.
//
//   KVCachePool pool(cfg.language, 8ull << 30);
//   if (!pool.can_admit(prompt + max_new)) { queue the request }
//   KVCachePool::Lease cache = pool.acquire(prompt + max_new);
//   lm.forward(batch, ops);   // batch rows refer to *cache
class KVCachePool {
 public:
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept;
    Lease& operator=(Lease&& o) noexcept;
    ~Lease();
    KVCache* operator->() const { return cache_.get(); }
    KVCache& operator*() const { return *cache_; }
    KVCache* get() const { return cache_.get(); }
    explicit operator bool() const { return bool(cache_); }

   private:
    friend class KVCachePool;
    void reset();
    KVCachePool* pool_ = nullptr;
    std::unique_ptr<KVCache> cache_;
  };

  KVCachePool(const LanguageConfig& config, size_t budget_bytes, DType dtype = DType::kF32);
  KVCachePool(const KVCachePool&) = delete;
  KVCachePool& operator=(const KVCachePool&) = delete;

  size_t budget() const { return budget_; }
  size_t used() const;
  // Bytes a cache of `positions` positions takes from the budget.
  size_t cost(int positions) const { return KVCache::bytes_for(config_, positions, dtype_); }
  // Whether a cache of `positions` positions fits in what is left now.
  bool can_admit(int positions) const;
  // A cache of `positions` positions. Errors: kTooLong over the model's
  // context, kOutOfResources when the budget cannot hold it now.
  Lease acquire(int positions);

 private:
  void give_back(size_t bytes);
  LanguageConfig config_;
  size_t budget_;
  DType dtype_;
  mutable std::mutex mu_;
  size_t used_ = 0;
};

}  // namespace dsvl2
