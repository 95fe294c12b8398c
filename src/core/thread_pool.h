// A small fixed pool of worker threads. Passed explicitly to everything that
// computes (no process-wide pool), so one process can run several sessions.
//
//   ThreadPool pool(2);
//   pool.parallel_for(rows, [&](int64_t begin, int64_t end, int tid) { ... });
//
// Errors: an exception thrown by any part of a job (a worker's or the
// caller's) reaches the caller, after every thread has left the job, so no
// worker still touches the caller's stack; the first one is rethrown, the
// others are dropped. The pool stays usable.
// Concurrency: calls from different threads are served one job at a time.
// Nesting is explicit: a job that calls back into its own pool runs that
// inner call inline on the calling thread (same results, no deadlock);
// splitting work across threads happens only at the outermost call.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
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

  // As parallel_for, but each thread takes its own contiguous share in pieces
  // of whole grains from the front, and a thread that finishes its share
  // takes `grain`-sized pieces from the end of the others' unfinished shares
  // (fn may then run several times on one thread). For memory-bound loops on
  // a shared machine, where one thread can be slowed: each thread streams one
  // contiguous range for most of its work, and none waits idle at the end.
  void parallel_for_balanced(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain);

  // Runs fn(thread_index) once for every index in [0, size()), on every
  // thread (inline, one index after another, when nested in a job of this pool).
  void run_on_all(const std::function<void(int)>& fn);

  // True on a thread that is running a job of this pool.
  bool in_job() const;

 private:
  void worker(int index);
  void keep_error(std::exception_ptr e);

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
  std::mutex call_mu_;    // one job at a time when several threads call
  std::mutex error_mu_;   // guards error_
  std::exception_ptr error_;
};

}  // namespace dsvl2
