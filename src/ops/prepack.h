// Repacking a model's matrices once at load (Ops::prepare) into one huge-page
// arena, shared by the language model and the vision tower.
#pragma once
#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "core/arena.h"
#include "ops/ops.h"

namespace dsvl2 {

// Called with the source bytes of each matrix once its packed copy exists
// (the model drops the checkpoint's mapped pages there).
using ReleaseSource = std::function<void(const void* data, size_t bytes)>;

// Replaces each *w that ops' kernel table has a packed form for by its packed
// version (the source view stays in Weight::data), packing on ops' threads.
// Returns the arena that holds the packed bytes (null when nothing was packed);
// it must outlive the weights. *bytes receives the packed size.
std::unique_ptr<Arena> prepack_weights(const std::vector<Weight*>& ws, const Ops& ops,
                                             const ReleaseSource& release, size_t* bytes);

}  // namespace dsvl2
