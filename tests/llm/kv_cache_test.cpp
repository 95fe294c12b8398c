// The KV cache pool: fixed-capacity caches from a byte budget, admission,
// refusal with the right error kind, bytes returned when a lease ends.
#include "llm/kv_cache.h"

#include <gtest/gtest.h>

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
  for (int ctx : {1, 3, 16}) {
    KVCache c(L, ctx);
    for (int p = 0; p < ctx; p++) {
      c.k_row(0, p)[7] = float(p);
      c.v_row(0, p)[7] = float(-p);
    }
    EXPECT_EQ(c.v_row(0, ctx - 1)[7], float(1 - ctx));
    EXPECT_EQ(c.bytes(), KVCache::bytes_for(L, ctx));
  }
}

}  // namespace
}  // namespace dsvl2
