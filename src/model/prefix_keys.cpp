#include "model/prefix_keys.h"

#include "core/error.h"
#include "core/rng.h"

namespace dsvl2 {

uint64_t image_content_hash(const Image& img, uint64_t variant) {
  const uint64_t size = (uint64_t(uint32_t(img.width)) << 32) | uint32_t(img.height);
  // The variant seeds the chain: with a secret variant, pixels cannot be
  // chosen to collide with another image (the chain is invertible only
  // from a known state).
  return splitmix64(hash_bytes(img.rgb.data(), img.rgb.size(), splitmix64(size ^ splitmix64(variant))));
}

std::vector<uint64_t> prefix_keys(const PromptIds& prompt, std::span<const uint64_t> image_hashes) {
  DSVL2_REQUIRE(image_hashes.size() == prompt.images.size(), "prefix keys: %zu image hashes for %zu images",
                image_hashes.size(), prompt.images.size());
  std::vector<uint64_t> keys(prompt.ids.begin(), prompt.ids.end());  // token ids are below 2^31
  for (size_t i = 0; i < prompt.images.size(); i++) {
    const ImageSpan& span = prompt.images[i];
    DSVL2_REQUIRE(span.begin >= 0 && span.begin + span.count <= int64_t(keys.size()),
                  "prefix keys: image %zu lies outside the prompt", i);
    for (int64_t r = 0; r < span.count; r++)
      keys[size_t(span.begin + r)] = splitmix64(image_hashes[i] + uint64_t(r)) | (1ull << 63);  // never an id
  }
  return keys;
}

size_t common_prefix(std::span<const uint64_t> a, std::span<const uint64_t> b) {
  size_t n = 0;
  while (n < a.size() && n < b.size() && a[n] == b[n]) n++;
  return n;
}

}  // namespace dsvl2
