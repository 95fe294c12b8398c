// How the C heap keeps memory that a forward pass frees.
#pragma once

namespace dsvl2 {

// Every prompt, image and training step allocates and frees the same large
// activations (tens of MB). glibc returns such blocks to the kernel (blocks over
// its mmap threshold, or a heap top over its trim threshold), and each later
// pass faults fresh zeroed pages back in: a quarter of a 512-token prefill went
// to those faults. This keeps blocks up to 256 MiB in the heap and the heap's
// top up to 1 GiB: the memory a pass needs stays committed between passes
// (peak use is unchanged), larger blocks (weights) are still mapped apart.
// Process-wide; called by the command-line entry and by training.
void keep_freed_activations();

}  // namespace dsvl2
