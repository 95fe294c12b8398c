// A small fixed pool of worker threads. Passed explicitly to everything that
// computes (no process-wide pool), so one process can run several sessions.
//
//   ThreadPool pool(2);
//   pool.parallel_for(rows, [&](int64_t begin, int64_t end, int tid) { ... });
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace dsvl2 {

class ThreadPool {
 public:
  // n_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Splits [0, n) into size() contiguous chunks of at least `grain` items and
  // runs fn(begin, end, thread_index) on them; the caller's thread takes part.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain = 1);

  // Runs fn(thread_index) once on every thread.
  void run_on_all(const std::function<void(int)>& fn);

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // Jobs are published by bumping generation_. Workers spin briefly before
  // sleeping on cv_start_, and the caller spins before sleeping on cv_done_:
  // a decode step makes hundreds of short parallel calls, and a futex
  // sleep/wake per call would cost more than the work.
  std::mutex mu_;
  std::condition_variable cv_start_, cv_done_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace dsvl2
