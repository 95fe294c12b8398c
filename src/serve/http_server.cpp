#include "serve/http_server.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "serve/responses.h"
#include "serve/web_page.h"

namespace dsvl2::serve {
namespace {

using namespace std::chrono_literals;
constexpr const char* kJson = "application/json";

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.status == 503) res.set_header("Retry-After", "1");
  // Answered before the body was read (413): the unread bytes would be taken
  // as the next request on this connection, so the client must not reuse it.
  if (e.status == 413) res.set_header("Connection", "close");
  res.set_content(error_body(e), kJson);
}

ApiError unauthorized() {
  return ApiError(401, "missing or wrong API key (Authorization: Bearer KEY)", "", "", "invalid_api_key");
}

// Compares in time that depends only on the lengths, not on where the
// strings first differ.
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned diff = unsigned(a.size() ^ b.size());
  for (size_t i = 0; i < a.size(); i++) diff |= unsigned(uint8_t(a[i]) ^ uint8_t(i < b.size() ? b[i] : 0));
  return diff == 0;
}

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

HttpServer::HttpServer(const HttpOptions& options, Metrics& metrics)
    : opt_(options), metrics_(metrics), svr_(std::make_unique<httplib::Server>()) {
  const int threads = std::max(4, opt_.threads);
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  svr_->set_payload_max_length(opt_.max_body_bytes);
  // One request per connection: cpp-httplib 0.11 keeps a connection open
  // after answering without reading a body, and the unread bytes would be
  // parsed as the next request.
  svr_->set_keep_alive_max_count(1);
  svr_->set_read_timeout(30s);
  svr_->set_write_timeout(30s);
  routes();
}

HttpServer::~HttpServer() { stop(); }

int HttpServer::bind() {
  int port = opt_.port;
  if (port == 0) {
    port = svr_->bind_to_any_port(opt_.host);
  } else if (!svr_->bind_to_port(opt_.host, port)) {
    port = -1;
  }
  if (port < 0) DSVL2_FAIL_KIND(kOutOfResources, "cannot listen on %s:%d", opt_.host.c_str(), opt_.port);
  opt_.port = port;
  return port;
}

bool HttpServer::run() { return svr_->listen_after_bind(); }
void HttpServer::stop() {
  if (svr_) svr_->stop();
}

bool HttpServer::authorized(const httplib::Request& req) const {
  return opt_.api_key.empty() || constant_time_equal(req.get_header_value("Authorization"), "Bearer " + opt_.api_key);
}

void HttpServer::attach(Engine* engine, const std::string& model_name) {
  model_name_ = model_name;
  engine_ = engine;
}

void HttpServer::routes() {
  httplib::Server& s = *svr_;
  // Every response is counted; error responses without a body get the
  // OpenAI error shape (404 routes, 413 bodies, ...).
  s.set_logger([this](const httplib::Request&, const httplib::Response& res) { metrics_.count_response(res.status); });
  s.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const int st = res.status;
    std::string msg = st == 404   ? "no such endpoint"
                      : st == 413 ? "request body too large"
                      : st == 405 ? "method not allowed"
                                  : "bad request";
    res.set_content(error_body(ApiError(st, msg, "", "", st == 413 ? "payload_too_large" : "")), kJson);
    res.set_header("Connection", "close");  // the library answered without reading the body
    return httplib::Server::HandlerResponse::Handled;
  }));
  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const ApiError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, ApiError(500, std::string("internal error: ") + e.what()));
    } catch (...) {
      send_error(res, ApiError(500, "internal error"));
    }
  });
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (!opt_.cors_origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", opt_.cors_origin);
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      if (req.method == "OPTIONS") {
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    // Only the completion route takes a body (read there, within the limit):
    // the library would buffer any other one whole, chunked without bound.
    const bool completion = req.method == "POST" && req.path == "/v1/chat/completions";
    if (!completion && (req.has_header("Transfer-Encoding") || req.get_header_value<uint64_t>("Content-Length") > 0)) {
      const bool get_path = req.path == "/" || req.path == "/health" || req.path == "/metrics" || req.path == "/v1/models";
      if (!get_path && req.path != "/v1/chat/completions") send_error(res, ApiError(404, "no such endpoint"));
      else if (get_path && req.method == "GET") send_error(res, ApiError(413, "this endpoint takes no request body", "", "", "payload_too_large"));
      else send_error(res, ApiError(405, "method not allowed on this path"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (opt_.api_key.empty() || req.path == "/" || req.path == "/health" || authorized(req))
      return httplib::Server::HandlerResponse::Unhandled;
    // A completion request's handler reads the body first and then refuses
    // it: a keep-alive connection stays in step.
    if (completion) return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, unauthorized());
    res.set_header("Connection", "close");  // any body of it is unread
    return httplib::Server::HandlerResponse::Handled;
  });

  s.Get("/", [](const httplib::Request&, httplib::Response& res) {
    const std::string_view page = web_page_html();
    res.set_content(page.data(), page.size(), "text/html; charset=utf-8");
  });
  s.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const bool ready = engine_.load() != nullptr;
    res.status = ready ? 200 : 503;
    if (!ready) res.set_header("Retry-After", "1");
    res.set_content(ready ? R"({"status":"ok"})" : R"({"status":"loading"})", kJson);
  });
  s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    Engine* e = engine_.load();
    res.set_content(metrics_.render(e ? e->gauges() : EngineGauges{}), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    // The name is read only once the engine is published (attach() sets it first).
    nlohmann::ordered_json data = nlohmann::ordered_json::array();
    if (engine_.load())
      data.push_back({{"id", model_name_}, {"object", "model"}, {"created", 0}, {"owned_by", "dsvl2"}});
    nlohmann::ordered_json body = {{"object", "list"}, {"data", data}};
    res.set_content(body.dump(), kJson);
  });
  auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
    send_error(res, ApiError(405, "method not allowed on this path"));
  };
  s.Get("/v1/chat/completions", not_allowed);
  s.Post("/v1/models", not_allowed);
  s.Post("/health", not_allowed);

  s.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res,
                                         const httplib::ContentReader& read) {
    // The body is read here, not by the library: a chunked body has no
    // Content-Length for set_payload_max_length to refuse, so the limit is
    // applied while it arrives.
    std::string body;
    bool too_large = false;
    // Without the key the body is read (the connection stays in step) but not kept.
    const bool allowed = authorized(req);
    size_t seen = 0;
    const bool complete = read([&](const char* data, size_t n) {
      seen += n;
      too_large = seen > opt_.max_body_bytes;
      if (!too_large && allowed) body.append(data, n);
      return !too_large;
    });
    // A Content-Length over the limit: the library refused it (413) unread.
    if (too_large || res.status == 413) throw ApiError(413, "request body larger than " + std::to_string(opt_.max_body_bytes) + " bytes", "",
                                  "", "payload_too_large");
    if (!complete) throw ApiError(400, "the request body could not be read");
    if (!allowed) throw unauthorized();
    Engine* engine = engine_.load();
    if (!engine) throw ApiError(503, "the model is still loading");
    ChatRequest request = parse_chat_request(body, opt_.limits);
    auto ctx = std::make_shared<ResponseContext>(
        response_context(request, "chatcmpl-" + std::to_string(next_id_++), model_name_, unix_time()));
    const bool stream = request.stream;
    std::shared_ptr<RequestStream> out = engine->submit(std::move(request));
    if (!stream) {
      std::string ignored;
      while (!out->wait(ignored, 200ms)) ignored.clear();
      const Completion& c = out->result();
      if (c.error) throw *c.error;
      res.set_content(completion_body(*ctx, c), kJson);
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    auto first = std::make_shared<bool>(true);
    res.set_chunked_content_provider(
        "text/event-stream",
        [out, ctx, first](size_t, httplib::DataSink& sink) {
          if (!sink.is_writable()) return false;  // the client left while nothing was written
          std::string text;
          const bool done = out->wait(text, 100ms);
          if (!text.empty() || (*first && done)) {
            std::string ev = stream_delta_event(*ctx, text, *first);
            *first = false;
            if (!sink.write(ev.data(), ev.size())) return false;
          }
          if (done) {
            std::string ev = stream_end_events(*ctx, out->result());
            if (!sink.write(ev.data(), ev.size())) return false;
            sink.done();
          }
          return true;
        },
        // The connection ended before the stream did: free the slot.
        [out](bool success) {
          if (!success) out->cancel();
        });
  });
}

}  // namespace dsvl2::serve
