// Repacking a model's matrices once at load (Ops::prepare) into one huge-page
// arena, shared by the language model and the vision tower; matrices that
// multiply the same input can be packed together as one (FusedWeight).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/arena.h"
#include "ops/ops.h"

namespace dsvl2 {

// Called with the source bytes of each matrix once its packed copy exists
// (the model drops the checkpoint's mapped pages there).
using ReleaseSource = std::function<void(const void* data, size_t bytes)>;

// Matrices that multiply the same input (q/k/v, gate/up), packed as one
// [sum of rows, K] matrix: a decode step then makes one product, one parallel
// region and one conversion of the input instead of one per matrix. Each
// output column is the same dot product either way, so results do not change.
// The fused copy exists only in packed form (w.data is null), for the kernel
// table and mode it was packed for; other Ops use the parts.
struct FusedWeight {
  Weight w;
  const KernelTable* table = nullptr;
  Compute compute = Compute::kF32;
  bool usable(const Ops& ops) const { return w.packed != nullptr && ops.k == table && ops.compute == compute; }
};

// Parts to fuse into *out: fused when they share dtype and width and the
// table has a packed form for the concatenation; otherwise each part is
// prepared on its own. Parts with a bias are not offered (a bias added inside
// the blocked product rounds differently than one added afterwards).
struct FuseGroup {
  std::vector<Weight*> parts;
  FusedWeight* out = nullptr;
};

// Replaces each *w that ops' kernel table has a packed form for by its packed
// version (the source view stays in Weight::data), and packs every group that
// can be fused (its parts then keep their source views), packing on ops'
// threads. Returns the arena that holds the packed bytes (null when nothing
// was packed); it must outlive the weights. *bytes receives the packed size.
std::unique_ptr<Arena> prepack_weights(const std::vector<Weight*>& ws, const std::vector<FuseGroup>& groups,
                                       const Ops& ops, const ReleaseSource& release, size_t* bytes);
inline std::unique_ptr<Arena> prepack_weights(const std::vector<Weight*>& ws, const Ops& ops,
                                              const ReleaseSource& release, size_t* bytes) {
  return prepack_weights(ws, {}, ops, release, bytes);
}

// out[i] = x[M, K] · parts[i]^T for every part: one product of `fused` split
// into the outputs when fused.usable(ops), else one product per part.
void linear_parts(const Ops& ops, const float* x, int64_t M, const FusedWeight& fused,
                  std::initializer_list<const Weight*> parts, std::initializer_list<float*> out);

}  // namespace dsvl2
