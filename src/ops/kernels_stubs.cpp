// SIMD tables not yet compiled in. Each kernels_<isa>.cpp replaces its stub
// by defining the function and deleting the line here.
#include "ops/ops.h"

namespace dsvl2 {
const KernelTable* kernels_avx2() { return nullptr; }
}  // namespace dsvl2
