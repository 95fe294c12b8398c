// The transpose of Rope::apply (llm/rope.h): the gradient of rotated
// vectors with respect to the unrotated ones, for both pairings. A rotation
// scaled by yarn's magnitude is not orthogonal, so this is the transpose,
// not the inverse.
#pragma once
#include <cstdint>

#include "llm/rope.h"

namespace dsvl2 {

// dx (in place): on entry d(rotated), on exit d(input), same layout as apply().
void rope_backward(const Rope& rope, float* dx, int T, int n_heads, int64_t stride_t, int64_t stride_h, int pos0,
                   RopeStyle style);

}  // namespace dsvl2
