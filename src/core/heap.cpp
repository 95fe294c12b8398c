#include "core/heap.h"

#include <malloc.h>

#include <cstdint>
#include <cstdlib>

namespace dsvl2 {

void keep_freed_activations() {
  // Fixed thresholds also turn off glibc's own adjustment of them.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

// The block malloc returned sits in the word before the aligned address.
void* alloc_aligned64(size_t bytes) {
  constexpr size_t kAlign = 64, kSlack = kAlign + sizeof(void*);
  if (bytes > SIZE_MAX - kSlack) return nullptr;
  void* raw = std::malloc(bytes + kSlack);
  if (!raw) return nullptr;
  const uintptr_t p = (reinterpret_cast<uintptr_t>(raw) + sizeof(void*) + kAlign - 1) & ~uintptr_t(kAlign - 1);
  reinterpret_cast<void**>(p)[-1] = raw;
  return reinterpret_cast<void*>(p);
}

void free_aligned64(void* p) {
  if (p) std::free(static_cast<void**>(p)[-1]);
}

}  // namespace dsvl2
