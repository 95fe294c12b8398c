// Keys for reusing a KV cache prefix: one 64-bit key per prompt position,
// the token id at text positions and, at image positions, a mix of the
// image's content hash and the position within the image. Every image
// position carries the same token id, so comparing ids alone would reuse the
// K/V of another image with the same tile layout.
//
//   std::vector<uint64_t> keys = prefix_keys(prompt, {image_content_hash(img)});
//   size_t reusable = common_prefix(cached_keys, keys);
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "image/image.h"
#include "text/chat_template.h"

namespace dsvl2 {

// Hash of an image's pixels and size; `variant` separates encodings of the
// same pixels that differ (e.g. with and without local tiles), and a secret
// variant keys the hash against chosen-pixel collisions (a server).
uint64_t image_content_hash(const Image& img, uint64_t variant = 0);

// One key per position of prompt.ids; image_hashes[i] for prompt.images[i].
std::vector<uint64_t> prefix_keys(const PromptIds& prompt, std::span<const uint64_t> image_hashes);

// Length of the common prefix of two key sequences.
size_t common_prefix(std::span<const uint64_t> a, std::span<const uint64_t> b);

}  // namespace dsvl2
