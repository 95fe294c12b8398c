// Independent pieces of work spread over a pool's threads, each piece run
// whole by one thread with a one-thread Ops.
//
// Decode-sized work (a matrix-vector product per MoE expert, per MLA head)
// is too small to split each matrix across the threads: every split is a
// parallel region, whose hand-off and wait cost more than a 100 KB product.
// Running whole pieces per thread makes one region out of many.
#pragma once
#include <cstdint>
#include <functional>
#include <span>

#include "ops/ops.h"

namespace dsvl2 {

// Runs fn(item, solo) for every item in [0, cost.size()), each on one thread
// of ops.pool with `solo` an Ops on a one-thread pool (same table and mode).
// Items go to the least-loaded thread, largest cost first (ties: lower index
// first), so the plan does not depend on timing. Returns false and runs
// nothing when spreading cannot help: a one-thread pool, fewer items than
// threads, or a call from inside one of the pool's jobs; the caller then runs
// the items itself with `ops`.
bool spread_items(const Ops& ops, std::span<const int64_t> cost,
                  const std::function<void(int item, const Ops& solo)>& fn);

}  // namespace dsvl2
