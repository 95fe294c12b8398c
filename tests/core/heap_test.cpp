#include "core/heap.h"

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdint>
#include <cstring>

#include "core/tensor.h"

namespace dsvl2 {
namespace {

long minor_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// A pass's activations, freed and allocated again by the next pass, come back
// without faulting their pages in again (glibc alone would have unmapped a
// 64 MiB block on free: 16,384 fresh 4 KiB pages on every pass).
TEST(Heap, FreedActivationsStayCommitted) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "AddressSanitizer replaces the C heap";
#endif
  keep_freed_activations();
  constexpr int64_t kFloats = int64_t(64) << 18;  // 64 MiB
  auto pass = [] {
    Tensor t = Tensor::f32_uninit({kFloats});
    std::memset(t.f32(), 1, size_t(kFloats) * 4);
    asm volatile("" : : "r"(t.f32()) : "memory");  // the stores happen (are not elided before the free)
    return t.f32()[kFloats - 1];
  };
  EXPECT_NE(pass(), 0.f);
  const long before = minor_faults();
  for (int i = 0; i < 3; i++) EXPECT_NE(pass(), 0.f);
  EXPECT_LT(minor_faults() - before, 3 * 16384 / 16);
}

TEST(Heap, AlignedBlocks) {
  for (size_t bytes : {size_t(0), size_t(1), size_t(63), size_t(64), size_t(4097), size_t(3) << 20}) {
    char* p = static_cast<char*>(alloc_aligned64(bytes));
    ASSERT_NE(p, nullptr) << bytes;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << bytes;
    if (bytes) p[bytes - 1] = 1;  // writable to its end (AddressSanitizer checks the bound)
    free_aligned64(p);
  }
  free_aligned64(nullptr);
  EXPECT_EQ(alloc_aligned64(SIZE_MAX - 8), nullptr);
}

}  // namespace
}  // namespace dsvl2
