// The KV cache pool: fixed-capacity caches from a byte budget, admission,
// refusal with the right error kind, bytes returned when a lease ends.
#include "llm/kv_cache.h"

#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"

namespace dsvl2 {
namespace {

TEST(KVCachePool, AdmitsWithinTheBudgetAndReturnsBytes) {
  LanguageConfig L;
  L.use_mla = false;
  L.num_hidden_layers = 2;
  L.hidden_size = 64;
  L.num_attention_heads = 4;
  L.num_key_value_heads = 2;
  L.max_position_embeddings = 1000;
  const size_t per = KVCache::bytes_for(L, 100);
  EXPECT_EQ(per, size_t(2) * 100 * (32 + 32) * 4);
  KVCachePool pool(L, per * 2 + per / 2);
  EXPECT_TRUE(pool.can_admit(100));
  KVCachePool::Lease a = pool.acquire(100);
  KVCachePool::Lease b = pool.acquire(100);
  EXPECT_EQ(a->context(), 100);
  EXPECT_EQ(pool.used(), per * 2);
  EXPECT_FALSE(pool.can_admit(100));
  EXPECT_TRUE(pool.can_admit(50));
  try {
    pool.acquire(100);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kOutOfResources);
  }
  try {
    pool.acquire(1001);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kTooLong);
  }
  {
    KVCachePool::Lease moved = std::move(a);
    EXPECT_EQ(pool.used(), per * 2);
  }
  EXPECT_EQ(pool.used(), per);
  EXPECT_TRUE(pool.can_admit(100));
  // A cache never grows past its capacity and reports it.
  EXPECT_TRUE(b->can_grow(100));
  EXPECT_FALSE(b->can_grow(101));
}

// Small MHA shapes whose k and v blocks are not multiples of 64 bytes: both
// fit the cache's reservation.
TEST(KVCache, OddSizesFit) {
  LanguageConfig L;
  L.use_mla = false;
  L.num_hidden_layers = 1;
  L.hidden_size = 8;
  L.num_attention_heads = 1;
  L.num_key_value_heads = 1;
  L.max_position_embeddings = 16;
  for (DType t : {DType::kF32, DType::kBF16})
    for (int ctx : {1, 3, 16}) {
      KVCache c(L, ctx, t);
      for (int p = 0; p < ctx; p++) {
        float row[8] = {};
        row[7] = float(p);
        c.write_k(0, p, row, 1);
        row[7] = float(-p);
        c.write_v(0, p, row, 1);
      }
      const float last = t == DType::kF32 ? static_cast<const float*>(c.v_at(0, ctx - 1))[7]
                                          : bf16_to_f32(static_cast<const uint16_t*>(c.v_at(0, ctx - 1))[7]);
      EXPECT_EQ(last, float(1 - ctx));
      EXPECT_EQ(c.bytes(), KVCache::bytes_for(L, ctx, t));
    }
}

// A bf16 cache holds each value rounded once to the nearest bf16, in half the
// bytes; the pool charges its budget by the cache's own size.
TEST(KVCache, Bf16RowsRoundOnceAndTakeHalfTheBytes) {
  LanguageConfig L;
  L.use_mla = true;
  L.num_hidden_layers = 3;
  L.kv_lora_rank = 32;
  L.qk_rope_head_dim = 16;
  L.max_position_embeddings = 64;
  EXPECT_EQ(KVCache::bytes_for(L, 10, DType::kBF16) * 2, KVCache::bytes_for(L, 10, DType::kF32));
  KVCache c(L, 10, DType::kBF16);
  EXPECT_EQ(c.v_width(), 0);
  std::vector<float> rows(size_t(2 * c.k_width()));
  for (size_t i = 0; i < rows.size(); i++) rows[i] = 1.0f + float(i) * 0.001953f;  // values bf16 cannot hold
  c.write_k(2, 4, rows.data(), 2);
  const auto* got = static_cast<const uint16_t*>(c.k_at(2, 4));
  for (size_t i = 0; i < rows.size(); i++) ASSERT_EQ(got[i], f32_to_bf16(rows[i])) << i;
  EXPECT_THROW(c.write_k(2, 9, rows.data(), 2), Error);  // past the capacity
  EXPECT_THROW(KVCache(L, 10, DType::kF16), Error);
  KVCachePool pool(L, KVCache::bytes_for(L, 10, DType::kBF16), DType::kBF16);
  KVCachePool::Lease a = pool.acquire(10);
  EXPECT_EQ(a->dtype(), DType::kBF16);
  EXPECT_FALSE(pool.can_admit(1));
}

}  // namespace
}  // namespace dsvl2
