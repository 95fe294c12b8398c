// Anonymous memory for weights repacked once at load time (see Ops::prepare).
// One mapping, asked for transparent huge pages: a 4 KiB page fault costs far
// more than packing the page's bytes (measured: faulting 0.9 GB of fresh 4 KiB
// pages took longer than packing it), and large weights stream better with
// fewer TLB misses. Memory is zero until written and returned on destruction.
#pragma once
#include <cstddef>

namespace dsvl2 {

class WeightArena {
 public:
  explicit WeightArena(size_t bytes);  // throws Error when the mapping fails
  ~WeightArena();
  WeightArena(const WeightArena&) = delete;
  WeightArena& operator=(const WeightArena&) = delete;

  // `bytes` from the arena, 64-byte aligned; throws Error when it is full.
  void* take(size_t bytes);
  size_t used() const { return used_; }
  size_t capacity() const { return cap_; }

 private:
  char* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
};

}  // namespace dsvl2
