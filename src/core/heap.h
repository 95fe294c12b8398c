// How the C heap keeps memory that a forward pass frees, and the 64-byte
// aligned blocks tensors and scratch buffers live in.
#pragma once
#include <cstddef>

namespace dsvl2 {

// Every prompt, image and training step allocates and frees the same large
// activations (tens of MB). glibc returns such blocks to the kernel (blocks over
// its mmap threshold, or a heap top over its trim threshold), and each later
// pass faults fresh zeroed pages back in: about a fifth of a 512-token prefill
// went to those faults. This keeps blocks up to 256 MiB in the heap and the heap's
// top up to 1 GiB: the memory a pass needs stays committed between passes
// (peak use is unchanged), larger blocks (weights) are still mapped apart.
// Process-wide; called by the command-line entry and by training.
void keep_freed_activations();

// `bytes` aligned to 64, from malloc (nullptr when out of memory); free with
// free_aligned64. Not aligned_alloc: glibc serves a large aligned request from
// a larger block and splits it, so a freed block is never large enough for the
// next request of the same size and the heap grows by fresh (faulting) pages on
// every pass; malloc reuses the freed block.
void* alloc_aligned64(size_t bytes);
void free_aligned64(void* p);

}  // namespace dsvl2
