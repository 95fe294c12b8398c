#include "serve/request_stream.h"

namespace dsvl2::serve {

bool RequestStream::wait(std::string& text, std::chrono::milliseconds wait) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, wait, [&] { return done_ || !pending_.empty(); });
  text += pending_;
  pending_.clear();
  return done_;
}

void RequestStream::push_text(std::string_view piece) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ += piece;
  }
  cv_.notify_all();
}

void RequestStream::finish(Completion c) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    result_ = std::move(c);
    done_ = true;
  }
  cv_.notify_all();
}

}  // namespace dsvl2::serve
