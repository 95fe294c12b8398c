// The JSON bodies of OpenAI chat completion responses and stream chunks,
// with the DeepSeek-VL2 extensions (docs/serve.md). Kept apart from the
// transport so tests check the shapes without a socket.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "serve/chat_request.h"
#include "serve/request_stream.h"

namespace dsvl2::serve {

struct ResponseContext {
  std::string id;     // "chatcmpl-..."
  std::string model;  // the served model's name
  int64_t created = 0;
  std::vector<std::string> mark_phrases;  // per request image: its visual prompt's phrase, or empty
  bool include_usage = false;             // stream_options.include_usage
};

// The context of one request's responses.
ResponseContext response_context(const ChatRequest& r, std::string id, std::string model, int64_t created);

// POST /v1/chat/completions, not streamed.
std::string completion_body(const ResponseContext& ctx, const Completion& c);
// One SSE event "data: {chunk}\n\n" with a content delta (the first one carries the role).
std::string stream_delta_event(const ResponseContext& ctx, const std::string& text, bool first);
// The closing events: the chunk with finish_reason (and objects), the usage
// chunk when asked, or an error event; then "data: [DONE]\n\n".
std::string stream_end_events(const ResponseContext& ctx, const Completion& c);

}  // namespace dsvl2::serve
