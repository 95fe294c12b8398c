// What one request's HTTP thread and the engine thread share: the text as it
// is generated, the final result, and the client's cancellation. The engine
// pushes, the HTTP thread waits; neither blocks the other for long.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ground/grounding_parser.h"
#include "serve/api_error.h"

namespace dsvl2::serve {

struct Completion {
  std::string text;
  std::string finish_reason;  // "stop" or "length"
  bool timed_out = false;
  int prompt_tokens = 0, completion_tokens = 0, cached_tokens = 0;
  std::optional<ground::ParseResult> grounding;  // when the request asked for it
  std::optional<ApiError> error;                 // the engine failed this request
};

class RequestStream {
 public:
  // HTTP side: waits up to `wait` for new text or the end; appends new text
  // to `text` and returns true once the request has finished (then result()).
  bool wait(std::string& text, std::chrono::milliseconds wait);
  const Completion& result() const { return result_; }
  // The client went away: the engine ends the request at its next step.
  void cancel() { cancelled_ = true; }
  bool cancelled() const { return cancelled_; }

  // Engine side.
  void push_text(std::string_view piece);
  void finish(Completion c);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  bool done_ = false;
  Completion result_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace dsvl2::serve
