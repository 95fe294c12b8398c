#include "core/thread_pool.h"

#include <algorithm>

namespace dsvl2 {

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  for (int i = 1; i < n_threads_; i++) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_.store(true);
  }
  cv_start_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
// The pools whose jobs this thread is running, innermost first (workers while
// in a job, the caller during run_on_all), as a chain of scopes on the stack:
// a call back into any of them runs inline, even through another pool's job.
struct JobScope;
thread_local const JobScope* tl_scope = nullptr;

struct JobScope {
  const ThreadPool* pool;
  const JobScope* outer;
  explicit JobScope(const ThreadPool* p) : pool(p), outer(tl_scope) { tl_scope = this; }
  ~JobScope() { tl_scope = outer; }
};

// About 20-50 microseconds of polling before a thread sleeps.
constexpr int kSpinIterations = 20000;
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
}  // namespace

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && i < kSpinIterations && !stop_.load(std::memory_order_relaxed); i++) {
      cpu_relax();
      g = generation_.load(std::memory_order_acquire);
    }
    if (g == seen) {
      std::unique_lock<std::mutex> lk(mu_);
      cv_start_.wait(lk, [&] { return stop_.load() || generation_.load() != seen; });
      g = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = g;
    try {
      JobScope scope(this);
      (*job_)(index);
    } catch (...) {
      keep_error(std::current_exception());
    }
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::lock_guard<std::mutex> lk(mu_);  // pairs with the caller's predicate check
      cv_done_.notify_one();
    }
  }
}

bool ThreadPool::in_job() const {
  for (const JobScope* s = tl_scope; s; s = s->outer)
    if (s->pool == this) return true;
  return false;
}

void ThreadPool::keep_error(std::exception_ptr e) {
  std::lock_guard<std::mutex> lk(error_mu_);
  if (!error_) error_ = std::move(e);
}

void ThreadPool::run_on_all(const std::function<void(int)>& fn) {
  if (in_job()) {  // nested: this thread already holds a share of a job of ours
    for (int t = 0; t < n_threads_; t++) fn(t);
    return;
  }
  if (n_threads_ == 1) {
    JobScope scope(this);
    fn(0);
    return;
  }
  std::lock_guard<std::mutex> call(call_mu_);
  error_ = nullptr;
  job_ = &fn;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(mu_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  cv_start_.notify_all();
  try {
    JobScope scope(this);
    fn(0);
  } catch (...) {
    keep_error(std::current_exception());
  }
  // Always wait: the workers read fn and whatever it captured by reference.
  for (int i = 0; pending_.load(std::memory_order_acquire) != 0 && i < kSpinIterations; i++) cpu_relax();
  if (pending_.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_done_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  job_ = nullptr;
  if (error_) {
    std::exception_ptr e;
    std::swap(e, error_);
    std::rethrow_exception(e);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  int64_t max_chunks = (n + grain - 1) / grain;
  int chunks = int(std::min<int64_t>(n_threads_, max_chunks));
  if (chunks <= 1 || in_job()) {
    fn(0, n, 0);
    return;
  }
  run_on_all([&](int t) {
    if (t >= chunks) return;
    int64_t begin = n * t / chunks, end = n * (t + 1) / chunks;
    if (begin < end) fn(begin, end, t);
  });
}

namespace {
// One thread's share [front, back) in one word, so the owner taking from the
// front and a helper taking from the back never claim the same items.
struct alignas(64) Share {
  std::atomic<uint64_t> word{0};
  static uint64_t pack(int64_t front, int64_t back) { return uint64_t(front) | uint64_t(back) << 32; }
  // Claims up to `count` items from the front (or the back): false when empty.
  bool claim(int64_t count, bool from_back, int64_t* begin, int64_t* end) {
    uint64_t v = word.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t f = int64_t(v & 0xffffffffu), b = int64_t(v >> 32);
      if (f >= b) return false;
      const int64_t nf = from_back ? f : std::min(b, f + count), nb = from_back ? std::max(f, b - count) : b;
      if (word.compare_exchange_weak(v, pack(nf, nb), std::memory_order_relaxed)) {
        *begin = from_back ? nb : f;
        *end = from_back ? b : nf;
        return true;
      }
    }
  }
};
}  // namespace

void ThreadPool::parallel_for_balanced(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                                       int64_t grain) {
  grain = std::max<int64_t>(1, grain);
  if (n <= 0) return;
  if (n_threads_ == 1 || n <= grain || in_job() || n >= (int64_t(1) << 31)) return parallel_for(n, fn, grain);
  std::vector<Share> shares(static_cast<size_t>(n_threads_));
  for (int t = 0; t < n_threads_; t++)
    shares[size_t(t)].word.store(Share::pack(n * t / n_threads_, n * (t + 1) / n_threads_));
  run_on_all([&](int t) {
    // Own share in about eight pieces, whole grains (one contiguous stream), then others' tails.
    const int64_t own = std::max<int64_t>(1, (n / n_threads_ / 8 + grain - 1) / grain) * grain;
    int64_t b = 0, e = 0;
    while (shares[size_t(t)].claim(own, false, &b, &e)) fn(b, e, t);
    for (int k = 1; k < n_threads_; k++)
      while (shares[size_t((t + k) % n_threads_)].claim(grain, true, &b, &e)) fn(b, e, t);
  });
}

}  // namespace dsvl2
