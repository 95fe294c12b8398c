#include "core/heap.h"

#include <malloc.h>

namespace dsvl2 {

void keep_freed_activations() {
  // Fixed thresholds also turn off glibc's own adjustment of them.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace dsvl2
