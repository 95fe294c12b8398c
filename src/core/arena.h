// Anonymous memory reserved once: weights repacked at load time (see
// Ops::prepare) and the fixed-capacity KV caches (llm/kv_cache.h).
// One mapping, asked for transparent huge pages: a 4 KiB page fault costs far
// more than packing the page's bytes (measured: faulting 0.9 GB of fresh 4 KiB
// pages took longer than packing it), and large weights stream better with
// fewer TLB misses. Memory is zero until written and returned on destruction.
#pragma once
#include <cstddef>

namespace dsvl2 {

class Arena {
 public:
  // throws Error (kOutOfResources) when the mapping fails. huge_pages asks
  // for transparent huge pages (weights); without it memory is committed 4 KiB
  // at a time as it is written (KV caches, which fill position by position).
  explicit Arena(size_t bytes, bool huge_pages = true);
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // `bytes` from the arena, 64-byte aligned; throws Error when it is full.
  void* take(size_t bytes);
  size_t used() const { return used_; }
  size_t capacity() const { return cap_; }

 private:
  char* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
};

}  // namespace dsvl2
