// Image embeddings by image content: many questions about one image encode
// it once. Keyed by image_content_hash(pixels, crop flag) -- a hash of the
// decoded pixels, never of the prompt's placeholder tokens, which are the same
// for every image of one tile layout. Least recently used entries go first
// when the byte budget is exceeded. Used by the engine thread only.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <unordered_map>

#include "core/tensor.h"

namespace dsvl2::serve {

class ImageCache {
 public:
  explicit ImageCache(size_t budget_bytes) : budget_(budget_bytes) {}
  // The tokens [n, hidden] of `key`, or null; a hit becomes the most recent.
  std::shared_ptr<const Tensor> find(uint64_t key);
  // Keeps `tokens` unless they alone exceed the budget; evicts as needed.
  void put(uint64_t key, std::shared_ptr<const Tensor> tokens);
  size_t bytes() const { return bytes_; }
  size_t size() const { return map_.size(); }
  size_t budget() const { return budget_; }

 private:
  using Entry = std::pair<uint64_t, std::shared_ptr<const Tensor>>;
  size_t budget_, bytes_ = 0;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> map_;
};

}  // namespace dsvl2::serve
