// Scratch memory that kernels keep per thread across calls (thread_local):
// 64-byte aligned, grown to the largest call and never shrunk. Every buffer is
// counted process-wide, so the memory a process holds beyond its weights and
// KV caches is visible (scratch_bytes()) to whoever budgets memory.
#pragma once
#include <cstddef>

namespace dsvl2 {

class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ~ScratchBuffer();
  ScratchBuffer(const ScratchBuffer&) = delete;
  ScratchBuffer& operator=(const ScratchBuffer&) = delete;
  // At least `bytes`, 64-byte aligned; contents are lost when it grows.
  void* get(size_t bytes);
  size_t capacity() const { return cap_; }

 private:
  void* p_ = nullptr;
  size_t cap_ = 0;
};

// Bytes held by all live ScratchBuffers of the process.
size_t scratch_bytes();

}  // namespace dsvl2
