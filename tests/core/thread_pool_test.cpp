#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace dsvl2 {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int threads : {1, 2, 3}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, [&](int64_t b, int64_t e, int) {
        for (int64_t i = b; i < e; i++) hits[size_t(i)]++;
      });
      for (auto& h : hits) EXPECT_EQ(h.load(), 1);
    }
  }
}

// Thousands of back-to-back short jobs: the spin/sleep hand-off must neither
// lose a wake-up (hang) nor run a job twice or on stale state.
TEST(ThreadPool, ManyShortJobsBackToBack) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  for (int round = 0; round < 20000; round++) {
    pool.parallel_for(2, [&](int64_t b, int64_t e, int) { total += e - b; });
  }
  EXPECT_EQ(total.load(), 40000);
  // Idle long enough for the worker to fall asleep, then wake it again.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  pool.parallel_for(2, [&](int64_t b, int64_t e, int) { total += e - b; });
  EXPECT_EQ(total.load(), 40002);
}

}  // namespace
}  // namespace dsvl2
