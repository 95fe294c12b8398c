// libFuzzer target for the server's request parser (parse_chat_request) and
// the response writers fed from what it returns. Build: cmake --preset fuzz &&
// cmake --build build-fuzz --target fuzz_chat_request; run:
// build-fuzz/fuzz/fuzz_chat_request -dict=fuzz/chat_request.dict CORPUS/ fuzz/corpus_chat_request
// The input is a POST /v1/chat/completions body. It must parse or throw
// serve::ApiError: a crash, sanitizer report, other exception type, hang or a
// parsed request breaking the limits it was parsed under is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "core/base64.h"
#include "core/error.h"
#include "ground/grounding_parser.h"
#include "serve/chat_request.h"
#include "serve/responses.h"
#include "text/chat_template.h"

namespace {

using namespace dsvl2;
using namespace dsvl2::serve;
namespace fs = std::filesystem;

// The 4x4 RGB PNG of the seed corpus: file://img.png names it.
constexpr std::string_view kPng =
    "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAGElEQVQImWNkYGiwYWCAIBYGGwY4wM0BAEqkAfYbe6N3AAAAAElFTkSuQmCC";

std::string g_dir;
RequestLimits g_lim;

void remove_dir() {
  std::error_code ec;
  fs::remove_all(g_dir, ec);
}

// The --allow-files folder: an image, a link to it, a folder, a file over the
// byte limit and a link leading out, so every branch of the file:// checks is reachable.
void make_allowed_dir() {
  std::string tmpl = (fs::temp_directory_path() / "dsvl2-fuzz-chat-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) abort();
  g_dir = tmpl;
  std::atexit(remove_dir);
  const std::vector<uint8_t> png = base64_decode(kPng);
  std::ofstream(g_dir + "/img.png", std::ios::binary).write(reinterpret_cast<const char*>(png.data()), png.size());
  std::ofstream(g_dir + "/big.png", std::ios::binary) << std::string(g_lim.max_image_bytes + 1, 'x');
  fs::create_directory(g_dir + "/dir");
  fs::create_symlink("img.png", g_dir + "/link.png");
  fs::create_symlink("..", g_dir + "/up");
}

bool valid_json(std::string_view s) { return nlohmann::json::accept(s); }

// Every "data: X\n\n" event of a stream must carry JSON (or [DONE], last).
void check_events(std::string_view s) {
  bool done = false;
  while (!s.empty()) {
    if (done || s.substr(0, 6) != "data: ") __builtin_trap();
    const size_t end = s.find("\n\n");
    if (end == std::string_view::npos) __builtin_trap();
    const std::string_view payload = s.substr(6, end - 6);
    if (payload == "[DONE]") done = true;
    else if (!valid_json(payload)) __builtin_trap();
    s.remove_prefix(end + 2);
  }
  if (!done) __builtin_trap();
}

void check_request(const ChatRequest& r) {
  if (r.messages.empty() || r.messages.back().role != ChatRole::kUser) __builtin_trap();
  if (r.images.size() > g_lim.max_images) __builtin_trap();
  if (r.gen.max_new_tokens < 1 || r.gen.max_new_tokens > g_lim.max_tokens) __builtin_trap();
  for (const auto& s : r.gen.stop_strings)
    if (s.empty() || s.size() > 256) __builtin_trap();
  size_t counted = 0;
  for (size_t i = 0; i < r.messages.size(); i++) {
    const ChatMessage& m = r.messages[i];
    if (m.role == ChatRole::kSystem && i != 0) __builtin_trap();
    if (m.n_images < 0 || (m.n_images > 0 && m.role != ChatRole::kUser)) __builtin_trap();
    counted += size_t(m.n_images);
    // The template gives every image of a message exactly one tag.
    if (m.n_images > 0) {
      const std::string t = reconcile_image_tags(m.content, m.n_images);
      size_t tags = 0;
      for (size_t p = t.find(kImageTag); p != std::string::npos; p = t.find(kImageTag, p + 1)) tags++;
      if (tags != size_t(m.n_images)) __builtin_trap();
    }
  }
  if (counted != r.images.size()) __builtin_trap();
  int prev = 0;
  for (const RequestImage& img : r.images) {
    const Image& im = img.image;
    if (im.width <= 0 || im.height <= 0 || int64_t(im.width) * im.height > g_lim.max_pixels) __builtin_trap();
    if (im.rgb.size() != size_t(im.width) * size_t(im.height) * 3) __builtin_trap();
    if (img.message < prev || img.message >= int(r.messages.size())) __builtin_trap();
    prev = img.message;
  }
  if (r.grounding == GroundingRequest::kInContext) {
    if (r.images.size() < 2 || r.images[r.images.size() - 2].mark_phrase.empty()) __builtin_trap();
  }
  if (r.grounding != GroundingRequest::kNone && r.grounding != GroundingRequest::kParseOnly &&
      r.messages.back().content.empty())
    __builtin_trap();
}

// A made-up completion answering `r`: its last message's text, cut at a byte
// that may split a character (as a length limit can), as the output.
Completion fake_completion(const ChatRequest& r, size_t salt) {
  Completion c;
  const std::string& last = r.messages.back().content;
  c.text = last.substr(0, salt % (last.size() + 1));
  c.finish_reason = salt & 1 ? "length" : "stop";
  c.timed_out = salt & 2;
  c.prompt_tokens = int(last.size());
  c.completion_tokens = int(c.text.size());
  c.cached_tokens = int(salt % 7);
  if (r.grounding != GroundingRequest::kNone) {
    const int g = grounding_image(r);
    const Image* im = g >= 0 ? &r.images[size_t(g)].image : nullptr;
    c.grounding = ground::parse_grounding(last, im ? im->width : 0, im ? im->height : 0);
  }
  if (salt % 5 == 4) c.error = ApiError(500, "generation failed: " + c.text);
  return c;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_lim.max_images = 4;
  g_lim.max_pixels = 512 * 512;
  g_lim.max_image_bytes = 256u << 10;
  g_lim.max_tokens = 4096;
  g_lim.default_max_tokens = 256;
  g_lim.max_messages = 64;
  g_lim.max_text_bytes = 64u << 10;
  g_lim.max_json_depth = 32;
  make_allowed_dir();
  g_lim.allow_files_dir = g_dir;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  ChatRequest r;
  try {
    r = parse_chat_request(body, g_lim);
  } catch (const ApiError& e) {
    if (e.status != 400 || std::string_view(e.what()).empty()) __builtin_trap();
    if (!valid_json(error_body(e))) __builtin_trap();
    return 0;
  }
  check_request(r);

  // The prompt text the engine would build (the tokens need a model).
  try {
    (void)format_sft_prompt(r.messages);
  } catch (const Error&) {
  }

  const ResponseContext ctx = response_context(r, "chatcmpl-fuzz", r.model, 1733380000);
  if (ctx.mark_phrases.size() != r.images.size()) __builtin_trap();
  const Completion c = fake_completion(r, size);
  if (!c.error && !valid_json(completion_body(ctx, c))) __builtin_trap();
  std::string stream = stream_delta_event(ctx, c.text, true) + stream_delta_event(ctx, r.model, false);
  stream += stream_end_events(ctx, c);
  check_events(stream);
  return 0;
}
