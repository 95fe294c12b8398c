#include "serve/image_cache.h"

namespace dsvl2::serve {

std::shared_ptr<const Tensor> ImageCache::find(uint64_t key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->second;
}

bool ImageCache::contains(uint64_t key) const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.count(key) > 0;
}

size_t ImageCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

size_t ImageCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

void ImageCache::put(uint64_t key, std::shared_ptr<const Tensor> tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t size = tokens->nbytes();
  if (size > budget_ || map_.count(key)) return;
  while (bytes_ + size > budget_) {
    bytes_ -= lru_.back().second->nbytes();
    map_.erase(lru_.back().first);
    lru_.pop_back();
  }
  lru_.emplace_front(key, std::move(tokens));
  map_[key] = lru_.begin();
  bytes_ += size;
}

}  // namespace dsvl2::serve
