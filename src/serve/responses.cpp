#include "serve/responses.h"

#include <nlohmann/json.hpp>

namespace dsvl2::serve {
namespace {

using Json = nlohmann::ordered_json;

std::string dump(const Json& j) {
  // Generated text may end inside a character only when cut by a limit;
  // never fail a response for it.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json base(const ResponseContext& ctx, const char* object) {
  Json j;
  j["id"] = ctx.id;
  j["object"] = object;
  j["created"] = ctx.created;
  j["model"] = ctx.model;
  return j;
}

Json usage(const Completion& c) {
  Json u;
  u["prompt_tokens"] = c.prompt_tokens;
  u["completion_tokens"] = c.completion_tokens;
  u["total_tokens"] = c.prompt_tokens + c.completion_tokens;
  u["prompt_tokens_details"] = Json{{"cached_tokens", c.cached_tokens}};
  return u;
}

void add_extensions(Json& j, const ResponseContext& ctx, const Completion& c) {
  Json marks = Json::array();
  for (size_t i = 0; i < ctx.mark_phrases.size(); i++)
    if (!ctx.mark_phrases[i].empty()) marks.push_back(Json{{"image", i}, {"phrase", ctx.mark_phrases[i]}});
  if (!marks.empty()) j["visual_prompts"] = std::move(marks);
  if (c.timed_out) j["timed_out"] = true;
}

std::string event(const Json& j) { return "data: " + dump(j) + "\n\n"; }

}  // namespace

ResponseContext response_context(const ChatRequest& r, std::string id, std::string model, int64_t created) {
  ResponseContext ctx;
  ctx.id = std::move(id);
  ctx.model = std::move(model);
  ctx.created = created;
  for (const auto& img : r.images) ctx.mark_phrases.push_back(img.mark_phrase);
  ctx.include_usage = r.include_usage;
  return ctx;
}

std::string completion_body(const ResponseContext& ctx, const Completion& c) {
  Json j = base(ctx, "chat.completion");
  Json msg;
  msg["role"] = "assistant";
  msg["content"] = c.text;
  if (c.grounding) msg["objects"] = ground::to_json(*c.grounding)["objects"];
  Json choice;
  choice["index"] = 0;
  choice["message"] = std::move(msg);
  choice["logprobs"] = nullptr;
  choice["finish_reason"] = c.finish_reason;
  j["choices"] = Json::array({std::move(choice)});
  j["usage"] = usage(c);
  add_extensions(j, ctx, c);
  return dump(j);
}

std::string stream_delta_event(const ResponseContext& ctx, const std::string& text, bool first) {
  Json j = base(ctx, "chat.completion.chunk");
  Json delta;
  if (first) delta["role"] = "assistant";
  delta["content"] = text;
  j["choices"] = Json::array({Json{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  return event(j);
}

std::string stream_end_events(const ResponseContext& ctx, const Completion& c) {
  if (c.error) return "data: " + error_body(*c.error) + "\n\ndata: [DONE]\n\n";
  Json j = base(ctx, "chat.completion.chunk");
  Json delta = Json::object();
  if (c.grounding) delta["objects"] = ground::to_json(*c.grounding)["objects"];
  j["choices"] = Json::array({Json{{"index", 0}, {"delta", delta}, {"logprobs", nullptr}, {"finish_reason", c.finish_reason}}});
  add_extensions(j, ctx, c);
  std::string out = event(j);
  if (ctx.include_usage) {
    Json u = base(ctx, "chat.completion.chunk");
    u["choices"] = Json::array();
    u["usage"] = usage(c);
    out += event(u);
  }
  return out + "data: [DONE]\n\n";
}

}  // namespace dsvl2::serve
