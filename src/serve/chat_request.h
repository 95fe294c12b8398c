// POST /v1/chat/completions bodies turned into what the engine runs: the
// conversation, decoded images (visual prompts drawn), sampling settings and
// the DeepSeek-VL2 extensions (docs/serve.md). Everything a client can get
// wrong is found here, before the request takes a slot: every error is an
// ApiError naming the field. Pure (no model, no network), so it is fuzzed.
//
//   ChatRequest r = parse_chat_request(body, limits);   // throws ApiError
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ground/pipeline.h"
#include "image/image.h"
#include "model/sequence.h"
#include "serve/api_error.h"
#include "text/chat_template.h"

namespace dsvl2::serve {

struct RequestLimits {
  size_t max_images = 4;                  // per request, counted before any is decoded
  int64_t max_pixels = 4096LL * 4096;     // per image, from its header
  size_t max_image_bytes = 20u << 20;     // per encoded image (checked on the base64 length)
  int max_tokens = 4096;                  // most max_tokens a client may ask
  int default_max_tokens = 512;
  size_t max_messages = 512;
  size_t max_text_bytes = 1u << 20;       // all text of one request
  size_t max_json_depth = 64;
  std::string allow_files_dir;            // empty: file:// URLs are refused
};

struct RequestImage {
  Image image;
  int message = 0;          // index in ChatRequest::messages
  std::string mark_phrase;  // the drawn visual prompt's phrase ("the red ellipse"), or empty
};

enum class GroundingRequest { kNone, kParseOnly, kLocate, kRef, kConversation, kInContext };

struct ChatRequest {
  std::string model;
  std::vector<ChatMessage> messages;  // n_images set on every message
  std::vector<RequestImage> images;   // in prompt order
  GenerateRequest gen;                // stop strings: the template's plus the client's
  bool stream = false, include_usage = false;
  GroundingRequest grounding = GroundingRequest::kNone;
  bool seeded = false;                // the client gave a seed
};

ChatRequest parse_chat_request(std::string_view body, const RequestLimits& limits);

// The last image's index, the one grounding boxes map to (-1: none).
inline int grounding_image(const ChatRequest& r) { return int(r.images.size()) - 1; }

}  // namespace dsvl2::serve
