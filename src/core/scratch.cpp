#include "core/scratch.h"

#include <atomic>
#include <new>

#include "core/heap.h"

namespace dsvl2 {

namespace {
std::atomic<size_t> g_scratch_bytes{0};
}

ScratchBuffer::~ScratchBuffer() {
  free_aligned64(p_);
  g_scratch_bytes.fetch_sub(cap_, std::memory_order_relaxed);
}

void* ScratchBuffer::get(size_t bytes) {
  if (bytes > cap_) {
    free_aligned64(p_);
    g_scratch_bytes.fetch_sub(cap_, std::memory_order_relaxed);
    p_ = nullptr;
    cap_ = 0;
    const size_t cap = (bytes + 4095) & ~size_t(4095);
    p_ = alloc_aligned64(cap);
    if (!p_) throw std::bad_alloc();
    cap_ = cap;
    g_scratch_bytes.fetch_add(cap_, std::memory_order_relaxed);
  }
  return p_;
}

size_t scratch_bytes() { return g_scratch_bytes.load(std::memory_order_relaxed); }

}  // namespace dsvl2
