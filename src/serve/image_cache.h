// Image embeddings by image content: many questions about one image encode
// it once. Keyed by image_content_hash(pixels, crop flag) -- a hash of the
// decoded pixels, never of the prompt's placeholder tokens, which are the same
// for every image of one tile layout. Least recently used entries go first
// when the byte budget is exceeded. Thread-safe: the engine reads and fills
// it, HTTP threads ask whether an image will need encoding.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/tensor.h"

namespace dsvl2::serve {

class ImageCache {
 public:
  explicit ImageCache(size_t budget_bytes) : budget_(budget_bytes) {}
  // The tokens [n, hidden] of `key`, or null; a hit becomes the most recent.
  std::shared_ptr<const Tensor> find(uint64_t key);
  bool contains(uint64_t key) const;
  // Keeps `tokens` unless they alone exceed the budget; evicts as needed.
  void put(uint64_t key, std::shared_ptr<const Tensor> tokens);
  size_t bytes() const;
  size_t size() const;
  size_t budget() const { return budget_; }

 private:
  using Entry = std::pair<uint64_t, std::shared_ptr<const Tensor>>;
  mutable std::mutex mu_;
  size_t budget_, bytes_ = 0;
  std::list<Entry> lru_;  // most recent first
  std::unordered_map<uint64_t, std::list<Entry>::iterator> map_;
};

}  // namespace dsvl2::serve
