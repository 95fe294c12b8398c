#include "core/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
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

// A task that throws, in a worker, in the caller's share, or in both: the
// caller gets the exception only after every thread left the job (the
// captured vector is still intact), the process lives, the next job runs.
TEST(ThreadPool, ThrowingTasksReachTheCallerAndThePoolSurvives) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int round = 0; round < 300; round++) {
      const int thrower = round % 3;  // 0: caller, 1: a worker, 2: every thread
      std::vector<int> touched(size_t(threads), 0);
      bool caught = false;
      try {
        pool.run_on_all([&](int t) {
          // Workers keep writing after the caller's share threw: the caller
          // must not unwind (and free `touched`) before they are done.
          std::this_thread::sleep_for(std::chrono::microseconds(t == 0 ? 0 : 50));
          touched[size_t(t)] = 1;
          if (thrower == 2 || (thrower == 0 && t == 0) || (thrower == 1 && t == threads - 1))
            throw std::runtime_error("task " + std::to_string(t));
        });
      } catch (const std::runtime_error& e) {
        caught = true;
        EXPECT_EQ(std::string(e.what()).rfind("task ", 0), 0u);
      }
      EXPECT_TRUE(caught) << "round " << round;
      for (int t = 0; t < threads; t++) EXPECT_EQ(touched[size_t(t)], 1) << "thread " << t;
      std::atomic<int64_t> sum{0};
      pool.parallel_for(100, [&](int64_t b, int64_t e, int) { sum += e - b; });
      EXPECT_EQ(sum.load(), 100);
    }
  }
}

TEST(ThreadPool, ParallelForPropagatesTheError) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for(10, [&](int64_t b, int64_t, int) {
                 if (b > 0) throw std::invalid_argument("bad row");
               }),
               std::invalid_argument);
  int64_t n = 0;
  pool.parallel_for(1, [&](int64_t b, int64_t e, int) { n += e - b; });
  EXPECT_EQ(n, 1);
}

// A job that calls back into its own pool runs the inner call inline: every
// index once, no deadlock.
TEST(ThreadPool, NestedCallsRunInline) {
  ThreadPool pool(2);
  std::atomic<int64_t> inner{0};
  std::atomic<int> inline_calls{0};
  pool.parallel_for(4, [&](int64_t b, int64_t e, int) {
    EXPECT_TRUE(pool.in_job());
    for (int64_t i = b; i < e; i++)
      pool.parallel_for(10, [&](int64_t ib, int64_t ie, int tid) {
        inner += ie - ib;
        if (ib == 0 && ie == 10 && tid == 0) inline_calls++;
      });
  });
  EXPECT_EQ(inner.load(), 40);
  EXPECT_EQ(inline_calls.load(), 4);
  EXPECT_FALSE(pool.in_job());
  std::atomic<int> ran{0};
  pool.run_on_all([&](int) { pool.run_on_all([&](int) { ran++; }); });
  EXPECT_EQ(ran.load(), 4);
  // Through another pool's job (as the MoE runs experts on a one-thread
  // pool inside a job of the main one): still inline, no self-deadlock.
  std::atomic<int> deep{0};
  pool.run_on_all([&](int) {
    ThreadPool solo(1);
    solo.run_on_all([&](int) { pool.parallel_for(3, [&](int64_t b, int64_t e, int) { deep += int(e - b); }); });
  });
  EXPECT_EQ(deep.load(), 6);
}

// Several threads sharing one pool (a server's request threads) get their
// jobs run one at a time, each complete.
TEST(ThreadPool, ConcurrentCallersShareThePool) {
  ThreadPool pool(2);
  std::vector<std::thread> callers;
  std::vector<int64_t> sums(4, 0);
  for (int c = 0; c < 4; c++)
    callers.emplace_back([&, c] {
      for (int round = 0; round < 500; round++) {
        std::atomic<int64_t> s{0};
        pool.parallel_for(64, [&](int64_t b, int64_t e, int) { s += e - b; });
        sums[size_t(c)] += s.load();
      }
    });
  for (auto& t : callers) t.join();
  for (int64_t s : sums) EXPECT_EQ(s, 500 * 64);
}

// parallel_for_balanced: every index exactly once, whatever the thread count,
// grain and size; a thread held up at the start leaves its share's tail to
// the others (they take it from the end, in grain-sized pieces), and it still
// starts at the front of its own share.
TEST(ThreadPool, BalancedForCoversEveryIndexOnceAndMovesWorkOffASlowThread) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    for (int64_t grain : {1, 3, 8})
      for (int64_t n : {0, 1, 2, 7, 100, 1000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        pool.parallel_for_balanced(n, [&](int64_t b, int64_t e, int t) {
          ASSERT_LE(b, e);
          ASSERT_GE(t, 0);
          ASSERT_LT(t, threads);
          for (int64_t i = b; i < e; i++) hits[size_t(i)]++;
        }, grain);
        for (auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads, grain " << grain << ", n " << n;
      }
  }
  ThreadPool pool(2);
  const int64_t n = 400;
  std::vector<std::atomic<int>> by(static_cast<size_t>(n));
  std::atomic<int> first_item_of_thread0{-1};
  pool.parallel_for_balanced(n, [&](int64_t b, int64_t e, int t) {
    if (t == 0 && first_item_of_thread0.load() < 0) {
      first_item_of_thread0 = int(b);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    for (int64_t i = b; i < e; i++) by[size_t(i)] = t;
  }, 4);
  EXPECT_EQ(first_item_of_thread0.load(), 0);
  int moved = 0;
  for (int64_t i = 0; i < n / 2; i++) moved += by[size_t(i)].load() == 1;
  EXPECT_GT(moved, 0) << "the idle thread took none of the slow thread's share";
  EXPECT_EQ(by[size_t(n / 2 - 1)].load(), 1) << "taken from the end of the share";
}

// An error in one piece reaches the caller; the pool stays usable.
TEST(ThreadPool, BalancedForPropagatesTheError) {
  ThreadPool pool(2);
  EXPECT_THROW(pool.parallel_for_balanced(100, [&](int64_t b, int64_t e, int) {
    if (b <= 60 && 60 < e) throw std::runtime_error("piece failed");
  }, 4), std::runtime_error);
  std::atomic<int64_t> s{0};
  pool.parallel_for_balanced(100, [&](int64_t b, int64_t e, int) { s += e - b; }, 4);
  EXPECT_EQ(s.load(), 100);
}

}  // namespace
}  // namespace dsvl2
