#include "core/scratch.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

namespace dsvl2 {
namespace {

// Per-thread scratch is counted while it lives and uncounted when its thread
// ends; it only grows.
TEST(ScratchBuffer, CountedProcessWide) {
  const size_t before = scratch_bytes();
  size_t during = 0;
  std::thread t([&] {
    thread_local ScratchBuffer buf;
    void* p = buf.get(10000);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    EXPECT_EQ(buf.get(100), p) << "never shrinks";
    buf.get(20000);
    during = scratch_bytes();
    EXPECT_EQ(buf.capacity(), 20480u);
  });
  t.join();
  EXPECT_EQ(during, before + 20480);
  EXPECT_EQ(scratch_bytes(), before);
}

}  // namespace
}  // namespace dsvl2
