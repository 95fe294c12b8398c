// The HTTP face of the server (cpp-httplib): routes, API key, CORS, body
// limits, OpenAI errors, SSE streaming and the web page. It starts before the
// model is loaded (GET /health answers "loading") and gets its engine later.
//
//   HttpServer http(opts, metrics);
//   int port = http.bind();                 // before loading: the port is known
//   std::thread t([&] { http.run(); });
//   http.attach(&engine, model_name);       // after loading
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "serve/chat_request.h"
#include "serve/engine.h"
#include "serve/metrics.h"

namespace httplib {
class Server;
struct Request;
}

namespace dsvl2::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port
  std::string api_key;                // empty: no key needed
  std::string cors_origin;            // empty: no CORS headers
  size_t max_body_bytes = 32u << 20;
  int threads = 64;                   // connections served at once
  RequestLimits limits;
};

class HttpServer {
 public:
  HttpServer(const HttpOptions& options, Metrics& metrics);
  ~HttpServer();
  // Binds the socket; returns the port. Throws Error when it cannot.
  int bind();
  // Serves until stop(); returns false when listening failed.
  bool run();
  void stop();
  void attach(Engine* engine, const std::string& model_name);

 private:
  void routes();
  bool authorized(const httplib::Request& req) const;
  HttpOptions opt_;
  Metrics& metrics_;
  std::unique_ptr<httplib::Server> svr_;
  std::atomic<Engine*> engine_{nullptr};
  std::string model_name_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace dsvl2::serve
