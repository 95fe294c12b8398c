#include "ops/prepack.h"

#include <cstdint>

namespace dsvl2 {

std::unique_ptr<Arena> prepack_weights(const std::vector<Weight*>& ws, const Ops& ops,
                                             const ReleaseSource& release, size_t* bytes) {
  std::vector<size_t> offset(ws.size(), SIZE_MAX);
  size_t total = 0;
  for (size_t i = 0; i < ws.size(); i++) {
    const size_t b = ops.prepared_bytes(*ws[i]);
    if (b == 0) continue;
    offset[i] = total;
    total += (b + 63) & ~size_t(63);
  }
  if (bytes) *bytes = total;
  if (total == 0) return nullptr;
  auto arena = std::make_unique<Arena>(total);
  char* base = static_cast<char*>(arena->take(total));
  // One matrix per task; each is packed, then its source released, so the
  // packed copy replaces the mapped one in memory instead of adding to it.
  ops.pool->parallel_for(int64_t(ws.size()), [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; i++) {
      if (offset[size_t(i)] == SIZE_MAX) continue;
      Weight& w = *ws[size_t(i)];
      const Weight packed = ops.prepare_into(w, base + offset[size_t(i)]);
      uint64_t source_bytes = 0;
      if (release && dtype_bytes(w.dtype, w.rows * w.cols, &source_bytes)) release(w.data, size_t(source_bytes));
      w = packed;
    }
  });
  return arena;
}

}  // namespace dsvl2
