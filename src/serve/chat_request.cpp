#include "serve/chat_request.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/base64.h"
#include "core/error.h"
#include "ground/prompts.h"
#include "ground/visual_prompt.h"
#include "sample/sampler.h"

namespace dsvl2::serve {
namespace {

using json = nlohmann::json;

std::string error_string(const std::exception& e) { return e.what(); }

json parse_json(std::string_view body, size_t max_depth) {
  // nlohmann parses iteratively but destroys values recursively: a depth
  // bomb must be stopped while parsing.
  auto depth_check = [max_depth](int depth, json::parse_event_t, json&) {
    if (size_t(depth) > max_depth)
      throw ApiError(400, "JSON nested deeper than " + std::to_string(max_depth) + " levels");
    return true;
  };
  try {
    return json::parse(body.begin(), body.end(), depth_check);
  } catch (const json::exception& e) {
    throw ApiError(400, std::string("invalid JSON body: ") + e.what());
  }
}

const json* field(const json& obj, const char* name) {
  auto it = obj.find(name);
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

double number(const json& v, const std::string& param, double lo, double hi) {
  if (!v.is_number()) throw bad_request(param, param + " must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad_request(param, param + " must be between " + json(lo).dump() + " and " + json(hi).dump());
  return x;
}

int64_t integer(const json& v, const std::string& param, int64_t lo, int64_t hi) {
  if (!v.is_number_integer()) throw bad_request(param, param + " must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX))
    throw bad_request(param, param + " must be at most " + std::to_string(hi));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw bad_request(param, param + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return x;
}

// By value: callers pass temporaries (obj.value(name, json())).
std::string string_field(const json& v, const std::string& param) {
  if (!v.is_string()) throw bad_request(param, param + " must be a string");
  return v.get<std::string>();
}

std::vector<uint8_t> read_allowed_file(std::string_view url, const RequestLimits& lim, const std::string& param) {
  namespace fs = std::filesystem;
  if (lim.allow_files_dir.empty())
    throw bad_request(param, "file:// URLs are disabled (start the server with --allow-files DIR)");
  std::string rel(url.substr(7));
  while (!rel.empty() && rel.front() == '/') rel.erase(0, 1);  // file:///x and file://x both name DIR/x
  std::error_code ec;
  const fs::path root = fs::canonical(lim.allow_files_dir, ec);
  if (ec) throw ApiError(500, "the --allow-files folder is not readable");
  const fs::path path = fs::canonical(root / rel, ec);  // resolves "..", symlinks
  if (ec) throw bad_request(param, "file not found under the allowed folder");
  const std::string p = path.string(), r = root.string() + "/";
  if (p.compare(0, r.size(), r) != 0) throw bad_request(param, "file:// path leaves the allowed folder");
  if (!fs::is_regular_file(path, ec)) throw bad_request(param, "file:// path is not a regular file");
  const auto size = fs::file_size(path, ec);
  if (ec || size > lim.max_image_bytes)
    throw bad_request(param, "image file larger than " + std::to_string(lim.max_image_bytes) + " bytes");
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> bytes(size);
  if (!f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size))) throw bad_request(param, "file unreadable");
  return bytes;
}

std::vector<uint8_t> image_bytes(const std::string& url, const RequestLimits& lim, const std::string& param) {
  if (url.rfind("data:", 0) == 0) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos) throw bad_request(param, "data: URL without a comma");
    const std::string_view head(url.data() + 5, comma - 5), payload(url.data() + comma + 1, url.size() - comma - 1);
    if (head.size() < 7 || head.substr(head.size() - 7) != ";base64")
      throw bad_request(param, "data: URL must be base64 (data:image/png;base64,...)");
    if (!(head.substr(0, 6) == "image/" || head == ";base64" || head == "application/octet-stream;base64"))
      throw bad_request(param, "data: URL media type must be image/*");
    if (payload.size() / 4 * 3 > lim.max_image_bytes + 2)
      throw bad_request(param, "image larger than " + std::to_string(lim.max_image_bytes) + " bytes");
    try {
      return base64_decode(payload, lim.max_image_bytes);
    } catch (const Error& e) {
      throw bad_request(param, error_string(e));
    }
  }
  if (url.rfind("file://", 0) == 0) return read_allowed_file(url, lim, param);
  if (url.rfind("http://", 0) == 0 || url.rfind("https://", 0) == 0)
    throw bad_request(param, "the server does not fetch URLs; send the image as a data: URL");
  throw bad_request(param, "image_url.url must be a data: URL (or file:// with --allow-files)");
}

ground::Region parse_region(const json& vp, const std::string& param) {
  ground::Region region;
  if (const json* b = field(vp, "box")) {
    if (!b->is_array() || b->size() != 4) throw bad_request(param + ".box", "box must be [x1, y1, x2, y2] in pixels");
    double v[4];
    for (int i = 0; i < 4; i++) v[i] = number((*b)[size_t(i)], param + ".box", -1e6, 1e6);
    if (v[2] <= v[0] || v[3] <= v[1]) throw bad_request(param + ".box", "box must have x2 > x1 and y2 > y1");
    region.box = ground::Box{v[0], v[1], v[2], v[3]};
  }
  if (const json* m = field(vp, "mask")) {
    if (!m->is_array() || m->empty() || m->size() > 64)
      throw bad_request(param + ".mask", "mask must be a list of 1 to 64 polygons [x, y, x, y, ...]");
    // Point sampling tests every point against every part (triangle: up to
    // 15000 tests): the mask files' cap on all coordinates bounds that cost.
    const size_t max_values = ground::PolygonLimits{}.max_values;
    size_t values = 0;
    for (const json& poly : *m) {
      if (!poly.is_array() || poly.size() < 6 || poly.size() % 2 || poly.size() > 20000)
        throw bad_request(param + ".mask", "each polygon needs an even number (6 to 20000) of coordinates");
      if ((values += poly.size()) > max_values)
        throw bad_request(param + ".mask", "mask has more than " + std::to_string(max_values) + " coordinates");
      ground::Polygon p;
      for (size_t i = 0; i < poly.size(); i += 2)
        p.push_back({number(poly[i], param + ".mask", -1e6, 1e6), number(poly[i + 1], param + ".mask", -1e6, 1e6)});
      region.polygons.push_back(std::move(p));
    }
  }
  if (!region.box && region.polygons.empty()) throw bad_request(param, "visual_prompt needs a box or a mask");
  return region;
}

// Draws the part's visual prompt on `img`; returns its phrase.
std::string draw_visual_prompt(const json& vp, Image& img, const std::string& param) {
  if (!vp.is_object()) throw bad_request(param, "visual_prompt must be an object");
  try {
    const ground::Shape shape = ground::parse_shape(string_field(vp.value("shape", json()), param + ".shape"));
    const ground::Region region = parse_region(vp, param);
    const json* s = field(vp, "seed");
    Rng rng(s ? uint64_t(integer(*s, param + ".seed", 0, INT64_MAX)) : 0);
    const json* c = field(vp, "color");
    const ground::Color color = c ? ground::parse_color(string_field(*c, param + ".color")) : ground::random_color(rng);
    ground::DrawnPrompt drawn;
    img = ground::render_visual_prompt(img, shape, color, region, rng, {}, &drawn);
    return drawn.phrase;
  } catch (const Error& e) {
    throw bad_request(param, error_string(e));
  }
}

// Into a new string: replacing in place moves the tail every time, quadratic
// for a text made of marks (0.7 s for a megabyte of "{mark}").
void replace_all(std::string& s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  if (at == std::string::npos) return;
  std::string out;
  size_t from_at = 0;
  for (; at != std::string::npos; at = s.find(from, from_at)) {
    out.append(s, from_at, at - from_at).append(to);
    from_at = at + from.size();
  }
  out.append(s, from_at);
  s = std::move(out);
}

void parse_sampling(const json& b, const RequestLimits& lim, ChatRequest& r) {
  GenerateRequest& g = r.gen;
  g.max_new_tokens = lim.default_max_tokens;
  for (const char* name : {"max_tokens", "max_completion_tokens"})
    if (const json* v = field(b, name)) g.max_new_tokens = int(integer(*v, name, 1, lim.max_tokens));
  SamplingParams& s = g.sampling;
  s = {};
  if (const json* v = field(b, "temperature")) s.temperature = float(number(*v, "temperature", 0, 2));
  if (const json* v = field(b, "top_p")) {
    s.top_p = float(number(*v, "top_p", 0, 1));
    if (s.top_p <= 0) throw bad_request("top_p", "top_p must be greater than 0");
  }
  if (const json* v = field(b, "top_k")) s.top_k = int(integer(*v, "top_k", 0, 1 << 20));
  if (const json* v = field(b, "seed")) {
    s.seed = uint64_t(integer(*v, "seed", INT64_MIN, INT64_MAX));
    r.seeded = true;
  }
  double pen = 0;
  for (const char* name : {"presence_penalty", "frequency_penalty"})
    if (const json* v = field(b, name)) pen += number(*v, name, -2, 2);
  s.repetition_penalty = float(std::clamp(1 + pen / 4, 0.5, 2.0));
  if (const json* v = field(b, "repetition_penalty"))
    s.repetition_penalty = float(number(*v, "repetition_penalty", 0.01, 10));
  if (const json* v = field(b, "n"); v && integer(*v, "n", 1, 1) != 1) throw bad_request("n", "n must be 1");
  if (const json* v = field(b, "logprobs"); v && (!v->is_boolean() || v->get<bool>()))
    throw bad_request("logprobs", "logprobs are not supported");
  if (const json* v = field(b, "tools"); v && !(v->is_array() && v->empty()))
    throw bad_request("tools", "tools are not supported by this model");
  if (const json* v = field(b, "stop")) {
    std::vector<std::string> stops;
    if (v->is_string()) stops.push_back(v->get<std::string>());
    else if (v->is_array() && v->size() <= 4) {
      for (const json& x : *v) stops.push_back(string_field(x, "stop"));
    } else {
      throw bad_request("stop", "stop must be a string or a list of at most 4 strings");
    }
    for (auto& x : stops) {
      if (x.empty() || x.size() > 256) throw bad_request("stop", "each stop string must have 1 to 256 bytes");
      g.stop_strings.push_back(x);
    }
  }
  if (const json* v = field(b, "stream")) {
    if (!v->is_boolean()) throw bad_request("stream", "stream must be true or false");
    r.stream = v->get<bool>();
  }
  if (const json* v = field(b, "stream_options")) {
    if (!v->is_object()) throw bad_request("stream_options", "stream_options must be an object");
    if (const json* u = field(*v, "include_usage")) {
      if (!u->is_boolean()) throw bad_request("stream_options.include_usage", "include_usage must be true or false");
      r.include_usage = u->get<bool>();
    }
  }
  try {
    validate_sampling(s);
  } catch (const Error& e) {
    throw bad_request("", error_string(e));
  }
}

// "grounding": true, or {"query", "mode"}: the last user message's text
// becomes the grounding prompt (its images stay, tagged by the template).
void parse_grounding(const json& g, ChatRequest& r) {
  if (g.is_boolean()) {
    r.grounding = g.get<bool>() ? GroundingRequest::kParseOnly : GroundingRequest::kNone;
    return;
  }
  if (!g.is_object()) throw bad_request("grounding", "grounding must be true, false or {\"query\", \"mode\"}");
  const json* q = field(g, "query");
  const std::string query = q ? string_field(*q, "grounding.query") : "";
  const json* m = field(g, "mode");
  const std::string mode = m ? string_field(*m, "grounding.mode") : "locate";
  ChatMessage& last = r.messages.back();
  if (mode == "in_context") {
    std::vector<const RequestImage*> own;
    for (const auto& img : r.images)
      if (img.message == int(r.messages.size() - 1)) own.push_back(&img);
    if (own.size() != 2 || own[0]->mark_phrase.empty())
      throw bad_request("grounding.mode",
                        "in_context grounding needs two images in the last message, the first with a visual_prompt");
    r.grounding = GroundingRequest::kInContext;
    last.content = ground::in_context_grounding_prompt_repo("an object within " + own[0]->mark_phrase);
    return;
  }
  if (mode == "conversation") {
    r.grounding = GroundingRequest::kConversation;
    last.content = query.empty() ? ground::grounded_conversation_prompt() : ground::grounded_conversation_prompt(query);
    return;
  }
  if (mode != "locate" && mode != "ref")
    throw bad_request("grounding.mode", "grounding.mode must be locate, ref, conversation or in_context");
  if (query.empty() || query.size() > 1024) throw bad_request("grounding.query", "grounding.query needs 1 to 1024 bytes");
  r.grounding = mode == "ref" ? GroundingRequest::kRef : GroundingRequest::kLocate;
  last.content = mode == "ref" ? ground::ref_only_prompt(query) : ground::grounding_prompt(query);
}

}  // namespace

ChatRequest parse_chat_request(std::string_view body, const RequestLimits& lim) {
  const json b = parse_json(body, lim.max_json_depth);
  if (!b.is_object()) throw ApiError(400, "the body must be a JSON object");
  ChatRequest r;
  if (const json* m = field(b, "model")) r.model = string_field(*m, "model");
  parse_sampling(b, lim, r);

  const json* msgs = field(b, "messages");
  if (!msgs || !msgs->is_array() || msgs->empty())
    throw bad_request("messages", "messages must be a non-empty list");
  if (msgs->size() > lim.max_messages)
    throw bad_request("messages", "more than " + std::to_string(lim.max_messages) + " messages");
  // Count images before decoding any: a request over the limit costs nothing.
  size_t n_images = 0;
  for (const json& m : *msgs)
    if (m.is_object())
      if (const json* c = field(m, "content"); c && c->is_array())
        for (const json& p : *c)
          if (p.is_object() && p.value("type", json()) == "image_url") n_images++;
  if (n_images > lim.max_images)
    throw bad_request("messages", std::to_string(n_images) + " images in the request, at most " +
                                      std::to_string(lim.max_images) + " allowed");

  size_t text_bytes = 0;
  std::vector<std::vector<std::string>> pieces(msgs->size());
  for (size_t i = 0; i < msgs->size(); i++) {
    const json& m = (*msgs)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad_request(at, at + " must be an object");
    ChatMessage msg;
    const std::string role = string_field(m.value("role", json()), at + ".role");
    try {
      msg.role = role == "developer" ? ChatRole::kSystem : parse_chat_role(role);
    } catch (const Error& e) {
      throw bad_request(at + ".role", error_string(e));
    }
    if (msg.role == ChatRole::kSystem && i != 0) throw bad_request(at + ".role", "only the first message may be a system message");
    msg.n_images = 0;
    const json* c = field(m, "content");
    if (!c) throw bad_request(at + ".content", at + " has no content");
    if (c->is_string()) {
      pieces[i].push_back(c->get<std::string>());
    } else if (c->is_array()) {
      for (size_t j = 0; j < c->size(); j++) {
        const json& p = (*c)[j];
        const std::string pat = at + ".content[" + std::to_string(j) + "]";
        if (!p.is_object()) throw bad_request(pat, pat + " must be an object");
        const std::string type = string_field(p.value("type", json()), pat + ".type");
        if (type == "text") {
          pieces[i].push_back(string_field(p.value("text", json()), pat + ".text"));
        } else if (type == "image_url") {
          if (msg.role != ChatRole::kUser) throw bad_request(pat, "only user messages may carry images");
          const json* iu = field(p, "image_url");
          if (!iu || !iu->is_object()) throw bad_request(pat + ".image_url", "image_url must be an object {\"url\": ...}");
          const std::string url = string_field(iu->value("url", json()), pat + ".image_url.url");
          RequestImage img;
          img.message = int(i);
          std::vector<uint8_t> bytes = image_bytes(url, lim, pat + ".image_url.url");
          try {
            img.image = decode_image(bytes.data(), bytes.size(), "image", DecodeLimits{lim.max_pixels});
          } catch (const Error& e) {
            throw bad_request(pat + ".image_url.url", error_string(e));
          }
          if (const json* vp = field(p, "visual_prompt"))
            img.mark_phrase = draw_visual_prompt(*vp, img.image, pat + ".visual_prompt");
          r.images.push_back(std::move(img));
          msg.n_images++;
          pieces[i].push_back(std::string(kImageTag));
        } else {
          throw bad_request(pat + ".type", "unsupported content part type \"" + type + "\" (text or image_url)");
        }
      }
    } else {
      throw bad_request(at + ".content", "content must be a string or a list of parts");
    }
    for (const auto& s : pieces[i]) text_bytes += s.size();
    if (text_bytes > lim.max_text_bytes)
      throw bad_request("messages", "more than " + std::to_string(lim.max_text_bytes) + " bytes of text");
    r.messages.push_back(std::move(msg));
  }
  if (r.messages.back().role != ChatRole::kUser)
    throw bad_request("messages", "the last message must be from the user");

  // {mark}: the message's first drawn mark; {markN}: the request's N-th.
  std::vector<std::string> marks;
  for (const auto& img : r.images)
    if (!img.mark_phrase.empty()) marks.push_back(img.mark_phrase);
  for (size_t i = 0; i < pieces.size(); i++) {
    std::string own;
    for (const auto& img : r.images)
      if (img.message == int(i) && !img.mark_phrase.empty() && own.empty()) own = img.mark_phrase;
    std::string content;
    for (size_t k = 0; k < pieces[i].size(); k++) {
      std::string s = pieces[i][k];
      if (s != kImageTag) {
        for (size_t n = marks.size(); n >= 1; n--) replace_all(s, "{mark" + std::to_string(n) + "}", marks[n - 1]);
        if (!own.empty()) replace_all(s, "{mark}", own);
      }
      content += (k ? "\n" : "") + s;
    }
    r.messages[i].content = std::move(content);
    if (r.messages[i].role == ChatRole::kUser && r.messages[i].n_images == 0 &&
        r.messages[i].content.find_first_not_of(" \t\r\n") == std::string::npos)
      throw bad_request("messages[" + std::to_string(i) + "].content", "empty user message");
  }

  if (const json* g = field(b, "grounding")) parse_grounding(*g, r);
  return r;
}

}  // namespace dsvl2::serve
